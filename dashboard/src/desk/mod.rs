//! The agent's desk: `GET /api/agent/ws`, the websocket an agent's browser
//! holds for the whole shift. Protocol version 1 is documented in
//! `docs/api.md`: the agent goes Ready or Paused, receives the contact card
//! and the campaign's call script when a call is connected, and saves a
//! disposition after it.
//!
//! The desk's states and transitions are the sans-IO core
//! [`dialer_core::desk`]; this module is its shell.
//!
//! - [`protocol`] holds the message types.
//! - [`session`] is one connected agent's loop: it feeds the desk and
//!   carries out what the desk asks.
//! - [`campaign`] joins the agent to a campaign and passes preview choices.
//! - [`controls`] acts on the call in progress: hold, digits, recording,
//!   and numbers dialled by hand.
//! - [`replies`] renders the desk's replies as the page's messages, with
//!   the cards and call scripts they carry.
//! - [`card_news`] sends the card anew when its contact is edited.
//! - [`wrapup`] writes a disposition to the CRM and acts on it.

mod campaign;
mod card_news;
mod controls;
pub mod protocol;
mod replies;
mod session;
pub mod wrapup;

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crm::model::{Role, UserId};
use dialer_core::desk::Phase;
use sip_gateway::gateway::CallRef;

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

/// Returns the desk's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/agent/ws", get(upgrade))
}

/// The agents' media legs, by user, as their browsers (or desk phones)
/// connect them.
#[derive(Debug, Default)]
pub struct Legs(Mutex<HashMap<UserId, CallRef>>);

impl Legs {
    /// Records the agent's current media leg, replacing an older one.
    pub fn set(&self, user: UserId, leg: CallRef) -> Option<CallRef> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user, leg)
    }

    /// Returns the agent's media leg.
    pub fn get(&self, user: UserId) -> Option<CallRef> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .copied()
    }

    /// Forgets the agent's media leg.
    pub fn remove(&self, user: UserId) -> Option<CallRef> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user)
    }
}

/// What the server remembers of each agent's desk between connections, so
/// a reload finds the call in progress or the wrap-up still due.
#[derive(Debug, Default)]
pub struct Desks(Mutex<HashMap<UserId, session::AgentDesk>>);

impl Desks {
    pub(crate) fn load(&self, user: UserId) -> Option<session::AgentDesk> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .cloned()
    }

    pub(crate) fn save(&self, user: UserId, saved: session::AgentDesk) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user, saved);
    }

    /// Returns how many agents are dialling, in a call, or wrapping one up:
    /// the desks a stopping node waits for.
    pub fn busy(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|d| {
                matches!(
                    d.phase(),
                    Phase::Dialling { .. } | Phase::InCall { .. } | Phase::WrapUp { .. }
                )
            })
            .count()
    }
}

async fn upgrade(
    State(state): State<AppState>,
    me: CurrentUser,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    me.require(&[Role::Agent])?;
    crate::stream::same_origin(&headers)?;
    if state.floor.is_none() {
        return Err(ApiError::Unavailable);
    }
    Ok(ws.on_upgrade(move |socket| session::run(socket, state, me.user, me.token_hash)))
}
