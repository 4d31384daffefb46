//! Login, logout and the session that every other handler requires.
//!
//! The session token is 32 random bytes sent once in an HttpOnly,
//! SameSite=Strict cookie; the server keeps only its SHA-256, so a copy of
//! the database holds no usable session.

use schemars::JsonSchema;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Duration;
use crm::events::{AgentState, Event};
use crm::model::{AccountId, Actor, Role, User};
use crm::store::NewSession;
use crm::{password, StoreError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::json::ApiJson;
use crate::{ApiError, AppState};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "dialcrm_session";

/// Returns the routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/logout-everywhere", post(logout_everywhere))
        .route("/api/me", get(me))
        .route("/api/me/password", post(change_password))
}

/// The logged-in caller of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who they are.
    pub user: User,
    /// The hash of their session token.
    pub token_hash: String,
    /// Where the request came from, for the audit log.
    pub client: ClientInfo,
}

impl CurrentUser {
    /// Returns the caller's account: the scope of every query they make.
    pub fn account(&self) -> AccountId {
        self.user.account_id
    }

    /// Fails with 403 unless the caller has one of the roles.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.user.role
            )))
        }
    }

    /// Returns the caller as an audit-log actor.
    pub fn actor(&self) -> Actor {
        Actor {
            account_id: Some(self.user.account_id),
            user_id: Some(self.user.id),
            ip: self.client.ip.clone(),
            user_agent: self.client.user_agent.clone(),
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_origin(&parts.method, &parts.headers)?;
        let client = ClientInfo::from_parts(parts, &state.config.trusted_proxies);
        let token = session_token(&parts.headers).ok_or(ApiError::Unauthorized("log in first"))?;
        let token_hash = hash_token(&token);
        let session = state
            .store
            .session(&token_hash, state.clock.now())
            .await?
            .ok_or(ApiError::Unauthorized(
                "your session has ended; log in again",
            ))?;
        Ok(CurrentUser {
            user: session.user,
            token_hash,
            client,
        })
    }
}

/// A caller who must be a supervisor or an admin, checked before the
/// request body is read: a caller without the role learns nothing about
/// what the route expects.
pub struct Manager(pub CurrentUser);

/// A caller who must be an admin, checked before the request body is read.
pub struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let me = CurrentUser::from_request_parts(parts, state).await?;
        me.require(&[Role::Supervisor, Role::Admin])?;
        Ok(Manager(me))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let me = CurrentUser::from_request_parts(parts, state).await?;
        me.require(&[Role::Admin])?;
        Ok(Admin(me))
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The peer's IP address.
    pub ip: Option<String>,
    /// The User-Agent header.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    fn from_parts(parts: &Parts, proxies: &crate::proxies::TrustedProxies) -> Self {
        ClientInfo {
            // Behind a trusted reverse proxy, the address it forwarded.
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| proxies.client(c.0.ip(), &parts.headers).to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
        }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo::from_parts(parts, &state.config.trusted_proxies))
    }
}

/// A login request body.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LoginRequest {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// What `/api/me` and a successful login return.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Me {
    /// The user's id.
    pub id: i64,
    /// The username.
    pub username: String,
    /// The role.
    pub role: Role,
    /// The account's id.
    pub account_id: i64,
    /// The account's name.
    pub account: String,
    /// The page this role works in.
    pub home: &'static str,
}

async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    check_origin(&Method::POST, &headers)?;
    let now = state.clock.now();
    let ip = client.ip.clone().unwrap_or_default();
    // The counts are every node's: five failures spread over several
    // nodes count as five.
    let wait = state.throttle.check(&body.username, &ip, now).await?;
    if let Some(wait) = wait {
        state.metrics.login("throttled");
        return Err(ApiError::TooManyRequests {
            retry_after_secs: crate::throttle::retry_after_secs(wait),
        });
    }
    let found = state.store.credentials(&body.username).await?;
    // Verify against a decoy hash for unknown users so timing tells nothing.
    let hash = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| password::decoy_hash().to_owned());
    let pw = body.password;
    let matches = tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .map_err(|e| ApiError::Internal(format!("password check panicked: {e}")))?;
    let user = match found {
        Some((user, _)) if matches && user.active => user,
        _ => {
            // Counted as of when the password was found wrong: the check
            // itself takes a while, and the next wait runs from here.
            let now = state.clock.now();
            let failures = state.throttle.fail(&body.username, &ip, now).await?;
            if let Some((user, _)) = &found {
                alert_on_failures(&state, user, failures, &client, now).await?;
            }
            state.metrics.login("failed");
            tracing::info!(ip = %ip, "login failed");
            let actor = Actor {
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
                ..Actor::default()
            };
            state.store.audit(&actor, "login.failed", None, now).await?;
            return Err(ApiError::Unauthorized("wrong username or password"));
        }
    };
    state.throttle.succeed(&body.username, now).await?;

    let token = new_token();
    let token_hash = hash_token(&token);
    let ttl = Duration::from_std(state.config.session_ttl).unwrap_or(Duration::hours(12));
    let created = state
        .store
        .create_session(NewSession {
            token_hash: &token_hash,
            user_id: user.id,
            account_id: user.account_id,
            role: user.role,
            now,
            expires_at: now + ttl,
        })
        .await;
    let actor = Actor {
        account_id: Some(user.account_id),
        user_id: Some(user.id),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    };
    if let Err(StoreError::SeatLimit { seats }) = &created {
        state.metrics.login("seat_limit");
        state
            .store
            .audit(&actor, "login.seat_limit", None, now)
            .await?;
        return Err(ApiError::Forbidden(format!(
            "licence seat limit reached: this account has {seats} agent seats and all are in use"
        )));
    }
    created?;
    state.metrics.login("ok");
    state.store.audit(&actor, "login", None, now).await?;
    if user.role == Role::Agent {
        // An agent starts paused; the softphone makes them Ready.
        publish_agent_state(&state, &user, AgentState::Paused, Some("login"));
    }
    tracing::info!(user_id = %user.id, role = %user.role, "logged in");

    let me = me_of(&state, &user).await?;
    let cookie = session_cookie(&token, ttl.num_seconds(), state.config.secure_cookies);
    let mut response = (StatusCode::OK, Json(me)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

async fn logout(State(state): State<AppState>, me: CurrentUser) -> Result<Response, ApiError> {
    state.store.delete_session(&me.token_hash).await?;
    sessions_ended(&state, &me.user);
    if me.user.role == Role::Agent {
        publish_agent_state(&state, &me.user, AgentState::LoggedOut, None);
    }
    state
        .store
        .audit(&me.actor(), "logout", None, state.clock.now())
        .await?;
    Ok(cleared_cookie(state.config.secure_cookies))
}

async fn logout_everywhere(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let n = state.store.delete_user_sessions(me.user.id).await?;
    sessions_ended(&state, &me.user);
    if me.user.role == Role::Agent {
        publish_agent_state(&state, &me.user, AgentState::LoggedOut, None);
    }
    state
        .store
        .audit(
            &me.actor(),
            "logout.everywhere",
            Some(&format!("sessions:{n}")),
            state.clock.now(),
        )
        .await?;
    Ok(cleared_cookie(state.config.secure_cookies))
}

/// A password change request body.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PasswordChange {
    /// The password now in use.
    pub current_password: String,
    /// The password wanted.
    pub new_password: String,
}

/// Changes the caller's own password; every session of theirs ends.
async fn change_password(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let (_, hash) = state
        .store
        .credentials(&me.user.username)
        .await?
        .ok_or(ApiError::Unauthorized("log in first"))?;
    let current = body.current_password;
    let matches = tokio::task::spawn_blocking(move || password::verify(&current, &hash))
        .await
        .map_err(|e| ApiError::Internal(format!("password check panicked: {e}")))?;
    if !matches {
        state
            .store
            .audit(&me.actor(), "password.change_refused", None, now)
            .await?;
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    state
        .store
        .change_password(me.account(), me.user.id, &body.new_password, now)
        .await?;
    sessions_ended(&state, &me.user);
    if me.user.role == Role::Agent {
        // Every session ended: the agent is logged out, as after a logout.
        publish_agent_state(&state, &me.user, AgentState::LoggedOut, None);
    }
    state
        .store
        .audit(&me.actor(), "password.change", None, now)
        .await?;
    Ok(cleared_cookie(state.config.secure_cookies))
}

async fn me(State(state): State<AppState>, me: CurrentUser) -> Result<Json<Me>, ApiError> {
    Ok(Json(me_of(&state, &me.user).await?))
}

async fn me_of(state: &AppState, user: &User) -> Result<Me, ApiError> {
    let account = state.store.account(user.account_id).await?;
    Ok(Me {
        id: user.id.0,
        username: user.username.clone(),
        role: user.role,
        account_id: account.id.0,
        account: account.name,
        home: home_of(user.role),
    })
}

/// Failed logins in a row for one user that raise an alert (and every
/// multiple of it after).
const FAILURES_ALERT: u32 = 5;

/// Raises an alert on the supervisors' stream and in the audit log when a
/// user's failed logins reach the threshold. The count is every node's,
/// and each count is returned to one node only, so one crossing raises one
/// alert whichever node saw the failure.
async fn alert_on_failures(
    state: &AppState,
    user: &User,
    failures: u32,
    client: &ClientInfo,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    if failures == 0 || !failures.is_multiple_of(FAILURES_ALERT) {
        return Ok(());
    }
    state.bus.publish(Event::Alert {
        account: user.account_id,
        alert: "login.failures".into(),
        message: format!("{failures} failed logins in a row for {}", user.username),
        at: now,
    });
    let actor = Actor {
        account_id: Some(user.account_id),
        user_id: Some(user.id),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    };
    state
        .store
        .audit(
            &actor,
            "alert.login_failures",
            Some(&format!("failures:{failures}")),
            now,
        )
        .await?;
    Ok(())
}

/// Tells every node that sessions of `user` ended, once their rows are
/// gone: each node's sockets of the user check their own session and close
/// if it was one of them ([`crate::revocation`]).
pub fn sessions_ended(state: &AppState, user: &User) {
    state.bus.publish(Event::SessionsRevoked {
        account: user.account_id,
        user_id: user.id,
        at: state.clock.now(),
    });
}

/// Publishes an agent's new state on the event bus.
pub fn publish_agent_state(
    state: &AppState,
    user: &User,
    agent_state: AgentState,
    pause_code: Option<&str>,
) {
    state.bus.publish(Event::AgentState {
        account: user.account_id,
        user_id: user.id,
        username: user.username.clone(),
        state: agent_state,
        pause_code: pause_code.map(str::to_owned),
        at: state.clock.now(),
    });
}

/// Returns the page a role works in.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Agent => "/agent",
        Role::Supervisor => "/supervisor",
        Role::Admin => "/admin",
    }
}

/// Returns the SHA-256 of a session token, hex encoded.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Reads the session token from the Cookie header.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Refuses a state-changing request whose Origin is not this server.
///
/// Browsers send Origin on cross-site POSTs; SameSite=Strict already keeps
/// the cookie off them, and this is the second lock on the door.
pub fn check_origin(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || origin_is_own(headers) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("cross-origin request refused".into()))
    }
}

/// Returns whether a request carries no Origin, or the server's own (its
/// host equal to the Host header).
pub fn origin_is_own(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    !host.is_empty() && origin_host == host
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn session_cookie(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    // A hex token and fixed attributes are always a valid header value.
    HeaderValue::from_str(&v).expect("cookie is visible ASCII")
}

fn cleared_cookie(secure: bool) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, secure));
    r
}
