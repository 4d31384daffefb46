//! Batched writes of CSV imports (written by `import_batch`), import jobs,
//! and the pages of list exports.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Store};
use crate::export::ExportRow;
use crate::fields::FieldId;
use crate::import::{BatchOutcome, ImportJob, ImportStatus, ImportSummary, OnDuplicate};
use crate::model::{AccountId, ContactFields, ContactId, ListId, UserId};
use crate::StoreError;

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
        let mut target = self.import_target(account, list, false).await?;
        self.write_import_batch(&mut target, rows, values, on_duplicate, now)
            .await
            .map_err(|failure| failure.error)
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
