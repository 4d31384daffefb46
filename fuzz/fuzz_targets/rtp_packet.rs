//! RTP bytes from the network: the packet view, RTCP detection, the symmetric-RTP latch,
//! DTMF events, G.711 transcoding, and the relay's header rewrite across a few follow-ups.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sip_gateway::media::relay::{PayloadTypeMap, Relay, RelayConfig, SourceId};
use sip_gateway::media::rtp::{is_rtcp, RtpPacket};
use sip_gateway::media::{DtmfDetector, Latch, LatchConfig, G711};

fuzz_target!(|data: &[u8]| {
    let now = start();
    let _ = is_rtcp(data);
    let remote: SocketAddr = "192.0.2.1:30000".parse().expect("a valid literal");
    let mut latch = Latch::new(
        LatchConfig {
            sdp_addr: Some(remote),
            prefer_sdp: false,
            payload_types: vec![0, 8, 101],
            media_timeout: Duration::from_secs(30),
        },
        now,
    );
    let _ = latch.handle_packet(remote, data, now);
    while latch.poll_event().is_some() {}

    let Ok(packet) = RtpPacket::parse(data) else {
        // Malformed packets must still be refused by the relay, not crash it.
        let mut relay = Relay::new(RelayConfig::narrowband(1, 2, 3));
        let _ = relay.relay(SourceId(1), &mut data.to_vec(), now);
        return;
    };
    let _ = (packet.version(), packet.marker(), packet.csrc_count());
    let _ = packet.csrcs().count();
    let _ = packet.extension();
    let mut detector = DtmfDetector::new(8000);
    let _ = detector.handle_packet(packet.timestamp(), packet.payload(), now);
    detector.handle_timeout(now + Duration::from_secs(1));
    while detector.poll_event().is_some() {}

    let start = data.len() - packet.payload().len();
    let mut transcoded = data.to_vec();
    G711::Pcmu.transcode_in_place(G711::Pcma, &mut transcoded[start..]);

    // The same packet, then a duplicate, a successor, another source and a restart.
    let header = packet.header();
    let mut relay = Relay::new(RelayConfig::narrowband(0x1234_5678, 65_530, u32::MAX - 80));
    let mut map = PayloadTypeMap::default();
    map.insert(header.payload_type, 8);
    relay.set_payload_map(SourceId(1), map);
    let steps: [(u64, u16, u32, u64); 5] = [
        (1, 0, 0, 0),
        (1, 0, 0, 0),
        (1, 1, 160, 20),
        (2, 7, 1120, 40),
        (2, 5007, 800_000, 60),
    ];
    for (source, sequence_step, timestamp_step, millis) in steps {
        let mut bytes = data.to_vec();
        let mut moved = header;
        moved.sequence = header.sequence.wrapping_add(sequence_step);
        moved.timestamp = header.timestamp.wrapping_add(timestamp_step);
        moved
            .write_in_place(&mut bytes)
            .expect("a parsed packet holds a full fixed header");
        let at = now + Duration::from_millis(millis);
        if let Ok(out) = relay.relay(SourceId(source), &mut bytes, at) {
            let reparsed = RtpPacket::parse(&bytes).expect("a relayed packet stays valid RTP");
            assert_eq!(
                reparsed.header(),
                out,
                "the returned header is what was written"
            );
            assert_eq!(
                reparsed.payload(),
                packet.payload(),
                "the payload is untouched"
            );
        }
    }
    relay.remove_source(SourceId(1));
    let _ = relay.stats();
});

/// One fixed starting instant, so every run sees the same relative times.
fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}
