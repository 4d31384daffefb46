//! Campaigns' call scripts: supervisors and admins read, change and preview
//! them; agents receive them rendered with the `call` message of the desk.
//!
//! A preview renders exactly as the desk does, with the fields the agent's
//! card shows: of a chosen contact, or of a made-up one.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::model::{CampaignId, ContactId, Role};
use crm::script::{Merge, Rendered, Script, Section};
use crm::store::scripts::CampaignScript;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns/{id}/script", get(script).put(update))
        .route("/api/campaigns/{id}/script/preview", post(preview))
}

async fn script(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<CampaignScript>, ApiError> {
    me.require(MANAGERS)?;
    Ok(Json(
        state
            .store
            .campaign_script(me.account(), CampaignId(id))
            .await?,
    ))
}

/// Replaces the script; a script without sections removes it. Audited as
/// `campaign.script`.
async fn update(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Script>,
) -> Result<Json<CampaignScript>, ApiError> {
    me.require(MANAGERS)?;
    let (id, now) = (CampaignId(id), state.clock.now());
    let saved = state
        .store
        .set_campaign_script(me.account(), id, &body, now)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "campaign.script",
            Some(&format!("campaign:{id}")),
            now,
        )
        .await?;
    Ok(Json(saved))
}

/// What to render a script's preview with.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "ScriptPreviewRequest")]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    /// A draft to render instead of the saved script.
    #[serde(default)]
    sections: Option<Vec<Section>>,
    /// A contact of the account to render with, instead of a made-up one.
    #[serde(default)]
    contact_id: Option<i64>,
}

/// A rendered preview.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ScriptPreview")]
pub(crate) struct Preview {
    /// Whether the contact was made up.
    sample: bool,
    #[serde(flatten)]
    rendered: Rendered,
}

async fn preview(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> Result<Json<Preview>, ApiError> {
    me.require(MANAGERS)?;
    let (store, account, id) = (&state.store, me.account(), CampaignId(id));
    let campaign = store.campaign(account, id).await?;
    let card_fields: Vec<_> = store
        .fields(account)
        .await?
        .into_iter()
        .filter(|f| f.on_card)
        .collect();
    let script = match body.sections {
        Some(sections) => {
            let draft = Script { sections };
            draft.check(&card_fields)?;
            draft
        }
        None => store.campaign_script(account, id).await?.script(),
    };
    let merge = Merge::new().campaign(&campaign).agent(&me.user.username);
    let (merge, sample) = match body.contact_id {
        Some(contact) => {
            let mut contact = store.contact(account, ContactId(contact)).await?;
            // As the agent's card: the values of the fields it shows, no others.
            contact
                .values
                .retain(|key, _| card_fields.iter().any(|f| f.key == *key));
            (merge.contact(&contact.fields, &contact.values), false)
        }
        None => (merge.sample_contact(&card_fields), true),
    };
    Ok(Json(Preview {
        sample,
        rendered: script.render(&merge),
    }))
}
