//! Retention: each account's recordings, interactions and agents' state
//! history older than its set number of days are purged by a scheduled job.

use chrono::{DateTime, TimeDelta, Utc};

use super::{on_pool, Store};
use crate::model::{AccountId, Actor};
use crate::StoreError;

/// What one purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Interactions (with their notes) deleted.
    pub interactions: u64,
    /// Recording rows deleted.
    pub recordings: u64,
    /// Recording files deleted from disk.
    pub files: u64,
    /// Agents' past states (Ready, Paused with a code, …) deleted. Each
    /// agent's latest state is kept, since it says what they are doing now.
    pub agent_states: u64,
}

impl Store {
    /// Sets how many days an account keeps recordings, interactions and
    /// agents' state history; `None` keeps them (a contact's until erased).
    pub async fn set_retention(
        &self,
        account: AccountId,
        days: Option<i64>,
    ) -> Result<(), StoreError> {
        if days.is_some_and(|d| !(1..=36_500).contains(&d)) {
            return Err(StoreError::Invalid(
                "retention_days must be between 1 and 36500, or null to keep".into(),
            ));
        }
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE accounts SET retention_days = $1 WHERE id = $2"
        )
        .bind(days)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Returns an account's retention in days, if set.
    pub async fn retention(&self, account: AccountId) -> Result<Option<i64>, StoreError> {
        let days: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT retention_days FROM accounts WHERE id = $1"
        )
        .bind(account.0)
        .fetch_one(pool)
        .await?);
        Ok(days)
    }

    /// Purges what every account keeps past its retention, logging each
    /// purge that removed something in the account's audit log.
    pub async fn purge_retained(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(AccountId, PurgeReport)>, StoreError> {
        let accounts: Vec<(AccountId, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT id, retention_days FROM accounts WHERE retention_days IS NOT NULL ORDER BY id"
        )
        .fetch_all(pool)
        .await?
        });
        let mut out = Vec::new();
        for (account, days) in accounts {
            let cutoff = now - TimeDelta::days(days);
            let report = self.purge_before(account, cutoff).await?;
            if report != PurgeReport::default() {
                let actor = Actor {
                    account_id: Some(account),
                    ..Actor::default()
                };
                let target = format!(
                    "interactions:{} recordings:{} files:{} agent_states:{}",
                    report.interactions, report.recordings, report.files, report.agent_states
                );
                self.audit(&actor, "retention.purge", Some(&target), now)
                    .await?;
            }
            out.push((account, report));
        }
        Ok(out)
    }

    async fn purge_before(
        &self,
        account: AccountId,
        cutoff: DateTime<Utc>,
    ) -> Result<PurgeReport, StoreError> {
        let paths: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "DELETE FROM recordings WHERE account_id = $1 AND created_at < $2 RETURNING path"
        )
        .bind(account.0)
        .bind(cutoff)
        .fetch_all(pool)
        .await?);
        let interactions = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM interactions WHERE account_id = $1 AND occurred_at < $2"
        )
        .bind(account.0)
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected());
        // Staff data too: who was paused, with which code, when.
        let agent_states = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM agent_states WHERE account_id = $1 AND started_at < $2 \
             AND started_at < (SELECT MAX(t.started_at) FROM agent_states t \
             WHERE t.account_id = agent_states.account_id AND t.user_id = agent_states.user_id)"
        )
        .bind(account.0)
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected());
        let mut files = 0;
        for path in &paths {
            match std::fs::remove_file(path) {
                Ok(()) => files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "a purged recording could not be deleted"),
            }
        }
        Ok(PurgeReport {
            interactions,
            recordings: paths.len() as u64,
            files,
            agent_states,
        })
    }
}
