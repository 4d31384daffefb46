//! Inbound queues: the numbers customers call (`queue_numbers`), the
//! queues they route to (`queues`, with opening hours, messages, the
//! longest wait and what happens after it, the service-level target), and
//! the agents who answer each queue with a skill from 1 to 10
//! (`queue_agents`).
//!
//! A queue's calls are logged against its campaign, whose dispositions,
//! script and wrap-up they use, as `call_attempts` rows with direction
//! `inbound`: the caller's contact is found by number (or created for a
//! number never seen), with a lead in that campaign that is `done`, so the
//! dialler never calls them of its own accord but a callback can be booked
//! and the agents of the campaign may read the card. These rows never
//! touch `connected_at` or `abandoned_at`, so a campaign's outbound
//! abandon figures never count them. The calls themselves, as they happen
//! and as reports read them back, are in [`calls`].

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use dialer_core::may_call;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

mod calls;

pub use calls::{ArrivedCall, InboundOutcome, QueueHour, QueueReport};

use super::campaign_settings::WeeklyHours;
use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId, QueueId, Role, UserId};
use crate::StoreError;

/// What happens to a caller who has waited the queue's longest wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// They may leave a message, filed against their contact.
    #[default]
    Voicemail,
    /// They may press 1 to be called back when an agent is free.
    Callback,
    /// They hear the closed message and the call ends.
    Hangup,
}

impl Overflow {
    /// The name as stored and written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::Voicemail => "voicemail",
            Overflow::Callback => "callback",
            Overflow::Hangup => "hangup",
        }
    }

    /// Reads a stored or typed name.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "voicemail" => Ok(Overflow::Voicemail),
            "callback" => Ok(Overflow::Callback),
            "hangup" => Ok(Overflow::Hangup),
            other => Err(StoreError::Invalid(format!(
                "overflow {other:?} is not one of voicemail, callback, hangup"
            ))),
        }
    }
}

/// How a queue works; everything but its name and numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueSettings {
    /// The campaign its calls are logged against.
    pub campaign_id: CampaignId,
    /// Higher first, when an agent in several queues becomes free.
    pub priority: i64,
    /// When the queue takes calls, in `time_zone`.
    pub opening_hours: WeeklyHours,
    /// The IANA zone of the opening hours.
    pub time_zone: String,
    /// A WAV played to every caller first.
    pub welcome_message: Option<String>,
    /// A WAV played, again and again, while the caller waits; the hold
    /// tone when absent.
    pub hold_music: Option<String>,
    /// A WAV played outside opening hours before the call ends.
    pub closed_message: Option<String>,
    /// A WAV inviting a message (or, with the callback overflow, to press 1).
    pub voicemail_message: Option<String>,
    /// The longest a caller waits before the overflow, in seconds.
    pub max_wait_secs: u32,
    /// What the overflow offers.
    pub overflow: Overflow,
    /// The service-level target: `service_level_pct` percent of calls
    /// answered within `service_level_secs` seconds.
    pub service_level_secs: u32,
    /// See `service_level_secs`.
    pub service_level_pct: u32,
    /// Whether its calls are recorded.
    pub record_calls: bool,
    /// How long a desk phone rings before the call goes to the next agent.
    pub ring_secs: u32,
}

impl QueueSettings {
    /// Defaults for a queue logging its calls against `campaign`: open
    /// 08:00–21:00 London time, two minutes' wait then voicemail, 80 % in
    /// 20 seconds, not recorded.
    pub fn new(campaign: CampaignId) -> Self {
        QueueSettings {
            campaign_id: campaign,
            priority: 0,
            opening_hours: WeeklyHours::default(),
            time_zone: "Europe/London".into(),
            welcome_message: None,
            hold_music: None,
            closed_message: None,
            voicemail_message: None,
            max_wait_secs: 120,
            overflow: Overflow::Voicemail,
            service_level_secs: 20,
            service_level_pct: 80,
            record_calls: false,
            ring_secs: 15,
        }
    }

    /// Checks what the database would refuse, with a clear message.
    pub fn check(&self) -> Result<(), StoreError> {
        self.zone()?;
        self.opening_hours.calling_window()?;
        if self.max_wait_secs < 5 {
            return Err(StoreError::Invalid(
                "max_wait_secs must be at least 5".into(),
            ));
        }
        if self.service_level_secs < 1 || !(1..=100).contains(&self.service_level_pct) {
            return Err(StoreError::Invalid(
                "the service level is 1 to 100 percent within at least 1 second".into(),
            ));
        }
        if self.ring_secs < 5 {
            return Err(StoreError::Invalid("ring_secs must be at least 5".into()));
        }
        Ok(())
    }

    /// The zone of the opening hours.
    pub fn zone(&self) -> Result<Tz, StoreError> {
        self.time_zone
            .parse()
            .map_err(|_| StoreError::Invalid(format!("unknown time zone {:?}", self.time_zone)))
    }

    /// Whether the queue is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        match (self.opening_hours.calling_window(), self.zone()) {
            (Ok(window), Ok(tz)) => may_call(&window, tz, now),
            _ => false,
        }
    }
}

/// A queue with its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Queue {
    /// The queue's id.
    pub id: QueueId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Its name, unique in the account.
    pub name: String,
    /// How it works.
    #[serde(flatten)]
    pub settings: QueueSettings,
    /// The numbers (E.164) routed to it.
    pub numbers: Vec<String>,
}

/// An agent answering a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueMember {
    /// The user.
    pub user_id: UserId,
    /// Their username.
    pub username: String,
    /// 1 to 10; the best-skilled free agents get calls first.
    pub skill: u8,
}

/// A queue an agent answers, as the dialler matches calls to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The queue.
    pub queue_id: QueueId,
    /// The agent's skill in it.
    pub skill: u8,
    /// The queue's priority.
    pub priority: i64,
}

#[derive(sqlx::FromRow)]
struct QueueRow {
    id: i64,
    account_id: i64,
    name: String,
    campaign_id: i64,
    priority: i64,
    opening_hours: Json<WeeklyHours>,
    time_zone: String,
    welcome_message: Option<String>,
    hold_music: Option<String>,
    closed_message: Option<String>,
    voicemail_message: Option<String>,
    max_wait_secs: i64,
    overflow: String,
    service_level_secs: i64,
    service_level_pct: i64,
    record_calls: bool,
    ring_secs: i64,
}

const QUEUE_COLUMNS: &str = "id, account_id, name, campaign_id, priority, opening_hours, \
     time_zone, welcome_message, hold_music, closed_message, voicemail_message, max_wait_secs, \
     overflow, service_level_secs, service_level_pct, record_calls, ring_secs";

/// Routes a number to a queue; a number routed elsewhere is a unique violation.
const INSERT_NUMBER: &str = "INSERT INTO queue_numbers (number, account_id, queue_id, created_at) \
     VALUES ($1, $2, $3, $4)";

fn secs(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl QueueRow {
    fn into_queue(self, numbers: Vec<String>) -> Queue {
        Queue {
            id: QueueId(self.id),
            account_id: AccountId(self.account_id),
            name: self.name,
            settings: QueueSettings {
                campaign_id: CampaignId(self.campaign_id),
                priority: self.priority,
                opening_hours: self.opening_hours.0,
                time_zone: self.time_zone,
                welcome_message: self.welcome_message,
                hold_music: self.hold_music,
                closed_message: self.closed_message,
                voicemail_message: self.voicemail_message,
                max_wait_secs: secs(self.max_wait_secs),
                overflow: Overflow::parse(&self.overflow).unwrap_or_default(),
                service_level_secs: secs(self.service_level_secs),
                service_level_pct: secs(self.service_level_pct),
                record_calls: self.record_calls,
                ring_secs: secs(self.ring_secs),
            },
            numbers,
        }
    }
}

/// Checks a number a queue is to be reached on: E.164, `+` and 2 to 15 digits.
pub(super) fn check_number(number: &str) -> Result<(), StoreError> {
    let digits = number.strip_prefix('+').unwrap_or("");
    if (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{number:?} is not a number in E.164 form (+ and 2 to 15 digits)"
        )))
    }
}

impl Store {
    /// Creates a queue reached on `numbers`; a number another queue (of
    /// any account) has is refused, and so is a name the account has.
    pub async fn create_queue(
        &self,
        account: AccountId,
        name: &str,
        settings: &QueueSettings,
        numbers: &[String],
        now: DateTime<Utc>,
    ) -> Result<Queue, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(StoreError::Invalid(
                "a queue's name is 1 to 100 characters".into(),
            ));
        }
        settings.check()?;
        self.campaign(account, settings.campaign_id).await?;
        for number in numbers {
            check_number(number)?;
        }
        let sql = format!(
            "INSERT INTO queues (account_id, name, campaign_id, priority, opening_hours, \
             time_zone, welcome_message, hold_music, closed_message, voicemail_message, \
             max_wait_secs, overflow, service_level_secs, service_level_pct, record_calls, \
             ring_secs, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $17) RETURNING {QUEUE_COLUMNS}"
        );
        let row: QueueRow = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row: QueueRow = sqlx::query_as(&sql)
                .bind(account.0)
                .bind(name)
                .bind(settings.campaign_id.0)
                .bind(settings.priority)
                .bind(Json(&settings.opening_hours))
                .bind(&settings.time_zone)
                .bind(&settings.welcome_message)
                .bind(&settings.hold_music)
                .bind(&settings.closed_message)
                .bind(&settings.voicemail_message)
                .bind(i64::from(settings.max_wait_secs))
                .bind(settings.overflow.as_str())
                .bind(i64::from(settings.service_level_secs))
                .bind(i64::from(settings.service_level_pct))
                .bind(settings.record_calls)
                .bind(i64::from(settings.ring_secs))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| unique_as_conflict(e, "the account has a queue of that name"))?;
            for number in numbers {
                sqlx::query(INSERT_NUMBER)
                    .bind(number)
                    .bind(account.0)
                    .bind(row.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        unique_as_conflict(e, &format!("{number} already routes to a queue"))
                    })?;
            }
            tx.commit().await?;
            row
        });
        Ok(row.into_queue(numbers.to_vec()))
    }

    /// Replaces a queue's settings.
    pub async fn update_queue(
        &self,
        account: AccountId,
        queue: QueueId,
        settings: &QueueSettings,
        now: DateTime<Utc>,
    ) -> Result<Queue, StoreError> {
        settings.check()?;
        self.campaign(account, settings.campaign_id).await?;
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE queues SET campaign_id = $1, priority = $2, opening_hours = $3, \
             time_zone = $4, welcome_message = $5, hold_music = $6, closed_message = $7, \
             voicemail_message = $8, max_wait_secs = $9, overflow = $10, \
             service_level_secs = $11, service_level_pct = $12, record_calls = $13, \
             ring_secs = $14, updated_at = $15 WHERE id = $16 AND account_id = $17"
        )
        .bind(settings.campaign_id.0)
        .bind(settings.priority)
        .bind(Json(&settings.opening_hours))
        .bind(&settings.time_zone)
        .bind(&settings.welcome_message)
        .bind(&settings.hold_music)
        .bind(&settings.closed_message)
        .bind(&settings.voicemail_message)
        .bind(i64::from(settings.max_wait_secs))
        .bind(settings.overflow.as_str())
        .bind(i64::from(settings.service_level_secs))
        .bind(i64::from(settings.service_level_pct))
        .bind(settings.record_calls)
        .bind(i64::from(settings.ring_secs))
        .bind(now)
        .bind(queue.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.queue(account, queue).await
    }

    /// Routes one more number to a queue.
    pub async fn add_queue_number(
        &self,
        account: AccountId,
        queue: QueueId,
        number: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_number(number)?;
        self.queue(account, queue).await?;
        on_pool!(self, |pool| sqlx::query(INSERT_NUMBER)
            .bind(number)
            .bind(account.0)
            .bind(queue.0)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| unique_as_conflict(e, &format!("{number} already routes to a queue")))?
            .rows_affected());
        Ok(())
    }

    /// Stops routing a number to the account's queue.
    pub async fn remove_queue_number(
        &self,
        account: AccountId,
        number: &str,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM queue_numbers WHERE number = $1 AND account_id = $2"
        )
        .bind(number)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Replaces the numbers routed to a queue, in one transaction: a
    /// number another queue has is refused and nothing changes.
    pub async fn set_queue_numbers(
        &self,
        account: AccountId,
        queue: QueueId,
        numbers: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for number in numbers {
            check_number(number)?;
        }
        self.queue(account, queue).await?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM queue_numbers WHERE queue_id = $1 AND account_id = $2")
                .bind(queue.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
            for number in numbers {
                sqlx::query(INSERT_NUMBER)
                    .bind(number)
                    .bind(account.0)
                    .bind(queue.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        unique_as_conflict(e, &format!("{number} already routes to a queue"))
                    })?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Replaces a queue's agents and their skills; each must be allowed as
    /// [`Store::assign_queue_agent`] says, else nothing changes.
    pub async fn set_queue_members(
        &self,
        account: AccountId,
        queue: QueueId,
        members: &[(UserId, u8)],
    ) -> Result<(), StoreError> {
        let found = self.queue(account, queue).await?;
        for (user, skill) in members {
            self.check_member(account, found.settings.campaign_id, *user, *skill)
                .await?;
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM queue_agents WHERE queue_id = $1 AND account_id = $2")
                .bind(queue.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
            for (user, skill) in members {
                sqlx::query(
                    "INSERT INTO queue_agents (queue_id, user_id, account_id, skill) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (queue_id, user_id) DO UPDATE SET skill = excluded.skill",
                )
                .bind(queue.0)
                .bind(user.0)
                .bind(account.0)
                .bind(i64::from(*skill))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Checks a user may answer a queue logging its calls against `campaign`.
    async fn check_member(
        &self,
        account: AccountId,
        campaign: CampaignId,
        user: UserId,
        skill: u8,
    ) -> Result<(), StoreError> {
        if !(1..=10).contains(&skill) {
            return Err(StoreError::Invalid("a skill is 1 to 10".into()));
        }
        let member = self.user(account, user).await.map_err(|e| match e {
            StoreError::NotFound => StoreError::Invalid(format!("no user {user} in the account")),
            other => other,
        })?;
        if !member.active || member.role == Role::Admin {
            return Err(StoreError::Invalid(
                "only an active agent or supervisor answers a queue".into(),
            ));
        }
        if !self.is_assigned(account, campaign, user).await? {
            return Err(StoreError::Invalid(format!(
                "{} is not assigned to the queue's campaign",
                member.username
            )));
        }
        Ok(())
    }

    /// Returns the account's queues, by name.
    pub async fn queues(&self, account: AccountId) -> Result<Vec<Queue>, StoreError> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = $1 ORDER BY name");
        let rows: Vec<QueueRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        let numbers: Vec<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT queue_id, number FROM queue_numbers WHERE account_id = $1 ORDER BY number"
        )
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|row| {
                let own = numbers
                    .iter()
                    .filter(|(q, _)| *q == row.id)
                    .map(|(_, n)| n.clone())
                    .collect();
                row.into_queue(own)
            })
            .collect())
    }

    /// Returns one of the account's queues.
    pub async fn queue(&self, account: AccountId, queue: QueueId) -> Result<Queue, StoreError> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE id = $1 AND account_id = $2");
        let row: QueueRow = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(queue.0)
            .bind(account.0)
            .fetch_optional(pool)
            .await?)
        .ok_or(StoreError::NotFound)?;
        let numbers: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT number FROM queue_numbers WHERE queue_id = $1 ORDER BY number"
        )
        .bind(queue.0)
        .fetch_all(pool)
        .await?);
        Ok(row.into_queue(numbers))
    }

    /// Returns the account's queue of this name.
    pub async fn queue_named(&self, account: AccountId, name: &str) -> Result<Queue, StoreError> {
        let id: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM queues WHERE account_id = $1 AND name = $2"
        )
        .bind(account.0)
        .bind(name.trim())
        .fetch_optional(pool)
        .await?)
        .ok_or(StoreError::NotFound)?;
        self.queue(account, QueueId(id)).await
    }

    /// Returns the queue a dialled number routes to, across the service;
    /// `None` for a number that is not ours.
    pub async fn route_number(&self, number: &str) -> Result<Option<Queue>, StoreError> {
        let found: Option<(i64, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT account_id, queue_id FROM queue_numbers WHERE number = $1"
        )
        .bind(number)
        .fetch_optional(pool)
        .await?);
        match found {
            Some((account, queue)) => {
                Ok(Some(self.queue(AccountId(account), QueueId(queue)).await?))
            }
            None => Ok(None),
        }
    }

    /// Deletes a queue and its numbers; its calls keep their history.
    pub async fn delete_queue(&self, account: AccountId, queue: QueueId) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM queues WHERE id = $1 AND account_id = $2"
        )
        .bind(queue.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Puts an agent in a queue with a skill from 1 to 10, or changes
    /// their skill. The user must be an active agent or supervisor of the
    /// account and assigned to the queue's campaign (its calls are logged
    /// there, and that is what lets them read its contacts).
    pub async fn assign_queue_agent(
        &self,
        account: AccountId,
        queue: QueueId,
        user: UserId,
        skill: u8,
    ) -> Result<(), StoreError> {
        let found = self.queue(account, queue).await?;
        self.check_member(account, found.settings.campaign_id, user, skill)
            .await?;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO queue_agents (queue_id, user_id, account_id, skill) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (queue_id, user_id) DO UPDATE SET skill = excluded.skill"
        )
        .bind(queue.0)
        .bind(user.0)
        .bind(account.0)
        .bind(i64::from(skill))
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Takes an agent out of a queue.
    pub async fn unassign_queue_agent(
        &self,
        account: AccountId,
        queue: QueueId,
        user: UserId,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM queue_agents WHERE queue_id = $1 AND user_id = $2 AND account_id = $3"
        )
        .bind(queue.0)
        .bind(user.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Returns a queue's agents, best-skilled first.
    pub async fn queue_members(
        &self,
        account: AccountId,
        queue: QueueId,
    ) -> Result<Vec<QueueMember>, StoreError> {
        self.queue(account, queue).await?;
        let rows: Vec<(i64, String, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT q.user_id, u.username, q.skill FROM queue_agents q \
             JOIN users u ON u.id = q.user_id \
             WHERE q.queue_id = $1 AND q.account_id = $2 ORDER BY q.skill DESC, u.username"
        )
        .bind(queue.0)
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(user, username, skill)| QueueMember {
                user_id: UserId(user),
                username,
                skill: u8::try_from(skill).unwrap_or(1),
            })
            .collect())
    }

    /// Returns the queues an agent answers, with their skill and the
    /// queue's priority.
    pub async fn agent_queues(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<Membership>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT a.queue_id, a.skill, q.priority FROM queue_agents a \
             JOIN queues q ON q.id = a.queue_id \
             WHERE a.account_id = $1 AND a.user_id = $2 ORDER BY a.queue_id"
        )
        .bind(account.0)
        .bind(user.0)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(queue, skill, priority)| Membership {
                queue_id: QueueId(queue),
                skill: u8::try_from(skill).unwrap_or(1),
                priority,
            })
            .collect())
    }
}

/// Turns a unique-key violation into a conflict saying `message`.
fn unique_as_conflict(error: sqlx::Error, message: &str) -> StoreError {
    match StoreError::from(error) {
        StoreError::Conflict(_) => StoreError::Conflict(message.to_owned()),
        other => other,
    }
}
