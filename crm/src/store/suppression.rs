//! Do-not-call suppression, kept by keyed hash so it outlives erasure.

use chrono::{DateTime, Utc};

use super::{on_pool, Store};
use crate::model::{AccountId, Suppression};
use crate::{privacy, StoreError};

impl Store {
    /// Adds a number to the account's suppression list; adding it again
    /// keeps the first entry.
    pub async fn suppress(
        &self,
        account: AccountId,
        e164: &str,
        reason: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Suppression, StoreError> {
        let hash = privacy::number_hash(&self.account_key(account).await?, e164);
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO suppression (account_id, number_hash, number_e164, reason, source, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_id, number_hash) DO NOTHING"
        )
        .bind(account.0)
        .bind(&hash)
        .bind(e164)
        .bind(reason)
        .bind(source)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.suppression_by_hash(account, &hash)
            .await?
            .ok_or(StoreError::NotFound)
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
