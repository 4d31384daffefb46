//! What crosses the gateway's boundary: dial requests, call references, events and errors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::media::amd::AmdVerdict;
pub use crate::media::greeting::GreetingEnded;

pub use crate::sip::EndCause;

pub use vocab::CallRef;

/// Everything the gateway is told about a call to place; nothing else crosses in.
#[derive(Clone, PartialEq, Eq)]
pub struct DialRequest {
    /// Number to dial, E.164 (`+` and digits).
    pub number: String,
    /// Caller ID to present, E.164.
    pub caller_id: String,
    /// Name of the trunk to try first.
    pub trunk: String,
    /// How long to let the call ring.
    pub ring_timeout: Duration,
    /// The caller's reference for the call.
    pub call_ref: CallRef,
    /// Listen to the first seconds after answer and report who answered
    /// ([`CallEventKind::AnsweredBy`]).
    pub detect_machine: bool,
}

impl std::fmt::Debug for DialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The dialled number is personal data: logs above DEBUG must not carry it.
        f.debug_struct("DialRequest")
            .field("trunk", &self.trunk)
            .field("ring_timeout", &self.ring_timeout)
            .field("call_ref", &self.call_ref)
            .field("detect_machine", &self.detect_machine)
            .finish_non_exhaustive()
    }
}

/// A call a trunk offers us, as the service is told of it: the numbers and
/// nothing else of the INVITE.
pub struct IncomingCall {
    /// The reference the call goes by from now on.
    pub call_ref: CallRef,
    /// The trunk it came through.
    pub trunk: String,
    /// The number dialled, as the trunk wrote it.
    pub number: String,
    /// The caller's number; `None` when withheld.
    pub caller: Option<String>,
    /// Every event of the call, up to and including `Ended`; none is dropped.
    pub events: tokio::sync::mpsc::UnboundedReceiver<CallEvent>,
}

impl std::fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The caller's number is personal data: logs above DEBUG must not carry it.
        f.debug_struct("IncomingCall")
            .field("call_ref", &self.call_ref)
            .field("trunk", &self.trunk)
            .field("number", &self.number)
            .field("withheld", &self.caller.is_none())
            .finish_non_exhaustive()
    }
}

/// Something that happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// The call.
    pub call_ref: CallRef,
    /// What happened.
    pub kind: CallEventKind,
}

/// The kinds of [`CallEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEventKind {
    /// The trunk is working on the call (100).
    Trying,
    /// The far end is ringing (18x).
    Ringing,
    /// Audio flows before answer (183 with SDP).
    EarlyMedia,
    /// The call was answered; for an agent leg, its WebRTC connection is up (again).
    Answered,
    /// An agent leg's browser stopped answering; `Answered` follows if it comes back.
    Disconnected,
    /// Who answered, for a call dialled with `detect_machine`: after
    /// `Answered`, once the far end's first seconds of audio tell.
    AnsweredBy {
        /// A person, a machine, or unsure (treat as a person).
        verdict: AmdVerdict,
    },
    /// The far end pressed a key (RFC 4733).
    Dtmf {
        /// `0`–`9`, `*`, `#` or `A`–`D`.
        digit: char,
    },
    /// A playback started with [`crate::gateway::Gateway::play`] or
    /// [`crate::gateway::Gateway::leave_message`] reached its end.
    PlaybackFinished,
    /// After [`crate::gateway::Gateway::leave_message`]: the machine's
    /// greeting ended (the message now plays), or did not in time (nothing
    /// plays; the call stays up for the caller to end).
    GreetingEnded {
        /// A beep, silence, or a time-out.
        ended: GreetingEnded,
    },
    /// The call is over, any recording is complete, and no further events follow.
    Ended {
        /// Why.
        cause: EndCause,
    },
}

/// What a supervisor's leg does on a call: hear it, or take part in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoachMode {
    /// Hears both sides; nobody hears the supervisor.
    Listen,
    /// Hears both sides; the agent hears the supervisor, the customer does not.
    Whisper,
    /// Hears both sides; the agent and the customer both hear the supervisor.
    Barge,
    /// Replaces the agent: the call is bridged to the supervisor's leg, and the
    /// agent's leg hears and is heard by nobody on it.
    TakeOver,
}

/// Audio to play into a call.
#[derive(Debug, Clone)]
pub enum Audio {
    /// A mono 16-bit WAV file (8, 16 or 48 kHz).
    File(PathBuf),
    /// Samples already loaded, 8 kHz mono.
    Samples(Arc<[i16]>),
}

/// Why a call could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No trunk has this name.
    #[error("no trunk named {0:?}")]
    UnknownTrunk(String),
    /// Every candidate trunk is at its concurrent-call limit.
    #[error("trunk is at its concurrent call limit")]
    TooManyCalls,
    /// Every candidate trunk has used up its calls for this second.
    #[error("trunk is at its calls-per-second limit")]
    RateLimited,
    /// The number or caller ID is not E.164.
    #[error("invalid request: {0}")]
    Invalid(#[from] crate::sip::outbound::OutboundError),
    /// A call with this reference already exists.
    #[error("call reference already in use")]
    DuplicateRef,
    /// No RTP port could be bound.
    #[error("no RTP port available: {0}")]
    NoMediaPort(std::io::Error),
    /// The trunk and every trunk after it in failover order are down.
    #[error("trunk {0:?} and every trunk it fails over to are down")]
    TrunksDown(String),
    /// The desk phone to call has no live registration (or desk phones are not taken).
    #[error("the desk phone is not registered")]
    PhoneNotRegistered,
    /// The gateway has stopped.
    #[error("the gateway has stopped")]
    Stopped,
}

/// Why an operation on a call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No live call has this reference.
    #[error("no such call")]
    NoSuchCall,
    /// The call has no negotiated media yet.
    #[error("the call has no media yet")]
    NoMedia,
    /// The operation applies to trunk calls, and the reference is an agent leg.
    #[error("not a trunk call")]
    NotATrunkCall,
    /// The operation applies to agent legs, and the reference is a trunk call.
    #[error("not an agent leg")]
    NotAnAgentLeg,
    /// The operation needs an answered call, and this one is still ringing or ending.
    #[error("the call is not answered")]
    NotAnswered,
    /// The call was not offered to us, or was already answered, refused or
    /// cancelled.
    #[error("not a call waiting to be answered")]
    NotOffered,
    /// The digits to send are empty, too many, or not DTMF keys; none were sent.
    #[error("invalid DTMF digits: {0}")]
    InvalidDigits(String),
    /// The browser's offer was refused.
    #[error(transparent)]
    WebRtc(#[from] crate::webrtc::WebRtcError),
    /// A WAV file could not be loaded for playback.
    #[error(transparent)]
    Playback(#[from] crate::media::playback::PlaybackError),
    /// A recording could not be started.
    #[error(transparent)]
    Recording(#[from] crate::media::recorder::RecorderError),
    /// A socket could not be bound or a trunk resolved.
    #[error("{context}: {source}")]
    Io {
        /// What was being attempted.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The gateway has stopped.
    #[error("the gateway has stopped")]
    Stopped,
}

/// A trunk as the gateway sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkStatus {
    /// The trunk's name.
    pub name: String,
    /// Whether it takes new calls: its OPTIONS pings or registration answer.
    pub up: bool,
    /// Calls up or being set up through it.
    pub active_calls: usize,
}
