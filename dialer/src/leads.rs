//! The dialler's lead source over the Store: claims leases, writes call
//! attempts and the facts compliance rests on, schedules retries by the
//! campaign's rules, and reads the campaign's figures from every node.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use crm::model::{AccountId, CampaignId, UserId};
use crm::store::leads::outcome_name;
use crm::store::nodes::Holder;
use crm::{Store, StoreError};
use dialer_core::compliance::Counts;
use dialer_core::pacer::AgentId;
use sip_gateway::gateway::CallRef;
use vocab::Clock;

use crate::floor::{agent_id, user_id};
use crate::retry::RetryPolicy;
use crate::runner::{CallOutcome, Lead, LeadSource, RunnerError};

/// One campaign's leads, as one node of the service dials them.
#[derive(Clone)]
pub struct StoreLeads {
    store: Store,
    account: AccountId,
    campaign: CampaignId,
    holder: Holder,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
}

/// How long a lead lease lasts unless renewed. The node's heartbeat renews
/// the leases it holds ([`crm::Store::beat`]), so a long conversation
/// keeps its lead; a dead node's leads are given back by the survivor that
/// declares it dead, well before this.
pub const LEASE: TimeDelta = TimeDelta::minutes(30);

impl StoreLeads {
    /// Creates the lead source of a campaign for the node `holder`,
    /// reading the time from `clock`.
    pub fn new(
        store: Store,
        account: AccountId,
        campaign: CampaignId,
        holder: Holder,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        StoreLeads {
            store,
            account,
            campaign,
            holder,
            clock,
            policy,
        }
    }
}

fn failed(e: StoreError) -> RunnerError {
    RunnerError::Leads(e.to_string())
}

impl LeadSource for StoreLeads {
    async fn claim(&self, n: usize, agents: &[AgentId]) -> Result<Vec<Lead>, RunnerError> {
        let users: Vec<UserId> = agents.iter().map(|&a| user_id(a)).collect();
        let claimed = self
            .store
            .claim_leads_for(
                self.account,
                self.campaign,
                &self.holder,
                n,
                self.clock.now(),
                LEASE,
                &users,
            )
            .await
            .map_err(failed)?;
        Ok(claimed
            .into_iter()
            .map(|c| Lead {
                id: c.id,
                contact_id: c.contact_id,
                number: c.phone_e164,
                owner: c.reserved_for.map(agent_id),
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
                &self.holder,
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
        // An attempt a survivor already closed stays as it closed it; the
        // lead's write below is then refused too, as this node was fenced.
        let ended = self
            .store
            .mark_ended(self.account, attempt.id, name, at)
            .await;
        let lead_written = match outcome {
            CallOutcome::Unconnected(o) => self
                .store
                .record_held_outcome(&self.holder, self.account, lead.id, o, at, &self.policy)
                .await
                .map(|_| ()),
            CallOutcome::Conversation { .. } => self
                .store
                .record_held_conversation(&self.holder, self.account, lead.id, at)
                .await
                .map(|_| ()),
        };
        ended.map_err(failed)?;
        lead_written.map_err(failed)
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
            .release_lead(self.account, lead.id, &self.holder, self.clock.now())
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
