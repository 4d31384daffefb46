//! Domain types of the CRM, shared by the dialler and the dashboard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vocab::CallRef;

/// The ids, defined in `vocab` so every crate names a row by one type.
pub use vocab::{
    AccountId, AttemptId, CampaignId, ContactId, DeliveryId, InteractionId, LeadId, ListId,
    QueueId, UserId, WebhookId,
};

/// A user's role, which decides what the server lets them do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes calls in the browser softphone.
    Agent,
    /// Watches the floor and manages campaigns and lists.
    Supervisor,
    /// Manages users and the account.
    Admin,
}

impl Role {
    /// Returns the role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Returns whether the role may manage lists, campaigns and reports.
    pub fn is_manager(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected agent, supervisor or admin"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant: a company with its users, contacts and campaigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// The account's unique name.
    pub name: String,
    /// How many agents may be logged in at once.
    pub seats: i64,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The account the user belongs to.
    pub account_id: AccountId,
    /// The unique login name.
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// Whether the user may log in.
    pub active: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// A server-side login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user the session belongs to.
    pub user: User,
    /// When the session stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// A contact's fields as given when it is created or changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContactFields {
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The number in E.164 form, `+` and digits.
    pub phone_e164: String,
    /// The number as it was entered or imported.
    pub phone_raw: String,
    /// Email address.
    pub email: Option<String>,
    /// Postal address, one free-text field.
    pub postal_address: Option<String>,
    /// Profession or job title.
    pub profession: Option<String>,
    /// IANA time zone, when known.
    pub time_zone: Option<String>,
    /// Any other columns, kept as a JSON object.
    #[sqlx(json)]
    pub custom_fields: serde_json::Value,
}

impl ContactFields {
    /// The most characters each text field may hold, as an edit allows
    /// ([`crate::edit`]). The names and the email are kept in search indexes,
    /// whose entries PostgreSQL caps at about 2.7 KB: an imported name of
    /// thousands of characters was refused by the database itself, which
    /// stopped the whole import at its batch.
    const MAX_CHARS: [(&'static str, usize); 7] = [
        ("first_name", crate::edit::MAX_SHORT),
        ("last_name", crate::edit::MAX_SHORT),
        ("phone_raw", 64),
        ("email", crate::edit::MAX_EMAIL),
        ("postal_address", crate::edit::MAX_ADDRESS),
        ("profession", crate::edit::MAX_SHORT),
        ("time_zone", crate::edit::MAX_SHORT),
    ];

    /// Says which field is longer than it may be, if one is; the reason
    /// names the field and its limit, never the value.
    pub fn too_long(&self) -> Option<String> {
        let texts = [
            Some(self.first_name.as_str()),
            Some(self.last_name.as_str()),
            Some(self.phone_raw.as_str()),
            self.email.as_deref(),
            self.postal_address.as_deref(),
            self.profession.as_deref(),
            self.time_zone.as_deref(),
        ];
        Self::MAX_CHARS
            .iter()
            .zip(texts)
            .find(|((_, max), text)| text.is_some_and(|t| t.chars().count() > *max))
            .map(|((name, max), _)| format!("{name} is longer than {max} characters"))
    }
}

/// A person the account may call.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Contact {
    /// The contact's id.
    pub id: ContactId,
    /// The account that holds the contact.
    pub account_id: AccountId,
    /// The contact's fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub fields: ContactFields,
    /// Counts the contact's changes; an edit names the version it read.
    pub version: i64,
    /// When the contact was created.
    pub created_at: DateTime<Utc>,
    /// When the contact was last changed.
    pub updated_at: DateTime<Utc>,
    /// The contact's values in the fields its account defined, by key
    /// (`fields` in the API). The Store's reads fill it in.
    #[serde(rename = "fields")]
    #[sqlx(skip)]
    pub values: crate::fields::FieldValues,
    /// The contact's other numbers: those of the contacts merged into it,
    /// oldest first. Never dialled. The Store's reads fill it in.
    #[sqlx(skip)]
    pub other_numbers: Vec<OtherNumber>,
}

/// Another number of a contact's, brought by a contact merged into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OtherNumber {
    /// The number in E.164 form.
    pub phone_e164: String,
    /// The number as it was entered or imported.
    pub phone_raw: String,
    /// When it became this contact's.
    pub added_at: DateTime<Utc>,
}

/// A call list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContactList {
    /// The list's id.
    pub id: ListId,
    /// The account that holds the list.
    pub account_id: AccountId,
    /// The list's name, unique in its account.
    pub name: String,
    /// The region used to read numbers given without a country code.
    pub default_region: String,
    /// How many contacts are on the list.
    pub size: i64,
    /// When the list was created.
    pub created_at: DateTime<Utc>,
}

/// Whether a campaign is dialling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// Dialling.
    Running,
    /// Not dialling for now.
    Paused,
    /// Finished.
    Stopped,
}

impl CampaignStatus {
    /// Returns the status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Stopped => "stopped",
        }
    }
}

impl std::str::FromStr for CampaignStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(CampaignStatus::Running),
            "paused" => Ok(CampaignStatus::Paused),
            "stopped" => Ok(CampaignStatus::Stopped),
            other => Err(format!("unknown campaign status {other:?}")),
        }
    }
}

/// A campaign: lists dialled under one caller ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Campaign {
    /// The campaign's id.
    pub id: CampaignId,
    /// The account that runs the campaign.
    pub account_id: AccountId,
    /// The campaign's name, unique in its account.
    pub name: String,
    /// The number presented to the called party, E.164.
    pub caller_id: String,
    /// Whether the campaign is dialling.
    pub status: CampaignStatus,
    /// The lists attached, in priority order; read from `campaign_lists`.
    #[sqlx(skip)]
    pub list_ids: Vec<ListId>,
    /// When the campaign was created.
    pub created_at: DateTime<Utc>,
}

/// One call placed (or tried) to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CallAttempt {
    /// The attempt's id.
    pub id: AttemptId,
    /// The account that placed the call.
    pub account_id: AccountId,
    /// The opaque random reference the gateway knows the call by.
    pub call_ref: CallRef,
    /// The campaign that placed the call, if any.
    pub campaign_id: Option<CampaignId>,
    /// The contact called; cut when the contact is erased.
    pub contact_id: Option<ContactId>,
    /// When the call was placed.
    pub started_at: DateTime<Utc>,
    /// When the far end answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How the call ended (busy, no-answer, answered, abandoned, ...).
    pub outcome: Option<String>,
    /// `outbound` for a call the account placed, `inbound` for one a
    /// customer made to one of its queues.
    pub direction: String,
}

/// Something that happened between the account and a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Interaction {
    /// The interaction's id.
    pub id: InteractionId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The contact concerned.
    pub contact_id: Option<ContactId>,
    /// The user who handled it.
    pub user_id: Option<UserId>,
    /// The call attempt it belongs to.
    pub attempt_id: Option<AttemptId>,
    /// What kind of interaction: call, note, callback, ...
    pub kind: String,
    /// The agent's disposition.
    pub disposition: Option<String>,
    /// Free-text notes.
    pub notes: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// A new interaction to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInteraction {
    /// The contact concerned.
    pub contact_id: ContactId,
    /// The user who handled it.
    pub user_id: Option<UserId>,
    /// The call attempt it belongs to.
    pub attempt_id: Option<AttemptId>,
    /// What kind of interaction.
    pub kind: String,
    /// The agent's disposition.
    pub disposition: Option<String>,
    /// Free-text notes.
    pub notes: Option<String>,
}

/// A do-not-call entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Suppression {
    /// The keyed hash of the E.164 number.
    pub number_hash: String,
    /// The number itself, absent once its contact was erased.
    pub number_e164: Option<String>,
    /// Why the number is suppressed.
    pub reason: String,
    /// Where the entry came from (agent, import, erasure, ...).
    pub source: String,
    /// When the entry was made.
    pub created_at: DateTime<Utc>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// The account the action was taken in.
    pub account_id: Option<AccountId>,
    /// Who acted.
    pub user_id: Option<UserId>,
    /// What was done, for example `login` or `list.export`.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// What it touched, by name only: the fields an edit changed.
    pub detail: Option<String>,
    /// When it was done.
    pub occurred_at: DateTime<Utc>,
}

/// Who did something, and from where, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The account the action was taken in.
    pub account_id: Option<AccountId>,
    /// Who acted.
    pub user_id: Option<UserId>,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}
