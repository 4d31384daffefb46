//! The audit log: who did what, to what, from where.

use chrono::{DateTime, Utc};

use super::{aggregate, on_pool, Store};
use crate::model::{AccountId, Actor, AuditEntry};
use crate::StoreError;

impl Store {
    /// Writes one audit entry.
    ///
    /// An entry whose target names a contact (`contact:{id}`, or an
    /// `attempt:`, `lead:`, `recording:` or `interaction:` that leads to
    /// one) is only counted, per day and action, when the actor's account
    /// is aggregate-only; see [`super::aggregate`].
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.audit_detail(actor, action, target, None, now).await
    }

    /// Writes one audit entry with a detail: what the action touched, by
    /// name only (the fields an edit changed), never a contact's values.
    pub async fn audit_detail(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(account) = actor.account_id {
            if aggregate::names_a_contact(target) && self.aggregate_only(account).await? {
                return self.count_action(account, action, now).await;
            }
        }
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO audit_log (account_id, user_id, action, target, ip, user_agent, \
             detail, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(actor.account_id.map(|a| a.0))
        .bind(actor.user_id.map(|u| u.0))
        .bind(action)
        .bind(target)
        .bind(&actor.ip)
        .bind(&actor.user_agent)
        .bind(detail)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Returns the account's most recent audit entries, newest first.
    pub async fn audit_entries(
        &self,
        account: AccountId,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditEntry> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT account_id, user_id, action, target, ip, user_agent, detail, occurred_at \
             FROM audit_log WHERE account_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2"
        )
        .bind(account.0)
        .bind(limit.clamp(0, 10_000))
        .fetch_all(pool)
        .await?);
        Ok(rows)
    }
}
