//! A node killed (kill -9) in the middle of a bridged call, with another
//! node on the same PostgreSQL and NATS, behind one load-balancer address.
//!
//! Within the node timeout and a heartbeat the survivor declares the dead
//! node down and closes what it left: the call's attempt is closed and its
//! lead goes back under the retry rules, so it is not dialled twice; a
//! supervisor on the survivor sees the call end and the agent logged out.
//! The agent's browser, which reached the dead node through the balancer,
//! reconnects through it to the survivor, gets a new audio leg, wraps the
//! cut call up there and takes the next call. The dead node, started again,
//! joins without a manual step; when the survivor dies in turn while the
//! agent is half-way through a wrap-up, the page reconnects to the node
//! that came back and the unsaved wrap-up is saved there.
//!
//! The nodes are the real binary; the balancer is a TCP proxy sending each
//! new connection to the first node that accepts it; the agent is a real
//! Chromium; the customers are the simulated carrier.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crm::model::Role;
use crm::store::compliance::INTERRUPTED;
use crm::store::leads::LeadState;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::dialler::carrier;
use crate::helpers::{client, next_json, session_of, Ws};
use crate::restarts::{go_ready, log_in, only_attempt, seed};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{peers_or_skip, until, with_ids, write_tone, ONE_AT_A_TIME};

const BIN: &str = env!("CARGO_BIN_EXE_dialcrm");
/// The silence after which the survivor declares a node dead, in seconds.
const NODE_TIMEOUT: u64 = 3;
/// What the survivor is allowed, from the kill to the wallboard.
const BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_call_is_recovered_by_the_survivor_and_its_agent_carries_on_there() {
    let Some(st) = Stage::start("failover", 440.0).await else {
        return;
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(180),
        failover(&st.db, &st.nats, &st.customers, &st.chromium, &st.dir),
    )
    .await;
    st.finish().await;
    outcome
        .expect("the failover test took longer than three minutes")
        .unwrap();
}

/// What a test of several real nodes with Chromium agents needs: the
/// peers, a NATS server and a PostgreSQL database of its own, a scratch
/// folder, and customers (the simulated carrier) answering with a tone.
pub(crate) struct Stage {
    pub(crate) chromium: std::path::PathBuf,
    pub(crate) nats: TestNats,
    pub(crate) db: TestDb,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) customers: Carrier,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Stage {
    /// Sets the stage, or `None` (having said why) where a peer is missing
    /// outside CI.
    pub(crate) async fn start(name: &str, customer_hz: f64) -> Option<Stage> {
        let chromium = peers_or_skip().await?;
        let nats = TestNats::start().await?;
        let db = TestDb::postgres().await?;
        let turn = ONE_AT_A_TIME.lock().await;
        let dir = std::env::temp_dir().join(format!("dialcrm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let customers = carrier(Mix::always(Outcome::Answer), customer_hz, None).await;
        Some(Stage {
            chromium,
            nats,
            db,
            dir,
            customers,
            _turn: turn,
        })
    }

    /// Drops the database and the scratch folder.
    pub(crate) async fn finish(self) {
        self.db.finish().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn failover(
    db: &TestDb,
    nats: &TestNats,
    customers: &Carrier,
    chromium: &Path,
    dir: &Path,
) -> Result<()> {
    let s = &db.store;
    let seeded = seed(s).await?;
    let password = "Pw-sue-failover-1234";
    let hash = crm::password::hash(password)?;
    s.create_user(
        seeded.account,
        "sue",
        &hash,
        Role::Supervisor,
        chrono::Utc::now(),
    )
    .await?;
    let mut a = Node::serve(db, nats, customers, dir, "node-a").await?;
    let mut b = Node::serve(db, nats, customers, dir, "node-b").await?;
    // Agents reach the service through one address; node A is first.
    let balancer = Balancer::start(vec![a.addr, b.addr]).await?;
    let front = format!("http://{}", balancer.addr);

    // A supervisor watches the wallboard stream on node B.
    let sue = login(&b.base, "sue", password).await?;
    let mut wallboard = stream(&b, &sue).await?;
    anyhow::ensure!(next_json(&mut wallboard).await["type"] == "snapshot");

    // The agent logs in through the balancer, lands on A, and takes a call.
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let browser = Chromium::start(chromium, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&browser.ws_url).await?;
    let result = async {
        let page = cdp.open_page(&format!("{front}/login")).await?;
        log_in(&mut cdp, &page, &seeded.agent_password).await?;
        go_ready(&mut cdp, &page, &front, seeded.campaign).await?;
        until(&mut cdp, &page, "$('state').dataset.state === 'in_call'").await?;
        let attempt = only_attempt(s, &seeded, seeded.first).await?;
        anyhow::ensure!(placed_by(db, attempt.id).await?.as_deref() == Some("node-a"));
        anyhow::ensure!(attempt.ended_at.is_none(), "the call is in progress");

        // Node A dies mid-call.
        a.child.start_kill()?;
        a.child.wait().await?;
        let killed = Instant::now();

        // The supervisor on B sees the call end and the agent leave.
        let call_ref = serde_json::to_value(attempt.call_ref)?;
        let (mut ended, mut left) = (None, None);
        while ended.is_none() || left.is_none() {
            anyhow::ensure!(
                killed.elapsed() < BOUND,
                "the survivor closed the dead node's call within {BOUND:?}: ended {ended:?}, \
                 logged out {left:?}"
            );
            let frame = next_json(&mut wallboard).await;
            let event = &frame["event"];
            match event["kind"].as_str() {
                Some("call_state")
                    if event["call_ref"] == call_ref && event["state"] == "ended" =>
                {
                    ended = Some(event["cause"].clone());
                }
                Some("agent_state")
                    if event["username"] == "al" && event["state"] == "logged_out" =>
                {
                    left = Some(killed.elapsed());
                }
                _ => {}
            }
        }
        let took = killed.elapsed();
        anyhow::ensure!(
            ended == Some(serde_json::json!("node_lost")),
            "the call ended because its node was lost: {ended:?}"
        );
        eprintln!("the survivor closed the dead node's call {took:?} after the kill");

        // In the database: the attempt is closed, the lead is back under
        // the retry rules (not at once), and counted once.
        let attempt = only_attempt(s, &seeded, seeded.first).await?;
        anyhow::ensure!(
            attempt.outcome.as_deref() == Some(INTERRUPTED),
            "{attempt:?}"
        );
        let lead = s
            .lead_for_contact(seeded.account, seeded.campaign_id, seeded.first)
            .await?;
        anyhow::ensure!(lead.state == LeadState::Pending, "{lead:?}");
        anyhow::ensure!(lead.lease_owner.is_none(), "{lead:?}");
        anyhow::ensure!(lead.attempts == 1, "{lead:?}");
        anyhow::ensure!(lead.next_attempt_at.is_some(), "{lead:?}");
        let node_a = s.node("node-a").await?.context("node A is known")?;
        anyhow::ensure!(node_a.state == "down", "{node_a:?}");
        anyhow::ensure!(node_a.recovered_by.as_deref() == Some("node-b"));
        anyhow::ensure!(node_a.recovered_at.is_some());

        // The agent's page reconnects through the balancer, to B, with a
        // new audio leg; the cut call is still to be wrapped up, there.
        until(
            &mut cdp,
            &page,
            "$('status').textContent.includes('Reconnected') \
             || !$('wrapup-panel').hidden",
        )
        .await
        .context("the agent page reconnects to the survivor")?;
        until(&mut cdp, &page, "$('audio').dataset.state === 'live'")
            .await
            .context("with a new audio leg")?;
        let cut = attempt.call_ref.to_string();
        wrap_up(&mut cdp, &page, &cut, "Cut off; call back later.").await?;
        let history = s
            .interactions_for_contact(seeded.account, seeded.first)
            .await?;
        anyhow::ensure!(
            history.len() == 1,
            "the cut call's wrap-up was saved on B: {history:?}"
        );
        anyhow::ensure!(history[0].notes.as_deref() == Some("Cut off; call back later."));

        // Saved, the agent is Ready again, and B calls the next contact.
        until(&mut cdp, &page, "$('state').dataset.state === 'in_call'")
            .await
            .context("the agent takes a call on the survivor")?;
        let second = only_attempt(s, &seeded, seeded.second).await?;
        anyhow::ensure!(placed_by(db, second.id).await?.as_deref() == Some("node-b"));
        let first_calls = s.attempts_for_contact(seeded.account, seeded.first).await?;
        anyhow::ensure!(first_calls.len() == 1, "the first contact was dialled once");
        anyhow::ensure!(
            customers.stats().calls == 2,
            "two calls reached the carrier"
        );

        // A, started again, joins with a higher epoch without a manual step,
        // and takes the balancer's new connections again.
        a = Node::serve(db, nats, customers, dir, "node-a").await?;
        let back = s.node("node-a").await?.context("node A is known")?;
        anyhow::ensure!(back.state == "up" && back.epoch > node_a.epoch, "{back:?}");
        balancer.set(vec![a.addr, b.addr]);

        // The agent hangs up and starts the wrap-up; B dies before it is saved.
        cdp.evaluate(&page, &with_ids("$('hangup').click()"))
            .await?;
        let call = second.call_ref.to_string();
        until(
            &mut cdp,
            &page,
            &format!("!$('wrapup-panel').hidden && $('wrapup-panel').dataset.callRef === '{call}'"),
        )
        .await?;
        let typed = "(() => { const f = $('wrapup'); f.notes.value = 'Wants the annual plan.'; \
                     f.dispatchEvent(new Event('input')); return true; })()";
        cdp.evaluate(&page, &with_ids(typed)).await?;
        b.child.start_kill()?;
        b.child.wait().await?;
        // The page reconnects to A, which takes the wrap-up as due.
        let mut moved = false;
        for _ in 0..200 {
            let desk = s.kept_desk(seeded.account, seeded.agent).await?;
            if desk.is_some_and(|d| d.node == "node-a" && d.phase == "wrap_up") {
                moved = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::ensure!(
            moved,
            "the agent's page reconnected to A, its wrap-up due there"
        );
        until(&mut cdp, &page, "$('link').dataset.state === 'live'")
            .await
            .context("the agent page is connected")?;
        until(
            &mut cdp,
            &page,
            "$('wrapup').notes.value === 'Wants the annual plan.'",
        )
        .await
        .context("the unsaved notes are still there")?;
        wrap_up(&mut cdp, &page, &call, "Wants the annual plan.").await?;
        let history = s
            .interactions_for_contact(seeded.account, seeded.second)
            .await?;
        anyhow::ensure!(history.len() == 1, "saved on A: {history:?}");
        anyhow::ensure!(history[0].notes.as_deref() == Some("Wants the annual plan."));
        anyhow::ensure!(history[0].disposition.as_deref() == Some("sale"));
        let desk = s.kept_desk(seeded.account, seeded.agent).await?;
        anyhow::ensure!(
            desk.as_ref().is_some_and(|d| d.node == "node-a"),
            "A serves the agent's desk now: {desk:?}"
        );
        Ok(())
    }
    .await;
    browser.stop(&mut cdp).await;
    drop(balancer);
    drop(b);
    drop(a);
    result
}

/// Waits for the wrap-up of `call` (the page may still be on its way back
/// from the reconnection), chooses "sale" with `notes`, and saves it.
async fn wrap_up(cdp: &mut Cdp, page: &str, call: &str, notes: &str) -> Result<()> {
    until(
        cdp,
        page,
        &format!(
            "!$('wrapup-panel').hidden && $('wrapup-panel').dataset.callRef === '{call}' \
             && [...$('wrapup').disposition.options].some((o) => o.value === 'sale')"
        ),
    )
    .await
    .context("the wrap-up of the call is due")?;
    let fill = format!(
        "(() => {{ const f = $('wrapup'); f.disposition.value = 'sale'; f.notes.value = {}; \
         f.querySelector('button[type=submit]').click(); return true; }})()",
        serde_json::to_string(notes)?
    );
    cdp.evaluate(page, &with_ids(&fill)).await?;
    until(cdp, page, "$('wrapup-panel').hidden")
        .await
        .context("the wrap-up is saved")
}

/// The node that placed an attempt.
async fn placed_by(db: &TestDb, attempt: crm::model::AttemptId) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT node FROM call_attempts WHERE id = $1")
            .bind(attempt.0)
            .fetch_one(db.store.postgres_pool().context("PostgreSQL")?)
            .await?,
    )
}

/// One `dialcrm serve` process on PostgreSQL and NATS.
pub(crate) struct Node {
    pub(crate) base: String,
    pub(crate) addr: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

impl Node {
    pub(crate) async fn serve(
        db: &TestDb,
        nats: &TestNats,
        customers: &Carrier,
        dir: &Path,
        name: &str,
    ) -> Result<Node> {
        let home = dir.join(name);
        std::fs::create_dir_all(&home)?;
        let config = home.join("dialcrm.toml");
        std::fs::write(
            &config,
            format!(
                "node_id = \"{name}\"\nnode_timeout_secs = {NODE_TIMEOUT}\n\
                 recordings_dir = \"{}\"\n\n[gateway]\nsip_udp = \"127.0.0.1:0\"\n\
                 rtp_port_min = 0\nrtp_port_max = 0\n\n[[trunks]]\nname = \"customers\"\n\
                 host = \"127.0.0.1\"\nport = {}\nmax_cps = 100\n",
                home.join("recordings").display(),
                customers.sip_addr().port()
            ),
        )?;
        let log = home.join(format!("stderr-{}.log", std::process::id()));
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--no-demo",
                "--http-addr",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&config)
            .env("DIALCRM_DATABASE_URL", &db.url)
            .env("DIALCRM_NATS_URL", &nats.url)
            .env("RUST_LOG", "info")
            .current_dir(&home)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting dialcrm serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("dialcrm is listening on ") {
                    return Some(url.to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| {
            format!(
                "{name} did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = base.trim_start_matches("http://").parse()?;
        Ok(Node {
            base,
            addr,
            child,
            log,
        })
    }

    /// What the node has logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A TCP load balancer: each new connection goes to the first backend
/// that accepts it; when a backend dies, the connections to it close.
struct Balancer {
    addr: SocketAddr,
    backends: std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    async fn start(backends: Vec<SocketAddr>) -> Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let backends = std::sync::Arc::new(std::sync::Mutex::new(backends));
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut front, _)) = listener.accept().await {
                let backends = shared.lock().map(|b| b.clone()).unwrap_or_default();
                tokio::spawn(async move {
                    for backend in backends {
                        if let Ok(mut back) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut front, &mut back).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Balancer {
            addr,
            backends,
            task,
        })
    }

    /// Changes the backends new connections go to.
    fn set(&self, backends: Vec<SocketAddr>) {
        if let Ok(mut b) = self.backends.lock() {
            *b = backends;
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn login(base: &str, username: &str, password: &str) -> Result<String> {
    let r = client()
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "login of {username}: {}", r.status());
    Ok(session_of(&r))
}

pub(crate) async fn stream(node: &Node, cookie: &str) -> Result<Ws> {
    let mut req = format!("ws://{}/api/stream", node.addr).into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    Ok(tokio_tungstenite::connect_async(req).await?.0)
}
