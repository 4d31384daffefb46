//! Duplicate contacts found and merged, a merge undone within its day or
//! made final after it, and erasure during that day, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::duplicates::DuplicateReason;
use crm::edit::{ContactChange, NewContact};
use crm::fields::{FieldKind, NewField};
use crm::model::*;
use crm::store::duplicates::DuplicatePair;
use crm::store::erasure::NewRecording;
use crm::store::leads::Lead;
use crm::store::merge::{MergeId, MergeRequest, MergeState};
use crm::store::timeline::TimelineEvent;
use crm::store::SearchScope;
use crm::testing::TestDb;
use crm::webhooks::WebhookEvent;
use crm::{Store, StoreError};
use vocab::CallRef;

crm::on_both_backends!(
    duplicates_are_found_by_email_number_and_name_at_a_postcode,
    the_account_pages_list_each_pair_once,
    a_merge_moves_every_kind_of_history_and_fills_only_empty_fields,
    suppression_becomes_the_union_and_undo_takes_back_only_its_own,
    an_undo_puts_both_contacts_back_as_they_were,
    merges_are_refused_across_accounts_in_calls_and_on_stale_versions,
    of_two_merges_at_once_one_wins_and_the_other_is_refused,
    erasing_either_contact_clears_what_the_merge_could_undo,
    a_merge_becomes_final_after_a_day,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn actor(account: AccountId) -> Actor {
    Actor {
        account_id: Some(account),
        ..Actor::default()
    }
}

async fn add(s: &Store, account: AccountId, body: serde_json::Value) -> Contact {
    let new: NewContact = serde_json::from_value(body).expect("a valid new contact");
    s.add_contact(&actor(account), &new, t0())
        .await
        .expect("created")
        .contact
}

async fn define(s: &Store, account: AccountId, key: &str) {
    s.define_field(
        &actor(account),
        &NewField {
            key: key.into(),
            kind: Some(FieldKind::Text),
            ..NewField::default()
        },
        t0(),
    )
    .await
    .expect("field");
}

async fn merge(s: &Store, account: AccountId, keep: ContactId, merge: ContactId) -> MergeId {
    let k = s.contact(account, keep).await.expect("kept");
    let m = s.contact(account, merge).await.expect("merged");
    s.merge_contacts(
        &actor(account),
        &MergeRequest {
            keep,
            merge,
            version_keep: k.version,
            version_merge: m.version,
        },
        t0(),
    )
    .await
    .expect("merged")
    .merge_id
}

fn reasons_of(found: &[crm::store::duplicates::Duplicate], id: ContactId) -> Vec<DuplicateReason> {
    found
        .iter()
        .find(|d| d.contact.id == id)
        .map(|d| d.reasons.clone())
        .unwrap_or_default()
}

async fn duplicates_are_found_by_email_number_and_name_at_a_postcode(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    let b = s.create_account("b", 1, t0()).await.expect("account").id;
    define(s, a, "second_phone").await;
    let ada = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Ada", "last_name": "Lovelace", "phone": "+447400100001",
            "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
            "custom_fields": { "work_phone": "07400 100099" }
        }),
    )
    .await;
    let typo = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400100002",
            "postal_address": "Flat 2, 12 St James's Square, London SW1Y 4JH"
        }),
    )
    .await;
    let reordered = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Lovelace", "last_name": "Ada", "phone": "+447400100003",
            "postal_address": "SW1Y 4JH"
        }),
    )
    .await;
    let mail = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Augusta", "last_name": "King", "phone": "+447400100004",
            "email": "ADA@Example.org"
        }),
    )
    .await;
    let holder = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Charles", "last_name": "Babbage", "phone": "+447400100005",
            "fields": { "second_phone": "07400 100001" }
        }),
    )
    .await;
    let work = add(
        s,
        a,
        serde_json::json!({
            "first_name": "A.", "last_name": "King", "phone": "+447400100099"
        }),
    )
    .await;
    // Same postcode, other person; and the same email in another account.
    let neighbour = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Mary", "last_name": "Somerville", "phone": "+447400100006",
            "postal_address": "14 St James's Sq, London SW1Y 4JH"
        }),
    )
    .await;
    add(
        s,
        b,
        serde_json::json!({
            "first_name": "Ada", "last_name": "Lovelace", "phone": "+447400100001",
            "email": "ada@example.org", "postal_address": "SW1Y 4JH"
        }),
    )
    .await;

    let found = s.duplicates_of(a, ada.id).await.expect("duplicates");
    let ids: Vec<ContactId> = found.iter().map(|d| d.contact.id).collect();
    assert_eq!(
        ids,
        [typo.id, reordered.id, mail.id, holder.id, work.id],
        "{found:#?}"
    );
    assert_eq!(
        reasons_of(&found, typo.id),
        [DuplicateReason::SimilarNamePostcode]
    );
    assert_eq!(
        reasons_of(&found, reordered.id),
        [DuplicateReason::SimilarNamePostcode]
    );
    assert_eq!(reasons_of(&found, mail.id), [DuplicateReason::SameEmail]);
    assert_eq!(reasons_of(&found, holder.id), [DuplicateReason::SameNumber]);
    assert_eq!(reasons_of(&found, work.id), [DuplicateReason::SameNumber]);
    assert!(!ids.contains(&neighbour.id));

    // From the other side too: the holder wrote Ada's number in a field.
    let theirs = s.duplicates_of(a, holder.id).await.expect("duplicates");
    assert_eq!(reasons_of(&theirs, ada.id), [DuplicateReason::SameNumber]);

    // A contact merged away is no one's duplicate, and has none.
    merge(s, a, ada.id, typo.id).await;
    let found = s.duplicates_of(a, ada.id).await.expect("duplicates");
    assert!(found.iter().all(|d| d.contact.id != typo.id), "{found:#?}");
    assert!(s.duplicates_of(a, typo.id).await.expect("none").is_empty());
    assert!(matches!(
        s.duplicates_of(b, ada.id).await,
        Err(StoreError::NotFound)
    ));
    db
}

async fn the_account_pages_list_each_pair_once(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    define(s, a, "other_phone").await;
    // 1 and 4 share an email; 2 wrote 5's number in a field and 5 wrote
    // 2's in its custom fields; 3 and 6 are one name at one postcode; 8
    // wrote 7's number in its custom fields.
    let c1 = add(
        s,
        a,
        serde_json::json!({ "first_name": "One", "phone": "+447400200001",
        "email": "one@example.org" }),
    )
    .await;
    let c2 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Two", "phone": "+447400200002",
        "fields": { "other_phone": "+44 7400 200005" } }),
    )
    .await;
    let c3 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Grace", "last_name": "Hopper",
        "phone": "+447400200003", "postal_address": "1 Navy Way, York YO1 7HH" }),
    )
    .await;
    let c4 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Four", "phone": "+447400200004",
        "email": "One@Example.org" }),
    )
    .await;
    let c5 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Five", "phone": "+447400200005",
        "custom_fields": { "old": "07400 200002" } }),
    )
    .await;
    let c6 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Hopper", "last_name": "Grace",
        "phone": "+447400200006", "postal_address": "YO1 7HH" }),
    )
    .await;
    let c7 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Seven", "phone": "+447400200007" }),
    )
    .await;
    // Only the later contact holds the earlier one's number, in its custom
    // fields, which no index reads: its own page lists the pair.
    let c8 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Eight", "phone": "+447400200008",
            "custom_fields": { "landline": "+44 7400 200007" } }),
    )
    .await;

    let mut pairs: Vec<(ContactId, ContactId, Vec<DuplicateReason>)> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = s.duplicate_pairs(a, after, 2).await.expect("page");
        pages += 1;
        assert!(page.scanned <= 2);
        pairs.extend(
            page.pairs
                .into_iter()
                .map(|DuplicatePair { a, b, reasons }| (a.id, b.id, reasons)),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "the cursor moves on");
    }
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (c1.id, c4.id, vec![DuplicateReason::SameEmail]),
            (c2.id, c5.id, vec![DuplicateReason::SameNumber]),
            (c3.id, c6.id, vec![DuplicateReason::SimilarNamePostcode]),
            (c7.id, c8.id, vec![DuplicateReason::SameNumber]),
        ]
    );
    assert!(matches!(
        s.duplicate_pairs(a, None, 0).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.duplicate_pairs(a, None, 501).await,
        Err(StoreError::Invalid(_))
    ));
    db
}

/// Two records of one person with every kind of history, the merged one
/// (`m`) holding what the kept one (`k`) lacks.
struct History {
    account: AccountId,
    k: Contact,
    m: Contact,
    lists: [ListId; 2],
    campaigns: [CampaignId; 2],
    webhook: WebhookId,
    m_attempt: AttemptId,
    m_interaction: InteractionId,
    k_attempt: AttemptId,
}

async fn history(s: &Store, name: &str) -> History {
    let account = s.create_account(name, 1, t0()).await.expect("account").id;
    define(s, account, "tier").await;
    define(s, account, "region").await;
    let l1 = s
        .create_list(account, "L1", "GB", t0())
        .await
        .expect("list")
        .id;
    let l2 = s
        .create_list(account, "L2", "GB", t0())
        .await
        .expect("list")
        .id;
    let c1 = s
        .create_campaign(account, "C1", "+441632960000", t0())
        .await
        .expect("campaign")
        .id;
    let c2 = s
        .create_campaign(account, "C2", "+441632960000", t0())
        .await
        .expect("campaign")
        .id;
    s.attach_list(account, c1, l1, 0).await.expect("attach");
    s.attach_list(account, c2, l2, 0).await.expect("attach");
    let webhook = s
        .create_webhook(
            account,
            &crm::store::webhooks::NewEndpoint {
                url: "https://hooks.example.com/in".into(),
                events: vec![WebhookEvent::CallEnded],
                active: true,
                ..Default::default()
            },
            t0(),
        )
        .await
        .expect("webhook")
        .0
        .id;
    let k = add(
        s,
        account,
        serde_json::json!({
            "first_name": "Ada", "phone": "+447400300001", "list_id": l1,
            "custom_fields": { "plan": "gold" }, "fields": { "region": "south" }
        }),
    )
    .await;
    let m = add(
        s,
        account,
        serde_json::json!({
            "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400300002",
            "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
            "list_id": l1, "custom_fields": { "plan": "silver", "source": "fair" },
            "fields": { "tier": "silver", "region": "north" }
        }),
    )
    .await;
    s.add_to_list(account, l2, m.id, t0())
        .await
        .expect("second list");
    // An edit of the merged contact, which the kept one's timeline inherits.
    s.edit_contact(
        &actor(account),
        m.id,
        m.version,
        &ContactChange {
            profession: Some(Some("Mathematician".into())),
            ..ContactChange::default()
        },
        t0(),
    )
    .await
    .expect("edited");
    s.sync_leads(account, c1, t0()).await.expect("leads");
    s.sync_leads(account, c2, t0()).await.expect("leads");
    // Only the merged contact's lead in C1 has a callback: it wins.
    let m_lead = s.lead_for_contact(account, c1, m.id).await.expect("lead");
    s.schedule_callback(account, m_lead.id, t0() + Duration::days(2), None, t0())
        .await
        .expect("callback");
    let m_attempt = s
        .create_attempt(account, CallRef::random(), Some(c1), Some(m.id), t0())
        .await
        .expect("attempt")
        .id;
    s.mark_ended(account, m_attempt, "answered", t0() + Duration::seconds(90))
        .await
        .expect("ended");
    let m_interaction = s
        .record_interaction(
            account,
            &NewInteraction {
                contact_id: m.id,
                user_id: None,
                attempt_id: Some(m_attempt),
                kind: "call".into(),
                disposition: Some("callback".into()),
                notes: Some("wants a call on Friday".into()),
            },
            t0() + Duration::seconds(95),
        )
        .await
        .expect("interaction")
        .id;
    s.add_recording(
        account,
        &NewRecording {
            attempt_id: Some(m_attempt),
            call_ref: None,
            contact_id: Some(m.id),
            path: std::env::temp_dir().join("dialcrm-merge-test-recording.wav"),
        },
        t0(),
    )
    .await
    .expect("recording");
    let k_attempt = s
        .create_attempt(account, CallRef::random(), Some(c1), Some(k.id), t0())
        .await
        .expect("attempt")
        .id;
    s.mark_ended(
        account,
        k_attempt,
        "no_answer",
        t0() + Duration::seconds(30),
    )
    .await
    .expect("ended");
    History {
        account,
        k: s.contact(account, k.id).await.expect("k"),
        m: s.contact(account, m.id).await.expect("m"),
        lists: [l1, l2],
        campaigns: [c1, c2],
        webhook,
        m_attempt,
        m_interaction,
        k_attempt,
    }
}

/// Everything held about one contact, but its version and when it changed.
#[derive(Debug, PartialEq)]
struct Held {
    fields: ContactFields,
    values: crm::fields::FieldValues,
    merged_into: Option<ContactId>,
    attempts: Vec<AttemptId>,
    interactions: Vec<InteractionId>,
    recordings: usize,
    lists: Vec<ListId>,
    leads: Vec<Lead>,
    deliveries: usize,
    suppressed: bool,
}

async fn held(s: &Store, h: &History, id: ContactId) -> Held {
    let a = h.account;
    let c = s.contact(a, id).await.expect("contact");
    let mut leads = Vec::new();
    for campaign in h.campaigns {
        if let Ok(l) = s.lead_for_contact(a, campaign, id).await {
            leads.push(l);
        }
    }
    Held {
        suppressed: s.is_suppressed(a, &c.fields.phone_e164).await.expect("q"),
        fields: c.fields,
        values: c.values,
        merged_into: s.merged_into(a, id).await.expect("q"),
        attempts: s
            .attempts_for_contact(a, id)
            .await
            .expect("q")
            .into_iter()
            .map(|x| x.id)
            .collect(),
        interactions: s
            .interactions_for_contact(a, id)
            .await
            .expect("q")
            .into_iter()
            .map(|x| x.id)
            .collect(),
        recordings: s.recordings_for_contact(a, id).await.expect("q").len(),
        lists: s.lists_of_contact(a, id).await.expect("q"),
        leads,
        deliveries: s
            .webhook_deliveries(a, h.webhook, 100, None)
            .await
            .expect("q")
            .iter()
            .filter(|d| d.contact_id == Some(id))
            .count(),
    }
}

async fn a_merge_moves_every_kind_of_history_and_fills_only_empty_fields(db: TestDb) -> TestDb {
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
            "field.tier"
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
            moved.list_memberships_set_aside
        ),
        (1, 1, 1, 1, 2, 1, 1, 1)
    );

    // The kept contact: its values stay, its empty fields are filled.
    let kept = s.contact(a, k).await.expect("kept");
    assert_eq!(kept.version, h.k.version + 1);
    assert_eq!(kept.fields.first_name, "Ada", "never overwritten");
    assert_eq!(kept.fields.last_name, "Lovelace");
    assert_eq!(kept.fields.email.as_deref(), Some("ada@example.org"));
    assert_eq!(kept.fields.profession.as_deref(), Some("Mathematician"));
    assert_eq!(kept.fields.phone_e164, "+447400300001");
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
             custom_fields,field.tier",
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

async fn suppression_becomes_the_union_and_undo_takes_back_only_its_own(db: TestDb) -> TestDb {
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

async fn an_undo_puts_both_contacts_back_as_they_were(db: TestDb) -> TestDb {
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
            "field.tier"
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
                 fields=last_name,postal_address,profession,custom_fields,field.tier"
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

async fn merges_are_refused_across_accounts_in_calls_and_on_stale_versions(db: TestDb) -> TestDb {
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

async fn of_two_merges_at_once_one_wins_and_the_other_is_refused(db: TestDb) -> TestDb {
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

async fn erasing_either_contact_clears_what_the_merge_could_undo(db: TestDb) -> TestDb {
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

async fn a_merge_becomes_final_after_a_day(db: TestDb) -> TestDb {
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
