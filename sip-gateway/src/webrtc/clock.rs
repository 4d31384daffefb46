//! The agent leg's outgoing RTP clock, continuous across bridged calls.

use std::time::{Duration, Instant};

/// Samples per second of G.711.
const RATE: u64 = 8000;
/// A forward step in a source's timestamps beyond this starts afresh (one second).
const MAX_STEP: u32 = 8000;

/// Maps the timestamps of whatever source feeds the leg onto one timeline.
///
/// Sources come and go (a call, a prompt, the next call) with unrelated
/// timestamps; the browser must see one stream whose timestamps advance with
/// real time, so its jitter buffer never resets or stalls.
#[derive(Debug, Clone, Default)]
pub struct OutgoingClock {
    last: Option<Last>,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    source_ts: u32,
    out_ts: u64,
    samples: u32,
    at: Instant,
}

impl OutgoingClock {
    /// Creates a clock whose first frame goes out at timestamp 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the outgoing timestamp for a frame of `samples` that its source stamped `source_ts`.
    pub fn stamp(&mut self, source_ts: u32, samples: u32, now: Instant) -> u64 {
        let out_ts = match self.last {
            None => 0,
            Some(last) => {
                let step = source_ts.wrapping_sub(last.source_ts);
                if step > 0 && step <= MAX_STEP {
                    last.out_ts + u64::from(step)
                } else {
                    // A new source, or one that jumped: follow the wall clock,
                    // and never overlap the frame sent last.
                    let elapsed = samples_in(now.saturating_duration_since(last.at));
                    last.out_ts + elapsed.max(u64::from(last.samples))
                }
            }
        };
        self.last = Some(Last {
            source_ts,
            out_ts,
            samples,
            at: now,
        });
        out_ts
    }
}

fn samples_in(d: Duration) -> u64 {
    // Whole 20 ms frames only, so the timeline stays on the frame grid.
    let samples = d.as_micros() as u64 * RATE / 1_000_000;
    samples - samples % 160
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_one_source_step_by_step() {
        let t0 = Instant::now();
        let mut clock = OutgoingClock::new();
        let ms = Duration::from_millis;
        assert_eq!(clock.stamp(5000, 160, t0), 0);
        assert_eq!(clock.stamp(5160, 160, t0 + ms(20)), 160);
        // A lost frame at the source keeps its gap.
        assert_eq!(clock.stamp(5480, 160, t0 + ms(60)), 480);
    }

    #[test]
    fn a_new_source_continues_after_the_wall_clock_gap() {
        let t0 = Instant::now();
        let mut clock = OutgoingClock::new();
        clock.stamp(100, 160, t0);
        // The next call starts ten seconds later with unrelated timestamps.
        let next = clock.stamp(3_000_000_000, 160, t0 + Duration::from_secs(10));
        assert_eq!(next, 80_000);
        let after = clock.stamp(3_000_000_160, 160, t0 + Duration::from_millis(10_020));
        assert_eq!(after, 80_160);
    }

    #[test]
    fn a_source_going_backwards_never_overlaps() {
        let t0 = Instant::now();
        let mut clock = OutgoingClock::new();
        clock.stamp(1000, 160, t0);
        assert_eq!(clock.stamp(1000, 160, t0), 160);
        assert_eq!(clock.stamp(500, 160, t0), 320);
    }

    #[test]
    fn wraps_with_the_source() {
        let t0 = Instant::now();
        let mut clock = OutgoingClock::new();
        clock.stamp(u32::MAX - 79, 160, t0);
        assert_eq!(clock.stamp(80, 160, t0 + Duration::from_millis(20)), 160);
    }
}
