//! A campaign's dialling settings: mode, hours, retries, dispositions and limits.
//!
//! A campaign without a settings row runs on [`CampaignSettings::defaults`];
//! the first update writes the row. The caller ID stays on the campaign row.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use dialer_core::{AbandonTarget, CallingWindow, DayWindow, Mode, RetryPolicy};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId};
use crate::StoreError;

/// The lowest ring timeout the rules allow, in seconds.
pub const MIN_RING_TIMEOUT_SECS: u32 = 15;
/// The highest abandon target the rules allow, in basis points (3%).
pub const MAX_ABANDON_TARGET_BP: u16 = 300;

/// How a campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DialMode {
    /// The agent sees the contact first and chooses to call or skip.
    Preview,
    /// One line per ready agent.
    Progressive,
    /// As many lines as keep abandons under target.
    Predictive,
}

impl DialMode {
    /// Returns the mode as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DialMode::Preview => "preview",
            DialMode::Progressive => "progressive",
            DialMode::Predictive => "predictive",
        }
    }

    /// Returns the pacer's mode.
    pub fn pacer_mode(self) -> Mode {
        match self {
            DialMode::Preview => Mode::Preview,
            DialMode::Progressive => Mode::Progressive,
            DialMode::Predictive => Mode::Predictive,
        }
    }

    /// Returns whether every call has an agent reserved before it is dialled.
    pub fn reserves_agent(self) -> bool {
        !matches!(self, DialMode::Predictive)
    }
}

impl std::str::FromStr for DialMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "preview" => Ok(DialMode::Preview),
            "progressive" => Ok(DialMode::Progressive),
            "predictive" => Ok(DialMode::Predictive),
            other => Err(StoreError::Invalid(format!("unknown dial mode {other:?}"))),
        }
    }
}

/// One day's calling hours in the contact's local time, `start` to before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DayHours {
    /// When calling may start.
    pub start: NaiveTime,
    /// When calling must stop.
    pub end: NaiveTime,
}

/// Calling hours per weekday; a day that is `None` is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WeeklyHours {
    /// Monday.
    pub mon: Option<DayHours>,
    /// Tuesday.
    pub tue: Option<DayHours>,
    /// Wednesday.
    pub wed: Option<DayHours>,
    /// Thursday.
    pub thu: Option<DayHours>,
    /// Friday.
    pub fri: Option<DayHours>,
    /// Saturday.
    pub sat: Option<DayHours>,
    /// Sunday.
    pub sun: Option<DayHours>,
}

impl DayHours {
    /// Midnight to the day's last second.
    pub fn all_day() -> DayHours {
        DayHours {
            start: NaiveTime::MIN,
            end: NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN),
        }
    }
}

impl Default for WeeklyHours {
    /// Returns 08:00 to 21:00 every day.
    fn default() -> Self {
        WeeklyHours::every_day(DayHours {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
        })
    }
}

impl WeeklyHours {
    /// The same hours on all seven days.
    pub fn every_day(hours: DayHours) -> WeeklyHours {
        let day = Some(hours);
        WeeklyHours {
            mon: day,
            tue: day,
            wed: day,
            thu: day,
            fri: day,
            sat: day,
            sun: day,
        }
    }

    /// Returns the dialler's calling window, refusing a day that closes before it opens.
    pub fn calling_window(&self) -> Result<CallingWindow, StoreError> {
        let days = [
            (Weekday::Mon, self.mon),
            (Weekday::Tue, self.tue),
            (Weekday::Wed, self.wed),
            (Weekday::Thu, self.thu),
            (Weekday::Fri, self.fri),
            (Weekday::Sat, self.sat),
            (Weekday::Sun, self.sun),
        ];
        let mut window = CallingWindow::closed();
        for (day, hours) in days {
            let hours = hours
                .map(|h| DayWindow::new(h.start, h.end))
                .transpose()
                .map_err(|e| StoreError::Invalid(format!("calling hours on {day}: {e}")))?;
            window = window.with_day(day, hours);
        }
        Ok(window)
    }
}

/// Seconds to wait before redialling after each outcome; `None` stops dialling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RetryDelays {
    /// After a busy line.
    pub busy: Option<u32>,
    /// After no answer.
    pub no_answer: Option<u32>,
    /// After an answering machine that got no message.
    pub machine: Option<u32>,
    /// After the voicemail message was left on a machine (two days unless
    /// set).
    #[serde(default = "default_voicemail_retry")]
    pub voicemail: Option<u32>,
    /// After an abandoned call (never under 72 hours without a reserved agent).
    pub abandoned: Option<u32>,
    /// After a network failure.
    pub failed: Option<u32>,
}

/// An outcome an agent may give a conversation, and what it does to the lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Disposition {
    /// The name agents pick, unique in the campaign.
    pub name: String,
    /// Whether it adds the number to the do-not-call list.
    #[serde(default)]
    pub suppresses: bool,
    /// Whether it asks for a callback time.
    #[serde(default)]
    pub schedules_callback: bool,
    /// Whether the lead is finished after it.
    #[serde(default)]
    pub ends_lead: bool,
}

/// A rule that puts finished leads back into dialling: a lead whose last
/// attempt ended with `outcome` becomes due again `after_days` after that
/// attempt, while it has attempts left under the recycling cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecycleRule {
    /// The attempt outcome it applies to: `busy`, `no_answer`, `machine`,
    /// `voicemail`, `abandoned` or `failed`.
    pub outcome: String,
    /// Whole days after the last attempt, 1 to 365.
    pub after_days: u32,
}

/// The attempt outcomes a recycling rule may name, as leads store them.
pub const RECYCLABLE_OUTCOMES: [&str; 6] = [
    "busy",
    "no_answer",
    "machine",
    "voicemail",
    "abandoned",
    "failed",
];

/// The longest grace, in minutes, a callback waits for its own agent (a week).
pub const MAX_CALLBACK_GRACE_MINUTES: u32 = 7 * 24 * 60;

/// Everything a campaign needs to dial lawfully.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CampaignSettings {
    /// How lines are paced.
    pub mode: DialMode,
    /// The number presented to the called party, E.164.
    pub caller_id: String,
    /// The trunk to dial through; empty for the default trunk.
    pub trunk: String,
    /// Calling hours in the contact's local time.
    pub calling_hours: WeeklyHours,
    /// The IANA zone used when neither the contact nor its number gives one.
    pub default_time_zone: String,
    /// Attempts allowed per lead, the first included.
    pub max_attempts: u32,
    /// Redial delays per outcome.
    pub retry_delays: RetryDelays,
    /// The dispositions agents choose from.
    pub dispositions: Vec<Disposition>,
    /// The abandon rate the pacer keeps under, in basis points (300 is 3%).
    pub abandon_target_bp: u16,
    /// How long to ring before giving up, in seconds.
    pub ring_timeout_secs: u32,
    /// The recorded message played on abandon, a WAV file.
    pub abandon_message_path: Option<String>,
    /// The recorded message left on answering machines, a WAV file: after
    /// the greeting of a machine the detector hears (with `detect_machines`),
    /// and when an agent who reached one presses "Leave voicemail".
    #[serde(default)]
    pub voicemail_message_path: Option<String>,
    /// How long an agent may stay in wrap-up, in seconds; 0 for no limit.
    pub wrap_up_limit_secs: u32,
    /// The most lines the pacer opens per ready agent.
    pub max_dial_level: f64,
    /// Whether calls connected to agents are recorded (a stereo WAV per
    /// call, linked to its attempt and contact).
    #[serde(default = "recorded_by_default")]
    pub record_calls: bool,
    /// Whether calls the dialler places are screened for answering
    /// machines: a machine is hung up and retried after the machine delay,
    /// instead of reaching an agent. A person waits up to about 1.2 s more
    /// to be connected.
    #[serde(default)]
    pub detect_machines: bool,
    /// The rules that put finished leads back into dialling.
    #[serde(default)]
    pub recycle: Vec<RecycleRule>,
    /// The most attempts a lead may reach through recycling, the first
    /// included; above `max_attempts` when any rule is set.
    #[serde(default)]
    pub recycle_max_attempts: u32,
    /// How long, in minutes, a callback booked for one agent is kept for
    /// them after it falls due; then any agent of the campaign may take it.
    #[serde(default = "default_callback_grace")]
    pub callback_grace_minutes: u32,
}

fn default_voicemail_retry() -> Option<u32> {
    RetryPolicy::default()
        .voicemail
        .and_then(|d| u32::try_from(d.num_seconds()).ok())
}

fn recorded_by_default() -> bool {
    true
}

fn default_callback_grace() -> u32 {
    30
}

impl CampaignSettings {
    /// Returns the defaults for a campaign with this caller ID.
    pub fn defaults(caller_id: &str) -> Self {
        let disposition = |name: &str, suppresses, schedules_callback, ends_lead| Disposition {
            name: name.to_owned(),
            suppresses,
            schedules_callback,
            ends_lead,
        };
        let policy = RetryPolicy::default();
        let secs = |d: Option<TimeDelta>| d.and_then(|d| u32::try_from(d.num_seconds()).ok());
        CampaignSettings {
            mode: DialMode::Progressive,
            caller_id: caller_id.to_owned(),
            trunk: String::new(),
            calling_hours: WeeklyHours::default(),
            default_time_zone: "Europe/London".to_owned(),
            max_attempts: policy.max_attempts,
            retry_delays: RetryDelays {
                busy: secs(policy.busy),
                no_answer: secs(policy.no_answer),
                machine: secs(policy.machine),
                voicemail: secs(policy.voicemail),
                abandoned: secs(policy.abandoned),
                failed: secs(policy.failed),
            },
            dispositions: vec![
                disposition("sale", false, false, true),
                disposition("not_interested", false, false, true),
                disposition("callback", false, true, false),
                disposition("do_not_call", true, false, true),
                disposition("wrong_number", false, false, true),
            ],
            abandon_target_bp: MAX_ABANDON_TARGET_BP,
            ring_timeout_secs: 20,
            abandon_message_path: None,
            voicemail_message_path: None,
            wrap_up_limit_secs: 60,
            max_dial_level: 3.0,
            record_calls: true,
            detect_machines: false,
            recycle: Vec::new(),
            recycle_max_attempts: 0,
            callback_grace_minutes: default_callback_grace(),
        }
    }

    /// Checks every rule a campaign's settings must keep.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |m: &str| Err(StoreError::Invalid(m.to_owned()));
        if !is_e164(&self.caller_id) {
            return invalid("caller_id must be an E.164 number: + and 2 to 15 digits");
        }
        if self.ring_timeout_secs < MIN_RING_TIMEOUT_SECS || self.ring_timeout_secs > 300 {
            return invalid("ring_timeout_secs must be between 15 and 300");
        }
        if self.abandon_target_bp > MAX_ABANDON_TARGET_BP {
            return invalid("abandon_target_bp must be at most 300 (3%)");
        }
        if !(1..=100).contains(&self.max_attempts) {
            return invalid("max_attempts must be between 1 and 100");
        }
        if !(1.0..=20.0).contains(&self.max_dial_level) {
            return invalid("max_dial_level must be between 1 and 20");
        }
        self.time_zone()?;
        self.calling_hours.calling_window()?;
        let mut names = std::collections::BTreeSet::new();
        for d in &self.dispositions {
            if d.name.trim().is_empty() || d.name.len() > 64 {
                return invalid("a disposition needs a name of 1 to 64 characters");
            }
            if !names.insert(d.name.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "disposition {:?} is listed twice",
                    d.name
                )));
            }
        }
        if self
            .abandon_message_path
            .as_deref()
            .is_some_and(str::is_empty)
        {
            return invalid("abandon_message_path must not be empty; omit it instead");
        }
        if self
            .voicemail_message_path
            .as_deref()
            .is_some_and(str::is_empty)
        {
            return invalid("voicemail_message_path must not be empty; omit it instead");
        }
        self.validate_recycling()?;
        if self.callback_grace_minutes > MAX_CALLBACK_GRACE_MINUTES {
            return invalid("callback_grace_minutes must be at most 10080 (a week)");
        }
        Ok(())
    }

    fn validate_recycling(&self) -> Result<(), StoreError> {
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.recycle {
            if !RECYCLABLE_OUTCOMES.contains(&rule.outcome.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "recycle outcome {:?} is not one of {}",
                    rule.outcome,
                    RECYCLABLE_OUTCOMES.join(", ")
                )));
            }
            if !seen.insert(rule.outcome.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "recycle outcome {:?} is listed twice",
                    rule.outcome
                )));
            }
            if !(1..=365).contains(&rule.after_days) {
                return Err(StoreError::Invalid(
                    "recycle after_days must be between 1 and 365".into(),
                ));
            }
        }
        if self.recycle_max_attempts > 100 {
            return Err(StoreError::Invalid(
                "recycle_max_attempts must be at most 100".into(),
            ));
        }
        if !self.recycle.is_empty() && self.recycle_max_attempts <= self.max_attempts {
            return Err(StoreError::Invalid(format!(
                "recycle_max_attempts must be above max_attempts ({}) when recycle rules are set",
                self.max_attempts
            )));
        }
        Ok(())
    }

    /// Returns how long a callback booked for one agent is kept for them.
    pub fn callback_grace(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.callback_grace_minutes))
    }

    /// Returns the default time zone, refusing a name the IANA database lacks.
    pub fn time_zone(&self) -> Result<Tz, StoreError> {
        self.default_time_zone.parse::<Tz>().map_err(|_| {
            StoreError::Invalid(format!("unknown time zone {:?}", self.default_time_zone))
        })
    }

    /// Returns the retry rules the dialler applies after each attempt.
    pub fn retry_policy(&self) -> RetryPolicy {
        let delay = |s: Option<u32>| s.map(|s| TimeDelta::seconds(i64::from(s)));
        RetryPolicy {
            max_attempts: self.max_attempts,
            busy: delay(self.retry_delays.busy),
            no_answer: delay(self.retry_delays.no_answer),
            machine: delay(self.retry_delays.machine),
            voicemail: delay(self.retry_delays.voicemail),
            abandoned: delay(self.retry_delays.abandoned),
            failed: delay(self.retry_delays.failed),
            reserves_agent: self.mode.reserves_agent(),
        }
    }

    /// Returns the abandon target for the compliance ledger.
    pub fn abandon_target(&self) -> AbandonTarget {
        AbandonTarget::from_basis_points(self.abandon_target_bp.min(MAX_ABANDON_TARGET_BP))
            .unwrap_or_default()
    }

    /// Returns the disposition with this name.
    pub fn disposition(&self, name: &str) -> Option<&Disposition> {
        self.dispositions.iter().find(|d| d.name == name)
    }
}

impl Store {
    /// Returns a campaign's settings, or the defaults if none were saved.
    pub async fn campaign_settings(
        &self,
        account: AccountId,
        campaign: CampaignId,
    ) -> Result<CampaignSettings, StoreError> {
        let caller_id = self.campaign(account, campaign).await?.caller_id;
        let row: Option<SettingsRow> = on_pool!(self, |pool| sqlx::query_as(&format!(
            "SELECT {SETTINGS_COLUMNS} FROM campaign_settings \
             WHERE campaign_id = $1 AND account_id = $2"
        ))
        .bind(campaign.0)
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        match row {
            Some(row) => row.into_settings(caller_id),
            None => Ok(CampaignSettings::defaults(&caller_id)),
        }
    }

    /// Validates and saves a campaign's settings, the caller ID included.
    pub async fn update_campaign_settings(
        &self,
        account: AccountId,
        campaign: CampaignId,
        settings: &CampaignSettings,
        now: DateTime<Utc>,
    ) -> Result<CampaignSettings, StoreError> {
        settings.validate()?;
        self.campaign(account, campaign).await?;
        let d = &settings.retry_delays;
        let secs = |s: Option<u32>| s.map(i64::from);
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE campaigns SET caller_id = $1, updated_at = $2 \
                 WHERE id = $3 AND account_id = $4",
            )
            .bind(&settings.caller_id)
            .bind(now)
            .bind(campaign.0)
            .bind(account.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO campaign_settings (campaign_id, account_id, {SETTINGS_COLUMNS}, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26) ON CONFLICT (campaign_id) DO UPDATE SET \
                 mode = excluded.mode, trunk = excluded.trunk, \
                 calling_hours = excluded.calling_hours, \
                 default_time_zone = excluded.default_time_zone, \
                 max_attempts = excluded.max_attempts, \
                 retry_busy_secs = excluded.retry_busy_secs, \
                 retry_no_answer_secs = excluded.retry_no_answer_secs, \
                 retry_machine_secs = excluded.retry_machine_secs, \
                 retry_abandoned_secs = excluded.retry_abandoned_secs, \
                 retry_failed_secs = excluded.retry_failed_secs, \
                 dispositions = excluded.dispositions, \
                 abandon_target_bp = excluded.abandon_target_bp, \
                 ring_timeout_secs = excluded.ring_timeout_secs, \
                 abandon_message_path = excluded.abandon_message_path, \
                 wrap_up_limit_secs = excluded.wrap_up_limit_secs, \
                 max_dial_level = excluded.max_dial_level, \
                 record_calls = excluded.record_calls, \
                 detect_machines = excluded.detect_machines, recycle = excluded.recycle, \
                 recycle_max_attempts = excluded.recycle_max_attempts, \
                 callback_grace_minutes = excluded.callback_grace_minutes, \
                 voicemail_message_path = excluded.voicemail_message_path, \
                 retry_voicemail_secs = excluded.retry_voicemail_secs, \
                 updated_at = excluded.updated_at"
            ))
            .bind(campaign.0)
            .bind(account.0)
            .bind(settings.mode.as_str())
            .bind(&settings.trunk)
            .bind(Json(&settings.calling_hours))
            .bind(&settings.default_time_zone)
            .bind(i64::from(settings.max_attempts))
            .bind(secs(d.busy))
            .bind(secs(d.no_answer))
            .bind(secs(d.machine))
            .bind(secs(d.abandoned))
            .bind(secs(d.failed))
            .bind(Json(&settings.dispositions))
            .bind(i64::from(settings.abandon_target_bp))
            .bind(i64::from(settings.ring_timeout_secs))
            .bind(&settings.abandon_message_path)
            .bind(i64::from(settings.wrap_up_limit_secs))
            .bind(settings.max_dial_level)
            .bind(settings.record_calls)
            .bind(settings.detect_machines)
            .bind(Json(&settings.recycle))
            .bind(i64::from(settings.recycle_max_attempts))
            .bind(i64::from(settings.callback_grace_minutes))
            .bind(&settings.voicemail_message_path)
            .bind(secs(d.voicemail))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.campaign_settings(account, campaign).await
    }
}

const SETTINGS_COLUMNS: &str = "mode, trunk, calling_hours, default_time_zone, max_attempts, \
     retry_busy_secs, retry_no_answer_secs, retry_machine_secs, retry_abandoned_secs, \
     retry_failed_secs, dispositions, abandon_target_bp, ring_timeout_secs, \
     abandon_message_path, wrap_up_limit_secs, max_dial_level, record_calls, detect_machines, \
     recycle, recycle_max_attempts, callback_grace_minutes, voicemail_message_path, \
     retry_voicemail_secs";

#[derive(sqlx::FromRow)]
struct SettingsRow {
    mode: String,
    trunk: String,
    calling_hours: Json<WeeklyHours>,
    default_time_zone: String,
    max_attempts: i64,
    retry_busy_secs: Option<i64>,
    retry_no_answer_secs: Option<i64>,
    retry_machine_secs: Option<i64>,
    retry_abandoned_secs: Option<i64>,
    retry_failed_secs: Option<i64>,
    dispositions: Json<Vec<Disposition>>,
    abandon_target_bp: i64,
    ring_timeout_secs: i64,
    abandon_message_path: Option<String>,
    wrap_up_limit_secs: i64,
    max_dial_level: f64,
    record_calls: bool,
    detect_machines: bool,
    recycle: Json<Vec<RecycleRule>>,
    recycle_max_attempts: i64,
    callback_grace_minutes: i64,
    voicemail_message_path: Option<String>,
    retry_voicemail_secs: Option<i64>,
}

impl SettingsRow {
    fn into_settings(self, caller_id: String) -> Result<CampaignSettings, StoreError> {
        let secs = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
        let int = |v: i64, what: &str| {
            u32::try_from(v).map_err(|_| StoreError::Invalid(format!("stored {what} {v}")))
        };
        Ok(CampaignSettings {
            mode: self.mode.parse()?,
            caller_id,
            trunk: self.trunk,
            calling_hours: self.calling_hours.0,
            default_time_zone: self.default_time_zone,
            max_attempts: int(self.max_attempts, "max_attempts")?,
            retry_delays: RetryDelays {
                busy: secs(self.retry_busy_secs),
                no_answer: secs(self.retry_no_answer_secs),
                machine: secs(self.retry_machine_secs),
                voicemail: secs(self.retry_voicemail_secs),
                abandoned: secs(self.retry_abandoned_secs),
                failed: secs(self.retry_failed_secs),
            },
            dispositions: self.dispositions.0,
            abandon_target_bp: u16::try_from(self.abandon_target_bp)
                .map_err(|_| StoreError::Invalid("stored abandon_target_bp".into()))?,
            ring_timeout_secs: int(self.ring_timeout_secs, "ring_timeout_secs")?,
            abandon_message_path: self.abandon_message_path,
            voicemail_message_path: self.voicemail_message_path,
            wrap_up_limit_secs: int(self.wrap_up_limit_secs, "wrap_up_limit_secs")?,
            max_dial_level: self.max_dial_level,
            record_calls: self.record_calls,
            detect_machines: self.detect_machines,
            recycle: self.recycle.0,
            recycle_max_attempts: int(self.recycle_max_attempts, "recycle_max_attempts")?,
            callback_grace_minutes: int(self.callback_grace_minutes, "callback_grace_minutes")?,
        })
    }
}

fn is_e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}
