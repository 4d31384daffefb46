//! The agent leg against a real headless Chromium: audio checked by content both ways.
//!
//! Chromium's fake microphone plays a 440 Hz tone; the gateway must decode
//! 440 Hz from what arrives. The gateway sends 1000 Hz; the page's WebAudio
//! analyser on the remote track must find its peak at 1000 Hz.

#[path = "webrtc/cdp.rs"]
mod cdp;
#[path = "webrtc/support.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::Value;
use sip_gateway::media::tone::{dominant_frequency, ToneGenerator};
use sip_gateway::media::G711;
use sip_gateway::webrtc::{AgentLegHandle, LegEvent, OutgoingFrame};
use tokio::net::UdpSocket;
use tokio::time::timeout;

use cdp::{Cdp, Chromium};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CANDIDATES: [f64; 6] = [300.0, 440.0, 697.0, 1000.0, 1336.0, 2000.0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_agent_hears_and_is_heard() {
    let Some(binary) = support::chromium_or_skip("chromium_agent_hears_and_is_heard") else {
        return;
    };
    let dir = support::scratch_dir("leg");
    let result = timeout(Duration::from_secs(90), run(&binary, &dir)).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
        .expect("the Chromium test took longer than 90 seconds")
        .unwrap();
}

async fn run(binary: &Path, dir: &Path) -> Result<()> {
    let tone = dir.join("tone.wav");
    support::write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    // A file page is a secure context, which getUserMedia needs; about:blank is not.
    let page = dir.join("agent.html");
    std::fs::write(&page, "<!doctype html><title>agent</title>")?;
    let outcome = exchange_audio(&mut cdp, &format!("file://{}", page.display())).await;
    chromium.stop(&mut cdp).await;
    outcome
}

async fn exchange_audio(cdp: &mut Cdp, url: &str) -> Result<()> {
    let page = cdp.open_page(url).await?;
    let offer = cdp.evaluate(&page, include_str!("webrtc/offer.js")).await?;
    let offer = offer.as_str().context("the offer is not a string")?;
    assert!(
        offer.contains("PCMU/8000"),
        "Chromium offered no PCMU:\n{offer}"
    );

    let socket = UdpSocket::bind((LOOPBACK, 0)).await?;
    let (leg, answer, mut streams) = AgentLegHandle::accept(offer, LOOPBACK, socket)?;
    let sender = tokio::spawn(send_tone(leg.clone(), 1000.0));

    let apply = format!(
        "window.agentPc.setRemoteDescription({{ type: 'answer', sdp: {} }}).then(() => 'ok')",
        serde_json::to_string(&answer)?
    );
    cdp.evaluate(&page, &apply).await?;
    let connected = timeout(Duration::from_secs(20), streams.events.recv()).await;
    assert_eq!(
        connected.context("no connection within 20 s")?,
        Some(LegEvent::Connected)
    );

    // The browser's 440 Hz, as the gateway decodes it: one second after a settling half second.
    let mut heard = Vec::new();
    let mut frames = 0;
    while heard.len() < 8000 {
        let frame = timeout(Duration::from_secs(5), streams.frames.recv())
            .await
            .context("the browser's audio stopped")?
            .context("the leg ended")?;
        frames += 1;
        if frames <= 25 {
            continue;
        }
        let mut pcm = vec![0; frame.payload.len()];
        frame.codec.decode(&frame.payload, &mut pcm);
        heard.extend(pcm);
    }
    let at_gateway = dominant_frequency(&heard, &CANDIDATES, 8000, 0.001);
    assert_eq!(at_gateway, Some(440.0), "the gateway did not hear 440 Hz");

    // The gateway's 1000 Hz, as the browser's analyser hears it.
    let report: Value = serde_json::from_str(
        cdp.evaluate(&page, include_str!("webrtc/listen.js"))
            .await?
            .as_str()
            .context("the listener returned no report")?,
    )?;
    eprintln!("browser report: {report}");
    assert_eq!(report["codec"], "audio/PCMU", "PCMU was not chosen first");
    assert!(report["totalSamplesReceived"].as_u64().unwrap_or(0) > 8000);
    support::assert_heard(&report, 1000.0)?;

    sender.abort();
    drop(leg);
    let closed = timeout(Duration::from_secs(5), async {
        while let Some(event) = streams.events.recv().await {
            if event == LegEvent::Closed {
                return true;
            }
        }
        false
    });
    assert!(closed.await.unwrap_or(false), "the leg did not close");
    Ok(())
}

/// Sends a PCMU tone every 20 ms, as a bridged call would.
async fn send_tone(leg: AgentLegHandle, frequency: f64) {
    let mut tone = ToneGenerator::new(frequency, 12_000, 8000);
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    let mut timestamp = 0u32;
    let mut pcm = [0i16; 160];
    loop {
        ticks.tick().await;
        tone.fill(&mut pcm);
        let mut payload = vec![0; 160];
        G711::Pcmu.encode(&pcm, &mut payload);
        let frame = OutgoingFrame {
            codec: G711::Pcmu,
            timestamp,
            payload: Bytes::from(payload),
        };
        if leg.send_frame(frame).is_err() {
            return;
        }
        timestamp = timestamp.wrapping_add(160);
    }
}
