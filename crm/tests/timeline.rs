//! A contact's timeline, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::edit::{ContactChange, NewContact};
use crm::model::*;
use crm::store::timeline::TimelineEvent;
use crm::store::SearchScope;
use crm::testing::TestDb;
use vocab::CallRef;

crm::on_both_backends!(a_timeline_holds_calls_notes_callbacks_edits_and_lists_newest_first);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

/// Names each entry by its kind, for comparing orders.
fn kinds(entries: &[crm::store::timeline::TimelineEntry]) -> Vec<&'static str> {
    entries
        .iter()
        .map(|e| match &e.event {
            TimelineEvent::Call { .. } => "call",
            TimelineEvent::Interaction { .. } => "interaction",
            TimelineEvent::Callback { .. } => "callback",
            TimelineEvent::Edit { .. } => "edit",
            TimelineEvent::AddedToList { .. } => "list",
        })
        .collect()
}

async fn a_timeline_holds_calls_notes_callbacks_edits_and_lists_newest_first(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 2, t0()).await.expect("account");
    let agent = s
        .create_user(a.id, "al", "$argon2id$test", Role::Agent, t0())
        .await
        .expect("user");
    let sue = s
        .create_user(a.id, "sue", "$argon2id$test", Role::Supervisor, t0())
        .await
        .expect("user");
    let list = s.create_list(a.id, "L", "GB", t0()).await.expect("list");
    let actor = Actor {
        account_id: Some(a.id),
        user_id: Some(sue.id),
        ..Actor::default()
    };
    let new: NewContact = serde_json::from_value(serde_json::json!({
        "first_name": "Ada", "phone": "07400 100123", "list_id": list.id
    }))
    .expect("valid");
    let id = s
        .add_contact(&actor, &new, t0())
        .await
        .expect("created")
        .contact
        .id;
    let mine = s
        .create_campaign(a.id, "Mine", "+441632960000", t0())
        .await
        .expect("campaign");
    let theirs = s
        .create_campaign(a.id, "Theirs", "+441632960000", t0())
        .await
        .expect("campaign");
    for c in [&mine, &theirs] {
        s.attach_list(a.id, c.id, list.id, 0)
            .await
            .expect("attached");
        s.sync_leads(a.id, c.id, t0()).await.expect("leads");
    }
    s.assign_agents(a.id, mine.id, &[agent.id])
        .await
        .expect("assigned");

    // A call in each campaign, the first answered for 90 s with a note.
    let call = s
        .create_attempt(
            a.id,
            CallRef::from_u128(1),
            Some(mine.id),
            Some(id),
            t0() + Duration::minutes(10),
        )
        .await
        .expect("attempt");
    s.mark_answered(a.id, call.id, t0() + Duration::minutes(10))
        .await
        .expect("answered");
    s.mark_ended(a.id, call.id, "answered", t0() + Duration::seconds(690))
        .await
        .expect("ended");
    s.record_interaction(
        a.id,
        &NewInteraction {
            contact_id: id,
            user_id: Some(agent.id),
            attempt_id: Some(call.id),
            kind: "call".into(),
            disposition: Some("callback".into()),
            notes: Some("call after lunch".into()),
        },
        t0() + Duration::minutes(12),
    )
    .await
    .expect("interaction");
    let other = s
        .create_attempt(
            a.id,
            CallRef::from_u128(2),
            Some(theirs.id),
            Some(id),
            t0() + Duration::minutes(20),
        )
        .await
        .expect("attempt");
    s.mark_ended(a.id, other.id, "busy", t0() + Duration::minutes(21))
        .await
        .expect("ended");
    let lead = s.lead_for_contact(a.id, mine.id, id).await.expect("lead");
    s.schedule_callback(
        a.id,
        lead.id,
        t0() + Duration::hours(4),
        Some(agent.id),
        t0(),
    )
    .await
    .expect("callback");
    let change: ContactChange =
        serde_json::from_value(serde_json::json!({ "last_name": "King" })).expect("valid");
    s.edit_contact(&actor, id, 1, &change, t0() + Duration::minutes(30))
        .await
        .expect("edited");

    let all = s
        .contact_timeline(a.id, id, SearchScope::Account, 100)
        .await
        .expect("timeline");
    assert_eq!(
        kinds(&all),
        [
            "callback",
            "edit",
            "call",
            "interaction",
            "call",
            "edit",
            "list"
        ],
        "{all:#?}"
    );
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    match &all[1].event {
        TimelineEvent::Edit {
            action,
            user_id,
            fields,
        } => {
            assert_eq!(action, "contact.edit");
            assert_eq!(*user_id, Some(sue.id));
            assert_eq!(fields, &["last_name"]);
        }
        other => panic!("expected the edit, got {other:?}"),
    }
    match &all[4].event {
        TimelineEvent::Call {
            outcome,
            talk_secs,
            campaign_id,
            ..
        } => {
            assert_eq!(outcome.as_deref(), Some("answered"));
            assert_eq!(*talk_secs, Some(90));
            assert_eq!(*campaign_id, Some(mine.id));
        }
        other => panic!("expected the answered call, got {other:?}"),
    }
    let limited = s
        .contact_timeline(a.id, id, SearchScope::Account, 2)
        .await
        .expect("timeline");
    assert_eq!(kinds(&limited), ["callback", "edit"]);

    // The agent sees only their campaign's call, note and callback, and edits.
    let theirs_view = s
        .contact_timeline(a.id, id, SearchScope::Agent(agent.id), 100)
        .await
        .expect("timeline");
    assert_eq!(
        kinds(&theirs_view),
        ["callback", "edit", "interaction", "call", "edit"]
    );
    let b = s.create_account("b", 1, t0()).await.expect("account");
    assert!(matches!(
        s.contact_timeline(b.id, id, SearchScope::Account, 100)
            .await,
        Err(crm::StoreError::NotFound)
    ));
    db
}
