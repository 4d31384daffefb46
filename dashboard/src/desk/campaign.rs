//! The agent's place in a campaign on the floor: joining it as Ready, and
//! the preview choices passed to its runner.

use crm::store::campaign_settings::DialMode;
use dialer::pacer::AgentState;
use dialer::runner::AgentUpdate;
use dialer_core::desk::{self, Input};
use sip_gateway::gateway::CallRef;

use super::protocol::ServerMessage;
use super::session::{error, Session};

impl Session {
    /// Joins a campaign as Ready, after leaving `leave`: the agent must be
    /// assigned to it and have an audio leg (or a desk phone rung per call).
    pub(super) async fn join(
        &self,
        campaign: desk::CampaignId,
        leave: Option<desk::CampaignId>,
    ) -> Result<Input<CallRef>, ServerMessage> {
        let (account, user) = (self.user.account_id, self.user.id);
        let store = &self.state.store;
        let joining = campaign;
        let assigned = store
            .is_assigned(account, joining, user)
            .await
            .unwrap_or(false);
        if !assigned {
            return Err(error("you are not assigned to that campaign".into()));
        }
        // Without a leg, the agent's desk phone rung per call is their audio.
        let leg = self.state.legs.get(user);
        if leg.is_none() && self.floor.rung_phone(user).is_none() {
            return Err(error("connect your audio before going ready".into()));
        }
        if let Some(old) = leave {
            let _ = self
                .floor
                .agent(account, old, user, AgentState::LoggedOut, None)
                .await;
        }
        let joined = self
            .floor
            .agent(account, joining, user, AgentState::Ready, leg)
            .await;
        if joined.is_err() {
            return Err(error("that campaign is not dialling".into()));
        }
        let preview = store
            .campaign_settings(account, joining)
            .await
            .is_ok_and(|s| s.mode == DialMode::Preview);
        Ok(Input::Joined { campaign, preview })
    }

    /// Passes the agent's preview choice to the campaign's runner.
    pub(super) async fn preview(
        &self,
        campaign: desk::CampaignId,
        updates: Vec<AgentUpdate>,
    ) -> Result<(), ServerMessage> {
        for update in updates {
            if self
                .floor
                .update(self.user.account_id, campaign, update)
                .await
                .is_err()
            {
                return Err(error("that campaign is not dialling".into()));
            }
        }
        Ok(())
    }
}
