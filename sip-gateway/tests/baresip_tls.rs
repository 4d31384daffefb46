//! Interop over SIP over TLS and SDES-SRTP against Debian's baresip, which plays a
//! provider's trunk, with a tcpdump capture showing what crossed the wire.
//!
//! baresip and tcpdump (Debian packages of those names) must be installed: under `CI=true`
//! a missing one fails these tests; elsewhere they are skipped with a loud message.

#[path = "baresip/capture.rs"]
mod capture;
mod common;
#[path = "baresip/peer.rs"]
mod peer;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use capture::{Capture, Datagram};
use common::{dominant, request, temp_wav, wait_for};
use peer::{Baresip, Pki, BARESIP_TONE, TRUNK_NAME};
use sip_gateway::gateway::{
    probe_trunk, Audio, CallEventKind, EndCause, Gateway, GatewayConfig, ProbeError,
};
use sip_gateway::media::g711::G711;
use sip_gateway::media::tone::sine;

const LIMIT: Duration = Duration::from_secs(10);
/// The tone the gateway sends.
const OUR_TONE: f64 = 440.0;

/// A fresh directory for one test's certificates and baresip's files.
fn scratch(name: &str) -> PathBuf {
    let dir = temp_wav(name).with_extension("d");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config() -> GatewayConfig {
    GatewayConfig {
        t1: Duration::from_millis(100),
        media_timeout: Duration::from_secs(5),
        ..GatewayConfig::loopback()
    }
}

/// Two seconds of the tone the gateway sends.
fn our_tone() -> Vec<i16> {
    sine(OUR_TONE, 8000, 8000, 16000)
}

fn ended(kind: &CallEventKind) -> bool {
    matches!(kind, CallEventKind::Ended { .. })
}

/// Calls baresip, sends our tone for two seconds, hangs up, and checks what each side heard.
async fn call_with_audio_both_ways(gw: &Gateway, baresip: &Baresip, name: &str) {
    let mut events = gw.events();
    let call = gw.dial(request("baresip", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, |k| {
        *k == CallEventKind::Answered || ended(k)
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Answered),
        "baresip answers; its log:\n{}",
        baresip.log()
    );
    let (left, right) =
        common::play_record_hang_up(gw, &mut events, call, name, our_tone(), LIMIT).await;
    assert_eq!(dominant(&left), Some(OUR_TONE), "the tone we sent");
    assert_eq!(
        dominant(&right[right.len() / 4..]),
        Some(BARESIP_TONE),
        "the tone baresip sent reached us"
    );
    let heard = baresip.heard().await;
    assert_eq!(
        dominant(&heard[heard.len() / 4..]),
        Some(OUR_TONE),
        "our tone reached baresip"
    );
}

#[tokio::test]
async fn a_call_over_tls_carries_audio_both_ways() {
    let dir = scratch("tls-call");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let trunk = baresip.trunk(TRUNK_NAME, &pki.ca, false);
    let gw = Gateway::start(config(), vec![trunk]).await.unwrap();
    call_with_audio_both_ways(&gw, &baresip, "tls-call").await;
}

#[tokio::test]
async fn the_trunk_hangs_up_over_the_connection_we_opened() {
    let dir = scratch("tls-bye");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let trunk = baresip.trunk(TRUNK_NAME, &pki.ca, false);
    let gw = Gateway::start(config(), vec![trunk]).await.unwrap();
    let mut events = gw.events();
    let call = gw.dial(request("baresip", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    // The gateway has no TLS listener: baresip's BYE can only come back on our connection.
    baresip.quit().await;
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::RemoteHangup
        }),
        "baresip's log:\n{}",
        baresip.log()
    );
}

#[tokio::test]
async fn doctor_probe_reaches_a_tls_trunk_it_trusts() {
    let dir = scratch("tls-probe");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let trunk = baresip.trunk(TRUNK_NAME, &pki.ca, false);
    let probe = probe_trunk(&config(), &trunk, LIMIT).await;
    let probe = probe.unwrap_or_else(|e| panic!("probe failed: {e}; log:\n{}", baresip.log()));
    // baresip answers an OPTIONS to no user with 404: any answer came over verified TLS.
    assert!((200..700).contains(&probe.options), "{probe:?}");
}

/// Dials baresip through `trunk`, which must not trust it, and returns the probe's error.
async fn refused(trunk: sip_gateway::gateway::TrunkConfig) -> String {
    let gw = Gateway::start(config(), vec![trunk.clone()]).await.unwrap();
    let mut events = gw.events();
    let call = gw.dial(request("baresip", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen,
        vec![CallEventKind::Ended {
            cause: EndCause::TrunkFailure
        }],
        "nothing but the failure: no ringing, no answer"
    );
    match probe_trunk(&config(), &trunk, LIMIT).await {
        Err(ProbeError::Tls(error)) => {
            eprintln!("refused, as it should be: {error}");
            error
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let dir = scratch("tls-name");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let error = refused(baresip.trunk("other.dialcrm.test", &pki.ca, false)).await;
    assert!(
        error.contains("not valid for name") && error.contains("other.dialcrm.test"),
        "{error}"
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let dir = scratch("tls-ca");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let stranger = Pki::new(&dir, "some-other-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let error = refused(baresip.trunk(TRUNK_NAME, &stranger.ca, false)).await;
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn an_srtp_call_carries_audio_both_ways_and_none_in_clear() {
    let dir = scratch("srtp-call");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, true).await else {
        return;
    };
    let Some(capture) = Capture::start(&dir, baresip.rtp_ports).await else {
        return;
    };
    let trunk = baresip.trunk(TRUNK_NAME, &pki.ca, true);
    let gw = Gateway::start(config(), vec![trunk]).await.unwrap();
    call_with_audio_both_ways(&gw, &baresip, "srtp-call").await;
    let wire = Wire::read(capture.stop().await, &baresip);
    for (direction, packets) in [("to baresip", &wire.sent), ("from baresip", &wire.received)] {
        assert!(
            packets.len() > 50,
            "{} RTP packets {direction}",
            packets.len()
        );
        for packet in packets.iter() {
            // 12 bytes of header, 160 of audio, 10 of authentication tag.
            assert_eq!(packet.len(), 12 + 160 + 10, "an SRTP packet {direction}");
        }
        let spread = chi_square(packets, |p| &p[12..172]);
        eprintln!(
            "SRTP {direction}: {} packets, chi-square {spread:.0}",
            packets.len()
        );
        assert!(
            spread < 400.0,
            "payload bytes {direction} look random: {spread}"
        );
    }
    assert_eq!(wire.tone_frames(), 0, "no frame of our tone is on the wire");
}

#[tokio::test]
async fn without_srtp_the_same_capture_sees_the_audio() {
    let dir = scratch("rtp-call");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let Some(capture) = Capture::start(&dir, baresip.rtp_ports).await else {
        return;
    };
    let trunk = baresip.trunk(TRUNK_NAME, &pki.ca, false);
    let gw = Gateway::start(config(), vec![trunk]).await.unwrap();
    call_with_audio_both_ways(&gw, &baresip, "rtp-call").await;
    let wire = Wire::read(capture.stop().await, &baresip);
    // The control for the test above: the same checks see clear audio for what it is.
    assert!(wire.tone_frames() > 50, "our tone is on the wire in clear");
    for (direction, packets) in [("to baresip", &wire.sent), ("from baresip", &wire.received)] {
        assert!(
            packets.len() > 50,
            "{} RTP packets {direction}",
            packets.len()
        );
        let spread = chi_square(packets, |p| &p[12..]);
        eprintln!(
            "RTP {direction}: {} packets, chi-square {spread:.0}",
            packets.len()
        );
        assert!(
            spread > 2000.0,
            "clear tones {direction} are far from random: {spread}"
        );
    }
}

#[tokio::test]
async fn a_peer_without_srtp_gets_no_clear_audio_from_an_srtp_trunk() {
    let dir = scratch("srtp-refused");
    let pki = Pki::new(&dir, "dialcrm-test-ca", TRUNK_NAME);
    let Some(baresip) = Baresip::start(&dir, &pki, false).await else {
        return;
    };
    let Some(capture) = Capture::start(&dir, baresip.rtp_ports).await else {
        return;
    };
    let trunk = baresip.trunk(TRUNK_NAME, &pki.ca, true);
    let gw = Gateway::start(config(), vec![trunk]).await.unwrap();
    let mut events = gw.events();
    let call = gw.dial(request("baresip", LIMIT)).await.unwrap();
    gw.play(call, Audio::Samples(our_tone().into()))
        .await
        .unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::MediaFailed
        }),
        "{seen:?}; baresip's log:\n{}",
        baresip.log()
    );
    assert!(!seen.contains(&CallEventKind::Answered), "{seen:?}");
    let wire = Wire::read(capture.stop().await, &baresip);
    assert!(wire.sent.is_empty(), "{} packets sent", wire.sent.len());
}

/// The RTP packets between the gateway and baresip, each way, from a capture.
struct Wire {
    sent: Vec<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

impl Wire {
    fn read(datagrams: Vec<Datagram>, baresip: &Baresip) -> Wire {
        let (lo, hi) = baresip.rtp_ports;
        let ours = |port: u16| (lo..=hi).contains(&port);
        // RTP, not RTCP: version 2 and a payload type outside RTCP's 72-76.
        let rtp = |d: &Datagram| {
            d.payload.len() > 12
                && d.payload[0] >> 6 == 2
                && !(72..=76).contains(&(d.payload[1] & 0x7f))
        };
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        for d in datagrams.into_iter().filter(rtp) {
            match (ours(d.source_port), ours(d.destination_port)) {
                (false, true) => sent.push(d.payload),
                (true, false) => received.push(d.payload),
                _ => {}
            }
        }
        Wire { sent, received }
    }

    /// Counts the packets sent that carry a 16-byte run of our tone in G.711.
    fn tone_frames(&self) -> usize {
        let tone = our_tone();
        let mut runs = HashSet::new();
        for codec in [G711::Pcmu, G711::Pcma] {
            let mut encoded = vec![0u8; tone.len()];
            codec.encode(&tone, &mut encoded);
            runs.extend(encoded.windows(16).map(<[u8]>::to_vec));
        }
        self.sent
            .iter()
            .filter(|p| p[12..].windows(16).any(|w| runs.contains(w)))
            .count()
    }
}

/// Pearson's chi-square of the payload bytes against a uniform spread: about 255 for
/// random bytes (it exceeds 330 one time in a thousand), tens of thousands for a tone.
fn chi_square(packets: &[Vec<u8>], payload: impl Fn(&Vec<u8>) -> &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    let mut total = 0u64;
    for packet in packets {
        for byte in payload(packet) {
            counts[usize::from(*byte)] += 1;
            total += 1;
        }
    }
    let expected = total as f64 / 256.0;
    counts
        .iter()
        .map(|c| (*c as f64 - expected).powi(2) / expected)
        .sum()
}
