//! Row shapes read from either backend, and their conversion to the model.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::model::*;
use crate::StoreError;

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub id: i64,
    pub name: String,
    pub seats: i64,
    pub created_at: DateTime<Utc>,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            id: AccountId(r.id),
            name: r.name,
            seats: r.seats,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub account_id: i64,
    pub username: String,
    pub role: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId(r.id),
            account_id: AccountId(r.account_id),
            username: r.username,
            role: r.role.parse().map_err(StoreError::Invalid)?,
            active: r.active,
            created_at: r.created_at,
        })
    }
}

pub(crate) const CONTACT_COLUMNS: &str = "id, account_id, first_name, last_name, phone_e164, \
     phone_raw, email, postal_address, profession, time_zone, custom_fields, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    pub id: i64,
    pub account_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub phone_e164: String,
    pub phone_raw: String,
    pub email: Option<String>,
    pub postal_address: Option<String>,
    pub profession: Option<String>,
    pub time_zone: Option<String>,
    pub custom_fields: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Self {
        Contact {
            id: ContactId(r.id),
            account_id: AccountId(r.account_id),
            fields: ContactFields {
                first_name: r.first_name,
                last_name: r.last_name,
                phone_e164: r.phone_e164,
                phone_raw: r.phone_raw,
                email: r.email,
                postal_address: r.postal_address,
                profession: r.profession,
                time_zone: r.time_zone,
                custom_fields: r.custom_fields.0,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ListRow {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub default_region: String,
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

impl From<ListRow> for ContactList {
    fn from(r: ListRow) -> Self {
        ContactList {
            id: ListId(r.id),
            account_id: AccountId(r.account_id),
            name: r.name,
            default_region: r.default_region,
            size: r.size,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub caller_id: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl CampaignRow {
    pub fn into_campaign(self, list_ids: Vec<ListId>) -> Result<Campaign, StoreError> {
        Ok(Campaign {
            id: CampaignId(self.id),
            account_id: AccountId(self.account_id),
            name: self.name,
            caller_id: self.caller_id,
            status: self.status.parse().map_err(StoreError::Invalid)?,
            list_ids,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub id: i64,
    pub account_id: i64,
    pub call_ref: String,
    pub campaign_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

impl From<AttemptRow> for CallAttempt {
    fn from(r: AttemptRow) -> Self {
        CallAttempt {
            id: AttemptId(r.id),
            account_id: AccountId(r.account_id),
            call_ref: r.call_ref,
            campaign_id: r.campaign_id.map(CampaignId),
            contact_id: r.contact_id.map(ContactId),
            started_at: r.started_at,
            answered_at: r.answered_at,
            ended_at: r.ended_at,
            outcome: r.outcome,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InteractionRow {
    pub id: i64,
    pub account_id: i64,
    pub contact_id: Option<i64>,
    pub user_id: Option<i64>,
    pub attempt_id: Option<i64>,
    pub kind: String,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<InteractionRow> for Interaction {
    fn from(r: InteractionRow) -> Self {
        Interaction {
            id: InteractionId(r.id),
            account_id: AccountId(r.account_id),
            contact_id: r.contact_id.map(ContactId),
            user_id: r.user_id.map(UserId),
            attempt_id: r.attempt_id.map(AttemptId),
            kind: r.kind,
            disposition: r.disposition,
            notes: r.notes,
            occurred_at: r.occurred_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SuppressionRow {
    pub number_hash: String,
    pub number_e164: Option<String>,
    pub reason: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

impl From<SuppressionRow> for Suppression {
    fn from(r: SuppressionRow) -> Self {
        Suppression {
            number_hash: r.number_hash,
            number_e164: r.number_e164,
            reason: r.reason,
            source: r.source,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub account_id: Option<i64>,
    pub user_id: Option<i64>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            account_id: r.account_id.map(AccountId),
            user_id: r.user_id.map(UserId),
            action: r.action,
            target: r.target,
            ip: r.ip,
            user_agent: r.user_agent,
            occurred_at: r.occurred_at,
        }
    }
}
