//! The agent page in a real headless Chromium, with sipp playing the
//! provider and echoing what it hears.
//!
//! Chromium's fake microphone plays 440 Hz. The agent logs in through the
//! login form, the page sets up its WebRTC leg, goes Ready, and the campaign
//! dials sipp, which answers and echoes. Proven by content: the call's
//! recording holds the browser's 440 Hz on the left and sipp's echo of it on
//! the right; the page's WebAudio analyser hears the echo; the contact card
//! shows the contact; the wrap-up saved through the page is in the CRM.
//!
//! Set `DIALCRM_AGENT_SCREENSHOT=/path.png` to keep a screenshot of the page
//! during the call.

#[path = "../../sip-gateway/tests/webrtc/cdp.rs"]
pub(crate) mod cdp;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::gateway::{Secret, TrunkConfig};
use sip_gateway::media::tone::{dominant_frequency, sine};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::dialler::DAY_ZONE;
use crate::helpers::{spawn_app_with, TestApp};
use cdp::{Cdp, Chromium};

pub(crate) const CANDIDATES: [f64; 5] = [300.0, 440.0, 697.0, 1000.0, 1336.0];
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// One Chromium and one sipp at a time: two of each on two cores would
/// starve the real-time audio the test measures.
pub(crate) static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Debian's Chromium for a page test, or `None` (having said loudly that
/// `what` is skipped) where it is missing outside CI; under `CI=true` a
/// missing Chromium fails the test.
pub(crate) fn chromium_or_skip(what: &str) -> Option<std::path::PathBuf> {
    let found = cdp::find_chromium();
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but chromium is missing"
        );
        eprintln!("\n!!!!! SKIPPING {what}: chromium is missing !!!!!\n");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_takes_a_call_in_chromium_on_sqlite() {
    agent_page(TestBackend::Sqlite, Reach::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_takes_a_call_in_chromium_on_postgres() {
    agent_page(TestBackend::Postgres, Reach::Loopback).await;
}

/// An agent on another computer: the browser reaches the service by a
/// host name (mapped to the loopback address, so nothing leaves the
/// machine) over HTTPS, trusting the test certificate by its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_agent_takes_a_call_over_https_by_name() {
    agent_page(TestBackend::Sqlite, Reach::HttpsByName).await;
}

/// Over plain HTTP by a host name the browser withholds the microphone:
/// the agent page says so, and how to turn HTTPS on, instead of failing
/// without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_plain_http_by_name_the_agent_page_says_the_microphone_needs_https() {
    let Some(binary) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(t) = spawn_app_with(TestBackend::Sqlite, false, Vec::new()).await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dialcrm-needs-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let outcome = tokio::time::timeout(LIMIT, needs_https(&t, &binary, &dir)).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome.expect("within a minute").unwrap();
}

async fn needs_https(t: &TestApp, binary: &Path, dir: &Path) -> Result<()> {
    let acme = t.account("acme", 5).await;
    let password = t.user(&acme, "al", Role::Agent).await;
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let host = crate::https::AGENTS_HOST;
    let flags = [resolve_to_loopback(host)];
    let chromium = Chromium::start_with(binary, &dir.join("profile"), &tone, &flags).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = async {
        let port = t.app.http_addr.port();
        let page = cdp
            .open_page(&format!("http://{host}:{port}/login"))
            .await?;
        let login = format!(
            "(() => {{ const f = document.getElementById('login'); f.username.value = 'al'; \
             f.password.value = {}; f.requestSubmit(); return true; }})()",
            serde_json::to_string(&password)?
        );
        cdp.evaluate(&page, &login).await?;
        landed_on_agent_page(&mut cdp, &page).await?;
        until(&mut cdp, &page, "!$('needs-https').hidden").await?;
        let said = cdp
            .evaluate(&page, &with_ids("$('needs-https').textContent"))
            .await?;
        let said = said
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            said.contains("Your microphone needs HTTPS")
                && said.contains(&format!("http://{host}:{port}"))
                && said.contains(&format!("https://{host}/agent"))
                && said.contains("dialcrm serve --tls-self-signed"),
            "the page explains the microphone and HTTPS: {said}"
        );
        assert_eq!(
            cdp.evaluate(&page, &with_ids("$('audio').dataset.state"))
                .await?,
            json!("down")
        );
        anyhow::Ok(())
    }
    .await;
    chromium.stop(&mut cdp).await;
    outcome
}

/// How the browser reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// http://127.0.0.1:PORT, a secure context by the browser's rules.
    Loopback,
    /// https://agents.dialcrm.test:PORT.
    HttpsByName,
}

/// Chromium's flags that send `host` to the loopback address.
pub(crate) fn resolve_to_loopback(host: &str) -> String {
    format!("--host-resolver-rules=MAP {host} 127.0.0.1")
}

async fn agent_page(backend: TestBackend, reach: Reach) {
    let Some(chromium) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-softphone-{backend:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let sipp = Sipp::start(&dir);
    let mut trunk = TrunkConfig::new(
        "provider",
        format!("127.0.0.1:{}", sipp.port).parse().expect("addr"),
    );
    trunk.username = Some("acct".into());
    trunk.password = Secret::new("s3cret");
    let (t, flags) = match reach {
        Reach::Loopback => {
            let Some(t) = spawn_app_with(backend, false, vec![trunk]).await else {
                return;
            };
            (t, Vec::new())
        }
        Reach::HttpsByName => {
            let Some((t, certs)) =
                crate::https::spawn_https(backend, vec![trunk], &dir.join("certs"), false).await
            else {
                return;
            };
            assert!(t.base.starts_with("https://agents.dialcrm.test:"));
            let flags = vec![
                resolve_to_loopback(crate::https::AGENTS_HOST),
                format!(
                    "--ignore-certificate-errors-spki-list={}",
                    certs.spki_sha256
                ),
            ];
            (t, flags)
        }
    };
    let outcome = tokio::time::timeout(LIMIT, take_a_call(&t, &chromium, &dir, &flags)).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    outcome
        .expect("the Chromium test took longer than a minute")
        .unwrap();
    sipp.passed().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn take_a_call(t: &TestApp, binary: &Path, dir: &Path, flags: &[String]) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await?.context("al exists")?.0;
    let list = s.create_list(acme.id, "L", "GB", now).await?;
    let phone = "+447700900777";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Philippa".into(),
                last_name: "Oddington".into(),
                phone_e164: phone.into(),
                phone_raw: phone.into(),
                email: Some("philippa@example.org".into()),
                profession: Some("Beekeeper".into()),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({ "plan": "gold" }),
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
            "Spring",
            DialMode::Progressive,
            Some("provider"),
            ("sue", &sup_pw),
        )
        .await;

    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start_with(binary, &dir.join("profile"), &tone, flags).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive_the_page(&mut cdp, t, &agent_pw, campaign.id.0).await;
    chromium.stop(&mut cdp).await;
    outcome?;

    let history = s.interactions_for_contact(acme.id, contact.id).await?;
    assert_eq!(history.len(), 1, "one interaction: {history:?}");
    assert_eq!(history[0].disposition.as_deref(), Some("sale"));
    assert_eq!(history[0].notes.as_deref(), Some("Wants the gold plan."));
    assert_eq!(history[0].user_id, Some(agent.id));
    // The campaign recorded the call and filed it with the attempt the
    // interaction belongs to.
    let recordings = s.recordings_for_contact(acme.id, contact.id).await?;
    assert_eq!(recordings.len(), 1, "one recording: {recordings:?}");
    assert!(history[0].attempt_id.is_some());
    assert_eq!(recordings[0].attempt_id, history[0].attempt_id);
    let (left, right) = channels(Path::new(&recordings[0].path));
    assert!(left.len() >= 8000, "only {} samples recorded", left.len());
    let middle = |x: &[i16]| x[x.len() / 4..x.len() * 3 / 4].to_vec();
    assert_eq!(
        dominant_frequency(&middle(&left), &CANDIDATES, 8000, 1e-4),
        Some(440.0),
        "the browser's microphone, sent to the customer (left)"
    );
    assert_eq!(
        dominant_frequency(&middle(&right), &CANDIDATES, 8000, 1e-4),
        Some(440.0),
        "sipp's echo of it, from the customer (right)"
    );
    // The operator's series saw the call: its end by campaign and cause,
    // and its set-up time.
    let metrics = t.metrics_text().await;
    let ended = format!(
        "dialcrm_calls_total{{account=\"{}\",campaign=\"{}\",outcome=\"",
        acme.id.0, campaign.id.0
    );
    assert!(metrics.contains(&ended), "{ended} in {metrics}");
    assert!(
        metrics.contains("dialcrm_call_setup_seconds_count 1\n"),
        "{metrics}"
    );
    Ok(())
}

/// Logs the agent in through the form, opens the agent page with audio
/// processing off (it would fade the steady test tone, and echo
/// cancellation would take sipp's echo for the agent's own voice), waits
/// for its audio, picks `campaign` and clicks Ready; returns the page.
pub(crate) async fn agent_page_ready(
    cdp: &mut Cdp,
    t: &TestApp,
    password: &str,
    campaign: i64,
) -> Result<String> {
    let page = cdp.open_page(&t.url("/login")).await?;
    // Every page from now on keeps its peer connections where a test can
    // read their statistics.
    cdp.call(Some(&page), "Page.enable", json!({})).await?;
    cdp.call(
        Some(&page),
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": KEEP_PEER_CONNECTIONS }),
    )
    .await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'al'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(password)?
    );
    cdp.evaluate(&page, &login).await?;
    landed_on_agent_page(cdp, &page).await?;
    let navigated = cdp
        .call(
            Some(&page),
            "Page.navigate",
            json!({ "url": t.url("/agent?processing=off") }),
        )
        .await?;
    if let Some(error) = navigated.get("errorText") {
        bail!("opening the agent page failed: {error}");
    }
    until(cdp, &page, "document.readyState === 'complete'").await?;
    until(cdp, &page, "$('audio').dataset.state === 'live'").await?;
    let pick = format!(
        "(() => {{ const s = $('campaign'); s.value = '{campaign}'; \
         if (s.value !== '{campaign}') return false; \
         s.dispatchEvent(new Event('change')); $('ready').click(); return true; }})()"
    );
    assert_eq!(
        cdp.evaluate(&page, &with_ids(&pick)).await?,
        json!(true),
        "the welcome listed the campaign"
    );
    Ok(page)
}

/// Wraps the page's `RTCPeerConnection` so that each one made is kept in
/// `window.dialcrmPeers`.
const KEEP_PEER_CONNECTIONS: &str = "(() => { const Native = window.RTCPeerConnection; \
    if (!Native) return; window.dialcrmPeers = []; \
    window.RTCPeerConnection = class extends Native { \
      constructor(...args) { super(...args); window.dialcrmPeers.push(this); } }; })()";

/// The audio packets the page's newest peer connection has sent, or -1.
const PACKETS_SENT: &str = "(async () => { const pc = (window.dialcrmPeers || []).at(-1); \
    if (!pc) return -1; let sent = 0; \
    (await pc.getStats()).forEach((r) => { \
      if (r.type === 'outbound-rtp' && r.kind === 'audio') sent += r.packetsSent; }); \
    return sent; })()";

/// How many audio packets the page sends over `span`.
async fn packets_sent_over(cdp: &mut Cdp, page: &str, span: Duration) -> Result<i64> {
    let before = cdp
        .evaluate(page, PACKETS_SENT)
        .await?
        .as_i64()
        .unwrap_or(-1);
    tokio::time::sleep(span).await;
    let after = cdp
        .evaluate(page, PACKETS_SENT)
        .await?
        .as_i64()
        .unwrap_or(-1);
    if before < 0 || after < 0 {
        let seen = cdp
            .evaluate(
                page,
                "typeof window.dialcrmPeers + ' ' + String(window.RTCPeerConnection).slice(0, 60)",
            )
            .await?;
        bail!("the page has no peer connection to read: {seen}");
    }
    Ok(after - before)
}

/// Logs in through the form, takes the call, hangs up and saves the wrap-up, all on the page.
async fn drive_the_page(cdp: &mut Cdp, t: &TestApp, password: &str, campaign: i64) -> Result<()> {
    let page = agent_page_ready(cdp, t, password, campaign).await?;
    until(cdp, &page, "$('state').dataset.state === 'in_call'").await?;
    until(
        cdp,
        &page,
        "$('contact-name').textContent === 'Philippa Oddington'",
    )
    .await?;
    let card = cdp
        .evaluate(&page, &with_ids("$('contact-fields').textContent"))
        .await?;
    let card = card.as_str().unwrap_or_default();
    assert!(
        card.contains("+447700900777") && card.contains("Beekeeper") && card.contains("gold"),
        "the contact card shows the contact's fields: {card}"
    );

    let peaks: Value = serde_json::from_str(
        cdp.evaluate(&page, LISTEN)
            .await?
            .as_str()
            .context("no analyser report")?,
    )?;
    assert_heard(&peaks, 440.0)?;
    screenshot(cdp, &page).await?;
    // In the call the microphone goes out, 50 packets a second.
    let in_call = packets_sent_over(cdp, &page, Duration::from_secs(1)).await?;
    assert!(
        in_call >= 25,
        "{in_call} audio packets sent in a second of the call"
    );
    assert_eq!(
        cdp.evaluate(&page, &with_ids("$('audio').dataset.mic"))
            .await?,
        json!("live")
    );

    cdp.evaluate(&page, &with_ids("$('hangup').click()"))
        .await?;
    until(
        cdp,
        &page,
        "!$('wrapup-panel').hidden && [...$('wrapup').disposition.options].some((o) => o.value === 'sale')",
    )
    .await?;
    let fill = "(() => { const f = $('wrapup'); f.disposition.value = 'sale'; \
                f.notes.value = 'Wants the gold plan.'; \
                f.dispatchEvent(new Event('input', { bubbles: true })); \
                return Object.keys(localStorage).filter((k) => k.startsWith('dialcrm.draft.')).length; })()";
    assert_eq!(
        cdp.evaluate(&page, &with_ids(fill)).await?,
        json!(1),
        "the unsaved wrap-up is kept in localStorage"
    );
    cdp.evaluate(
        &page,
        "document.querySelector('#wrapup button[type=submit]').click()",
    )
    .await?;
    until(
        cdp,
        &page,
        "$('wrapup-panel').hidden && $('state').dataset.state === 'ready' \
         && !Object.keys(localStorage).some((k) => k.startsWith('dialcrm.draft.'))",
    )
    .await?;
    // Between calls it does not: the leg stays up, carrying no audio.
    let between = packets_sent_over(cdp, &page, Duration::from_secs(1)).await?;
    assert!(
        between <= 1,
        "{between} audio packets sent in a second between calls"
    );
    assert_eq!(
        cdp.evaluate(&page, &with_ids("$('audio').dataset.mic"))
            .await?,
        json!("idle")
    );
    assert_eq!(
        cdp.evaluate(&page, &with_ids("$('audio').dataset.state"))
            .await?,
        json!("live"),
        "the audio leg is still connected"
    );
    cdp.evaluate(&page, &with_ids("$('pause').click()")).await?;
    until(cdp, &page, "$('state').dataset.state === 'paused'").await?;
    Ok(())
}

/// Waits for the login form's redirect to finish loading the agent page.
pub(crate) async fn landed_on_agent_page(cdp: &mut Cdp, page: &str) -> Result<()> {
    let check = "location.pathname === '/agent' && document.readyState === 'complete'";
    for _ in 0..100 {
        // Evaluating fails while the document is being replaced; try again.
        if let Ok(Value::Bool(true)) = cdp.evaluate(page, check).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the login form did not lead to /agent")
}

/// Wraps an expression so that `$(id)` finds an element by id in it.
pub(crate) fn with_ids(expression: &str) -> String {
    format!("(() => {{ const $ = (id) => document.getElementById(id); return ({expression}); }})()")
}

/// Resolves once `condition` holds in the page, failing after 20 s with the page's status line.
pub(crate) async fn until(cdp: &mut Cdp, page: &str, condition: &str) -> Result<()> {
    let script = format!(
        "new Promise((resolve, reject) => {{ const $ = (id) => document.getElementById(id); \
         const start = Date.now(); const check = () => {{ \
         if ({condition}) return resolve(true); \
         if (Date.now() - start > 20000) return reject(new Error('status: ' + \
         ($('status') ? $('status').textContent : document.title))); \
         setTimeout(check, 50); }}; check(); }})"
    );
    cdp.evaluate(page, &script)
        .await
        .with_context(|| format!("waiting for {condition}"))?;
    Ok(())
}

/// Saves a screenshot of the page where `DIALCRM_AGENT_SCREENSHOT` says.
async fn screenshot(cdp: &mut Cdp, page: &str) -> Result<()> {
    let Some(path) = std::env::var_os("DIALCRM_AGENT_SCREENSHOT") else {
        return Ok(());
    };
    cdp.call(
        Some(page),
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1200, "height": 760, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await?;
    let shot = cdp
        .call(
            Some(page),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        )
        .await?;
    let data = shot["data"].as_str().context("no screenshot data")?;
    std::fs::write(PathBuf::from(path), base64_decode(data)?)?;
    Ok(())
}

/// Listens to the page's remote audio, as the `<audio>` element plays it,
/// and reports the loudest frequency every 100 ms for 1.5 s.
pub(crate) const LISTEN: &str = "(async () => {
  const stream = document.getElementById('remote').srcObject;
  if (!stream) throw new Error('the page plays no remote audio');
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const peaks = [];
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let k = 2; k < bins.length; k++) if (bins[k] > bins[best]) best = k;
    peaks.push({ hz: (best * ctx.sampleRate) / analyser.fftSize, db: bins[best] });
  }
  await ctx.close();
  return JSON.stringify(peaks);
})()";

/// Starts logging, every 20 ms, the loudest frequency the page's remote
/// audio carries into `window.peakLog`, for sounds too short to poll for.
pub(crate) const WATCH: &str = "(async () => {
  const stream = document.getElementById('remote').srcObject;
  if (!stream) throw new Error('the page plays no remote audio');
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  window.peakLog = [];
  setInterval(() => {
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let k = 2; k < bins.length; k++) if (bins[k] > bins[best]) best = k;
    window.peakLog.push({ hz: (best * ctx.sampleRate) / analyser.fftSize, db: bins[best] });
    if (window.peakLog.length > 500) window.peakLog.shift();
  }, 20);
  return true;
})()";

/// How many of `WATCH`'s samples heard `hz`.
pub(crate) fn watched(hz: f64) -> String {
    format!("window.peakLog.filter((p) => Math.abs(p.hz - {hz}) < 50 && p.db > -60).length")
}

pub(crate) fn assert_heard(peaks: &Value, hz: f64) -> Result<()> {
    let peaks = peaks.as_array().context("peaks")?;
    let at_hz = peaks
        .iter()
        .filter(|p| {
            let peak = p["hz"].as_f64().unwrap_or(0.0);
            let db = p["db"].as_f64().unwrap_or(f64::NEG_INFINITY);
            (peak - hz).abs() < 25.0 && db > -60.0
        })
        .count();
    if at_hz <= peaks.len() / 2 {
        bail!("the page did not hear {hz} Hz: {peaks:?}");
    }
    Ok(())
}

/// Returns Chromium when it and sipp are installed; fails under `CI=true` without them.
pub(crate) async fn peers_or_skip() -> Option<PathBuf> {
    let sipp = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok();
    let chromium = cdp::find_chromium();
    if sipp && chromium.is_some() {
        return chromium;
    }
    let missing = if sipp {
        "chromium"
    } else {
        "sipp (sip-tester)"
    };
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{missing} must be installed in CI; scripts/install-deps installs it"
    );
    eprintln!(
        "!!! SKIPPING the agent page test: {missing} is not installed (scripts/install-deps) !!!"
    );
    None
}

/// sipp playing the provider: a digest challenge, then answer and echo until our BYE.
pub(crate) struct Sipp {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl Sipp {
    pub(crate) fn start(dir: &Path) -> Sipp {
        let port = free_port();
        let media = free_port();
        let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/auth_401.xml");
        let log = dir.join("sipp-errors.log");
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string(), "-rtp_echo"])
            .args(["-m", "1", "-nostdin", "-timeout", "90s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(dir)
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Sipp { child, port, log }
    }

    /// Waits for sipp's one call to finish and asserts its scenario passed.
    pub(crate) async fn passed(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("sipp finishes its scenario")
            .expect("sipp's exit status");
        let errors = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "sipp's scenario failed: {errors}");
    }
}

pub(crate) fn free_port() -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if port > 1024
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}

/// Writes three seconds of a sine at 48 kHz, 16-bit mono; Chromium loops it.
pub(crate) fn write_tone(path: &Path, frequency: f64) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec)?;
    for s in sine(frequency, 12_000, 48_000, 48_000 * 3) {
        wav.write_sample(s)?;
    }
    wav.finalize()?;
    Ok(())
}

pub(crate) fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("a valid WAV");
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000), "stereo 8 kHz");
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Decodes standard base64, as CDP returns screenshots.
fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("not base64: {c}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
