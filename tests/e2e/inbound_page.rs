//! A customer calling in reaches an agent working in the agent page in a
//! real headless Chromium: sipp plays the provider's caller and echoes what
//! it hears; the page shows the caller's card marked as an inbound call to
//! the queue, its WebAudio analyser hears the zip tone that marks the call
//! put through and then the browser's own 440 Hz come back from the caller, the call's recording holds it both ways, and the
//! agent hangs up and saves the wrap-up on the page.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;
use crm::model::Role;
use crm::store::campaign_settings::DialMode;
use crm::store::queues::QueueSettings;
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::gateway::TrunkConfig;
use sip_gateway::media::tone::dominant_frequency;

use crate::helpers::{spawn_app_with, TestApp};

/// The pitch of the gateway's zip tone.
const ZIP_TONE: f64 = 1400.0;
use crate::inbound::{free_port, Caller, DID};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{
    agent_page_ready, assert_heard, channels, peers_or_skip, until, watched, with_ids, write_tone,
    CANDIDATES, LIMIT, LISTEN, ONE_AT_A_TIME, WATCH,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_takes_an_inbound_call_in_chromium_on_sqlite() {
    inbound_page(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_takes_an_inbound_call_in_chromium_on_postgres() {
    inbound_page(TestBackend::Postgres).await;
}

async fn inbound_page(backend: TestBackend) {
    let Some(chromium) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-inbound-page-{backend:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let sipp_port = free_port();
    let trunk = TrunkConfig::new(
        "provider",
        format!("127.0.0.1:{sipp_port}").parse().expect("addr"),
    );
    let Some(t) = spawn_app_with(backend, false, vec![trunk]).await else {
        return;
    };
    let outcome = tokio::time::timeout(LIMIT, take_the_call(&t, &chromium, &dir, sipp_port)).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    outcome
        .expect("the Chromium test took longer than a minute")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn take_the_call(t: &TestApp, binary: &Path, dir: &Path, sipp_port: u16) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await?.context("al exists")?.0;
    let list = s.create_list(acme.id, "Empty", "GB", now).await?;
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "Service",
            DialMode::Progressive,
            Some("provider"),
            ("sue", &sup_pw),
        )
        .await;
    let mut settings = QueueSettings::new(campaign.id);
    settings.record_calls = true;
    let queue = s
        .create_queue(acme.id, "Sales", &settings, &[DID.to_owned()], now)
        .await?;
    s.assign_queue_agent(acme.id, queue.id, agent.id, 5).await?;

    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start_with(binary, &dir.join("profile"), &tone, &[]).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, t, &agent_pw, campaign.id.0, sipp_port).await;
    chromium.stop(&mut cdp).await;
    let caller = outcome?;
    caller.passed().await;

    let history = s
        .attempts_for_contact(acme.id, queue_contact(t, acme.id).await?)
        .await?;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome.as_deref(), Some("answered"));
    let contact = history[0].contact_id.context("a contact")?;
    let done = s.interactions_for_contact(acme.id, contact).await?;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].disposition.as_deref(), Some("sale"));
    assert_eq!(done[0].user_id, Some(agent.id));
    let recordings = s.recordings_for_contact(acme.id, contact).await?;
    assert_eq!(recordings.len(), 1, "the queue records its calls");
    let (left, right) = channels(Path::new(&recordings[0].path));
    let middle = |x: &[i16]| x[x.len() / 4..x.len() * 3 / 4].to_vec();
    assert_eq!(
        dominant_frequency(&middle(&left), &CANDIDATES, 8000, 1e-4),
        Some(440.0),
        "the browser's microphone, sent to the caller (left)"
    );
    assert_eq!(
        dominant_frequency(&middle(&right), &CANDIDATES, 8000, 1e-4),
        Some(440.0),
        "the caller's echo of it (right)"
    );
    Ok(())
}

/// The contact the caller's number made.
async fn queue_contact(
    t: &TestApp,
    account: crm::model::AccountId,
) -> Result<crm::model::ContactId> {
    let found =
        t.db.store
            .contacts_by_number(account, "+447400123456")
            .await?;
    Ok(found.first().context("the caller's contact")?.id)
}

/// Logs in, goes Ready, takes the caller's call, hangs up and saves the
/// wrap-up, all on the page; returns the caller to check.
async fn drive(
    cdp: &mut Cdp,
    t: &TestApp,
    password: &str,
    campaign: i64,
    sipp_port: u16,
) -> Result<Caller> {
    let page = agent_page_ready(cdp, t, password, campaign).await?;
    until(cdp, &page, "$('state').dataset.state === 'ready'").await?;
    cdp.evaluate(&page, WATCH).await?;

    let gateway = t.app.telephony.gateway.sip_udp_addr();
    let caller = Caller::call("inbound_caller.xml", gateway, sipp_port, DID).await;
    until(cdp, &page, "$('state').dataset.state === 'in_call'").await?;
    // The line was open already: a zip tone says someone is there.
    until(cdp, &page, &format!("{} >= 3", watched(ZIP_TONE))).await?;
    until(cdp, &page, "!$('inbound').hidden").await?;
    let banner = cdp
        .evaluate(&page, &with_ids("$('inbound').textContent"))
        .await?;
    assert!(
        banner
            .as_str()
            .unwrap_or_default()
            .contains("Inbound call to Sales"),
        "the card says where the caller called: {banner}"
    );
    let dnc_hidden = cdp
        .evaluate(&page, &with_ids("$('inbound-dnc').hidden"))
        .await?;
    assert_eq!(dnc_hidden, json!(true), "not on the do-not-call list");
    let card = cdp
        .evaluate(&page, &with_ids("$('contact-fields').textContent"))
        .await?;
    assert!(
        card.as_str().unwrap_or_default().contains("+447400123456"),
        "the caller's number is on the card: {card}"
    );
    let peaks: Value = serde_json::from_str(
        cdp.evaluate(&page, LISTEN)
            .await?
            .as_str()
            .context("no analyser report")?,
    )?;
    assert_heard(&peaks, 440.0)?;

    cdp.evaluate(&page, &with_ids("$('hangup').click()"))
        .await?;
    until(
        cdp,
        &page,
        "!$('wrapup-panel').hidden && [...$('wrapup').disposition.options].some((o) => o.value === 'sale')",
    )
    .await?;
    cdp.evaluate(
        &page,
        "(() => { const f = document.getElementById('wrapup'); f.disposition.value = 'sale'; \
         f.querySelector('button[type=submit]').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        &page,
        "$('wrapup-panel').hidden && $('state').dataset.state === 'ready' && $('inbound').hidden",
    )
    .await?;
    Ok(caller)
}
