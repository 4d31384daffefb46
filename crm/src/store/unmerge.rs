//! A merge undone within its day, or made final after it.
//!
//! [`Store::undo_merge`] puts back what [`Store::merge_contacts`] moved, by
//! the row ids it kept (the other numbers it gave the kept contact
//! included), and empties the fields it filled where they still hold the
//! merged contact's value. [`Store::finalise_merges`], run by the
//! hourly retention job, deletes the merged contacts whose day has passed,
//! after moving to the kept contact anything that reached them since.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::merge::{MergeId, UndoData, LIVE_CALLS, MERGE_SOURCE};
use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Backend, Store};
use crate::merge::unfill;
use crate::model::{AccountId, Actor, Contact, ContactId};
use crate::StoreError;

/// How many ids one statement of an undo names.
const IDS_CHUNK: usize = 500;
/// How many merges one run of [`Store::finalise_merges`] makes final.
const FINAL_BATCH: i64 = 500;

/// A merge undone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Unmerged {
    /// The merge.
    pub merge_id: MergeId,
    /// The kept contact, as it is again.
    pub contact: Contact,
    /// The merged contact, no longer marked.
    pub restored: Contact,
    /// The kept contact's fields emptied again, by name; a field changed
    /// since the merge keeps its value and is not named.
    pub cleared: Vec<String>,
}

impl Store {
    /// Undoes a merge of the actor's account within its day: the history
    /// that moved goes back to the merged contact, memberships and leads
    /// set aside come back, suppression entries the merge added go (never
    /// an erasure's), the fields it filled are emptied where they still
    /// hold the merged contact's values, and the merged contact is no
    /// longer marked. Both contacts' versions go up by one. Audited as
    /// `contact.merge_undo` with the fields emptied, by name.
    ///
    /// Another account's merge is [`StoreError::NotFound`]; one undone,
    /// final or past its day, or of a contact in a call, is
    /// [`StoreError::Refused`].
    pub async fn undo_merge(
        &self,
        actor: &Actor,
        id: MergeId,
        now: DateTime<Utc>,
    ) -> Result<Unmerged, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let defs = self.fields(account).await?;
        let contact_sql =
            format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1 AND account_id = $2");
        let backend = self.backend();
        // The merge's row is locked first on PostgreSQL, so an undo and the
        // job making it final (or a second undo) take turns.
        let lock = match backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let merge_sql = format!(
            "SELECT kept_id, merged_id, state, undo_until, undo FROM contact_merges \
             WHERE id = $1 AND account_id = $2{lock}"
        );
        let begin = self.begin_write();
        let (keep, merge, mut cleared, values_cleared, numbers) = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            type Row = (i64, i64, String, DateTime<Utc>, Option<Json<UndoData>>);
            let (keep, merge, state, undo_until, undo): Row = sqlx::query_as(&merge_sql)
                .bind(id.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let (keep, merge) = (ContactId(keep), ContactId(merge));
            match state.as_str() {
                "open" => {}
                "undone" => {
                    return Err(StoreError::Refused(format!(
                        "merge {id} was undone already"
                    )))
                }
                _ => {
                    return Err(StoreError::Refused(format!(
                        "merge {id} is final: contact {merge} was deleted"
                    )))
                }
            }
            if now >= undo_until {
                return Err(StoreError::Refused(format!(
                    "merge {id} could be undone until {}; it is being made final",
                    undo_until.to_rfc3339()
                )));
            }
            let Some(Json(undo)) = undo else {
                return Err(StoreError::Refused(format!(
                    "merge {id} has nothing left to undo"
                )));
            };
            let live: i64 = sqlx::query_scalar(LIVE_CALLS)
                .bind(account.0)
                .bind(keep.0)
                .bind(merge.0)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if live > 0 {
                return Err(StoreError::Refused(
                    "one of the contacts is in a call (or its wrap-up): undo the merge after it"
                        .into(),
                ));
            }
            let kept: Contact = sqlx::query_as(&contact_sql)
                .bind(keep.0)
                .bind(account.0)
                .fetch_one(&mut *tx)
                .await?;
            let merged: Contact = sqlx::query_as(&contact_sql)
                .bind(merge.0)
                .bind(account.0)
                .fetch_one(&mut *tx)
                .await?;
            let (fields, cleared) = unfill(&kept.fields, &merged.fields, &undo.filled);
            sqlx::query(
                "UPDATE contacts SET first_name = $1, last_name = $2, email = $3, \
                 postal_address = $4, profession = $5, time_zone = $6, custom_fields = $7, \
                 updated_at = $8, version = version + 1 WHERE id = $9 AND account_id = $10",
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
            .execute(&mut *tx)
            .await?;
            // A copied value goes only while the kept contact still holds it.
            let mut values_cleared = Vec::new();
            for field in &undo.values {
                let n = sqlx::query(
                    "DELETE FROM contact_field_values WHERE account_id = $1 AND contact_id = $2 \
                     AND field_id = $3 AND value = (SELECT v.value FROM contact_field_values v \
                     WHERE v.account_id = $1 AND v.contact_id = $4 AND v.field_id = $3)",
                )
                .bind(account.0)
                .bind(keep.0)
                .bind(field)
                .bind(merge.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    values_cleared.push(*field);
                }
            }
            for (table, ids) in [
                ("call_attempts", &undo.attempts),
                ("interactions", &undo.interactions),
                ("recordings", &undo.recordings),
                ("webhook_deliveries", &undo.deliveries),
                ("leads", &undo.leads),
            ] {
                for chunk in ids.chunks(IDS_CHUNK) {
                    let sql = format!(
                        "UPDATE {table} SET contact_id = $1 WHERE account_id = $2 \
                         AND contact_id = $3 AND id IN ({})",
                        marks(4, chunk.len())
                    );
                    let mut q = sqlx::query(&sql).bind(merge.0).bind(account.0).bind(keep.0);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            // The numbers the merge gave the kept contact go, and those it
            // moved go back, as the rows they were.
            let mut numbers = 0;
            for chunk in undo.numbers_added.chunks(IDS_CHUNK) {
                let sql = format!(
                    "DELETE FROM contact_numbers WHERE account_id = $1 AND contact_id = $2 \
                     AND id IN ({})",
                    marks(3, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(account.0).bind(keep.0);
                for id in chunk {
                    q = q.bind(id);
                }
                numbers += q.execute(&mut *tx).await?.rows_affected();
            }
            for chunk in undo.numbers_moved.chunks(IDS_CHUNK) {
                let sql = format!(
                    "UPDATE contact_numbers SET contact_id = $1 WHERE account_id = $2 \
                     AND contact_id = $3 AND id IN ({})",
                    marks(4, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(merge.0).bind(account.0).bind(keep.0);
                for id in chunk {
                    q = q.bind(id);
                }
                numbers += q.execute(&mut *tx).await?.rows_affected();
            }
            for chunk in undo.lists.chunks(IDS_CHUNK) {
                let sql = format!(
                    "UPDATE list_members SET contact_id = $1 WHERE account_id = $2 \
                     AND contact_id = $3 AND list_id IN ({})",
                    marks(4, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(merge.0).bind(account.0).bind(keep.0);
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *tx).await?;
            }
            for m in &undo.lists_set_aside {
                sqlx::query(
                    "INSERT INTO list_members (list_id, contact_id, account_id, added_at) \
                     SELECT $1, $2, $3, $4 \
                     WHERE EXISTS (SELECT 1 FROM lists WHERE id = $1 AND account_id = $3) \
                     ON CONFLICT (list_id, contact_id) DO NOTHING",
                )
                .bind(m.list_id)
                .bind(merge.0)
                .bind(account.0)
                .bind(m.added_at)
                .execute(&mut *tx)
                .await?;
            }
            // A lead comes back with its own id, as the timeline and the
            // audit log named it; PostgreSQL must be told to take it.
            let overriding = match backend {
                Backend::Postgres => " OVERRIDING SYSTEM VALUE",
                Backend::Sqlite => "",
            };
            let restore_lead = format!(
                "INSERT INTO leads (id, account_id, campaign_id, contact_id, priority, state, \
                 attempts, last_outcome, last_attempt_at, next_attempt_at, last_abandon_at, \
                 callback_at, callback_user_id, created_at, updated_at){overriding} \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
                 WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $3 AND account_id = $2) \
                 AND NOT EXISTS (SELECT 1 FROM leads WHERE id = $1) \
                 ON CONFLICT (campaign_id, contact_id) DO NOTHING"
            );
            for l in &undo.leads_set_aside {
                // Its lease lapsed long ago; a lead being dialled was never set aside.
                let state = if l.state == "in_progress" {
                    "pending"
                } else {
                    l.state.as_str()
                };
                sqlx::query(&restore_lead)
                    .bind(l.id)
                    .bind(account.0)
                    .bind(l.campaign_id)
                    .bind(l.contact_id)
                    .bind(l.priority)
                    .bind(state)
                    .bind(l.attempts)
                    .bind(&l.last_outcome)
                    .bind(l.last_attempt_at)
                    .bind(l.next_attempt_at)
                    .bind(l.last_abandon_at)
                    .bind(l.callback_at)
                    .bind(l.callback_user_id)
                    .bind(l.created_at)
                    .bind(l.updated_at)
                    .execute(&mut *tx)
                    .await?;
            }
            for hash in &undo.suppressed {
                sqlx::query(
                    "DELETE FROM suppression WHERE account_id = $1 AND number_hash = $2 \
                     AND source = $3",
                )
                .bind(account.0)
                .bind(hash)
                .bind(MERGE_SOURCE)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE contacts SET merged_into = NULL, updated_at = $1, version = version + 1 \
                 WHERE id = $2 AND account_id = $3",
            )
            .bind(now)
            .bind(merge.0)
            .bind(account.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE contact_merges SET state = 'undone', closed_at = $1, undo = NULL \
                 WHERE id = $2 AND account_id = $3",
            )
            .bind(now)
            .bind(id.0)
            .bind(account.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            (keep, merge, cleared, values_cleared, numbers)
        });
        cleared.extend(
            defs.iter()
                .filter(|d| values_cleared.contains(&d.id.0))
                .map(|d| crate::fields::changed_name(&d.key)),
        );
        if numbers > 0 {
            cleared.push("other_numbers".into());
        }
        self.audit_detail(
            actor,
            "contact.merge_undo",
            Some(&format!("contact:{keep}")),
            Some(&format!(
                "merged=contact:{merge} merge={id} fields={}",
                cleared.join(",")
            )),
            now,
        )
        .await?;
        tracing::info!(%account, kept = %keep, merged = %merge, merge_id = %id, "merge undone");
        Ok(Unmerged {
            merge_id: id,
            contact: self.contact(account, keep).await?,
            restored: self.contact(account, merge).await?,
            cleared,
        })
    }

    /// Makes final every merge whose day has passed at `now`, in any
    /// account: what reached the merged contact since moves to the kept
    /// one, the merged contact is deleted, and the record of what moved is
    /// dropped. Each is audited as `contact.merge_final`. Returns how many
    /// were made final. The hourly retention job calls it.
    pub async fn finalise_merges(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let due: Vec<(i64, i64, i64, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, account_id, kept_id, merged_id FROM contact_merges \
             WHERE state = 'open' AND undo_until <= $1 ORDER BY undo_until, id LIMIT $2"
        )
        .bind(now)
        .bind(FINAL_BATCH)
        .fetch_all(pool)
        .await?);
        let mut done = 0;
        for (id, account, keep, merge) in due {
            let begin = self.begin_write();
            let finalised = on_pool!(self, |pool| {
                let mut tx = pool.begin_with(begin).await?;
                // Taken first, so another node making it final waits, then skips it.
                let taken = sqlx::query(
                    "UPDATE contact_merges SET state = 'final', closed_at = $1, undo = NULL \
                     WHERE id = $2 AND state = 'open'",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 0 {
                    false
                } else {
                    for table in [
                        "call_attempts",
                        "interactions",
                        "recordings",
                        "webhook_deliveries",
                    ] {
                        sqlx::query(&format!(
                            "UPDATE {table} SET contact_id = $1 \
                             WHERE account_id = $2 AND contact_id = $3"
                        ))
                        .bind(keep)
                        .bind(account)
                        .bind(merge)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for (table, column) in [("leads", "campaign_id"), ("list_members", "list_id")] {
                        sqlx::query(&format!(
                            "UPDATE {table} SET contact_id = $1 WHERE account_id = $2 \
                             AND contact_id = $3 AND {column} NOT IN (SELECT {column} \
                             FROM {table} WHERE account_id = $2 AND contact_id = $1)"
                        ))
                        .bind(keep)
                        .bind(account)
                        .bind(merge)
                        .execute(&mut *tx)
                        .await?;
                    }
                    // Its values, and what is left of its memberships and
                    // leads, go with it (the foreign keys cascade).
                    sqlx::query(
                        "DELETE FROM contacts WHERE id = $1 AND account_id = $2 \
                         AND merged_into = $3",
                    )
                    .bind(merge)
                    .bind(account)
                    .bind(keep)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    true
                }
            });
            if !finalised {
                continue;
            }
            done += 1;
            let actor = Actor {
                account_id: Some(AccountId(account)),
                ..Actor::default()
            };
            self.audit_detail(
                &actor,
                "contact.merge_final",
                Some(&format!("contact:{keep}")),
                Some(&format!("merged=contact:{merge} merge={id}")),
                now,
            )
            .await?;
        }
        if done > 0 {
            // The deleted contacts' values linger neither in free pages nor in the WAL.
            self.checkpoint_wal().await?;
            tracing::info!(merges = done, "merges made final");
        }
        Ok(done)
    }

    /// Returns the contacts merged into this one whose merge is open or
    /// final: their edits are part of its story.
    pub(super) async fn merged_into_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<ContactId>, StoreError> {
        let ids: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT merged_id FROM contact_merges WHERE account_id = $1 AND kept_id = $2 \
             AND state IN ('open', 'final') ORDER BY id LIMIT 500"
        )
        .bind(account.0)
        .bind(contact.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(ContactId).collect())
    }
}

/// Returns `$first, $first+1, …` for `n` values.
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
