//! Health and metrics endpoints for operators, and the API's description.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Returns the routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
}

/// Serves the API's description, made once: it is the same for the
/// process's life, and deriving every body's schema takes a while.
async fn openapi() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let document =
        DOCUMENT.get_or_init(|| crate::openapi::document(env!("CARGO_PKG_VERSION")).to_string());
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.as_str(),
    )
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    // A load balancer sends no one new to a node that is about to stop.
    if state.floor.as_ref().is_some_and(|f| f.is_draining()) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let db_up = state.store.ping().await.is_ok();
    let sessions = if db_up {
        state
            .store
            .live_sessions(state.clock.now())
            .await
            .unwrap_or(0)
    } else {
        0
    };
    let (trunks, draining) = match &state.floor {
        Some(floor) => (
            Some(floor.gateway().trunks().await.unwrap_or_default()),
            floor.is_draining(),
        ),
        None => (None, false),
    };
    let media_drops = trunks
        .is_some()
        .then(|| sip_gateway::drops::media_drops().to_vec());
    let nats = state
        .shared
        .as_ref()
        .map(|shared| (state.config.node.clone(), shared.connected(), shared.held()));
    let text = state.metrics.render(&crate::metrics::Scrape {
        database_up: db_up,
        sessions,
        stream: state.hub.stats(),
        trunks,
        media_drops,
        draining,
        nats,
    });
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text)
}
