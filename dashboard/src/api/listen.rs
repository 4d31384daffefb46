//! Listening and coaching: a supervisor's browser holds one WebRTC leg and
//! points it at a live call of their own account, hearing both sides of it,
//! and may speak into it.
//!
//! `POST /api/listen` takes the browser's offer and makes the leg (a new
//! offer replaces the old leg); `POST /api/listen/{call_ref}` puts the leg on
//! that call in a mode (the body `{"mode": ...}`, listen when there is none):
//! `listen` (nobody hears the supervisor), `whisper` (the agent does, the
//! customer does not), `barge` (both do) or `takeover` (the supervisor
//! replaces the agent, whose desk goes to wrap-up: [`crate::desk::Desks::take_over`]).
//! Every mode works on the same leg, so changing mode needs no new offer.
//! `DELETE /api/listen` hangs the leg up, and a call the supervisor took
//! over with it. Listening watches staff and customers alike, so every
//! start and every change of mode is audited (`call.listen`, `call.whisper`,
//! `call.barge`, `call.takeover`).
//!
//! With several nodes, the call may be held by another node's gateway: then
//! `POST /api/listen/{call_ref}` answers 421 and the browser sends a new
//! offer to `POST /api/listen/{call_ref}/leg`, which this node passes over
//! NATS to the node holding the call ([`crate::peers`]). That node makes the
//! leg and points it at the call; the audio flows between it and the
//! browser directly, as an agent's does (decision 0009). A change of mode
//! for a call held there goes the same way to the leg already there.

use schemars::JsonSchema;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use crm::model::AccountId;
use crm::model::UserId;
use serde::{Deserialize, Serialize};
use sip_gateway::gateway::{CallEvent, CallEventKind, CallRef, CoachMode, GatewayError};
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

/// What a supervisor's leg does on the call it is pointed at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ListenMode")]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Hear both sides; nobody hears the supervisor.
    #[default]
    Listen,
    /// The agent hears the supervisor; the customer does not.
    Whisper,
    /// The agent and the customer hear the supervisor.
    Barge,
    /// The supervisor replaces the agent.
    Takeover,
}

impl Mode {
    fn gateway(self) -> CoachMode {
        match self {
            Mode::Listen => CoachMode::Listen,
            Mode::Whisper => CoachMode::Whisper,
            Mode::Barge => CoachMode::Barge,
            Mode::Takeover => CoachMode::TakeOver,
        }
    }

    /// The action the audit log records.
    fn audited_as(self) -> &'static str {
        match self {
            Mode::Listen => "call.listen",
            Mode::Whisper => "call.whisper",
            Mode::Barge => "call.barge",
            Mode::Takeover => "call.takeover",
        }
    }
}

/// The body of `POST /api/listen/{call_ref}`; none means listen.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(rename = "ListenModeBody")]
#[serde(deny_unknown_fields)]
pub(crate) struct ModeBody {
    #[serde(default)]
    mode: Mode,
}

/// Reads the mode a request asks for: listen for an empty body.
fn mode_of(body: &[u8]) -> Result<Mode, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Mode::Listen);
    }
    // Objects only: serde would take `[]` as the struct's fields in order.
    serde_json::from_slice::<serde_json::Value>(body)
        .and_then(|v| match v {
            serde_json::Value::Object(_) => serde_json::from_value::<ModeBody>(v),
            _ => Err(serde::de::Error::custom("not an object")),
        })
        .map(|b| b.mode)
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be {{\"mode\": \"listen\" | \"whisper\" | \"barge\" | \"takeover\"}} \
                 or empty: {e}"
            ))
        })
}

/// The supervisors' listening legs, by user; one per supervisor.
#[derive(Debug, Default)]
pub struct Listeners {
    legs: Mutex<HashMap<UserId, CallRef>>,
    /// The call each supervisor's leg here is on, and how.
    modes: Mutex<HashMap<UserId, (CallRef, Mode)>>,
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

    /// Forgets `leg` if it is still the supervisor's listening leg; returns
    /// the call it had taken over, if any.
    fn forget(&self, user: UserId, leg: CallRef) -> Option<CallRef> {
        let mut legs = self.lock();
        if legs.get(&user) == Some(&leg) {
            legs.remove(&user);
            return self.take_mode(user).and_then(taken_over);
        }
        None
    }

    /// Returns the call the supervisor's leg here is on, and how.
    fn mode(&self, user: UserId) -> Option<(CallRef, Mode)> {
        self.modes_lock().get(&user).copied()
    }

    fn set_mode(&self, user: UserId, call: CallRef, mode: Mode) {
        self.modes_lock().insert(user, (call, mode));
    }

    fn take_mode(&self, user: UserId) -> Option<(CallRef, Mode)> {
        self.modes_lock().remove(&user)
    }

    fn modes_lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (CallRef, Mode)>> {
        self.modes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, CallRef>> {
        // The map stays consistent even if a holder panicked: each change is one call.
        self.legs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the other node holding the supervisor's leg, if any.
    fn elsewhere(&self, user: UserId) -> Option<String> {
        let elsewhere = self.elsewhere.lock().unwrap_or_else(|p| p.into_inner());
        elsewhere.get(&user).cloned()
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
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Sdp {
    sdp: String,
}

/// An offer for a leg made where the call is, and the mode to put it in.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "ListenLegOffer")]
pub(crate) struct LegOffer {
    sdp: String,
    #[serde(default)]
    mode: Mode,
}

/// The call a supervisor took over, from their leg's mode.
fn taken_over((call, mode): (CallRef, Mode)) -> Option<CallRef> {
    (mode == Mode::Takeover).then_some(call)
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
    // The new leg is on no call yet; a call the old one took over ends with it.
    let taken = state.listeners.take_mode(user).and_then(taken_over);
    if let Some(old) = state.listeners.set(user, leg) {
        // The old leg may have closed already; either way it is gone now.
        let _ = floor.gateway().hangup(old).await;
    }
    if let Some(call) = taken {
        let _ = floor.gateway().hangup(call).await;
    }
    tokio::spawn(forget_when_closed(
        state.listeners.clone(),
        floor.gateway().clone(),
        user,
        leg,
        events,
    ));
    tracing::debug!(%user, %leg, "listening leg attached");
    Ok((leg, answer))
}

/// Points the supervisor's leg on this node at a live call of the account
/// this node's gateway holds, in `mode`.
pub(crate) async fn point_here(
    state: &AppState,
    account: AccountId,
    user: UserId,
    call: CallRef,
    mode: Mode,
) -> Result<(), ApiError> {
    let attempt = state.store.attempt_by_ref(account, call).await?;
    if attempt.ended_at.is_some() {
        return Err(ApiError::NotFound);
    }
    let floor = state.floor.clone().ok_or(ApiError::Unavailable)?;
    let leg = state.listeners.get(user).ok_or_else(|| {
        ApiError::Conflict("connect the listening audio first (POST /api/listen)".into())
    })?;
    let before = state.listeners.mode(user);
    match before.and_then(taken_over) {
        Some(taken) if taken != call => {
            return Err(ApiError::Conflict(
                "you have taken another call over: hang it up first (DELETE /api/listen)".into(),
            ))
        }
        Some(_) if mode != Mode::Takeover => {
            return Err(ApiError::Conflict(
                "you have taken this call over: its agent has left it".into(),
            ))
        }
        Some(_) => return Ok(()),
        None => {}
    }
    if mode == Mode::Takeover {
        let Some(agent) = state.desks.agent_in(call) else {
            return Err(ApiError::Conflict(
                "only a call an agent is talking on can be taken over".into(),
            ));
        };
        // A desk phone rung for this one call is no leg the agent keeps: hung
        // up after the takeover, it would end the call with it.
        if state.legs.get(agent).is_none() {
            return Err(ApiError::Conflict(
                "the agent takes this call on a desk phone rung for it: it cannot be taken over"
                    .into(),
            ));
        }
    }
    match floor.gateway().coach(call, leg, mode.gateway()).await {
        Ok(()) => {}
        // The leg is known to be up, so it is the call that is gone: ended
        // since the attempt was read, or held by another node.
        Err(GatewayError::NoSuchCall) => return Err(ApiError::NotFound),
        Err(e) => return Err(ApiError::Internal(format!("coaching a call: {e}"))),
    }
    state.listeners.set_mode(user, call, mode);
    if mode == Mode::Takeover {
        if let Some(agent) = state.desks.take_over(call) {
            tracing::info!(%user, %call, %agent, "supervisor took the call over from its agent");
        }
    }
    Ok(())
}

/// Hangs up the supervisor's leg on this node, if any, and a call it took over.
pub(crate) async fn hang_up_here(state: &AppState, user: UserId) {
    let taken = state.listeners.take_mode(user).and_then(taken_over);
    if let Some(leg) = state.listeners.remove(user) {
        if let Some(floor) = &state.floor {
            let _ = floor.gateway().hangup(leg).await;
            if let Some(call) = taken {
                let _ = floor.gateway().hangup(call).await;
            }
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
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let mode = mode_of(&body)?;
    // A reference that cannot be a call is as unknown as a foreign one.
    let call = CallRef::from_str(&call_ref).map_err(|_| ApiError::NotFound)?;
    if let Some(node) = held_elsewhere(&state, me.account(), call).await? {
        let peers = state.peers.clone().ok_or(ApiError::Unavailable)?;
        if state.listeners.elsewhere(me.user.id).as_deref() != Some(node.as_str()) {
            return Err(ApiError::Misdirected(format!(
                "the call is held by node {node}: send a new offer to /api/listen/{call}/leg"
            )));
        }
        // The supervisor's leg is there already: only its mode changes.
        peers
            .coach(&node, me.account(), me.user.id, call, mode)
            .await?;
        if let Err(e) = audit_listen(&state, &me, call, mode, Some(&node)).await {
            leave_elsewhere(&state, me.user.id).await;
            return Err(e);
        }
        return Ok(StatusCode::NO_CONTENT);
    }
    point_here(&state, me.account(), me.user.id, call, mode).await?;
    if let Err(e) = audit_listen(&state, &me, call, mode, None).await {
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
    ApiJson(offer): ApiJson<LegOffer>,
) -> Result<Json<Sdp>, ApiError> {
    if offer.sdp.len() > MAX_OFFER_BYTES {
        return Err(ApiError::BadRequest("the offer is too large".into()));
    }
    let mode = offer.mode;
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
            if let Err(e) = point_here(&state, me.account(), me.user.id, call, mode).await {
                hang_up_here(&state, me.user.id).await;
                return Err(e);
            }
            if let Err(e) = audit_listen(&state, &me, call, mode, None).await {
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
                .listen(&node, me.account(), me.user.id, call, offer.sdp, mode)
                .await?;
            state
                .listeners
                .set_elsewhere(me.user.id, Some(node.clone()));
            if let Err(e) = audit_listen(&state, &me, call, mode, Some(&node)).await {
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
    mode: Mode,
    node: Option<&str>,
) -> Result<(), ApiError> {
    state
        .store
        .audit(
            &me.actor(),
            mode.audited_as(),
            Some(&format!("call:{call}")),
            state.clock.now(),
        )
        .await?;
    match node {
        None => tracing::info!(user = %me.user.id, %call, ?mode, "supervisor on a call"),
        Some(node) => {
            tracing::info!(user = %me.user.id, %call, ?mode, node, "supervisor on a call on another node")
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
/// (hung up, or closed by the browser), so the next listen asks for a new one;
/// a call the leg had taken over is hung up with it.
async fn forget_when_closed(
    listeners: Arc<Listeners>,
    gateway: sip_gateway::gateway::Gateway,
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
    if let Some(call) = listeners.forget(user, leg) {
        tracing::info!(%user, %call, "the supervisor who took the call over has gone: hanging up");
        let _ = gateway.hangup(call).await;
    }
}
