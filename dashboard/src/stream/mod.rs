//! The supervisors' live stream: `GET /api/stream` upgrades to a websocket
//! that first sends a snapshot (or, with `?since=SEQ`, the events missed
//! since SEQ), then every event of the caller's account as it happens.
//!
//! Each event is still its own text frame, but a client's writer task sends
//! every frame waiting for it with one flush, so a burst of events, or a
//! client the scheduler reached late, costs one wake-up and one write, not
//! one each. The connection's reader is a separate task that wakes only when
//! the browser sends something.

pub mod hub;
pub mod wallboard;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crm::model::{AccountId, Role};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;

use self::hub::Batch;
use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

/// Returns the stream's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/stream", get(stream))
}

/// Bytes a stream's reader reserves. Supervisors send little more than a
/// close, and tungstenite zeroes the whole buffer before every read: the
/// 128 KiB default would be 128 KiB of resident memory per client.
const READ_BUFFER: usize = 4096;

/// Frames one write carries at most. A client that was away briefly gets
/// its backlog in a few writes; the bound keeps one write's buffer small.
const MAX_BATCH: usize = 256;

#[derive(Deserialize)]
struct StreamQuery {
    since: Option<u64>,
}

async fn stream(
    State(state): State<AppState>,
    me: CurrentUser,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    same_origin(&headers)?;
    let account = me.account();
    tracing::debug!(user_id = %me.user.id, since = ?q.since, "stream attached");
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(socket, state, account, q.since)))
}

/// Refuses a websocket opened by another site's page (the browser sends
/// the cookie with the upgrade, so Origin is the check that matters).
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if crate::auth::origin_is_own(headers) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("cross-origin websocket refused".into()))
    }
}

async fn serve(socket: WebSocket, state: AppState, account: AccountId, since: Option<u64>) {
    let (sink, mut stream) = socket.split();
    // The writer runs on its own and does nothing but wait for frames and
    // write them. Reading in the same `select!` polled the socket for input
    // on every event, about a tenth of the stream's CPU at 5,000 clients
    // (docs/benchmarks.md); here the reader wakes only when the browser sends
    // something (a close, a ping) or the writer ends.
    let mut writer = Writer(tokio::spawn(write_frames(sink, state, account, since)));
    loop {
        tokio::select! {
            // The writer failed or the hub closed: dropping both halves closes the socket.
            _ = &mut writer.0 => return,
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The writer's task, stopped when the connection's reader ends for any
/// reason, including the server cancelling it.
struct Writer(tokio::task::JoinHandle<()>);

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the snapshot or the missed events, then every live frame, until a
/// write fails or the hub closes.
async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    state: AppState,
    account: AccountId,
    since: Option<u64>,
) {
    let mut attachment = state.hub.attach(account, since);
    // Grows to the largest batch this client needed; most stay at one or two.
    let mut batch = Vec::new();
    loop {
        let initial = attachment.initial.drain(..).map(Message::Text);
        if write_all(&mut sink, initial).await.is_err() {
            return;
        }
        loop {
            match attachment.next_batch(&mut batch, MAX_BATCH).await {
                Batch::Frames => {
                    let frames = batch.drain(..).map(|f| Message::Text(f.text.clone()));
                    if write_all(&mut sink, frames).await.is_err() {
                        return;
                    }
                }
                Batch::Lagged(missed) => {
                    tracing::debug!(missed, "slow stream client re-sent a snapshot");
                    break;
                }
                Batch::Closed => return,
            }
        }
        // Fell behind: start again from a fresh snapshot.
        attachment = state.hub.attach(account, None);
    }
}

/// Queues every frame, then flushes once: several frames, one write.
async fn write_all(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: impl Iterator<Item = Message>,
) -> Result<(), axum::Error> {
    for frame in frames {
        // `feed` writes to the socket only when tungstenite's buffer fills.
        sink.feed(frame).await?;
    }
    sink.flush().await
}
