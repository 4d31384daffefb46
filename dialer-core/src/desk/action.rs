//! What comes out of a desk: what the shell must do, the page's replies,
//! and why the desk refused a request.

use super::{CampaignId, ContactId, Controls, Disposition, LeadId};
#[cfg(doc)]
use super::{Input, Phase};
use crate::pacer::AgentState;

/// Something the shell must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<C> {
    /// Send the page a message.
    Send(Reply<C>),
    /// Tell the campaign's runner the agent's state.
    TellFloor {
        /// The campaign.
        campaign: CampaignId,
        /// The state.
        state: AgentState,
    },
    /// Tell supervisors the agent's state.
    Publish {
        /// The state.
        state: AgentState,
        /// The pause code, `manual` or `disconnected`.
        reason: Option<String>,
    },
    /// Request: check the agent may work the campaign and has audio, leave
    /// `leave`, join `campaign` as Ready, and answer [`Input::Joined`].
    Join {
        /// The campaign to join.
        campaign: CampaignId,
        /// The campaign to leave first.
        leave: Option<CampaignId>,
    },
    /// Ask the preview campaign for the next contact.
    PreviewNext {
        /// The campaign.
        campaign: CampaignId,
    },
    /// Have the preview campaign call the contact on screen.
    PreviewCall {
        /// The campaign.
        campaign: CampaignId,
    },
    /// Have the preview campaign skip the contact on screen and offer the
    /// next.
    PreviewSkip {
        /// The campaign.
        campaign: CampaignId,
    },
    /// Request: check and place a manual dial, and answer
    /// [`Input::ManualDialPlaced`].
    PlaceManualDial {
        /// The campaign.
        campaign: CampaignId,
        /// The number as the agent typed it.
        number: String,
        /// The agent confirmed past the warnings.
        confirm: bool,
        /// The agent is Ready: tell the runner Paused just before dialling,
        /// so no other call reaches them.
        pause_first: bool,
    },
    /// Hang up a call at the agent's request; a failure is the page's to know.
    HangUp {
        /// The call.
        call: C,
    },
    /// Ask the campaign to leave its voicemail message on the call's
    /// machine; its answer is [`Input::MessageLeft`], by way of the
    /// dialler's report. A failure is the page's to know.
    LeaveMessage {
        /// The campaign.
        campaign: CampaignId,
        /// The call.
        call: C,
    },
    /// Hang up a call the signed-out agent leaves behind.
    DropCall {
        /// The call.
        call: C,
    },
    /// Hang up the signed-out agent's audio leg and forget it.
    DropAudio,
    /// Move the call onto the agent's new audio leg.
    Bridge {
        /// The call.
        call: C,
    },
    /// Request: put the call on hold or take it off, and answer
    /// [`Input::Held`].
    Hold {
        /// The call.
        call: C,
        /// Whether to hold it.
        on: bool,
    },
    /// Send digits to the far end.
    SendDigits {
        /// The call.
        call: C,
        /// Digits checked to be `0`–`9`, `*`, `#`, `A`–`D`, 1 to 32 of them.
        digits: String,
    },
    /// Request: pause or resume the recording, audit it, and answer
    /// [`Input::RecordingChanged`].
    SetRecording {
        /// The call.
        call: C,
        /// Whether to pause it.
        paused: bool,
    },
    /// Request: store the disposition and act on it, and answer
    /// [`Input::DispositionSaved`].
    SaveDisposition {
        /// The call's campaign.
        campaign: CampaignId,
        /// The call.
        call: C,
        /// The outcome.
        disposition: Disposition,
    },
    /// Request: read the campaign's wrap-up limit and when the call ended,
    /// and answer [`Input::WrapUpLimit`] with `call` and `cause`.
    StartWrapUp {
        /// The call.
        call: C,
        /// The campaign whose limit applies.
        campaign: Option<CampaignId>,
        /// Why it ended, for the page.
        cause: Option<String>,
    },
    /// Log the call as finished without a disposition.
    ExpireWrapUp {
        /// The call.
        call: C,
    },
}

/// A message for the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply<C> {
    /// The agent's state.
    State {
        /// The state's name in the protocol ([`Phase::name`]).
        state: &'static str,
        /// The campaign being worked.
        campaign: Option<CampaignId>,
        /// The pause code, `manual` or `reconnected`.
        reason: Option<String>,
    },
    /// A contact to preview.
    Preview {
        /// The lead.
        lead: Option<LeadId>,
        /// The contact whose card to show.
        contact: Option<ContactId>,
    },
    /// The contact card of the call connected.
    Call {
        /// The call.
        call: C,
    },
    /// The call's hold and recording.
    Controls {
        /// The call.
        call: C,
        /// Its controls.
        controls: Controls,
    },
    /// A manual dial rings out.
    Dialling {
        /// The call.
        call: C,
        /// The number, E.164.
        number: String,
    },
    /// A call placed for the agent ended before it reached them.
    NotConnected {
        /// The call, when known.
        call: Option<C>,
        /// Why.
        cause: Option<String>,
    },
    /// The call ended and a disposition is due.
    CallEnded {
        /// The call.
        call: C,
        /// Why it ended.
        cause: Option<String>,
        /// Whole seconds left before the wrap-up closes; `None` without a
        /// limit.
        wrap_up_secs: Option<u64>,
    },
    /// The wrap-up closed without a disposition.
    WrapUpExpired {
        /// The call.
        call: C,
    },
    /// The voicemail message is being left on the call's machine, and the
    /// agent is done with it.
    MessageLeft {
        /// The call.
        call: C,
    },
    /// The disposition was stored.
    Saved {
        /// The call.
        call: C,
    },
    /// The page asked for something the desk's state does not allow.
    Refused(Refusal),
}

/// Why the desk refused what the page asked; the message is the page's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The agent asked to go Ready or dial during a call.
    #[error("finish the call in progress first")]
    CallInProgress,
    /// The pause code is not one of the account's (cut to 32 characters).
    #[error("{0:?} is not one of this account's pause codes")]
    UnknownPauseCode(String),
    /// The agent asked to pause while dialling by hand.
    #[error("hang up the call you are dialling first")]
    Dialling,
    /// A preview choice outside a preview campaign's Ready.
    #[error("go ready in a preview campaign first")]
    NotPreviewing,
    /// A manual dial before joining any campaign.
    #[error("join a campaign first: go Ready once, then Pause to dial by hand")]
    NoCampaign,
    /// A hang-up with no call.
    #[error("there is no call to hang up")]
    NoCallToHangUp,
    /// A call control with no call in progress.
    #[error("there is no call in progress")]
    NoCallInProgress,
    /// Digits other than 1 to 32 of `0`–`9`, `*`, `#`, `A`–`D`.
    #[error("send 1 to 32 digits from 0-9, *, # and A-D")]
    BadDigits,
    /// Digits while the call is held.
    #[error("take the call off hold to send digits")]
    OnHold,
    /// A recording change on a call not recorded.
    #[error("this call is not being recorded")]
    NotRecorded,
    /// A disposition for a call whose wrap-up is not due.
    #[error("no finished call awaits that disposition")]
    NoDispositionDue,
    /// "Leave voicemail" on a call that is not a campaign's.
    #[error("only a campaign's call can be left a voicemail message")]
    NoMessageHere,
    /// Anything from a page after the login session ended.
    #[error("your session has ended; log in again")]
    SignedOut,
}
