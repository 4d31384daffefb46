//! Do-not-call suppression, kept by keyed hash so it outlives erasure.
//!
//! Entries come from agents' dispositions, erasures, and the account's own
//! do-not-call lists (added one by one or imported); a number on any of
//! them is never dialled.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{on_pool, Store};
use crate::model::{AccountId, Suppression};
use crate::{privacy, StoreError};

/// Where an entry that erasure left comes from: the law asks that it stay.
pub const ERASURE_SOURCE: &str = "erasure";

/// Where an entry added to the do-not-call list by hand comes from.
pub const DNC_LIST_SOURCE: &str = "dnc-list";

/// Where an entry of an imported do-not-call list comes from.
pub const DNC_IMPORT_SOURCE: &str = "dnc-import";

/// How many invalid lines a do-not-call import reports by line.
const REPORTED_LINES: usize = 100;

/// What a do-not-call import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DncReport {
    /// Lines read, blank ones and a header left out.
    pub lines: u64,
    /// Numbers newly suppressed.
    pub added: u64,
    /// Numbers that were suppressed already.
    pub already: u64,
    /// Lines that hold no valid number.
    pub invalid: u64,
    /// The first invalid lines: line number and why.
    pub invalid_lines: Vec<(u64, String)>,
}

impl Store {
    /// Adds a number to the account's suppression list, keeping the number
    /// itself beside its keyed hash; adding it again keeps the first entry.
    pub async fn suppress(
        &self,
        account: AccountId,
        e164: &str,
        reason: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Suppression, StoreError> {
        Ok(self
            .suppress_number(account, e164, reason, source, true, now)
            .await?
            .0)
    }

    /// Adds a number to the account's suppression list; `keep_number`
    /// keeps the number itself beside its keyed hash (else the hash alone
    /// blocks it). Returns the entry and whether it is new.
    pub async fn suppress_number(
        &self,
        account: AccountId,
        e164: &str,
        reason: &str,
        source: &str,
        keep_number: bool,
        now: DateTime<Utc>,
    ) -> Result<(Suppression, bool), StoreError> {
        let hash = privacy::number_hash(&self.account_key(account).await?, e164);
        let kept = keep_number.then_some(e164);
        let added = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO suppression (account_id, number_hash, number_e164, reason, source, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_id, number_hash) DO NOTHING"
        )
        .bind(account.0)
        .bind(&hash)
        .bind(kept)
        .bind(reason)
        .bind(source)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        let entry = self
            .suppression_by_hash(account, &hash)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((entry, added > 0))
    }

    /// Takes a number off the account's do-not-call list. An entry that
    /// erasure left stays (the person asked never to be contacted again).
    pub async fn unsuppress(&self, account: AccountId, e164: &str) -> Result<(), StoreError> {
        let hash = privacy::number_hash(&self.account_key(account).await?, e164);
        let entry = self
            .suppression_by_hash(account, &hash)
            .await?
            .ok_or(StoreError::NotFound)?;
        if entry.source == ERASURE_SOURCE {
            return Err(StoreError::Refused(
                "this number's owner had their data erased; their do-not-call entry stays".into(),
            ));
        }
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM suppression WHERE account_id = $1 AND number_hash = $2"
        )
        .bind(account.0)
        .bind(&hash)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Reads a do-not-call list, one number per line (or a CSV whose first
    /// column is the number), and suppresses each valid one, keeping the
    /// number itself only if the account asks
    /// ([`Store::dnc_keeps_numbers`]); numbers without a country code are
    /// read in `region`. Lines that hold no valid number are counted and the
    /// first of them reported; nothing else is lost.
    pub async fn import_dnc(
        &self,
        account: AccountId,
        input: impl BufRead,
        region: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<DncReport, StoreError> {
        let region = crate::import::region(region).map_err(StoreError::Invalid)?;
        let keep = self.dnc_keeps_numbers(account).await?;
        let mut report = DncReport::default();
        for (n, line) in input.split(b'\n').enumerate() {
            let line_no = n as u64 + 1;
            let line =
                line.map_err(|e| StoreError::Invalid(format!("reading line {line_no}: {e}")))?;
            let text = String::from_utf8_lossy(&line);
            let field = text
                .split([',', ';', '\t'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"')
                .trim();
            // Blank lines, and a first line that names the column.
            if field.is_empty() || (line_no == 1 && !field.bytes().any(|b| b.is_ascii_digit())) {
                continue;
            }
            report.lines += 1;
            match crate::import::e164(field, region) {
                Ok(e164) => {
                    let (_, added) = self
                        .suppress_number(account, &e164, "do-not-call list", source, keep, now)
                        .await?;
                    if added {
                        report.added += 1;
                    } else {
                        report.already += 1;
                    }
                }
                Err(why) => {
                    report.invalid += 1;
                    if report.invalid_lines.len() < REPORTED_LINES {
                        report.invalid_lines.push((line_no, why.into()));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Whether the account keeps the numbers of its do-not-call list
    /// itself, beside their keyed hashes, so that it can read the list
    /// back; off (the default), the hash alone blocks a number.
    pub async fn dnc_keeps_numbers(&self, account: AccountId) -> Result<bool, StoreError> {
        let on: Option<bool> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT dnc_keep_numbers FROM accounts WHERE id = $1"
        )
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        on.ok_or(StoreError::NotFound)
    }

    /// Keeps the numbers of the do-not-call list from now on, or stops:
    /// turned off, the numbers the list kept (added by hand or imported)
    /// are forgotten at once, and their hashes go on blocking them.
    /// Returns how many numbers were forgotten.
    pub async fn set_dnc_keeps_numbers(
        &self,
        account: AccountId,
        on: bool,
    ) -> Result<u64, StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE accounts SET dnc_keep_numbers = $1 WHERE id = $2")
                .bind(on)
                .bind(account.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            let forgotten = if on {
                0
            } else {
                sqlx::query(
                    "UPDATE suppression SET number_e164 = NULL WHERE account_id = $1 \
                     AND source IN ($2, $3) AND number_e164 IS NOT NULL",
                )
                .bind(account.0)
                .bind(DNC_LIST_SOURCE)
                .bind(DNC_IMPORT_SOURCE)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            tx.commit().await?;
            Ok(forgotten)
        })
    }

    /// Returns the account's suppression list, oldest first, `limit`
    /// entries after the one numbered `after`: each with its number where
    /// it is kept (none for an erased person's, or where the account keeps
    /// hashes only), and the number to page on from.
    pub async fn dnc_entries(
        &self,
        account: AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Suppression)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            #[sqlx(flatten)]
            entry: Suppression,
        }
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, number_hash, number_e164, reason, source, created_at \
             FROM suppression WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )
        .bind(account.0)
        .bind(after)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(|r| (r.id, r.entry)).collect())
    }

    /// Returns the suppression entry for a number, if it is suppressed.
    pub async fn suppression(
        &self,
        account: AccountId,
        e164: &str,
    ) -> Result<Option<Suppression>, StoreError> {
        let hash = privacy::number_hash(&self.account_key(account).await?, e164);
        self.suppression_by_hash(account, &hash).await
    }

    /// Returns whether a number may not be dialled by this account.
    pub async fn is_suppressed(&self, account: AccountId, e164: &str) -> Result<bool, StoreError> {
        Ok(self.suppression(account, e164).await?.is_some())
    }

    /// Drops the plain number from a suppression entry, keeping its hash.
    pub async fn forget_suppressed_number(
        &self,
        account: AccountId,
        e164: &str,
    ) -> Result<(), StoreError> {
        let hash = privacy::number_hash(&self.account_key(account).await?, e164);
        on_pool!(self, |pool| sqlx::query(
            "UPDATE suppression SET number_e164 = NULL WHERE account_id = $1 AND number_hash = $2"
        )
        .bind(account.0)
        .bind(&hash)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    async fn suppression_by_hash(
        &self,
        account: AccountId,
        hash: &str,
    ) -> Result<Option<Suppression>, StoreError> {
        let row: Option<Suppression> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT number_hash, number_e164, reason, source, created_at FROM suppression \
             WHERE account_id = $1 AND number_hash = $2"
        )
        .bind(account.0)
        .bind(hash)
        .fetch_optional(pool)
        .await?);
        Ok(row)
    }
}
