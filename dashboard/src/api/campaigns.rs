//! Campaigns of the caller's account.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{Campaign, CampaignId};

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns", get(all))
        .route("/api/campaigns/{id}", get(one))
}

/// Lists campaigns; agents see them too, to know what they are working.
async fn all(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    Ok(Json(state.store.campaigns(me.account()).await?))
}

async fn one(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Campaign>, ApiError> {
    Ok(Json(
        state.store.campaign(me.account(), CampaignId(id)).await?,
    ))
}
