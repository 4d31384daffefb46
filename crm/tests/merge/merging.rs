//! Merges: what moves and is filled, suppression, and refusals.

use chrono::Duration;
use crm::edit::ContactChange;
use crm::model::*;
use crm::store::merge::{MergeRequest, MergeState};
use crm::store::timeline::TimelineEvent;
use crm::store::SearchScope;
use crm::testing::TestDb;
use crm::StoreError;
use vocab::CallRef;

use crate::fixture::*;

pub async fn a_merge_moves_every_kind_of_history_and_fills_only_empty_fields(db: TestDb) -> TestDb {
    let s = &db.store;
    let h = history(s, "acme").await;
    let (a, k, m) = (h.account, h.k.id, h.m.id);
    let k_lead = s
        .lead_for_contact(a, h.campaigns[0], k)
        .await
        .expect("lead");
    let m_leads = [
        s.lead_for_contact(a, h.campaigns[0], m)
            .await
            .expect("lead"),
        s.lead_for_contact(a, h.campaigns[1], m)
            .await
            .expect("lead"),
    ];
    let before = held(s, &h, m).await;
    assert_eq!((before.recordings, before.deliveries), (1, 1), "planted");

    let merged = s
        .merge_contacts(
            &actor(a),
            &MergeRequest {
                keep: k,
                merge: m,
                version_keep: h.k.version,
                version_merge: h.m.version,
            },
            t0() + Duration::minutes(5),
        )
        .await
        .expect("merged");
    assert_eq!(
        merged.undo_until,
        t0() + Duration::minutes(5) + Duration::hours(24)
    );
    assert_eq!(
        merged.filled,
        [
            "last_name",
            "email",
            "postal_address",
            "profession",
            "custom_fields",
            "field.tier",
            "other_numbers"
        ]
    );
    let moved = merged.moved;
    assert_eq!(
        (
            moved.call_attempts,
            moved.interactions,
            moved.recordings,
            moved.webhook_deliveries,
            moved.leads,
            moved.list_memberships,
            moved.leads_set_aside,
            moved.list_memberships_set_aside,
            moved.other_numbers
        ),
        (1, 1, 1, 1, 2, 1, 1, 1, 1)
    );

    // The kept contact: its values stay, its empty fields are filled.
    let kept = s.contact(a, k).await.expect("kept");
    assert_eq!(kept.version, h.k.version + 1);
    assert_eq!(kept.fields.first_name, "Ada", "never overwritten");
    assert_eq!(kept.fields.last_name, "Lovelace");
    assert_eq!(kept.fields.email.as_deref(), Some("ada@example.org"));
    assert_eq!(kept.fields.profession.as_deref(), Some("Mathematician"));
    assert_eq!(
        kept.fields.phone_e164, "+447400300001",
        "the number dialled"
    );
    assert_eq!(
        kept.other_numbers
            .iter()
            .map(|n| (n.phone_e164.as_str(), n.phone_raw.as_str(), n.added_at))
            .collect::<Vec<_>>(),
        [(
            "+447400300002",
            h.m.fields.phone_raw.as_str(),
            t0() + Duration::minutes(5)
        )],
        "the merged contact's number is kept beside it"
    );
    assert_eq!(
        kept.fields.custom_fields,
        serde_json::json!({ "plan": "gold", "source": "fair" })
    );
    assert_eq!(kept.values["region"], "south");
    assert_eq!(kept.values["tier"], "silver");
    assert_eq!(merged.contact, kept);

    // Every kind of history is the kept contact's now.
    let now_k = held(s, &h, k).await;
    assert!(now_k.attempts.contains(&h.m_attempt) && now_k.attempts.contains(&h.k_attempt));
    assert_eq!(now_k.interactions, [h.m_interaction]);
    assert_eq!((now_k.recordings, now_k.deliveries), (1, 2));
    assert_eq!(now_k.lists, h.lists);
    assert_eq!(
        now_k.leads.iter().map(|l| l.id).collect::<Vec<_>>(),
        [m_leads[0].id, m_leads[1].id],
        "the lead with a callback won over the kept contact's own"
    );
    assert!(matches!(
        s.lead(a, k_lead.id).await,
        Err(StoreError::NotFound)
    ));
    let now_m = held(s, &h, m).await;
    assert_eq!(now_m.merged_into, Some(k));
    assert!(now_m.attempts.is_empty() && now_m.interactions.is_empty());
    assert!(now_m.lists.is_empty() && now_m.leads.is_empty());
    assert_eq!((now_m.recordings, now_m.deliveries), (0, 0));
    assert_eq!(
        s.contact(a, m).await.expect("kept for the undo").version,
        h.m.version + 1
    );

    // The merged contact is found no more, by number or by search.
    assert!(s
        .contacts_by_number(a, "+447400300002")
        .await
        .expect("q")
        .is_empty());
    let q = crm::search::ContactQuery::parse(
        "",
        crm::search::Field::Any,
        &[],
        crm::search::Sort::Created,
        None,
        None,
    )
    .expect("query");
    let all = s
        .search_contacts(a, SearchScope::Account, &q)
        .await
        .expect("search");
    assert_eq!(all.contacts.iter().map(|c| c.id).collect::<Vec<_>>(), [k]);
    // Its number finds the kept contact, which has it as another number.
    let q = crm::search::ContactQuery::parse(
        "07400 300002",
        crm::search::Field::Any,
        &[phonenumber::country::Id::GB],
        crm::search::Sort::Name,
        None,
        None,
    )
    .expect("query");
    let by_number = s
        .search_contacts(a, SearchScope::Account, &q)
        .await
        .expect("search");
    assert_eq!(
        by_number.contacts.iter().map(|c| c.id).collect::<Vec<_>>(),
        [k]
    );
    // Nor may it be edited while the merge stands.
    assert!(matches!(
        s.edit_contact(
            &actor(a),
            m,
            h.m.version + 1,
            &ContactChange {
                last_name: Some("Byron".into()),
                ..ContactChange::default()
            },
            t0()
        )
        .await,
        Err(StoreError::Refused(_))
    ));

    // The timeline tells both stories: the call, the notes, the callback,
    // the merged contact's edit and the merge itself.
    let story = s
        .contact_timeline(a, k, SearchScope::Account, 100)
        .await
        .expect("timeline");
    let has = |f: &dyn Fn(&TimelineEvent) -> bool| story.iter().any(|e| f(&e.event));
    assert!(has(
        &|e| matches!(e, TimelineEvent::Call { attempt_id, .. } if *attempt_id == h.m_attempt)
    ));
    assert!(has(
        &|e| matches!(e, TimelineEvent::Interaction { interaction_id, .. } if *interaction_id == h.m_interaction)
    ));
    assert!(has(
        &|e| matches!(e, TimelineEvent::Callback { lead_id, .. } if *lead_id == m_leads[0].id)
    ));
    assert!(has(
        &|e| matches!(e, TimelineEvent::Edit { action, fields, .. }
        if action == "contact.edit" && fields == &["profession".to_owned()])
    ));
    assert!(has(
        &|e| matches!(e, TimelineEvent::Edit { action, fields, .. }
        if action == "contact.merge" && fields.contains(&"field.tier".to_owned()))
    ));

    // Audited with the two ids and field names, never values.
    let log = s.audit_entries(a, 20).await.expect("audit");
    let entry = log
        .iter()
        .find(|e| e.action == "contact.merge")
        .expect("audited");
    assert_eq!(
        entry.target.as_deref(),
        Some(format!("contact:{k}").as_str())
    );
    let detail = entry.detail.as_deref().expect("detail");
    assert_eq!(
        detail,
        format!(
            "merged=contact:{m} merge={} fields=last_name,email,postal_address,profession,\
             custom_fields,field.tier,other_numbers",
            merged.merge_id
        )
    );
    for value in [
        "Lovelace",
        "ada@example.org",
        "SW1Y",
        "Mathematician",
        "fair",
        "silver",
        "300002",
    ] {
        assert!(!detail.contains(value), "{value} in {detail}");
    }
    let records = s.merges(a, Some(m), 10).await.expect("merges");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].merge_id, merged.merge_id);
    assert_eq!((records[0].kept_id, records[0].merged_id), (k, m));
    assert_eq!(records[0].state, MergeState::Open);

    // The person calls in from the merged contact's number: the call is
    // the kept contact's, not a new contact's.
    let queue = s
        .create_queue(
            a,
            "Inbound",
            &crm::store::queues::QueueSettings::new(h.campaigns[1]),
            &["+441632960555".to_owned()],
            t0(),
        )
        .await
        .expect("queue");
    let arrived = s
        .inbound_call_arrived(
            &queue,
            Some("+447400300002"),
            CallRef::random(),
            &crm::store::nodes::Holder::from("n1"),
            t0() + Duration::minutes(10),
        )
        .await
        .expect("arrived");
    assert_eq!((arrived.contact_id, arrived.known), (Some(k), true));
    db
}

pub async fn suppression_becomes_the_union_and_undo_takes_back_only_its_own(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    let number = |i: u32| format!("+4474004000{i:02}");
    let contact = |i: u32| {
        let body = serde_json::json!({ "first_name": format!("P{i}"), "phone": number(i) });
        async move { add(s, a, body).await.id }
    };
    // The kept contact's number is suppressed: the merged one's becomes so.
    let (k1, m1) = (contact(1).await, contact(2).await);
    s.suppress(a, &number(1), "asked", "agent", t0())
        .await
        .expect("dnc");
    let id = merge(s, a, k1, m1).await;
    assert!(s.is_suppressed(a, &number(2)).await.expect("q"));
    let entry = s
        .suppression(a, &number(2))
        .await
        .expect("q")
        .expect("entry");
    assert_eq!((entry.source.as_str(), entry.number_e164), ("merge", None));
    s.undo_merge(&actor(a), id, t0() + Duration::hours(1))
        .await
        .expect("undone");
    assert!(!s.is_suppressed(a, &number(2)).await.expect("q"));
    assert!(
        s.is_suppressed(a, &number(1)).await.expect("q"),
        "its own stays"
    );

    // The merged contact's number is suppressed: the kept one's becomes so,
    // and the merged one's stays suppressed as it was.
    let (k2, m2) = (contact(3).await, contact(4).await);
    s.suppress(a, &number(4), "asked", "agent", t0())
        .await
        .expect("dnc");
    let id = merge(s, a, k2, m2).await;
    assert!(s.is_suppressed(a, &number(3)).await.expect("q"));
    assert!(s.is_suppressed(a, &number(4)).await.expect("q"));
    s.undo_merge(&actor(a), id, t0() + Duration::hours(1))
        .await
        .expect("undone");
    assert!(!s.is_suppressed(a, &number(3)).await.expect("q"));
    let entry = s
        .suppression(a, &number(4))
        .await
        .expect("q")
        .expect("kept");
    assert_eq!(
        (entry.source.as_str(), entry.reason.as_str()),
        ("agent", "asked")
    );

    // Neither suppressed: neither becomes so. Both: nothing to add.
    let (k3, m3) = (contact(5).await, contact(6).await);
    let merged = s
        .merge_contacts(
            &actor(a),
            &MergeRequest {
                keep: k3,
                merge: m3,
                version_keep: 1,
                version_merge: 1,
            },
            t0(),
        )
        .await
        .expect("merged");
    assert!(!merged.suppressed);
    assert!(!s.is_suppressed(a, &number(5)).await.expect("q"));
    assert!(!s.is_suppressed(a, &number(6)).await.expect("q"));
    db
}

pub async fn merges_are_refused_across_accounts_in_calls_and_on_stale_versions(
    db: TestDb,
) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    let b = s.create_account("b", 1, t0()).await.expect("account").id;
    let one = add(
        s,
        a,
        serde_json::json!({ "first_name": "One", "phone": "+447400500001" }),
    )
    .await;
    let two = add(
        s,
        a,
        serde_json::json!({ "first_name": "Two", "phone": "+447400500002" }),
    )
    .await;
    let three = add(
        s,
        a,
        serde_json::json!({ "first_name": "Three", "phone": "+447400500003" }),
    )
    .await;
    let foreign = add(
        s,
        b,
        serde_json::json!({ "first_name": "Other", "phone": "+447400500009" }),
    )
    .await;
    let req = |keep: &Contact, merge: &Contact| MergeRequest {
        keep: keep.id,
        merge: merge.id,
        version_keep: keep.version,
        version_merge: merge.version,
    };
    let try_merge = |r: MergeRequest| async move {
        s.merge_contacts(&actor(a), &r, t0())
            .await
            .map(|m| m.merge_id)
    };
    assert!(matches!(
        try_merge(req(&one, &one)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        try_merge(req(&one, &foreign)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        try_merge(req(&foreign, &one)).await,
        Err(StoreError::NotFound)
    ));
    let mut stale = req(&one, &two);
    stale.version_merge = 7;
    match try_merge(stale).await {
        Err(StoreError::Stale(m)) => assert!(m.contains("version 1"), "{m}"),
        other => panic!("expected a stale version, got {other:?}"),
    }

    // A contact in a call is not merged; once it ends, it is.
    let call = s
        .create_attempt(a, CallRef::random(), None, Some(two.id), t0())
        .await
        .expect("attempt");
    assert!(matches!(
        try_merge(req(&one, &two)).await,
        Err(StoreError::Refused(_))
    ));
    s.mark_ended(a, call.id, "answered", t0())
        .await
        .expect("ended");
    let id = try_merge(req(&one, &two)).await.expect("merged");

    // A merged contact is not merged again, nor is a contact another was
    // merged into while that merge can be undone; merging into it is fine.
    let two = s.contact(a, two.id).await.expect("two");
    let one = s.contact(a, one.id).await.expect("one");
    assert!(matches!(
        try_merge(req(&three, &two)).await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        try_merge(req(&three, &one)).await,
        Err(StoreError::Refused(_))
    ));
    let three_into_one = try_merge(req(&one, &three))
        .await
        .expect("merged into the kept one");

    // Nothing was written by the refusals: one took two merges, no more.
    assert_eq!(s.merges(a, Some(one.id), 10).await.expect("q").len(), 2);
    // Another account's merge is not there; a day later, none can be undone.
    assert!(matches!(
        s.undo_merge(&actor(b), id, t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.undo_merge(&actor(a), three_into_one, t0() + Duration::hours(24))
            .await,
        Err(StoreError::Refused(_))
    ));
    s.undo_merge(&actor(a), three_into_one, t0() + Duration::hours(23))
        .await
        .expect("within the day");
    db
}

pub async fn of_two_merges_at_once_one_wins_and_the_other_is_refused(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    let req = |keep: &Contact, merge: &Contact| MergeRequest {
        keep: keep.id,
        merge: merge.id,
        version_keep: keep.version,
        version_merge: merge.version,
    };
    for round in 0..5 {
        let phone = |i: u32| format!("+4474009{round:02}{i:03}");
        let mut fresh = Vec::new();
        for i in 0..5 {
            fresh.push(
                add(
                    s,
                    a,
                    serde_json::json!({ "first_name": "P", "phone": phone(i) }),
                )
                .await,
            );
        }
        // One contact merged into two others at once; two contacts merged
        // into each other at once.
        let pairs = [
            (req(&fresh[0], &fresh[1]), req(&fresh[2], &fresh[1])),
            (req(&fresh[3], &fresh[4]), req(&fresh[4], &fresh[3])),
        ];
        for (first, second) in pairs {
            let actor = actor(a);
            let (x, y) = tokio::join!(
                s.merge_contacts(&actor, &first, t0()),
                s.merge_contacts(&actor, &second, t0())
            );
            let won = usize::from(x.is_ok()) + usize::from(y.is_ok());
            assert_eq!(won, 1, "round {round}: {x:?} / {y:?}");
            for lost in [x, y].into_iter().filter_map(Result::err) {
                assert!(
                    matches!(lost, StoreError::Refused(_) | StoreError::Stale(_)),
                    "round {round}: {lost:?}"
                );
            }
        }
    }
    db
}

pub async fn a_merge_is_told_to_endpoints_by_ids_and_an_undo_keeps_the_delivery(
    db: TestDb,
) -> TestDb {
    let s = &db.store;
    let h = history(s, "acme").await;
    let (a, k, m) = (h.account, h.k.id, h.m.id);
    let (told, _) = s
        .create_webhook(
            a,
            &crm::store::webhooks::NewEndpoint {
                url: "https://hooks.example.com/merges".into(),
                events: vec![crm::webhooks::WebhookEvent::ContactMerged],
                active: true,
                ..Default::default()
            },
            t0(),
        )
        .await
        .expect("webhook");
    let id = merge(s, a, k, m).await;
    let log = s
        .webhook_deliveries(a, told.id, 10, None)
        .await
        .expect("log");
    assert_eq!(log.len(), 1, "{log:?}");
    let d = &log[0];
    assert_eq!(d.event, crm::webhooks::WebhookEvent::ContactMerged);
    assert_eq!(
        d.contact_id,
        Some(k),
        "the kept contact is the one concerned"
    );
    assert_eq!(
        d.data,
        serde_json::json!({ "merge_id": id, "merged_contact_id": m, "merged_at": t0() })
    );
    assert_eq!(
        s.webhook_deliveries(a, h.webhook, 10, None)
            .await
            .expect("log")
            .iter()
            .filter(|d| d.event == crm::webhooks::WebhookEvent::ContactMerged)
            .count(),
        0,
        "an endpoint that did not take the event is not told"
    );

    // Undone, the merge stays told (receivers learn of the undo from the
    // contacts), and nothing more is queued.
    s.undo_merge(&actor(a), id, t0() + Duration::hours(1))
        .await
        .expect("undone");
    let log = s
        .webhook_deliveries(a, told.id, 10, None)
        .await
        .expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].contact_id, Some(k));

    // Erased, the kept contact is no longer named, as with any delivery.
    s.erase_contact(a, k, &actor(a), t0() + Duration::hours(2))
        .await
        .expect("erased");
    let log = s
        .webhook_deliveries(a, told.id, 10, None)
        .await
        .expect("log");
    assert_eq!(log[0].contact_id, None);
    db
}
