//! The supervisor's dial-level cap of a campaign, set from the wallboard.
//!
//! It is the campaign's `max_dial_level` setting; a running campaign's
//! pacer takes the new value at the floor's next reconcile (every 5 s).

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use crm::model::CampaignId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Manager;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/campaigns/{id}/dial-level", put(set))
}

/// The body and the answer: the most lines per staffed agent.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub(crate) struct DialLevel {
    max_dial_level: f64,
}

async fn set(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<DialLevel>,
) -> Result<Json<DialLevel>, ApiError> {
    let id = CampaignId(id);
    let now = state.clock.now();
    let mut settings = state.store.campaign_settings(me.account(), id).await?;
    settings.max_dial_level = body.max_dial_level;
    let saved = state
        .store
        .update_campaign_settings(me.account(), id, &settings, now)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "campaign.dial_level",
            Some(&format!("campaign:{id}")),
            now,
        )
        .await?;
    Ok(Json(DialLevel {
        max_dial_level: saved.max_dial_level,
    }))
}
