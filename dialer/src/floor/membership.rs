//! The node's membership of the service: its heartbeat, which renews its
//! leases; what it does when it finds itself fenced; and the recovery of
//! nodes whose heart stopped.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use crm::events::Event;
use crm::store::compliance::Recovery;
use crm::store::nodes::Beat;
use crm::StoreError;
use vocab::{AgentState, CallPhase};

use super::Floor;

/// How often a node beats its heart, and how long a silence means death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// Between two heartbeats.
    pub every: Duration,
    /// A node silent this long is declared dead by a survivor.
    pub timeout: Duration,
}

impl Default for Membership {
    /// A beat every 2 s; 10 s of silence is death: a dead node's calls are
    /// closed and its leads given back within about 12 s.
    fn default() -> Self {
        Membership {
            every: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Membership {
    /// A membership declaring death after `timeout`, beating five times
    /// within it (at least every 100 ms, at most every 2 s).
    pub fn with_timeout(timeout: Duration) -> Self {
        Membership {
            every: (timeout / 5).clamp(Duration::from_millis(100), Duration::from_secs(2)),
            timeout,
        }
    }

    /// The timeout as a time difference.
    pub fn timeout_delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.timeout).unwrap_or(TimeDelta::seconds(10))
    }
}

/// The cause wallboards show for a call whose node died.
pub const NODE_LOST: &str = "node_lost";

impl Floor {
    /// Beats this node's heart every `membership.every` until the task is
    /// dropped, recovering the nodes that died.
    pub async fn keep_membership(self: Arc<Self>, membership: Membership) {
        let mut tick = tokio::time::interval(membership.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.membership_round(&membership).await {
                tracing::warn!(error = %e, "a heartbeat failed");
            }
        }
    }

    /// One heartbeat: renews this node's leases (or joins again if it was
    /// fenced), then declares dead the nodes silent past the timeout and
    /// closes what they left open.
    pub async fn membership_round(&self, membership: &Membership) -> Result<(), StoreError> {
        let beat = self
            .store
            .beat(&self.holder(), self.clock.now(), crate::leads::LEASE)
            .await?;
        if beat == Beat::Fenced {
            self.rejoin(membership).await?;
        }
        let holder = self.holder();
        let dead = self
            .store
            .declare_dead(&holder, self.clock.now(), membership.timeout_delta())
            .await?;
        for name in dead {
            let Some(row) = self.store.node(&name).await? else {
                continue;
            };
            if row.state != "down" {
                // It came back between the declaration and now.
                continue;
            }
            let recovery = self
                .store
                .recover_node_before(&name, row.epoch, self.clock.now())
                .await?;
            tracing::warn!(
                node = %name,
                by = %holder.name(),
                abandoned = recovery.abandoned,
                interrupted = recovery.interrupted,
                leads = recovery.leads,
                agents = recovery.agents,
                "a node stopped beating: closed what it left open"
            );
            self.store.node_recovered(&name, self.clock.now()).await?;
            self.announce_recovery(&recovery);
        }
        Ok(())
    }

    /// Joins again after finding this node fenced: another node declared it
    /// dead (its heart was silent too long: a pause, a partition) and closed
    /// its calls, so it hangs them up, takes a new epoch and dials again.
    async fn rejoin(&self, membership: &Membership) -> Result<(), StoreError> {
        tracing::error!(
            node = %self.node,
            "this node was declared dead by another after a silence: its calls were \
             closed there; hanging them up and joining again"
        );
        self.shutdown().await;
        self.recover(membership).await?;
        self.resume().await?;
        Ok(())
    }

    /// Tells the wallboards what a recovery closed: the calls end, the
    /// agents are logged out.
    pub(super) fn announce_recovery(&self, recovery: &Recovery) {
        let at = self.clock.now();
        for call in &recovery.calls {
            self.bus.publish(Event::CallState {
                account: call.account,
                call_ref: call.call_ref,
                campaign_id: call.campaign_id,
                state: CallPhase::Ended,
                agent: None,
                cause: Some(NODE_LOST.into()),
                at,
            });
        }
        for agent in &recovery.logged_out {
            self.bus.publish(Event::AgentState {
                account: agent.account_id,
                user_id: agent.user_id,
                username: agent.username.clone(),
                state: AgentState::LoggedOut,
                pause_code: None,
                at,
            });
        }
    }
}
