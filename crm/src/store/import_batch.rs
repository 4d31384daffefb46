//! One batch of a CSV import, written in one transaction.
//!
//! Each statement's text is the same whatever the batch holds: the rows
//! travel as one JSON array on SQLite (read back with `json_each`) and as
//! arrays on PostgreSQL (`UNNEST`, `= ANY`). So each engine prepares a
//! statement once per connection and reuses it, and a batch costs six
//! statements whatever its size, where statements with one placeholder per
//! value had a new text (and a new plan) for nearly every batch.
//!
//! The lookups of the numbers the account holds and of suppressed numbers
//! run inside the write transaction (begun IMMEDIATE on SQLite, so it holds
//! the write lock from its first read), so what they find is what the batch
//! is written against.
//!
//! An import writes all its batches on one connection of its own. On
//! SQLite that connection's page cache is raised for the import
//! ([`IMPORT_CACHE_KIB`]) and the connection is closed afterwards, so the
//! memory goes with it: batches spread over the pool's connections each
//! found a cold 2 MiB cache, and read back from disk the index pages the
//! batch before had just written.
//!
//! On PostgreSQL the server's work per row is the limit (index entries and
//! the foreign-key checks that run after each statement, docs/benchmarks.md),
//! and one connection keeps it on one of the server's cores. A CSV import
//! therefore writes each batch in two parts on two connections at once,
//! every row going to the part its number's hash picks: rows with the same
//! number always meet on the same connection, in file order, so duplicates
//! are found as they are with one. Each part is a transaction of its own;
//! when one fails, what the other wrote is counted before the error returns
//! ([`BatchFailure`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Sqlite, SqlitePool};

use super::{on_pool, Pool, Store};
use crate::fields::FieldId;
use crate::import::{BatchOutcome, OnDuplicate};
use crate::model::{AccountId, ContactFields, ListId};
use crate::privacy::NumberHasher;
use crate::StoreError;

/// The most rows one batch may hold.
pub(crate) const MAX_BATCH_ROWS: usize = 5000;

/// The page cache of an import's SQLite connection, in KiB: the indexes'
/// pages a million-row import keeps touching (docs/benchmarks.md).
pub(crate) const IMPORT_CACHE_KIB: u32 = 64 * 1024;

/// A list being imported into, checked once for all its batches, and the
/// connections its batches are written on.
pub(crate) struct ImportTarget {
    account: AccountId,
    list: ListId,
    hasher: NumberHasher,
    conn: ImportConn,
}

enum ImportConn {
    Sqlite(PoolConnection<Sqlite>),
    /// An in-memory database lives in the pool's one connection: the
    /// import borrows it batch by batch, as every other caller does.
    SqliteShared(SqlitePool),
    /// The batch's connection, and a second one to write half of each
    /// batch on at once.
    Postgres(PoolConnection<Postgres>, Option<PoolConnection<Postgres>>),
}

/// A batch that failed, and what was written of it before it did: the other
/// part of a batch split over two connections may have committed.
#[derive(Debug)]
pub(crate) struct BatchFailure {
    pub(crate) written: BatchOutcome,
    pub(crate) error: StoreError,
}

impl From<StoreError> for BatchFailure {
    fn from(error: StoreError) -> Self {
        BatchFailure {
            written: BatchOutcome::default(),
            error,
        }
    }
}

impl From<sqlx::Error> for BatchFailure {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl Store {
    /// Checks that the list is the account's, and prepares the hash of the
    /// account's numbers; a list of another account is [`StoreError::NotFound`].
    ///
    /// With `split`, batches on PostgreSQL are written in two parts at once
    /// when the pool has room for a second connection (an import does not
    /// queue behind other requests for one); each part is then a transaction
    /// of its own.
    pub(crate) async fn import_target(
        &self,
        account: AccountId,
        list: ListId,
        split: bool,
    ) -> Result<ImportTarget, StoreError> {
        let owned: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM lists WHERE id = $1 AND account_id = $2"
        )
        .bind(list.0)
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        owned.ok_or(StoreError::NotFound)?;
        let key = self.account_key(account).await?;
        let conn = match &self.pool {
            Pool::Sqlite(pool) if pool.options().get_max_connections() <= 1 => {
                ImportConn::SqliteShared(pool.clone())
            }
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // Its larger cache must not stay in the pool after the import.
                conn.close_on_drop();
                sqlx::query(&format!("PRAGMA cache_size = -{IMPORT_CACHE_KIB}"))
                    .execute(&mut *conn)
                    .await?;
                ImportConn::Sqlite(conn)
            }
            Pool::Postgres(pool) => {
                let first = pool.acquire().await?;
                let room =
                    pool.num_idle() > 0 || pool.size() < pool.options().get_max_connections();
                let second = if split && room {
                    Some(pool.acquire().await?)
                } else {
                    None
                };
                ImportConn::Postgres(first, second)
            }
        };
        Ok(ImportTarget {
            account,
            list,
            hasher: NumberHasher::new(&key),
            conn,
        })
    }

    /// Writes one batch of contacts to the target list in one transaction,
    /// as [`Store::import_batch_with_values`] describes.
    pub(crate) async fn write_import_batch(
        &self,
        target: &mut ImportTarget,
        rows: &[ContactFields],
        values: &[Vec<(FieldId, String)>],
        on_duplicate: OnDuplicate,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, BatchFailure> {
        if rows.is_empty() {
            return Ok(BatchOutcome::default());
        }
        if rows.len() > MAX_BATCH_ROWS {
            return Err(StoreError::Invalid(format!(
                "an import batch holds at most {MAX_BATCH_ROWS} rows"
            ))
            .into());
        }
        if let Some(reason) = rows.iter().find_map(ContactFields::too_long) {
            return Err(StoreError::Invalid(reason).into());
        }
        if let Some(bad) = rows.iter().find(|r| !r.custom_fields.is_object()) {
            return Err(StoreError::Invalid(format!(
                "custom_fields must be a JSON object, not {}",
                bad.custom_fields
            ))
            .into());
        }
        let hashes: Vec<String> = rows
            .iter()
            .map(|r| target.hasher.hash(&r.phone_e164))
            .collect();
        // On PostgreSQL, one id for each row, in order (SQLite's writer
        // reads none).
        let reserved: Vec<i64> = match &mut target.conn {
            ImportConn::Postgres(conn, _) => {
                let ids = sqlx::query_scalar::<_, i64>(postgres::RESERVE)
                    .bind(rows.len() as i64)
                    .fetch_all(&mut **conn)
                    .await
                    .map_err(StoreError::from)?;
                if ids.len() != rows.len() {
                    return Err(StoreError::Invalid(format!(
                        "the database gave {} contact ids for {} rows",
                        ids.len(),
                        rows.len()
                    ))
                    .into());
                }
                ids
            }
            _ => Vec::new(),
        };
        let batch = |positions: Vec<usize>| Batch {
            ids: positions
                .iter()
                .filter_map(|&i| reserved.get(i).copied())
                .collect(),
            account: target.account,
            list: target.list,
            rows: positions.iter().map(|&i| &rows[i]).collect(),
            values: positions
                .iter()
                .map(|&i| values.get(i).map_or(&[][..], Vec::as_slice))
                .collect(),
            hashes: positions.iter().map(|&i| hashes[i].as_str()).collect(),
            positions,
            on_duplicate,
            now,
        };
        match &mut target.conn {
            ImportConn::Sqlite(conn) => {
                Ok(sqlite::write(conn, &batch((0..rows.len()).collect())).await?)
            }
            ImportConn::SqliteShared(pool) => {
                let whole = batch((0..rows.len()).collect());
                Ok(sqlite::write(&mut *pool.acquire().await?, &whole).await?)
            }
            ImportConn::Postgres(conn, None) => {
                Ok(postgres::write(conn, &batch((0..rows.len()).collect())).await?)
            }
            ImportConn::Postgres(first, Some(second)) => {
                let (one, two) = halves(rows);
                let (one, two) = (batch(one), batch(two));
                let (one, two) =
                    tokio::join!(postgres::write(first, &one), postgres::write(second, &two));
                let mut written = BatchOutcome::default();
                let mut failure = None;
                for part in [one, two] {
                    match part {
                        Ok(outcome) => written.add(outcome),
                        Err(e) => failure = failure.or(Some(e)),
                    }
                }
                written.suppressed.sort_unstable();
                match failure {
                    None => Ok(written),
                    Some(error) => Err(BatchFailure { written, error }),
                }
            }
        }
    }
}

/// Splits a batch's rows in two by their numbers' hash: the positions of
/// each half, in order. A number always lands in the same half.
fn halves(rows: &[ContactFields]) -> (Vec<usize>, Vec<usize>) {
    (0..rows.len()).partition(|&i| {
        // FNV-1a: stable across runs and processes, unlike std's hasher.
        let hash = rows[i]
            .phone_e164
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        hash & 1 == 0
    })
}

/// What one batch (or one part of it) asks for, as both engines' writers
/// read it.
struct Batch<'a> {
    /// On PostgreSQL, the id each row's contact gets if it is new.
    ids: Vec<i64>,
    account: AccountId,
    list: ListId,
    rows: Vec<&'a ContactFields>,
    /// Each row's values in the account's fields.
    values: Vec<&'a [(FieldId, String)]>,
    hashes: Vec<&'a str>,
    /// Each row's position in the batch as given.
    positions: Vec<usize>,
    on_duplicate: OnDuplicate,
    now: DateTime<Utc>,
}

/// What to write for a batch, once the numbers the account holds are known.
struct Plan<'a> {
    outcome: BatchOutcome,
    /// Rows whose number is new to the account, by their place in the batch.
    fresh: Vec<(usize, &'a ContactFields)>,
    /// Rows that overwrite the contact with the id.
    updates: Vec<(i64, &'a ContactFields)>,
    /// Contacts to put on the list; new ones are added once they have ids.
    members: Vec<i64>,
    /// The values to write, by the row's number until new contacts have ids.
    held: Vec<(&'a str, FieldId, &'a str)>,
}

impl Batch<'_> {
    /// Sorts the rows into new contacts, updates and skips, given the first
    /// contact of the account with each number and the suppressed hashes.
    fn plan(&self, existing: &HashMap<String, i64>, suppressed: &HashSet<String>) -> Plan<'_> {
        let mut plan = Plan {
            outcome: BatchOutcome::default(),
            fresh: Vec::new(),
            updates: Vec::new(),
            members: Vec::with_capacity(self.rows.len()),
            held: Vec::new(),
        };
        plan.outcome.suppressed = (0..self.rows.len())
            .filter(|&i| suppressed.contains(self.hashes[i]))
            .map(|i| self.positions[i])
            .collect();
        for (i, row) in self.rows.iter().copied().enumerate() {
            let write = match existing.get(&row.phone_e164) {
                None => {
                    plan.fresh.push((i, row));
                    true
                }
                Some(&id) => {
                    plan.members.push(id);
                    match self.on_duplicate {
                        OnDuplicate::Skip => {
                            plan.outcome.skipped += 1;
                            false
                        }
                        OnDuplicate::Update => {
                            plan.updates.push((id, row));
                            true
                        }
                    }
                }
            };
            if write {
                plan.held.extend(
                    self.values[i]
                        .iter()
                        .map(|(f, v)| (row.phone_e164.as_str(), *f, v.as_str())),
                );
            }
        }
        plan.outcome.imported = plan.fresh.len() as u64;
        plan.outcome.updated = plan.updates.len() as u64;
        plan
    }
}

impl Plan<'_> {
    /// Returns the values to write with their contacts' ids, given the new
    /// contacts' ids by number.
    fn values_with_ids(&self, created: &HashMap<String, i64>) -> Vec<(i64, i64, &str)> {
        let updated: HashMap<&str, i64> = self
            .updates
            .iter()
            .map(|(id, f)| (f.phone_e164.as_str(), *id))
            .collect();
        self.held
            .iter()
            .filter_map(|(phone, field, value)| {
                // Every row written has an id by its number.
                let id = updated
                    .get(phone)
                    .or_else(|| created.get(*phone))
                    .copied()?;
                Some((id, field.0, *value))
            })
            .collect()
    }
}

/// The contact's custom fields as the JSON text both engines store.
fn custom_text(f: &ContactFields) -> String {
    f.custom_fields.to_string()
}

mod sqlite {
    //! The batch on SQLite: each statement reads its rows from one JSON array.

    use std::collections::HashMap;

    use serde_json::json;
    use sqlx::{Connection, SqliteConnection};

    use super::{custom_text, Batch};
    use crate::import::BatchOutcome;
    use crate::StoreError;

    pub(super) const EXISTING: &str =
        "SELECT phone_e164, MIN(id) FROM contacts WHERE account_id = $1 \
         AND phone_e164 IN (SELECT value FROM json_each($2)) AND merged_into IS NULL \
         GROUP BY phone_e164";
    pub(super) const SUPPRESSED: &str =
        "SELECT number_hash FROM suppression WHERE account_id = $1 \
         AND number_hash IN (SELECT value FROM json_each($2))";
    const INSERT: &str = "INSERT INTO contacts (account_id, first_name, last_name, phone_e164, \
         phone_raw, email, postal_address, profession, time_zone, custom_fields, created_at, \
         updated_at) \
         SELECT $1, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, \
         r.value ->> 5, r.value ->> 6, r.value ->> 7, r.value ->> 8, $2, $2 \
         FROM json_each($3) AS r ORDER BY r.key \
         RETURNING id, phone_e164";
    // The unary plus keeps the account's index out of the plan: without
    // statistics SQLite would walk every contact of the account for each row,
    // where reading each row's contact by id is what this wants.
    pub(super) const UPDATE: &str = "UPDATE contacts SET first_name = r.value ->> 1, \
         last_name = r.value ->> 2, phone_raw = r.value ->> 3, email = r.value ->> 4, \
         postal_address = r.value ->> 5, profession = r.value ->> 6, time_zone = r.value ->> 7, \
         custom_fields = r.value ->> 8, updated_at = $2, version = version + 1 \
         FROM json_each($3) AS r WHERE contacts.id = r.value ->> 0 \
         AND +contacts.account_id = $1";
    // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    const VALUES: &str = "INSERT INTO contact_field_values (account_id, contact_id, field_id, \
         value) SELECT $1, r.value ->> 0, r.value ->> 1, r.value ->> 2 FROM json_each($2) AS r \
         WHERE true ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value";
    const MEMBERS: &str = "INSERT INTO list_members (list_id, contact_id, account_id, added_at) \
         SELECT $1, r.value, $2, $3 FROM json_each($4) AS r WHERE true \
         ON CONFLICT (list_id, contact_id) DO NOTHING";

    pub(super) async fn write(
        conn: &mut SqliteConnection,
        batch: &Batch<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        let account = batch.account.0;
        let phones: Vec<&str> = batch.rows.iter().map(|r| r.phone_e164.as_str()).collect();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let existing: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(EXISTING)
            .bind(account)
            .bind(json!(phones).to_string())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let suppressed = sqlx::query_scalar::<_, String>(SUPPRESSED)
            .bind(account)
            .bind(json!(batch.hashes).to_string())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let mut plan = batch.plan(&existing, &suppressed);

        let mut created = HashMap::with_capacity(plan.fresh.len());
        if !plan.fresh.is_empty() {
            let rows: Vec<_> = plan
                .fresh
                .iter()
                .map(|(_, f)| {
                    json!([
                        f.first_name,
                        f.last_name,
                        f.phone_e164,
                        f.phone_raw,
                        f.email,
                        f.postal_address,
                        f.profession,
                        f.time_zone,
                        custom_text(f),
                    ])
                })
                .collect();
            let ids = sqlx::query_as::<_, (i64, String)>(INSERT)
                .bind(account)
                .bind(batch.now)
                .bind(serde_json::Value::Array(rows).to_string())
                .fetch_all(&mut *tx)
                .await?;
            for (id, phone) in ids {
                plan.members.push(id);
                created.insert(phone, id);
            }
        }
        if !plan.updates.is_empty() {
            let rows: Vec<_> = plan
                .updates
                .iter()
                .map(|(id, f)| {
                    json!([
                        id,
                        f.first_name,
                        f.last_name,
                        f.phone_raw,
                        f.email,
                        f.postal_address,
                        f.profession,
                        f.time_zone,
                        custom_text(f),
                    ])
                })
                .collect();
            sqlx::query(UPDATE)
                .bind(account)
                .bind(batch.now)
                .bind(serde_json::Value::Array(rows).to_string())
                .execute(&mut *tx)
                .await?;
        }
        let values = plan.values_with_ids(&created);
        if !values.is_empty() {
            sqlx::query(VALUES)
                .bind(account)
                .bind(json!(values).to_string())
                .execute(&mut *tx)
                .await?;
        }
        plan.outcome.added_to_list = sqlx::query(MEMBERS)
            .bind(batch.list.0)
            .bind(account)
            .bind(batch.now)
            .bind(json!(plan.members).to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(plan.outcome)
    }
}

mod postgres {
    //! The batch on PostgreSQL: each statement reads its rows from arrays.

    use std::collections::HashMap;

    use sqlx::{Connection, PgConnection};

    use super::{custom_text, Batch};
    use crate::import::BatchOutcome;
    use crate::StoreError;

    // Each number is looked up on its own through the (account, number)
    // index. Asked as `phone_e164 = ANY($2)` with hundreds of numbers, the
    // planner took the whole array as matching nearly every row and, before
    // the table had statistics, read all the account's contacts through the
    // account's own index for every batch: the import slowed as it went.
    pub(super) const EXISTING: &str = "SELECT p.phone, c.id FROM UNNEST($2::text[]) AS p(phone) \
         CROSS JOIN LATERAL (SELECT MIN(id) AS id FROM contacts WHERE account_id = $1 \
         AND phone_e164 = p.phone AND merged_into IS NULL) AS c WHERE c.id IS NOT NULL";
    pub(super) const SUPPRESSED: &str = "SELECT h.hash FROM UNNEST($2::text[]) AS h(hash) \
         WHERE EXISTS (SELECT 1 FROM suppression s WHERE s.account_id = $1 \
         AND s.number_hash = h.hash)";
    /// Ids for a batch's rows, in order: a batch's two parts write at once,
    /// and the contacts they create keep the file's order all the same.
    pub(super) const RESERVE: &str = "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) \
         FROM generate_series(1, $1) ORDER BY 1";
    const INSERT: &str = "INSERT INTO contacts (id, account_id, first_name, last_name, \
         phone_e164, phone_raw, email, postal_address, profession, time_zone, custom_fields, \
         created_at, updated_at) OVERRIDING SYSTEM VALUE \
         SELECT r.id, $1, r.f, r.l, r.p, r.raw, r.e, r.a, r.pr, r.tz, r.cf::jsonb, $2, $2 \
         FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::text[]) \
         AS r(id, f, l, p, raw, e, a, pr, tz, cf) \
         RETURNING id, phone_e164";
    const UPDATE: &str = "UPDATE contacts c SET first_name = r.f, last_name = r.l, \
         phone_raw = r.raw, email = r.e, postal_address = r.a, profession = r.pr, \
         time_zone = r.tz, custom_fields = r.cf::jsonb, updated_at = $2, \
         version = c.version + 1 \
         FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[]) AS r(id, f, l, raw, e, a, pr, tz, cf) \
         WHERE c.id = r.id AND c.account_id = $1";
    const VALUES: &str = "INSERT INTO contact_field_values (account_id, contact_id, field_id, \
         value) SELECT $1, r.c, r.f, r.v FROM UNNEST($2::bigint[], $3::bigint[], $4::text[]) \
         AS r(c, f, v) ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value";
    const MEMBERS: &str = "INSERT INTO list_members (list_id, contact_id, account_id, added_at) \
         SELECT $1, r.c, $2, $3 FROM UNNEST($4::bigint[]) AS r(c) \
         ON CONFLICT (list_id, contact_id) DO NOTHING";

    pub(super) async fn write(
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        let account = batch.account.0;
        let phones: Vec<&str> = batch.rows.iter().map(|r| r.phone_e164.as_str()).collect();
        let mut tx = conn.begin().await?;
        let existing: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(EXISTING)
            .bind(account)
            .bind(&phones)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let suppressed = sqlx::query_scalar::<_, String>(SUPPRESSED)
            .bind(account)
            .bind(&batch.hashes)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let mut plan = batch.plan(&existing, &suppressed);

        let mut created = HashMap::with_capacity(plan.fresh.len());
        if !plan.fresh.is_empty() {
            let column =
                |get: fn(&crate::model::ContactFields) -> Option<&str>| -> Vec<Option<&str>> {
                    plan.fresh.iter().map(|(_, f)| get(f)).collect()
                };
            // Every row of a batch on PostgreSQL has its reserved id.
            let ids: Vec<i64> = plan
                .fresh
                .iter()
                .filter_map(|(i, _)| batch.ids.get(*i).copied())
                .collect();
            let custom: Vec<String> = plan.fresh.iter().map(|(_, f)| custom_text(f)).collect();
            let ids = sqlx::query_as::<_, (i64, String)>(INSERT)
                .bind(account)
                .bind(batch.now)
                .bind(&ids)
                .bind(column(|f| Some(&f.first_name)))
                .bind(column(|f| Some(&f.last_name)))
                .bind(column(|f| Some(&f.phone_e164)))
                .bind(column(|f| Some(&f.phone_raw)))
                .bind(column(|f| f.email.as_deref()))
                .bind(column(|f| f.postal_address.as_deref()))
                .bind(column(|f| f.profession.as_deref()))
                .bind(column(|f| f.time_zone.as_deref()))
                .bind(&custom)
                .fetch_all(&mut *tx)
                .await?;
            for (id, phone) in ids {
                plan.members.push(id);
                created.insert(phone, id);
            }
        }
        if !plan.updates.is_empty() {
            let column =
                |get: fn(&crate::model::ContactFields) -> Option<&str>| -> Vec<Option<&str>> {
                    plan.updates.iter().map(|(_, f)| get(f)).collect()
                };
            let ids: Vec<i64> = plan.updates.iter().map(|(id, _)| *id).collect();
            let custom: Vec<String> = plan.updates.iter().map(|(_, f)| custom_text(f)).collect();
            sqlx::query(UPDATE)
                .bind(account)
                .bind(batch.now)
                .bind(&ids)
                .bind(column(|f| Some(&f.first_name)))
                .bind(column(|f| Some(&f.last_name)))
                .bind(column(|f| Some(&f.phone_raw)))
                .bind(column(|f| f.email.as_deref()))
                .bind(column(|f| f.postal_address.as_deref()))
                .bind(column(|f| f.profession.as_deref()))
                .bind(column(|f| f.time_zone.as_deref()))
                .bind(&custom)
                .execute(&mut *tx)
                .await?;
        }
        let values = plan.values_with_ids(&created);
        if !values.is_empty() {
            let contacts: Vec<i64> = values.iter().map(|v| v.0).collect();
            let fields: Vec<i64> = values.iter().map(|v| v.1).collect();
            let texts: Vec<&str> = values.iter().map(|v| v.2).collect();
            sqlx::query(VALUES)
                .bind(account)
                .bind(&contacts)
                .bind(&fields)
                .bind(&texts)
                .execute(&mut *tx)
                .await?;
        }
        plan.outcome.added_to_list = sqlx::query(MEMBERS)
            .bind(batch.list.0)
            .bind(account)
            .bind(batch.now)
            .bind(&plan.members)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(plan.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::{halves, postgres, sqlite};
    use crate::model::ContactFields;
    use crate::testing::TestDb;

    /// Returns SQLite's plan of a statement, one step a line.
    async fn plan_of(db: &TestDb, sql: &str, binds: usize) -> String {
        let pool = db.store.sqlite_pool().expect("a SQLite store");
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
        for _ in 1..binds {
            q = q.bind(1_i64);
        }
        let rows = q.bind("[]").fetch_all(pool).await.expect("a plan");
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn halves_keep_a_number_on_one_side_and_share_the_rows() {
        let row = |n: u32| ContactFields {
            phone_e164: format!("+4474{n:08}"),
            ..ContactFields::default()
        };
        let rows: Vec<ContactFields> = (0..1000).map(row).collect();
        let (one, two) = halves(&rows);
        assert_eq!(one.len() + two.len(), rows.len());
        assert!(one.windows(2).all(|w| w[0] < w[1]), "file order kept");
        assert!(two.windows(2).all(|w| w[0] < w[1]), "file order kept");
        assert!(
            (400..=600).contains(&one.len()),
            "a fair share each: {} and {}",
            one.len(),
            two.len()
        );
        // The same number lands on the same side in any batch.
        let again: Vec<ContactFields> = (500..1500).map(row).collect();
        let (again_one, _) = halves(&again);
        for i in 500..1000 {
            assert_eq!(one.contains(&i), again_one.contains(&(i - 500)), "row {i}");
        }
    }

    /// The lookups a batch makes on PostgreSQL go through the (account,
    /// number) indexes for each number, planned either way, before the table
    /// has statistics: read through the account's own index, the lookup of
    /// the account's numbers slowed a million-row import as it grew.
    #[tokio::test]
    async fn postgres_batches_look_numbers_up_one_by_one() {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let pool = db.store.postgres_pool().expect("a PostgreSQL store");
        let account: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, seats, suppression_key, created_at) \
             VALUES ('acme', 1, 'k', now()) RETURNING id",
        )
        .fetch_one(pool)
        .await
        .expect("account");
        sqlx::query(
            "INSERT INTO contacts (account_id, phone_e164, phone_raw, created_at, updated_at) \
             SELECT $1, '+4474' || lpad(i::text, 8, '0'), '', now(), now() \
             FROM generate_series(1, 20000) AS i",
        )
        .bind(account)
        .execute(pool)
        .await
        .expect("contacts");
        let numbers: Vec<String> = (1..=250).map(|i| format!("+4474{i:08}")).collect();
        let mut conn = pool.acquire().await.expect("a connection");
        for mode in ["force_generic_plan", "force_custom_plan"] {
            sqlx::query(&format!("SET plan_cache_mode = {mode}"))
                .execute(&mut *conn)
                .await
                .expect("plan mode");
            for (sql, index) in [
                (postgres::EXISTING, "contacts_account_phone"),
                (
                    postgres::SUPPRESSED,
                    "suppression_account_id_number_hash_key",
                ),
            ] {
                let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
                    .bind(account)
                    .bind(&numbers)
                    .fetch_all(&mut *conn)
                    .await
                    .expect("a plan");
                let plan = plan.join("\n");
                assert!(plan.contains(index), "{mode}: {plan}");
                assert!(!plan.contains("contacts_account_id"), "{mode}: {plan}");
                assert!(!plan.contains("Seq Scan on"), "{mode}: {plan}");
            }
        }
        drop(conn);
        db.finish().await;
    }

    #[tokio::test]
    async fn sqlite_batches_read_contacts_and_hashes_through_indexes() {
        let db = TestDb::sqlite().await;
        let existing = plan_of(&db, sqlite::EXISTING, 2).await;
        assert!(
            existing.contains("INDEX contacts_account_phone"),
            "{existing}"
        );
        let suppressed = plan_of(&db, sqlite::SUPPRESSED, 2).await;
        assert!(
            suppressed.contains("(account_id=? AND number_hash=?)"),
            "{suppressed}"
        );
        let update = plan_of(&db, sqlite::UPDATE, 3).await;
        assert!(update.contains("INTEGER PRIMARY KEY"), "{update}");
        assert!(!update.contains("contacts_account_id"), "{update}");
        db.finish().await;
    }
}
