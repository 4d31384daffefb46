//! Inbound queues in the Store: numbers routed across the service, agents
//! with skills, inbound calls logged against the queue's campaign without
//! touching its outbound figures, and closed by a survivor when their node
//! dies, on both backends.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crm::model::*;
use crm::store::nodes::Holder;
use crm::store::queues::{InboundOutcome, Overflow, QueueSettings};
use crm::testing::TestDb;
use crm::StoreError;
use vocab::CallRef;

crm::on_both_backends!(
    a_queue_routes_its_numbers_and_no_number_routes_twice,
    settings_are_checked_and_updated,
    agents_join_with_a_skill_only_when_assigned_to_the_campaign,
    a_known_caller_finds_their_contact_and_last_agent,
    an_unknown_caller_gets_a_contact_with_a_lead_the_dialler_leaves_alone,
    a_withheld_caller_has_no_contact_and_a_suppressed_one_is_flagged,
    inbound_calls_never_count_in_outbound_figures,
    a_survivor_closes_a_dead_nodes_inbound_calls_as_interrupted,
    queues_are_scoped_to_their_account,
    a_queue_report_counts_waits_answers_and_the_service_level,
);

const DID: &str = "+441632960001";
const CALLER: &str = "+447400123456";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

async fn setup(db: &TestDb, account: &str) -> (AccountId, CampaignId) {
    let a = db.store.create_account(account, 5, t0()).await.unwrap().id;
    let c = db
        .store
        .create_campaign(a, "Service", "+442079460000", t0())
        .await
        .unwrap()
        .id;
    (a, c)
}

async fn agent(db: &TestDb, account: AccountId, name: &str) -> UserId {
    db.store
        .create_user(account, name, "x", Role::Agent, t0())
        .await
        .unwrap()
        .id
}

async fn a_queue_routes_its_numbers_and_no_number_routes_twice(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .expect("created");
    assert_eq!(q.numbers, vec![DID.to_owned()]);
    let routed = db.store.route_number(DID).await.unwrap().expect("routed");
    assert_eq!((routed.id, routed.account_id), (q.id, a));
    assert_eq!(db.store.route_number("+441632960999").await.unwrap(), None);
    let (b, cb) = setup(&db, "other").await;
    let taken = db
        .store
        .create_queue(
            b,
            "Theirs",
            &QueueSettings::new(cb),
            &[DID.to_owned()],
            t0(),
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(m)) if m.contains(DID)));
    assert!(
        db.store.queue_named(b, "Theirs").await.is_err(),
        "the queue whose number clashed was not kept"
    );
    let again = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[], t0())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    db.store
        .add_queue_number(a, q.id, "+441632960002", t0())
        .await
        .unwrap();
    db.store.remove_queue_number(a, DID).await.unwrap();
    assert_eq!(db.store.route_number(DID).await.unwrap(), None);
    assert_eq!(
        db.store.queue(a, q.id).await.unwrap().numbers,
        vec!["+441632960002".to_owned()]
    );
    for bad in ["01632960001", "+44 1632", "+"] {
        assert!(matches!(
            db.store.add_queue_number(a, q.id, bad, t0()).await,
            Err(StoreError::Invalid(_))
        ));
    }
    db
}

async fn settings_are_checked_and_updated(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let mut settings = QueueSettings::new(c);
    settings.time_zone = "Mars/Olympus".into();
    assert!(matches!(
        db.store
            .create_queue(a, "Sales", &settings, &[], t0())
            .await,
        Err(StoreError::Invalid(_))
    ));
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[], t0())
        .await
        .unwrap();
    let mut changed = q.settings.clone();
    changed.max_wait_secs = 60;
    changed.overflow = Overflow::Callback;
    changed.record_calls = true;
    changed.welcome_message = Some("/srv/welcome.wav".into());
    let updated = db
        .store
        .update_queue(a, q.id, &changed, t0())
        .await
        .unwrap();
    assert_eq!(updated.settings, changed);
    assert_eq!(db.store.queue(a, q.id).await.unwrap().settings, changed);
    changed.service_level_pct = 0;
    assert!(db
        .store
        .update_queue(a, q.id, &changed, t0())
        .await
        .is_err());
    // London hours: noon in January is open, 23:00 is not.
    assert!(q.settings.is_open(t0()));
    assert!(!q.settings.is_open(t0() + TimeDelta::hours(11)));
    db
}

async fn agents_join_with_a_skill_only_when_assigned_to_the_campaign(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[], t0())
        .await
        .unwrap();
    let ann = agent(&db, a, "ann").await;
    let bob = agent(&db, a, "bob").await;
    let refused = db.store.assign_queue_agent(a, q.id, ann, 5).await;
    assert!(matches!(refused, Err(StoreError::Invalid(m)) if m.contains("campaign")));
    db.store.assign_agents(a, c, &[ann, bob]).await.unwrap();
    db.store.assign_queue_agent(a, q.id, ann, 5).await.unwrap();
    db.store.assign_queue_agent(a, q.id, bob, 9).await.unwrap();
    db.store.assign_queue_agent(a, q.id, ann, 7).await.unwrap();
    assert!(matches!(
        db.store.assign_queue_agent(a, q.id, ann, 11).await,
        Err(StoreError::Invalid(_))
    ));
    let members = db.store.queue_members(a, q.id).await.unwrap();
    let seen: Vec<(&str, u8)> = members
        .iter()
        .map(|m| (m.username.as_str(), m.skill))
        .collect();
    assert_eq!(seen, vec![("bob", 9), ("ann", 7)]);
    let of_ann = db.store.agent_queues(a, ann).await.unwrap();
    assert_eq!(of_ann.len(), 1);
    assert_eq!((of_ann[0].queue_id, of_ann[0].skill), (q.id, 7));
    db.store.unassign_queue_agent(a, q.id, ann).await.unwrap();
    assert!(db.store.agent_queues(a, ann).await.unwrap().is_empty());
    db
}

async fn a_known_caller_finds_their_contact_and_last_agent(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    let ann = agent(&db, a, "ann").await;
    let fields = ContactFields {
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
        phone_e164: CALLER.into(),
        phone_raw: "07400 123456".into(),
        email: None,
        postal_address: None,
        profession: None,
        time_zone: None,
        custom_fields: serde_json::json!({}),
    };
    let grace = db.store.create_contact(a, &fields, t0()).await.unwrap();
    let earlier = CallRef::random();
    let attempt = db
        .store
        .create_attempt(a, earlier, Some(c), Some(grace.id), t0())
        .await
        .unwrap();
    db.store
        .record_interaction(
            a,
            &NewInteraction {
                contact_id: grace.id,
                user_id: Some(ann),
                attempt_id: Some(attempt.id),
                kind: "call".into(),
                disposition: Some("sale".into()),
                notes: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let call = CallRef::random();
    let later = t0() + TimeDelta::hours(1);
    let arrived = db
        .store
        .inbound_call_arrived(&q, Some(CALLER), call, &Holder::from("n1"), later)
        .await
        .unwrap();
    assert_eq!(arrived.contact_id, Some(grace.id));
    assert!(arrived.known);
    assert!(!arrived.suppressed);
    assert_eq!(arrived.last_agent, Some(ann));
    let logged = db.store.attempt_by_ref(a, call).await.unwrap();
    assert_eq!(logged.contact_id, Some(grace.id));
    assert_eq!(logged.campaign_id, Some(c));
    db.store
        .inbound_call_taken(a, call, ann, later)
        .await
        .unwrap();
    db.store
        .inbound_call_ended(
            a,
            call,
            InboundOutcome::Answered,
            later + TimeDelta::minutes(3),
        )
        .await
        .unwrap();
    db.store
        .inbound_call_ended(
            a,
            call,
            InboundOutcome::Abandoned,
            later + TimeDelta::minutes(4),
        )
        .await
        .unwrap();
    let closed = db.store.attempt_by_ref(a, call).await.unwrap();
    assert_eq!(
        closed.outcome.as_deref(),
        Some("answered"),
        "the first close holds"
    );
    // A callback can be booked on the lead the call made sure of.
    db.store
        .lead_for_contact(a, c, grace.id)
        .await
        .expect("a lead");
    db
}

async fn an_unknown_caller_gets_a_contact_with_a_lead_the_dialler_leaves_alone(
    db: TestDb,
) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    let arrived = db
        .store
        .inbound_call_arrived(
            &q,
            Some(CALLER),
            CallRef::random(),
            &Holder::from("n1"),
            t0(),
        )
        .await
        .unwrap();
    assert!(!arrived.known);
    assert_eq!(arrived.last_agent, None);
    let contact = db
        .store
        .contact(a, arrived.contact_id.expect("a contact"))
        .await
        .unwrap();
    assert_eq!(contact.fields.phone_e164, CALLER);
    let lead = db.store.lead_for_contact(a, c, contact.id).await.unwrap();
    assert_eq!(lead.state, crm::store::leads::LeadState::Done);
    // The same caller again finds that contact rather than making another.
    let again = db
        .store
        .inbound_call_arrived(
            &q,
            Some(CALLER),
            CallRef::random(),
            &Holder::from("n1"),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(again.contact_id, Some(contact.id));
    assert!(again.known);
    assert_eq!(
        db.store.contacts_by_number(a, CALLER).await.unwrap().len(),
        1
    );
    db
}

async fn a_withheld_caller_has_no_contact_and_a_suppressed_one_is_flagged(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    let withheld = db
        .store
        .inbound_call_arrived(&q, None, CallRef::random(), &Holder::from("n1"), t0())
        .await
        .unwrap();
    assert_eq!(withheld.contact_id, None);
    let junk = db
        .store
        .inbound_call_arrived(
            &q,
            Some("anonymous"),
            CallRef::random(),
            &Holder::from("n1"),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        junk.contact_id, None,
        "what is not a number makes no contact"
    );
    db.store
        .suppress(a, CALLER, "do-not-call", "test", t0())
        .await
        .unwrap();
    let flagged = db
        .store
        .inbound_call_arrived(
            &q,
            Some(CALLER),
            CallRef::random(),
            &Holder::from("n1"),
            t0(),
        )
        .await
        .unwrap();
    assert!(flagged.suppressed);
    assert!(
        flagged.contact_id.is_some(),
        "they called us: answered all the same"
    );
    db
}

async fn inbound_calls_never_count_in_outbound_figures(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    let ann = agent(&db, a, "ann").await;
    for outcome in [InboundOutcome::Answered, InboundOutcome::Abandoned] {
        let call = CallRef::random();
        db.store
            .inbound_call_arrived(&q, Some(CALLER), call, &Holder::from("n1"), t0())
            .await
            .unwrap();
        if outcome == InboundOutcome::Answered {
            db.store
                .inbound_call_taken(a, call, ann, t0())
                .await
                .unwrap();
        }
        db.store
            .inbound_call_ended(a, call, outcome, t0() + TimeDelta::minutes(2))
            .await
            .unwrap();
    }
    let counts = db
        .store
        .compliance_counts(c, t0() + TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!((counts.day.live, counts.day.abandoned), (0, 0));
    assert_eq!((counts.month.live, counts.month.abandoned), (0, 0));
    db
}

async fn a_survivor_closes_a_dead_nodes_inbound_calls_as_interrupted(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    let call = CallRef::random();
    db.store
        .inbound_call_arrived(&q, Some(CALLER), call, &Holder::from("n1"), t0())
        .await
        .unwrap();
    let recovery = db
        .store
        .recover_node("n1", t0() + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        recovery.abandoned, 0,
        "an inbound call is never an outbound abandon"
    );
    assert_eq!(recovery.interrupted, 1);
    assert_eq!(recovery.calls.len(), 1);
    assert_eq!(recovery.calls[0].call_ref, call);
    let closed = db.store.attempt_by_ref(a, call).await.unwrap();
    assert_eq!(closed.outcome.as_deref(), Some("interrupted"));
    let counts = db
        .store
        .compliance_counts(c, t0() + TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(counts.day.abandoned, 0);
    db
}

async fn queues_are_scoped_to_their_account(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let (b, _) = setup(&db, "other").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    assert!(matches!(
        db.store.queue(b, q.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.queues(b).await.unwrap().is_empty());
    assert!(matches!(
        db.store.remove_queue_number(b, DID).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.delete_queue(b, q.id).await,
        Err(StoreError::NotFound)
    ));
    // Another account's campaign cannot take an account's calls.
    let mut theirs = QueueSettings::new(c);
    theirs.priority = 1;
    assert!(matches!(
        db.store
            .create_queue(b, "Borrowed", &theirs, &[], t0())
            .await,
        Err(StoreError::NotFound)
    ));
    db
}

async fn a_queue_report_counts_waits_answers_and_the_service_level(db: TestDb) -> TestDb {
    let (a, c) = setup(&db, "acme").await;
    let q = db
        .store
        .create_queue(a, "Sales", &QueueSettings::new(c), &[DID.to_owned()], t0())
        .await
        .unwrap();
    let ann = agent(&db, a, "ann").await;
    let secs = |n: i64| TimeDelta::seconds(n);
    // (arrives after t0, taken after arrival, ends after arrival, outcome)
    let calls = [
        (0, Some(10), 180, InboundOutcome::Answered),
        (60, Some(45), 200, InboundOutcome::Answered),
        (120, None, 30, InboundOutcome::Abandoned),
        (4000, None, 5, InboundOutcome::Closed),
    ];
    for (arrives, taken, ends, outcome) in calls {
        let call = CallRef::random();
        let at = t0() + secs(arrives);
        db.store
            .inbound_call_arrived(&q, Some(CALLER), call, &Holder::from("n1"), at)
            .await
            .unwrap();
        if let Some(t) = taken {
            db.store
                .inbound_call_taken(a, call, ann, at + secs(t))
                .await
                .unwrap();
        }
        db.store
            .inbound_call_ended(a, call, outcome, at + secs(ends))
            .await
            .unwrap();
    }
    let period = crm::store::reports::Period {
        from: t0() - TimeDelta::hours(1),
        to: t0() + TimeDelta::hours(3),
    };
    let reports = db.store.queue_report(a, period).await.unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!((r.offered, r.answered, r.abandoned, r.closed), (3, 2, 1, 1));
    assert!(
        (r.service_level - 1.0 / 3.0).abs() < 1e-9,
        "{}",
        r.service_level
    );
    assert!((r.average_speed_of_answer_secs - 27.5).abs() < 1e-9);
    assert_eq!(r.longest_wait_secs, 45);
    assert_eq!(
        r.hours.len(),
        1,
        "the closed call's hour has no offered call"
    );
    assert_eq!(r.hours[0].offered, 3);
    let (offered, talk) = db
        .store
        .queue_load(a, q.id, t0() - TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(offered, 3, "the closed call is no load");
    assert!((talk.expect("answered calls") - 162.5).abs() < 1e-9);
    let before = crm::store::reports::Period {
        from: t0() - TimeDelta::hours(3),
        to: t0() - TimeDelta::hours(1),
    };
    assert_eq!(
        db.store.queue_report(a, before).await.unwrap()[0].offered,
        0
    );
    db
}
