use super::*;
use crate::media::rtp::RtpBuilder;
use proptest::prelude::*;

const MS20: Duration = Duration::from_millis(20);
const A: SourceId = SourceId(1);
const B: SourceId = SourceId(2);

fn packet(pt: u8, sequence: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    RtpBuilder {
        header: RtpHeader {
            marker: false,
            payload_type: pt,
            sequence,
            timestamp,
            ssrc,
        },
        payload: &[0xff; 160],
        ..Default::default()
    }
    .to_vec()
}

fn relay() -> Relay {
    Relay::new(RelayConfig::narrowband(0xabcd, 65534, u32::MAX - 200))
}

#[test]
fn rewrites_ssrc_and_keeps_sequence_and_timestamps_continuous_across_wrap() {
    let mut r = relay();
    let t0 = Instant::now();
    let mut out = Vec::new();
    for i in 0..5u16 {
        let mut p = packet(0, 100 + i, 5000 + 160 * u32::from(i), 7);
        out.push(r.relay(A, &mut p, t0 + MS20 * u32::from(i)).unwrap());
        assert_eq!(RtpPacket::parse(&p).unwrap().header(), *out.last().unwrap());
    }
    let seqs: Vec<u16> = out.iter().map(|h| h.sequence).collect();
    assert_eq!(seqs, vec![65534, 65535, 0, 1, 2]);
    assert_eq!(out[0].timestamp, u32::MAX - 200);
    assert_eq!(out[2].timestamp, (u32::MAX - 200).wrapping_add(320));
    assert!(out.iter().all(|h| h.ssrc == 0xabcd));
    assert!(out[0].marker && out[1..].iter().all(|h| !h.marker));
}

#[test]
fn source_change_continues_the_stream_and_sets_the_marker() {
    let mut r = relay();
    let t0 = Instant::now();
    let mut p = packet(0, 10, 1000, 7);
    let first = r.relay(A, &mut p, t0).unwrap();
    let mut p = packet(0, 11, 1160, 7);
    let second = r.relay(A, &mut p, t0 + MS20).unwrap();
    // Leg B arrives 100 ms after A's last packet, with unrelated numbering.
    let mut p = packet(0, 40000, 9_999_999, 99);
    let third = r.relay(B, &mut p, t0 + MS20 * 6).unwrap();
    assert_eq!(second.sequence, first.sequence.wrapping_add(1));
    assert_eq!(third.sequence, second.sequence.wrapping_add(1));
    assert_eq!(third.timestamp, second.timestamp.wrapping_add(800));
    assert!(third.marker);
    // Straight after a change the timestamp still advances by a whole frame.
    let mut p = packet(0, 500, 77, 5);
    let fourth = r.relay(A, &mut p, t0 + MS20 * 6).unwrap();
    assert_eq!(fourth.timestamp, third.timestamp.wrapping_add(160));
    assert_eq!(r.stats().source_changes, 3);
}

#[test]
fn a_source_change_after_a_key_press_starts_after_the_event() {
    let mut r = relay();
    let t0 = Instant::now();
    let mut p = packet(0, 1, 0, 7);
    let audio = r.relay(A, &mut p, t0).unwrap();
    // A 200 ms event: eleven packets sharing the start timestamp 160.
    for i in 0..11u16 {
        let mut p = packet(101, 2 + i, 160, 7);
        r.relay(A, &mut p, t0 + MS20 * u32::from(i + 1)).unwrap();
    }
    let mut p = packet(0, 9000, 0, 8);
    let next = r.relay(B, &mut p, t0 + MS20 * 12).unwrap();
    assert_eq!(next.timestamp, audio.timestamp.wrapping_add(160 + 160 * 11));
}

#[test]
fn losses_stay_visible_and_late_packets_map_into_place() {
    let mut r = relay();
    let t0 = Instant::now();
    let send = |r: &mut Relay, seq: u16| {
        let mut p = packet(0, seq, u32::from(seq) * 160, 7);
        r.relay(A, &mut p, t0)
    };
    let base = send(&mut r, 10).unwrap().sequence;
    assert_eq!(send(&mut r, 13).unwrap().sequence, base.wrapping_add(3));
    assert_eq!(send(&mut r, 12).unwrap().sequence, base.wrapping_add(2));
    assert_eq!(send(&mut r, 13), Err(RelayError::Stale));
    // Before this mapping's first packet: would collide with an earlier source.
    assert_eq!(send(&mut r, 9), Err(RelayError::Stale));
    assert_eq!(send(&mut r, 14).unwrap().sequence, base.wrapping_add(4));
    assert_eq!(r.stats().stale, 2);
}

#[test]
fn a_sequence_restart_in_the_same_source_is_a_new_mapping() {
    let mut r = relay();
    let t0 = Instant::now();
    let mut p = packet(0, 1000, 0, 7);
    let a = r.relay(A, &mut p, t0).unwrap();
    let mut p = packet(0, 30000, 0, 7);
    let b = r.relay(A, &mut p, t0 + MS20).unwrap();
    assert_eq!(b.sequence, a.sequence.wrapping_add(1));
    assert!(b.marker);
}

#[test]
fn payload_types_are_mapped_per_source() {
    let mut r = relay();
    let mut map = PayloadTypeMap::default();
    map.insert(101, 96);
    r.set_payload_map(A, map);
    let t0 = Instant::now();
    let mut p = packet(101, 1, 0, 7);
    assert_eq!(r.relay(A, &mut p, t0).unwrap().payload_type, 96);
    let mut p = packet(0, 2, 160, 7);
    assert_eq!(r.relay(A, &mut p, t0).unwrap().payload_type, 0);
    let mut p = packet(101, 1, 0, 8);
    assert_eq!(r.relay(B, &mut p, t0).unwrap().payload_type, 101);
}

#[test]
fn malformed_packets_are_counted_not_forwarded() {
    let mut r = relay();
    let mut junk = [0u8; 8];
    assert!(matches!(
        r.relay(A, &mut junk, Instant::now()),
        Err(RelayError::Malformed(_))
    ));
    assert_eq!(junk, [0; 8]);
    assert_eq!(r.stats().malformed, 1);
}

#[derive(Debug, Clone)]
enum Op {
    /// Switch to a source with fresh numbering.
    Switch { source: u8, seq: u16, ts: u32 },
    /// Send `count` packets from the current source, losing those whose bit is set.
    Send { count: u8, lost: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, any::<u16>(), any::<u32>()).prop_map(|(source, seq, ts)| Op::Switch {
            source,
            seq,
            ts
        }),
        (1u8..30, any::<u32>()).prop_map(|(count, lost)| Op::Send { count, lost }),
    ]
}

proptest! {
    #[test]
    fn output_is_continuous_for_any_switches_and_losses(
        start_seq: u16, start_ts: u32, ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut r = Relay::new(RelayConfig::narrowband(42, start_seq, start_ts));
        let t0 = Instant::now();
        let mut now = t0;
        let (mut source, mut ssrc, mut seq, mut ts) = (0u8, 0u32, 0u16, 0u32);
        let mut prev: Option<RtpHeader> = None;
        let mut lost_since_prev = 0u16;
        let mut switched = true;
        for op in ops {
            match op {
                Op::Switch { source: s, seq: q, ts: t } => {
                    source = s;
                    ssrc = ssrc.wrapping_add(1);
                    seq = q;
                    ts = t;
                    switched = true;
                }
                Op::Send { count, lost } => for i in 0..count {
                    now += MS20;
                    let mut p = packet(0, seq, ts, ssrc);
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(160);
                    if lost & (1 << (i % 32)) != 0 && !switched {
                        lost_since_prev += 1;
                        continue;
                    }
                    let out = r.relay(SourceId(source.into()), &mut p, now).unwrap();
                    prop_assert_eq!(out.ssrc, 42);
                    let Some(before) = prev else {
                        prop_assert_eq!(out.sequence, start_seq);
                        prop_assert_eq!(out.timestamp, start_ts);
                        prev = Some(out);
                        switched = false;
                        continue;
                    };
                    let seq_step = out.sequence.wrapping_sub(before.sequence);
                    let ts_step = out.timestamp.wrapping_sub(before.timestamp);
                    if switched {
                        prop_assert!(out.marker);
                        prop_assert_eq!(seq_step, 1);
                        prop_assert!((160..=160 * 31).contains(&ts_step), "ts step {}", ts_step);
                    } else {
                        prop_assert!(!out.marker);
                        prop_assert_eq!(seq_step, 1 + lost_since_prev);
                        prop_assert_eq!(ts_step, 160 * (1 + u32::from(lost_since_prev)));
                    }
                    prev = Some(out);
                    lost_since_prev = 0;
                    switched = false;
                }
            }
        }
    }
}
