//! Sans-IO RTP media: packets, codecs, relaying and recording.

pub mod g711;
pub mod rtp;

pub use g711::G711;
pub use rtp::{RtpBuilder, RtpError, RtpHeader, RtpPacket};
