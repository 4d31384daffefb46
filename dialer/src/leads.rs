//! The dialler's lead source over the Store: claims leases, writes call
//! attempts, and schedules retries by the campaign's rules.

use std::sync::Arc;

use crate::retry::RetryPolicy;
use crate::runner::{CallOutcome, Lead, LeadSource, RunnerError};
use chrono::{TimeDelta, Utc};

use crm::model::{AccountId, CampaignId, ContactId};
use crm::store::leads::{outcome_name, LeadId};
use crm::{Store, StoreError};

/// One campaign's leads, as one node of the service dials them.
#[derive(Clone)]
pub struct StoreLeads {
    store: Store,
    account: AccountId,
    campaign: CampaignId,
    node: Arc<str>,
    lease: TimeDelta,
    policy: RetryPolicy,
}

impl StoreLeads {
    /// Creates the lead source of a campaign for the node named `node`.
    pub fn new(
        store: Store,
        account: AccountId,
        campaign: CampaignId,
        node: &str,
        policy: RetryPolicy,
    ) -> Self {
        StoreLeads {
            store,
            account,
            campaign,
            node: node.into(),
            // Long enough for a ring and a conversation; renewed while held.
            lease: TimeDelta::minutes(30),
            policy,
        }
    }
}

fn failed(e: StoreError) -> RunnerError {
    RunnerError::Leads(e.to_string())
}

impl LeadSource for StoreLeads {
    async fn claim(&self, n: usize) -> Result<Vec<Lead>, RunnerError> {
        let claimed = self
            .store
            .claim_leads(
                self.account,
                self.campaign,
                &self.node,
                n,
                Utc::now(),
                self.lease,
            )
            .await
            .map_err(failed)?;
        Ok(claimed
            .into_iter()
            .map(|c| Lead {
                id: c.id.0,
                contact_id: c.contact_id.0,
                number: c.phone_e164,
            })
            .collect())
    }

    async fn placed(&self, lead: &Lead, call_ref: &str) -> Result<(), RunnerError> {
        self.store
            .create_attempt(
                self.account,
                call_ref,
                Some(self.campaign),
                Some(ContactId(lead.contact_id)),
                Utc::now(),
            )
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn answered(&self, _lead: &Lead, call_ref: &str) -> Result<(), RunnerError> {
        let attempt = self
            .store
            .attempt_by_ref(self.account, call_ref)
            .await
            .map_err(failed)?;
        self.store
            .mark_answered(self.account, attempt.id, Utc::now())
            .await
            .map_err(failed)
    }

    async fn finished(
        &self,
        lead: &Lead,
        call_ref: &str,
        outcome: CallOutcome,
    ) -> Result<(), RunnerError> {
        let now = Utc::now();
        let attempt = self
            .store
            .attempt_by_ref(self.account, call_ref)
            .await
            .map_err(failed)?;
        let name = match outcome {
            CallOutcome::Unconnected(o) => outcome_name(o),
            CallOutcome::Conversation { .. } => "answered",
        };
        self.store
            .mark_ended(self.account, attempt.id, name, now)
            .await
            .map_err(failed)?;
        match outcome {
            CallOutcome::Unconnected(o) => self
                .store
                .record_outcome(self.account, LeadId(lead.id), o, now, &self.policy)
                .await
                .map(|_| ())
                .map_err(failed),
            CallOutcome::Conversation { .. } => self
                .store
                .record_conversation(self.account, LeadId(lead.id), now)
                .await
                .map(|_| ())
                .map_err(failed),
        }
    }

    async fn recorded(
        &self,
        lead: &Lead,
        call_ref: &str,
        path: &std::path::Path,
    ) -> Result<(), RunnerError> {
        let attempt = self
            .store
            .attempt_by_ref(self.account, call_ref)
            .await
            .map_err(failed)?;
        let recording = crm::store::erasure::NewRecording {
            attempt_id: Some(attempt.id),
            call_ref: Some(call_ref.to_owned()),
            contact_id: Some(ContactId(lead.contact_id)),
            path: path.to_path_buf(),
        };
        self.store
            .add_recording(self.account, &recording, Utc::now())
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn release(&self, lead: &Lead) -> Result<(), RunnerError> {
        self.store
            .release_lead(self.account, LeadId(lead.id), &self.node, Utc::now())
            .await
            .map_err(failed)
    }
}
