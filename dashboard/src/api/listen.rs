//! Silent listening: a supervisor's browser holds one WebRTC leg and points
//! it at a live call of their own account, hearing both sides of it.
//!
//! `POST /api/listen` takes the browser's offer and makes the leg (a new
//! offer replaces the old leg); `POST /api/listen/{call_ref}` sends the leg
//! the mix of that call; `DELETE /api/listen` hangs the leg up. The gateway
//! drops whatever the leg sends, so the supervisor is never heard. Listening
//! watches staff and customers alike, so every start is audited.
//!
//! With several nodes, the call may be held by another node's gateway: then
//! `POST /api/listen/{call_ref}` answers 421 and the browser sends a new
//! offer to `POST /api/listen/{call_ref}/leg`, which this node passes over
//! NATS to the node holding the call ([`crate::peers`]). That node makes the
//! leg and points it at the call; the audio flows between it and the
//! browser directly, as an agent's does (decision 0009).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use crm::model::AccountId;
use crm::model::UserId;
use serde::{Deserialize, Serialize};
use sip_gateway::gateway::{CallEvent, CallEventKind, CallRef, GatewayError};
use tokio::sync::broadcast;

use crate::auth::Manager;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

/// The largest SDP offer accepted; a browser's audio offer is a few KiB.
const MAX_OFFER_BYTES: usize = 64 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/listen", post(attach).delete(stop))
        .route("/api/listen/{call_ref}", post(listen))
        .route("/api/listen/{call_ref}/leg", post(listen_with_leg))
}

/// The supervisors' listening legs, by user; one per supervisor.
#[derive(Debug, Default)]
pub struct Listeners {
    legs: Mutex<HashMap<UserId, CallRef>>,
    /// The node holding the supervisor's leg when another node made it.
    elsewhere: Mutex<HashMap<UserId, String>>,
}

impl Listeners {
    /// Records the supervisor's listening leg and returns the one it replaces.
    pub fn set(&self, user: UserId, leg: CallRef) -> Option<CallRef> {
        self.lock().insert(user, leg)
    }

    /// Returns the supervisor's listening leg.
    pub fn get(&self, user: UserId) -> Option<CallRef> {
        self.lock().get(&user).copied()
    }

    /// Forgets the supervisor's listening leg and returns it.
    pub fn remove(&self, user: UserId) -> Option<CallRef> {
        self.lock().remove(&user)
    }

    /// Forgets `leg` if it is still the supervisor's listening leg.
    fn forget(&self, user: UserId, leg: CallRef) {
        let mut legs = self.lock();
        if legs.get(&user) == Some(&leg) {
            legs.remove(&user);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, CallRef>> {
        // The map stays consistent even if a holder panicked: each change is one call.
        self.legs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that another node holds the supervisor's leg; returns the
    /// node that held it before, if any.
    fn set_elsewhere(&self, user: UserId, node: Option<String>) -> Option<String> {
        let mut elsewhere = self.elsewhere.lock().unwrap_or_else(|p| p.into_inner());
        match node {
            Some(node) => elsewhere.insert(user, node),
            None => elsewhere.remove(&user),
        }
    }
}

/// An SDP offer from the browser, or the gateway's answer to it.
#[derive(Debug, Serialize, Deserialize)]
struct Sdp {
    sdp: String,
}

async fn attach(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(offer): ApiJson<Sdp>,
) -> Result<Json<Sdp>, ApiError> {
    if offer.sdp.len() > MAX_OFFER_BYTES {
        return Err(ApiError::BadRequest("the offer is too large".into()));
    }
    let (_, answer) = attach_here(&state, me.user.id, &offer.sdp).await?;
    leave_elsewhere(&state, me.user.id).await;
    Ok(Json(Sdp { sdp: answer }))
}

/// Makes the supervisor's listening leg on this node's gateway from the
/// browser's offer, replacing the one it had here; returns the leg and the
/// answer.
pub(crate) async fn attach_here(
    state: &AppState,
    user: UserId,
    offer: &str,
) -> Result<(CallRef, String), ApiError> {
    let floor = state.floor.clone().ok_or(ApiError::Unavailable)?;
    // Subscribed first, so the leg's end cannot slip past unseen.
    let events = floor.gateway().events();
    let (leg, answer) = match floor.gateway().attach_agent(offer).await {
        Ok(attached) => attached,
        Err(GatewayError::WebRtc(e)) => {
            return Err(ApiError::BadRequest(format!(
                "audio could not be set up: {e}"
            )))
        }
        Err(e) => return Err(ApiError::Internal(format!("attaching a listener: {e}"))),
    };
    if let Some(old) = state.listeners.set(user, leg) {
        // The old leg may have closed already; either way it is gone now.
        let _ = floor.gateway().hangup(old).await;
    }
    tokio::spawn(forget_when_closed(
        state.listeners.clone(),
        user,
        leg,
        events,
    ));
    tracing::debug!(%user, %leg, "listening leg attached");
    Ok((leg, answer))
}

/// Points the supervisor's leg on this node at a live call of the account
/// this node's gateway holds.
pub(crate) async fn point_here(
    state: &AppState,
    account: AccountId,
    user: UserId,
    call: CallRef,
) -> Result<(), ApiError> {
    let attempt = state.store.attempt_by_ref(account, call).await?;
    if attempt.ended_at.is_some() {
        return Err(ApiError::NotFound);
    }
    let floor = state.floor.clone().ok_or(ApiError::Unavailable)?;
    let leg = state.listeners.get(user).ok_or_else(|| {
        ApiError::Conflict("connect the listening audio first (POST /api/listen)".into())
    })?;
    match floor.gateway().listen(call, leg).await {
        Ok(()) => Ok(()),
        // The leg is known to be up, so it is the call that is gone: ended
        // since the attempt was read, or held by another node.
        Err(GatewayError::NoSuchCall) => Err(ApiError::NotFound),
        Err(e) => Err(ApiError::Internal(format!("listening to a call: {e}"))),
    }
}

/// Hangs up the supervisor's leg on this node, if any.
pub(crate) async fn hang_up_here(state: &AppState, user: UserId) {
    if let Some(leg) = state.listeners.remove(user) {
        if let Some(floor) = &state.floor {
            let _ = floor.gateway().hangup(leg).await;
        }
    }
}

/// Returns the other node holding a live call of the account, if another
/// does and the nodes can reach each other.
async fn held_elsewhere(
    state: &AppState,
    account: AccountId,
    call: CallRef,
) -> Result<Option<String>, ApiError> {
    if state.peers.is_none() {
        return Ok(None);
    }
    let node = state.store.open_call_node(account, call).await?;
    Ok(node.filter(|n| *n != state.config.node))
}

async fn listen(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(call_ref): Path<String>,
) -> Result<StatusCode, ApiError> {
    // A reference that cannot be a call is as unknown as a foreign one.
    let call = CallRef::from_str(&call_ref).map_err(|_| ApiError::NotFound)?;
    if let Some(node) = held_elsewhere(&state, me.account(), call).await? {
        return Err(ApiError::Misdirected(format!(
            "the call is held by node {node}: send a new offer to /api/listen/{call}/leg"
        )));
    }
    point_here(&state, me.account(), me.user.id, call).await?;
    if let Err(e) = audit_listen(&state, &me, call, None).await {
        // Nobody listens without a trace in the audit log.
        hang_up_here(&state, me.user.id).await;
        return Err(e);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a new listening leg from the browser's offer wherever the call is
/// held (this node, or the one that placed it), points it at the call, and
/// returns the answer. The supervisor's previous leg is hung up.
async fn listen_with_leg(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(call_ref): Path<String>,
    ApiJson(offer): ApiJson<Sdp>,
) -> Result<Json<Sdp>, ApiError> {
    if offer.sdp.len() > MAX_OFFER_BYTES {
        return Err(ApiError::BadRequest("the offer is too large".into()));
    }
    let call = CallRef::from_str(&call_ref).map_err(|_| ApiError::NotFound)?;
    // No leg is made for a call the caller may not hear, wherever it is.
    if state
        .store
        .attempt_by_ref(me.account(), call)
        .await?
        .ended_at
        .is_some()
    {
        return Err(ApiError::NotFound);
    }
    let answer = match held_elsewhere(&state, me.account(), call).await? {
        None => {
            leave_elsewhere(&state, me.user.id).await;
            let (_, answer) = attach_here(&state, me.user.id, &offer.sdp).await?;
            if let Err(e) = point_here(&state, me.account(), me.user.id, call).await {
                hang_up_here(&state, me.user.id).await;
                return Err(e);
            }
            if let Err(e) = audit_listen(&state, &me, call, None).await {
                hang_up_here(&state, me.user.id).await;
                return Err(e);
            }
            answer
        }
        Some(node) => {
            let peers = state.peers.clone().ok_or(ApiError::Unavailable)?;
            hang_up_here(&state, me.user.id).await;
            if let Some(before) = state.listeners.set_elsewhere(me.user.id, None) {
                if before != node {
                    peers.unlisten(&before, me.user.id).await;
                }
            }
            let answer = peers
                .listen(&node, me.account(), me.user.id, call, offer.sdp)
                .await?;
            state
                .listeners
                .set_elsewhere(me.user.id, Some(node.clone()));
            if let Err(e) = audit_listen(&state, &me, call, Some(&node)).await {
                leave_elsewhere(&state, me.user.id).await;
                return Err(e);
            }
            answer
        }
    };
    Ok(Json(Sdp { sdp: answer }))
}

async fn audit_listen(
    state: &AppState,
    me: &crate::auth::CurrentUser,
    call: CallRef,
    node: Option<&str>,
) -> Result<(), ApiError> {
    state
        .store
        .audit(
            &me.actor(),
            "call.listen",
            Some(&format!("call:{call}")),
            state.clock.now(),
        )
        .await?;
    match node {
        None => tracing::info!(user = %me.user.id, %call, "supervisor listening"),
        Some(node) => {
            tracing::info!(user = %me.user.id, %call, node, "supervisor listening on another node")
        }
    }
    Ok(())
}

/// Hangs up the supervisor's leg another node holds, if any.
async fn leave_elsewhere(state: &AppState, user: UserId) {
    if let Some(node) = state.listeners.set_elsewhere(user, None) {
        if let Some(peers) = &state.peers {
            peers.unlisten(&node, user).await;
        }
    }
}

async fn stop(State(state): State<AppState>, Manager(me): Manager) -> Result<StatusCode, ApiError> {
    hang_up_here(&state, me.user.id).await;
    leave_elsewhere(&state, me.user.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets a supervisor's listening leg once the gateway reports it ended
/// (hung up, or closed by the browser), so the next listen asks for a new one.
async fn forget_when_closed(
    listeners: Arc<Listeners>,
    user: UserId,
    leg: CallRef,
    mut events: broadcast::Receiver<CallEvent>,
) {
    loop {
        match events.recv().await {
            Ok(e) if e.call_ref == leg && matches!(e.kind, CallEventKind::Ended { .. }) => break,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    listeners.forget(user, leg);
}
