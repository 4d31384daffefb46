//! Aggregate-only accounts: per-contact tracking kept as daily counts.
//!
//! An account may choose that who did what to which contact (a view of a
//! contact card, a subject access export, a disposition's audit entry) is
//! not stored beyond the call record itself. [`Store::audit`] checks the
//! setting on every write, so no caller has to remember it: an entry whose
//! target names a contact becomes one more in the day's count of its
//! action, with no user, no target and no client address.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{on_pool, Store};
use crate::model::AccountId;
use crate::StoreError;

/// Target prefixes of audit entries that track one contact: the contact
/// itself, or a row that leads to one (a call reference leads to its
/// attempt: listening in, pausing a recording).
const CONTACT_TARGETS: [&str; 6] = [
    "contact:",
    "attempt:",
    "call:",
    "lead:",
    "recording:",
    "interaction:",
];

/// How many times an action was done on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ActionCount {
    /// The UTC day.
    pub day: NaiveDate,
    /// The action, as the audit log would name it (for example `contact.view`).
    pub action: String,
    /// How many times it was done that day.
    pub count: i64,
}

/// Returns whether an audit target names a contact, directly or through a
/// call attempt, lead, recording or interaction.
pub fn names_a_contact(target: Option<&str>) -> bool {
    target.is_some_and(|t| CONTACT_TARGETS.iter().any(|p| t.starts_with(p)))
}

impl Store {
    /// Returns whether the account keeps per-contact tracking as counts only.
    pub async fn aggregate_only(&self, account: AccountId) -> Result<bool, StoreError> {
        let on: Option<bool> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT aggregate_only FROM accounts WHERE id = $1"
        )
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        on.ok_or(StoreError::NotFound)
    }

    /// Turns aggregate-only mode on or off for the account. It governs what
    /// is written from now on; entries already in the audit log stay.
    pub async fn set_aggregate_only(&self, account: AccountId, on: bool) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE accounts SET aggregate_only = $1 WHERE id = $2"
        )
        .bind(on)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Returns the account's daily action counts from `since` on (all of
    /// them without it), newest day first, then by action.
    pub async fn action_counts(
        &self,
        account: AccountId,
        since: Option<NaiveDate>,
    ) -> Result<Vec<ActionCount>, StoreError> {
        // Stored days sort as text, and every one sorts after this.
        let since = since.map_or_else(|| "0000-01-01".to_owned(), day_of);
        let rows: Vec<(String, String, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT day, action, count FROM audit_counts \
             WHERE account_id = $1 AND day >= $2 ORDER BY day DESC, action"
        )
        .bind(account.0)
        .bind(since)
        .fetch_all(pool)
        .await?);
        rows.into_iter()
            .map(|(day, action, count)| {
                let day = day
                    .parse()
                    .map_err(|_| StoreError::Invalid(format!("a stored day {day:?}")))?;
                Ok(ActionCount { day, action, count })
            })
            .collect()
    }

    /// Adds one to the day's count of an action.
    pub(super) async fn count_action(
        &self,
        account: AccountId,
        action: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO audit_counts (account_id, day, action, count) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (account_id, day, action) DO UPDATE SET count = audit_counts.count + 1"
        )
        .bind(account.0)
        .bind(day_of(now.date_naive()))
        .bind(action)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}

/// Writes a day as stored: `YYYY-MM-DD`, which sorts as the days do.
fn day_of(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::names_a_contact;

    #[test]
    fn targets_that_lead_to_a_contact_are_recognised() {
        for t in [
            "contact:7",
            "attempt:3",
            "call:8c1f09a2",
            "lead:9",
            "recording:1",
            "interaction:2",
        ] {
            assert!(names_a_contact(Some(t)), "{t}");
        }
        for t in [
            "campaign:7",
            "list:3",
            "user:4",
            "days:30",
            "entries:10",
            "contacts:1",
        ] {
            assert!(!names_a_contact(Some(t)), "{t}");
        }
        assert!(!names_a_contact(None));
    }
}
