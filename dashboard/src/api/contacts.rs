//! Contacts of the caller's account: the card with its history, and the
//! routes that find ([`super::contact_search`]), create and edit
//! ([`super::contact_edit`]) them and tell their story
//! ([`super::contact_timeline`]).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{CallAttempt, Contact, ContactId, Interaction, ListId, Role};
use schemars::JsonSchema;
use serde::Serialize;

use super::account_fields::hide_off_card;
use super::contact_edit::{create, edit};
use super::contact_search::search;
use super::contact_timeline::timeline;
use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/contacts", get(search).post(create))
        .route("/api/contacts/{id}", get(one).patch(edit))
        .route("/api/contacts/{id}/timeline", get(timeline))
}

/// A contact's card: the contact, its lists and its history.
#[derive(Serialize, JsonSchema)]
pub(crate) struct ContactCard {
    #[serde(flatten)]
    contact: Contact,
    lists: Vec<ListId>,
    attempts: Vec<CallAttempt>,
    interactions: Vec<Interaction>,
    suppressed: bool,
}

/// Returns a contact card, audited as `contact.view`. Supervisors and
/// admins read any contact of the account. An agent reads only a lead of a
/// campaign they are assigned to, only its history in those campaigns, and
/// only its values in the fields shown on the card; any other contact is a
/// 404, as another account's would be.
async fn one(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ContactCard>, ApiError> {
    let account = me.account();
    let id = ContactId(id);
    let agent = me.user.role == Role::Agent;
    if agent
        && !state
            .store
            .is_contact_of_agent(account, me.user.id, id)
            .await?
    {
        return Err(ApiError::NotFound);
    }
    let mut contact = state.store.contact(account, id).await?;
    hide_off_card(&state, account, me.user.role, &mut [&mut contact.values]).await?;
    let suppressed = state
        .store
        .is_suppressed(account, &contact.fields.phone_e164)
        .await?;
    let mut attempts = state.store.attempts_for_contact(account, id).await?;
    let mut interactions = state.store.interactions_for_contact(account, id).await?;
    if agent {
        let mine = state.store.agent_campaigns(account, me.user.id).await?;
        attempts.retain(|a| a.campaign_id.is_some_and(|c| mine.contains(&c)));
        interactions.retain(|i| {
            i.attempt_id
                .is_some_and(|at| attempts.iter().any(|a| a.id == at))
        });
    }
    // Who viewed which contact; the Store keeps only a count of it when the
    // account is aggregate-only.
    state
        .store
        .audit(
            &me.actor(),
            "contact.view",
            Some(&format!("contact:{id}")),
            state.clock.now(),
        )
        .await?;
    Ok(Json(ContactCard {
        lists: state.store.lists_of_contact(account, id).await?,
        attempts,
        interactions,
        suppressed,
        contact,
    }))
}
