//! A node that stops mid-call, by accident or on purpose.
//!
//! Killed (kill -9, as a power cut or an OOM kill would) and started again,
//! it closes what it left open before it dials: the cut call's attempt is
//! closed and its lead goes back under the retry rules, the agent's state
//! is closed, and no lead is dialled twice.
//!
//! Stopped with SIGTERM, it drains: it places no new call, tells load
//! balancers so on `/healthz`, lets the call in progress and its wrap-up
//! finish, saves the interaction, and only then exits.
//!
//! The service runs as the real binary; the agent is a real Chromium on the
//! agent page; the customers are the simulated carrier, answering and
//! talking until the call is cut.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use crm::model::{CampaignStatus, ContactFields, ContactId, Role};
use crm::store::campaign_settings::{CampaignSettings, DayHours, DialMode, WeeklyHours};
use crm::store::compliance::INTERRUPTED;
use crm::store::leads::LeadState;
use crm::testing::{TestBackend, TestDb};
use crm::Store;
use serde_json::json;
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use tokio::process::{Child, Command};

use crate::dialler::carrier;
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{
    landed_on_agent_page, peers_or_skip, until, with_ids, write_tone, ONE_AT_A_TIME,
};

const BIN: &str = env!("CARGO_BIN_EXE_dialcrm");
const NODE: &str = "crash-node";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_call_closes_it_on_restart_sqlite() {
    killed_mid_call(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_call_closes_it_on_restart_postgres() {
    killed_mid_call(TestBackend::Postgres).await;
}

async fn killed_mid_call(backend: TestBackend) {
    let Some(chromium) = peers_or_skip().await else {
        return;
    };
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir =
        std::env::temp_dir().join(format!("dialcrm-crash-{backend:?}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    // Customers answer and talk until the call is cut.
    let customers = carrier(Mix::always(Outcome::Answer), 440.0, None).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        crash_and_restart(&db, &customers, &chromium, &dir),
    )
    .await;
    db.finish().await;
    outcome
        .expect("the crash test took longer than two minutes")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_call_in_progress_before_stopping() {
    let Some(chromium) = peers_or_skip().await else {
        return;
    };
    let db = TestDb::sqlite().await;
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("dialcrm-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let customers = carrier(Mix::always(Outcome::Answer), 440.0, None).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        drain_on_sigterm(&db, &customers, &chromium, &dir),
    )
    .await;
    db.finish().await;
    outcome
        .expect("the drain test took longer than two minutes")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn crash_and_restart(
    db: &TestDb,
    customers: &Carrier,
    chromium: &Path,
    dir: &Path,
) -> Result<()> {
    let mut stage = Stage::agent_in_call(db, customers, chromium, dir, "first").await?;
    let result = crash(&mut stage, db, customers, dir).await;
    stage.stop().await;
    result
}

async fn crash(st: &mut Stage, db: &TestDb, customers: &Carrier, dir: &Path) -> Result<()> {
    let s = &db.store;
    let attempt = only_attempt(s, &st.seeded, st.seeded.first).await?;
    assert!(attempt.answered_at.is_some(), "the call was answered");
    assert_eq!(attempt.ended_at, None, "and is in progress");

    // The node dies mid-call.
    st.node.start_kill()?;
    st.node.wait().await?;
    let lead = s
        .lead_for_contact(st.seeded.account, st.seeded.campaign_id, st.seeded.first)
        .await?;
    assert_eq!(
        lead.state,
        LeadState::InProgress,
        "left leased by the dead node"
    );
    assert_eq!(lead.lease_owner.as_deref(), Some(NODE));

    // It starts again, as systemd would restart it.
    st.node = serve(&db.url, &st.config, st.port, dir, "second").await?;
    let attempt = only_attempt(s, &st.seeded, st.seeded.first).await?;
    assert_eq!(attempt.outcome.as_deref(), Some(INTERRUPTED));
    assert!(attempt.ended_at.is_some(), "the cut call is closed");
    let lead = s
        .lead_for_contact(st.seeded.account, st.seeded.campaign_id, st.seeded.first)
        .await?;
    assert_eq!(lead.state, LeadState::Pending, "the lead is back");
    assert_eq!(lead.lease_owner, None);
    assert_eq!(lead.attempts, 1, "the cut call used an attempt");
    assert!(
        lead.next_attempt_at.is_some(),
        "and is retried under the campaign's rule for failed calls, not at once"
    );
    let state = s
        .last_agent_state(st.seeded.account, st.seeded.agent)
        .await?
        .context("the agent has a state")?;
    assert_eq!(
        state, "logged_out",
        "the agent is no longer shown in a call"
    );

    // The agent reloads the page and goes Ready again: the second
    // contact is called, the first is not called a second time.
    go_ready(&mut st.cdp, &st.page, &st.base, st.seeded.campaign).await?;
    until(
        &mut st.cdp,
        &st.page,
        "$('state').dataset.state === 'in_call'",
    )
    .await?;
    only_attempt(s, &st.seeded, st.seeded.second).await?;
    let calls = s
        .attempts_for_contact(st.seeded.account, st.seeded.first)
        .await?;
    assert_eq!(calls.len(), 1, "the first contact was dialled once");
    assert_eq!(
        customers.stats().calls,
        2,
        "the carrier saw two calls in all"
    );
    st.node.start_kill()?;
    st.node.wait().await?;
    Ok(())
}

async fn drain_on_sigterm(
    db: &TestDb,
    customers: &Carrier,
    chromium: &Path,
    dir: &Path,
) -> Result<()> {
    let mut stage = Stage::agent_in_call(db, customers, chromium, dir, "draining").await?;
    let result = drain(&mut stage, db, customers).await;
    stage.stop().await;
    result
}

async fn drain(st: &mut Stage, db: &TestDb, customers: &Carrier) -> Result<()> {
    let s = &db.store;
    // The operator stops the service, say for an upgrade.
    let pid = st.node.id().context("running")?.to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()?;
    anyhow::ensure!(sent.success(), "kill -TERM failed");
    let health = format!("{}/healthz", st.base);
    let mut draining = false;
    for _ in 0..50 {
        let r = reqwest::get(&health).await?;
        if r.status() == 503 && r.text().await?.contains("draining") {
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        draining,
        "/healthz tells load balancers the node is draining"
    );
    // The agent is told, on the page.
    until(
        &mut st.cdp,
        &st.page,
        "$('status').textContent.includes('restarting')",
    )
    .await
    .context("the agent page says the service is restarting")?;
    // The call carries on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    anyhow::ensure!(st.node.try_wait()?.is_none(), "the node still runs");
    let attempt = only_attempt(s, &st.seeded, st.seeded.first).await?;
    assert_eq!(attempt.ended_at, None, "the call is still up");

    // The agent finishes the call and the wrap-up.
    st.cdp
        .evaluate(&st.page, &with_ids("$('hangup').click()"))
        .await?;
    until(
        &mut st.cdp,
        &st.page,
        "!$('wrapup-panel').hidden && [...$('wrapup').disposition.options].some((o) => o.value === 'sale')",
    )
    .await?;
    let fill = "(() => { const f = $('wrapup'); f.disposition.value = 'sale'; \
                f.notes.value = 'Renewed before the upgrade.'; \
                f.querySelector('button[type=submit]').click(); return true; })()";
    st.cdp.evaluate(&st.page, &with_ids(fill)).await?;

    // Then, with no call left and nobody wrapping up, the node stops.
    let status = tokio::time::timeout(Duration::from_secs(30), st.node.wait())
        .await
        .context("the drained node stops by itself")??;
    anyhow::ensure!(status.success(), "a drained stop exits 0: {status:?}");
    let history = s
        .interactions_for_contact(st.seeded.account, st.seeded.first)
        .await?;
    assert_eq!(history.len(), 1, "the wrap-up was saved: {history:?}");
    assert_eq!(history[0].disposition.as_deref(), Some("sale"));
    let attempt = only_attempt(s, &st.seeded, st.seeded.first).await?;
    assert_eq!(attempt.outcome.as_deref(), Some("answered"));
    let second = s
        .attempts_for_contact(st.seeded.account, st.seeded.second)
        .await?;
    assert!(second.is_empty(), "nothing new was dialled while draining");
    assert_eq!(customers.stats().calls, 1);
    Ok(())
}

/// A node of the real binary on its own config and port, with a Chromium
/// agent logged in on its agent page and talking to the first contact.
struct Stage {
    seeded: Seeded,
    config: std::path::PathBuf,
    port: u16,
    base: String,
    node: Child,
    browser: Chromium,
    cdp: Cdp,
    page: String,
}

impl Stage {
    async fn agent_in_call(
        db: &TestDb,
        customers: &Carrier,
        chromium: &Path,
        dir: &Path,
        name: &str,
    ) -> Result<Stage> {
        let seeded = seed(&db.store).await?;
        let config = write_config(dir, customers)?;
        let port = free_tcp_port();
        let base = format!("http://127.0.0.1:{port}");
        let node = serve(&db.url, &config, port, dir, name).await?;
        let tone = dir.join("tone.wav");
        write_tone(&tone, 440.0)?;
        let browser = Chromium::start(chromium, &dir.join("profile"), &tone).await?;
        let cdp = Cdp::connect(&browser.ws_url).await?;
        let mut stage = Stage {
            seeded,
            config,
            port,
            base,
            node,
            browser,
            cdp,
            page: String::new(),
        };
        match stage.take_a_call().await {
            Ok(()) => Ok(stage),
            Err(e) => {
                stage.stop().await;
                Err(e)
            }
        }
    }

    async fn take_a_call(&mut self) -> Result<()> {
        self.page = self.cdp.open_page(&format!("{}/login", self.base)).await?;
        log_in(&mut self.cdp, &self.page, &self.seeded.agent_password).await?;
        go_ready(&mut self.cdp, &self.page, &self.base, self.seeded.campaign).await?;
        until(
            &mut self.cdp,
            &self.page,
            "$('state').dataset.state === 'in_call'",
        )
        .await
    }

    async fn stop(mut self) {
        self.browser.stop(&mut self.cdp).await;
        let _ = self.node.start_kill();
    }
}

/// Writes the node's config file: its name, and the customers' trunk.
fn write_config(dir: &Path, customers: &Carrier) -> Result<std::path::PathBuf> {
    let config = dir.join("dialcrm.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = \"{NODE}\"\nrecordings_dir = \"{}\"\n\n[gateway]\nsip_udp = \
             \"127.0.0.1:0\"\nrtp_port_min = 0\nrtp_port_max = 0\n\n[[trunks]]\nname = \
             \"customers\"\nhost = \"127.0.0.1\"\nport = {}\nmax_cps = 100\n",
            dir.join("recordings").display(),
            customers.sip_addr().port()
        ),
    )?;
    Ok(config)
}

pub(crate) struct Seeded {
    pub(crate) account: crm::model::AccountId,
    pub(crate) agent: crm::model::UserId,
    pub(crate) agent_password: String,
    pub(crate) campaign: i64,
    pub(crate) campaign_id: crm::model::CampaignId,
    pub(crate) first: ContactId,
    pub(crate) second: ContactId,
}

/// An account with an agent and a running progressive campaign of two
/// contacts, callable at any hour (the binary runs on the real clock).
pub(crate) async fn seed(s: &Store) -> Result<Seeded> {
    let now = chrono::Utc::now();
    let account = s.create_account("acme", 5, now).await?;
    let agent_password = "Pw-al-crash-1234".to_owned();
    let hash = crm::password::hash(&agent_password)?;
    let agent = s
        .create_user(account.id, "al", &hash, Role::Agent, now)
        .await?;
    let list = s.create_list(account.id, "L", "GB", now).await?;
    let mut contacts = Vec::new();
    for (name, phone) in [("Ada", "+447700900701"), ("Bo", "+447700900702")] {
        let contact = s
            .create_contact(
                account.id,
                &ContactFields {
                    first_name: name.into(),
                    phone_e164: phone.into(),
                    phone_raw: phone.into(),
                    time_zone: Some("Europe/London".into()),
                    custom_fields: json!({}),
                    ..ContactFields::default()
                },
                now,
            )
            .await?;
        s.add_to_list(account.id, list.id, contact.id, now).await?;
        contacts.push(contact.id);
    }
    let campaign = s
        .create_campaign(account.id, "Night shift", "+441632960000", now)
        .await?;
    s.attach_list(account.id, campaign.id, list.id, 0).await?;
    let mut settings = CampaignSettings::defaults("+441632960000");
    settings.mode = DialMode::Progressive;
    settings.trunk = "customers".into();
    settings.calling_hours = WeeklyHours::every_day(DayHours::all_day());
    settings.record_calls = false;
    s.update_campaign_settings(account.id, campaign.id, &settings, now)
        .await?;
    s.assign_agents(account.id, campaign.id, &[agent.id])
        .await?;
    s.set_campaign_status(account.id, campaign.id, CampaignStatus::Running, now)
        .await?;
    s.sync_leads(account.id, campaign.id, now).await?;
    Ok(Seeded {
        account: account.id,
        agent: agent.id,
        agent_password,
        campaign: campaign.id.0,
        campaign_id: campaign.id,
        first: contacts[0],
        second: contacts[1],
    })
}

/// Starts `dialcrm serve` and waits until it answers.
async fn serve(url: &str, config: &Path, port: u16, dir: &Path, name: &str) -> Result<Child> {
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let child = Command::new(BIN)
        .args(["serve", "--no-demo", "--http-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(config)
        .env("DIALCRM_DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting dialcrm serve")?;
    let health = format!("http://127.0.0.1:{port}/healthz");
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(&health).await {
            if r.status() == 200 {
                return Ok(child);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "dialcrm serve did not answer; see {}",
        dir.join(format!("{name}.log")).display()
    )
}

pub(crate) async fn log_in(cdp: &mut Cdp, page: &str, password: &str) -> Result<()> {
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'al'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(password)?
    );
    cdp.evaluate(page, &login).await?;
    landed_on_agent_page(cdp, page).await
}

/// Opens the agent page afresh, waits for its audio leg, and goes Ready.
pub(crate) async fn go_ready(cdp: &mut Cdp, page: &str, base: &str, campaign: i64) -> Result<()> {
    cdp.call(
        Some(page),
        "Page.navigate",
        json!({ "url": format!("{base}/agent") }),
    )
    .await?;
    until(cdp, page, "document.readyState === 'complete'").await?;
    until(cdp, page, "$('audio').dataset.state === 'live'").await?;
    until(
        cdp,
        page,
        &format!("[...$('campaign').options].some((o) => o.value === '{campaign}')"),
    )
    .await?;
    let pick = format!(
        "(() => {{ const s = $('campaign'); s.value = '{campaign}'; \
         s.dispatchEvent(new Event('change')); $('ready').click(); return true; }})()"
    );
    cdp.evaluate(page, &with_ids(&pick)).await?;
    Ok(())
}

/// Returns the contact's one attempt.
pub(crate) async fn only_attempt(
    s: &Store,
    seeded: &Seeded,
    contact: ContactId,
) -> Result<crm::model::CallAttempt> {
    let attempts = s.attempts_for_contact(seeded.account, contact).await?;
    anyhow::ensure!(attempts.len() == 1, "one attempt: {attempts:?}");
    attempts.into_iter().next().context("one attempt")
}

fn free_tcp_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    probe.local_addr().expect("addr").port()
}
