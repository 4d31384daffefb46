//! Agents assigned to campaigns: the set, its refusals, tenancy, what an
//! agent may read, and the upgrade of existing data, on both backends.

use chrono::{DateTime, TimeZone, Utc};
use crm::model::*;
use crm::testing::{TestBackend, TestDb};
use crm::StoreError;

crm::on_both_backends!(
    the_set_is_replaced_and_read_back,
    new_campaigns_start_with_nobody,
    other_accounts_and_other_roles_are_refused,
    agents_read_only_leads_of_their_campaigns,
    the_demo_agents_work_the_demo_campaign,
    upgrading_assigns_every_agent_to_every_campaign_of_their_account,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

async fn account(db: &TestDb, name: &str) -> AccountId {
    db.store.create_account(name, 5, t0()).await.unwrap().id
}

async fn user(db: &TestDb, account: AccountId, name: &str, role: Role) -> UserId {
    db.store
        .create_user(account, name, "not-a-real-hash", role, t0())
        .await
        .unwrap()
        .id
}

async fn campaign(db: &TestDb, account: AccountId, name: &str) -> CampaignId {
    db.store
        .create_campaign(account, name, "+442079460000", t0())
        .await
        .unwrap()
        .id
}

async fn the_set_is_replaced_and_read_back(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(&db, "acme").await;
    let (al, bo, cy) = (
        user(&db, a, "al", Role::Agent).await,
        user(&db, a, "bo", Role::Agent).await,
        user(&db, a, "cy", Role::Agent).await,
    );
    let spring = campaign(&db, a, "Spring").await;
    let autumn = campaign(&db, a, "Autumn").await;

    // Duplicates and order in the request do not matter.
    s.assign_agents(a, spring, &[cy, al, cy]).await.unwrap();
    let mut want = vec![al, cy];
    want.sort();
    assert_eq!(s.campaign_agents(a, spring).await.unwrap(), want);
    assert!(s.is_assigned(a, spring, al).await.unwrap());
    assert!(!s.is_assigned(a, spring, bo).await.unwrap());

    s.assign_agents(a, autumn, &[al]).await.unwrap();
    let mut both = vec![spring, autumn];
    both.sort();
    assert_eq!(s.agent_campaigns(a, al).await.unwrap(), both);

    // Replacing, not adding: al leaves Spring, bo joins it.
    s.assign_agents(a, spring, &[bo, cy]).await.unwrap();
    assert!(!s.is_assigned(a, spring, al).await.unwrap());
    assert!(s.is_assigned(a, spring, bo).await.unwrap());
    assert_eq!(s.agent_campaigns(a, al).await.unwrap(), vec![autumn]);

    s.assign_agents(a, spring, &[]).await.unwrap();
    assert!(s.campaign_agents(a, spring).await.unwrap().is_empty());
    assert!(s.agent_campaigns(a, bo).await.unwrap().is_empty());
    db
}

async fn new_campaigns_start_with_nobody(db: TestDb) -> TestDb {
    let a = account(&db, "acme").await;
    let al = user(&db, a, "al", Role::Agent).await;
    let c = campaign(&db, a, "Spring").await;
    assert!(db.store.campaign_agents(a, c).await.unwrap().is_empty());
    assert!(!db.store.is_assigned(a, c, al).await.unwrap());
    assert!(db.store.agent_campaigns(a, al).await.unwrap().is_empty());
    db
}

async fn other_accounts_and_other_roles_are_refused(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(&db, "acme").await;
    let b = account(&db, "brix").await;
    let al = user(&db, a, "al", Role::Agent).await;
    let sue = user(&db, a, "sue", Role::Supervisor).await;
    let ada = user(&db, a, "ada", Role::Admin).await;
    let foreign = user(&db, b, "bea", Role::Agent).await;
    let mine = campaign(&db, a, "Spring").await;
    let theirs = campaign(&db, b, "Spring").await;
    s.assign_agents(a, mine, &[al]).await.unwrap();

    for (who, says) in [
        (foreign, "not a user of this account"),
        (sue, "only agents"),
        (ada, "only agents"),
        (UserId(987_654), "not a user of this account"),
    ] {
        match s.assign_agents(a, mine, &[al, who]).await {
            Err(StoreError::Invalid(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("user {who} was not refused: {other:?}"),
        }
    }
    // A refused request changes nothing.
    assert_eq!(s.campaign_agents(a, mine).await.unwrap(), vec![al]);

    assert!(matches!(
        s.assign_agents(a, theirs, &[al]).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.campaign_agents(a, theirs).await,
        Err(StoreError::NotFound)
    ));
    // Account b's own view is untouched, and a is invisible from b.
    assert!(s.campaign_agents(b, theirs).await.unwrap().is_empty());
    assert!(!s.is_assigned(b, mine, al).await.unwrap());
    assert!(s.agent_campaigns(b, al).await.unwrap().is_empty());
    db
}

async fn agents_read_only_leads_of_their_campaigns(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = account(&db, "acme").await;
    let al = user(&db, a, "al", Role::Agent).await;
    let bo = user(&db, a, "bo", Role::Agent).await;
    let mut contacts = Vec::new();
    let mut campaigns = Vec::new();
    for (i, name) in ["Spring", "Autumn"].into_iter().enumerate() {
        let fields = ContactFields {
            first_name: name.into(),
            phone_e164: format!("+4477009001{i:02}"),
            phone_raw: format!("07700 9001{i:02}"),
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        };
        let contact = s.create_contact(a, &fields, t0()).await.unwrap().id;
        let list = s.create_list(a, name, "GB", t0()).await.unwrap().id;
        s.add_to_list(a, list, contact, t0()).await.unwrap();
        let c = campaign(&db, a, name).await;
        s.attach_list(a, c, list, 0).await.unwrap();
        s.sync_leads(a, c, t0()).await.unwrap();
        contacts.push(contact);
        campaigns.push(c);
    }
    s.assign_agents(a, campaigns[0], &[al]).await.unwrap();
    s.assign_agents(a, campaigns[1], &[bo]).await.unwrap();
    assert!(s.is_contact_of_agent(a, al, contacts[0]).await.unwrap());
    assert!(!s.is_contact_of_agent(a, al, contacts[1]).await.unwrap());
    assert!(s.is_contact_of_agent(a, bo, contacts[1]).await.unwrap());
    assert!(!s.is_contact_of_agent(a, bo, contacts[0]).await.unwrap());
    // Unassigning takes the contact away at once.
    s.assign_agents(a, campaigns[0], &[]).await.unwrap();
    assert!(!s.is_contact_of_agent(a, al, contacts[0]).await.unwrap());
    // Another account never matches.
    let b = account(&db, "brix").await;
    s.assign_agents(a, campaigns[0], &[al]).await.unwrap();
    assert!(!s.is_contact_of_agent(b, al, contacts[0]).await.unwrap());
    db
}

async fn the_demo_agents_work_the_demo_campaign(db: TestDb) -> TestDb {
    let demo = crm::demo::seed(&db.store, t0()).await.unwrap();
    let a = demo.account.id;
    let campaigns = db.store.campaigns(a).await.unwrap();
    assert_eq!(campaigns.len(), 1);
    let assigned = db.store.campaign_agents(a, campaigns[0].id).await.unwrap();
    let users = db.store.users(a).await.unwrap();
    let mut agents: Vec<UserId> = users
        .iter()
        .filter(|u| u.role == Role::Agent)
        .map(|u| u.id)
        .collect();
    agents.sort();
    assert_eq!(agents.len(), 2);
    assert_eq!(assigned, agents);
    db
}

/// Takes a migrated database back to before migration 8, fills it as an
/// older release would have, then migrates again: the upgrade must leave
/// every agent working every campaign of their own account.
async fn upgrading_assigns_every_agent_to_every_campaign_of_their_account(db: TestDb) -> TestDb {
    let s = &db.store;
    let undo = [
        "DROP TABLE campaign_agents",
        "DROP TABLE audit_counts",
        "ALTER TABLE accounts DROP COLUMN aggregate_only",
        "DELETE FROM _sqlx_migrations WHERE version = 8",
    ];
    for sql in undo {
        match db.backend() {
            TestBackend::Sqlite => {
                let pool = s.sqlite_pool().expect("a SQLite store");
                sqlx::query(sql).execute(pool).await.unwrap();
            }
            TestBackend::Postgres => {
                let pool = s.postgres_pool().expect("a PostgreSQL store");
                sqlx::query(sql).execute(pool).await.unwrap();
            }
        }
    }
    let a = account(&db, "acme").await;
    let b = account(&db, "brix").await;
    let al = user(&db, a, "al", Role::Agent).await;
    let bo = user(&db, a, "bo", Role::Agent).await;
    user(&db, a, "sue", Role::Supervisor).await;
    let bea = user(&db, b, "bea", Role::Agent).await;
    let spring = campaign(&db, a, "Spring").await;
    let autumn = campaign(&db, a, "Autumn").await;
    let theirs = campaign(&db, b, "Winter").await;

    s.migrate().await.unwrap();

    let mut want = vec![al, bo];
    want.sort();
    assert_eq!(s.campaign_agents(a, spring).await.unwrap(), want);
    assert_eq!(s.campaign_agents(a, autumn).await.unwrap(), want);
    assert_eq!(s.campaign_agents(b, theirs).await.unwrap(), vec![bea]);
    let mut mine = vec![spring, autumn];
    mine.sort();
    assert_eq!(s.agent_campaigns(a, al).await.unwrap(), mine);
    assert_eq!(s.agent_campaigns(b, bea).await.unwrap(), vec![theirs]);
    // A campaign made after the upgrade starts with nobody.
    let later = campaign(&db, a, "Later").await;
    assert!(s.campaign_agents(a, later).await.unwrap().is_empty());
    db
}
