//! What `/metrics` shows, in the OpenMetrics text format, through the
//! `prometheus-client` crate: the series an operator alerts on.
//!
//! Three sources feed it:
//! - the HTTP layer and the login handler count as they go;
//! - [`Metrics::observe`] follows the event bus: calls by campaign and
//!   outcome, the time from dialling to an answer, each campaign's lines,
//!   dial level and abandon rates, agents by state, imported rows;
//! - a scrape reads what is true right now: the database, sessions, the
//!   stream's clients, the trunks and whether the node drains.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use crm::events::{AgentState, CallPhase, Event};
use crm::model::{AccountId, UserId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sip_gateway::drops::MediaDrop;
use sip_gateway::gateway::TrunkStatus;
use vocab::CallRef;

use crate::stream::hub::StreamStats;
use crate::AppState;

/// The content type of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CampaignLabel {
    account: String,
    campaign: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    account: String,
    queue: String,
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueCallLabel {
    account: String,
    queue: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabel {
    account: String,
    campaign: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrunkLabel {
    trunk: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaceLabel {
    place: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What a scrape reads that is true right now.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Whether the database answers.
    pub database_up: bool,
    /// Live login sessions.
    pub sessions: i64,
    /// The supervisors' stream.
    pub stream: StreamStats,
    /// The trunks of this node's gateway, when it has one.
    pub trunks: Option<Vec<TrunkStatus>>,
    /// Audio this node's gateway dropped rather than sent late, by where,
    /// when it has a gateway.
    pub media_drops: Option<Vec<(MediaDrop, u64)>>,
    /// Whether the node drains to stop.
    pub draining: bool,
    /// With the bus on NATS: this node's name, whether it is connected,
    /// and how many of its events wait to be stored in the shared stream.
    pub nats: Option<(String, bool, u64)>,
}

/// What the event observer remembers between events.
#[derive(Debug, Default)]
struct Memory {
    /// When each call still in progress was dialled.
    dialled: HashMap<CallRef, DateTime<Utc>>,
    /// Each logged-in agent's state.
    agents: HashMap<UserId, AgentState>,
    /// Rows each import had reported, by account and list.
    imported: HashMap<(AccountId, i64), u64>,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    http: Family<ClassLabel, Counter>,
    logins: Family<OutcomeLabel, Counter>,
    webhooks: Family<OutcomeLabel, Counter>,
    calls: Family<CallLabel, Counter>,
    setup: Histogram,
    lines: Family<CampaignLabel, Gauge>,
    dial_level: Family<CampaignLabel, FloatGauge>,
    abandon_24h: Family<CampaignLabel, FloatGauge>,
    abandon_30d: Family<CampaignLabel, FloatGauge>,
    queue_waiting: Family<QueueLabel, Gauge>,
    queue_agents_free: Family<QueueLabel, Gauge>,
    queue_calls: Family<QueueCallLabel, Counter>,
    queue_wait: Family<QueueCallLabel, Histogram>,
    not_answering: Counter,
    agents: Family<StateLabel, Gauge>,
    import_rows: Counter,
    database_up: Gauge,
    sessions: Gauge,
    stream_clients: Gauge,
    stream_writers: Gauge,
    stream_resyncs: Counter,
    resyncs_seen: AtomicU64,
    trunk_up: Family<TrunkLabel, Gauge>,
    media_dropped: Family<PlaceLabel, Counter>,
    drops_seen: Mutex<HashMap<MediaDrop, u64>>,
    trunk_calls: Family<TrunkLabel, Gauge>,
    draining: Gauge,
    nats_connected: Family<NodeLabel, Gauge>,
    nats_held: Family<NodeLabel, Gauge>,
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The states agents are counted in.
const AGENT_STATES: [AgentState; 4] = [
    AgentState::Ready,
    AgentState::Paused,
    AgentState::InCall,
    AgentState::WrapUp,
];

impl Metrics {
    /// Creates the metrics, every series registered.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("dialcrm"),
            http: Family::default(),
            logins: Family::default(),
            webhooks: Family::default(),
            calls: Family::default(),
            // 50 ms to about 100 s: a ring is seconds, a trunk's answer
            // to the INVITE tens of milliseconds.
            setup: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.05, 2.0, 12,
            )),
            lines: Family::default(),
            dial_level: Family::default(),
            abandon_24h: Family::default(),
            abandon_30d: Family::default(),
            queue_waiting: Family::default(),
            queue_agents_free: Family::default(),
            queue_calls: Family::default(),
            // 1 s to about 17 minutes: callers wait seconds to minutes.
            queue_wait: Family::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    1.0, 2.0, 11,
                ))
            }),
            not_answering: Counter::default(),
            agents: Family::default(),
            import_rows: Counter::default(),
            database_up: Gauge::default(),
            sessions: Gauge::default(),
            stream_clients: Gauge::default(),
            stream_writers: Gauge::default(),
            stream_resyncs: Counter::default(),
            resyncs_seen: AtomicU64::new(0),
            trunk_up: Family::default(),
            media_dropped: Family::default(),
            drops_seen: Mutex::default(),
            trunk_calls: Family::default(),
            draining: Gauge::default(),
            nats_connected: Family::default(),
            nats_held: Family::default(),
            memory: Mutex::new(Memory::default()),
        };
        let r = &mut m.registry;
        r.register(
            "http_responses",
            "HTTP responses by status class",
            m.http.clone(),
        );
        r.register("logins", "Login attempts by outcome", m.logins.clone());
        r.register(
            "webhook_deliveries",
            "Webhook delivery attempts by this node: delivered, retry (failed, to be tried again) or given_up",
            m.webhooks.clone(),
        );
        r.register(
            "calls",
            "Calls ended, by campaign and outcome (abandoned, or the end's cause)",
            m.calls.clone(),
        );
        r.register(
            "call_setup_seconds",
            "Time from dialling to the far end answering",
            m.setup.clone(),
        );
        r.register(
            "campaign_lines",
            "Lines a campaign has in use",
            m.lines.clone(),
        );
        r.register(
            "queue_waiting",
            "Callers waiting in an inbound queue on a node",
            m.queue_waiting.clone(),
        );
        r.register(
            "queue_agents_free",
            "Agents free to take an inbound queue's calls on a node",
            m.queue_agents_free.clone(),
        );
        r.register(
            "queue_calls",
            "Inbound calls that left a queue on this node, by outcome (answered, abandoned_in_queue, voicemail, callback_requested, closed, overflowed, interrupted)",
            m.queue_calls.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "How long inbound callers waited for an agent on this node, by how their call ended",
            m.queue_wait.clone(),
        );
        r.register(
            "desk_phones_not_answering",
            "Queue calls a desk phone rang out for, its agent then paused",
            m.not_answering.clone(),
        );
        r.register(
            "campaign_dial_level",
            "Lines a campaign dials per staffed agent",
            m.dial_level.clone(),
        );
        r.register(
            "campaign_abandon_rate_24h",
            "A campaign's abandoned share of live answers over 24 hours",
            m.abandon_24h.clone(),
        );
        r.register(
            "campaign_abandon_rate_30d",
            "A campaign's abandoned share of live answers over 30 days",
            m.abandon_30d.clone(),
        );
        r.register("agents", "Logged-in agents by state", m.agents.clone());
        r.register(
            "import_rows",
            "Contact rows read by imports",
            m.import_rows.clone(),
        );
        r.register(
            "database_up",
            "Whether the database answers",
            m.database_up.clone(),
        );
        r.register("sessions", "Live login sessions", m.sessions.clone());
        r.register(
            "stream_clients",
            "Connected supervisors' stream clients",
            m.stream_clients.clone(),
        );
        r.register(
            "stream_writers",
            "Tasks writing the stream to its clients",
            m.stream_writers.clone(),
        );
        r.register(
            "stream_resyncs",
            "Snapshots sent to stream clients that fell behind",
            m.stream_resyncs.clone(),
        );
        r.register(
            "media_dropped",
            "Audio packets the gateway dropped rather than sent late, by where",
            m.media_dropped.clone(),
        );
        r.register(
            "trunk_up",
            "Whether a trunk takes new calls (1) or is down (0)",
            m.trunk_up.clone(),
        );
        r.register(
            "trunk_calls",
            "Calls up or being set up through a trunk",
            m.trunk_calls.clone(),
        );
        r.register(
            "draining",
            "Whether this node is draining to stop",
            m.draining.clone(),
        );
        // Shown only with the bus on NATS (a family without members is not
        // written).
        r.register(
            "nats_connected",
            "Whether this node is connected to NATS, which shares events between nodes",
            m.nats_connected.clone(),
        );
        r.register(
            "nats_events_held",
            "This node's events waiting to be stored in the shared stream",
            m.nats_held.clone(),
        );
        // Every state shows, at zero when nobody is in it.
        for state in AGENT_STATES {
            m.agents
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(0);
        }
        m
    }

    /// Counts one login outcome.
    pub fn login(&self, outcome: &str) {
        let outcome = match outcome {
            "ok" | "failed" | "throttled" => outcome,
            _ => "seat_limit",
        };
        self.logins
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Counts one webhook delivery attempt: `delivered`, `retry` or
    /// `given_up`.
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Counts one HTTP response by its status class.
    pub fn response(&self, status: u16) {
        const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let class = CLASSES[usize::from(status / 100).clamp(1, 5) - 1];
        self.http.get_or_create(&ClassLabel { class }).inc();
    }

    /// Takes one event from the bus into the series it feeds.
    pub fn observe(&self, event: &Event) {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::CallState {
                account,
                call_ref,
                campaign_id,
                state,
                cause,
                at,
                ..
            } => {
                let campaign = campaign_id.map_or_else(|| "none".into(), |c| c.0.to_string());
                let label = |outcome: &str| CallLabel {
                    account: account.0.to_string(),
                    campaign: campaign.clone(),
                    outcome: outcome.into(),
                };
                match state {
                    CallPhase::Dialling => {
                        memory.dialled.insert(*call_ref, *at);
                    }
                    CallPhase::Answered => {
                        if let Some(start) = memory.dialled.get(call_ref) {
                            let secs = (*at - *start).num_milliseconds().max(0) as f64 / 1000.0;
                            self.setup.observe(secs);
                        }
                    }
                    CallPhase::Abandoned => {
                        self.calls.get_or_create(&label("abandoned")).inc();
                    }
                    CallPhase::Ended => {
                        memory.dialled.remove(call_ref);
                        self.calls
                            .get_or_create(&label(&outcome(cause.as_deref())))
                            .inc();
                    }
                    CallPhase::Ringing
                    | CallPhase::Connected
                    | CallPhase::Queued
                    | CallPhase::Voicemail => {}
                }
            }
            Event::CampaignFigures {
                account,
                campaign_id,
                figures,
                ..
            } => {
                let label = CampaignLabel {
                    account: account.0.to_string(),
                    campaign: campaign_id.0.to_string(),
                };
                self.lines
                    .get_or_create(&label)
                    .set(i64::from(figures.lines_in_use));
                self.dial_level
                    .get_or_create(&label)
                    .set(figures.dial_level);
                self.abandon_24h
                    .get_or_create(&label)
                    .set(figures.abandon_rate_24h);
                self.abandon_30d
                    .get_or_create(&label)
                    .set(figures.abandon_rate_30d);
            }
            Event::AgentState { user_id, state, .. } => {
                if *state == AgentState::LoggedOut {
                    memory.agents.remove(user_id);
                } else {
                    memory.agents.insert(*user_id, *state);
                }
                for s in AGENT_STATES {
                    let n = memory.agents.values().filter(|a| **a == s).count();
                    self.agents
                        .get_or_create(&StateLabel { state: s.as_str() })
                        .set(n as i64);
                }
            }
            Event::ImportProgress {
                account,
                list_id,
                rows,
                done,
                ..
            } => {
                let key = (*account, list_id.0);
                let before = memory.imported.get(&key).copied().unwrap_or(0);
                self.import_rows.inc_by(rows.saturating_sub(before));
                if *done {
                    memory.imported.remove(&key);
                } else {
                    memory.imported.insert(key, *rows);
                }
            }
            Event::PreviewOffered { .. }
            | Event::DialRefused { .. }
            | Event::TrunkState { .. }
            | Event::ContactEdited { .. }
            | Event::SessionsRevoked { .. }
            | Event::Alert { .. } => {}
            Event::QueueCall {
                account,
                queue_id,
                outcome,
                waited_secs,
                ..
            } => {
                let label = QueueCallLabel {
                    account: account.0.to_string(),
                    queue: queue_id.0.to_string(),
                    outcome: outcome.clone(),
                };
                self.queue_calls.get_or_create(&label).inc();
                self.queue_wait
                    .get_or_create(&label)
                    .observe(waited_secs.max(0.0));
            }
            Event::AgentNotAnswering { .. } => {
                self.not_answering.inc();
            }
            Event::QueueStatus {
                account,
                queue_id,
                node,
                waiting,
                agents_free,
                ..
            } => {
                let label = QueueLabel {
                    account: account.0.to_string(),
                    queue: queue_id.0.to_string(),
                    node: node.clone(),
                };
                self.queue_waiting
                    .get_or_create(&label)
                    .set(i64::from(*waiting));
                self.queue_agents_free
                    .get_or_create(&label)
                    .set(i64::from(*agents_free));
            }
        }
    }

    /// Renders every series, with what is true now, as OpenMetrics text.
    pub fn render(&self, now: &Scrape) -> String {
        self.database_up.set(i64::from(now.database_up));
        self.sessions.set(now.sessions);
        self.stream_clients.set(now.stream.clients as i64);
        self.stream_writers.set(now.stream.writers as i64);
        let before = self
            .resyncs_seen
            .swap(now.stream.resyncs, Ordering::Relaxed);
        self.stream_resyncs
            .inc_by(now.stream.resyncs.saturating_sub(before));
        self.draining.set(i64::from(now.draining));
        if let Some(drops) = &now.media_drops {
            let mut seen = self.drops_seen.lock().unwrap_or_else(|p| p.into_inner());
            for &(place, count) in drops {
                let before = seen.insert(place, count).unwrap_or(0);
                self.media_dropped
                    .get_or_create(&PlaceLabel {
                        place: place.label(),
                    })
                    .inc_by(count.saturating_sub(before));
            }
        }
        if let Some(trunks) = &now.trunks {
            for t in trunks {
                let label = TrunkLabel {
                    trunk: escaped(&t.name),
                };
                self.trunk_up.get_or_create(&label).set(i64::from(t.up));
                self.trunk_calls
                    .get_or_create(&label)
                    .set(t.active_calls as i64);
            }
        }
        if let Some((node, connected, held)) = &now.nats {
            let label = NodeLabel {
                node: escaped(node),
            };
            self.nats_connected
                .get_or_create(&label)
                .set(i64::from(*connected));
            self.nats_held.get_or_create(&label).set(*held as i64);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "the metrics did not encode");
        }
        out
    }
}

/// A call's end as a label: `abandoned` is counted apart; a cause the
/// gateway does not name is `other`, so the label's values stay few.
fn outcome(cause: Option<&str>) -> String {
    match cause {
        Some(c) if c.len() <= 32 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            c.to_owned()
        }
        Some(_) => "other".into(),
        None => "unknown".into(),
    }
}

/// Escapes a label value as the text format asks (the crate writes label
/// values as given): trunk names come from the operator's configuration.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Follows the bus until it closes, feeding `metrics`.
pub async fn follow(
    metrics: std::sync::Arc<Metrics>,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(event) => metrics.observe(&event),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "metrics fell behind the event bus");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Middleware counting every response.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics.response(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests;
