//! Interop over SIP over TLS against Debian's baresip, which plays a provider's trunk.
//!
//! baresip (Debian package `baresip`) must be installed: under `CI=true` a missing baresip
//! fails these tests; elsewhere they are skipped with a loud message.

mod common;
#[path = "baresip/peer.rs"]
mod peer;

use std::path::PathBuf;
use std::time::Duration;

use common::{dominant, request, temp_wav, wait_for};
use peer::{Baresip, Pki, BARESIP_TONE, TRUNK_NAME};
use sip_gateway::gateway::{
    probe_trunk, Audio, CallEventKind, EndCause, Gateway, GatewayConfig, ProbeError,
};
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
    let path = temp_wav(name);
    gw.record(call, &path).await.unwrap();
    let tone = sine(OUR_TONE, 8000, 8000, 16000);
    gw.play(call, Audio::Samples(tone.into())).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| {
        *k == CallEventKind::PlaybackFinished
    })
    .await;
    gw.hangup(call).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    let (left, right) = common::channels(&path);
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
