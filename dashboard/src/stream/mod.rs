//! The supervisors' live stream: `GET /api/stream` upgrades to a websocket
//! that first sends a snapshot (or, with `?since=SEQ`, the events missed
//! since SEQ), then every event of the caller's account as it happens.

pub mod hub;
pub mod wallboard;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crm::model::{AccountId, Role};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

/// Returns the stream's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/stream", get(stream))
}

/// Bytes a stream's reader reserves. Supervisors send little more than a
/// close, and tungstenite zeroes the whole buffer before every read, which
/// happens each time a frame goes out: the 128 KiB default cost that memset
/// per frame per client, and 128 KiB of resident memory per client.
const READ_BUFFER: usize = 4096;

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

async fn serve(mut socket: WebSocket, state: AppState, account: AccountId, since: Option<u64>) {
    let mut attachment = state.hub.attach(account, since);
    loop {
        for text in attachment.initial.drain(..) {
            if socket.send(Message::Text(text)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                frame = attachment.rx.recv() => match frame {
                    Ok(frame) => {
                        if socket.send(Message::Text(frame.text.clone())).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "slow stream client re-sent a snapshot");
                        break;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
        // Fell behind: start again from a fresh snapshot.
        attachment = state.hub.attach(account, None);
    }
}
