use std::path::PathBuf;

use super::*;
use crate::media::tone::{dominant_frequency, ToneGenerator};

const MS20: Duration = Duration::from_millis(20);
const CANDIDATES: [f64; 4] = [440.0, 697.0, 1000.0, 1633.0];

struct TempWav(PathBuf);

impl TempWav {
    fn new(name: &str) -> Self {
        let file = format!("dialcrm-recorder-{}-{name}.wav", std::process::id());
        Self(std::env::temp_dir().join(file))
    }
}

impl Drop for TempWav {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Pushes `frames` 20 ms frames of a tone on each side, agent then customer.
fn push_tones(
    tap: &RecorderTap,
    agent: &mut ToneGenerator,
    customer: &mut ToneGenerator,
    t0: Instant,
    first: u32,
    frames: u32,
) {
    let mut buf = [0i16; 160];
    for i in first..first + frames {
        let now = t0 + MS20 * i;
        agent.fill(&mut buf);
        assert!(tap.push(Side::Agent, 1000 + i * 160, &buf, now));
        customer.fill(&mut buf);
        let mut payload = [0u8; 160];
        G711::Pcma.encode(&buf, &mut payload);
        assert!(tap.push_g711(Side::Customer, 70_000 + i * 160, G711::Pcma, &payload, now));
    }
}

fn read_channels(path: &Path) -> (hound::WavSpec, Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let all: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (spec, left, right)
}

fn tones() -> (ToneGenerator, ToneGenerator) {
    (
        ToneGenerator::new(440.0, 8000, SAMPLE_RATE),
        ToneGenerator::new(1000.0, 8000, SAMPLE_RATE),
    )
}

#[test]
fn records_agent_left_and_customer_right() {
    let file = TempWav::new("tones");
    let t0 = Instant::now();
    let rec = Recorder::create(&file.0, RecorderConfig::default(), t0).unwrap();
    let (mut agent, mut customer) = tones();
    push_tones(&rec.tap(), &mut agent, &mut customer, t0, 0, 50);
    let stats = rec.finish().unwrap();
    assert_eq!(stats.frames_written, 8000);
    assert_eq!(stats.dropped, 0);

    let (spec, left, right) = read_channels(&file.0);
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.sample_rate, 8000);
    assert_eq!(spec.bits_per_sample, 16);
    assert_eq!(left.len(), 8000);
    assert_eq!(
        dominant_frequency(&left, &CANDIDATES, 8000, 0.001),
        Some(440.0)
    );
    assert_eq!(
        dominant_frequency(&right, &CANDIDATES, 8000, 0.001),
        Some(1000.0)
    );
}

#[test]
fn a_flushed_but_unfinished_file_is_readable() {
    let file = TempWav::new("flushed");
    let t0 = Instant::now();
    let rec = Recorder::create(&file.0, RecorderConfig::default(), t0).unwrap();
    let (mut agent, mut customer) = tones();
    push_tones(&rec.tap(), &mut agent, &mut customer, t0, 0, 25);
    rec.flush().unwrap();

    let (spec, left, right) = read_channels(&file.0);
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    assert_eq!(left.len(), 4000);
    assert_eq!(
        dominant_frequency(&left, &CANDIDATES, 8000, 0.001),
        Some(440.0)
    );
    assert_eq!(
        dominant_frequency(&right, &CANDIDATES, 8000, 0.001),
        Some(1000.0)
    );
    rec.finish().unwrap();
}

#[test]
fn pause_records_silence_in_place_of_audio() {
    let file = TempWav::new("paused");
    let t0 = Instant::now();
    let rec = Recorder::create(&file.0, RecorderConfig::default(), t0).unwrap();
    let tap = rec.tap();
    let (mut agent, mut customer) = tones();
    push_tones(&tap, &mut agent, &mut customer, t0, 0, 25);
    rec.pause();
    push_tones(&tap, &mut agent, &mut customer, t0, 25, 25);
    rec.resume();
    push_tones(&tap, &mut agent, &mut customer, t0, 50, 25);
    rec.finish().unwrap();

    let (_, left, right) = read_channels(&file.0);
    assert_eq!(left.len(), 12000);
    for channel in [&left, &right] {
        assert!(channel[4000..8000].iter().all(|&s| s == 0));
        assert!(channel[..4000].iter().any(|&s| s != 0));
        assert!(channel[8000..].iter().any(|&s| s != 0));
    }
}

#[test]
fn a_full_channel_drops_and_counts_without_blocking() {
    let (tx, _rx) = mpsc::sync_channel(2);
    let tap = RecorderTap {
        tx,
        paused: Arc::new(AtomicBool::new(false)),
        dropped: Arc::new(AtomicU64::new(0)),
    };
    let now = Instant::now();
    assert!(tap.push(Side::Agent, 0, &[1; 160], now));
    assert!(tap.push(Side::Agent, 160, &[1; 160], now));
    assert!(!tap.push(Side::Agent, 320, &[1; 160], now));
    assert_eq!(tap.dropped(), 1);
    // A 40 ms frame is split into two channel messages, both dropped.
    assert!(!tap.push(Side::Agent, 480, &[1; 320], now));
    assert_eq!(tap.dropped(), 3);
}

#[test]
fn create_reports_an_unwritable_path() {
    let dir = std::env::temp_dir()
        .join("dialcrm-no-such-dir")
        .join("x.wav");
    let err = Recorder::create(&dir, RecorderConfig::default(), Instant::now()).unwrap_err();
    assert!(matches!(err, RecorderError::Wav(_)));
}

/// `n` recordings started at `t0`, each to a temporary file named after `name`.
fn recordings(name: &str, n: usize, t0: Instant) -> (Vec<TempWav>, Vec<Recorder>) {
    let files: Vec<TempWav> = (0..n)
        .map(|k| TempWav::new(&format!("{name}-{k}")))
        .collect();
    let recorders = files
        .iter()
        .map(|f| Recorder::create(&f.0, RecorderConfig::default(), t0).unwrap())
        .collect();
    (files, recorders)
}

#[test]
fn many_recordings_at_once_are_each_written_whole() {
    let t0 = Instant::now();
    let (files, recorders) = recordings("many", 40, t0);
    for i in 0..50u32 {
        for (k, rec) in recorders.iter().enumerate() {
            let value = k as i16 + 1;
            let tap = rec.tap();
            assert!(tap.push(Side::Agent, i * 160, &[value; 160], t0 + MS20 * i));
            assert!(tap.push(
                Side::Customer,
                9000 + i * 160,
                &[-value; 160],
                t0 + MS20 * i
            ));
        }
    }
    for rec in recorders {
        let stats = rec.finish().unwrap();
        assert_eq!((stats.frames_written, stats.dropped), (8000, 0));
    }
    for (k, file) in files.iter().enumerate() {
        let value = k as i16 + 1;
        let (_, left, right) = read_channels(&file.0);
        assert_eq!(left, vec![value; 8000]);
        assert_eq!(right, vec![-value; 8000]);
    }
}

#[test]
fn recordings_share_a_few_writer_threads() {
    let t0 = Instant::now();
    let (_files, recorders) = recordings("shared", 20, t0);
    let writers = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("recorder"))
        .count();
    assert!(
        (1..=WRITER_THREADS).contains(&writers),
        "{writers} writer threads for 20 recordings"
    );
    for rec in recorders {
        rec.finish().unwrap();
    }
}
