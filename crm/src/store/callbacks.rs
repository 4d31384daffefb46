//! The callbacks booked on an account's leads that are still to be made,
//! for an agent's own list and a supervisor's view of everyone's.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId, ContactId, LeadId, UserId};
use crate::StoreError;

/// The most callbacks one listing returns.
pub const MAX_UPCOMING: usize = 500;

/// A callback booked and not yet made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpcomingCallback {
    /// The lead to call back.
    pub lead_id: LeadId,
    /// Its campaign.
    pub campaign_id: CampaignId,
    /// The campaign's name.
    pub campaign_name: String,
    /// The contact to call.
    pub contact_id: ContactId,
    /// The contact's first and last name.
    pub contact_name: String,
    /// When the contact asked to be called.
    pub callback_at: DateTime<Utc>,
    /// The agent it is booked for, or `None` for anyone.
    pub user_id: Option<UserId>,
    /// That agent's username.
    pub username: Option<String>,
}

impl Store {
    /// Returns the account's callbacks still to be made, soonest first
    /// (those already due included): those booked for `user` when given,
    /// or every one of the account; at most `limit`, capped at
    /// [`MAX_UPCOMING`].
    pub async fn upcoming_callbacks(
        &self,
        account: AccountId,
        user: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<UpcomingCallback>, StoreError> {
        let limit = limit.min(MAX_UPCOMING) as i64;
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT l.id AS lead_id, l.campaign_id, cp.name AS campaign_name, \
             l.contact_id, TRIM(c.first_name || ' ' || c.last_name) AS contact_name, \
             l.callback_at, l.callback_user_id AS user_id, u.username \
             FROM leads l \
             JOIN campaigns cp ON cp.id = l.campaign_id AND cp.account_id = l.account_id \
             JOIN contacts c ON c.id = l.contact_id AND c.account_id = l.account_id \
             LEFT JOIN users u ON u.id = l.callback_user_id AND u.account_id = l.account_id \
             WHERE l.account_id = $1 AND l.callback_at IS NOT NULL AND l.state <> 'done' \
             AND ($2 = 0 OR l.callback_user_id = $3) \
             ORDER BY l.callback_at, l.id LIMIT $4"
        )
        .bind(account.0)
        .bind(i64::from(user.is_some()))
        .bind(user.map(|u| u.0))
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }
}
