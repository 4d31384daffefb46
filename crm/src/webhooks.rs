//! Webhooks: what an account's endpoints are told, and how it is signed.
//!
//! A fact the Store writes (a call answered or ended, a disposition saved, a
//! contact erased, two contacts merged, a campaign started or paused)
//! becomes an [`Occurrence`]:
//! its event, the contact it concerns and the ids, outcome and times that
//! describe it, never a personal value. The Store writes one delivery per
//! endpoint that takes the event in the same transaction as the fact
//! ([`crate::Store::claim_webhook_deliveries`] hands them to a sender).
//!
//! When a delivery is sent, [`payload`] adds the contact fields the endpoint
//! opted into, read from the contact as it is then: an erased contact has
//! none. [`signature_header`] signs the body as receivers verify it
//! (docs/api.md), and [`RetryPolicy`] spaces the attempts of a failing one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::model::{
    AttemptId, CampaignId, Contact, ContactId, DeliveryId, InteractionId, UserId, WebhookId,
};
use crate::store::merge::MergeId;
use vocab::CallRef;

/// The header that carries a delivery's signature.
pub const SIGNATURE_HEADER: &str = "Dialcrm-Signature";
/// The header that names a delivery; a retry carries the same value.
pub const DELIVERY_HEADER: &str = "Dialcrm-Delivery";
/// The header that names a delivery's event.
pub const EVENT_HEADER: &str = "Dialcrm-Event";

/// What an endpoint can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum WebhookEvent {
    /// A person or a machine answered a call the dialler placed.
    #[serde(rename = "call.answered")]
    CallAnswered,
    /// A call ended, with its outcome.
    #[serde(rename = "call.ended")]
    CallEnded,
    /// An agent saved a disposition for a call.
    #[serde(rename = "disposition.saved")]
    DispositionSaved,
    /// A contact was erased; its number stays suppressed.
    #[serde(rename = "contact.erased")]
    ContactErased,
    /// A supervisor merged a contact into another, which is kept.
    #[serde(rename = "contact.merged")]
    ContactMerged,
    /// A campaign started dialling.
    #[serde(rename = "campaign.started")]
    CampaignStarted,
    /// A campaign was paused.
    #[serde(rename = "campaign.paused")]
    CampaignPaused,
    /// A test delivery an admin asked for; no endpoint subscribes to it.
    #[serde(rename = "ping")]
    Ping,
}

impl WebhookEvent {
    /// The events an endpoint may subscribe to.
    pub const SUBSCRIBABLE: [WebhookEvent; 7] = [
        WebhookEvent::CallAnswered,
        WebhookEvent::CallEnded,
        WebhookEvent::DispositionSaved,
        WebhookEvent::ContactErased,
        WebhookEvent::ContactMerged,
        WebhookEvent::CampaignStarted,
        WebhookEvent::CampaignPaused,
    ];

    /// Returns whether the event concerns one contact, whose id it carries.
    pub fn concerns_contact(self) -> bool {
        matches!(
            self,
            WebhookEvent::CallAnswered
                | WebhookEvent::CallEnded
                | WebhookEvent::DispositionSaved
                | WebhookEvent::ContactErased
                | WebhookEvent::ContactMerged
        )
    }

    /// Returns the event's name as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::CallAnswered => "call.answered",
            WebhookEvent::CallEnded => "call.ended",
            WebhookEvent::DispositionSaved => "disposition.saved",
            WebhookEvent::ContactErased => "contact.erased",
            WebhookEvent::ContactMerged => "contact.merged",
            WebhookEvent::CampaignStarted => "campaign.started",
            WebhookEvent::CampaignPaused => "campaign.paused",
            WebhookEvent::Ping => "ping",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEvent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([WebhookEvent::Ping])
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect();
                format!("unknown event {s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// The contact fields an endpoint may opt into, besides `custom.NAME` for a
/// custom field; `notes` is the agent's notes of a disposition.
pub const CONTACT_FIELDS: [&str; 8] = [
    "first_name",
    "last_name",
    "phone",
    "email",
    "postal_address",
    "profession",
    "time_zone",
    "notes",
];

/// Checks a contact field's name as an endpoint opts into it.
pub fn check_contact_field(name: &str) -> Result<(), String> {
    if CONTACT_FIELDS.contains(&name) {
        return Ok(());
    }
    match name.strip_prefix("custom.") {
        Some(custom) if !custom.is_empty() && custom.len() <= 100 => {
            if custom.chars().any(char::is_control) {
                Err(format!("contact field {name:?} holds a control character"))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "unknown contact field {name:?}: expected one of {} or custom.NAME",
            CONTACT_FIELDS.join(", ")
        )),
    }
}

/// Checks an endpoint's URL: http or https, a host, no credentials, at most
/// 2,000 characters. Returns the URL as it will be called.
pub fn check_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() > 2000 {
        return Err("url: at most 2000 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url: the scheme must be http or https, not {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("url: a host is needed".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "url: no user name or password in the URL; verify the signature instead".into(),
        );
    }
    if url.fragment().is_some() {
        return Err("url: no #fragment".into());
    }
    Ok(url.to_string())
}

/// An endpoint's signing key: made by the service, shown once, kept so it
/// can sign, and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// Makes a new secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SigningSecret(format!("whsec_{}", hex::encode(bytes)))
    }

    /// Wraps a stored secret.
    pub fn from_stored(secret: String) -> Self {
        SigningSecret(secret)
    }

    /// Returns the secret; call sites are where it is deliberately used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// Returns the hex HMAC-SHA256, keyed by the secret, of `"{timestamp}.{body}"`.
pub fn sign(secret: &SigningSecret, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Returns the `Dialcrm-Signature` value: `t=<unix seconds>,v1=<hex>`.
pub fn signature_header(secret: &SigningSecret, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Checks a `Dialcrm-Signature` value as a receiver would: a `v1` that
/// matches, in constant time, and a timestamp within `tolerance` of `now`.
pub fn verify_signature(
    secret: &SigningSecret,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if (now - t).abs() > tolerance {
        return false;
    }
    signatures.iter().any(|s| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(s).is_ok()
    })
}

/// How a failing delivery is tried again: exponential backoff from `base`,
/// capped at `max`, with jitter, for at most `max_attempts` attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure.
    pub base: TimeDelta,
    /// The longest wait between two attempts.
    pub max: TimeDelta,
}

impl Default for RetryPolicy {
    /// Twelve attempts over about eight hours: 30 s, 1 min, 2 min… up to 2 h.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 12,
            base: TimeDelta::seconds(30),
            max: TimeDelta::hours(2),
        }
    }
}

impl RetryPolicy {
    /// Returns how long to wait after the `attempts`-th failed attempt, or
    /// `None` when no attempt is left. `jitter` in `[0, 1]` spreads the
    /// wait over its upper half, so endpoints that failed together are not
    /// all tried again at once.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Option<TimeDelta> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let full = self
            .base
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
            .max(TimeDelta::zero());
        let ms = full.num_milliseconds() as f64;
        let jitter = jitter.clamp(0.0, 1.0);
        Some(TimeDelta::milliseconds(
            (ms / 2.0 + jitter * ms / 2.0) as i64,
        ))
    }
}

/// A fact to report to the endpoints that take its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// The event.
    pub event: WebhookEvent,
    /// The contact it concerns, if one.
    pub contact: Option<ContactId>,
    /// Ids, outcome and times: never a personal value.
    pub data: Value,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// What a call was when an event about it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    /// The attempt's row.
    pub attempt_id: AttemptId,
    /// The call's opaque reference.
    pub call_ref: CallRef,
    /// The campaign that placed it.
    pub campaign_id: Option<CampaignId>,
    /// The contact called.
    pub contact_id: Option<ContactId>,
    /// When it was placed.
    pub started_at: DateTime<Utc>,
    /// When it was answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// `outbound` or `inbound`.
    pub direction: String,
}

impl CallFacts {
    /// Reads the facts of a call attempt.
    pub fn of(attempt: &crate::model::CallAttempt) -> Self {
        CallFacts {
            attempt_id: attempt.id,
            call_ref: attempt.call_ref,
            campaign_id: attempt.campaign_id,
            contact_id: attempt.contact_id,
            started_at: attempt.started_at,
            answered_at: attempt.answered_at,
            direction: attempt.direction.clone(),
        }
    }
}

impl Occurrence {
    /// A call was answered at `at`.
    pub fn call_answered(call: &CallFacts, at: DateTime<Utc>) -> Self {
        Occurrence {
            event: WebhookEvent::CallAnswered,
            contact: call.contact_id,
            data: json!({
                "attempt_id": call.attempt_id,
                "call_ref": call.call_ref,
                "campaign_id": call.campaign_id,
                "direction": call.direction,
                "started_at": call.started_at,
                "answered_at": at,
            }),
            at,
        }
    }

    /// A call ended at `at` with `outcome`.
    pub fn call_ended(call: &CallFacts, outcome: &str, at: DateTime<Utc>) -> Self {
        Occurrence {
            event: WebhookEvent::CallEnded,
            contact: call.contact_id,
            data: json!({
                "attempt_id": call.attempt_id,
                "call_ref": call.call_ref,
                "campaign_id": call.campaign_id,
                "direction": call.direction,
                "outcome": outcome,
                "started_at": call.started_at,
                "answered_at": call.answered_at,
                "ended_at": at,
            }),
            at,
        }
    }

    /// An agent saved a disposition.
    pub fn disposition_saved(
        interaction: InteractionId,
        contact: ContactId,
        agent: Option<UserId>,
        disposition: &str,
        call: Option<&CallFacts>,
        at: DateTime<Utc>,
    ) -> Self {
        Occurrence {
            event: WebhookEvent::DispositionSaved,
            contact: Some(contact),
            data: json!({
                "interaction_id": interaction,
                "disposition": disposition,
                "agent_id": agent,
                "attempt_id": call.map(|c| c.attempt_id),
                "call_ref": call.map(|c| c.call_ref),
                "campaign_id": call.and_then(|c| c.campaign_id),
                "saved_at": at,
            }),
            at,
        }
    }

    /// A contact was erased.
    pub fn contact_erased(contact: ContactId, at: DateTime<Utc>) -> Self {
        Occurrence {
            event: WebhookEvent::ContactErased,
            contact: Some(contact),
            data: json!({ "erased_at": at }),
            at,
        }
    }

    /// A contact was merged into another, the kept one, which is the
    /// contact the occurrence concerns.
    pub fn contact_merged(
        merge: MergeId,
        kept: ContactId,
        merged: ContactId,
        at: DateTime<Utc>,
    ) -> Self {
        Occurrence {
            event: WebhookEvent::ContactMerged,
            contact: Some(kept),
            data: json!({
                "merge_id": merge,
                "merged_contact_id": merged,
                "merged_at": at,
            }),
            at,
        }
    }

    /// A campaign started or was paused.
    pub fn campaign(
        event: WebhookEvent,
        campaign: CampaignId,
        name: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Occurrence {
            event,
            contact: None,
            data: json!({ "campaign_id": campaign, "name": name, "at": at }),
            at,
        }
    }

    /// A test delivery to one endpoint.
    pub fn ping(at: DateTime<Utc>) -> Self {
        Occurrence {
            event: WebhookEvent::Ping,
            contact: None,
            data: json!({ "message": "a test delivery from dialcrm" }),
            at,
        }
    }
}

/// A delivery as the sender reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The delivery.
    pub id: DeliveryId,
    /// The endpoint it goes to.
    pub endpoint_id: WebhookId,
    /// The account whose fact it reports.
    pub account_id: crate::model::AccountId,
    /// The event.
    pub event: WebhookEvent,
    /// The contact concerned; `None` once the contact is erased.
    pub contact_id: Option<ContactId>,
    /// Ids, outcome and times.
    pub data: Value,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// Builds the JSON body of a delivery: the facts, and under `contact` the
/// fields the endpoint opted into, when the contact still exists. An
/// erasure's delivery never carries a contact field; `notes` comes from the
/// disposition's interaction.
pub fn payload(
    out: &Outgoing,
    fields: &[String],
    contact: Option<&Contact>,
    notes: Option<&str>,
) -> Value {
    let mut data = match &out.data {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if out.event.concerns_contact() {
        data.insert("contact_id".into(), json!(out.contact_id));
    }
    let mut body = json!({
        "id": out.id,
        "event": out.event,
        "account_id": out.account_id,
        "occurred_at": out.occurred_at,
        "data": data,
    });
    if out.event == WebhookEvent::ContactErased {
        return body;
    }
    let mut opted = Map::new();
    for field in fields {
        if let Some(value) = field_value(field, contact, notes) {
            opted.insert(field.clone(), value);
        }
    }
    if !opted.is_empty() {
        body["contact"] = Value::Object(opted);
    }
    body
}

fn field_value(field: &str, contact: Option<&Contact>, notes: Option<&str>) -> Option<Value> {
    if field == "notes" {
        return notes.map(|n| json!(n));
    }
    let contact = contact?;
    let f = &contact.fields;
    // A field without a value is left out rather than sent empty.
    let text = |s: &str| (!s.is_empty()).then(|| json!(s));
    match field {
        "first_name" => text(&f.first_name),
        "last_name" => text(&f.last_name),
        "phone" => text(&f.phone_e164),
        "email" => f.email.as_deref().and_then(text),
        "postal_address" => f.postal_address.as_deref().and_then(text),
        "profession" => f.profession.as_deref().and_then(text),
        "time_zone" => f.time_zone.as_deref().and_then(text),
        other => {
            // The account's own field of that key, or an untyped value an
            // import kept before the field was defined.
            let name = other.strip_prefix("custom.")?;
            contact
                .values
                .get(name)
                .or_else(|| f.custom_fields.get(name))
                .filter(|v| !v.is_null())
                .cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, ContactFields};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_time() {
        let secret = SigningSecret::from_stored("whsec_test".into());
        let body = br#"{"event":"ping"}"#;
        let header = signature_header(&secret, 1_800_000_000, body);
        assert!(header.starts_with("t=1800000000,v1="));
        assert!(verify_signature(&secret, &header, body, 1_800_000_100, 300));
        assert!(!verify_signature(
            &secret,
            &header,
            b"{}",
            1_800_000_100,
            300
        ));
        let other = SigningSecret::from_stored("whsec_other".into());
        assert!(!verify_signature(&other, &header, body, 1_800_000_100, 300));
        assert!(!verify_signature(
            &secret,
            &header,
            body,
            1_800_001_000,
            300
        ));
        assert!(!verify_signature(
            &secret,
            "v1=00",
            body,
            1_800_000_000,
            300
        ));
        // Known vectors, as Python's hmac module and `openssl dgst -hmac`
        // compute them (the second is docs/api.md's verification example).
        assert_eq!(
            sign(&SigningSecret::from_stored("key".into()), 1, b"x"),
            "fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec"
        );
        assert_eq!(
            sign(&secret, 1_800_000_000, body),
            "9aebf0ca7cbae9fa64d9939a08b9263193cbd5026b4486daf6197083f204c44a"
        );
    }

    #[test]
    fn secrets_are_random_and_never_printed() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), "whsec_".len() + 64);
        assert_eq!(format!("{a:?}"), "SigningSecret(***)");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: TimeDelta::seconds(10),
            max: TimeDelta::seconds(35),
        };
        assert_eq!(p.delay(1, 1.0), Some(TimeDelta::seconds(10)));
        assert_eq!(p.delay(1, 0.0), Some(TimeDelta::seconds(5)));
        assert_eq!(p.delay(2, 1.0), Some(TimeDelta::seconds(20)));
        assert_eq!(p.delay(3, 1.0), Some(TimeDelta::seconds(35)), "capped");
        assert_eq!(p.delay(4, 0.5), Some(TimeDelta::milliseconds(26_250)));
        assert_eq!(p.delay(5, 1.0), None, "five attempts made");
        let long = RetryPolicy {
            max_attempts: 100,
            ..RetryPolicy::default()
        };
        assert_eq!(long.delay(90, 1.0), Some(TimeDelta::hours(2)));
    }

    #[test]
    fn only_http_urls_without_credentials_are_taken() {
        assert_eq!(
            check_url(" https://hooks.example.com/in?x=1 ").as_deref(),
            Ok("https://hooks.example.com/in?x=1")
        );
        assert!(check_url("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
            "https://example.com/#top",
            "not a url",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contact_fields_are_known_names_or_custom_ones() {
        assert!(check_contact_field("phone").is_ok());
        assert!(check_contact_field("custom.plan").is_ok());
        assert!(check_contact_field("custom.").is_err());
        assert!(check_contact_field("phone_e164").is_err());
        assert!(check_contact_field("password").is_err());
    }

    #[test]
    fn a_payload_carries_only_the_opted_fields_and_never_an_erased_persons() {
        let contact = Contact {
            id: ContactId(5),
            account_id: AccountId(1),
            fields: ContactFields {
                first_name: "Ann".into(),
                last_name: "Smith".into(),
                phone_e164: "+447700900123".into(),
                phone_raw: "07700 900123".into(),
                email: Some("ann@example.com".into()),
                custom_fields: json!({ "plan": "gold" }),
                ..ContactFields::default()
            },
            version: 1,
            created_at: t0(),
            updated_at: t0(),
            values: [("tier".to_owned(), json!("silver"))].into_iter().collect(),
            other_numbers: Vec::new(),
        };
        let call = CallFacts {
            attempt_id: AttemptId(9),
            call_ref: CallRef::from_u128(0xabc),
            campaign_id: Some(CampaignId(3)),
            contact_id: Some(ContactId(5)),
            started_at: t0(),
            answered_at: Some(t0()),
            direction: "inbound".into(),
        };
        let o = Occurrence::call_ended(&call, "answered", t0());
        let out = Outgoing {
            id: DeliveryId(1),
            endpoint_id: WebhookId(2),
            account_id: AccountId(1),
            event: o.event,
            contact_id: o.contact,
            data: o.data,
            occurred_at: o.at,
            attempts: 0,
        };
        let bare = payload(&out, &[], Some(&contact), None);
        assert_eq!(bare["event"], "call.ended");
        assert_eq!(bare["data"]["contact_id"], 5);
        assert_eq!(bare["data"]["outcome"], "answered");
        assert_eq!(bare["data"]["direction"], "inbound");
        assert!(bare.get("contact").is_none());
        let text = bare.to_string();
        for personal in [
            "Ann",
            "Smith",
            "+447700900123",
            "ann@example.com",
            "gold",
            "silver",
        ] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
        let fields = vec![
            "first_name".to_owned(),
            "custom.plan".to_owned(),
            "custom.tier".to_owned(),
        ];
        let opted = payload(&out, &fields, Some(&contact), None);
        assert_eq!(
            opted["contact"],
            json!({ "first_name": "Ann", "custom.plan": "gold", "custom.tier": "silver" }),
            "an account's own field, and an untyped value an import kept"
        );
        assert!(!opted.to_string().contains("Smith"));

        let erased = Occurrence::contact_erased(ContactId(5), t0());
        let out = Outgoing {
            event: erased.event,
            data: erased.data,
            ..out
        };
        let body = payload(&out, &fields, Some(&contact), Some("notes"));
        assert!(body.get("contact").is_none(), "{body}");
        assert_eq!(body["data"]["contact_id"], 5);
    }

    #[test]
    fn a_merge_is_told_by_ids_and_names_the_kept_contact_as_its_contact() {
        let o = Occurrence::contact_merged(MergeId(17), ContactId(5), ContactId(9), t0());
        assert_eq!(o.contact, Some(ContactId(5)));
        let out = Outgoing {
            id: DeliveryId(1),
            endpoint_id: WebhookId(2),
            account_id: AccountId(1),
            event: o.event,
            contact_id: o.contact,
            data: o.data,
            occurred_at: o.at,
            attempts: 0,
        };
        let body = payload(&out, &[], None, None);
        assert_eq!(body["event"], "contact.merged");
        assert_eq!(
            body["data"],
            json!({
                "contact_id": 5,
                "merged_contact_id": 9,
                "merge_id": 17,
                "merged_at": "2026-11-27T09:00:00Z",
            })
        );
        assert_eq!(
            "contact.merged".parse::<WebhookEvent>(),
            Ok(WebhookEvent::ContactMerged)
        );
        assert!(WebhookEvent::SUBSCRIBABLE.contains(&WebhookEvent::ContactMerged));
    }
}
