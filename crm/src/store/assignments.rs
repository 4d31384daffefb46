//! Which agents work which campaign.
//!
//! An agent is offered, and may read, only the contacts that are leads of
//! the campaigns they are assigned to. A new campaign has nobody assigned;
//! supervisors and admins are never assigned, since they see the whole
//! account anyway.

use std::collections::BTreeSet;

use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId, ContactId, Role, UserId};
use crate::StoreError;

impl Store {
    /// Replaces the set of agents assigned to a campaign.
    ///
    /// Refuses, changing nothing, a user who is not in the account or whose
    /// role is not agent. A campaign of another account is
    /// [`StoreError::NotFound`].
    pub async fn assign_agents(
        &self,
        account: AccountId,
        campaign: CampaignId,
        users: &[UserId],
    ) -> Result<(), StoreError> {
        self.require_campaign(account, campaign).await?;
        let users: BTreeSet<UserId> = users.iter().copied().collect();
        for &id in &users {
            match self.user(account, id).await {
                Ok(user) if user.role == Role::Agent => {}
                Ok(user) => {
                    return Err(StoreError::Invalid(format!(
                        "user {id} is a {}; only agents are assigned to campaigns",
                        user.role
                    )))
                }
                // Another account's user reads exactly like a missing one.
                Err(StoreError::NotFound) => {
                    return Err(StoreError::Invalid(format!(
                        "user {id} is not a user of this account"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM campaign_agents WHERE campaign_id = $1 AND account_id = $2")
                .bind(campaign.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
            for id in &users {
                // The user's account and role are checked again inside the
                // transaction, so a concurrent change cannot slip one in.
                let n = sqlx::query(
                    "INSERT INTO campaign_agents (campaign_id, user_id, account_id) \
                     SELECT $1, id, account_id FROM users \
                     WHERE id = $2 AND account_id = $3 AND role = 'agent'",
                )
                .bind(campaign.0)
                .bind(id.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::Invalid(format!(
                        "user {id} is not an agent of this account"
                    )));
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Returns the agents assigned to a campaign, by id.
    ///
    /// A campaign of another account is [`StoreError::NotFound`].
    pub async fn campaign_agents(
        &self,
        account: AccountId,
        campaign: CampaignId,
    ) -> Result<Vec<UserId>, StoreError> {
        self.require_campaign(account, campaign).await?;
        let ids: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT user_id FROM campaign_agents WHERE campaign_id = $1 AND account_id = $2 \
             ORDER BY user_id"
        )
        .bind(campaign.0)
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(UserId).collect())
    }

    /// Returns whether the user is assigned to the campaign in this account;
    /// false for anything of another account.
    pub async fn is_assigned(
        &self,
        account: AccountId,
        campaign: CampaignId,
        user: UserId,
    ) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_agents \
             WHERE campaign_id = $1 AND user_id = $2 AND account_id = $3"
        )
        .bind(campaign.0)
        .bind(user.0)
        .bind(account.0)
        .fetch_one(pool)
        .await?);
        Ok(n > 0)
    }

    /// Returns the campaigns of the account the user is assigned to, by id.
    pub async fn agent_campaigns(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<CampaignId>, StoreError> {
        let ids: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT campaign_id FROM campaign_agents WHERE user_id = $1 AND account_id = $2 \
             ORDER BY campaign_id"
        )
        .bind(user.0)
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(CampaignId).collect())
    }

    /// Returns whether the contact is a lead of a campaign the user is
    /// assigned to: what lets an agent read a contact.
    pub async fn is_contact_of_agent(
        &self,
        account: AccountId,
        user: UserId,
        contact: ContactId,
    ) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM leads l \
             JOIN campaign_agents a ON a.campaign_id = l.campaign_id \
             WHERE l.account_id = $1 AND a.account_id = $1 AND a.user_id = $2 \
               AND l.contact_id = $3"
        )
        .bind(account.0)
        .bind(user.0)
        .bind(contact.0)
        .fetch_one(pool)
        .await?);
        Ok(n > 0)
    }

    /// Returns whether the user has a callback booked with the contact:
    /// one of the two things that let an agent edit a contact.
    pub async fn is_callback_of_agent(
        &self,
        account: AccountId,
        user: UserId,
        contact: ContactId,
    ) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM leads WHERE account_id = $1 AND callback_user_id = $2 \
               AND contact_id = $3 AND callback_at IS NOT NULL"
        )
        .bind(account.0)
        .bind(user.0)
        .bind(contact.0)
        .fetch_one(pool)
        .await?);
        Ok(n > 0)
    }

    async fn require_campaign(
        &self,
        account: AccountId,
        campaign: CampaignId,
    ) -> Result<(), StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaigns WHERE id = $1 AND account_id = $2"
        )
        .bind(campaign.0)
        .bind(account.0)
        .fetch_one(pool)
        .await?);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
