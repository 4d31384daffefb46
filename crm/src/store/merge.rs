//! Duplicate contacts merged by a supervisor, in one transaction: the kept
//! contact takes the merged one's history (calls, interactions and notes,
//! recordings, webhook deliveries, leads and callbacks, list memberships)
//! and its empty fields are filled from the merged one's ([`crate::merge`]);
//! the merged contact's number, and its other numbers, become the kept
//! one's other numbers ([`super::numbers`]);
//! the numbers' suppression becomes the union of both; the merged contact is
//! marked, not deleted, so the merge can be undone for a day
//! ([`Store::undo_merge`]). Webhook endpoints that take `contact.merged`
//! are told, by ids, in the same transaction. What moved is kept with the merge by row id and
//! field name, never a contact's values.
//!
//! Where both contacts are on one list, or both are leads of one campaign,
//! the merged contact's membership is set aside (deleted, and restored by
//! an undo) — except a lead with a callback booked, which is kept over one
//! without.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use super::numbers::{ADD_NUMBER, MOVE_NUMBERS};
use super::rows::CONTACT_COLUMNS;
use super::webhooks::enqueue_webhooks;
use super::{on_pool, Backend, Store};
use crate::merge::{fill, Filled};
use crate::model::{AccountId, Actor, Contact, ContactId, UserId};
use crate::webhooks::Occurrence;
use crate::{privacy, StoreError};

/// How long a merge can be undone.
pub const UNDO_WINDOW: TimeDelta = TimeDelta::hours(24);

/// Where a suppression entry the merge added comes from.
pub const MERGE_SOURCE: &str = "merge";

/// Identifies a merge of two contacts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct MergeId(pub i64);

impl std::fmt::Display for MergeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Two contacts to merge, each at the version the supervisor read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The contact that stays.
    pub keep: ContactId,
    /// The contact merged into it.
    pub merge: ContactId,
    /// The kept contact's version as read.
    pub version_keep: i64,
    /// The merged contact's version as read.
    pub version_merge: i64,
}

/// How many rows of each kind a merge moved to the kept contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "MergeMoved")
)]
pub struct Moved {
    /// Call attempts.
    pub call_attempts: u64,
    /// Interactions, with their notes.
    pub interactions: u64,
    /// Recordings.
    pub recordings: u64,
    /// Webhook deliveries that named the merged contact.
    pub webhook_deliveries: u64,
    /// Leads (with their callbacks).
    pub leads: u64,
    /// List memberships.
    pub list_memberships: u64,
    /// Leads set aside: the other contact had one in the same campaign.
    pub leads_set_aside: u64,
    /// Memberships set aside: the kept contact was on the list already.
    pub list_memberships_set_aside: u64,
    /// Numbers that became the kept contact's other numbers: the merged
    /// contact's own, when it differs, and its other numbers.
    pub other_numbers: u64,
}

/// A merge done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Merged {
    /// The merge, for undoing it.
    pub merge_id: MergeId,
    /// Until when it can be undone.
    pub undo_until: DateTime<Utc>,
    /// The kept contact, after the merge.
    pub contact: Contact,
    /// The contact merged into it, now marked.
    pub merged_id: ContactId,
    /// The kept contact's fields filled from the merged one's, by name
    /// (`field.KEY` for the account's fields; `other_numbers` when it took
    /// a number).
    pub filled: Vec<String>,
    /// What moved.
    pub moved: Moved,
    /// Whether the kept contact's number is suppressed (so is the merged
    /// one's, when either was).
    pub suppressed: bool,
}

/// Where a merge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MergeState {
    /// Done, and can be undone until `undo_until`.
    Open,
    /// Undone: both contacts are as they were.
    Undone,
    /// The merged contact was deleted; the merge is for good.
    Final,
}

impl MergeState {
    /// Returns the state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeState::Open => "open",
            MergeState::Undone => "undone",
            MergeState::Final => "final",
        }
    }
}

impl std::str::FromStr for MergeState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(MergeState::Open),
            "undone" => Ok(MergeState::Undone),
            "final" => Ok(MergeState::Final),
            other => Err(format!("stored merge state {other:?}")),
        }
    }
}

/// One merge of the account, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MergeRecord {
    /// The merge.
    #[sqlx(rename = "id")]
    pub merge_id: MergeId,
    /// The contact kept.
    pub kept_id: ContactId,
    /// The contact merged into it.
    pub merged_id: ContactId,
    /// Who merged them; `None` from the command line.
    pub user_id: Option<UserId>,
    /// Where it stands.
    pub state: MergeState,
    /// When the contacts were merged.
    pub merged_at: DateTime<Utc>,
    /// Until when it can be undone.
    pub undo_until: DateTime<Utc>,
    /// When it was undone or became final.
    pub closed_at: Option<DateTime<Utc>>,
}

/// What a merge moved and filled, by row id and field name: what its undo
/// puts back. Stored with the merge as JSON until it is undone or final.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct UndoData {
    pub(super) filled: Filled,
    /// Fields of the account whose value was copied to the kept contact.
    pub(super) values: Vec<i64>,
    pub(super) attempts: Vec<i64>,
    pub(super) interactions: Vec<i64>,
    pub(super) recordings: Vec<i64>,
    pub(super) deliveries: Vec<i64>,
    pub(super) leads: Vec<i64>,
    /// Lists whose membership moved to the kept contact.
    pub(super) lists: Vec<i64>,
    pub(super) lists_set_aside: Vec<SetAsideMembership>,
    pub(super) leads_set_aside: Vec<SetAsideLead>,
    /// Keyed hashes of the numbers the merge suppressed.
    pub(super) suppressed: Vec<String>,
    /// Other numbers the merge gave the kept contact (the merged one's
    /// own), by row.
    #[serde(default)]
    pub(super) numbers_added: Vec<i64>,
    /// Other numbers of the merged contact's that moved to the kept one.
    #[serde(default)]
    pub(super) numbers_moved: Vec<i64>,
}

impl UndoData {
    /// Returns whether the merge gave the kept contact a number.
    pub(super) fn took_numbers(&self) -> bool {
        !self.numbers_added.is_empty() || !self.numbers_moved.is_empty()
    }
}

/// A list membership of the merged contact, deleted because the kept one
/// was on the list too.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub(super) struct SetAsideMembership {
    pub(super) list_id: i64,
    pub(super) added_at: DateTime<Utc>,
}

/// A lead deleted because the other contact had one in its campaign.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub(super) struct SetAsideLead {
    pub(super) id: i64,
    pub(super) campaign_id: i64,
    pub(super) contact_id: i64,
    pub(super) priority: i64,
    pub(super) state: String,
    pub(super) attempts: i64,
    pub(super) last_outcome: Option<String>,
    pub(super) last_attempt_at: Option<DateTime<Utc>>,
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    pub(super) last_abandon_at: Option<DateTime<Utc>>,
    pub(super) callback_at: Option<DateTime<Utc>>,
    pub(super) callback_user_id: Option<i64>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

pub(super) const SET_ASIDE_LEAD_COLUMNS: &str = "id, campaign_id, contact_id, priority, state, \
     attempts, last_outcome, last_attempt_at, next_attempt_at, last_abandon_at, callback_at, \
     callback_user_id, created_at, updated_at";

/// Counts calls in progress or being wrapped up, and leads being dialled,
/// of contacts `$2` and `$3` of account `$1` at `$4`.
pub(super) const LIVE_CALLS: &str = "SELECT \
     (SELECT COUNT(*) FROM call_attempts a WHERE a.account_id = $1 \
      AND a.contact_id IN ($2, $3) AND (a.ended_at IS NULL OR a.call_ref IN \
      (SELECT d.call_ref FROM agent_desks d WHERE d.account_id = $1 \
       AND d.phase IN ('in_call', 'wrap_up') AND d.call_ref IS NOT NULL))) \
   + (SELECT COUNT(*) FROM leads l WHERE l.account_id = $1 AND l.contact_id IN ($2, $3) \
      AND l.state = 'in_progress' AND l.lease_expires_at > $4)";

/// Moves rows of a table from contact `$3` to contact `$1` in account `$2`,
/// returning their ids.
fn move_rows(table: &str) -> String {
    format!(
        "UPDATE {table} SET contact_id = $1 WHERE account_id = $2 AND contact_id = $3 RETURNING id"
    )
}

impl Store {
    /// Merges a contact into another of the actor's account, each at the
    /// version read, audited as `contact.merge` (target the kept contact,
    /// detail the merged contact, the merge and the fields filled, by name).
    ///
    /// A contact of another account is [`StoreError::NotFound`]; the same
    /// contact twice is [`StoreError::Invalid`]; a stale version is
    /// [`StoreError::Stale`]; a contact in a call, already merged, or kept
    /// by a merge that can still be undone (as the one merged) is
    /// [`StoreError::Refused`]. Nothing is written then.
    pub async fn merge_contacts(
        &self,
        actor: &Actor,
        req: &MergeRequest,
        now: DateTime<Utc>,
    ) -> Result<Merged, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        if req.keep == req.merge {
            return Err(StoreError::Invalid(
                "keep and merge name the same contact".into(),
            ));
        }
        let key = self.account_key(account).await?;
        let defs = self.fields(account).await?;
        let (keep, merge) = (req.keep, req.merge);
        let contact_sql =
            format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1 AND account_id = $2");
        let undo_until = now + UNDO_WINDOW;
        // Both rows are locked first, in id order, so two merges of the
        // same contacts wait for each other rather than deadlock; SQLite's
        // write transaction holds the whole database already.
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let marks_sql = format!(
            "SELECT id, merged_into FROM contacts WHERE account_id = $1 AND id IN ($2, $3) \
             ORDER BY id{lock}"
        );
        let begin = self.begin_write();
        let (merge_id, undo, suppressed) = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let marks: Vec<(i64, Option<i64>)> = sqlx::query_as(&marks_sql)
                .bind(account.0)
                .bind(keep.0)
                .bind(merge.0)
                .fetch_all(&mut *tx)
                .await?;
            if marks.len() < 2 {
                return Err(StoreError::NotFound);
            }
            if let Some((id, Some(into))) = marks.iter().find(|(_, into)| into.is_some()) {
                return Err(StoreError::Refused(format!(
                    "contact {id} is merged into contact {into} already"
                )));
            }
            let kept: Contact = sqlx::query_as(&contact_sql)
                .bind(keep.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let merged: Contact = sqlx::query_as(&contact_sql)
                .bind(merge.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let kept_open: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM contact_merges WHERE account_id = $1 AND kept_id = $2 \
                 AND state = 'open' ORDER BY id LIMIT 1",
            )
            .bind(account.0)
            .bind(merge.0)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(open) = kept_open {
                return Err(StoreError::Refused(format!(
                    "contact {merge} kept merge {open}, which can still be undone: undo it, \
                     or merge contact {merge} once that merge is final"
                )));
            }
            let live: i64 = sqlx::query_scalar(LIVE_CALLS)
                .bind(account.0)
                .bind(keep.0)
                .bind(merge.0)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if live > 0 {
                return Err(StoreError::Refused(
                    "one of the contacts is in a call (or its wrap-up): merge them after it".into(),
                ));
            }
            for (c, read) in [(&kept, req.version_keep), (&merged, req.version_merge)] {
                if c.version != read {
                    return Err(stale(c.id, read, c.version));
                }
            }
            let (fields, filled) = fill(&kept.fields, &merged.fields);
            let written = sqlx::query(
                "UPDATE contacts SET first_name = $1, last_name = $2, email = $3, \
                 postal_address = $4, profession = $5, time_zone = $6, custom_fields = $7, \
                 updated_at = $8, version = version + 1 \
                 WHERE id = $9 AND account_id = $10 AND version = $11 AND merged_into IS NULL",
            )
            .bind(&fields.first_name)
            .bind(&fields.last_name)
            .bind(&fields.email)
            .bind(&fields.postal_address)
            .bind(&fields.profession)
            .bind(&fields.time_zone)
            .bind(Json(&fields.custom_fields))
            .bind(now)
            .bind(keep.0)
            .bind(account.0)
            .bind(req.version_keep)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let marked_now = sqlx::query(
                "UPDATE contacts SET merged_into = $1, updated_at = $2, version = version + 1 \
                 WHERE id = $3 AND account_id = $4 AND version = $5 AND merged_into IS NULL",
            )
            .bind(keep.0)
            .bind(now)
            .bind(merge.0)
            .bind(account.0)
            .bind(req.version_merge)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if written == 0 || marked_now == 0 {
                // Another writer landed between the read and the write.
                return Err(StoreError::Stale(
                    "one of the contacts changed while merging: read both again".into(),
                ));
            }
            let mut undo = UndoData {
                filled,
                ..UndoData::default()
            };
            undo.values = sqlx::query_scalar(
                "INSERT INTO contact_field_values (account_id, contact_id, field_id, value) \
                 SELECT account_id, $2, field_id, value FROM contact_field_values \
                 WHERE account_id = $1 AND contact_id = $3 AND field_id NOT IN \
                 (SELECT field_id FROM contact_field_values WHERE account_id = $1 \
                  AND contact_id = $2) RETURNING field_id",
            )
            .bind(account.0)
            .bind(keep.0)
            .bind(merge.0)
            .fetch_all(&mut *tx)
            .await?;
            undo.attempts = sqlx::query_scalar(&move_rows("call_attempts"))
                .bind(keep.0)
                .bind(account.0)
                .bind(merge.0)
                .fetch_all(&mut *tx)
                .await?;
            undo.interactions = sqlx::query_scalar(&move_rows("interactions"))
                .bind(keep.0)
                .bind(account.0)
                .bind(merge.0)
                .fetch_all(&mut *tx)
                .await?;
            undo.recordings = sqlx::query_scalar(&move_rows("recordings"))
                .bind(keep.0)
                .bind(account.0)
                .bind(merge.0)
                .fetch_all(&mut *tx)
                .await?;
            undo.deliveries = sqlx::query_scalar(&move_rows("webhook_deliveries"))
                .bind(keep.0)
                .bind(account.0)
                .bind(merge.0)
                .fetch_all(&mut *tx)
                .await?;
            undo.lists_set_aside = sqlx::query_as(
                "DELETE FROM list_members WHERE account_id = $1 AND contact_id = $2 \
                 AND list_id IN (SELECT list_id FROM list_members WHERE account_id = $1 \
                 AND contact_id = $3) RETURNING list_id, added_at",
            )
            .bind(account.0)
            .bind(merge.0)
            .bind(keep.0)
            .fetch_all(&mut *tx)
            .await?;
            undo.lists = sqlx::query_scalar(
                "UPDATE list_members SET contact_id = $1 WHERE account_id = $2 \
                 AND contact_id = $3 RETURNING list_id",
            )
            .bind(keep.0)
            .bind(account.0)
            .bind(merge.0)
            .fetch_all(&mut *tx)
            .await?;
            let leads: Vec<(i64, i64, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
                "SELECT id, campaign_id, contact_id, callback_at FROM leads \
                 WHERE account_id = $1 AND contact_id IN ($2, $3) ORDER BY id",
            )
            .bind(account.0)
            .bind(keep.0)
            .bind(merge.0)
            .fetch_all(&mut *tx)
            .await?;
            let lead_sql = format!(
                "SELECT {SET_ASIDE_LEAD_COLUMNS} FROM leads WHERE id = $1 AND account_id = $2"
            );
            for aside in set_aside_leads(&leads, keep.0) {
                let row: SetAsideLead = sqlx::query_as(&lead_sql)
                    .bind(aside)
                    .bind(account.0)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM leads WHERE id = $1 AND account_id = $2")
                    .bind(aside)
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await?;
                undo.leads_set_aside.push(row);
            }
            undo.leads = sqlx::query_scalar(&move_rows("leads"))
                .bind(keep.0)
                .bind(account.0)
                .bind(merge.0)
                .fetch_all(&mut *tx)
                .await?;
            // The merged contact's numbers are the person's too: the kept
            // contact keeps them beside its own, which is the one dialled.
            undo.numbers_moved = sqlx::query_scalar(MOVE_NUMBERS)
                .bind(keep.0)
                .bind(account.0)
                .bind(merge.0)
                .bind(&kept.fields.phone_e164)
                .fetch_all(&mut *tx)
                .await?;
            if merged.fields.phone_e164 != kept.fields.phone_e164 {
                undo.numbers_added = sqlx::query_scalar(ADD_NUMBER)
                    .bind(account.0)
                    .bind(keep.0)
                    .bind(&merged.fields.phone_e164)
                    .bind(&merged.fields.phone_raw)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
            }
            // Suppression is the union: a person who asked not to be called
            // on one number is not called on the other either.
            let kept_hash = privacy::number_hash(&key, &kept.fields.phone_e164);
            let merged_hash = privacy::number_hash(&key, &merged.fields.phone_e164);
            let present: Vec<String> = sqlx::query_scalar(
                "SELECT number_hash FROM suppression WHERE account_id = $1 \
                 AND number_hash IN ($2, $3)",
            )
            .bind(account.0)
            .bind(&kept_hash)
            .bind(&merged_hash)
            .fetch_all(&mut *tx)
            .await?;
            let missing = match (present.contains(&kept_hash), present.contains(&merged_hash)) {
                (true, false) => Some(&merged_hash),
                (false, true) => Some(&kept_hash),
                _ => None,
            };
            if let Some(hash) = missing {
                let added = sqlx::query(
                    "INSERT INTO suppression (account_id, number_hash, number_e164, reason, \
                     source, created_at) VALUES ($1, $2, NULL, $3, $4, $5) \
                     ON CONFLICT (account_id, number_hash) DO NOTHING",
                )
                .bind(account.0)
                .bind(hash)
                .bind("merged with a suppressed contact")
                .bind(MERGE_SOURCE)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added > 0 {
                    undo.suppressed.push(hash.clone());
                }
            }
            let merge_id: i64 = sqlx::query_scalar(
                "INSERT INTO contact_merges (account_id, kept_id, merged_id, user_id, state, \
                 merged_at, undo_until, undo) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) \
                 RETURNING id",
            )
            .bind(account.0)
            .bind(keep.0)
            .bind(merge.0)
            .bind(actor.user_id.map(|u| u.0))
            .bind(now)
            .bind(undo_until)
            .bind(Json(&undo))
            .fetch_one(&mut *tx)
            .await?;
            // Told after the history moved, so this delivery stays the kept
            // contact's, and an undo (which moves back only what moved) keeps it.
            enqueue_webhooks!(
                &mut *tx,
                account,
                &Occurrence::contact_merged(MergeId(merge_id), keep, merge, now)
            )?;
            tx.commit().await?;
            (MergeId(merge_id), undo, !present.is_empty())
        });
        let mut filled = undo.filled.names();
        filled.extend(
            defs.iter()
                .filter(|d| undo.values.contains(&d.id.0))
                .map(|d| crate::fields::changed_name(&d.key)),
        );
        if undo.took_numbers() {
            filled.push("other_numbers".into());
        }
        self.audit_detail(
            actor,
            "contact.merge",
            Some(&format!("contact:{keep}")),
            Some(&format!(
                "merged=contact:{merge} merge={merge_id} fields={}",
                filled.join(",")
            )),
            now,
        )
        .await?;
        tracing::info!(%account, kept = %keep, merged = %merge, %merge_id, "contacts merged");
        let count = |v: &[i64]| v.len() as u64;
        Ok(Merged {
            merge_id,
            undo_until,
            contact: self.contact(account, keep).await?,
            merged_id: merge,
            filled,
            moved: Moved {
                call_attempts: count(&undo.attempts),
                interactions: count(&undo.interactions),
                recordings: count(&undo.recordings),
                webhook_deliveries: count(&undo.deliveries),
                leads: count(&undo.leads),
                list_memberships: count(&undo.lists),
                leads_set_aside: undo.leads_set_aside.len() as u64,
                list_memberships_set_aside: undo.lists_set_aside.len() as u64,
                other_numbers: count(&undo.numbers_added) + count(&undo.numbers_moved),
            },
            suppressed,
        })
    }

    /// Returns the account's merges that involve a contact, kept or
    /// merged, newest first; without one, the account's latest merges.
    pub async fn merges(
        &self,
        account: AccountId,
        contact: Option<ContactId>,
        limit: i64,
    ) -> Result<Vec<MergeRecord>, StoreError> {
        let columns = "id, kept_id, merged_id, user_id, state, merged_at, undo_until, closed_at";
        let limit = limit.clamp(1, 1000);
        let rows: Vec<MergeRecord> = match contact {
            Some(c) => on_pool!(self, |pool| sqlx::query_as(&format!(
                "SELECT {columns} FROM contact_merges WHERE account_id = $1 \
                 AND (kept_id = $2 OR merged_id = $2) ORDER BY id DESC LIMIT $3"
            ))
            .bind(account.0)
            .bind(c.0)
            .bind(limit)
            .fetch_all(pool)
            .await?),
            None => on_pool!(self, |pool| sqlx::query_as(&format!(
                "SELECT {columns} FROM contact_merges WHERE account_id = $1 \
                 ORDER BY id DESC LIMIT $2"
            ))
            .bind(account.0)
            .bind(limit)
            .fetch_all(pool)
            .await?),
        };
        Ok(rows)
    }

    /// Returns the contact a contact of the account was merged into, while
    /// that merge can be undone.
    pub async fn merged_into(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Option<ContactId>, StoreError> {
        let into: Option<Option<i64>> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT merged_into FROM contacts WHERE id = $1 AND account_id = $2"
        )
        .bind(contact.0)
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        Ok(into.flatten().map(ContactId))
    }
}

/// Returns the leads to set aside where both contacts are leads of one
/// campaign: the merged contact's, unless only it has a callback booked.
fn set_aside_leads(leads: &[(i64, i64, i64, Option<DateTime<Utc>>)], keep: i64) -> Vec<i64> {
    let mut aside = Vec::new();
    for kept in leads.iter().filter(|l| l.2 == keep) {
        let Some(merged) = leads.iter().find(|l| l.2 != keep && l.1 == kept.1) else {
            continue;
        };
        if merged.3.is_some() && kept.3.is_none() {
            aside.push(kept.0);
        } else {
            aside.push(merged.0);
        }
    }
    aside
}

fn stale(id: ContactId, read: i64, now_at: i64) -> StoreError {
    StoreError::Stale(format!(
        "contact {id} was changed by someone else since you read version {read}; \
         it is now at version {now_at}: read it again before merging"
    ))
}
