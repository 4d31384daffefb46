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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// Websocket handshakes in flight at once; more overflows the listen backlog.
const CONNECTS_IN_FLIGHT: usize = 128;
/// Each client's read buffer: several frames, for a client that fell behind.
const READ_BUFFER: usize = 4096;
/// Any 16 bytes in base64 do for the upgrade; the answer's hash is not checked.
const WS_KEY: &str = "ZGlhbGNybS1iZW5jaC0xNg==";
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
                let tally = Arc::new(Mutex::new(Tally::default()));
                let task = tokio::spawn(read_stream(
                    url.clone(),
                    cookie.to_owned(),
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
///
/// The client speaks the websocket protocol itself, as far as a reader of a server's
/// unfragmented text frames needs (the upgrade, frame headers, pongs for pings), reading
/// whatever the socket holds into one buffer and taking every whole frame out of it in
/// place: with 10,000 clients on the machine the server runs on, a general client's work
/// per frame (tungstenite zeroes its read buffer before each read and copies each frame
/// into a message of its own) took a core and delayed what it measured.
async fn read_stream(
    url: String,
    cookie: String,
    gate: Arc<Semaphore>,
    ready: mpsc::Sender<()>,
    tally: Arc<Mutex<Tally>>,
) -> Result<()> {
    let mut conn = {
        let _permit = gate.acquire().await?;
        RawSocket::open(&url, &cookie).await?
    };
    let mut last_seq = match conn.next_text().await? {
        t if t.starts_with(SNAPSHOT) => seq_of(t).context("a snapshot without a number")?,
        other => bail!("the first frame was not a snapshot: {other:.80}"),
    };
    let _ = ready.send(()).await;
    drop(ready);
    loop {
        let t = conn.next_text().await?;
        let received = unix_nanos();
        let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
        let seq = seq_of(t);
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
        if let Some(sent) = stamp_of(t) {
            tally.delivered += 1;
            tally
                .latencies
                .record(received.saturating_sub(sent) / 1_000);
        }
    }
}

/// One websocket read straight off its TCP socket.
struct RawSocket {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The frame handed out last, consumed on the next call.
    taken: usize,
}

impl RawSocket {
    /// Connects to a `ws://host:port/path` URL and upgrades with the session cookie.
    async fn open(url: &str, cookie: &str) -> Result<RawSocket> {
        let rest = url.strip_prefix("ws://").context("a ws:// URL")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut stream = TcpStream::connect(authority)
            .await
            .context("opening a websocket")?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n\
             Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut socket = RawSocket {
            stream,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            taken: 0,
        };
        let head_end = loop {
            if let Some(at) = socket.buf[..socket.end]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break at + 4;
            }
            socket
                .fill()
                .await
                .context("reading the upgrade response")?;
        };
        let head = String::from_utf8_lossy(&socket.buf[..head_end]);
        if !head.starts_with("HTTP/1.1 101") {
            bail!(
                "the upgrade was refused: {}",
                head.lines().next().unwrap_or("")
            );
        }
        socket.start = head_end;
        Ok(socket)
    }

    /// Reads more of the socket into the buffer, making room first.
    async fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else {
                // One frame larger than the buffer (a big snapshot).
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            bail!("the server closed the stream");
        }
        self.end += n;
        Ok(())
    }

    /// The next text frame's payload; answers pings on the way.
    async fn next_text(&mut self) -> Result<&str> {
        self.start += std::mem::take(&mut self.taken);
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some((opcode, header, len)) = frame_header(unread)? {
                let payload = self.start + header..self.start + header + len;
                match opcode {
                    0x1 => {
                        self.taken = header + len;
                        return std::str::from_utf8(&self.buf[payload])
                            .context("a text frame that is not UTF-8");
                    }
                    0x8 => bail!("the server closed the stream"),
                    0x9 => {
                        let ping = self.buf[payload].to_vec();
                        self.start += header + len;
                        self.pong(&ping).await?;
                    }
                    _ => self.start += header + len,
                }
                continue;
            }
            self.fill().await?;
        }
    }

    /// Answers a ping, masked as a client must (with a zero key: nothing here is secret).
    async fn pong(&mut self, payload: &[u8]) -> Result<()> {
        let len = u8::try_from(payload.len())
            .ok()
            .filter(|&n| n < 126)
            .context("a ping longer than a control frame may be")?;
        let mut frame = vec![0x8A, 0x80 | len, 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await?;
        Ok(())
    }
}

/// A whole server frame at the start of `bytes`: its opcode, header length and payload
/// length; `None` until all of it has arrived.
fn frame_header(bytes: &[u8]) -> Result<Option<(u8, usize, usize)>> {
    let (Some(&first), Some(&second)) = (bytes.first(), bytes.get(1)) else {
        return Ok(None);
    };
    if first & 0x80 == 0 {
        bail!("a fragmented frame: the server sends whole ones");
    }
    if second & 0x80 != 0 {
        bail!("a masked frame from the server");
    }
    let (header, len) = match second & 0x7F {
        126 => match bytes.get(2..4) {
            Some(n) => (4, usize::from(u16::from_be_bytes([n[0], n[1]]))),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10) {
            Some(n) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(n);
                (10, usize::try_from(u64::from_be_bytes(be))?)
            }
            None => return Ok(None),
        },
        n => (2, usize::from(n)),
    };
    Ok((bytes.len() >= header + len).then_some((first & 0x0F, header, len)))
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
