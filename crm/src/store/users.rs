//! Users and their credentials.

use chrono::{DateTime, Utc};

use super::{on_pool, Store};
use crate::model::{AccountId, Role, User, UserId};
use crate::StoreError;

const USER_COLUMNS: &str = "id, account_id, username, role, active, created_at";

impl Store {
    /// Creates a user in an account with an already hashed password.
    pub async fn create_user(
        &self,
        account: AccountId,
        username: &str,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let username = valid_username(username)?;
        let sql = format!(
            "INSERT INTO users (account_id, username, password_hash, role, active, created_at) \
             VALUES ($1, $2, $3, $4, TRUE, $5) RETURNING {USER_COLUMNS}"
        );
        let row: User = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("username {username:?} is taken"))
                }
                other => other,
            })?);
        Ok(row)
    }

    /// Returns a user of the account.
    pub async fn user(&self, account: AccountId, id: UserId) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND account_id = $2");
        let row: User = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }

    /// Returns the account's users, by username.
    pub async fn users(&self, account: AccountId) -> Result<Vec<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 ORDER BY username");
        let rows: Vec<User> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }

    /// Returns a user and their password hash by username, for login.
    pub async fn credentials(&self, username: &str) -> Result<Option<(User, String)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: User,
            password_hash: String,
        }
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1");
        let row: Option<Row> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(pool)
            .await?);
        match row {
            Some(r) => Ok(Some((r.user, r.password_hash))),
            None => Ok(None),
        }
    }

    /// Activates or deactivates a user; deactivating ends their sessions.
    pub async fn set_user_active(
        &self,
        account: AccountId,
        id: UserId,
        active: bool,
    ) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE users SET active = $1 WHERE id = $2 AND account_id = $3"
        )
        .bind(active)
        .bind(id.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        if !active {
            self.delete_user_sessions(id).await?;
        }
        Ok(())
    }

    /// Replaces a user's password hash.
    pub async fn set_password_hash(
        &self,
        account: AccountId,
        id: UserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND account_id = $3"
        )
        .bind(password_hash)
        .bind(id.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

/// Returns the trimmed username, or why it cannot be one.
pub(super) fn valid_username(username: &str) -> Result<&str, StoreError> {
    let username = username.trim();
    if username.is_empty() || username.len() > 64 || username.chars().any(char::is_whitespace) {
        return Err(StoreError::Invalid(
            "a username is 1 to 64 characters without spaces".into(),
        ));
    }
    Ok(username)
}
