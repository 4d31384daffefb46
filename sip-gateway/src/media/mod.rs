//! Sans-IO RTP media: packets, codecs, relaying and recording.
//!
//! Incoming datagrams pass the [`latch`] (which learns where to send and
//! notices dead media), are viewed as [`rtp`] packets, and go through a
//! [`relay`] per outgoing leg that keeps that leg's stream continuous across
//! bridges. A [`playback`] player is just another relay source, and so is
//! the [`hold`] tone a held customer hears. [`dtmf`]
//! turns telephone events into key presses and [`dtmf_sender`] sends them (or
//! their in-band tones); [`recorder`] writes both sides
//! to a stereo WAV off the forwarding path, lined up by [`align`]; [`mix`]
//! sums both sides for a supervisor listening in. [`g711`]
//! and [`tone`] are the small signal pieces underneath; [`opus`] and
//! [`resample`] convert at the edge of an agent leg whose browser would only
//! speak Opus, so everything here still sees G.711 at 8 kHz.
//!
//! [`amd`] tells a person who answered from an answering machine, and
//! [`greeting`] hears when a machine's greeting ends, to leave a message.
//!
//! [`srtp`] encrypts and authenticates a trunk call's RTP when its trunk asks for SRTP.
//!
//! Nothing here reads the clock or touches a socket; the one thread is the
//! recorder's WAV writer.

pub mod align;
pub mod amd;
pub mod dtmf;
pub mod dtmf_sender;
pub mod g711;
pub mod greeting;
pub mod hold;
pub mod latch;
pub mod mix;
pub mod opus;
pub mod playback;
pub mod recorder;
pub mod relay;
pub mod resample;
pub mod rtp;
pub mod srtp;
pub mod tone;

pub use amd::{AmdConfig, AmdDetector, AmdVerdict};
pub use dtmf::{Dtmf, DtmfDetector};
pub use g711::G711;
pub use latch::{Latch, LatchConfig, LatchEvent};
pub use playback::{Player, PlayerConfig, PlayerEvent};
pub use recorder::{Recorder, RecorderConfig, RecorderTap, Side};
pub use relay::{PayloadTypeMap, Relay, RelayConfig, RelayError, SourceId};
pub use rtp::{RtpBuilder, RtpError, RtpHeader, RtpPacket};
