//! The campaign runner: the tokio shell that drives one campaign's [`Pacer`]
//! against the SIP gateway and a source of leads.
//!
//! It claims leads as the pacer orders lines, places the calls, feeds the
//! gateway's call events back to the pacer and the [`ComplianceLedger`],
//! bridges answered calls to the agent the pacer picks, and on abandon
//! plays the campaign's message and hangs up. What it learns goes out as
//! [`Report`]s, which the service turns into bus events and agent screens.
//!
//! Leads come through the [`LeadSource`] trait so this crate needs no
//! database: the CRM implements it over its Store.
//!
//! [`Pacer`]: crate::pacer::Pacer
//! [`ComplianceLedger`]: crate::compliance::ComplianceLedger

mod campaign;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use sip_gateway::gateway::{CallRef, EndCause, Gateway};
use tokio::sync::mpsc;

use crate::compliance::ComplianceSnapshot;
use crate::pacer::{AgentId, AgentState, PacerConfig};
use crate::retry::AttemptOutcome;

pub use campaign::CampaignRunner;

/// A lead claimed for dialling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// The lead's id in the source.
    pub id: i64,
    /// The contact behind it, for the agent's screen.
    pub contact_id: i64,
    /// The number to dial, E.164.
    pub number: String,
}

/// How a call the runner placed ended, as the lead source records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// No conversation: retried or finished by the campaign's rules.
    Unconnected(AttemptOutcome),
    /// An agent talked to the contact for this long; the agent's
    /// disposition decides what happens to the lead.
    Conversation {
        /// The agent.
        agent: AgentId,
        /// How long they talked.
        talk: Duration,
    },
}

/// Errors of the runner and its lead source.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The lead source failed.
    #[error("lead source: {0}")]
    Leads(String),
}

/// Where the runner gets leads and writes what happened to them.
pub trait LeadSource: Send + Sync + 'static {
    /// Claims up to `n` leads that may be dialled now.
    fn claim(&self, n: usize) -> impl Future<Output = Result<Vec<Lead>, RunnerError>> + Send;
    /// Records that a call to the lead was placed under `call_ref`.
    fn placed(
        &self,
        lead: &Lead,
        call_ref: &str,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records that the call was answered.
    fn answered(
        &self,
        lead: &Lead,
        call_ref: &str,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records how the call ended and schedules what comes next.
    fn finished(
        &self,
        lead: &Lead,
        call_ref: &str,
        outcome: CallOutcome,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Gives back a claimed lead that was not dialled.
    fn release(&self, lead: &Lead) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records that the connected call is being recorded to `path`.
    fn recorded(
        &self,
        lead: &Lead,
        call_ref: &str,
        path: &std::path::Path,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
}

/// One campaign's dialling settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Pacing mode, target and ceilings.
    pub pacer: PacerConfig,
    /// The caller ID presented, E.164.
    pub caller_id: String,
    /// The trunk to dial through.
    pub trunk: String,
    /// How long to ring before giving up.
    pub ring_timeout: Duration,
    /// The recorded message played on abandon.
    pub abandon_message: Option<PathBuf>,
    /// The folder connected calls are recorded into, as stereo WAVs named
    /// by call reference; `None` records nothing.
    pub recordings: Option<PathBuf>,
    /// Screens the calls the pacer places for answering machines: a call
    /// goes to an agent only once a person (or an unsure verdict) is heard,
    /// and a machine is hung up and recorded as such.
    pub detect_machines: bool,
}

/// A change on an agent's side, from the agent's desk.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentUpdate {
    /// The agent's state changed; `leg` is the agent's media leg in the
    /// gateway, which answered calls are bridged into.
    State {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
        /// The agent's nailed-up media leg, when connected.
        leg: Option<CallRef>,
    },
    /// In a preview campaign, the agent asks for the next contact to look at.
    PreviewNext {
        /// The agent.
        agent: AgentId,
    },
    /// The agent chose to call the contact on screen.
    PreviewCall {
        /// The agent.
        agent: AgentId,
    },
    /// The agent chose not to call the contact on screen; it is held back
    /// from this agent's next previews for a while.
    PreviewSkip {
        /// The agent.
        agent: AgentId,
    },
    /// A Paused agent dials this lead, leased for them, by hand.
    ManualDial {
        /// The agent.
        agent: AgentId,
        /// The lead, already leased to this node.
        lead: Lead,
    },
    /// The supervisor's cap on lines per staffed agent. Not an agent's
    /// change, but it keeps its order with them on the same channel.
    DialLevelCap(f64),
}

/// Where a call is, as reported outward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// Placed.
    Dialling,
    /// Ringing at the far end.
    Ringing,
    /// Answered, waiting for an agent.
    Answered,
    /// Bridged to an agent.
    Connected,
    /// No agent in time: the message plays and the call ends.
    Abandoned,
    /// Over.
    Ended,
}

/// What the runner tells the rest of the service.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A call changed phase.
    Call {
        /// The call.
        call_ref: CallRef,
        /// The lead called.
        lead: Lead,
        /// The new phase.
        phase: CallPhase,
        /// The agent on it: once connected, or from the start when the call
        /// was placed for one agent (preview and manual calls).
        agent: Option<AgentId>,
        /// Why it ended, once ended.
        cause: Option<EndCause>,
    },
    /// A contact offered to an agent in a preview campaign; `None` when no
    /// lead may be called now.
    Preview {
        /// The agent.
        agent: AgentId,
        /// The lead to look at.
        lead: Option<Lead>,
    },
    /// An agent's manual dial could not be placed (they were not Paused,
    /// had no audio leg, or already had a line); the lead was given back.
    ManualRefused {
        /// The agent.
        agent: AgentId,
    },
    /// The campaign's figures, every second.
    Figures {
        /// Lines ordered, ringing or connected.
        lines: usize,
        /// Agents Ready.
        ready: usize,
        /// Calls placed since the runner started.
        dialled: u64,
        /// Calls answered since the runner started.
        answered: u64,
        /// The ledger's rolling figures.
        compliance: ComplianceSnapshot,
        /// The most lines per staffed agent the pacer may dial now.
        dial_level_cap: f64,
    },
}

/// The handle to a running campaign.
pub struct RunnerHandle {
    agents: mpsc::UnboundedSender<AgentUpdate>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunnerHandle {
    /// Passes an agent's change to the runner.
    pub fn agent(&self, update: AgentUpdate) {
        let _ = self.agents.send(update);
    }

    /// Sets the supervisor's cap on lines per staffed agent, below the
    /// plan's `max_dial_level`; it holds from the runner's next step.
    pub fn set_dial_level_cap(&self, cap: f64) {
        let _ = self.agents.send(AgentUpdate::DialLevelCap(cap));
    }

    /// Stops dialling; calls in progress are hung up.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts a runner for one campaign; reports go to `reports`.
pub fn spawn<L: LeadSource>(
    plan: Plan,
    leads: L,
    gateway: Gateway,
    reports: mpsc::UnboundedSender<Report>,
) -> RunnerHandle {
    let (agents_tx, agents_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let runner = CampaignRunner::new(plan, leads, gateway, reports);
    let task = tokio::spawn(runner.run(agents_rx, stop_rx));
    RunnerHandle {
        agents: agents_tx,
        stop: Some(stop_tx),
        task,
    }
}
