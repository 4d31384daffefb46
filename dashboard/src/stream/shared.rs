//! The supervisors' stream across nodes, on NATS JetStream
//! (docs/decisions/0006-events-across-nodes.md).
//!
//! Every node publishes the events of its own bus to the stream
//! [`STREAM`], one subject per account, each with a message id so that a
//! publish retried after a lost acknowledgement is stored once. Every node
//! reads the whole stream back, in the stream's order, through an ordered
//! consumer into its [`StreamHub`], which numbers each event by its stream
//! sequence. So every node's supervisors see every node's events, in one
//! order, under the same numbers, and a node's own events reach its hub
//! once: from the stream, never also from its local bus.
//!
//! A node that starts reads the stream from its first retained event
//! before it serves anyone, so its wallboards, snapshots and replay are
//! built from the same events as every other node's.
//!
//! What the node reads is also put on [`SharedStream::events`], from which
//! it learns of sessions other nodes ended ([`crate::revocation`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use crm::events::{Event, EventBus};
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::hub::{HubConfig, StreamHub};

/// The JetStream stream every node's events go to.
pub const STREAM: &str = "DIALCRM_EVENTS";

/// The subjects of [`STREAM`]: `dialcrm.events.<account id>`.
pub const SUBJECTS: &str = "dialcrm.events.>";

/// How long the stream keeps an event.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How much the stream keeps at most; the oldest events go first.
pub const MAX_BYTES: i64 = 1 << 30;

/// How long the stream remembers a message id, so a retried publish is
/// stored once.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(120);

/// How long a starting node waits to read the stream up to where it was
/// before it serves anyway.
const CATCH_UP: Duration = Duration::from_secs(60);

/// What can go wrong between a node and NATS.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The NATS server did not accept the connection.
    #[error("connecting to NATS: {0}")]
    Connect(String),
    /// The stream could not be created, or its state read.
    #[error("setting up the JetStream stream {STREAM} (is JetStream on? nats-server -js): {0}")]
    Stream(String),
}

/// A node's link to the shared stream.
pub struct SharedStream {
    client: async_nats::Client,
    js: jetstream::Context,
    node: String,
    /// This node's events not yet stored in the stream.
    held: Arc<AtomicU64>,
    /// The connections made to NATS, the first included, and whether it
    /// is connected now.
    connections: watch::Receiver<(u64, bool)>,
    /// Every node's events as read from the stream, for what this node
    /// acts on besides the wallboards (sessions ended elsewhere).
    events: EventBus,
}

impl SharedStream {
    /// Connects to NATS at `url` as `node` and makes sure the stream exists.
    pub async fn connect(url: &str, node: &str) -> Result<SharedStream, SharedError> {
        // Up from the start: `connect` returns once connected (the event
        // saying so may come a moment later).
        let (connected, connections) = watch::channel((0u64, true));
        let connected = Arc::new(connected);
        let client = async_nats::ConnectOptions::new()
            .name(format!("dialcrm {node}"))
            .event_callback(move |event| {
                let connected = connected.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => connected.send_modify(|(n, up)| {
                            *n += 1;
                            *up = true;
                        }),
                        async_nats::Event::Disconnected => {
                            connected.send_modify(|(_, up)| *up = false)
                        }
                        _ => {}
                    }
                }
            })
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| SharedError::Connect(e.to_string()))?;
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECTS.into()],
            storage: stream::StorageType::File,
            max_age: RETENTION,
            max_bytes: MAX_BYTES,
            duplicate_window: DEDUP_WINDOW,
            ..stream::Config::default()
        })
        .await
        .map_err(|e| SharedError::Stream(e.to_string()))?;
        Ok(SharedStream {
            client,
            js,
            node: node.to_owned(),
            held: Arc::new(AtomicU64::new(0)),
            connections,
            events: EventBus::default(),
        })
    }

    /// The NATS connection, for requests between nodes.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Checks, changing nothing, that NATS at `url` answers with JetStream
    /// on; returns what an operator should know about the stream.
    pub async fn check(url: &str) -> Result<String, SharedError> {
        let client = async_nats::ConnectOptions::new()
            .name("dialcrm doctor")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| SharedError::Connect(e.to_string()))?;
        let js = jetstream::new(client);
        match js.get_stream(STREAM).await {
            Ok(stream) => Ok(format!(
                "JetStream on; the stream {STREAM} holds {} events",
                stream.cached_info().state.messages
            )),
            // JetStream answered that there is no such stream yet.
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref js) if js.code() == 404
                ) =>
            {
                Ok(format!(
                    "JetStream on; the first node to start creates {STREAM}"
                ))
            }
            Err(e) => Err(SharedError::Stream(e.to_string())),
        }
    }

    /// Whether the connection to NATS is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// How many of this node's events wait to be stored in the stream (the
    /// one being published and those behind it).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Every node's events, this one's included, as the stream brings them
    /// (after [`SharedStream::start`]).
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Starts publishing `bus`'s events to the stream, from now on. Call it
    /// before anything publishes (the floor closing what a crash left open,
    /// the trunks' first states), or those events reach no other node.
    pub fn publish_from(&self, bus: &EventBus) {
        tokio::spawn(relay(
            self.js.clone(),
            self.node.clone(),
            bus.subscribe(),
            self.held.clone(),
        ));
    }

    /// Returns a hub fed from the stream, once it has read what the stream
    /// held at start; `seed` (agents' states older than the stream keeps,
    /// from the database) is applied first, the stream's events on top.
    pub async fn start(
        &self,
        config: HubConfig,
        seed: &[Event],
    ) -> Result<Arc<StreamHub>, SharedError> {
        let mut stream = self
            .js
            .get_stream(STREAM)
            .await
            .map_err(|e| SharedError::Stream(e.to_string()))?;
        let state = stream
            .info()
            .await
            .map_err(|e| SharedError::Stream(e.to_string()))?
            .state
            .clone();
        let base = state.first_sequence.saturating_sub(1);
        let hub = Arc::new(StreamHub::numbered_from(config, base));
        for event in seed {
            hub.seed(event);
        }
        tokio::spawn(read(
            stream,
            hub.clone(),
            self.events.clone(),
            self.connections.clone(),
        ));
        tokio::spawn(tell_clients(hub.clone(), self.connections.clone()));
        let target = state.last_sequence;
        if !hub.reach(target, CATCH_UP).await {
            tracing::warn!(
                target,
                at = ?hub.position(),
                "the shared event stream was not read up to where it was within a minute; serving on"
            );
        }
        tracing::info!(
            events = state.messages,
            upto = target,
            "read the shared event stream"
        );
        Ok(hub)
    }
}

/// Publishes each event of this node's bus to the stream, in order,
/// retrying one until the stream has it.
async fn relay(
    js: jetstream::Context,
    node: String,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Event>>,
    held: Arc<AtomicU64>,
) {
    // Message ids are unique across restarts within the dedup window.
    let boot: u64 = rand::random();
    let mut n = 0u64;
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "events were lost before reaching the shared stream");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let payload = match serde_json::to_vec(&*event) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::error!(error = %e, "an event did not serialise");
                continue;
            }
        };
        n += 1;
        let id = format!("{node}.{boot:016x}.{n}");
        let subject = subject_of(&event);
        held.store(rx.len() as u64 + 1, Ordering::Relaxed);
        publish(&js, &subject, &id, payload).await;
        held.store(rx.len() as u64, Ordering::Relaxed);
    }
}

/// Publishes one event until the stream acknowledges it; the same id makes
/// a retry of one the stream did store harmless.
async fn publish(js: &jetstream::Context, subject: &str, id: &str, payload: Bytes) {
    let mut wait = Duration::from_millis(50);
    let mut told = false;
    loop {
        let sent = js
            .send_publish(
                subject.to_owned(),
                jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(id),
            )
            .await;
        let acked = match sent {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match acked {
            Ok(()) => {
                if told {
                    tracing::info!("events reach the shared stream again");
                }
                return;
            }
            Err(e) if !told => {
                tracing::warn!(error = %e, "an event could not reach the shared stream; retrying");
                told = true;
            }
            Err(e) => tracing::debug!(error = %e, "retrying an event for the shared stream"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Tells the hub's clients when NATS goes away and comes back: meanwhile
/// they see this node's wallboard stand still, not the others' events.
async fn tell_clients(hub: Arc<StreamHub>, mut connections: watch::Receiver<(u64, bool)>) {
    loop {
        let up = connections.borrow_and_update().1;
        if !up {
            tracing::warn!(
                "NATS is unreachable: supervisors see no node's events until it is back"
            );
        }
        hub.set_shared(up);
        if connections.changed().await.is_err() {
            return;
        }
    }
}

/// The subject of an event: its account's.
fn subject_of(event: &Event) -> String {
    format!("dialcrm.events.{}", event.account())
}

/// Feeds the hub from the stream, in order, from after the hub's position;
/// when the consumer fails, or the connection to NATS is made again (a
/// restarted server has forgotten the consumer, and its heartbeats take
/// long to be missed), it is made again from where the hub is, so nothing
/// is skipped and nothing is taken twice.
async fn read(
    stream: jetstream::stream::Stream,
    hub: Arc<StreamHub>,
    events: EventBus,
    mut connections: watch::Receiver<(u64, bool)>,
) {
    loop {
        let made = connections.borrow_and_update().0;
        let from = hub.position().unwrap_or(0) + 1;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: SUBJECTS.into(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..consumer::pull::OrderedConfig::default()
            })
            .await;
        let messages = match consumer {
            Ok(c) => c.messages().await,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the shared stream; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the shared stream; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                m = messages.next() => m,
                Ok(()) = connections.changed() => {
                    let now = connections.borrow_and_update().0;
                    if now == made {
                        continue;
                    }
                    tracing::info!("connected to NATS again; reading the shared stream on");
                    break;
                }
            };
            let message = match message {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the shared stream failed; reading again");
                    break;
                }
                None => break,
            };
            let seq = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => {
                    tracing::warn!(error = %e, "a message of the shared stream had no number");
                    break;
                }
            };
            match serde_json::from_slice::<Event>(&message.payload) {
                Ok(event) => {
                    hub.publish_numbered(seq, &event);
                    events.publish(event);
                }
                Err(e) => {
                    // A newer node's event this one cannot read: skipped,
                    // never fatal.
                    tracing::warn!(seq, error = %e, "skipped an event of the shared stream this version cannot read");
                    hub.skip_numbered(seq);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
