//! Calls the provider offers us, with sipp playing the provider's caller
//! (scenarios `tests/sipp/inbound_*.xml`): answered and bridged to an agent
//! leg with audio both ways, refused with 404, and cancelled.
//!
//! sipp (Debian package `sip-tester`) must be installed: under `CI=true` a
//! missing sipp fails these tests; elsewhere they are skipped loudly.

mod common;
#[path = "common/softphone.rs"]
mod softphone;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{channels, dominant, temp_wav, wait_for};
use sip_gateway::gateway::{
    CallEvent, CallEventKind, EndCause, Gateway, GatewayConfig, IncomingCall, TrunkConfig,
};
use softphone::Softphone;
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;

const LIMIT: Duration = Duration::from_secs(10);
const DID: &str = "+441632960001";
const CALLER: &str = "+447400123456";

/// sipp calling the gateway once; killed if the test ends early.
struct Caller {
    child: Child,
    log: PathBuf,
}

impl Caller {
    /// Starts sipp calling `number` at the gateway from `port`, or returns
    /// `None` when sipp is absent outside CI.
    async fn call(scenario: &str, gateway: &Gateway, port: u16, number: &str) -> Option<Caller> {
        let installed = Command::new("sipp")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok();
        if !installed {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "sipp is not installed (Debian sip-tester) and CI=true");
            eprintln!("!!! SKIPPING inbound test {scenario}: sipp is not installed (apt-get install sip-tester) !!!");
            return None;
        }
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/sipp")
            .join(scenario);
        let log = temp_wav(&format!("sipp-{scenario}")).with_extension("log");
        let media = free_udp_port();
        let child = Command::new("sipp")
            .arg(gateway.sip_udp_addr().to_string())
            .arg("-sf")
            .arg(&path)
            .args(["-s", number, "-key", "caller", CALLER])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string(), "-rtp_echo"])
            .args(["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Some(Caller { child, log })
    }

    /// Waits for sipp to finish its call and asserts the scenario passed.
    async fn passed(mut self) {
        let status = tokio::time::timeout(LIMIT * 2, self.child.wait())
            .await
            .expect("sipp finishes its scenario")
            .unwrap();
        let errors = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            status.success(),
            "sipp scenario failed ({status}): {errors}"
        );
    }
}

fn free_udp_port() -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        if port > 1024 && (0..4).all(|i| std::net::UdpSocket::bind(("127.0.0.1", port + i)).is_ok())
        {
            return port;
        }
    }
}

/// A gateway whose one trunk is sipp's address on loopback.
async fn gateway() -> (Gateway, u16) {
    let port = free_udp_port();
    let trunk = TrunkConfig::new("provider", format!("127.0.0.1:{port}").parse().unwrap());
    let config = GatewayConfig {
        t1: Duration::from_millis(100),
        media_timeout: Duration::from_secs(3),
        ..GatewayConfig::loopback()
    };
    (Gateway::start(config, vec![trunk]).await.unwrap(), port)
}

async fn next_offer(incoming: &mut UnboundedReceiver<IncomingCall>) -> IncomingCall {
    tokio::time::timeout(LIMIT, incoming.recv())
        .await
        .expect("a call is offered in time")
        .expect("the gateway runs")
}

/// Collects a call's events until one satisfies `stop`.
async fn until(
    events: &mut UnboundedReceiver<CallEvent>,
    stop: impl Fn(&CallEventKind) -> bool,
) -> Vec<CallEventKind> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(LIMIT, events.recv())
            .await
            .unwrap_or_else(|_| panic!("an event in time; so far {seen:?}"))
            .expect("events until Ended");
        let done = stop(&event.kind);
        seen.push(event.kind);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn an_answered_call_reaches_an_agent_with_audio_both_ways() {
    let (gw, port) = gateway().await;
    let mut incoming = gw.incoming();
    let Some(caller) = Caller::call("inbound_caller.xml", &gw, port, DID).await else {
        return;
    };
    let mut call = next_offer(&mut incoming).await;
    assert_eq!(call.number, DID);
    assert_eq!(call.caller.as_deref(), Some(CALLER));
    assert_eq!(call.trunk, "provider");
    assert!(
        !format!("{call:?}").contains("7400123456"),
        "the caller's number stays out of logs"
    );
    gw.ring(call.call_ref).await.expect("rings");
    let agent = Softphone::attach(&gw, 1000.0).await.expect("agent leg up");
    gw.answer(call.call_ref).await.expect("answers");
    until(&mut call.events, |k| *k == CallEventKind::Answered).await;
    let path = temp_wav("inbound");
    gw.record(call.call_ref, &path).await.expect("records");
    gw.bridge(call.call_ref, agent.call_ref)
        .await
        .expect("bridges");
    // sipp echoes what it hears: the agent's 1000 Hz goes to the caller and
    // comes back to the agent.
    let heard = agent.hear_for(Duration::from_secs(2)).await;
    assert_eq!(
        dominant(&heard[heard.len() / 2..]),
        Some(1000.0),
        "the agent hears the caller's side"
    );
    gw.hangup(call.call_ref).await.expect("hangs up");
    let seen = until(&mut call.events, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    let (left, right) = channels(&path);
    assert_eq!(dominant(&left), Some(1000.0), "what went to the caller");
    assert_eq!(
        dominant(&right[right.len() / 4..]),
        Some(1000.0),
        "what the caller sent back"
    );
    assert!(
        gw.answer(call.call_ref).await.is_err(),
        "an ended call cannot be answered"
    );
    caller.passed().await;
}

#[tokio::test]
async fn the_caller_hanging_up_ends_the_call() {
    let (gw, port) = gateway().await;
    let mut incoming = gw.incoming();
    let Some(caller) = Caller::call("inbound_caller.xml", &gw, port, DID).await else {
        return;
    };
    let mut call = next_offer(&mut incoming).await;
    gw.answer(call.call_ref).await.expect("answers");
    // A tone for sipp to echo, so media flows as with a real caller.
    let tone = sip_gateway::media::tone::sine(440.0, 8000, 8000, 8000 * 10);
    gw.play(
        call.call_ref,
        sip_gateway::gateway::Audio::Samples(tone.into()),
    )
    .await
    .expect("plays");
    // sipp hangs up after its hold time.
    let seen = until(&mut call.events, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::RemoteHangup
        })
    );
    caller.passed().await;
}

#[tokio::test]
async fn a_number_that_is_not_ours_gets_404() {
    let (gw, port) = gateway().await;
    let mut incoming = gw.incoming();
    let Some(caller) = Caller::call("inbound_unknown.xml", &gw, port, "+441632960999").await else {
        return;
    };
    let mut call = next_offer(&mut incoming).await;
    gw.reject(call.call_ref, 404).await.expect("refuses");
    let seen = until(&mut call.events, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::Rejected
        })
    );
    caller.passed().await;
}

#[tokio::test]
async fn without_a_taker_calls_get_404() {
    let (gw, port) = gateway().await;
    let Some(caller) = Caller::call("inbound_unknown.xml", &gw, port, DID).await else {
        return;
    };
    caller.passed().await;
}
