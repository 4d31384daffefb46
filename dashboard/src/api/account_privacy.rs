//! The account's aggregate-only setting and the daily counts it keeps, for
//! admins.
//!
//! With the setting on, the Store keeps per-contact audit entries (who
//! viewed or exported which contact) only as counts per day and action.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use crm::store::aggregate::ActionCount;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/account/privacy", get(privacy).put(set_privacy))
        .route("/api/audit/counts", get(counts))
}

/// The account's privacy setting.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "AccountPrivacy")]
pub(crate) struct Privacy {
    /// Whether per-contact tracking is kept as daily counts only.
    aggregate_only: bool,
}

async fn privacy(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<Json<Privacy>, ApiError> {
    Ok(Json(Privacy {
        aggregate_only: state.store.aggregate_only(me.account()).await?,
    }))
}

async fn set_privacy(
    State(state): State<AppState>,
    Admin(me): Admin,
    ApiJson(body): ApiJson<Privacy>,
) -> Result<Json<Privacy>, ApiError> {
    state
        .store
        .set_aggregate_only(me.account(), body.aggregate_only)
        .await?;
    let target = if body.aggregate_only { "on" } else { "off" };
    state
        .store
        .audit(
            &me.actor(),
            "account.aggregate_only",
            Some(target),
            state.clock.now(),
        )
        .await?;
    Ok(Json(body))
}

#[derive(Deserialize)]
struct CountsQuery {
    since: Option<String>,
}

/// Returns the daily counts kept in place of per-contact entries, newest
/// day first; `since` is a day such as `2026-11-01`.
async fn counts(
    State(state): State<AppState>,
    Admin(me): Admin,
    Query(query): Query<CountsQuery>,
) -> Result<Json<Vec<ActionCount>>, ApiError> {
    let since =
        match query.since.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(s.parse::<NaiveDate>().map_err(|_| {
                ApiError::BadRequest("since must be a day such as 2026-11-01".into())
            })?),
        };
    Ok(Json(state.store.action_counts(me.account(), since).await?))
}
