//! A corpus of answering-machine greetings and people answering the phone,
//! spoken by espeak-ng and made into telephone audio (included with `#[path]`).
//!
//! Every item is drawn from a seeded generator by its index, so a corpus of
//! the same size is the same corpus on every run and machine with the same
//! espeak-ng. espeak-ng writes 22.05 kHz; [`resample_to_8k`] low-passes and
//! resamples it here. Beeps and background noise are made here too, from
//! the same seed, and mixed into one 8 kHz mono 16-bit WAV per item. Speech
//! and noise pass a telephone line's high-pass at 300 Hz first.

use std::f64::consts::{PI, TAU};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The telephone rate.
pub const RATE: usize = 8000;
/// How long each item's audio lasts: past every detector's limit, so the
/// carrier's loop never restarts the greeting during a call.
const ITEM_SECS: usize = 36;

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// An answering machine's greeting.
    Machine,
    /// A person.
    Person,
}

/// Background noise under an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// Digital silence between the words.
    None,
    /// White noise this many dB under the speech.
    White(f64),
    /// Pink noise (more of it low, like a room or a street) this many dB under the speech.
    Pink(f64),
}

/// One item of the corpus, written to `wav`.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its index; machines and people are numbered apart.
    pub index: usize,
    /// Who answered.
    pub truth: Truth,
    /// The espeak-ng voice and its speed in words a minute.
    pub voice: String,
    /// Words a minute.
    pub speed: u32,
    /// A short name for the text spoken.
    pub kind: &'static str,
    /// The beep after a greeting, in Hz, if any.
    pub beep_hz: Option<f64>,
    /// The noise under it.
    pub noise: Noise,
    /// Where the first word starts and the last ends, in ms from the answer.
    pub speech_start_ms: u64,
    /// Where the last word ends.
    pub speech_end_ms: u64,
    /// Where a machine's greeting ends (the beep's end, or the last word's
    /// end without a beep): the earliest moment a message may start.
    pub greeting_end_ms: u64,
    /// The 8 kHz WAV file.
    pub wav: PathBuf,
}

/// Speaks `machines` greetings and `people` answers into `dir`; another
/// `seed` draws another corpus of the same kinds.
pub fn build(dir: &Path, machines: usize, people: usize, seed: u64) -> Result<Vec<Item>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut items = Vec::with_capacity(machines + people);
    for index in 0..machines {
        items.push(machine(dir, index, seed)?);
    }
    for index in 0..people {
        items.push(person(dir, index, seed)?);
    }
    Ok(items)
}

/// English voices, with the variant that gives each its timbre.
const ENGLISH: [&str; 12] = [
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-us-nyc",
    "en-029",
    "en-us+f3",
    "en-gb+f2",
    "en-gb-x-rp+f4",
    "en-us+m3",
    "en-gb+m5",
    "en-us+klatt",
];
const GERMAN: [&str; 2] = ["de", "de+f3"];
const FRENCH: [&str; 2] = ["fr-fr", "fr-fr+f2"];
const SPANISH: [&str; 2] = ["es", "es+m3"];

const NAMES: [&str; 8] = [
    "Sarah",
    "Tom",
    "Priya",
    "James Porter",
    "Anna",
    "Mohammed",
    "Claire",
    "David",
];

/// Greetings by length: (kind, text); `{}` is a name.
const SHORT_GREETINGS: [(&str, &str); 4] = [
    ("short", "You've reached {}. Please leave a message."),
    ("short", "Hi, it's {}. Leave me a message after the beep."),
    (
        "short",
        "Sorry, I can't answer right now. Please leave a message.",
    ),
    ("short", "This is {}. I'm not here. Leave a message."),
];
const MEDIUM_GREETINGS: [(&str, &str); 4] = [
    (
        "medium",
        "Hi, you've reached {}. I can't take your call right now, please leave a message after the tone.",
    ),
    (
        "medium",
        "Hello, this is {}. Sorry I missed you. Leave your name and number and I'll call you back.",
    ),
    (
        "carrier",
        "The person you are calling is not available. Please record your message after the tone.",
    ),
    (
        "number",
        "You have reached 0 1 6 3 2, 9 6 0, 1 2 3. Please leave a message.",
    ),
];
const LONG_GREETINGS: [(&str, &str); 3] = [
    (
        "long",
        "Hello, you have reached the voicemail of {} at Porter and Sons. I am away from my desk. Please leave your name, number and a short message after the tone, and I will call you back.",
    ),
    (
        "long",
        "Hi, this is {}. Thanks for calling. I'm not able to answer the phone right now. Leave a message and I'll get back to you later today.",
    ),
    (
        "carrier",
        "The mobile phone you are calling is switched off or out of coverage. Please leave a message after the tone. When you have finished, you may hang up.",
    ),
];
const GERMAN_GREETINGS: [(&str, &str); 2] = [
    ("de", "Hallo, hier ist der Anschluss von {}. Ich bin leider nicht erreichbar. Bitte hinterlassen Sie eine Nachricht nach dem Signalton."),
    ("de", "Sie sind verbunden mit der Mailbox von {}. Bitte sprechen Sie nach dem Ton."),
];
const FRENCH_GREETINGS: [(&str, &str); 2] = [
    ("fr", "Bonjour, vous êtes bien chez {}. Je ne suis pas disponible pour le moment, laissez-moi un message après le bip."),
    ("fr", "Bonjour, vous êtes sur la messagerie de {}. Laissez un message."),
];
const SPANISH_GREETINGS: [(&str, &str); 1] = [(
    "es",
    "Hola, has llamado a {}. Ahora no puedo atender, deja tu mensaje después de la señal.",
)];

/// What people say when they pick up.
const ANSWERS: [(&str, &str); 8] = [
    ("hello", "hello?"),
    ("hello", "hello"),
    ("speaking", "yes, speaking"),
    ("who", "hello, who is this?"),
    ("yeah", "yeah?"),
    ("hi", "hi"),
    ("name", "{} speaking"),
    ("hello-yes", "hello, yes?"),
];
const GERMAN_ANSWERS: [(&str, &str); 2] = [("de", "Hallo?"), ("de", "Ja, bitte?")];
const FRENCH_ANSWERS: [(&str, &str); 2] = [("fr", "Allô?"), ("fr", "Oui, allô?")];
const SPANISH_ANSWERS: [(&str, &str); 1] = [("es", "¿Diga?")];

fn machine(dir: &Path, index: usize, seed: u64) -> Result<Item> {
    let mut rng = Rng::new(0x6d61_6368 ^ ((index as u64) << 20) ^ (seed << 40));
    let (voice, language) = pick_voice(&mut rng);
    let (kind, text) = match language {
        "de" => *rng.pick(&GERMAN_GREETINGS),
        "fr" => *rng.pick(&FRENCH_GREETINGS),
        "es" => *rng.pick(&SPANISH_GREETINGS),
        _ => match rng.below(3) {
            0 => *rng.pick(&SHORT_GREETINGS),
            1 => *rng.pick(&MEDIUM_GREETINGS),
            _ => *rng.pick(&LONG_GREETINGS),
        },
    };
    let text = text.replace("{}", rng.pick::<&str>(&NAMES));
    let speed = 130 + rng.below(71) as u32;
    let speech = speak(&voice, speed, &text)?;
    let level = level(&mut rng);
    let noise = pick_noise(&mut rng);
    // A quarter record after the greeting falls silent, without a beep.
    let beep_hz = match rng.below(4) {
        0 => None,
        _ => Some(*rng.pick(&[440.0, 850.0, 1000.0, 1400.0])),
    };
    let lead = ms_to_samples(100 + rng.below(400));
    let mut audio = vec![0.0; lead];
    audio.extend(scaled(&speech, level));
    let speech_end = audio.len();
    let mut greeting_end = speech_end;
    if let Some(hz) = beep_hz {
        audio.resize(audio.len() + ms_to_samples(150 + rng.below(550)), 0.0);
        let beep = ms_to_samples(250 + rng.below(650));
        let amplitude = 32768.0 * db(-12.0 + rng.below(7) as f64);
        audio.extend(tone(hz, amplitude, beep));
        greeting_end = audio.len();
    }
    finish(
        dir,
        audio,
        level,
        &mut rng,
        Item {
            index,
            truth: Truth::Machine,
            voice,
            speed,
            kind,
            beep_hz,
            noise,
            speech_start_ms: samples_to_ms(lead),
            speech_end_ms: samples_to_ms(speech_end),
            greeting_end_ms: samples_to_ms(greeting_end),
            wav: PathBuf::new(),
        },
    )
}

fn person(dir: &Path, index: usize, seed: u64) -> Result<Item> {
    let mut rng = Rng::new(0x7065_7273 ^ ((index as u64) << 20) ^ (seed << 40));
    let (voice, language) = pick_voice(&mut rng);
    let (kind, text) = match language {
        "de" => *rng.pick(&GERMAN_ANSWERS),
        "fr" => *rng.pick(&FRENCH_ANSWERS),
        "es" => *rng.pick(&SPANISH_ANSWERS),
        _ => *rng.pick(&ANSWERS),
    };
    let text = text.replace("{}", rng.pick::<&str>(&NAMES));
    let speed = 130 + rng.below(71) as u32;
    let speech = speak(&voice, speed, &text)?;
    let level = level(&mut rng);
    let noise = pick_noise(&mut rng);
    // Most speak at once; some pick up, pause a second or two, then speak.
    let paused = rng.below(10) < 3;
    let lead = match paused {
        true => ms_to_samples(1000 + rng.below(1000)),
        false => ms_to_samples(150 + rng.below(450)),
    };
    let mut audio = vec![0.0; lead];
    audio.extend(scaled(&speech, level));
    let speech_end = audio.len();
    // Hearing nothing back, some ask again.
    if rng.below(10) < 3 {
        audio.resize(audio.len() + ms_to_samples(2500 + rng.below(1500)), 0.0);
        audio.extend(scaled(&speak(&voice, speed, "hello?")?, level));
    }
    let kind = if paused { "pause-then-word" } else { kind };
    finish(
        dir,
        audio,
        level,
        &mut rng,
        Item {
            index,
            truth: Truth::Person,
            voice,
            speed,
            kind,
            beep_hz: None,
            noise,
            speech_start_ms: samples_to_ms(lead),
            speech_end_ms: samples_to_ms(speech_end),
            greeting_end_ms: samples_to_ms(speech_end),
            wav: PathBuf::new(),
        },
    )
}

/// Pads `audio` to the item's length, adds its noise and writes its WAV.
fn finish(
    dir: &Path,
    mut audio: Vec<f64>,
    level: f64,
    rng: &mut Rng,
    mut item: Item,
) -> Result<Item> {
    audio.resize(ITEM_SECS * RATE, 0.0);
    let mut pink = Pink::default();
    let (noise, snr): (Vec<f64>, f64) = match item.noise {
        Noise::None => (Vec::new(), 0.0),
        Noise::White(snr) => ((0..audio.len()).map(|_| rng.gaussian()).collect(), snr),
        Noise::Pink(snr) => (
            (0..audio.len())
                .map(|_| pink.next(rng.gaussian()))
                .collect(),
            snr,
        ),
    };
    if !noise.is_empty() {
        let mut noise = noise;
        telephone_band(&mut noise);
        let rms = (noise.iter().map(|n| n * n).sum::<f64>() / noise.len() as f64).sqrt();
        let gain = level * db(-snr) / rms.max(1e-9);
        for (s, n) in audio.iter_mut().zip(noise) {
            *s += n * gain;
        }
    }
    let name = match item.truth {
        Truth::Machine => format!("machine-{:03}.wav", item.index),
        Truth::Person => format!("person-{:03}.wav", item.index),
    };
    item.wav = dir.join(name);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&item.wav, spec)?;
    for s in audio {
        writer.write_sample(s.round().clamp(-32768.0, 32767.0) as i16)?;
    }
    writer.finalize()?;
    Ok(item)
}

fn pick_voice(rng: &mut Rng) -> (String, &'static str) {
    match rng.below(10) {
        0 => (rng.pick(&GERMAN).to_string(), "de"),
        1 => (rng.pick(&FRENCH).to_string(), "fr"),
        2 => (rng.pick(&SPANISH).to_string(), "es"),
        _ => (rng.pick(&ENGLISH).to_string(), "en"),
    }
}

/// The RMS of an item's speech: loud, normal and quiet talkers and lines.
fn level(rng: &mut Rng) -> f64 {
    32768.0 * db(-(16.0 + rng.below(15) as f64))
}

fn pick_noise(rng: &mut Rng) -> Noise {
    let snr = [30.0, 25.0, 20.0, 15.0][rng.below(4) as usize];
    match rng.below(5) {
        0 => Noise::None,
        1 | 2 => Noise::White(snr),
        _ => Noise::Pink(snr),
    }
}

/// Runs espeak-ng; returns its speech at 8 kHz, trimmed of the silence it
/// adds before and after, as floats with the RMS of its voiced part at 1.
fn speak(voice: &str, speed: u32, text: &str) -> Result<Vec<f64>> {
    let file = tempfile_path(voice, speed, text);
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "-w"])
        .arg(&file)
        .arg(text)
        .status()
        .context("running espeak-ng (scripts/install-deps installs it)")?;
    if !status.success() {
        bail!("espeak-ng failed for voice {voice}: {status}");
    }
    let mut reader = hound::WavReader::open(&file)?;
    let rate = reader.spec().sample_rate;
    let raw: Vec<f64> = reader
        .samples::<i16>()
        .map(|s| s.map(f64::from))
        .collect::<Result<_, _>>()?;
    let _ = std::fs::remove_file(&file);
    let mut pcm = resample_to_8k(&raw, rate as f64);
    telephone_band(&mut pcm);
    let loud = |s: &f64| s.abs() > 64.0;
    let start = pcm.iter().position(loud).unwrap_or(0);
    let end = pcm.iter().rposition(loud).map_or(0, |e| e + 1);
    if end <= start {
        bail!("espeak-ng said nothing for {text:?} in {voice}");
    }
    pcm.truncate(end);
    pcm.drain(..start);
    // Normalise on the frames that carry speech, not on the pauses.
    let frames: Vec<f64> = pcm
        .chunks(160)
        .map(|f| (f.iter().map(|s| s * s).sum::<f64>() / f.len() as f64).sqrt())
        .collect();
    let peak = frames.iter().copied().fold(0.0, f64::max);
    let voiced: Vec<f64> = frames.into_iter().filter(|&r| r > peak * 0.1).collect();
    let rms = (voiced.iter().map(|r| r * r).sum::<f64>() / voiced.len().max(1) as f64).sqrt();
    Ok(pcm.into_iter().map(|s| s / rms.max(1.0)).collect())
}

fn tempfile_path(voice: &str, speed: u32, text: &str) -> PathBuf {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for b in voice.bytes().chain(text.bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    std::env::temp_dir().join(format!(
        "espeak-{}-{hash:016x}-{speed}.wav",
        std::process::id()
    ))
}

/// Resamples to 8 kHz through a Blackman-windowed sinc low-pass at 3.6 kHz.
pub fn resample_to_8k(input: &[f64], rate: f64) -> Vec<f64> {
    const HALF: f64 = 24.0;
    let step = rate / RATE as f64;
    let cutoff = 3600.0 / rate;
    let out_len = (input.len() as f64 / step) as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let centre = n as f64 * step;
        let first = (centre - HALF).ceil().max(0.0) as usize;
        let last = ((centre + HALF).floor() as usize).min(input.len().saturating_sub(1));
        let mut acc = 0.0;
        for (k, &x) in input.iter().enumerate().take(last + 1).skip(first) {
            let t = k as f64 - centre;
            let sinc = if t == 0.0 {
                2.0 * cutoff
            } else {
                (TAU * cutoff * t).sin() / (PI * t)
            };
            let w = 0.42 + 0.5 * (PI * t / HALF).cos() + 0.08 * (TAU * t / HALF).cos();
            acc += x * sinc * w;
        }
        out.push(acc);
    }
    out
}

/// A telephone line passes little below 300 Hz: a second-order Butterworth
/// high-pass there, applied to speech and noise before their levels are set
/// (the resampler has already cut above 3.6 kHz; beeps are all above 300 Hz).
fn telephone_band(audio: &mut [f64]) {
    let k = (PI * 300.0 / RATE as f64).tan();
    let q = std::f64::consts::FRAC_1_SQRT_2;
    let norm = 1.0 / (1.0 + k / q + k * k);
    let (b0, b1, b2) = (norm, -2.0 * norm, norm);
    let (a1, a2) = (2.0 * (k * k - 1.0) * norm, (1.0 - k / q + k * k) * norm);
    let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
    for s in audio {
        let x = *s;
        let y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
        (x2, x1, y2, y1) = (x1, x, y1, y);
        *s = y;
    }
}

fn scaled(speech: &[f64], level: f64) -> impl Iterator<Item = f64> + '_ {
    speech.iter().map(move |s| s * level)
}

/// A tone with 5 ms ramps, as a machine's beep.
fn tone(hz: f64, amplitude: f64, len: usize) -> Vec<f64> {
    let ramp = 40.0;
    (0..len)
        .map(|i| {
            let edge = (i as f64).min((len - 1 - i) as f64);
            let gain = (edge / ramp).min(1.0);
            amplitude * gain * (TAU * hz * i as f64 / RATE as f64).sin()
        })
        .collect()
}

fn db(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

fn ms_to_samples(ms: u64) -> usize {
    ms as usize * RATE / 1000
}

fn samples_to_ms(samples: usize) -> u64 {
    (samples * 1000 / RATE) as u64
}

/// Paul Kellet's economy pink filter over white noise.
#[derive(Default)]
struct Pink {
    b: [f64; 3],
}

impl Pink {
    fn next(&mut self, white: f64) -> f64 {
        self.b[0] = 0.99765 * self.b[0] + white * 0.099_046;
        self.b[1] = 0.96300 * self.b[1] + white * 0.296_516_4;
        self.b[2] = 0.57000 * self.b[2] + white * 1.052_691_3;
        self.b[0] + self.b[1] + self.b[2] + white * 0.1848
    }
}

/// SplitMix64: small, seeded, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len() as u64) as usize]
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    fn gaussian(&mut self) -> f64 {
        let u = self.uniform().max(1e-12);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
    }
}
