//! Inbound calls of a queue as they happen, and what the blend and the
//! reports read back of them: a call arriving (its caller's contact found
//! or made, with a lead of the queue's campaign kept `done`), taken by an
//! agent, and ended with its outcome; each queue's recent load, and its
//! figures over a period.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::{check_number, Queue};
use crate::model::{AccountId, AttemptId, CallAttempt, ContactFields, ContactId, QueueId, UserId};
use crate::store::calls::ATTEMPT_COLUMNS;
use crate::store::nodes::Holder;
use crate::store::webhooks::enqueue_webhooks;
use crate::store::{on_pool, Store};
use crate::webhooks::{CallFacts, Occurrence};
use crate::StoreError;
use vocab::CallRef;

/// An inbound call as logged when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivedCall {
    /// Its attempt row.
    pub attempt_id: AttemptId,
    /// The caller's contact; `None` for a withheld number.
    pub contact_id: Option<ContactId>,
    /// Whether the contact existed before this call.
    pub known: bool,
    /// Whether the caller's number is on the do-not-call list; they are
    /// answered all the same (they called us), and the agent is told.
    pub suppressed: bool,
    /// The agent who last spoke to this contact, if any.
    pub last_agent: Option<UserId>,
}

/// How an inbound call ended, as its attempt's outcome says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    /// An agent took it.
    Answered,
    /// The caller hung up while waiting.
    Abandoned,
    /// The caller left a message.
    Voicemail,
    /// The caller asked to be called back.
    Callback,
    /// It came outside opening hours.
    Closed,
    /// Nobody took it before the overflow, and the overflow ended it.
    Overflowed,
    /// The service stopped or failed under it.
    Interrupted,
}

impl InboundOutcome {
    /// The outcome as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Answered => "answered",
            InboundOutcome::Abandoned => "abandoned_in_queue",
            InboundOutcome::Voicemail => "voicemail",
            InboundOutcome::Callback => "callback_requested",
            InboundOutcome::Closed => "closed",
            InboundOutcome::Overflowed => "overflowed",
            InboundOutcome::Interrupted => "interrupted",
        }
    }
}

impl Store {
    /// Logs an inbound call as it arrives at `queue` from `caller` (E.164,
    /// `None` when withheld): finds the caller's contact (the one with the
    /// latest call when several share the number) or creates one for a
    /// number never seen, makes sure it has a lead in the queue's
    /// campaign (kept `done`: they called us), and opens the attempt,
    /// held by `holder` so a survivor can close it if this node dies.
    pub async fn inbound_call_arrived(
        &self,
        queue: &Queue,
        caller: Option<&str>,
        call_ref: CallRef,
        holder: &Holder,
        now: DateTime<Utc>,
    ) -> Result<ArrivedCall, StoreError> {
        let account = queue.account_id;
        let campaign = queue.settings.campaign_id;
        let caller = caller.filter(|c| check_number(c).is_ok());
        let (contact, known) = match caller {
            Some(number) => {
                let found = self.latest_contact_by_number(account, number).await?;
                match found {
                    Some(id) => (Some(id), true),
                    None => {
                        let fields = ContactFields {
                            first_name: String::new(),
                            last_name: String::new(),
                            phone_e164: number.to_owned(),
                            phone_raw: number.to_owned(),
                            email: None,
                            postal_address: None,
                            profession: None,
                            time_zone: None,
                            custom_fields: serde_json::json!({}),
                        };
                        (
                            Some(self.create_contact(account, &fields, now).await?.id),
                            false,
                        )
                    }
                }
            }
            None => (None, false),
        };
        let attempt: i64 = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(contact) = contact {
                sqlx::query(
                    "INSERT INTO leads (account_id, campaign_id, contact_id, priority, state, \
                     created_at, updated_at) VALUES ($1, $2, $3, 0, 'done', $4, $4) \
                     ON CONFLICT (campaign_id, contact_id) DO NOTHING",
                )
                .bind(account.0)
                .bind(campaign.0)
                .bind(contact.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO call_attempts (account_id, call_ref, campaign_id, contact_id, \
                 started_at, answered_at, node, node_epoch, direction, queue_id) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, 'inbound', $8) RETURNING id",
            )
            .bind(account.0)
            .bind(call_ref)
            .bind(campaign.0)
            .bind(contact.map(|c| c.0))
            .bind(now)
            .bind(holder.name())
            .bind(holder.epoch())
            .bind(queue.id.0)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        let suppressed = match caller {
            Some(number) => self.is_suppressed(account, number).await?,
            None => false,
        };
        let last_agent = match contact {
            Some(contact) if known => self.last_agent_of(account, contact, now).await?,
            _ => None,
        };
        Ok(ArrivedCall {
            attempt_id: AttemptId(attempt),
            contact_id: contact,
            known,
            suppressed,
            last_agent,
        })
    }

    /// Takes over an inbound call another node of the service hands on
    /// (it had no free agent of the queue, this node has): the call's
    /// attempt, still open, comes to this node under the reference its
    /// call has here, keeping its start, caller and queue, so the call is
    /// counted once, where it ends. Returns it as arrived, with when it
    /// started; `None` when no open inbound attempt of the queue has that
    /// id (it ended meanwhile, or belongs elsewhere).
    pub async fn inbound_call_moved(
        &self,
        queue: &Queue,
        attempt: AttemptId,
        call_ref: CallRef,
        holder: &Holder,
        now: DateTime<Utc>,
    ) -> Result<Option<(ArrivedCall, DateTime<Utc>)>, StoreError> {
        let account = queue.account_id;
        let moved: Option<(Option<i64>, DateTime<Utc>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE call_attempts SET call_ref = $1, node = $2, node_epoch = $3 \
                 WHERE id = $4 AND account_id = $5 AND queue_id = $6 \
                 AND direction = 'inbound' AND ended_at IS NULL AND taken_at IS NULL \
                 RETURNING contact_id, started_at",
            )
            .bind(call_ref)
            .bind(holder.name())
            .bind(holder.epoch())
            .bind(attempt.0)
            .bind(account.0)
            .bind(queue.id.0)
            .fetch_optional(pool)
            .await?
        });
        let Some((contact, started)) = moved else {
            return Ok(None);
        };
        let contact = contact.map(ContactId);
        let last_agent = match contact {
            Some(contact) => self.last_agent_of(account, contact, now).await?,
            None => None,
        };
        let arrived = ArrivedCall {
            attempt_id: attempt,
            contact_id: contact,
            known: contact.is_some(),
            // The card reads the flag from the contact's number itself.
            suppressed: false,
            last_agent,
        };
        Ok(Some((arrived, started)))
    }

    /// Records that an agent took an inbound call.
    pub async fn inbound_call_taken(
        &self,
        account: AccountId,
        call_ref: CallRef,
        agent: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE call_attempts SET taken_at = $1, taken_by = $2 \
             WHERE call_ref = $3 AND account_id = $4 AND direction = 'inbound' \
             AND ended_at IS NULL RETURNING {ATTEMPT_COLUMNS}"
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let attempt: CallAttempt = sqlx::query_as(&sql)
                .bind(at)
                .bind(agent.0)
                .bind(call_ref)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            // For the account's systems, an inbound call is answered when
            // an agent takes it.
            let answered = Occurrence::call_answered(&CallFacts::of(&attempt), at);
            enqueue_webhooks!(&mut *tx, account, &answered)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Closes an inbound call with its outcome, queueing its `call.ended`
    /// webhooks; closing it twice keeps the first.
    pub async fn inbound_call_ended(
        &self,
        account: AccountId,
        call_ref: CallRef,
        outcome: InboundOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE call_attempts SET ended_at = $1, outcome = $2 \
             WHERE call_ref = $3 AND account_id = $4 AND direction = 'inbound' \
             AND ended_at IS NULL RETURNING {ATTEMPT_COLUMNS}"
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let closed: Option<CallAttempt> = sqlx::query_as(&sql)
                .bind(at)
                .bind(outcome.as_str())
                .bind(call_ref)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(closed) = &closed {
                let ended = Occurrence::call_ended(&CallFacts::of(closed), outcome.as_str(), at);
                enqueue_webhooks!(&mut *tx, account, &ended)?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Returns the queue an inbound call came to, by id and name; `None`
    /// for a call we placed.
    pub async fn queue_of_call(
        &self,
        account: AccountId,
        call_ref: CallRef,
    ) -> Result<Option<(QueueId, String)>, StoreError> {
        let row: Option<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT q.id, q.name FROM call_attempts a JOIN queues q ON q.id = a.queue_id \
             WHERE a.call_ref = $1 AND a.account_id = $2 AND a.direction = 'inbound'"
        )
        .bind(call_ref)
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id, name)| (QueueId(id), name)))
    }

    /// The contact with this number that was called or called in last; a
    /// contact merged into another (within the day its merge can be undone)
    /// stands for that one, which holds its history now. Without one, the
    /// contact that has it as another number (a merged contact's, after
    /// its merge became final).
    async fn latest_contact_by_number(
        &self,
        account: AccountId,
        number: &str,
    ) -> Result<Option<ContactId>, StoreError> {
        let id: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COALESCE(c.merged_into, c.id) FROM contacts c \
             LEFT JOIN call_attempts a ON a.contact_id = c.id AND a.account_id = c.account_id \
             WHERE c.account_id = $1 AND c.phone_e164 = $2 \
             GROUP BY c.id, c.merged_into ORDER BY MAX(a.started_at) DESC, c.id LIMIT 1"
        )
        .bind(account.0)
        .bind(number)
        .fetch_optional(pool)
        .await?);
        match id {
            Some(id) => Ok(Some(ContactId(id))),
            None => self.contact_by_other_number(account, number).await,
        }
    }

    /// The agent who last handled a call with the contact, as the
    /// interactions say, within the last 30 days.
    async fn last_agent_of(
        &self,
        account: AccountId,
        contact: ContactId,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let since = now - TimeDelta::days(30);
        let id: Option<Option<i64>> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT user_id FROM interactions WHERE account_id = $1 AND contact_id = $2 \
             AND kind = 'call' AND user_id IS NOT NULL AND occurred_at >= $3 \
             ORDER BY occurred_at DESC, id DESC LIMIT 1"
        )
        .bind(account.0)
        .bind(contact.0)
        .bind(since)
        .fetch_optional(pool)
        .await?);
        Ok(id.flatten().map(UserId))
    }
}

/// One queue's figures over a period, for supervisors' reports. A call
/// counts in the period and hour it arrived; its wait runs from its arrival
/// (the welcome message included) to an agent taking it or it ending.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueReport {
    /// The queue.
    pub queue_id: QueueId,
    /// Its name.
    pub name: String,
    /// Calls that arrived while it was open.
    pub offered: i64,
    /// Of them, taken by an agent.
    pub answered: i64,
    /// Of them, hung up by the caller while waiting.
    pub abandoned: i64,
    /// Of them, ending in a voicemail.
    pub voicemail: i64,
    /// Of them, ending with a callback booked.
    pub callbacks: i64,
    /// Calls that arrived while it was closed.
    pub closed: i64,
    /// Answered within the queue's service-level seconds, over offered
    /// (0 without any): the strict reading, where a caller who gave up
    /// early counts against it.
    pub service_level: f64,
    /// The mean wait of the answered calls, in seconds.
    pub average_speed_of_answer_secs: f64,
    /// The longest any caller waited, answered or not, in seconds.
    pub longest_wait_secs: i64,
    /// The same hour by hour, only hours with calls.
    pub hours: Vec<QueueHour>,
}

/// One hour of a queue's calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueHour {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Calls offered in the hour.
    pub offered: i64,
    /// Of them, answered.
    pub answered: i64,
    /// Of them, abandoned in the queue.
    pub abandoned: i64,
    /// Of them, answered within the service-level seconds, over offered.
    pub service_level: f64,
}

#[derive(Default)]
struct Tally {
    offered: i64,
    answered: i64,
    abandoned: i64,
    voicemail: i64,
    callbacks: i64,
    closed: i64,
    in_target: i64,
    answer_secs: i64,
    longest: i64,
}

impl Tally {
    fn level(&self) -> f64 {
        if self.offered == 0 {
            0.0
        } else {
            self.in_target as f64 / self.offered as f64
        }
    }
}

impl Store {
    /// Returns what the blend needs of a queue's recent traffic: the calls
    /// offered since `since` (outside opening hours not counted) and the
    /// mean talk time of those answered and ended, in seconds (`None`
    /// without any).
    pub async fn queue_load(
        &self,
        account: AccountId,
        queue: QueueId,
        since: DateTime<Utc>,
    ) -> Result<(u64, Option<f64>), StoreError> {
        type Row = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<String>);
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT taken_at, ended_at, outcome FROM call_attempts \
                 WHERE account_id = $1 AND queue_id = $2 AND direction = 'inbound' \
                 AND started_at >= $3"
        )
        .bind(account.0)
        .bind(queue.0)
        .bind(since)
        .fetch_all(pool)
        .await?);
        let offered = rows
            .iter()
            .filter(|(_, _, o)| o.as_deref() != Some("closed"))
            .count() as u64;
        let talks: Vec<f64> = rows
            .iter()
            .filter_map(|(taken, ended, _)| Some((*ended)? - (*taken)?))
            .map(|d| d.num_milliseconds().max(0) as f64 / 1000.0)
            .collect();
        let mean = (!talks.is_empty()).then(|| talks.iter().sum::<f64>() / talks.len() as f64);
        Ok((offered, mean))
    }

    /// Returns every queue's figures for calls that arrived in `period`.
    pub async fn queue_report(
        &self,
        account: AccountId,
        period: crate::store::reports::Period,
    ) -> Result<Vec<QueueReport>, StoreError> {
        type Row = (
            Option<i64>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<String>,
        );
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT queue_id, started_at, taken_at, ended_at, outcome FROM call_attempts \
             WHERE account_id = $1 AND direction = 'inbound' \
             AND started_at >= $2 AND started_at < $3"
        )
        .bind(account.0)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(pool)
        .await?);
        let mut out = Vec::new();
        for queue in self.queues(account).await? {
            let target = i64::from(queue.settings.service_level_secs);
            let mut all = Tally::default();
            let mut hours: BTreeMap<DateTime<Utc>, Tally> = BTreeMap::new();
            for (q, started, taken, ended, outcome) in &rows {
                if *q != Some(queue.id.0) {
                    continue;
                }
                let hour = started
                    .duration_trunc(TimeDelta::hours(1))
                    .unwrap_or(*started);
                let wait_end = taken.or(*ended);
                let wait = wait_end.map_or(0, |t| (t - *started).num_seconds().max(0));
                for tally in [&mut all, hours.entry(hour).or_default()] {
                    match outcome.as_deref() {
                        Some("closed") => {
                            tally.closed += 1;
                            continue;
                        }
                        Some("abandoned_in_queue") => tally.abandoned += 1,
                        Some("voicemail") => tally.voicemail += 1,
                        Some("callback_requested") => tally.callbacks += 1,
                        _ => {}
                    }
                    tally.offered += 1;
                    tally.longest = tally.longest.max(wait);
                    if taken.is_some() {
                        tally.answered += 1;
                        tally.answer_secs += wait;
                        if wait <= target {
                            tally.in_target += 1;
                        }
                    }
                }
            }
            out.push(QueueReport {
                queue_id: queue.id,
                name: queue.name,
                offered: all.offered,
                answered: all.answered,
                abandoned: all.abandoned,
                voicemail: all.voicemail,
                callbacks: all.callbacks,
                closed: all.closed,
                service_level: all.level(),
                average_speed_of_answer_secs: if all.answered == 0 {
                    0.0
                } else {
                    all.answer_secs as f64 / all.answered as f64
                },
                longest_wait_secs: all.longest,
                hours: hours
                    .into_iter()
                    .filter(|(_, t)| t.offered > 0)
                    .map(|(hour, t)| QueueHour {
                        hour,
                        offered: t.offered,
                        answered: t.answered,
                        abandoned: t.abandoned,
                        service_level: t.level(),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }
}
