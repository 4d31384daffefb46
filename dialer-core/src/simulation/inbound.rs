//! Inbound calls in the simulation: arrivals, the queue, and how agents are pooled.
//!
//! Callers arrive as a Poisson process at `calls_per_hour`; each would
//! talk for a log-normal time around `talk_mean` (sigma 0.6, as outbound
//! calls) and waits at most an exponential time of mean `patience_mean`
//! before hanging up. Callers are answered in order of arrival, each by the
//! agent idle longest; after the call the agent wraps up for the campaign's
//! `wrap`.
//!
//! - [`Pooling::Blended`]: every agent takes both kinds of call. The pacer
//!   holds back [`crate::blend::reserve`] Ready agents, computed after every
//!   event from the queue's configured rate, its handle time (talk plus
//!   wrap-up), the target, the callers waiting, the agents on inbound calls
//!   and the pacer's [`crate::Pacer::reach`]. A freed agent goes first to an
//!   outbound call already answered (it has two seconds, and counts against
//!   the abandon limit), then to the longest-waiting caller; a caller takes
//!   an agent the pacer holds no line for.
//! - [`Pooling::Separate`]: the last `inbound_agents` agents take only
//!   inbound calls and are never dialled for; the others only dial.
//!
//! The service level counts a call answered within the target's time
//! against every call offered, so a caller who gives up, however soon,
//! counts as missed, and so does one still waiting when the run ends.

use super::*;
use crate::blend::{self, Floor, QueueLoad, ServiceTarget};

/// Inbound calls to the campaign's floor, and how its agents are shared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InboundConfig {
    /// Mean calls arriving per hour; zero, the default, for none.
    pub calls_per_hour: f64,
    /// Mean talk time of an inbound call.
    pub talk_mean: Duration,
    /// Mean time a caller waits before hanging up.
    pub patience_mean: Duration,
    /// The queue's service-level target.
    pub target: ServiceTarget,
    /// How the agents are shared between the queue and the campaign.
    pub pooling: Pooling,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            calls_per_hour: 0.0,
            talk_mean: Duration::from_secs(180),
            patience_mean: Duration::from_secs(120),
            target: ServiceTarget::default(),
            pooling: Pooling::Blended,
        }
    }
}

/// How agents are shared between an inbound queue and an outbound campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Every agent takes both; dialling leaves the queue's reserve idle.
    Blended,
    /// A fixed split: these agents only answer, the rest only dial.
    Separate {
        /// Agents kept for inbound calls.
        inbound_agents: u64,
    },
}

impl InboundConfig {
    /// Returns the agents, of `agents` on the floor, that the pacer dials for.
    pub(super) fn dialling_agents(&self, agents: u64) -> u64 {
        match self.pooling {
            Pooling::Blended => agents,
            Pooling::Separate { inbound_agents } => agents.saturating_sub(inbound_agents),
        }
    }

    fn arrivals_per_sec(&self) -> f64 {
        if self.calls_per_hour.is_finite() && self.calls_per_hour > 0.0 {
            self.calls_per_hour / 3600.0
        } else {
            0.0
        }
    }
}

impl Run<'_> {
    /// Returns whether the pacer knows this agent (it dials for them).
    pub(super) fn dials_for(&self, agent: AgentId) -> bool {
        agent.0 < self.dialling
    }

    pub(super) fn schedule_arrival(&mut self, now: Instant) {
        let rate = self.inbound.arrivals_per_sec();
        if rate > 0.0 {
            let gap = self.callers_rng.exponential(1.0 / rate);
            self.schedule_within_run(now, gap, Happening::Arrival);
        }
    }

    pub(super) fn arrive(&mut self, now: Instant) {
        let talk = log_normal_secs(&mut self.callers_rng, self.inbound.talk_mean);
        let patience = self
            .callers_rng
            .exponential(self.inbound.patience_mean.as_secs_f64());
        let id = self.next_caller;
        self.next_caller += 1;
        self.offered += 1;
        self.callers.push_back(Caller {
            id,
            arrived: now,
            talk,
        });
        self.schedule_within_run(now, patience, Happening::GiveUp(id));
        self.schedule_arrival(now);
        // The reserve grows by the caller before any agent comes free.
        self.update_hold_back(now);
        self.serve_callers(now);
    }

    pub(super) fn give_up(&mut self, caller: u64, now: Instant) {
        if let Some(at) = self.callers.iter().position(|c| c.id == caller) {
            self.callers.remove(at);
            self.gave_up += 1;
            self.update_hold_back(now);
        }
    }

    pub(super) fn inbound_hangup(&mut self, agent: AgentId, talk: Duration, now: Instant) {
        self.inbound_talk += talk;
        if self.dials_for(agent) {
            self.input(
                PacerInput::Agent {
                    agent,
                    state: AgentState::WrapUp,
                },
                now,
            );
        }
        self.schedule(now + self.config.wrap, Happening::WrapDone(agent));
    }

    /// Hands waiting callers, oldest first, to the agents idle longest.
    pub(super) fn serve_callers(&mut self, now: Instant) {
        while !self.callers.is_empty() {
            let Some(agent) = self.answering_agent() else {
                break;
            };
            let Some(caller) = self.callers.pop_front() else {
                break;
            };
            let wait = now.saturating_duration_since(caller.arrived);
            self.answered += 1;
            self.waited += wait;
            if wait <= self.inbound.target.within {
                self.answered_in_time += 1;
            }
            self.idle_since.remove(&agent);
            self.on_inbound.insert(agent);
            self.busy_since.insert(agent, now);
            if self.dials_for(agent) {
                self.input(
                    PacerInput::Agent {
                        agent,
                        state: AgentState::InCall,
                    },
                    now,
                );
            }
            // A call that would outlast the run keeps its agent busy to the end.
            if let Ok(talk) = Duration::try_from_secs_f64(caller.talk) {
                self.schedule_within_run(now, caller.talk, Happening::InboundHangup(agent, talk));
            }
        }
        self.update_hold_back(now);
    }

    /// Schedules a happening `secs` from now, unless it would come after the run.
    fn schedule_within_run(&mut self, now: Instant, secs: f64, happening: Happening) {
        let left = (self.start + self.config.duration).saturating_duration_since(now);
        if secs.is_finite() && secs >= 0.0 && secs <= left.as_secs_f64() {
            self.schedule(now + Duration::from_secs_f64(secs), happening);
        }
    }

    /// Returns the agent idle longest who may answer a caller now.
    fn answering_agent(&self) -> Option<AgentId> {
        let idle = |agent: &AgentId| self.idle_since.get(agent).map(|&since| (since, *agent));
        let candidates: Vec<(Instant, AgentId)> = match self.inbound.pooling {
            // Only agents without a line: a progressive line's agent is
            // promised to it.
            Pooling::Blended => self.pacer.free_agents().iter().filter_map(idle).collect(),
            Pooling::Separate { .. } => self
                .idle_since
                .iter()
                .filter(|(agent, _)| !self.dials_for(**agent))
                .map(|(&agent, &since)| (since, agent))
                .collect(),
        };
        candidates.into_iter().min().map(|(_, agent)| agent)
    }

    /// Tells the pacer the queue's reserve, when blended and it changed.
    pub(super) fn update_hold_back(&mut self, now: Instant) {
        let rate = self.inbound.arrivals_per_sec();
        if rate == 0.0 || self.inbound.pooling != Pooling::Blended {
            return;
        }
        let queue = QueueLoad {
            arrivals_per_sec: rate,
            handle: self.inbound.talk_mean.saturating_add(self.config.wrap),
            target: self.inbound.target,
        };
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let floor = Floor {
            staffed: u32::try_from(self.config.agents).unwrap_or(u32::MAX),
            on_inbound: count(self.on_inbound.len()),
            waiting: count(self.callers.len()),
            lead: self.pacer.reach(),
        };
        let reserve = usize::try_from(blend::reserve(&queue, &floor)).unwrap_or(usize::MAX);
        if reserve != self.held_back {
            self.held_back = reserve;
            self.input(PacerInput::HoldBack(reserve), now);
        }
    }
}
