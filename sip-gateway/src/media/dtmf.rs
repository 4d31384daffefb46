//! DTMF as RFC 4733 telephone events: payload parsing, a detector that
//! reports one press per key, and an encoder for sending a digit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

/// How long a press may go without packets before it counts as ended.
pub const DEFAULT_END_TIMEOUT: Duration = Duration::from_millis(250);

/// Reasons a telephone-event payload is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// The payload is shorter than the 4-byte event block.
    #[error("telephone-event payload of {0} bytes is too short")]
    TooShort(usize),
    /// The character is not a DTMF digit.
    #[error("{0:?} is not a DTMF digit")]
    NotADigit(char),
}

/// One telephone-event payload block (RFC 4733 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0..=15 are the DTMF digits.
    pub event: u8,
    /// End bit: set on the final packets of an event.
    pub end: bool,
    /// Volume in -dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(Self {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::TooShort(payload.len())),
        }
    }

    /// Serialises the block.
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }

    /// Returns the DTMF digit for this event, if it is one.
    pub fn digit(&self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// One detected key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtmf {
    /// One of `0123456789*#ABCD`.
    pub digit: char,
    /// How long the key was held.
    pub duration: Duration,
}

/// Turns a stream of telephone-event packets into one [`Dtmf`] per press.
#[derive(Debug)]
pub struct DtmfDetector {
    clock_rate: u32,
    end_timeout: Duration,
    current: Option<Press>,
    last_ended: Option<u32>,
    events: VecDeque<Dtmf>,
}

#[derive(Debug, Clone, Copy)]
struct Press {
    timestamp: u32,
    digit: char,
    duration: u16,
    last_seen: Instant,
}

impl DtmfDetector {
    /// Creates a detector for a stream with the given RTP clock rate.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            end_timeout: DEFAULT_END_TIMEOUT,
            current: None,
            last_ended: None,
            events: VecDeque::new(),
        }
    }

    /// Sets how long a press may go silent before it counts as ended.
    pub fn with_end_timeout(mut self, timeout: Duration) -> Self {
        self.end_timeout = timeout;
        self
    }

    /// Feeds the RTP timestamp and payload of one telephone-event packet.
    pub fn handle_packet(
        &mut self,
        timestamp: u32,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(digit) = ev.digit() else {
            return Ok(());
        };
        // All packets of one press share its start timestamp, so a repeat of
        // the last ended one is a redundant end packet.
        if self.last_ended == Some(timestamp) {
            return Ok(());
        }
        if let Some(press) = self.current {
            if press.timestamp != timestamp {
                if (timestamp.wrapping_sub(press.timestamp) as i32) < 0 {
                    return Ok(()); // a late packet of an older press
                }
                // The end packets of the previous press were all lost.
                self.end_current();
            }
        }
        let press = self.current.get_or_insert(Press {
            timestamp,
            digit,
            duration: 0,
            last_seen: now,
        });
        press.duration = press.duration.max(ev.duration);
        press.last_seen = now;
        if ev.end {
            self.end_current();
        }
        Ok(())
    }

    /// Ends a press whose packets stopped arriving without an end packet.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.end_current();
        }
    }

    /// Returns when a silent press will be ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|p| p.last_seen + self.end_timeout)
    }

    /// Returns the next detected press.
    pub fn poll_event(&mut self) -> Option<Dtmf> {
        self.events.pop_front()
    }

    fn end_current(&mut self) {
        if let Some(press) = self.current.take() {
            self.last_ended = Some(press.timestamp);
            let micros = u64::from(press.duration) * 1_000_000 / u64::from(self.clock_rate);
            self.events.push_back(Dtmf {
                digit: press.digit,
                duration: Duration::from_micros(micros),
            });
        }
    }
}

/// One payload to send, with the marker bit its RTP packet must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Set on the first packet of the event.
    pub marker: bool,
    /// The telephone-event payload.
    pub payload: [u8; 4],
}

/// Produces the payloads for sending `digit` for `duration`: one per
/// `interval`, then three end packets. The caller sends them one per
/// interval, all with the RTP timestamp of the event's start.
pub fn encode_digit(
    digit: char,
    duration: Duration,
    interval: Duration,
    clock_rate: u32,
    volume: u8,
) -> Result<Vec<DtmfPacket>, DtmfError> {
    let event = digit_to_event(digit).ok_or(DtmfError::NotADigit(digit))?;
    let units = |d: Duration| {
        let u = d.as_micros() * u128::from(clock_rate) / 1_000_000;
        u16::try_from(u).unwrap_or(u16::MAX)
    };
    let step = units(interval).max(1);
    let total = units(duration).max(step);
    let block = |duration, end| TelephoneEvent {
        event,
        end,
        volume: volume.min(63),
        duration,
    };
    let mut packets = Vec::new();
    let mut elapsed = step;
    while elapsed < total {
        packets.push(DtmfPacket {
            marker: packets.is_empty(),
            payload: block(elapsed, false).to_bytes(),
        });
        elapsed = elapsed.saturating_add(step);
    }
    for _ in 0..3 {
        packets.push(DtmfPacket {
            marker: packets.is_empty(),
            payload: block(total, true).to_bytes(),
        });
    }
    Ok(packets)
}

/// Returns the DTMF digit for an RFC 4733 event code.
pub fn event_to_digit(event: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(event))
        .map(|&b| char::from(b))
}

/// Returns the RFC 4733 event code for a DTMF digit.
pub fn digit_to_event(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    "0123456789*#ABCD"
        .find(d)
        .and_then(|i| u8::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    fn feed(det: &mut DtmfDetector, ts: u32, packets: &[DtmfPacket], start: Instant) {
        for (i, p) in packets.iter().enumerate() {
            det.handle_packet(ts, &p.payload, start + MS20 * i as u32)
                .unwrap();
        }
    }

    #[test]
    fn parses_a_known_payload() {
        let ev = TelephoneEvent::parse(&[11, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.digit(), Some('#'));
        assert_eq!(ev.to_bytes(), [11, 0x8a, 0x03, 0x20]);
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
    }

    #[test]
    fn digit_codes_round_trip() {
        for d in "0123456789*#ABCD".chars() {
            assert_eq!(event_to_digit(digit_to_event(d).unwrap()), Some(d));
        }
        assert_eq!(digit_to_event('a'), Some(12));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn encoder_output_is_detected_once_per_press() {
        let t0 = Instant::now();
        let mut det = DtmfDetector::new(8000);
        let five = encode_digit('5', Duration::from_millis(100), MS20, 8000, 10).unwrap();
        assert!(five[0].marker && five[1..].iter().all(|p| !p.marker));
        assert_eq!(five.len(), 4 + 3);
        feed(&mut det, 1000, &five, t0);
        // A second press of the same key has a new start timestamp.
        feed(&mut det, 3000, &five, t0 + Duration::from_secs(1));
        let hash = encode_digit('#', Duration::from_millis(60), MS20, 8000, 10).unwrap();
        feed(&mut det, 5000, &hash, t0 + Duration::from_secs(2));
        let expected = |digit, ms| Dtmf {
            digit,
            duration: Duration::from_millis(ms),
        };
        assert_eq!(det.poll_event(), Some(expected('5', 100)));
        assert_eq!(det.poll_event(), Some(expected('5', 100)));
        assert_eq!(det.poll_event(), Some(expected('#', 60)));
        assert_eq!(det.poll_event(), None);
        assert_eq!(det.poll_timeout(), None);
    }

    #[test]
    fn lost_end_packets_end_the_press_by_timeout_or_next_press() {
        let t0 = Instant::now();
        let mut det = DtmfDetector::new(8000);
        let one = encode_digit('1', Duration::from_millis(80), MS20, 8000, 10).unwrap();
        feed(&mut det, 0, &one[..3], t0);
        assert_eq!(det.poll_event(), None);
        let deadline = det.poll_timeout().unwrap();
        assert_eq!(deadline, t0 + MS20 * 2 + DEFAULT_END_TIMEOUT);
        det.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(det.poll_event(), None);
        det.handle_timeout(deadline);
        assert_eq!(det.poll_event().map(|d| d.digit), Some('1'));
        // A late end packet of the timed-out press is not a new press.
        det.handle_packet(0, &one[5].payload, deadline).unwrap();
        assert_eq!(det.poll_event(), None);

        feed(&mut det, 800, &one[..2], t0);
        feed(&mut det, 1600, &one, t0);
        let digits: Vec<_> = std::iter::from_fn(|| det.poll_event()).collect();
        assert_eq!(digits.len(), 2);
        assert_eq!(digits[0].duration, Duration::from_millis(40));
        assert_eq!(digits[1].duration, Duration::from_millis(80));
    }

    proptest::proptest! {
        #[test]
        fn one_event_per_press_despite_repeats_and_lost_packets(
            presses in proptest::collection::vec(
                (0u8..16, 2u64..20, proptest::collection::vec(0u8..4, 0..30)),
                1..10,
            ),
        ) {
            let t0 = Instant::now();
            let mut det = DtmfDetector::new(8000);
            let mut now = t0;
            let mut expected = Vec::new();
            for (k, (event, frames, fate)) in presses.iter().enumerate() {
                let digit = event_to_digit(*event).unwrap();
                expected.push(digit);
                let duration = MS20 * *frames as u32;
                let packets = encode_digit(digit, duration, MS20, 8000, 10).unwrap();
                for (i, p) in packets.iter().enumerate() {
                    now += MS20;
                    // 0: lost, 1: once, 2 and 3: repeated.
                    let copies = fate.get(i).copied().unwrap_or(1);
                    for _ in 0..copies {
                        det.handle_packet(k as u32 * 80_000, &p.payload, now).unwrap();
                    }
                }
                now += Duration::from_secs(1);
                det.handle_timeout(now);
            }
            let got: Vec<char> = std::iter::from_fn(|| det.poll_event()).map(|d| d.digit).collect();
            // A press whose every packet was lost cannot be seen.
            let seen: Vec<char> = presses
                .iter()
                .zip(&expected)
                .filter(|((_, frames, fate), _)| {
                    let n = *frames as usize + 2;
                    (0..n).any(|i| fate.get(i).copied().unwrap_or(1) > 0)
                })
                .map(|(_, d)| *d)
                .collect();
            proptest::prop_assert_eq!(got, seen);
        }
    }

    #[test]
    fn ignores_flash_and_rejects_bad_digits() {
        let t0 = Instant::now();
        let mut det = DtmfDetector::new(8000);
        det.handle_packet(0, &[16, 0x80, 0, 160], t0).unwrap();
        assert_eq!(det.poll_event(), None);
        assert_eq!(
            encode_digit('x', MS20, MS20, 8000, 10),
            Err(DtmfError::NotADigit('x'))
        );
    }
}
