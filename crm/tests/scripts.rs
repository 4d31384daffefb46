//! Call scripts in the Store: saved and read back, checked against the
//! account's fields, scoped to their account, and rendered with contacts a
//! hostile CSV import brought in, on both backends.

use std::io::Cursor;

use chrono::{DateTime, TimeZone, Utc};
use crm::fields::{FieldKind, NewField};
use crm::import::{import_csv, ImportOptions};
use crm::model::*;
use crm::script::{Merge, Script, Section};
use crm::testing::TestDb;
use crm::StoreError;

crm::on_both_backends!(
    a_script_round_trips_and_an_empty_one_removes_it,
    unknown_fields_are_refused_naming_them,
    scripts_are_scoped_to_their_account,
    imported_hostile_values_render_as_text,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn admin(account: AccountId) -> Actor {
    Actor {
        account_id: Some(account),
        ..Actor::default()
    }
}

async fn campaign(db: &TestDb, account: &str) -> (AccountId, CampaignId) {
    let a = db.store.create_account(account, 5, t0()).await.unwrap().id;
    let c = db
        .store
        .create_campaign(a, "Renewals", "+442079460000", t0())
        .await
        .unwrap()
        .id;
    (a, c)
}

async fn plan_field(db: &TestDb, account: AccountId) {
    db.store
        .define_field(
            &admin(account),
            &NewField {
                key: "plan".into(),
                kind: Some(FieldKind::Text),
                ..NewField::default()
            },
            t0(),
        )
        .await
        .expect("field");
}

fn script(body: &str) -> Script {
    Script {
        sections: vec![
            Section {
                title: "  Opening ".into(),
                body: body.into(),
            },
            Section {
                title: "Close".into(),
                body: "Thank you, {first_name}.".into(),
            },
        ],
    }
}

async fn a_script_round_trips_and_an_empty_one_removes_it(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "round-trip").await;
    plan_field(&db, a).await;
    let none = db.store.campaign_script(a, c).await.unwrap();
    assert!(none.sections.is_empty() && none.updated_at.is_none());
    let body = "Hello **{first_name}**,\r\nyour plan is {field.plan}.\n\n- ask *kindly*";
    let saved = db
        .store
        .set_campaign_script(a, c, &script(body), t0())
        .await
        .unwrap();
    assert_eq!(saved.sections[0].title, "Opening", "titles are trimmed");
    assert_eq!(
        saved.sections[0].body,
        "Hello **{first_name}**,\nyour plan is {field.plan}.\n\n- ask *kindly*"
    );
    assert_eq!(saved.updated_at, Some(t0()));
    assert_eq!(db.store.campaign_script(a, c).await.unwrap(), saved);
    let later = t0() + chrono::TimeDelta::minutes(5);
    let cleared = db
        .store
        .set_campaign_script(a, c, &Script::default(), later)
        .await
        .unwrap();
    assert!(cleared.sections.is_empty() && cleared.updated_at.is_none());
    db
}

async fn unknown_fields_are_refused_naming_them(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "unknown").await;
    plan_field(&db, a).await;
    db.store
        .set_campaign_script(a, c, &script("Your plan: {field.plan}"), t0())
        .await
        .unwrap();
    let refused = db
        .store
        .set_campaign_script(a, c, &script("{frist_name} {field.tier}"), t0())
        .await;
    match refused {
        Err(StoreError::Invalid(m)) => {
            assert!(m.contains("{frist_name}, {field.tier}"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let kept = db.store.campaign_script(a, c).await.unwrap();
    assert_eq!(
        kept.sections[0].body, "Your plan: {field.plan}",
        "a refused script loses nothing"
    );
    db
}

async fn scripts_are_scoped_to_their_account(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "owner").await;
    let (b, _) = campaign(&db, "other").await;
    db.store
        .set_campaign_script(a, c, &script("Hi"), t0())
        .await
        .unwrap();
    assert!(matches!(
        db.store.campaign_script(b, c).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store
            .set_campaign_script(b, c, &script("Mine now"), t0())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        db.store.campaign_script(a, c).await.unwrap().sections[0].body,
        "Hi"
    );
    db
}

async fn imported_hostile_values_render_as_text(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "hostile").await;
    plan_field(&db, a).await;
    let list = db.store.create_list(a, "L", "GB", t0()).await.unwrap();
    let csv = "first_name,last_name,phone,plan\n\
               \"<script>alert(1)</script>\",\"<img src=x onerror=alert(1)>\",07400 100001,\"=cmd|' /C calc'!A0\"\n\
               \"{agent} **x** {{y}}\",javascript:alert(1),07400 100002,\"- item\"\n";
    let summary = import_csv(
        &db.store,
        &admin(a),
        list.id,
        Cursor::new(csv.as_bytes().to_vec()),
        &ImportOptions::default(),
        t0(),
        |_| {},
    )
    .await
    .expect("imported");
    assert_eq!(summary.imported, 2, "{summary:?}");
    let saved = db
        .store
        .set_campaign_script(
            a,
            c,
            &script("Hello **{first_name} {last_name}**, plan {field.plan}."),
            t0(),
        )
        .await
        .unwrap();
    let campaign = db.store.campaign(a, c).await.unwrap();
    let contacts = db.store.list_contacts(a, list.id, 10, 0).await.unwrap();
    let rendered: Vec<String> = contacts
        .iter()
        .map(|contact| {
            let merge = Merge::new()
                .contact(&contact.fields, &contact.values)
                .campaign(&campaign)
                .agent("alice");
            saved.script().render(&merge).plain_text()
        })
        .collect();
    assert_eq!(
        rendered,
        [
            "Opening\nHello <script>alert(1)</script> <img src=x onerror=alert(1)>, \
             plan =cmd|' /C calc'!A0.\nClose\nThank you, <script>alert(1)</script>.\n",
            "Opening\nHello {agent} **x** {{y}} javascript:alert(1), plan - item.\n\
             Close\nThank you, {agent} **x** {{y}}.\n",
        ]
    );
    db
}
