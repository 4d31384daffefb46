//! The supervisor listens in on a live call from the wallboard, in a real
//! headless Chromium.
//!
//! A campaign dials the simulated carrier, whose customer plays 697 Hz; the
//! agent works from a desk phone playing 300 Hz. The supervisor clicks
//! Listen on the connected call; the page's WebAudio analyser hears both
//! tones, the start is audited, and Stop ends it. Chromium's fake microphone
//! plays 1336 Hz: the call's recording proves the customer never heard it.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::events::{CallPhase, Event, EventBus};
use crm::model::{ContactFields, Role, UserId};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use futures_util::SinkExt;
use serde_json::{json, Value};
use sip_gateway::carrier::{Mix, Outcome};
use sip_gateway::gateway::{CallEventKind, CallRef, Gateway, TrunkConfig};
use sip_gateway::media::tone::goertzel_power;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::dialler::{agent_phone, carrier, DAY_ZONE};
use crate::helpers::{run_then_stop, spawn_app_with, Scratch, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{until, write_tone, ONE_AT_A_TIME};
use crate::wallboard::{landed_on_wallboard, wait_for_call, Desk};

pub(crate) const CUSTOMER_HZ: f64 = 697.0;
pub(crate) const AGENT_HZ: f64 = 300.0;
pub(crate) const MICROPHONE_HZ: f64 = 1336.0;
/// A frequency nobody plays: the floor the tones must stand above.
const QUIET_HZ: f64 = 1000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_listens_to_a_live_call_from_the_wallboard() {
    let Some(binary) = crate::softphone::chromium_or_skip("the listening page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = Scratch::new("listen");
    let customers = carrier(Mix::always(Outcome::Answer), CUSTOMER_HZ, None).await;
    let phones = carrier(Mix::always(Outcome::Answer), AGENT_HZ, None).await;
    let trunks = vec![
        TrunkConfig::new("provider", customers.sip_addr()),
        TrunkConfig::new("phones", phones.sip_addr()),
    ];
    let t = spawn_app_with(TestBackend::Sqlite, false, trunks)
        .await
        .expect("SQLite is always there");
    let what = "the listening test (the supervisor hears the call)";
    run_then_stop(t, what, Duration::from_secs(90), async |t| {
        listen_in(t, &binary, dir.path()).await
    })
    .await;
}

async fn listen_in(t: &TestApp, binary: &Path, dir: &Path) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await?.context("al exists")?.0;
    let sue = s.credentials("sue").await?.context("sue exists")?.0;
    let list = s.create_list(acme.id, "L", "GB", now).await?;
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Lena".into(),
                phone_e164: "+447700900555".into(),
                phone_raw: "07700 900555".into(),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await?;
    s.add_to_list(acme.id, list.id, contact.id, now).await?;
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "Quiet",
            DialMode::Progressive,
            Some("provider"),
            ("sue", &sup_pw),
        )
        .await;

    let recording = dir.join("call.wav");
    let recorder = tokio::spawn(record_the_call(
        t.app.bus.clone(),
        t.app.telephony.gateway.clone(),
        recording.clone(),
    ));

    let tone = dir.join("microphone.wav");
    write_tone(&tone, MICROPHONE_HZ)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, t, &sup_pw, (agent.id, &agent_pw), campaign.id.0).await;
    chromium.stop(&mut cdp).await;
    let mut desk = outcome?;

    // The agent hangs up; the recording is complete when the call has ended.
    desk.send(Message::Text(json!({"type": "hangup"}).to_string().into()))
        .await?;
    let call = tokio::time::timeout(Duration::from_secs(10), recorder)
        .await
        .context("the call did not end")???;

    let audit = s.audit_entries(acme.id, 100).await?;
    let listens: Vec<_> = audit.iter().filter(|e| e.action == "call.listen").collect();
    assert_eq!(listens.len(), 1, "one listen, audited: {listens:?}");
    assert_eq!(listens[0].user_id, Some(sue.id));
    assert_eq!(listens[0].target, Some(format!("call:{call}")));

    let (to_customer, from_customer) = channels(&recording)?;
    let middle = |x: &[i16]| x[x.len() / 4..x.len() * 3 / 4].to_vec();
    let (to_customer, from_customer) = (middle(&to_customer), middle(&from_customer));
    let agent_power = goertzel_power(&to_customer, AGENT_HZ, 8000);
    let microphone_power = goertzel_power(&to_customer, MICROPHONE_HZ, 8000);
    assert!(
        agent_power > 1000.0 * microphone_power.max(f64::MIN_POSITIVE),
        "the customer heard the agent ({agent_power:e}) and never the supervisor's \
         microphone ({microphone_power:e})"
    );
    assert!(
        goertzel_power(&from_customer, CUSTOMER_HZ, 8000)
            > 100.0 * goertzel_power(&from_customer, MICROPHONE_HZ, 8000),
        "the recording's right channel is the customer"
    );
    Ok(())
}

/// Logs the supervisor in, connects the agent, listens to the call and stops.
async fn drive(
    cdp: &mut Cdp,
    t: &TestApp,
    sup_pw: &str,
    (agent, agent_pw): (UserId, &str),
    campaign: i64,
) -> Result<Desk> {
    let page = cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(sup_pw)?
    );
    cdp.evaluate(&page, &login).await?;
    landed_on_wallboard(cdp, &page).await?;

    // The agent works from a desk phone standing in for the browser leg.
    let leg = agent_phone(&t.app.telephony.gateway).await;
    t.app.legs.set(agent, leg);
    let cookie = t.session_cookie("al", agent_pw).await;
    let mut req = format!("ws://{}/api/agent/ws", t.app.http_addr).into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    let (mut desk, _) = tokio_tungstenite::connect_async(req).await?;
    desk.send(Message::Text(
        json!({"type": "ready", "campaign_id": campaign})
            .to_string()
            .into(),
    ))
    .await?;
    wait_for_call(&mut desk).await?;

    let listen_button = "document.querySelector(\
         '#calls tbody tr[data-state=connected] button[data-listen=listen]')";
    until(cdp, &page, &format!("{listen_button} !== null"))
        .await
        .context("the connected call offers Listen")?;
    cdp.evaluate(&page, &format!("{listen_button}.click()"))
        .await?;
    until(
        cdp,
        &page,
        "$('listen-audio').dataset.state === 'connected' && $('listen-audio').srcObject !== null \
         && document.querySelector('#calls tbody button[data-listen=stop]') !== null",
    )
    .await
    .context("the listening audio connects and the call offers Stop")?;
    packets_arrive(cdp, &page).await?;

    let frames: Value = serde_json::from_str(
        cdp.evaluate(&page, &analyse())
            .await?
            .as_str()
            .context("no analyser report")?,
    )?;
    assert_heard(&frames, "customer")?;
    assert_heard(&frames, "agent")?;

    cdp.evaluate(
        &page,
        "document.querySelector('#calls tbody button[data-listen=stop]').click()",
    )
    .await?;
    until(
        cdp,
        &page,
        "$('listen-audio').dataset.state === 'closed' && $('listen-audio').srcObject === null \
         && $('listen-status').textContent === 'Stopped listening.' \
         && document.querySelector('#calls tbody button[data-listen=listen]') !== null",
    )
    .await
    .context("Stop hangs the listening audio up")?;
    Ok(desk)
}

/// Waits until the page's connection has received a second of audio packets.
pub(crate) async fn packets_arrive(cdp: &mut Cdp, page: &str) -> Result<()> {
    let script = "(async () => {
      const start = Date.now();
      while (Date.now() - start < 20000) {
        const stats = await listening.pc.getStats();
        for (const s of stats.values()) {
          if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.packetsReceived > 50) return true;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('no audio packets arrived');
    })()";
    cdp.evaluate(page, script)
        .await
        .context("audio packets reach the page")?;
    Ok(())
}

/// Listens to the page's listening audio as the `<audio>` element plays it,
/// and reports the level at each tone's frequency every 100 ms for 1.5 s.
pub(crate) fn analyse() -> String {
    format!(
        "(async () => {{
  const stream = document.getElementById('listen-audio').srcObject;
  if (!stream) throw new Error('the page plays no listening audio');
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const level = (hz) => {{
    const k = Math.round((hz * analyser.fftSize) / ctx.sampleRate);
    let best = -Infinity;
    for (let i = k - 2; i <= k + 2; i++) best = Math.max(best, bins[i]);
    return best;
  }};
  const frames = [];
  for (let i = 0; i < 15; i++) {{
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatFrequencyData(bins);
    frames.push({{ customer: level({CUSTOMER_HZ}), agent: level({AGENT_HZ}),
      microphone: level({MICROPHONE_HZ}), quiet: level({QUIET_HZ}) }});
  }}
  await ctx.close();
  return JSON.stringify(frames);
}})()"
    )
}

/// Fails unless most frames carry `who`'s tone, loud and well above a frequency nobody plays.
pub(crate) fn assert_heard(frames: &Value, who: &str) -> Result<()> {
    let frames = frames.as_array().context("frames")?;
    let heard = frames
        .iter()
        .filter(|f| {
            let db = f[who].as_f64().unwrap_or(f64::NEG_INFINITY);
            let quiet = f["quiet"].as_f64().unwrap_or(f64::NEG_INFINITY);
            db > -60.0 && db > quiet + 20.0
        })
        .count();
    if heard <= frames.len() / 2 {
        bail!("the page did not hear the {who}'s tone: {frames:?}");
    }
    Ok(())
}

/// Records the first call connected to an agent; returns its reference once it has ended.
async fn record_the_call(
    bus: EventBus,
    gateway: Gateway,
    path: std::path::PathBuf,
) -> Result<CallRef> {
    let mut bus = bus.subscribe();
    let mut calls = gateway.events();
    let call = loop {
        let event = bus.recv().await?;
        if let Event::CallState {
            call_ref,
            state: CallPhase::Connected,
            ..
        } = &*event
        {
            break *call_ref;
        }
    };
    gateway.record(call, &path).await?;
    loop {
        let e = calls.recv().await?;
        if e.call_ref == call && matches!(e.kind, CallEventKind::Ended { .. }) {
            return Ok(call);
        }
    }
}

/// Reads a stereo 8 kHz recording as its left and right channels.
fn channels(path: &Path) -> Result<(Vec<i16>, Vec<i16>)> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if (spec.channels, spec.sample_rate) != (2, 8000) {
        bail!("expected stereo 8 kHz, got {spec:?}");
    }
    let samples = reader.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
    if samples.len() < 2 * 8000 {
        bail!("only {} samples recorded", samples.len() / 2);
    }
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    Ok((left, right))
}
