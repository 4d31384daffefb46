//! What the agent's softphone needs from the store: the account's pause
//! codes, and the checks and the lease behind a number dialled by hand.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use dialer_core::{may_call, resolve_zone};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use super::leads::{ClaimedLead, LeadId, LeadState};
use super::nodes::{fenced, still_member, Holder};
use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId, CampaignStatus, ContactFields, ContactId};
use crate::StoreError;

/// A reason an agent gives for not taking calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PauseCode {
    /// What is stored and reported, e.g. `break`.
    pub code: String,
    /// What the agent sees, e.g. `Break`.
    pub label: String,
}

/// Reasons the service itself gives for pausing an agent; accounts may not
/// reuse them, so reports can tell them apart.
pub const SYSTEM_PAUSE_REASONS: [&str; 4] = ["login", "disconnected", "reconnected", "manual"];

/// The most pause codes one account may define.
pub const MAX_PAUSE_CODES: usize = 30;

/// Returns the pause codes of an account that never set its own.
pub fn default_pause_codes() -> Vec<PauseCode> {
    [
        ("break", "Break"),
        ("lunch", "Lunch"),
        ("training", "Training"),
        ("meeting", "Meeting"),
        ("admin", "Back-office work"),
    ]
    .into_iter()
    .map(|(code, label)| PauseCode {
        code: code.to_owned(),
        label: label.to_owned(),
    })
    .collect()
}

/// Checks a set of pause codes: 1 to 30, unique, codes of lower-case
/// letters, digits, `_` and `-` (at most 32), labels of 1 to 64 printable
/// characters, and none of the service's own reasons.
pub fn validate_pause_codes(codes: &[PauseCode]) -> Result<(), StoreError> {
    let invalid = |m: String| Err(StoreError::Invalid(m));
    if codes.is_empty() || codes.len() > MAX_PAUSE_CODES {
        return invalid(format!("give between 1 and {MAX_PAUSE_CODES} pause codes"));
    }
    for (i, c) in codes.iter().enumerate() {
        let well_formed = (1..=32).contains(&c.code.len())
            && c.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !well_formed {
            return invalid(format!(
                "pause code {:?}: use 1 to 32 lower-case letters, digits, '_' or '-'",
                c.code
            ));
        }
        if SYSTEM_PAUSE_REASONS.contains(&c.code.as_str()) {
            return invalid(format!("pause code {:?} is reserved", c.code));
        }
        let label_chars = c.label.trim().chars().count();
        if !(1..=64).contains(&label_chars) || c.label.chars().any(char::is_control) {
            return invalid(format!(
                "pause code {:?}: the label must be 1 to 64 printable characters",
                c.code
            ));
        }
        if codes[..i].iter().any(|earlier| earlier.code == c.code) {
            return invalid(format!("pause code {:?} appears twice", c.code));
        }
    }
    Ok(())
}

/// What stands in the way of dialling a number by hand now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualDialCheck {
    /// The number, E.164.
    pub e164: String,
    /// The account's contact with this number, when there is one.
    pub contact_id: Option<ContactId>,
    /// The number is on the account's do-not-call list: it must not be dialled.
    pub suppressed: bool,
    /// The contact's local time when outside the campaign's calling hours,
    /// e.g. `Sun 21:30 Europe/London`.
    pub outside_hours: Option<String>,
    /// Another call to this contact in this campaign is in progress.
    pub in_progress: bool,
}

impl Store {
    /// Returns an account's pause codes: its own, or the built-in list.
    pub async fn pause_codes(&self, account: AccountId) -> Result<Vec<PauseCode>, StoreError> {
        let stored: Option<Json<Vec<PauseCode>>> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT pause_codes FROM accounts WHERE id = $1"
        )
        .bind(account.0)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound)?);
        Ok(stored.map_or_else(default_pause_codes, |j| j.0))
    }

    /// Replaces an account's pause codes; `None` goes back to the built-in list.
    pub async fn set_pause_codes(
        &self,
        account: AccountId,
        codes: Option<&[PauseCode]>,
    ) -> Result<Vec<PauseCode>, StoreError> {
        if let Some(codes) = codes {
            validate_pause_codes(codes)?;
        }
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE accounts SET pause_codes = $1 WHERE id = $2"
        )
        .bind(codes.map(Json))
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.pause_codes(account).await
    }

    /// Checks a number an agent wants to dial by hand in a campaign:
    /// the do-not-call list, the contact's calling hours (by the contact's
    /// zone, else the number's, else the campaign's), and calls in progress.
    pub async fn check_manual_dial(
        &self,
        account: AccountId,
        campaign: CampaignId,
        e164: &str,
        now: DateTime<Utc>,
    ) -> Result<ManualDialCheck, StoreError> {
        if !is_e164(e164) {
            return Err(StoreError::Invalid(
                "a number to dial must be in E.164 form, + and 2 to 15 digits".into(),
            ));
        }
        let settings = self.campaign_settings(account, campaign).await?;
        let contact = self
            .contacts_by_number(account, e164)
            .await?
            .into_iter()
            .next();
        let zone = resolve_zone(
            contact.as_ref().and_then(|c| c.fields.time_zone.as_deref()),
            e164,
            settings.time_zone()?,
        )
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let window = settings.calling_hours.calling_window()?;
        let outside_hours = (!may_call(&window, zone.tz, now)).then(|| local_time(now, zone.tz));
        let in_progress = match &contact {
            Some(c) => self
                .lead_for_contact(account, campaign, c.id)
                .await
                .ok()
                .is_some_and(|l| {
                    l.state == LeadState::InProgress && l.lease_expires_at.is_some_and(|t| t > now)
                }),
            None => false,
        };
        Ok(ManualDialCheck {
            e164: e164.to_owned(),
            contact_id: contact.map(|c| c.id),
            suppressed: self.is_suppressed(account, e164).await?,
            outside_hours,
            in_progress,
        })
    }

    /// Leases the lead a manual dial calls, to `holder` until `now + lease`:
    /// the campaign's lead for the account's contact with this number,
    /// created (contact and lead) when there is none. A suppressed number
    /// or one being called is refused; the campaign must be running.
    pub async fn lease_manual_lead(
        &self,
        account: AccountId,
        campaign: CampaignId,
        e164: &str,
        holder: impl Into<Holder>,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<ClaimedLead, StoreError> {
        let holder = holder.into();
        let found = self.campaign(account, campaign).await?;
        if found.status != CampaignStatus::Running {
            return Err(StoreError::Invalid("the campaign is not dialling".into()));
        }
        let check = self.check_manual_dial(account, campaign, e164, now).await?;
        if check.suppressed {
            return Err(StoreError::Invalid(
                "the number is on the do-not-call list".into(),
            ));
        }
        let contact = match check.contact_id {
            Some(id) => self.contact(account, id).await?,
            None => {
                let fields = ContactFields {
                    first_name: String::new(),
                    last_name: String::new(),
                    phone_e164: e164.to_owned(),
                    phone_raw: e164.to_owned(),
                    email: None,
                    postal_address: None,
                    profession: None,
                    time_zone: None,
                    custom_fields: serde_json::json!({}),
                };
                self.create_contact(account, &fields, now).await?
            }
        };
        let settings = self.campaign_settings(account, campaign).await?;
        let zone = resolve_zone(
            contact.fields.time_zone.as_deref(),
            e164,
            settings.time_zone()?,
        )
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let expires = now + lease;
        let update = format!(
            "UPDATE leads SET state = 'in_progress', lease_owner = $1, lease_epoch = $7, \
             lease_expires_at = $2, updated_at = $3 \
             WHERE account_id = $4 AND campaign_id = $5 AND contact_id = $6 \
             AND (state <> 'in_progress' OR lease_expires_at <= $3) AND {} RETURNING id",
            still_member(self.backend(), 1, 7)
        );
        let leased: Option<i64> = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO leads (account_id, campaign_id, contact_id, priority, created_at, \
                 updated_at) VALUES ($1, $2, $3, 0, $4, $4) \
                 ON CONFLICT (campaign_id, contact_id) DO NOTHING",
            )
            .bind(account.0)
            .bind(campaign.0)
            .bind(contact.id.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = sqlx::query_scalar(&update)
                .bind(holder.name())
                .bind(expires)
                .bind(now)
                .bind(account.0)
                .bind(campaign.0)
                .bind(contact.id.0)
                .bind(holder.epoch())
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        });
        let Some(id) = leased else {
            if !self.holds_membership(&holder).await? {
                return Err(fenced(&holder));
            }
            return Err(StoreError::Conflict(
                "this contact is being called right now".into(),
            ));
        };
        Ok(ClaimedLead {
            id: LeadId(id),
            contact_id: contact.id,
            phone_e164: e164.to_owned(),
            time_zone: zone.tz,
            is_callback: false,
            callback_user: None,
            reserved_for: None,
            lease_expires_at: expires,
        })
    }
}

fn local_time(now: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} {}",
        now.with_timezone(&tz).format("%a %H:%M"),
        tz.name()
    )
}

fn is_e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a number typed by an agent in international form (`+44 20…`,
/// `0044 20…`), ignoring spaces, dots, dashes and brackets, and returns it
/// in E.164 when it is a valid number.
pub fn international_number(typed: &str) -> Option<String> {
    let kept: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')' | '\u{a0}'))
        .collect();
    let digits = kept.strip_prefix('+').or_else(|| kept.strip_prefix("00"))?;
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The region only matters for national numbers, which never get here.
    crate::import::e164(&format!("+{digits}"), phonenumber::country::Id::GB).ok()
}
