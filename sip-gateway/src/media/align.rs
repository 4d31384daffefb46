//! Lines up the two sides of a call on one timeline for stereo recording.
//!
//! Each side is placed by its RTP timestamps, anchored to the arrival time of
//! its first frame, so gaps (loss, silence suppression, hold) become silence
//! and the sides stay in step. A side whose timestamps stray too far from
//! arrival time (a new source, a restart) is re-anchored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A side of the call, and its channel in the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The agent, recorded on the left channel.
    Agent,
    /// The customer, recorded on the right channel.
    Customer,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Agent => 0,
            Side::Customer => 1,
        }
    }
}

/// Counters of what alignment had to discard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlignStats {
    /// Samples that arrived after their place had been written.
    pub late_samples: u64,
    /// Times a side was re-anchored to arrival time.
    pub resyncs: u64,
}

/// Places frames from both sides on a shared timeline and releases stereo
/// samples once both sides are complete or the wait for one has run out.
#[derive(Debug)]
pub struct Aligner {
    start: Instant,
    sample_rate: u32,
    max_wait: u64,
    resync: u64,
    written: u64,
    newest_arrival: u64,
    tracks: [Track; 2],
    stats: AlignStats,
}

#[derive(Debug, Default)]
struct Track {
    /// Samples from position `written` onwards.
    pending: VecDeque<i16>,
    /// RTP timestamp and timeline position of the anchoring frame.
    anchor: Option<(u32, u64)>,
}

impl Aligner {
    /// Creates an aligner whose timeline starts at `start`; a side is waited
    /// for at most `max_wait` before its missing audio is written as silence.
    pub fn new(start: Instant, sample_rate: u32, max_wait: Duration) -> Self {
        let mut a = Self {
            start,
            sample_rate,
            max_wait: 0,
            resync: u64::from(sample_rate),
            written: 0,
            newest_arrival: 0,
            tracks: [Track::default(), Track::default()],
            stats: AlignStats::default(),
        };
        a.max_wait = a.position(start + max_wait);
        a
    }

    /// Places one frame of `side` with its RTP timestamp and arrival time.
    pub fn push(&mut self, side: Side, timestamp: u32, samples: &[i16], at: Instant) {
        let arrival = self.position(at);
        let len = samples.len() as u64;
        self.newest_arrival = self.newest_arrival.max(arrival + len);
        let track = &mut self.tracks[side.index()];
        let mut place = match track.anchor {
            None => None,
            Some((ts, pos)) => {
                let delta = i64::from(timestamp.wrapping_sub(ts) as i32);
                u64::try_from(pos as i64 + delta).ok()
            }
        };
        if place.is_none_or(|p| p.abs_diff(arrival) > self.resync) {
            if track.anchor.is_some() {
                self.stats.resyncs += 1;
            }
            track.anchor = Some((timestamp, arrival));
            place = Some(arrival);
        }
        let place = place.unwrap_or(arrival);
        let skip = self.written.saturating_sub(place).min(len);
        self.stats.late_samples += skip;
        if skip == len {
            return;
        }
        let samples = &samples[skip as usize..];
        let offset = (place + skip - self.written) as usize;
        if track.pending.len() < offset + samples.len() {
            track.pending.resize(offset + samples.len(), 0);
        }
        for (slot, &s) in track.pending.range_mut(offset..).zip(samples) {
            *slot = s;
        }
    }

    /// Moves interleaved stereo samples that are ready into `out`.
    pub fn pop_ready(&mut self, out: &mut Vec<i16>) {
        let complete = self.tracks.iter().map(|t| self.end(t)).min().unwrap_or(0);
        let waited = self.newest_arrival.saturating_sub(self.max_wait);
        self.emit_until(complete.max(waited), out);
    }

    /// Moves everything placed so far into `out`, padding the shorter side.
    pub fn drain(&mut self, out: &mut Vec<i16>) {
        let end = self.tracks.iter().map(|t| self.end(t)).max().unwrap_or(0);
        self.emit_until(end, out);
    }

    /// Returns how many stereo frames have been released.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Returns the counters.
    pub fn stats(&self) -> AlignStats {
        self.stats
    }

    fn end(&self, track: &Track) -> u64 {
        self.written + track.pending.len() as u64
    }

    fn emit_until(&mut self, until: u64, out: &mut Vec<i16>) {
        let count = until.saturating_sub(self.written);
        for _ in 0..count {
            for track in &mut self.tracks {
                out.push(track.pending.pop_front().unwrap_or(0));
            }
        }
        self.written += count;
    }

    fn position(&self, at: Instant) -> u64 {
        let micros = at.saturating_duration_since(self.start).as_micros();
        u64::try_from(micros * u128::from(self.sample_rate) / 1_000_000).unwrap_or(u64::MAX / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    fn aligner(t0: Instant) -> Aligner {
        Aligner::new(t0, 8000, Duration::from_millis(200))
    }

    fn left_right(out: &[i16]) -> (Vec<i16>, Vec<i16>) {
        let l = out.iter().step_by(2).copied().collect();
        let r = out.iter().skip(1).step_by(2).copied().collect();
        (l, r)
    }

    #[test]
    fn waits_for_both_sides_then_interleaves() {
        let t0 = Instant::now();
        let mut a = aligner(t0);
        let mut out = Vec::new();
        a.push(Side::Agent, 0, &[1; 160], t0);
        a.pop_ready(&mut out);
        assert!(out.is_empty());
        a.push(Side::Customer, 5000, &[2; 160], t0);
        a.pop_ready(&mut out);
        assert_eq!(out.len(), 320);
        assert_eq!(left_right(&out), (vec![1; 160], vec![2; 160]));
    }

    #[test]
    fn gaps_become_silence_and_sides_stay_in_step() {
        let t0 = Instant::now();
        let mut a = aligner(t0);
        let mut out = Vec::new();
        // Customer starts 40 ms late; agent loses its second packet.
        a.push(Side::Agent, 100, &[1; 160], t0);
        a.push(Side::Agent, 420, &[1; 160], t0 + MS20 * 2);
        a.push(Side::Customer, 9000, &[2; 160], t0 + MS20 * 2);
        a.drain(&mut out);
        let (l, r) = left_right(&out);
        assert_eq!(l.len(), 480);
        assert_eq!(&l[..160], &[1; 160]);
        assert_eq!(&l[160..320], &[0; 160]);
        assert_eq!(&l[320..], &[1; 160]);
        assert_eq!(&r[..320], &[0; 320]);
        assert_eq!(&r[320..], &[2; 160]);
    }

    #[test]
    fn a_silent_side_is_padded_once_the_wait_runs_out() {
        let t0 = Instant::now();
        let mut a = aligner(t0);
        let mut out = Vec::new();
        for i in 0..20u32 {
            a.push(Side::Agent, i * 160, &[1; 160], t0 + MS20 * i);
            a.pop_ready(&mut out);
        }
        // 400 ms of agent audio, minus the 200 ms (1600 samples) wait.
        assert_eq!(out.len(), 2 * (3200 - 1600));
        assert!(left_right(&out).1.iter().all(|&s| s == 0));
        // Customer audio for time already written is counted as late.
        a.push(Side::Customer, 0, &[2; 160], t0);
        assert_eq!(a.stats().late_samples, 160);
    }

    #[test]
    fn a_timestamp_jump_reanchors_to_arrival() {
        let t0 = Instant::now();
        let mut a = aligner(t0);
        let mut out = Vec::new();
        a.push(Side::Agent, 0, &[1; 160], t0);
        a.push(Side::Agent, 3_000_000, &[3; 160], t0 + MS20);
        a.push(Side::Customer, 0, &[2; 320], t0);
        a.drain(&mut out);
        let (l, _) = left_right(&out);
        assert_eq!(l.len(), 320);
        assert_eq!(&l[160..], &[3; 160]);
        assert_eq!(a.stats().resyncs, 1);
    }
}
