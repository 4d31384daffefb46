//! `POST /api/contacts` and `PATCH /api/contacts/{id}`: contacts created
//! and corrected by hand, each change audited and guarded by the version
//! the editor read.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use crm::edit::{ContactChange, NewContact};
use crm::model::{Contact, ContactId, Role};
use crm::store::Saved;
use dialer_core::desk::Phase;
use schemars::JsonSchema;
use serde::Serialize;

use super::account_fields::{hide_off_card, visible_fields};
use crate::auth::CurrentUser;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];

/// A contact as saved, with what the request changed.
#[derive(Serialize, JsonSchema)]
pub(crate) struct SavedContact {
    #[serde(flatten)]
    contact: Contact,
    /// The fields this request changed.
    changed: Vec<String>,
    /// Whether the number is on the suppression list: saved, flagged, and
    /// never dialled.
    suppressed: bool,
}

impl From<Saved> for SavedContact {
    fn from(s: Saved) -> Self {
        SavedContact {
            contact: s.contact,
            changed: s.changed,
            suppressed: s.suppressed,
        }
    }
}

/// Creates a contact, on a list if the body names one; supervisors and
/// admins only. Audited as `contact.create` with the fields given.
pub(super) async fn create(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<SavedContact>), ApiError> {
    me.require(MANAGERS)?;
    let new: NewContact = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("bad contact: {e}")))?;
    let saved = state
        .store
        .add_contact(&me.actor(), &new, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

/// Changes a contact's fields if it is still at the `version` the body
/// names; a stale version is a 409 and changes nothing. Supervisors and
/// admins edit any contact of the account. An agent edits only the contact
/// of their current call (talking or wrapping it up, on any node's desk)
/// or of a callback booked for them, and of the account's fields only those
/// shown on the card; a contact outside their campaigns is a 404, as on the
/// card, and any other is a 403.
pub(super) async fn edit(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<Json<SavedContact>, ApiError> {
    let account = me.account();
    let id = ContactId(id);
    if me.user.role == Role::Agent {
        if !state
            .store
            .is_contact_of_agent(account, me.user.id, id)
            .await?
        {
            return Err(ApiError::NotFound);
        }
        if !agent_may_edit(&state, &me, id).await? {
            return Err(ApiError::Forbidden(
                "an agent edits only the contact of their current call or of their own callbacks"
                    .into(),
            ));
        }
    } else {
        // A foreign or missing contact is a 404 whatever the body says.
        state.store.contact(account, id).await?;
    }
    let version = body
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?
        .remove("version")
        .ok_or_else(|| {
            ApiError::BadRequest("the body needs the contact's \"version\" as read".into())
        })?
        .as_i64()
        .ok_or_else(|| ApiError::BadRequest("version must be a whole number".into()))?;
    let change: ContactChange = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("bad change: {e}")))?;
    if change.is_empty() {
        return Err(ApiError::BadRequest(
            "name at least one field to change".into(),
        ));
    }
    if me.user.role == Role::Agent {
        refuse_off_card(&state, &me, &change).await?;
    }
    let mut saved = state
        .store
        .edit_contact(&me.actor(), id, version, &change, state.clock.now())
        .await?;
    hide_off_card(
        &state,
        account,
        me.user.role,
        &mut [&mut saved.contact.values],
    )
    .await?;
    // Supervisors' open views learn which fields changed, never the values.
    state.bus.publish(crm::events::Event::ContactEdited {
        account: me.account(),
        contact_id: saved.contact.id,
        version: saved.contact.version,
        fields: saved.changed.clone(),
        by: me.user.id,
        at: state.clock.now(),
    });
    Ok(Json(saved.into()))
}

/// Refuses an agent's change to a field the card does not show them.
async fn refuse_off_card(
    state: &AppState,
    me: &CurrentUser,
    change: &ContactChange,
) -> Result<(), ApiError> {
    let Some(given) = &change.fields else {
        return Ok(());
    };
    let shown = visible_fields(state, me).await?;
    match given.keys().find(|k| !shown.iter().any(|f| f.key == **k)) {
        // A field the account does not define at all is the Store's 400.
        Some(key) if state.store.field(me.account(), key).await.is_ok() => {
            Err(ApiError::Forbidden(format!(
                "an agent changes only the fields shown on the card, and {key} is not"
            )))
        }
        _ => Ok(()),
    }
}

/// Whether the agent is on a call with the contact (talking, or wrapping
/// the call up) or has a callback booked with them.
async fn agent_may_edit(
    state: &AppState,
    me: &CurrentUser,
    contact: ContactId,
) -> Result<bool, ApiError> {
    let account = me.account();
    // The desk as kept in the database, whichever node serves it (the
    // request may reach another node than the agent's desk), else this
    // node's own.
    let kept = state
        .store
        .kept_desk(account, me.user.id)
        .await?
        .filter(|d| matches!(d.phase.as_str(), "in_call" | "wrap_up"))
        .and_then(|d| d.call_ref);
    let call = kept.or_else(|| {
        state
            .desks
            .load(me.user.id)
            .and_then(|desk| match desk.phase() {
                Phase::InCall { call, .. } | Phase::WrapUp { call, .. } => Some(*call),
                _ => None,
            })
    });
    if let Some(call) = call {
        match state.store.attempt_by_ref(account, call).await {
            Ok(attempt) if attempt.contact_id == Some(contact) => return Ok(true),
            Ok(_) | Err(crm::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(state
        .store
        .is_callback_of_agent(account, me.user.id, contact)
        .await?)
}
