//! A headless Chromium as the agent's leg of the gateway, with carrier calls bridged into it.
//!
//! The browser's fake microphone plays 440 Hz; the first carrier plays 1000 Hz
//! and the second 697 Hz. One WebRTC session carries both calls, one after
//! the other, with no second offer: the browser must hear each call's tone,
//! and each call's recording must hold the agent's 440 Hz on the left and
//! that carrier's tone on the right. The gateway spreads its legs over two
//! media threads, so one call is bridged across threads.

#[path = "webrtc/cdp.rs"]
mod cdp;
mod common;
#[path = "webrtc/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    CallEvent, CallEventKind, CallRef, EndCause, Gateway, GatewayConfig, GatewayError, TrunkConfig,
};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::timeout;

use cdp::{Cdp, Chromium};
use common::{channels, dominant, request, wait_for};

const LIMIT: Duration = Duration::from_secs(5);
const AGENT_TONE: f64 = 440.0;
/// The zip tone's pitch, as `Gateway::zip_tone` documents it.
const ZIP_TONE: f64 = 1400.0;
/// Each carrier's trunk name and the tone its customer plays.
const CUSTOMERS: [(&str, f64); 2] = [("first", 1000.0), ("second", 697.0)];

/// Reads the browser's DTLS transport and negotiation state, to show they did not change.
const SESSION_JS: &str = "(async () => {
  const pc = window.agentPc;
  const stats = await pc.getStats();
  let transport = null;
  stats.forEach((s) => { if (s.type === 'transport') transport = s; });
  return JSON.stringify({
    signaling: pc.signalingState,
    connection: pc.connectionState,
    dtls: transport?.dtlsState ?? null,
    pair: transport?.selectedCandidatePairId ?? null,
    certificates: [transport?.localCertificateId ?? null, transport?.remoteCertificateId ?? null],
    remoteSdp: pc.remoteDescription?.sdp ?? null,
  });
})()";

/// The connection's state changes and its candidate pairs, to explain a failure.
const HISTORY_JS: &str = "(async () => {
  const pairs = [];
  (await window.agentPc.getStats()).forEach((s) => {
    if (s.type === 'candidate-pair') pairs.push(s);
  });
  return JSON.stringify({ states: window.stateLog, pairs });
})()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_bridged_into_one_nailed_up_agent_leg() {
    let test = "calls_are_bridged_into_one_nailed_up_agent_leg";
    let Some(binary) = support::chromium_or_skip(test) else {
        return;
    };
    let dir = support::scratch_dir("bridge");
    let result = timeout(Duration::from_secs(60), run(&binary, &dir)).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
        .expect("the bridge test took longer than 60 seconds")
        .unwrap();
}

async fn run(binary: &Path, dir: &Path) -> Result<()> {
    let mut carriers = Vec::new();
    let mut trunks = Vec::new();
    for (trunk, tone) in CUSTOMERS {
        let carrier = carrier(tone).await?;
        trunks.push(TrunkConfig::new(trunk, carrier.sip_addr()));
        carriers.push(carrier);
    }
    // Legs on two media threads of their own: the agent's leg and the
    // second call share one, the first call has the other, so audio is
    // bridged both within a thread and across threads.
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        media_threads: 2,
        ..GatewayConfig::loopback()
    };
    let gateway = Gateway::start(config, trunks).await?;

    let mic = dir.join("agent.wav");
    support::write_tone(&mic, AGENT_TONE)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &mic).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    // A file page is a secure context, which getUserMedia needs; about:blank is not.
    let page = dir.join("agent.html");
    std::fs::write(&page, "<!doctype html><title>agent</title>")?;
    let url = format!("file://{}", page.display());
    let outcome = shift(&mut cdp, &url, &gateway, dir).await;
    chromium.stop(&mut cdp).await;
    outcome?;
    for (carrier, (trunk, _)) in carriers.iter().zip(CUSTOMERS) {
        let received = carrier.stats().rtp_received;
        ensure!(received > 50, "carrier {trunk} got {received} packets");
    }
    Ok(())
}

/// Attaches the browser, then bridges each carrier's call into it in turn.
async fn shift(cdp: &mut Cdp, url: &str, gateway: &Gateway, dir: &Path) -> Result<()> {
    let page = cdp.open_page(url).await?;
    let offer = cdp.evaluate(&page, include_str!("webrtc/offer.js")).await?;
    let offer = offer.as_str().context("the offer is not a string")?;

    let mut events = gateway.events();
    let (agent, answer) = gateway.attach_agent(offer).await?;
    let apply = format!(
        "window.agentPc.setRemoteDescription({{ type: 'answer', sdp: {} }}).then(() => 'ok')",
        serde_json::to_string(&answer)?
    );
    cdp.evaluate(&page, &apply).await?;
    wait_for(&mut events, agent, Duration::from_secs(20), |k| {
        *k == CallEventKind::Answered
    })
    .await;
    let mut agent_events = gateway.events();
    let before = session(cdp, &page).await?;
    ensure!(before["dtls"] == "connected", "{before}");

    for (n, (trunk, tone)) in CUSTOMERS.into_iter().enumerate() {
        let call = gateway.dial(request(trunk, LIMIT)).await?;
        wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
        gateway.bridge(call, agent).await?;
        let recording = dir.join(format!("call-{n}.wav"));
        gateway.record(call, &recording).await?;

        let report = listen(cdp, &page).await?;
        support::assert_heard(&report, tone)
            .with_context(|| format!("call {n} through {trunk}"))?;
        if n == 0 {
            zip_tone(cdp, &page, gateway, agent, call, tone).await?;
        }

        gateway.hangup(call).await?;
        wait_for(&mut events, call, LIMIT, |k| {
            matches!(k, CallEventKind::Ended { .. })
        })
        .await;
        let (left, right) = channels(&recording);
        ensure!(
            right.len() > 8000,
            "call {n} recorded {} samples",
            right.len()
        );
        assert_eq!(
            dominant(&left),
            Some(AGENT_TONE),
            "call {n}: the agent, left"
        );
        assert_eq!(
            dominant(&right),
            Some(tone),
            "call {n}: the customer, right"
        );
    }

    // The session is the same one when its certificates, its selected
    // candidate pair, its negotiated SDP and its DTLS state are: each call
    // above was heard through it. Chromium's aggregate `connectionState` is
    // not compared: it has been seen reading `connecting` for seconds on a
    // loaded host while DTLS stayed up on the same pair, as its ICE agent
    // rechecked a second, unselected pair. What must never happen is the
    // connection failing or closing, and its history shows that.
    let after = session(cdp, &page).await?;
    let history = cdp.evaluate(&page, HISTORY_JS).await?;
    let identity = |s: &Value| {
        let mut s = s.clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("connection");
        }
        s
    };
    if identity(&after) != identity(&before) {
        bail!("the browser's session changed between calls:\nbefore {before}\nafter {after}\n{history}");
    }
    let states: Value = serde_json::from_str(history.as_str().context("no history")?)?;
    let states = states["states"].as_array().context("no state log")?;
    ensure!(
        !states.iter().any(|s| {
            let s = s.as_str().unwrap_or("");
            s.ends_with(" failed") || s.ends_with(" closed")
        }),
        "the browser's connection failed or closed between calls: {history}"
    );
    assert_quiet(&mut agent_events, agent)?;
    gateway.hangup(agent).await?;
    let seen = wait_for(&mut events, agent, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    Ok(())
}

/// Fails if the agent leg reported anything since it connected: no drop, no end, no new answer.
fn assert_quiet(
    events: &mut tokio::sync::broadcast::Receiver<CallEvent>,
    agent: CallRef,
) -> Result<()> {
    loop {
        match events.try_recv() {
            Ok(event) if event.call_ref == agent => {
                bail!("the agent leg reported {:?} between calls", event.kind)
            }
            Ok(_) => {}
            Err(TryRecvError::Empty) => return Ok(()),
            Err(error) => bail!("event stream failed: {error}"),
        }
    }
}

/// The agent hears the zip tone in place of the call, then the call again;
/// a trunk call has no zip tone to play.
async fn zip_tone(
    cdp: &mut Cdp,
    page: &str,
    gateway: &Gateway,
    agent: CallRef,
    call: CallRef,
    tone: f64,
) -> Result<()> {
    cdp.evaluate(page, include_str!("webrtc/watch.js")).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.zip_tone(agent).await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let log = cdp.evaluate(page, "JSON.stringify(window.peakLog)").await?;
    let log: Value = serde_json::from_str(log.as_str().context("no peak log")?)?;
    support::assert_zip_then(&log, ZIP_TONE, tone)?;
    assert!(matches!(
        gateway.zip_tone(call).await,
        Err(GatewayError::NotAnAgentLeg)
    ));
    Ok(())
}

async fn listen(cdp: &mut Cdp, page: &str) -> Result<Value> {
    let report = cdp.evaluate(page, include_str!("webrtc/listen.js")).await?;
    let report: Value =
        serde_json::from_str(report.as_str().context("the listener returned no report")?)?;
    eprintln!("browser report: {report}");
    Ok(report)
}

async fn session(cdp: &mut Cdp, page: &str) -> Result<Value> {
    let state = cdp.evaluate(page, SESSION_JS).await?;
    Ok(serde_json::from_str(
        state.as_str().context("no session state")?,
    )?)
}

async fn carrier(tone: f64) -> Result<Carrier> {
    Ok(Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse()?,
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        audio: CarrierAudio::Tone(tone),
        ..CarrierConfig::default()
    })
    .await?)
}

#[tokio::test]
async fn a_bad_offer_is_refused_and_unknown_agents_are_reported() {
    let gateway = Gateway::start(GatewayConfig::loopback(), Vec::new())
        .await
        .unwrap();
    let refused = gateway.attach_agent("v=0\r\nnot an offer\r\n").await;
    assert!(
        matches!(refused, Err(GatewayError::WebRtc(_))),
        "{refused:?}"
    );
    let nobody = CallRef::random();
    let bridged = gateway.bridge(nobody, CallRef::random()).await;
    assert!(
        matches!(bridged, Err(GatewayError::NoSuchCall)),
        "{bridged:?}"
    );
    let hung_up = gateway.hangup(nobody).await;
    assert!(
        matches!(hung_up, Err(GatewayError::NoSuchCall)),
        "{hung_up:?}"
    );
}
