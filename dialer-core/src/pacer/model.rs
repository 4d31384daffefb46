//! The model behind predictive pacing: how many lines keep abandons in check.
//!
//! An answer at time `t` finds an agent if one is free by `t` plus the
//! grace period and not taken by an earlier answer; agents who come free
//! wait for a call, answers do not wait past the grace period. The model
//! cuts the time ahead into intervals. In each, the answers arriving are a
//! Poisson-binomial count over the lines (each line's chance of a live
//! answer within that interval) and the agents coming free a Poisson-binomial
//! count over the busy agents; it carries the distribution of idle agents
//! from one interval to the next and sums the expected answers left without
//! one.

/// What the model expects within one interval of time ahead.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interval {
    /// For each line ordered or ringing, the probability it is answered live within the interval.
    pub(crate) pending: Vec<f64>,
    /// Probability that a line ordered now is answered live within the interval.
    pub(crate) answer: f64,
    /// For each busy agent, the probability it comes free in time for the interval's answers.
    pub(crate) freed: Vec<f64>,
}

/// The situation the model plans for.
#[derive(Clone, Debug)]
pub(crate) struct Plan<'a> {
    /// Intervals ahead, together covering every answer a new line may bring.
    pub(crate) intervals: &'a [Interval],
    /// Probability that a new line is answered live at all.
    pub(crate) answer: f64,
    /// Agents free now, less answered calls already waiting for one and
    /// agents held back for an inbound queue; negative when those outnumber
    /// them, a debt the first agents to come free pay before any answer.
    pub(crate) free: i64,
    /// Largest accepted chance that the last new line, answered live, finds no agent.
    pub(crate) target: f64,
    /// New lines that are safe whatever happens (one per free agent).
    pub(crate) at_least: usize,
    /// New lines the ceilings allow.
    pub(crate) at_most: usize,
}

/// Returns how many new lines the plan's target allows.
///
/// Each new line beyond the safe floor is accepted while what it adds to
/// expected abandons, over its chance of a live answer (the chance that
/// its answer is the one abandoned), stays within the target: the marginal
/// line is judged, not the average, so no line is opened whose own risk is
/// high because the others are safe.
pub(crate) fn lines_to_open(plan: &Plan<'_>) -> usize {
    let at_most = plan.at_most;
    let at_least = plan.at_least.min(at_most);
    let answer = plan.answer.clamp(0.0, 1.0);
    if answer <= 0.0 || plan.intervals.is_empty() {
        return at_least;
    }
    let freed: Vec<Vec<f64>> = plan
        .intervals
        .iter()
        .map(|i| poisson_binomial(&i.freed))
        .collect();
    let mut answers: Vec<Vec<f64>> = plan
        .intervals
        .iter()
        .map(|i| {
            let mut dist = poisson_binomial(&i.pending);
            for _ in 0..at_least {
                add_trial(&mut dist, i.answer);
            }
            dist
        })
        .collect();
    let mut current = expected_abandons(&answers, &freed, plan.free);
    let mut chosen = at_least;
    while chosen < at_most {
        let mut more = answers.clone();
        for (dist, interval) in more.iter_mut().zip(plan.intervals) {
            add_trial(dist, interval.answer);
        }
        let with_more = expected_abandons(&more, &freed, plan.free);
        if with_more - current > plan.target * answer {
            break;
        }
        answers = more;
        current = with_more;
        chosen += 1;
    }
    chosen
}

/// Returns the expected answers left without an agent, interval by interval.
///
/// `answers[j]` and `freed[j]` are the distributions of answers arriving
/// and agents coming free within interval `j`; agents left idle carry on
/// to the next interval, answers do not. A negative `free` is a debt.
fn expected_abandons(answers: &[Vec<f64>], freed: &[Vec<f64>], free: i64) -> f64 {
    let low = free.min(0);
    let zero = usize::try_from(-low).unwrap_or(0);
    // state[i]: the chance that idle agents (a debt, when negative) number `low + i`.
    let mut state = vec![0.0; usize::try_from(free - low).unwrap_or(0) + 1];
    if let Some(last) = state.last_mut() {
        *last = 1.0;
    }
    let mut abandons = 0.0;
    let mut excess = Vec::new();
    for (arrive, come) in answers.iter().zip(freed) {
        let available = convolve(&state, come);
        // excess[m] = E[max(A - m, 0)] = sum over j >= m of P(A > j).
        excess.clear();
        excess.resize(arrive.len() + 1, 0.0);
        let mut above = 0.0;
        for m in (0..arrive.len()).rev() {
            above += arrive.get(m + 1).copied().unwrap_or(0.0);
            excess[m] = excess[m + 1] + above;
        }
        let mean = excess[0];
        let mut next = vec![0.0; available.len()];
        for (i, &p) in available.iter().enumerate() {
            if p == 0.0 {
                continue;
            }
            if i <= zero {
                // No agent idle: every answer is abandoned, any debt remains.
                abandons += p * mean;
                next[i] += p;
                continue;
            }
            let idle = i - zero;
            abandons += p * excess.get(idle).copied().unwrap_or(0.0);
            let mut served_all = 0.0;
            for (a, &q) in arrive.iter().enumerate().take(idle) {
                next[i - a] += p * q;
                served_all += q;
            }
            next[zero] += p * (1.0 - served_all).max(0.0);
        }
        trim(&mut next);
        state = next;
    }
    abandons
}

/// Returns the distribution of a sum of independent Bernoulli trials.
pub(crate) fn poisson_binomial(probabilities: &[f64]) -> Vec<f64> {
    let mut dist = Vec::with_capacity(probabilities.len() + 1);
    dist.push(1.0);
    for &q in probabilities {
        add_trial(&mut dist, q);
    }
    dist
}

/// Adds one more Bernoulli trial of probability `q` to the distribution of a count.
fn add_trial(dist: &mut Vec<f64>, q: f64) {
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    if q == 0.0 {
        return;
    }
    dist.push(0.0);
    for k in (1..dist.len()).rev() {
        dist[k] = dist[k] * (1.0 - q) + dist[k - 1] * q;
    }
    dist[0] *= 1.0 - q;
    trim(dist);
}

/// Returns the distribution of a sum of two independent counts.
fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len().max(1) - 1];
    for (i, &x) in a.iter().enumerate() {
        if x == 0.0 {
            continue;
        }
        for (j, &y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    trim(&mut out);
    out
}

/// Drops the tail of a distribution where the chances are too small to matter.
fn trim(dist: &mut Vec<f64>) {
    while dist.len() > 1 && dist.last().is_some_and(|&p| p < NEGLIGIBLE) {
        dist.pop();
    }
}

/// Chances below this are left out of the model's distributions.
const NEGLIGIBLE: f64 = 1e-12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_trials_match_the_binomial_closed_form_and_sum_to_one() {
        let d = poisson_binomial(&[0.25; 4]);
        let exact = [81.0, 108.0, 54.0, 12.0, 1.0].map(|x| x / 256.0);
        for (a, b) in d.iter().zip(exact) {
            assert!((a - b).abs() < 1e-12);
        }
        let big = poisson_binomial(&[0.9; 2_000]);
        assert!((big.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn abandons_are_zero_when_agents_cover_every_line() {
        let answers = [poisson_binomial(&[0.5; 3])];
        assert_eq!(expected_abandons(&answers, &[vec![1.0]], 3), 0.0);
        // One line, one answer certain, no agent: one abandon.
        let certain = [poisson_binomial(&[1.0])];
        assert!((expected_abandons(&certain, &[vec![1.0]], 0) - 1.0).abs() < 1e-12);
        // A debt of one: the agent who comes free pays it, the answer is lost.
        let paid = expected_abandons(&certain, &[poisson_binomial(&[1.0])], -1);
        assert!((paid - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_agent_left_idle_takes_a_later_answer_but_not_an_earlier_one() {
        let one = poisson_binomial(&[1.0]);
        let none = poisson_binomial(&[]);
        // Free first, answer after: served.
        let later = expected_abandons(
            &[none.clone(), one.clone()],
            &[one.clone(), none.clone()],
            0,
        );
        assert_eq!(later, 0.0);
        // Answer first, free after: lost.
        let earlier = expected_abandons(&[one.clone(), none.clone()], &[none, one], 0);
        assert!((earlier - 1.0).abs() < 1e-12);
    }

    fn plan(intervals: &[Interval], free: i64, target: f64) -> Plan<'_> {
        let pending = intervals.first().map_or(0, |i| i.pending.len());
        Plan {
            intervals,
            answer: intervals.iter().map(|i| i.answer).sum(),
            free,
            target,
            at_least: usize::try_from(free).unwrap_or(0).saturating_sub(pending),
            at_most: 200,
        }
    }

    fn within(pending: &[f64], answer: f64, freed: &[f64]) -> Interval {
        Interval {
            pending: pending.to_vec(),
            answer,
            freed: freed.to_vec(),
        }
    }

    #[test]
    fn more_free_agents_allow_more_lines() {
        let one = [within(&[], 0.25, &[])];
        let few = lines_to_open(&plan(&one, 2, 0.03));
        let many = lines_to_open(&plan(&one, 10, 0.03));
        assert!(few >= 2 && many > few, "{few} {many}");
        // Ten agents at a 25% answer rate need well over ten lines, fewer than forty.
        assert!((11..40).contains(&many), "{many}");
    }

    #[test]
    fn lines_unlikely_to_be_answered_leave_room_for_new_ones() {
        let fresh = lines_to_open(&plan(&[within(&[0.25; 20], 0.25, &[])], 10, 0.03));
        let ringing_out = lines_to_open(&plan(&[within(&[0.01; 20], 0.25, &[])], 10, 0.03));
        assert!(ringing_out > fresh + 10, "{ringing_out} {fresh}");
    }

    #[test]
    fn agents_about_to_be_free_allow_more_lines() {
        let alone = lines_to_open(&plan(&[within(&[], 0.25, &[0.0; 10])], 5, 0.03));
        let helped = lines_to_open(&plan(&[within(&[], 0.25, &[0.9; 10])], 5, 0.03));
        assert!(helped > alone + 20, "{helped} {alone}");
    }

    #[test]
    fn agents_free_only_after_the_first_answers_allow_fewer_lines() {
        // Ten agents come free, but only after a tenth of the answers.
        let late = [within(&[], 0.025, &[]), within(&[], 0.225, &[1.0; 10])];
        let in_time = [within(&[], 0.025, &[1.0; 10]), within(&[], 0.225, &[])];
        let fewer = lines_to_open(&plan(&late, 0, 0.03));
        let more = lines_to_open(&plan(&in_time, 0, 0.03));
        assert!(fewer + 10 < more, "{fewer} {more}");
    }

    #[test]
    fn a_higher_target_never_opens_fewer_lines() {
        let intervals = [
            within(&[0.1; 7], 0.1, &[0.1; 12]),
            within(&[0.1; 7], 0.1, &[0.2; 12]),
        ];
        let mut last = 0;
        for target in [0.0, 0.01, 0.03, 0.1, 0.3] {
            let lines = lines_to_open(&plan(&intervals, 6, target));
            assert!(lines >= last, "{target}: {lines} < {last}");
            last = lines;
        }
    }

    #[test]
    fn zero_target_opens_only_the_safe_floor() {
        let intervals = [within(&[], 0.3, &[0.5; 5])];
        let plan = Plan {
            intervals: &intervals,
            answer: 0.3,
            free: 5,
            target: 0.0,
            at_least: 5,
            at_most: 50,
        };
        assert_eq!(lines_to_open(&plan), 5);
    }
}
