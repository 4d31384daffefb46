//! Users of the caller's account, and the account itself.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::events::AgentState;
use crm::model::{Account, Role, User, UserId};
use crm::password;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/account", get(account))
        .route("/api/account/retention", get(retention).put(set_retention))
        .route("/api/users", get(list_users).post(add_user))
        .route("/api/users/{id}", get(get_user))
        .route("/api/users/{id}/active", post(set_active))
}

/// The caller's account, with how many of its agents are logged in.
#[derive(Serialize, JsonSchema)]
pub(crate) struct AccountView {
    #[serde(flatten)]
    account: Account,
    agents_logged_in: i64,
}

async fn account(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<AccountView>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    let account = state.store.account(me.account()).await?;
    let agents_logged_in = state
        .store
        .logged_in_agents(me.account(), state.clock.now())
        .await?;
    Ok(Json(AccountView {
        account,
        agents_logged_in,
    }))
}

async fn list_users(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<User>>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.users(me.account()).await?))
}

async fn get_user(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<User>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.user(me.account(), UserId(id)).await?))
}

/// A user to add to the account.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct NewUser {
    username: String,
    password: String,
    role: Role,
}

async fn add_user(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    may_manage(&me, body.role)?;
    password::check_policy(&body.password).map_err(ApiError::BadRequest)?;
    let pw = body.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing panicked: {e}")))??;
    let now = state.clock.now();
    let user = state
        .store
        .add_user_within_seats(me.account(), &body.username, &hash, body.role, now)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "user.create",
            Some(&format!("user:{}", user.id)),
            now,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Fails with 403 unless the caller may manage users of this role: an
/// admin manages everyone, a supervisor agents only.
fn may_manage(me: &CurrentUser, role: Role) -> Result<(), ApiError> {
    match (me.user.role, role) {
        (Role::Admin, _) | (Role::Supervisor, Role::Agent) => Ok(()),
        (Role::Supervisor, _) => Err(ApiError::Forbidden(
            "a supervisor manages agents only; ask an admin for supervisors and admins".into(),
        )),
        (Role::Agent, _) => Err(ApiError::Forbidden("the agent role may not do this".into())),
    }
}

/// Whether a user may log in.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "UserActive")]
pub(crate) struct ActiveBody {
    active: bool,
}

async fn set_active(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ActiveBody>,
) -> Result<Json<User>, ApiError> {
    let id = UserId(id);
    if id == me.user.id && !body.active {
        return Err(ApiError::BadRequest(
            "you cannot deactivate yourself".into(),
        ));
    }
    let target = state.store.user(me.account(), id).await?;
    may_manage(&me, target.role)?;
    state
        .store
        .set_user_active_within_seats(me.account(), id, body.active)
        .await?;
    if !body.active {
        // Their sockets close on every node.
        crate::auth::sessions_ended(&state, &target);
    }
    if !body.active && target.role == Role::Agent {
        // The wallboard and the state history learn at once they are gone.
        crate::auth::publish_agent_state(&state, &target, AgentState::LoggedOut, None);
    }
    let action = if body.active {
        "user.activate"
    } else {
        "user.deactivate"
    };
    state
        .store
        .audit(
            &me.actor(),
            action,
            Some(&format!("user:{id}")),
            state.clock.now(),
        )
        .await?;
    Ok(Json(state.store.user(me.account(), id).await?))
}

/// How long the account keeps interactions and recordings.
#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct Retention {
    /// Days recordings and interactions are kept; null keeps them.
    retention_days: Option<i64>,
}

async fn retention(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Retention>, ApiError> {
    me.require(&[Role::Admin])?;
    Ok(Json(Retention {
        retention_days: state.store.retention(me.account()).await?,
    }))
}

async fn set_retention(
    State(state): State<AppState>,
    Admin(me): Admin,
    ApiJson(body): ApiJson<Retention>,
) -> Result<Json<Retention>, ApiError> {
    me.require(&[Role::Admin])?;
    state
        .store
        .set_retention(me.account(), body.retention_days)
        .await?;
    let target = match body.retention_days {
        Some(d) => format!("days:{d}"),
        None => "keep".to_owned(),
    };
    state
        .store
        .audit(
            &me.actor(),
            "account.retention",
            Some(&target),
            state.clock.now(),
        )
        .await?;
    Ok(Json(body))
}
