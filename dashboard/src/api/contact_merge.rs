//! Duplicate contacts found and merged by supervisors and admins:
//! `GET /api/contacts/duplicates`, `POST /api/contacts/merge`, the
//! account's merges, and a merge undone within its day.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::model::{ContactId, Role};
use crm::store::duplicates::{Duplicate, DuplicatePage, DEFAULT_SCAN, MAX_SCAN};
use crm::store::merge::{MergeId, MergeRecord, MergeRequest, Merged};
use crm::store::Unmerged;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/contacts/duplicates", get(duplicates))
        .route("/api/contacts/merge", post(merge))
        .route("/api/contacts/merges", get(merges))
        .route("/api/contacts/merge/{id}/undo", post(undo))
}

/// The query string of the duplicates route, read by hand so a bad value
/// is a 400 that names it.
#[derive(Debug, Default, Deserialize)]
struct DuplicateParams {
    contact_id: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// One contact's likely duplicates.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DuplicateCandidates")]
pub(crate) struct Candidates {
    contact_id: ContactId,
    candidates: Vec<Duplicate>,
}

/// Either answer of the duplicates route.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Duplicates {
    Of(Candidates),
    Page(DuplicatePage),
}

/// With `contact_id`, returns the contacts that may be the same person as
/// that one, audited as `contact.duplicates` naming it; without, a page of
/// the account's likely duplicate pairs, walking `limit` contacts after
/// the `after` cursor. Supervisors and admins only.
async fn duplicates(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(params): Query<DuplicateParams>,
) -> Result<Json<Duplicates>, ApiError> {
    me.require(MANAGERS)?;
    let account = me.account();
    if let Some(id) = number("contact_id", params.contact_id.as_deref())? {
        let id = ContactId(id);
        let candidates = state.store.duplicates_of(account, id).await?;
        state
            .store
            .audit(
                &me.actor(),
                "contact.duplicates",
                Some(&format!("contact:{id}")),
                state.clock.now(),
            )
            .await?;
        return Ok(Json(Duplicates::Of(Candidates {
            contact_id: id,
            candidates,
        })));
    }
    let after = number("after", params.after.as_deref())?.map(ContactId);
    let limit = match number("limit", params.limit.as_deref())? {
        None => DEFAULT_SCAN,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_SCAN).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit must be from 1 to {MAX_SCAN}")))?,
    };
    let page = state.store.duplicate_pairs(account, after, limit).await?;
    Ok(Json(Duplicates::Page(page)))
}

/// Merges `merge` into `keep`, each at the version read; supervisors and
/// admins only. A contact of another account is a 404; a stale version, a
/// contact in a call or one already merged a 409; the same contact twice a
/// 400. Supervisors' open views learn which fields of the kept contact
/// were filled.
async fn merge(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<Merged>, ApiError> {
    me.require(MANAGERS)?;
    let req: MergeRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "bad merge: {e}; send keep, merge, version_keep and version_merge"
        ))
    })?;
    let now = state.clock.now();
    let merged = state.store.merge_contacts(&me.actor(), &req, now).await?;
    state.bus.publish(crm::events::Event::ContactEdited {
        account: me.account(),
        contact_id: merged.contact.id,
        version: merged.contact.version,
        fields: merged.filled.clone(),
        by: me.user.id,
        at: now,
    });
    Ok(Json(merged))
}

#[derive(Debug, Default, Deserialize)]
struct MergesParams {
    contact_id: Option<String>,
    limit: Option<String>,
}

/// Returns the account's merges, newest first: those of one contact (kept
/// or merged) with `contact_id`. Supervisors and admins only.
async fn merges(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(params): Query<MergesParams>,
) -> Result<Json<Vec<MergeRecord>>, ApiError> {
    me.require(MANAGERS)?;
    let contact = number("contact_id", params.contact_id.as_deref())?.map(ContactId);
    let limit = match number("limit", params.limit.as_deref())? {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(_) => return Err(ApiError::BadRequest("limit must be from 1 to 1000".into())),
    };
    Ok(Json(
        state.store.merges(me.account(), contact, limit).await?,
    ))
}

/// Undoes a merge within its day; supervisors and admins only. Another
/// account's merge is a 404; one undone, final, past its day or of a
/// contact in a call a 409.
async fn undo(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Unmerged>, ApiError> {
    me.require(MANAGERS)?;
    let now = state.clock.now();
    let undone = state
        .store
        .undo_merge(&me.actor(), MergeId(id), now)
        .await?;
    state.bus.publish(crm::events::Event::ContactEdited {
        account: me.account(),
        contact_id: undone.contact.id,
        version: undone.contact.version,
        fields: undone.cleared.clone(),
        by: me.user.id,
        at: now,
    });
    Ok(Json(undone))
}

/// Reads an optional whole-number parameter, naming it when it is not one.
fn number(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number"))),
    }
}
