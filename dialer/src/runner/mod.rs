//! The campaign runner: the tokio shell around one campaign's sans-IO core
//! ([`dialer_core::campaign::Campaign`]).
//!
//! It feeds the core agents' changes, the gateway's events for the
//! campaign's own calls (each call's events come on a channel of the
//! runner's own, so none is lost to a lagging broadcast), the leads it
//! claimed and the figures it read, each with the time from the service's
//! one [`Clock`]; then it carries out the core's commands. Gateway commands
//! are sent at once; claims run as tasks of their own; writes and figure
//! reads go, in order, to a writer task ([`writer`]), so no database
//! latency can hold up a two-second decision.
//!
//! Leads come through the [`LeadSource`] trait; the Store's is
//! [`crate::leads::StoreLeads`].

mod shell;
mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dialer_core::campaign::CampaignConfig;
use dialer_core::compliance::Counts;
use dialer_core::pacer::AgentId;
use sip_gateway::gateway::{CallRef, Gateway};
use tokio::sync::mpsc;
use vocab::Clock;

use crate::pacer::PacerConfig;

pub use dialer_core::campaign::{AgentUpdate, CallOutcome, CallPhase, Lead, Report};

/// Errors of the runner and its lead source.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The lead source failed.
    #[error("lead source: {0}")]
    Leads(String),
}

/// Where the runner gets leads and writes what happened to them.
pub trait LeadSource: Send + Sync + 'static {
    /// Claims up to `n` leads that may be dialled now; a callback booked
    /// for one agent comes only to a claim naming them in `agents`, with
    /// [`Lead::owner`] set, until the campaign's grace after its time.
    fn claim(
        &self,
        n: usize,
        agents: &[AgentId],
    ) -> impl Future<Output = Result<Vec<Lead>, RunnerError>> + Send;
    /// Records that a call to the lead is being placed under `call`,
    /// before it is dialled.
    fn placed(
        &self,
        lead: &Lead,
        call: CallRef,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records that the call was answered.
    fn answered(
        &self,
        call: CallRef,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records that an agent was connected to the call: a live answer.
    fn connected(
        &self,
        call: CallRef,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records that the call was abandoned: a live answer and an abandon.
    fn abandoned(
        &self,
        call: CallRef,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records how the call ended and schedules what comes next.
    fn finished(
        &self,
        lead: &Lead,
        call: CallRef,
        outcome: CallOutcome,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Gives back a claimed lead that was not dialled.
    fn release(&self, lead: &Lead) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Records that the connected call is being recorded to `path`.
    fn recorded(
        &self,
        lead: &Lead,
        call: CallRef,
        path: &std::path::Path,
    ) -> impl Future<Output = Result<(), RunnerError>> + Send;
    /// Returns the campaign's live answers and abandons over the last 24
    /// hours and 30 days before `now`, from every node.
    fn figures(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Counts, Counts), RunnerError>> + Send;
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
    /// The recorded message left on answering machines.
    pub voicemail_message: Option<PathBuf>,
    /// The folder connected calls are recorded into, as stereo WAVs named
    /// by call reference; `None` records nothing.
    pub recordings: Option<PathBuf>,
    /// Screens the calls the pacer places for answering machines: a call
    /// goes to an agent only once a person (or an unsure verdict) is heard,
    /// and a machine is hung up and recorded as such.
    pub detect_machines: bool,
}

/// What the rest of the service tells a runner, in order.
#[derive(Debug)]
enum Control {
    /// An agent's change, or the supervisor's cap.
    Agent(AgentUpdate),
    /// Place no new call; let those in progress end.
    Drain,
    /// Lend a free agent to an inbound call; the answer says whether they were free.
    Lend(AgentId, tokio::sync::oneshot::Sender<bool>),
}

/// The handle to a running campaign.
pub struct RunnerHandle {
    control: mpsc::UnboundedSender<Control>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Calls placed and not yet ended, as of the runner's last step.
    calls: Arc<AtomicUsize>,
}

impl RunnerHandle {
    /// Passes an agent's change to the runner.
    pub fn agent(&self, update: AgentUpdate) {
        let _ = self.control.send(Control::Agent(update));
    }

    /// Sets the supervisor's cap on lines per staffed agent, below the
    /// plan's `max_dial_level`; it holds from the runner's next step.
    pub fn set_dial_level_cap(&self, cap: f64) {
        self.agent(AgentUpdate::DialLevelCap(cap));
    }

    /// Lends an agent to an inbound call if they are free for this
    /// campaign (Ready, no line reserved for them), answering whether they
    /// were; a stopped runner answers false.
    pub async fn lend(&self, agent: AgentId) -> bool {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Lend(agent, reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Leaves `n` Ready agents idle for inbound queues; dialling covers
    /// only the Ready agents beyond them.
    pub fn set_hold_back(&self, n: usize) {
        self.agent(AgentUpdate::HoldBack(n));
    }

    /// Places no new call from now on; calls in progress run to their end.
    pub fn drain(&self) {
        let _ = self.control.send(Control::Drain);
    }

    /// Returns the calls placed and not yet ended.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Stops dialling; calls in progress are hung up and written.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts a runner for one campaign, reading the time from `clock`;
/// reports go to `reports`.
pub fn spawn<L: LeadSource>(
    plan: Plan,
    leads: L,
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    reports: mpsc::UnboundedSender<Report>,
) -> RunnerHandle {
    let (control, control_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let runner = shell::Runner::new(plan, Arc::new(leads), gateway, clock, reports);
    let task = tokio::spawn(runner.run(control_rx, stop_rx, calls.clone()));
    RunnerHandle {
        control,
        stop: Some(stop_tx),
        task,
        calls,
    }
}

impl Plan {
    /// The core's settings for this plan.
    fn campaign(&self) -> CampaignConfig {
        CampaignConfig {
            detect_machines: self.detect_machines,
            after_greeting: sip_gateway::media::AmdConfig::default().after_greeting,
            abandon_message: self.abandon_message.is_some(),
            voicemail_message: self.voicemail_message.is_some(),
            record: self.recordings.is_some(),
            ..CampaignConfig::new(self.pacer)
        }
    }
}

/// How long a stopping runner waits for its hung-up calls to end.
const STOP_GRACE: Duration = Duration::from_secs(10);
