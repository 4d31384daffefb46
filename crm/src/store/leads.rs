//! Leads: one per contact of a campaign, with attempts, retries, callbacks
//! and the lease a dialling node holds while it calls.
//!
//! [`Store::claim_leads`] answers "who may be called now". SQL narrows the
//! candidates (not finished, not leased by a live node, due, attempts left)
//! and orders them: callbacks due first, then list priority, then the
//! earliest retry time. A finished lead counts as not finished again when
//! one of the campaign's recycling rules matches it (its last outcome, that
//! many days after its last attempt, fewer attempts than the recycling
//! cap); nothing is written until it is claimed, so the rule holds the same
//! on every node and at every claim. A callback booked for one agent is
//! only a candidate for a claim made for that agent
//! ([`Store::claim_leads_for`]) until the campaign's grace after its time
//! has passed. Rust then drops those outside the contact's local
//! calling hours, those inside the 72-hour quiet time after an abandon and
//! those whose number is suppressed, and the survivors are leased in the
//! same transaction. On PostgreSQL the candidates are read `FOR UPDATE SKIP
//! LOCKED`, so two nodes never wait on or take the same lead; on SQLite the
//! transaction is `BEGIN IMMEDIATE`, which serialises claimers. In both, the
//! lease is taken by a conditional update, so a lead another node holds is
//! never taken over before its lease expires.
//!
//! Every lease carries the epoch of the node that took it ([`Holder`]),
//! and every write a node makes on a lead it holds requires that epoch: a
//! node declared dead by a survivor cannot land a late write.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use dialer_core::{decide_retry, may_call, may_redial_after_abandon, resolve_zone};
use dialer_core::{AttemptOutcome, RetryDecision, RetryPolicy};
use serde::{Deserialize, Serialize};

use super::nodes::{fenced, still_member, Holder};
use super::{on_pool, Backend, Store};
pub use crate::model::LeadId;
use crate::model::{AccountId, CampaignId, CampaignStatus, ContactId, UserId};
use crate::{privacy, StoreError};

/// Where a lead stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadState {
    /// Waiting to be dialled when due.
    Pending,
    /// Leased by a node that is calling it.
    InProgress,
    /// Finished: exhausted, ended by a disposition, or suppressed.
    Done,
}

impl LeadState {
    /// Returns the state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LeadState::Pending => "pending",
            LeadState::InProgress => "in_progress",
            LeadState::Done => "done",
        }
    }
}

impl std::str::FromStr for LeadState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(LeadState::Pending),
            "in_progress" => Ok(LeadState::InProgress),
            "done" => Ok(LeadState::Done),
            other => Err(format!("stored lead state {other:?}")),
        }
    }
}

/// A contact's place in one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Lead {
    /// The lead's id.
    pub id: LeadId,
    /// The campaign that dials it.
    pub campaign_id: CampaignId,
    /// The contact to call.
    pub contact_id: ContactId,
    /// The priority of its list in the campaign; lower dials first.
    pub priority: i64,
    /// Where it stands.
    pub state: LeadState,
    /// Attempts made so far.
    #[sqlx(try_from = "i64")]
    pub attempts: u32,
    /// How the last attempt ended.
    pub last_outcome: Option<String>,
    /// When the last attempt ended.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The earliest time of the next attempt; `None` means now.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When a call to it was last abandoned.
    pub last_abandon_at: Option<DateTime<Utc>>,
    /// When the contact asked to be called back.
    pub callback_at: Option<DateTime<Utc>>,
    /// The agent who must make the callback, or `None` for anyone.
    #[sqlx(rename = "callback_user_id")]
    pub callback_user: Option<UserId>,
    /// The node that holds it.
    pub lease_owner: Option<String>,
    /// When that node's hold lapses.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// A lead leased to a node, with what the node needs to dial it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedLead {
    /// The lead's id.
    pub id: LeadId,
    /// The contact to call.
    pub contact_id: ContactId,
    /// The number to dial, E.164.
    pub phone_e164: String,
    /// The zone whose calling hours were checked.
    pub time_zone: Tz,
    /// Whether this is a callback that fell due.
    pub is_callback: bool,
    /// The agent a callback belongs to, if one.
    pub callback_user: Option<UserId>,
    /// The agent the lead is kept for: the owner of a callback still inside
    /// the campaign's grace. The call must go to them.
    pub reserved_for: Option<UserId>,
    /// When the lease lapses unless renewed.
    pub lease_expires_at: DateTime<Utc>,
}

impl Store {
    /// Creates a lead for every contact on the campaign's lists that lacks
    /// one, and returns how many were created.
    ///
    /// A contact on several lists takes the best (lowest) list priority.
    pub async fn sync_leads(
        &self,
        account: AccountId,
        campaign: CampaignId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.campaign(account, campaign).await?;
        let before = self.lead_count(account, campaign).await?;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO leads (account_id, campaign_id, contact_id, priority, created_at, \
             updated_at) \
             SELECT $1, $2, m.contact_id, MIN(cl.priority), $3, $3 \
             FROM campaign_lists cl \
             JOIN list_members m ON m.list_id = cl.list_id AND m.account_id = cl.account_id \
             WHERE cl.campaign_id = $2 AND cl.account_id = $1 \
             GROUP BY m.contact_id \
             ON CONFLICT (campaign_id, contact_id) DO UPDATE SET priority = excluded.priority"
        )
        .bind(account.0)
        .bind(campaign.0)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(self.lead_count(account, campaign).await? - before)
    }

    /// Leases up to `n` leads of a running campaign that may be dialled at
    /// `now` to `holder`, until `now + lease`; nothing if `holder` was
    /// fenced. A callback booked for one agent is left for them until the
    /// campaign's grace after its time has passed.
    pub async fn claim_leads(
        &self,
        account: AccountId,
        campaign: CampaignId,
        holder: impl Into<Holder>,
        n: usize,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Vec<ClaimedLead>, StoreError> {
        self.claim_leads_for(account, campaign, holder, n, now, lease, &[])
            .await
    }

    /// [`Store::claim_leads`] for a call that may go to any of `agents`:
    /// callbacks booked for one of them are candidates inside their grace
    /// too, and come back with [`ClaimedLead::reserved_for`] set.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_leads_for(
        &self,
        account: AccountId,
        campaign: CampaignId,
        holder: impl Into<Holder>,
        n: usize,
        now: DateTime<Utc>,
        lease: TimeDelta,
        agents: &[UserId],
    ) -> Result<Vec<ClaimedLead>, StoreError> {
        if self.campaign(account, campaign).await?.status != CampaignStatus::Running || n == 0 {
            return Ok(Vec::new());
        }
        let holder = holder.into();
        let settings = self.campaign_settings(account, campaign).await?;
        let grace_cutoff = now - settings.callback_grace();
        let rules = Recycling::of(&settings, now);
        let window = settings.calling_hours.calling_window()?;
        let default_tz = settings.time_zone()?;
        let reserves_agent = settings.mode.reserves_agent();
        let key = self.account_key(account).await?;
        let expires = now + lease;
        let batch = (n * 4).clamp(64, 1000);
        let (begin, lock) = match self.backend() {
            Backend::Sqlite => ("BEGIN IMMEDIATE", ""),
            Backend::Postgres => ("BEGIN", " FOR UPDATE OF l SKIP LOCKED"),
        };
        // $7 is the grace cutoff, $8 the recycling cap, then each rule's
        // outcome and cutoff, then the agents a callback may be kept for.
        let recycled = rules.predicate(8);
        let first_agent = 9 + 2 * rules.rules.len();
        let mine = if agents.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!(
                "l.callback_user_id IN ({})",
                placeholders(first_agent, agents.len())
            )
        };
        let select = format!(
            "SELECT l.id, l.contact_id, l.last_abandon_at, l.callback_at, l.callback_user_id, \
             c.phone_e164, c.time_zone FROM leads l JOIN contacts c ON c.id = l.contact_id \
             WHERE l.account_id = $1 AND l.campaign_id = $2 AND c.account_id = $1 \
             AND (({CLAIMABLE} \
               AND ((l.callback_at IS NOT NULL AND l.callback_at <= $3 \
                     AND (l.callback_user_id IS NULL OR l.callback_at <= $7 OR {mine})) \
                 OR (l.callback_at IS NULL AND l.attempts < $4 \
                     AND (l.next_attempt_at IS NULL OR l.next_attempt_at <= $3)))) \
               OR {recycled}) \
             ORDER BY CASE WHEN l.callback_at IS NULL THEN 1 ELSE 0 END, l.callback_at, \
             l.priority, COALESCE(l.next_attempt_at, l.created_at), l.id \
             LIMIT $5 OFFSET $6{lock}"
        );
        let claimed: Vec<ClaimedLead> = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let mut chosen: Vec<ClaimedLead> = Vec::new();
            for page in 0..MAX_PAGES {
                let mut query = sqlx::query_as::<_, CandidateRow>(&select)
                    .bind(account.0)
                    .bind(campaign.0)
                    .bind(now)
                    .bind(i64::from(settings.max_attempts))
                    .bind(batch as i64)
                    .bind((page * batch) as i64)
                    .bind(grace_cutoff)
                    .bind(rules.cap);
                for (outcome, cutoff) in &rules.rules {
                    query = query.bind(*outcome).bind(*cutoff);
                }
                for agent in agents {
                    query = query.bind(agent.0);
                }
                let rows = query.fetch_all(&mut *tx).await?;
                let exhausted = rows.len() < batch;
                let open: Vec<ClaimedLead> = rows
                    .into_iter()
                    .filter(|r| may_redial_after_abandon(r.last_abandon_at, now, reserves_agent))
                    .filter_map(|r| r.into_claim(default_tz, expires, grace_cutoff))
                    .filter(|c| may_call(&window, c.time_zone, now))
                    .collect();
                if !open.is_empty() {
                    let hashes: Vec<String> = open
                        .iter()
                        .map(|c| privacy::number_hash(&key, &c.phone_e164))
                        .collect();
                    let sql = format!(
                        "SELECT number_hash FROM suppression WHERE account_id = $1 \
                         AND number_hash IN ({})",
                        placeholders(2, hashes.len())
                    );
                    let mut query = sqlx::query_scalar::<_, String>(&sql).bind(account.0);
                    for h in &hashes {
                        query = query.bind(h);
                    }
                    let blocked = query.fetch_all(&mut *tx).await?;
                    for (claim, hash) in open.into_iter().zip(&hashes) {
                        if chosen.len() < n && !blocked.contains(hash) {
                            chosen.push(claim);
                        }
                    }
                }
                if exhausted || chosen.len() >= n {
                    break;
                }
            }
            if chosen.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let sql = format!(
                "UPDATE leads AS l SET state = 'in_progress', lease_owner = $1, \
                 lease_epoch = $5, lease_expires_at = $2, updated_at = $3 \
                 WHERE l.account_id = $4 AND ({CLAIMABLE} OR {recycled}) AND {member} \
                 AND l.id IN ({}) RETURNING id",
                placeholders(7 + 2 * rules.rules.len(), chosen.len()),
                recycled = rules.predicate(6),
                member = still_member(self.backend(), 1, 5),
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql)
                .bind(holder.name())
                .bind(expires)
                .bind(now)
                .bind(account.0)
                .bind(holder.epoch())
                .bind(rules.cap);
            for (outcome, cutoff) in &rules.rules {
                query = query.bind(*outcome).bind(*cutoff);
            }
            for c in &chosen {
                query = query.bind(c.id.0);
            }
            let leased = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            chosen.retain(|c| leased.contains(&c.id.0));
            chosen
        });
        tracing::debug!(%campaign, node = holder.name(), claimed = claimed.len(), "leads claimed");
        Ok(claimed)
    }

    /// Extends every live lease `holder` holds, in every account, to
    /// `now + lease`, and returns how many it extended.
    pub async fn renew_leases(
        &self,
        holder: impl Into<Holder>,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<u64, StoreError> {
        let holder = holder.into();
        Ok(on_pool!(self, |pool| sqlx::query(
            "UPDATE leads SET lease_expires_at = $1, updated_at = $2 \
             WHERE lease_owner = $3 AND lease_epoch = $4 AND state = 'in_progress' \
             AND lease_expires_at > $2"
        )
        .bind(now + lease)
        .bind(now)
        .bind(holder.name())
        .bind(holder.epoch())
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// Gives a lead `holder` holds back undialled, due at once.
    pub async fn release_lead(
        &self,
        account: AccountId,
        lead: LeadId,
        holder: impl Into<Holder>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let holder = holder.into();
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE leads SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, \
             updated_at = $1 WHERE id = $2 AND account_id = $3 AND lease_owner = $4 \
             AND lease_epoch = $5 AND state = 'in_progress'"
        )
        .bind(now)
        .bind(lead.0)
        .bind(account.0)
        .bind(holder.name())
        .bind(holder.epoch())
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records an attempt that reached no conversation, and schedules the
    /// next one or finishes the lead by the campaign's retry rules.
    ///
    /// The attempt fulfils any callback that was due, and ends the lease.
    pub async fn record_outcome(
        &self,
        account: AccountId,
        lead: LeadId,
        outcome: AttemptOutcome,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Lead, StoreError> {
        self.outcome_as(None, account, lead, outcome, now, policy)
            .await
    }

    /// [`Store::record_outcome`] by the node holding the lead's lease: it
    /// is refused if `holder` no longer holds it (fenced, or the lease
    /// lapsed and another node took the lead).
    pub async fn record_held_outcome(
        &self,
        holder: &Holder,
        account: AccountId,
        lead: LeadId,
        outcome: AttemptOutcome,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Lead, StoreError> {
        self.outcome_as(Some(holder), account, lead, outcome, now, policy)
            .await
    }

    async fn outcome_as(
        &self,
        holder: Option<&Holder>,
        account: AccountId,
        lead: LeadId,
        outcome: AttemptOutcome,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Lead, StoreError> {
        let current = self.lead(account, lead).await?;
        let attempts = current.attempts.saturating_add(1);
        let (state, next) = match decide_retry(policy, outcome, attempts, now, None) {
            RetryDecision::Retry { at } => (LeadState::Pending, Some(at)),
            RetryDecision::Exhausted | RetryDecision::Callback(_) => (LeadState::Done, None),
        };
        let abandoned = outcome == AttemptOutcome::Abandoned;
        let attempt = Attempt {
            outcome: outcome_name(outcome),
            state,
            next,
            abandoned,
            holder,
        };
        self.finish_attempt(account, &current, &attempt, now)
            .await?;
        self.lead(account, lead).await
    }

    /// Records an attempt on which an agent talked to the contact: the lead
    /// is done unless the agent's disposition books a callback.
    pub async fn record_conversation(
        &self,
        account: AccountId,
        lead: LeadId,
        now: DateTime<Utc>,
    ) -> Result<Lead, StoreError> {
        self.conversation_as(None, account, lead, now).await
    }

    /// [`Store::record_conversation`] by the node holding the lead's lease;
    /// refused if `holder` no longer holds it.
    pub async fn record_held_conversation(
        &self,
        holder: &Holder,
        account: AccountId,
        lead: LeadId,
        now: DateTime<Utc>,
    ) -> Result<Lead, StoreError> {
        self.conversation_as(Some(holder), account, lead, now).await
    }

    async fn conversation_as(
        &self,
        holder: Option<&Holder>,
        account: AccountId,
        lead: LeadId,
        now: DateTime<Utc>,
    ) -> Result<Lead, StoreError> {
        let current = self.lead(account, lead).await?;
        let attempt = Attempt {
            outcome: "answered",
            state: LeadState::Done,
            next: None,
            abandoned: false,
            holder,
        };
        self.finish_attempt(account, &current, &attempt, now)
            .await?;
        self.lead(account, lead).await
    }

    /// Books a callback for a lead at `at`, for one agent or anyone; it
    /// comes before every other lead once due, attempts left or not.
    pub async fn schedule_callback(
        &self,
        account: AccountId,
        lead: LeadId,
        at: DateTime<Utc>,
        user: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<Lead, StoreError> {
        if let Some(user) = user {
            let found: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
                "SELECT id FROM users WHERE id = $1 AND account_id = $2"
            )
            .bind(user.0)
            .bind(account.0)
            .fetch_optional(pool)
            .await?);
            if found.is_none() {
                return Err(StoreError::Invalid("no such user for the callback".into()));
            }
        }
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE leads SET callback_at = $1, callback_user_id = $2, state = 'pending', \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
             WHERE id = $4 AND account_id = $5"
        )
        .bind(at)
        .bind(user.map(|u| u.0))
        .bind(now)
        .bind(lead.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.lead(account, lead).await
    }

    /// Returns one lead of the account.
    pub async fn lead(&self, account: AccountId, lead: LeadId) -> Result<Lead, StoreError> {
        let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1 AND account_id = $2");
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(lead.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?))
    }

    /// Returns the lead a campaign holds for a contact.
    pub async fn lead_for_contact(
        &self,
        account: AccountId,
        campaign: CampaignId,
        contact: ContactId,
    ) -> Result<Lead, StoreError> {
        let sql = format!(
            "SELECT {LEAD_COLUMNS} FROM leads \
             WHERE campaign_id = $1 AND contact_id = $2 AND account_id = $3"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(campaign.0)
            .bind(contact.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?))
    }

    pub(super) async fn finish_attempt(
        &self,
        account: AccountId,
        current: &Lead,
        attempt: &Attempt<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // The attempts guard turns a concurrent second report into a
        // conflict instead of a lost increment.
        let n = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE leads SET attempts = attempts + 1, last_outcome = $1, last_attempt_at = $2, \
             next_attempt_at = $3, state = $4, callback_at = NULL, callback_user_id = NULL, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = $2, \
             last_abandon_at = CASE WHEN $8 THEN $2 ELSE last_abandon_at END \
             WHERE id = $5 AND account_id = $6 AND attempts = $7 \
             AND ($9 = 0 OR (lease_owner = $10 AND lease_epoch = $11 \
                  AND state = 'in_progress'))"
        )
        .bind(attempt.outcome)
        .bind(now)
        .bind(attempt.next)
        .bind(attempt.state.as_str())
        .bind(current.id.0)
        .bind(account.0)
        .bind(i64::from(current.attempts))
        .bind(attempt.abandoned)
        .bind(i64::from(attempt.holder.is_some()))
        .bind(attempt.holder.map(Holder::name))
        .bind(attempt.holder.map(Holder::epoch))
        .execute(pool)
        .await?
        .rows_affected()
        });
        if n == 0 {
            if let Some(holder) = attempt.holder {
                return Err(fenced(holder));
            }
            return Err(StoreError::Conflict(format!(
                "lead {} changed while its outcome was recorded",
                current.id.0
            )));
        }
        Ok(())
    }

    async fn lead_count(
        &self,
        account: AccountId,
        campaign: CampaignId,
    ) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM leads WHERE campaign_id = $1 AND account_id = $2"
        )
        .bind(campaign.0)
        .bind(account.0)
        .fetch_one(pool)
        .await?);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// What one finished attempt does to its lead.
pub(super) struct Attempt<'a> {
    /// How it ended, as stored.
    pub outcome: &'a str,
    /// Where the lead stands after it.
    pub state: LeadState,
    /// When to dial next, if pending.
    pub next: Option<DateTime<Utc>>,
    /// Whether the call was abandoned.
    pub abandoned: bool,
    /// The node whose lease the write requires, if any.
    pub holder: Option<&'a Holder>,
}

/// How many candidate pages one claim reads before settling for fewer leads.
const MAX_PAGES: usize = 10;

/// A campaign's recycling rules, as bound into a claim's SQL.
struct Recycling {
    /// The most attempts a recycled lead may have reached, exclusive.
    cap: i64,
    /// Each rule's stored outcome and the latest last attempt it recycles.
    rules: Vec<(&'static str, DateTime<Utc>)>,
}

impl Recycling {
    fn of(settings: &super::campaign_settings::CampaignSettings, now: DateTime<Utc>) -> Self {
        let rules = settings
            .recycle
            .iter()
            .filter_map(|r| {
                let outcome = super::campaign_settings::RECYCLABLE_OUTCOMES
                    .into_iter()
                    .find(|o| *o == r.outcome)?;
                Some((outcome, now - TimeDelta::days(i64::from(r.after_days))))
            })
            .collect();
        Recycling {
            cap: i64::from(settings.recycle_max_attempts),
            rules,
        }
    }

    /// The condition on `leads l` that a finished lead is due again, with
    /// the cap bound at `$first` and the rules' pairs after it.
    fn predicate(&self, first: usize) -> String {
        if self.rules.is_empty() {
            // The cap stays referenced, so every bound parameter is used.
            return format!("(l.attempts < ${first} AND 1 = 0)");
        }
        let each: Vec<String> = (0..self.rules.len())
            .map(|i| {
                let at = first + 1 + 2 * i;
                format!(
                    "(l.last_outcome = ${at} AND l.last_attempt_at <= ${})",
                    at + 1
                )
            })
            .collect();
        format!(
            "(l.state = 'done' AND l.callback_at IS NULL AND l.attempts < ${first} \
             AND l.last_attempt_at IS NOT NULL AND ({}))",
            each.join(" OR ")
        )
    }
}

/// A lead no live node holds, written against `leads l` with `now` as `$3`.
const CLAIMABLE: &str = "l.state <> 'done' AND (l.state = 'pending' OR l.lease_expires_at <= $3)";

const LEAD_COLUMNS: &str = "id, campaign_id, contact_id, priority, state, attempts, \
     last_outcome, last_attempt_at, next_attempt_at, last_abandon_at, callback_at, \
     callback_user_id, lease_owner, lease_expires_at";

/// Returns the stored name of an attempt outcome.
pub fn outcome_name(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Busy => "busy",
        AttemptOutcome::NoAnswer => "no_answer",
        AttemptOutcome::Machine => "machine",
        AttemptOutcome::Voicemail => "voicemail",
        AttemptOutcome::Abandoned => "abandoned",
        AttemptOutcome::Failed => "failed",
    }
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    id: LeadId,
    contact_id: ContactId,
    last_abandon_at: Option<DateTime<Utc>>,
    callback_at: Option<DateTime<Utc>>,
    callback_user_id: Option<UserId>,
    phone_e164: String,
    time_zone: Option<String>,
}

impl CandidateRow {
    /// Resolves the contact's zone; a lead whose zone or number is unusable is skipped.
    fn into_claim(
        self,
        default_tz: Tz,
        lease_expires_at: DateTime<Utc>,
        grace_cutoff: DateTime<Utc>,
    ) -> Option<ClaimedLead> {
        let digits = self.phone_e164.strip_prefix('+').unwrap_or("");
        if !(2..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let zone = match resolve_zone(self.time_zone.as_deref(), &self.phone_e164, default_tz) {
            Ok(zone) => zone,
            Err(e) => {
                tracing::warn!(lead = self.id.0, error = %e, "lead skipped: unusable time zone");
                return None;
            }
        };
        Some(ClaimedLead {
            id: self.id,
            contact_id: self.contact_id,
            phone_e164: self.phone_e164,
            time_zone: zone.tz,
            is_callback: self.callback_at.is_some(),
            callback_user: self.callback_user_id,
            reserved_for: self
                .callback_user_id
                .filter(|_| self.callback_at.is_some_and(|at| at > grace_cutoff)),
            lease_expires_at,
        })
    }
}
