//! The login throttle's failure counts, shared by every node and kept
//! across restarts.
//!
//! Counts are kept under [`FailureKey`]s: keyed hashes of a username or a
//! client address under a secret of the service ([`LoginSecret`]), so the
//! table names nobody. A failure's count and its increment are one
//! statement, so failures recorded at once on several nodes each count, and
//! each count is returned to exactly one of them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{on_pool, Store};
use crate::{privacy, StoreError};

/// The name under which the throttle's secret is kept in `server_secrets`.
const SECRET_NAME: &str = "login_failures";

/// The secret the throttle's keys are hashed under, the same on every node.
#[derive(Clone)]
pub struct LoginSecret(String);

impl std::fmt::Debug for LoginSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginSecret(***)")
    }
}

impl LoginSecret {
    /// Returns the key a username's failures are counted under; usernames
    /// that differ only in case share it.
    pub fn username(&self, username: &str) -> FailureKey {
        FailureKey(privacy::keyed_hash(
            &self.0,
            &format!("u:{}", username.to_lowercase()),
        ))
    }

    /// Returns the key a client address's failures are counted under.
    pub fn address(&self, ip: &str) -> FailureKey {
        FailureKey(privacy::keyed_hash(&self.0, &format!("i:{ip}")))
    }

    /// The key a desk phone's failed registrations count under, for its
    /// SIP username: apart from web logins, so neither locks the other out.
    pub fn sip_username(&self, username: &str) -> FailureKey {
        FailureKey(privacy::keyed_hash(&self.0, &format!("su:{username}")))
    }

    /// The key failed registrations from a client address count under.
    pub fn sip_address(&self, ip: &str) -> FailureKey {
        FailureKey(privacy::keyed_hash(&self.0, &format!("si:{ip}")))
    }
}

/// What failed logins are counted under: a keyed hash, never a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureKey(String);

impl FailureKey {
    /// The hash as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The failed logins remembered under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures in a row, each within the window of the one before.
    pub count: u32,
    /// When the latest was recorded.
    pub last: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    key_hash: String,
    failures: i64,
    last_failure: DateTime<Utc>,
}

impl Row {
    fn failures(&self) -> LoginFailures {
        LoginFailures {
            count: u32::try_from(self.failures).unwrap_or(u32::MAX),
            last: self.last_failure,
        }
    }
}

impl Store {
    /// Returns the throttle's secret, made at random by the first node that
    /// asks and read back by every other.
    pub async fn login_secret(&self, now: DateTime<Utc>) -> Result<LoginSecret, StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING"
        )
        .bind(SECRET_NAME)
        .bind(privacy::new_account_key())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        let secret: String = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT secret FROM server_secrets WHERE name = $1"
        )
        .bind(SECRET_NAME)
        .fetch_one(pool)
        .await?);
        Ok(LoginSecret(secret))
    }

    /// Counts one failed login under each key and returns the counts after
    /// it, in the keys' order. A key whose last failure was before
    /// `forget_before` starts again from one.
    pub async fn record_login_failure(
        &self,
        keys: &[&FailureKey],
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<Vec<LoginFailures>, StoreError> {
        let mut distinct: Vec<&FailureKey> = keys.to_vec();
        distinct.sort();
        distinct.dedup();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let n = distinct.len();
        let values: Vec<String> = (1..=n).map(|i| format!("(${i}, 1, ${})", n + 1)).collect();
        // The later of the two times is kept, so a node whose clock is
        // behind never moves a failure back.
        let sql = format!(
            "INSERT INTO login_failures (key_hash, failures, last_failure) VALUES {} \
             ON CONFLICT (key_hash) DO UPDATE SET \
               failures = CASE WHEN login_failures.last_failure < ${forget} THEN 1 \
                               ELSE login_failures.failures + 1 END, \
               last_failure = CASE WHEN login_failures.last_failure > excluded.last_failure \
                                   THEN login_failures.last_failure \
                                   ELSE excluded.last_failure END \
             RETURNING key_hash, failures, last_failure",
            values.join(", "),
            forget = n + 2,
        );
        let rows: Vec<Row> = on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql);
            for key in &distinct {
                q = q.bind(key.as_str());
            }
            q.bind(now).bind(forget_before).fetch_all(pool).await?
        });
        let by_key: HashMap<&str, LoginFailures> = rows
            .iter()
            .map(|r| (r.key_hash.as_str(), r.failures()))
            .collect();
        keys.iter()
            .map(|k| {
                // RETURNING gives every row the statement wrote.
                by_key.get(k.as_str()).copied().ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Protocol(
                        "a failed login's count was not returned".to_owned(),
                    ))
                })
            })
            .collect()
    }

    /// Returns the failures remembered under those of the keys that have
    /// any, however old.
    pub async fn login_failures(
        &self,
        keys: &[&FailureKey],
    ) -> Result<Vec<LoginFailures>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT key_hash, failures, last_failure FROM login_failures WHERE key_hash IN ({})",
            placeholders.join(", ")
        );
        let rows: Vec<Row> = on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql);
            for key in keys {
                q = q.bind(key.as_str());
            }
            q.fetch_all(pool).await?
        });
        Ok(rows.iter().map(Row::failures).collect())
    }

    /// Forgets the failures under a key (a username that logged in).
    pub async fn clear_login_failures(&self, key: &FailureKey) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM login_failures WHERE key_hash = $1"
        )
        .bind(key.as_str())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Deletes the counts whose last failure was before `before` (the
    /// throttle has forgotten them) and returns how many.
    pub async fn purge_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM login_failures WHERE last_failure < $1"
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n)
    }

    /// Counts the rows of the throttle's table, for tests and metrics.
    pub async fn login_failure_rows(&self) -> Result<i64, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_failures"
        )
        .fetch_one(pool)
        .await?);
        Ok(n)
    }
}
