//! A simulated carrier: a SIP UAS on loopback that answers, rings out, is busy or plays an
//! answering machine by a configured mix, and plays audio over RTP (PCMU or PCMA).
//!
//! The demo and the benchmarks dial it; interop tests use sipp instead. [`uas`] holds the
//! signalling, built on the same transaction layer as the gateway; [`media`] the RTP side.
//! Tests can ask it to keep what callers send ([`Carrier::start_capture`]): their audio and
//! their RFC 4733 digits, to check what a customer would have heard. Benchmarks can ask it
//! to send frames that name their leg and index instead of audio ([`counter`]), to check a
//! recording for lost or repeated frames.

pub mod counter;
mod media;
pub mod pcap;
mod uas;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::media::amd::{spoken_words, voiced_words};
use crate::media::dtmf::TelephoneEvent;
use crate::media::playback::{load_wav, PlaybackError};
use crate::media::tone::sine;

/// How the carrier treats an incoming call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Rings, answers after the answer delay, and plays the audio.
    Answer,
    /// Answers with 486 Busy Here after the ring delay.
    Busy,
    /// Rings until the caller gives up.
    NoAnswer,
    /// Answers quickly, plays the audio as a greeting, then hangs up.
    Machine,
}

/// Percentages of each outcome; they are weights, so they need not add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mix {
    /// Weight of answered calls.
    pub answer: u32,
    /// Weight of busy calls.
    pub busy: u32,
    /// Weight of unanswered calls.
    pub no_answer: u32,
    /// Weight of answering machines.
    pub machine: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            answer: 60,
            busy: 10,
            no_answer: 20,
            machine: 10,
        }
    }
}

impl Mix {
    /// Returns a mix where every call has the same outcome.
    pub fn always(outcome: Outcome) -> Self {
        let mut mix = Mix {
            answer: 0,
            busy: 0,
            no_answer: 0,
            machine: 0,
        };
        match outcome {
            Outcome::Answer => mix.answer = 1,
            Outcome::Busy => mix.busy = 1,
            Outcome::NoAnswer => mix.no_answer = 1,
            Outcome::Machine => mix.machine = 1,
        }
        mix
    }

    /// Picks an outcome for a roll in `0..total` weight.
    fn pick(&self, roll: u32) -> Outcome {
        let weights = [
            (self.answer, Outcome::Answer),
            (self.busy, Outcome::Busy),
            (self.no_answer, Outcome::NoAnswer),
            (self.machine, Outcome::Machine),
        ];
        let mut left = roll;
        for (weight, outcome) in weights {
            if left < weight {
                return outcome;
            }
            left -= weight;
        }
        Outcome::Answer
    }

    fn total(&self) -> u32 {
        self.answer + self.busy + self.no_answer + self.machine
    }
}

/// What the carrier plays after answering.
#[derive(Debug, Clone)]
pub enum CarrierAudio {
    /// A sine tone of this frequency in Hz.
    Tone(f64),
    /// A mono 16-bit WAV file.
    Wav(PathBuf),
    /// Speech as a detector hears it: `words` bursts of a tone, 300 ms
    /// each with 150 ms between, then silence, repeated every 10 s. One
    /// word is a person's "Hello?"; many are a machine's greeting.
    Words {
        /// The tone's frequency in Hz.
        hz: f64,
        /// Bursts at the start of every 10 s.
        words: u32,
    },
    /// An answering machine's greeting as the detectors hear it: `words`
    /// bursts of a voice-like buzz (300 ms each with 150 ms between), then
    /// a 500 ms beep at `beep_hz` if given, then silence (while the machine
    /// records), repeated every 20 s.
    Greeting {
        /// Bursts before the beep.
        words: u32,
        /// The beep's frequency in Hz; no beep when absent.
        beep_hz: Option<f64>,
    },
}

impl CarrierAudio {
    fn samples(&self) -> Result<Arc<[i16]>, CarrierError> {
        Ok(match self {
            CarrierAudio::Tone(hz) => sine(*hz, 8000, 8000, 8000).into(),
            CarrierAudio::Wav(path) => load_wav(path)?,
            CarrierAudio::Words { hz, words } => spoken_words(
                *hz,
                *words,
                Duration::from_millis(300),
                Duration::from_millis(150),
                8000 * 10,
            )
            .into(),
            CarrierAudio::Greeting { words, beep_hz } => {
                let word = Duration::from_millis(300);
                let gap = Duration::from_millis(150);
                let spoken = (*words as usize) * 450 * 8;
                let mut greeting = voiced_words(*words, word, gap, spoken);
                if let Some(beep) = beep_hz {
                    greeting.extend(sine(*beep, 9000, 8000, 4000));
                }
                greeting.resize(8000 * 20, 0);
                greeting.into()
            }
        })
    }
}

/// Settings of the simulated carrier.
#[derive(Debug, Clone)]
pub struct CarrierConfig {
    /// Address the SIP socket binds to; RTP sockets bind to the same IP.
    pub sip_addr: SocketAddr,
    /// Outcome weights.
    pub mix: Mix,
    /// Time from INVITE to 180 Ringing (and to 486 for busy calls).
    pub ring_delay: Duration,
    /// Time from INVITE to 200 OK for answered calls.
    pub answer_delay: Duration,
    /// Time from INVITE to 200 OK for answering machines.
    pub machine_answer_delay: Duration,
    /// How long a machine greets before hanging up.
    pub machine_greeting: Duration,
    /// Answered calls are hung up by the carrier after this long; never when absent.
    pub hangup_after: Option<Duration>,
    /// Audio to play after answering.
    pub audio: CarrierAudio,
    /// Audio answering machines play; `audio` when absent.
    pub machine_audio: Option<CarrierAudio>,
    /// Seed of the outcome draw, for reproducible runs.
    pub seed: u64,
    /// Sends [`counter::FrameStamp`] frames (the leg's number in order of answer, and
    /// the frame's index) in place of the audio.
    pub count_frames: bool,
}

impl CarrierConfig {
    /// Far ends that speak as machine detection hears them: people say one
    /// word and wait, machines say eight. Both at `hz`.
    pub fn speaking(self, hz: f64) -> Self {
        CarrierConfig {
            audio: CarrierAudio::Words { hz, words: 1 },
            machine_audio: Some(CarrierAudio::Words { hz, words: 8 }),
            ..self
        }
    }
}

impl Default for CarrierConfig {
    fn default() -> Self {
        CarrierConfig {
            sip_addr: "127.0.0.1:5080".parse().expect("a valid literal"),
            mix: Mix::default(),
            ring_delay: Duration::from_millis(200),
            answer_delay: Duration::from_secs(2),
            machine_answer_delay: Duration::from_millis(500),
            machine_greeting: Duration::from_secs(4),
            hangup_after: None,
            audio: CarrierAudio::Tone(440.0),
            machine_audio: None,
            seed: 1,
            count_frames: false,
        }
    }
}

/// Counts of what the carrier has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarrierStats {
    /// INVITEs that started a call.
    pub calls: u64,
    /// Calls answered (people and machines).
    pub answered: u64,
    /// Calls refused as busy.
    pub busy: u64,
    /// Calls cancelled by the caller before answer.
    pub cancelled: u64,
    /// RTP packets received from callers.
    pub rtp_received: u64,
    /// RTP packets sent to callers.
    pub rtp_sent: u64,
}

/// What callers sent while the carrier was capturing, across all its calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    /// The callers' audio decoded to 8 kHz samples, in arrival order (at most five minutes).
    pub audio: Vec<i16>,
    /// Telephone-event packets (RFC 4733) as they arrived.
    pub events: Vec<CapturedEvent>,
    /// The digits those packets carried, one per key press, in order.
    pub digits: Vec<char>,
}

/// One RFC 4733 packet as the carrier received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturedEvent {
    /// The RTP marker bit.
    pub marker: bool,
    /// The RTP sequence number.
    pub sequence: u16,
    /// The RTP timestamp: the start of the event.
    pub timestamp: u32,
    /// The event block.
    pub event: TelephoneEvent,
    /// When it arrived.
    pub at: Instant,
}

/// Audio samples a capture keeps at most: five minutes.
const CAPTURE_SAMPLES: usize = 8000 * 300;

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    answered: AtomicU64,
    busy: AtomicU64,
    cancelled: AtomicU64,
    rtp_received: AtomicU64,
    rtp_sent: AtomicU64,
    muted: AtomicBool,
    /// Set to answer without telephone-event, so callers must send digits in band.
    no_telephone_events: AtomicBool,
    capturing: AtomicBool,
    capture: Mutex<Capture>,
}

impl Counters {
    /// Adds to the capture, if one is running.
    fn capture(&self, add: impl FnOnce(&mut Capture)) {
        if !self.capturing.load(Ordering::Relaxed) {
            return;
        }
        // A poisoned lock only means a test thread panicked; the data is still usable.
        let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        add(&mut capture);
        let excess = capture.audio.len().saturating_sub(CAPTURE_SAMPLES);
        capture.audio.drain(..excess);
    }
}

/// Why the carrier could not start.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// The SIP socket could not be bound.
    #[error("cannot bind the carrier SIP socket: {0}")]
    Bind(#[from] std::io::Error),
    /// The audio file could not be loaded.
    #[error(transparent)]
    Audio(#[from] PlaybackError),
}

/// A running simulated carrier; it stops when dropped.
#[derive(Debug)]
pub struct Carrier {
    sip_addr: SocketAddr,
    counters: Arc<Counters>,
    _stop: oneshot::Sender<()>,
}

impl Carrier {
    /// Binds the SIP socket and starts answering calls.
    pub async fn start(config: CarrierConfig) -> Result<Carrier, CarrierError> {
        let samples = config.audio.samples()?;
        let machine_samples = match &config.machine_audio {
            Some(audio) => audio.samples()?,
            None => samples.clone(),
        };
        let socket = UdpSocket::bind(config.sip_addr).await?;
        let sip_addr = socket.local_addr()?;
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel();
        let uas = uas::Uas::new(config, socket, [samples, machine_samples], counters.clone());
        tokio::spawn(uas.run(stopped));
        tracing::info!(%sip_addr, "simulated carrier started");
        Ok(Carrier {
            sip_addr,
            counters,
            _stop: stop,
        })
    }

    /// Returns the address the carrier receives SIP on.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// Stops or resumes sending audio on every call, as a far end that falls silent would.
    ///
    /// Calls keep their place in the audio while muted; receiving is not affected.
    pub fn set_muted(&self, muted: bool) {
        self.counters.muted.store(muted, Ordering::Relaxed);
    }

    /// Answers later calls with telephone-event (the default) or without it.
    ///
    /// Without it a caller can send digits only as in-band tones.
    pub fn set_telephone_events(&self, offered: bool) {
        self.counters
            .no_telephone_events
            .store(!offered, Ordering::Relaxed);
    }

    /// Starts keeping what callers send, on every call, for [`Carrier::take_capture`].
    pub fn start_capture(&self) {
        self.counters.capturing.store(true, Ordering::Relaxed);
    }

    /// Returns what was captured since the last call, and goes on capturing.
    pub fn take_capture(&self) -> Capture {
        let mut capture = self
            .counters
            .capture
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *capture)
    }

    /// Returns what the carrier has done so far.
    pub fn stats(&self) -> CarrierStats {
        let c = &self.counters;
        CarrierStats {
            calls: c.calls.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            rtp_received: c.rtp_received.load(Ordering::Relaxed),
            rtp_sent: c.rtp_sent.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_picks_by_weight() {
        let mix = Mix {
            answer: 2,
            busy: 1,
            no_answer: 0,
            machine: 1,
        };
        assert_eq!(mix.total(), 4);
        let picks: Vec<Outcome> = (0..4).map(|r| mix.pick(r)).collect();
        assert_eq!(
            picks,
            [
                Outcome::Answer,
                Outcome::Answer,
                Outcome::Busy,
                Outcome::Machine
            ]
        );
        assert_eq!(Mix::always(Outcome::NoAnswer).pick(0), Outcome::NoAnswer);
    }
}
