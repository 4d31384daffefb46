//! A supervisor coaches a live call from the wallboard: listen, whisper,
//! barge and take over, in real headless Chromiums, told apart by frequency.
//!
//! A progressive campaign dials the simulated carrier, whose customer plays
//! 697 Hz and keeps what it hears. The agent works the call on the agent
//! page in one Chromium, its fake microphone playing 440 Hz; the supervisor
//! clicks through the modes on the wallboard in another, playing 1250 Hz.
//! After the takeover the agent saves a disposition while the supervisor
//! carries on with the customer; when the supervisor hangs up, the agent's
//! desk hears nothing of it. Every mode is audited; another account's
//! supervisor, and an agent, are refused.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;
use sip_gateway::media::tone::goertzel_power;

use crate::dialler::{agent_phone, carrier, DAY_ZONE};
use crate::helpers::{run_then_stop, spawn_app_with, Scratch, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{agent_page_ready, until, with_ids, write_tone, ONE_AT_A_TIME};
use crate::wallboard::landed_on_wallboard;

pub(crate) const CUSTOMER_HZ: f64 = 697.0;
pub(crate) const AGENT_HZ: f64 = 440.0;
pub(crate) const SUPERVISOR_HZ: f64 = 1250.0;
const TONES: [f64; 3] = [CUSTOMER_HZ, AGENT_HZ, SUPERVISOR_HZ];
/// A page hears a tone whose median level is above this (dB): one heard is about -25 dB.
const HEARD_DB: f64 = -45.0;
/// A page does not hear a tone whose median level is below this: G.711's noise under two
/// tones mixed is about -75 dB.
const SILENT_DB: f64 = -60.0;
/// Goertzel power of a tone the customer clearly heard, and of one they did not.
const PRESENT: f64 = 0.0005;
const ABSENT: f64 = 0.0001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_coaches_and_takes_over_a_call_from_the_wallboard_on_sqlite() {
    coach_from_the_wallboard(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_coaches_and_takes_over_a_call_from_the_wallboard_on_postgres() {
    coach_from_the_wallboard(TestBackend::Postgres).await;
}

async fn coach_from_the_wallboard(backend: TestBackend) {
    let Some(binary) = crate::softphone::chromium_or_skip("the coaching page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = Scratch::new(&format!("coach-{backend:?}"));
    let customers = carrier(Mix::always(Outcome::Answer), CUSTOMER_HZ, None).await;
    customers.start_capture();
    let trunks = vec![TrunkConfig::new("provider", customers.sip_addr())];
    let Some(t) = spawn_app_with(backend, false, trunks).await else {
        return;
    };
    let what = "the coaching test (each mode heard by whom it should be)";
    run_then_stop(t, what, Duration::from_secs(120), async |t| {
        coach(t, &binary, dir.path(), &customers).await
    })
    .await;
}

/// A browser page and the id of the `<audio>` element that plays what it hears.
pub(crate) struct Ears<'a> {
    pub(crate) cdp: &'a mut Cdp,
    pub(crate) page: String,
    pub(crate) audio: &'static str,
    pub(crate) who: &'static str,
}

impl Ears<'_> {
    /// Returns the median level of each of [`TONES`] over a second and a half.
    async fn levels(&mut self) -> Result<Value> {
        let report = self
            .cdp
            .evaluate(&self.page, &levels_js(self.audio))
            .await?;
        Ok(serde_json::from_str(
            report.as_str().context("no level report")?,
        )?)
    }
}

/// What the customer, the agent and the supervisor heard over the same second and a half.
pub(crate) struct Heard {
    step: &'static str,
    customer: Vec<i16>,
    agent: Value,
    supervisor: Value,
}

impl Heard {
    pub(crate) fn page(&self, who: &str, hz: f64, heard: bool) -> Result<()> {
        let levels = if who == "agent" {
            &self.agent
        } else {
            &self.supervisor
        };
        let db = levels[format!("{hz}")]
            .as_f64()
            .unwrap_or(f64::NEG_INFINITY);
        if heard {
            ensure!(
                db > HEARD_DB,
                "{}: the {who} did not hear {hz} Hz: {levels}",
                self.step
            );
        } else {
            ensure!(
                db < SILENT_DB,
                "{}: the {who} heard {hz} Hz: {levels}",
                self.step
            );
        }
        Ok(())
    }

    pub(crate) fn customer(&self, hz: f64, heard: bool) -> Result<()> {
        let power = goertzel_power(&self.customer, hz, 8000);
        if heard {
            // Block by block: a jump of phase where a stream's jitter moved the voice by a
            // frame would cut a long window's power, not what a listener hears.
            let power = median_block_power(&self.customer, hz);
            ensure!(
                self.customer.len() > 4000 && power > PRESENT,
                "{}: the customer did not hear {hz} Hz ({power}, {} samples)",
                self.step,
                self.customer.len()
            );
        } else {
            ensure!(
                power < ABSENT,
                "{}: the customer heard {hz} Hz ({power})",
                self.step
            );
        }
        Ok(())
    }
}

/// The median power of `hz` over the 50 ms blocks of `samples`.
pub(crate) fn median_block_power(samples: &[i16], hz: f64) -> f64 {
    let mut powers: Vec<f64> = samples
        .chunks_exact(400)
        .map(|block| goertzel_power(block, hz, 8000))
        .collect();
    powers.sort_by(f64::total_cmp);
    powers.get(powers.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) async fn hear(
    step: &'static str,
    customers: &Carrier,
    agent: &mut Ears<'_>,
    supervisor: &mut Ears<'_>,
) -> Result<Heard> {
    // What was on its way before the change is left behind.
    tokio::time::sleep(Duration::from_millis(400)).await;
    customers.take_capture();
    let (a, s) = tokio::join!(agent.levels(), supervisor.levels());
    let heard = Heard {
        step,
        customer: customers.take_capture().audio,
        agent: a.with_context(|| format!("{step}: the {}", agent.who))?,
        supervisor: s.with_context(|| format!("{step}: the {}", supervisor.who))?,
    };
    eprintln!(
        "{step}: agent {} supervisor {} customer {:?}",
        heard.agent,
        heard.supervisor,
        TONES.map(|hz| (hz, goertzel_power(&heard.customer, hz, 8000)))
    );
    Ok(heard)
}

async fn coach(t: &TestApp, binary: &Path, dir: &Path, customers: &Carrier) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let sue = s.credentials("sue").await?.context("sue exists")?.0;
    let al = s.credentials("al").await?.context("al exists")?.0;
    let list = s.create_list(acme.id, "L", "GB", now).await?;
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Cora".into(),
                phone_e164: "+447700900321".into(),
                phone_raw: "07700 900321".into(),
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
            "Coached",
            DialMode::Progressive,
            Some("provider"),
            ("sue", &sup_pw),
        )
        .await;

    let agent_mic = dir.join("agent.wav");
    write_tone(&agent_mic, AGENT_HZ)?;
    let sup_mic = dir.join("supervisor.wav");
    write_tone(&sup_mic, SUPERVISOR_HZ)?;
    let agent_browser = Chromium::start(binary, &dir.join("agent-profile"), &agent_mic).await?;
    let mut agent_cdp = Cdp::connect(&agent_browser.ws_url).await?;
    let sup_browser = Chromium::start(binary, &dir.join("supervisor-profile"), &sup_mic).await?;
    let mut sup_cdp = Cdp::connect(&sup_browser.ws_url).await?;
    let outcome = drive(
        t,
        customers,
        (&mut agent_cdp, &agent_pw),
        (&mut sup_cdp, &sup_pw),
        campaign.id.0,
    )
    .await;
    agent_browser.stop(&mut agent_cdp).await;
    sup_browser.stop(&mut sup_cdp).await;
    let call = outcome?;

    // Every mode was audited, by the supervisor, against the call.
    let audit = s.audit_entries(acme.id, 200).await?;
    let target = format!("call:{call}");
    for action in ["call.listen", "call.whisper", "call.barge", "call.takeover"] {
        let entries: Vec<_> = audit.iter().filter(|e| e.action == action).collect();
        ensure!(
            entries.len() == 1
                && entries[0].user_id == Some(sue.id)
                && entries[0].target.as_deref() == Some(target.as_str()),
            "one {action} by the supervisor on the call: {entries:?}"
        );
    }
    // The agent's disposition, saved after the takeover, is the call's interaction.
    let history = s.interactions_for_contact(acme.id, contact.id).await?;
    ensure!(
        history.len() == 1
            && history[0].user_id == Some(al.id)
            && history[0].disposition.as_deref() == Some("sale"),
        "the agent's disposition is logged: {history:?}"
    );
    let attempt = s.attempt_by_ref(acme.id, call.parse()?).await?;
    ensure!(
        attempt.ended_at.is_some(),
        "the call ended when the supervisor hung up"
    );
    Ok(())
}

/// Connects the agent, clicks through the modes on the wallboard and checks who hears
/// whom after each; returns the call's reference.
async fn drive(
    t: &TestApp,
    customers: &Carrier,
    (agent_cdp, agent_pw): (&mut Cdp, &str),
    (sup_cdp, sup_pw): (&mut Cdp, &str),
    campaign: i64,
) -> Result<String> {
    let sup_page = sup_cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(sup_pw)?
    );
    sup_cdp.evaluate(&sup_page, &login).await?;
    landed_on_wallboard(sup_cdp, &sup_page).await?;
    // Audio processing off: it would fade a steady test tone.
    sup_cdp
        .call(
            Some(&sup_page),
            "Page.navigate",
            json!({ "url": t.url("/supervisor?processing=off") }),
        )
        .await?;
    landed_on_wallboard(sup_cdp, &sup_page).await?;

    let agent_page = agent_page_ready(agent_cdp, t, agent_pw, campaign).await?;
    until(
        agent_cdp,
        &agent_page,
        "$('state').dataset.state === 'in_call'",
    )
    .await?;

    let row = "document.querySelector('#calls tbody tr[data-state=connected]')";
    until(
        sup_cdp,
        &sup_page,
        &format!("{row} !== null && {row}.querySelector('button[data-listen=whisper]') !== null"),
    )
    .await
    .context("the connected call offers the modes")?;
    let call = sup_cdp
        .evaluate(&sup_page, &format!("{row}.dataset.callRef"))
        .await?
        .as_str()
        .context("the row names its call")?
        .to_owned();

    let mut agent = Ears {
        cdp: agent_cdp,
        page: agent_page,
        audio: "remote",
        who: "agent",
    };
    let mut supervisor = Ears {
        cdp: sup_cdp,
        page: sup_page,
        audio: "listen-audio",
        who: "supervisor",
    };

    click_mode(&mut supervisor, "listen").await?;
    until(
        supervisor.cdp,
        &supervisor.page,
        "$('listen-audio').dataset.state === 'connected' && $('listen-audio').srcObject !== null",
    )
    .await
    .context("the listening audio connects")?;
    let connection = "(() => { const pc = listening.pc; \
        return JSON.stringify({ local: pc.localDescription.sdp, remote: pc.remoteDescription.sdp }); })()";
    supervisor
        .cdp
        .evaluate(&supervisor.page, "window.firstPc = listening.pc; true")
        .await?;
    let before = supervisor
        .cdp
        .evaluate(&supervisor.page, connection)
        .await?;

    let h = hear("listen", customers, &mut agent, &mut supervisor).await?;
    h.page("supervisor", CUSTOMER_HZ, true)?;
    h.page("supervisor", AGENT_HZ, true)?;
    h.page("agent", CUSTOMER_HZ, true)?;
    h.page("agent", SUPERVISOR_HZ, false)?;
    h.customer(AGENT_HZ, true)?;
    h.customer(SUPERVISOR_HZ, false)?;

    click_mode(&mut supervisor, "whisper").await?;
    let h = hear("whisper", customers, &mut agent, &mut supervisor).await?;
    h.page("agent", SUPERVISOR_HZ, true)?;
    h.page("agent", CUSTOMER_HZ, true)?;
    h.customer(AGENT_HZ, true)?;
    h.customer(SUPERVISOR_HZ, false)?;
    h.page("supervisor", CUSTOMER_HZ, true)?;
    h.page("supervisor", AGENT_HZ, true)?;

    click_mode(&mut supervisor, "barge").await?;
    let h = hear("barge", customers, &mut agent, &mut supervisor).await?;
    h.page("agent", SUPERVISOR_HZ, true)?;
    h.page("agent", CUSTOMER_HZ, true)?;
    h.customer(SUPERVISOR_HZ, true)?;
    h.customer(AGENT_HZ, true)?;
    h.page("supervisor", CUSTOMER_HZ, true)?;
    h.page("supervisor", AGENT_HZ, true)?;

    click_mode(&mut supervisor, "takeover").await?;
    until(
        agent.cdp,
        &agent.page,
        "$('state').dataset.state === 'wrap_up' && !$('wrapup-panel').hidden",
    )
    .await
    .context("the agent's desk goes to wrap-up on the takeover")?;
    let h = hear("take over", customers, &mut agent, &mut supervisor).await?;
    h.customer(SUPERVISOR_HZ, true)?;
    h.customer(AGENT_HZ, false)?;
    h.page("supervisor", CUSTOMER_HZ, true)?;
    h.page("supervisor", AGENT_HZ, false)?;
    h.page("agent", CUSTOMER_HZ, false)?;
    h.page("agent", SUPERVISOR_HZ, false)?;

    // One connection throughout: no new offer, no new answer.
    let same = supervisor
        .cdp
        .evaluate(&supervisor.page, "window.firstPc === listening.pc")
        .await?;
    let after = supervisor
        .cdp
        .evaluate(&supervisor.page, connection)
        .await?;
    ensure!(
        same == json!(true) && after == before,
        "the supervisor's connection changed between modes"
    );
    supervisor
        .cdp
        .evaluate(
            &supervisor.page,
            "document.querySelector('#calls tbody button[data-listen=stop]').textContent",
        )
        .await
        .ok()
        .filter(|label| label == &json!("Hang up"))
        .context("a call taken over offers Hang up")?;
    until(
        supervisor.cdp,
        &supervisor.page,
        &format!(
            "document.querySelector('#calls tbody tr[data-call-ref=\"{call}\"]')\
             .children[3].textContent.startsWith('you (taken over from')"
        ),
    )
    .await
    .context("the wallboard shows the call as the supervisor's")?;

    // The agent saves a disposition while the supervisor talks to the customer.
    save_disposition(&mut agent).await?;
    let h = hear("after the wrap-up", customers, &mut agent, &mut supervisor).await?;
    h.customer(SUPERVISOR_HZ, true)?;
    h.page("supervisor", CUSTOMER_HZ, true)?;

    // The supervisor hangs up: the call ends, and the agent's desk is not told.
    supervisor
        .cdp
        .evaluate(
            &supervisor.page,
            "document.querySelector('#calls tbody button[data-listen=stop]').click()",
        )
        .await?;
    until(
        supervisor.cdp,
        &supervisor.page,
        &format!("document.querySelector('#calls tbody tr[data-call-ref=\"{call}\"]') === null"),
    )
    .await
    .context("the call leaves the wallboard")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let desk = agent
        .cdp
        .evaluate(
            &agent.page,
            &with_ids("JSON.stringify({ state: $('state').dataset.state, status: $('status').textContent })"),
        )
        .await?;
    let desk: Value = serde_json::from_str(desk.as_str().context("no desk state")?)?;
    ensure!(
        desk["state"] == "ready"
            && !desk["status"]
                .as_str()
                .unwrap_or_default()
                .contains("not connected"),
        "the call's end left the agent's desk alone: {desk}"
    );
    Ok(call)
}

/// Clicks a mode's button on the call's row and waits until the page shows it as current.
pub(crate) async fn click_mode(supervisor: &mut Ears<'_>, mode: &str) -> Result<()> {
    let button = format!("document.querySelector('#calls tbody button[data-listen={mode}]')");
    until(
        supervisor.cdp,
        &supervisor.page,
        &format!("{button} !== null"),
    )
    .await?;
    supervisor
        .cdp
        .evaluate(&supervisor.page, &format!("{button}.click()"))
        .await?;
    until(
        supervisor.cdp,
        &supervisor.page,
        &format!("document.querySelector('#calls tbody td[data-mode={mode}]') !== null"),
    )
    .await
    .with_context(|| format!("the wallboard shows {mode} as the call's mode"))?;
    Ok(())
}

async fn save_disposition(agent: &mut Ears<'_>) -> Result<()> {
    until(
        agent.cdp,
        &agent.page,
        "[...$('wrapup').disposition.options].some((o) => o.value === 'sale')",
    )
    .await?;
    let fill = "(() => { const f = $('wrapup'); f.disposition.value = 'sale'; \
                f.dispatchEvent(new Event('input', { bubbles: true })); return true; })()";
    agent.cdp.evaluate(&agent.page, &with_ids(fill)).await?;
    agent
        .cdp
        .evaluate(
            &agent.page,
            "document.querySelector('#wrapup button[type=submit]').click()",
        )
        .await?;
    until(
        agent.cdp,
        &agent.page,
        "$('wrapup-panel').hidden && $('state').dataset.state === 'ready'",
    )
    .await
    .context("the agent saves the disposition and is ready again")
}

/// Measures, from the `<audio>` element `id` plays, the median level of each of
/// [`TONES`] over a second and a half; the analyser is kept for the next measure.
fn levels_js(id: &str) -> String {
    let tones = serde_json::to_string(&TONES).unwrap_or_default();
    format!(
        "(async () => {{
  const stream = document.getElementById('{id}').srcObject;
  if (!stream) throw new Error('the page plays no audio');
  window.ears = window.ears || {{}};
  let ear = window.ears['{id}'];
  if (!ear || ear.stream !== stream) {{
    const ctx = new AudioContext();
    await ctx.resume();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 4096;
    analyser.smoothingTimeConstant = 0;
    ctx.createMediaStreamSource(stream).connect(analyser);
    ear = {{ stream, ctx, analyser }};
    window.ears['{id}'] = ear;
  }}
  const {{ ctx, analyser }} = ear;
  const bins = new Float32Array(analyser.frequencyBinCount);
  const binHz = ctx.sampleRate / analyser.fftSize;
  const tones = {tones};
  const levels = tones.map(() => []);
  for (let i = 0; i < 30; i++) {{
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatFrequencyData(bins);
    tones.forEach((hz, n) => {{
      let best = -Infinity;
      for (let k = Math.floor((hz - 20) / binHz); k <= Math.ceil((hz + 20) / binHz); k++) best = Math.max(best, bins[k]);
      levels[n].push(Number.isFinite(best) ? best : -200);
    }});
  }}
  const out = {{}};
  tones.forEach((hz, n) => {{ const s = [...levels[n]].sort((a, b) => a - b); out[hz] = s[Math.floor(s.length / 2)]; }});
  return JSON.stringify(out);
}})()"
    )
}

#[tokio::test]
async fn coaching_is_refused_across_accounts_and_roles_and_bad_bodies_on_sqlite() {
    coaching_rules(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn coaching_is_refused_across_accounts_and_roles_and_bad_bodies_on_postgres() {
    coaching_rules(TestBackend::Postgres).await;
}

async fn coaching_rules(backend: TestBackend) {
    let phones = carrier(Mix::always(Outcome::Answer), 300.0, None).await;
    let trunks = vec![TrunkConfig::new("phones", phones.sip_addr())];
    let Some(t) = spawn_app_with(backend, false, trunks).await else {
        return;
    };
    check_rules(&t).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

async fn check_rules(t: &TestApp) {
    let s = &t.db.store;
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let sue = t.user(&acme, "sue", Role::Supervisor).await;
    let al = t.user(&acme, "al", Role::Agent).await;
    let bob = t.user(&other, "bob", Role::Supervisor).await;
    let sue = t.login("sue", &sue).await;
    let al = t.login("al", &al).await;
    let bob = t.login("bob", &bob).await;

    // A live call of acme's, with no agent's desk on it.
    let ours = agent_phone(&t.app.telephony.gateway).await;
    s.create_attempt(acme.id, ours, None, None, Utc::now())
        .await
        .expect("attempt");
    let ours = ours.to_string();

    for mode in ["listen", "whisper", "barge", "takeover"] {
        assert_eq!(
            set_mode(t, &al, &ours, &json!({ "mode": mode }).to_string())
                .await
                .0,
            403,
            "an agent may not {mode}"
        );
    }
    assert_eq!(attach(t, &sue).await, 200);
    assert_eq!(attach(t, &bob).await, 200);

    // Bodies that are not a mode are refused, saying what a mode is.
    for bad in [
        r#"{"mode":"shout"}"#,
        r#"{"mode":1}"#,
        r#"{"mode":"whisper","extra":true}"#,
        "whisper",
        "[]",
    ] {
        let (code, body) = set_mode(t, &sue, &ours, bad).await;
        assert_eq!(code, 400, "{bad}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("whisper") && e.contains("takeover")),
            "{bad}: {body}"
        );
    }

    // Another account's supervisor, leg and all, finds nothing of ours in any mode.
    for mode in ["listen", "whisper", "barge", "takeover"] {
        let body = json!({ "mode": mode }).to_string();
        assert_eq!(
            set_mode(t, &bob, &ours, &body).await.0,
            404,
            "bob may not {mode}"
        );
    }

    // Ours, in each mode that needs no agent; the empty body listens.
    assert_eq!(set_mode(t, &sue, &ours, "").await.0, 204);
    for mode in ["whisper", "barge", "listen"] {
        let body = json!({ "mode": mode }).to_string();
        assert_eq!(set_mode(t, &sue, &ours, &body).await.0, 204, "{mode}");
    }
    // No agent is talking on it: there is nobody to take it from.
    let (code, body) = set_mode(t, &sue, &ours, r#"{"mode":"takeover"}"#).await;
    assert_eq!(code, 409, "{body}");

    // Each start and change is audited in acme's log; refusals are not.
    let audit = s.audit_entries(acme.id, 100).await.expect("audit");
    let count = |action: &str| audit.iter().filter(|e| e.action == action).count();
    assert_eq!(count("call.listen"), 2, "{audit:?}");
    assert_eq!(count("call.whisper"), 1, "{audit:?}");
    assert_eq!(count("call.barge"), 1, "{audit:?}");
    assert_eq!(count("call.takeover"), 0, "{audit:?}");
    let target = format!("call:{ours}");
    assert!(audit
        .iter()
        .filter(|e| e.action.starts_with("call."))
        .all(|e| e.target.as_deref() == Some(target.as_str())));
    let theirs = s.audit_entries(other.id, 100).await.expect("audit");
    assert!(
        theirs.iter().all(|e| !e.action.starts_with("call.")),
        "bob's refusals left no trace: {theirs:?}"
    );
}

async fn attach(t: &TestApp, client: &reqwest::Client) -> u16 {
    client
        .post(t.url("/api/listen"))
        .json(&json!({ "sdp": crate::coach::browser_offer() }))
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

async fn set_mode(t: &TestApp, client: &reqwest::Client, call: &str, body: &str) -> (u16, Value) {
    let r = client
        .post(t.url(&format!("/api/listen/{call}")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// A send-and-receive audio offer shaped like the wallboard's; it never
/// connects, but the gateway holds a leg for it.
fn browser_offer() -> String {
    let fingerprint: Vec<String> = (0..32u8).map(|b| format!("{b:02X}")).collect();
    [
        "v=0",
        "o=- 4611731400430051337 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 8",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Qx7e",
        "a=ice-pwd:m4Pz9sJ2vT8kL1wQ6rY3uE5b",
        "a=ice-options:trickle",
        &format!("a=fingerprint:sha-256 {}", fingerprint.join(":")),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "",
    ]
    .join("\r\n")
}
