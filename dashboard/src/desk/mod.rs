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
//!
//! A supervisor who takes a call over releases its agent ([`Desks::take_over`]):
//! their desk goes to wrap-up as if the call had ended for them, and when it
//! really ends, later, the news no longer counts as theirs, so it cannot touch
//! whatever the agent does by then. The dialler is not told: the agent's desk
//! moving to wrap-up frees them for its pacer as any call's end does, and the
//! call's line, its talk time and its interaction stay the agent's.

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
/// a reload finds the call in progress or the wrap-up still due; and the
/// calls supervisors took over from agents, until each ends.
#[derive(Debug)]
pub struct Desks {
    desks: Mutex<HashMap<UserId, session::AgentDesk>>,
    /// Calls taken over, by the agent they were taken from.
    released: Mutex<HashMap<UserId, Vec<CallRef>>>,
    /// Tells connected desks of calls taken from their agent.
    releases: tokio::sync::broadcast::Sender<(UserId, CallRef)>,
}

/// The most calls taken over from one agent that are remembered at once; the
/// oldest is forgotten past it (its end was missed while the desk was away).
const RELEASED_KEPT: usize = 16;

impl Default for Desks {
    fn default() -> Self {
        Desks {
            desks: Mutex::default(),
            released: Mutex::default(),
            releases: tokio::sync::broadcast::channel(64).0,
        }
    }
}

impl Desks {
    /// Releases the agent whose desk is in `call` from it, for a supervisor who
    /// takes it over; returns the agent, or `None` when no desk here is in it.
    pub fn take_over(&self, call: CallRef) -> Option<UserId> {
        let agent = self.agent_in(call)?;
        let mut released = self.released.lock().unwrap_or_else(|p| p.into_inner());
        let calls = released.entry(agent).or_default();
        if !calls.contains(&call) {
            calls.push(call);
            if calls.len() > RELEASED_KEPT {
                calls.remove(0);
            }
        }
        drop(released);
        // No desk connected is fine: the one that connects next finds the call released.
        let _ = self.releases.send((agent, call));
        Some(agent)
    }

    /// Returns the agent whose desk is in `call`.
    pub fn agent_in(&self, call: CallRef) -> Option<UserId> {
        self.lock()
            .iter()
            .find(|(_, d)| matches!(d.phase(), Phase::InCall { call: c, .. } if *c == call))
            .map(|(user, _)| *user)
    }

    /// Returns whether `call` was taken over from the agent.
    pub(crate) fn is_released(&self, user: UserId, call: CallRef) -> bool {
        self.released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .is_some_and(|calls| calls.contains(&call))
    }

    /// Forgets a call taken over from the agent, once it has ended.
    pub(crate) fn ended(&self, user: UserId, call: CallRef) {
        let mut released = self.released.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(calls) = released.get_mut(&user) {
            calls.retain(|c| *c != call);
            if calls.is_empty() {
                released.remove(&user);
            }
        }
    }

    /// Returns a receiver of the calls taken from agents from now on.
    pub(crate) fn releases(&self) -> tokio::sync::broadcast::Receiver<(UserId, CallRef)> {
        self.releases.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, session::AgentDesk>> {
        self.desks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn load(&self, user: UserId) -> Option<session::AgentDesk> {
        self.lock().get(&user).cloned()
    }

    pub(crate) fn save(&self, user: UserId, saved: session::AgentDesk) {
        self.lock().insert(user, saved);
    }

    /// Returns how many agents are dialling, in a call, or wrapping one up:
    /// the desks a stopping node waits for.
    pub fn busy(&self) -> usize {
        self.lock()
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
