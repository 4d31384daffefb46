//! Desk phone credentials in the Store: HA1 values computed and found by
//! SIP username, never the password, only for active users, scoped to their
//! account and audited, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::password;
use crm::store::phones::DeskPhone;
use crm::testing::TestDb;
use crm::{Store, StoreError};

crm::on_both_backends!(
    a_password_becomes_the_published_ha1_values_and_is_found_by_username,
    the_sip_username_defaults_to_the_login_and_is_unique_in_any_case,
    weak_or_reused_passwords_and_odd_names_are_refused,
    an_inactive_users_phone_is_not_found,
    a_new_password_replaces_the_old_values,
    removing_a_credential_ends_it_and_both_changes_are_audited,
    accounts_see_and_touch_only_their_own_phones,
    every_node_gets_the_same_nonce_secret,
);

const LOGIN_PASSWORD: &str = "Login password 1";
const REALM: &str = "pbx.example.com";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn admin(account: AccountId) -> Actor {
    Actor {
        account_id: Some(account),
        user_id: None,
        ip: Some("192.0.2.1".into()),
        user_agent: None,
    }
}

async fn account(db: &TestDb, name: &str) -> AccountId {
    db.store
        .create_account(name, 5, t0())
        .await
        .expect("account")
        .id
}

async fn user(db: &TestDb, account: AccountId, username: &str) -> UserId {
    let hash = password::hash(LOGIN_PASSWORD).expect("hash");
    db.store
        .create_user(account, username, &hash, Role::Agent, t0())
        .await
        .expect("user")
        .id
}

async fn a_password_becomes_the_published_ha1_values_and_is_found_by_username(
    db: TestDb,
) -> TestDb {
    let a = account(&db, "ha1").await;
    let u = user(&db, a, "mufasa").await;
    // RFC 2617 §3.5's credentials: its HA1 is published; the SHA-256 one
    // was computed apart, with sha256sum over the same text.
    let phone = db
        .store
        .set_sip_password(
            &admin(a),
            u,
            Some("Mufasa"),
            "testrealm@host.com",
            "Circle Of Life",
            t0(),
        )
        .await
        .expect("set");
    assert_eq!(phone.user_id, u);
    assert_eq!(phone.username, "mufasa");
    assert_eq!(phone.sip_username, "Mufasa");
    assert_eq!(phone.realm, "testrealm@host.com");
    assert!(phone.active);
    assert_eq!((phone.created_at, phone.updated_at), (t0(), t0()));

    let found = db
        .store
        .sip_credential("Mufasa")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((found.account_id, found.user_id), (a, u));
    assert_eq!(found.realm, "testrealm@host.com");
    assert_eq!(found.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
    assert_eq!(
        found.ha1_sha256,
        "3ba6cd94661c5ef34598040c868f13b8775df29109986be50ad35ae537dd3aa4"
    );
    // A phone sends the username as configured: the lookup is exact.
    assert!(db.store.sip_credential("mufasa").await.unwrap().is_none());
    assert!(db.store.sip_credential("nobody").await.unwrap().is_none());
    assert!(!format!("{found:?}").contains(&found.ha1_md5));
    assert_no_password_stored(&db, "Circle Of Life").await;
    db
}

/// Reads every stored column of `sip_credentials` as text and checks the
/// password is in none of them.
async fn assert_no_password_stored(db: &TestDb, secret: &str) {
    let sql = "SELECT sip_username, realm, ha1_md5, ha1_sha256 FROM sip_credentials";
    let rows: Vec<(String, String, String, String)> =
        match (db.store.sqlite_pool(), db.store.postgres_pool()) {
            (Some(pool), _) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            (_, Some(pool)) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            _ => unreachable!("a store has one pool"),
        };
    assert!(!rows.is_empty());
    for (a, b, c, d) in rows {
        for value in [a, b, c, d] {
            assert!(
                !value.contains(secret),
                "the password is stored in {value:?}"
            );
        }
    }
}

async fn the_sip_username_defaults_to_the_login_and_is_unique_in_any_case(db: TestDb) -> TestDb {
    let a = account(&db, "unique").await;
    let alice = user(&db, a, "alice").await;
    let bob = user(&db, a, "bob").await;
    let set = |u, name: Option<&'static str>| {
        let store = db.store.clone();
        async move {
            store
                .set_sip_password(&admin(a), u, name, REALM, "Desk phone pass", t0())
                .await
        }
    };
    assert_eq!(set(alice, None).await.unwrap().sip_username, "alice");
    match set(bob, Some("ALICE")).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("ALICE"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        set(bob, Some("desk-204")).await.unwrap().sip_username,
        "desk-204"
    );
    // Alice may take another name; her old one is then free for Bob.
    assert_eq!(
        set(alice, Some("desk-101")).await.unwrap().sip_username,
        "desk-101"
    );
    assert_eq!(set(bob, Some("Alice")).await.unwrap().sip_username, "Alice");
    assert!(db.store.sip_credential("desk-204").await.unwrap().is_none());
    let phones = db.store.desk_phones(a).await.unwrap();
    let names: Vec<_> = phones.iter().map(|p| p.sip_username.as_str()).collect();
    assert_eq!(names, vec!["desk-101", "Alice"], "listed by login name");
    db
}

async fn weak_or_reused_passwords_and_odd_names_are_refused(db: TestDb) -> TestDb {
    let a = account(&db, "policy").await;
    let email = user(&db, a, "jane@example.com").await;
    let set = |name: Option<&'static str>, realm: &'static str, pw: &'static str| {
        let store = db.store.clone();
        async move {
            store
                .set_sip_password(&admin(a), email, name, realm, pw, t0())
                .await
        }
    };
    let invalid = |r: Result<DeskPhone, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    // The login name is not a usable SIP username: one must be given.
    assert!(invalid(set(None, REALM, "Desk phone pass").await));
    assert!(invalid(
        set(Some("jane doe"), REALM, "Desk phone pass").await
    ));
    assert!(invalid(set(Some("jane"), "", "Desk phone pass").await));
    assert!(invalid(
        set(Some("jane"), "a \"realm\"", "Desk phone pass").await
    ));
    assert!(invalid(set(Some("jane"), REALM, "too short").await));
    assert!(invalid(
        set(Some("jane"), REALM, "naïve but long enough").await
    ));
    match set(Some("jane"), REALM, LOGIN_PASSWORD).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("login password"), "{m}"),
        other => panic!("expected the login password refused, got {other:?}"),
    }
    assert!(db.store.desk_phones(a).await.unwrap().is_empty());
    assert!(set(Some("jane"), REALM, "Desk phone pass").await.is_ok());
    db
}

async fn an_inactive_users_phone_is_not_found(db: TestDb) -> TestDb {
    let a = account(&db, "inactive").await;
    let u = user(&db, a, "carol").await;
    db.store
        .set_sip_password(&admin(a), u, None, REALM, "Desk phone pass", t0())
        .await
        .unwrap();
    db.store.set_user_active(a, u, false).await.unwrap();
    assert!(db.store.sip_credential("carol").await.unwrap().is_none());
    let listed = db.store.desk_phones(a).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].active);
    db.store.set_user_active(a, u, true).await.unwrap();
    assert!(db.store.sip_credential("carol").await.unwrap().is_some());
    db
}

async fn a_new_password_replaces_the_old_values(db: TestDb) -> TestDb {
    let a = account(&db, "replace").await;
    let u = user(&db, a, "dave").await;
    db.store
        .set_sip_password(&admin(a), u, None, REALM, "First desk pass", t0())
        .await
        .unwrap();
    let before = db.store.sip_credential("dave").await.unwrap().unwrap();
    let later = t0() + Duration::days(3);
    let phone = db
        .store
        .set_sip_password(
            &admin(a),
            u,
            None,
            "new.example.com",
            "Second desk pass",
            later,
        )
        .await
        .unwrap();
    assert_eq!((phone.created_at, phone.updated_at), (t0(), later));
    let after = db.store.sip_credential("dave").await.unwrap().unwrap();
    assert_eq!(after.realm, "new.example.com");
    assert_ne!(after.ha1_md5, before.ha1_md5);
    assert_ne!(after.ha1_sha256, before.ha1_sha256);
    assert_eq!(db.store.desk_phones(a).await.unwrap().len(), 1);
    db
}

async fn removing_a_credential_ends_it_and_both_changes_are_audited(db: TestDb) -> TestDb {
    let a = account(&db, "remove").await;
    let u = user(&db, a, "erin").await;
    db.store
        .set_sip_password(&admin(a), u, None, REALM, "Desk phone pass", t0())
        .await
        .unwrap();
    let later = t0() + Duration::minutes(5);
    db.store
        .remove_sip_credential(&admin(a), u, later)
        .await
        .unwrap();
    assert!(db.store.sip_credential("erin").await.unwrap().is_none());
    assert!(db.store.desk_phones(a).await.unwrap().is_empty());
    assert!(matches!(
        db.store.remove_sip_credential(&admin(a), u, later).await,
        Err(StoreError::NotFound)
    ));
    let entries = db.store.audit_entries(a, 10).await.unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_deref()))
        .collect();
    let target = format!("user:{u}");
    assert_eq!(
        actions,
        vec![
            ("sip_credential.remove", Some(target.as_str())),
            ("sip_credential.set", Some(target.as_str())),
        ],
        "newest first, and a refused removal writes nothing"
    );
    assert_eq!(entries[0].ip.as_deref(), Some("192.0.2.1"));
    db
}

async fn accounts_see_and_touch_only_their_own_phones(db: TestDb) -> TestDb {
    let a = account(&db, "first").await;
    let b = account(&db, "second").await;
    let theirs = user(&db, a, "frank").await;
    db.store
        .set_sip_password(&admin(a), theirs, None, REALM, "Desk phone pass", t0())
        .await
        .unwrap();
    let other = admin(b);
    assert!(matches!(
        db.store
            .set_sip_password(
                &other,
                theirs,
                Some("stolen"),
                REALM,
                "Desk phone pass",
                t0()
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.remove_sip_credential(&other, theirs, t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.desk_phones(b).await.unwrap().is_empty());
    assert_eq!(db.store.desk_phones(a).await.unwrap().len(), 1);
    assert!(db.store.sip_credential("frank").await.unwrap().is_some());
    assert!(db.store.sip_credential("stolen").await.unwrap().is_none());
    assert!(db.store.audit_entries(b, 10).await.unwrap().is_empty());
    db
}

async fn every_node_gets_the_same_nonce_secret(db: TestDb) -> TestDb {
    let other_node = Store::connect(&db.url)
        .await
        .expect("a second node connects");
    let (first, second) = tokio::join!(
        db.store.sip_nonce_secret(t0()),
        other_node.sip_nonce_secret(t0() + Duration::seconds(1)),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    assert!(first.as_bytes().len() >= 32);
    assert_eq!(db.store.sip_nonce_secret(t0()).await.unwrap(), first);
    assert!(!format!("{first:?}").contains(std::str::from_utf8(first.as_bytes()).unwrap()));
    other_node.close().await;
    db
}
