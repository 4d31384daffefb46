//! Supervisors' reports over a period: per agent (calls, talk, wrap-up and
//! pause time, dispositions) and per campaign (attempts by outcome, answers,
//! abandons, the abandon rate hour by hour, dispositions).
//!
//! The queries only select rows in the period; durations and hourly buckets
//! are added up here, so the SQL stays the same on both backends.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::{on_pool, Store};
use crate::events::AgentState;
use crate::model::{AccountId, AttemptId, CampaignId, Role, UserId};
use crate::StoreError;

/// The key of paused time that carries no pause code.
pub const NO_PAUSE_CODE: &str = "unspecified";

/// A half-open period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first instant counted.
    pub from: DateTime<Utc>,
    /// The first instant no longer counted.
    pub to: DateTime<Utc>,
}

/// One agent's figures over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentFigures {
    /// The agent.
    pub user_id: UserId,
    /// The agent's login name.
    pub username: String,
    /// Calls the agent saved a disposition for.
    pub calls_handled: i64,
    /// Seconds from answer to hang-up of those calls.
    pub talk_secs: i64,
    /// Seconds spent in wrap-up.
    pub wrap_up_secs: i64,
    /// Seconds spent Ready, waiting for a call.
    pub ready_secs: i64,
    /// Seconds spent paused, whatever the code.
    pub pause_secs: i64,
    /// Seconds spent paused, by pause code.
    pub pause_by_code: BTreeMap<String, i64>,
    /// How many calls ended with each disposition.
    pub dispositions: BTreeMap<String, i64>,
}

/// One campaign's figures over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CampaignReport {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The campaign's name.
    pub name: String,
    /// Calls placed.
    pub attempts: i64,
    /// Calls placed, by how they ended (`in_progress` while not ended).
    pub outcomes: BTreeMap<String, i64>,
    /// Calls a person or a machine answered.
    pub answered: i64,
    /// Calls answered live with no agent in time.
    pub abandoned: i64,
    /// Abandoned calls over live answers (machine answers excluded); 0 without any.
    pub abandon_rate: f64,
    /// The same figures hour by hour, only hours with calls.
    pub hours: Vec<HourFigures>,
    /// How many calls ended with each disposition.
    pub dispositions: BTreeMap<String, i64>,
}

/// One hour of a campaign's calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HourFigures {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Calls placed in the hour.
    pub attempts: i64,
    /// Of them, answered by a person or a machine.
    pub answered: i64,
    /// Of them, abandoned.
    pub abandoned: i64,
    /// Abandoned over live answers in the hour.
    pub abandon_rate: f64,
}

impl Store {
    /// Records that an agent changed state; the state lasts until the next.
    pub async fn record_agent_state(
        &self,
        account: AccountId,
        user: UserId,
        state: AgentState,
        pause_code: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_agent_state_on(account, user, state, pause_code, at, None)
            .await
    }

    /// Records an agent's state change made on the desk of `node`, which a
    /// restart of that node closes ([`Store::recover_node`]).
    pub async fn record_agent_state_on(
        &self,
        account: AccountId,
        user: UserId,
        state: AgentState,
        pause_code: Option<&str>,
        at: DateTime<Utc>,
        node: Option<&str>,
    ) -> Result<(), StoreError> {
        let code = pause_code.map(|c| c.chars().take(64).collect::<String>());
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO agent_states (account_id, user_id, state, pause_code, started_at, node) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
             (SELECT 1 FROM users WHERE id = $2 AND account_id = $1)"
        )
        .bind(account.0)
        .bind(user.0)
        .bind(state.as_str())
        .bind(code)
        .bind(at)
        .bind(node)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Returns the state an agent of the account was last recorded in, as
    /// stored (`ready`, `paused`, `in_call`, `wrap_up`, `logged_out`).
    pub async fn last_agent_state(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT state FROM agent_states WHERE account_id = $1 AND user_id = $2 \
             ORDER BY id DESC LIMIT 1"
        )
        .bind(account.0)
        .bind(user.0)
        .fetch_optional(pool)
        .await?))
    }

    /// Returns, as agent-state events, the agents of every account whose
    /// last state, set at or after `since`, is not logged out: what a node
    /// seeds its wallboards with before it reads the shared event stream,
    /// which keeps only the last day of changes, so an agent whose last
    /// change is older still shows, alike on every node.
    pub async fn agents_logged_in(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::events::Event>, StoreError> {
        type Row = (
            AccountId,
            UserId,
            String,
            String,
            Option<String>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT s.account_id, s.user_id, u.username, s.state, s.pause_code, s.started_at \
             FROM agent_states s JOIN users u ON u.id = s.user_id \
             JOIN (SELECT user_id, MAX(id) AS id FROM agent_states WHERE started_at >= $1 \
                   GROUP BY user_id) latest ON latest.id = s.id \
             WHERE s.state <> 'logged_out' AND u.active ORDER BY s.id"
        )
        .bind(since)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(account, user_id, username, state, pause_code, at)| {
                let state: AgentState =
                    serde_json::from_value(serde_json::Value::String(state)).ok()?;
                Some(crate::events::Event::AgentState {
                    account,
                    user_id,
                    username,
                    state,
                    pause_code,
                    at,
                })
            })
            .collect())
    }

    /// Returns the figures of every agent of the account, and of any other
    /// user who handled calls, over the period. A state still current counts
    /// up to `now`.
    pub async fn agent_report(
        &self,
        account: AccountId,
        period: Period,
        now: DateTime<Utc>,
    ) -> Result<Vec<AgentFigures>, StoreError> {
        let mut figures: BTreeMap<UserId, AgentFigures> = BTreeMap::new();
        let users = self.users(account).await?;
        for u in &users {
            if u.role == Role::Agent {
                figures.insert(u.id, AgentFigures::new(u.id, &u.username));
            }
        }
        for call in self.handled_calls(account, period).await? {
            let f = slot(&mut figures, &users, call.user_id);
            if let Some(d) = call.disposition {
                *f.dispositions.entry(d).or_default() += 1;
            }
            if call.attempt_id.is_some() {
                f.calls_handled += 1;
                if let (Some(a), Some(e)) = (call.answered_at, call.ended_at) {
                    f.talk_secs += (e - a).num_seconds().max(0);
                }
            }
        }

        let end = period.to.min(now.max(period.from));
        let states = self.state_rows(account, period).await?;
        for (i, row) in states.iter().enumerate() {
            let next = states
                .get(i + 1)
                .filter(|n| n.user_id == row.user_id)
                .map_or(end, |n| n.started_at.min(end));
            let secs = (next - row.started_at.max(period.from)).num_seconds();
            if secs <= 0 {
                continue;
            }
            let f = slot(&mut figures, &users, row.user_id);
            match row.state.as_str() {
                "ready" => f.ready_secs += secs,
                "wrap_up" => f.wrap_up_secs += secs,
                "paused" => {
                    f.pause_secs += secs;
                    let code = row.pause_code.as_deref().unwrap_or(NO_PAUSE_CODE);
                    *f.pause_by_code.entry(code.to_owned()).or_default() += secs;
                }
                _ => {}
            }
        }
        let mut out: Vec<AgentFigures> = figures.into_values().collect();
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// Returns the figures of every campaign of the account over the period,
    /// counting the calls placed in it and the dispositions saved in it.
    pub async fn campaign_report(
        &self,
        account: AccountId,
        period: Period,
    ) -> Result<Vec<CampaignReport>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Named {
            id: CampaignId,
            name: String,
        }
        let campaigns: Vec<Named> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name FROM campaigns WHERE account_id = $1 ORDER BY name, id"
        )
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        let mut reports: BTreeMap<CampaignId, CampaignReport> = campaigns
            .into_iter()
            .map(|c| {
                let report = CampaignReport {
                    campaign_id: c.id,
                    name: c.name,
                    attempts: 0,
                    outcomes: BTreeMap::new(),
                    answered: 0,
                    abandoned: 0,
                    abandon_rate: 0.0,
                    hours: Vec::new(),
                    dispositions: BTreeMap::new(),
                };
                (c.id, report)
            })
            .collect();

        #[derive(sqlx::FromRow)]
        struct Attempt {
            campaign_id: CampaignId,
            started_at: DateTime<Utc>,
            answered_at: Option<DateTime<Utc>>,
            outcome: Option<String>,
        }
        let attempts: Vec<Attempt> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT campaign_id, started_at, answered_at, outcome FROM call_attempts \
             WHERE account_id = $1 AND campaign_id IS NOT NULL AND direction = 'outbound' \
               AND started_at >= $2 AND started_at < $3"
        )
        .bind(account.0)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(pool)
        .await?);
        let mut totals: BTreeMap<CampaignId, Tally> = BTreeMap::new();
        let mut hours: BTreeMap<(CampaignId, DateTime<Utc>), Tally> = BTreeMap::new();
        for a in attempts {
            let Some(report) = reports.get_mut(&a.campaign_id) else {
                continue;
            };
            let outcome = a.outcome.unwrap_or_else(|| "in_progress".to_owned());
            let tally = Tally::of(a.answered_at.is_some(), &outcome);
            *report.outcomes.entry(outcome).or_default() += 1;
            let hour = a
                .started_at
                .duration_trunc(TimeDelta::hours(1))
                .unwrap_or(a.started_at);
            hours.entry((a.campaign_id, hour)).or_default().add(tally);
            totals.entry(a.campaign_id).or_default().add(tally);
        }
        for (campaign, t) in totals {
            if let Some(report) = reports.get_mut(&campaign) {
                report.attempts = t.attempts;
                report.answered = t.answered;
                report.abandoned = t.abandoned;
                report.abandon_rate = rate(t.abandoned, t.live);
            }
        }
        for ((campaign, hour), t) in hours {
            if let Some(report) = reports.get_mut(&campaign) {
                report.hours.push(HourFigures {
                    hour,
                    attempts: t.attempts,
                    answered: t.answered,
                    abandoned: t.abandoned,
                    abandon_rate: rate(t.abandoned, t.live),
                });
            }
        }

        #[derive(sqlx::FromRow)]
        struct Disposed {
            campaign_id: CampaignId,
            disposition: String,
        }
        let disposed: Vec<Disposed> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT a.campaign_id, i.disposition FROM interactions i \
             JOIN call_attempts a ON a.id = i.attempt_id AND a.account_id = i.account_id \
             WHERE i.account_id = $1 AND i.disposition IS NOT NULL \
               AND a.campaign_id IS NOT NULL AND i.occurred_at >= $2 AND i.occurred_at < $3"
        )
        .bind(account.0)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(pool)
        .await?);
        for d in disposed {
            if let Some(report) = reports.get_mut(&d.campaign_id) {
                *report.dispositions.entry(d.disposition).or_default() += 1;
            }
        }
        let mut out: Vec<CampaignReport> = reports.into_values().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Returns the interactions users saved in the period, with the times
    /// of the call each one was about.
    async fn handled_calls(
        &self,
        account: AccountId,
        period: Period,
    ) -> Result<Vec<HandledCall>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT i.user_id, i.attempt_id, i.disposition, a.answered_at, a.ended_at \
             FROM interactions i \
             LEFT JOIN call_attempts a ON a.id = i.attempt_id AND a.account_id = i.account_id \
             WHERE i.account_id = $1 AND i.user_id IS NOT NULL \
               AND i.occurred_at >= $2 AND i.occurred_at < $3"
        )
        .bind(account.0)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(pool)
        .await?))
    }

    /// Returns the state changes in the period and, per user, the last one
    /// before it (the state the period opens in), by user and time.
    async fn state_rows(
        &self,
        account: AccountId,
        period: Period,
    ) -> Result<Vec<StateRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT s.user_id, s.state, s.pause_code, s.started_at FROM agent_states s \
             WHERE s.account_id = $1 AND s.started_at < $3 \
               AND (s.started_at >= $2 OR s.started_at = \
                    (SELECT MAX(t.started_at) FROM agent_states t \
                     WHERE t.account_id = $1 AND t.user_id = s.user_id AND t.started_at < $2)) \
             ORDER BY s.user_id, s.started_at, s.id"
        )
        .bind(account.0)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(pool)
        .await?))
    }
}

impl AgentFigures {
    fn new(user_id: UserId, username: &str) -> Self {
        AgentFigures {
            user_id,
            username: username.to_owned(),
            calls_handled: 0,
            talk_secs: 0,
            wrap_up_secs: 0,
            ready_secs: 0,
            pause_secs: 0,
            pause_by_code: BTreeMap::new(),
            dispositions: BTreeMap::new(),
        }
    }
}

/// Returns a user's figures, adding them when first seen.
fn slot<'a>(
    figures: &'a mut BTreeMap<UserId, AgentFigures>,
    users: &[crate::model::User],
    id: UserId,
) -> &'a mut AgentFigures {
    figures.entry(id).or_insert_with(|| {
        let name = users.iter().find(|u| u.id == id);
        AgentFigures::new(id, name.map_or("", |u| u.username.as_str()))
    })
}

#[derive(sqlx::FromRow)]
struct HandledCall {
    user_id: UserId,
    attempt_id: Option<AttemptId>,
    disposition: Option<String>,
    answered_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    user_id: UserId,
    state: String,
    pause_code: Option<String>,
    started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    attempts: i64,
    answered: i64,
    live: i64,
    abandoned: i64,
}

impl Tally {
    fn of(answered: bool, outcome: &str) -> Self {
        let abandoned = outcome == "abandoned";
        Tally {
            attempts: 1,
            answered: i64::from(answered || abandoned),
            live: i64::from((answered || abandoned) && !matches!(outcome, "machine" | "voicemail")),
            abandoned: i64::from(abandoned),
        }
    }

    fn add(&mut self, t: Tally) {
        self.attempts += t.attempts;
        self.answered += t.answered;
        self.live += t.live;
        self.abandoned += t.abandoned;
    }
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
