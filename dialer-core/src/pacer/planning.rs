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
        for (_, agent) in uncovered {
            // A line orphaned by an agent who paused covers the next one.
            let orphan = self.lines.iter_mut().find(|(_, l)| {
                l.reserved.is_none() && matches!(l.state, LineState::Ordered | LineState::Ringing)
            });
            if let Some((&id, line)) = orphan {
                line.reserved = Some(agent);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.line = Some(id);
                }
                continue;
            }
            if in_flight >= limit {
                return;
            }
            self.order(Some(agent), now);
            in_flight += 1;
        }
    }
}
