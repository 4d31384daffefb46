//! The protections several nodes share: the login throttle counts every
//! node's failures, and sessions ended on one node close their sockets on
//! the others.
//!
//! Each node is the real binary (`dialcrm serve --nats-url …`) on one
//! PostgreSQL; NATS is a `nats-server -js` of the test's own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crm::model::Role;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{client, next_json, Ws};
use crate::nodes::{connect, serve, session_cookie, Node};

const PASSWORD: &str = "Pw-guard-nodes-1234";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_over_three_nodes_throttle_every_node() {
    let Some(nats) = TestNats::start().await else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = scratch("throttle");
    let outcome = tokio::time::timeout(Duration::from_secs(120), throttle(&db, &nats, &dir)).await;
    db.finish().await;
    outcome.expect("the throttle test took longer than two minutes");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn throttle(db: &TestDb, nats: &TestNats, dir: &Path) {
    let account = users(db, "throttle", &[("sue", Role::Supervisor)]).await;
    let nodes = [
        serve(db, nats, dir, "node-a").await,
        serve(db, nats, dir, "node-b").await,
        serve(db, nats, dir, "node-c").await,
    ];
    // Two failures on A, two on B, one on C: no node saw five.
    for node in [0, 1, 0, 1, 2] {
        let r = login(&nodes[node], "sue", "Wrong-guess-1").await;
        assert_eq!(r.status(), 401, "a wrong password on node {node}");
    }
    // The next attempt waits, whichever node it reaches, even with the
    // right password.
    let (a, b, c) = tokio::join!(
        login(&nodes[0], "sue", PASSWORD),
        login(&nodes[1], "sue", PASSWORD),
        login(&nodes[2], "sue", PASSWORD),
    );
    for (name, r) in [("A", a), ("B", b), ("C", c)] {
        assert_eq!(r.status(), 429, "node {name} throttles");
        let retry: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert_eq!(retry, 1, "the first wait after five failures, on {name}");
    }
    // One alert for the fifth failure, raised by the node that saw it.
    let alerts = db
        .store
        .audit_entries(account, 50)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "alert.login_failures")
        .count();
    assert_eq!(alerts, 1, "one crossing, one alert, not one per node");
    // The counts name nobody.
    let keys: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM login_failures")
        .fetch_all(db.store.postgres_pool().expect("PostgreSQL"))
        .await
        .expect("read");
    assert_eq!(keys.len(), 2, "the username's count and the address's");
    assert!(keys
        .iter()
        .all(|k| !k.contains("sue") && !k.contains("127.0.0.1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ended_on_one_node_close_their_sockets_on_another() {
    let Some(nats) = TestNats::start().await else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = scratch("revoke");
    let outcome =
        tokio::time::timeout(Duration::from_secs(120), revocations(&db, &nats, &dir)).await;
    db.finish().await;
    outcome.expect("the revocation test took longer than two minutes");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn revocations(db: &TestDb, nats: &TestNats, dir: &Path) {
    users(
        db,
        "revoke",
        &[
            ("sue", Role::Supervisor),
            ("sam", Role::Supervisor),
            ("ada", Role::Admin),
            ("al", Role::Agent),
        ],
    )
    .await;
    let a = serve(db, nats, dir, "node-a").await;
    let b = serve(db, nats, dir, "node-b").await;

    // Sue watches the wallboard on B and works on A; Sam watches on B too.
    let sue_on_b = session_cookie(&b, "sue", PASSWORD).await;
    let sue_on_a = session_cookie(&a, "sue", PASSWORD).await;
    let mut sue_stream = connect(&b, &sue_on_b, "").await;
    assert_eq!(next_json(&mut sue_stream).await["type"], "snapshot");
    let sam_on_b = session_cookie(&b, "sam", PASSWORD).await;
    let mut sam_stream = connect(&b, &sam_on_b, "").await;
    assert_eq!(next_json(&mut sam_stream).await["type"], "snapshot");
    // Al's desk is on B.
    let al_on_b = session_cookie(&b, "al", PASSWORD).await;
    let mut desk = open_desk(&b, &al_on_b).await;
    assert_eq!(next_json(&mut desk).await["type"], "welcome");
    let al_id = agent_paused(&mut sam_stream, "al").await;

    // Logging out everywhere on A closes Sue's stream on B at once, and B
    // refuses the cookie it was opened with.
    let asked = Instant::now();
    let r = post(&a, &sue_on_a, "/api/logout-everywhere", None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(closed_with(&mut sue_stream).await, 4001);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the stream on B closed {took:?} after the logout on A"
    );
    assert_eq!(me(&b, &sue_on_b).await, 401, "B refuses the old cookie");

    // A deactivation on A ends Al's desk on B: it closes, and he shows as
    // logged out.
    let ada_on_a = session_cookie(&a, "ada", PASSWORD).await;
    let asked = Instant::now();
    let r = post(
        &a,
        &ada_on_a,
        &format!("/api/users/{al_id}/active"),
        Some(serde_json::json!({ "active": false })),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(closed_with(&mut desk).await, 4001);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the desk on B closed {took:?} after the deactivation on A"
    );
    agent_logged_out(&mut sam_stream, "al").await;

    // A password change on A closes Sam's own stream on B.
    let sam_on_a = session_cookie(&a, "sam", PASSWORD).await;
    let r = post(
        &a,
        &sam_on_a,
        "/api/me/password",
        Some(serde_json::json!({
            "current_password": PASSWORD,
            "new_password": "Pw-guard-changed-5678",
        })),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(closed_with(&mut sam_stream).await, 4001);
    assert_eq!(me(&b, &sam_on_b).await, 401);
}

/// A fresh scratch folder for the nodes' configuration and logs.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcrm-guard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Creates an account with the users, all with [`PASSWORD`].
async fn users(db: &TestDb, account: &str, users: &[(&str, Role)]) -> crm::model::AccountId {
    let now = chrono::Utc::now();
    let account = db
        .store
        .create_account(account, 10, now)
        .await
        .expect("account");
    let hash = crm::password::hash(PASSWORD).expect("hash");
    for (name, role) in users {
        db.store
            .create_user(account.id, name, &hash, *role, now)
            .await
            .expect("user");
    }
    account.id
}

async fn login(node: &Node, username: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/api/login", node.base))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login sent")
}

async fn post(
    node: &Node,
    cookie: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}{path}", node.base))
        .header("cookie", cookie);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("sent")
}

async fn me(node: &Node, cookie: &str) -> u16 {
    client()
        .get(format!("{}/api/me", node.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

async fn open_desk(node: &Node, cookie: &str) -> Ws {
    let mut req = format!("ws://{}/api/agent/ws", node.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("the agent's websocket opens")
        .0
}

/// Reads past text frames to the server's close, within 5 s; returns its
/// code, and checks that the connection then ends.
async fn closed_with(ws: &mut Ws) -> u16 {
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => panic!("a close without a code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the socket failed before a close: {e}"),
                None => panic!("the socket ended without a close"),
            }
        }
    })
    .await
    .expect("the server closes the socket within 5 s");
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the connection ends after the close");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_)))),
        "nothing after the close: {end:?}"
    );
    code
}

/// Waits on a supervisor's stream for the agent to show as paused (just
/// logged in); returns their user id.
async fn agent_paused(stream: &mut Ws, username: &str) -> i64 {
    loop {
        let frame = next_json(stream).await;
        let event = &frame["event"];
        if event["kind"] == "agent_state" && event["username"] == username {
            assert_eq!(event["state"], "paused", "{frame}");
            return event["user_id"].as_i64().expect("a user id");
        }
    }
}

/// Waits on a supervisor's stream for the agent to show as logged out.
async fn agent_logged_out(stream: &mut Ws, username: &str) {
    loop {
        let frame = next_json(stream).await;
        assert_ne!(frame["event"]["kind"], "sessions_revoked", "never sent");
        let event = &frame["event"];
        if event["kind"] == "agent_state"
            && event["username"] == username
            && event["state"] == "logged_out"
        {
            return;
        }
    }
}
