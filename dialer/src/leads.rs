//! The dialler's lead source over the Store: claims leases, writes call
//! attempts and the facts compliance rests on, schedules retries by the
//! campaign's rules, and reads the campaign's figures from every node.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use crm::model::{AccountId, CampaignId};
use crm::store::leads::outcome_name;
use crm::{Store, StoreError};
use dialer_core::compliance::Counts;
use sip_gateway::gateway::CallRef;
use vocab::Clock;

use crate::retry::RetryPolicy;
use crate::runner::{CallOutcome, Lead, LeadSource, RunnerError};

/// One campaign's leads, as one node of the service dials them.
#[derive(Clone)]
pub struct StoreLeads {
    store: Store,
    account: AccountId,
    campaign: CampaignId,
    node: Arc<str>,
    clock: Arc<dyn Clock>,
    lease: TimeDelta,
    policy: RetryPolicy,
}

impl StoreLeads {
    /// Creates the lead source of a campaign for the node named `node`,
    /// reading the time from `clock`.
    pub fn new(
        store: Store,
        account: AccountId,
        campaign: CampaignId,
        node: &str,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        StoreLeads {
            store,
            account,
            campaign,
            node: node.into(),
            clock,
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
                self.clock.now(),
                self.lease,
            )
            .await
            .map_err(failed)?;
        Ok(claimed
            .into_iter()
            .map(|c| Lead {
                id: c.id,
                contact_id: c.contact_id,
                number: c.phone_e164,
            })
            .collect())
    }

    async fn placed(&self, lead: &Lead, call: CallRef) -> Result<(), RunnerError> {
        self.store
            .open_attempt(
                self.account,
                call,
                self.campaign,
                lead.contact_id,
                &self.node,
                self.clock.now(),
            )
            .await
            .map_err(failed)
    }

    async fn answered(&self, call: CallRef, at: DateTime<Utc>) -> Result<(), RunnerError> {
        self.store
            .mark_call_answered(self.account, call, at)
            .await
            .map_err(failed)
    }

    async fn connected(&self, call: CallRef, at: DateTime<Utc>) -> Result<(), RunnerError> {
        self.store
            .mark_connected(self.account, call, at)
            .await
            .map_err(failed)
    }

    async fn abandoned(&self, call: CallRef, at: DateTime<Utc>) -> Result<(), RunnerError> {
        self.store
            .mark_abandoned(self.account, call, at)
            .await
            .map_err(failed)
    }

    async fn finished(
        &self,
        lead: &Lead,
        call: CallRef,
        outcome: CallOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), RunnerError> {
        let attempt = self
            .store
            .attempt_by_ref(self.account, call)
            .await
            .map_err(failed)?;
        let name = match outcome {
            CallOutcome::Unconnected(o) => outcome_name(o),
            CallOutcome::Conversation { .. } => "answered",
        };
        self.store
            .mark_ended(self.account, attempt.id, name, at)
            .await
            .map_err(failed)?;
        match outcome {
            CallOutcome::Unconnected(o) => self
                .store
                .record_outcome(self.account, lead.id, o, at, &self.policy)
                .await
                .map(|_| ())
                .map_err(failed),
            CallOutcome::Conversation { .. } => self
                .store
                .record_conversation(self.account, lead.id, at)
                .await
                .map(|_| ())
                .map_err(failed),
        }
    }

    async fn recorded(
        &self,
        lead: &Lead,
        call: CallRef,
        path: &std::path::Path,
    ) -> Result<(), RunnerError> {
        let attempt = self
            .store
            .attempt_by_ref(self.account, call)
            .await
            .map_err(failed)?;
        let recording = crm::store::erasure::NewRecording {
            attempt_id: Some(attempt.id),
            call_ref: Some(call),
            contact_id: Some(lead.contact_id),
            path: path.to_path_buf(),
        };
        self.store
            .add_recording(self.account, &recording, self.clock.now())
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn release(&self, lead: &Lead) -> Result<(), RunnerError> {
        self.store
            .release_lead(self.account, lead.id, &self.node, self.clock.now())
            .await
            .map_err(failed)
    }

    async fn figures(&self, now: DateTime<Utc>) -> Result<(Counts, Counts), RunnerError> {
        let counts = self
            .store
            .compliance_counts(self.campaign, now)
            .await
            .map_err(failed)?;
        Ok((counts.day, counts.month))
    }
}
