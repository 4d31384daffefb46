//! The desk's transitions, one per input.

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    Action, AttemptStatus, CampaignId, ContactId, Controls, Desk, Disposition, LeadId, Phase,
    Recording, Refusal, Reply,
};
use crate::pacer::AgentState;

impl<C: Clone + PartialEq> Desk<C> {
    pub(super) fn push(&mut self, action: Action<C>) {
        self.actions.push_back(action);
    }

    pub(super) fn send(&mut self, reply: Reply<C>) {
        self.push(Action::Send(reply));
    }

    pub(super) fn refuse(&mut self, refusal: Refusal) {
        self.send(Reply::Refused(refusal));
    }

    pub(super) fn send_state(&mut self, reason: Option<String>) {
        self.send(Reply::State {
            state: self.phase.name(),
            campaign: self.campaign,
            reason,
        });
    }

    pub(super) fn publish(&mut self, state: AgentState, reason: Option<&str>) {
        self.push(Action::Publish {
            state,
            reason: reason.map(str::to_owned),
        });
    }

    /// Tells the runner of the campaign joined last, if any.
    pub(super) fn tell_floor(&mut self, state: AgentState) {
        if let Some(campaign) = self.campaign {
            self.push(Action::TellFloor { campaign, state });
        }
    }

    pub(super) fn ready(&mut self, campaign: CampaignId) {
        if matches!(self.phase, Phase::InCall { .. } | Phase::Dialling { .. }) {
            return self.refuse(Refusal::CallInProgress);
        }
        self.join(campaign);
    }

    pub(super) fn join(&mut self, campaign: CampaignId) {
        let leave = self.campaign.filter(|c| *c != campaign);
        self.push(Action::Join { campaign, leave });
    }

    pub(super) fn joined(&mut self, campaign: CampaignId, preview: bool) {
        // Only a call that reached the agent since the request could stand
        // in the way; it wins.
        if matches!(
            self.phase,
            Phase::InCall { .. } | Phase::Dialling { .. } | Phase::SignedOut
        ) {
            return;
        }
        self.campaign = Some(campaign);
        self.phase = Phase::Ready;
        self.publish(AgentState::Ready, None);
        if preview {
            self.push(Action::PreviewNext { campaign });
        }
        self.send_state(None);
    }

    pub(super) fn pause(&mut self, code: String, known: bool) {
        if !known {
            return self.refuse(Refusal::UnknownPauseCode(code.chars().take(32).collect()));
        }
        if matches!(self.phase, Phase::Dialling { .. }) {
            return self.refuse(Refusal::Dialling);
        }
        self.tell_floor(AgentState::Paused);
        // A call in progress, or its wrap-up, carries on.
        if !matches!(self.phase, Phase::InCall { .. } | Phase::WrapUp { .. }) {
            self.phase = Phase::Paused {
                code: Some(code.clone()),
            };
        }
        self.publish(AgentState::Paused, Some(&code));
        self.send_state(Some(code));
    }

    pub(super) fn preview(&mut self, skip: bool) {
        let (Some(campaign), true) = (self.campaign, self.phase.is_ready()) else {
            return self.refuse(Refusal::NotPreviewing);
        };
        if skip {
            self.phase = Phase::Ready;
            self.push(Action::PreviewSkip { campaign });
        } else {
            self.push(Action::PreviewCall { campaign });
        }
    }

    pub(super) fn preview_offered(&mut self, lead: Option<LeadId>, contact: Option<ContactId>) {
        // Shown whatever the desk is doing, as the offer answers a request.
        self.send(Reply::Preview { lead, contact });
        if self.phase.is_ready() {
            self.phase = Phase::Previewing { lead };
        }
    }

    pub(super) fn manual_dial(&mut self, number: String, confirm: bool) {
        let Some(campaign) = self.campaign else {
            return self.refuse(Refusal::NoCampaign);
        };
        if !self.may_dial_by_hand() {
            return self.refuse(Refusal::CallInProgress);
        }
        self.push(Action::PlaceManualDial {
            campaign,
            number,
            confirm,
            pause_first: self.phase.is_ready(),
        });
    }

    pub(super) fn manual_dial_placed(&mut self, number: String) {
        if !self.may_dial_by_hand() {
            return;
        }
        self.phase = Phase::Dialling { call: None, number };
        self.publish(AgentState::Paused, Some("manual"));
        self.send_state(Some("manual".into()));
    }

    pub(super) fn may_dial_by_hand(&self) -> bool {
        matches!(self.phase, Phase::Paused { .. }) || self.phase.is_ready()
    }

    pub(super) fn hang_up(&mut self) {
        match self.live_call() {
            Some(call) => {
                let call = call.clone();
                self.push(Action::HangUp { call });
            }
            None => self.refuse(Refusal::NoCallToHangUp),
        }
    }

    /// Returns the call in progress, or refuses the page's control.
    pub(super) fn call_in_progress(&mut self) -> Option<C> {
        match &self.phase {
            Phase::InCall { call, .. } => Some(call.clone()),
            _ => {
                self.refuse(Refusal::NoCallInProgress);
                None
            }
        }
    }

    pub(super) fn hold(&mut self, on: bool) {
        if let Some(call) = self.call_in_progress() {
            self.push(Action::Hold { call, on });
        }
    }

    pub(super) fn digits(&mut self, digits: String) {
        let Some(call) = self.call_in_progress() else {
            return;
        };
        let valid = !digits.is_empty()
            && digits.len() <= 32
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b"*#ABCD".contains(&b));
        if !valid {
            return self.refuse(Refusal::BadDigits);
        }
        if let Phase::InCall { controls, .. } = &self.phase {
            if controls.held {
                return self.refuse(Refusal::OnHold);
            }
        }
        self.push(Action::SendDigits { call, digits });
    }

    pub(super) fn recording(&mut self, paused: bool) {
        let Some(call) = self.call_in_progress() else {
            return;
        };
        if let Phase::InCall { controls, .. } = &self.phase {
            if controls.recording == Recording::Off {
                return self.refuse(Refusal::NotRecorded);
            }
        }
        self.push(Action::SetRecording { call, paused });
    }

    pub(super) fn leave_message(&mut self) {
        let Some(call) = self.call_in_progress() else {
            return;
        };
        match self.campaign {
            Some(campaign) => self.push(Action::LeaveMessage { campaign, call }),
            None => self.refuse(Refusal::NoMessageHere),
        }
    }

    /// The message is being left on the call's machine: the agent is done
    /// with the call, with no wrap-up (the attempt's outcome says what
    /// happened), and goes back into the campaign.
    pub(super) fn message_left(&mut self, left: C) {
        let campaign = match (&self.phase, self.campaign) {
            (Phase::InCall { call, .. }, Some(campaign)) if *call == left => campaign,
            _ => return,
        };
        self.phase = Phase::Paused { code: None };
        self.send(Reply::MessageLeft { call: left });
        self.join(campaign);
    }

    /// Changes the controls of the call in progress and shows them.
    pub(super) fn set_controls(&mut self, of: C, change: impl FnOnce(&mut Controls)) {
        let Phase::InCall { call, controls } = &mut self.phase else {
            return;
        };
        if *call != of {
            return;
        }
        change(controls);
        let reply = Reply::Controls {
            call: call.clone(),
            controls: *controls,
        };
        self.send(reply);
    }

    pub(super) fn disposition(&mut self, call: C, disposition: Disposition) {
        match (&self.phase, self.campaign) {
            (Phase::WrapUp { call: due, .. }, Some(campaign)) if *due == call => {
                self.push(Action::SaveDisposition {
                    campaign,
                    call,
                    disposition,
                });
            }
            _ => self.refuse(Refusal::NoDispositionDue),
        }
    }

    pub(super) fn disposition_saved(&mut self, saved: C) {
        let Phase::WrapUp { call, deadline } = &mut self.phase else {
            return;
        };
        if *call != saved {
            return;
        }
        // The agent stays in wrap-up, without a deadline, until they are
        // back in the campaign.
        *deadline = None;
        self.send(Reply::Saved { call: saved });
        if let Some(campaign) = self.campaign {
            self.join(campaign);
        }
    }

    pub(super) fn audio_connected(&mut self) {
        if let Phase::InCall { call, .. } = &self.phase {
            let call = call.clone();
            self.push(Action::Bridge { call });
        } else if self.phase.is_ready() {
            // The runner learns the new leg with the state.
            self.tell_floor(AgentState::Ready);
        }
    }

    /// A waiting agent can take no call for `reason` (their audio leg
    /// went, or their desk phone rang out): they stop taking calls until
    /// they say Ready again; a call in progress or its wrap-up carries on.
    pub(super) fn pause_waiting(&mut self, reason: &str) {
        if !self.phase.is_ready() {
            return;
        }
        self.tell_floor(AgentState::Paused);
        self.phase = Phase::Paused { code: None };
        self.publish(AgentState::Paused, Some(reason));
        self.send_state(Some(reason.into()));
    }

    pub(super) fn ringing(&mut self, call: C) {
        if let Phase::Dialling { call: None, number } = &self.phase {
            let number = number.clone();
            self.phase = Phase::Dialling {
                call: Some(call.clone()),
                number: number.clone(),
            };
            self.send(Reply::Dialling { call, number });
        }
    }

    pub(super) fn connected(&mut self, call: C, recorded: bool) {
        let controls = Controls {
            held: false,
            recording: if recorded {
                Recording::On
            } else {
                Recording::Off
            },
        };
        self.phase = Phase::InCall {
            call: call.clone(),
            controls,
        };
        self.publish(AgentState::InCall, None);
        self.send_state(None);
        self.send(Reply::Call { call: call.clone() });
        self.send(Reply::Controls { call, controls });
    }

    pub(super) fn ended(&mut self, call: C, mine: bool, cause: Option<String>) {
        if mine && self.was_placed_for_agent(&call) {
            return self.not_connected(Some(call), cause);
        }
        if !matches!(&self.phase, Phase::InCall { call: c, .. } if *c == call) {
            return;
        }
        self.phase = Phase::WrapUp {
            call: call.clone(),
            deadline: None,
        };
        self.tell_floor(AgentState::WrapUp);
        self.publish(AgentState::WrapUp, None);
        self.send_state(None);
        self.push(Action::StartWrapUp {
            call,
            campaign: self.campaign,
            cause,
        });
    }

    /// Whether an ended call of this agent's is one that never reached them:
    /// a manual dial, or a preview call (the agent stays Ready meanwhile).
    pub(super) fn was_placed_for_agent(&self, ended: &C) -> bool {
        match &self.phase {
            Phase::Dialling { call, .. } => call.as_ref().is_none_or(|c| c == ended),
            phase => phase.is_ready(),
        }
    }

    /// A call placed for this agent ended unconnected: a manual dial leaves
    /// them paused, a preview shows the next contact.
    pub(super) fn not_connected(&mut self, call: Option<C>, cause: Option<String>) {
        self.send(Reply::NotConnected { call, cause });
        if matches!(self.phase, Phase::Dialling { .. }) {
            self.phase = Phase::Paused { code: None };
            self.publish(AgentState::Paused, Some("manual"));
            self.send_state(Some("manual".into()));
        } else if self.phase.is_ready() {
            self.phase = Phase::Ready;
            if let Some(campaign) = self.campaign {
                self.push(Action::PreviewNext { campaign });
            }
        }
    }

    pub(super) fn wrap_up_limit(
        &mut self,
        of: C,
        cause: Option<String>,
        ended_at: Option<DateTime<Utc>>,
        limit_secs: Option<u32>,
        now: DateTime<Utc>,
    ) {
        let Phase::WrapUp { call, deadline } = &mut self.phase else {
            return;
        };
        if *call != of {
            return;
        }
        // The limit counts from the end of the call, so a page that returns
        // later gets only what is left. An end time so far in the future
        // that the deadline overflows the calendar sets none.
        *deadline = limit_secs.filter(|l| *l > 0).and_then(|l| {
            ended_at
                .unwrap_or(now)
                .checked_add_signed(TimeDelta::seconds(i64::from(l)))
        });
        let wrap_up_secs = deadline.map(|d| (d - now).to_std().unwrap_or_default().as_secs());
        self.send(Reply::CallEnded {
            call: of,
            cause,
            wrap_up_secs,
        });
    }

    /// Tells a returning page what it was doing. A call that ended while the
    /// page was away becomes a wrap-up; a manual dial answered meanwhile is
    /// the call in progress, and one that failed leaves the agent paused.
    pub(super) fn reconnected(&mut self, attempt: Option<AttemptStatus>) {
        match &self.phase {
            Phase::SignedOut => self.phase = Phase::Paused { code: None },
            Phase::InCall { call, .. } if attempt.is_none_or(|a| a.ended) => {
                self.phase = Phase::WrapUp {
                    call: call.clone(),
                    deadline: None,
                };
                self.tell_floor(AgentState::WrapUp);
            }
            Phase::Dialling { call, .. } => match (call, attempt) {
                (Some(call), Some(a)) if !a.ended && a.answered => {
                    self.phase = Phase::InCall {
                        call: call.clone(),
                        controls: Controls::default(),
                    };
                }
                (Some(_), Some(a)) if !a.ended => {}
                _ => self.phase = Phase::Paused { code: None },
            },
            _ => {}
        }
        self.send_state(Some("reconnected".into()));
        match self.phase.clone() {
            Phase::InCall { call, controls } => {
                self.send(Reply::Call { call: call.clone() });
                self.send(Reply::Controls { call, controls });
            }
            Phase::Dialling {
                call: Some(call),
                number,
            } => self.send(Reply::Dialling { call, number }),
            Phase::WrapUp { call, .. } => self.push(Action::StartWrapUp {
                call,
                campaign: self.campaign,
                cause: None,
            }),
            _ => {}
        }
    }

    /// The page went away: a waiting agent is paused; a call in progress or
    /// a wrap-up due stays as it is for the page's return.
    pub(super) fn disconnected(&mut self) {
        let waiting = self.phase.is_ready();
        if waiting || matches!(self.phase, Phase::Paused { .. }) {
            self.tell_floor(AgentState::Paused);
        }
        if waiting {
            self.phase = Phase::Paused { code: None };
        }
        self.publish(AgentState::Paused, Some("disconnected"));
    }

    /// The login session ended: the agent leaves the campaign, any call
    /// that reached or rings for them is hung up with their audio, and a
    /// wrap-up due stays due for their next login.
    pub(super) fn signed_out(&mut self) {
        self.tell_floor(AgentState::LoggedOut);
        if let Some(call) = self.live_call() {
            let call = call.clone();
            self.push(Action::DropCall { call });
        }
        self.push(Action::DropAudio);
        if !matches!(self.phase, Phase::InCall { .. } | Phase::WrapUp { .. }) {
            self.phase = Phase::SignedOut;
        }
    }
}
