use std::time::{Duration, Instant};

use super::*;
use crate::media::dtmf::{DtmfDetector, TelephoneEvent};
use crate::media::rtp::RtpPacket;
use crate::media::tone::goertzel_power;

const EVENT_PT: u8 = 101;

fn sender(mode: DtmfMode, now: Instant) -> DtmfSender {
    DtmfSender::new(
        DtmfSenderConfig::new(mode, G711::Pcmu, 7, 65_530, 1000),
        now,
    )
}

/// Runs the sender on a 20 ms clock until it is idle, returning every frame with its send time.
fn run(sender: &mut DtmfSender, start: Instant) -> Vec<(Instant, DtmfFrame)> {
    let mut out = Vec::new();
    let mut now = start;
    while let Some(due) = sender.poll_timeout() {
        now = now.max(due);
        sender.handle_timeout(now);
        out.extend(std::iter::from_fn(|| sender.poll_transmit()).map(|f| (now, f)));
        assert!(out.len() < 1000, "the sender never finishes");
    }
    out
}

#[test]
fn events_follow_rfc_4733_one_event_per_digit() {
    let t0 = Instant::now();
    let mut tx = sender(
        DtmfMode::Events {
            payload_type: EVENT_PT,
        },
        t0,
    );
    tx.push("1#", t0).unwrap();
    let frames = run(&mut tx, t0);
    let packets: Vec<_> = frames
        .iter()
        .map(|(_, f)| (RtpPacket::parse(&f.bytes).unwrap().header(), f))
        .collect();
    // Every packet takes the next sequence number, wrapping.
    for pair in packets.windows(2) {
        assert_eq!(pair[1].0.sequence, pair[0].0.sequence.wrapping_add(1));
    }
    let events: Vec<_> = packets
        .iter()
        .filter(|(h, _)| h.payload_type == EVENT_PT)
        .collect();
    assert_eq!(events.len(), 2 * 7, "4 updates and 3 ends per digit");
    for (digit, group) in events.chunks(7).enumerate() {
        let start = group[0].0.timestamp;
        let blocks: Vec<TelephoneEvent> = group
            .iter()
            .map(|(h, f)| {
                assert_eq!(h.timestamp, start, "one timestamp per event");
                assert!(!f.audio);
                let view = RtpPacket::parse(&f.bytes).unwrap();
                TelephoneEvent::parse(view.payload()).unwrap()
            })
            .collect();
        assert!(group[0].0.marker && group[1..].iter().all(|(h, _)| !h.marker));
        assert_eq!(blocks[0].event, [1, 11][digit]);
        let durations: Vec<u16> = blocks.iter().map(|b| b.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = blocks.iter().map(|b| b.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
    }
    // Between the digits, 80 ms of silence in the audio codec, stamped with the running clock.
    let gap: Vec<_> = packets[7..11].iter().collect();
    assert!(gap
        .iter()
        .all(|(h, f)| h.payload_type == 0 && f.audio && !h.marker));
    assert_eq!(gap[0].0.timestamp, packets[0].0.timestamp + 7 * 160);
    assert_eq!(packets[11].0.timestamp, packets[0].0.timestamp + 11 * 160);
    // Packets leave every 20 ms.
    let times: Vec<Instant> = frames.iter().map(|(t, _)| *t).collect();
    assert!(times
        .windows(2)
        .all(|w| w[1] - w[0] == Duration::from_millis(20)));

    let mut detector = DtmfDetector::new(8000);
    for (h, f) in &events {
        let view = RtpPacket::parse(&f.bytes).unwrap();
        detector
            .handle_packet(h.timestamp, view.payload(), t0)
            .unwrap();
    }
    let digits: String = std::iter::from_fn(|| detector.poll_event())
        .map(|d| d.digit)
        .collect();
    assert_eq!(digits, "1#");
}

#[test]
fn in_band_digits_are_the_row_and_column_tones_then_silence() {
    let t0 = Instant::now();
    let mut tx = sender(DtmfMode::InBand, t0);
    tx.push("5", t0).unwrap();
    let frames = run(&mut tx, t0);
    assert_eq!(frames.len(), 5 + 4);
    let decode = |f: &DtmfFrame| {
        let view = RtpPacket::parse(&f.bytes).unwrap();
        assert_eq!(view.payload_type(), 0);
        let mut pcm = vec![0; view.payload().len()];
        G711::Pcmu.decode(view.payload(), &mut pcm);
        pcm
    };
    let tone: Vec<i16> = frames[..5].iter().flat_map(|(_, f)| decode(f)).collect();
    for hz in [770.0, 1336.0] {
        assert!(goertzel_power(&tone, hz, 8000) > 0.005, "{hz} Hz");
    }
    for hz in [697.0, 852.0, 1209.0, 1477.0] {
        assert!(goertzel_power(&tone, hz, 8000) < 0.0005, "{hz} Hz");
    }
    let gap: Vec<i16> = frames[5..].iter().flat_map(|(_, f)| decode(f)).collect();
    assert!(gap.iter().all(|s| s.unsigned_abs() < 10));
}

#[test]
fn a_bad_key_refuses_the_whole_string() {
    let t0 = Instant::now();
    let mut tx = sender(DtmfMode::InBand, t0);
    assert_eq!(tx.push("12x3", t0), Err(DtmfError::NotADigit('x')));
    assert!(tx.is_idle());
    assert_eq!(tx.poll_timeout(), None);
    tx.push("d", t0).unwrap();
    assert!(!tx.is_idle());
}

#[test]
fn digits_queued_while_sending_follow_in_order() {
    let t0 = Instant::now();
    let mut tx = sender(
        DtmfMode::Events {
            payload_type: EVENT_PT,
        },
        t0,
    );
    tx.push("9", t0).unwrap();
    tx.handle_timeout(t0 + Duration::from_millis(40));
    tx.push("*0", t0 + Duration::from_millis(40)).unwrap();
    let mut frames: Vec<DtmfFrame> = std::iter::from_fn(|| tx.poll_transmit()).collect();
    frames.extend(run(&mut tx, t0).into_iter().map(|(_, f)| f));
    let firsts: Vec<u8> = frames
        .iter()
        .map(|f| RtpPacket::parse(&f.bytes).unwrap())
        .filter(|p| p.marker() && p.payload_type() == EVENT_PT)
        .map(|p| p.payload()[0])
        .collect();
    assert_eq!(firsts, [9, 10, 0]);
}

#[test]
fn every_key_has_its_frequencies() {
    assert_eq!(frequencies('1'), Some((697.0, 1209.0)));
    assert_eq!(frequencies('0'), Some((941.0, 1336.0)));
    assert_eq!(frequencies('#'), Some((941.0, 1477.0)));
    assert_eq!(frequencies('d'), Some((941.0, 1633.0)));
    assert_eq!(frequencies('x'), None);
    assert!(DTMF_KEYS
        .chars()
        .all(|k| frequencies(k).is_some() && is_key(k)));
}
