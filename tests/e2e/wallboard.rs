//! The supervisor's page in a real headless Chromium: on the wallboard a call
//! placed by a campaign dialling sipp appears, connects to the agent and
//! ends; the Reports tab shows a planted call's figures; the Users panel adds
//! an agent and refuses one beyond the licence seats.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sip_gateway::carrier::{Mix, Outcome};
use sip_gateway::gateway::{Secret, TrunkConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::dialler::{agent_phone, carrier, DAY_ZONE};
use crate::helpers::{run_then_stop, spawn_app_with, Scratch, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{peers_or_skip, until, write_tone, Sipp, ONE_AT_A_TIME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_shows_a_call_appear_connect_and_end() {
    let Some(binary) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("dialcrm-wallboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sipp = Sipp::start(&dir);
    let phones = carrier(Mix::always(Outcome::Answer), 1000.0, None).await;
    let mut provider = TrunkConfig::new(
        "provider",
        format!("127.0.0.1:{}", sipp.port).parse().expect("addr"),
    );
    provider.username = Some("acct".into());
    provider.password = Secret::new("s3cret");
    let trunks = vec![provider, TrunkConfig::new("phones", phones.sip_addr())];
    let t = spawn_app_with(TestBackend::Sqlite, false, trunks)
        .await
        .expect("SQLite is always there");
    let outcome = watch(&t, &binary, &dir).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    outcome.expect("the wallboard followed the call");
    sipp.passed().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn watch(t: &TestApp, binary: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await?.context("al exists")?.0;
    let list = s.create_list(acme.id, "L", "GB", now).await?;
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Wally".into(),
                phone_e164: "+447700900888".into(),
                phone_raw: "07700 900888".into(),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await?;
    s.add_to_list(acme.id, list.id, contact.id, now).await?;
    t.start_campaign(
        &acme,
        list.id,
        "Board",
        DialMode::Progressive,
        Some("provider"),
        ("sue", &sup_pw),
    )
    .await;

    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let result = follow(&mut cdp, t, &sup_pw, agent.id, &agent_pw).await;
    chromium.stop(&mut cdp).await;
    result
}

async fn follow(
    cdp: &mut Cdp,
    t: &TestApp,
    sup_pw: &str,
    agent: crm::model::UserId,
    agent_pw: &str,
) -> Result<()> {
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
    let campaign = t.db.store.campaigns(agent_account(t, agent).await?).await?[0].id;
    desk.send(Message::Text(
        json!({"type": "ready", "campaign_id": campaign.0})
            .to_string()
            .into(),
    ))
    .await?;

    until(
        cdp,
        &page,
        "document.querySelector('#agents tbody tr') !== null",
    )
    .await?;
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#calls tbody tr')].some(r => \
         r.dataset.state === 'connected' && r.children[3].textContent === 'al' \
         && r.children[1].textContent === 'Board')",
    )
    .await
    .context("the call shows connected to the agent, in its campaign by name")?;
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#agents tbody tr')].some(r => \
         r.dataset.state === 'in_call' && r.children[0].textContent === 'al' \
         && r.children[1].textContent === 'in call')",
    )
    .await
    .context("the agent shows in a call, in words")?;
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#figures tbody tr')].some(r => \
         r.children[0].textContent === 'Board')",
    )
    .await
    .context("the campaign's figures show its name")?;
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#trunks li[data-trunk]')].some(t => \
         t.dataset.up === 'true' && t.textContent.includes('up for'))",
    )
    .await
    .context("the trunk the call went through shows as a tile, up")?;

    // The agent hangs up; the call leaves the board.
    wait_for_call(&mut desk).await?;
    desk.send(Message::Text(json!({"type": "hangup"}).to_string().into()))
        .await?;
    until(
        cdp,
        &page,
        "document.querySelectorAll('#calls tbody tr').length === 0",
    )
    .await
    .context("the ended call leaves the board")?;
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#figures tbody td')].length > 0",
    )
    .await
    .context("campaign figures are shown")?;
    Ok(())
}

pub(crate) async fn landed_on_wallboard(cdp: &mut Cdp, page: &str) -> Result<()> {
    let check = "location.pathname === '/supervisor' && document.readyState === 'complete' \
         && document.getElementById('link').dataset.state === 'live'";
    for _ in 0..150 {
        // Evaluating fails while the document is being replaced; try again.
        if let Ok(serde_json::Value::Bool(true)) = cdp.evaluate(page, check).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the login form did not lead to a live wallboard")
}

async fn agent_account(t: &TestApp, agent: crm::model::UserId) -> Result<crm::model::AccountId> {
    let accounts = t.db.store.accounts().await?;
    for a in accounts {
        if t.db.store.user(a.id, agent).await.is_ok() {
            return Ok(a.id);
        }
    }
    anyhow::bail!("the agent belongs to no account")
}

pub(crate) type Desk =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn wait_for_call(desk: &mut Desk) -> Result<()> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), desk.next())
            .await
            .context("the desk got a call")?
            .context("desk open")??;
        if let Message::Text(text) = msg {
            let v: serde_json::Value = serde_json::from_str(&text)?;
            if v["type"] == "call" {
                return Ok(());
            }
        }
    }
}

/// The supervisor page's Reports tab shows a planted call's figures, and
/// its Users panel adds an agent, then says so when the seats are full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_page_reports_a_call_and_adds_an_agent() {
    let Some(binary) = crate::softphone::chromium_or_skip("the supervisor page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = Scratch::new("supervisor");
    let t = spawn_app_with(TestBackend::Sqlite, false, Vec::new())
        .await
        .expect("SQLite is always there");
    let what = "the supervisor page (reports a call, adds an agent)";
    run_then_stop(t, what, Duration::from_secs(120), async |t| {
        supervise(t, &binary, dir.path()).await
    })
    .await;
}

async fn supervise(t: &TestApp, binary: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let acme = t.account("acme", 2).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    t.user(&acme, "al", Role::Agent).await;
    let al = t.db.store.credentials("al").await?.context("al exists")?.0;
    crate::reports::plant_a_call(t, &acme, al.id).await;

    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let result = reports_and_users(&mut cdp, t, &sup_pw).await;
    chromium.stop(&mut cdp).await;
    result?;
    let added =
        t.db.store
            .credentials("newbie")
            .await?
            .context("newbie exists")?
            .0;
    assert_eq!((added.role, added.active), (Role::Agent, true));
    assert!(
        t.db.store.credentials("third").await?.is_none(),
        "no seat left"
    );
    let board = t.db.store.campaigns(acme.id).await?;
    let board = board.first().context("the planted campaign")?;
    let settings = t.db.store.campaign_settings(acme.id, board.id).await?;
    assert!(settings.detect_machines, "saved from the page");
    Ok(())
}

async fn reports_and_users(cdp: &mut Cdp, t: &TestApp, sup_pw: &str) -> Result<()> {
    let page = cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(sup_pw)?
    );
    cdp.evaluate(&page, &login).await?;
    landed_on_wallboard(cdp, &page).await?;

    cdp.evaluate(
        &page,
        "document.querySelector('.tabs [data-tab=reports]').click()",
    )
    .await?;
    // al: one call, 1:30 of talk, 0:25 of wrap-up, 30 min of lunch, one Sale.
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#agent-report tbody tr')].some(r => \
         [...r.children].map(c => c.textContent).join('|') === \
         'al|1|1:30|0:25|58:05|30:00|lunch 30:00|Sale 1')",
    )
    .await
    .context("the agents' report shows the planted call")?;
    until(
        cdp,
        &page,
        "[...document.querySelectorAll('#campaign-report tbody tr')].some(r => \
         [...r.children].map(c => c.textContent).join('|') === \
         'Board|1|1|0|0.0 %|answered 1|Sale 1')",
    )
    .await
    .context("the campaigns' report shows the planted call")?;
    until(
        cdp,
        &page,
        "document.getElementById('agents-csv').href.endsWith(\
         '/api/reports/agents?from=2026-11-27&to=2026-11-27&format=csv') && \
         document.getElementById('tab-floor').hidden",
    )
    .await
    .context("the CSV link follows the period")?;

    cdp.evaluate(
        &page,
        "document.querySelector('.tabs [data-tab=users]').click()",
    )
    .await?;
    until(
        cdp,
        &page,
        "document.querySelector('#user-list tr[data-username=al]') !== null",
    )
    .await
    .context("the users are listed")?;
    let add = |name: &str| {
        format!(
            "(() => {{ const f = document.getElementById('new-user'); f.username.value = '{name}'; \
             f.password.value = 'Fresh-Pass-9'; f.role.value = 'agent'; f.requestSubmit(); \
             return true; }})()"
        )
    };
    cdp.evaluate(&page, &add("newbie")).await?;
    until(
        cdp,
        &page,
        "document.querySelector('#user-list tr[data-username=newbie][data-active=true]') \
         !== null && $('user-status').textContent === 'newbie added.'",
    )
    .await
    .context("the new agent is listed")?;
    cdp.evaluate(&page, &add("third")).await?;
    until(
        cdp,
        &page,
        "$('user-status').textContent.includes('seat limit')",
    )
    .await
    .context("a third agent on two seats is refused with the reason")?;

    cdp.evaluate(
        &page,
        "document.querySelector('.tabs [data-tab=floor]').click()",
    )
    .await?;
    until(
        cdp,
        &page,
        "(() => { const b = document.querySelector('#dial-levels .screen-machines'); \
         return b !== null && !b.checked && !b.disabled; })()",
    )
    .await
    .context("the campaign's machine screening is shown, off")?;
    cdp.evaluate(
        &page,
        "document.querySelector('#dial-levels .screen-machines').click()",
    )
    .await?;
    until(
        cdp,
        &page,
        "$('dial-level-status').textContent === \
         'Board: answering machines screened out from the campaign\\'s next start.'",
    )
    .await
    .context("screening is switched on")?;
    Ok(())
}
