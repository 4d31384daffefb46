//! The stream hub: numbers each account's events, keeps the recent ones for
//! clients that reconnect, and fans frames out to connected wallboards.
//!
//! An event is serialised once and shared by every client as a cheap clone.
//! Each client reads from a bounded broadcast; one that falls behind loses
//! its place (the sender never waits for it) and is sent a fresh snapshot.
//! A client takes every frame waiting for it at once ([`Attachment::next_batch`]),
//! so one wake-up and one write serve however many events arrived meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use crm::events::Event;
use crm::model::AccountId;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::wallboard::{Snapshot, Wallboard};

/// How much the hub keeps and buffers.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Events kept per account for clients resuming after a gap.
    pub replay: usize,
    /// Frames a client may fall behind before it gets a snapshot instead.
    pub client_buffer: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            replay: 4096,
            client_buffer: 1024,
        }
    }
}

/// A serialised event with its sequence number.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The account-wide sequence number of the event.
    pub seq: u64,
    /// `{"type":"event","seq":N,"event":{…}}`.
    pub text: Utf8Bytes,
}

/// What a newly attached client is sent first, then where to read from.
pub struct Attachment {
    /// A snapshot, or the missed events, in order.
    pub initial: Vec<Utf8Bytes>,
    /// The sequence number of the last frame in `initial`.
    pub seq: u64,
    /// The live frames after that.
    pub rx: broadcast::Receiver<Arc<Frame>>,
}

/// What [`Attachment::next_batch`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// One or more frames, in order, were added to the batch.
    Frames,
    /// The client fell behind by this many frames and needs a snapshot.
    Lagged(u64),
    /// The hub is gone.
    Closed,
}

impl Attachment {
    /// Waits for the next live frame, then takes every frame already queued
    /// behind it, up to `max` in all, into `batch`.
    ///
    /// Cancel-safe: only the first frame is awaited, the rest are taken
    /// without yielding. After `Lagged` the batch is emptied, since the
    /// snapshot the client is sent next covers it.
    pub async fn next_batch(&mut self, batch: &mut Vec<Arc<Frame>>, max: usize) -> Batch {
        match self.rx.recv().await {
            Ok(frame) => batch.push(frame),
            Err(RecvError::Lagged(missed)) => return Batch::Lagged(missed),
            Err(RecvError::Closed) => return Batch::Closed,
        }
        while batch.len() < max {
            match self.rx.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(TryRecvError::Empty) => break,
                // Send what was taken; the next wait reports the end.
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Lagged(missed)) => {
                    batch.clear();
                    return Batch::Lagged(missed);
                }
            }
        }
        Batch::Frames
    }
}

/// All accounts' feeds.
pub struct StreamHub {
    config: HubConfig,
    feeds: Mutex<HashMap<AccountId, Feed>>,
}

struct Feed {
    seq: u64,
    replay: VecDeque<Arc<Frame>>,
    wallboard: Wallboard,
    tx: broadcast::Sender<Arc<Frame>>,
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    event: &'a Event,
}

#[derive(Serialize)]
struct SnapshotFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    #[serde(flatten)]
    snapshot: Snapshot<'a>,
}

impl StreamHub {
    /// Creates an empty hub.
    pub fn new(config: HubConfig) -> Self {
        StreamHub {
            config,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// Applies an event to its account's feed and sends it to listeners.
    pub fn publish(&self, event: &Event) {
        let mut feeds = self.lock();
        let feed = Self::feed(&mut feeds, event.account(), self.config);
        feed.seq += 1;
        feed.wallboard.apply(event);
        let text = match serde_json::to_string(&EventFrame {
            kind: "event",
            seq: feed.seq,
            event,
        }) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "an event did not serialise");
                return;
            }
        };
        let frame = Arc::new(Frame {
            seq: feed.seq,
            text: Utf8Bytes::from(text),
        });
        if feed.replay.len() == self.config.replay {
            feed.replay.pop_front();
        }
        feed.replay.push_back(frame.clone());
        // No receivers is fine: nobody is watching this account.
        let _ = feed.tx.send(frame);
    }

    /// Attaches a client: it is sent the events after `since` when the
    /// hub still holds them all, else a snapshot, then live frames.
    pub fn attach(&self, account: AccountId, since: Option<u64>) -> Attachment {
        let mut feeds = self.lock();
        let feed = Self::feed(&mut feeds, account, self.config);
        // Subscribing under the lock means no frame falls between the
        // initial batch and the live ones.
        let rx = feed.tx.subscribe();
        if let Some(since) = since {
            let oldest = feed.replay.front().map_or(feed.seq + 1, |f| f.seq);
            if since <= feed.seq && since + 1 >= oldest {
                let initial = feed
                    .replay
                    .iter()
                    .filter(|f| f.seq > since)
                    .map(|f| f.text.clone())
                    .collect();
                return Attachment {
                    initial,
                    seq: feed.seq,
                    rx,
                };
            }
        }
        Attachment {
            initial: vec![Self::snapshot_of(feed)],
            seq: feed.seq,
            rx,
        }
    }

    fn snapshot_of(feed: &Feed) -> Utf8Bytes {
        let frame = SnapshotFrame {
            kind: "snapshot",
            seq: feed.seq,
            snapshot: feed.wallboard.snapshot(),
        };
        Utf8Bytes::from(serde_json::to_string(&frame).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a snapshot did not serialise");
            String::from("{\"type\":\"error\"}")
        }))
    }

    fn feed(
        feeds: &mut HashMap<AccountId, Feed>,
        account: AccountId,
        config: HubConfig,
    ) -> &mut Feed {
        feeds.entry(account).or_insert_with(|| Feed {
            seq: 0,
            replay: VecDeque::with_capacity(config.replay.min(1024)),
            wallboard: Wallboard::default(),
            tx: broadcast::channel(config.client_buffer.max(1)).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Feed>> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feeds the hub from the bus until the bus closes.
    pub async fn run(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<Event>>) {
        loop {
            match rx.recv().await {
                Ok(event) => self.publish(&event),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the stream hub fell behind the event bus");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use crm::model::UserId;

    fn alert(account: i64, n: u32) -> Event {
        Event::Alert {
            account: AccountId(account),
            alert: "test".into(),
            message: format!("alert {n}"),
            at: Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid"),
        }
    }

    #[test]
    fn resume_replays_what_was_missed_or_falls_back_to_a_snapshot() {
        let hub = StreamHub::new(HubConfig {
            replay: 10,
            client_buffer: 16,
        });
        for n in 0..25 {
            hub.publish(&alert(1, n));
        }
        let a = hub.attach(AccountId(1), Some(20));
        assert_eq!(a.initial.len(), 5);
        assert!(a.initial[0].as_str().contains("\"seq\":21"));
        assert_eq!(a.seq, 25);
        let b = hub.attach(AccountId(1), Some(3));
        assert_eq!(b.initial.len(), 1);
        assert!(b.initial[0]
            .as_str()
            .starts_with("{\"type\":\"snapshot\",\"seq\":25"));
        let c = hub.attach(AccountId(1), Some(25));
        assert!(c.initial.is_empty(), "up to date: nothing to replay");
        let d = hub.attach(AccountId(1), Some(99));
        assert!(d.initial[0].as_str().contains("snapshot"), "a future seq");
    }

    #[test]
    fn accounts_are_kept_apart() {
        let hub = StreamHub::new(HubConfig::default());
        let mut a = hub.attach(AccountId(1), None);
        hub.publish(&alert(2, 0));
        hub.publish(&Event::AgentState {
            account: AccountId(1),
            user_id: UserId(5),
            username: "al".into(),
            state: crm::events::AgentState::Ready,
            pause_code: None,
            at: Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid"),
        });
        let f = a.rx.try_recv().expect("account 1's event");
        assert_eq!(f.seq, 1, "sequences are per account");
        assert!(f.text.as_str().contains("\"username\":\"al\""));
        assert!(a.rx.try_recv().is_err());
        let again = hub.attach(AccountId(1), None);
        assert!(again.initial[0].as_str().contains("\"username\":\"al\""));
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_waiting_in_order_up_to_its_limit() {
        let hub = StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 64,
        });
        let mut a = hub.attach(AccountId(1), None);
        for n in 0..10 {
            hub.publish(&alert(1, n));
        }
        let mut batch = Vec::new();
        assert_eq!(a.next_batch(&mut batch, 4).await, Batch::Frames);
        let seqs: Vec<u64> = batch.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "at most the limit, oldest first");
        batch.clear();
        assert_eq!(a.next_batch(&mut batch, 100).await, Batch::Frames);
        let seqs: Vec<u64> = batch.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8, 9, 10], "the rest, none twice");
        batch.clear();
        hub.publish(&alert(1, 10));
        assert_eq!(a.next_batch(&mut batch, 100).await, Batch::Frames);
        assert_eq!(batch.len(), 1, "one waiting frame is sent at once");
    }

    #[tokio::test]
    async fn a_batch_reports_a_client_that_fell_behind() {
        let hub = StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 8,
        });
        let mut a = hub.attach(AccountId(1), None);
        for n in 0..20 {
            hub.publish(&alert(1, n));
        }
        let mut batch = Vec::new();
        assert!(matches!(
            a.next_batch(&mut batch, 100).await,
            Batch::Lagged(missed) if missed > 0
        ));
        assert!(batch.is_empty());
    }
}
