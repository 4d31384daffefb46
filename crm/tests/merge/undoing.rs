//! Merges undone within their day, made final after it, and erased.

use chrono::Duration;
use crm::edit::ContactChange;
use crm::model::*;
use crm::store::merge::MergeState;
use crm::store::timeline::TimelineEvent;
use crm::store::SearchScope;
use crm::testing::TestDb;
use crm::StoreError;

use crate::fixture::*;

pub async fn an_undo_puts_both_contacts_back_as_they_were(db: TestDb) -> TestDb {
    let s = &db.store;
    let h = history(s, "acme").await;
    let (a, k, m) = (h.account, h.k.id, h.m.id);
    let (k_before, m_before) = (held(s, &h, k).await, held(s, &h, m).await);
    let id = merge(s, a, k, m).await;
    // A field filled by the merge and changed since keeps its new value.
    let now_k = s.contact(a, k).await.expect("kept");
    s.edit_contact(
        &actor(a),
        k,
        now_k.version,
        &ContactChange {
            email: Some(Some("countess@example.org".into())),
            ..ContactChange::default()
        },
        t0(),
    )
    .await
    .expect("edited");

    let undone = s
        .undo_merge(&actor(a), id, t0() + Duration::hours(23))
        .await
        .expect("undone");
    assert_eq!(
        undone.cleared,
        [
            "last_name",
            "postal_address",
            "profession",
            "custom_fields",
            "field.tier",
            "other_numbers"
        ],
        "the email changed since the merge, so it stays"
    );
    let mut k_after = held(s, &h, k).await;
    assert_eq!(
        k_after.fields.email.as_deref(),
        Some("countess@example.org")
    );
    k_after.fields.email = None;
    assert_eq!(k_after, k_before);
    assert_eq!(held(s, &h, m).await, m_before);
    assert_eq!(undone.restored.version, h.m.version + 2);
    assert_eq!(undone.contact.version, h.k.version + 3);
    assert_eq!(
        s.contacts_by_number(a, "+447400300002")
            .await
            .expect("q")
            .len(),
        1,
        "found again"
    );
    let records = s.merges(a, Some(k), 10).await.expect("merges");
    assert_eq!(records[0].state, MergeState::Undone);
    assert_eq!(records[0].closed_at, Some(t0() + Duration::hours(23)));

    // Once undone, it cannot be undone again; the timeline shows both.
    assert!(matches!(
        s.undo_merge(&actor(a), id, t0() + Duration::hours(23))
            .await,
        Err(StoreError::Refused(_))
    ));
    let story = s
        .contact_timeline(a, k, SearchScope::Account, 100)
        .await
        .expect("timeline");
    let actions: Vec<&str> = story
        .iter()
        .filter_map(|e| match &e.event {
            TimelineEvent::Edit { action, .. } => Some(action.as_str()),
            _ => None,
        })
        .collect();
    assert!(actions.contains(&"contact.merge_undo") && actions.contains(&"contact.merge"));
    assert!(
        !story.iter().any(
            |e| matches!(&e.event, TimelineEvent::Edit { fields, action, .. }
            if action == "contact.edit" && fields == &["profession".to_owned()])
        ),
        "the merged contact's own edits are its own again"
    );
    let log = s.audit_entries(a, 20).await.expect("audit");
    let entry = log
        .iter()
        .find(|e| e.action == "contact.merge_undo")
        .expect("audited");
    assert_eq!(
        entry.detail.as_deref(),
        Some(
            format!(
                "merged=contact:{m} merge={id} \
                 fields=last_name,postal_address,profession,custom_fields,field.tier,\
                 other_numbers"
            )
            .as_str()
        )
    );
    // Merged again, they can be undone again.
    let again = merge(s, a, k, m).await;
    assert_ne!(again, id);
    s.undo_merge(&actor(a), again, t0() + Duration::hours(1))
        .await
        .expect("undone again");
    db
}

pub async fn erasing_either_contact_clears_what_the_merge_could_undo(db: TestDb) -> TestDb {
    let s = &db.store;
    let h = history(s, "acme").await;
    let (a, k, m) = (h.account, h.k.id, h.m.id);
    let id = merge(s, a, k, m).await;
    // What the merge keeps for its undo names rows and fields, no values.
    let undo: Option<String> = match (s.sqlite_pool(), s.postgres_pool()) {
        (Some(p), _) => sqlx::query_scalar("SELECT undo FROM contact_merges WHERE id = $1")
            .bind(id.0)
            .fetch_one(p)
            .await
            .expect("q"),
        (_, Some(p)) => sqlx::query_scalar("SELECT undo::TEXT FROM contact_merges WHERE id = $1")
            .bind(id.0)
            .fetch_one(p)
            .await
            .expect("q"),
        _ => unreachable!("one backend or the other"),
    };
    let undo = undo.expect("undo data while open");
    assert!(undo.contains("last_name"), "{undo}");
    for value in [
        "Lovelace",
        "ada@example.org",
        "SW1Y",
        "fair",
        "silver",
        "Friday",
        "300002",
    ] {
        assert!(!undo.contains(value), "{value} in {undo}");
    }

    // Erasing the kept contact erases the one merged into it, with the
    // record of the merge.
    let report = s
        .erase_contact(a, k, &actor(a), t0() + Duration::hours(1))
        .await
        .expect("erased");
    assert_eq!(report.merged_erased, [m]);
    assert_eq!(report.interactions_deleted, 1);
    for id in [k, m] {
        assert!(matches!(s.contact(a, id).await, Err(StoreError::NotFound)));
        assert!(s.merges(a, Some(id), 10).await.expect("q").is_empty());
    }
    assert!(s.is_suppressed(a, "+447400300002").await.expect("q"));
    assert!(matches!(
        s.undo_merge(&actor(a), id, t0() + Duration::hours(1)).await,
        Err(StoreError::NotFound)
    ));
    let erased: Vec<String> = s
        .audit_entries(a, 50)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "contact.erase")
        .filter_map(|e| e.target)
        .collect();
    assert_eq!(erased.len(), 2, "{erased:?}");

    // Erasing the merged contact within the day: the merge stays, for good.
    let k2 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Kept", "phone": "+447400300011" }),
    )
    .await;
    let m2 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Gone", "phone": "+447400300012",
        "email": "gone@example.org" }),
    )
    .await;
    let id2 = merge(s, a, k2.id, m2.id).await;
    let report = s
        .erase_contact(a, m2.id, &actor(a), t0() + Duration::hours(2))
        .await
        .expect("erased");
    assert!(report.merged_erased.is_empty());
    assert!(s.merges(a, Some(k2.id), 10).await.expect("q").is_empty());
    assert!(matches!(
        s.undo_merge(&actor(a), id2, t0() + Duration::hours(2))
            .await,
        Err(StoreError::NotFound)
    ));
    let kept = s.contact(a, k2.id).await.expect("the kept contact stays");
    assert_eq!(kept.fields.email.as_deref(), Some("gone@example.org"));
    assert_eq!(
        s.finalise_merges(t0() + Duration::days(2))
            .await
            .expect("final"),
        0
    );
    db
}

pub async fn a_merge_becomes_final_after_a_day(db: TestDb) -> TestDb {
    let s = &db.store;
    let h = history(s, "acme").await;
    let (a, k, m) = (h.account, h.k.id, h.m.id);
    let id = merge(s, a, k, m).await;
    assert_eq!(
        s.finalise_merges(t0() + Duration::hours(23))
            .await
            .expect("run"),
        0,
        "not within its day"
    );
    // Something reached the merged contact since (a wrap-up saved late).
    let late = s
        .record_interaction(
            a,
            &NewInteraction {
                contact_id: m,
                user_id: None,
                attempt_id: None,
                kind: "note".into(),
                disposition: None,
                notes: Some("late note".into()),
            },
            t0() + Duration::hours(1),
        )
        .await
        .expect("interaction");

    let later = t0() + Duration::hours(25);
    assert_eq!(s.finalise_merges(later).await.expect("run"), 1);
    assert_eq!(s.finalise_merges(later).await.expect("run"), 0, "once");
    assert!(matches!(s.contact(a, m).await, Err(StoreError::NotFound)));
    let kept = held(s, &h, k).await;
    assert!(
        kept.interactions.contains(&late.id),
        "moved before deleting"
    );
    assert!(kept.interactions.contains(&h.m_interaction));
    assert_eq!(kept.lists, h.lists);
    let records = s.merges(a, Some(k), 10).await.expect("merges");
    assert_eq!(records[0].state, MergeState::Final);
    assert!(matches!(
        s.undo_merge(&actor(a), id, later).await,
        Err(StoreError::Refused(_))
    ));
    // The merged contact's number stays suppressed as it was, its edits
    // stay in the kept contact's story, and the deletion is audited.
    let story = s
        .contact_timeline(a, k, SearchScope::Account, 100)
        .await
        .expect("timeline");
    assert!(story.iter().any(
        |e| matches!(&e.event, TimelineEvent::Edit { action, fields, .. }
        if action == "contact.edit" && fields == &["profession".to_owned()])
    ));
    let log = s.audit_entries(a, 20).await.expect("audit");
    let entry = log
        .iter()
        .find(|e| e.action == "contact.merge_final")
        .expect("audited");
    assert_eq!(
        entry.detail.as_deref(),
        Some(format!("merged=contact:{m} merge={id}").as_str())
    );
    db
}
