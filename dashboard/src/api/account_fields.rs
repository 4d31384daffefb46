//! `/api/account/fields`: the contact fields an account defines. Admins
//! define, change and remove them; everyone reads them (agents only those
//! shown on the card), to show and edit contacts' values.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use crm::fields::{FieldChange, FieldDef, FieldValues, NewField};
use crm::model::{AccountId, Role};
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::{Admin, CurrentUser};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/account/fields", get(list).post(define))
        .route("/api/account/fields/{key}", patch(change).delete(remove))
}

/// A field removed, and the values erased with it.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "FieldRemoved")]
pub(crate) struct Removed {
    /// The field removed.
    key: String,
    /// How many contacts' values in it were erased.
    values_erased: u64,
}

/// Returns the account's fields in their order; to an agent, only those
/// the card shows.
async fn list(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<FieldDef>>, ApiError> {
    Ok(Json(visible_fields(&state, &me).await?))
}

/// Defines a field; audited as `field.define`.
async fn define(
    State(state): State<AppState>,
    Admin(me): Admin,
    ApiJson(body): ApiJson<NewField>,
) -> Result<(StatusCode, Json<FieldDef>), ApiError> {
    let def = state
        .store
        .define_field(&me.actor(), &body, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(def)))
}

/// Changes a field's label, choices, flags or position; audited as
/// `field.change` with what changed.
async fn change(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<FieldChange>,
) -> Result<Json<FieldDef>, ApiError> {
    // A foreign or missing field is a 404 whatever the body says.
    state.store.field(me.account(), &key).await?;
    // A key or kind alone is the Store's to refuse when it is another.
    if body.is_empty() && body.key.is_none() && body.kind.is_none() {
        return Err(ApiError::BadRequest(
            "name at least one of label, choices, required, on_card, exported or position".into(),
        ));
    }
    let def = state
        .store
        .change_field(&me.actor(), &key, &body, state.clock.now())
        .await?;
    Ok(Json(def))
}

/// Removes a field and erases every value held in it; audited as
/// `field.remove` with the field's key only.
async fn remove(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(key): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    let values_erased = state
        .store
        .remove_field(&me.actor(), &key, state.clock.now())
        .await?;
    Ok(Json(Removed { key, values_erased }))
}

/// Returns the fields the caller may see: all of them, or for an agent
/// those shown on the card.
pub(super) async fn visible_fields(
    state: &AppState,
    me: &CurrentUser,
) -> Result<Vec<FieldDef>, ApiError> {
    let mut fields = state.store.fields(me.account()).await?;
    if me.user.role == Role::Agent {
        fields.retain(|f| f.on_card);
    }
    Ok(fields)
}

/// Leaves in `values` only the fields an agent sees on the card; a
/// supervisor or admin sees every field.
pub(super) async fn hide_off_card(
    state: &AppState,
    account: AccountId,
    role: Role,
    values: &mut [&mut FieldValues],
) -> Result<(), ApiError> {
    if role != Role::Agent || values.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = state
        .store
        .fields(account)
        .await?
        .into_iter()
        .filter(|f| f.on_card)
        .map(|f| f.key)
        .collect();
    for v in values {
        v.retain(|key, _| shown.contains(key));
    }
    Ok(())
}
