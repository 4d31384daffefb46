//! The protections several nodes share: the login throttle counts every
//! node's failures.
//!
//! Each node is the real binary (`dialcrm serve --nats-url …`) on one
//! PostgreSQL; NATS is a `nats-server -js` of the test's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crm::model::Role;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;

use crate::helpers::client;
use crate::nodes::{serve, Node};

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
