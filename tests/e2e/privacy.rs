//! Subject access, erasure and the audit log over HTTP.

use std::io::Read;
use std::path::PathBuf;

use crm::model::{Account, ContactFields, ContactId, NewInteraction, Role};
use crm::store::erasure::NewRecording;
use serde_json::Value;
use sip_gateway::gateway::CallRef;

use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(
    admins_get_everything_about_a_contact_as_a_zip,
    erasure_over_http_removes_the_contact_and_is_audited,
    admins_filter_and_export_the_audit_log,
);

const AUDIO: &[u8] = b"RIFF-e2e-recorded-voice-pattern";
/// The call the planted attempt and recording belong to.
const CALL: CallRef = CallRef::from_u128(0xe2e);

/// A contact of `account` on a list, with a note and a recording on disk.
async fn planted(t: &TestApp, account: &Account, folder: &std::path::Path) -> (ContactId, PathBuf) {
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let contact = s
        .create_contact(
            account.id,
            &ContactFields {
                first_name: "Yolanda".into(),
                last_name: "Privacyperson".into(),
                phone_e164: "+447400100444".into(),
                phone_raw: "07400 100444".into(),
                email: Some("yolanda@example.test".into()),
                custom_fields: serde_json::json!({ "pet": "Grizzlewick" }),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let list = s
        .create_list(account.id, "Spring", "GB", now)
        .await
        .expect("list");
    s.add_to_list(account.id, list.id, contact.id, now)
        .await
        .expect("member");
    let attempt = s
        .create_attempt(account.id, CALL, None, Some(contact.id), now)
        .await
        .expect("attempt");
    s.record_interaction(
        account.id,
        &NewInteraction {
            contact_id: contact.id,
            user_id: None,
            attempt_id: Some(attempt.id),
            kind: "call".into(),
            disposition: Some("sale".into()),
            notes: Some("Prefers calls after lunch".into()),
        },
        now,
    )
    .await
    .expect("interaction");
    let path = folder.join(format!("{CALL}.wav"));
    std::fs::write(&path, AUDIO).expect("recording written");
    s.add_recording(
        account.id,
        &NewRecording {
            attempt_id: Some(attempt.id),
            call_ref: Some(CALL),
            contact_id: Some(contact.id),
            path: path.clone(),
        },
        now,
    )
    .await
    .expect("recording");
    (contact.id, path)
}

async fn admins_get_everything_about_a_contact_as_a_zip(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let folder = temp_folder();
    let (contact, _) = planted(&t, &acme, &folder).await;
    let path = format!("/api/contacts/{contact}/export.zip");
    // A value in a field of the account that is neither on the card nor
    // exported with lists: subject access hands it over all the same.
    let s = &t.db.store;
    let owner = crm::model::Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    s.define_field(
        &owner,
        &serde_json::from_value(serde_json::json!({
            "key": "shoe_size", "label": "Shoe size", "kind": "number",
            "on_card": false, "exported": false
        }))
        .expect("a definition"),
        t.clock.now_utc(),
    )
    .await
    .expect("defined");
    let change: crm::edit::ContactChange =
        serde_json::from_value(serde_json::json!({ "fields": { "shoe_size": 44.5 } }))
            .expect("a change");
    s.edit_contact(&owner, contact, 1, &change, t.clock.now_utc())
        .await
        .expect("edited");

    for (name, role) in [("sup", Role::Supervisor), ("agent", Role::Agent)] {
        let pw = t.user(&acme, name, role).await;
        let c = t.login(name, &pw).await;
        assert_eq!(t.get_status(&c, &path).await, 403, "{name}");
    }
    let pw = t.user(&other, "other-admin", Role::Admin).await;
    let foreign = t.login("other-admin", &pw).await;
    assert_eq!(t.get_status(&foreign, &path).await, 404);

    let pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &pw).await;
    let r = admin.get(t.url(&path)).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.expect("body").to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut json = String::new();
    zip.by_name("contact.json")
        .expect("contact.json")
        .read_to_string(&mut json)
        .expect("utf-8");
    let doc: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc["contact"]["first_name"], "Yolanda");
    assert_eq!(doc["contact"]["custom_fields"]["pet"], "Grizzlewick");
    assert_eq!(doc["contact"]["fields"]["shoe_size"], 44.5);
    assert_eq!(
        doc["fields"],
        serde_json::json!([{ "key": "shoe_size", "label": "Shoe size", "value": 44.5 }])
    );
    assert_eq!(doc["lists"][0]["name"], "Spring");
    assert_eq!(doc["attempts"][0]["call_ref"], CALL.to_string());
    assert_eq!(doc["interactions"][0]["notes"], "Prefers calls after lunch");
    assert_eq!(doc["suppression"], Value::Null);
    let file = doc["recording_files"][0]["file"].as_str().expect("a file");
    let mut audio = Vec::new();
    zip.by_name(file)
        .expect("the recording is in the zip")
        .read_to_end(&mut audio)
        .expect("read");
    assert_eq!(audio, AUDIO);
    assert_eq!(zip.len(), 2);

    let audit = t.db.store.audit_entries(acme.id, 5).await.expect("audit");
    assert_eq!(audit[0].action, "contact.export");
    assert_eq!(
        audit[0].target.as_deref(),
        Some(&*format!("contact:{contact}"))
    );
    let _ = std::fs::remove_dir_all(folder);
    t
}

async fn erasure_over_http_removes_the_contact_and_is_audited(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let folder = temp_folder();
    let (contact, recording) = planted(&t, &acme, &folder).await;
    let erase = t.url(&format!("/api/contacts/{contact}/erase"));
    let card = format!("/api/contacts/{contact}");

    let pw = t.user(&acme, "sup", Role::Supervisor).await;
    let sup = t.login("sup", &pw).await;
    assert_eq!(sup.post(&erase).send().await.expect("sent").status(), 403);
    let pw = t.user(&other, "other-admin", Role::Admin).await;
    let foreign = t.login("other-admin", &pw).await;
    assert_eq!(
        foreign.post(&erase).send().await.expect("sent").status(),
        404
    );
    assert_eq!(t.get_status(&sup, &card).await, 200, "still there");

    let pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &pw).await;
    let r = admin.post(&erase).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("json");
    assert_eq!(report["recordings_deleted"], 1);
    assert_eq!(report["interactions_deleted"], 1);
    assert_eq!(report["field_values_deleted"], 0);
    assert!(!recording.exists());
    assert_eq!(t.get_status(&admin, &card).await, 404);
    assert_eq!(admin.post(&erase).send().await.expect("sent").status(), 404);
    assert!(t
        .db
        .store
        .is_suppressed(acme.id, "+447400100444")
        .await
        .expect("checked"));

    let entries: Vec<Value> = admin
        .get(t.url("/api/audit?action=contact.erase"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["target"], format!("contact:{contact}"));
    let ada =
        t.db.store
            .credentials("ada")
            .await
            .expect("q")
            .expect("ada")
            .0;
    assert_eq!(entries[0]["user_id"], ada.id.0);
    let _ = std::fs::remove_dir_all(folder);
    t
}

async fn admins_filter_and_export_the_audit_log(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &pw).await;
    let sup_pw = t.user(&acme, "sup", Role::Supervisor).await;
    let sup = t.login("sup", &sup_pw).await;
    let other_pw = t.user(&other, "olga", Role::Admin).await;
    t.login("olga", &other_pw).await;
    t.clock.advance(chrono::Duration::hours(1));
    let later = t.clock.now_utc();
    t.login("sup", &sup_pw).await;

    let get = |path: String| entries(&t, &admin, path);
    let all = get("/api/audit?action=&user_id=&since=&until=&limit=".into()).await;
    assert_eq!(all.len(), 3, "three logins in acme, none of other: {all:?}");
    assert!(all.iter().all(|e| e["account_id"] == acme.id.0));
    let sup_id =
        t.db.store
            .credentials("sup")
            .await
            .expect("q")
            .expect("sup")
            .0
            .id;
    let by_sup = get(format!("/api/audit?user_id={sup_id}")).await;
    assert_eq!(by_sup.len(), 2);
    let since = later.to_rfc3339().replace('+', "%2B");
    assert_eq!(get(format!("/api/audit?since={since}")).await.len(), 1);
    assert_eq!(get(format!("/api/audit?until={since}")).await.len(), 2);
    assert_eq!(get("/api/audit?limit=1".into()).await.len(), 1);
    assert!(get("/api/audit?action=logout".into()).await.is_empty());
    assert_eq!(
        t.get_status(&admin, "/api/audit?since=yesterday").await,
        400
    );
    assert_eq!(t.get_status(&sup, "/api/audit").await, 403);
    assert_eq!(t.get_status(&sup, "/api/audit.csv").await, 403);

    let r = admin
        .get(t.url("/api/audit.csv"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/csv"));
    let csv = r.text().await.expect("text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "occurred_at,action,user_id,target,ip,user_agent,detail"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    let exports = get("/api/audit?action=audit.export".into()).await;
    assert_eq!(exports.len(), 1, "the export is audited");
    assert_eq!(exports[0]["target"], "entries:3");
    t
}

/// Returns the audit entries an admin's GET of `path` answers.
async fn entries(t: &TestApp, admin: &reqwest::Client, path: String) -> Vec<Value> {
    let r = admin.get(t.url(&path)).send().await.expect("sent");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

fn temp_folder() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-e2e-recordings-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}
