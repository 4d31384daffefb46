//! Contacts of the caller's account, with their history.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{CallAttempt, Contact, ContactId, Interaction, ListId};
use serde::Serialize;

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/contacts/{id}", get(one))
}

#[derive(Serialize)]
struct ContactCard {
    #[serde(flatten)]
    contact: Contact,
    lists: Vec<ListId>,
    attempts: Vec<CallAttempt>,
    interactions: Vec<Interaction>,
    suppressed: bool,
}

/// Returns a contact card. Any role of the account may read it for now; the
/// privacy work narrows agents to the contacts of their campaigns.
async fn one(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ContactCard>, ApiError> {
    let account = me.account();
    let id = ContactId(id);
    let contact = state.store.contact(account, id).await?;
    let suppressed = state
        .store
        .is_suppressed(account, &contact.fields.phone_e164)
        .await?;
    Ok(Json(ContactCard {
        lists: state.store.lists_of_contact(account, id).await?,
        attempts: state.store.attempts_for_contact(account, id).await?,
        interactions: state.store.interactions_for_contact(account, id).await?,
        suppressed,
        contact,
    }))
}
