//! Why a call ended, and which endings let the dialler try another trunk.

pub use vocab::EndCause;

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
