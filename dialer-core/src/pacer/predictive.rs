//! Predictive planning: how many unreserved lines to open now, and how much risk to take.

use super::history::Estimates;
use super::model::{lines_to_open, Interval, Plan};
use super::*;

/// What a predictive plan depends on: two plans at the same instant in
/// the same situation order the same lines, so the second is skipped.
///
/// Every input that changes a line's or an agent's state, the history or
/// the ledger changes one of these counts too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Situation {
    now: Instant,
    next_line: u64,
    /// Free, wrapping up, in a call, paused, and Ready with a line.
    agents: [usize; 5],
    /// In flight, waiting for an agent, connected.
    lines: [usize; 3],
    hold_back: usize,
    cap: u64,
    day: Counts,
    month: Counts,
}

/// Bounds of the feedback's scaling of the marginal target.
const BOOST_RANGE: (f64, f64) = (1.0 / 64.0, 8.0);

impl Pacer {
    /// Opens unreserved lines as the model allows.
    pub(super) fn plan_predictive(&mut self, now: Instant) {
        // The same situation at the same instant was planned for already:
        // a line that only began to ring, or a repeated agent state.
        let situation = self.situation(now);
        if self.planned == Some(situation) {
            return;
        }
        self.plan_lines(now);
        self.planned = Some(self.situation(now));
    }

    fn plan_lines(&mut self, now: Instant) {
        let pending = self.lines_in_flight();
        let limit = self.line_limit();
        if pending >= limit {
            return;
        }
        let free_agents = self
            .agents
            .values()
            .filter(|a| a.state == AgentState::Ready && a.line.is_none())
            .count();
        let waiting = self
            .lines
            .values()
            .filter(|l| matches!(l.state, LineState::Waiting { .. }))
            .count();
        // Held-back agents are not free for outbound: with fewer free than
        // held back, `free` goes negative and the model expects the first
        // agents to come free to refill the reserve before taking an answer.
        let held = i64::try_from(self.hold_back).unwrap_or(i64::MAX);
        let free = (free_agents as i64 - waiting as i64).saturating_sub(held);
        let at_least = usize::try_from(free).unwrap_or(0).saturating_sub(pending);
        // Even if every line in flight were answered and no busy agent came
        // free, abandons could not pass the ledger's headroom.
        let headroom = i64::try_from(self.compliance.headroom()).unwrap_or(i64::MAX);
        let worst_case = free.saturating_add(headroom).saturating_sub(pending as i64);
        let at_most = (limit - pending).min(usize::try_from(worst_case).unwrap_or(0).max(at_least));
        let target = self.planning_target();
        let estimates = self.history.estimates(self.config.min_history);
        let count = match estimates {
            Some(est) if target > 0.0 => {
                let intervals = self.intervals(&est, now);
                let plan = Plan {
                    intervals: &intervals,
                    answer: est.answer,
                    free,
                    target,
                    at_least,
                    at_most,
                };
                lines_to_open(&plan)
            }
            _ => at_least.min(at_most),
        };
        // A campaign out of leads probes with one line at a time.
        for _ in 0..count.min(self.order_budget()) {
            self.order(None, now);
        }
    }

    /// Returns what predictive planning depends on, in counts, as of `now`.
    fn situation(&self, now: Instant) -> Situation {
        let mut agents = [0; 5];
        for agent in self.agents.values() {
            let slot = match agent.state {
                AgentState::Ready if agent.line.is_none() => 0,
                AgentState::WrapUp => 1,
                AgentState::InCall => 2,
                AgentState::Paused | AgentState::LoggedOut => 3,
                AgentState::Ready => 4,
            };
            agents[slot] += 1;
        }
        let mut lines = [0; 3];
        for line in self.lines.values() {
            let slot = match line.state {
                LineState::Ordered | LineState::Ringing => 0,
                LineState::Waiting { .. } => 1,
                LineState::Connected => 2,
            };
            lines[slot] += 1;
        }
        Situation {
            now,
            next_line: self.next_line,
            agents,
            lines,
            hold_back: self.hold_back,
            cap: self.cap.to_bits(),
            day: self.compliance.day,
            month: self.compliance.month,
        }
    }

    /// Returns what the model expects of each line in flight and each busy agent, interval by interval.
    ///
    /// Interval `j` runs from checkpoint `j - 1` to checkpoint `j`; its
    /// answers may take agents free by the checkpoint plus the grace period.
    fn intervals(&self, est: &Estimates<'_>, now: Instant) -> Vec<Interval> {
        let times = est.checkpoints();
        let grace = ABANDON_GRACE.as_secs_f64();
        let reach: Vec<f64> = times.iter().map(|t| t + grace).collect();
        let mut intervals = vec![Interval::default(); times.len()];
        // Cumulative chances by each checkpoint, turned into each interval's share.
        let mut by = vec![0.0; times.len()];
        let spread =
            |by: &[f64], intervals: &mut [Interval], pick: fn(&mut Interval) -> &mut Vec<f64>| {
                let mut before = 0.0;
                for (interval, &total) in intervals.iter_mut().zip(by) {
                    pick(interval).push((total - before).max(0.0));
                    before = total.max(before);
                }
            };
        for line in self.lines.values() {
            if matches!(line.state, LineState::Ordered | LineState::Ringing) {
                let age = now.saturating_duration_since(line.ordered_at).as_secs_f64();
                est.answered_within(age, &times, &mut by);
                spread(&by, &mut intervals, |i| &mut i.pending);
            }
        }
        for agent in self.agents.values() {
            let elapsed = now.saturating_duration_since(agent.since).as_secs_f64();
            match agent.state {
                AgentState::WrapUp => est.wrap_free_within(elapsed, &reach, &mut by),
                AgentState::InCall => est.call_free_within(elapsed, &reach, &mut by),
                _ => continue,
            }
            spread(&by, &mut intervals, |i| &mut i.freed);
        }
        est.answered_within(0.0, &times, &mut by);
        let mut before = 0.0;
        for (interval, &total) in intervals.iter_mut().zip(&by) {
            interval.answer = (total - before).max(0.0);
            before = total.max(before);
        }
        intervals
    }

    /// Returns the largest chance the planner accepts that a new line's live answer is abandoned.
    ///
    /// It starts from `marginal_risk` times the target and is scaled by
    /// `exp(feedback * (spare - cushion))`: `spare` is how many more
    /// abandons the worse of the ledger's windows could take at the target,
    /// and the cushion is `cushion_per_agent` abandons per staffed agent.
    /// With more to spare than the cushion the planner takes more risk, with
    /// less it takes less, so the ledger's rate climbs towards the target
    /// while enough headroom is kept that the worst-case guard seldom stops
    /// dialling. Past `backoff_from` of the target the result is scaled down
    /// linearly to zero at the target, and with no headroom it is zero.
    fn planning_target(&self) -> f64 {
        let snapshot = &self.compliance;
        if snapshot.headroom() == 0 {
            return 0.0;
        }
        let target = self.config.target.fraction();
        let staffed = self
            .agents
            .values()
            .filter(|a| !matches!(a.state, AgentState::Paused | AgentState::LoggedOut))
            .count();
        let cushion = self.config.cushion_per_agent * staffed as f64;
        let spare = |c: Counts| target * c.live as f64 - c.abandoned as f64;
        let spare = spare(snapshot.day).min(spare(snapshot.month));
        let (low, high) = BOOST_RANGE;
        let boost = (self.config.feedback * (spare - cushion))
            .exp()
            .clamp(low, high);
        let rate = snapshot.worst_rate();
        let slow_from = target * self.config.backoff_from;
        let scale = if rate <= slow_from {
            1.0
        } else {
            ((target - rate) / (target - slow_from)).clamp(0.0, 1.0)
        };
        target * self.config.marginal_risk * boost * scale
    }
}
