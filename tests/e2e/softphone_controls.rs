//! The agent page's call controls in headless Chromium, against the
//! simulated carrier standing in for the customer: the account's pause
//! codes, a number dialled by hand past the calling-hours warning, hold
//! (the customer hears the hold chime, then the agent again), a digit from
//! the keypad, pausing the recording, and the recording filed with the call.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use crm::store::softphone::PauseCode;
use serde_json::{json, Value};
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;
use sip_gateway::media::hold::HOLD_NOTES;
use sip_gateway::media::tone::dominant_frequency;

use crate::dialler::{carrier, NIGHT_ZONE};
use crate::helpers::{spawn_app_with, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{landed_on_agent_page, peers_or_skip, until, write_tone, ONE_AT_A_TIME};

/// The browser's fake microphone.
const AGENT_HZ: f64 = 440.0;
/// The notes of the gateway's hold chime.
const CHIME_HZ: [f64; 2] = HOLD_NOTES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_dials_holds_and_sends_digits_in_chromium() {
    let Some(chromium) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("dialcrm-controls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let customers = carrier(Mix::always(Outcome::Answer), 1000.0, None).await;
    let trunks = vec![TrunkConfig::new("customers", customers.sip_addr())];
    let Some(t) = spawn_app_with(crm::testing::TestBackend::Sqlite, false, trunks).await else {
        return;
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        work_a_call(&t, &customers, &chromium, &dir),
    )
    .await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    outcome
        .expect("the Chromium test took longer than 90 s")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn work_a_call(t: &TestApp, customers: &Carrier, binary: &Path, dir: &Path) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let codes = [("coaching", "Coaching"), ("break", "Break")].map(|(code, label)| PauseCode {
        code: code.into(),
        label: label.into(),
    });
    s.set_pause_codes(acme.id, Some(&codes)).await?;
    let list = s.create_list(acme.id, "L", "GB", now).await?;
    let number = "+442079460771";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Nocturne".into(),
                last_name: "Owl".into(),
                phone_e164: number.into(),
                phone_raw: number.into(),
                time_zone: Some(NIGHT_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await?;
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "By hand",
            DialMode::Progressive,
            None,
            ("sue", &sup_pw),
        )
        .await;

    let tone = dir.join("tone.wav");
    write_tone(&tone, AGENT_HZ)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, t, customers, &agent_pw, campaign.id.0, number).await;
    chromium.stop(&mut cdp).await;
    outcome?;

    let history = s.interactions_for_contact(acme.id, contact.id).await?;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].disposition.as_deref(), Some("callback"));
    let recordings = s.recordings_for_contact(acme.id, contact.id).await?;
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    assert_eq!(recordings[0].attempt_id, history[0].attempt_id);
    let audit: Vec<String> = s
        .audit_entries(acme.id, 100)
        .await?
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in ["call.manual_outside_hours", "call.recording_paused"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    Ok(())
}

async fn drive(
    cdp: &mut Cdp,
    t: &TestApp,
    customers: &Carrier,
    password: &str,
    campaign: i64,
    number: &str,
) -> Result<()> {
    let page = cdp.open_page(&t.url("/login")).await?;
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
    // The pause codes are the account's own.
    until(
        cdp,
        &page,
        "[...$('pause-code').options].map((o) => o.value).join() === 'coaching,break'",
    )
    .await?;
    click(
        cdp,
        &page,
        &format!("$('campaign').value = '{campaign}'; $('ready').click()"),
    )
    .await?;
    until(cdp, &page, "$('state').dataset.state === 'ready'").await?;
    click(cdp, &page, "$('pause').click()").await?;
    until(
        cdp,
        &page,
        "$('state').dataset.state === 'paused' && $('state-reason').textContent === '(coaching)'",
    )
    .await?;

    // A number outside the contact's calling hours: a warning, then Dial anyway.
    let typed = "+44 20 7946 0771";
    click(
        cdp,
        &page,
        &format!(
            "$('manual').number.value = '{typed}'; \
             $('manual').querySelector('button[type=submit]').click()"
        ),
    )
    .await?;
    until(
        cdp,
        &page,
        "!$('dial-anyway').hidden && $('dial-warnings').textContent.includes('calling hours')",
    )
    .await?;
    assert_eq!(
        customers.stats().calls,
        0,
        "nothing dialled before the agent confirms"
    );
    customers.start_capture();
    click(cdp, &page, "$('dial-anyway').click()").await?;
    until(cdp, &page, "$('state').dataset.state === 'in_call'").await?;
    until(
        cdp,
        &page,
        "$('contact-name').textContent === 'Nocturne Owl'",
    )
    .await?;
    until(cdp, &page, "$('recording').dataset.state === 'on'").await?;
    let card = cdp
        .evaluate(
            &page,
            "document.getElementById('contact-fields').textContent",
        )
        .await?;
    assert!(
        card.as_str().unwrap_or_default().contains(number),
        "the card shows the number dialled: {card}"
    );

    let short = Duration::from_millis(600);
    // A whole cycle of the chime, which pauses between its notes.
    let cycle = Duration::from_millis(1700);
    assert_eq!(
        heard(customers, short).await,
        Some(AGENT_HZ),
        "the customer hears the agent"
    );
    click(cdp, &page, "$('hold').click()").await?;
    until(
        cdp,
        &page,
        "$('hold').getAttribute('aria-pressed') === 'true'",
    )
    .await?;
    let on_hold = heard(customers, cycle).await;
    assert!(
        on_hold.is_some_and(|hz| CHIME_HZ.contains(&hz)),
        "the held customer hears the chime, not the agent: {on_hold:?}"
    );
    click(cdp, &page, "$('hold').click()").await?;
    until(
        cdp,
        &page,
        "$('hold').getAttribute('aria-pressed') === 'false'",
    )
    .await?;
    assert_eq!(
        heard(customers, short).await,
        Some(AGENT_HZ),
        "and the agent again after"
    );

    click(
        cdp,
        &page,
        "document.querySelector('#keypad [data-digit=\"7\"]').click()",
    )
    .await?;
    let mut digits = Vec::new();
    for _ in 0..60 {
        digits.extend(customers.take_capture().digits);
        if !digits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(digits, ['7'], "the keypad's digit reached the customer");

    click(cdp, &page, "$('record').click()").await?;
    until(cdp, &page, "$('recording').dataset.state === 'paused'").await?;
    click(cdp, &page, "$('record').click()").await?;
    until(cdp, &page, "$('recording').dataset.state === 'on'").await?;

    click(cdp, &page, "$('hangup').click()").await?;
    until(
        cdp,
        &page,
        "!$('wrapup-panel').hidden && [...$('wrapup').disposition.options].some((o) => o.value === 'callback')",
    )
    .await?;
    let callback = (Utc::now() + chrono::TimeDelta::days(1))
        .format("%Y-%m-%dT10:00")
        .to_string();
    click(
        cdp,
        &page,
        &format!(
            "const f = $('wrapup'); f.disposition.value = 'callback'; \
             f.callback_at.value = '{callback}'; \
             f.querySelector('button[type=submit]').click()"
        ),
    )
    .await?;
    until(cdp, &page, "$('wrapup-panel').hidden").await?;
    Ok(())
}

/// Runs statements on the page with `$(id)` at hand.
async fn click(cdp: &mut Cdp, page: &str, statements: &str) -> Result<Value> {
    let script = format!(
        "(() => {{ const $ = (id) => document.getElementById(id); {statements}; return true; }})()"
    );
    cdp.evaluate(page, &script)
        .await
        .with_context(|| format!("running {statements}"))
}

/// Returns the loudest of the test's tones in what the customer received
/// over the next `window`.
async fn heard(customers: &Carrier, window: Duration) -> Option<f64> {
    customers.take_capture();
    tokio::time::sleep(window).await;
    let audio = customers.take_capture().audio;
    // The first 100 ms may still carry what was sent before.
    let settled = &audio[audio.len().min(800)..];
    dominant_frequency(
        settled,
        &[AGENT_HZ, CHIME_HZ[0], CHIME_HZ[1], 1000.0],
        8000,
        1e-4,
    )
}
