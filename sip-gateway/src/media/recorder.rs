//! Stereo call recording: agent left, customer right, 16-bit 8 kHz WAV.
//!
//! The forwarding path only copies decoded frames into a bounded channel and
//! never blocks; when the channel is full the frame is dropped and counted.
//! A few writer threads, shared by every recording in the process, take what
//! has queued every [`TICK`], align the sides, write, and flush the WAV header
//! periodically so a crash leaves a playable file.
//!
//! The writers poll rather than wait on each channel: a thread waiting on a
//! channel must be woken by the sender, which would put a system call on the
//! forwarding path for every frame, and a thread per recording would put a
//! thousand threads in the scheduler's queue beside the forwarding path.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{
    self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;

pub use super::align::Side;
use super::align::{AlignStats, Aligner};
use super::g711::G711;

/// Sample rate of recordings.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples carried by one channel message; longer frames are split.
const CHUNK: usize = 160;
/// How often a writer thread takes the frames queued for its recordings.
pub const TICK: Duration = Duration::from_millis(20);
/// Writer threads shared by all recordings: one keeps up with a thousand calls
/// (docs/benchmarks.md), the second lets the others go on while one waits on the disk.
const WRITER_THREADS: usize = 2;
/// A recording with nothing new for this long has its header brought up to date.
const IDLE_FLUSH: Duration = Duration::from_secs(1);

/// Reasons a recording fails.
#[derive(Debug, Error)]
pub enum RecorderError {
    /// The WAV file could not be created, written or finalised.
    #[error("recording WAV failed: {0}")]
    Wav(#[from] hound::Error),
    /// No writer thread could be started.
    #[error("cannot start the recording thread: {0}")]
    Spawn(std::io::Error),
    /// The writer thread stopped before it was asked to.
    #[error("the recording thread has stopped")]
    WriterGone,
}

/// Settings of one recording.
#[derive(Debug, Clone, Copy)]
pub struct RecorderConfig {
    /// Frames the channel holds before new ones are dropped.
    pub capacity: usize,
    /// How long to wait for a silent side before writing it as silence.
    pub max_wait: Duration,
    /// How much audio to write between header flushes.
    pub flush_every: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            capacity: 256,
            // In a plain bridged call both sides are stamped as their packets
            // come off the sockets (the peer's by the peer's own task, which
            // relays it straight out), so at 1,000 recorded calls no side ran
            // late (docs/benchmarks.md, "Recordings at scale").
            max_wait: Duration::from_millis(200),
            flush_every: Duration::from_secs(1),
        }
    }
}

/// What a finished recording contains and what it lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingStats {
    /// Stereo sample frames written.
    pub frames_written: u64,
    /// Frames dropped because the channel was full.
    pub dropped: u64,
    /// Alignment counters.
    pub align: AlignStats,
}

/// A recording in progress, owned by the call.
#[derive(Debug)]
pub struct Recorder {
    tap: RecorderTap,
    done: Option<Receiver<Result<RecordingStats, RecorderError>>>,
}

/// The cheap, cloneable handle the forwarding path pushes frames through.
#[derive(Debug, Clone)]
pub struct RecorderTap {
    tx: SyncSender<Command>,
    paused: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// Creates the WAV file at `path` and hands it to a writer thread; the
    /// recording's timeline starts at `now`.
    pub fn create(
        path: &Path,
        config: RecorderConfig,
        now: Instant,
    ) -> Result<Self, RecorderError> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::create(path, spec)?;
        let (tx, rx) = mpsc::sync_channel(config.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = mpsc::channel();
        let job = Job {
            rx,
            writer: Writer {
                wav,
                aligner: Aligner::new(now, SAMPLE_RATE, config.max_wait),
                flush_every: duration_samples(config.flush_every).max(1),
                unflushed: 0,
                last_frame: Instant::now(),
                scratch: Vec::new(),
                dropped: dropped.clone(),
            },
            done: done_tx,
        };
        hand_over(job)?;
        Ok(Self {
            tap: RecorderTap {
                tx,
                paused: Arc::new(AtomicBool::new(false)),
                dropped,
            },
            done: Some(done),
        })
    }

    /// Returns a handle for pushing frames.
    pub fn tap(&self) -> RecorderTap {
        self.tap.clone()
    }

    /// Records silence instead of audio until [`Recorder::resume`], e.g. while a card number is read out.
    pub fn pause(&self) {
        self.tap.paused.store(true, Ordering::Release);
    }

    /// Records audio again after [`Recorder::pause`].
    pub fn resume(&self) {
        self.tap.paused.store(false, Ordering::Release);
    }

    /// Writes what is ready and flushes the WAV header; blocks until done,
    /// up to a [`TICK`] more than the writing takes.
    pub fn flush(&self) -> Result<(), RecorderError> {
        let (ack_tx, ack_rx) = mpsc::channel();
        self.tap
            .tx
            .send(Command::Flush(ack_tx))
            .map_err(|_| RecorderError::WriterGone)?;
        ack_rx.recv().map_err(|_| RecorderError::WriterGone)?
    }

    /// Writes everything, finalises the file and returns what was recorded.
    pub fn finish(mut self) -> Result<RecordingStats, RecorderError> {
        // A send error means the writer has already let the recording go; the
        // result it left says why.
        let _ = self.tap.tx.send(Command::Finish);
        let done = self.done.take().ok_or(RecorderError::WriterGone)?;
        done.recv().map_err(|_| RecorderError::WriterGone)?
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.done.is_some() {
            // Taps may outlive the recorder; tell the writer to finalise now.
            let _ = self.tap.tx.try_send(Command::Finish);
        }
    }
}

impl RecorderTap {
    /// Queues decoded audio of `side` that starts at RTP `timestamp`; never
    /// blocks, and returns false when a frame had to be dropped.
    pub fn push(&self, side: Side, timestamp: u32, samples: &[i16], now: Instant) -> bool {
        let mut all_sent = true;
        let mut ts = timestamp;
        for chunk in samples.chunks(CHUNK) {
            let mut frame = Frame {
                side,
                timestamp: ts,
                at: now,
                len: chunk.len(),
                samples: [0; CHUNK],
            };
            frame.samples[..chunk.len()].copy_from_slice(chunk);
            all_sent &= self.send(frame);
            ts = ts.wrapping_add(CHUNK as u32);
        }
        all_sent
    }

    /// Queues a G.711 payload of `side`, decoding it without allocating.
    pub fn push_g711(
        &self,
        side: Side,
        timestamp: u32,
        codec: G711,
        payload: &[u8],
        now: Instant,
    ) -> bool {
        let mut all_sent = true;
        let mut ts = timestamp;
        for chunk in payload.chunks(CHUNK) {
            let mut frame = Frame {
                side,
                timestamp: ts,
                at: now,
                len: chunk.len(),
                samples: [0; CHUNK],
            };
            codec.decode(chunk, &mut frame.samples);
            all_sent &= self.send(frame);
            ts = ts.wrapping_add(CHUNK as u32);
        }
        all_sent
    }

    /// Returns how many frames have been dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, mut frame: Frame) -> bool {
        if self.paused.load(Ordering::Acquire) {
            // Paused audio never leaves the forwarding path.
            frame.samples = [0; CHUNK];
        }
        match self.tx.try_send(Command::Frame(frame)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

// Frames are kept inline so pushing allocates nothing; nearly every message
// is a frame, so boxing it would only add an allocation per packet.
#[allow(clippy::large_enum_variant)]
enum Command {
    Frame(Frame),
    Flush(mpsc::Sender<Result<(), RecorderError>>),
    Finish,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Frame(_) => "Frame",
            Command::Flush(_) => "Flush",
            Command::Finish => "Finish",
        })
    }
}

struct Frame {
    side: Side,
    timestamp: u32,
    at: Instant,
    len: usize,
    samples: [i16; CHUNK],
}

/// A recording as its writer thread holds it.
struct Job {
    rx: Receiver<Command>,
    writer: Writer,
    done: Sender<Result<RecordingStats, RecorderError>>,
}

impl Job {
    /// Writes what has queued; false once the recording is over.
    fn service(&mut self, now: Instant) -> Result<bool, RecorderError> {
        let mut frames = false;
        loop {
            match self.rx.try_recv() {
                Ok(Command::Frame(f)) => {
                    self.writer
                        .aligner
                        .push(f.side, f.timestamp, &f.samples[..f.len], f.at);
                    frames = true;
                }
                Ok(Command::Flush(ack)) => {
                    let result = self.writer.write_ready().and_then(|()| self.writer.flush());
                    let _ = ack.send(result);
                }
                Ok(Command::Finish) | Err(TryRecvError::Disconnected) => return Ok(false),
                Err(TryRecvError::Empty) => break,
            }
        }
        if frames {
            self.writer.last_frame = now;
            self.writer.write_ready()?;
        }
        let idle = now.saturating_duration_since(self.writer.last_frame) >= IDLE_FLUSH;
        let unflushed = self.writer.unflushed;
        if unflushed >= self.writer.flush_every || (idle && unflushed > 0) {
            self.writer.flush()?;
        }
        Ok(true)
    }

    /// Reports how the recording ended, finishing the file if it can.
    fn end(self, serviced: Result<bool, RecorderError>) {
        let result = serviced.and_then(|_| self.writer.finish());
        // The recorder may have been dropped without waiting for the result.
        let _ = self.done.send(result);
    }
}

/// The writer threads, started as the first recordings need them.
static WRITERS: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());
/// Spreads recordings over the writer threads in turn.
static NEXT_WRITER: AtomicUsize = AtomicUsize::new(0);

/// Gives a recording to a writer thread, starting or replacing threads as needed.
fn hand_over(job: Job) -> Result<(), RecorderError> {
    // A panic while the list was locked leaves it usable: a dead thread's
    // sender is replaced below.
    let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
    while writers.len() < WRITER_THREADS {
        let index = writers.len();
        writers.push(spawn_writer(index)?);
    }
    let index = NEXT_WRITER.fetch_add(1, Ordering::Relaxed) % WRITER_THREADS;
    match writers[index].send(job) {
        Ok(()) => Ok(()),
        Err(mpsc::SendError(job)) => {
            // The thread has gone (it can only have panicked): start another.
            tracing::warn!(index, "recording writer thread had stopped; restarting it");
            writers[index] = spawn_writer(index)?;
            writers[index]
                .send(job)
                .map_err(|_| RecorderError::WriterGone)
        }
    }
}

fn spawn_writer(index: usize) -> Result<Sender<Job>, RecorderError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("recorder-{index}"))
        .spawn(move || serve(rx))
        .map_err(RecorderError::Spawn)?;
    Ok(tx)
}

/// A writer thread: takes new recordings as they come and services all of them every tick.
fn serve(jobs: Receiver<Job>) {
    let mut recordings: Vec<Job> = Vec::new();
    let mut next_tick = Instant::now() + TICK;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match jobs.recv_timeout(wait) {
            Ok(job) => {
                recordings.push(job);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if recordings.is_empty() => return,
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
        let now = Instant::now();
        next_tick = now + TICK;
        let mut k = 0;
        while k < recordings.len() {
            match recordings[k].service(now) {
                Ok(true) => k += 1,
                serviced => recordings.swap_remove(k).end(serviced),
            }
        }
    }
}

struct Writer {
    wav: hound::WavWriter<BufWriter<File>>,
    aligner: Aligner,
    flush_every: u64,
    unflushed: u64,
    last_frame: Instant,
    scratch: Vec<i16>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    /// Writes everything, finalises the file and returns what was recorded.
    fn finish(mut self) -> Result<RecordingStats, RecorderError> {
        self.scratch.clear();
        self.aligner.drain(&mut self.scratch);
        self.write_scratch()?;
        let stats = RecordingStats {
            frames_written: self.aligner.written(),
            dropped: self.dropped.load(Ordering::Relaxed),
            align: self.aligner.stats(),
        };
        self.wav.finalize()?;
        tracing::debug!(?stats, "recording finished");
        Ok(stats)
    }

    fn write_ready(&mut self) -> Result<(), RecorderError> {
        self.scratch.clear();
        self.aligner.pop_ready(&mut self.scratch);
        self.write_scratch()
    }

    fn write_scratch(&mut self) -> Result<(), RecorderError> {
        for &s in &self.scratch {
            self.wav.write_sample(s)?;
        }
        self.unflushed += (self.scratch.len() / 2) as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecorderError> {
        self.wav.flush()?;
        self.unflushed = 0;
        Ok(())
    }
}

fn duration_samples(d: Duration) -> u64 {
    u64::try_from(d.as_millis() * u128::from(SAMPLE_RATE) / 1000).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
