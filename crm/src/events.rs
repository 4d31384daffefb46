//! The event bus: every state change that dashboards show, as typed events.
//!
//! In one process the bus is a `tokio::sync::broadcast` channel; producers
//! (the dialler, the gateway's call events as the dialler maps them, the
//! agent sessions, imports) publish without knowing who listens. Each event
//! names its account so listeners can keep tenants apart.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::model::{AccountId, CampaignId, ContactId, LeadId, ListId, QueueId, UserId};
use vocab::CallRef;

/// The states and phases events carry, defined once below every crate.
pub use vocab::{AgentState, CallPhase};

/// A campaign's live figures, published every second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignFigures {
    /// Lines dialling or connected now.
    pub lines_in_use: u32,
    /// Agents ready.
    pub agents_ready: u32,
    /// Agents paused.
    pub agents_paused: u32,
    /// Agents in a call.
    pub agents_in_call: u32,
    /// Agents in wrap-up.
    pub agents_wrap_up: u32,
    /// Calls dialled today.
    pub dialled: u64,
    /// Calls answered today.
    pub answered: u64,
    /// Abandons over live answers in the rolling 24 hours.
    pub abandon_rate_24h: f64,
    /// Abandons over live answers in the rolling 30 days.
    pub abandon_rate_30d: f64,
    /// Live answers (connected or abandoned) in the rolling 24 hours, on
    /// every node, as the database holds them.
    pub live_24h: u64,
    /// Abandons in the rolling 24 hours, on every node.
    pub abandoned_24h: u64,
    /// Live answers in the rolling 30 days, on every node.
    pub live_30d: u64,
    /// Abandons in the rolling 30 days, on every node.
    pub abandoned_30d: u64,
    /// How many more abandons keep both windows within the campaign's target.
    pub abandons_allowed: u64,
    /// Share of logged-in agent time spent talking or wrapping up.
    pub utilisation: f64,
    /// Lines per agent the pacer is dialling at.
    pub dial_level: f64,
    /// The most lines per staffed agent the pacer may dial, as the
    /// supervisor capped it.
    pub max_dial_level: f64,
}

/// One state change; it travels between nodes as its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An agent's state changed.
    AgentState {
        /// The agent's account.
        account: AccountId,
        /// The agent.
        user_id: UserId,
        /// The agent's login name.
        username: String,
        /// The new state.
        state: AgentState,
        /// Why the agent paused, when paused.
        pause_code: Option<String>,
        /// When it changed.
        at: DateTime<Utc>,
    },
    /// A call's state changed.
    CallState {
        /// The calling account.
        account: AccountId,
        /// The call's opaque reference.
        call_ref: CallRef,
        /// The campaign that placed it.
        campaign_id: Option<CampaignId>,
        /// The new state.
        state: CallPhase,
        /// The agent on the call, once connected.
        agent: Option<UserId>,
        /// Why it ended, once ended.
        cause: Option<String>,
        /// When it changed.
        at: DateTime<Utc>,
    },
    /// A campaign's figures, as one node dialling it sees them: its lines,
    /// agents and calls dialled are that node's; the compliance figures are
    /// every node's, from the database. Wallboards add the nodes up.
    CampaignFigures {
        /// The campaign's account.
        account: AccountId,
        /// The campaign.
        campaign_id: CampaignId,
        /// The node whose runner took them.
        #[serde(default)]
        node: String,
        /// The figures.
        figures: CampaignFigures,
        /// When they were taken.
        at: DateTime<Utc>,
    },
    /// A contact offered to an agent in a preview campaign, to call or skip.
    PreviewOffered {
        /// The account.
        account: AccountId,
        /// The campaign.
        campaign_id: CampaignId,
        /// The agent it is offered to.
        agent: UserId,
        /// The lead, or `None` when nobody may be called now.
        lead_id: Option<LeadId>,
        /// The contact to show.
        contact_id: Option<ContactId>,
    },
    /// An agent's manual dial could not be placed; nothing was dialled.
    DialRefused {
        /// The account.
        account: AccountId,
        /// The campaign.
        campaign_id: CampaignId,
        /// The agent who dialled.
        agent: UserId,
    },
    /// A list import advanced.
    ImportProgress {
        /// The importing account.
        account: AccountId,
        /// The list imported into.
        list_id: ListId,
        /// Rows read so far.
        rows: u64,
        /// Whether the import finished.
        done: bool,
    },
    /// A contact was changed (by an agent during a call, or a supervisor):
    /// which fields, by name only, so open views can read it again.
    ContactEdited {
        /// The contact's account.
        account: AccountId,
        /// The contact.
        contact_id: ContactId,
        /// Its version after the change.
        version: i64,
        /// The fields changed, by name.
        fields: Vec<String>,
        /// Who changed it.
        by: UserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A trunk of a node went down (no new call goes to it) or came back.
    TrunkState {
        /// The account told; every account is, as trunks are shared.
        account: AccountId,
        /// The node whose gateway holds the trunk.
        node: String,
        /// The trunk's name.
        trunk: String,
        /// Whether it takes new calls.
        up: bool,
        /// When its state was read.
        at: DateTime<Utc>,
    },
    /// Login sessions of a user ended (a logout, a logout everywhere, a
    /// password change, a deactivation): every node's sockets of that user
    /// check their own session and close if it is gone. Not shown on the
    /// supervisors' stream.
    SessionsRevoked {
        /// The user's account.
        account: AccountId,
        /// The user.
        user_id: UserId,
        /// When the sessions ended.
        at: DateTime<Utc>,
    },
    /// An inbound queue as one node sees it now: its callers waiting
    /// there and its agents free there. Wallboards add the nodes up.
    QueueStatus {
        /// The queue's account.
        account: AccountId,
        /// The queue.
        queue_id: QueueId,
        /// The node whose switchboard took them.
        node: String,
        /// Callers waiting for an agent.
        waiting: u32,
        /// How long the caller waiting longest has waited, in seconds.
        longest_wait_secs: u64,
        /// Agents of the queue free to take a call.
        agents_free: u32,
        /// Today's service level (UTC day, every node's calls, as the
        /// database holds them), when read; refreshed every minute.
        #[serde(default)]
        service_level: Option<f64>,
        /// When they were taken.
        at: DateTime<Utc>,
    },
    /// An inbound call left its queue: taken by an agent, or not.
    QueueCall {
        /// The queue's account.
        account: AccountId,
        /// The queue.
        queue_id: QueueId,
        /// The node whose switchboard took it.
        node: String,
        /// How it ended, as the attempt's outcome says (`answered`,
        /// `abandoned_in_queue`, `voicemail`, ...).
        outcome: String,
        /// How long the caller waited for an agent, in seconds (the
        /// welcome message included), until taken or gone.
        waited_secs: f64,
        /// When it left.
        at: DateTime<Utc>,
    },
    /// An agent's desk phone rang for a queue call and was not answered in
    /// the queue's ring time: the call went to the next agent, and the
    /// agent's desk pauses them (`not_answering`) until they say Ready.
    AgentNotAnswering {
        /// The agent's account.
        account: AccountId,
        /// The agent.
        user_id: UserId,
        /// When the ringing stopped.
        at: DateTime<Utc>,
    },
    /// Something a supervisor should look at.
    Alert {
        /// The account concerned.
        account: AccountId,
        /// A short machine-readable kind, such as `login.failures`.
        alert: String,
        /// A sentence for people.
        message: String,
        /// When it was raised.
        at: DateTime<Utc>,
    },
}

impl Event {
    /// Returns the account the event belongs to.
    pub fn account(&self) -> AccountId {
        match self {
            Event::AgentState { account, .. }
            | Event::CallState { account, .. }
            | Event::CampaignFigures { account, .. }
            | Event::PreviewOffered { account, .. }
            | Event::DialRefused { account, .. }
            | Event::ImportProgress { account, .. }
            | Event::TrunkState { account, .. }
            | Event::ContactEdited { account, .. }
            | Event::SessionsRevoked { account, .. }
            | Event::QueueStatus { account, .. }
            | Event::QueueCall { account, .. }
            | Event::AgentNotAnswering { account, .. }
            | Event::Alert { account, .. } => *account,
        }
    }
}

/// The in-process event bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    /// Creates a bus whose listeners may fall `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus { tx }
    }

    /// Publishes an event to whoever listens; nobody listening is fine.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// Returns a new listener that sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(65_536)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_event_reads_back_as_it_was_written() {
        let at = Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid");
        let account = AccountId(4);
        let events = [
            Event::AgentState {
                account,
                user_id: UserId(3),
                username: "al".into(),
                state: AgentState::Paused,
                pause_code: Some("lunch".into()),
                at,
            },
            Event::CallState {
                account,
                call_ref: CallRef::from_u128(0xc1),
                campaign_id: Some(CampaignId(7)),
                state: CallPhase::Connected,
                agent: Some(UserId(3)),
                cause: None,
                at,
            },
            Event::CampaignFigures {
                account,
                campaign_id: CampaignId(7),
                node: "n1".into(),
                figures: CampaignFigures {
                    lines_in_use: 3,
                    abandon_rate_24h: 0.025,
                    dial_level: 1.5,
                    ..CampaignFigures::default()
                },
                at,
            },
            Event::PreviewOffered {
                account,
                campaign_id: CampaignId(7),
                agent: UserId(3),
                lead_id: Some(LeadId(9)),
                contact_id: None,
            },
            Event::DialRefused {
                account,
                campaign_id: CampaignId(7),
                agent: UserId(3),
            },
            Event::QueueStatus {
                account,
                queue_id: QueueId(2),
                node: "n1".into(),
                waiting: 3,
                longest_wait_secs: 41,
                agents_free: 0,
                service_level: Some(0.85),
                at,
            },
            Event::ImportProgress {
                account,
                list_id: ListId(2),
                rows: 500,
                done: true,
            },
            Event::TrunkState {
                account,
                node: "n1".into(),
                trunk: "main".into(),
                up: false,
                at,
            },
            Event::ContactEdited {
                account,
                contact_id: ContactId(9),
                version: 3,
                fields: vec!["email".into(), "last_name".into()],
                by: UserId(2),
                at,
            },
            Event::SessionsRevoked {
                account,
                user_id: UserId(3),
                at,
            },
            Event::QueueCall {
                account,
                queue_id: QueueId(4),
                node: "n1".into(),
                outcome: "answered".into(),
                waited_secs: 12.5,
                at,
            },
            Event::AgentNotAnswering {
                account,
                user_id: UserId(3),
                at,
            },
            Event::Alert {
                account,
                alert: "login.failures".into(),
                message: "five failed logins".into(),
                at,
            },
        ];
        for event in events {
            let json = serde_json::to_string(&event).expect("serialises");
            let back: Event = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, event, "{json}");
        }
    }
}
