//! Accounts: the tenants.

use chrono::{DateTime, Utc};

use super::{on_pool, Store};
use crate::model::{Account, AccountId};
use crate::{privacy, StoreError};

impl Store {
    /// Creates an account with a number of agent licence seats.
    pub async fn create_account(
        &self,
        name: &str,
        seats: i64,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("an account needs a name".into()));
        }
        if seats < 0 {
            return Err(StoreError::Invalid("seats cannot be negative".into()));
        }
        let key = privacy::new_account_key();
        let row: Account = on_pool!(self, |pool| sqlx::query_as(
            "INSERT INTO accounts (name, seats, suppression_key, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id, name, seats, created_at"
        )
        .bind(name)
        .bind(seats)
        .bind(&key)
        .bind(now)
        .fetch_one(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("account {name:?} exists")),
            other => other,
        })?);
        Ok(row)
    }

    /// Returns the account of that name.
    pub async fn account_by_name(&self, name: &str) -> Result<Account, StoreError> {
        let row: Account = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, seats, created_at FROM accounts WHERE name = $1"
        )
        .bind(name)
        .fetch_one(pool)
        .await?);
        Ok(row)
    }

    /// Returns the account with that id.
    pub async fn account(&self, id: AccountId) -> Result<Account, StoreError> {
        let row: Account = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, seats, created_at FROM accounts WHERE id = $1"
        )
        .bind(id.0)
        .fetch_one(pool)
        .await?);
        Ok(row)
    }

    /// Returns every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<Account> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, seats, created_at FROM accounts ORDER BY name"
        )
        .fetch_all(pool)
        .await?);
        Ok(rows)
    }

    /// Changes how many agent seats an account has.
    pub async fn set_account_seats(&self, id: AccountId, seats: i64) -> Result<(), StoreError> {
        if seats < 0 {
            return Err(StoreError::Invalid("seats cannot be negative".into()));
        }
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE accounts SET seats = $1 WHERE id = $2"
        )
        .bind(seats)
        .bind(id.0)
        .execute(pool)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Returns the account's key for hashing suppressed numbers.
    pub(crate) async fn account_key(&self, id: AccountId) -> Result<String, StoreError> {
        let key: String = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT suppression_key FROM accounts WHERE id = $1"
        )
        .bind(id.0)
        .fetch_one(pool)
        .await?);
        Ok(key)
    }

    /// Returns whether the database holds no account yet (a first start).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts"
        )
        .fetch_one(pool)
        .await?);
        Ok(n == 0)
    }
}
