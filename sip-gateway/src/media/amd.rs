//! Answering-machine detection: who answered, from the first seconds of
//! the far end's audio.
//!
//! A person tends to say one short thing ("Hello?") and wait; a machine
//! plays a long greeting. The detector cuts the audio into 10 ms windows,
//! calls a window voiced when its RMS level passes both a fixed threshold
//! and the line's noise floor by a margin ([`NoiseFloor`]: a hiss or a street
//! under the speech is not speech), and joins voiced windows into words (a gap shorter than `between_words` does not end
//! a word, a voiced stretch shorter than `min_word` is not one). Then:
//!
//! - one stretch of speech longer than `greeting` → a machine;
//! - more than `max_words` words → a machine;
//! - speech followed by `after_greeting` of silence → a person;
//! - no speech within `initial_silence`, or no verdict within `total` → unsure.
//!
//! Unsure is for the caller to decide; a dialler should treat it as a person
//! rather than drop someone who answered. Time is counted in samples, so the
//! verdict depends only on the audio, not on when packets arrived.

use std::time::{Duration, Instant};

use super::greeting::pure_tone;
use super::G711;

/// Samples per analysis window: 10 ms at 8 kHz.
const WINDOW: usize = 80;
/// A window that is one tone in this range, holding this share of its
/// energy, is a beep or a tone: voiced, and never taken for noise.
const TONE_HZ: (f64, f64) = (300.0, 2600.0);
const TONE_SHARE: f64 = 0.7;

/// The detector's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmdConfig {
    /// RMS level (16-bit PCM) above which a window may be voiced.
    pub silence_threshold: f64,
    /// How many times the noise floor's RMS a window must pass to be voiced.
    pub noise_margin: f64,
    /// How far back the noise floor looks for the line's quietest moment.
    pub noise_span: Duration,
    /// Silence before any speech after which the answer is unsure.
    pub initial_silence: Duration,
    /// The longest stretch of speech a person greets with.
    pub greeting: Duration,
    /// Silence after speech that marks a person waiting for a reply.
    pub after_greeting: Duration,
    /// The shortest voiced stretch that counts as a word.
    pub min_word: Duration,
    /// A gap shorter than this does not end a word.
    pub between_words: Duration,
    /// More words than this is a machine.
    pub max_words: u32,
    /// More voiced time than this in all is a machine, however it pauses.
    pub max_talk: Duration,
    /// How long the detector listens at most.
    pub total: Duration,
}

impl Default for AmdConfig {
    fn default() -> Self {
        AmdConfig {
            silence_threshold: 256.0,
            noise_margin: 3.0,
            noise_span: Duration::from_millis(1500),
            initial_silence: Duration::from_millis(2500),
            greeting: Duration::from_millis(1500),
            after_greeting: Duration::from_millis(800),
            min_word: Duration::from_millis(100),
            between_words: Duration::from_millis(100),
            max_words: 3,
            max_talk: Duration::from_millis(1700),
            total: Duration::from_millis(5000),
        }
    }
}

pub use vocab::AmdVerdict;

/// Classifies the far end's first seconds of audio; see the module docs.
#[derive(Debug, Clone)]
pub struct AmdDetector {
    config: AmdConfig,
    floor: NoiseFloor,
    /// Samples of the window being filled, how many, and their sum of squares.
    samples: [i16; WINDOW],
    partial: usize,
    energy: f64,
    /// Milliseconds analysed.
    elapsed: u64,
    /// Milliseconds of the current voiced run (short gaps included), of the
    /// current silent run, and of the current stretch of speech.
    voiced: u64,
    silent: u64,
    speech: u64,
    /// Milliseconds voiced in all.
    talk: u64,
    in_word: bool,
    words: u32,
    verdict: Option<AmdVerdict>,
}

impl AmdDetector {
    /// A detector with these thresholds.
    pub fn new(config: AmdConfig) -> Self {
        AmdDetector {
            config,
            floor: NoiseFloor::new(Duration::from_millis(10), config.noise_span),
            samples: [0; WINDOW],
            partial: 0,
            energy: 0.0,
            elapsed: 0,
            voiced: 0,
            silent: 0,
            speech: 0,
            talk: 0,
            in_word: false,
            words: 0,
            verdict: None,
        }
    }

    /// Takes 8 kHz samples; returns the verdict when they complete it, once.
    pub fn push(&mut self, samples: &[i16]) -> Option<AmdVerdict> {
        if self.verdict.is_some() {
            return None;
        }
        for &s in samples {
            self.energy += f64::from(s) * f64::from(s);
            self.samples[self.partial] = s;
            self.partial += 1;
            if self.partial == WINDOW {
                let rms = (self.energy / WINDOW as f64).sqrt();
                self.partial = 0;
                self.energy = 0.0;
                let voiced = self.voiced(rms);
                if let Some(verdict) = self.window(voiced) {
                    self.verdict = Some(verdict);
                    return Some(verdict);
                }
            }
        }
        None
    }

    /// The verdict, once reached.
    pub fn verdict(&self) -> Option<AmdVerdict> {
        self.verdict
    }

    /// How many words the detector has heard.
    pub fn words(&self) -> u32 {
        self.words
    }

    /// Whether a window is voiced: loud, and either a pure tone (a beep or a
    /// test tone, never noise) or well above the noise floor. Only windows
    /// that are not tones teach the floor.
    fn voiced(&mut self, rms: f64) -> bool {
        let c = &self.config;
        if rms <= c.silence_threshold {
            self.floor.push(rms);
            return false;
        }
        if pure_tone(&self.samples, TONE_HZ, TONE_SHARE).is_some() {
            return true;
        }
        rms > c.noise_margin * self.floor.push(rms)
    }

    fn window(&mut self, voiced: bool) -> Option<AmdVerdict> {
        const STEP: u64 = 10;
        let ms = |d: Duration| d.as_millis() as u64;
        let c = self.config;
        self.elapsed += STEP;
        if voiced {
            self.voiced += STEP;
            self.silent = 0;
            self.speech += STEP;
            self.talk += STEP;
            if !self.in_word && self.voiced >= ms(c.min_word) {
                self.in_word = true;
                self.words += 1;
                if self.words > c.max_words {
                    return Some(AmdVerdict::Machine);
                }
            }
            if self.speech >= ms(c.greeting) || self.talk >= ms(c.max_talk) {
                return Some(AmdVerdict::Machine);
            }
        } else {
            self.silent += STEP;
            if self.silent < ms(c.between_words) {
                // A short gap inside speech is part of it.
                if self.voiced > 0 {
                    self.speech += STEP;
                }
            } else {
                // A real pause: the word and the stretch of speech are over.
                self.in_word = false;
                self.voiced = 0;
                self.speech = 0;
            }
            if self.words == 0 && self.silent >= ms(c.initial_silence) {
                return Some(AmdVerdict::Unsure);
            }
            if self.words > 0 && self.silent >= ms(c.after_greeting) {
                return Some(AmdVerdict::Human);
            }
        }
        if self.elapsed >= ms(c.total) {
            return Some(AmdVerdict::Unsure);
        }
        None
    }
}

/// The level of a line's background noise, by minimum statistics: the RMS
/// of the quietest analysis window of the last `span`.
///
/// Speech stops often enough (between words, for breath, for a stop
/// consonant) that its quietest windows are the noise under it, so the floor
/// follows a hiss or a street and not the voice over it. The windows are
/// kept as the minima of eight blocks, so a window costs a few comparisons.
#[derive(Debug, Clone)]
pub struct NoiseFloor {
    /// The minima of the last blocks, oldest first.
    blocks: [f64; BLOCKS],
    /// How many of them hold a block yet.
    filled: usize,
    /// The minimum of the block being filled, and how many windows it holds.
    current: f64,
    in_block: usize,
    per_block: usize,
}

/// Blocks the noise floor's span is cut into.
const BLOCKS: usize = 8;

impl NoiseFloor {
    /// A floor over the last `span` of windows `window` long.
    pub fn new(window: Duration, span: Duration) -> Self {
        let windows = span.as_millis() / window.as_millis().max(1);
        NoiseFloor {
            blocks: [f64::INFINITY; BLOCKS],
            filled: 0,
            current: f64::INFINITY,
            in_block: 0,
            per_block: (windows as usize / BLOCKS).max(1),
        }
    }

    /// Takes one window's RMS; returns the floor, this window included.
    pub fn push(&mut self, rms: f64) -> f64 {
        self.current = self.current.min(rms);
        self.in_block += 1;
        let floor = self.level();
        if self.in_block == self.per_block {
            if self.filled == BLOCKS {
                self.blocks.rotate_left(1);
                self.filled -= 1;
            }
            self.blocks[self.filled] = self.current;
            self.filled += 1;
            self.current = f64::INFINITY;
            self.in_block = 0;
        }
        floor
    }

    /// The floor: the quietest window of the span, or zero before any.
    pub fn level(&self) -> f64 {
        let floor = self.blocks[..self.filled]
            .iter()
            .fold(self.current, |m, &b| m.min(b));
        if floor.is_finite() {
            floor
        } else {
            0.0
        }
    }
}

/// A far end's G.711 packets as one run of samples in RTP time, for the
/// detectors that listen to a live call.
///
/// A far end that stops sending while it is quiet (silence suppression,
/// comfort noise) leaves a jump in the timestamps: the jump is heard as the
/// silence it stands for, up to `max_gap` (more is a restart, not a pause).
/// A packet from before the last one is late and ignored.
#[derive(Debug, Clone)]
pub struct Timeline {
    max_gap: u64,
    pcm: Vec<i16>,
    /// The RTP timestamp the next packet should carry.
    next_timestamp: Option<u32>,
}

impl Timeline {
    /// A timeline that fills gaps of at most `max_gap` with silence.
    pub fn new(max_gap: Duration) -> Self {
        Timeline {
            max_gap: max_gap.as_millis() as u64 * 8,
            pcm: Vec::with_capacity(160),
            next_timestamp: None,
        }
    }

    /// Feeds one packet to `push` as decoded samples, after the silence its
    /// timestamp implies; returns the first answer `push` gives.
    pub fn feed<T>(
        &mut self,
        codec: G711,
        payload: &[u8],
        timestamp: u32,
        mut push: impl FnMut(&[i16]) -> Option<T>,
    ) -> Option<T> {
        if let Some(expected) = self.next_timestamp {
            let ahead = timestamp.wrapping_sub(expected);
            if ahead > u32::MAX / 2 {
                return None;
            }
            let silence = [0i16; 160];
            let mut left = u64::from(ahead).min(self.max_gap) as usize;
            while left > 0 {
                let n = left.min(silence.len());
                if let Some(answer) = push(&silence[..n]) {
                    return Some(answer);
                }
                left -= n;
            }
        }
        self.next_timestamp = Some(timestamp.wrapping_add(payload.len() as u32));
        self.pcm.clear();
        self.pcm.resize(payload.len(), 0);
        codec.decode(payload, &mut self.pcm);
        push(&self.pcm)
    }
}

/// Detection on a live call: G.711 payloads in, one verdict out, and
/// `Unsure` if the far end sends too little audio to decide by the deadline.
#[derive(Debug, Clone)]
pub struct MachineCheck {
    detector: AmdDetector,
    timeline: Timeline,
    deadline: Instant,
}

impl MachineCheck {
    /// Starts listening at `now`, the moment the call was answered.
    pub fn new(config: AmdConfig, now: Instant) -> Self {
        // Audio lags the answer a little; the deadline only catches silence
        // on the wire, the detector's own limit counts the audio itself.
        let grace = Duration::from_secs(1);
        MachineCheck {
            detector: AmdDetector::new(config),
            timeline: Timeline::new(config.total),
            deadline: now + config.total + grace,
        }
    }

    /// Takes one packet's G.711 payload and RTP timestamp; the verdict when
    /// it completes one. Gaps and late packets are as [`Timeline`] hears them.
    pub fn push_g711(&mut self, codec: G711, payload: &[u8], timestamp: u32) -> Option<AmdVerdict> {
        let detector = &mut self.detector;
        self.timeline
            .feed(codec, payload, timestamp, |pcm| detector.push(pcm))
    }

    /// When [`MachineCheck::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    /// `Unsure` once the deadline has passed without a verdict.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AmdVerdict> {
        (now >= self.deadline && self.detector.verdict().is_none()).then_some(AmdVerdict::Unsure)
    }
}

/// Test and simulation audio: `words` bursts of a tone, each `word` long
/// with `gap` of silence after it, then silence until `len` samples.
pub fn spoken_words(hz: f64, words: u32, word: Duration, gap: Duration, len: usize) -> Vec<i16> {
    let at_8k = |d: Duration| (d.as_millis() as usize) * 8;
    let mut out = Vec::with_capacity(len);
    for _ in 0..words {
        out.extend(super::tone::sine(hz, 8000, 8000, at_8k(word)));
        out.resize(out.len() + at_8k(gap), 0);
    }
    out.resize(len.max(out.len()), 0);
    out.truncate(len);
    out
}

/// Test and simulation audio that sounds like speech to a tone detector:
/// `words` bursts of a 150 Hz buzz with its first twelve harmonics (a voice
/// holds its energy in many of them, never in one), each `word` long with
/// `gap` of silence after it, then silence until `len` samples.
pub fn voiced_words(words: u32, word: Duration, gap: Duration, len: usize) -> Vec<i16> {
    let at_8k = |d: Duration| (d.as_millis() as usize) * 8;
    let n = at_8k(word);
    let mut buzz = vec![0i32; n];
    for harmonic in 1..=12u32 {
        let amplitude = i16::try_from(4000 / harmonic).unwrap_or(0);
        let overtone = super::tone::sine(150.0 * f64::from(harmonic), amplitude, 8000, n);
        for (x, s) in buzz.iter_mut().zip(overtone) {
            *x += i32::from(s);
        }
    }
    let buzz: Vec<i16> = buzz
        .into_iter()
        .map(|x| x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
        .collect();
    let mut out = Vec::with_capacity(len);
    for _ in 0..words {
        out.extend_from_slice(&buzz);
        out.resize(out.len() + at_8k(gap), 0);
    }
    out.resize(len.max(out.len()), 0);
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Runs audio through a default detector in 20 ms frames; returns the
    /// verdict and after how many milliseconds of audio it came.
    fn classify(audio: &[i16]) -> Option<(AmdVerdict, usize)> {
        let mut d = AmdDetector::new(AmdConfig::default());
        for (i, frame) in audio.chunks(160).enumerate() {
            if let Some(v) = d.push(frame) {
                return Some((v, (i + 1) * 20));
            }
        }
        None
    }

    #[test]
    fn a_hello_then_silence_is_a_person() {
        let hello = spoken_words(440.0, 1, MS(400), MS(0), 8000 * 4);
        let (verdict, at) = classify(&hello).expect("a verdict");
        assert_eq!(verdict, AmdVerdict::Human);
        // 400 ms of speech and 800 ms of silence.
        assert_eq!(at, 1200);
        // "Hello, yes?": two words, still a person.
        let two = spoken_words(440.0, 2, MS(350), MS(200), 8000 * 4);
        assert_eq!(classify(&two).map(|v| v.0), Some(AmdVerdict::Human));
    }

    #[test]
    fn a_long_greeting_or_many_words_is_a_machine() {
        let tone = spoken_words(440.0, 1, MS(4000), MS(0), 8000 * 5);
        assert_eq!(classify(&tone), Some((AmdVerdict::Machine, 1500)));
        // Short words with short pauses: the fourth word decides.
        let words = spoken_words(440.0, 8, MS(300), MS(150), 8000 * 5);
        let (verdict, at) = classify(&words).expect("a verdict");
        assert_eq!(verdict, AmdVerdict::Machine);
        assert!((1400..=1500).contains(&at), "decided at {at} ms");
    }

    #[test]
    fn silence_or_noise_is_unsure() {
        assert_eq!(
            classify(&vec![0; 8000 * 4]),
            Some((AmdVerdict::Unsure, 2500))
        );
        // Clicks of 30 ms are shorter than a word: still silence.
        let clicks = spoken_words(440.0, 40, MS(30), MS(170), 8000 * 6);
        assert_eq!(classify(&clicks).map(|v| v.0), Some(AmdVerdict::Unsure));
    }

    #[test]
    fn gaps_shorter_than_a_pause_do_not_split_a_word() {
        // 40 ms gaps inside a 2 s stretch: one long greeting, not many words.
        let mut d = AmdDetector::new(AmdConfig::default());
        let stuttered = spoken_words(440.0, 10, MS(160), MS(40), 8000 * 3);
        let verdict = stuttered.chunks(160).find_map(|f| d.push(f));
        assert_eq!(verdict, Some(AmdVerdict::Machine));
        assert_eq!(d.words(), 1);
    }

    #[test]
    fn a_call_check_decodes_g711_and_gives_up_on_silence_on_the_wire() {
        let now = Instant::now();
        let mut check = MachineCheck::new(AmdConfig::default(), now);
        let greeting = spoken_words(440.0, 1, MS(3000), MS(0), 8000 * 3);
        let mut verdict = None;
        for (n, frame) in greeting.chunks(160).enumerate() {
            let mut payload = vec![0; frame.len()];
            G711::Pcma.encode(frame, &mut payload);
            let ts = 1000 + 160 * n as u32;
            verdict = verdict.or(check.push_g711(G711::Pcma, &payload, ts));
        }
        assert_eq!(verdict, Some(AmdVerdict::Machine));

        let mut quiet = MachineCheck::new(AmdConfig::default(), now);
        assert_eq!(quiet.poll_timeout(), now + MS(6000));
        assert_eq!(quiet.handle_timeout(now + MS(5999)), None);
        assert_eq!(
            quiet.handle_timeout(now + MS(6000)),
            Some(AmdVerdict::Unsure)
        );
    }

    #[test]
    fn a_pause_the_far_end_does_not_send_is_heard_as_silence() {
        let mut check = MachineCheck::new(AmdConfig::default(), Instant::now());
        let hello = spoken_words(440.0, 1, MS(400), MS(0), 8000 * 2 / 5);
        let mut payload = vec![0; 160];
        // The timestamps wrap during the greeting, as they may.
        let start = u32::MAX - 800;
        for (n, frame) in hello.chunks(160).enumerate() {
            G711::Pcmu.encode(frame, &mut payload);
            let ts = start.wrapping_add(160 * n as u32);
            assert_eq!(check.push_g711(G711::Pcmu, &payload, ts), None);
        }
        // A late packet from the greeting changes nothing.
        assert_eq!(check.push_g711(G711::Pcmu, &payload, start), None);
        // Nothing sent for a second, then a quiet packet: a person waiting.
        G711::Pcmu.encode(&[0; 160], &mut payload);
        let after = start.wrapping_add(3200 + 8000);
        assert_eq!(
            check.push_g711(G711::Pcmu, &payload, after),
            Some(AmdVerdict::Human)
        );
    }

    #[test]
    fn the_verdict_is_given_once() {
        let mut d = AmdDetector::new(AmdConfig::default());
        assert_eq!(d.push(&vec![0; 8000 * 3]), Some(AmdVerdict::Unsure));
        assert_eq!(d.push(&vec![0; 8000]), None);
        assert_eq!(d.verdict(), Some(AmdVerdict::Unsure));
    }

    /// A hiss of about 580 RMS, over the fixed threshold, about 16 dB under
    /// `voiced_words`: a noisy line, seeded.
    fn hiss(audio: &mut [i16]) {
        let mut state = 0x2545_f491_u32;
        for s in audio {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *s = s.saturating_add((state % 2001) as i16 - 1000);
        }
    }

    #[test]
    fn noise_on_the_line_is_not_speech() {
        // Before the floor, the hiss alone was a 1.5 s "word": a machine.
        let mut hello = vec![0; 8000 * 4];
        hello[4000..7200].copy_from_slice(&voiced_words(1, MS(400), MS(0), 3200));
        hiss(&mut hello);
        let (verdict, at) = classify(&hello).expect("a verdict");
        assert_eq!(verdict, AmdVerdict::Human);
        // 500 ms of hiss, a 400 ms word, 800 ms of hiss after it.
        assert!((1650..=1800).contains(&at), "decided at {at} ms");

        let mut greeting = voiced_words(8, MS(300), MS(150), 8000 * 5);
        hiss(&mut greeting);
        assert_eq!(classify(&greeting).map(|v| v.0), Some(AmdVerdict::Machine));

        let mut quiet = vec![0; 8000 * 4];
        hiss(&mut quiet);
        assert_eq!(classify(&quiet), Some((AmdVerdict::Unsure, 2500)));
    }

    #[test]
    fn a_short_stop_inside_a_word_does_not_split_it() {
        // "Hello, yes?" as four bursts 80 ms apart: one stretch of speech,
        // not four words (that would be a machine), then a person waiting.
        let words = spoken_words(440.0, 4, MS(200), MS(80), 8000 * 3);
        let mut d = AmdDetector::new(AmdConfig::default());
        let verdict = words.chunks(160).find_map(|f| d.push(f));
        assert_eq!(verdict, Some(AmdVerdict::Human));
        assert_eq!(d.words(), 1);
    }

    #[test]
    fn three_long_phrases_are_a_machine_by_how_much_they_say() {
        // After 200 ms of line, three 700 ms phrases 300 ms apart: no
        // stretch is a greeting's and three words are a person's, but 1.7 s
        // of speech is a machine's.
        let mut phrases = vec![0; 1600];
        phrases.extend(voiced_words(3, MS(700), MS(300), 8000 * 5));
        let (verdict, at) = classify(&phrases).expect("a verdict");
        assert_eq!(verdict, AmdVerdict::Machine);
        assert!((2500..=2620).contains(&at), "decided at {at} ms");
    }

    #[test]
    fn the_noise_floor_is_the_quietest_window_of_its_span() {
        let mut floor = NoiseFloor::new(MS(10), MS(800));
        assert_eq!(floor.level(), 0.0);
        assert_eq!(floor.push(900.0), 900.0);
        for _ in 0..20 {
            floor.push(300.0);
        }
        assert_eq!(floor.push(5000.0), 300.0);
        // A span and a block (100 ms) of louder windows later, the quiet
        // ones are forgotten.
        for _ in 0..90 {
            floor.push(2000.0);
        }
        assert_eq!(floor.level(), 2000.0);
    }
}
