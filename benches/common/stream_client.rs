//! Supervisors on the stream, for the stream benchmarks: the bench alerts a
//! node publishes with their publish time, and a fleet of websocket clients
//! that read `/api/stream` and time every such alert. Included with `#[path]`
//! by `stream_fanout.rs` and `nodes_fanout.rs`.
//!
//! Latency is the time a client read a frame minus the time written into it
//! when it was published, both from this machine's system clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::events::{Event, EventBus};
use crm::model::AccountId;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Websocket handshakes in flight at once; more overflows the listen backlog.
const CONNECTS_IN_FLIGHT: usize = 128;
/// The marker in each bench alert's frame that precedes its publish time.
const STAMP: &str = "\"message\":\"sent_ns=";
/// The marker of a frame's stream number.
const SEQ: &str = "\"seq\":";
/// The start of a snapshot frame.
const SNAPSHOT: &str = "{\"type\":\"snapshot\"";

/// Publishes `rate` bench alerts a second for `secs` seconds on `bus`; returns how many.
pub async fn publish_alerts(bus: &EventBus, account: AccountId, rate: u32, secs: u64) -> u64 {
    let total = u64::from(rate) * secs;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    for _ in 0..total {
        tick.tick().await;
        bus.publish(Event::Alert {
            account,
            alert: "bench".into(),
            message: format!("sent_ns={}", unix_nanos()),
            at: Utc::now(),
        });
    }
    total
}

/// Logs in over HTTP at `base` (`http://host:port`) and returns the session cookie as
/// `name=value`.
pub async fn login(base: &str, username: &str, password: &str) -> Result<String> {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .context("posting the login")?;
    if r.status() != 200 {
        bail!("the login answered {}", r.status());
    }
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("the login set no session cookie")
}

/// Websocket clients of the stream, in groups (one group per node served).
pub struct Fleet {
    clients: Vec<Client>,
    groups: usize,
}

/// What a group of clients saw, added up.
#[derive(Default)]
pub struct GroupTally {
    /// Clients in the group.
    pub clients: u64,
    /// Clients that got at least one snapshot after the first.
    pub resynced_clients: u64,
    /// Every client's frames, added up.
    pub frames: Tally,
}

/// What one client saw.
#[derive(Default, Clone)]
pub struct Tally {
    /// Bench alerts read.
    pub delivered: u64,
    /// Snapshots after the first: the server's answer to a client that fell behind.
    pub resyncs: u64,
    /// Frames whose stream number was not above the one before.
    pub out_of_order: u64,
    /// Delivery latency of each bench alert.
    pub latencies: Latencies,
}

impl Fleet {
    /// Opens `per_url` websockets to each of `urls` with the session `cookie`, and returns
    /// once every one has read its snapshot.
    pub async fn connect(urls: &[String], cookie: &str, per_url: usize) -> Result<Fleet> {
        let n = urls.len() * per_url;
        let gate = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
        let (ready_tx, mut ready_rx) = mpsc::channel::<()>(n.max(1));
        let mut clients = Vec::with_capacity(n);
        // Round the URLs, so every node takes its clients at the same pace.
        for _ in 0..per_url {
            for (group, url) in urls.iter().enumerate() {
                let mut req = url.as_str().into_client_request()?;
                req.headers_mut().insert("cookie", cookie.parse()?);
                let tally = Arc::new(Mutex::new(Tally::default()));
                let task = tokio::spawn(read_stream(
                    req,
                    gate.clone(),
                    ready_tx.clone(),
                    tally.clone(),
                ));
                clients.push(Client { group, tally, task });
            }
        }
        drop(ready_tx);
        for _ in 0..n {
            if ready_rx.recv().await.is_none() {
                // Every sender is gone, so a client ended before it was ready: say why.
                for c in clients {
                    if c.task.is_finished() {
                        c.task.await.context("a client task panicked")??;
                    }
                }
                bail!("a client failed to connect");
            }
        }
        Ok(Fleet {
            clients,
            groups: urls.len(),
        })
    }

    /// Stops every client and returns what each group saw; fails if a client failed.
    pub async fn finish(self) -> Result<Vec<GroupTally>> {
        // A client that failed ended on its own; the rest are still reading.
        for c in &self.clients {
            if !c.task.is_finished() {
                c.task.abort();
            }
        }
        let mut groups: Vec<GroupTally> = (0..self.groups).map(|_| GroupTally::default()).collect();
        for c in self.clients {
            match c.task.await {
                Ok(result) => result?,
                Err(e) if e.is_cancelled() => {}
                Err(e) => bail!("a client task panicked: {e}"),
            }
            let t = c.tally.lock().unwrap_or_else(|p| p.into_inner());
            let g = &mut groups[c.group];
            g.clients += 1;
            g.resynced_clients += u64::from(t.resyncs > 0);
            g.frames.add(&t);
        }
        Ok(groups)
    }
}

impl GroupTally {
    /// Adds another group's figures to this one's.
    #[allow(dead_code)] // A benchmark with one group has nothing to add.
    pub fn add(&mut self, other: &GroupTally) {
        self.clients += other.clients;
        self.resynced_clients += other.resynced_clients;
        self.frames.add(&other.frames);
    }
}

impl Tally {
    /// Adds another client's figures to these.
    pub fn add(&mut self, other: &Tally) {
        self.delivered += other.delivered;
        self.resyncs += other.resyncs;
        self.out_of_order += other.out_of_order;
        self.latencies.add(&other.latencies);
    }
}

/// Latencies in microseconds, counted in buckets at most 1/32 (3.1 %) of their value wide,
/// so a client's take fits in 7 KiB however many frames it reads.
#[derive(Clone)]
pub struct Latencies {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

/// Values below this have a bucket each.
const LINEAR: u64 = 64;
/// Buckets per doubling above [`LINEAR`], as a power of two.
const SUB_BITS: u32 = 5;
/// Buckets up to about 71 minutes; longer latencies count in the last.
const BUCKETS: usize = 64 + 26 * 32;

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }
}

impl Latencies {
    /// Counts one latency.
    pub fn record(&mut self, us: u64) {
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another set of latencies to this one.
    pub fn add(&mut self, other: &Latencies) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The `q` quantile (0 to 1) by the nearest rank, as the middle of its bucket; zero
    /// when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, high) = (bucket_floor(i), bucket_floor(i + 1));
                let mid = low + (high - low) / 2;
                return Duration::from_micros(mid.min(self.max_us));
            }
        }
        self.max()
    }

    /// The longest latency counted.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }
}

/// The bucket of a latency: exact below [`LINEAR`], then 32 to each doubling.
fn bucket(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // at least 6
    let mantissa = (us >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    let i = LINEAR as usize + (exp as usize - 6) * (1 << SUB_BITS) + mantissa as usize;
    i.min(BUCKETS - 1)
}

/// The smallest latency in bucket `i`.
fn bucket_floor(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let above = (i - LINEAR as usize) as u64;
    let exp = above / (1 << SUB_BITS) + 6;
    let mantissa = above % (1 << SUB_BITS);
    ((1 << SUB_BITS) + mantissa) << (exp - u64::from(SUB_BITS))
}

/// Returns nanoseconds since the Unix epoch on this machine's clock.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One client of a fleet.
struct Client {
    group: usize,
    tally: Arc<Mutex<Tally>>,
    task: JoinHandle<Result<()>>,
}

/// Connects one websocket, reads its snapshot, then times every frame until aborted.
///
/// The loop does nothing per frame but read, stamp and record: the tally lives behind an
/// uncontended mutex the fleet reads after aborting the task, rather than in a
/// `select!` against a stop signal, which cost the generator a future and a random
/// branch order per frame.
async fn read_stream(
    req: Request,
    gate: Arc<Semaphore>,
    ready: mpsc::Sender<()>,
    tally: Arc<Mutex<Tally>>,
) -> Result<()> {
    // Small buffers: the frames are small, and tungstenite zeroes the whole read buffer
    // before every read (5,000 × 128 KiB would also crowd the machine).
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0);
    let (mut ws, mut last_seq) = {
        let _permit = gate.acquire().await?;
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
            .await
            .context("opening a websocket")?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with(SNAPSHOT) => {
                let seq = seq_of(&t).context("a snapshot without a number")?;
                (ws, seq)
            }
            other => bail!("the first frame was not a snapshot: {other:?}"),
        }
    };
    let _ = ready.send(()).await;
    drop(ready);
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let received = unix_nanos();
                let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                let seq = seq_of(&t);
                if t.starts_with(SNAPSHOT) {
                    // A snapshot restarts the numbering from where it stands.
                    tally.resyncs += 1;
                    last_seq = seq.unwrap_or(last_seq);
                    continue;
                }
                match seq {
                    Some(seq) if seq > last_seq => last_seq = seq,
                    _ => tally.out_of_order += 1,
                }
                if let Some(sent) = stamp_of(&t) {
                    tally.delivered += 1;
                    tally
                        .latencies
                        .record(received.saturating_sub(sent) / 1_000);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("the stream failed: {e}"),
            None => bail!("the server closed the stream"),
        }
    }
}

/// Reads the publish time out of a bench alert's frame without parsing all of it.
fn stamp_of(frame: &str) -> Option<u64> {
    number_after(frame, STAMP)
}

/// Reads a frame's stream number (`"seq":N`, near its start).
fn seq_of(frame: &str) -> Option<u64> {
    number_after(frame, SEQ)
}

fn number_after(frame: &str, marker: &str) -> Option<u64> {
    let start = frame.find(marker)? + marker.len();
    let digits = &frame[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}
