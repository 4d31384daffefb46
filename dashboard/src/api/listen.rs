//! Silent listening: a supervisor's browser holds one WebRTC leg and points
//! it at a live call of their own account, hearing both sides of it.
//!
//! `POST /api/listen` takes the browser's offer and makes the leg (a new
//! offer replaces the old leg); `POST /api/listen/{call_ref}` sends the leg
//! the mix of that call; `DELETE /api/listen` hangs the leg up. The gateway
//! drops whatever the leg sends, so the supervisor is never heard. Listening
//! watches staff and customers alike, so every start is audited.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
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
}

/// The supervisors' listening legs, by user; one per supervisor.
#[derive(Debug, Default)]
pub struct Listeners(Mutex<HashMap<UserId, CallRef>>);

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
        self.0.lock().unwrap_or_else(|p| p.into_inner())
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
    let floor = state.floor.clone().ok_or(ApiError::Unavailable)?;
    // Subscribed first, so the leg's end cannot slip past unseen.
    let events = floor.gateway().events();
    let (leg, answer) = match floor.gateway().attach_agent(&offer.sdp).await {
        Ok(attached) => attached,
        Err(GatewayError::WebRtc(e)) => {
            return Err(ApiError::BadRequest(format!(
                "audio could not be set up: {e}"
            )))
        }
        Err(e) => return Err(ApiError::Internal(format!("attaching a listener: {e}"))),
    };
    if let Some(old) = state.listeners.set(me.user.id, leg) {
        // The old leg may have closed already; either way it is gone now.
        let _ = floor.gateway().hangup(old).await;
    }
    tokio::spawn(forget_when_closed(
        state.listeners.clone(),
        me.user.id,
        leg,
        events,
    ));
    tracing::debug!(user = %me.user.id, %leg, "listening leg attached");
    Ok(Json(Sdp { sdp: answer }))
}

async fn listen(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(call_ref): Path<String>,
) -> Result<StatusCode, ApiError> {
    // A reference that cannot be a call is as unknown as a foreign one.
    let call = CallRef::from_str(&call_ref).map_err(|_| ApiError::NotFound)?;
    let attempt = state.store.attempt_by_ref(me.account(), call).await?;
    if attempt.ended_at.is_some() {
        return Err(ApiError::NotFound);
    }
    let floor = state.floor.clone().ok_or(ApiError::Unavailable)?;
    let leg = state.listeners.get(me.user.id).ok_or_else(|| {
        ApiError::Conflict("connect the listening audio first (POST /api/listen)".into())
    })?;
    match floor.gateway().listen(call, leg).await {
        Ok(()) => {}
        // The leg is known to be up, so it is the call that is gone: ended
        // since the attempt was read, or placed by another node.
        Err(GatewayError::NoSuchCall) => return Err(ApiError::NotFound),
        Err(e) => return Err(ApiError::Internal(format!("listening to a call: {e}"))),
    }
    let audited = state
        .store
        .audit(
            &me.actor(),
            "call.listen",
            Some(&format!("call:{call}")),
            state.clock.now(),
        )
        .await;
    if let Err(e) = audited {
        // Nobody listens without a trace in the audit log.
        state.listeners.forget(me.user.id, leg);
        let _ = floor.gateway().hangup(leg).await;
        return Err(e.into());
    }
    tracing::info!(user = %me.user.id, %call, "supervisor listening");
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(State(state): State<AppState>, Manager(me): Manager) -> Result<StatusCode, ApiError> {
    if let Some(leg) = state.listeners.remove(me.user.id) {
        if let Some(floor) = &state.floor {
            let _ = floor.gateway().hangup(leg).await;
        }
    }
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
