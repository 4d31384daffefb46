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
pub(crate) const MAX_BATCH_ROWS: usize = 3000;

/// The page cache of an import's SQLite connection, in KiB: the indexes'
/// pages a million-row import keeps touching (docs/benchmarks.md).
pub(crate) const IMPORT_CACHE_KIB: u32 = 64 * 1024;

/// A list being imported into, checked once for all its batches, and the
/// connection its batches are written on.
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
    Postgres(PoolConnection<Postgres>),
}

impl Store {
    /// Checks that the list is the account's, and prepares the hash of the
    /// account's numbers; a list of another account is [`StoreError::NotFound`].
    pub(crate) async fn import_target(
        &self,
        account: AccountId,
        list: ListId,
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
            Pool::Postgres(pool) => ImportConn::Postgres(pool.acquire().await?),
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
    ) -> Result<BatchOutcome, StoreError> {
        if rows.is_empty() {
            return Ok(BatchOutcome::default());
        }
        if rows.len() > MAX_BATCH_ROWS {
            return Err(StoreError::Invalid(format!(
                "an import batch holds at most {MAX_BATCH_ROWS} rows"
            )));
        }
        if let Some(bad) = rows.iter().find(|r| !r.custom_fields.is_object()) {
            return Err(StoreError::Invalid(format!(
                "custom_fields must be a JSON object, not {}",
                bad.custom_fields
            )));
        }
        let hashes: Vec<String> = rows
            .iter()
            .map(|r| target.hasher.hash(&r.phone_e164))
            .collect();
        let batch = Batch {
            account: target.account,
            list: target.list,
            rows,
            values,
            hashes: &hashes,
            on_duplicate,
            now,
        };
        match &mut target.conn {
            ImportConn::Sqlite(conn) => sqlite::write(conn, &batch).await,
            ImportConn::SqliteShared(pool) => {
                sqlite::write(&mut *pool.acquire().await?, &batch).await
            }
            ImportConn::Postgres(conn) => postgres::write(conn, &batch).await,
        }
    }
}

/// What one batch asks for, as both engines' writers read it.
struct Batch<'a> {
    account: AccountId,
    list: ListId,
    rows: &'a [ContactFields],
    values: &'a [Vec<(FieldId, String)>],
    hashes: &'a [String],
    on_duplicate: OnDuplicate,
    now: DateTime<Utc>,
}

/// What to write for a batch, once the numbers the account holds are known.
struct Plan<'a> {
    outcome: BatchOutcome,
    /// Rows whose number is new to the account.
    fresh: Vec<&'a ContactFields>,
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
            .filter(|&i| suppressed.contains(&self.hashes[i]))
            .collect();
        for (i, row) in self.rows.iter().enumerate() {
            let write = match existing.get(&row.phone_e164) {
                None => {
                    plan.fresh.push(row);
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
                if let Some(row_values) = self.values.get(i) {
                    plan.held.extend(
                        row_values
                            .iter()
                            .map(|(f, v)| (row.phone_e164.as_str(), *f, v.as_str())),
                    );
                }
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
                .map(|f| {
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

    const EXISTING: &str = "SELECT phone_e164, MIN(id) FROM contacts WHERE account_id = $1 \
         AND phone_e164 = ANY($2) AND merged_into IS NULL GROUP BY phone_e164";
    const SUPPRESSED: &str =
        "SELECT number_hash FROM suppression WHERE account_id = $1 AND number_hash = ANY($2)";
    const INSERT: &str = "INSERT INTO contacts (account_id, first_name, last_name, phone_e164, \
         phone_raw, email, postal_address, profession, time_zone, custom_fields, created_at, \
         updated_at) \
         SELECT $1, r.f, r.l, r.p, r.raw, r.e, r.a, r.pr, r.tz, r.cf::jsonb, $2, $2 \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[]) WITH ORDINALITY \
         AS r(f, l, p, raw, e, a, pr, tz, cf, n) ORDER BY r.n \
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
            .bind(batch.hashes)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let mut plan = batch.plan(&existing, &suppressed);

        let mut created = HashMap::with_capacity(plan.fresh.len());
        if !plan.fresh.is_empty() {
            let column =
                |get: fn(&crate::model::ContactFields) -> Option<&str>| -> Vec<Option<&str>> {
                    plan.fresh.iter().map(|f| get(f)).collect()
                };
            let custom: Vec<String> = plan.fresh.iter().map(|f| custom_text(f)).collect();
            let ids = sqlx::query_as::<_, (i64, String)>(INSERT)
                .bind(account)
                .bind(batch.now)
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
    use super::sqlite;
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
