//! The carrier's RTP side of one answered call: plays its audio, counts what arrives.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::Counters;
use crate::media::playback::{Player, PlayerConfig};
use crate::media::G711;
use crate::sip::sdp::Codec;

/// Plays `samples` in a loop to the caller until `stop` fires or is dropped.
pub(super) async fn play(
    socket: UdpSocket,
    remote: SocketAddr,
    codec: Codec,
    samples: Arc<[i16]>,
    counters: Arc<Counters>,
    mut stop: oneshot::Receiver<()>,
) {
    let codec = match codec {
        Codec::Pcmu => G711::Pcmu,
        Codec::Pcma => G711::Pcma,
    };
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
    loop {
        let next = player.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = &mut stop => return,
            received = socket.recv_from(&mut buf) => {
                if let Ok((_, from)) = received {
                    target = from;
                    counters.rtp_received.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                player.handle_timeout(tokio::time::Instant::now().into_std());
                while let Some(frame) = player.poll_transmit() {
                    if counters.muted.load(Ordering::Relaxed) {
                        continue;
                    }
                    if socket.try_send_to(frame.as_bytes(), target).is_ok() {
                        counters.rtp_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
