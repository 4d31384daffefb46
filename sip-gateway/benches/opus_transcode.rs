//! What transcoding one agent leg between Opus and G.711 costs, per 20 ms frame.
//!
//! `cargo bench -p sip-gateway --bench opus_transcode` times, on one thread, the two
//! halves of what an Opus agent leg does every 20 ms: the browser's packet decoded,
//! decimated to 8 kHz and companded to G.711; and a G.711 frame from the trunk
//! expanded, interpolated to 48 kHz and encoded. The audio is speech-like: a tone
//! gliding through the telephone band with a syllable-rate envelope, so the
//! encoder works as it would on a voice rather than on silence.
//! `OPUS_BENCH_FRAMES` sets the frames per run (default 15,000: five minutes of audio);
//! `OPUS_BENCH_COMPLEXITY` (0–10) overrides the encoder's complexity.
//!
//! Each figure is the thread's own CPU time (Linux's `/proc/thread-self/schedstat`),
//! so a busy machine stretches the wall time but not the figure; wall time is shown
//! beside it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sip_gateway::media::opus::{OpusDecoder, OpusEncoder, OpusPacket, FRAME};
use sip_gateway::media::resample::{Decimator, Interpolator};
use sip_gateway::media::G711;

#[path = "common/proc_stat.rs"]
mod proc_stat;

use proc_stat::thread_cpu;

/// 20 ms at 8 kHz.
const NARROW: usize = 160;

fn main() {
    let frames: usize = std::env::var("OPUS_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_000);
    let speech = speech_like(frames * NARROW);
    let mut law = vec![0u8; speech.len()];
    G711::Pcmu.encode(&speech, &mut law);

    // The browser's packets, made beforehand so only decoding is timed.
    let mut encoder = OpusEncoder::new().expect("encoder");
    let mut browser_packets = Vec::with_capacity(frames);
    for (n, frame) in speech.chunks(NARROW).enumerate() {
        encoder
            .encode(frame, (n * NARROW) as u64, &mut browser_packets)
            .expect("encoding the browser's audio");
    }
    let bytes: usize = browser_packets.iter().map(|p| p.payload.len()).sum();

    let to_trunk = time(|| {
        let mut decoder = OpusDecoder::new().expect("decoder");
        let mut pcm = Vec::with_capacity(NARROW);
        let mut out = vec![0u8; NARROW];
        for packet in &browser_packets {
            pcm.clear();
            decoder.decode(&packet.payload, &mut pcm).expect("decoding");
            G711::Pcmu.encode(&pcm, &mut out[..pcm.len()]);
            black_box(&out);
        }
    });
    let complexity: Option<u8> = std::env::var("OPUS_BENCH_COMPLEXITY")
        .ok()
        .and_then(|v| v.parse().ok());
    let to_browser = time(|| {
        let mut encoder = OpusEncoder::new().expect("encoder");
        if let Some(c) = complexity {
            encoder.set_complexity(c).expect("setting the complexity");
        }
        let mut pcm = vec![0i16; NARROW];
        let mut packets: Vec<OpusPacket> = Vec::with_capacity(1);
        for (n, frame) in law.chunks(NARROW).enumerate() {
            G711::Pcmu.decode(frame, &mut pcm);
            packets.clear();
            encoder
                .encode(&pcm, (n * NARROW) as u64, &mut packets)
                .expect("encoding");
            black_box(&packets);
        }
    });
    let resample_only = time(|| {
        let mut up = Interpolator::new();
        let mut down = Decimator::new();
        let mut wide = Vec::with_capacity(FRAME);
        let mut narrow = Vec::with_capacity(NARROW);
        for frame in speech.chunks(NARROW) {
            wide.clear();
            narrow.clear();
            up.process(frame, &mut wide);
            down.process(&wide, &mut narrow);
            black_box(&narrow);
        }
    });

    let per_frame = |d: Duration| d.as_secs_f64() * 1e6 / frames as f64;
    let both = per_frame(to_trunk.cpu) + per_frame(to_browser.cpu);
    println!("frames: {frames} (20 ms each, {} s of audio)", frames / 50);
    if let Some(c) = complexity {
        println!("encoder complexity: {c}");
    }
    println!(
        "browser packets: {:.1} bytes mean, {:.1} kbit/s",
        bytes as f64 / frames as f64,
        bytes as f64 * 8.0 / (frames as f64 * 0.02) / 1000.0
    );
    println!("| direction | CPU µs per 20 ms frame | wall µs |");
    println!("| --- | ---: | ---: |");
    let rows = [
        ("browser → trunk: Opus decode, 48→8 kHz, G.711", to_trunk),
        ("trunk → browser: G.711, 8→48 kHz, Opus encode", to_browser),
        (
            "both resamplers alone (in the two rows above)",
            resample_only,
        ),
    ];
    for (name, cost) in rows {
        println!(
            "| {name} | {:.1} | {:.1} |",
            per_frame(cost.cpu),
            per_frame(cost.wall)
        );
    }
    println!(
        "| **one transcoded leg, both ways** | **{both:.1}** ({:.2} % of one core) | |",
        both / 20_000.0 * 100.0
    );
}

/// CPU and wall time of one run.
#[derive(Clone, Copy)]
struct Cost {
    cpu: Duration,
    wall: Duration,
}

fn time(run: impl FnOnce()) -> Cost {
    let cpu = thread_cpu().expect("this thread's CPU time");
    let start = Instant::now();
    run();
    Cost {
        cpu: thread_cpu()
            .expect("this thread's CPU time")
            .saturating_sub(cpu),
        wall: start.elapsed(),
    }
}

/// A tone gliding between 200 and 2,400 Hz, switched on and off four times a second.
fn speech_like(len: usize) -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..len)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let frequency = 1300.0 + 1100.0 * (std::f64::consts::TAU * 0.7 * t).sin();
            phase += std::f64::consts::TAU * frequency / 8000.0;
            let envelope = (std::f64::consts::TAU * 2.0 * t).sin().max(0.0);
            (phase.sin() * envelope * 12_000.0) as i16
        })
        .collect()
}
