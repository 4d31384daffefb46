//! The stream's writers: a few tasks per account, each writing every live
//! frame to its share of the account's connections.
//!
//! A task per connection meant one wake-up, one broadcast receive and one
//! reference count bump on the shared frame per client per event, all on
//! the same few cache lines from both cores (docs/benchmarks.md). Here a
//! writer receives each frame once and writes its bytes, already framed by
//! the hub, to each of its sockets in turn, without waiting on any of them:
//! a socket that cannot take the bytes now keeps them in its own queue and
//! is finished when it can. A client whose queue passes the account's
//! client buffer is sent a fresh snapshot instead of the frames it missed,
//! so a slow client costs nobody else anything.
//!
//! The writer goes round its connections in passes, a step of them at a
//! time, and gives each everything it has not yet been given in one write.
//! A frame that arrives during a pass still goes to the connections the
//! pass has not reached, so no frame waits longer than one pass (and the
//! rest after it) for any connection, where a pass begun only for the
//! frames before it would leave the new one waiting for that whole pass
//! and then its own.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use crm::model::AccountId;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWrite;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::hub::{next_batch, take_queued, Batch, Frame, StreamHub};

/// A client's upgraded connection.
pub(crate) type ClientIo = TokioIo<Upgraded>;

/// The writing half of a client's connection (boxed, so tests can use any stream).
pub(crate) type ClientWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// Frames one fan-out takes from the hub at most.
const MAX_BATCH: usize = 256;

/// Shorter rests are skipped: the timer's resolution is a millisecond, and a
/// pass that quick costs too little to be worth holding frames back.
const MIN_REST: Duration = Duration::from_millis(1);

/// Connections a pass writes to before the writer sees to its other work
/// (new frames, pongs, new clients): about 2 ms of writes on loopback.
const STEP: usize = 256;

/// What a connection's reader, or the hub, asks of its writer.
pub(crate) enum Control {
    /// A new connection, its first frames queued.
    Adopt(Box<Conn>),
    /// Queue a control frame (a pong) for a connection.
    Send(u64, Bytes),
    /// Queue a close frame, then drop the connection once it is written.
    Close(u64, Bytes),
    /// The client went away: drop the connection.
    Gone(u64),
}

/// The writing side of one client's websocket.
pub(crate) struct Conn {
    id: u64,
    io: ClientWriter,
    /// Whole frames waiting, the first perhaps partly written.
    queue: VecDeque<Bytes>,
    /// Bytes of the first queued frame already written.
    offset: usize,
    /// Frames queued since the client was last sent a snapshot.
    backlog: usize,
    /// The last sequence number the client has, or has queued.
    after: u64,
    /// A close frame is queued; the connection ends once it is written.
    closing: bool,
    /// How many of the frames its writer has taken it has been given.
    given: u64,
    /// Dropped with the connection, which tells its reader to stop.
    _alive: oneshot::Sender<()>,
}

impl Conn {
    /// A connection whose first frames, up to sequence number `after`, are `initial`.
    pub(crate) fn new(
        id: u64,
        io: ClientWriter,
        initial: Vec<Bytes>,
        after: u64,
        alive: oneshot::Sender<()>,
    ) -> Conn {
        Conn {
            id,
            io,
            queue: initial.into(),
            offset: 0,
            backlog: 0,
            after,
            closing: false,
            given: 0,
            _alive: alive,
        }
    }

    /// Writes what the socket takes now. `Ok(true)` when nothing is left.
    fn flush(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        while let Some(front) = self.queue.front() {
            match Pin::new(&mut self.io).poll_write(cx, &front[self.offset..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.offset += n;
                    if self.offset == front.len() {
                        self.queue.pop_front();
                        self.offset = 0;
                    }
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(false),
            }
        }
        self.backlog = 0;
        Ok(true)
    }

    /// Sends `bytes`, written at once when nothing is queued before them.
    /// `Ok(false)` means they, or their rest, wait in the queue.
    fn send(&mut self, bytes: &Bytes, cx: &mut Context<'_>) -> io::Result<bool> {
        if !self.queue.is_empty() {
            self.queue.push_back(bytes.clone());
            return Ok(false);
        }
        match Pin::new(&mut self.io).poll_write(cx, bytes) {
            Poll::Ready(Ok(n)) if n == bytes.len() => Ok(true),
            Poll::Ready(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => {
                self.queue.push_back(bytes.clone());
                self.offset = n;
                self.flush(cx)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => {
                self.queue.push_back(bytes.clone());
                Ok(false)
            }
        }
    }

    /// Drops the queued frames not yet begun and queues `snapshot` in their place.
    fn resync(&mut self, snapshot: &(Bytes, u64)) {
        let keep = usize::from(self.offset > 0);
        self.queue.truncate(keep);
        self.queue.push_back(snapshot.0.clone());
        self.after = snapshot.1;
        self.backlog = 0;
    }
}

/// The hub's handle on one writer.
pub(crate) struct ShardHandle {
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) load: Arc<AtomicUsize>,
}

/// Starts a writer for `account` reading `rx`, whose frames so far end at `seq`.
pub(crate) fn spawn(
    hub: Weak<StreamHub>,
    account: AccountId,
    rx: broadcast::Receiver<Arc<Frame>>,
    seq: u64,
    client_buffer: usize,
    max_rest: Duration,
) -> ShardHandle {
    let (control, control_rx) = mpsc::unbounded_channel();
    let load = Arc::new(AtomicUsize::new(0));
    let shard = Shard {
        hub,
        account,
        conns: Vec::new(),
        last_seq: seq,
        client_buffer: client_buffer.max(1),
        max_rest,
        load: load.clone(),
        window: VecDeque::new(),
        window_start: 0,
        taken: 0,
        everyone_has: 0,
        pass: None,
        joined: None,
    };
    // The writer yields after every step of a pass; within one it must not
    // stop halfway because each socket write spent some of the task's budget.
    tokio::spawn(tokio::task::unconstrained(shard.run(rx, control_rx)));
    ShardHandle { control, load }
}

struct Shard {
    hub: Weak<StreamHub>,
    account: AccountId,
    conns: Vec<Conn>,
    /// The sequence number of the last frame this writer has taken.
    last_seq: u64,
    client_buffer: usize,
    /// The longest rest after a pass (`HubConfig::max_rest`).
    max_rest: Duration,
    load: Arc<AtomicUsize>,
    /// The frames taken that some connection may not have been given yet, oldest first.
    window: VecDeque<Arc<Frame>>,
    /// How many frames were taken before the window's first.
    window_start: u64,
    /// How many frames this writer has taken.
    taken: u64,
    /// How many frames every connection had been given when the last pass ended.
    everyone_has: u64,
    /// The pass under way: the next connection to visit, and when it began.
    pass: Option<(usize, Instant)>,
    /// The frames from `.0` to `.1` of the window, framed as one write; most
    /// connections of a step are given the same ones.
    joined: Option<(u64, u64, Bytes)>,
}

impl Shard {
    async fn run(
        mut self,
        mut rx: broadcast::Receiver<Arc<Frame>>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut batch = Vec::new();
        // After a long pass the writer rests as long as it took before the
        // next, still taking frames and answering its connections meanwhile.
        let rest = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(rest);
        let mut resting = false;
        loop {
            let stepping = !resting && (self.pass.is_some() || self.taken > self.everyone_has);
            let conns = &mut self.conns;
            let load = &self.load;
            tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(c) => self.control(c).await,
                    None => return,
                },
                () = &mut rest, if resting => resting = false,
                () = std::future::ready(()), if stepping => {
                    // Frames that came since the last step go to the
                    // connections this pass has yet to reach.
                    self.take_waiting(&mut rx, &mut batch);
                    if let Some(took) = self.step().await {
                        let took = took.min(self.max_rest);
                        if took >= MIN_REST {
                            rest.as_mut().reset(Instant::now() + took);
                            resting = true;
                        }
                    }
                    tokio::task::yield_now().await;
                }
                b = next_batch(&mut rx, &mut batch, MAX_BATCH) => match b {
                    Batch::Frames => self.take(&mut batch),
                    Batch::Lagged(missed) => self.lagged(missed),
                    Batch::Closed => return,
                },
                // Finishes the writes that waited; never completes.
                () = poll_fn(|cx| flush_waiting(conns, load, cx)) => {}
            }
        }
    }

    /// Takes the frames waiting in the receiver without waiting for more.
    fn take_waiting(
        &mut self,
        rx: &mut broadcast::Receiver<Arc<Frame>>,
        batch: &mut Vec<Arc<Frame>>,
    ) {
        match take_queued(rx, batch, usize::MAX) {
            Batch::Lagged(missed) => self.lagged(missed),
            Batch::Frames | Batch::Closed => self.take(batch),
        }
    }

    fn lagged(&mut self, missed: u64) {
        tracing::debug!(
            missed,
            "a stream writer fell behind; its clients get snapshots"
        );
        self.resync_all();
    }

    /// Adds frames from the hub to the window, for the pass under way or the next.
    fn take(&mut self, batch: &mut Vec<Arc<Frame>>) {
        for frame in batch.drain(..) {
            // After a resynchronisation the receiver may hand back older frames.
            self.last_seq = self.last_seq.max(frame.seq);
            self.window.push_back(frame);
            self.taken += 1;
        }
    }

    async fn control(&mut self, control: Control) {
        match control {
            Control::Adopt(mut conn) => {
                if self.last_seq > conn.after {
                    // Frames this writer sent before the connection joined.
                    let missed = self.hub.upgrade().and_then(|hub| {
                        hub.frames_between(self.account, conn.after, self.last_seq)
                    });
                    match missed {
                        Some(frames) => {
                            conn.queue.extend(frames);
                            conn.after = self.last_seq;
                        }
                        None => match self.snapshot() {
                            Some(snapshot) => conn.resync(&snapshot),
                            None => {
                                self.load.fetch_sub(1, Ordering::Relaxed);
                                return;
                            }
                        },
                    }
                }
                // Everything taken so far is in what the client already has.
                conn.given = self.taken;
                self.conns.push(*conn);
                let at = self.conns.len() - 1;
                self.with_conn(at, |conn, cx| conn.flush(cx).map(|_| ()))
                    .await;
            }
            Control::Send(id, frame) => {
                // A client that pings without reading gets no pongs piling
                // up: RFC 6455 lets a pong answer only the latest ping.
                let room = self
                    .find(id)
                    .filter(|&at| self.conns[at].queue.len() < self.client_buffer);
                if let Some(at) = room {
                    self.with_conn(at, |conn, cx| conn.send(&frame, cx).map(|_| ()))
                        .await;
                }
            }
            Control::Close(id, frame) => {
                if let Some(at) = self.find(id) {
                    self.conns[at].closing = true;
                    self.with_conn(at, |conn, cx| conn.send(&frame, cx).map(|_| ()))
                        .await;
                }
            }
            Control::Gone(id) => {
                if let Some(at) = self.find(id) {
                    self.remove(at);
                }
            }
        }
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }

    /// Runs `write` on one connection, then drops it if it failed or finished closing.
    async fn with_conn(
        &mut self,
        at: usize,
        write: impl FnOnce(&mut Conn, &mut Context<'_>) -> io::Result<()>,
    ) {
        let mut write = Some(write);
        let conn = &mut self.conns[at];
        let result = poll_fn(|cx| match write.take() {
            Some(write) => Poll::Ready(write(conn, cx)),
            None => Poll::Ready(Ok(())),
        })
        .await;
        let conn = &self.conns[at];
        if result.is_err() || (conn.closing && conn.queue.is_empty()) {
            self.remove(at);
        }
    }

    fn remove(&mut self, at: usize) {
        self.conns.swap_remove(at);
        self.load.fetch_sub(1, Ordering::Relaxed);
    }

    /// Gives the next step of connections of the pass under way (beginning
    /// one if none is) every frame they have not been given; returns how
    /// long the pass took when this step ended it.
    async fn step(&mut self) -> Option<Duration> {
        let (from, began) = *self.pass.get_or_insert_with(|| (0, Instant::now()));
        // Connections that went during the pass may have left it short.
        let from = from.min(self.conns.len());
        let to = (from + STEP).min(self.conns.len());
        let client_buffer = self.client_buffer;
        let (taken, last_seq) = (self.taken, self.last_seq);
        let mut failed = Vec::new();
        let mut lagging = Vec::new();
        let window = &self.window;
        let window_start = self.window_start;
        let joined = &mut self.joined;
        let conns = &mut self.conns[from..to];
        poll_fn(|cx| {
            for (at, conn) in conns.iter_mut().enumerate() {
                if conn.closing {
                    // Nothing more goes to it, and the window need not wait for it.
                    conn.given = taken;
                    continue;
                }
                if conn.given >= taken {
                    continue;
                }
                // A connection is never given less than the window holds.
                let first = usize::try_from(conn.given.saturating_sub(window_start))
                    .unwrap_or(usize::MAX)
                    .min(window.len());
                let frames = window.range(first..);
                let count = frames.len();
                let result = match window.get(first) {
                    Some(oldest) if conn.after < oldest.seq => {
                        let bytes = joined_from(joined, window, window_start, first);
                        conn.send(&bytes, cx)
                    }
                    // Sent a snapshot since some of these frames were taken:
                    // only the newer ones, and any notice.
                    _ => {
                        let mut result = Ok(conn.queue.is_empty());
                        let after = conn.after;
                        for f in frames.filter(|f| f.seq > after || f.notice) {
                            result = conn.send(&f.wire, cx);
                            if result.is_err() {
                                break;
                            }
                        }
                        result
                    }
                };
                conn.given = taken;
                conn.after = conn.after.max(last_seq);
                match result {
                    Ok(true) => conn.backlog = 0,
                    Ok(false) => {
                        conn.backlog += count;
                        if conn.backlog > client_buffer {
                            lagging.push(from + at);
                        }
                    }
                    Err(_) => failed.push(from + at),
                }
            }
            Poll::Ready(())
        })
        .await;
        let snapshot = if lagging.is_empty() {
            None
        } else {
            tracing::debug!(
                clients = lagging.len(),
                "slow stream clients re-sent a snapshot"
            );
            self.snapshot()
        };
        if let Some(snapshot) = &snapshot {
            for &at in &lagging {
                self.conns[at].resync(snapshot);
            }
            self.count_resyncs(lagging.len());
        }
        // Highest index first, so swap_remove moves only kept connections
        // (one moved from beyond the step waits for the next pass).
        for &at in failed.iter().rev() {
            self.remove(at);
        }
        if to < self.conns.len() {
            self.pass = Some((to, began));
            return None;
        }
        self.pass = None;
        self.end_pass();
        Some(began.elapsed())
    }

    /// Drops from the window the frames every connection has been given.
    fn end_pass(&mut self) {
        let everyone_has = self
            .conns
            .iter()
            .map(|c| c.given)
            .min()
            .unwrap_or(self.taken)
            .max(self.window_start);
        while self.window_start < everyone_has && self.window.pop_front().is_some() {
            self.window_start += 1;
        }
        self.everyone_has = everyone_has;
        self.joined = None;
    }

    fn resync_all(&mut self) {
        // The frames the receiver skipped are gone: every client starts
        // again from a snapshot, and the window from the next frame.
        self.window_start = self.taken;
        self.window.clear();
        self.everyone_has = self.taken;
        self.pass = None;
        self.joined = None;
        if let Some(snapshot) = self.snapshot() {
            self.last_seq = snapshot.1;
            for conn in &mut self.conns {
                conn.resync(&snapshot);
                conn.given = self.taken;
            }
            self.count_resyncs(self.conns.len());
        }
    }

    fn count_resyncs(&self, clients: usize) {
        if let Some(hub) = self.hub.upgrade() {
            hub.resynced(clients);
        }
    }

    /// The account's snapshot, framed, and the sequence number it is at.
    fn snapshot(&self) -> Option<(Bytes, u64)> {
        Some(self.hub.upgrade()?.framed_snapshot(self.account))
    }
}

/// The window's frames from `first` on as one write, framed once for all
/// the connections that need just those.
fn joined_from(
    joined: &mut Option<(u64, u64, Bytes)>,
    window: &VecDeque<Arc<Frame>>,
    window_start: u64,
    first: usize,
) -> Bytes {
    let (from, to) = (
        window_start + first as u64,
        window_start + window.len() as u64,
    );
    if let Some((f, t, bytes)) = joined {
        if (*f, *t) == (from, to) {
            return bytes.clone();
        }
    }
    let bytes = if first + 1 == window.len() {
        window[first].wire.clone()
    } else {
        let frames = window.range(first..);
        let mut all = Vec::with_capacity(frames.clone().map(|f| f.wire.len()).sum());
        for f in frames {
            all.extend_from_slice(&f.wire);
        }
        Bytes::from(all)
    };
    *joined = Some((from, to, bytes.clone()));
    bytes
}

/// Writes what waits on each connection that has anything waiting; drops
/// those whose socket failed or that finished closing. Always pending: the
/// sockets still blocked hold the writer's waker.
fn flush_waiting(conns: &mut Vec<Conn>, load: &AtomicUsize, cx: &mut Context<'_>) -> Poll<()> {
    let mut at = 0;
    while at < conns.len() {
        let conn = &mut conns[at];
        let done = if conn.queue.is_empty() {
            Ok(true)
        } else {
            conn.flush(cx)
        };
        let drop_it = match done {
            Ok(drained) => drained && conn.closing,
            Err(_) => true,
        };
        if drop_it {
            conns.swap_remove(at);
            load.fetch_sub(1, Ordering::Relaxed);
        } else {
            at += 1;
        }
    }
    Poll::Pending
}
