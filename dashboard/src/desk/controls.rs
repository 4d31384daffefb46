//! What an agent does to the call in progress — hold, digits, pausing the
//! recording — and the numbers they dial by hand.

use std::str::FromStr;

use chrono::TimeDelta;
use crm::events::AgentState as Shown;
use dialer::pacer::AgentState;
use dialer::runner::{AgentUpdate, Lead};
use sip_gateway::gateway::CallRef;

use crm::model::Actor;
use crm::store::softphone::international_number;

use super::protocol::ServerMessage;
use super::session::{error, Controls, Phase, Recording, Session};
use crate::auth::publish_agent_state;
use dialer::floor::agent_id;

/// How long a lead dialled by hand stays leased to this node.
const MANUAL_LEASE_MINUTES: i64 = 30;

impl Session {
    /// The agent, as the audit log names them.
    fn actor(&self) -> Actor {
        Actor {
            account_id: Some(self.user.account_id),
            user_id: Some(self.user.id),
            ip: None,
            user_agent: None,
        }
    }

    /// The call in progress, as the gateway knows it.
    fn live_call(&self) -> Result<CallRef, ServerMessage> {
        match &self.phase {
            Phase::InCall(call) => {
                CallRef::from_str(call).map_err(|_| error("the call is not known".into()))
            }
            _ => Err(error("there is no call in progress".into())),
        }
    }

    pub(super) async fn hold(&mut self, on: bool) -> Vec<ServerMessage> {
        let (call, Some(floor)) = (self.live_call(), self.state.floor.clone()) else {
            return vec![error("audio is not available on this server".into())];
        };
        let call = match call {
            Ok(call) => call,
            Err(e) => return vec![e],
        };
        if let Err(e) = floor.gateway().hold(call, on).await {
            tracing::warn!(%call, error = %e, "hold failed");
            return vec![error("the call could not be put on or off hold".into())];
        }
        self.controls.held = on;
        vec![self.controls_message(&call.to_string())]
    }

    pub(super) async fn dtmf(&mut self, digits: &str) -> Vec<ServerMessage> {
        let (call, Some(floor)) = (self.live_call(), self.state.floor.clone()) else {
            return vec![error("audio is not available on this server".into())];
        };
        let call = match call {
            Ok(call) => call,
            Err(e) => return vec![e],
        };
        let valid = !digits.is_empty()
            && digits.len() <= 32
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b"*#ABCD".contains(&b));
        if !valid {
            return vec![error("send 1 to 32 digits from 0-9, *, # and A-D".into())];
        }
        if self.controls.held {
            return vec![error("take the call off hold to send digits".into())];
        }
        match floor.gateway().send_dtmf(call, digits).await {
            Ok(()) => Vec::new(),
            Err(e) => {
                tracing::warn!(%call, error = %e, "sending digits failed");
                vec![error("the digits could not be sent".into())]
            }
        }
    }

    pub(super) async fn recording(&mut self, paused: bool) -> Vec<ServerMessage> {
        let (call, Some(floor)) = (self.live_call(), self.state.floor.clone()) else {
            return vec![error("audio is not available on this server".into())];
        };
        let call = match call {
            Ok(call) => call,
            Err(e) => return vec![e],
        };
        if self.controls.recording == Recording::Off {
            return vec![error("this call is not being recorded".into())];
        }
        let done = if paused {
            floor.gateway().pause_recording(call).await
        } else {
            floor.gateway().resume_recording(call).await
        };
        if let Err(e) = done {
            tracing::warn!(%call, error = %e, "changing the recording failed");
            return vec![error("the recording could not be changed".into())];
        }
        self.controls.recording = if paused {
            Recording::Paused
        } else {
            Recording::On
        };
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
        vec![self.controls_message(&call.to_string())]
    }

    /// Whether a call connected now is recorded: the campaign records and
    /// this node has somewhere to put recordings.
    pub(super) async fn recorded_from_start(&self) -> Recording {
        let (Some(floor), Some(campaign)) = (self.state.floor.as_ref(), self.campaign) else {
            return Recording::Off;
        };
        let records = self
            .state
            .store
            .campaign_settings(self.user.account_id, campaign)
            .await
            .is_ok_and(|s| s.record_calls);
        if records && floor.records_calls() {
            Recording::On
        } else {
            Recording::Off
        }
    }

    pub(super) fn controls_message(&self, call_ref: &str) -> ServerMessage {
        let Controls { held, recording } = self.controls;
        ServerMessage::CallControls {
            call_ref: call_ref.to_owned(),
            held,
            recording: recording.as_str(),
        }
    }

    /// Checks a number and, when nothing forbids it, has the campaign dial it
    /// for this agent, who is Paused meanwhile so no other call reaches them.
    pub(super) async fn manual_dial(&mut self, number: &str, confirm: bool) -> Vec<ServerMessage> {
        let (Some(floor), Some(campaign)) = (self.state.floor.clone(), self.campaign) else {
            return vec![error(
                "join a campaign first: go Ready once, then Pause to dial by hand".into(),
            )];
        };
        if !matches!(self.phase, Phase::Paused | Phase::Ready) {
            return vec![error("finish the call in progress first".into())];
        }
        if self.state.legs.get(self.user.id).is_none() {
            return vec![error("connect your audio before dialling".into())];
        }
        let Some(e164) = international_number(number) else {
            return vec![error(
                "enter the number in international form, e.g. +44 20 7946 0000".into(),
            )];
        };
        let store = &self.state.store;
        let account = self.user.account_id;
        // Calling hours and leases follow the wall clock, as the dialler's do.
        let now = self.state.clock.now();
        let check = match store.check_manual_dial(account, campaign, &e164, now).await {
            Ok(check) => check,
            Err(e) => return vec![error(e.to_string())],
        };
        if check.suppressed || check.in_progress {
            let warning = if check.suppressed {
                "the number is on the do-not-call list and may not be dialled"
            } else {
                "this contact is being called right now"
            };
            return vec![ServerMessage::DialCheck {
                number: e164,
                warnings: vec![warning.to_owned()],
                may_confirm: false,
            }];
        }
        if let Some(local) = &check.outside_hours {
            if !confirm {
                return vec![ServerMessage::DialCheck {
                    number: e164,
                    warnings: vec![format!(
                        "outside the campaign's calling hours: it is {local} where this contact is"
                    )],
                    may_confirm: true,
                }];
            }
            let target = format!("campaign:{campaign}");
            if let Err(e) = store
                .audit(
                    &self.actor(),
                    "call.manual_outside_hours",
                    Some(&target),
                    now,
                )
                .await
            {
                return vec![error(e.to_string())];
            }
        }
        let lease = TimeDelta::minutes(MANUAL_LEASE_MINUTES);
        let lead = match store
            .lease_manual_lead(account, campaign, &e164, floor.node(), now, lease)
            .await
        {
            Ok(lead) => lead,
            Err(e) => return vec![error(e.to_string())],
        };
        if self.phase == Phase::Ready {
            self.tell_floor(AgentState::Paused).await;
        }
        let update = AgentUpdate::ManualDial {
            agent: agent_id(self.user.id),
            lead: Lead {
                id: lead.id.0,
                contact_id: lead.contact_id.0,
                number: lead.phone_e164,
            },
        };
        if floor.update(account, campaign, update).await.is_err() {
            let _ = store
                .release_lead(account, lead.id, floor.node(), now)
                .await;
            return vec![error("that campaign is not dialling".into())];
        }
        self.phase = Phase::Dialling {
            call: None,
            number: e164,
        };
        publish_agent_state(&self.state, &self.user, Shown::Paused, Some("manual"));
        vec![self.state_message(Some("manual".into()))]
    }

    /// Whether an ended call of this agent's is one that never reached them:
    /// a manual dial, or a preview call (the agent stays Ready meanwhile).
    pub(super) fn dialling(&self, call_ref: &str) -> bool {
        match &self.phase {
            Phase::Dialling { call, .. } => call.as_deref().is_none_or(|c| c == call_ref),
            Phase::Ready => true,
            _ => false,
        }
    }

    /// A call placed for this agent ended unconnected: a manual dial leaves
    /// them Paused, a preview shows the next contact.
    pub(super) async fn not_connected(
        &mut self,
        call_ref: Option<String>,
        cause: Option<String>,
    ) -> Vec<ServerMessage> {
        let mut out = vec![ServerMessage::NotConnected { call_ref, cause }];
        match self.phase {
            Phase::Dialling { .. } => {
                self.phase = Phase::Paused;
                publish_agent_state(&self.state, &self.user, Shown::Paused, Some("manual"));
                out.push(self.state_message(Some("manual".into())));
            }
            Phase::Ready => {
                if let (Some(floor), Some(campaign)) = (self.state.floor.clone(), self.campaign) {
                    let next = AgentUpdate::PreviewNext {
                        agent: agent_id(self.user.id),
                    };
                    let _ = floor.update(self.user.account_id, campaign, next).await;
                }
            }
            _ => {}
        }
        out
    }
}
