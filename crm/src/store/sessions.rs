//! Server-side login sessions and the licence-seat limit.

use chrono::{DateTime, Utc};

use super::{on_pool, Pool, Store};
use crate::model::{AccountId, Role, Session, UserId};
use crate::StoreError;

/// A session to open for a user who has just proved their password.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// The SHA-256 of the session token; the token itself is never stored.
    pub token_hash: &'a str,
    /// The user logging in.
    pub user_id: UserId,
    /// The user's account.
    pub account_id: AccountId,
    /// The user's role: agents take a licence seat.
    pub role: Role,
    /// When the session starts.
    pub now: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Opens a session; an agent's login fails with [`StoreError::SeatLimit`]
    /// when every seat of the account is taken by another logged-in agent.
    ///
    /// The seat count and the insert are one statement, and on PostgreSQL the
    /// account row is locked first, so two agents racing for the last seat
    /// cannot both get it.
    pub async fn create_session(&self, s: NewSession<'_>) -> Result<(), StoreError> {
        if s.role != Role::Agent {
            on_pool!(self, |pool| sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, account_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)"
            )
            .bind(s.token_hash)
            .bind(s.user_id.0)
            .bind(s.account_id.0)
            .bind(s.now)
            .bind(s.expires_at)
            .execute(pool)
            .await?
            .rows_affected());
            return Ok(());
        }
        const SEATED_INSERT: &str =
            "INSERT INTO sessions (token_hash, user_id, account_id, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COUNT(DISTINCT s.user_id) FROM sessions s \
                    JOIN users u ON u.id = s.user_id \
                    WHERE s.account_id = $3 AND u.role = 'agent' \
                      AND s.expires_at > $4 AND s.user_id <> $2) \
                 < (SELECT seats FROM accounts WHERE id = $3)";
        let inserted = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(SEATED_INSERT)
                .bind(s.token_hash)
                .bind(s.user_id.0)
                .bind(s.account_id.0)
                .bind(s.now)
                .bind(s.expires_at)
                .execute(pool)
                .await?
                .rows_affected(),
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
                    .bind(s.account_id.0)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(SEATED_INSERT)
                    .bind(s.token_hash)
                    .bind(s.user_id.0)
                    .bind(s.account_id.0)
                    .bind(s.now)
                    .bind(s.expires_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n
            }
        };
        if inserted == 0 {
            let seats = self.account(s.account_id).await?.seats;
            return Err(StoreError::SeatLimit { seats });
        }
        Ok(())
    }

    /// Returns the live session for a token hash, with its active user.
    pub async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: crate::model::User,
            expires_at: DateTime<Utc>,
        }
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT u.id, u.account_id, u.username, u.role, u.active, u.created_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active = TRUE"
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?
        });
        match row {
            Some(r) => Ok(Some(Session {
                user: r.user,
                expires_at: r.expires_at,
            })),
            None => Ok(None),
        }
    }

    /// Ends one session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE token_hash = $1"
        )
        .bind(token_hash)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Ends every session of a user (logout everywhere, deactivation).
    pub async fn delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1"
        )
        .bind(user.0)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n)
    }

    /// Deletes expired sessions and returns how many.
    pub async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE expires_at <= $1"
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n)
    }

    /// Counts the agents of an account with a live session.
    pub async fn logged_in_agents(
        &self,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT COUNT(DISTINCT s.user_id) FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.account_id = $1 AND u.role = 'agent' AND s.expires_at > $2"
        )
        .bind(account.0)
        .bind(now)
        .fetch_one(pool)
        .await?
        });
        Ok(n)
    }

    /// Counts live sessions across all accounts, for the metrics endpoint.
    pub async fn live_sessions(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE expires_at > $1"
        )
        .bind(now)
        .fetch_one(pool)
        .await?);
        Ok(n)
    }
}
