//! The static pages: plain HTML, CSS and JavaScript compiled into the binary.
//!
//! A role's page is only served to a live session of that role (admins may
//! also open the supervisor's); anyone else is sent to the login page.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use crm::model::Role;

use crate::auth::{hash_token, session_token};
use crate::AppState;

/// Returns the page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/login") }))
        .route("/login", get(|| async { Html(LOGIN_HTML) }))
        .route("/agent", get(agent))
        .route("/supervisor", get(supervisor))
        .route("/admin", get(admin))
        .route("/static/{file}", get(static_file))
}

const LOGIN_HTML: &str = include_str!("../static/login.html");
const AGENT_HTML: &str = include_str!("../static/agent.html");
const SUPERVISOR_HTML: &str = include_str!("../static/supervisor.html");
const ADMIN_HTML: &str = include_str!("../static/admin.html");

/// The scripts and styles, by file name, with their content types.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript",
        include_str!("../static/app.js"),
    ),
    (
        "callback-edit.js",
        "text/javascript",
        include_str!("../static/callback-edit.js"),
    ),
    (
        "contact-form.js",
        "text/javascript",
        include_str!("../static/contact-form.js"),
    ),
    (
        "contacts.js",
        "text/javascript",
        include_str!("../static/contacts.js"),
    ),
    (
        "listen.js",
        "text/javascript",
        include_str!("../static/listen.js"),
    ),
    (
        "login.js",
        "text/javascript",
        include_str!("../static/login.js"),
    ),
    (
        "merges.js",
        "text/javascript",
        include_str!("../static/merges.js"),
    ),
    (
        "queues.js",
        "text/javascript",
        include_str!("../static/queues.js"),
    ),
    (
        "script-view.js",
        "text/javascript",
        include_str!("../static/script-view.js"),
    ),
    (
        "scripts.js",
        "text/javascript",
        include_str!("../static/scripts.js"),
    ),
    (
        "softphone.js",
        "text/javascript",
        include_str!("../static/softphone.js"),
    ),
    (
        "supervisor.js",
        "text/javascript",
        include_str!("../static/supervisor.js"),
    ),
    (
        "wallboard.js",
        "text/javascript",
        include_str!("../static/wallboard.js"),
    ),
    ("style.css", "text/css", include_str!("../static/style.css")),
];

async fn static_file(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => asset(body, content_type),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn agent(State(state): State<AppState>, headers: HeaderMap) -> Response {
    role_page(&state, &headers, &[Role::Agent], AGENT_HTML).await
}

async fn supervisor(State(state): State<AppState>, headers: HeaderMap) -> Response {
    role_page(
        &state,
        &headers,
        &[Role::Supervisor, Role::Admin],
        SUPERVISOR_HTML,
    )
    .await
}

async fn admin(State(state): State<AppState>, headers: HeaderMap) -> Response {
    role_page(&state, &headers, &[Role::Admin], ADMIN_HTML).await
}

async fn role_page(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    html: &'static str,
) -> Response {
    let Some(token) = session_token(headers) else {
        return Redirect::to("/login").into_response();
    };
    match state.store.session(&hash_token(&token), state.clock.now()).await {
        Ok(Some(s)) if roles.contains(&s.user.role) => Html(html).into_response(),
        Ok(Some(_)) => (
            StatusCode::FORBIDDEN,
            Html("<!doctype html><title>Forbidden</title><p>Your role may not open this page. <a href=\"/login\">Back</a>"),
        )
            .into_response(),
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Middleware adding the security headers to every response; over HTTPS,
/// also `Strict-Transport-Security`, so browsers never come back over
/// plain HTTP.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if let Some(age) = state.config.hsts_max_age {
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={}", age.as_secs())) {
            h.insert(header::STRICT_TRANSPORT_SECURITY, v);
        }
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
