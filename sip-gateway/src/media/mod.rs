//! Sans-IO RTP media: packets, codecs, relaying and recording.

pub mod align;
pub mod dtmf;
pub mod g711;
pub mod latch;
pub mod playback;
pub mod recorder;
pub mod relay;
pub mod rtp;
pub mod tone;

pub use dtmf::{Dtmf, DtmfDetector};
pub use g711::G711;
pub use latch::{Latch, LatchConfig, LatchEvent};
pub use playback::{Player, PlayerConfig, PlayerEvent};
pub use recorder::{Recorder, RecorderConfig, RecorderTap, Side};
pub use relay::{PayloadTypeMap, Relay, RelayConfig, RelayError, SourceId};
pub use rtp::{RtpBuilder, RtpError, RtpHeader, RtpPacket};
