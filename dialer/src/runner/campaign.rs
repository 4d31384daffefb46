//! The loop of one campaign's runner.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use sip_gateway::gateway::{
    AmdVerdict, Audio, CallEvent as GatewayEvent, CallEventKind, CallRef, DialRequest, EndCause,
    Gateway,
};
use sip_gateway::media::AmdConfig;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::{AgentUpdate, CallOutcome, CallPhase, Lead, LeadSource, Plan, Report};
use crate::compliance::{ComplianceLedger, LiveAnswer};
use crate::pacer::{AgentId, AgentState, CallEvent, LineId, Pacer, PacerEvent, PacerInput};
use crate::retry::AttemptOutcome;

/// One campaign's pacer driven over real calls.
pub struct CampaignRunner<L> {
    plan: Plan,
    leads: L,
    gateway: Gateway,
    reports: mpsc::UnboundedSender<Report>,
    pacer: Pacer,
    ledger: ComplianceLedger,
    lines: BTreeMap<LineId, Line>,
    by_call: HashMap<CallRef, LineId>,
    legs: BTreeMap<AgentId, CallRef>,
    previews: BTreeMap<AgentId, Lead>,
    skipped: Vec<(Lead, Instant)>,
    dialled: u64,
    answered: u64,
    /// The supervisor's cap last set, as the pacer holds it.
    dial_level_cap: f64,
}

/// How long a lead an agent skipped in preview stays held back.
const SKIP_HOLD: Duration = Duration::from_secs(600);

struct Line {
    lead: Lead,
    call: CallRef,
    /// The agent the call was placed for (preview and manual calls).
    for_agent: Option<AgentId>,
    answered: bool,
    connected: Option<(AgentId, Instant)>,
    abandoned: bool,
    /// Dialled with machine detection.
    detect: bool,
    /// Answered at this instant, and waiting to hear who answered.
    screening: Option<std::time::Instant>,
    /// A machine answered; the call is being hung up.
    machine: bool,
}

impl<L: LeadSource> CampaignRunner<L> {
    /// Creates a runner; [`CampaignRunner::run`] drives it.
    pub fn new(
        plan: Plan,
        leads: L,
        gateway: Gateway,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Self {
        let now = Instant::now().into_std();
        let ledger = ComplianceLedger::new(plan.pacer.target);
        let mut pacer = Pacer::new(plan.pacer, now);
        pacer.handle_input(PacerInput::Compliance(ledger.snapshot(Utc::now())), now);
        let dial_level_cap = plan.pacer.max_dial_level;
        CampaignRunner {
            pacer,
            ledger,
            plan,
            leads,
            gateway,
            reports,
            lines: BTreeMap::new(),
            by_call: HashMap::new(),
            legs: BTreeMap::new(),
            previews: BTreeMap::new(),
            skipped: Vec::new(),
            dialled: 0,
            answered: 0,
            dial_level_cap,
        }
    }

    /// Runs until stopped or the gateway goes away.
    pub async fn run(
        mut self,
        mut agents: mpsc::UnboundedReceiver<AgentUpdate>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut events = self.gateway.events();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            self.drain_pacer().await;
            let wake = self
                .pacer
                .poll_timeout()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(wake) => {
                    self.pacer.handle_timeout(Instant::now().into_std());
                }
                update = agents.recv() => match update {
                    Some(update) => self.agent(update).await,
                    None => break,
                },
                event = events.recv() => match event {
                    Ok(event) => self.call_event(event).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "campaign runner fell behind the gateway");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    self.figures();
                    self.release_skipped(false).await;
                }
            }
        }
        for line in self.lines.values() {
            let _ = self.gateway.hangup(line.call).await;
        }
        self.release_skipped(true).await;
        let previews = std::mem::take(&mut self.previews);
        for lead in previews.values() {
            let _ = self.leads.release(lead).await;
        }
    }

    async fn agent(&mut self, update: AgentUpdate) {
        let (agent, state, leg) = match update {
            AgentUpdate::State { agent, state, leg } => (agent, state, leg),
            AgentUpdate::PreviewNext { agent } => return self.preview_next(agent).await,
            AgentUpdate::PreviewCall { agent } => {
                if self.previews.contains_key(&agent) {
                    let now = Instant::now().into_std();
                    self.pacer
                        .handle_input(PacerInput::PreviewDial { agent }, now);
                }
                return;
            }
            AgentUpdate::DialLevelCap(cap) => {
                if cap.is_finite() {
                    self.dial_level_cap = cap.max(0.0);
                }
                let now = Instant::now().into_std();
                self.pacer.handle_input(PacerInput::DialLevelCap(cap), now);
                return;
            }
            AgentUpdate::PreviewSkip { agent } => {
                if let Some(lead) = self.previews.remove(&agent) {
                    self.skipped.push((lead, Instant::now()));
                }
                return;
            }
            AgentUpdate::ManualDial { agent, lead } => return self.manual_dial(agent, lead).await,
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
        let now = Instant::now().into_std();
        self.pacer
            .handle_input(PacerInput::Agent { agent, state }, now);
    }

    /// Dials a lead for a Paused agent by hand; the lead goes back, and the
    /// agent hears so, when the pacer cannot order the line.
    async fn manual_dial(&mut self, agent: AgentId, lead: Lead) {
        if self.legs.contains_key(&agent) && self.pacer.dials_for(agent).is_none() {
            // A lead held on screen in preview gives way to the one dialled.
            if let Some(held) = self.previews.insert(agent, lead.clone()) {
                if let Err(e) = self.leads.release(&held).await {
                    tracing::warn!(error = %e, "releasing a previewed lead failed");
                }
            }
            let now = Instant::now().into_std();
            self.pacer
                .handle_input(PacerInput::ManualDial { agent }, now);
            if self.pacer.dials_for(agent).is_some() {
                return;
            }
            self.previews.remove(&agent);
        }
        if let Err(e) = self.leads.release(&lead).await {
            tracing::warn!(error = %e, "releasing a refused manual lead failed");
        }
        let _ = self.reports.send(Report::ManualRefused { agent });
    }

    /// Offers the agent the next lead to preview, holding it for them.
    async fn preview_next(&mut self, agent: AgentId) {
        if let Some(lead) = self.previews.get(&agent) {
            let lead = Some(lead.clone());
            let _ = self.reports.send(Report::Preview { agent, lead });
            return;
        }
        let lead = match self.leads.claim(1).await {
            Ok(mut leads) => leads.pop(),
            Err(e) => {
                tracing::warn!(error = %e, "claiming a lead to preview failed");
                None
            }
        };
        if let Some(lead) = &lead {
            self.previews.insert(agent, lead.clone());
        }
        let _ = self.reports.send(Report::Preview { agent, lead });
    }

    /// Gives back skipped leads once held long enough, or all of them.
    async fn release_skipped(&mut self, all: bool) {
        let now = Instant::now();
        let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.skipped)
            .into_iter()
            .partition(|(_, at)| all || now.duration_since(*at) >= SKIP_HOLD);
        self.skipped = kept;
        for (lead, _) in due {
            if let Err(e) = self.leads.release(&lead).await {
                tracing::warn!(error = %e, "releasing a skipped lead failed");
            }
        }
    }

    async fn drain_pacer(&mut self) {
        while let Some(order) = self.pacer.poll_dial() {
            let previewed = order.agent.and_then(|a| self.previews.remove(&a));
            self.dial(order.line, order.agent, previewed).await;
        }
        while let Some(event) = self.pacer.poll_event() {
            match event {
                PacerEvent::Connect { line, agent } => self.connect(line, agent).await,
                PacerEvent::Abandon { line } => self.abandon(line).await,
            }
        }
    }

    async fn dial(&mut self, line: LineId, agent: Option<AgentId>, previewed: Option<Lead>) {
        let now = || Instant::now().into_std();
        // A preview line dials the lead held for its agent, or nothing: it
        // must not reach a stranger's number the agent never saw. Only a line
        // with a held lead (preview, manual) is the agent's own; a
        // progressive reservation may still pass to another agent.
        let held = previewed.is_some();
        let claimed = match (previewed, agent) {
            (Some(lead), _) => Ok(vec![lead]),
            (None, Some(_)) if self.pacer.mode() == crate::pacer::Mode::Preview => Ok(Vec::new()),
            (None, _) => self.leads.claim(1).await,
        };
        let agent = agent.filter(|_| held);
        let lead = match claimed {
            Ok(mut leads) if !leads.is_empty() => leads.swap_remove(0),
            Ok(_) => {
                self.pacer.handle_input(
                    PacerInput::Call {
                        line,
                        event: CallEvent::NotDialled,
                    },
                    now(),
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming a lead failed");
                self.pacer.handle_input(
                    PacerInput::Call {
                        line,
                        event: CallEvent::NotDialled,
                    },
                    now(),
                );
                return;
            }
        };
        let call = CallRef::random();
        let reference = call.to_string();
        if let Err(e) = self.leads.placed(&lead, &reference).await {
            tracing::warn!(error = %e, "recording a placed call failed");
            let _ = self.leads.release(&lead).await;
            self.pacer.handle_input(
                PacerInput::Call {
                    line,
                    event: CallEvent::NotDialled,
                },
                now(),
            );
            return;
        }
        let request = DialRequest {
            number: lead.number.clone(),
            caller_id: self.plan.caller_id.clone(),
            trunk: self.plan.trunk.clone(),
            ring_timeout: self.plan.ring_timeout,
            call_ref: call,
            // A call an agent placed has that agent waiting on it already.
            detect_machine: self.plan.detect_machines && agent.is_none(),
        };
        let detect = request.detect_machine;
        match self.gateway.dial(request).await {
            Ok(_) => {
                self.dialled += 1;
                self.report(call, &lead, CallPhase::Dialling, agent, None);
                self.by_call.insert(call, line);
                self.lines.insert(
                    line,
                    Line {
                        lead,
                        call,
                        for_agent: agent,
                        answered: false,
                        connected: None,
                        abandoned: false,
                        detect,
                        screening: None,
                        machine: false,
                    },
                );
                self.pacer.handle_input(
                    PacerInput::Call {
                        line,
                        event: CallEvent::Dialled,
                    },
                    now(),
                );
            }
            Err(e) => {
                tracing::warn!(%call, error = %e, "the gateway refused a call");
                let outcome = CallOutcome::Unconnected(AttemptOutcome::Failed);
                if let Err(e) = self.leads.finished(&lead, &reference, outcome).await {
                    tracing::warn!(error = %e, "recording a failed call failed");
                }
                self.pacer.handle_input(
                    PacerInput::Call {
                        line,
                        event: CallEvent::Failed,
                    },
                    now(),
                );
            }
        }
    }

    async fn call_event(&mut self, event: GatewayEvent) {
        let Some(&line_id) = self.by_call.get(&event.call_ref) else {
            return;
        };
        let now = Instant::now().into_std();
        match event.kind {
            CallEventKind::Ringing | CallEventKind::EarlyMedia => {
                if let Some(line) = self.lines.get(&line_id) {
                    let agent = line.for_agent;
                    self.report(line.call, &line.lead, CallPhase::Ringing, agent, None);
                }
            }
            CallEventKind::Answered => {
                let Some(line) = self.lines.get_mut(&line_id) else {
                    return;
                };
                line.answered = true;
                self.answered += 1;
                let (lead, call, agent) = (line.lead.clone(), line.call, line.for_agent);
                if let Err(e) = self.leads.answered(&lead, &call.to_string()).await {
                    tracing::warn!(error = %e, "recording an answer failed");
                }
                self.report(call, &lead, CallPhase::Answered, agent, None);
                match self.lines.get_mut(&line_id).filter(|l| l.detect) {
                    // Not live until a person is heard.
                    Some(line) => line.screening = Some(now),
                    None => self.live(line_id, Duration::ZERO, now),
                }
            }
            CallEventKind::AnsweredBy { verdict } => {
                let Some(line) = self.lines.get_mut(&line_id) else {
                    return;
                };
                let Some(answered_at) = line.screening.take() else {
                    return;
                };
                tracing::debug!(call = %event.call_ref, ?verdict, "who answered");
                // The person has waited since their greeting ended: the
                // pause that told them apart, or, unsure, since the answer.
                let heard = match verdict {
                    AmdVerdict::Machine => {
                        line.machine = true;
                        let _ = self.gateway.hangup(event.call_ref).await;
                        return;
                    }
                    AmdVerdict::Human => AmdConfig::default().after_greeting,
                    AmdVerdict::Unsure => now.saturating_duration_since(answered_at),
                };
                // A person, or unsure: better an agent's second than a
                // person dropped.
                self.live(line_id, heard, now);
            }
            CallEventKind::PlaybackFinished
                if self.lines.get(&line_id).is_some_and(|l| l.abandoned) =>
            {
                let _ = self.gateway.hangup(event.call_ref).await;
            }
            CallEventKind::Ended { cause } => self.ended(line_id, cause).await,
            // Trying, DTMF and media-leg events change nothing here.
            _ => {}
        }
    }

    async fn connect(&mut self, line_id: LineId, agent: AgentId) {
        let now = Instant::now();
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        let bridged = match self.legs.get(&agent) {
            Some(leg) => self.gateway.bridge(line.call, *leg).await.is_ok(),
            None => false,
        };
        if !bridged {
            tracing::warn!(call = %line.call, "bridging to the agent failed");
            self.pacer.handle_input(
                PacerInput::Call {
                    line: line_id,
                    event: CallEvent::Abandoned,
                },
                now.into_std(),
            );
            self.abandon(line_id).await;
            return;
        }
        line.connected = Some((agent, now));
        let (call, lead) = (line.call, line.lead.clone());
        self.start_recording(call, &lead).await;
        self.ledger.record(LiveAnswer::Connected, Utc::now());
        self.report(call, &lead, CallPhase::Connected, Some(agent), None);
        self.pacer.handle_input(
            PacerInput::Call {
                line: line_id,
                event: CallEvent::Connected { agent },
            },
            now.into_std(),
        );
    }

    /// Records a connected call into the plan's folder and tells the lead
    /// source where; a recording that cannot start leaves the call alone.
    async fn start_recording(&self, call: CallRef, lead: &Lead) {
        let Some(folder) = &self.plan.recordings else {
            return;
        };
        let path = folder.join(format!("{call}.wav"));
        if let Err(e) = self.gateway.record(call, &path).await {
            tracing::warn!(%call, error = %e, "the call could not be recorded");
            return;
        }
        if let Err(e) = self.leads.recorded(lead, &call.to_string(), &path).await {
            tracing::warn!(%call, error = %e, "registering a recording failed");
        }
    }

    async fn abandon(&mut self, line_id: LineId) {
        let Some(line) = self.lines.get_mut(&line_id) else {
            return;
        };
        if line.abandoned {
            return;
        }
        line.abandoned = true;
        let (call, lead) = (line.call, line.lead.clone());
        self.ledger.record(LiveAnswer::Abandoned, Utc::now());
        self.report(call, &lead, CallPhase::Abandoned, None, None);
        let played = match &self.plan.abandon_message {
            Some(path) => self
                .gateway
                .play(call, Audio::File(path.clone()))
                .await
                .map_err(|e| tracing::warn!(%call, error = %e, "the abandon message did not play"))
                .is_ok(),
            None => false,
        };
        if !played {
            let _ = self.gateway.hangup(call).await;
        }
    }

    /// Tells the pacer a person answered the line, `heard` ago (zero unless screened).
    fn live(&mut self, line: LineId, heard: Duration, now: std::time::Instant) {
        let event = if heard.is_zero() {
            CallEvent::AnsweredLive
        } else {
            CallEvent::AnsweredLiveAfter(heard)
        };
        self.pacer
            .handle_input(PacerInput::Call { line, event }, now);
    }

    async fn ended(&mut self, line_id: LineId, cause: EndCause) {
        let Some(line) = self.lines.remove(&line_id) else {
            return;
        };
        self.by_call.remove(&line.call);
        let now = Instant::now();
        let (outcome, event) = match (line.connected, line.abandoned, line.answered) {
            (Some((agent, since)), _, _) => {
                let talk = now.duration_since(since);
                (
                    CallOutcome::Conversation { agent, talk },
                    CallEvent::Ended { talk },
                )
            }
            (None, true, _) => (
                CallOutcome::Unconnected(AttemptOutcome::Abandoned),
                CallEvent::Abandoned,
            ),
            (None, false, true) if line.machine => (
                CallOutcome::Unconnected(AttemptOutcome::Machine),
                CallEvent::AnsweredMachine,
            ),
            // Answered, then gone before the pacer decided: the far end hung up.
            (None, false, true) => (
                CallOutcome::Unconnected(AttemptOutcome::NoAnswer),
                CallEvent::Ended {
                    talk: Duration::ZERO,
                },
            ),
            (None, false, false) => match cause {
                EndCause::Busy => (
                    CallOutcome::Unconnected(AttemptOutcome::Busy),
                    CallEvent::Busy,
                ),
                EndCause::NoAnswer => (
                    CallOutcome::Unconnected(AttemptOutcome::NoAnswer),
                    CallEvent::NoAnswer,
                ),
                _ => (
                    CallOutcome::Unconnected(AttemptOutcome::Failed),
                    CallEvent::Failed,
                ),
            },
        };
        if let Err(e) = self
            .leads
            .finished(&line.lead, &line.call.to_string(), outcome)
            .await
        {
            tracing::warn!(call = %line.call, error = %e, "recording the outcome failed");
        }
        let agent = line.connected.map(|(a, _)| a).or(line.for_agent);
        self.report(line.call, &line.lead, CallPhase::Ended, agent, Some(cause));
        self.pacer.handle_input(
            PacerInput::Call {
                line: line_id,
                event,
            },
            now.into_std(),
        );
    }

    fn figures(&mut self) {
        let now = Utc::now();
        self.ledger.prune(now);
        let compliance = self.ledger.snapshot(now);
        self.pacer.handle_input(
            PacerInput::Compliance(compliance),
            Instant::now().into_std(),
        );
        let _ = self.reports.send(Report::Figures {
            lines: self.pacer.lines_in_flight(),
            ready: self.pacer.ready_agents(),
            dialled: self.dialled,
            answered: self.answered,
            compliance,
            dial_level_cap: self.dial_level_cap.min(self.plan.pacer.max_dial_level),
        });
    }

    fn report(
        &self,
        call_ref: CallRef,
        lead: &Lead,
        phase: CallPhase,
        agent: Option<AgentId>,
        cause: Option<EndCause>,
    ) {
        let _ = self.reports.send(Report::Call {
            call_ref,
            lead: lead.clone(),
            phase,
            agent,
            cause,
        });
    }
}
