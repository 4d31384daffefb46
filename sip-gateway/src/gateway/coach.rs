//! A supervisor's leg on a trunk call, as the call's leg keeps it: the mix it
//! hears, and its voice waiting to be laid over what the agent or the
//! customer hears (decision 0016).

use tokio::sync::mpsc;

use super::leg::BridgedPacket;
use super::types::CoachMode;
use crate::media::mix::{lay_over, Overlay};
use crate::media::relay::SourceId;
use crate::media::rtp::RtpPacket;
use crate::media::G711;
use crate::sip::sdp::Codec;

/// A supervisor's leg listening to the call, and what the other sides are to hear of it.
pub(super) struct Listener {
    pub inbox: mpsc::Sender<BridgedPacket>,
    pub source: SourceId,
    pub mode: CoachMode,
    /// Its audio waiting to be laid over what the agent hears.
    pub to_agent: Overlay,
    /// Its audio waiting to be laid over what the customer hears.
    pub to_customer: Overlay,
}

impl Listener {
    /// Adds a listener to `listeners` in `mode`, or changes the mode of one already there
    /// (its voice waiting so far is dropped).
    pub fn join(
        listeners: &mut Vec<Listener>,
        inbox: mpsc::Sender<BridgedPacket>,
        source: SourceId,
        mode: CoachMode,
    ) {
        match listeners.iter_mut().find(|l| l.inbox.same_channel(&inbox)) {
            Some(known) => {
                tracing::debug!(?mode, "listener changed mode");
                known.mode = mode;
                known.source = source;
                known.to_agent.clear();
                known.to_customer.clear();
            }
            None => listeners.push(Listener {
                inbox,
                source,
                mode,
                to_agent: Overlay::default(),
                to_customer: Overlay::default(),
            }),
        }
    }

    /// Returns whether any of `listeners` whispers or barges (the agent hears a voice),
    /// and whether any barges (the customer does).
    pub fn coaching(listeners: &[Listener]) -> (bool, bool) {
        let modes = || listeners.iter().map(|l| l.mode);
        (
            modes().any(|m| matches!(m, CoachMode::Whisper | CoachMode::Barge)),
            modes().any(|m| m == CoachMode::Barge),
        )
    }

    /// Keeps the audio of one packet of the listener for the sides its mode lets hear it.
    pub fn heard(&mut self, packet: &BridgedPacket) {
        let (agent, customer) = match self.mode {
            CoachMode::Whisper => (true, false),
            CoachMode::Barge => (true, true),
            CoachMode::Listen | CoachMode::TakeOver => return,
        };
        let Ok(view) = RtpPacket::parse(&packet.bytes) else {
            return;
        };
        if view.payload_type() != packet.codec.payload_type() || view.has_padding() {
            return;
        }
        let codec = g711(packet.codec);
        if agent {
            self.to_agent.push_g711(codec, view.payload());
        }
        if customer {
            self.to_customer.push_g711(codec, view.payload());
        }
    }
}

/// Lays the voices `voice` picks over the G.711 payload of an RTP packet, in place; a
/// packet with padding, or that does not parse, is left alone.
pub(super) fn lay_over_rtp<T>(
    codec: G711,
    bytes: &mut [u8],
    holders: &mut [T],
    voice: impl Fn(&mut T) -> Option<&mut Overlay>,
) {
    let start = match RtpPacket::parse(bytes) {
        Ok(view) if !view.has_padding() && view.payload_type() == codec.payload_type() => {
            bytes.len() - view.payload().len()
        }
        _ => return,
    };
    lay_over(codec, &mut bytes[start..], holders, voice);
}

fn g711(codec: Codec) -> G711 {
    match codec {
        Codec::Pcmu => G711::Pcmu,
        Codec::Pcma => G711::Pcma,
    }
}
