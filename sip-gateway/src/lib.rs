//! The SIP gateway: the only part of dialcrm that speaks to VoIP providers.
//!
//! It owns SIP signalling towards trunks and RTP media. It does not depend on
//! the CRM: what crosses into it is a `DialRequest` (number, caller ID, trunk,
//! ring timeout, opaque call reference) and nothing else.
//!
//! - [`sip`]: sans-IO SIP: message parsing, transactions, dialogs, digest
//!   authentication and SDP offer/answer.
//! - [`media`]: sans-IO RTP: packets, G.711, DTMF events, relaying between
//!   legs, and recording.
//! - [`gateway`]: the tokio shell that drives both over real sockets, and the
//!   Rust API the dialler calls: dial, hang up, play, record, bridge, hold,
//!   send DTMF, listen in, events; and agents' desk phones registering, with
//!   credentials from a directory the service plugs in.
//! - [`drops`]: counts of audio dropped rather than sent late, by where.
//! - [`carrier`]: a simulated carrier on loopback for the demo and benchmarks.
//! - [`webrtc`]: the agent's browser leg over WebRTC (str0m, ICE-lite,
//!   DTLS-SRTP, G.711), nailed up for the shift, with its tokio driver.

mod alarm;
pub mod carrier;
pub mod drops;
pub mod gateway;
pub mod media;
pub mod sip;
pub mod webrtc;
