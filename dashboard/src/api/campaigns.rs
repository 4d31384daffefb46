//! Campaigns of the caller's account, and the agents assigned to them.
//!
//! An agent sees only the campaigns they are assigned to; another campaign
//! is a 404 to them, as another account's would be.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{Campaign, CampaignId, Role, UserId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns", get(all))
        .route("/api/campaigns/{id}", get(one))
        .route("/api/campaigns/{id}/agents", get(agents).put(assign))
}

/// Lists campaigns: the whole account for supervisors and admins, the
/// assigned ones for an agent, to know what they are working.
async fn all(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    let mut campaigns = state.store.campaigns(me.account()).await?;
    if me.user.role == Role::Agent {
        let mine = state
            .store
            .agent_campaigns(me.account(), me.user.id)
            .await?;
        campaigns.retain(|c| mine.contains(&c.id));
    }
    Ok(Json(campaigns))
}

async fn one(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Campaign>, ApiError> {
    let id = CampaignId(id);
    if me.user.role == Role::Agent
        && !state
            .store
            .is_assigned(me.account(), id, me.user.id)
            .await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(Json(state.store.campaign(me.account(), id).await?))
}

/// The agents assigned to a campaign.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "CampaignAgents")]
pub(crate) struct Agents {
    user_ids: Vec<UserId>,
}

async fn agents(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
) -> Result<Json<Agents>, ApiError> {
    let user_ids = state
        .store
        .campaign_agents(me.account(), CampaignId(id))
        .await?;
    Ok(Json(Agents { user_ids }))
}

/// Replaces the campaign's agents; a user of another account or of another
/// role is a 400 and nothing changes.
async fn assign(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Agents>,
) -> Result<Json<Agents>, ApiError> {
    let (account, id) = (me.account(), CampaignId(id));
    state
        .store
        .assign_agents(account, id, &body.user_ids)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "campaign.assign_agents",
            Some(&format!("campaign:{id}")),
            state.clock.now(),
        )
        .await?;
    let user_ids = state.store.campaign_agents(account, id).await?;
    Ok(Json(Agents { user_ids }))
}
