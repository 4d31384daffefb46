//! Campaigns and the lists attached to them.

use chrono::{DateTime, Utc};

use super::webhooks::enqueue_webhooks;
use super::{on_pool, Backend, Store};
use crate::model::{AccountId, Campaign, CampaignId, CampaignStatus, ListId};
use crate::webhooks::{Occurrence, WebhookEvent};
use crate::StoreError;

const CAMPAIGN_COLUMNS: &str = "id, account_id, name, caller_id, status, created_at";

impl Store {
    /// Creates a paused campaign; a caller ID is required, in E.164.
    pub async fn create_campaign(
        &self,
        account: AccountId,
        name: &str,
        caller_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a campaign needs a name".into()));
        }
        let digits = caller_id.strip_prefix('+').unwrap_or("");
        if !(2..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::Invalid(
                "caller_id must be an E.164 number: + and 2 to 15 digits".into(),
            ));
        }
        let id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
            "INSERT INTO campaigns (account_id, name, caller_id, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'paused', $4, $4) RETURNING id"
        )
        .bind(account.0)
        .bind(name)
        .bind(caller_id)
        .bind(now)
        .fetch_one(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("campaign {name:?} exists")),
            other => other,
        })?
        });
        self.campaign(account, CampaignId(id)).await
    }

    /// Returns a campaign of the account with its lists in priority order.
    pub async fn campaign(
        &self,
        account: AccountId,
        id: CampaignId,
    ) -> Result<Campaign, StoreError> {
        let sql =
            format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 AND account_id = $2");
        let mut campaign: Campaign = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        campaign.list_ids = self.campaign_list_ids(account, id).await?;
        Ok(campaign)
    }

    /// Returns the account's campaigns, by name.
    pub async fn campaigns(&self, account: AccountId) -> Result<Vec<Campaign>, StoreError> {
        let sql =
            format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE account_id = $1 ORDER BY name");
        let mut campaigns: Vec<Campaign> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        for campaign in &mut campaigns {
            campaign.list_ids = self.campaign_list_ids(account, campaign.id).await?;
        }
        Ok(campaigns)
    }

    /// Attaches a list to a campaign with a priority (lower dials first).
    pub async fn attach_list(
        &self,
        account: AccountId,
        campaign: CampaignId,
        list: ListId,
        priority: i64,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO campaign_lists (campaign_id, list_id, account_id, priority) \
             SELECT $1, $2, $3, $4 \
             WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND account_id = $3) \
               AND EXISTS (SELECT 1 FROM lists WHERE id = $2 AND account_id = $3) \
             ON CONFLICT (campaign_id, list_id) DO UPDATE SET priority = excluded.priority"
        )
        .bind(campaign.0)
        .bind(list.0)
        .bind(account.0)
        .bind(priority)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets whether a campaign is running, paused or stopped. A change to
    /// running or paused queues the `campaign.started` or `campaign.paused`
    /// webhooks in the same transaction.
    pub async fn set_campaign_status(
        &self,
        account: AccountId,
        id: CampaignId,
        status: CampaignStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let begin = match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        };
        let select =
            format!("SELECT status, name FROM campaigns WHERE id = $1 AND account_id = $2{lock}");
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let (before, name): (CampaignStatus, String) = sqlx::query_as(&select)
                .bind(id.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            sqlx::query(
                "UPDATE campaigns SET status = $1, updated_at = $2 WHERE id = $3 AND account_id = $4",
            )
            .bind(status.as_str())
            .bind(now)
            .bind(id.0)
            .bind(account.0)
            .execute(&mut *tx)
            .await?;
            let event = match status {
                CampaignStatus::Running => Some(WebhookEvent::CampaignStarted),
                CampaignStatus::Paused => Some(WebhookEvent::CampaignPaused),
                CampaignStatus::Stopped => None,
            };
            if let Some(event) = event.filter(|_| before != status) {
                let changed = Occurrence::campaign(event, id, &name, now);
                enqueue_webhooks!(&mut *tx, account, &changed)?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Starts a campaign: refused when it is stopped, has no list, or its
    /// settings break a rule; otherwise creates the leads of its lists and
    /// marks it running. Returns how many leads were new.
    pub async fn start_campaign(
        &self,
        account: AccountId,
        id: CampaignId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let campaign = self.campaign(account, id).await?;
        if campaign.status == CampaignStatus::Stopped {
            return Err(StoreError::Refused(
                "a stopped campaign cannot start".into(),
            ));
        }
        if campaign.list_ids.is_empty() {
            return Err(StoreError::Refused(
                "attach a list before starting the campaign".into(),
            ));
        }
        self.campaign_settings(account, id)
            .await?
            .validate()
            .map_err(|e| StoreError::Refused(format!("the campaign cannot start: {e}")))?;
        let new_leads = self.sync_leads(account, id, now).await?;
        self.set_campaign_status(account, id, CampaignStatus::Running, now)
            .await?;
        Ok(new_leads)
    }

    /// Returns every running campaign of every account, for a node that
    /// starts up and resumes dialling.
    pub async fn running_campaigns(&self) -> Result<Vec<(AccountId, CampaignId)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT account_id, id FROM campaigns WHERE status = 'running' ORDER BY id"
        )
        .fetch_all(pool)
        .await?))
    }

    async fn campaign_list_ids(
        &self,
        account: AccountId,
        id: CampaignId,
    ) -> Result<Vec<ListId>, StoreError> {
        let ids: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT list_id FROM campaign_lists WHERE campaign_id = $1 AND account_id = $2 \
             ORDER BY priority, list_id"
        )
        .bind(id.0)
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(ListId).collect())
    }
}
