//! Erasure of a contact, and the recordings that erasure must find.
//!
//! [`Store::erase_contact`] removes every row that holds the contact's
//! personal data in one transaction and keeps only what a sender may keep:
//! the suppression entries of its numbers, its other numbers included (the
//! keyed hash, without the number), and the call
//! attempts with their outcomes but no link to the person. Recording files
//! are deleted after the commit, so a failed transaction never loses audio
//! whose rows still exist. On SQLite the connections run with
//! `secure_delete` on, which zeroes freed cells and pages, and the write-ahead
//! log is checkpointed and truncated afterwards, so erased values linger
//! neither in free pages nor in the WAL file.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vocab::CallRef;

use super::merge::UndoData;
use super::webhooks::enqueue_webhooks;
use super::{on_pool, Backend, Store};
use crate::model::{AccountId, Actor, AttemptId, ContactId};
use crate::webhooks::Occurrence;
use crate::{privacy, StoreError};

/// Identifies a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct RecordingId(pub i64);

/// A call recording kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Recording {
    /// The recording's id.
    pub id: RecordingId,
    /// The attempt it recorded, if still known.
    pub attempt_id: Option<AttemptId>,
    /// The opaque call reference of the call.
    pub call_ref: Option<CallRef>,
    /// The contact who was called.
    pub contact_id: Option<ContactId>,
    /// Where the file is.
    pub path: String,
    /// When the recording was made.
    pub created_at: DateTime<Utc>,
}

/// A recording to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    /// The attempt it recorded.
    pub attempt_id: Option<AttemptId>,
    /// The opaque call reference of the call.
    pub call_ref: Option<CallRef>,
    /// The contact who was called.
    pub contact_id: Option<ContactId>,
    /// Where the file is.
    pub path: PathBuf,
}

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErasureReport {
    /// The contact that no longer exists.
    pub contact_id: ContactId,
    /// Interactions (and their notes) deleted.
    pub interactions_deleted: u64,
    /// Values in the account's fields deleted.
    pub field_values_deleted: u64,
    /// Other numbers deleted (each kept suppressed): the contact's own,
    /// and those a merge of the contact that could still be undone gave
    /// the contact it was merged into.
    pub other_numbers_deleted: u64,
    /// List memberships deleted.
    pub list_memberships_deleted: u64,
    /// Campaign leads deleted.
    pub leads_deleted: u64,
    /// Call attempts kept, with their link to the contact cut.
    pub attempts_unlinked: u64,
    /// Recording files deleted from disk.
    pub recordings_deleted: u64,
    /// Recording files that were already gone or could not be deleted.
    pub recordings_not_deleted: u64,
    /// Contacts merged into this one within the day a merge can be undone,
    /// erased with it (the counts above include theirs).
    pub merged_erased: Vec<ContactId>,
}

impl Store {
    /// Registers a recording file of a call in the account.
    pub async fn add_recording(
        &self,
        account: AccountId,
        new: &NewRecording,
        now: DateTime<Utc>,
    ) -> Result<Recording, StoreError> {
        if let Some(c) = new.contact_id {
            self.contact(account, c).await?;
        }
        let path = new
            .path
            .to_str()
            .ok_or_else(|| StoreError::Invalid("a recording path must be UTF-8".into()))?;
        let row: Recording = on_pool!(self, |pool| sqlx::query_as(
            "INSERT INTO recordings (account_id, attempt_id, call_ref, contact_id, path, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, attempt_id, call_ref, contact_id, path, created_at"
        )
        .bind(account.0)
        .bind(new.attempt_id.map(|a| a.0))
        .bind(new.call_ref)
        .bind(new.contact_id.map(|c| c.0))
        .bind(path)
        .bind(now)
        .fetch_one(pool)
        .await?);
        Ok(row)
    }

    /// Returns the recordings of a contact, by its own link or its attempts'.
    pub async fn recordings_for_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<Recording>, StoreError> {
        let rows: Vec<Recording> = on_pool!(self, |pool| sqlx::query_as(&format!(
            "SELECT id, attempt_id, call_ref, contact_id, path, created_at FROM recordings \
             WHERE {OF_CONTACT} ORDER BY created_at, id"
        ))
        .bind(account.0)
        .bind(contact.0)
        .fetch_all(pool)
        .await?);
        Ok(rows)
    }

    /// Erases a contact's personal data and keeps its number suppressed.
    ///
    /// Writes the `contact.erase` audit entry, naming the contact's id only,
    /// in the same transaction. A contact of another account is
    /// [`StoreError::NotFound`] and nothing is touched.
    ///
    /// What a merge of the contact could undo goes too (the merge stays as
    /// it is), and contacts merged into this one within that day are erased
    /// with it, each with its own audit entry.
    pub async fn erase_contact(
        &self,
        account: AccountId,
        contact: ContactId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ErasureReport, StoreError> {
        let key = self.account_key(account).await?;
        let begin = match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        let mut report = ErasureReport {
            contact_id: contact,
            interactions_deleted: 0,
            field_values_deleted: 0,
            other_numbers_deleted: 0,
            list_memberships_deleted: 0,
            leads_deleted: 0,
            attempts_unlinked: 0,
            recordings_deleted: 0,
            recordings_not_deleted: 0,
            merged_erased: Vec::new(),
        };
        let paths: Vec<String> = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let phone: String = sqlx::query_scalar(
                "SELECT phone_e164 FROM contacts WHERE id = $1 AND account_id = $2",
            )
            .bind(contact.0)
            .bind(account.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            // Contacts merged into this one within the undo day are the same
            // person by a supervisor's word: they are erased with it, first,
            // as they point at it.
            let merged_in: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, phone_e164 FROM contacts WHERE account_id = $1 AND merged_into = $2 \
                 ORDER BY id",
            )
            .bind(account.0)
            .bind(contact.0)
            .fetch_all(&mut *tx)
            .await?;
            report.merged_erased = merged_in.iter().map(|(id, _)| ContactId(*id)).collect();
            let targets = merged_in
                .into_iter()
                .map(|(id, phone)| (ContactId(id), phone))
                .chain(std::iter::once((contact, phone)));
            let mut paths = Vec::new();
            for (target, phone) in targets {
                // The numbers a merge of this contact, while it can be
                // undone, gave the contact it was merged into are this
                // person's: they go, as the contact's own other numbers do.
                let undos: Vec<Option<sqlx::types::Json<UndoData>>> = sqlx::query_scalar(
                    "SELECT undo FROM contact_merges WHERE account_id = $1 AND merged_id = $2 \
                     AND state = 'open'",
                )
                .bind(account.0)
                .bind(target.0)
                .fetch_all(&mut *tx)
                .await?;
                let given: Vec<i64> = undos
                    .into_iter()
                    .flatten()
                    .flat_map(|u| u.0.numbers_added.into_iter().chain(u.0.numbers_moved))
                    .collect();
                let mut numbers: Vec<String> = Vec::new();
                for id in given {
                    let gone: Option<String> = sqlx::query_scalar(
                        "DELETE FROM contact_numbers WHERE account_id = $1 AND id = $2 \
                         RETURNING phone_e164",
                    )
                    .bind(account.0)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    numbers.extend(gone);
                }
                let own: Vec<String> = sqlx::query_scalar(
                    "DELETE FROM contact_numbers WHERE account_id = $1 AND contact_id = $2 \
                     RETURNING phone_e164",
                )
                .bind(account.0)
                .bind(target.0)
                .fetch_all(&mut *tx)
                .await?;
                numbers.extend(own);
                report.other_numbers_deleted += numbers.len() as u64;
                // What a merge could undo names the person: it goes too, and
                // the merge stays as it is.
                sqlx::query(
                    "DELETE FROM contact_merges WHERE account_id = $1 \
                     AND (kept_id = $2 OR merged_id = $2)",
                )
                .bind(account.0)
                .bind(target.0)
                .execute(&mut *tx)
                .await?;
                for number in std::iter::once(&phone).chain(&numbers) {
                    let hash = privacy::number_hash(&key, number);
                    sqlx::query(
                        "INSERT INTO suppression (account_id, number_hash, number_e164, reason, \
                         source, created_at) VALUES ($1, $2, NULL, 'erased', 'erasure', $3) \
                         ON CONFLICT (account_id, number_hash) DO UPDATE SET source = 'erasure'",
                    )
                    .bind(account.0)
                    .bind(&hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    // An entry made earlier (an opt-out, an import) may hold
                    // the number; it is now an erasure's, which no one may
                    // take away.
                    sqlx::query(
                        "UPDATE suppression SET number_e164 = NULL \
                         WHERE account_id = $1 AND number_hash = $2",
                    )
                    .bind(account.0)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?;
                }
                let deleted: Vec<String> = sqlx::query_scalar(&format!(
                    "DELETE FROM recordings WHERE {OF_CONTACT} RETURNING path"
                ))
                .bind(account.0)
                .bind(target.0)
                .fetch_all(&mut *tx)
                .await?;
                let by_contact = |table: &str| {
                    format!("DELETE FROM {table} WHERE account_id = $1 AND contact_id = $2")
                };
                report.interactions_deleted += sqlx::query(&by_contact("interactions"))
                    .bind(account.0)
                    .bind(target.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.field_values_deleted += sqlx::query(&by_contact("contact_field_values"))
                    .bind(account.0)
                    .bind(target.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.list_memberships_deleted += sqlx::query(&by_contact("list_members"))
                    .bind(account.0)
                    .bind(target.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.leads_deleted += sqlx::query(&by_contact("leads"))
                    .bind(account.0)
                    .bind(target.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.attempts_unlinked += sqlx::query(
                    "UPDATE call_attempts SET contact_id = NULL \
                     WHERE account_id = $1 AND contact_id = $2",
                )
                .bind(account.0)
                .bind(target.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Deliveries already queued keep their facts but lose the
                // contact, as the attempts do; the one that reports the erasure
                // names it, so receivers erase it too.
                sqlx::query(
                    "UPDATE webhook_deliveries SET contact_id = NULL \
                     WHERE account_id = $1 AND contact_id = $2",
                )
                .bind(account.0)
                .bind(target.0)
                .execute(&mut *tx)
                .await?;
                enqueue_webhooks!(&mut *tx, account, &Occurrence::contact_erased(target, now))?;
                sqlx::query("DELETE FROM contacts WHERE id = $1 AND account_id = $2")
                    .bind(target.0)
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO audit_log (account_id, user_id, action, target, ip, user_agent, \
                     occurred_at) VALUES ($1, $2, 'contact.erase', $3, $4, $5, $6)",
                )
                .bind(account.0)
                .bind(actor.user_id.map(|u| u.0))
                .bind(format!("contact:{target}"))
                .bind(&actor.ip)
                .bind(&actor.user_agent)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                paths.extend(deleted);
            }
            tx.commit().await?;
            paths
        });
        for path in &paths {
            match std::fs::remove_file(path) {
                Ok(()) => report.recordings_deleted += 1,
                Err(error) => {
                    report.recordings_not_deleted += 1;
                    tracing::warn!(%contact, %error, "a recording of an erased contact was not deleted");
                }
            }
        }
        self.checkpoint_wal().await?;
        tracing::info!(%contact, "contact erased");
        Ok(report)
    }

    /// Folds SQLite's write-ahead log into the database file and truncates
    /// it; a no-op on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> Result<(), StoreError> {
        if let Some(pool) = self.sqlite_pool() {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(pool)
                .await?;
            if busy != 0 {
                // A long reader holds old pages; the next checkpoint gets them.
                tracing::warn!("WAL checkpoint after erasure was blocked by a reader");
            }
        }
        Ok(())
    }
}

/// Selects an account's recordings of contact `$2`, linked directly or
/// through one of the contact's attempts.
const OF_CONTACT: &str = "account_id = $1 AND (contact_id = $2 OR attempt_id IN \
     (SELECT id FROM call_attempts WHERE account_id = $1 AND contact_id = $2))";
