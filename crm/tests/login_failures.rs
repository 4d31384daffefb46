//! The login throttle's failure counts in the database, shared by every
//! node, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::store::LoginFailures;
use crm::testing::TestDb;
use crm::Store;

crm::on_both_backends!(
    failures_on_several_nodes_at_once_each_count_once,
    a_failure_after_the_window_starts_again_from_one,
    clearing_a_username_keeps_the_address_count,
    keys_name_nobody_and_every_node_hashes_alike,
    counts_outlive_the_process_that_wrote_them,
    a_clock_behind_never_moves_a_failure_back,
    the_purge_deletes_only_what_the_window_forgot,
);

const WINDOW: i64 = 15;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn forget_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::minutes(WINDOW)
}

/// Another node: its own connections to the same database.
async fn node(db: &TestDb) -> Store {
    Store::connect(&db.url)
        .await
        .expect("a second node connects")
}

async fn failures_on_several_nodes_at_once_each_count_once(db: TestDb) -> TestDb {
    let nodes = [db.store.clone(), node(&db).await, node(&db).await];
    let secret = nodes[0].login_secret(t0()).await.expect("secret");
    let user = secret.username("sue");
    let mut tasks = Vec::new();
    for i in 0..9 {
        let store = nodes[i % 3].clone();
        let key = user.clone();
        let ip = secret.address(&format!("192.0.2.{i}"));
        tasks.push(tokio::spawn(async move {
            store
                .record_login_failure(&[&key, &ip], t0(), forget_before(t0()))
                .await
                .expect("counted")
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        let after = task.await.expect("the task ran");
        assert_eq!(after.len(), 2, "one count per key, in the keys' order");
        assert_eq!(after[1].count, 1, "each address failed once");
        counts.push(after[0].count);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=9).collect::<Vec<u32>>(),
        "each count went to exactly one node"
    );
    let now = nodes[2].login_failures(&[&user]).await.expect("read");
    assert_eq!(
        now,
        [LoginFailures {
            count: 9,
            last: t0()
        }]
    );
    for store in &nodes[1..] {
        store.close().await;
    }
    db
}

async fn a_failure_after_the_window_starts_again_from_one(db: TestDb) -> TestDb {
    let s = &db.store;
    let key = s.login_secret(t0()).await.expect("secret").username("al");
    let fail = |at: DateTime<Utc>| {
        let key = key.clone();
        async move {
            s.record_login_failure(&[&key], at, forget_before(at))
                .await
                .expect("counted")[0]
        }
    };
    assert_eq!(fail(t0()).await.count, 1);
    assert_eq!(fail(t0() + Duration::minutes(14)).await.count, 2);
    // Each failure is measured from the one before, not from the first.
    assert_eq!(fail(t0() + Duration::minutes(28)).await.count, 3);
    let late = t0() + Duration::minutes(28 + WINDOW) + Duration::seconds(1);
    let after = fail(late).await;
    assert_eq!(
        after,
        LoginFailures {
            count: 1,
            last: late
        }
    );
    db
}

async fn clearing_a_username_keeps_the_address_count(db: TestDb) -> TestDb {
    let s = &db.store;
    let secret = s.login_secret(t0()).await.expect("secret");
    let (user, ip) = (secret.username("ann"), secret.address("198.51.100.9"));
    for _ in 0..3 {
        s.record_login_failure(&[&user, &ip], t0(), forget_before(t0()))
            .await
            .expect("counted");
    }
    s.clear_login_failures(&user).await.expect("cleared");
    assert!(s.login_failures(&[&user]).await.expect("read").is_empty());
    let left = s.login_failures(&[&user, &ip]).await.expect("read");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].count, 3, "the address keeps its failures");
    db
}

async fn keys_name_nobody_and_every_node_hashes_alike(db: TestDb) -> TestDb {
    let other = node(&db).await;
    let secret = db.store.login_secret(t0()).await.expect("secret");
    let again = other
        .login_secret(t0() + Duration::hours(1))
        .await
        .expect("secret");
    assert_eq!(
        secret.username("Mirela"),
        again.username("mirela"),
        "one secret for every node; case does not matter"
    );
    assert_eq!(secret.address("203.0.113.5"), again.address("203.0.113.5"));
    assert_ne!(secret.username("mirela"), secret.username("mireia"));
    assert_ne!(
        secret.username("203.0.113.5"),
        secret.address("203.0.113.5"),
        "a username and an address never share a count"
    );
    assert!(!format!("{secret:?}").contains(secret.username("x").as_str()));
    other
        .record_login_failure(
            &[&secret.username("mirela"), &secret.address("203.0.113.5")],
            t0(),
            forget_before(t0()),
        )
        .await
        .expect("counted");
    let stored: Vec<String> = match db.store.sqlite_pool() {
        Some(pool) => sqlx::query_scalar("SELECT key_hash FROM login_failures")
            .fetch_all(pool)
            .await
            .expect("read"),
        None => sqlx::query_scalar("SELECT key_hash FROM login_failures")
            .fetch_all(db.store.postgres_pool().expect("PostgreSQL"))
            .await
            .expect("read"),
    };
    assert_eq!(stored.len(), 2);
    for key in &stored {
        assert_eq!(key.len(), 64, "an HMAC-SHA-256 in hex: {key}");
        assert!(!key.contains("mirela") && !key.contains("203.0.113"));
    }
    other.close().await;
    db
}

async fn counts_outlive_the_process_that_wrote_them(db: TestDb) -> TestDb {
    let first = node(&db).await;
    let secret = first.login_secret(t0()).await.expect("secret");
    for _ in 0..5 {
        first
            .record_login_failure(&[&secret.username("bo")], t0(), forget_before(t0()))
            .await
            .expect("counted");
    }
    first.close().await;
    // A process started afterwards: a new connection, the secret read back.
    let restarted = node(&db).await;
    let secret = restarted.login_secret(t0()).await.expect("secret");
    let seen = restarted
        .login_failures(&[&secret.username("bo")])
        .await
        .expect("read");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].count, 5);
    restarted.close().await;
    db
}

async fn a_clock_behind_never_moves_a_failure_back(db: TestDb) -> TestDb {
    let s = &db.store;
    let key = s.login_secret(t0()).await.expect("secret").username("cy");
    let ahead = t0() + Duration::seconds(30);
    s.record_login_failure(&[&key], ahead, forget_before(ahead))
        .await
        .expect("counted");
    let after = s
        .record_login_failure(&[&key], t0(), forget_before(t0()))
        .await
        .expect("counted");
    assert_eq!(
        after,
        [LoginFailures {
            count: 2,
            last: ahead
        }]
    );
    db
}

async fn the_purge_deletes_only_what_the_window_forgot(db: TestDb) -> TestDb {
    let s = &db.store;
    let secret = s.login_secret(t0()).await.expect("secret");
    for i in 0..30 {
        let at = t0() + Duration::minutes(i);
        s.record_login_failure(
            &[
                &secret.username(&format!("u{i}")),
                &secret.address(&format!("10.0.0.{i}")),
            ],
            at,
            forget_before(at),
        )
        .await
        .expect("counted");
    }
    assert_eq!(s.login_failure_rows().await.expect("rows"), 60);
    let now = t0() + Duration::minutes(30);
    let purged = s
        .purge_login_failures(forget_before(now))
        .await
        .expect("purged");
    assert_eq!(purged, 30, "minutes 0 to 14 are past the window");
    assert_eq!(s.login_failure_rows().await.expect("rows"), 30);
    let kept = s
        .login_failures(&[&secret.username("u15"), &secret.username("u14")])
        .await
        .expect("read");
    assert_eq!(kept.len(), 1, "minute 15 is still within it");
    assert_eq!(kept[0].last, t0() + Duration::minutes(15));
    db
}
