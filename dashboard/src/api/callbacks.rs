//! `GET /api/callbacks`: the callbacks still to be made, an agent's own or,
//! for a supervisor, the account's.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{Role, UserId};
use crm::store::callbacks::{UpcomingCallback, MAX_UPCOMING};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/callbacks", get(upcoming))
}

#[derive(Debug, Default, Deserialize)]
struct Params {
    user: Option<String>,
    limit: Option<String>,
}

/// Returns callbacks booked and not yet made, soonest first (those already
/// due included): an agent's own; a supervisor's or admin's view of every
/// one of the account, or of one agent's with `user`.
async fn upcoming(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(params): Query<Params>,
) -> Result<Json<Vec<UpcomingCallback>>, ApiError> {
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_UPCOMING).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_UPCOMING}"
                )))
            }
        },
    };
    let asked = match params.user.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(id) => Some(UserId(id)),
            Err(_) => {
                return Err(ApiError::BadRequest(
                    "user must be a user id (a whole number)".into(),
                ))
            }
        },
    };
    let user = match me.user.role {
        Role::Agent => match asked {
            Some(u) if u != me.user.id => {
                return Err(ApiError::Forbidden(
                    "an agent sees only their own callbacks".into(),
                ))
            }
            _ => Some(me.user.id),
        },
        Role::Supervisor | Role::Admin => asked,
    };
    let callbacks = state
        .store
        .upcoming_callbacks(me.account(), user, limit)
        .await?;
    Ok(Json(callbacks))
}
