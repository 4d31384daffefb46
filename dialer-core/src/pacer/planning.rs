//! How many lines each mode opens.

use super::model::{lines_to_open, Plan};
use super::*;

impl Pacer {
    /// Orders whatever lines the mode calls for now.
    pub(super) fn plan(&mut self, now: Instant) {
        if let Some(until) = self.starved_until {
            if now < until {
                return;
            }
            self.starved_until = None;
        }
        match self.config.mode {
            Mode::Preview => {}
            Mode::Progressive => self.plan_progressive(now),
            Mode::Predictive => self.plan_predictive(now),
        }
    }

    /// Returns how many more lines may be ordered now: with nothing found to
    /// dial at the last claim, one probe line at a time, so a campaign out of
    /// leads costs one claim a pause rather than one per free agent.
    fn order_budget(&self) -> usize {
        if !self.starved {
            return usize::MAX;
        }
        let probing = self.lines.values().any(|l| l.state == LineState::Ordered);
        usize::from(!probing)
    }

    /// Gives every Ready agent without a line one reserved line, but for those held back.
    fn plan_progressive(&mut self, now: Instant) {
        let mut uncovered: Vec<(Instant, AgentId)> = self
            .agents
            .iter()
            .filter(|(_, a)| a.state == AgentState::Ready && a.line.is_none())
            .map(|(&id, a)| (a.since, id))
            .collect();
        uncovered.sort_unstable();
        // The longest idle get lines; the last to come free stay free, and
        // an inbound queue takes its longest-idle agent from among them.
        uncovered.truncate(uncovered.len().saturating_sub(self.hold_back));
        let limit = self.line_limit();
        let mut in_flight = self.lines_in_flight();
        let mut budget = self.order_budget();
        let starved = self.starved;
        for (_, agent) in uncovered {
            // A line orphaned by an agent who paused covers the next one;
            // a probe, not yet claimed, belongs to no one until it is.
            let orphan = self.lines.iter_mut().find(|(_, l)| {
                l.reserved.is_none()
                    && match l.state {
                        LineState::Ordered => !starved,
                        LineState::Ringing => true,
                        _ => false,
                    }
            });
            if let Some((&id, line)) = orphan {
                line.reserved = Some(agent);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.line = Some(id);
                }
                continue;
            }
            if in_flight >= limit || budget == 0 {
                return;
            }
            // A probe is offered to every free agent, so that whichever of
            // them has a callback of their own due may have it; once its lead
            // is dialled it covers the longest idle, or the callback's owner.
            self.order(Some(agent).filter(|_| !starved), now);
            in_flight += 1;
            budget -= 1;
        }
    }

    /// Opens unreserved lines as the model allows.
    fn plan_predictive(&mut self, now: Instant) {
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
        // free, abandons could not pass the ledger's headroom by more than one.
        let headroom = i64::try_from(self.compliance.headroom()).unwrap_or(i64::MAX);
        let worst_case = free
            .saturating_add(headroom)
            .saturating_add(1)
            .saturating_sub(pending as i64);
        let at_most = (limit - pending).min(usize::try_from(worst_case).unwrap_or(0).max(at_least));
        let target = self.planning_target();
        let estimates = self.history.estimates(self.config.min_history);
        let count = match estimates {
            Some(est) if target > 0.0 => {
                let soon_free: Vec<f64> = self
                    .agents
                    .values()
                    .filter_map(|a| match a.state {
                        AgentState::WrapUp => Some(est.wrap_free((now - a.since).as_secs_f64())),
                        AgentState::InCall => Some(est.call_free()),
                        _ => None,
                    })
                    .collect();
                let plan = Plan {
                    pending,
                    free,
                    soon_free: &soon_free,
                    target,
                    at_least,
                    at_most,
                };
                lines_to_open(&plan, est.answer)
            }
            _ => at_least.min(at_most),
        };
        for _ in 0..count.min(self.order_budget()) {
            self.order(None, now);
        }
    }

    /// Returns the share of live answers the planner may expect to abandon now.
    fn planning_target(&self) -> f64 {
        if self.compliance.headroom() == 0 {
            return 0.0;
        }
        let target = self.config.target.fraction();
        let rate = self.compliance.worst_rate();
        let slow_from = target * self.config.backoff_from;
        let scale = if rate <= slow_from {
            1.0
        } else {
            ((target - rate) / (target - slow_from)).clamp(0.0, 1.0)
        };
        target * self.config.safety * scale
    }
}
