//! What predictive pacing learns from recent calls, and the estimates drawn from it.
//!
//! Every estimate comes from the campaign's own recent calls: the share of
//! lines answered live; how long lines take to be answered live, or to end
//! otherwise (so a line still ringing is judged by its age); the wrap-up
//! times (so an agent's remaining wrap-up follows what agents actually
//! take); and a log-normal fit of talk times (so a call's remaining talk
//! depends on how long it has already lasted).

use std::collections::VecDeque;
use std::time::Duration;

use crate::compliance::ABANDON_GRACE;

/// Talk samples needed before the log-normal fit replaces the fallback.
const MIN_TALK_SAMPLES: usize = 10;

/// Mean talk assumed while there is no talk history, in seconds.
const FALLBACK_TALK: f64 = 60.0;

/// Time from order to live answer assumed while there is no history, in seconds.
const FALLBACK_WAIT: f64 = 10.0;

/// Most times ahead at which the planner compares answers with agents.
pub(crate) const MAX_CHECKPOINTS: usize = 16;

/// Least time between checkpoints, in seconds: one and a half grace
/// periods. Closer checkpoints cost planning time and, measured on the
/// simulator, pace no better.
const MIN_CHECKPOINT_STEP: f64 = 3.0;

/// The last `capacity` samples of something, with their running sum.
#[derive(Clone, Debug)]
pub(crate) struct Recent {
    values: VecDeque<f64>,
    sum: f64,
    capacity: usize,
}

impl Recent {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            values: VecDeque::with_capacity(capacity),
            sum: 0.0,
            capacity: capacity.max(1),
        }
    }

    /// Adds a sample, returning the one it pushed out of the window, if any.
    pub(crate) fn push(&mut self, value: f64) -> Option<f64> {
        let old = if self.values.len() == self.capacity {
            self.values.pop_front()
        } else {
            None
        };
        if let Some(old) = old {
            self.sum -= old;
        }
        self.values.push_back(value);
        self.sum += value;
        old
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        // Recomputing would cost O(n); the running sum drifts by at most
        // rounding error over a window this short.
        (!self.values.is_empty()).then(|| self.sum / self.values.len() as f64)
    }
}

/// Recent samples kept also in order of size, for shares above a value.
#[derive(Clone, Debug)]
pub(crate) struct Sorted {
    recent: Recent,
    sorted: Vec<f64>,
}

impl Sorted {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            recent: Recent::new(capacity),
            sorted: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn push(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        if let Some(old) = self.recent.push(value) {
            let at = self.sorted.partition_point(|&v| v < old);
            if at < self.sorted.len() {
                self.sorted.remove(at);
            }
        }
        let at = self.sorted.partition_point(|&v| v < value);
        self.sorted.insert(at, value);
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        self.recent.mean()
    }

    /// Returns how many samples are above `value`.
    fn count_above(&self, value: f64) -> usize {
        self.sorted.len() - self.count_below(value, true)
    }

    /// Returns how many samples are `value` or above.
    fn count_from(&self, value: f64) -> usize {
        self.sorted.len() - self.count_below(value, false)
    }

    /// Returns how many samples are below `value` (or at it, with `inclusive`).
    fn count_below(&self, value: f64, inclusive: bool) -> usize {
        // A plain bisection: the planner asks this thousands of times a
        // minute, and unoptimised builds (the tests) pay for every closure.
        let (mut low, mut high) = (0, self.sorted.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let v = self.sorted[mid];
            if v < value || (inclusive && v == value) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

/// A log-normal fit of recent samples: the mean and variance of their logarithms.
#[derive(Clone, Debug)]
pub(crate) struct LogNormalFit {
    logs: Recent,
    squares: Recent,
    plain: Recent,
}

impl LogNormalFit {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            logs: Recent::new(capacity),
            squares: Recent::new(capacity),
            plain: Recent::new(capacity),
        }
    }

    /// Adds a sample in seconds; anything under a second counts as one.
    pub(crate) fn push(&mut self, secs: f64) {
        if !secs.is_finite() {
            return;
        }
        let secs = secs.max(1.0);
        let log = secs.ln();
        self.logs.push(log);
        self.squares.push(log * log);
        self.plain.push(secs);
    }

    pub(crate) fn len(&self) -> usize {
        self.logs.len()
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        self.plain.mean()
    }

    /// Returns `(mu, sigma)` once there are enough samples.
    fn parameters(&self) -> Option<(f64, f64)> {
        if self.len() < MIN_TALK_SAMPLES {
            return None;
        }
        let mu = self.logs.mean()?;
        let n = self.len() as f64;
        let variance = (self.squares.mean()? - mu * mu) * n / (n - 1.0);
        // Identical samples would make a step, not a curve: a little spread
        // keeps the survival function smooth.
        Some((mu, variance.max(0.0).sqrt().max(0.05)))
    }
}

/// What the pacer has learnt from recent calls.
#[derive(Clone, Debug)]
pub(crate) struct History {
    /// 1.0 for a line answered live, 0.0 for any other result.
    pub(crate) answered: Recent,
    /// Seconds from order to live answer.
    pub(crate) answer_wait: Sorted,
    /// Seconds from order to any other result (machine, busy, no answer, failure).
    pub(crate) other_wait: Sorted,
    /// Seconds of talk per connected call.
    pub(crate) talk: LogNormalFit,
    /// Seconds of wrap-up per call.
    pub(crate) wrap: Sorted,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            answered: Recent::new(capacity),
            answer_wait: Sorted::new(capacity),
            other_wait: Sorted::new(capacity),
            talk: LogNormalFit::new(capacity),
            wrap: Sorted::new(capacity),
        }
    }

    pub(crate) fn record_wait(&mut self, wait: Duration) {
        self.answer_wait.push(wait.as_secs_f64());
    }

    /// Records a line that ended without a live answer, this long after its order.
    pub(crate) fn record_other(&mut self, after: Duration) {
        self.answered.push(0.0);
        self.other_wait.push(after.as_secs_f64());
    }

    /// Returns the seconds from ordering a line until its answer has an agent or is abandoned.
    pub(crate) fn horizon(&self) -> f64 {
        // An answer may wait out the grace period for an agent.
        self.answer_wait.mean().unwrap_or(FALLBACK_WAIT) + ABANDON_GRACE.as_secs_f64()
    }

    /// Returns the estimates once enough lines have a result.
    pub(crate) fn estimates(&self, min_samples: usize) -> Option<Estimates<'_>> {
        if self.answered.len() < min_samples {
            return None;
        }
        Some(Estimates {
            history: self,
            answer: self.answered.mean()?.clamp(0.01, 1.0),
            wrap: self.wrap.mean().unwrap_or(0.0),
        })
    }
}

/// Estimates drawn from the history, times in seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Estimates<'a> {
    history: &'a History,
    /// Probability that a new line is answered live.
    pub(crate) answer: f64,
    /// Mean wrap-up time.
    pub(crate) wrap: f64,
}

impl Estimates<'_> {
    /// Returns the times ahead, in seconds, at which the planner compares answers with agents.
    ///
    /// Evenly spaced up to the longest recent wait for a live answer, so
    /// that every answer of a line dialled now falls within the last; no
    /// closer than [`MIN_CHECKPOINT_STEP`], and at most [`MAX_CHECKPOINTS`].
    pub(crate) fn checkpoints(&self) -> Vec<f64> {
        let waits = &self.history.answer_wait.sorted;
        let longest = waits.last().copied().unwrap_or(FALLBACK_WAIT).max(1.0);
        let step = (longest / MAX_CHECKPOINTS as f64).max(MIN_CHECKPOINT_STEP);
        let count = (longest / step).floor().max(1.0) as usize;
        (1..=count)
            .map(|i| longest * i as f64 / count as f64)
            .collect()
    }

    /// Writes the probabilities that a line `age` seconds after its order is answered live within each time.
    ///
    /// Of the recent lines still unresolved at that age, the share answered
    /// live by then: a line older than any live answer took will most
    /// likely ring out.
    pub(crate) fn answered_within(&self, age: f64, times: &[f64], out: &mut [f64]) {
        let h = self.history;
        let (live, other) = (h.answer_wait.len(), h.other_wait.len());
        // Each kind's survival is weighed by its share of results, taken
        // from the longer window of results rather than the two samples.
        let live_left = share(h.answer_wait.count_from(age), live);
        let other_left = share(h.other_wait.count_from(age), other);
        let unresolved = self.answer * live_left + (1.0 - self.answer) * other_left;
        for (chance, &within) in out.iter_mut().zip(times) {
            *chance = if unresolved > 0.0 {
                let answered = live_left - share(h.answer_wait.count_above(age + within), live);
                (self.answer * answered / unresolved).clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
    }

    /// Writes the probabilities that an agent `elapsed` seconds into wrap-up is free within each time.
    ///
    /// Of the recent wrap-ups that lasted past `elapsed`, the share that
    /// ended within the time after it; an agent who has outlasted every
    /// recent wrap-up is taken as free at a constant rate over the mean.
    pub(crate) fn wrap_free_within(&self, elapsed: f64, times: &[f64], out: &mut [f64]) {
        let wraps = &self.history.wrap;
        let lasting = wraps.count_above(elapsed);
        for (chance, &within) in out.iter_mut().zip(times) {
            *chance = if lasting == 0 {
                1.0 - (-within / self.wrap.max(1.0)).exp()
            } else {
                let ended = lasting - wraps.count_above(elapsed + within);
                ended as f64 / lasting as f64
            };
        }
    }

    /// Writes the probabilities that an agent `elapsed` seconds into a call is free within each time.
    ///
    /// The call must end and its wrap-up (taken at its mean) be over: the
    /// talk must end within the time less the wrap-up, given that it has
    /// lasted `elapsed` already, under the log-normal fit.
    pub(crate) fn call_free_within(&self, elapsed: f64, times: &[f64], out: &mut [f64]) {
        let talk = &self.history.talk;
        let fit = talk.parameters();
        let survives = |t: f64| match fit {
            _ if t <= 0.0 => 1.0,
            Some((mu, sigma)) => normal_upper_tail((t.ln() - mu) / sigma),
            None => (-t / talk.mean().unwrap_or(FALLBACK_TALK).max(1.0)).exp(),
        };
        let lasted = survives(elapsed);
        for (chance, &within) in out.iter_mut().zip(times) {
            let talk_left = within - self.wrap;
            *chance = if talk_left <= 0.0 || lasted <= 0.0 {
                0.0
            } else {
                ((lasted - survives(elapsed + talk_left)) / lasted).clamp(0.0, 1.0)
            };
        }
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Returns `P(Z > z)` for a standard normal `Z`.
fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Returns the complementary error function, to a relative error under 1.2e-7.
///
/// A Chebyshev fit (Numerical Recipes' `erfcc`): accurate in the far tail
/// too, where one minus a computed `erf` would lose every digit.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let tail = t * poly.exp();
    if x >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One time at a time, for the tests' sake.
    impl Estimates<'_> {
        fn answered_by(&self, age: f64, within: f64) -> f64 {
            let mut out = [0.0];
            self.answered_within(age, &[within], &mut out);
            out[0]
        }

        fn wrap_free_by(&self, elapsed: f64, within: f64) -> f64 {
            let mut out = [0.0];
            self.wrap_free_within(elapsed, &[within], &mut out);
            out[0]
        }

        fn call_free_by(&self, elapsed: f64, within: f64) -> f64 {
            let mut out = [0.0];
            self.call_free_within(elapsed, &[within], &mut out);
            out[0]
        }
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_715),
            (4.0, 1.541_725_790_028_002e-8),
        ] {
            let got = erfc(x);
            assert!(
                (got - expected).abs() <= 2e-7 * expected,
                "erfc({x}) = {got}"
            );
        }
    }

    #[test]
    fn sorted_window_forgets_the_oldest_sample() {
        let mut w = Sorted::new(3);
        for v in [5.0, 1.0, 3.0, 2.0] {
            w.push(v);
        }
        // 5.0 has left the window.
        assert_eq!(w.len(), 3);
        assert_eq!(w.count_above(2.5), 1);
        assert_eq!(w.count_above(0.0), 3);
        assert!((w.mean().unwrap_or(0.0) - 2.0).abs() < 1e-12);
    }

    fn learnt() -> History {
        let mut h = History::new(300);
        for i in 0..200u32 {
            // One line in four answered live after 3 to 15 s; the rest ring out at 20 s.
            if i % 4 == 0 {
                h.answered.push(1.0);
                h.record_wait(Duration::from_secs(3 + u64::from(i % 13)));
            } else {
                h.record_other(Duration::from_secs(20));
            }
            h.wrap.push(10.0);
            h.talk.push(60.0 + f64::from(i % 60));
        }
        h
    }

    #[test]
    fn a_line_past_every_live_answer_is_taken_as_ringing_out() {
        let h = learnt();
        let est = h.estimates(30).expect("enough history");
        assert!((est.answered_by(0.0, 60.0) - 0.25).abs() < 0.01);
        // Some live answers are still to come at 10 s, so the chance is
        // lower than at first but far from zero; at 16 s none are.
        let mid = est.answered_by(10.0, 60.0);
        assert!(mid > 0.05 && mid < 0.25, "{mid}");
        assert_eq!(est.answered_by(16.0, 60.0), 0.0);
        // Within a few seconds, fewer of them.
        assert!(est.answered_by(0.0, 5.0) < est.answered_by(0.0, 10.0));
        assert_eq!(est.answered_by(0.0, 1.0), 0.0);
    }

    #[test]
    fn checkpoints_reach_the_longest_wait_for_an_answer() {
        let h = learnt();
        let est = h.estimates(30).expect("enough history");
        let times = est.checkpoints();
        assert_eq!(times.last().copied(), Some(15.0));
        assert!(
            times
                .windows(2)
                .all(|w| w[1] - w[0] >= MIN_CHECKPOINT_STEP - 1e-9),
            "{times:?}"
        );
        assert!(times.len() <= MAX_CHECKPOINTS);
    }

    #[test]
    fn a_fixed_wrap_up_is_known_to_the_second() {
        let h = learnt();
        let est = h.estimates(30).expect("enough history");
        // Nine seconds in, one second left.
        assert_eq!(est.wrap_free_by(9.0, 1.5), 1.0);
        assert_eq!(est.wrap_free_by(9.0, 0.5), 0.0);
        assert_eq!(est.wrap_free_by(0.0, 9.0), 0.0);
        // Outlasting every recent wrap-up leaves a chance, not a certainty.
        let late = est.wrap_free_by(30.0, 10.0);
        assert!(late > 0.0 && late < 1.0, "{late}");
    }

    #[test]
    fn a_calls_chance_to_end_soon_depends_on_how_long_it_has_lasted() {
        let mut h = learnt();
        for i in 0..300u32 {
            // Spread out from 20 s to about 300 s.
            h.talk.push(20.0 * 1.01f64.powi(i as i32 % 270));
        }
        let est = h.estimates(30).expect("enough history");
        let fresh = est.call_free_by(0.0, 40.0);
        let typical = est.call_free_by(80.0, 40.0);
        let long = est.call_free_by(2_000.0, 40.0);
        assert!(fresh < typical, "{fresh} {typical}");
        assert!(long < typical, "{long} {typical}");
        assert!((0.0..=1.0).contains(&est.call_free_by(1e12, 40.0)));
        // Nothing ends within the wrap-up itself.
        assert_eq!(est.call_free_by(80.0, 9.0), 0.0);
    }
}
