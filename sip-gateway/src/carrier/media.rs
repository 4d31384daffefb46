//! The carrier's RTP side of one answered call: plays its audio, counts (and, when asked,
//! captures) what arrives.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::counter::FrameStamp;
use super::{CapturedEvent, Counters};
use crate::media::dtmf::{DtmfDetector, TelephoneEvent};
use crate::media::playback::{Player, PlayerConfig, FRAME_SAMPLES};
use crate::media::rtp::{RtpPacket, FIXED_HEADER_LEN};
use crate::media::G711;
use crate::sip::sdp::{Codec, NegotiatedMedia};

/// Plays `samples` in a loop to the caller until `stop` fires or is dropped; with
/// `stamp_leg`, each frame's payload is instead that leg's [`FrameStamp`].
pub(super) async fn play(
    socket: UdpSocket,
    media: NegotiatedMedia,
    samples: Arc<[i16]>,
    stamp_leg: Option<u32>,
    counters: Arc<Counters>,
    mut stop: oneshot::Receiver<()>,
) {
    let remote = media.remote_rtp;
    let codec = match media.codec {
        Codec::Pcmu => G711::Pcmu,
        Codec::Pcma => G711::Pcma,
    };
    let mut detector = DtmfDetector::new(8000);
    let config = PlayerConfig {
        codec,
        payload_type: codec.payload_type(),
        ssrc: rand::random(),
        initial_sequence: rand::random(),
        initial_timestamp: rand::random(),
        looping: true,
    };
    let mut player = Player::new(samples, config, tokio::time::Instant::now().into_std());
    // Symmetric RTP: once the caller's media arrives, answer to where it comes from.
    let mut target = remote;
    let mut buf = [0u8; 2048];
    let mut produced = 0u32;
    let mut stamped = [0u8; FIXED_HEADER_LEN + FRAME_SAMPLES];
    loop {
        let next = player.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = &mut stop => return,
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, from)) = received {
                    target = from;
                    counters.rtp_received.fetch_add(1, Ordering::Relaxed);
                    let packet = &buf[..len];
                    counters.capture(|c| capture(c, packet, codec, media.telephone_event, &mut detector));
                }
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                player.handle_timeout(tokio::time::Instant::now().into_std());
                while let Some(frame) = player.poll_transmit() {
                    let bytes = match stamp_leg {
                        Some(leg) => {
                            // A frame is always one header and one 20 ms payload.
                            stamped.copy_from_slice(frame.as_bytes());
                            FrameStamp { leg, index: produced }.write(&mut stamped[FIXED_HEADER_LEN..]);
                            &stamped[..]
                        }
                        None => frame.as_bytes(),
                    };
                    // Muted frames are counted too, as their RTP timestamps are.
                    produced = produced.wrapping_add(1);
                    if counters.muted.load(Ordering::Relaxed) {
                        continue;
                    }
                    if socket.try_send_to(bytes, target).is_ok() {
                        counters.rtp_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Adds one received packet to the capture: audio decoded, telephone events decoded to digits.
fn capture(
    into: &mut super::Capture,
    datagram: &[u8],
    codec: G711,
    telephone_event: Option<u8>,
    detector: &mut DtmfDetector,
) {
    let Ok(packet) = RtpPacket::parse(datagram) else {
        return;
    };
    let now = tokio::time::Instant::now().into_std();
    if packet.payload_type() == codec.payload_type() {
        let start = into.audio.len();
        into.audio.resize(start + packet.payload().len(), 0);
        codec.decode(packet.payload(), &mut into.audio[start..]);
    } else if Some(packet.payload_type()) == telephone_event {
        let Ok(event) = TelephoneEvent::parse(packet.payload()) else {
            return;
        };
        into.events.push(CapturedEvent {
            marker: packet.marker(),
            sequence: packet.sequence(),
            timestamp: packet.timestamp(),
            event,
            at: now,
        });
        let _ = detector.handle_packet(packet.timestamp(), packet.payload(), now);
        while let Some(press) = detector.poll_event() {
            into.digits.push(press.digit);
        }
    }
}
