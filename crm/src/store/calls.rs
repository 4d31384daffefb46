//! Call attempts and interactions.

use chrono::{DateTime, Utc};

use super::webhooks::enqueue_webhooks;
use super::{on_pool, Store};
use crate::model::{
    AccountId, AttemptId, CallAttempt, CampaignId, ContactId, Interaction, InteractionId,
    NewInteraction,
};
use crate::webhooks::{CallFacts, Occurrence};
use crate::StoreError;
use vocab::CallRef;

pub(super) const ATTEMPT_COLUMNS: &str =
    "id, account_id, call_ref, campaign_id, contact_id, started_at, \
     answered_at, ended_at, outcome, direction";
const INTERACTION_COLUMNS: &str =
    "id, account_id, contact_id, user_id, attempt_id, kind, disposition, notes, occurred_at";

impl Store {
    /// Records a call being placed under an opaque call reference.
    pub async fn create_attempt(
        &self,
        account: AccountId,
        call_ref: CallRef,
        campaign: Option<CampaignId>,
        contact: Option<ContactId>,
        now: DateTime<Utc>,
    ) -> Result<CallAttempt, StoreError> {
        if let Some(c) = contact {
            // A foreign contact id must not be linkable into this account.
            self.contact(account, c).await?;
        }
        if let Some(c) = campaign {
            self.campaign(account, c).await?;
        }
        let sql = format!(
            "INSERT INTO call_attempts (account_id, call_ref, campaign_id, contact_id, started_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {ATTEMPT_COLUMNS}"
        );
        let row: CallAttempt = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(call_ref)
            .bind(campaign.map(|c| c.0))
            .bind(contact.map(|c| c.0))
            .bind(now)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }

    /// Returns the attempt with this call reference.
    pub async fn attempt_by_ref(
        &self,
        account: AccountId,
        call_ref: CallRef,
    ) -> Result<CallAttempt, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE call_ref = $1 AND account_id = $2"
        );
        let row: CallAttempt = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(call_ref)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }

    /// Returns the node that placed a call of the account, if it is open
    /// and a node placed it.
    pub async fn open_call_node(
        &self,
        account: AccountId,
        call_ref: CallRef,
    ) -> Result<Option<String>, StoreError> {
        let node: Option<Option<String>> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT node FROM call_attempts WHERE call_ref = $1 AND account_id = $2 \
             AND ended_at IS NULL"
        )
        .bind(call_ref)
        .bind(account.0)
        .fetch_optional(pool)
        .await?);
        Ok(node.flatten())
    }

    /// Marks an attempt answered.
    pub async fn mark_answered(
        &self,
        account: AccountId,
        id: AttemptId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE call_attempts SET answered_at = $1 WHERE id = $2 AND account_id = $3"
        )
        .bind(at)
        .bind(id.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Marks an attempt ended with its outcome, and queues its `call.ended`
    /// webhooks in the same transaction. An attempt already closed (by a
    /// survivor that recovered its node) is left as it is: `NotFound`.
    pub async fn mark_ended(
        &self,
        account: AccountId,
        id: AttemptId,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE call_attempts SET ended_at = $1, outcome = $2 WHERE id = $3 AND account_id = $4 \
             AND ended_at IS NULL RETURNING {ATTEMPT_COLUMNS}"
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let attempt: CallAttempt = sqlx::query_as(&sql)
                .bind(at)
                .bind(outcome)
                .bind(id.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let ended = Occurrence::call_ended(&CallFacts::of(&attempt), outcome, at);
            enqueue_webhooks!(&mut *tx, account, &ended)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Returns a contact's attempts, oldest first.
    pub async fn attempts_for_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<CallAttempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE contact_id = $1 AND account_id = $2 \
             ORDER BY started_at, id"
        );
        let rows: Vec<CallAttempt> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(contact.0)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }

    /// Records an interaction with a contact of the account; one with a
    /// disposition queues its `disposition.saved` webhooks in the same
    /// transaction.
    pub async fn record_interaction(
        &self,
        account: AccountId,
        new: &NewInteraction,
        now: DateTime<Utc>,
    ) -> Result<Interaction, StoreError> {
        self.contact(account, new.contact_id).await?;
        let sql = format!(
            "INSERT INTO interactions (account_id, contact_id, user_id, attempt_id, kind, \
             disposition, notes, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {INTERACTION_COLUMNS}"
        );
        let attempt_sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE id = $1 AND account_id = $2"
        );
        let row: Interaction = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row: Interaction = sqlx::query_as(&sql)
                .bind(account.0)
                .bind(new.contact_id.0)
                .bind(new.user_id.map(|u| u.0))
                .bind(new.attempt_id.map(|a| a.0))
                .bind(&new.kind)
                .bind(&new.disposition)
                .bind(&new.notes)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if let Some(disposition) = &row.disposition {
                let attempt: Option<CallAttempt> = match row.attempt_id {
                    Some(a) => {
                        sqlx::query_as(&attempt_sql)
                            .bind(a.0)
                            .bind(account.0)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                    None => None,
                };
                let saved = Occurrence::disposition_saved(
                    row.id,
                    new.contact_id,
                    row.user_id,
                    disposition,
                    attempt.as_ref().map(CallFacts::of).as_ref(),
                    now,
                );
                enqueue_webhooks!(&mut *tx, account, &saved)?;
            }
            tx.commit().await?;
            row
        });
        Ok(row)
    }

    /// Returns a contact's interactions, oldest first.
    pub async fn interactions_for_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<Interaction>, StoreError> {
        let sql = format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions \
             WHERE contact_id = $1 AND account_id = $2 ORDER BY occurred_at, id"
        );
        let rows: Vec<Interaction> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(contact.0)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }

    /// Returns one interaction of the account.
    pub async fn interaction(
        &self,
        account: AccountId,
        id: InteractionId,
    ) -> Result<Interaction, StoreError> {
        let sql = format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id = $1 AND account_id = $2"
        );
        let row: Interaction = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }
}
