//! Why a call ended, and which endings let the dialler try another trunk.

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The called party is busy (486, 600).
    Busy,
    /// Nobody answered: ring timeout, 408 or 480 (the callee is not reachable right now).
    NoAnswer,
    /// The call was refused (403, 603, other 4xx/6xx, and 3xx since redirects are not followed).
    Rejected,
    /// The number does not exist or is incomplete (404, 410, 484, 485, 604).
    InvalidNumber,
    /// The trunk or the network behind it is overloaded (502, 503, 504).
    Congestion,
    /// The trunk failed: no response (Timer B), a transport error, or another 5xx.
    TrunkFailure,
    /// Our credentials were refused, or a challenge could not be answered.
    AuthenticationFailed,
    /// No common codec or unusable SDP (488, 606, or a bad answer).
    MediaFailed,
    /// The far end sent BYE.
    RemoteHangup,
    /// We hung up.
    LocalHangup,
    /// RTP stopped arriving for longer than the media timeout, so we hung up.
    MediaTimeout,
}

/// Maps a final failure status to a cause.
pub fn cause_for_status(status: u16) -> EndCause {
    match status {
        486 | 600 => EndCause::Busy,
        408 | 480 => EndCause::NoAnswer,
        404 | 410 | 484 | 485 | 604 => EndCause::InvalidNumber,
        502..=504 => EndCause::Congestion,
        401 | 407 => EndCause::AuthenticationFailed,
        488 | 606 => EndCause::MediaFailed,
        500..=599 => EndCause::TrunkFailure,
        _ => EndCause::Rejected,
    }
}

/// Returns whether the same number may be tried at once through another trunk.
///
/// Only failures of the trunk itself qualify: 408, any 5xx (500, 502–504 among them), a
/// transport error or no response at all. Busy, rejected or unknown numbers would fail again.
pub fn try_next_trunk(cause: EndCause, status: Option<u16>) -> bool {
    match status {
        Some(408) | Some(500..=599) => true,
        Some(_) => false,
        None => cause == EndCause::TrunkFailure,
    }
}
