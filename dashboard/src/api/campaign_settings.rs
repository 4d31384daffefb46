//! Creating campaigns, changing their settings, and starting or pausing them.
//!
//! Every change is for supervisors and admins and leaves an audit entry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::model::{Campaign, CampaignId, CampaignStatus, ListId, Role};
use crm::store::campaign_settings::CampaignSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns", post(create))
        .route("/api/campaigns/{id}/settings", get(settings).put(update))
        .route("/api/campaigns/{id}/lists", post(attach))
        .route("/api/campaigns/{id}/start", post(start))
        .route("/api/campaigns/{id}/pause", post(pause))
}

/// A campaign to create, paused.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct NewCampaign {
    name: String,
    caller_id: String,
}

async fn create(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(body): ApiJson<NewCampaign>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    me.require(MANAGERS)?;
    let now = state.clock.now();
    let campaign = state
        .store
        .create_campaign(me.account(), &body.name, &body.caller_id, now)
        .await?;
    audit(&state, &me, "campaign.create", campaign.id).await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

async fn settings(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<CampaignSettings>, ApiError> {
    me.require(MANAGERS)?;
    Ok(Json(
        state
            .store
            .campaign_settings(me.account(), CampaignId(id))
            .await?,
    ))
}

async fn update(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<CampaignSettings>,
) -> Result<Json<CampaignSettings>, ApiError> {
    me.require(MANAGERS)?;
    let id = CampaignId(id);
    let saved = state
        .store
        .update_campaign_settings(me.account(), id, &body, state.clock.now())
        .await?;
    audit(&state, &me, "campaign.settings", id).await?;
    Ok(Json(saved))
}

/// A call list to attach to a campaign.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "AttachList")]
pub(crate) struct Attach {
    list_id: i64,
    #[serde(default)]
    priority: i64,
}

async fn attach(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Attach>,
) -> Result<Json<Campaign>, ApiError> {
    me.require(MANAGERS)?;
    let id = CampaignId(id);
    let account = me.account();
    state
        .store
        .attach_list(account, id, ListId(body.list_id), body.priority)
        .await?;
    audit(&state, &me, "campaign.attach_list", id).await?;
    Ok(Json(state.store.campaign(account, id).await?))
}

/// What starting a campaign did.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "CampaignStarted")]
pub(crate) struct Started {
    status: CampaignStatus,
    new_leads: u64,
}

/// Starts dialling once the settings are lawful and a list is attached,
/// after turning every contact on the lists into a lead.
async fn start(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Started>, ApiError> {
    me.require(MANAGERS)?;
    let (account, id, now) = (me.account(), CampaignId(id), state.clock.now());
    let new_leads = state.store.start_campaign(account, id, now).await?;
    if let Some(floor) = &state.floor {
        floor.start_campaign(account, id).await?;
    }
    audit(&state, &me, "campaign.start", id).await?;
    Ok(Json(Started {
        status: CampaignStatus::Running,
        new_leads,
    }))
}

async fn pause(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Campaign>, ApiError> {
    me.require(MANAGERS)?;
    let (account, id) = (me.account(), CampaignId(id));
    if state.store.campaign(account, id).await?.status == CampaignStatus::Stopped {
        return Err(ApiError::Conflict("a stopped campaign cannot pause".into()));
    }
    state
        .store
        .set_campaign_status(account, id, CampaignStatus::Paused, state.clock.now())
        .await?;
    if let Some(floor) = &state.floor {
        floor.stop_campaign(id).await;
    }
    audit(&state, &me, "campaign.pause", id).await?;
    Ok(Json(state.store.campaign(account, id).await?))
}

async fn audit(
    state: &AppState,
    me: &CurrentUser,
    action: &str,
    id: CampaignId,
) -> Result<(), ApiError> {
    state
        .store
        .audit(
            &me.actor(),
            action,
            Some(&format!("campaign:{id}")),
            state.clock.now(),
        )
        .await?;
    Ok(())
}
