//! Agent seats: an account holds at most as many active agents as it has
//! licence seats, so adding or reactivating an agent needs a free one.
//!
//! The count and the write are one statement, and on PostgreSQL the account
//! row is locked first, so two supervisors cannot both take the last seat.

use chrono::{DateTime, Utc};

use super::users::valid_username;
use super::{on_pool, Pool, Store};
use crate::model::{AccountId, Role, User, UserId};
use crate::StoreError;

/// Active agents of account `$1` fewer than its seats.
const SEAT_FREE: &str = "(SELECT COUNT(*) FROM users WHERE account_id = $1 AND role = 'agent' \
     AND active = TRUE) < (SELECT seats FROM accounts WHERE id = $1)";

impl Store {
    /// Creates a user as [`Store::create_user`] does; an agent only while
    /// the account has a free seat, else [`StoreError::Refused`] saying so.
    pub async fn add_user_within_seats(
        &self,
        account: AccountId,
        username: &str,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        if role != Role::Agent {
            return self
                .create_user(account, username, password_hash, role, now)
                .await;
        }
        let username = valid_username(username)?;
        let sql = format!(
            "INSERT INTO users (account_id, username, password_hash, role, active, created_at) \
             SELECT $1, $2, $3, 'agent', TRUE, $4 WHERE {SEAT_FREE} \
             RETURNING id, account_id, username, role, active, created_at"
        );
        let taken = |e: sqlx::Error| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("username {username:?} is taken"))
            }
            other => other,
        };
        let row: Option<User> = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_as(&sql)
                .bind(account.0)
                .bind(username)
                .bind(password_hash)
                .bind(now)
                .fetch_optional(pool)
                .await
                .map_err(taken)?,
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                lock_account(&mut tx, account).await?;
                let row = sqlx::query_as(&sql)
                    .bind(account.0)
                    .bind(username)
                    .bind(password_hash)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(taken)?;
                tx.commit().await?;
                row
            }
        };
        match row {
            Some(row) => Ok(row),
            None => Err(self.seats_full(account).await),
        }
    }

    /// Activates or deactivates a user as [`Store::set_user_active`] does;
    /// reactivating an agent needs a free seat, else [`StoreError::Refused`].
    pub async fn set_user_active_within_seats(
        &self,
        account: AccountId,
        id: UserId,
        active: bool,
    ) -> Result<(), StoreError> {
        let user = self.user(account, id).await?;
        if !active || user.active || user.role != Role::Agent {
            return self.set_user_active(account, id, active).await;
        }
        let sql = format!(
            "UPDATE users SET active = TRUE WHERE id = $2 AND account_id = $1 AND {SEAT_FREE}"
        );
        let done = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(&sql)
                .bind(account.0)
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected(),
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                lock_account(&mut tx, account).await?;
                let n = sqlx::query(&sql)
                    .bind(account.0)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n
            }
        };
        if done == 0 {
            return Err(self.seats_full(account).await);
        }
        Ok(())
    }

    /// Returns how many active agents the account holds.
    pub async fn active_agents(&self, account: AccountId) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE account_id = $1 AND role = 'agent' AND active = TRUE"
        )
        .bind(account.0)
        .fetch_one(pool)
        .await?))
    }

    async fn seats_full(&self, account: AccountId) -> StoreError {
        match self.account(account).await {
            Ok(a) => StoreError::Refused(format!(
                "licence seat limit reached: the account has {} agent seats and as many active \
                 agents; deactivate an agent or add seats first",
                a.seats
            )),
            Err(e) => e,
        }
    }
}

async fn lock_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    account: AccountId,
) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(account.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
