//! The switchboard's ledger: the Store writes of its calls (who took one,
//! how one ended, the recordings filed with them), one after another in
//! the order the switchboard made them, off the loop that answers and
//! connects callers, so one slow write holds up no other caller's set-up.
//! The events that tell of a write go on the bus once it is done, so
//! whoever hears of a call reads it in the database as told.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use crm::events::{Event, EventBus};
use crm::model::{AccountId, ContactId, UserId};
use crm::store::erasure::NewRecording;
use crm::store::queues::InboundOutcome;
use crm::Store;
use sip_gateway::gateway::CallRef;
use tokio::sync::mpsc;

/// One write of the ledger.
pub(super) enum Entry {
    /// An agent took the call.
    Taken {
        account: AccountId,
        call: CallRef,
        user: UserId,
        at: DateTime<Utc>,
    },
    /// The call is over, with this outcome.
    Ended {
        account: AccountId,
        call: CallRef,
        outcome: InboundOutcome,
        at: DateTime<Utc>,
    },
    /// A recording of the call, or a voicemail left in it, to file with the
    /// call's attempt and the caller's contact.
    Recording {
        account: AccountId,
        call: CallRef,
        contact: Option<ContactId>,
        path: PathBuf,
        at: DateTime<Utc>,
    },
}

/// Where the switchboard hands its writes.
pub(super) struct Ledger {
    entries: mpsc::UnboundedSender<(Entry, Vec<Event>)>,
}

impl Ledger {
    /// Starts the writer; it ends once the ledger is dropped and every
    /// entry handed over is written.
    pub(super) fn spawn(store: Store, bus: EventBus) -> Ledger {
        let (entries, mut rx) = mpsc::unbounded_channel::<(Entry, Vec<Event>)>();
        tokio::spawn(async move {
            while let Some((entry, then)) = rx.recv().await {
                write(&store, entry).await;
                for event in then {
                    bus.publish(event);
                }
            }
        });
        Ledger { entries }
    }

    /// Writes `entry` after every entry before it, then publishes `then`.
    pub(super) fn write(&self, entry: Entry, then: Vec<Event>) {
        // The writer outlives the switchboard's loop, which holds the sender.
        let _ = self.entries.send((entry, then));
    }
}

async fn write(store: &Store, entry: Entry) {
    match entry {
        Entry::Taken {
            account,
            call,
            user,
            at,
        } => {
            if let Err(e) = store.inbound_call_taken(account, call, user, at).await {
                tracing::warn!(%call, error = %e, "recording who took an inbound call failed");
            }
        }
        Entry::Ended {
            account,
            call,
            outcome,
            at,
        } => {
            if let Err(e) = store.inbound_call_ended(account, call, outcome, at).await {
                tracing::warn!(%call, error = %e, "closing an inbound call failed");
            }
        }
        Entry::Recording {
            account,
            call,
            contact,
            path,
            at,
        } => {
            let attempt = store.attempt_by_ref(account, call).await.ok();
            let recording = NewRecording {
                attempt_id: attempt.map(|a| a.id),
                call_ref: Some(call),
                contact_id: contact,
                path,
            };
            if let Err(e) = store.add_recording(account, &recording, at).await {
                tracing::warn!(%call, error = %e, "filing a recording failed");
            }
        }
    }
}
