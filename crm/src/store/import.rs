//! Batched writes of CSV imports, import jobs, and the pages of list exports.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Store};
use crate::export::ExportRow;
use crate::fields::FieldId;
use crate::import::{BatchOutcome, ImportJob, ImportStatus, ImportSummary, OnDuplicate};
use crate::model::{AccountId, ContactFields, ContactId, ListId, UserId};
use crate::{privacy, StoreError};

/// Bound values per contact row in the multi-row insert.
const CONTACT_PARAMS: usize = 9;

impl Store {
    /// Writes one batch of imported contacts to a list in one transaction.
    ///
    /// Numbers in the batch must be distinct. A number the account already
    /// holds is a duplicate: its first contact is put on the list and, with
    /// [`OnDuplicate::Update`], overwritten. Suppressed numbers are imported
    /// and their positions returned.
    pub async fn import_batch(
        &self,
        account: AccountId,
        list: ListId,
        rows: &[ContactFields],
        on_duplicate: OnDuplicate,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        self.import_batch_with_values(account, list, rows, &[], on_duplicate, now)
            .await
    }

    /// Writes one batch as [`Store::import_batch`] does, with each row's
    /// values in the account's fields (`values[i]` for `rows[i]`; missing
    /// when `values` is shorter). A new contact gets its values; an updated
    /// one gets those its row holds and keeps its others; a skipped one is
    /// left as it was.
    pub async fn import_batch_with_values(
        &self,
        account: AccountId,
        list: ListId,
        rows: &[ContactFields],
        values: &[Vec<(FieldId, String)>],
        on_duplicate: OnDuplicate,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        let mut outcome = BatchOutcome::default();
        let owned: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM lists WHERE id = $1 AND account_id = $2"
        )
        .bind(list.0)
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        owned.ok_or(StoreError::NotFound)?;
        if rows.is_empty() {
            return Ok(outcome);
        }
        if rows.len() * CONTACT_PARAMS > 30_000 {
            return Err(StoreError::Invalid(
                "an import batch holds at most 3000 rows".into(),
            ));
        }
        if let Some(bad) = rows.iter().find(|r| !r.custom_fields.is_object()) {
            return Err(StoreError::Invalid(format!(
                "custom_fields must be a JSON object, not {}",
                bad.custom_fields
            )));
        }

        // Lookups run before the write transaction: a SQLite transaction
        // that reads first cannot always upgrade to a writer.
        let existing = self.first_contacts_by_number(account, rows).await?;
        let key = self.account_key(account).await?;
        let hashes: Vec<String> = rows
            .iter()
            .map(|r| privacy::number_hash(&key, &r.phone_e164))
            .collect();
        let suppressed = self.suppressed_hashes(account, &hashes).await?;
        outcome.suppressed = (0..rows.len())
            .filter(|&i| suppressed.contains(&hashes[i]))
            .collect();

        let mut fresh: Vec<&ContactFields> = Vec::new();
        let mut updates: Vec<(i64, &ContactFields)> = Vec::new();
        let mut members: Vec<i64> = Vec::with_capacity(rows.len());
        // The values to write, by the row's number until new contacts have ids.
        let mut held: Vec<(&str, FieldId, &str)> = Vec::new();
        let no_values = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let row_values = values.get(i).unwrap_or(&no_values);
            let write = match existing.get(&row.phone_e164) {
                None => {
                    fresh.push(row);
                    true
                }
                Some(&id) => {
                    members.push(id);
                    match on_duplicate {
                        OnDuplicate::Skip => {
                            outcome.skipped += 1;
                            false
                        }
                        OnDuplicate::Update => {
                            updates.push((id, row));
                            true
                        }
                    }
                }
            };
            if write {
                held.extend(
                    row_values
                        .iter()
                        .map(|(f, v)| (row.phone_e164.as_str(), *f, v.as_str())),
                );
            }
        }
        outcome.imported = fresh.len() as u64;
        outcome.updated = updates.len() as u64;

        let insert = (!fresh.is_empty()).then(|| insert_contacts_sql(fresh.len()));
        let membership = |n: usize| {
            let values: Vec<String> = (0..n)
                .map(|i| format!("($1, ${}, $2, $3)", i + 4))
                .collect();
            format!(
                "INSERT INTO list_members (list_id, contact_id, account_id, added_at) VALUES {} \
                 ON CONFLICT (list_id, contact_id) DO NOTHING",
                values.join(", ")
            )
        };
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut ids: HashMap<String, i64> = updates
                .iter()
                .map(|(id, f)| (f.phone_e164.clone(), *id))
                .collect();
            if let Some(sql) = &insert {
                let mut q = sqlx::query_as::<_, (i64, String)>(sql)
                    .bind(account.0)
                    .bind(now);
                for f in &fresh {
                    q = q
                        .bind(&f.first_name)
                        .bind(&f.last_name)
                        .bind(&f.phone_e164)
                        .bind(&f.phone_raw)
                        .bind(&f.email)
                        .bind(&f.postal_address)
                        .bind(&f.profession)
                        .bind(&f.time_zone)
                        .bind(Json(&f.custom_fields));
                }
                for (id, phone) in q.fetch_all(&mut *tx).await? {
                    members.push(id);
                    ids.insert(phone, id);
                }
            }
            for (id, f) in &updates {
                sqlx::query(
                    "UPDATE contacts SET first_name = $1, last_name = $2, phone_raw = $3, \
                     email = $4, postal_address = $5, profession = $6, time_zone = $7, \
                     custom_fields = $8, updated_at = $9, version = version + 1 WHERE id = $10 AND account_id = $11",
                )
                .bind(&f.first_name)
                .bind(&f.last_name)
                .bind(&f.phone_raw)
                .bind(&f.email)
                .bind(&f.postal_address)
                .bind(&f.profession)
                .bind(&f.time_zone)
                .bind(Json(&f.custom_fields))
                .bind(now)
                .bind(id)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in held.chunks(VALUES_PER_INSERT) {
                let sql = upsert_values_sql(chunk.len());
                let mut q = sqlx::query(&sql).bind(account.0);
                for (phone, field, value) in chunk {
                    // Every row written above has an id by its number.
                    let id = ids.get(*phone).copied().unwrap_or_default();
                    q = q.bind(id).bind(field.0).bind(*value);
                }
                q.execute(&mut *tx).await?;
            }
            let sql = membership(members.len());
            let mut q = sqlx::query(&sql).bind(list.0).bind(account.0).bind(now);
            for id in &members {
                q = q.bind(id);
            }
            outcome.added_to_list = q.execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
        });
        Ok(outcome)
    }

    /// Records a background import that has just started.
    pub async fn create_import_job(
        &self,
        account: AccountId,
        list: ListId,
        user: Option<UserId>,
        on_duplicate: OnDuplicate,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let id: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO import_jobs (account_id, list_id, user_id, status, on_duplicate, \
             summary, started_at, updated_at) \
             SELECT $1, $2, $3, 'running', $4, $5, $6, $6 \
             WHERE EXISTS (SELECT 1 FROM lists WHERE id = $2 AND account_id = $1) \
             RETURNING id"
        )
        .bind(account.0)
        .bind(list.0)
        .bind(user.map(|u| u.0))
        .bind(on_duplicate.as_str())
        .bind(Json(ImportSummary::default()))
        .bind(now)
        .fetch_optional(pool)
        .await?)
        .ok_or(StoreError::NotFound)?;
        Ok(id)
    }

    /// Writes an import job's progress, and its end when the status says so.
    pub async fn update_import_job(
        &self,
        account: AccountId,
        id: i64,
        status: ImportStatus,
        summary: &ImportSummary,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let finished = (status != ImportStatus::Running).then_some(now);
        on_pool!(self, |pool| sqlx::query(
            "UPDATE import_jobs SET status = $1, summary = $2, error = $3, updated_at = $4, \
             finished_at = $5 WHERE id = $6 AND account_id = $7"
        )
        .bind(status.as_str())
        .bind(Json(summary))
        .bind(error)
        .bind(now)
        .bind(finished)
        .bind(id)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Returns an import job of the account.
    pub async fn import_job(&self, account: AccountId, id: i64) -> Result<ImportJob, StoreError> {
        let row: JobRow = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT id, list_id, status, on_duplicate, summary, error, started_at, updated_at, \
             finished_at FROM import_jobs WHERE id = $1 AND account_id = $2"
        )
        .bind(id)
        .bind(account.0)
        .fetch_one(pool)
        .await?
        });
        row.try_into()
    }

    /// Returns the union of custom field names of a list's contacts, sorted.
    pub async fn list_custom_field_names(
        &self,
        account: AccountId,
        list: ListId,
    ) -> Result<Vec<String>, StoreError> {
        // The engines differ here: JSON object keys have no common SQL.
        let from = "FROM contacts c JOIN list_members m ON m.contact_id = c.id \
             WHERE m.list_id = $1 AND m.account_id = $2 AND c.account_id = $2";
        let names: Vec<String> = match &self.pool {
            super::Pool::Sqlite(pool) => {
                let sql = "SELECT DISTINCT j.key FROM contacts c JOIN list_members m \
                     ON m.contact_id = c.id, json_each(c.custom_fields) j \
                     WHERE m.list_id = $1 AND m.account_id = $2 AND c.account_id = $2 \
                     ORDER BY j.key";
                sqlx::query_scalar(sql)
                    .bind(list.0)
                    .bind(account.0)
                    .fetch_all(pool)
                    .await?
            }
            super::Pool::Postgres(pool) => {
                let sql = format!(
                    "SELECT DISTINCT k FROM (SELECT jsonb_object_keys(c.custom_fields) AS k \
                     {from}) keys ORDER BY k"
                );
                sqlx::query_scalar(&sql)
                    .bind(list.0)
                    .bind(account.0)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(names)
    }

    /// Returns the next page of a list's contacts for export, after an id.
    pub async fn export_page(
        &self,
        account: AccountId,
        list: ListId,
        after: ContactId,
        limit: i64,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let columns = CONTACT_COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, \
             (SELECT COUNT(*) FROM call_attempts a \
              WHERE a.contact_id = c.id AND a.account_id = $2) AS attempts, \
             (SELECT a.outcome FROM call_attempts a WHERE a.contact_id = c.id \
              AND a.account_id = $2 ORDER BY a.started_at DESC, a.id DESC LIMIT 1) \
              AS last_outcome, \
             (SELECT i.disposition FROM interactions i WHERE i.contact_id = c.id \
              AND i.account_id = $2 AND i.disposition IS NOT NULL \
              ORDER BY i.occurred_at DESC, i.id DESC LIMIT 1) AS last_disposition, \
             (SELECT i.occurred_at FROM interactions i WHERE i.contact_id = c.id \
              AND i.account_id = $2 ORDER BY i.occurred_at DESC, i.id DESC LIMIT 1) \
              AS last_interaction_at \
             FROM contacts c JOIN list_members m ON m.contact_id = c.id \
             WHERE m.list_id = $1 AND m.account_id = $2 AND c.account_id = $2 AND c.id > $3 \
             ORDER BY c.id LIMIT $4"
        );
        let mut rows: Vec<ExportRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(list.0)
            .bind(account.0)
            .bind(after.0)
            .bind(limit.clamp(1, 10_000))
            .fetch_all(pool)
            .await?);
        self.fill_values_of(account, rows.iter_mut().map(|r| &mut r.contact).collect())
            .await?;
        Ok(rows)
    }

    async fn first_contacts_by_number(
        &self,
        account: AccountId,
        rows: &[ContactFields],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let sql = format!(
            "SELECT phone_e164, MIN(id) FROM contacts WHERE account_id = $1 \
             AND phone_e164 IN ({}) AND merged_into IS NULL GROUP BY phone_e164",
            placeholders(2, rows.len())
        );
        let found: Vec<(String, i64)> = on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql).bind(account.0);
            for r in rows {
                q = q.bind(&r.phone_e164);
            }
            q.fetch_all(pool).await?
        });
        Ok(found.into_iter().collect())
    }

    async fn suppressed_hashes(
        &self,
        account: AccountId,
        hashes: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let sql = format!(
            "SELECT number_hash FROM suppression WHERE account_id = $1 AND number_hash IN ({})",
            placeholders(2, hashes.len())
        );
        let found: Vec<String> = on_pool!(self, |pool| {
            let mut q = sqlx::query_scalar(&sql).bind(account.0);
            for h in hashes {
                q = q.bind(h);
            }
            q.fetch_all(pool).await?
        });
        Ok(found.into_iter().collect())
    }
}

/// Returns `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn insert_contacts_sql(n: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "($1, {}, $2, $2)",
                placeholders(3 + i * CONTACT_PARAMS, CONTACT_PARAMS)
            )
        })
        .collect();
    format!(
        "INSERT INTO contacts (account_id, first_name, last_name, phone_e164, phone_raw, email, \
         postal_address, profession, time_zone, custom_fields, created_at, updated_at) \
         VALUES {} RETURNING id, phone_e164",
        values.join(", ")
    )
}

/// Values written per statement: three bound per value, well under
/// either engine's limit on bound parameters.
const VALUES_PER_INSERT: usize = 5000;

/// Returns an insert of `n` values of contacts' fields, `$1` being the
/// account, that overwrites a value the contact has in the field.
fn upsert_values_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("($1, {})", placeholders(2 + i * 3, 3)))
        .collect();
    format!(
        "INSERT INTO contact_field_values (account_id, contact_id, field_id, value) VALUES {} \
         ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value",
        rows.join(", ")
    )
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    list_id: i64,
    status: String,
    on_duplicate: String,
    summary: Json<ImportSummary>,
    error: Option<String>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobRow> for ImportJob {
    type Error = StoreError;

    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        let status = match r.status.as_str() {
            "running" => ImportStatus::Running,
            "done" => ImportStatus::Done,
            "failed" => ImportStatus::Failed,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown import status {other:?}"
                )))
            }
        };
        Ok(ImportJob {
            id: r.id,
            list_id: ListId(r.list_id),
            status,
            on_duplicate: r.on_duplicate.parse().map_err(StoreError::Invalid)?,
            summary: r.summary.0,
            error: r.error,
            started_at: r.started_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}
