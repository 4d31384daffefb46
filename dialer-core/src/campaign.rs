//! One campaign as a sans-IO state machine: the pacer, the compliance
//! ledger and the life of every line it dials.
//!
//! Inputs are agents' changes, the leads the shell claimed, the gateway's
//! events for this campaign's calls, the results of the gateway commands it
//! ran, and the compliance figures read from the database, each with the
//! current [`Now`]. Out come [`Command`]s, in order: claim a lead, dial,
//! bridge, play the abandon message, hang up, record, write a fact to the
//! Store, read the figures again, report outward. [`Campaign::poll_timeout`]
//! says when to call [`Campaign::handle_timeout`].
//!
//! A line lives through [`LineState`]: placed and ringing, answered (and
//! screened for a machine when the campaign asks), waiting at most
//! [`ABANDON_GRACE`](crate::ABANDON_GRACE) for an agent, bridging, connected,
//! or abandoned with the message, until the gateway says it ended.
//!
//! A callback booked for one agent is only dialled for them: each claim
//! names the agents its call may be kept for (the line's reserved agent, or
//! in predictive the Ready agents without a line), each agent is offered to
//! one claim at a time, and a lead that comes back kept for one of them has
//! its line reserved for that agent in the pacer, so the answer goes to
//! them while they stay Ready. If they leave Ready before the answer, the
//! call goes to whoever is free rather than be dropped.
//!
//! The ledger ([`SharedLedger`]) is a cache of the database: its base is the
//! last figures read from every node's attempts, to which it adds this
//! runner's own live answers not yet covered by a read. Reads go through the
//! same ordered queue as the writes, so a read answers for every write
//! queued before it and none after.

mod ledger;
mod line;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vocab::{AmdVerdict, CallRef, EndCause};

pub use ledger::{ReadId, SharedLedger};
pub use line::LineState;
pub use types::{
    AgentUpdate, CallOutcome, CallPhase, CampaignConfig, Claim, Command, Input, Lead, LineEvent,
    Now, Report, Write,
};

use crate::compliance::{ComplianceSnapshot, LiveAnswer};
use crate::pacer::{AgentId, AgentState, CallEvent, LineId, Mode, Pacer, PacerEvent, PacerInput};
use crate::retry::AttemptOutcome;
use line::Line;

/// One campaign's dialling.
#[derive(Debug)]
pub struct Campaign {
    config: CampaignConfig,
    pacer: Pacer,
    ledger: SharedLedger,
    lines: BTreeMap<LineId, Line>,
    /// Lines ordered by the pacer whose lead is being claimed.
    claiming: BTreeMap<LineId, Option<AgentId>>,
    by_call: BTreeMap<CallRef, LineId>,
    legs: BTreeMap<AgentId, CallRef>,
    /// Each agent's state as their desk last gave it.
    desks: BTreeMap<AgentId, AgentState>,
    previews: BTreeMap<AgentId, Lead>,
    /// Agents offered to a claim in flight, or whose own callback is on a
    /// line, by that line: each agent has at most one.
    promised: BTreeMap<AgentId, LineId>,
    skipped: VecDeque<(Lead, Instant)>,
    dialled: u64,
    answered: u64,
    dial_level_cap: f64,
    next_figures: Instant,
    next_read: Instant,
    commands: VecDeque<Command>,
    stopped: bool,
    /// Placing no new call while the calls in progress run to their end.
    draining: bool,
}

impl Campaign {
    /// Creates a campaign with no agents and no lines; its first commands
    /// read the figures every node has written.
    pub fn new(config: CampaignConfig, now: Now) -> Self {
        let mut pacer = Pacer::new(config.pacer, now.at);
        let ledger = SharedLedger::new(config.pacer.target);
        pacer.handle_input(PacerInput::Compliance(ledger.snapshot(now.wall)), now.at);
        pacer.handle_input(PacerInput::DialLevelCap(config.dial_level_cap), now.at);
        let mut campaign = Campaign {
            dial_level_cap: sanitise_cap(config.dial_level_cap),
            pacer,
            ledger,
            lines: BTreeMap::new(),
            claiming: BTreeMap::new(),
            by_call: BTreeMap::new(),
            legs: BTreeMap::new(),
            desks: BTreeMap::new(),
            previews: BTreeMap::new(),
            promised: BTreeMap::new(),
            skipped: VecDeque::new(),
            dialled: 0,
            answered: 0,
            next_figures: now.at + config.figures_every,
            next_read: now.at + config.read_every,
            commands: VecDeque::new(),
            stopped: false,
            draining: false,
            config,
        };
        campaign.read_figures();
        campaign
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input, now: Now) {
        if self.stopped {
            return self.after_stop(input, now);
        }
        match input {
            Input::Agent(update) => self.agent(update, now),
            Input::Claimed { line, claim } => self.claimed(line, claim, now),
            Input::Previewed { agent, lead } => match lead {
                Some(lead) if self.draining => {
                    self.write(Write::Release { lead });
                    self.report(Report::Preview { agent, lead: None });
                }
                lead => {
                    if let Some(lead) = &lead {
                        self.previews.insert(agent, lead.clone());
                    }
                    self.report(Report::Preview { agent, lead });
                }
            },
            Input::Call { call, event } => self.call_event(call, event, now),
            Input::DialFailed { call } => self.dial_failed(call, now),
            Input::Bridged { call } => self.bridged(call, now),
            Input::BridgeFailed { call } => self.bridge_failed(call, now),
            Input::PlayFailed { call } => self.push(Command::Hangup { call }),
            Input::FiguresRead { read, day, month } => {
                self.ledger.apply_read(read, day, month);
                self.pacer.handle_input(
                    PacerInput::Compliance(self.ledger.snapshot(now.wall)),
                    now.at,
                );
            }
        }
        self.drain_pacer(now);
    }

    /// Runs what was due by `now`: abandons, figures, reads, skipped leads.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.stopped {
            return;
        }
        self.pacer.handle_timeout(now.at);
        if now.at >= self.next_read {
            self.next_read = now.at + self.config.read_every;
            self.read_figures();
        }
        if now.at >= self.next_figures {
            self.next_figures = now.at + self.config.figures_every;
            self.figures(now);
        }
        while let Some((lead, _)) = self
            .skipped
            .front()
            .filter(|(_, at)| now.at.saturating_duration_since(*at) >= self.config.skip_hold)
        {
            let lead = lead.clone();
            self.skipped.pop_front();
            self.write(Write::Release { lead });
        }
        self.drain_pacer(now);
    }

    /// Returns when [`Campaign::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let skipped = self
            .skipped
            .front()
            .map(|(_, at)| *at + self.config.skip_hold);
        [
            self.pacer.poll_timeout(),
            Some(self.next_figures),
            Some(self.next_read),
            skipped,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Returns the next command for the shell.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Stops dialling: every call is hung up and every held lead given back.
    /// Inputs that follow only close the books on calls already placed.
    pub fn stop(&mut self) {
        self.stopped = true;
        let calls: Vec<CallRef> = self.by_call.keys().copied().collect();
        for call in calls {
            self.push(Command::Hangup { call });
        }
        for (lead, _) in std::mem::take(&mut self.skipped) {
            self.write(Write::Release { lead });
        }
        for lead in std::mem::take(&mut self.previews).into_values() {
            self.write(Write::Release { lead });
        }
        // Lines still being claimed come back through `after_stop`.
    }

    /// Places no new call from now on (the service is draining to restart):
    /// leads held for preview go back, manual dials and previews are
    /// refused, and the calls in progress carry on to their end.
    pub fn drain(&mut self, now: Now) {
        if self.draining || self.stopped {
            return;
        }
        self.draining = true;
        self.pacer
            .handle_input(PacerInput::DialLevelCap(0.0), now.at);
        for lead in std::mem::take(&mut self.previews).into_values() {
            self.write(Write::Release { lead });
        }
        self.drain_pacer(now);
    }

    /// Returns whether the campaign is draining.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Returns whether a stopped campaign has no call left to close.
    pub fn is_finished(&self) -> bool {
        self.stopped && self.lines.is_empty() && self.claiming.is_empty()
    }

    /// Returns the compliance figures as the pacer sees them at `wall`.
    pub fn compliance(&self, wall: DateTime<Utc>) -> ComplianceSnapshot {
        self.ledger.snapshot(wall)
    }

    /// Returns the state of the line carrying `call`, if it is this campaign's.
    pub fn line_state(&self, call: CallRef) -> Option<LineState> {
        let line = self.by_call.get(&call)?;
        self.lines.get(line).map(|l| l.state)
    }

    /// Returns the number of calls placed and not yet ended.
    pub fn calls(&self) -> usize {
        self.lines.len()
    }

    fn agent(&mut self, update: AgentUpdate, now: Now) {
        let (agent, state, leg) = match update {
            AgentUpdate::State { agent, state, leg } => (agent, state, leg),
            AgentUpdate::PreviewNext { agent } => return self.preview_next(agent),
            AgentUpdate::PreviewCall { agent } => {
                if self.previews.contains_key(&agent) {
                    self.pacer
                        .handle_input(PacerInput::PreviewDial { agent }, now.at);
                }
                return;
            }
            AgentUpdate::PreviewSkip { agent } => {
                if let Some(lead) = self.previews.remove(&agent) {
                    self.skipped.push_back((lead, now.at));
                }
                return;
            }
            AgentUpdate::DialLevelCap(cap) => {
                if cap.is_finite() {
                    self.dial_level_cap = sanitise_cap(cap);
                }
                if !self.draining {
                    self.pacer
                        .handle_input(PacerInput::DialLevelCap(cap), now.at);
                }
                return;
            }
            AgentUpdate::HoldBack(n) => {
                self.pacer.handle_input(PacerInput::HoldBack(n), now.at);
                return;
            }
            AgentUpdate::ManualDial { agent, lead } => return self.manual_dial(agent, lead, now),
            AgentUpdate::LeaveMessage { agent } => return self.agent_leaves_message(agent, now),
        };
        match leg {
            Some(leg) if state != AgentState::LoggedOut => {
                self.legs.insert(agent, leg);
            }
            _ if state == AgentState::LoggedOut => {
                self.legs.remove(&agent);
            }
            _ => {}
        }
        // An agent without a media leg cannot take calls.
        let state = if state == AgentState::Ready && !self.legs.contains_key(&agent) {
            AgentState::Paused
        } else {
            state
        };
        if state == AgentState::LoggedOut {
            self.desks.remove(&agent);
        } else {
            self.desks.insert(agent, state);
        }
        self.pacer
            .handle_input(PacerInput::Agent { agent, state }, now.at);
    }

    /// Lends a free agent to an inbound call: when they are Ready with no
    /// line of the campaign reserved for them and no contact on a preview
    /// screen, they count as in a call from now on (their desk says so
    /// too, moments later) and the answer is true; otherwise false, and
    /// nothing changes.
    pub fn lend(&mut self, agent: AgentId, now: Now) -> bool {
        let free = self.not_lendable(agent).is_none();
        if free {
            self.desks.insert(agent, AgentState::InCall);
            self.pacer.handle_input(
                PacerInput::Agent {
                    agent,
                    state: AgentState::InCall,
                },
                now.at,
            );
        }
        free
    }

    /// Returns why an agent may not be lent to an inbound call now, or
    /// `None` when they may.
    pub fn not_lendable(&self, agent: AgentId) -> Option<&'static str> {
        if self.desks.get(&agent) != Some(&AgentState::Ready) {
            Some("not Ready here")
        } else if !self.legs.contains_key(&agent) {
            Some("no audio leg")
        } else if self.previews.contains_key(&agent) {
            Some("a contact on their preview screen")
        } else if !self.pacer.is_free(agent) {
            Some("a line is dialled for them")
        } else {
            None
        }
    }

    /// Gives the pacer back an agent it chose for a call that never reached
    /// them, in the state their desk last gave.
    fn restore_agent(&mut self, agent: AgentId, now: Now) {
        if let Some(&state) = self.desks.get(&agent) {
            self.pacer
                .handle_input(PacerInput::Agent { agent, state }, now.at);
        }
    }

    /// Dials a lead for a Paused agent by hand; the lead goes back, and the
    /// agent hears so, when the pacer cannot order the line.
    fn manual_dial(&mut self, agent: AgentId, lead: Lead, now: Now) {
        if !self.draining && self.legs.contains_key(&agent) && self.pacer.dials_for(agent).is_none()
        {
            // A lead held on screen in preview gives way to the one dialled.
            if let Some(held) = self.previews.insert(agent, lead.clone()) {
                self.write(Write::Release { lead: held });
            }
            self.pacer
                .handle_input(PacerInput::ManualDial { agent }, now.at);
            if self.pacer.dials_for(agent).is_some() {
                return;
            }
            self.previews.remove(&agent);
        }
        self.write(Write::Release { lead });
        self.report(Report::ManualRefused { agent });
    }

    /// Offers the agent the lead held for them, or asks for the next one.
    fn preview_next(&mut self, agent: AgentId) {
        if self.draining {
            return self.report(Report::Preview { agent, lead: None });
        }
        match self.previews.get(&agent) {
            Some(lead) => {
                let lead = Some(lead.clone());
                self.report(Report::Preview { agent, lead });
            }
            None => self.push(Command::ClaimPreview { agent }),
        }
    }

    fn drain_pacer(&mut self, now: Now) {
        // Deciding may free lines the pacer orders again: loop until quiet.
        loop {
            let mut idle = true;
            while let Some(order) = self.pacer.poll_dial() {
                idle = false;
                self.order(order.line, order.agent, now);
            }
            while let Some(event) = self.pacer.poll_event() {
                idle = false;
                match event {
                    PacerEvent::Connect { line, agent } => self.connect(line, agent, now),
                    PacerEvent::Abandon { line } => self.abandon(line, now),
                }
            }
            if idle {
                return;
            }
        }
    }

    fn order(&mut self, line: LineId, agent: Option<AgentId>, now: Now) {
        // A preview line dials the lead held for its agent, or nothing: it
        // must not reach a stranger's number the agent never saw. Only a line
        // with a held lead (preview, manual) is the agent's own; a
        // progressive reservation may still pass to another agent.
        let held = agent.and_then(|a| self.previews.remove(&a));
        if self.draining {
            if let Some(lead) = held {
                self.write(Write::Release { lead });
            }
            return self.not_dialled(line, now);
        }
        if held.is_none() && agent.is_some() && self.pacer.mode() == Mode::Preview {
            return self.not_dialled(line, now);
        }
        let for_agent = agent.filter(|_| held.is_some());
        let agents = match held {
            Some(_) => Vec::new(),
            None => self.offer(line, agent),
        };
        self.claiming.insert(line, for_agent);
        self.push(Command::Claim { line, held, agents });
    }

    /// Returns the agents a line's claim may bring a callback of their own
    /// to, and promises them to it: the agent reserved for the line, or in
    /// predictive every Ready agent without a line; never one already
    /// promised to another line.
    fn offer(&mut self, line: LineId, reserved: Option<AgentId>) -> Vec<AgentId> {
        let candidates = match reserved {
            Some(agent) => vec![agent],
            None => self.pacer.free_agents(),
        };
        let offered: Vec<AgentId> = candidates
            .into_iter()
            .filter(|a| self.desks.get(a) == Some(&AgentState::Ready))
            .filter(|a| !self.promised.contains_key(a))
            .collect();
        for &agent in &offered {
            self.promised.insert(agent, line);
        }
        offered
    }

    /// Frees the agents promised to a line.
    fn unpromise(&mut self, line: LineId) -> Vec<AgentId> {
        let agents: Vec<AgentId> = self
            .promised
            .iter()
            .filter(|(_, l)| **l == line)
            .map(|(&a, _)| a)
            .collect();
        for agent in &agents {
            self.promised.remove(agent);
        }
        agents
    }

    fn claimed(&mut self, line: LineId, claim: Claim, now: Now) {
        let offered = self.unpromise(line);
        let Some(for_agent) = self.claiming.remove(&line) else {
            // Not a claim this campaign is waiting for: give the lead back.
            if let Claim::Placed { lead, call } = claim {
                self.finish_unplaced(lead, call, now);
            }
            return;
        };
        let (lead, call) = match claim {
            Claim::Placed { lead, call } => (lead, call),
            Claim::Nothing | Claim::Failed => return self.not_dialled(line, now),
        };
        let detect_machine = self.config.detect_machines && for_agent.is_none();
        self.push(Command::Dial {
            call,
            number: lead.number.clone(),
            detect_machine,
        });
        self.dialled += 1;
        self.by_call.insert(call, line);
        self.report_call(call, &lead, CallPhase::Dialling, for_agent, None);
        let owner = lead.owner.filter(|o| offered.contains(o));
        self.lines
            .insert(line, Line::new(lead, call, for_agent, detect_machine));
        // A callback of the agent's own: the line is kept for them, before
        // the pacer, told it is dialled, gives an unreserved line to another.
        if let Some(owner) = owner {
            self.promised.insert(owner, line);
            self.pacer
                .handle_input(PacerInput::Reserve { line, agent: owner }, now.at);
        }
        self.pacer.handle_input(
            PacerInput::Call {
                line,
                event: CallEvent::Dialled,
            },
            now.at,
        );
    }

    /// A lead whose attempt was opened but that is not dialled after all.
    fn finish_unplaced(&mut self, lead: Lead, call: CallRef, now: Now) {
        self.write(Write::Finished {
            lead,
            call,
            outcome: CallOutcome::Unconnected(AttemptOutcome::Failed),
            at: now.wall,
        });
    }

    fn not_dialled(&mut self, line: LineId, now: Now) {
        self.pacer.handle_input(
            PacerInput::Call {
                line,
                event: CallEvent::NotDialled,
            },
            now.at,
        );
    }

    fn dial_failed(&mut self, call: CallRef, now: Now) {
        let Some(line_id) = self.by_call.remove(&call) else {
            return;
        };
        let Some(line) = self.lines.remove(&line_id) else {
            return;
        };
        self.unpromise(line_id);
        self.write(Write::Finished {
            lead: line.lead.clone(),
            call,
            outcome: CallOutcome::Unconnected(AttemptOutcome::Failed),
            at: now.wall,
        });
        self.report_call(call, &line.lead, CallPhase::Ended, line.for_agent, None);
        self.pacer.handle_input(
            PacerInput::Call {
                line: line_id,
                event: CallEvent::Failed,
            },
            now.at,
        );
    }

    fn call_event(&mut self, call: CallRef, event: LineEvent, now: Now) {
        let Some(&line_id) = self.by_call.get(&call) else {
            return;
        };
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        match event {
            LineEvent::Ringing => {
                if line.state == LineState::Dialling {
                    line.state = LineState::Ringing;
                    let (lead, agent) = (line.lead.clone(), line.for_agent);
                    self.report_call(call, &lead, CallPhase::Ringing, agent, None);
                }
            }
            LineEvent::Answered => {
                if !line.state.unanswered() {
                    return;
                }
                let screened = line.detect;
                line.state = if screened {
                    // Not live until a person is heard.
                    LineState::Screening { since: now.at }
                } else {
                    LineState::Waiting
                };
                let (lead, agent) = (line.lead.clone(), line.for_agent);
                self.answered += 1;
                self.write(Write::Answered { call, at: now.wall });
                self.report_call(call, &lead, CallPhase::Answered, agent, None);
                if !screened {
                    self.live(line_id, Duration::ZERO, now);
                }
            }
            LineEvent::AnsweredBy(verdict) => {
                let LineState::Screening { since } = line.state else {
                    return;
                };
                // The person has waited since their greeting ended: the
                // pause that told them apart, or, unsure, since the answer.
                let heard = match verdict {
                    AmdVerdict::Machine if self.config.voicemail_message => {
                        return self.leave_message(line_id, None, now);
                    }
                    AmdVerdict::Machine => {
                        line.state = LineState::Machine;
                        return self.push(Command::Hangup { call });
                    }
                    AmdVerdict::Human => self.config.after_greeting,
                    AmdVerdict::Unsure => now.at.saturating_duration_since(since),
                };
                // A person, or unsure: better an agent's second than a
                // person dropped.
                line.state = LineState::Waiting;
                self.live(line_id, heard, now);
            }
            LineEvent::PlaybackFinished => match &mut line.state {
                LineState::Abandoned => self.push(Command::Hangup { call }),
                LineState::Message { left, .. } => {
                    *left = true;
                    self.push(Command::Hangup { call });
                }
                _ => {}
            },
            LineEvent::Ended(cause) => self.ended(line_id, cause, now),
        }
    }

    /// The agent on a connected call found a machine: the message is left
    /// on it and the agent is free from now (their desk goes on without a
    /// wrap-up; the attempt's outcome says whether the message was left).
    fn agent_leaves_message(&mut self, agent: AgentId, now: Now) {
        if !self.config.voicemail_message {
            return;
        }
        let on_call = self.lines.iter().find_map(|(&id, line)| match line.state {
            LineState::Connected { agent: a, since } if a == agent => Some((id, since)),
            _ => None,
        });
        let Some((line_id, since)) = on_call else {
            return;
        };
        let talk = now.at.saturating_duration_since(since);
        self.pacer.handle_input(
            PacerInput::Call {
                line: line_id,
                event: CallEvent::Ended { talk },
            },
            now.at,
        );
        self.leave_message(line_id, Some(agent), now);
    }

    /// Leaves the voicemail message on the machine that answered the line,
    /// `by` an agent who reached it or on the detector's verdict; the pacer
    /// is done with the line either way.
    fn leave_message(&mut self, line_id: LineId, by: Option<AgentId>, now: Now) {
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        let screened = matches!(line.state, LineState::Screening { .. });
        line.state = LineState::Message { by, left: false };
        let (call, lead) = (line.call, line.lead.clone());
        if screened {
            self.pacer.handle_input(
                PacerInput::Call {
                    line: line_id,
                    event: CallEvent::AnsweredMachine,
                },
                now.at,
            );
        }
        self.report_call(call, &lead, CallPhase::Voicemail, by, None);
        self.push(Command::LeaveMessage { call });
    }

    /// Tells the pacer a person answered the line, `heard` ago (zero unless screened).
    fn live(&mut self, line: LineId, heard: Duration, now: Now) {
        let event = if heard.is_zero() {
            CallEvent::AnsweredLive
        } else {
            CallEvent::AnsweredLiveAfter(heard)
        };
        self.pacer
            .handle_input(PacerInput::Call { line, event }, now.at);
    }

    fn connect(&mut self, line_id: LineId, agent: AgentId, now: Now) {
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        if line.state != LineState::Waiting {
            return;
        }
        let Some(&leg) = self.legs.get(&agent) else {
            self.cannot_connect(line_id, now);
            return self.restore_agent(agent, now);
        };
        line.state = LineState::Bridging { agent };
        let call = line.call;
        self.push(Command::Bridge { call, leg });
    }

    fn bridged(&mut self, call: CallRef, now: Now) {
        let Some(&line_id) = self.by_call.get(&call) else {
            return;
        };
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        let LineState::Bridging { agent } = line.state else {
            return;
        };
        line.state = LineState::Connected {
            agent,
            since: now.at,
        };
        let lead = line.lead.clone();
        if self.config.record {
            self.push(Command::Record {
                call,
                lead: lead.clone(),
            });
        }
        self.ledger.record(LiveAnswer::Connected, now.wall);
        self.write(Write::Connected { call, at: now.wall });
        self.report_call(call, &lead, CallPhase::Connected, Some(agent), None);
        self.pacer.handle_input(
            PacerInput::Call {
                line: line_id,
                event: CallEvent::Connected { agent },
            },
            now.at,
        );
    }

    fn bridge_failed(&mut self, call: CallRef, now: Now) {
        let Some(&line_id) = self.by_call.get(&call) else {
            return;
        };
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        let LineState::Bridging { agent } = line.state else {
            return;
        };
        line.state = LineState::Waiting;
        self.cannot_connect(line_id, now);
        self.restore_agent(agent, now);
    }

    /// The agent the pacer chose cannot take the call: it is abandoned.
    fn cannot_connect(&mut self, line_id: LineId, now: Now) {
        self.pacer.handle_input(
            PacerInput::Call {
                line: line_id,
                event: CallEvent::Abandoned,
            },
            now.at,
        );
        self.abandon(line_id, now);
    }

    fn abandon(&mut self, line_id: LineId, now: Now) {
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        if line.state != LineState::Waiting {
            return;
        }
        line.state = LineState::Abandoned;
        let (call, lead) = (line.call, line.lead.clone());
        self.ledger.record(LiveAnswer::Abandoned, now.wall);
        self.write(Write::Abandoned { call, at: now.wall });
        self.report_call(call, &lead, CallPhase::Abandoned, None, None);
        self.push(if self.config.abandon_message {
            Command::PlayAbandonMessage { call }
        } else {
            Command::Hangup { call }
        });
    }

    fn ended(&mut self, line_id: LineId, cause: EndCause, now: Now) {
        let Some(line) = self.lines.remove(&line_id) else {
            return;
        };
        self.unpromise(line_id);
        self.by_call.remove(&line.call);
        let (outcome, event) = line.outcome(cause, now.at);
        let bridging = match line.state {
            LineState::Bridging { agent } => Some(agent),
            _ => None,
        };
        // A message being left: the pacer is done with the line, and no
        // agent is on it any more.
        let message = matches!(line.state, LineState::Message { .. });
        self.write(Write::Finished {
            lead: line.lead.clone(),
            call: line.call,
            outcome,
            at: now.wall,
        });
        let agent = line.agent().or(line.for_agent).filter(|_| !message);
        self.report_call(line.call, &line.lead, CallPhase::Ended, agent, Some(cause));
        if !message {
            self.pacer.handle_input(
                PacerInput::Call {
                    line: line_id,
                    event,
                },
                now.at,
            );
        }
        if let Some(agent) = bridging {
            self.restore_agent(agent, now);
        }
    }

    /// Inputs after [`Campaign::stop`]: calls still end and are written,
    /// claims that come back are given back, nothing new starts.
    fn after_stop(&mut self, input: Input, now: Now) {
        match input {
            Input::Call {
                call,
                event: LineEvent::Ended(cause),
            } => {
                if let Some(&line) = self.by_call.get(&call) {
                    self.ended(line, cause, now);
                }
            }
            Input::Claimed { line, claim } => {
                self.claiming.remove(&line);
                self.unpromise(line);
                if let Claim::Placed { lead, call } = claim {
                    self.finish_unplaced(lead, call, now);
                }
            }
            Input::Previewed {
                lead: Some(lead), ..
            } => self.write(Write::Release { lead }),
            Input::DialFailed { call } => self.dial_failed(call, now),
            Input::FiguresRead { read, day, month } => self.ledger.apply_read(read, day, month),
            _ => {}
        }
    }

    fn read_figures(&mut self) {
        let read = self.ledger.begin_read();
        self.push(Command::ReadFigures(read));
    }

    fn figures(&mut self, now: Now) {
        let compliance = self.ledger.snapshot(now.wall);
        self.pacer
            .handle_input(PacerInput::Compliance(compliance), now.at);
        self.report(Report::Figures {
            lines: self.pacer.lines_in_flight(),
            ready: self.pacer.ready_agents(),
            dialled: self.dialled,
            answered: self.answered,
            compliance,
            dial_level_cap: self.dial_level_cap.min(self.config.pacer.max_dial_level),
        });
    }

    fn report_call(
        &mut self,
        call_ref: CallRef,
        lead: &Lead,
        phase: CallPhase,
        agent: Option<AgentId>,
        cause: Option<EndCause>,
    ) {
        self.report(Report::Call {
            call_ref,
            lead: lead.clone(),
            phase,
            agent,
            cause,
        });
    }

    fn write(&mut self, write: Write) {
        self.push(Command::Write(write));
    }

    fn report(&mut self, report: Report) {
        self.push(Command::Report(report));
    }

    fn push(&mut self, command: Command) {
        self.commands.push_back(command);
    }
}

fn sanitise_cap(cap: f64) -> f64 {
    if cap.is_finite() {
        cap.max(0.0)
    } else {
        0.0
    }
}
