//! The automatic call distributor: which waiting inbound call goes to which
//! free agent, sans-IO.
//!
//! Calls wait in queues; agents are Ready members of some of them with a
//! skill from 1 to 10. Whenever a call arrives or an agent becomes free,
//! waiting calls are taken in order of their queue's priority, then of
//! arrival, and each goes to the best-skilled free member of its queue,
//! the one idle longest among equals. A return caller may name a preferred
//! agent (the one who last spoke to them): until its `prefer_until` passes
//! the call waits for that agent alone, then goes to anyone.
//!
//! Free agents are kept indexed per queue by skill and idle time, and
//! waiting calls in the order they are served, so a dispatch costs a look-up
//! per waiting call rather than a walk over every seat, and nothing at all
//! when no agent is free.
//!
//! The shell tries each [`Offer`] (the agent may have been taken by the
//! outbound dialler meanwhile) and answers [`Acd::taken`] or
//! [`Acd::declined`]. A call that waits until its `overflow_at` comes out
//! of [`Acd::poll_overflow`]. The core never reads the clock: every input
//! carries the current `Instant`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use crate::pacer::AgentId;

pub use vocab::QueueId;

/// A call offered to an agent: the shell connects them, or says why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer<C> {
    /// The waiting call.
    pub call: C,
    /// The agent chosen.
    pub agent: AgentId,
    /// The queue the call waited in.
    pub queue: QueueId,
}

/// One call waiting for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting<C> {
    /// The call.
    pub call: C,
    /// Its queue.
    pub queue: QueueId,
    /// When it started waiting.
    pub since: Instant,
    /// The queue's priority: higher is served first.
    pub priority: i64,
    /// An agent the call waits for alone until `prefer_until`.
    pub preferred: Option<AgentId>,
    /// See `preferred`.
    pub prefer_until: Option<Instant>,
    /// When the caller is offered the overflow instead.
    pub overflow_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Seat {
    /// The agent's queues and skill in each.
    skills: BTreeMap<QueueId, u8>,
    /// Since when the agent has been free; `None` while busy or offered a call.
    free_since: Option<Instant>,
}

/// A free agent's place in a queue's line-up: best skill, then idle longest.
type Rank = (Reverse<u8>, Instant, AgentId);

/// The distributor of one node.
#[derive(Debug)]
pub struct Acd<C> {
    /// Calls waiting, in the order they are served: highest priority, then
    /// oldest, then first come.
    waiting: Vec<Waiting<C>>,
    /// Calls offered and not yet answered for, with their waiting entry.
    offered: Vec<(Offer<C>, Waiting<C>)>,
    seats: BTreeMap<AgentId, Seat>,
    /// The free agents of each queue, best first.
    free: BTreeMap<QueueId, BTreeSet<Rank>>,
    offers: VecDeque<Offer<C>>,
    overflows: VecDeque<C>,
}

impl<C> Default for Acd<C> {
    fn default() -> Self {
        Acd {
            waiting: Vec::new(),
            offered: Vec::new(),
            seats: BTreeMap::new(),
            free: BTreeMap::new(),
            offers: VecDeque::new(),
            overflows: VecDeque::new(),
        }
    }
}

impl<C: Copy + PartialEq> Acd<C> {
    /// Creates a distributor with no call and no agent.
    pub fn new() -> Self {
        Self::default()
    }

    /// A call starts waiting.
    pub fn call_waiting(&mut self, waiting: Waiting<C>, now: Instant) {
        if self.waiting.iter().any(|w| w.call == waiting.call) || self.is_offered(waiting.call) {
            return;
        }
        self.enqueue(waiting);
        self.dispatch(now);
    }

    /// A call stops waiting: the caller hung up, or it was dealt with
    /// otherwise. An offer still out for it is forgotten; the agent it was
    /// offered to is answered for by [`Acd::taken`] or [`Acd::declined`].
    pub fn call_gone(&mut self, call: C) {
        self.waiting.retain(|w| w.call != call);
        self.offered.retain(|(o, _)| o.call != call);
    }

    /// An agent is free to take a call, in these queues with these skills.
    pub fn agent_free(
        &mut self,
        agent: AgentId,
        skills: impl IntoIterator<Item = (QueueId, u8)>,
        now: Instant,
    ) {
        let skills: BTreeMap<QueueId, u8> = skills.into_iter().collect();
        let offered = self.offered.iter().any(|(o, _)| o.agent == agent);
        let since = self.seats.get(&agent).and_then(|s| s.free_since);
        let since = match since {
            Some(since) => Some(since),
            None if !offered => Some(now),
            None => None,
        };
        self.unlist(agent);
        self.seats.insert(
            agent,
            Seat {
                skills,
                free_since: since,
            },
        );
        self.list(agent);
        self.dispatch(now);
    }

    /// An agent is no longer free (in a call, paused, gone).
    pub fn agent_busy(&mut self, agent: AgentId) {
        self.unlist(agent);
        if let Some(seat) = self.seats.get_mut(&agent) {
            seat.free_since = None;
        }
    }

    /// An agent left: they are forgotten.
    pub fn agent_gone(&mut self, agent: AgentId) {
        self.unlist(agent);
        self.seats.remove(&agent);
    }

    /// The shell connected an offered call to its agent.
    pub fn taken(&mut self, call: C) {
        self.offered.retain(|(o, _)| o.call != call);
    }

    /// The shell could not connect an offered call (the agent was taken
    /// meanwhile): the agent counts as busy, and the call waits again in
    /// its place.
    pub fn declined(&mut self, call: C, now: Instant) {
        let Some(at) = self.offered.iter().position(|(o, _)| o.call == call) else {
            return;
        };
        let (offer, waiting) = self.offered.remove(at);
        self.agent_busy(offer.agent);
        self.enqueue(waiting);
        self.dispatch(now);
    }

    /// Fires the deadlines due at `now`: preferences that lapse and calls
    /// that reach their overflow.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (over, kept): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|w| w.overflow_at.is_some_and(|t| t <= now));
        self.waiting = kept;
        for w in &mut self.waiting {
            if w.prefer_until.is_some_and(|t| t <= now) {
                w.preferred = None;
                w.prefer_until = None;
            }
        }
        self.overflows.extend(over.into_iter().map(|w| w.call));
        self.dispatch(now);
    }

    /// Returns when [`Acd::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.waiting
            .iter()
            .flat_map(|w| [w.overflow_at, w.prefer_until])
            .flatten()
            .min()
    }

    /// Returns the next call to offer to an agent.
    pub fn poll_offer(&mut self) -> Option<Offer<C>> {
        self.offers.pop_front()
    }

    /// Returns the next call that waited until its overflow.
    pub fn poll_overflow(&mut self) -> Option<C> {
        self.overflows.pop_front()
    }

    /// Returns the calls waiting now in `queue`, oldest first, with when
    /// each started waiting.
    pub fn waiting_in(&self, queue: QueueId) -> Vec<(C, Instant)> {
        let mut calls: Vec<_> = self
            .waiting
            .iter()
            .chain(self.offered.iter().map(|(_, w)| w))
            .filter(|w| w.queue == queue)
            .map(|w| (w.call, w.since))
            .collect();
        calls.sort_by_key(|(_, since)| *since);
        calls
    }

    /// Returns how many free agents answer `queue` now.
    pub fn free_in(&self, queue: QueueId) -> usize {
        self.free.get(&queue).map_or(0, BTreeSet::len)
    }

    fn is_offered(&self, call: C) -> bool {
        self.offered.iter().any(|(o, _)| o.call == call)
    }

    /// Puts a call in its place among the waiting.
    fn enqueue(&mut self, waiting: Waiting<C>) {
        let key = |w: &Waiting<C>| (Reverse(w.priority), w.since);
        let at = self.waiting.partition_point(|w| key(w) <= key(&waiting));
        self.waiting.insert(at, waiting);
    }

    /// Adds a free agent to the line-up of each of their queues.
    fn list(&mut self, agent: AgentId) {
        let Some(seat) = self.seats.get(&agent) else {
            return;
        };
        let Some(since) = seat.free_since else {
            return;
        };
        for (&queue, &skill) in &seat.skills {
            self.free
                .entry(queue)
                .or_default()
                .insert((Reverse(skill), since, agent));
        }
    }

    /// Takes an agent out of every line-up they are in.
    fn unlist(&mut self, agent: AgentId) {
        let Some(seat) = self.seats.get(&agent) else {
            return;
        };
        let Some(since) = seat.free_since else {
            return;
        };
        for (queue, &skill) in &seat.skills {
            if let Some(free) = self.free.get_mut(queue) {
                free.remove(&(Reverse(skill), since, agent));
                if free.is_empty() {
                    self.free.remove(queue);
                }
            }
        }
    }

    /// Matches waiting calls with free agents.
    fn dispatch(&mut self, now: Instant) {
        if self.free.is_empty() || self.waiting.is_empty() {
            return;
        }
        let mut still = Vec::with_capacity(self.waiting.len());
        for waiting in std::mem::take(&mut self.waiting) {
            if self.free.is_empty() {
                still.push(waiting);
                continue;
            }
            match self.best_agent(&waiting, now) {
                Some(agent) => {
                    self.agent_busy(agent);
                    let offer = Offer {
                        call: waiting.call,
                        agent,
                        queue: waiting.queue,
                    };
                    self.offers.push_back(offer);
                    self.offered.push((offer, waiting));
                }
                None => still.push(waiting),
            }
        }
        self.waiting = still;
    }

    /// The agent a call goes to now, if any: its preferred agent while the
    /// preference holds, else the best-skilled free member, idle longest.
    fn best_agent(&self, waiting: &Waiting<C>, now: Instant) -> Option<AgentId> {
        if let Some(preferred) = waiting.preferred {
            let free = self
                .seats
                .get(&preferred)
                .is_some_and(|s| s.free_since.is_some() && s.skills.contains_key(&waiting.queue));
            if free {
                return Some(preferred);
            }
            if waiting.prefer_until.is_some_and(|t| now < t) {
                return None;
            }
        }
        let (_, _, agent) = self.free.get(&waiting.queue)?.first()?;
        Some(*agent)
    }
}

#[cfg(test)]
mod tests;
