//! The runner's writer: the Store writes and figure reads of one campaign,
//! one after another in the order the core gave them, off the loop that
//! times the two-second rule.

use std::path::PathBuf;
use std::sync::Arc;

use dialer_core::campaign::{Input, ReadId, Write};
use sip_gateway::gateway::CallRef;
use tokio::sync::mpsc;
use vocab::Clock;

use super::{Lead, LeadSource};

/// One job for the writer.
pub(super) enum Job {
    /// A fact the core asked to write.
    Write(Write),
    /// A recording started for a connected call.
    Recorded {
        lead: Lead,
        call: CallRef,
        path: PathBuf,
    },
    /// Read the figures, after every job before this one.
    Read(ReadId),
}

/// Runs jobs until the runner drops its sender; read results go back on `results`.
pub(super) async fn run<L: LeadSource>(
    leads: Arc<L>,
    clock: Arc<dyn Clock>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    results: mpsc::UnboundedSender<Input>,
) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Write(write) => write_one(leads.as_ref(), write).await,
            Job::Recorded { lead, call, path } => {
                if let Err(e) = leads.recorded(&lead, call, &path).await {
                    tracing::warn!(%call, error = %e, "registering a recording failed");
                }
            }
            Job::Read(read) => match leads.figures(clock.now()).await {
                Ok((day, month)) => {
                    let _ = results.send(Input::FiguresRead { read, day, month });
                }
                // The core keeps the figures it has and reads again soon.
                Err(e) => tracing::warn!(error = %e, "reading the compliance figures failed"),
            },
        }
    }
}

async fn write_one<L: LeadSource>(leads: &L, write: Write) {
    let (call, what, result) = match write {
        Write::Answered { call, at } => (Some(call), "an answer", leads.answered(call, at).await),
        Write::Connected { call, at } => {
            (Some(call), "a connection", leads.connected(call, at).await)
        }
        Write::Abandoned { call, at } => {
            (Some(call), "an abandon", leads.abandoned(call, at).await)
        }
        Write::Finished {
            lead,
            call,
            outcome,
            at,
        } => (
            Some(call),
            "an outcome",
            leads.finished(&lead, call, outcome, at).await,
        ),
        Write::Release { lead } => (None, "a lead's release", leads.release(&lead).await),
    };
    if let Err(e) = result {
        match call {
            Some(call) => tracing::warn!(%call, error = %e, "writing {what} failed"),
            None => tracing::warn!(error = %e, "writing {what} failed"),
        }
    }
}
