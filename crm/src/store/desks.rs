//! Where each agent's desk stands, kept in the database so that the node an
//! agent's page reconnects to, after the agent's node died, carries on
//! from there: a call cut by the death is still to be wrapped up.

use chrono::{DateTime, Utc};
use vocab::CallRef;

use super::{on_pool, Store};
use crate::model::{AccountId, CampaignId, UserId};
use crate::StoreError;

/// An agent's desk as kept: what another node needs to carry on.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeptDesk {
    /// The campaign joined last.
    pub campaign_id: Option<CampaignId>,
    /// `paused`, `ready`, `in_call` or `wrap_up`.
    pub phase: String,
    /// The call in progress or wrapped up.
    pub call_ref: Option<CallRef>,
    /// The pause code chosen, when paused.
    pub pause_code: Option<String>,
    /// The node that serves (or last served) the desk.
    pub node: String,
}

impl Store {
    /// Keeps where the agent's desk stands, as its node serves it.
    pub async fn keep_desk(
        &self,
        account: AccountId,
        user: UserId,
        desk: &KeptDesk,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO agent_desks (user_id, account_id, campaign_id, phase, call_ref, \
             pause_code, node, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = $1 AND account_id = $2) \
             ON CONFLICT (user_id) DO UPDATE SET campaign_id = excluded.campaign_id, \
             phase = excluded.phase, call_ref = excluded.call_ref, \
             pause_code = excluded.pause_code, node = excluded.node, \
             updated_at = excluded.updated_at"
        )
        .bind(user.0)
        .bind(account.0)
        .bind(desk.campaign_id.map(|c| c.0))
        .bind(&desk.phase)
        .bind(desk.call_ref)
        .bind(&desk.pause_code)
        .bind(&desk.node)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Returns where the agent's desk stood when last kept, by any node.
    pub async fn kept_desk(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Option<KeptDesk>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT campaign_id, phase, call_ref, pause_code, node FROM agent_desks \
             WHERE user_id = $1 AND account_id = $2"
        )
        .bind(user.0)
        .bind(account.0)
        .fetch_optional(pool)
        .await?))
    }
}
