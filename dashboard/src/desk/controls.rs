//! What the desk asks of the call in progress — hold, digits, pausing the
//! recording — and of the numbers the agent dials by hand.

use chrono::TimeDelta;
use dialer::pacer::AgentState;
use dialer::runner::{AgentUpdate, Lead};
use dialer_core::desk::Input;
use sip_gateway::gateway::CallRef;

use crm::model::{Actor, CampaignId};
use crm::store::softphone::international_number;

use super::protocol::ServerMessage;
use super::session::{error, Session};

/// How long a lead dialled by hand stays leased to this node.
const MANUAL_LEASE_MINUTES: i64 = 30;

impl Session {
    /// Puts the call on hold or takes it off.
    pub(super) async fn hold(
        &self,
        call: CallRef,
        on: bool,
    ) -> Result<Input<CallRef>, ServerMessage> {
        if let Err(e) = self.floor.gateway().hold(call, on).await {
            tracing::warn!(%call, error = %e, "hold failed");
            return Err(error("the call could not be put on or off hold".into()));
        }
        Ok(Input::Held { call, on })
    }

    /// Sends digits the desk checked to the far end.
    pub(super) async fn send_digits(
        &self,
        call: CallRef,
        digits: &str,
    ) -> Result<(), ServerMessage> {
        self.floor
            .gateway()
            .send_dtmf(call, digits)
            .await
            .map_err(|e| {
                tracing::warn!(%call, error = %e, "sending digits failed");
                error("the digits could not be sent".into())
            })
    }

    /// Pauses or resumes the call's recording, and audits it.
    pub(super) async fn set_recording(
        &self,
        call: CallRef,
        paused: bool,
    ) -> Result<Input<CallRef>, ServerMessage> {
        let gateway = self.floor.gateway();
        let done = if paused {
            gateway.pause_recording(call).await
        } else {
            gateway.resume_recording(call).await
        };
        if let Err(e) = done {
            tracing::warn!(%call, error = %e, "changing the recording failed");
            return Err(error("the recording could not be changed".into()));
        }
        let action = if paused {
            "call.recording_paused"
        } else {
            "call.recording_resumed"
        };
        let target = format!("call:{call}");
        let now = self.state.clock.now();
        if let Err(e) = self
            .state
            .store
            .audit(&self.actor(), action, Some(&target), now)
            .await
        {
            tracing::warn!(error = %e, "auditing a recording change failed");
        }
        Ok(Input::RecordingChanged { call, paused })
    }

    /// Has the campaign leave its voicemail message on the call's machine;
    /// the desk hears back through the dialler's report of the call.
    pub(super) async fn leave_message(
        &self,
        campaign: CampaignId,
        call: CallRef,
    ) -> Result<(), ServerMessage> {
        let account = self.user.account_id;
        let placed = self.state.store.attempt_by_ref(account, call).await;
        let ours =
            placed.is_ok_and(|a| a.direction == "outbound" && a.campaign_id == Some(campaign));
        if !ours {
            return Err(error(
                "only a call the campaign placed can be left a voicemail message".into(),
            ));
        }
        if !self.leaves_voicemail(campaign).await {
            return Err(error("this campaign has no voicemail message".into()));
        }
        let agent = self.agent();
        let update = AgentUpdate::LeaveMessage { agent };
        self.floor
            .update(account, campaign, update)
            .await
            .map_err(|_| error("the campaign is not dialling on this server".into()))
    }

    /// Whether the campaign has a voicemail message to leave.
    pub(super) async fn leaves_voicemail(&self, campaign: CampaignId) -> bool {
        self.state
            .store
            .campaign_settings(self.user.account_id, campaign)
            .await
            .is_ok_and(|s| s.voicemail_message_path.is_some())
    }

    /// Whether a call connected now is recorded: the campaign records and
    /// this node has somewhere to put recordings.
    pub(super) async fn recorded_from_start(&self) -> bool {
        let Some(campaign) = self.desk.campaign() else {
            return false;
        };
        let records = self
            .state
            .store
            .campaign_settings(self.user.account_id, campaign)
            .await
            .is_ok_and(|s| s.record_calls);
        records && self.floor.records_calls()
    }

    /// Checks a number and, when nothing forbids it, has the campaign dial it
    /// for this agent; a Ready agent is paused on the floor first, so no
    /// other call reaches them.
    pub(super) async fn place_manual_dial(
        &self,
        campaign: CampaignId,
        number: &str,
        confirm: bool,
        pause_first: bool,
    ) -> Result<Input<CallRef>, ServerMessage> {
        if self.state.legs.get(self.user.id).is_none() {
            return Err(error("connect your audio before dialling".into()));
        }
        let Some(e164) = international_number(number) else {
            return Err(error(
                "enter the number in international form, e.g. +44 20 7946 0000".into(),
            ));
        };
        let store = &self.state.store;
        let account = self.user.account_id;
        // Calling hours and leases follow the wall clock, as the dialler's do.
        let now = self.state.clock.now();
        let check = store
            .check_manual_dial(account, campaign, &e164, now)
            .await
            .map_err(|e| error(e.to_string()))?;
        if check.suppressed || check.in_progress {
            let warning = if check.suppressed {
                "the number is on the do-not-call list and may not be dialled"
            } else {
                "this contact is being called right now"
            };
            return Err(ServerMessage::DialCheck {
                number: e164,
                warnings: vec![warning.to_owned()],
                may_confirm: false,
            });
        }
        if let Some(local) = &check.outside_hours {
            if !confirm {
                return Err(ServerMessage::DialCheck {
                    number: e164,
                    warnings: vec![format!(
                        "outside the campaign's calling hours: it is {local} where this contact is"
                    )],
                    may_confirm: true,
                });
            }
            let target = format!("campaign:{campaign}");
            store
                .audit(
                    &self.actor(),
                    "call.manual_outside_hours",
                    Some(&target),
                    now,
                )
                .await
                .map_err(|e| error(e.to_string()))?;
        }
        let floor = &self.floor;
        let lease = TimeDelta::minutes(MANUAL_LEASE_MINUTES);
        let lead = store
            .lease_manual_lead(account, campaign, &e164, floor.holder(), now, lease)
            .await
            .map_err(|e| error(e.to_string()))?;
        if pause_first {
            self.tell_floor(campaign, AgentState::Paused).await;
        }
        let update = AgentUpdate::ManualDial {
            agent: self.agent(),
            lead: Lead {
                id: lead.id,
                contact_id: lead.contact_id,
                number: lead.phone_e164,
                owner: None,
            },
        };
        if floor.update(account, campaign, update).await.is_err() {
            let _ = store
                .release_lead(account, lead.id, floor.holder(), now)
                .await;
            return Err(error("that campaign is not dialling".into()));
        }
        Ok(Input::ManualDialPlaced { number: e164 })
    }

    /// The agent, as the audit log names them.
    fn actor(&self) -> Actor {
        Actor {
            account_id: Some(self.user.account_id),
            user_id: Some(self.user.id),
            ip: None,
            user_agent: None,
        }
    }
}
