//! Erasure and subject access on one backend each.

use chrono::Duration;
use crm::import::{import_csv, ImportOptions};
use crm::testing::{TestBackend, TestDb};
use crm::StoreError;

use crate::fixture::*;

pub async fn erased_contact_leaves_no_trace_and_is_never_dialled_again(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "erasure").await;
    let recordings = temp_folder("recordings");
    let p = plant(s, &f, &recordings).await;

    // The search below must be able to fail: every value is there now.
    let before = stored_bytes(&db).await;
    for value in PLANTED {
        assert!(contains(&before, value.as_bytes()), "{value:?} planted");
    }

    let report = s
        .erase_contact(f.account, p.contact, &f.actor, t0() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(report.interactions_deleted, 1);
    assert_eq!(report.field_values_deleted, 1);
    assert_eq!(report.list_memberships_deleted, 2);
    assert_eq!(report.leads_deleted, 1);
    assert_eq!(report.attempts_unlinked, 1);
    assert_eq!(report.recordings_deleted, 1);
    assert_eq!(report.recordings_not_deleted, 0);

    let after = stored_bytes(&db).await;
    for value in PLANTED {
        assert!(
            !contains(&after, value.as_bytes()),
            "{value:?} survived erasure in the {:?} database",
            db.backend()
        );
    }
    assert!(!p.recording.exists(), "the recording file is deleted");
    assert_eq!(std::fs::read_dir(&recordings).unwrap().count(), 0);

    // What is kept: the attempt without its person, and the suppression hash.
    assert!(matches!(
        s.contact(f.account, p.contact).await,
        Err(StoreError::NotFound)
    ));
    let attempt = s.attempt_by_ref(f.account, p.call_ref).await.unwrap();
    assert_eq!(attempt.contact_id, None);
    assert_eq!(attempt.outcome.as_deref(), Some("no_answer"));
    assert_eq!(attempt.campaign_id, Some(f.campaign));
    let entry = s
        .suppression(f.account, PHONE)
        .await
        .unwrap()
        .expect("suppressed");
    assert_eq!(entry.number_e164, None);
    assert_eq!(entry.reason, "erased");
    assert_eq!(entry.number_hash.len(), 64);
    assert!(s
        .recordings_for_contact(f.account, p.contact)
        .await
        .unwrap()
        .is_empty());
    let audit = s.audit_entries(f.account, 10).await.unwrap();
    let erase = audit
        .iter()
        .find(|e| e.action == "contact.erase")
        .expect("erasure audited");
    assert_eq!(
        erase.target.as_deref(),
        Some(&*format!("contact:{}", p.contact))
    );
    assert_eq!(erase.user_id, f.actor.user_id);

    // A later import brings the number back; the importer flags it and no
    // campaign claims it, while a fresh number on the same list is claimed.
    let csv = format!("first_name,phone\nAgain,{PHONE_RAW}\nFresh,07400 100111\n");
    let summary = import_csv(
        s,
        &f.actor,
        f.list,
        std::io::Cursor::new(csv.into_bytes()),
        &ImportOptions::default(),
        t0() + Duration::minutes(10),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.imported, 2, "{summary:?}");
    assert_eq!(summary.suppressed_flagged, 1);
    assert_eq!(summary.suppressed_lines, vec![2]);
    // And one typed in by hand, on a list of its own attached to the campaign.
    let by_hand = s
        .create_contact(f.account, &planted_fields(), t0())
        .await
        .unwrap();
    let late = s.create_list(f.account, "Late", "GB", t0()).await.unwrap();
    s.add_to_list(f.account, late.id, by_hand.id, t0())
        .await
        .unwrap();
    s.attach_list(f.account, f.campaign, late.id, 0)
        .await
        .unwrap();
    assert_eq!(s.sync_leads(f.account, f.campaign, t0()).await.unwrap(), 3);
    for minutes in [15, 60, 60 * 24 * 30] {
        let at = t0() + Duration::minutes(minutes);
        let claimed = claim(s, &f, at).await;
        assert!(
            !claimed.contains(&PHONE.to_owned()),
            "erased number dialled at {at}"
        );
        if minutes == 15 {
            assert_eq!(claimed, vec!["+447400100111".to_owned()]);
        }
    }
    let _ = std::fs::remove_dir_all(&recordings);
    db
}

pub async fn subject_access_holds_everything_about_the_contact(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "access").await;
    let recordings = temp_folder("access");
    let p = plant(s, &f, &recordings).await;
    s.suppress(f.account, PHONE, "asked", "agent", t0())
        .await
        .unwrap();

    let access = s.subject_access(f.account, p.contact).await.unwrap();
    assert_eq!(access.contact.fields, planted_fields());
    assert_eq!(access.contact.values["pet_name"], FIELD_VALUE);
    assert_eq!(access.fields.len(), 1);
    assert_eq!(
        (
            access.fields[0].key.as_str(),
            access.fields[0].label.as_str()
        ),
        ("pet_name", "Pet's name")
    );
    assert_eq!(access.fields[0].value, FIELD_VALUE);
    let names: Vec<&str> = access.lists.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["Main", "Other"]);
    assert_eq!(access.attempts.len(), 1);
    assert_eq!(access.attempts[0].call_ref, p.call_ref);
    assert_eq!(access.interactions.len(), 1);
    assert_eq!(access.interactions[0].notes.as_deref(), Some(NOTES));
    let suppression = access.suppression.as_ref().expect("suppression shown");
    assert_eq!(suppression.reason, "asked");
    assert_eq!(access.recordings.len(), 1);
    assert_eq!(access.recordings[0].path, p.recording.to_str().unwrap());
    let json = serde_json::to_string(&access).unwrap();
    for value in PLANTED {
        assert!(json.contains(value), "{value:?} in the export");
    }

    let other = fixture(s, "other").await;
    assert!(matches!(
        s.subject_access(other.account, p.contact).await,
        Err(StoreError::NotFound)
    ));
    let _ = std::fs::remove_dir_all(&recordings);
    db
}

pub async fn an_earlier_opt_out_keeps_its_reason_but_loses_the_number(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "optout").await;
    let contact = s
        .create_contact(f.account, &planted_fields(), t0())
        .await
        .unwrap();
    s.suppress(f.account, PHONE, "asked", "agent", t0())
        .await
        .unwrap();
    assert_eq!(
        s.suppression(f.account, PHONE)
            .await
            .unwrap()
            .unwrap()
            .number_e164
            .as_deref(),
        Some(PHONE)
    );
    s.erase_contact(f.account, contact.id, &f.actor, t0())
        .await
        .unwrap();
    let entry = s.suppression(f.account, PHONE).await.unwrap().unwrap();
    assert_eq!((entry.reason.as_str(), entry.number_e164), ("asked", None));
    let bytes = stored_bytes(&db).await;
    assert!(!contains(&bytes, PHONE.as_bytes()));
    db
}

pub async fn a_foreign_contact_cannot_be_erased(db: TestDb) -> TestDb {
    let s = &db.store;
    let mine = fixture(s, "mine").await;
    let theirs = fixture(s, "theirs").await;
    let contact = s
        .create_contact(mine.account, &planted_fields(), t0())
        .await
        .unwrap();
    assert!(matches!(
        s.erase_contact(theirs.account, contact.id, &theirs.actor, t0())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(s.contact(mine.account, contact.id).await.is_ok());
    assert!(!s.is_suppressed(theirs.account, PHONE).await.unwrap());
    assert!(!s.is_suppressed(mine.account, PHONE).await.unwrap());
    let audit = s.audit_entries(theirs.account, 10).await.unwrap();
    assert!(audit.iter().all(|e| e.action != "contact.erase"));
    db
}

pub async fn a_removed_field_leaves_no_value_behind(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "field").await;
    let contact = s
        .create_contact(f.account, &planted_fields(), t0())
        .await
        .unwrap();
    plant_field_value(s, &f, contact.id).await;
    // SQLite's search index holds the value folded to lower case as well.
    let folded = FIELD_VALUE.to_lowercase();
    let before = stored_bytes(&db).await;
    assert!(contains(&before, FIELD_VALUE.as_bytes()));
    if db.backend() == TestBackend::Sqlite {
        assert!(contains(&before, folded.as_bytes()));
    }

    let erased = s
        .remove_field(&f.actor, "pet_name", t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(erased, 1);
    let after = stored_bytes(&db).await;
    for value in [FIELD_VALUE, &folded] {
        assert!(
            !contains(&after, value.as_bytes()),
            "{value:?} survived its field in the {:?} database",
            db.backend()
        );
    }
    let kept = s.contact(f.account, contact.id).await.unwrap();
    assert!(kept.values.is_empty());
    assert_eq!(
        kept.fields,
        planted_fields(),
        "the rest of the contact stays"
    );
    let audit = s.audit_entries(f.account, 10).await.unwrap();
    let removal = audit
        .iter()
        .find(|e| e.action == "field.remove")
        .expect("the removal is audited");
    assert_eq!(removal.target.as_deref(), Some("field:pet_name"));
    assert_eq!(removal.detail, None, "the field's name only");
    assert_eq!(removal.user_id, f.actor.user_id);
    db
}
