//! How many lines each mode opens.

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
    pub(super) fn order_budget(&self) -> usize {
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
}
