use super::*;
use proptest::prelude::*;

fn header() -> RtpHeader {
    RtpHeader {
        marker: true,
        payload_type: 0,
        sequence: 0xfffe,
        timestamp: 0xdead_beef,
        ssrc: 0x1234_5678,
    }
}

#[test]
fn parses_a_known_packet() {
    let bytes = [
        0x80, 0x88, 0x00, 0x07, 0x00, 0x00, 0x01, 0x40, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3,
    ];
    let p = RtpPacket::parse(&bytes).unwrap();
    assert_eq!(p.version(), 2);
    assert!(p.marker());
    assert_eq!(p.payload_type(), 8);
    assert_eq!(p.sequence(), 7);
    assert_eq!(p.timestamp(), 320);
    assert_eq!(p.ssrc(), 0xaabb_ccdd);
    assert_eq!(p.payload(), &[1, 2, 3]);
    assert!(!p.has_padding() && !p.has_extension());
}

#[test]
fn round_trips_csrcs_extension_and_padding() {
    let b = RtpBuilder {
        header: header(),
        csrcs: &[1, 2],
        extension: Some((0xbede, &[9, 9, 9, 9, 7, 7, 7, 7])),
        payload: &[5; 160],
        padding: 4,
    };
    let bytes = b.to_vec();
    assert_eq!(bytes.len(), b.len());
    let p = RtpPacket::parse(&bytes).unwrap();
    assert_eq!(p.header(), header());
    assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(p.extension(), Some((0xbede, &[9, 9, 9, 9, 7, 7, 7, 7][..])));
    assert_eq!(p.payload(), &[5; 160][..]);
    assert!(p.has_padding());
}

#[test]
fn rejects_malformed_packets() {
    let good = RtpBuilder {
        header: header(),
        payload: &[1, 2, 3, 4],
        ..Default::default()
    }
    .to_vec();
    assert_eq!(RtpPacket::parse(&good[..11]), Err(RtpError::TooShort(11)));
    let mut v1 = good.clone();
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
    let mut cc = good.clone();
    cc[0] |= 0x02;
    assert_eq!(RtpPacket::parse(&cc), Err(RtpError::Truncated));
    let mut ext = good.clone();
    ext[0] |= 0x10;
    assert_eq!(RtpPacket::parse(&ext), Err(RtpError::Truncated));
    let mut pad = good.clone();
    pad[0] |= 0x20;
    *pad.last_mut().unwrap() = 5;
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(5)));
    *pad.last_mut().unwrap() = 0;
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(0)));
    let mut rtcp = good.clone();
    rtcp[1] = 200;
    assert_eq!(RtpPacket::parse(&rtcp), Err(RtpError::RtcpPayloadType(72)));
    assert!(is_rtcp(&rtcp));
    assert!(!is_rtcp(&good));
}

#[test]
fn rewrites_header_in_place_and_keeps_the_rest() {
    let mut bytes = RtpBuilder {
        header: header(),
        csrcs: &[42],
        payload: &[7; 20],
        ..Default::default()
    }
    .to_vec();
    let new = RtpHeader {
        marker: false,
        payload_type: 101,
        sequence: 1,
        timestamp: 2,
        ssrc: 3,
    };
    new.write_in_place(&mut bytes).unwrap();
    let p = RtpPacket::parse(&bytes).unwrap();
    assert_eq!(p.header(), new);
    assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![42]);
    assert_eq!(p.payload(), &[7; 20][..]);
}

#[test]
fn write_reports_a_small_buffer() {
    let b = RtpBuilder {
        payload: &[0; 10],
        ..Default::default()
    };
    let mut out = [0; 12];
    assert_eq!(
        b.write(&mut out),
        Err(RtpError::BufferTooSmall { need: 22, have: 12 })
    );
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            let _ = (p.header(), p.payload(), p.extension(), p.csrcs().count());
        }
    }

    #[test]
    fn builder_output_parses_back(
        marker: bool, pt in 0u8..72, sequence: u16, timestamp: u32, ssrc: u32,
        payload in proptest::collection::vec(any::<u8>(), 0..64), padding in 0u8..8,
    ) {
        let header = RtpHeader { marker, payload_type: pt, sequence, timestamp, ssrc };
        let bytes = RtpBuilder { header, payload: &payload, padding, ..Default::default() }.to_vec();
        let p = RtpPacket::parse(&bytes).unwrap();
        prop_assert_eq!(p.header(), header);
        prop_assert_eq!(p.payload(), &payload[..]);
    }
}
