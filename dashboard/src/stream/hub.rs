//! The stream hub: numbers each account's events, keeps the recent ones for
//! clients that reconnect, and hands frames to the account's writers.
//!
//! On one node the hub numbers an account's events itself, 1, 2, 3, … On
//! several nodes ([`super::shared`]) every event comes back from the shared
//! JetStream stream already numbered by it: an account's numbers then rise
//! but skip the other accounts' events, and are the same on every node.
//!
//! An event is serialised and framed once; every client of the account is
//! sent those same bytes (server frames are not masked). The writers
//! ([`super::shard`]) each read the account's broadcast once per frame and
//! write it to their share of the connections; a client that falls behind
//! is sent a fresh snapshot instead of what it missed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use crm::events::Event;
use crm::model::AccountId;
use serde::Serialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};

use super::frame::{server_frame, TEXT};
use super::shard::{self, Conn, Control, ShardHandle};
use super::wallboard::{Snapshot, Wallboard};

/// How much the hub keeps and buffers.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Events kept per account for clients resuming after a gap.
    pub replay: usize,
    /// Frames a client may fall behind before it gets a snapshot instead.
    pub client_buffer: usize,
    /// Writer tasks an account may have at most.
    pub writers: usize,
    /// Clients each writer takes before the account gets another writer.
    pub clients_per_writer: usize,
    /// The longest a writer rests after a pass over its clients. It rests
    /// as long as the pass took, up to this, so it spends at most half a
    /// core however many clients it has, and the frames published
    /// meanwhile go out together, one write per client. Zero: never rest.
    pub max_rest: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            replay: 4096,
            client_buffer: 1024,
            // One writer fanned out to 5,000 clients at 50 events a second
            // with less CPU and a lower p99 than two, which on two cores
            // contend with each other and with everything else; one kept up
            // with 8,000 (docs/benchmarks.md). More writers, up to one per
            // core, serve accounts beyond that.
            writers: std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
            clients_per_writer: 8192,
            // A round to 5,000 loopback sockets takes about 35 ms here;
            // resting up to 20 ms after it cut the writer's CPU by a third
            // with p99 unchanged (docs/benchmarks.md). Rounds to a few
            // hundred clients take under a millisecond and never rest.
            max_rest: Duration::from_millis(20),
        }
    }
}

/// A serialised, framed event with its sequence number.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The account-wide sequence number of the event (of the last event,
    /// for a notice).
    pub seq: u64,
    /// A notice about the stream itself, numbered by no event: every
    /// client is sent it, whatever number it is at, and it is not replayed.
    pub notice: bool,
    /// The websocket text frame of `{"type":"event","seq":N,"event":{…}}`.
    pub wire: Bytes,
    /// Where the JSON starts in `wire`.
    json_at: usize,
}

impl Frame {
    fn new(seq: u64, json: &str) -> Frame {
        let wire = server_frame(TEXT, json.as_bytes());
        Frame {
            seq,
            notice: false,
            json_at: wire.len() - json.len(),
            wire,
        }
    }

    /// The frame's JSON text.
    pub fn json(&self) -> &[u8] {
        &self.wire[self.json_at..]
    }
}

/// What [`next_batch`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// One or more frames, in order, were added to the batch.
    Frames,
    /// The reader fell behind by this many frames.
    Lagged(u64),
    /// The hub is gone.
    Closed,
}

/// Waits for the next frame, then takes every frame already queued behind
/// it, up to `max` in all, into `batch`.
///
/// Cancel-safe: only the first frame is awaited, the rest are taken without
/// yielding. After `Lagged` the batch is emptied, since the snapshot sent
/// next covers it.
pub async fn next_batch(
    rx: &mut broadcast::Receiver<Arc<Frame>>,
    batch: &mut Vec<Arc<Frame>>,
    max: usize,
) -> Batch {
    match rx.recv().await {
        Ok(frame) => batch.push(frame),
        Err(RecvError::Lagged(missed)) => return Batch::Lagged(missed),
        Err(RecvError::Closed) => return Batch::Closed,
    }
    take_queued(rx, batch, max)
}

/// Takes the frames already queued in `rx`, without waiting, until `batch`
/// holds `max`. After `Lagged` the batch is emptied, as in [`next_batch`];
/// a closed hub is left for the next wait to report.
pub fn take_queued(
    rx: &mut broadcast::Receiver<Arc<Frame>>,
    batch: &mut Vec<Arc<Frame>>,
    max: usize,
) -> Batch {
    while batch.len() < max {
        match rx.try_recv() {
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

/// A new client's first frames: a snapshot, or the events it missed.
#[derive(Debug)]
pub struct Initial {
    /// Framed, in order.
    pub frames: Vec<Bytes>,
    /// The sequence number of the last event they cover.
    pub seq: u64,
}

/// All accounts' feeds.
pub struct StreamHub {
    config: HubConfig,
    feeds: Mutex<HashMap<AccountId, Feed>>,
    /// What every account's wallboard shows alike (the trunks), to start a
    /// new account's feed with.
    shared: Mutex<Wallboard>,
    /// Snapshots sent to clients that fell behind, since start.
    resyncs: AtomicU64,
    /// Numbered by the shared stream: the number of the last event taken
    /// from it, which clients wait for when they resume from a number this
    /// node has not reached yet. `None` when the hub numbers events itself.
    position: Option<watch::Sender<u64>>,
    /// The newest number a feed started now cannot replay from: nothing
    /// before the hub's first event is held.
    base: AtomicU64,
    /// Numbered by the shared stream: whether events from other nodes
    /// reach this one now (NATS is connected).
    shared_up: std::sync::atomic::AtomicBool,
}

/// The stream's figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Connected stream clients, all accounts.
    pub clients: usize,
    /// Writer tasks, all accounts.
    pub writers: usize,
    /// Snapshots sent to clients that fell behind, since start.
    pub resyncs: u64,
}

struct Feed {
    seq: u64,
    /// The newest number not held in `replay` (evicted, or from before
    /// the hub started): a client that has it can be replayed the rest.
    floor: u64,
    replay: VecDeque<Arc<Frame>>,
    wallboard: Wallboard,
    tx: broadcast::Sender<Arc<Frame>>,
    /// Started with the account's first client.
    writers: Vec<ShardHandle>,
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
    /// With several nodes: whether other nodes' events reach this one now.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<bool>,
    #[serde(flatten)]
    snapshot: Snapshot<'a>,
}

impl StreamHub {
    /// Creates an empty hub.
    pub fn new(config: HubConfig) -> Self {
        StreamHub {
            config,
            feeds: Mutex::new(HashMap::new()),
            shared: Mutex::new(Wallboard::default()),
            resyncs: AtomicU64::new(0),
            position: None,
            base: AtomicU64::new(0),
            shared_up: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Creates an empty hub whose events the shared stream numbers, from
    /// the one after `base` on.
    pub fn numbered_from(config: HubConfig, base: u64) -> Self {
        StreamHub {
            position: Some(watch::channel(base).0),
            base: AtomicU64::new(base),
            ..StreamHub::new(config)
        }
    }

    /// Applies an event to its account's feed, numbered next, and sends it
    /// to listeners.
    pub fn publish(&self, event: &Event) {
        if !streamed(event) {
            return;
        }
        let mut feeds = self.lock();
        let seq = self.feed(&mut feeds, event.account()).seq + 1;
        self.apply(&mut feeds, seq, event);
    }

    /// Applies an event to its account's wallboard only: no number, no
    /// client is sent it. For state older than the shared stream keeps,
    /// before the stream is read, so the stream's events come on top.
    pub fn seed(&self, event: &Event) {
        let mut feeds = self.lock();
        self.feed(&mut feeds, event.account())
            .wallboard
            .apply(event);
    }

    /// Applies an event the shared stream numbered `seq`. A number not
    /// after the last one taken is a repeat and is dropped, so no client
    /// is sent an event twice.
    pub fn publish_numbered(&self, seq: u64, event: &Event) {
        let mut feeds = self.lock();
        if !self.advance(seq) {
            tracing::debug!(seq, "an event the hub already has was dropped");
            return;
        }
        if streamed(event) {
            self.apply(&mut feeds, seq, event);
        }
    }

    /// Moves past a number of the shared stream that carries nothing the
    /// hub can show (an event this version does not know).
    pub fn skip_numbered(&self, seq: u64) {
        let _feeds = self.lock();
        self.advance(seq);
    }

    /// Tells every client whether events from other nodes reach this one
    /// now, with a `{"type":"bus","shared":…}` frame when it changes; the
    /// snapshots say it too. Only a hub numbered by the shared stream has
    /// anything to say.
    pub fn set_shared(&self, up: bool) {
        if self.position.is_none() {
            return;
        }
        let feeds = self.lock();
        if self.shared_up.swap(up, Ordering::Relaxed) == up {
            return;
        }
        let json = format!("{{\"type\":\"bus\",\"shared\":{up}}}");
        for feed in feeds.values() {
            let mut frame = Frame::new(feed.seq, &json);
            frame.notice = true;
            let _ = feed.tx.send(Arc::new(frame));
        }
    }

    /// The number of the last event taken from the shared stream; `None`
    /// when the hub numbers events itself.
    pub fn position(&self) -> Option<u64> {
        self.position.as_ref().map(|p| *p.borrow())
    }

    /// Waits, for at most `limit`, until the hub has taken the shared
    /// stream's event `seq`; at once when the hub numbers events itself.
    /// A client resuming from a number another node sent it gets the
    /// events after it rather than a snapshot, even if this node is a
    /// moment behind.
    pub async fn reach(&self, seq: u64, limit: std::time::Duration) -> bool {
        let Some(position) = &self.position else {
            return true;
        };
        let mut rx = position.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|at| *at >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Records `seq` as the last number taken; false if it is not after it.
    /// Called with the feeds locked, so numbers and frames advance together.
    fn advance(&self, seq: u64) -> bool {
        match &self.position {
            Some(position) => position.send_if_modified(|at| {
                let after = seq > *at;
                if after {
                    *at = seq;
                }
                after
            }),
            None => true,
        }
    }

    fn apply(&self, feeds: &mut HashMap<AccountId, Feed>, seq: u64, event: &Event) {
        if matches!(event, Event::TrunkState { .. }) {
            self.shared().apply(event);
        }
        let feed = self.feed(feeds, event.account());
        feed.seq = seq;
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
        let frame = Arc::new(Frame::new(feed.seq, &text));
        if feed.replay.len() >= self.config.replay {
            match feed.replay.pop_front() {
                Some(gone) => feed.floor = gone.seq,
                // Nothing is kept: no client can be replayed anything.
                None => feed.floor = feed.seq,
            }
        }
        if self.config.replay > 0 {
            feed.replay.push_back(frame.clone());
        }
        // No receivers is fine: nobody is watching this account.
        let _ = feed.tx.send(frame);
    }

    /// What a client attaching now is sent first: the events after `since`
    /// when the hub still holds them all, else a snapshot.
    pub fn initial(&self, account: AccountId, since: Option<u64>) -> Initial {
        let mut feeds = self.lock();
        self.initial_of(self.feed(&mut feeds, account), since)
    }

    fn initial_of(&self, feed: &Feed, since: Option<u64>) -> Initial {
        if let Some(since) = since {
            if feed.floor <= since && since <= feed.seq {
                let frames = feed
                    .replay
                    .iter()
                    .filter(|f| f.seq > since)
                    .map(|f| f.wire.clone())
                    .collect();
                return Initial {
                    frames,
                    seq: feed.seq,
                };
            }
        }
        Initial {
            frames: vec![self.snapshot_of(feed)],
            seq: feed.seq,
        }
    }

    /// Hands a new connection to the least busy of its account's writers,
    /// with its first frames queued. Returns that writer's control channel,
    /// for the connection's reader; `None` if the writer is gone.
    pub(crate) fn adopt(
        self: &Arc<Self>,
        account: AccountId,
        since: Option<u64>,
        make: impl FnOnce(Initial) -> Conn,
    ) -> Option<tokio::sync::mpsc::UnboundedSender<Control>> {
        let mut feeds = self.lock();
        let feed = self.feed(&mut feeds, account);
        let least = feed
            .writers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .min();
        let full = least.is_none_or(|n| n >= self.config.clients_per_writer);
        if full && feed.writers.len() < self.config.writers.max(1) {
            // Subscribed under the lock: the writer's first frame is the one
            // after `feed.seq`.
            feed.writers.push(shard::spawn(
                Arc::downgrade(self),
                account,
                feed.tx.subscribe(),
                feed.seq,
                self.config.client_buffer,
                self.config.max_rest,
            ));
        }
        let conn = make(self.initial_of(feed, since));
        let writer = feed
            .writers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))?;
        writer.load.fetch_add(1, Ordering::Relaxed);
        writer.control.send(Control::Adopt(Box::new(conn))).ok()?;
        Some(writer.control.clone())
    }

    /// The account's snapshot as a frame, and the sequence number it is at.
    pub fn framed_snapshot(&self, account: AccountId) -> (Bytes, u64) {
        let mut feeds = self.lock();
        let feed = self.feed(&mut feeds, account);
        (self.snapshot_of(feed), feed.seq)
    }

    /// The frames after `after` up to and including `upto`, if the hub still holds them all.
    pub fn frames_between(&self, account: AccountId, after: u64, upto: u64) -> Option<Vec<Bytes>> {
        let feeds = self.lock();
        let feed = feeds.get(&account)?;
        if feed.floor > after {
            return None;
        }
        Some(
            feed.replay
                .iter()
                .filter(|f| f.seq > after && f.seq <= upto)
                .map(|f| f.wire.clone())
                .collect(),
        )
    }

    fn snapshot_of(&self, feed: &Feed) -> Bytes {
        let frame = SnapshotFrame {
            kind: "snapshot",
            seq: feed.seq,
            shared: self
                .position
                .as_ref()
                .map(|_| self.shared_up.load(Ordering::Relaxed)),
            snapshot: feed.wallboard.snapshot(),
        };
        let json = serde_json::to_string(&frame).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a snapshot did not serialise");
            String::from("{\"type\":\"error\"}")
        });
        server_frame(TEXT, json.as_bytes())
    }

    /// A receiver of the account's live frames, from the next one published.
    #[cfg(test)]
    fn subscribe(&self, account: AccountId) -> broadcast::Receiver<Arc<Frame>> {
        let mut feeds = self.lock();
        self.feed(&mut feeds, account).tx.subscribe()
    }

    /// The account's feed, started (knowing the trunks) if it has none.
    fn feed<'f>(
        &self,
        feeds: &'f mut HashMap<AccountId, Feed>,
        account: AccountId,
    ) -> &'f mut Feed {
        let config = self.config;
        let base = self.base.load(Ordering::Relaxed);
        // Without events an account is at 0 on every node, whenever its
        // feed was started; every event since `base` was seen, none its.
        feeds.entry(account).or_insert_with(|| Feed {
            seq: 0,
            floor: base,
            replay: VecDeque::with_capacity(config.replay.min(1024)),
            wallboard: Wallboard::with_trunks(self.shared().trunks()),
            tx: broadcast::channel(config.client_buffer.max(1)).0,
            writers: Vec::new(),
        })
    }

    /// Counts snapshots sent to clients that fell behind.
    pub(crate) fn resynced(&self, clients: usize) {
        self.resyncs.fetch_add(clients as u64, Ordering::Relaxed);
    }

    /// Clients, writers and resynchronisations across all accounts.
    pub fn stats(&self) -> StreamStats {
        let feeds = self.lock();
        let writers = feeds.values().flat_map(|f| &f.writers);
        StreamStats {
            clients: writers
                .clone()
                .map(|w| w.load.load(Ordering::Relaxed))
                .sum(),
            writers: writers.count(),
            resyncs: self.resyncs.load(Ordering::Relaxed),
        }
    }

    /// How many clients each of the account's writers holds.
    #[cfg(test)]
    fn writer_loads(&self, account: AccountId) -> Vec<usize> {
        let feeds = self.lock();
        feeds.get(&account).map_or_else(Vec::new, |f| {
            f.writers
                .iter()
                .map(|w| w.load.load(Ordering::Relaxed))
                .collect()
        })
    }

    /// Notes a trunk's state for the snapshots of feeds started from now
    /// on; the accounts' own feeds learn changes from their events.
    pub fn note_trunk(&self, node: &str, trunk: &str, up: bool, at: chrono::DateTime<chrono::Utc>) {
        self.shared().note_trunk(node, trunk, up, at);
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Wallboard> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
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

/// Whether supervisors are sent an event: not the bus's own signals
/// between nodes (sessions ended, which only closes sockets). A number of
/// the shared stream such an event takes is passed by, as for an event
/// this version cannot read.
fn streamed(event: &Event) -> bool {
    !matches!(event, Event::SessionsRevoked { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use crm::model::UserId;

    /// The JSON of a framed text frame (short or 16-bit length).
    fn text(frame: &Bytes) -> String {
        let at = if frame[1] == 126 { 4 } else { 2 };
        String::from_utf8_lossy(&frame[at..]).into_owned()
    }

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
            writers: 1,
            clients_per_writer: 16,
            max_rest: Duration::ZERO,
        });
        for n in 0..25 {
            hub.publish(&alert(1, n));
        }
        let a = hub.initial(AccountId(1), Some(20));
        assert_eq!(a.frames.len(), 5);
        assert!(text(&a.frames[0]).contains("\"seq\":21"));
        assert_eq!(a.seq, 25);
        let b = hub.initial(AccountId(1), Some(3));
        assert_eq!(b.frames.len(), 1);
        assert!(text(&b.frames[0]).starts_with("{\"type\":\"snapshot\",\"seq\":25"));
        let c = hub.initial(AccountId(1), Some(25));
        assert!(c.frames.is_empty(), "up to date: nothing to replay");
        let d = hub.initial(AccountId(1), Some(99));
        assert!(text(&d.frames[0]).contains("snapshot"), "a future seq");
        let between = hub.frames_between(AccountId(1), 20, 22).expect("held");
        assert_eq!(between.len(), 2);
        assert!(text(&between[0]).contains("\"seq\":21"));
        assert!(text(&between[1]).contains("\"seq\":22"));
        assert!(hub.frames_between(AccountId(1), 3, 22).is_none(), "evicted");
    }

    #[test]
    fn ended_sessions_are_never_sent_to_supervisors() {
        let revoked = Event::SessionsRevoked {
            account: AccountId(1),
            user_id: UserId(5),
            at: Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid"),
        };
        let local = StreamHub::new(HubConfig::default());
        let mut rx = local.subscribe(AccountId(1));
        local.publish(&revoked);
        local.publish(&alert(1, 0));
        let f = rx.try_recv().expect("the alert");
        assert_eq!(f.seq, 1, "no number taken on one node");
        assert!(rx.try_recv().is_err());
        // Numbered by the shared stream: its number is passed by.
        let shared = StreamHub::numbered_from(HubConfig::default(), 0);
        let mut rx = shared.subscribe(AccountId(1));
        shared.publish_numbered(1, &revoked);
        assert_eq!(shared.position(), Some(1));
        shared.publish_numbered(2, &alert(1, 0));
        assert_eq!(rx.try_recv().expect("the alert").seq, 2);
        assert!(rx.try_recv().is_err());
        let snapshot = text(&shared.initial(AccountId(1), Some(0)).frames[0]);
        assert!(!snapshot.contains("sessions_revoked"), "{snapshot}");
    }

    #[test]
    fn accounts_are_kept_apart() {
        let hub = StreamHub::new(HubConfig::default());
        let mut a = hub.subscribe(AccountId(1));
        hub.publish(&alert(2, 0));
        hub.publish(&Event::AgentState {
            account: AccountId(1),
            user_id: UserId(5),
            username: "al".into(),
            state: crm::events::AgentState::Ready,
            pause_code: None,
            at: Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid"),
        });
        let f = a.try_recv().expect("account 1's event");
        assert_eq!(f.seq, 1, "sequences are per account");
        assert!(String::from_utf8_lossy(f.json()).contains("\"username\":\"al\""));
        assert!(a.try_recv().is_err());
        let again = hub.initial(AccountId(1), None);
        assert!(text(&again.frames[0]).contains("\"username\":\"al\""));
    }

    #[tokio::test]
    async fn numbers_from_the_shared_stream_are_kept_and_resumes_respect_their_gaps() {
        let hub = StreamHub::numbered_from(
            HubConfig {
                replay: 3,
                client_buffer: 16,
                writers: 1,
                clients_per_writer: 16,
                max_rest: Duration::ZERO,
            },
            10,
        );
        let seqs = |i: &Initial| -> Vec<String> { i.frames.iter().map(text).collect() };
        // The stream's events after 10 interleave accounts 1 and 2; 13 is
        // one this version cannot read.
        hub.publish_numbered(11, &alert(1, 0));
        hub.publish_numbered(12, &alert(2, 0));
        hub.skip_numbered(13);
        hub.publish_numbered(14, &alert(1, 1));
        // Repeats are dropped, not sent twice.
        hub.publish_numbered(14, &alert(1, 9));
        hub.publish_numbered(12, &alert(1, 9));
        assert_eq!(hub.position(), Some(14));
        let a = hub.initial(AccountId(1), Some(11));
        assert_eq!(a.seq, 14);
        assert_eq!(a.frames.len(), 1);
        assert!(seqs(&a)[0].contains("\"seq\":14") && seqs(&a)[0].contains("alert 1"));
        let from_start = hub.initial(AccountId(1), Some(10));
        assert_eq!(
            from_start.frames.len(),
            2,
            "all the hub has seen since it started"
        );
        assert!(seqs(&from_start)[0].contains("\"seq\":11"));
        let before = hub.initial(AccountId(1), Some(9));
        assert!(seqs(&before)[0].contains("\"type\":\"snapshot\",\"seq\":14"));
        let other = hub.initial(AccountId(2), None);
        assert!(
            seqs(&other)[0].contains("\"seq\":12"),
            "its own last number"
        );
        let quiet = hub.initial(AccountId(3), None);
        assert!(
            seqs(&quiet)[0].contains("\"seq\":0"),
            "no events: 0 on every node"
        );
        let resumed = hub.initial(AccountId(3), Some(0));
        assert!(seqs(&resumed)[0].contains("snapshot"), "0 predates the hub");

        // Past the replay, what was let go of cannot be replayed: 11 and 14 go.
        for seq in [20, 25, 30] {
            hub.publish_numbered(seq, &alert(1, 2));
        }
        let held = hub.initial(AccountId(1), Some(14));
        assert_eq!(held.frames.len(), 3);
        let gone = hub.initial(AccountId(1), Some(11));
        assert!(seqs(&gone)[0].contains("snapshot"), "14 is no longer held");
        assert_eq!(
            hub.frames_between(AccountId(1), 14, 25).map(|f| f.len()),
            Some(2)
        );
        assert!(hub.frames_between(AccountId(1), 11, 25).is_none());

        assert!(hub.reach(30, std::time::Duration::ZERO).await);
        assert!(!hub.reach(31, std::time::Duration::from_millis(10)).await);
        assert!(
            StreamHub::new(HubConfig::default())
                .reach(99, std::time::Duration::ZERO)
                .await,
            "a hub that numbers its own events never waits"
        );
    }

    #[test]
    fn clients_are_told_when_other_nodes_are_cut_off_and_back() {
        let hub = StreamHub::numbered_from(HubConfig::default(), 0);
        hub.publish_numbered(1, &alert(1, 0));
        let mut rx = hub.subscribe(AccountId(1));
        assert!(text(&hub.initial(AccountId(1), None).frames[0])
            .starts_with("{\"type\":\"snapshot\",\"seq\":1,\"shared\":true,"));
        hub.set_shared(false);
        hub.set_shared(false);
        let notice = rx.try_recv().expect("told once");
        assert!(notice.notice);
        assert_eq!(notice.seq, 1, "at the number clients are at");
        assert_eq!(
            String::from_utf8_lossy(notice.json()),
            "{\"type\":\"bus\",\"shared\":false}"
        );
        assert!(rx.try_recv().is_err(), "a repeat says nothing");
        assert!(text(&hub.initial(AccountId(1), None).frames[0]).contains("\"shared\":false"));
        let resumed = hub.initial(AccountId(1), Some(0));
        assert_eq!(resumed.frames.len(), 1, "notices are not replayed");
        hub.set_shared(true);
        assert!(String::from_utf8_lossy(rx.try_recv().expect("back").json()).contains("true"));
        // One node alone has nothing to say.
        let local = StreamHub::new(HubConfig::default());
        local.publish(&alert(1, 0));
        let mut rx = local.subscribe(AccountId(1));
        local.set_shared(false);
        assert!(rx.try_recv().is_err());
        assert!(!text(&local.initial(AccountId(1), None).frames[0]).contains("shared"));
    }

    #[test]
    fn a_new_accounts_first_snapshot_already_shows_the_trunks() {
        let hub = StreamHub::new(HubConfig::default());
        let trunk = |account: i64, up: bool, s: i64| Event::TrunkState {
            account: AccountId(account),
            node: "n1".into(),
            trunk: "main".into(),
            up,
            at: Utc
                .timestamp_opt(1_800_000_000 + s, 0)
                .single()
                .expect("valid"),
        };
        hub.publish(&trunk(1, true, 0));
        hub.publish(&trunk(1, false, 5));
        // Account 3 had no feed yet: its first snapshot knows the trunk.
        let first = text(&hub.initial(AccountId(3), None).frames[0]);
        assert!(
            first.contains("\"trunks\":[{\"node\":\"n1\",\"trunk\":\"main\",\"up\":false"),
            "{first}"
        );
        assert!(
            first.contains("\"seq\":0"),
            "nothing was published to it: {first}"
        );
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_waiting_in_order_up_to_its_limit() {
        let hub = StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 64,
            writers: 1,
            clients_per_writer: 16,
            max_rest: Duration::ZERO,
        });
        let mut a = hub.subscribe(AccountId(1));
        for n in 0..10 {
            hub.publish(&alert(1, n));
        }
        let mut batch = Vec::new();
        assert_eq!(next_batch(&mut a, &mut batch, 4).await, Batch::Frames);
        let seqs: Vec<u64> = batch.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "at most the limit, oldest first");
        batch.clear();
        assert_eq!(next_batch(&mut a, &mut batch, 100).await, Batch::Frames);
        let seqs: Vec<u64> = batch.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8, 9, 10], "the rest, none twice");
        batch.clear();
        hub.publish(&alert(1, 10));
        assert_eq!(next_batch(&mut a, &mut batch, 100).await, Batch::Frames);
        assert_eq!(batch.len(), 1, "one waiting frame is sent at once");
    }

    #[tokio::test]
    async fn a_batch_reports_a_client_that_fell_behind() {
        let hub = StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 8,
            writers: 1,
            clients_per_writer: 16,
            max_rest: Duration::ZERO,
        });
        let mut a = hub.subscribe(AccountId(1));
        for n in 0..20 {
            hub.publish(&alert(1, n));
        }
        let mut batch = Vec::new();
        assert!(matches!(
            next_batch(&mut a, &mut batch, 100).await,
            Batch::Lagged(missed) if missed > 0
        ));
        assert!(batch.is_empty());
    }

    /// Reads one unmasked text frame as a server writes it; returns its JSON.
    async fn read_frame(client: &mut tokio::io::DuplexStream) -> serde_json::Value {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 2];
        client.read_exact(&mut head).await.expect("a frame header");
        assert_eq!(head[0], 0x81, "a final text frame");
        let len = match head[1] {
            126 => {
                let mut n = [0u8; 2];
                client.read_exact(&mut n).await.expect("a length");
                usize::from(u16::from_be_bytes(n))
            }
            n => usize::from(n),
        };
        let mut payload = vec![0; len];
        client.read_exact(&mut payload).await.expect("a payload");
        serde_json::from_slice(&payload).expect("JSON")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_are_added_as_clients_arrive_and_each_client_gets_every_frame() {
        let hub = Arc::new(StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 64,
            writers: 2,
            clients_per_writer: 2,
            max_rest: Duration::ZERO,
        }));
        let account = AccountId(1);
        let mut clients = Vec::new();
        // Events keep coming while clients join, one event apart.
        for id in 0..5u32 {
            let (server, client) = tokio::io::duplex(64 * 1024);
            let (alive, _) = tokio::sync::oneshot::channel();
            hub.adopt(account, None, |initial| {
                Conn::new(
                    u64::from(id),
                    Box::new(server),
                    initial.frames,
                    initial.seq,
                    alive,
                )
            })
            .expect("a writer takes the client");
            clients.push(client);
            hub.publish(&alert(1, id));
        }
        assert_eq!(
            hub.writer_loads(account),
            [3, 2],
            "a second writer once the first held two, and no third"
        );
        for n in 5..10 {
            hub.publish(&alert(1, n));
        }
        for (joined, client) in clients.iter_mut().enumerate() {
            let snapshot = read_frame(client).await;
            assert_eq!(snapshot["type"], "snapshot");
            assert_eq!(snapshot["seq"], joined as u64);
            for seq in joined as u64 + 1..=10 {
                let event = read_frame(client).await;
                assert_eq!(event["type"], "event");
                assert_eq!(event["seq"], seq, "client {joined}: in order, none missing");
            }
        }
        // A client that goes away is dropped at its next write.
        drop(clients.remove(0));
        hub.publish(&alert(1, 10));
        let mut waited = 0;
        while hub.writer_loads(account).iter().sum::<usize>() != 4 {
            waited += 1;
            assert!(waited < 500, "the closed client was never dropped");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for client in &mut clients {
            assert_eq!(read_frame(client).await["seq"], 11);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_going_round_many_clients_gives_each_every_frame_once_in_order() {
        // More clients than one step of a pass, and events published while
        // passes are under way: each client still gets each event once.
        const CLIENTS: u64 = 700;
        const EVENTS: u32 = 30;
        let hub = Arc::new(StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 64,
            writers: 1,
            clients_per_writer: 1000,
            max_rest: Duration::from_millis(2),
        }));
        let account = AccountId(1);
        let mut clients = Vec::new();
        for id in 0..CLIENTS {
            let (server, client) = tokio::io::duplex(64 * 1024);
            let (alive, _) = tokio::sync::oneshot::channel();
            hub.adopt(account, None, |initial| {
                Conn::new(id, Box::new(server), initial.frames, initial.seq, alive)
            })
            .expect("a writer takes the client");
            clients.push(client);
        }
        for n in 0..EVENTS {
            hub.publish(&alert(1, n));
            if n % 3 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        for (id, client) in clients.iter_mut().enumerate() {
            let snapshot = read_frame(client).await;
            assert_eq!(snapshot["type"], "snapshot");
            assert_eq!(snapshot["seq"], 0);
            for seq in 1..=u64::from(EVENTS) {
                let event = read_frame(client).await;
                assert_eq!(
                    event["seq"], seq,
                    "client {id}: in order, none missing or repeated"
                );
            }
        }
        // Nothing more: the next frame any client reads is the next event.
        hub.publish(&alert(1, EVENTS));
        for client in &mut clients {
            assert_eq!(read_frame(client).await["seq"], u64::from(EVENTS) + 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_the_writer_takes_late_is_sent_what_it_passed_by() {
        let hub = Arc::new(StreamHub::new(HubConfig {
            replay: 4,
            client_buffer: 64,
            writers: 1,
            clients_per_writer: 64,
            max_rest: Duration::ZERO,
        }));
        let account = AccountId(1);
        let adopt = |id: u64, after: u64| {
            let (server, client) = tokio::io::duplex(64 * 1024);
            let (alive, _) = tokio::sync::oneshot::channel();
            // The client's first frames stop at `after`, as when the writer
            // fanned frames out between the hub's attach and its adoption.
            hub.adopt(account, None, |_| {
                Conn::new(id, Box::new(server), Vec::new(), after, alive)
            })
            .expect("a writer takes the client");
            client
        };
        let mut first = adopt(1, 0);
        for n in 0..5 {
            hub.publish(&alert(1, n));
        }
        for seq in 1..=5 {
            assert_eq!(read_frame(&mut first).await["seq"], seq);
        }
        // The writer has sent 1..=5; the hub keeps 2..=5.
        let mut behind = adopt(2, 3);
        let mut too_far = adopt(3, 0);
        hub.publish(&alert(1, 5));
        for seq in [4, 5, 6] {
            let frame = read_frame(&mut behind).await;
            assert_eq!(frame["type"], "event");
            assert_eq!(frame["seq"], seq, "filled from the hub's replay");
        }
        let snapshot = read_frame(&mut too_far).await;
        assert_eq!(snapshot["type"], "snapshot", "frame 1 is gone: a snapshot");
        // Taken when the writer got to the client: before or after frame 6.
        let at = snapshot["seq"].as_u64().expect("a seq");
        assert!(at == 5 || at == 6, "snapshot at {at}");
        hub.publish(&alert(1, 6));
        for seq in at + 1..=7 {
            assert_eq!(read_frame(&mut too_far).await["seq"], seq);
        }
    }

    /// A client's socket that takes every write whole, slowly, and reports it.
    struct SlowSocket {
        writes: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
        each: Duration,
    }

    impl tokio::io::AsyncWrite for SlowSocket {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::thread::sleep(self.each);
            let _ = self.writes.send(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_slow_fan_out_the_writer_rests_and_sends_what_came_meanwhile_as_one_write() {
        let hub = Arc::new(StreamHub::new(HubConfig {
            replay: 64,
            client_buffer: 64,
            writers: 1,
            clients_per_writer: 16,
            max_rest: Duration::from_secs(5),
        }));
        let (writes, mut written) = tokio::sync::mpsc::unbounded_channel();
        let each = Duration::from_millis(150);
        let (alive, _) = tokio::sync::oneshot::channel();
        hub.adopt(AccountId(1), None, |initial| {
            let socket = SlowSocket { writes, each };
            Conn::new(1, Box::new(socket), initial.frames, initial.seq, alive)
        })
        .expect("a writer takes the client");
        let events = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .matches("{\"type\":\"event\"")
                .count()
        };
        let snapshot = written.recv().await.expect("the snapshot");
        assert_eq!(events(&snapshot), 0);
        hub.publish(&alert(1, 0));
        let first = written.recv().await.expect("the first event");
        let rested_from = std::time::Instant::now();
        assert_eq!(events(&first), 1);
        // The fan-out took one slow write: the writer rests as long.
        for n in 1..4 {
            hub.publish(&alert(1, n));
        }
        let rest = written
            .recv()
            .await
            .expect("the events published during the rest");
        assert_eq!(events(&rest), 3, "one write for the three");
        assert!(
            rested_from.elapsed() >= each * 2 - Duration::from_millis(20),
            "a rest, then a slow write: {:?}",
            rested_from.elapsed()
        );
        let text = String::from_utf8_lossy(&rest).into_owned();
        let at = |seq: u64| text.find(&format!("\"seq\":{seq},")).expect("each seq");
        assert!(at(2) < at(3) && at(3) < at(4), "in order: {text}");
    }
}
