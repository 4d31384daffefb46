//! The Store's behaviour, run against both backends by one suite.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::events::AgentState;
use crm::model::*;
use crm::store::{NewSession, PurgeReport};
use crm::testing::TestDb;
use crm::{password, Store, StoreError};
use vocab::CallRef;

crm::on_both_backends!(
    migrations_are_idempotent,
    accounts_have_unique_names,
    users_are_unique_and_scoped,
    sessions_expire_and_end,
    seat_limit_counts_distinct_logged_in_agents,
    concurrent_agent_logins_never_exceed_seats,
    contacts_are_scoped_to_their_account,
    lists_hold_contacts_of_their_account_only,
    campaigns_take_lists_and_status,
    attempts_and_interactions_are_recorded,
    suppression_keeps_a_hash_after_the_number_is_forgotten,
    audit_entries_are_scoped,
    failed_migration_leaves_the_database_as_it_was,
    retention_purges_recordings_interactions_and_agent_states,
    the_last_five_passwords_are_not_reused,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
        .single()
        .expect("valid time")
}

async fn account(store: &Store, name: &str, seats: i64) -> Account {
    store
        .create_account(name, seats, t0())
        .await
        .expect("account created")
}

async fn user(store: &Store, account: &Account, name: &str, role: Role) -> User {
    // A cheap fixed hash keeps the suite fast; hashing has its own tests.
    store
        .create_user(account.id, name, "$argon2id$test", role, t0())
        .await
        .expect("user created")
}

fn contact_fields(phone: &str) -> ContactFields {
    ContactFields {
        first_name: "Mirela".into(),
        last_name: "Quistgaard".into(),
        phone_e164: phone.into(),
        phone_raw: phone.into(),
        email: Some("mirela@example.net".into()),
        postal_address: Some("9 Juniper Row".into()),
        profession: Some("Luthier".into()),
        time_zone: Some("Europe/London".into()),
        custom_fields: serde_json::json!({ "loyalty": "gold", "visits": 3 }),
    }
}

fn new_session<'a>(token: &'a str, u: &User, now: DateTime<Utc>, ttl: Duration) -> NewSession<'a> {
    NewSession {
        token_hash: token,
        user_id: u.id,
        account_id: u.account_id,
        role: u.role,
        now,
        expires_at: now + ttl,
    }
}

async fn migrations_are_idempotent(db: TestDb) -> TestDb {
    db.store
        .migrate()
        .await
        .expect("a second run applies nothing and succeeds");
    db.store.ping().await.expect("the database answers");
    assert!(db.store.is_empty().await.expect("count accounts"));
    db
}

async fn accounts_have_unique_names(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "acme", 5).await;
    assert_eq!(a.seats, 5);
    assert!(matches!(
        s.create_account("acme", 1, t0()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_account("neg", -1, t0()).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.account_by_name("acme").await.expect("found").id, a.id);
    assert!(matches!(
        s.account_by_name("nobody").await,
        Err(StoreError::NotFound)
    ));
    assert!(!s.is_empty().await.expect("count"));
    db
}

async fn users_are_unique_and_scoped(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 5).await;
    let b = account(s, "b", 5).await;
    let hash = password::hash("Secret123").expect("hash");
    let u = s
        .create_user(a.id, "alice", &hash, Role::Supervisor, t0())
        .await
        .expect("created");
    assert_eq!(u.role, Role::Supervisor);
    assert!(u.active);
    assert!(matches!(
        s.create_user(b.id, "alice", &hash, Role::Agent, t0()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_user(a.id, "has space", &hash, Role::Agent, t0())
            .await,
        Err(StoreError::Invalid(_))
    ));
    let (found, stored_hash) = s
        .credentials("alice")
        .await
        .expect("query")
        .expect("exists");
    assert_eq!(found, u);
    assert!(password::verify("Secret123", &stored_hash));
    assert!(s.credentials("bob").await.expect("query").is_none());
    assert_eq!(s.user(a.id, u.id).await.expect("own account"), u);
    assert!(matches!(
        s.user(b.id, u.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_user_active(b.id, u.id, false).await,
        Err(StoreError::NotFound)
    ));
    s.set_user_active(a.id, u.id, false)
        .await
        .expect("deactivated");
    assert!(!s.user(a.id, u.id).await.expect("still there").active);
    assert_eq!(s.users(a.id).await.expect("list").len(), 1);
    assert!(s.users(b.id).await.expect("list").is_empty());
    db
}

async fn sessions_expire_and_end(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 5).await;
    let u = user(s, &a, "sam", Role::Supervisor).await;
    let hour = Duration::hours(1);
    s.create_session(new_session("tok1", &u, t0(), hour))
        .await
        .expect("session");
    let live = s
        .session("tok1", t0() + Duration::minutes(59))
        .await
        .expect("q");
    assert_eq!(live.expect("live").user, u);
    assert!(s.session("tok1", t0() + hour).await.expect("q").is_none());
    assert!(s.session("other", t0()).await.expect("q").is_none());
    assert_eq!(s.live_sessions(t0()).await.expect("count"), 1);
    s.delete_session("tok1").await.expect("logout");
    assert!(s.session("tok1", t0()).await.expect("q").is_none());

    for token in ["tok2", "tok3"] {
        s.create_session(new_session(token, &u, t0(), hour))
            .await
            .expect("session");
    }
    assert_eq!(s.delete_user_sessions(u.id).await.expect("everywhere"), 2);

    s.create_session(new_session("tok4", &u, t0(), hour))
        .await
        .expect("session");
    s.set_user_active(a.id, u.id, false)
        .await
        .expect("deactivate");
    assert!(s.session("tok4", t0()).await.expect("q").is_none());

    s.create_session(new_session("old", &u, t0(), Duration::minutes(1)))
        .await
        .expect("session");
    let purged = s
        .purge_expired_sessions(t0() + Duration::minutes(2))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    db
}

async fn seat_limit_counts_distinct_logged_in_agents(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let other = account(s, "other", 1).await;
    let ann = user(s, &a, "ann", Role::Agent).await;
    let ben = user(s, &a, "ben", Role::Agent).await;
    let sup = user(s, &a, "sup", Role::Supervisor).await;
    let oth = user(s, &other, "oth", Role::Agent).await;
    let ttl = Duration::hours(8);
    s.create_session(new_session("ann1", &ann, t0(), ttl))
        .await
        .expect("first seat");
    // The same agent in a second tab takes no second seat.
    s.create_session(new_session("ann2", &ann, t0(), ttl))
        .await
        .expect("same agent");
    match s.create_session(new_session("ben1", &ben, t0(), ttl)).await {
        Err(StoreError::SeatLimit { seats }) => assert_eq!(seats, 1),
        other => panic!("expected the seat limit, got {other:?}"),
    }
    s.create_session(new_session("sup1", &sup, t0(), ttl))
        .await
        .expect("supervisors take no seat");
    s.create_session(new_session("oth1", &oth, t0(), ttl))
        .await
        .expect("another account's seats");
    assert_eq!(s.logged_in_agents(a.id, t0()).await.expect("count"), 1);
    // Once Ann's sessions expire, Ben gets the seat.
    let later = t0() + ttl + Duration::seconds(1);
    s.create_session(new_session("ben2", &ben, later, ttl))
        .await
        .expect("freed seat");
    db
}

async fn concurrent_agent_logins_never_exceed_seats(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 3).await;
    let mut agents = Vec::new();
    for i in 0..8 {
        agents.push(user(s, &a, &format!("agent{i}"), Role::Agent).await);
    }
    let mut tasks = Vec::new();
    for (i, u) in agents.into_iter().enumerate() {
        let store = s.clone();
        tasks.push(tokio::spawn(async move {
            let token = format!("race{i}");
            store
                .create_session(new_session(&token, &u, t0(), Duration::hours(1)))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task ran") {
            Ok(()) => ok += 1,
            Err(StoreError::SeatLimit { seats: 3 }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 3);
    assert_eq!(s.logged_in_agents(a.id, t0()).await.expect("count"), 3);
    db
}

async fn contacts_are_scoped_to_their_account(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    let c = s
        .create_contact(a.id, &contact_fields("+447700900001"), t0())
        .await
        .expect("created");
    assert_eq!(c.fields, contact_fields("+447700900001"));
    assert_eq!(s.contact(a.id, c.id).await.expect("own"), c);
    assert!(matches!(
        s.contact(b.id, c.id).await,
        Err(StoreError::NotFound)
    ));
    let mut changed = contact_fields("+447700900002");
    changed.email = None;
    assert!(matches!(
        s.update_contact(b.id, c.id, &changed, t0()).await,
        Err(StoreError::NotFound)
    ));
    let later = t0() + Duration::minutes(5);
    let updated = s
        .update_contact(a.id, c.id, &changed, later)
        .await
        .expect("update");
    assert_eq!(updated.fields.email, None);
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.created_at, t0());
    let found = s.contacts_by_number(a.id, "+447700900002").await;
    assert_eq!(found.expect("q").len(), 1);
    let foreign = s.contacts_by_number(b.id, "+447700900002").await;
    assert!(foreign.expect("q").is_empty());
    assert!(matches!(
        s.create_contact(a.id, &contact_fields("07700900001"), t0())
            .await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = contact_fields("+447700900003");
    bad.custom_fields = serde_json::json!([1, 2]);
    assert!(matches!(
        s.create_contact(a.id, &bad, t0()).await,
        Err(StoreError::Invalid(_))
    ));
    db
}

async fn lists_hold_contacts_of_their_account_only(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    let list = s
        .create_list(a.id, "Leads", "GB", t0())
        .await
        .expect("list");
    assert!(matches!(
        s.create_list(a.id, "Leads", "GB", t0()).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_list(b.id, "Leads", "GB", t0())
        .await
        .expect("same name, other account");
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = s
            .create_contact(a.id, &contact_fields(&format!("+44770090010{i}")), t0())
            .await
            .expect("contact");
        s.add_to_list(a.id, list.id, c.id, t0())
            .await
            .expect("member");
        s.add_to_list(a.id, list.id, c.id, t0())
            .await
            .expect("adding twice is harmless");
        ids.push(c.id);
    }
    assert_eq!(s.list(a.id, list.id).await.expect("list").size, 5);
    let page = s.list_contacts(a.id, list.id, 2, 2).await.expect("page");
    assert_eq!(page.iter().map(|c| c.id).collect::<Vec<_>>(), ids[2..4]);
    assert!(matches!(
        s.list(b.id, list.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.list_contacts(b.id, list.id, 10, 0).await,
        Err(StoreError::NotFound)
    ));
    let foreign = s
        .create_contact(b.id, &contact_fields("+447700900200"), t0())
        .await
        .expect("contact");
    assert!(matches!(
        s.add_to_list(a.id, list.id, foreign.id, t0()).await,
        Err(StoreError::NotFound)
    ));
    let member_of = s.lists_of_contact(a.id, ids[0]).await.expect("q");
    assert_eq!(member_of, vec![list.id]);
    assert_eq!(s.lists(a.id).await.expect("lists").len(), 1);
    db
}

async fn campaigns_take_lists_and_status(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    let l1 = s.create_list(a.id, "one", "GB", t0()).await.expect("list");
    let l2 = s.create_list(a.id, "two", "GB", t0()).await.expect("list");
    let foreign = s.create_list(b.id, "x", "GB", t0()).await.expect("list");
    assert!(matches!(
        s.create_campaign(a.id, "Spring", "01632960000", t0()).await,
        Err(StoreError::Invalid(_))
    ));
    let c = s
        .create_campaign(a.id, "Spring", "+441632960000", t0())
        .await
        .expect("campaign");
    assert_eq!(c.status, CampaignStatus::Paused);
    s.attach_list(a.id, c.id, l2.id, 0).await.expect("attach");
    s.attach_list(a.id, c.id, l1.id, 1).await.expect("attach");
    assert!(matches!(
        s.attach_list(a.id, c.id, foreign.id, 0).await,
        Err(StoreError::NotFound)
    ));
    s.set_campaign_status(a.id, c.id, CampaignStatus::Running, t0())
        .await
        .expect("start");
    let got = s.campaign(a.id, c.id).await.expect("campaign");
    assert_eq!(got.status, CampaignStatus::Running);
    assert_eq!(got.list_ids, vec![l2.id, l1.id]);
    assert!(matches!(
        s.campaign(b.id, c.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_campaign_status(b.id, c.id, CampaignStatus::Stopped, t0())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.campaigns(a.id).await.expect("all").len(), 1);
    assert!(s.campaigns(b.id).await.expect("all").is_empty());
    db
}

async fn attempts_and_interactions_are_recorded(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    let agent = user(s, &a, "ann", Role::Agent).await;
    let c = s
        .create_contact(a.id, &contact_fields("+447700900301"), t0())
        .await
        .expect("contact");
    let camp = s
        .create_campaign(a.id, "C", "+441632960001", t0())
        .await
        .expect("campaign");
    let att = s
        .create_attempt(a.id, CallRef::from_u128(1), Some(camp.id), Some(c.id), t0())
        .await
        .expect("attempt");
    assert!(matches!(
        s.create_attempt(a.id, CallRef::from_u128(1), None, None, t0())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_attempt(b.id, CallRef::from_u128(2), None, Some(c.id), t0())
            .await,
        Err(StoreError::NotFound)
    ));
    let answered = t0() + Duration::seconds(5);
    s.mark_answered(a.id, att.id, answered)
        .await
        .expect("answered");
    s.mark_ended(a.id, att.id, "answered", t0() + Duration::seconds(65))
        .await
        .expect("ended");
    assert!(matches!(
        s.mark_ended(b.id, att.id, "busy", t0()).await,
        Err(StoreError::NotFound)
    ));
    let got = s
        .attempt_by_ref(a.id, CallRef::from_u128(1))
        .await
        .expect("by ref");
    assert_eq!(got.outcome.as_deref(), Some("answered"));
    assert_eq!(got.answered_at, Some(answered));
    let all = s.attempts_for_contact(a.id, c.id).await.expect("q");
    assert_eq!(all, vec![got]);
    assert!(matches!(
        s.attempt_by_ref(b.id, CallRef::from_u128(1)).await,
        Err(StoreError::NotFound)
    ));
    let new = NewInteraction {
        contact_id: c.id,
        user_id: Some(agent.id),
        attempt_id: Some(att.id),
        kind: "call".into(),
        disposition: Some("sale".into()),
        notes: Some("wants the blue one".into()),
    };
    let i = s
        .record_interaction(a.id, &new, t0())
        .await
        .expect("interaction");
    assert_eq!(i.disposition.as_deref(), Some("sale"));
    assert_eq!(s.interaction(a.id, i.id).await.expect("read"), i);
    assert!(matches!(
        s.interaction(b.id, i.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.record_interaction(b.id, &new, t0()).await,
        Err(StoreError::NotFound)
    ));
    let history = s.interactions_for_contact(a.id, c.id).await.expect("q");
    assert_eq!(history, vec![i]);
    db
}

async fn suppression_keeps_a_hash_after_the_number_is_forgotten(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    let n = "+447700900999";
    assert!(!s.is_suppressed(a.id, n).await.expect("q"));
    let e = s
        .suppress(a.id, n, "do-not-call", "agent", t0())
        .await
        .expect("suppress");
    assert_eq!(e.number_e164.as_deref(), Some(n));
    assert!(!e.number_hash.contains("447700900999"));
    let again = s
        .suppress(a.id, n, "other", "import", t0() + Duration::days(1))
        .await
        .expect("again");
    assert_eq!(again.reason, "do-not-call", "the first entry is kept");
    assert!(s.is_suppressed(a.id, n).await.expect("q"));
    assert!(!s.is_suppressed(b.id, n).await.expect("q"), "per account");
    s.forget_suppressed_number(a.id, n).await.expect("forget");
    let kept = s
        .suppression(a.id, n)
        .await
        .expect("q")
        .expect("still suppressed");
    assert_eq!(kept.number_e164, None);
    assert_eq!(kept.number_hash, e.number_hash);
    db
}

async fn audit_entries_are_scoped(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    let u = user(s, &a, "ann", Role::Admin).await;
    let actor = Actor {
        account_id: Some(a.id),
        user_id: Some(u.id),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    };
    s.audit(&actor, "login", None, t0()).await.expect("audit");
    s.audit(
        &actor,
        "list.export",
        Some("list:1"),
        t0() + Duration::seconds(1),
    )
    .await
    .expect("audit");
    let entries = s.audit_entries(a.id, 10).await.expect("q");
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["list.export", "login"]);
    assert_eq!(entries[0].target.as_deref(), Some("list:1"));
    assert_eq!(entries[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(s.audit_entries(b.id, 10).await.expect("q").is_empty());
    db
}

async fn failed_migration_leaves_the_database_as_it_was(db: TestDb) -> TestDb {
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-bad-migrations-{}-{:?}",
        std::process::id(),
        db.backend()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("0001_good.sql"),
        "CREATE TABLE extra_good (id BIGINT);",
    )
    .expect("write");
    std::fs::write(
        dir.join("0002_bad.sql"),
        "CREATE TABLE extra_half (id BIGINT);\nINSERT INTO no_such_table VALUES (1);",
    )
    .expect("write");
    let migrator = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .expect("read migrations");
    // The bookkeeping table is dropped so these test versions start afresh.
    let (result, good, half) = if let Some(pool) = db.store.sqlite_pool() {
        let exists = "SELECT COUNT(*) FROM sqlite_master WHERE name = $1";
        sqlx::query("DROP TABLE _sqlx_migrations")
            .execute(pool)
            .await
            .expect("reset");
        let r = migrator.run(pool).await;
        let good: i64 = sqlx::query_scalar(exists)
            .bind("extra_good")
            .fetch_one(pool)
            .await
            .expect("q");
        let half: i64 = sqlx::query_scalar(exists)
            .bind("extra_half")
            .fetch_one(pool)
            .await
            .expect("q");
        (r, good, half)
    } else {
        let pool = db.store.postgres_pool().expect("one of the two pools");
        let exists = "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = $1";
        sqlx::query("DROP TABLE _sqlx_migrations")
            .execute(pool)
            .await
            .expect("reset");
        let r = migrator.run(pool).await;
        let good: i64 = sqlx::query_scalar(exists)
            .bind("extra_good")
            .fetch_one(pool)
            .await
            .expect("q");
        let half: i64 = sqlx::query_scalar(exists)
            .bind("extra_half")
            .fetch_one(pool)
            .await
            .expect("q");
        (r, good, half)
    };
    assert!(result.is_err(), "the broken migration must fail");
    assert_eq!(good, 1, "the good migration before it stays applied");
    assert_eq!(half, 0, "nothing of the failed migration remains");
    let _ = std::fs::remove_dir_all(&dir);
    db
}

async fn retention_purges_recordings_interactions_and_agent_states(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let b = account(s, "b", 1).await;
    assert!(matches!(
        s.set_retention(a.id, Some(0)).await,
        Err(StoreError::Invalid(_))
    ));
    s.set_retention(a.id, Some(30)).await.expect("set");
    assert_eq!(s.retention(a.id).await.expect("q"), Some(30));
    let now = t0();
    let old = now - Duration::days(31);
    let recent = now - Duration::days(29);
    let mut made = Vec::new();
    for (account, when) in [(&a, old), (&a, recent), (&b, old)] {
        let c = s
            .create_contact(account.id, &contact_fields("+447700900401"), when)
            .await
            .expect("contact");
        let new = NewInteraction {
            contact_id: c.id,
            user_id: None,
            attempt_id: None,
            kind: "call".into(),
            disposition: Some("sale".into()),
            notes: Some("kept or not".into()),
        };
        s.record_interaction(account.id, &new, when)
            .await
            .expect("interaction");
        let dir = db
            .dir()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("rec-{}-{}.wav", account.id, c.id));
        std::fs::write(&path, b"RIFF").expect("file");
        let rec = crm::store::erasure::NewRecording {
            attempt_id: None,
            call_ref: None,
            contact_id: Some(c.id),
            path: path.clone(),
        };
        s.add_recording(account.id, &rec, when)
            .await
            .expect("recording");
        made.push((account.id, c.id, path));
    }
    // Agents' state history: Ann's two old states go, her recent one stays;
    // Bob's only state is old but is still his current one, so it stays.
    let ann = user(s, &a, "ann", Role::Agent).await;
    let bob = user(s, &a, "bob", Role::Agent).await;
    let other = user(s, &b, "cat", Role::Agent).await;
    for (account, who, state, when) in [
        (&a, &ann, AgentState::Ready, old - Duration::hours(1)),
        (&a, &ann, AgentState::Paused, old),
        (&a, &ann, AgentState::Ready, recent),
        (&a, &bob, AgentState::Paused, old),
        (&b, &other, AgentState::Ready, old - Duration::hours(1)),
        (&b, &other, AgentState::Paused, old),
    ] {
        s.record_agent_state(account.id, who.id, state, Some("lunch"), when)
            .await
            .expect("agent state");
    }
    let reports = s.purge_retained(now).await.expect("purge");
    assert_eq!(reports.len(), 1, "only the account with retention set");
    let (who, report) = &reports[0];
    assert_eq!(*who, a.id);
    assert_eq!(
        (
            report.interactions,
            report.recordings,
            report.files,
            report.agent_states
        ),
        (1, 1, 1, 2)
    );
    let again = s.purge_retained(now).await.expect("purge again");
    assert_eq!(again[0].1, PurgeReport::default(), "nothing left to purge");
    let (_, old_contact, old_path) = &made[0];
    let (_, recent_contact, recent_path) = &made[1];
    let (_, other_contact, other_path) = &made[2];
    assert!(s
        .interactions_for_contact(a.id, *old_contact)
        .await
        .expect("q")
        .is_empty());
    assert_eq!(
        s.interactions_for_contact(a.id, *recent_contact)
            .await
            .expect("q")
            .len(),
        1
    );
    assert_eq!(
        s.interactions_for_contact(b.id, *other_contact)
            .await
            .expect("q")
            .len(),
        1
    );
    assert!(!old_path.exists(), "the old recording's file is gone");
    assert!(recent_path.exists() && other_path.exists());
    let audit = s.audit_entries(a.id, 10).await.expect("audit");
    assert_eq!(audit[0].action, "retention.purge");
    assert_eq!(
        audit[0].target.as_deref(),
        Some("interactions:1 recordings:1 files:1 agent_states:2")
    );
    for (_, _, p) in &made {
        let _ = std::fs::remove_file(p);
    }
    db
}

async fn the_last_five_passwords_are_not_reused(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(s, "a", 1).await;
    let first = "Original-pass-0";
    let u = s
        .create_user(
            a.id,
            "pat",
            &password::hash(first).expect("hash"),
            Role::Agent,
            t0(),
        )
        .await
        .expect("user");
    s.create_session(new_session("t", &u, t0(), Duration::hours(1)))
        .await
        .expect("session");
    assert!(matches!(
        s.change_password(a.id, u.id, "short", t0()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        matches!(
            s.change_password(a.id, u.id, first, t0()).await,
            Err(StoreError::Invalid(_))
        ),
        "the current password"
    );
    let mut used = vec![first.to_owned()];
    for i in 1..=5 {
        let next = format!("Next-pass-{i}");
        let at = t0() + Duration::minutes(i);
        s.change_password(a.id, u.id, &next, at)
            .await
            .expect("changed");
        used.push(next);
    }
    assert!(
        s.session("t", t0()).await.expect("q").is_none(),
        "sessions end"
    );
    // The current and the four before it are refused; the sixth back is free.
    for old in &used[1..] {
        assert!(
            matches!(
                s.change_password(a.id, u.id, old, t0() + Duration::hours(1))
                    .await,
                Err(StoreError::Invalid(_))
            ),
            "{old} was one of the last five"
        );
    }
    s.change_password(a.id, u.id, &used[0], t0() + Duration::hours(2))
        .await
        .expect("the sixth-newest may come back");
    let (_, hash) = s.credentials("pat").await.expect("q").expect("user");
    assert!(password::verify(&used[0], &hash));
    let other = account(s, "b", 1).await;
    assert!(matches!(
        s.change_password(other.id, u.id, "Another-pass-9", t0())
            .await,
        Err(StoreError::NotFound)
    ));
    db
}
