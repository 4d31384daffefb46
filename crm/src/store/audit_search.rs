//! Reading the audit log back, filtered, for admins.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{on_pool, Store};
use crate::model::{AccountId, AuditEntry, UserId};
use crate::StoreError;

/// The most entries one search returns.
pub const MAX_AUDIT_ENTRIES: i64 = 100_000;

/// Which audit entries to return; every field left empty matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuditFilter {
    /// Only this action, matched exactly (for example `contact.erase`).
    pub action: Option<String>,
    /// Only what this user did.
    pub user_id: Option<UserId>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many entries, newest first.
    pub limit: Option<i64>,
}

impl Store {
    /// Returns the account's audit entries that match the filter, newest first.
    pub async fn search_audit(
        &self,
        account: AccountId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT account_id, user_id, action, target, ip, user_agent, detail, occurred_at \
             FROM audit_log WHERE account_id = $1",
        );
        let mut n = 1;
        let mut clause = |condition: &str| {
            n += 1;
            sql.push_str(&format!(" AND {condition} ${n}"));
        };
        if filter.action.is_some() {
            clause("action =");
        }
        if filter.user_id.is_some() {
            clause("user_id =");
        }
        if filter.since.is_some() {
            clause("occurred_at >=");
        }
        if filter.until.is_some() {
            clause("occurred_at <");
        }
        sql.push_str(&format!(
            " ORDER BY occurred_at DESC, id DESC LIMIT ${}",
            n + 1
        ));
        let limit = filter.limit.unwrap_or(1000).clamp(0, MAX_AUDIT_ENTRIES);
        let rows: Vec<AuditEntry> = on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql).bind(account.0);
            if let Some(action) = &filter.action {
                q = q.bind(action);
            }
            if let Some(user) = filter.user_id {
                q = q.bind(user.0);
            }
            if let Some(since) = filter.since {
                q = q.bind(since);
            }
            if let Some(until) = filter.until {
                q = q.bind(until);
            }
            q.bind(limit).fetch_all(pool).await?
        });
        Ok(rows)
    }
}
