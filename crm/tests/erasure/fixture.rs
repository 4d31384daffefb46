//! The planted contact, its account and campaign, and the byte search.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::store::erasure::NewRecording;
use crm::testing::{TestBackend, TestDb};
use crm::Store;
use rand::RngCore;
use vocab::CallRef;

/// Wednesday 14 January 2026, 12:00 UTC: inside London's calling hours.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

pub const PHONE: &str = "+447400100987";
pub const PHONE_RAW: &str = "07400 100987";
pub const NOTES: &str = "Mentioned Xqzvbnm the parrot and a Wobblefritz loan";
pub const RECORDING_PATTERN: &[u8] = b"ZQXJ-recorded-voice-KVBW";

/// The contact's value in a field the account defined.
pub const FIELD_VALUE: &str = "Grimblewort the Field Tortoise";

/// Every value planted for the contact; none may survive erasure.
pub const PLANTED: [&str; 10] = [
    "Zyxwvu",
    "Qqqerasure",
    PHONE,
    PHONE_RAW,
    "zyxwvu.qqq@erasure-example.test",
    "17 Vvvplugh Lane, Xyzzyton",
    "Ptarmigan Wrangler",
    "KJHGF-ERASE-77",
    NOTES,
    FIELD_VALUE,
];

pub struct Fixture {
    pub account: AccountId,
    pub campaign: CampaignId,
    pub list: ListId,
    pub actor: Actor,
}

pub async fn fixture(store: &Store, name: &str) -> Fixture {
    let account = store.create_account(name, 10, t0()).await.unwrap().id;
    let admin = store
        .create_user(
            account,
            &format!("{name}-admin"),
            "$argon2id$test",
            Role::Admin,
            t0(),
        )
        .await
        .unwrap();
    let campaign = store
        .create_campaign(account, "Winter", "+442079460000", t0())
        .await
        .unwrap()
        .id;
    let list = store
        .create_list(account, "Main", "GB", t0())
        .await
        .unwrap()
        .id;
    store.attach_list(account, campaign, list, 0).await.unwrap();
    store
        .set_campaign_status(account, campaign, CampaignStatus::Running, t0())
        .await
        .unwrap();
    Fixture {
        account,
        campaign,
        list,
        actor: Actor {
            account_id: Some(account),
            user_id: Some(admin.id),
            ip: Some("192.0.2.7".into()),
            user_agent: Some("erasure-test".into()),
        },
    }
}

pub fn planted_fields() -> ContactFields {
    ContactFields {
        first_name: PLANTED[0].into(),
        last_name: PLANTED[1].into(),
        phone_e164: PHONE.into(),
        phone_raw: PHONE_RAW.into(),
        email: Some(PLANTED[4].into()),
        postal_address: Some(PLANTED[5].into()),
        profession: Some(PLANTED[6].into()),
        time_zone: Some("Europe/London".into()),
        custom_fields: serde_json::json!({ "loyalty_code": PLANTED[7] }),
    }
}

/// Defines the account's text field `pet_name` and gives the contact
/// [`FIELD_VALUE`] in it.
pub async fn plant_field_value(store: &Store, f: &Fixture, contact: ContactId) {
    use crm::fields::{FieldKind, NewField};
    store
        .define_field(
            &f.actor,
            &NewField {
                key: "pet_name".into(),
                label: Some("Pet's name".into()),
                kind: Some(FieldKind::Text),
                ..NewField::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let version = store.contact(f.account, contact).await.unwrap().version;
    let change = crm::edit::ContactChange {
        fields: Some(
            serde_json::json!({ "pet_name": FIELD_VALUE })
                .as_object()
                .cloned()
                .unwrap(),
        ),
        ..Default::default()
    };
    let saved = store
        .edit_contact(&f.actor, contact, version, &change, t0())
        .await
        .unwrap();
    assert_eq!(saved.changed, ["field.pet_name"]);
}

/// A contact on two lists, called once, with notes, a recording and a
/// value in a field the account defined.
pub struct Planted {
    pub contact: ContactId,
    pub call_ref: CallRef,
    pub recording: PathBuf,
}

pub async fn plant(store: &Store, f: &Fixture, recordings: &Path) -> Planted {
    let contact = store
        .create_contact(f.account, &planted_fields(), t0())
        .await
        .unwrap()
        .id;
    plant_field_value(store, f, contact).await;
    let other = store
        .create_list(f.account, "Other", "GB", t0())
        .await
        .unwrap();
    for list in [f.list, other.id] {
        store
            .add_to_list(f.account, list, contact, t0())
            .await
            .unwrap();
    }
    assert_eq!(
        store.sync_leads(f.account, f.campaign, t0()).await.unwrap(),
        1
    );
    let claimed = claim(store, f, t0()).await;
    assert_eq!(claimed, vec![PHONE.to_owned()], "dialable before erasure");
    let call_ref = CallRef::random();
    let attempt = store
        .create_attempt(f.account, call_ref, Some(f.campaign), Some(contact), t0())
        .await
        .unwrap();
    store
        .mark_ended(
            f.account,
            attempt.id,
            "no_answer",
            t0() + Duration::seconds(30),
        )
        .await
        .unwrap();
    store
        .record_interaction(
            f.account,
            &NewInteraction {
                contact_id: contact,
                user_id: f.actor.user_id,
                attempt_id: Some(attempt.id),
                kind: "call".into(),
                disposition: Some("callback".into()),
                notes: Some(NOTES.into()),
            },
            t0() + Duration::seconds(40),
        )
        .await
        .unwrap();
    let recording = recordings.join(format!("{call_ref}.wav"));
    std::fs::write(&recording, RECORDING_PATTERN.repeat(64)).unwrap();
    store
        .add_recording(
            f.account,
            &NewRecording {
                attempt_id: Some(attempt.id),
                call_ref: Some(call_ref),
                contact_id: Some(contact),
                path: recording.clone(),
            },
            t0(),
        )
        .await
        .unwrap();
    Planted {
        contact,
        call_ref,
        recording,
    }
}

/// Claims what the campaign may dial at `at`, returning the numbers.
pub async fn claim(store: &Store, f: &Fixture, at: DateTime<Utc>) -> Vec<String> {
    let mut numbers: Vec<String> = store
        .claim_leads(
            f.account,
            f.campaign,
            "node-a",
            10,
            at,
            Duration::seconds(60),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.phone_e164)
        .collect();
    numbers.sort();
    numbers
}

/// Returns every byte the database keeps: on SQLite the file and its WAL,
/// on PostgreSQL a `pg_dump` of the test database.
pub async fn stored_bytes(db: &TestDb) -> Vec<u8> {
    match db.backend() {
        TestBackend::Sqlite => {
            let file = db.dir().expect("a SQLite folder").join("dialcrm.db");
            let mut bytes = std::fs::read(&file).expect("the database file");
            for suffix in ["-wal", "-journal"] {
                let mut side = file.clone().into_os_string();
                side.push(suffix);
                if let Ok(more) = std::fs::read(&side) {
                    bytes.extend(more);
                }
            }
            assert!(
                contains(&bytes, b"CREATE TABLE contacts"),
                "a real database"
            );
            bytes
        }
        TestBackend::Postgres => {
            let out = tokio::process::Command::new("pg_dump")
                .arg(format!("--dbname={}", db.url))
                .output()
                .await
                .expect("pg_dump runs (install postgresql-client)");
            assert!(
                out.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(contains(&out.stdout, b"CREATE TABLE public.contacts"));
            out.stdout
        }
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn temp_folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-{name}-{:016x}",
        rand::rngs::OsRng.next_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
