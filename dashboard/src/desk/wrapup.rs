//! Saving an agent's disposition: the interaction, and what it sets off
//! (do-not-call, a callback).

use chrono::{DateTime, Utc};
use crm::model::{CampaignId, NewInteraction, User};
use sip_gateway::gateway::CallRef;

use crate::{ApiError, AppState};

/// What the agent said about a finished call.
#[derive(Debug, Clone)]
pub struct Wrapup<'a> {
    /// The campaign the call belonged to.
    pub campaign: CampaignId,
    /// The call.
    pub call_ref: CallRef,
    /// One of the campaign's dispositions.
    pub disposition: &'a str,
    /// Free-text notes.
    pub notes: Option<&'a str>,
    /// When to call back, for a callback disposition.
    pub callback_at: Option<DateTime<Utc>>,
    /// Whether the callback is for this agent only.
    pub callback_mine: bool,
}

/// Records the interaction and acts on the disposition.
pub async fn save(state: &AppState, user: &User, w: Wrapup<'_>) -> Result<(), ApiError> {
    let store = &state.store;
    let account = user.account_id;
    let now = state.clock.now();
    let attempt = store.attempt_by_ref(account, w.call_ref).await?;
    // An inbound call is logged against its queue's campaign, whose
    // dispositions apply, whatever campaign the agent works.
    let campaign = attempt.campaign_id.unwrap_or(w.campaign);
    let settings = store.campaign_settings(account, campaign).await?;
    let Some(disposition) = settings.disposition(w.disposition).cloned() else {
        return Err(ApiError::BadRequest(format!(
            "{:?} is not a disposition of this campaign",
            w.disposition
        )));
    };
    if disposition.schedules_callback && w.callback_at.is_none_or(|at| at <= now) {
        return Err(ApiError::BadRequest(
            "a callback needs a callback_at time in the future".into(),
        ));
    }
    let notes = w.notes.map(|n| n.chars().take(10_000).collect::<String>());
    let Some(contact_id) = attempt.contact_id else {
        return Err(ApiError::Conflict(
            "the contact of this call no longer exists".into(),
        ));
    };
    store
        .record_interaction(
            account,
            &NewInteraction {
                contact_id,
                user_id: Some(user.id),
                attempt_id: Some(attempt.id),
                kind: "call".into(),
                disposition: Some(disposition.name.clone()),
                notes,
            },
            now,
        )
        .await?;
    if disposition.suppresses {
        let contact = store.contact(account, contact_id).await?;
        store
            .suppress(
                account,
                &contact.fields.phone_e164,
                "do-not-call",
                "agent",
                now,
            )
            .await?;
    }
    if let (true, Some(at)) = (disposition.schedules_callback, w.callback_at) {
        let lead = store
            .lead_for_contact(account, campaign, contact_id)
            .await?;
        let owner = w.callback_mine.then_some(user.id);
        store
            .schedule_callback(account, lead.id, at, owner, now)
            .await?;
    }
    audit_call(state, user, "call.disposition", attempt.id).await
}

/// Closes a wrap-up the agent left past the campaign's limit: the call is
/// logged as an interaction without a disposition, and the lead is left as
/// the call's outcome put it. Audited as `call.wrap_up_expired`.
pub async fn expire(state: &AppState, user: &User, call_ref: CallRef) -> Result<(), ApiError> {
    let store = &state.store;
    let account = user.account_id;
    let now = state.clock.now();
    let attempt = store.attempt_by_ref(account, call_ref).await?;
    if let Some(contact_id) = attempt.contact_id {
        store
            .record_interaction(
                account,
                &NewInteraction {
                    contact_id,
                    user_id: Some(user.id),
                    attempt_id: Some(attempt.id),
                    kind: "call".into(),
                    disposition: None,
                    notes: None,
                },
                now,
            )
            .await?;
    }
    audit_call(state, user, "call.wrap_up_expired", attempt.id).await
}

/// Reads what the desk's wrap-up deadline counts from: when the call ended
/// (if the store says) and the campaign's limit in seconds (if it can be
/// read; 0 for none).
pub(super) async fn limit(
    state: &AppState,
    user: &User,
    call: CallRef,
    campaign: Option<CampaignId>,
) -> (Option<DateTime<Utc>>, Option<u32>) {
    let Some(campaign) = campaign else {
        return (None, None);
    };
    let store = &state.store;
    let Ok(settings) = store.campaign_settings(user.account_id, campaign).await else {
        return (None, None);
    };
    let ended_at = store
        .attempt_by_ref(user.account_id, call)
        .await
        .ok()
        .and_then(|a| a.ended_at);
    (ended_at, Some(settings.wrap_up_limit_secs))
}

/// Writes what the agent did to a call in the audit log.
async fn audit_call(
    state: &AppState,
    user: &User,
    action: &str,
    attempt: crm::model::AttemptId,
) -> Result<(), ApiError> {
    let actor = crm::model::Actor {
        account_id: Some(user.account_id),
        user_id: Some(user.id),
        ..crm::model::Actor::default()
    };
    let target = format!("attempt:{attempt}");
    state
        .store
        .audit(&actor, action, Some(&target), state.clock.now())
        .await?;
    Ok(())
}
