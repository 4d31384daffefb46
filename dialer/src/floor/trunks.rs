//! Raises an alert when a running campaign is left with no trunk to dial
//! through, and when it has one again.

use std::sync::Arc;

use crm::events::Event;
use sip_gateway::gateway::TrunkStatus;
use tokio::sync::broadcast::error::RecvError;

use super::Floor;

impl Floor {
    /// Follows the trunks' health until the gateway stops: every change is
    /// checked against the running campaigns, and each account whose
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
            self.alert_campaigns(&changed, &trunks).await;
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
