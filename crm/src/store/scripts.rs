//! Campaigns' call scripts: one row per campaign in `campaign_scripts`.
//!
//! A script is checked against the account's fields when saved
//! ([`crate::script::Script::check`]); it is rendered for a call or a
//! preview by [`crate::script::Script::render`], outside the Store.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId};
use crate::script::{Script, Section};
use crate::StoreError;

/// A campaign's script as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CampaignScript {
    /// The campaign it belongs to.
    pub campaign_id: CampaignId,
    /// The sections; none when the campaign has no script.
    pub sections: Vec<Section>,
    /// When it was last saved; absent when never.
    pub updated_at: Option<DateTime<Utc>>,
}

impl CampaignScript {
    /// Returns the script to render.
    pub fn script(&self) -> Script {
        Script {
            sections: self.sections.clone(),
        }
    }
}

impl Store {
    /// Returns a campaign's script, empty when it has none;
    /// [`StoreError::NotFound`] when the account has no such campaign.
    pub async fn campaign_script(
        &self,
        account: AccountId,
        campaign: CampaignId,
    ) -> Result<CampaignScript, StoreError> {
        self.campaign(account, campaign).await?;
        let row: Option<(Json<Vec<Section>>, DateTime<Utc>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT sections, updated_at FROM campaign_scripts \
                 WHERE campaign_id = $1 AND account_id = $2",
            )
            .bind(campaign.0)
            .bind(account.0)
            .fetch_optional(pool)
            .await?
        });
        Ok(match row {
            Some((Json(sections), at)) => CampaignScript {
                campaign_id: campaign,
                sections,
                updated_at: Some(at),
            },
            None => CampaignScript {
                campaign_id: campaign,
                sections: Vec::new(),
                updated_at: None,
            },
        })
    }

    /// Replaces a campaign's script after checking it against the account's
    /// fields; titles are kept trimmed. A script without sections removes it.
    pub async fn set_campaign_script(
        &self,
        account: AccountId,
        campaign: CampaignId,
        script: &Script,
        now: DateTime<Utc>,
    ) -> Result<CampaignScript, StoreError> {
        self.campaign(account, campaign).await?;
        script.check(&self.fields(account).await?)?;
        if script.is_empty() {
            on_pool!(self, |pool| {
                sqlx::query(
                    "DELETE FROM campaign_scripts WHERE campaign_id = $1 AND account_id = $2",
                )
                .bind(campaign.0)
                .bind(account.0)
                .execute(pool)
                .await?;
            });
            return self.campaign_script(account, campaign).await;
        }
        let sections: Vec<Section> = script
            .sections
            .iter()
            .map(|s| Section {
                title: s.title.trim().to_owned(),
                body: s.body.replace("\r\n", "\n"),
            })
            .collect();
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO campaign_scripts (campaign_id, account_id, sections, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (campaign_id) DO UPDATE \
             SET sections = excluded.sections, updated_at = excluded.updated_at",
            )
            .bind(campaign.0)
            .bind(account.0)
            .bind(Json(&sections))
            .bind(now)
            .execute(pool)
            .await?;
        });
        self.campaign_script(account, campaign).await
    }
}
