//! Sends DTMF digits into a call: as RFC 4733 telephone events when the far end
//! negotiated them, otherwise as in-band tones in the G.711 stream.
//!
//! One packet goes out every 20 ms. A digit is ~100 ms of event (or tone), then
//! a gap of silence before the next. Events follow RFC 4733 section 2.5: every
//! packet of one digit carries the timestamp of its start, the first has the
//! marker bit, the duration grows with each packet, and the final one, with
//! the end bit, is sent three times. Audio packets fill the gaps, so the
//! stream's timestamps keep pace with the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::dtmf::{digit_to_event, encode_digit, DtmfError, DtmfPacket};
use super::rtp::{RtpBuilder, RtpHeader};
use super::tone::ToneGenerator;
use super::G711;

/// The keys a digit string may hold.
pub const DTMF_KEYS: &str = "0123456789*#ABCD";

const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: usize = 160;
/// Peak of each of the two in-band tones, about -13 dBFS, so the pair stays clear of clipping.
const TONE_PEAK: i16 = 7000;
/// Volume of telephone events, in -dBm0.
const EVENT_VOLUME: u8 = 10;

/// How digits reach the far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfMode {
    /// RFC 4733 telephone events with this payload type.
    Events {
        /// The payload type the far end gave telephone-event.
        payload_type: u8,
    },
    /// Row and column tones mixed into the audio.
    InBand,
}

/// Settings of one sender.
#[derive(Debug, Clone, Copy)]
pub struct DtmfSenderConfig {
    /// How digits are sent.
    pub mode: DtmfMode,
    /// The call's audio codec, for tones and gaps.
    pub codec: G711,
    /// SSRC of the generated packets.
    pub ssrc: u32,
    /// Sequence number of the first packet.
    pub initial_sequence: u16,
    /// Timestamp of the first packet.
    pub initial_timestamp: u32,
    /// How long each digit sounds.
    pub tone: Duration,
    /// Silence after each digit.
    pub gap: Duration,
}

impl DtmfSenderConfig {
    /// Returns settings with 100 ms digits and 80 ms gaps.
    pub fn new(mode: DtmfMode, codec: G711, ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        Self {
            mode,
            codec,
            ssrc,
            initial_sequence: sequence,
            initial_timestamp: timestamp,
            tone: Duration::from_millis(100),
            gap: Duration::from_millis(80),
        }
    }
}

/// One generated packet, and whether it carries audio (as opposed to a telephone event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfFrame {
    /// The RTP packet.
    pub bytes: Vec<u8>,
    /// True for G.711 audio (tones and gaps), false for telephone events.
    pub audio: bool,
}

/// Produces the packets for a queue of digits, one per 20 ms.
#[derive(Debug)]
pub struct DtmfSender {
    config: DtmfSenderConfig,
    queue: VecDeque<char>,
    /// Packets still to send for the digit in progress, with its gap.
    current: VecDeque<Step>,
    sequence: u16,
    timestamp: u32,
    next_at: Instant,
    out: VecDeque<DtmfFrame>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// A telephone-event packet, stamped with the digit's start.
    Event { packet: DtmfPacket, start: u32 },
    /// A frame of the digit's two tones.
    Tone {
        row: f64,
        column: f64,
        offset: usize,
    },
    /// A frame of silence.
    Gap,
}

impl DtmfSender {
    /// Creates an idle sender whose first packet, once digits are queued, is due at `now`.
    pub fn new(config: DtmfSenderConfig, now: Instant) -> Self {
        Self {
            config,
            queue: VecDeque::new(),
            current: VecDeque::new(),
            sequence: config.initial_sequence,
            timestamp: config.initial_timestamp,
            next_at: now,
            out: VecDeque::new(),
        }
    }

    /// Queues digits after any still being sent; refuses the whole string if one key is not DTMF.
    pub fn push(&mut self, digits: &str, now: Instant) -> Result<(), DtmfError> {
        if let Some(bad) = digits.chars().find(|c| !is_key(*c)) {
            return Err(DtmfError::NotADigit(bad));
        }
        if self.is_idle() {
            self.next_at = self.next_at.max(now);
        }
        self.queue
            .extend(digits.chars().map(|c| c.to_ascii_uppercase()));
        Ok(())
    }

    /// Returns whether every queued digit has been sent.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_empty()
    }

    /// Produces the packets due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.next_at <= now {
            if self.current.is_empty() && !self.start_next_digit() {
                return;
            }
            let Some(step) = self.current.pop_front() else {
                return;
            };
            let frame = self.build(step);
            self.out.push_back(frame);
            self.sequence = self.sequence.wrapping_add(1);
            self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
            self.next_at += FRAME;
        }
    }

    /// Returns the next packet to send.
    pub fn poll_transmit(&mut self) -> Option<DtmfFrame> {
        self.out.pop_front()
    }

    /// Returns when the next packet is due, while digits remain.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_idle()).then_some(self.next_at)
    }

    /// Plans the packets of the next queued digit; false when none is left.
    fn start_next_digit(&mut self) -> bool {
        let Some(digit) = self.queue.pop_front() else {
            return false;
        };
        let gap_frames = frames(self.config.gap);
        match self.config.mode {
            DtmfMode::Events { .. } => {
                // The digit was checked when queued, so encoding cannot fail.
                let packets = encode_digit(digit, self.config.tone, FRAME, 8000, EVENT_VOLUME)
                    .unwrap_or_default();
                let start = self.timestamp;
                self.current.extend(
                    packets
                        .into_iter()
                        .map(|packet| Step::Event { packet, start }),
                );
            }
            DtmfMode::InBand => {
                let Some((row, column)) = frequencies(digit) else {
                    return true;
                };
                let steps = (0..frames(self.config.tone)).map(|i| Step::Tone {
                    row,
                    column,
                    offset: i * FRAME_SAMPLES,
                });
                self.current.extend(steps);
            }
        }
        self.current
            .extend(std::iter::repeat_n(Step::Gap, gap_frames));
        true
    }

    fn build(&self, step: Step) -> DtmfFrame {
        let codec = self.config.codec;
        let mut header = RtpHeader {
            marker: false,
            payload_type: codec.payload_type(),
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.config.ssrc,
        };
        let mut audio = [codec.silence(); FRAME_SAMPLES];
        let payload: &[u8] = match step {
            Step::Event { ref packet, start } => {
                if let DtmfMode::Events { payload_type } = self.config.mode {
                    header.payload_type = payload_type;
                }
                header.marker = packet.marker;
                header.timestamp = start;
                &packet.payload
            }
            Step::Tone {
                row,
                column,
                offset,
            } => {
                let pcm = dual_tone(row, column, offset);
                codec.encode(&pcm, &mut audio);
                &audio
            }
            Step::Gap => &audio,
        };
        let bytes = RtpBuilder {
            header,
            payload,
            ..RtpBuilder::default()
        }
        .to_vec();
        DtmfFrame {
            bytes,
            audio: !matches!(step, Step::Event { .. }),
        }
    }
}

/// Tells whether `c` is a DTMF key; letters may be either case.
pub fn is_key(c: char) -> bool {
    digit_to_event(c).is_some()
}

/// Returns the row and column frequencies of a key (ITU-T Q.23).
pub fn frequencies(digit: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const LAYOUT: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let key = digit.to_ascii_uppercase();
    LAYOUT.iter().zip(ROWS).find_map(|(keys, row)| {
        keys.chars()
            .position(|k| k == key)
            .map(|column| (row, COLUMNS[column]))
    })
}

/// Returns 20 ms of a key's two tones, `offset` samples into the digit.
fn dual_tone(row: f64, column: f64, offset: usize) -> [i16; FRAME_SAMPLES] {
    let mut low = ToneGenerator::new(row, TONE_PEAK, 8000);
    let mut high = ToneGenerator::new(column, TONE_PEAK, 8000);
    // Skipping ahead keeps the phase continuous across frames without keeping generators.
    let mut skip = vec![0i16; offset];
    low.fill(&mut skip);
    high.fill(&mut skip);
    let mut a = [0i16; FRAME_SAMPLES];
    let mut b = [0i16; FRAME_SAMPLES];
    low.fill(&mut a);
    high.fill(&mut b);
    std::array::from_fn(|i| a[i].saturating_add(b[i]))
}

fn frames(d: Duration) -> usize {
    usize::try_from(d.as_millis() / FRAME.as_millis()).unwrap_or(0)
}

#[cfg(test)]
#[path = "dtmf_sender_tests.rs"]
mod tests;
