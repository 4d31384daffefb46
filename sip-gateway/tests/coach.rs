//! A supervisor coaching a live call, with real browsers on both WebRTC legs: who hears
//! whom in each mode, told apart by frequency.
//!
//! The simulated carrier is the customer and plays 1000 Hz, keeping what it receives; a
//! headless Chromium is the agent, its fake microphone playing 440 Hz; a second Chromium is
//! the supervisor, playing 1600 Hz. The supervisor's one WebRTC session goes from listening
//! to whispering, barging, listening again and taking over, with no second offer; each
//! browser's ears are an analyser on its remote track.

#[path = "webrtc/cdp.rs"]
mod cdp;
mod common;
#[path = "webrtc/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    CallEventKind, CallRef, CoachMode, Gateway, GatewayConfig, GatewayError, TrunkConfig,
};
use sip_gateway::media::tone::goertzel_power;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::timeout;

use cdp::{Cdp, Chromium};
use common::{request, wait_for};

const LIMIT: Duration = Duration::from_secs(10);
const CUSTOMER: f64 = 1000.0;
const AGENT: f64 = 440.0;
const SUPERVISOR: f64 = 1600.0;
/// The customer of the agent's next call.
const NEXT_CUSTOMER: f64 = 697.0;
const TONES: [f64; 4] = [CUSTOMER, AGENT, SUPERVISOR, NEXT_CUSTOMER];
/// A browser hears a tone whose median level is above this (dB, the analyser's scale): a
/// tone heard is about -25 dB.
const HEARD_DB: f64 = -45.0;
/// A browser does not hear a tone whose median level is below this: the floor of G.711
/// noise under two tones mixed is about -75 dB.
const SILENT_DB: f64 = -60.0;
/// Goertzel power of a tone the carrier clearly received, and of one it did not.
const PRESENT: f64 = 0.0005;
const ABSENT: f64 = 0.0001;

/// Reads the browser's session: a renegotiation or a new connection would change it.
const SESSION_JS: &str = "(async () => {
  const pc = window.agentPc;
  const stats = await pc.getStats();
  let transport = null;
  stats.forEach((s) => { if (s.type === 'transport') transport = s; });
  return JSON.stringify({
    signaling: pc.signalingState,
    dtls: transport?.dtlsState ?? null,
    certificates: [transport?.localCertificateId ?? null, transport?.remoteCertificateId ?? null],
    localSdp: pc.localDescription?.sdp ?? null,
    remoteSdp: pc.remoteDescription?.sdp ?? null,
  });
})()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_listens_whispers_barges_and_takes_over_on_one_session() {
    let test = "a_supervisor_listens_whispers_barges_and_takes_over_on_one_session";
    let Some(binary) = support::chromium_or_skip(test) else {
        return;
    };
    let dir = support::scratch_dir("coach");
    let result = timeout(Duration::from_secs(120), run(&binary, &dir)).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
        .expect("the coaching test took longer than 120 seconds")
        .unwrap();
}

/// One browser on a leg of the gateway.
struct Browser {
    chromium: Chromium,
    cdp: Cdp,
    page: String,
    leg: CallRef,
}

impl Browser {
    /// Starts a Chromium whose microphone plays `tone` and attaches its offer as a leg.
    async fn attach(
        binary: &Path,
        dir: &Path,
        name: &str,
        tone: f64,
        gw: &Gateway,
    ) -> Result<Self> {
        let mic = dir.join(format!("{name}.wav"));
        support::write_tone(&mic, tone)?;
        let chromium = Chromium::start(binary, &dir.join(format!("{name}-profile")), &mic).await?;
        let mut cdp = Cdp::connect(&chromium.ws_url).await?;
        // A file page is a secure context, which getUserMedia needs.
        let html = dir.join(format!("{name}.html"));
        std::fs::write(&html, "<!doctype html><title>leg</title>")?;
        let page = cdp.open_page(&format!("file://{}", html.display())).await?;
        let offer = cdp.evaluate(&page, include_str!("webrtc/offer.js")).await?;
        let offer = offer.as_str().context("the offer is not a string")?;
        let mut events = gw.events();
        let (leg, answer) = gw.attach_agent(offer).await?;
        let apply = format!(
            "window.agentPc.setRemoteDescription({{ type: 'answer', sdp: {} }}).then(() => 'ok')",
            serde_json::to_string(&answer)?
        );
        cdp.evaluate(&page, &apply).await?;
        wait_for(&mut events, leg, Duration::from_secs(20), |k| {
            *k == CallEventKind::Answered
        })
        .await;
        let set = format!("window.toneHz = {}; 'ok'", serde_json::to_string(&TONES)?);
        cdp.evaluate(&page, &set).await?;
        Ok(Browser {
            chromium,
            cdp,
            page,
            leg,
        })
    }

    /// Returns the median level of each of [`TONES`] over a second and a half.
    async fn hears(&mut self) -> Result<Levels> {
        let report = self
            .cdp
            .evaluate(&self.page, include_str!("webrtc/tones.js"))
            .await?;
        let report: Value = serde_json::from_str(report.as_str().context("no tone report")?)?;
        Ok(Levels(report))
    }

    async fn session(&mut self) -> Result<Value> {
        let state = self.cdp.evaluate(&self.page, SESSION_JS).await?;
        Ok(serde_json::from_str(
            state.as_str().context("no session state")?,
        )?)
    }

    async fn stop(mut self) {
        self.chromium.stop(&mut self.cdp).await;
    }
}

/// What a browser heard: the median level in dB of each tone.
#[derive(Debug)]
struct Levels(Value);

impl Levels {
    fn db(&self, hz: f64) -> f64 {
        self.0[format!("{hz}")]
            .as_f64()
            .unwrap_or(f64::NEG_INFINITY)
    }

    fn heard(&self, hz: f64, who: &str, step: &str) -> Result<()> {
        let db = self.db(hz);
        ensure!(
            db > HEARD_DB,
            "{step}: the {who} did not hear {hz} Hz ({self:?})"
        );
        Ok(())
    }

    fn not_heard(&self, hz: f64, who: &str, step: &str) -> Result<()> {
        let db = self.db(hz);
        ensure!(db < SILENT_DB, "{step}: the {who} heard {hz} Hz ({self:?})");
        Ok(())
    }
}

/// What each of the three heard over the same second and a half.
struct Heard {
    customer: Vec<i16>,
    agent: Levels,
    supervisor: Levels,
}

impl Heard {
    fn customer_heard(&self, hz: f64, step: &str) -> Result<()> {
        // Block by block: a jump of phase where a stream's jitter moved the voice by a
        // frame would cut a long window's power, not what a listener hears.
        let mut powers: Vec<f64> = self
            .customer
            .chunks_exact(400)
            .map(|block| goertzel_power(block, hz, 8000))
            .collect();
        powers.sort_by(f64::total_cmp);
        let power = powers.get(powers.len() / 2).copied().unwrap_or(0.0);
        ensure!(
            self.customer.len() > 4000 && power > PRESENT,
            "{step}: the customer did not hear {hz} Hz (power {power}, {} samples)",
            self.customer.len()
        );
        Ok(())
    }

    fn customer_not_heard(&self, hz: f64, step: &str) -> Result<()> {
        let power = goertzel_power(&self.customer, hz, 8000);
        ensure!(
            power < ABSENT,
            "{step}: the customer heard {hz} Hz (power {power})"
        );
        Ok(())
    }
}

async fn listen_all(
    customer: &Carrier,
    agent: &mut Browser,
    supervisor: &mut Browser,
) -> Result<Heard> {
    // Audio already on its way from the mode before is left behind first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    customer.take_capture();
    let (a, s) = tokio::join!(agent.hears(), supervisor.hears());
    let heard = Heard {
        customer: customer.take_capture().audio,
        agent: a?,
        supervisor: s?,
    };
    eprintln!(
        "agent {:?}\nsupervisor {:?}\ncustomer {:?}",
        heard.agent,
        heard.supervisor,
        TONES.map(|hz| (hz, goertzel_power(&heard.customer, hz, 8000)))
    );
    Ok(heard)
}

async fn carrier(tone: f64) -> Result<Carrier> {
    let carrier = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse()?,
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        audio: CarrierAudio::Tone(tone),
        ..CarrierConfig::default()
    })
    .await?;
    carrier.start_capture();
    Ok(carrier)
}

async fn run(binary: &Path, dir: &Path) -> Result<()> {
    let customer = carrier(CUSTOMER).await?;
    let next = carrier(NEXT_CUSTOMER).await?;
    let trunks = vec![
        TrunkConfig::new("first", customer.sip_addr()),
        TrunkConfig::new("next", next.sip_addr()),
    ];
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        ..GatewayConfig::loopback()
    };
    let gateway = Gateway::start(config, trunks).await?;
    let mut agent = Browser::attach(binary, dir, "agent", AGENT, &gateway).await?;
    let mut supervisor =
        match Browser::attach(binary, dir, "supervisor", SUPERVISOR, &gateway).await {
            Ok(browser) => browser,
            Err(e) => {
                agent.stop().await;
                return Err(e);
            }
        };
    let outcome = modes(&gateway, &customer, &next, &mut agent, &mut supervisor).await;
    agent.stop().await;
    supervisor.stop().await;
    outcome
}

async fn modes(
    gateway: &Gateway,
    customer: &Carrier,
    next: &Carrier,
    agent: &mut Browser,
    supervisor: &mut Browser,
) -> Result<()> {
    let mut events = gateway.events();
    let call = gateway.dial(request("first", LIMIT)).await?;
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    gateway.bridge(call, agent.leg).await?;
    let sup = supervisor.leg;
    let session = supervisor.session().await?;
    ensure!(session["dtls"] == "connected", "{session}");

    let step = "listen";
    gateway.coach(call, sup, CoachMode::Listen).await?;
    let h = listen_all(customer, agent, supervisor).await?;
    h.supervisor.heard(CUSTOMER, "supervisor", step)?;
    h.supervisor.heard(AGENT, "supervisor", step)?;
    h.agent.heard(CUSTOMER, "agent", step)?;
    h.agent.not_heard(SUPERVISOR, "agent", step)?;
    h.customer_heard(AGENT, step)?;
    h.customer_not_heard(SUPERVISOR, step)?;

    let step = "whisper";
    gateway.coach(call, sup, CoachMode::Whisper).await?;
    let h = listen_all(customer, agent, supervisor).await?;
    h.agent.heard(SUPERVISOR, "agent", step)?;
    h.agent.heard(CUSTOMER, "agent", step)?;
    h.customer_heard(AGENT, step)?;
    h.customer_not_heard(SUPERVISOR, step)?;
    h.supervisor.heard(CUSTOMER, "supervisor", step)?;
    h.supervisor.heard(AGENT, "supervisor", step)?;
    h.supervisor
        .not_heard(SUPERVISOR, "supervisor (their own voice)", step)?;

    let step = "barge";
    gateway.coach(call, sup, CoachMode::Barge).await?;
    let h = listen_all(customer, agent, supervisor).await?;
    h.agent.heard(SUPERVISOR, "agent", step)?;
    h.agent.heard(CUSTOMER, "agent", step)?;
    h.customer_heard(AGENT, step)?;
    h.customer_heard(SUPERVISOR, step)?;
    h.supervisor.heard(CUSTOMER, "supervisor", step)?;
    h.supervisor.heard(AGENT, "supervisor", step)?;
    h.supervisor
        .not_heard(SUPERVISOR, "supervisor (their own voice)", step)?;

    let step = "listen again";
    gateway.coach(call, sup, CoachMode::Listen).await?;
    let h = listen_all(customer, agent, supervisor).await?;
    h.agent.not_heard(SUPERVISOR, "agent", step)?;
    h.customer_not_heard(SUPERVISOR, step)?;
    h.supervisor.heard(CUSTOMER, "supervisor", step)?;
    h.supervisor.heard(AGENT, "supervisor", step)?;

    let step = "take over";
    let mut agent_events = gateway.events();
    gateway.coach(call, sup, CoachMode::TakeOver).await?;
    let h = listen_all(customer, agent, supervisor).await?;
    h.customer_heard(SUPERVISOR, step)?;
    h.customer_not_heard(AGENT, step)?;
    h.supervisor.heard(CUSTOMER, "supervisor", step)?;
    h.supervisor.not_heard(AGENT, "supervisor", step)?;
    h.agent.not_heard(CUSTOMER, "agent", step)?;
    h.agent.not_heard(SUPERVISOR, "agent", step)?;

    // The supervisor's session is the one it was: no new offer, no new connection.
    let after = supervisor.session().await?;
    ensure!(
        after == session,
        "the supervisor's session changed:\nbefore {session}\nafter {after}"
    );

    // The agent's leg is free for the next call while the supervisor carries on.
    let step = "the agent's next call";
    let second = gateway.dial(request("next", LIMIT)).await?;
    wait_for(&mut events, second, LIMIT, |k| {
        *k == CallEventKind::Answered
    })
    .await;
    gateway.bridge(second, agent.leg).await?;
    let h = listen_all(customer, agent, supervisor).await?;
    h.agent.heard(NEXT_CUSTOMER, "agent", step)?;
    h.agent.not_heard(CUSTOMER, "agent", step)?;
    h.customer_heard(SUPERVISOR, step)?;
    h.customer_not_heard(AGENT, step)?;

    // The taken-over call ends: the agent's leg hears of nothing, and their call goes on.
    gateway.hangup(call).await?;
    wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    let h = listen_all(next, agent, supervisor).await?;
    h.agent
        .heard(NEXT_CUSTOMER, "agent", "after the taken-over call ended")?;
    h.customer_heard(AGENT, "the next customer, after the taken-over call ended")?;
    loop {
        match agent_events.try_recv() {
            Ok(event) if event.call_ref == agent.leg || event.call_ref == sup => {
                anyhow::bail!("a browser's leg reported {:?}", event.kind)
            }
            Ok(_) => {}
            Err(TryRecvError::Empty) => break,
            Err(error) => anyhow::bail!("event stream failed: {error}"),
        }
    }
    gateway.hangup(second).await?;
    Ok(())
}

#[tokio::test]
async fn coaching_refuses_mismatched_references() {
    let customer = carrier(CUSTOMER).await.unwrap();
    let gateway = Gateway::start(
        GatewayConfig::loopback(),
        vec![TrunkConfig::new("first", customer.sip_addr())],
    )
    .await
    .unwrap();
    let mut events = gateway.events();
    let call = gateway.dial(request("first", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    for mode in [
        CoachMode::Listen,
        CoachMode::Whisper,
        CoachMode::Barge,
        CoachMode::TakeOver,
    ] {
        let unknown = gateway.coach(call, CallRef::random(), mode).await;
        assert!(
            matches!(unknown, Err(GatewayError::NoSuchCall)),
            "{mode:?}: {unknown:?}"
        );
        let trunk_as_supervisor = gateway.coach(call, call, mode).await;
        assert!(
            matches!(trunk_as_supervisor, Err(GatewayError::NotAnAgentLeg)),
            "{mode:?}: {trunk_as_supervisor:?}"
        );
    }
    // Nothing was set up: the customer hears nothing but silence from the gateway.
    customer.take_capture();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let heard = customer.take_capture().audio;
    assert!(
        goertzel_power(&heard, SUPERVISOR, 8000) < ABSENT,
        "the customer heard something"
    );
}
