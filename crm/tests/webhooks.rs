//! Webhook endpoints, the deliveries facts queue for them, and the leases
//! and retries of the nodes that send them, on both backends.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::store::webhooks::{AttemptResult, Delivery, DeliveryStatus, EndpointChange, NewEndpoint};
use crm::testing::TestDb;
use crm::webhooks::{payload, RetryPolicy, WebhookEvent};
use crm::{Store, StoreError};
use vocab::CallRef;

crm::on_both_backends!(
    endpoints_are_kept_per_account_and_checked,
    each_fact_queues_a_delivery_for_each_endpoint_that_takes_it,
    an_erasure_unlinks_queued_deliveries_and_reports_itself,
    a_failed_attempt_is_retried_with_backoff_then_given_up,
    a_lapsed_lease_passes_to_another_node,
    two_nodes_never_claim_the_same_delivery,
    old_finished_deliveries_are_purged,
);

/// Friday 27 November 2026, 09:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
        .single()
        .expect("valid time")
}

const LEASE: Duration = Duration::seconds(30);

fn endpoint(url: &str, events: &[WebhookEvent]) -> NewEndpoint {
    NewEndpoint {
        url: url.into(),
        description: "the CRM of record".into(),
        events: events.to_vec(),
        contact_fields: Vec::new(),
        active: true,
    }
}

struct Fixture {
    account: AccountId,
    campaign: CampaignId,
    contact: ContactId,
}

/// An account with a paused campaign over one list of one contact.
async fn fixture(s: &Store, name: &str) -> Fixture {
    let account = s.create_account(name, 5, t0()).await.unwrap().id;
    let campaign = s
        .create_campaign(account, "Winter", "+442079460000", t0())
        .await
        .unwrap()
        .id;
    let list = s.create_list(account, "Main", "GB", t0()).await.unwrap().id;
    s.attach_list(account, campaign, list, 0).await.unwrap();
    let fields = ContactFields {
        first_name: "Philippa".into(),
        last_name: "Oddington".into(),
        phone_e164: "+447700900777".into(),
        phone_raw: "07700 900777".into(),
        email: Some("philippa@example.com".into()),
        custom_fields: serde_json::json!({ "plan": "gold" }),
        ..ContactFields::default()
    };
    let contact = s.create_contact(account, &fields, t0()).await.unwrap().id;
    s.add_to_list(account, list, contact, t0()).await.unwrap();
    Fixture {
        account,
        campaign,
        contact,
    }
}

async fn log(s: &Store, account: AccountId, id: WebhookId) -> Vec<Delivery> {
    let mut all = s.webhook_deliveries(account, id, 1000, None).await.unwrap();
    all.reverse();
    all
}

fn events(log: &[Delivery]) -> Vec<&'static str> {
    log.iter().map(|d| d.event.as_str()).collect()
}

async fn endpoints_are_kept_per_account_and_checked(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = fixture(s, "a").await.account;
    let b = fixture(s, "b").await.account;
    let mut new = endpoint(
        "https://hooks.example.com/dialcrm",
        &[
            WebhookEvent::CallEnded,
            WebhookEvent::CallAnswered,
            WebhookEvent::CallEnded,
        ],
    );
    new.contact_fields = vec![
        "first_name".into(),
        "custom.plan".into(),
        "first_name".into(),
    ];
    let (created, secret) = s.create_webhook(a, &new, t0()).await.unwrap();
    assert_eq!(created.url, "https://hooks.example.com/dialcrm");
    assert_eq!(
        created.events,
        vec![WebhookEvent::CallAnswered, WebhookEvent::CallEnded],
        "sorted, once each"
    );
    assert_eq!(created.contact_fields, vec!["first_name", "custom.plan"]);
    assert!(created.active);
    assert!(secret.expose().starts_with("whsec_"));
    let (_, signing) = s.webhook_signing(created.id).await.unwrap();
    assert_eq!(signing, secret, "kept as it is, to sign");

    assert_eq!(s.webhooks(a).await.unwrap(), vec![created.clone()]);
    assert!(s.webhooks(b).await.unwrap().is_empty());
    assert!(matches!(
        s.webhook(b, created.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.update_webhook(b, created.id, &EndpointChange::default(), t0())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_webhook(b, created.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.webhook_deliveries(b, created.id, 10, None).await,
        Err(StoreError::NotFound)
    ));

    for (bad, why) in [
        (
            endpoint("ftp://example.com/", &[WebhookEvent::CallEnded]),
            "scheme",
        ),
        (
            endpoint("https://u:p@example.com/", &[WebhookEvent::CallEnded]),
            "password",
        ),
        (endpoint("https://example.com/", &[]), "at least one"),
        (
            endpoint("https://example.com/", &[WebhookEvent::Ping]),
            "ping",
        ),
        (
            NewEndpoint {
                contact_fields: vec!["password_hash".into()],
                ..endpoint("https://example.com/", &[WebhookEvent::CallEnded])
            },
            "unknown contact field",
        ),
    ] {
        match s.create_webhook(a, &bad, t0()).await {
            Err(StoreError::Invalid(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("{bad:?} was taken: {other:?}"),
        }
    }
    assert_eq!(s.webhooks(a).await.unwrap().len(), 1, "nothing half-made");

    let later = t0() + Duration::minutes(5);
    let change = EndpointChange {
        url: Some("http://10.0.0.5:8080/in".into()),
        events: Some(vec![WebhookEvent::ContactErased]),
        contact_fields: Some(Vec::new()),
        active: Some(false),
        ..EndpointChange::default()
    };
    let (changed, none) = s
        .update_webhook(a, created.id, &change, later)
        .await
        .unwrap();
    assert!(none.is_none(), "the secret stays unless rotated");
    assert_eq!(changed.url, "http://10.0.0.5:8080/in");
    assert_eq!(changed.events, vec![WebhookEvent::ContactErased]);
    assert!(changed.contact_fields.is_empty());
    assert!(!changed.active);
    assert_eq!(changed.description, "the CRM of record");
    assert_eq!(changed.updated_at, later);
    let bad = EndpointChange {
        url: Some("gopher://example.com".into()),
        ..EndpointChange::default()
    };
    assert!(matches!(
        s.update_webhook(a, created.id, &bad, later).await,
        Err(StoreError::Invalid(_))
    ));
    let rotate = EndpointChange {
        rotate_secret: true,
        ..EndpointChange::default()
    };
    let (_, rotated) = s
        .update_webhook(a, created.id, &rotate, later)
        .await
        .unwrap();
    let rotated = rotated.expect("a new secret");
    assert_ne!(rotated, secret);
    assert_eq!(s.webhook_signing(created.id).await.unwrap().1, rotated);

    assert!(
        matches!(
            s.ping_webhook(a, created.id, later).await,
            Err(StoreError::Refused(_))
        ),
        "an inactive endpoint is not pinged"
    );
    s.delete_webhook(a, created.id).await.unwrap();
    assert!(s.webhooks(a).await.unwrap().is_empty());
    db
}

async fn each_fact_queues_a_delivery_for_each_endpoint_that_takes_it(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let other = fixture(s, "other").await;
    let calls = s
        .create_webhook(
            f.account,
            &endpoint(
                "https://calls.example.com/",
                &[WebhookEvent::CallAnswered, WebhookEvent::CallEnded],
            ),
            t0(),
        )
        .await
        .unwrap()
        .0;
    let all = s
        .create_webhook(
            f.account,
            &endpoint("https://all.example.com/", &WebhookEvent::SUBSCRIBABLE),
            t0(),
        )
        .await
        .unwrap()
        .0;
    let off = s
        .create_webhook(
            f.account,
            &NewEndpoint {
                active: false,
                ..endpoint("https://off.example.com/", &WebhookEvent::SUBSCRIBABLE)
            },
            t0(),
        )
        .await
        .unwrap()
        .0;
    let foreign = s
        .create_webhook(
            other.account,
            &endpoint("https://other.example.com/", &WebhookEvent::SUBSCRIBABLE),
            t0(),
        )
        .await
        .unwrap()
        .0;

    let at = |secs| t0() + Duration::seconds(secs);
    s.start_campaign(f.account, f.campaign, at(1))
        .await
        .unwrap();
    // Starting what runs already changes nothing and tells no one.
    s.set_campaign_status(f.account, f.campaign, CampaignStatus::Running, at(2))
        .await
        .unwrap();
    let call = CallRef::from_u128(0xfeed);
    s.open_attempt(f.account, call, f.campaign, f.contact, "node-a", at(3))
        .await
        .unwrap();
    s.mark_call_answered(f.account, call, at(4)).await.unwrap();
    let attempt = s.attempt_by_ref(f.account, call).await.unwrap();
    s.mark_ended(f.account, attempt.id, "answered", at(9))
        .await
        .unwrap();
    s.record_interaction(
        f.account,
        &NewInteraction {
            contact_id: f.contact,
            user_id: None,
            attempt_id: Some(attempt.id),
            kind: "call".into(),
            disposition: Some("sale".into()),
            notes: Some("wants the gold plan".into()),
        },
        at(20),
    )
    .await
    .unwrap();
    // A note without a disposition is no disposition saved.
    s.record_interaction(
        f.account,
        &NewInteraction {
            contact_id: f.contact,
            user_id: None,
            attempt_id: None,
            kind: "note".into(),
            disposition: None,
            notes: Some("called back".into()),
        },
        at(21),
    )
    .await
    .unwrap();
    s.set_campaign_status(f.account, f.campaign, CampaignStatus::Paused, at(30))
        .await
        .unwrap();
    // A fact of another account reaches only that account's endpoints.
    s.start_campaign(other.account, other.campaign, at(31))
        .await
        .unwrap();

    let calls_log = log(s, f.account, calls.id).await;
    assert_eq!(events(&calls_log), ["call.answered", "call.ended"]);
    let all_log = log(s, f.account, all.id).await;
    assert_eq!(
        events(&all_log),
        [
            "campaign.started",
            "call.answered",
            "call.ended",
            "disposition.saved",
            "campaign.paused"
        ]
    );
    assert!(log(s, f.account, off.id).await.is_empty(), "inactive");
    assert_eq!(
        events(&log(s, other.account, foreign.id).await),
        ["campaign.started"]
    );

    let ended = &all_log[2];
    assert_eq!(ended.status, DeliveryStatus::Pending);
    assert_eq!(ended.attempts, 0);
    assert_eq!(ended.contact_id, Some(f.contact));
    assert_eq!(ended.occurred_at, at(9));
    assert_eq!(ended.next_attempt_at, Some(at(9)), "due at once");
    assert_eq!(ended.data["outcome"], "answered");
    assert_eq!(ended.data["call_ref"], call.to_string());
    assert_eq!(ended.data["attempt_id"], attempt.id.0);
    assert_eq!(ended.data["campaign_id"], f.campaign.0);
    assert_eq!(
        ended.data["answered_at"],
        serde_json::to_value(at(4)).unwrap()
    );
    let saved = &all_log[3];
    assert_eq!(saved.data["disposition"], "sale");
    assert_eq!(saved.data["call_ref"], call.to_string());
    assert_eq!(all_log[0].data["name"], "Winter");
    // Nothing personal waits in the outbox.
    let text = serde_json::to_string(&all_log).unwrap();
    for personal in ["Philippa", "Oddington", "900777", "example.com", "gold"] {
        assert!(!text.contains(personal), "{personal} queued in {text}");
    }

    // Nothing is written for a fact that is refused.
    assert!(s
        .mark_call_answered(f.account, CallRef::from_u128(0xdead), at(40))
        .await
        .is_err());
    assert!(s
        .mark_call_answered(other.account, call, at(40))
        .await
        .is_err());
    assert_eq!(log(s, f.account, all.id).await.len(), 5);

    // A ping goes to one endpoint only, and is due at once.
    let ping = s.ping_webhook(f.account, calls.id, at(50)).await.unwrap();
    assert_eq!(ping.event, WebhookEvent::Ping);
    assert_eq!(events(&log(s, f.account, calls.id).await).len(), 3);
    assert_eq!(log(s, f.account, all.id).await.len(), 5);
    assert!(matches!(
        s.ping_webhook(other.account, calls.id, at(50)).await,
        Err(StoreError::NotFound)
    ));
    db
}

async fn an_erasure_unlinks_queued_deliveries_and_reports_itself(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let mut new = endpoint("https://all.example.com/", &WebhookEvent::SUBSCRIBABLE);
    new.contact_fields = vec!["first_name".into(), "phone".into(), "notes".into()];
    let hook = s.create_webhook(f.account, &new, t0()).await.unwrap().0;
    s.set_campaign_status(f.account, f.campaign, CampaignStatus::Running, t0())
        .await
        .unwrap();
    let call = CallRef::from_u128(0xe1);
    s.open_attempt(f.account, call, f.campaign, f.contact, "node-a", t0())
        .await
        .unwrap();
    s.mark_call_answered(f.account, call, t0()).await.unwrap();
    let contact = s.contact(f.account, f.contact).await.unwrap();
    let before = log(s, f.account, hook.id).await;
    assert_eq!(before[1].contact_id, Some(f.contact));

    let claimed = s
        .claim_webhook_deliveries(hook.id, "node-a", 10, t0(), LEASE)
        .await
        .unwrap();
    let answered = claimed
        .iter()
        .find(|o| o.event == WebhookEvent::CallAnswered)
        .expect("queued");
    let body = payload(answered, &hook.contact_fields, Some(&contact), None);
    assert_eq!(body["contact"]["first_name"], "Philippa");
    assert_eq!(body["contact"]["phone"], "+447700900777");
    assert!(body["contact"].get("email").is_none(), "not opted into");
    for o in &claimed {
        s.record_webhook_attempt(
            o,
            "node-a",
            &AttemptResult::Failed {
                status: Some(503),
                error: "HTTP 503".into(),
            },
            t0(),
            &RetryPolicy::default(),
            0.5,
        )
        .await
        .unwrap();
    }

    let actor = Actor {
        account_id: Some(f.account),
        ..Actor::default()
    };
    s.erase_contact(f.account, f.contact, &actor, t0() + Duration::minutes(1))
        .await
        .unwrap();
    let after = log(s, f.account, hook.id).await;
    assert_eq!(
        events(&after),
        ["campaign.started", "call.answered", "contact.erased"]
    );
    assert_eq!(after[1].contact_id, None, "unlinked like the attempts");
    assert_eq!(after[1].status, DeliveryStatus::Pending, "still retried");
    assert_eq!(after[2].contact_id, Some(f.contact), "names whom to erase");
    assert!(matches!(
        s.contact(f.account, f.contact).await,
        Err(StoreError::NotFound)
    ));
    // Sent later, the answered call carries no contact and no field.
    let due = t0() + Duration::hours(1);
    let claimed = s
        .claim_webhook_deliveries(hook.id, "node-a", 10, due, LEASE)
        .await
        .unwrap();
    let answered = claimed
        .iter()
        .find(|o| o.event == WebhookEvent::CallAnswered)
        .expect("due again");
    let body = payload(answered, &hook.contact_fields, None, None);
    assert!(body.get("contact").is_none());
    assert!(body["data"]["contact_id"].is_null());
    let erased = claimed
        .iter()
        .find(|o| o.event == WebhookEvent::ContactErased)
        .expect("queued");
    let body = payload(erased, &hook.contact_fields, Some(&contact), Some("x"));
    assert_eq!(body["data"]["contact_id"], f.contact.0);
    assert!(
        body.get("contact").is_none(),
        "never an erased person's field"
    );
    db
}

async fn a_failed_attempt_is_retried_with_backoff_then_given_up(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let hook = s
        .create_webhook(
            f.account,
            &endpoint(
                "https://hooks.example.com/",
                &[WebhookEvent::CampaignStarted],
            ),
            t0(),
        )
        .await
        .unwrap()
        .0;
    s.start_campaign(f.account, f.campaign, t0()).await.unwrap();
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::seconds(10),
        max: Duration::minutes(1),
    };
    let failed = AttemptResult::Failed {
        status: Some(500),
        error: "HTTP 500: boom".into(),
    };

    let first = s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t0(), LEASE)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 0);
    assert_eq!(first[0].account_id, f.account);
    assert!(
        s.claim_webhook_deliveries(hook.id, "node-b", 5, t0(), LEASE)
            .await
            .unwrap()
            .is_empty(),
        "leased to node-a"
    );
    assert!(s.webhooks_due(t0()).await.unwrap().is_empty(), "leased");
    let status = s
        .record_webhook_attempt(&first[0], "node-a", &failed, t0(), &policy, 1.0)
        .await
        .unwrap();
    assert_eq!(status, Some(DeliveryStatus::Pending));
    let row = &log(s, f.account, hook.id).await[0];
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_status, Some(500));
    assert_eq!(row.last_error.as_deref(), Some("HTTP 500: boom"));
    assert_eq!(row.last_attempt_at, Some(t0()));
    assert_eq!(row.next_attempt_at, Some(t0() + Duration::seconds(10)));

    let early = t0() + Duration::seconds(9);
    assert!(s.webhooks_due(early).await.unwrap().is_empty());
    assert!(s
        .claim_webhook_deliveries(hook.id, "node-a", 5, early, LEASE)
        .await
        .unwrap()
        .is_empty());
    let t1 = t0() + Duration::seconds(10);
    assert_eq!(s.webhooks_due(t1).await.unwrap(), vec![hook.id]);
    let second = s
        .claim_webhook_deliveries(hook.id, "node-b", 5, t1, LEASE)
        .await
        .unwrap();
    assert_eq!(second[0].attempts, 1);
    s.record_webhook_attempt(&second[0], "node-b", &failed, t1, &policy, 0.0)
        .await
        .unwrap();
    let row = &log(s, f.account, hook.id).await[0];
    assert_eq!(
        row.next_attempt_at,
        Some(t1 + Duration::seconds(10)),
        "20 s doubled, jitter at its least halves it"
    );
    let t2 = t1 + Duration::seconds(10);
    let third = s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t2, LEASE)
        .await
        .unwrap();
    let timeout = AttemptResult::Failed {
        status: None,
        error: "timed out after 10 s".into(),
    };
    let status = s
        .record_webhook_attempt(&third[0], "node-a", &timeout, t2, &policy, 0.5)
        .await
        .unwrap();
    assert_eq!(status, Some(DeliveryStatus::Failed), "three attempts made");
    let row = &log(s, f.account, hook.id).await[0];
    assert_eq!(row.status, DeliveryStatus::Failed);
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_status, None);
    assert_eq!(row.last_error.as_deref(), Some("timed out after 10 s"));
    assert_eq!(row.next_attempt_at, None);
    assert!(s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t2 + Duration::days(1), LEASE)
        .await
        .unwrap()
        .is_empty());

    // A success after a failure keeps the error in the log, and the
    // delivery is never sent again.
    let ping = s.ping_webhook(f.account, hook.id, t2).await.unwrap();
    let out = s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t2, LEASE)
        .await
        .unwrap();
    assert_eq!(out[0].id, ping.id);
    s.record_webhook_attempt(&out[0], "node-a", &failed, t2, &policy, 0.5)
        .await
        .unwrap();
    let t3 = t2 + Duration::minutes(1);
    let out = s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t3, LEASE)
        .await
        .unwrap();
    let status = s
        .record_webhook_attempt(
            &out[0],
            "node-a",
            &AttemptResult::Delivered { status: 204 },
            t3,
            &policy,
            0.5,
        )
        .await
        .unwrap();
    assert_eq!(status, Some(DeliveryStatus::Delivered));
    let row = &log(s, f.account, hook.id).await[1];
    assert_eq!(row.status, DeliveryStatus::Delivered);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_status, Some(204));
    assert_eq!(row.last_error.as_deref(), Some("HTTP 500: boom"));
    assert_eq!(row.delivered_at, Some(t3));
    assert!(s
        .webhooks_due(t3 + Duration::days(1))
        .await
        .unwrap()
        .is_empty());

    // An inactive endpoint keeps what it has, unsent, until it is back.
    let ping = s.ping_webhook(f.account, hook.id, t3).await.unwrap();
    let off = EndpointChange {
        active: Some(false),
        ..EndpointChange::default()
    };
    s.update_webhook(f.account, hook.id, &off, t3)
        .await
        .unwrap();
    assert!(s.webhooks_due(t3).await.unwrap().is_empty());
    assert!(s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t3, LEASE)
        .await
        .unwrap()
        .is_empty());
    let on = EndpointChange {
        active: Some(true),
        ..EndpointChange::default()
    };
    s.update_webhook(f.account, hook.id, &on, t3).await.unwrap();
    let out = s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t3, LEASE)
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, ping.id);
    db
}

async fn a_lapsed_lease_passes_to_another_node(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let hook = s
        .create_webhook(
            f.account,
            &endpoint(
                "https://hooks.example.com/",
                &[WebhookEvent::CampaignStarted],
            ),
            t0(),
        )
        .await
        .unwrap()
        .0;
    s.start_campaign(f.account, f.campaign, t0()).await.unwrap();
    let policy = RetryPolicy::default();
    let a = s
        .claim_webhook_deliveries(hook.id, "node-a", 5, t0(), LEASE)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    // node-a stops answering; its lease lapses and node-b takes over.
    let later = t0() + LEASE;
    let b = s
        .claim_webhook_deliveries(hook.id, "node-b", 5, later, LEASE)
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].id, a[0].id);
    let delivered = AttemptResult::Delivered { status: 200 };
    assert_eq!(
        s.record_webhook_attempt(&b[0], "node-b", &delivered, later, &policy, 0.5)
            .await
            .unwrap(),
        Some(DeliveryStatus::Delivered)
    );
    // node-a's late failure changes nothing.
    let failed = AttemptResult::Failed {
        status: None,
        error: "connection reset".into(),
    };
    assert_eq!(
        s.record_webhook_attempt(&a[0], "node-a", &failed, later, &policy, 0.5)
            .await
            .unwrap(),
        None
    );
    let row = &log(s, f.account, hook.id).await[0];
    assert_eq!(row.status, DeliveryStatus::Delivered);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_error, None);
    db
}

async fn two_nodes_never_claim_the_same_delivery(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let hooks = [
        s.create_webhook(
            f.account,
            &endpoint("https://one.example.com/", &[WebhookEvent::ContactErased]),
            t0(),
        )
        .await
        .unwrap()
        .0
        .id,
        s.create_webhook(
            f.account,
            &endpoint("https://two.example.com/", &[WebhookEvent::ContactErased]),
            t0(),
        )
        .await
        .unwrap()
        .0
        .id,
    ];
    let actor = Actor {
        account_id: Some(f.account),
        ..Actor::default()
    };
    s.erase_contact(f.account, f.contact, &actor, t0())
        .await
        .unwrap();
    for i in 0..59 {
        let phone = format!("+4477009{i:05}");
        let fields = ContactFields {
            phone_e164: phone.clone(),
            phone_raw: phone,
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        };
        let c = s.create_contact(f.account, &fields, t0()).await.unwrap().id;
        s.erase_contact(f.account, c, &actor, t0()).await.unwrap();
    }
    let mut nodes = Vec::new();
    for node in ["node-a", "node-b"] {
        // Each node has its own pool, as two processes would.
        let store = Store::connect(&db.url).await.unwrap();
        nodes.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let mut got = Vec::new();
                for hook in store.webhooks_due(t0()).await.unwrap() {
                    got.extend(
                        store
                            .claim_webhook_deliveries(hook, node, 3, t0(), LEASE)
                            .await
                            .unwrap(),
                    );
                }
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|o| o.id));
                tokio::task::yield_now().await;
            }
            store.close().await;
            mine
        }));
    }
    let mut all = BTreeSet::new();
    let mut counts = Vec::new();
    for node in nodes {
        let mine = node.await.unwrap();
        counts.push(mine.len());
        for id in mine {
            assert!(all.insert(id), "delivery {id:?} was claimed twice");
        }
    }
    assert_eq!(all.len(), 120, "every delivery claimed once: {counts:?}");
    for hook in hooks {
        assert_eq!(log(s, f.account, hook).await.len(), 60);
    }
    db
}

async fn old_finished_deliveries_are_purged(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let hook = s
        .create_webhook(
            f.account,
            &endpoint(
                "https://hooks.example.com/",
                &[WebhookEvent::CampaignStarted],
            ),
            t0(),
        )
        .await
        .unwrap()
        .0;
    let policy = RetryPolicy::default();
    for i in 0..3 {
        s.ping_webhook(f.account, hook.id, t0() + Duration::seconds(i))
            .await
            .unwrap();
    }
    let out = s
        .claim_webhook_deliveries(hook.id, "node-a", 2, t0() + Duration::seconds(5), LEASE)
        .await
        .unwrap();
    assert_eq!(out.len(), 2, "at most as many as asked");
    let delivered = AttemptResult::Delivered { status: 200 };
    s.record_webhook_attempt(&out[0], "node-a", &delivered, t0(), &policy, 0.5)
        .await
        .unwrap();
    // The third is pending; the second is leased and pending: both stay.
    let purged = s
        .purge_webhook_deliveries(t0() + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left = log(s, f.account, hook.id).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|d| d.status == DeliveryStatus::Pending));
    db
}
