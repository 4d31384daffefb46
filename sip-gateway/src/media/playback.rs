//! Playing a recorded message into a leg: WAV loading and a sans-IO player
//! that emits one 20 ms G.711 packet per tick.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::g711::G711;
use super::rtp::{RtpBuilder, RtpHeader, FIXED_HEADER_LEN};

/// Samples per 20 ms packet at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Time between packets.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(20);
/// Packets a late tick may catch up at once before the schedule jumps ahead.
const MAX_BURST: usize = 3;

/// Reasons a WAV file cannot be played.
#[derive(Debug, Error)]
pub enum PlaybackError {
    /// The file could not be opened or is not a WAV file.
    #[error("cannot read WAV: {0}")]
    Wav(#[from] hound::Error),
    /// The file is not mono.
    #[error("WAV has {0} channels; only mono is supported")]
    Channels(u16),
    /// The samples are not 16-bit integers.
    #[error("WAV has {bits}-bit {format} samples; only 16-bit integer is supported")]
    SampleFormat {
        /// Bits per sample.
        bits: u16,
        /// "integer" or "float".
        format: &'static str,
    },
    /// The sample rate is not 8, 16 or 48 kHz.
    #[error("WAV sample rate {0} Hz is not supported; use 8000, 16000 or 48000")]
    SampleRate(u32),
    /// The file holds no audio.
    #[error("WAV file holds no audio")]
    Empty,
}

/// Loads a mono 16-bit WAV file as 8 kHz samples.
pub fn load_wav(path: &Path) -> Result<Arc<[i16]>, PlaybackError> {
    let file = std::fs::File::open(path).map_err(hound::Error::IoError)?;
    Ok(read_wav(std::io::BufReader::new(file))?.into())
}

/// Reads a mono 16-bit WAV stream as 8 kHz samples, downsampling 16 and 48 kHz.
pub fn read_wav<R: Read>(reader: R) -> Result<Vec<i16>, PlaybackError> {
    let mut wav = hound::WavReader::new(reader)?;
    let spec = wav.spec();
    if spec.channels != 1 {
        return Err(PlaybackError::Channels(spec.channels));
    }
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(PlaybackError::SampleFormat {
            bits: spec.bits_per_sample,
            format: match spec.sample_format {
                hound::SampleFormat::Int => "integer",
                hound::SampleFormat::Float => "float",
            },
        });
    }
    let factor = match spec.sample_rate {
        8000 => 1,
        16000 => 2,
        48000 => 6,
        other => return Err(PlaybackError::SampleRate(other)),
    };
    let samples = wav.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
    if samples.is_empty() {
        return Err(PlaybackError::Empty);
    }
    Ok(if factor == 1 {
        samples
    } else {
        decimate(&samples, factor)
    })
}

/// Settings of one playback.
#[derive(Debug, Clone, Copy)]
pub struct PlayerConfig {
    /// Codec to encode with.
    pub codec: G711,
    /// Payload type to send; normally the codec's static one.
    pub payload_type: u8,
    /// SSRC of the generated packets.
    pub ssrc: u32,
    /// Sequence number of the first packet.
    pub initial_sequence: u16,
    /// Timestamp of the first packet.
    pub initial_timestamp: u32,
    /// Start again from the beginning instead of finishing.
    pub looping: bool,
}

/// Something the shell must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerEvent {
    /// The last packet of the message has been produced.
    Finished,
}

/// One generated RTP packet, held inline so playback needs no allocation.
#[derive(Clone, Copy)]
pub struct RtpFrame {
    bytes: [u8; FIXED_HEADER_LEN + FRAME_SAMPLES],
}

impl RtpFrame {
    /// Returns the packet bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for RtpFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpFrame").finish_non_exhaustive()
    }
}

/// Produces the RTP packets of a message, one per 20 ms.
#[derive(Debug)]
pub struct Player {
    samples: Arc<[i16]>,
    config: PlayerConfig,
    position: usize,
    sequence: u16,
    timestamp: u32,
    next_at: Instant,
    done: bool,
    out: VecDeque<RtpFrame>,
    events: VecDeque<PlayerEvent>,
}

impl Player {
    /// Creates a player whose first packet is due at `now`.
    pub fn new(samples: Arc<[i16]>, config: PlayerConfig, now: Instant) -> Self {
        let done = samples.is_empty();
        Self {
            samples,
            config,
            position: 0,
            sequence: config.initial_sequence,
            timestamp: config.initial_timestamp,
            next_at: now,
            done,
            out: VecDeque::new(),
            events: if done {
                VecDeque::from([PlayerEvent::Finished])
            } else {
                VecDeque::new()
            },
        }
    }

    /// Produces the packets that are due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut produced = 0;
        while !self.done && self.next_at <= now {
            if produced == MAX_BURST {
                // The shell fell behind; rather than a burst, skip ahead and let
                // the timestamp gap tell the receiver how long the pause was.
                let behind = now.saturating_duration_since(self.next_at);
                let frames = behind.as_micros() / FRAME_INTERVAL.as_micros() + 1;
                let frames = u32::try_from(frames).unwrap_or(u32::MAX / 160);
                self.next_at += FRAME_INTERVAL * frames;
                self.timestamp = self.timestamp.wrapping_add(160 * frames);
                break;
            }
            self.produce();
            produced += 1;
        }
    }

    /// Returns the next packet to send.
    pub fn poll_transmit(&mut self) -> Option<RtpFrame> {
        self.out.pop_front()
    }

    /// Returns when the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.done).then_some(self.next_at)
    }

    /// Returns the next event.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }

    /// Stops playback early; no `Finished` event follows.
    pub fn stop(&mut self) {
        self.done = true;
    }

    fn produce(&mut self) {
        let mut payload = [self.config.codec.silence(); FRAME_SAMPLES];
        let end = (self.position + FRAME_SAMPLES).min(self.samples.len());
        let chunk = &self.samples[self.position..end];
        self.config.codec.encode(chunk, &mut payload);
        let mut frame = RtpFrame {
            bytes: [0; FIXED_HEADER_LEN + FRAME_SAMPLES],
        };
        let builder = RtpBuilder {
            header: RtpHeader {
                marker: self.position == 0 && self.sequence == self.config.initial_sequence,
                payload_type: self.config.payload_type,
                sequence: self.sequence,
                timestamp: self.timestamp,
                ssrc: self.config.ssrc,
            },
            payload: &payload,
            ..Default::default()
        };
        // The frame buffer is exactly header plus one payload, so this fits.
        let _ = builder.write(&mut frame.bytes);
        self.out.push_back(frame);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        self.next_at += FRAME_INTERVAL;
        self.position = end;
        if self.position >= self.samples.len() {
            if self.config.looping {
                self.position = 0;
            } else {
                self.done = true;
                self.events.push_back(PlayerEvent::Finished);
            }
        }
    }
}

/// Downsamples by `factor` after a windowed-sinc low-pass at 3.4 kHz (output rate 8 kHz).
fn decimate(samples: &[i16], factor: usize) -> Vec<i16> {
    let taps = lowpass(factor);
    let half = taps.len() / 2;
    (0..samples.len() / factor)
        .map(|k| {
            let centre = k * factor;
            let acc: f32 = taps
                .iter()
                .enumerate()
                .filter_map(|(j, h)| {
                    let i = (centre + j).checked_sub(half)?;
                    samples.get(i).map(|&x| h * f32::from(x))
                })
                .sum();
            // Clamped to the i16 range first, so the cast cannot truncate.
            acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
        })
        .collect()
}

fn lowpass(factor: usize) -> Vec<f32> {
    use std::f32::consts::PI;
    let len = 16 * factor + 1;
    let centre = (len / 2) as f32;
    let cutoff = 3400.0 / (8000.0 * factor as f32); // cycles per input sample
    let mut taps: Vec<f32> = (0..len)
        .map(|n| {
            let x = n as f32 - centre;
            let sinc = if x == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * PI * cutoff * x).sin() / (PI * x)
            };
            let hamming = 0.54 - 0.46 * (2.0 * PI * n as f32 / (len - 1) as f32).cos();
            sinc * hamming
        })
        .collect();
    let sum: f32 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

#[cfg(test)]
#[path = "playback_tests.rs"]
mod tests;
