//! The facts compliance rests on, kept with each call attempt: which node
//! placed it, when a person answered, when an agent was connected, when it
//! was abandoned. The abandon figures are counted from them, so a restart,
//! a crash or another node never resets them, and a node that starts again
//! closes what it left open ([`Store::recover_node`]).

use chrono::{DateTime, TimeDelta, Utc};
use dialer_core::{AttemptOutcome, Counts};
use vocab::CallRef;

use super::calls::ATTEMPT_COLUMNS;
use super::leads::LeadId;
use super::nodes::Holder;
use super::webhooks::enqueue_webhooks;
use super::{on_pool, Store};
use crate::model::{AccountId, AttemptId, CallAttempt, CampaignId, ContactId, UserId};
use crate::webhooks::{CallFacts, Occurrence};
use crate::StoreError;

/// The outcome stored for an attempt its node stopped without ending.
pub const INTERRUPTED: &str = "interrupted";

/// What [`Store::recover_node`] closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Attempts answered but never connected, now counted as abandoned.
    pub abandoned: u64,
    /// Other attempts closed as interrupted.
    pub interrupted: u64,
    /// Leads given back to their campaigns.
    pub leads: u64,
    /// Agents whose last state was closed as logged out.
    pub agents: u64,
    /// The calls closed, for the wallboards to end them.
    pub calls: Vec<ClosedCall>,
    /// The agents logged out, for the wallboards.
    pub logged_out: Vec<ClosedAgent>,
}

/// A call a stopped node left open, now closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedCall {
    /// Its account.
    pub account: AccountId,
    /// Its reference.
    pub call_ref: CallRef,
    /// The campaign that placed it.
    pub campaign_id: Option<CampaignId>,
    /// `abandoned` or `interrupted`.
    pub outcome: &'static str,
}

/// An agent a stopped node left logged in, now logged out.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClosedAgent {
    /// Its account.
    pub account_id: AccountId,
    /// The agent.
    pub user_id: UserId,
    /// Their login name.
    pub username: String,
}

/// A campaign's finished attempts over a period, summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CampaignHistory {
    /// Attempts dialled and finished.
    pub dials: u64,
    /// Answered by a person (connected to an agent or abandoned).
    pub live: u64,
    /// Answered by a machine.
    pub machines: u64,
    /// Busy.
    pub busy: u64,
    /// The mean time connected to an agent, in seconds, if any call was.
    pub talk_mean_secs: Option<f64>,
}

/// How far back a campaign's history is read for a simulation.
pub const HISTORY_DAYS: i64 = 30;
/// The fewest finished calls a campaign's history must hold to stand in
/// for rates given by hand.
pub const MIN_HISTORY_CALLS: u64 = 50;

/// The shares of a campaign's dials that a person, a machine or a busy
/// line answered: what a simulation of it dials against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryRates {
    /// Answered by a person.
    pub answer: f64,
    /// Answered by a machine.
    pub machine: f64,
    /// Busy.
    pub busy: f64,
}

impl CampaignHistory {
    /// The shares of dials answered by a person, a machine or a busy line,
    /// or `None` with fewer than [`MIN_HISTORY_CALLS`] calls or no live
    /// answer among them: too few to go by.
    pub fn rates(&self) -> Option<HistoryRates> {
        if self.dials < MIN_HISTORY_CALLS || self.live == 0 {
            return None;
        }
        let share = |n: u64| n as f64 / self.dials as f64;
        Some(HistoryRates {
            answer: share(self.live),
            machine: share(self.machines),
            busy: share(self.busy),
        })
    }
}

/// A campaign's live answers and abandons over the rolling day and month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComplianceCounts {
    /// The last 24 hours.
    pub day: Counts,
    /// The last 30 days.
    pub month: Counts,
}

impl Store {
    /// Records a call being placed by `node`, before it is dialled.
    pub async fn open_attempt(
        &self,
        account: AccountId,
        call: CallRef,
        campaign: CampaignId,
        contact: ContactId,
        node: impl Into<Holder>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let node = node.into();
        let n = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO call_attempts (account_id, call_ref, campaign_id, contact_id, \
             started_at, node, node_epoch) SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS \
             (SELECT 1 FROM campaigns WHERE id = $3 AND account_id = $1)"
        )
        .bind(account.0)
        .bind(call)
        .bind(campaign.0)
        .bind(contact.0)
        .bind(now)
        .bind(node.name())
        .bind(node.epoch())
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records that the call was answered, found by its reference, and
    /// queues its `call.answered` webhooks in the same transaction; a call
    /// already closed (by a survivor) is `NotFound`.
    pub async fn mark_call_answered(
        &self,
        account: AccountId,
        call: CallRef,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE call_attempts SET answered_at = $1 WHERE call_ref = $2 AND account_id = $3 \
             AND ended_at IS NULL RETURNING {ATTEMPT_COLUMNS}"
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let attempt: CallAttempt = sqlx::query_as(&sql)
                .bind(at)
                .bind(call)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let answered = Occurrence::call_answered(&CallFacts::of(&attempt), at);
            enqueue_webhooks!(&mut *tx, account, &answered)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records that an agent was connected to the answered call.
    pub async fn mark_connected(
        &self,
        account: AccountId,
        call: CallRef,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.stamp(account, call, "connected_at", at).await
    }

    /// Records that the answered call was abandoned: no agent in time.
    pub async fn mark_abandoned(
        &self,
        account: AccountId,
        call: CallRef,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.stamp(account, call, "abandoned_at", at).await
    }

    /// Counts a campaign's live answers and abandons, from every node, in
    /// the 24 hours and 30 days before `now`.
    pub async fn compliance_counts(
        &self,
        campaign: CampaignId,
        now: DateTime<Utc>,
    ) -> Result<ComplianceCounts, StoreError> {
        let day = now - TimeDelta::hours(24);
        let month = now - TimeDelta::days(30);
        // Two index ranges, one per column, rather than an OR over both.
        let sql = |column: &str| {
            format!(
                "SELECT CAST(COALESCE(SUM(CASE WHEN {column} >= $2 THEN 1 ELSE 0 END), 0) \
                 AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM call_attempts \
                 WHERE campaign_id = $1 AND {column} >= $3 AND {column} <= $4"
            )
        };
        let mut counts = [(0i64, 0i64); 2];
        for (i, column) in ["connected_at", "abandoned_at"].into_iter().enumerate() {
            let query = sql(column);
            counts[i] = on_pool!(self, |pool| sqlx::query_as(&query)
                .bind(campaign.0)
                .bind(day)
                .bind(month)
                .bind(now)
                .fetch_one(pool)
                .await?);
        }
        let [(connected_day, connected_month), (abandoned_day, abandoned_month)] = counts;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(ComplianceCounts {
            day: Counts {
                live: n(connected_day) + n(abandoned_day),
                abandoned: n(abandoned_day),
            },
            month: Counts {
                live: n(connected_month) + n(abandoned_month),
                abandoned: n(abandoned_month),
            },
        })
    }

    /// Sums up a campaign's finished attempts since `since`, from every
    /// node: what `dialcrm simulate --campaign` takes its rates and talk
    /// time from.
    pub async fn campaign_history(
        &self,
        account: AccountId,
        campaign: CampaignId,
        since: DateTime<Utc>,
    ) -> Result<CampaignHistory, StoreError> {
        type Row = (i64, i64, i64, i64, i64);
        let (dials, live, machines, busy, talks): Row = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN connected_at IS NOT NULL OR abandoned_at IS NOT NULL \
                  THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN outcome IN ('machine', 'voicemail') THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN outcome = 'busy' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN connected_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
                  AS BIGINT) \
             FROM call_attempts WHERE account_id = $1 AND campaign_id = $2 \
             AND direction = 'outbound' AND started_at >= $3 AND ended_at IS NOT NULL"
        )
        .bind(account.0)
        .bind(campaign.0)
        .bind(since)
        .fetch_one(pool)
        .await?
        });
        // Talk times are summed in Rust: date arithmetic differs between
        // the engines.
        let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT connected_at, ended_at FROM call_attempts WHERE account_id = $1 \
             AND campaign_id = $2 AND started_at >= $3 AND connected_at IS NOT NULL \
             AND ended_at IS NOT NULL"
        )
        .bind(account.0)
        .bind(campaign.0)
        .bind(since)
        .fetch_all(pool)
        .await?);
        let talk: f64 = spans
            .iter()
            .map(|(from, to)| (*to - *from).num_milliseconds().max(0) as f64 / 1000.0)
            .sum();
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(CampaignHistory {
            dials: n(dials),
            live: n(live),
            machines: n(machines),
            busy: n(busy),
            talk_mean_secs: (talks > 0 && !spans.is_empty()).then(|| talk / spans.len() as f64),
        })
    }

    /// Closes what `node` left open when it stopped without ending its calls:
    /// an answered call that never reached an agent is counted as abandoned
    /// (as the regulators count it), any other open attempt is closed as
    /// interrupted, their leads go back to the campaign under its retry
    /// rules, leads it held undialled are given back, and its agents' last
    /// states are closed. Call it only when `node` runs no call.
    pub async fn recover_node(
        &self,
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<Recovery, StoreError> {
        self.recover_node_before(node, i64::MAX, now).await
    }

    /// [`Store::recover_node`] for what `node` left open under epochs
    /// before `epoch` only: a survivor passes the epoch it declared dead, so
    /// the node's next start under the same name, whose calls carry a later
    /// epoch, is never touched.
    pub async fn recover_node_before(
        &self,
        node: &str,
        epoch: i64,
        now: DateTime<Utc>,
    ) -> Result<Recovery, StoreError> {
        let mut recovery = Recovery::default();
        let open: Vec<OpenAttempt> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, account_id, call_ref, campaign_id, contact_id, answered_at, \
             connected_at, abandoned_at FROM call_attempts \
             WHERE node = $1 AND node_epoch < $2 AND ended_at IS NULL \
             AND direction = 'outbound' ORDER BY id"
        )
        .bind(node)
        .bind(epoch)
        .fetch_all(pool)
        .await?);
        for attempt in open {
            let abandoned = attempt.answered_at.is_some()
                && attempt.connected_at.is_none()
                && attempt.abandoned_at.is_none();
            let outcome = if abandoned || attempt.abandoned_at.is_some() {
                recovery.abandoned += u64::from(abandoned);
                AttemptOutcome::Abandoned
            } else {
                recovery.interrupted += 1;
                AttemptOutcome::Failed
            };
            let stored = if outcome == AttemptOutcome::Abandoned {
                "abandoned"
            } else {
                INTERRUPTED
            };
            let sql = format!(
                "UPDATE call_attempts SET ended_at = $1, outcome = $2, \
                 abandoned_at = CASE WHEN $3 THEN answered_at ELSE abandoned_at END \
                 WHERE id = $4 AND ended_at IS NULL RETURNING {ATTEMPT_COLUMNS}"
            );
            let closed: bool = on_pool!(self, |pool| {
                let mut tx = pool.begin().await?;
                let closed: Option<CallAttempt> = sqlx::query_as(&sql)
                    .bind(now)
                    .bind(stored)
                    .bind(abandoned)
                    .bind(attempt.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(closed) = &closed {
                    let ended = Occurrence::call_ended(&CallFacts::of(closed), stored, now);
                    enqueue_webhooks!(&mut *tx, closed.account_id, &ended)?;
                }
                tx.commit().await?;
                closed.is_some()
            });
            if !closed {
                // Its node ended it after all, just now.
                continue;
            }
            recovery.calls.push(ClosedCall {
                account: attempt.account_id,
                call_ref: attempt.call_ref,
                campaign_id: attempt.campaign_id,
                outcome: stored,
            });
            let (Some(campaign), Some(contact)) = (attempt.campaign_id, attempt.contact_id) else {
                continue;
            };
            let account = attempt.account_id;
            let lead: Option<(LeadId, String)> = on_pool!(self, |pool| sqlx::query_as(
                "SELECT id, state FROM leads WHERE account_id = $1 AND campaign_id = $2 \
                 AND contact_id = $3 AND lease_owner = $4 AND lease_epoch < $5"
            )
            .bind(account.0)
            .bind(campaign)
            .bind(contact)
            .bind(node)
            .bind(epoch)
            .fetch_optional(pool)
            .await?);
            let Some((lead, state)) = lead else {
                continue;
            };
            if state != "in_progress" {
                continue;
            }
            let policy = self
                .campaign_settings(account, campaign)
                .await?
                .retry_policy();
            self.record_outcome(account, lead, outcome, now, &policy)
                .await?;
            recovery.leads += 1;
        }
        // Inbound calls it was answering: closed as interrupted, never as
        // an outbound abandon, and their callers' leads are left alone.
        let inbound: Vec<(i64, i64, CallRef, Option<i64>)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, account_id, call_ref, campaign_id FROM call_attempts \
             WHERE node = $1 AND node_epoch < $2 AND ended_at IS NULL \
             AND direction = 'inbound' ORDER BY id"
        )
        .bind(node)
        .bind(epoch)
        .fetch_all(pool)
        .await?);
        for (id, account, call_ref, campaign) in inbound {
            let closed = on_pool!(self, |pool| sqlx::query(
                "UPDATE call_attempts SET ended_at = $1, outcome = 'interrupted' \
                 WHERE id = $2 AND ended_at IS NULL"
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
            if closed == 0 {
                continue;
            }
            recovery.interrupted += 1;
            recovery.calls.push(ClosedCall {
                account: AccountId(account),
                call_ref,
                campaign_id: campaign.map(CampaignId),
                outcome: INTERRUPTED,
            });
        }
        // Leads claimed but never dialled, or held on an agent's preview screen.
        recovery.leads += on_pool!(self, |pool| sqlx::query(
            "UPDATE leads SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, \
             updated_at = $1 WHERE lease_owner = $2 AND lease_epoch < $3 \
             AND state = 'in_progress'"
        )
        .bind(now)
        .bind(node)
        .bind(epoch)
        .execute(pool)
        .await?
        .rows_affected());
        recovery.logged_out = self.close_agent_states(node, now).await?;
        recovery.agents = recovery.logged_out.len() as u64;
        Ok(recovery)
    }

    /// Writes a logged-out state for every agent whose last state was set
    /// on `node` and is not logged out, and returns them.
    async fn close_agent_states(
        &self,
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClosedAgent>, StoreError> {
        let agents: Vec<ClosedAgent> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT s.account_id, s.user_id, u.username FROM agent_states s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.node = $1 AND s.state <> 'logged_out' AND s.id = \
             (SELECT MAX(t.id) FROM agent_states t WHERE t.user_id = s.user_id) \
             ORDER BY s.user_id"
        )
        .bind(node)
        .fetch_all(pool)
        .await?);
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO agent_states (account_id, user_id, state, started_at, node) \
             SELECT s.account_id, s.user_id, 'logged_out', $1, $2 FROM agent_states s \
             WHERE s.node = $2 AND s.state <> 'logged_out' AND s.id = \
             (SELECT MAX(t.id) FROM agent_states t WHERE t.user_id = s.user_id)"
        )
        .bind(now)
        .bind(node)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(agents)
    }

    async fn stamp(
        &self,
        account: AccountId,
        call: CallRef,
        column: &'static str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE call_attempts SET {column} = $1 WHERE call_ref = $2 AND account_id = $3 \
             AND ended_at IS NULL"
        );
        let n = on_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(at)
                .bind(call)
                .bind(account.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct OpenAttempt {
    id: AttemptId,
    account_id: AccountId,
    call_ref: CallRef,
    campaign_id: Option<CampaignId>,
    contact_id: Option<ContactId>,
    answered_at: Option<DateTime<Utc>>,
    connected_at: Option<DateTime<Utc>>,
    abandoned_at: Option<DateTime<Utc>>,
}
