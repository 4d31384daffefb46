//! Shows the trunks on every account's wallboard, and raises an alert when
//! a running campaign is left with no trunk to dial through, and when it
//! has one again.

use std::sync::Arc;

use crm::model::AccountId;

use crm::events::Event;
use sip_gateway::gateway::TrunkStatus;
use tokio::sync::broadcast::error::RecvError;

use super::Floor;

impl Floor {
    /// Follows the trunks' health until the gateway stops: every change is
    /// shown on every account's wallboard and checked against the running
    /// campaigns, and each account whose
    /// campaign has no trunk left that is up (its own and those it fails
    /// over to) gets an alert, and another when one is back.
    pub async fn watch_trunks(self: Arc<Self>) {
        let mut changes = self.gateway.trunk_events();
        loop {
            let changed = match changes.recv().await {
                Ok(status) => status,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let Ok(trunks) = self.gateway.trunks().await else {
                return;
            };
            let accounts = self.accounts().await;
            self.show_trunks(std::slice::from_ref(&changed), &accounts);
            self.alert_campaigns(&changed, &trunks).await;
        }
    }

    /// Tells every account's wallboard the state of each of this node's
    /// trunks: with the stream shared between nodes, this is how the
    /// others learn them.
    pub async fn announce_trunks(&self) {
        if let Ok(trunks) = self.gateway.trunks().await {
            let accounts = self.accounts().await;
            self.show_trunks(&trunks, &accounts);
        }
    }

    async fn accounts(&self) -> Vec<AccountId> {
        match self.store.accounts().await {
            Ok(a) => a.into_iter().map(|a| a.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing accounts for the trunks' tiles failed");
                Vec::new()
            }
        }
    }

    /// Tells the wallboards of `accounts` the state of `trunks`.
    fn show_trunks(&self, trunks: &[TrunkStatus], accounts: &[AccountId]) {
        let at = self.clock.now();
        for account in accounts {
            for t in trunks {
                self.bus.publish(Event::TrunkState {
                    account: *account,
                    node: self.node.clone(),
                    trunk: t.name.clone(),
                    up: t.up,
                    at,
                });
            }
        }
    }

    async fn alert_campaigns(&self, changed: &TrunkStatus, trunks: &[TrunkStatus]) {
        let campaigns: Vec<_> = {
            let running = self.running.lock().await;
            running
                .iter()
                .map(|(c, r)| (*c, r.account, r.trunk.clone()))
                .collect()
        };
        for (campaign, account, trunk) in campaigns {
            let Some(start) = trunks.iter().position(|t| t.name == trunk) else {
                continue;
            };
            // Only campaigns whose chain the changed trunk belongs to.
            if !trunks[start..].iter().any(|t| t.name == changed.name) {
                continue;
            }
            let left = trunks[start..].iter().filter(|t| t.up).count();
            let name = self
                .store
                .campaign(account, campaign)
                .await
                .map(|c| c.name)
                .unwrap_or_else(|_| campaign.to_string());
            let (alert, message) = match (changed.up, left) {
                (false, 0) => (
                    "trunk.down",
                    format!(
                        "trunk {} is down: campaign {name} has no trunk left to dial through",
                        changed.name
                    ),
                ),
                (true, 1) => (
                    "trunk.up",
                    format!("trunk {} is up: campaign {name} dials again", changed.name),
                ),
                _ => continue,
            };
            tracing::warn!(%campaign, trunk = %changed.name, alert, "campaign trunks");
            self.bus.publish(Event::Alert {
                account,
                alert: alert.into(),
                message,
                at: self.clock.now(),
            });
        }
    }
}
