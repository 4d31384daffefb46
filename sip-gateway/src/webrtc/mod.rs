//! The agent's WebRTC leg: the server side of the browser softphone's media.
//!
//! Each agent's browser holds one `RTCPeerConnection` to the gateway for the
//! whole shift. [`AgentLeg`] terminates it with str0m's sans-IO `Rtc`
//! (ICE-lite, DTLS-SRTP, audio only, PCMU then PCMA, or Opus when the browser
//! offers nothing else, transcoded at the leg); calls are bridged in and out
//! by sending and receiving G.711 frames, never by renegotiating.
//! [`AgentLegHandle`] drives one leg on its own UDP socket in a tokio task;
//! `Gateway::attach_agent` wraps it as a gateway leg that calls bridge into.
//!
//! - [`leg`]: the sans-IO core: offer in, answer out, datagrams and timeouts
//!   in, transmits, audio frames and state events out.
//! - [`clock`]: the continuous outgoing timeline across bridged sources.
//! - [`handle`]: the tokio driver.

pub mod clock;
pub mod handle;
pub mod leg;

pub use handle::{AgentLegHandle, AgentLegStreams, OutgoingFrame};
pub use leg::{AgentLeg, AudioCodec, LegEvent, LegInput, LegOutput, ReceivedFrame, Transmit};

use thiserror::Error;

/// Reasons an agent leg refuses an offer, an input or a frame.
#[derive(Debug, Error)]
pub enum WebRtcError {
    /// The SDP offer could not be parsed.
    #[error("SDP offer is malformed: {0}")]
    BadOffer(String),
    /// The offer has no audio section.
    #[error("SDP offer has no audio")]
    NoAudio,
    /// The offer's audio has none of PCMU, PCMA and Opus.
    #[error("SDP offer's audio has none of PCMU, PCMA and Opus")]
    NoCodec,
    /// Opus coding failed.
    #[error(transparent)]
    Opus(#[from] crate::media::opus::OpusError),
    /// The local address cannot be a host candidate.
    #[error("local address is not usable as an ICE candidate: {0}")]
    BadAddress(String),
    /// A datagram is neither STUN, DTLS, RTP nor RTCP.
    #[error("datagram is not WebRTC traffic: {0}")]
    Datagram(String),
    /// Media cannot flow yet, or not any more.
    #[error("agent leg is not connected")]
    NotConnected,
    /// A frame is longer than RTP timestamps can describe.
    #[error("frame is too long")]
    FrameTooLong,
    /// str0m refused the input or the frame.
    #[error("WebRTC session: {0}")]
    Rtc(#[from] str0m::RtcError),
    /// The leg's socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being attempted.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The leg's task has ended.
    #[error("agent leg has ended")]
    Ended,
}

#[cfg(test)]
mod leg_tests;
