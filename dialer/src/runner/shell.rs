//! The loop of one campaign's runner: feed the core, carry out its commands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dialer_core::campaign::{Campaign, Claim, Command, Input, LineEvent, Now};
use sip_gateway::gateway::{
    Audio, CallEvent, CallEventKind, CallRef, DialRequest, Gateway, GatewayError,
};
use sip_gateway::media::greeting::GreetingEnded;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use vocab::Clock;

use super::writer::{self, Job};
use super::{Control, LeadSource, Plan, Report, STOP_GRACE};

/// One campaign's core driven over real calls and a lead source.
pub(super) struct Runner<L> {
    core: Campaign,
    plan: Plan,
    leads: Arc<L>,
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    reports: mpsc::UnboundedSender<Report>,
    jobs: mpsc::UnboundedSender<Job>,
    writer: tokio::task::JoinHandle<()>,
    /// Answers to claims and reads, from their tasks.
    results_tx: mpsc::UnboundedSender<Input>,
    results: mpsc::UnboundedReceiver<Input>,
    /// The gateway's events for this campaign's calls only.
    calls_tx: mpsc::UnboundedSender<CallEvent>,
    calls: mpsc::UnboundedReceiver<CallEvent>,
}

impl<L: LeadSource> Runner<L> {
    pub fn new(
        plan: Plan,
        leads: Arc<L>,
        gateway: Gateway,
        clock: Arc<dyn Clock>,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer::run(
            leads.clone(),
            clock.clone(),
            jobs_rx,
            results_tx.clone(),
        ));
        let now = Now {
            at: Instant::now().into_std(),
            wall: clock.now(),
        };
        Runner {
            core: Campaign::new(plan.campaign(), now),
            plan,
            leads,
            gateway,
            clock,
            reports,
            jobs,
            writer,
            results_tx,
            results,
            calls_tx,
            calls,
        }
    }

    /// Runs until stopped; then hangs up, waits for the calls to end and
    /// for every write to land.
    pub async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut stop: oneshot::Receiver<()>,
        calls: Arc<AtomicUsize>,
    ) {
        loop {
            self.execute().await;
            calls.store(self.core.calls(), Ordering::Relaxed);
            let wake = self
                .core
                .poll_timeout()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.core.handle_timeout(now);
                }
                update = control.recv() => match update {
                    Some(Control::Agent(update)) => self.input(Input::Agent(update)),
                    Some(Control::Drain) => {
                        let now = self.now();
                        self.core.drain(now);
                    }
                    Some(Control::Lend(agent, reply)) => {
                        let now = self.now();
                        let lent = self.core.lend(agent, now);
                        if let (false, Some(why)) = (lent, self.core.not_lendable(agent)) {
                            tracing::debug!(agent = agent.0, why, "not lent to an inbound call");
                        }
                        let _ = reply.send(lent);
                    }
                    None => break,
                },
                Some(event) = self.calls.recv() => self.call_event(event),
                Some(input) = self.results.recv() => self.input(input),
            }
        }
        self.core.stop();
        self.execute().await;
        let deadline = Instant::now() + STOP_GRACE;
        while !self.core.is_finished() {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(calls = self.core.calls(), "calls did not end in time at stop");
                    break;
                }
                Some(event) = self.calls.recv() => self.call_event(event),
                Some(input) = self.results.recv() => self.input(input),
            }
            self.execute().await;
        }
        calls.store(self.core.calls(), Ordering::Relaxed);
        let Runner { jobs, writer, .. } = self;
        drop(jobs);
        let _ = writer.await;
    }

    fn now(&self) -> Now {
        Now {
            at: Instant::now().into_std(),
            wall: self.clock.now(),
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        self.core.handle_input(input, now);
    }

    fn call_event(&mut self, event: CallEvent) {
        let line = match event.kind {
            CallEventKind::Ringing | CallEventKind::EarlyMedia => LineEvent::Ringing,
            CallEventKind::Answered => LineEvent::Answered,
            CallEventKind::AnsweredBy { verdict } => {
                tracing::debug!(call = %event.call_ref, ?verdict, "who answered");
                LineEvent::AnsweredBy(verdict)
            }
            CallEventKind::PlaybackFinished => LineEvent::PlaybackFinished,
            CallEventKind::GreetingEnded { ended } => {
                tracing::debug!(call = %event.call_ref, ?ended, "the greeting ended");
                if ended == GreetingEnded::TimedOut {
                    // No message plays on a greeting that never ends.
                    self.input(Input::PlayFailed {
                        call: event.call_ref,
                    });
                }
                return;
            }
            CallEventKind::Ended { cause } => LineEvent::Ended(cause),
            // Trying, DTMF and media-leg events change nothing here.
            _ => return,
        };
        self.input(Input::Call {
            call: event.call_ref,
            event: line,
        });
    }

    /// Carries out every command the core has, feeding back what they return.
    async fn execute(&mut self) {
        while let Some(command) = self.core.poll_command() {
            match command {
                Command::Claim { line, held, agents } => {
                    let leads = self.leads.clone();
                    let results = self.results_tx.clone();
                    tokio::spawn(async move {
                        let claim = claim(leads.as_ref(), held, &agents).await;
                        let _ = results.send(Input::Claimed { line, claim });
                    });
                }
                Command::ClaimPreview { agent } => {
                    let leads = self.leads.clone();
                    let results = self.results_tx.clone();
                    tokio::spawn(async move {
                        let lead = match leads.claim(1, &[agent]).await {
                            Ok(mut leads) => leads.pop(),
                            Err(e) => {
                                tracing::warn!(error = %e, "claiming a lead to preview failed");
                                None
                            }
                        };
                        let _ = results.send(Input::Previewed { agent, lead });
                    });
                }
                Command::Dial {
                    call,
                    number,
                    detect_machine,
                } => {
                    let request = DialRequest {
                        number,
                        caller_id: self.plan.caller_id.clone(),
                        trunk: self.plan.trunk.clone(),
                        ring_timeout: self.plan.ring_timeout,
                        call_ref: call,
                        detect_machine,
                    };
                    let placed = self
                        .gateway
                        .dial_watched(request, self.calls_tx.clone())
                        .await;
                    if let Err(e) = placed {
                        tracing::warn!(%call, error = %e, "the gateway refused a call");
                        self.input(Input::DialFailed { call });
                    }
                }
                Command::Bridge { call, leg } => match self.gateway.bridge(call, leg).await {
                    Ok(()) => self.input(Input::Bridged { call }),
                    Err(e) => {
                        tracing::warn!(%call, error = %e, "bridging to the agent failed");
                        self.input(Input::BridgeFailed { call });
                    }
                },
                Command::PlayAbandonMessage { call } => {
                    let played = match &self.plan.abandon_message {
                        Some(path) => self.gateway.play(call, Audio::File(path.clone())).await,
                        None => Err(GatewayError::NoSuchCall),
                    };
                    if let Err(e) = played {
                        tracing::warn!(%call, error = %e, "the abandon message did not play");
                        self.input(Input::PlayFailed { call });
                    }
                }
                Command::LeaveMessage { call } => {
                    let left = match &self.plan.voicemail_message {
                        Some(path) => {
                            let message = Audio::File(path.clone());
                            self.gateway.leave_message(call, message).await
                        }
                        None => Err(GatewayError::NoSuchCall),
                    };
                    if let Err(e) = left {
                        tracing::warn!(%call, error = %e, "the voicemail message was not left");
                        self.input(Input::PlayFailed { call });
                    }
                }
                Command::Hangup { call } => {
                    let _ = self.gateway.hangup(call).await;
                }
                Command::Record { call, lead } => self.record(call, lead).await,
                Command::Write(write) => {
                    let _ = self.jobs.send(Job::Write(write));
                }
                Command::ReadFigures(read) => {
                    let _ = self.jobs.send(Job::Read(read));
                }
                Command::Report(report) => {
                    let _ = self.reports.send(report);
                }
            }
        }
    }

    /// Records a connected call into the plan's folder and registers the
    /// file with its lead; a recording that cannot start leaves the call alone.
    async fn record(&self, call: CallRef, lead: super::Lead) {
        let Some(folder) = &self.plan.recordings else {
            return;
        };
        let path = folder.join(format!("{call}.wav"));
        if let Err(e) = self.gateway.record(call, &path).await {
            tracing::warn!(%call, error = %e, "the call could not be recorded");
            return;
        }
        let _ = self.jobs.send(Job::Recorded { lead, call, path });
    }
}

/// Leases a lead (or takes the one held) and opens its attempt under a
/// fresh call reference; a lead that cannot be opened is given back.
async fn claim<L: LeadSource>(
    leads: &L,
    held: Option<super::Lead>,
    agents: &[dialer_core::pacer::AgentId],
) -> Claim {
    let lead = match held {
        Some(lead) => lead,
        None => match leads.claim(1, agents).await {
            Ok(mut claimed) => match claimed.pop() {
                Some(lead) => lead,
                None => return Claim::Nothing,
            },
            Err(e) => {
                tracing::warn!(error = %e, "claiming a lead failed");
                return Claim::Failed;
            }
        },
    };
    let call = CallRef::random();
    match leads.placed(&lead, call).await {
        Ok(()) => Claim::Placed { lead, call },
        Err(e) => {
            tracing::warn!(%call, error = %e, "recording a placed call failed");
            if let Err(e) = leads.release(&lead).await {
                tracing::warn!(error = %e, "releasing an unplaced lead failed");
            }
            Claim::Failed
        }
    }
}
