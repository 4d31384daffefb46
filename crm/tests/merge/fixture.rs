//! Two records of one person with every kind of history, and helpers.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::duplicates::DuplicateReason;
use crm::edit::{ContactChange, NewContact};
use crm::fields::{FieldKind, NewField};
use crm::model::*;
use crm::store::erasure::NewRecording;
use crm::store::leads::Lead;
use crm::store::merge::{MergeId, MergeRequest};
use crm::webhooks::WebhookEvent;
use crm::Store;
use vocab::CallRef;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

pub fn actor(account: AccountId) -> Actor {
    Actor {
        account_id: Some(account),
        ..Actor::default()
    }
}

pub async fn add(s: &Store, account: AccountId, body: serde_json::Value) -> Contact {
    let new: NewContact = serde_json::from_value(body).expect("a valid new contact");
    s.add_contact(&actor(account), &new, t0())
        .await
        .expect("created")
        .contact
}

pub async fn define(s: &Store, account: AccountId, key: &str) {
    s.define_field(
        &actor(account),
        &NewField {
            key: key.into(),
            kind: Some(FieldKind::Text),
            ..NewField::default()
        },
        t0(),
    )
    .await
    .expect("field");
}

pub async fn merge(s: &Store, account: AccountId, keep: ContactId, merge: ContactId) -> MergeId {
    let k = s.contact(account, keep).await.expect("kept");
    let m = s.contact(account, merge).await.expect("merged");
    s.merge_contacts(
        &actor(account),
        &MergeRequest {
            keep,
            merge,
            version_keep: k.version,
            version_merge: m.version,
        },
        t0(),
    )
    .await
    .expect("merged")
    .merge_id
}

pub fn reasons_of(
    found: &[crm::store::duplicates::Duplicate],
    id: ContactId,
) -> Vec<DuplicateReason> {
    found
        .iter()
        .find(|d| d.contact.id == id)
        .map(|d| d.reasons.clone())
        .unwrap_or_default()
}

/// Two records of one person with every kind of history, the merged one
/// (`m`) holding what the kept one (`k`) lacks.
pub struct History {
    pub account: AccountId,
    pub k: Contact,
    pub m: Contact,
    pub lists: [ListId; 2],
    pub campaigns: [CampaignId; 2],
    pub webhook: WebhookId,
    pub m_attempt: AttemptId,
    pub m_interaction: InteractionId,
    pub k_attempt: AttemptId,
}

pub async fn history(s: &Store, name: &str) -> History {
    let account = s.create_account(name, 1, t0()).await.expect("account").id;
    define(s, account, "tier").await;
    define(s, account, "region").await;
    let l1 = s
        .create_list(account, "L1", "GB", t0())
        .await
        .expect("list")
        .id;
    let l2 = s
        .create_list(account, "L2", "GB", t0())
        .await
        .expect("list")
        .id;
    let c1 = s
        .create_campaign(account, "C1", "+441632960000", t0())
        .await
        .expect("campaign")
        .id;
    let c2 = s
        .create_campaign(account, "C2", "+441632960000", t0())
        .await
        .expect("campaign")
        .id;
    s.attach_list(account, c1, l1, 0).await.expect("attach");
    s.attach_list(account, c2, l2, 0).await.expect("attach");
    let webhook = s
        .create_webhook(
            account,
            &crm::store::webhooks::NewEndpoint {
                url: "https://hooks.example.com/in".into(),
                events: vec![WebhookEvent::CallEnded],
                active: true,
                ..Default::default()
            },
            t0(),
        )
        .await
        .expect("webhook")
        .0
        .id;
    let k = add(
        s,
        account,
        serde_json::json!({
            "first_name": "Ada", "phone": "+447400300001", "list_id": l1,
            "custom_fields": { "plan": "gold" }, "fields": { "region": "south" }
        }),
    )
    .await;
    let m = add(
        s,
        account,
        serde_json::json!({
            "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400300002",
            "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
            "list_id": l1, "custom_fields": { "plan": "silver", "source": "fair" },
            "fields": { "tier": "silver", "region": "north" }
        }),
    )
    .await;
    s.add_to_list(account, l2, m.id, t0())
        .await
        .expect("second list");
    // An edit of the merged contact, which the kept one's timeline inherits.
    s.edit_contact(
        &actor(account),
        m.id,
        m.version,
        &ContactChange {
            profession: Some(Some("Mathematician".into())),
            ..ContactChange::default()
        },
        t0(),
    )
    .await
    .expect("edited");
    s.sync_leads(account, c1, t0()).await.expect("leads");
    s.sync_leads(account, c2, t0()).await.expect("leads");
    // Only the merged contact's lead in C1 has a callback: it wins.
    let m_lead = s.lead_for_contact(account, c1, m.id).await.expect("lead");
    s.schedule_callback(account, m_lead.id, t0() + Duration::days(2), None, t0())
        .await
        .expect("callback");
    let m_attempt = s
        .create_attempt(account, CallRef::random(), Some(c1), Some(m.id), t0())
        .await
        .expect("attempt")
        .id;
    s.mark_ended(account, m_attempt, "answered", t0() + Duration::seconds(90))
        .await
        .expect("ended");
    let m_interaction = s
        .record_interaction(
            account,
            &NewInteraction {
                contact_id: m.id,
                user_id: None,
                attempt_id: Some(m_attempt),
                kind: "call".into(),
                disposition: Some("callback".into()),
                notes: Some("wants a call on Friday".into()),
            },
            t0() + Duration::seconds(95),
        )
        .await
        .expect("interaction")
        .id;
    s.add_recording(
        account,
        &NewRecording {
            attempt_id: Some(m_attempt),
            call_ref: None,
            contact_id: Some(m.id),
            path: std::env::temp_dir().join("dialcrm-merge-test-recording.wav"),
        },
        t0(),
    )
    .await
    .expect("recording");
    let k_attempt = s
        .create_attempt(account, CallRef::random(), Some(c1), Some(k.id), t0())
        .await
        .expect("attempt")
        .id;
    s.mark_ended(
        account,
        k_attempt,
        "no_answer",
        t0() + Duration::seconds(30),
    )
    .await
    .expect("ended");
    History {
        account,
        k: s.contact(account, k.id).await.expect("k"),
        m: s.contact(account, m.id).await.expect("m"),
        lists: [l1, l2],
        campaigns: [c1, c2],
        webhook,
        m_attempt,
        m_interaction,
        k_attempt,
    }
}

/// Everything held about one contact, but its version and when it changed.
#[derive(Debug, PartialEq)]
pub struct Held {
    pub fields: ContactFields,
    pub values: crm::fields::FieldValues,
    pub other_numbers: Vec<OtherNumber>,
    pub merged_into: Option<ContactId>,
    pub attempts: Vec<AttemptId>,
    pub interactions: Vec<InteractionId>,
    pub recordings: usize,
    pub lists: Vec<ListId>,
    pub leads: Vec<Lead>,
    pub deliveries: usize,
    pub suppressed: bool,
}

pub async fn held(s: &Store, h: &History, id: ContactId) -> Held {
    let a = h.account;
    let c = s.contact(a, id).await.expect("contact");
    let mut leads = Vec::new();
    for campaign in h.campaigns {
        if let Ok(l) = s.lead_for_contact(a, campaign, id).await {
            leads.push(l);
        }
    }
    Held {
        suppressed: s.is_suppressed(a, &c.fields.phone_e164).await.expect("q"),
        fields: c.fields,
        values: c.values,
        other_numbers: c.other_numbers,
        merged_into: s.merged_into(a, id).await.expect("q"),
        attempts: s
            .attempts_for_contact(a, id)
            .await
            .expect("q")
            .into_iter()
            .map(|x| x.id)
            .collect(),
        interactions: s
            .interactions_for_contact(a, id)
            .await
            .expect("q")
            .into_iter()
            .map(|x| x.id)
            .collect(),
        recordings: s.recordings_for_contact(a, id).await.expect("q").len(),
        lists: s.lists_of_contact(a, id).await.expect("q"),
        leads,
        deliveries: s
            .webhook_deliveries(a, h.webhook, 100, None)
            .await
            .expect("q")
            .iter()
            .filter(|d| d.contact_id == Some(id))
            .count(),
    }
}
