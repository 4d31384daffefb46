//! The pacer's input handling, planning and polling.

use super::*;

impl Pacer {
    /// Creates a pacer with no agents and no lines.
    pub fn new(config: PacerConfig, now: Instant) -> Self {
        Self {
            config,
            planned: None,
            cap: config.max_dial_level,
            hold_back: 0,
            compliance: ComplianceSnapshot::unknown(config.target),
            agents: BTreeMap::new(),
            lines: BTreeMap::new(),
            history: History::new(config.history),
            next_line: 0,
            starved_until: None,
            starved: false,
            orders: VecDeque::new(),
            events: VecDeque::new(),
            now,
        }
    }

    /// Feeds one input, then plans.
    pub fn handle_input(&mut self, input: PacerInput, now: Instant) {
        let now = self.advance(now);
        match input {
            PacerInput::Agent { agent, state } => self.agent_changed(agent, state, now),
            PacerInput::Call { line, event } => self.call_event(line, event, now),
            PacerInput::PreviewDial { agent } => self.preview_dial(agent, now),
            PacerInput::ManualDial { agent } => self.manual_dial(agent, now),
            PacerInput::Reserve { line, agent } => self.reserve(line, agent),
            PacerInput::HoldBack(agents) => self.hold_back = agents,
            PacerInput::DialLevelCap(cap) if cap.is_finite() => self.cap = cap.max(0.0),
            PacerInput::DialLevelCap(_) => {}
            PacerInput::Compliance(snapshot) => self.compliance = snapshot,
        }
        self.dispatch_waiting(now);
        self.plan(now);
    }

    /// Abandons answered calls that waited too long, then plans.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        let expired: Vec<LineId> = self
            .lines
            .iter()
            .filter(|(_, l)| matches!(l.state, LineState::Waiting { deadline } if deadline <= now))
            .map(|(&id, _)| id)
            .collect();
        for line in expired {
            self.remove_line(line);
            self.events.push_back(PacerEvent::Abandon { line });
        }
        self.plan(now);
    }

    /// Returns the next line to dial.
    pub fn poll_dial(&mut self) -> Option<DialOrder> {
        self.orders.pop_front()
    }

    /// Returns the next connect or abandon decision.
    pub fn poll_event(&mut self) -> Option<PacerEvent> {
        self.events.pop_front()
    }

    /// Returns when [`Pacer::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadlines = self.lines.values().filter_map(|l| match l.state {
            LineState::Waiting { deadline } => Some(deadline),
            _ => None,
        });
        deadlines.chain(self.starved_until).min()
    }

    /// Returns the number of lines ordered or ringing.
    pub fn lines_in_flight(&self) -> usize {
        self.lines
            .values()
            .filter(|l| matches!(l.state, LineState::Ordered | LineState::Ringing))
            .count()
    }

    /// Returns the most lines the ceilings and the supervisor's cap allow in flight now.
    pub fn line_limit(&self) -> usize {
        let staffed = self
            .agents
            .values()
            .filter(|a| !matches!(a.state, AgentState::Paused | AgentState::LoggedOut))
            .count();
        let level = self.cap.min(self.config.max_dial_level).max(0.0);
        ((staffed as f64 * level).floor() as usize).min(self.config.max_lines)
    }

    /// Returns the number of agents in the Ready state.
    pub fn ready_agents(&self) -> usize {
        self.agents
            .values()
            .filter(|a| a.state == AgentState::Ready)
            .count()
    }

    /// Returns the dialling mode.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// Returns the Ready agents held back for an inbound queue.
    pub fn held_back(&self) -> usize {
        self.hold_back
    }

    /// Returns how long agents who come free stay promised to lines already dialled.
    ///
    /// Predictive lines are dialled for agents expected free within the
    /// model's horizon (mean time from order to answer, plus the grace
    /// period), so an agent freed sooner is likely to go to one of them. A
    /// progressive or preview line is its agent's alone: zero.
    pub fn reach(&self) -> Duration {
        match self.config.mode {
            Mode::Predictive => Duration::from_secs_f64(self.history.horizon()),
            Mode::Progressive | Mode::Preview => Duration::ZERO,
        }
    }

    fn advance(&mut self, now: Instant) -> Instant {
        // A shell may hand in an instant read just before the previous one;
        // time never runs backwards in here.
        self.now = self.now.max(now);
        self.now
    }

    fn agent_changed(&mut self, id: AgentId, state: AgentState, now: Instant) {
        let agent = self.agents.entry(id).or_insert(Agent {
            state: AgentState::LoggedOut,
            since: now,
            line: None,
        });
        if agent.state == state {
            return;
        }
        if agent.state == AgentState::WrapUp {
            self.history
                .wrap
                .push(now.saturating_duration_since(agent.since).as_secs_f64());
        }
        agent.state = state;
        agent.since = now;
        let held = agent.line;
        let pending = held.and_then(|l| self.lines.get(&l)).is_some_and(|l| {
            matches!(l.state, LineState::Ordered | LineState::Ringing) && l.reserved == Some(id)
        });
        if state == AgentState::Ready && pending {
            return;
        }
        // Only a Ready agent keeps a reservation; a connected line is over
        // for this agent once it moves on.
        self.release(id);
        if state == AgentState::LoggedOut {
            self.agents.remove(&id);
        }
    }

    fn call_event(&mut self, id: LineId, event: CallEvent, now: Instant) {
        let Some(line) = self.lines.get_mut(&id) else {
            return;
        };
        let unanswered = matches!(line.state, LineState::Ordered | LineState::Ringing);
        match event {
            CallEvent::Dialled if line.state == LineState::Ordered => {
                line.state = LineState::Ringing;
                self.starved = false;
            }
            CallEvent::Dialled => {}
            CallEvent::NotDialled => {
                self.remove_line(id);
                self.starved_until = Some(now + self.config.starved_pause);
                self.starved = true;
            }
            CallEvent::AnsweredLive | CallEvent::AnsweredLiveAfter(_) if unanswered => {
                let waited = now.saturating_duration_since(line.ordered_at);
                self.history.answered.push(1.0);
                self.history.record_wait(waited);
                let heard = match event {
                    CallEvent::AnsweredLiveAfter(heard) => heard,
                    _ => Duration::ZERO,
                };
                self.answered(id, ABANDON_GRACE.saturating_sub(heard), now);
            }
            CallEvent::AnsweredMachine
            | CallEvent::NoAnswer
            | CallEvent::Busy
            | CallEvent::Failed
                if unanswered =>
            {
                self.history
                    .record_other(now.saturating_duration_since(line.ordered_at));
                self.remove_line(id);
            }
            CallEvent::Connected { agent } => {
                self.agent_changed(agent, AgentState::InCall, now);
                self.release(agent);
                self.attach(id, agent);
            }
            CallEvent::Ended { talk } => {
                if line.state == LineState::Connected {
                    self.history.talk.push(talk.as_secs_f64());
                }
                self.remove_line(id);
            }
            CallEvent::Abandoned => self.remove_line(id),
            _ => {}
        }
    }

    fn preview_dial(&mut self, agent: AgentId, now: Instant) {
        let free = self
            .agents
            .get(&agent)
            .is_some_and(|a| a.state == AgentState::Ready && a.line.is_none());
        if self.config.mode == Mode::Preview && free && self.lines_in_flight() < self.line_limit() {
            self.order(Some(agent), now);
        }
    }

    fn manual_dial(&mut self, agent: AgentId, now: Instant) {
        if self.dials_for(agent).is_none()
            && self
                .agents
                .get(&agent)
                .is_some_and(|a| a.state == AgentState::Paused && a.line.is_none())
        {
            self.order(Some(agent), now);
        }
    }

    /// Returns the Ready agents without a line, in id order.
    pub fn free_agents(&self) -> Vec<AgentId> {
        self.agents
            .keys()
            .copied()
            .filter(|&id| self.is_free(id))
            .collect()
    }

    /// Returns whether an agent is Ready without a line.
    pub fn is_free(&self, agent: AgentId) -> bool {
        self.agents
            .get(&agent)
            .is_some_and(|a| a.state == AgentState::Ready && a.line.is_none())
    }

    fn reserve(&mut self, id: LineId, agent: AgentId) {
        let free = self
            .agents
            .get(&agent)
            .is_some_and(|a| a.state == AgentState::Ready && a.line.is_none_or(|l| l == id));
        let Some(line) = self.lines.get_mut(&id) else {
            return;
        };
        let pending = matches!(line.state, LineState::Ordered | LineState::Ringing);
        if !free || !pending || line.reserved.is_some_and(|r| r != agent) {
            return;
        }
        line.reserved = Some(agent);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.line = Some(id);
        }
    }

    /// Returns the line ordered or ringing for this agent alone, if any.
    pub fn dials_for(&self, agent: AgentId) -> Option<LineId> {
        let line = self.agents.get(&agent)?.line?;
        self.lines
            .get(&line)
            .filter(|l| {
                l.reserved == Some(agent)
                    && matches!(l.state, LineState::Ordered | LineState::Ringing)
            })
            .map(|_| line)
    }

    /// A person answered; with no agent free they wait at most `grace`.
    fn answered(&mut self, id: LineId, grace: Duration, now: Instant) {
        // A Paused agent holds a line only when they dialled it by hand.
        let reserved = self.lines.get(&id).and_then(|l| l.reserved).filter(|a| {
            self.agents.get(a).is_some_and(|a| {
                matches!(a.state, AgentState::Ready | AgentState::Paused) && a.line == Some(id)
            })
        });
        match reserved.or_else(|| self.free_agent()) {
            Some(agent) => self.connect(id, agent, now),
            None => {
                if let Some(line) = self.lines.get_mut(&id) {
                    line.state = LineState::Waiting {
                        deadline: now + grace,
                    };
                }
            }
        }
    }

    /// Hands lines waiting for an agent to agents that became free, oldest first.
    fn dispatch_waiting(&mut self, now: Instant) {
        loop {
            let waiting = self
                .lines
                .iter()
                .filter_map(|(&id, l)| match l.state {
                    LineState::Waiting { deadline } => Some((deadline, id)),
                    _ => None,
                })
                .min();
            let (Some((_, line)), Some(agent)) = (waiting, self.free_agent()) else {
                return;
            };
            self.connect(line, agent, now);
        }
    }

    /// Returns the Ready agent without a line who has waited longest.
    fn free_agent(&self) -> Option<AgentId> {
        self.agents
            .iter()
            .filter(|(_, a)| a.state == AgentState::Ready && a.line.is_none())
            .min_by_key(|(&id, a)| (a.since, id))
            .map(|(&id, _)| id)
    }

    fn connect(&mut self, line: LineId, agent: AgentId, now: Instant) {
        self.release(agent);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.state = AgentState::InCall;
            a.since = now;
        }
        self.attach(line, agent);
        self.events.push_back(PacerEvent::Connect { line, agent });
    }

    fn attach(&mut self, id: LineId, agent: AgentId) {
        if let Some(line) = self.lines.get_mut(&id) {
            if let Some(old) = line.reserved.filter(|&a| a != agent) {
                if let Some(a) = self.agents.get_mut(&old).filter(|a| a.line == Some(id)) {
                    a.line = None;
                }
            }
            line.state = LineState::Connected;
            line.reserved = Some(agent);
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.line = Some(id);
        }
    }

    /// Frees an agent from its line, leaving a pending line unreserved.
    fn release(&mut self, agent: AgentId) {
        let Some(id) = self.agents.get_mut(&agent).and_then(|a| a.line.take()) else {
            return;
        };
        if let Some(line) = self.lines.get_mut(&id) {
            if line.reserved == Some(agent) && line.state != LineState::Connected {
                line.reserved = None;
            }
        }
    }

    fn remove_line(&mut self, id: LineId) {
        let Some(line) = self.lines.remove(&id) else {
            return;
        };
        if let Some(agent) = line.reserved.and_then(|a| self.agents.get_mut(&a)) {
            if agent.line == Some(id) {
                agent.line = None;
            }
        }
    }

    pub(super) fn order(&mut self, agent: Option<AgentId>, now: Instant) {
        let line = LineId(self.next_line);
        self.next_line += 1;
        self.lines.insert(
            line,
            Line {
                state: LineState::Ordered,
                reserved: agent,
                ordered_at: now,
            },
        );
        if let Some(a) = agent.and_then(|a| self.agents.get_mut(&a)) {
            a.line = Some(line);
        }
        self.orders.push_back(DialOrder { line, agent });
    }
}
