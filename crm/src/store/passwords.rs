//! Changing a password, with the last five never reused.

use chrono::{DateTime, Utc};

use super::{on_pool, Store};
use crate::model::{AccountId, UserId};
use crate::{password, StoreError};

/// How many earlier passwords a new one may not repeat.
pub const PASSWORD_HISTORY: usize = 5;

impl Store {
    /// Replaces a user's password after checking the policy and that it is
    /// neither the current one nor one of the last five; the old hash goes
    /// into the history and every session of the user ends.
    pub async fn change_password(
        &self,
        account: AccountId,
        user: UserId,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        password::check_policy(new_password).map_err(StoreError::Invalid)?;
        let username = self.user(account, user).await?.username;
        let current = self
            .credentials(&username)
            .await?
            .map(|(_, hash)| hash)
            .ok_or(StoreError::NotFound)?;
        let earlier: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT password_hash FROM password_history WHERE user_id = $1 \
             ORDER BY replaced_at DESC, id DESC LIMIT $2"
        )
        .bind(user.0)
        .bind(PASSWORD_HISTORY as i64 - 1)
        .fetch_all(pool)
        .await?);
        let candidate = new_password.to_owned();
        let hashes: Vec<String> = std::iter::once(current.clone()).chain(earlier).collect();
        // Each check is a deliberately slow hash: keep it off the runtime.
        let (reused, hash) = tokio::task::spawn_blocking(move || {
            let reused = hashes.iter().any(|h| password::verify(&candidate, h));
            (reused, password::hash(&candidate))
        })
        .await
        .map_err(|_| StoreError::Password)?;
        if reused {
            return Err(StoreError::Invalid(format!(
                "the new password must differ from the last {PASSWORD_HISTORY}"
            )));
        }
        let hash = hash?;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO password_history (user_id, password_hash, replaced_at) \
             VALUES ($1, $2, $3)"
        )
        .bind(user.0)
        .bind(&current)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.set_password_hash(account, user, &hash).await?;
        self.delete_user_sessions(user).await?;
        Ok(())
    }
}
