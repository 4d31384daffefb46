//! The supervisors' live stream: `GET /api/stream` upgrades to a websocket
//! that first sends a snapshot (or, with `?since=SEQ`, the events missed
//! since SEQ), then every event of the caller's account as it happens.
//! With several nodes the events come from every node through the shared
//! stream ([`shared`]), numbered alike on all of them.
//!
//! The upgrade is done here rather than through a websocket library: the
//! frames every client of an account is sent are the same bytes, framed
//! once by the hub ([`hub`]) and written by a few writer tasks per account
//! ([`shard`]) straight to the upgraded sockets. Each connection keeps a
//! small reader task that answers pings, echoes a close and notices a
//! client that went away ([`frame`]).

pub mod frame;
pub mod hub;
mod shard;
pub mod shared;
pub mod wallboard;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crm::model::{AccountId, Role};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, ReadHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use self::frame::{close_frame, close_frame_saying, server_frame, ClientEvent, ClientFrames, PONG};
use self::shard::{ClientIo, Conn, Control};
use crate::auth::CurrentUser;
use crate::revocation::{SessionHold, CLOSE_SIGNED_OUT, SIGNED_OUT_REASON};
use crate::{ApiError, AppState};

/// Returns the stream's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/stream", get(stream))
}

/// Bytes a connection's reader takes at a time. Supervisors send little
/// more than a close; a control frame is at most 131 bytes.
const READ_BUFFER: usize = 256;

/// How long a resuming client waits for this node to catch up with the
/// number it resumes from (nodes are normally milliseconds apart).
const RESUME_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Deserialize)]
struct StreamQuery {
    since: Option<u64>,
}

async fn stream(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(q): Query<StreamQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    same_origin(req.headers())?;
    let accept = accept_key(req.headers())?;
    let account = me.account();
    tracing::debug!(user_id = %me.user.id, since = ?q.since, "stream attached");
    if let Some(since) = q.since {
        // Resuming from a number another node sent: wait a moment for this
        // node to have read that far, rather than answer with a snapshot.
        state.hub.reach(since, RESUME_WAIT).await;
    }
    // Held from before the upgrade: a session ended meanwhile is not missed.
    let hold = SessionHold::new(&state, me.user.id, me.token_hash.clone());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => serve(TokioIo::new(upgraded), state, account, q.since, hold),
            Err(e) => tracing::debug!(error = %e, "stream upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Checks an upgrade request as RFC 6455 §4.2.1 asks and returns the
/// `Sec-WebSocket-Accept` value for its key.
fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(ApiError::BadRequest(
            "this is a websocket endpoint: send Connection: upgrade and Upgrade: websocket".into(),
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(ApiError::BadRequest(
            "unsupported websocket version: send Sec-WebSocket-Version: 13".into(),
        ));
    }
    // The key is 16 random bytes in base64: 24 characters.
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| k.len() == 24)
        .ok_or_else(|| ApiError::BadRequest("missing or malformed Sec-WebSocket-Key".into()))?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Keeps the hub's picture of this node's trunks, from which every new
/// feed's snapshot starts, until the gateway stops.
pub async fn follow_trunks(
    hub: std::sync::Arc<hub::StreamHub>,
    floor: std::sync::Arc<dialer::floor::Floor>,
    clock: std::sync::Arc<dyn crate::Clock>,
) {
    let gateway = floor.gateway();
    let mut changes = gateway.trunk_events();
    let Ok(trunks) = gateway.trunks().await else {
        return;
    };
    for t in &trunks {
        hub.note_trunk(floor.node(), &t.name, t.up, clock.now());
    }
    loop {
        match changes.recv().await {
            Ok(t) => hub.note_trunk(floor.node(), &t.name, t.up, clock.now()),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Numbers connections within the process, for their writer to find them by.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Hands the connection's writing half to its account's writers and reads
/// the other half until the client closes or goes away, or the session it
/// was opened with ends.
fn serve(io: ClientIo, state: AppState, account: AccountId, since: Option<u64>, hold: SessionHold) {
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let (read, write) = tokio::io::split(io);
    let (alive, writer_gone) = oneshot::channel();
    let control = state.hub.adopt(account, since, |initial| {
        Conn::new(id, Box::new(write), initial.frames, initial.seq, alive)
    });
    match control {
        Some(control) => {
            tokio::spawn(read_client(id, read, control, writer_gone, hold));
        }
        None => tracing::debug!("no stream writer took the connection"),
    }
}

/// Reads what the client sends: pings are answered, a close is echoed, a
/// breach of the protocol is closed with its status; data is dropped. When
/// the login session ends, on any node, the connection is closed with
/// [`CLOSE_SIGNED_OUT`].
async fn read_client(
    id: u64,
    mut read: ReadHalf<ClientIo>,
    control: mpsc::UnboundedSender<Control>,
    mut writer_gone: oneshot::Receiver<()>,
    mut hold: SessionHold,
) {
    let mut frames = ClientFrames::default();
    let mut events = Vec::new();
    let mut buf = [0u8; READ_BUFFER];
    loop {
        let n = tokio::select! {
            // The writer dropped the connection (its socket failed, or the hub closed).
            _ = &mut writer_gone => return,
            () = hold.ended() => {
                tracing::debug!("a stream's session ended; closing it");
                let _ = control.send(Control::Close(
                    id,
                    close_frame_saying(CLOSE_SIGNED_OUT, SIGNED_OUT_REASON),
                ));
                return;
            }
            n = read.read(&mut buf) => n,
        };
        let n = match n {
            Ok(0) | Err(_) => {
                let _ = control.send(Control::Gone(id));
                return;
            }
            Ok(n) => n,
        };
        frames.feed(&buf[..n], &mut events);
        for event in events.drain(..) {
            let message = match event {
                ClientEvent::Ping(payload) => Control::Send(id, server_frame(PONG, &payload)),
                ClientEvent::Close(code) => Control::Close(id, close_frame(code)),
                ClientEvent::Refused(code) => {
                    tracing::debug!(code, "stream client broke the protocol");
                    Control::Close(id, close_frame(Some(code)))
                }
            };
            let last = matches!(message, Control::Close(..));
            if control.send(message).is_err() || last {
                return;
            }
        }
    }
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
