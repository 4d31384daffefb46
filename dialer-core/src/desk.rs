//! An agent's desk: where the agent is in the cycle of calls, and what
//! follows from each thing the page, the dialler or the clock says.
//!
//! The page's messages, call events, the session's start and end and the
//! current time go in through [`Desk::handle_input`] and
//! [`Desk::handle_timeout`]; what the shell must do comes out of
//! [`Desk::poll_action`]: replies for the page, the agent's state for the
//! campaign's runner and for supervisors, calls to hang up, and so on. The
//! only timer is the wrap-up's deadline ([`Desk::poll_timeout`]).
//!
//! Some actions are requests that need the outside world (join a campaign,
//! put a call on hold, save a disposition). The shell carries them out and,
//! when they succeed, answers with the matching input ([`Input::Joined`],
//! [`Input::Held`], ...); the desk changes state only then. When they fail
//! the shell tells the page why and answers nothing. A request is always the
//! last action of the batch one input produces, so its answer's actions
//! follow in order.
//!
//! The desk knows calls by an opaque reference `C`, so its tests need no
//! gateway, and campaigns, leads and contacts by vocab's ids.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

mod action;
mod input;
mod machine;
#[cfg(test)]
mod tests;

pub use action::{Action, Refusal, Reply};
pub use input::{AttemptStatus, Disposition, Input};

pub use vocab::{CampaignId, ContactId, LeadId};

/// Where the agent is in the cycle of calls.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase<C> {
    /// The agent's login session ended; their next login finds the desk
    /// paused.
    SignedOut,
    /// Not taking calls, with the pause code the agent chose, if any.
    Paused {
        /// One of the account's pause codes.
        code: Option<String>,
    },
    /// Waiting for a call.
    Ready,
    /// Ready in a preview campaign, with a contact on screen to call or skip.
    Previewing {
        /// The lead on screen; `None` when nobody may be called now.
        lead: Option<LeadId>,
    },
    /// A number dialled by hand rings out.
    Dialling {
        /// The call, once the dialler's first report names it.
        call: Option<C>,
        /// The number, E.164.
        number: String,
    },
    /// Talking to a contact.
    InCall {
        /// The call.
        call: C,
        /// Its hold and recording, as the agent set them.
        controls: Controls,
    },
    /// The call ended and a disposition is due.
    WrapUp {
        /// The call.
        call: C,
        /// When the wrap-up closes by itself; `None` without a limit.
        deadline: Option<DateTime<Utc>>,
    },
}

/// The call in progress's hold and recording, as the agent set them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Controls {
    /// Whether the customer is on hold.
    pub held: bool,
    /// Whether the call is being recorded.
    pub recording: Recording,
}

/// Whether the call in progress is being recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recording {
    /// The campaign does not record.
    #[default]
    Off,
    /// Recording.
    On,
    /// Recording paused by the agent.
    Paused,
}

/// One agent's desk.
#[derive(Clone, Debug, PartialEq)]
pub struct Desk<C> {
    campaign: Option<CampaignId>,
    phase: Phase<C>,
    actions: VecDeque<Action<C>>,
}

impl<C> Default for Desk<C> {
    fn default() -> Self {
        Desk {
            campaign: None,
            phase: Phase::Paused { code: None },
            actions: VecDeque::new(),
        }
    }
}

impl<C> Phase<C> {
    /// Returns the state's name in the desk protocol.
    pub fn name(&self) -> &'static str {
        match self {
            // A signed-out desk is paused when its agent returns.
            Phase::SignedOut | Phase::Paused { .. } => "paused",
            Phase::Ready | Phase::Previewing { .. } => "ready",
            Phase::Dialling { .. } => "dialling",
            Phase::InCall { .. } => "in_call",
            Phase::WrapUp { .. } => "wrap_up",
        }
    }

    /// Whether the agent waits for a call (previewing included).
    fn is_ready(&self) -> bool {
        matches!(self, Phase::Ready | Phase::Previewing { .. })
    }
}

impl Recording {
    /// Returns the recording's name in the desk protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Recording::Off => "off",
            Recording::On => "on",
            Recording::Paused => "paused",
        }
    }
}

impl<C: Clone + PartialEq> Desk<C> {
    /// Returns a desk as an agent's first connection finds it: paused, in
    /// no campaign.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns a desk as another node kept it: in `campaign`, at `phase`
    /// (a desk whose node died; [`Input::Reconnected`] brings it up to date).
    pub fn resumed(campaign: Option<CampaignId>, phase: Phase<C>) -> Self {
        Desk {
            campaign,
            phase,
            actions: VecDeque::new(),
        }
    }

    /// Returns where the agent is.
    pub fn phase(&self) -> &Phase<C> {
        &self.phase
    }

    /// Returns the campaign joined last.
    pub fn campaign(&self) -> Option<CampaignId> {
        self.campaign
    }

    /// Returns the call in progress or ringing out, whose end the page may
    /// have missed; the shell looks it up for [`Input::Reconnected`].
    pub fn live_call(&self) -> Option<&C> {
        match &self.phase {
            Phase::InCall { call, .. }
            | Phase::Dialling {
                call: Some(call), ..
            } => Some(call),
            _ => None,
        }
    }

    /// Returns the next thing the shell must do.
    pub fn poll_action(&mut self) -> Option<Action<C>> {
        self.actions.pop_front()
    }

    /// Returns when [`Desk::handle_timeout`] is next due: the wrap-up's
    /// deadline.
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::WrapUp { deadline, .. } => deadline,
            _ => None,
        }
    }

    /// Closes a wrap-up whose deadline has passed: the call is logged
    /// without a disposition and the agent goes Ready again in the campaign
    /// (or stays paused if that fails).
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        let Phase::WrapUp {
            call,
            deadline: Some(deadline),
        } = &self.phase
        else {
            return;
        };
        if now < *deadline {
            return;
        }
        let call = call.clone();
        self.phase = Phase::Paused { code: None };
        self.push(Action::ExpireWrapUp { call: call.clone() });
        self.send(Reply::WrapUpExpired { call });
        match self.campaign {
            Some(campaign) => self.join(campaign),
            None => self.send_state(None),
        }
    }

    /// Acts on one input.
    pub fn handle_input(&mut self, input: Input<C>, now: DateTime<Utc>) {
        if self.phase == Phase::SignedOut && input.is_from_page() {
            return self.refuse(Refusal::SignedOut);
        }
        match input {
            Input::Ready { campaign } => self.ready(campaign),
            Input::Pause { code, known } => self.pause(code, known),
            Input::PreviewCall => self.preview(false),
            Input::PreviewSkip => self.preview(true),
            Input::ManualDial { number, confirm } => self.manual_dial(number, confirm),
            Input::HangUp => self.hang_up(),
            Input::Hold { on } => self.hold(on),
            Input::Digits { digits } => self.digits(digits),
            Input::Recording { paused } => self.recording(paused),
            Input::LeaveMessage => self.leave_message(),
            Input::MessageLeft { call } => self.message_left(call),
            Input::Disposition { call, disposition } => self.disposition(call, disposition),
            Input::AudioConnected => self.audio_connected(),
            Input::PreviewOffered { lead, contact } => self.preview_offered(lead, contact),
            Input::CallRinging { call } => self.ringing(call),
            Input::CallConnected { call, recorded } => self.connected(call, recorded),
            Input::CallEnded { call, mine, cause } => self.ended(call, mine, cause),
            Input::DialRefused => self.not_connected(None, Some("refused".into())),
            Input::Reconnected { attempt } => self.reconnected(attempt),
            Input::Disconnected => self.disconnected(),
            Input::AudioLost => self.pause_waiting("no_audio"),
            Input::NotAnswering => self.pause_waiting("not_answering"),
            Input::SignedOut => self.signed_out(),
            Input::Joined { campaign, preview } => self.joined(campaign, preview),
            Input::WrapUpLimit {
                call,
                cause,
                ended_at,
                limit_secs,
            } => self.wrap_up_limit(call, cause, ended_at, limit_secs, now),
            Input::Held { call, on } => self.set_controls(call, |c| c.held = on),
            Input::RecordingChanged { call, paused } => self.set_controls(call, |c| {
                c.recording = if paused {
                    Recording::Paused
                } else {
                    Recording::On
                }
            }),
            Input::ManualDialPlaced { number } => self.manual_dial_placed(number),
            Input::DispositionSaved { call } => self.disposition_saved(call),
        }
    }
}
