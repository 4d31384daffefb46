//! The end of an answering machine's greeting: when to leave a message.
//!
//! Once a call is known to have reached a machine, its audio goes on
//! through [`GreetingEnd`] in 20 ms frames. A machine greets, then records
//! what follows, and says when it starts in one of two ways:
//!
//! - **a beep**: a pure tone (one frequency holds nearly all of a frame's
//!   energy) of at least `min_beep`. Its frequency is estimated from the
//!   frame's zero crossings and its share of the energy measured by three
//!   Goertzel probes around that estimate, so a frame costs a few hundred
//!   multiplications whatever the tone. Speech, even a sung vowel, spreads
//!   its energy over harmonics and never holds the share. The greeting is
//!   over when the beep stops.
//! - **silence**: `silence` of quiet after the last sound, for a machine
//!   that records without a beep. Quiet is measured against the line's noise
//!   floor ([`NoiseFloor`]), so a hiss under the greeting does not hold it open.
//!
//! Neither within `max_wait` (a greeting that never ends, a line left open)
//! is reported too, and the caller decides. Time is counted in samples, as
//! by the machine detector ([`super::amd`]), so the verdict depends on the
//! audio alone.

use std::time::{Duration, Instant};

use super::amd::{NoiseFloor, Timeline};
use super::tone::{goertzel_power, zero_crossing_frequency};
use super::G711;

/// Samples per analysis frame: 20 ms at 8 kHz.
const FRAME: usize = 160;
const RATE: u32 = 8000;
/// The share of a frame's energy at the beep's frequency that means the beep
/// is still in it: noise or silence after a beep hold far less.
const TAIL_SHARE: f64 = 0.1;

/// How a greeting was heard to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GreetingEnded {
    /// A beep ended: the machine records from now.
    Beep,
    /// Quiet followed the greeting long enough.
    Silence,
    /// Neither came in time.
    TimedOut,
}

/// The detector's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GreetingConfig {
    /// RMS level (16-bit PCM) above which a frame may be sound, not silence.
    pub silence_threshold: f64,
    /// How many times the noise floor's RMS a frame must pass to be sound.
    pub noise_margin: f64,
    /// How far back the noise floor looks for the line's quietest moment.
    pub noise_span: Duration,
    /// Quiet after the last sound that ends a greeting without a beep.
    pub silence: Duration,
    /// The shortest tone that is a beep.
    pub min_beep: Duration,
    /// The share of a frame's energy one frequency must hold to be a tone.
    pub tone_share: f64,
    /// The lowest and highest frequencies a beep may have.
    pub beep_hz: (f64, f64),
    /// How long to wait for the end at most.
    pub max_wait: Duration,
}

impl Default for GreetingConfig {
    fn default() -> Self {
        GreetingConfig {
            silence_threshold: 256.0,
            noise_margin: 3.0,
            noise_span: Duration::from_millis(1500),
            silence: Duration::from_millis(1500),
            min_beep: Duration::from_millis(120),
            tone_share: 0.7,
            beep_hz: (300.0, 2600.0),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Listens for the end of a machine's greeting; see the module docs.
#[derive(Debug, Clone)]
pub struct GreetingEnd {
    config: GreetingConfig,
    floor: NoiseFloor,
    frame: Vec<i16>,
    /// Milliseconds analysed, of quiet since the last sound, and of the
    /// current run of one tone, with its frequency.
    elapsed: u64,
    quiet: u64,
    tone: u64,
    tone_hz: f64,
    /// Set when a beep's last frame still held its tail: it ends with the next.
    beep_tail: bool,
    ended: Option<GreetingEnded>,
}

impl GreetingEnd {
    /// A detector with these thresholds.
    pub fn new(config: GreetingConfig) -> Self {
        GreetingEnd {
            config,
            floor: NoiseFloor::new(Duration::from_millis(20), config.noise_span),
            frame: Vec::with_capacity(FRAME),
            elapsed: 0,
            quiet: 0,
            tone: 0,
            tone_hz: 0.0,
            beep_tail: false,
            ended: None,
        }
    }

    /// Takes 8 kHz samples; returns how the greeting ended when they end it, once.
    pub fn push(&mut self, samples: &[i16]) -> Option<GreetingEnded> {
        if self.ended.is_some() {
            return None;
        }
        for &s in samples {
            self.frame.push(s);
            if self.frame.len() == FRAME {
                let ended = self.analyse();
                self.frame.clear();
                if ended.is_some() {
                    self.ended = ended;
                    return ended;
                }
            }
        }
        None
    }

    /// How the greeting ended, once it has.
    pub fn ended(&self) -> Option<GreetingEnded> {
        self.ended
    }

    fn analyse(&mut self) -> Option<GreetingEnded> {
        const STEP: u64 = 20;
        let ms = |d: Duration| d.as_millis() as u64;
        let c = self.config;
        self.elapsed += STEP;
        let mean_square = self
            .frame
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / FRAME as f64;
        let rms = mean_square.sqrt();
        let loud = rms > c.silence_threshold;
        let hz = match loud {
            true => pure_tone(&self.frame, c.beep_hz, c.tone_share),
            false => None,
        };
        // A tone is a beep, never the line's noise: it is sound, and the
        // floor does not learn from it.
        let sound = match hz {
            Some(_) => true,
            None => {
                let floor = self.floor.push(rms);
                loud && rms > c.noise_margin * floor
            }
        };
        let same_tone = match hz {
            Some(hz) => self.tone > 0 && (hz - self.tone_hz).abs() <= 50.0,
            None => false,
        };
        if self.beep_tail {
            return Some(GreetingEnded::Beep);
        }
        if self.tone >= ms(c.min_beep) && !same_tone {
            // A beep that stops inside this frame is still playing in it; a
            // message started now would overlap its last milliseconds.
            let share = 2.0 * goertzel_power(&self.frame, self.tone_hz, RATE)
                / (mean_square / (32768.0 * 32768.0)).max(f64::MIN_POSITIVE);
            if hz.is_none() && share >= TAIL_SHARE {
                self.beep_tail = true;
                return None;
            }
            return Some(GreetingEnded::Beep);
        }
        match hz {
            Some(hz) if same_tone => {
                self.tone += STEP;
                // Follow a tone that drifts a little.
                self.tone_hz = hz;
            }
            Some(hz) => {
                self.tone = STEP;
                self.tone_hz = hz;
            }
            None => self.tone = 0,
        }
        if sound {
            self.quiet = 0;
        } else {
            self.quiet += STEP;
            if self.quiet >= ms(c.silence) {
                return Some(GreetingEnded::Silence);
            }
        }
        if self.elapsed >= ms(c.max_wait) {
            return Some(GreetingEnded::TimedOut);
        }
        None
    }
}

/// The frequency of `samples` (8 kHz) when they are one tone between
/// `low` and `high` Hz that holds at least `share` of their energy.
///
/// The frequency is estimated from the zero crossings, then three Goertzel
/// probes around the estimate measure its share, so the cost is a few
/// hundred multiplications whatever the tone.
pub(crate) fn pure_tone(samples: &[i16], (low, high): (f64, f64), share: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    // Zero crossings resolve rate / 2n Hz: probe half of that either side too.
    let probe = f64::from(RATE) / (4.0 * samples.len() as f64);
    let estimate = zero_crossing_frequency(samples, RATE);
    if !(low - 2.0 * probe..=high + 2.0 * probe).contains(&estimate) {
        return None;
    }
    let normalised = samples
        .iter()
        .map(|&s| (f64::from(s) / 32768.0).powi(2))
        .sum::<f64>()
        / samples.len() as f64;
    let (hz, power) = [estimate - probe, estimate, estimate + probe]
        .into_iter()
        .map(|f| (f, goertzel_power(samples, f, RATE)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    // A sine's Goertzel power is a quarter of its peak squared, half its mean square.
    (2.0 * power / normalised >= share).then_some(hz)
}

/// The greeting's end on a live call: G.711 payloads in, one answer out,
/// and `TimedOut` if the far end sends too little audio by the deadline.
#[derive(Debug, Clone)]
pub struct GreetingWatch {
    detector: GreetingEnd,
    timeline: Timeline,
    deadline: Instant,
}

impl GreetingWatch {
    /// Starts listening at `now`.
    pub fn new(config: GreetingConfig, now: Instant) -> Self {
        GreetingWatch {
            detector: GreetingEnd::new(config),
            timeline: Timeline::new(config.max_wait),
            deadline: now + config.max_wait + Duration::from_secs(1),
        }
    }

    /// Takes one packet's G.711 payload and RTP timestamp; how the greeting
    /// ended when this packet ends it. Gaps in the timestamps are heard as
    /// the silence they stand for; late packets are ignored.
    pub fn push_g711(
        &mut self,
        codec: G711,
        payload: &[u8],
        timestamp: u32,
    ) -> Option<GreetingEnded> {
        let detector = &mut self.detector;
        self.timeline
            .feed(codec, payload, timestamp, |pcm| detector.push(pcm))
    }

    /// When [`GreetingWatch::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    /// `TimedOut` once the deadline has passed without an end heard.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<GreetingEnded> {
        (now >= self.deadline && self.detector.ended().is_none()).then_some(GreetingEnded::TimedOut)
    }
}

#[cfg(test)]
#[path = "greeting_tests.rs"]
mod tests;
