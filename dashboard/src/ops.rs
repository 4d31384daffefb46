//! Health and metrics endpoints for operators.

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
    let mut text = state.metrics.render(db_up, sessions, state.hub.stats());
    if let Some(floor) = &state.floor {
        let trunks = floor.gateway().trunks().await.unwrap_or_default();
        text.push_str(&crate::metrics::render_node(&trunks, floor.is_draining()));
    }
    if let Some(shared) = &state.shared {
        text.push_str(&shared.render_metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
