//! The agent page in a real headless Firefox, driven over WebDriver BiDi,
//! with the simulated carrier standing in for the customer.
//!
//! The agent logs in through the login form, the page sets up its WebRTC
//! leg, goes Ready, and a progressive campaign dials the contact, whom the
//! carrier answers with a tone. Proven by content in both directions: the
//! customer hears Firefox's fake microphone, and the page's remote audio
//! carries the customer's tone. The wrap-up saved through the page is in the CRM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;
use sip_gateway::media::tone::{dominant_frequency, zero_crossing_frequency};

use crate::bidi::{find_firefox, Bidi, Firefox};
use crate::dialler::{carrier, DAY_ZONE};
use crate::helpers::{spawn_app_with, TestApp};
use crate::softphone::ONE_AT_A_TIME;

/// Firefox's fake microphone (`media.navigator.streams.fake`), as measured
/// on the customer's side.
const FIREFOX_HZ: f64 = 1000.0;
/// The customer's side of the call.
const CUSTOMER_HZ: f64 = 697.0;
const CANDIDATES: [f64; 5] = [300.0, 440.0, 697.0, 1000.0, 1336.0];
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_takes_a_call_in_firefox() {
    let Some(firefox) = firefox_or_skip() else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("dialcrm-firefox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let customers = carrier(Mix::always(Outcome::Answer), CUSTOMER_HZ, None).await;
    let trunks = vec![TrunkConfig::new("customers", customers.sip_addr())];
    let Some(t) = spawn_app_with(TestBackend::Sqlite, false, trunks).await else {
        return;
    };
    let outcome = tokio::time::timeout(LIMIT, take_a_call(&t, &customers, &firefox, &dir)).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    outcome
        .expect("the Firefox test took longer than a minute")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn take_a_call(t: &TestApp, customers: &Carrier, binary: &Path, dir: &Path) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await?.context("al exists")?.0;
    let list = s.create_list(acme.id, "L", "GB", now).await?;
    let phone = "+447700900778";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Ferdinand".into(),
                last_name: "Foxley".into(),
                phone_e164: phone.into(),
                phone_raw: phone.into(),
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
            "Autumn",
            DialMode::Progressive,
            Some("customers"),
            ("sue", &sup_pw),
        )
        .await;

    let started = Instant::now();
    let firefox = Firefox::start(binary, &dir.join("profile"), &t.base).await?;
    let mut bidi = Bidi::connect(&firefox.ws_url).await?;
    eprintln!(
        "{} listening after {:?}",
        firefox.version,
        started.elapsed()
    );
    let outcome = drive_the_page(&mut bidi, t, customers, &agent_pw, campaign.id.0).await;
    firefox.stop(&mut bidi).await;
    outcome?;

    let history = s.interactions_for_contact(acme.id, contact.id).await?;
    assert_eq!(history.len(), 1, "one interaction: {history:?}");
    assert_eq!(history[0].disposition.as_deref(), Some("sale"));
    assert_eq!(history[0].notes.as_deref(), Some("Firefox heard fine."));
    assert_eq!(history[0].user_id, Some(agent.id));
    assert!(history[0].attempt_id.is_some(), "{history:?}");
    Ok(())
}

/// Logs in through the form, takes the call, hangs up and saves the wrap-up, all on the page.
async fn drive_the_page(
    bidi: &mut Bidi,
    t: &TestApp,
    customers: &Carrier,
    password: &str,
    campaign: i64,
) -> Result<()> {
    let page = bidi.top_context().await?;
    bidi.navigate(&page, &t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'al'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(password)?
    );
    bidi.evaluate(&page, &login).await?;
    landed_on_agent_page(bidi, &page).await?;
    // Audio processing would fade the steady test tones.
    bidi.navigate(&page, &t.url("/agent?processing=off"))
        .await?;
    let connecting = Instant::now();
    until(bidi, &page, "$('audio').dataset.state === 'live'").await?;
    eprintln!("audio live after {:?}", connecting.elapsed());
    let pick = format!(
        "(() => {{ const s = $('campaign'); s.value = '{campaign}'; \
         if (s.value !== '{campaign}') return false; \
         s.dispatchEvent(new Event('change')); $('ready').click(); return true; }})()"
    );
    assert_eq!(
        bidi.evaluate(&page, &with_ids(&pick)).await?,
        json!(true),
        "the welcome listed the campaign"
    );
    until(bidi, &page, "$('state').dataset.state === 'in_call'").await?;
    until(
        bidi,
        &page,
        "$('contact-name').textContent === 'Ferdinand Foxley'",
    )
    .await?;

    let (dominant, measured) = heard(customers, Duration::from_millis(800)).await;
    eprintln!("the customer heard {measured:.1} Hz by zero crossings");
    assert_eq!(
        dominant,
        Some(FIREFOX_HZ),
        "the customer hears Firefox's microphone (measured {measured:.1} Hz)"
    );
    assert!(
        (measured - FIREFOX_HZ).abs() < FIREFOX_HZ * 0.02,
        "and nothing else: {measured:.1} Hz"
    );
    let played = page_heard(bidi, &page).await?;
    let measured = zero_crossing_frequency(&played, 8000);
    eprintln!("the page played {measured:.1} Hz by zero crossings");
    assert_eq!(
        dominant_frequency(&played, &CANDIDATES, 8000, 1e-4),
        Some(CUSTOMER_HZ),
        "the page plays the customer's tone (measured {measured:.1} Hz)"
    );

    bidi.evaluate(&page, &with_ids("$('hangup').click()"))
        .await?;
    until(
        bidi,
        &page,
        "!$('wrapup-panel').hidden && [...$('wrapup').disposition.options].some((o) => o.value === 'sale')",
    )
    .await?;
    let fill = "(() => { const f = $('wrapup'); f.disposition.value = 'sale'; \
                f.notes.value = 'Firefox heard fine.'; \
                f.dispatchEvent(new Event('input', { bubbles: true })); \
                f.querySelector('button[type=submit]').click(); return true; })()";
    bidi.evaluate(&page, &with_ids(fill)).await?;
    until(
        bidi,
        &page,
        "$('wrapup-panel').hidden && $('state').dataset.state === 'ready'",
    )
    .await?;
    bidi.evaluate(&page, &with_ids("$('pause').click()"))
        .await?;
    until(bidi, &page, "$('state').dataset.state === 'paused'").await?;
    Ok(())
}

/// Returns Firefox when it is installed; fails under `CI=true` without it.
fn firefox_or_skip() -> Option<PathBuf> {
    let firefox = find_firefox();
    if firefox.is_some() {
        return firefox;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "firefox-esr must be installed in CI; scripts/install-deps installs it"
    );
    eprintln!(
        "!!! SKIPPING the agent page test in Firefox: firefox-esr is not installed (scripts/install-deps) !!!"
    );
    None
}

/// Waits for the login form's redirect to finish loading the agent page.
async fn landed_on_agent_page(bidi: &mut Bidi, page: &str) -> Result<()> {
    let check = "location.pathname === '/agent' && document.readyState === 'complete'";
    for _ in 0..100 {
        // Evaluating fails while the document is being replaced; try again.
        if let Ok(Value::Bool(true)) = bidi.evaluate(page, check).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the login form did not lead to /agent")
}

/// Wraps an expression so that `$(id)` finds an element by id in it.
fn with_ids(expression: &str) -> String {
    format!("(() => {{ const $ = (id) => document.getElementById(id); return ({expression}); }})()")
}

/// Resolves once `condition` holds in the page, failing after 20 s with the page's status line.
async fn until(bidi: &mut Bidi, page: &str, condition: &str) -> Result<()> {
    let script = format!(
        "new Promise((resolve, reject) => {{ const $ = (id) => document.getElementById(id); \
         const start = Date.now(); const check = () => {{ \
         if ({condition}) return resolve(true); \
         if (Date.now() - start > 20000) return reject(new Error('status: ' + \
         ($('status') ? $('status').textContent : document.title))); \
         setTimeout(check, 50); }}; check(); }})"
    );
    bidi.evaluate(page, &script)
        .await
        .with_context(|| format!("waiting for {condition}"))?;
    Ok(())
}

/// Returns the loudest test tone the customer received over the next
/// `window`, and its frequency measured by zero crossings.
async fn heard(customers: &Carrier, window: Duration) -> (Option<f64>, f64) {
    customers.start_capture();
    customers.take_capture();
    tokio::time::sleep(window).await;
    let audio = customers.take_capture().audio;
    // The first 100 ms may still carry what was sent before.
    let settled = &audio[audio.len().min(800)..];
    (
        dominant_frequency(settled, &CANDIDATES, 8000, 1e-4),
        zero_crossing_frequency(settled, 8000),
    )
}

/// Records what the page's `<audio>` element is given to play, decodes it
/// and returns it as 8 kHz samples, leaving out the first 200 ms.
///
/// Headless Firefox without a sound card never runs an `AudioContext`, so an
/// analyser cannot listen; a `MediaRecorder` on the same stream and an
/// offline decode need no audio device.
async fn page_heard(bidi: &mut Bidi, page: &str) -> Result<Vec<i16>> {
    let samples = bidi.evaluate(page, RECORD).await?;
    let samples: Vec<i16> = samples
        .as_array()
        .context("no recording from the page")?
        .iter()
        .filter_map(|s| s.as_i64().and_then(|s| i16::try_from(s).ok()))
        .collect();
    if samples.len() < 8000 {
        bail!("the page recorded only {} samples", samples.len());
    }
    Ok(samples[1600..].to_vec())
}

/// Records the remote stream for 1.5 s and decodes it at 8 kHz.
const RECORD: &str = "(async () => {
  const stream = document.getElementById('remote').srcObject;
  if (!stream) throw new Error('the page plays no remote audio');
  const recorder = new MediaRecorder(new MediaStream(stream.getAudioTracks()));
  const chunks = [];
  recorder.ondataavailable = (e) => chunks.push(e.data);
  const stopped = new Promise((r) => (recorder.onstop = r));
  recorder.start();
  await new Promise((r) => setTimeout(r, 1500));
  recorder.stop();
  await stopped;
  const encoded = await new Blob(chunks).arrayBuffer();
  const decoded = await new OfflineAudioContext(1, 8000, 8000).decodeAudioData(encoded);
  return Array.from(decoded.getChannelData(0), (v) => Math.round(v * 32767));
})()";
