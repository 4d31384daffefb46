//! Aggregate-only accounts: per-contact audit entries become daily counts,
//! everything else stays detailed, on both backends.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::store::audit_search::AuditFilter;
use crm::testing::{TestBackend, TestDb};

crm::on_both_backends!(
    the_mode_is_off_until_an_admin_turns_it_on,
    off_writes_who_did_what_to_which_contact,
    on_keeps_only_daily_counts_of_per_contact_actions,
    the_mode_of_one_account_leaves_another_alone,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

struct Fixture {
    account: AccountId,
    agent: Actor,
    contact: ContactId,
}

async fn fixture(db: &TestDb, name: &str) -> Fixture {
    let s = &db.store;
    let account = s.create_account(name, 5, t0()).await.unwrap().id;
    let user = s
        .create_user(account, &format!("{name}-al"), "x", Role::Agent, t0())
        .await
        .unwrap()
        .id;
    let contact = s
        .create_contact(
            account,
            &ContactFields {
                first_name: "Quill".into(),
                phone_e164: "+447700900777".into(),
                phone_raw: "07700 900777".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            t0(),
        )
        .await
        .unwrap()
        .id;
    let agent = Actor {
        account_id: Some(account),
        user_id: Some(user),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("test".into()),
    };
    Fixture {
        account,
        agent,
        contact,
    }
}

async fn entries(db: &TestDb, account: AccountId) -> Vec<AuditEntry> {
    db.store
        .search_audit(account, &AuditFilter::default())
        .await
        .unwrap()
}

async fn the_mode_is_off_until_an_admin_turns_it_on(db: TestDb) -> TestDb {
    let f = fixture(&db, "acme").await;
    assert!(!db.store.aggregate_only(f.account).await.unwrap());
    db.store.set_aggregate_only(f.account, true).await.unwrap();
    assert!(db.store.aggregate_only(f.account).await.unwrap());
    db.store.set_aggregate_only(f.account, false).await.unwrap();
    assert!(!db.store.aggregate_only(f.account).await.unwrap());
    assert!(db
        .store
        .set_aggregate_only(AccountId(987_654), true)
        .await
        .is_err());
    db
}

async fn off_writes_who_did_what_to_which_contact(db: TestDb) -> TestDb {
    let f = fixture(&db, "acme").await;
    let target = format!("contact:{}", f.contact);
    db.store
        .audit(&f.agent, "contact.view", Some(&target), t0())
        .await
        .unwrap();
    let all = entries(&db, f.account).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].action, "contact.view");
    assert_eq!(all[0].target.as_deref(), Some(target.as_str()));
    assert_eq!(all[0].user_id, f.agent.user_id);
    assert!(db
        .store
        .action_counts(f.account, None)
        .await
        .unwrap()
        .is_empty());
    db
}

async fn on_keeps_only_daily_counts_of_per_contact_actions(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(&db, "acme").await;
    s.set_aggregate_only(f.account, true).await.unwrap();
    let contact = format!("contact:{}", f.contact);
    let day2 = t0() + Duration::days(1);
    let before = row_counts(&db).await;
    for (action, target, at) in [
        ("contact.view", contact.as_str(), t0()),
        ("contact.view", contact.as_str(), t0()),
        ("contact.view", contact.as_str(), day2),
        ("contact.export", contact.as_str(), day2),
        ("call.disposition", "attempt:12", day2),
        // Not about a contact: kept in full.
        ("campaign.start", "campaign:3", day2),
    ] {
        s.audit(&f.agent, action, Some(target), at).await.unwrap();
    }
    // Every table holds what it held, but for the counts and the one
    // entry about a campaign.
    let mut after = row_counts(&db).await;
    assert_eq!(after.remove("audit_counts"), Some(4));
    *after.entry("audit_log".into()).or_default() -= 1;
    let mut before = before;
    before.remove("audit_counts");
    assert_eq!(after, before);
    let all = entries(&db, f.account).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].action, "campaign.start");
    assert!(
        all.iter().all(|e| !e
            .target
            .as_deref()
            .is_some_and(|t| t.starts_with("contact:") || t.starts_with("attempt:"))),
        "no entry names the contact"
    );
    let counts = s.action_counts(f.account, None).await.unwrap();
    let got: Vec<(String, &str, i64)> = counts
        .iter()
        .map(|c| (c.day.to_string(), c.action.as_str(), c.count))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-01-15".to_owned(), "call.disposition", 1),
            ("2026-01-15".to_owned(), "contact.export", 1),
            ("2026-01-15".to_owned(), "contact.view", 1),
            ("2026-01-14".to_owned(), "contact.view", 2),
        ]
    );
    let since = s
        .action_counts(f.account, Some(day2.date_naive()))
        .await
        .unwrap();
    assert_eq!(since.len(), 3);

    // Off again: detailed entries come back from then on.
    s.set_aggregate_only(f.account, false).await.unwrap();
    s.audit(&f.agent, "contact.view", Some(&contact), day2)
        .await
        .unwrap();
    assert!(entries(&db, f.account)
        .await
        .iter()
        .any(|e| e.target.as_deref() == Some(contact.as_str())));
    db
}

async fn the_mode_of_one_account_leaves_another_alone(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = fixture(&db, "acme").await;
    let b = fixture(&db, "brix").await;
    s.set_aggregate_only(a.account, true).await.unwrap();
    s.audit(
        &a.agent,
        "contact.view",
        Some(&format!("contact:{}", a.contact)),
        t0(),
    )
    .await
    .unwrap();
    s.audit(
        &b.agent,
        "contact.view",
        Some(&format!("contact:{}", b.contact)),
        t0(),
    )
    .await
    .unwrap();
    assert!(entries(&db, a.account).await.is_empty());
    assert_eq!(entries(&db, b.account).await.len(), 1);
    assert_eq!(s.action_counts(a.account, None).await.unwrap().len(), 1);
    assert!(s.action_counts(b.account, None).await.unwrap().is_empty());
    db
}

/// Returns the number of rows in every table of the database.
async fn row_counts(db: &TestDb) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    match db.backend() {
        TestBackend::Sqlite => {
            let pool = db.store.sqlite_pool().expect("a SQLite store");
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for name in names {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{name}\""))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                out.insert(name, n);
            }
        }
        TestBackend::Postgres => {
            let pool = db.store.postgres_pool().expect("a PostgreSQL store");
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::TEXT FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for name in names {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{name}\""))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                out.insert(name, n);
            }
        }
    }
    assert!(out.contains_key("audit_log"), "the scan found the tables");
    out
}
