//! A headless Chromium that will only speak Opus, bridged to a carrier call.
//!
//! The page sets its codec preferences to Opus alone, so its offer has no
//! PCMU or PCMA and the agent leg must transcode. The browser's fake
//! microphone plays 440 Hz and the carrier's customer 1000 Hz: the browser
//! must hear 1000 Hz over Opus, the customer must hear 440 Hz over G.711,
//! and the recording must hold 440 Hz on the left and 1000 Hz on the right.

#[path = "webrtc/cdp.rs"]
mod cdp;
mod common;
#[path = "webrtc/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use sip_gateway::carrier::{Carrier, Outcome};
use sip_gateway::gateway::{CallEventKind, Gateway, GatewayConfig, TrunkConfig};
use tokio::time::timeout;

use cdp::{Cdp, Chromium};
use common::{channels, dominant, request, wait_for};

const LIMIT: Duration = Duration::from_secs(5);
const AGENT_TONE: f64 = 440.0;
const CUSTOMER_TONE: f64 = 1000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opus_only_browser_is_bridged_to_a_trunk_call() {
    let test = "an_opus_only_browser_is_bridged_to_a_trunk_call";
    let Some(binary) = support::chromium_or_skip(test) else {
        return;
    };
    let dir = support::scratch_dir("opus");
    let result = timeout(Duration::from_secs(60), run(&binary, &dir)).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
        .expect("the Opus test took longer than 60 seconds")
        .unwrap();
}

async fn run(binary: &Path, dir: &Path) -> Result<()> {
    let carrier = common::carrier(Outcome::Answer, Some(CUSTOMER_TONE)).await;
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        ..GatewayConfig::loopback()
    };
    let trunks = vec![TrunkConfig::new("carrier", carrier.sip_addr())];
    let gateway = Gateway::start(config, trunks).await?;

    let mic = dir.join("agent.wav");
    support::write_tone(&mic, AGENT_TONE)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &mic).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    // A file page is a secure context, which getUserMedia needs; about:blank is not.
    let page = dir.join("agent.html");
    std::fs::write(&page, "<!doctype html><title>agent</title>")?;
    let url = format!("file://{}", page.display());
    let outcome = call(&mut cdp, &url, &gateway, &carrier, dir).await;
    chromium.stop(&mut cdp).await;
    outcome
}

async fn call(
    cdp: &mut Cdp,
    url: &str,
    gateway: &Gateway,
    carrier: &Carrier,
    dir: &Path,
) -> Result<()> {
    let page = cdp.open_page(url).await?;
    let offer = cdp
        .evaluate(&page, include_str!("webrtc/offer_opus.js"))
        .await?;
    let offer = offer.as_str().context("the offer is not a string")?;
    ensure!(offer.contains("opus/48000"), "no Opus offered:\n{offer}");
    ensure!(
        !offer.contains("PCMU/8000") && !offer.contains("PCMA/8000"),
        "the page still offered G.711:\n{offer}"
    );

    let mut events = gateway.events();
    let (agent, answer) = gateway.attach_agent(offer).await?;
    ensure!(
        answer.contains("opus/48000"),
        "answer without Opus:\n{answer}"
    );
    let apply = format!(
        "window.agentPc.setRemoteDescription({{ type: 'answer', sdp: {} }}).then(() => 'ok')",
        serde_json::to_string(&answer)?
    );
    cdp.evaluate(&page, &apply).await?;
    wait_for(&mut events, agent, Duration::from_secs(20), |k| {
        *k == CallEventKind::Answered
    })
    .await;

    let call = gateway.dial(request("carrier", LIMIT)).await?;
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    gateway.bridge(call, agent).await?;
    let recording = dir.join("call.wav");
    gateway.record(call, &recording).await?;
    carrier.start_capture();

    // The customer's 1000 Hz, through G.711 → 48 kHz → Opus, as the browser hears it.
    let report = cdp
        .evaluate(&page, include_str!("webrtc/listen.js"))
        .await?;
    let report: Value =
        serde_json::from_str(report.as_str().context("the listener returned no report")?)?;
    eprintln!("browser report: {report}");
    ensure!(report["codec"] == "audio/opus", "not Opus: {report}");
    ensure!(report["totalSamplesReceived"].as_u64().unwrap_or(0) > 48_000);
    support::assert_heard(&report, CUSTOMER_TONE)?;

    // The agent's 440 Hz, through Opus → 8 kHz → G.711, as the customer hears it.
    let heard = carrier.take_capture().audio;
    ensure!(
        heard.len() > 8000,
        "the customer heard {} samples",
        heard.len()
    );
    assert_eq!(
        dominant(&heard[heard.len() / 4..]),
        Some(AGENT_TONE),
        "the customer did not hear the agent"
    );

    gateway.hangup(call).await?;
    wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    let (left, right) = channels(&recording);
    ensure!(right.len() > 8000, "recorded {} samples", right.len());
    assert_eq!(dominant(&left), Some(AGENT_TONE), "the agent, left");
    assert_eq!(dominant(&right), Some(CUSTOMER_TONE), "the customer, right");

    gateway.hangup(agent).await?;
    wait_for(&mut events, agent, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    Ok(())
}
