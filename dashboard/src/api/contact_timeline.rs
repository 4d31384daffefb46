//! `GET /api/contacts/{id}/timeline`: everything that happened to a
//! contact, newest first.

use axum::extract::{Path, Query, State};
use axum::Json;
use crm::model::{ContactId, Role};
use crm::store::timeline::{TimelineEntry, MAX_TIMELINE};
use crm::store::SearchScope;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

#[derive(Debug, Default, Deserialize)]
pub(super) struct TimelineParams {
    limit: Option<String>,
}

/// Returns a contact's timeline (calls, dispositions and notes, callbacks,
/// edits by field name, lists joined), audited as `contact.view`. An agent
/// reads only a lead of their campaigns, and only those campaigns' calls,
/// their interactions and callbacks, as on the card; any other contact is
/// a 404 to them.
pub(super) async fn timeline(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<TimelineParams>,
) -> Result<Json<Vec<TimelineEntry>>, ApiError> {
    let account = me.account();
    let id = ContactId(id);
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_TIMELINE).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_TIMELINE}"
                )))
            }
        },
    };
    let scope = match me.user.role {
        Role::Agent => {
            if !state
                .store
                .is_contact_of_agent(account, me.user.id, id)
                .await?
            {
                return Err(ApiError::NotFound);
            }
            SearchScope::Agent(me.user.id)
        }
        Role::Supervisor | Role::Admin => SearchScope::Account,
    };
    let entries = state
        .store
        .contact_timeline(account, id, scope, limit)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "contact.view",
            Some(&format!("contact:{id}")),
            state.clock.now(),
        )
        .await?;
    Ok(Json(entries))
}
