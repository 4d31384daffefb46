//! Checks a stereo call recording frame by frame: the simulated carrier stamps every 20 ms
//! frame it sends with its leg and index (`sip_gateway::carrier::counter`), so each channel
//! of a gap-free recording holds one leg's frames, each once and in order. Included with
//! `#[path]` by `gateway_load.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use sip_gateway::carrier::counter::{FrameStamp, STAMP_SAMPLES};
use sip_gateway::media::G711;

/// What one channel of a recording holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCheck {
    /// The leg most of its frames came from, if any frame was found.
    pub leg: Option<u32>,
    /// Frames of that leg found whole.
    pub frames: u64,
    /// Indices between the first and the last frame of the leg that are not there.
    pub missing: u64,
    /// Frames of the leg found more than once (each extra copy counted).
    pub duplicated: u64,
    /// Frames of the leg found before one with a lower index.
    pub out_of_order: u64,
    /// Whole frames of any other leg.
    pub foreign: u64,
    /// Consecutive frames not exactly 20 ms apart: a time gap, not a lost frame.
    pub shifted: u64,
}

impl ChannelCheck {
    /// Whether the channel has every frame of its leg once and in order, and nothing else.
    pub fn is_whole(&self) -> bool {
        self.leg.is_some()
            && self.missing == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.foreign == 0
    }

    /// Counts the faults, for finding the worst file.
    pub fn faults(&self) -> u64 {
        self.missing + self.duplicated + self.out_of_order + self.foreign
    }
}

/// What one recording holds.
#[derive(Debug, Clone, Copy)]
pub struct FileCheck {
    /// Seconds of stereo audio in the file.
    pub seconds: f64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Whether the header's length covers the whole file (the file was finalised).
    pub finalised: bool,
    /// Left (what the gateway sent the leg) and right (what the leg sent).
    pub channels: [ChannelCheck; 2],
}

impl FileCheck {
    /// Whether both channels are whole, from different legs, and the file was finalised.
    pub fn is_whole(&self) -> bool {
        self.finalised
            && self.channels.iter().all(ChannelCheck::is_whole)
            && self.channels[0].leg != self.channels[1].leg
    }
}

/// Reads a stereo 16-bit WAV and checks both channels.
pub fn check_file(path: &Path) -> Result<FileCheck> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let reader =
        hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let spec = reader.spec();
    anyhow::ensure!(
        spec.channels == 2 && spec.bits_per_sample == 16 && spec.sample_rate == 8000,
        "{} is not 8 kHz 16-bit stereo: {spec:?}",
        path.display()
    );
    let data_bytes = u64::from(reader.len()) * 2;
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    Ok(FileCheck {
        seconds: left.len() as f64 / 8000.0,
        bytes,
        // hound writes a 44-byte header for 16-bit PCM; more bytes than that plus the data
        // means samples were written after the last header update.
        finalised: bytes <= data_bytes + 44,
        channels: [check_channel(&left), check_channel(&right)],
    })
}

/// Finds every whole stamped frame in one channel and checks the sequence of one leg.
pub fn check_channel(samples: &[i16]) -> ChannelCheck {
    let found = [G711::Pcmu, G711::Pcma]
        .into_iter()
        .map(|codec| stamps(codec, samples))
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let mut per_leg: BTreeMap<u32, u64> = BTreeMap::new();
    for (_, stamp) in &found {
        *per_leg.entry(stamp.leg).or_default() += 1;
    }
    let Some((&leg, &frames)) = per_leg.iter().max_by_key(|(_, n)| **n) else {
        return ChannelCheck::default();
    };
    let own: Vec<(usize, u32)> = found
        .iter()
        .filter(|(_, s)| s.leg == leg)
        .map(|(at, s)| (*at, s.index))
        .collect();
    let mut indices: Vec<u32> = own.iter().map(|(_, i)| *i).collect();
    let out_of_order = indices.windows(2).filter(|w| w[1] < w[0]).count() as u64;
    let shifted = own
        .windows(2)
        .filter(|w| w[1].1 == w[0].1.wrapping_add(1) && w[1].0 - w[0].0 != STAMP_SAMPLES)
        .count() as u64;
    indices.sort_unstable();
    indices.dedup();
    let distinct = indices.len() as u64;
    let span = match (indices.first(), indices.last()) {
        (Some(first), Some(last)) => u64::from(last - first) + 1,
        _ => 0,
    };
    ChannelCheck {
        leg: Some(leg),
        frames,
        missing: span - distinct,
        duplicated: frames - distinct,
        out_of_order,
        foreign: found.len() as u64 - frames,
        shifted,
    }
}

/// Every whole stamped frame in `samples` decoded with `codec`, with its position.
fn stamps(codec: G711, samples: &[i16]) -> Vec<(usize, FrameStamp)> {
    let mut found = Vec::with_capacity(samples.len() / STAMP_SAMPLES + 1);
    let mut at = 0;
    while at + STAMP_SAMPLES <= samples.len() {
        match FrameStamp::read(codec, &samples[at..]) {
            Some(stamp) => {
                found.push((at, stamp));
                at += STAMP_SAMPLES;
            }
            None => at += 1,
        }
    }
    found
}
