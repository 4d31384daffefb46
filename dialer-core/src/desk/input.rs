//! What goes into a desk: the page's requests, call events, the session's
//! start and end, and the shell's answers to requests.

use chrono::{DateTime, Utc};

#[cfg(doc)]
use super::{Action, Desk};
use super::{CampaignId, ContactId, LeadId};

/// The outcome of a finished call, as the agent gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Disposition {
    /// One of the campaign's dispositions.
    pub name: String,
    /// Free-text notes.
    pub notes: Option<String>,
    /// When to call back, for a callback disposition.
    pub callback_at: Option<DateTime<Utc>>,
    /// Whether the callback is for this agent only.
    pub callback_mine: bool,
}

/// What the store says of a call the page may have missed the end of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptStatus {
    /// The far end answered.
    pub answered: bool,
    /// The call is over.
    pub ended: bool,
}

/// Something that happened: from the page, the dialler, the session, or
/// the shell answering a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<C> {
    /// The page asks to take calls of a campaign.
    Ready {
        /// The campaign.
        campaign: CampaignId,
    },
    /// The page asks to stop taking calls; `known` says whether the code is
    /// one of the account's pause codes.
    Pause {
        /// The pause code.
        code: String,
        /// Whether the account has that code.
        known: bool,
    },
    /// The page asks to call the contact on screen.
    PreviewCall,
    /// The page asks to skip the contact on screen.
    PreviewSkip,
    /// The page asks to dial a number by hand.
    ManualDial {
        /// The number as the agent typed it.
        number: String,
        /// The agent saw the warnings and dials anyway.
        confirm: bool,
    },
    /// The page asks to hang up the call in progress or ringing out.
    HangUp,
    /// The page asks to put the call on hold or take it off.
    Hold {
        /// Whether the call is to be held.
        on: bool,
    },
    /// The page asks to send digits to the far end.
    Digits {
        /// The digits.
        digits: String,
    },
    /// The page asks to leave the campaign's voicemail message on the
    /// answering machine the call reached, and to move on.
    LeaveMessage,
    /// The page asks to pause or resume the call's recording.
    Recording {
        /// Whether the recording is to be paused.
        paused: bool,
    },
    /// The page gives the outcome of a finished call.
    Disposition {
        /// The call it is for.
        call: C,
        /// The outcome.
        disposition: Disposition,
    },
    /// The page connected a new audio leg.
    AudioConnected,
    /// The agent's audio leg went (their desk phone hung up) and no other
    /// replaced it.
    AudioLost,
    /// The agent's desk phone, rung per call, was not answered for a queue
    /// call, which went to another agent: a waiting agent is paused
    /// (`not_answering`) until they say Ready again.
    NotAnswering,
    /// The dialler offers this agent a contact to preview.
    PreviewOffered {
        /// The lead; `None` when nobody may be called now.
        lead: Option<LeadId>,
        /// The contact to show.
        contact: Option<ContactId>,
    },
    /// A call placed for this agent is dialling or ringing.
    CallRinging {
        /// The call.
        call: C,
    },
    /// A call was connected to this agent.
    CallConnected {
        /// The call.
        call: C,
        /// Whether the campaign records it.
        recorded: bool,
    },
    /// The dialler took this agent's call to leave the voicemail message
    /// on its machine: the agent is free.
    MessageLeft {
        /// The call.
        call: C,
    },
    /// A call of the account ended.
    CallEnded {
        /// The call.
        call: C,
        /// Whether it was placed for or connected to this agent.
        mine: bool,
        /// Why it ended.
        cause: Option<String>,
    },
    /// The dialler could not place this agent's manual dial.
    DialRefused,
    /// A page connected to a desk kept from an earlier connection.
    Reconnected {
        /// The store's word on [`Desk::live_call`]; `None` without a live
        /// call or when the store could not say.
        attempt: Option<AttemptStatus>,
    },
    /// The page went away; the login session holds.
    Disconnected,
    /// The agent's login session ended.
    SignedOut,
    /// Answers [`Action::Join`]: the agent joined the campaign.
    Joined {
        /// The campaign.
        campaign: CampaignId,
        /// Whether it is a preview campaign.
        preview: bool,
    },
    /// Answers [`Action::StartWrapUp`].
    WrapUpLimit {
        /// The call.
        call: C,
        /// Why it ended, as the request said.
        cause: Option<String>,
        /// When it ended; `None` when the store does not say.
        ended_at: Option<DateTime<Utc>>,
        /// The campaign's wrap-up limit in seconds (0 for none); `None` when
        /// it could not be read.
        limit_secs: Option<u32>,
    },
    /// Answers [`Action::Hold`]: the call is held or taken off hold.
    Held {
        /// The call.
        call: C,
        /// Whether it is held.
        on: bool,
    },
    /// Answers [`Action::SetRecording`]: the recording is paused or resumed.
    RecordingChanged {
        /// The call.
        call: C,
        /// Whether the recording is paused.
        paused: bool,
    },
    /// Answers [`Action::PlaceManualDial`]: the dialler is placing the call.
    ManualDialPlaced {
        /// The number, E.164.
        number: String,
    },
    /// Answers [`Action::SaveDisposition`]: the disposition is stored.
    DispositionSaved {
        /// The call.
        call: C,
    },
}

impl<C> Input<C> {
    /// Whether the page asked for this itself.
    pub(super) fn is_from_page(&self) -> bool {
        matches!(
            self,
            Input::Ready { .. }
                | Input::Pause { .. }
                | Input::PreviewCall
                | Input::PreviewSkip
                | Input::ManualDial { .. }
                | Input::HangUp
                | Input::Hold { .. }
                | Input::Digits { .. }
                | Input::Recording { .. }
                | Input::LeaveMessage
                | Input::Disposition { .. }
        )
    }
}
