//! Two nodes on one PostgreSQL and one NATS: the supervisors' stream of
//! either shows the events of both, numbered alike, and a supervisor moving
//! from one node to the other resumes without a gap or a duplicate.
//!
//! Each node is the real binary (`dialcrm serve --nats-url …`); NATS is a
//! `nats-server -js` of the test's own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crm::model::{AccountId, Role};
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{client, next_json, session_of, Ws};

const BIN: &str = env!("CARGO_BIN_EXE_dialcrm");

/// One `dialcrm serve` process.
pub(crate) struct Node {
    pub(crate) base: String,
    pub(crate) addr: String,
    _child: Child,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_stream_and_a_supervisor_resumes_on_the_other() {
    let Some(mut nats) = TestNats::start().await else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dialcrm-nodes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let outcome =
        tokio::time::timeout(Duration::from_secs(120), two_nodes(&db, &mut nats, &dir)).await;
    db.finish().await;
    outcome.expect("the two-node test took longer than two minutes");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn two_nodes(db: &TestDb, nats: &mut TestNats, dir: &Path) {
    let now = chrono::Utc::now();
    let account = db
        .store
        .create_account("two-nodes", 10, now)
        .await
        .expect("account");
    let password = "Pw-two-nodes-1234";
    let hash = crm::password::hash(password).expect("hash");
    for (name, role) in [
        ("sue", Role::Supervisor),
        ("al", Role::Agent),
        ("bo", Role::Agent),
        ("cy", Role::Agent),
        ("di", Role::Agent),
        ("ed", Role::Agent),
        ("fay", Role::Agent),
    ] {
        db.store
            .create_user(account.id, name, &hash, role, now)
            .await
            .expect("user");
    }
    let a = serve(db, nats, dir, "node-a").await;
    let b = serve(db, nats, dir, "node-b").await;
    let sue_on_a = session_cookie(&a, "sue", password).await;
    let sue_on_b = session_cookie(&b, "sue", password).await;

    // A supervisor on B sees an agent log in on A, within a second.
    let mut on_b = connect(&b, &sue_on_b, "").await;
    let first = next_json(&mut on_b).await;
    assert_eq!(first["type"], "snapshot", "{first}");
    let mut on_a = connect(&a, &sue_on_a, "").await;
    assert_eq!(next_json(&mut on_a).await["type"], "snapshot");
    let asked = Instant::now();
    session_cookie(&a, "al", password).await;
    let seen = next_json(&mut on_b).await;
    let took = asked.elapsed();
    assert_eq!(seen["type"], "event", "{seen}");
    assert_eq!(seen["event"]["kind"], "agent_state");
    assert_eq!(seen["event"]["username"], "al");
    assert_eq!(seen["event"]["state"], "paused");
    assert!(
        took < Duration::from_secs(1),
        "the event took {took:?} from node A to a supervisor on node B"
    );
    assert_eq!(
        next_json(&mut on_a).await,
        seen,
        "the same event under the same number on A"
    );
    // One on B, seen on A and B alike.
    session_cookie(&b, "bo", password).await;
    let bo = next_json(&mut on_a).await;
    assert_eq!(bo["event"]["username"], "bo");
    assert_eq!(next_json(&mut on_b).await, bo);
    let last_seen = bo["seq"].as_u64().expect("a number");
    assert!(last_seen > seen["seq"].as_u64().expect("a number"));

    // The supervisor's connection to A drops; meanwhile agents come and
    // go on both nodes.
    on_a.close(None).await.expect("close");
    on_b.close(None).await.expect("close");
    session_cookie(&a, "cy", password).await;
    session_cookie(&b, "di", password).await;
    session_cookie(&a, "ed", password).await;
    let missed = ["cy", "di", "ed"];

    // It reconnects to B from the last number A sent: exactly what it missed.
    let mut resumed = connect(&b, &sue_on_b, &format!("?since={last_seen}")).await;
    let mut got = Vec::new();
    for _ in missed {
        got.push(next_json(&mut resumed).await);
    }
    let mut previous = last_seen;
    for (frame, name) in got.iter().zip(missed) {
        assert_eq!(frame["type"], "event", "no snapshot: {frame}");
        assert_eq!(frame["event"]["username"], name, "in order: {frame}");
        let seq = frame["seq"].as_u64().expect("a number");
        assert!(seq > previous, "numbers rise: {frame}");
        previous = seq;
    }
    assert_nothing_more(&mut resumed).await;
    // A sends the same for the same number.
    let mut from_a = connect(&a, &sue_on_a, &format!("?since={last_seen}")).await;
    for expected in &got {
        assert_eq!(&next_json(&mut from_a).await, expected);
    }
    assert_nothing_more(&mut from_a).await;

    // A new client's snapshot is the same from either node.
    let snap_a = next_json(&mut connect(&a, &sue_on_a, "").await).await;
    let snap_b = next_json(&mut connect(&b, &sue_on_b, "").await).await;
    assert_eq!(snap_a["type"], "snapshot");
    assert_eq!(snap_a["seq"], previous);
    assert_eq!(snap_a, snap_b, "the same snapshot from both nodes");
    let agents = snap_a["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 5, "every agent of both nodes: {snap_a}");
    // Each node's trunk, told as the node started, is on both wallboards.
    let trunks: Vec<&str> = snap_a["trunks"]
        .as_array()
        .expect("trunks")
        .iter()
        .filter_map(|t| t["node"].as_str())
        .collect();
    assert_eq!(trunks, ["node-a", "node-b"], "{snap_a}");

    // Both nodes' agent states were kept once each, by their own node.
    let states = agent_states(db, account.id).await;
    assert_eq!(
        states, 5,
        "one row per login, none doubled by the shared bus"
    );

    // NATS goes away: A still logs agents in and says NATS is down in
    // /metrics, holding the event; when NATS is back, B's supervisor gets it.
    let mut watching = connect(&b, &sue_on_b, &format!("?since={previous}")).await;
    assert_metric(&a, "dialcrm_nats_connected 1").await;
    nats.kill().await;
    assert_metric(&a, "dialcrm_nats_connected 0").await;
    let told = next_json(&mut watching).await;
    assert_eq!(told, serde_json::json!({"type": "bus", "shared": false}));
    assert_eq!(snap_a["shared"], true, "snapshots say it too");
    session_cookie(&a, "fay", password).await;
    assert_metric(&a, "dialcrm_nats_events_held 1").await;
    nats.restart().await;
    let (mut back, mut fay) = (None, None);
    while back.is_none() || fay.is_none() {
        let frame = next_json(&mut watching).await;
        match frame["type"].as_str() {
            Some("bus") => back = Some(frame),
            _ => fay = Some(frame),
        }
    }
    assert_eq!(
        back,
        Some(serde_json::json!({"type": "bus", "shared": true}))
    );
    let fay = fay.expect("the held event");
    assert_eq!(fay["event"]["username"], "fay", "{fay}");
    assert!(fay["seq"].as_u64().expect("a number") > previous);
    assert_metric(&a, "dialcrm_nats_connected 1").await;
    assert_metric(&a, "dialcrm_nats_events_held 0").await;
    assert_nothing_more(&mut watching).await;
}

/// Waits up to 15 s for a line of the node's `/metrics`.
async fn assert_metric(node: &Node, line: &str) {
    let mut text = String::new();
    for _ in 0..150 {
        text = client()
            .get(format!("{}/metrics", node.base))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text");
        // `name value` matches the series with any labels.
        let (name, value) = line.split_once(' ').expect("name and value");
        let matches = |l: &str| {
            l.strip_prefix(name).is_some_and(|rest| {
                (rest.starts_with(' ') || rest.starts_with('{'))
                    && rest.ends_with(&format!(" {value}"))
            })
        };
        if text.lines().any(matches) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {line:?} in /metrics:\n{text}");
}

/// Starts `dialcrm serve` as node `name` and waits for its address.
pub(crate) async fn serve(db: &TestDb, nats: &TestNats, dir: &Path, name: &str) -> Node {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).expect("node folder");
    let config = home.join("dialcrm.toml");
    std::fs::write(&config, format!("node_id = \"{name}\"\n")).expect("config");
    let log: PathBuf = home.join("stderr.log");
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
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("dialcrm serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
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
    .unwrap_or_else(|| {
        panic!(
            "{name} did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    // Keep reading stdout so the node never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = base.trim_start_matches("http://").to_owned();
    Node {
        base,
        addr,
        _child: child,
    }
}

/// Logs in on `node` and returns the session cookie.
pub(crate) async fn session_cookie(node: &Node, username: &str, password: &str) -> String {
    let r = client()
        .post(format!("{}/api/login", node.base))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login sent");
    assert_eq!(r.status(), 200, "login of {username}");
    session_of(&r)
}

pub(crate) async fn connect(node: &Node, cookie: &str, query: &str) -> Ws {
    let url = format!("ws://{}/api/stream{query}", node.addr);
    let mut req = url.into_client_request().expect("valid request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header value"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("the stream connects")
        .0
}

/// Fails if another text frame arrives within half a second.
async fn assert_nothing_more(ws: &mut Ws) {
    let deadline = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            msg = ws.next() => {
                if let Some(Ok(Message::Text(text))) = msg {
                    panic!("a frame after the missed events: {text}");
                }
            }
        }
    }
}

/// How many agent states the database holds for the account.
async fn agent_states(db: &TestDb, account: AccountId) -> i64 {
    let pool = db.store.postgres_pool().expect("PostgreSQL");
    sqlx::query_scalar("SELECT count(*) FROM agent_states WHERE account_id = $1")
        .bind(account)
        .fetch_one(pool)
        .await
        .expect("counted")
}

#[tokio::test]
async fn sqlite_with_a_nats_url_is_refused_clearly() {
    let dir = std::env::temp_dir().join(format!("dialcrm-nodes-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let out = Command::new(BIN)
        .args(["serve", "--no-demo", "--http-addr", "127.0.0.1:0"])
        .args(["--database-url", "sqlite://dialcrm.db"])
        .args(["--nats-url", "nats://127.0.0.1:4222"])
        .env_remove("DIALCRM_DATABASE_URL")
        .env_remove("DIALCRM_NATS_URL")
        .current_dir(&dir)
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("SQLite is one node's file") && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
    assert!(
        !dir.join("dialcrm.db").exists(),
        "refused before the database is touched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn doctor_checks_the_nats_server() {
    let Some(nats) = TestNats::start().await else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dialcrm-nodes-doctor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let doctor = |nats_url: String| {
        let config = dir.join("dialcrm.toml");
        std::fs::write(
            &config,
            format!(
                "database_url = \"{}\"\nnats_url = \"{nats_url}\"\nhttp_addr = \"127.0.0.1:0\"\n",
                db.url
            ),
        )
        .expect("config");
        let mut c = Command::new(BIN);
        c.arg("doctor")
            .arg("--config")
            .arg(&config)
            .env_remove("DIALCRM_DATABASE_URL")
            .current_dir(&dir);
        async move {
            let out = c.output().await.expect("doctor runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let good = doctor(nats.url.clone()).await;
    assert!(
        good.lines()
            .any(|l| l.starts_with("ok    NATS: nats://127.0.0.1:") && l.contains("JetStream on")),
        "{good}"
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let bad = doctor(format!("nats://127.0.0.1:{dead}")).await;
    assert!(bad.lines().any(|l| l.starts_with("FAIL  NATS:")), "{bad}");
    db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_node_whose_nats_does_not_answer_stops_at_start_saying_so() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .args(["serve", "--no-demo", "--http-addr", "127.0.0.1:0"])
            .args(["--nats-url", &format!("nats://app:s3cret@127.0.0.1:{dead}")])
            .env("DIALCRM_DATABASE_URL", &db.url)
            .current_dir(std::env::temp_dir())
            .output(),
    )
    .await
    .expect("gives up within 30 s")
    .expect("runs");
    db.finish().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "putting the event bus on NATS at nats://***@127.0.0.1:{dead}"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "the password never shows: {stderr}"
    );
}
