//! Recent-history statistics and the binomial model behind predictive pacing.

use std::collections::VecDeque;
use std::time::Duration;

use crate::compliance::ABANDON_GRACE;

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

    pub(crate) fn push(&mut self, value: f64) {
        if self.values.len() == self.capacity {
            if let Some(old) = self.values.pop_front() {
                self.sum -= old;
            }
        }
        self.values.push_back(value);
        self.sum += value;
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

/// What the pacer has learnt from recent calls.
#[derive(Clone, Debug)]
pub(crate) struct History {
    /// 1.0 for a line answered live, 0.0 for any other result.
    pub(crate) answered: Recent,
    /// Seconds from order to live answer.
    pub(crate) answer_wait: Recent,
    /// Seconds of talk per connected call.
    pub(crate) talk: Recent,
    /// Seconds of wrap-up per call.
    pub(crate) wrap: Recent,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            answered: Recent::new(capacity),
            answer_wait: Recent::new(capacity),
            talk: Recent::new(capacity),
            wrap: Recent::new(capacity),
        }
    }

    pub(crate) fn record_wait(&mut self, wait: Duration) {
        self.answer_wait.push(wait.as_secs_f64());
    }

    /// Returns the seconds from ordering a line until its answer has an agent or is abandoned.
    pub(crate) fn horizon(&self) -> f64 {
        // An answer may wait out the grace period for an agent.
        self.answer_wait.mean().unwrap_or(10.0) + ABANDON_GRACE.as_secs_f64()
    }

    /// Returns the estimates once enough lines have a result.
    pub(crate) fn estimates(&self, min_samples: usize) -> Option<Estimates> {
        if self.answered.len() < min_samples {
            return None;
        }
        Some(Estimates {
            answer: self.answered.mean()?.clamp(0.01, 1.0),
            horizon: self.horizon(),
            talk: self.talk.mean().unwrap_or(60.0).max(1.0),
            wrap: self.wrap.mean().unwrap_or(0.0),
        })
    }
}

/// Point estimates the model works from, times in seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Estimates {
    /// Probability that a dialled line is answered live.
    pub(crate) answer: f64,
    /// Mean time from order to live answer: how far ahead a new line reaches.
    pub(crate) horizon: f64,
    /// Mean talk time.
    pub(crate) talk: f64,
    /// Mean wrap-up time.
    pub(crate) wrap: f64,
}

impl Estimates {
    /// Probability that an agent `elapsed` seconds into wrap-up is free within the horizon.
    ///
    /// The remaining wrap-up is taken as exponential with the mean wrap-up
    /// time less what has passed (at least a second): memoryless enough for
    /// agents who linger, yet an agent near the usual end counts as nearly free.
    pub(crate) fn wrap_free(&self, elapsed: f64) -> f64 {
        let remaining = (self.wrap - elapsed).max(1.0);
        1.0 - (-self.horizon / remaining).exp()
    }

    /// Probability that an agent in a call is free within the horizon.
    pub(crate) fn call_free(&self) -> f64 {
        let after_wrap = (self.horizon - self.wrap).max(0.0);
        1.0 - (-after_wrap / self.talk).exp()
    }
}

/// The situation the model plans for.
#[derive(Clone, Debug)]
pub(crate) struct Plan<'a> {
    /// Lines ordered or ringing.
    pub(crate) pending: usize,
    /// Agents free now, less answered calls already waiting for one and
    /// agents held back for an inbound queue; negative when those outnumber them.
    pub(crate) free: i64,
    /// For each busy agent, the probability it is free within the horizon.
    pub(crate) soon_free: &'a [f64],
    /// Largest accepted ratio of expected abandons to expected live answers.
    pub(crate) target: f64,
    /// New lines that are safe whatever happens (one per free agent).
    pub(crate) at_least: usize,
    /// New lines the ceilings allow.
    pub(crate) at_most: usize,
}

/// Returns how many new lines keep expected abandons within the plan's target.
///
/// With `k` lines out, answers are `X ~ Binomial(k, p)` and agents able to
/// take them are `free + S`, `S` the Poisson-binomial count of busy agents
/// freed within the horizon. A count is accepted when
/// `E[max(X - free - S, 0)] <= target * k * p`; the count grows from the
/// safe floor until it first fails.
pub(crate) fn lines_to_open(plan: &Plan<'_>, answer: f64) -> usize {
    let soon = poisson_binomial(plan.soon_free);
    let mut chosen = plan.at_least.min(plan.at_most);
    for extra in chosen + 1..=plan.at_most {
        let lines = plan.pending + extra;
        let overflow = expected_overflow(&binomial(lines, answer), plan.free, &soon);
        if overflow > plan.target * lines as f64 * answer {
            break;
        }
        chosen = extra;
    }
    chosen
}

/// Returns `E[max(X - free - S, 0)]` for independent `X` and `S` given as distributions.
fn expected_overflow(answers: &[f64], free: i64, soon: &[f64]) -> f64 {
    // excess[m] = E[max(X - m, 0)] = sum over j >= m of P(X > j).
    let n = answers.len();
    let mut excess = vec![0.0; n + 1];
    let mut above = 0.0;
    for m in (0..n).rev() {
        // Here `above` becomes P(X > m).
        above += answers.get(m + 1).copied().unwrap_or(0.0);
        excess[m] = excess[m + 1] + above;
    }
    let mean: f64 = answers.iter().enumerate().map(|(x, p)| x as f64 * p).sum();
    soon.iter()
        .enumerate()
        .map(|(s, p_s)| {
            let m = free + s as i64;
            let e = if m < 0 {
                mean - m as f64
            } else {
                excess.get(m as usize).copied().unwrap_or(0.0)
            };
            p_s * e
        })
        .sum()
}

/// Returns the distribution of a `Binomial(n, p)` count.
pub(crate) fn binomial(n: usize, p: f64) -> Vec<f64> {
    let mut w = vec![0.0; n + 1];
    if p <= 0.0 {
        w[0] = 1.0;
        return w;
    }
    if p >= 1.0 {
        w[n] = 1.0;
        return w;
    }
    // Start at the mode with weight 1 and walk outwards, so nothing
    // underflows where the mass is; normalise at the end.
    let mode = (((n + 1) as f64 * p).floor() as usize).min(n);
    let odds = p / (1.0 - p);
    w[mode] = 1.0;
    for k in mode + 1..=n {
        w[k] = w[k - 1] * (n - k + 1) as f64 / k as f64 * odds;
    }
    for k in (0..mode).rev() {
        w[k] = w[k + 1] * (k + 1) as f64 / (n - k) as f64 / odds;
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= total);
    w
}

/// Returns the distribution of a sum of independent Bernoulli trials.
pub(crate) fn poisson_binomial(probabilities: &[f64]) -> Vec<f64> {
    let mut dist = vec![1.0];
    for &q in probabilities {
        let q = q.clamp(0.0, 1.0);
        let mut next = vec![0.0; dist.len() + 1];
        for (k, p) in dist.iter().enumerate() {
            next[k] += p * (1.0 - q);
            next[k + 1] += p * q;
        }
        dist = next;
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_matches_closed_form_and_sums_to_one() {
        let d = binomial(4, 0.25);
        let exact = [81.0, 108.0, 54.0, 12.0, 1.0].map(|x| x / 256.0);
        for (a, b) in d.iter().zip(exact) {
            assert!((a - b).abs() < 1e-12);
        }
        let big = binomial(2_000, 0.9);
        assert!((big.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn overflow_is_zero_when_agents_cover_every_line() {
        assert_eq!(expected_overflow(&binomial(3, 0.5), 3, &[1.0]), 0.0);
        // One line, one answer certain, no agent: one abandon.
        assert!((expected_overflow(&binomial(1, 1.0), 0, &[1.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn more_free_agents_allow_more_lines() {
        let plan = |free| Plan {
            pending: 0,
            free,
            soon_free: &[],
            target: 0.03,
            at_least: 0,
            at_most: 200,
        };
        let few = lines_to_open(&plan(2), 0.25);
        let many = lines_to_open(&plan(10), 0.25);
        assert!(few >= 2 && many > few, "{few} {many}");
        // Ten agents at a 25% answer rate need well over ten lines, fewer than forty.
        assert!((11..40).contains(&many), "{many}");
    }

    #[test]
    fn zero_target_opens_only_the_safe_floor() {
        let plan = Plan {
            pending: 0,
            free: 5,
            soon_free: &[0.5; 5],
            target: 0.0,
            at_least: 5,
            at_most: 50,
        };
        assert_eq!(lines_to_open(&plan, 0.3), 5);
    }
}
