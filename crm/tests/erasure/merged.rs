//! Erasure of a contact that another was merged into within the day a
//! merge can be undone: nothing of either survives, undo data included.

use chrono::Duration;
use crm::model::ContactFields;
use crm::store::merge::MergeRequest;
use crm::testing::TestDb;
use crm::StoreError;

use crate::fixture::*;

pub async fn a_merged_contact_is_erased_with_the_one_it_was_merged_into(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "merged").await;
    let recordings = temp_folder("merged-recordings");
    let p = plant(s, &f, &recordings).await;
    // The kept record of the same person lacks what the planted one holds,
    // so the merge copies the planted values onto it.
    let kept = s
        .create_contact(
            f.account,
            &ContactFields {
                phone_e164: "+447400100111".into(),
                phone_raw: "07400 100111".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let planted = s.contact(f.account, p.contact).await.unwrap();
    let merged = s
        .merge_contacts(
            &f.actor,
            &MergeRequest {
                keep: kept.id,
                merge: p.contact,
                version_keep: kept.version,
                version_merge: planted.version,
            },
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(merged.contact.fields.email.as_deref(), Some(PLANTED[4]));

    // The search below must be able to fail: every value is there now,
    // twice over, and the merge can be undone.
    let before = stored_bytes(&db).await;
    for value in PLANTED {
        assert!(contains(&before, value.as_bytes()), "{value:?} planted");
    }
    assert_eq!(
        s.merges(f.account, Some(kept.id), 10).await.unwrap().len(),
        1
    );

    let report = s
        .erase_contact(f.account, kept.id, &f.actor, t0() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(report.merged_erased, [p.contact]);
    assert_eq!(report.recordings_deleted, 1);

    let after = stored_bytes(&db).await;
    for value in PLANTED {
        assert!(
            !contains(&after, value.as_bytes()),
            "{value:?} survived the erasure of the contact it was merged into, in the {:?} \
             database",
            db.backend()
        );
    }
    for id in [kept.id, p.contact] {
        assert!(matches!(
            s.contact(f.account, id).await,
            Err(StoreError::NotFound)
        ));
        assert!(s.merges(f.account, Some(id), 10).await.unwrap().is_empty());
    }
    assert!(matches!(
        s.undo_merge(&f.actor, merged.merge_id, t0() + Duration::minutes(6))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(s.is_suppressed(f.account, PHONE).await.unwrap());
    assert_eq!(
        claim(s, &f, t0() + Duration::minutes(10)).await,
        Vec::<String>::new()
    );
    db
}
