//! Who a campaign may call now, and leases between nodes, on both backends.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use crm::model::*;
use crm::store::campaign_settings::{CampaignSettings, DayHours, DialMode, RecycleRule};
use crm::store::leads::{LeadId, LeadState};
use crm::testing::TestDb;
use crm::{Store, StoreError};
use dialer_core::AttemptOutcome;
use rand::{Rng, SeedableRng};

crm::on_both_backends!(
    nobody_is_called_outside_their_local_hours,
    suppressed_and_erased_numbers_are_skipped,
    exhausted_leads_are_skipped,
    retry_time_is_respected,
    callbacks_due_come_first,
    abandoned_numbers_rest_72_hours_without_a_reserved_agent,
    leases_expire_and_come_back,
    two_nodes_never_claim_the_same_lead,
    claims_at_random_clocks_stay_inside_hours,
    sync_is_idempotent_and_takes_the_best_priority,
    paused_and_foreign_campaigns_give_nothing,
    own_callbacks_wait_for_their_agent_until_the_grace_ends,
    finished_leads_are_recycled_by_outcome_after_days_up_to_the_cap,
    recycling_is_the_same_on_every_node_and_claims_once,
    upcoming_callbacks_are_listed_per_agent,
);

/// Wednesday 14 January 2026, 12:00 UTC: 12:00 in London, 07:00 in New York.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

const LEASE: Duration = Duration::seconds(60);

struct Fixture {
    account: AccountId,
    campaign: CampaignId,
    list: ListId,
}

/// Creates an account with a running campaign and one attached list.
async fn fixture(store: &Store, name: &str) -> Fixture {
    let account = store.create_account(name, 10, t0()).await.unwrap().id;
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
    store.attach_list(account, campaign, list, 5).await.unwrap();
    store
        .set_campaign_status(account, campaign, CampaignStatus::Running, t0())
        .await
        .unwrap();
    Fixture {
        account,
        campaign,
        list,
    }
}

/// Adds a contact with a stored zone to a list and returns its id.
async fn contact(store: &Store, f: &Fixture, list: ListId, phone: &str, tz: &str) -> ContactId {
    let fields = ContactFields {
        first_name: "Lead".into(),
        phone_e164: phone.into(),
        phone_raw: phone.into(),
        time_zone: Some(tz.into()),
        custom_fields: serde_json::json!({}),
        ..ContactFields::default()
    };
    let id = store
        .create_contact(f.account, &fields, t0())
        .await
        .unwrap()
        .id;
    store.add_to_list(f.account, list, id, t0()).await.unwrap();
    id
}

async fn settings(store: &Store, f: &Fixture, change: impl FnOnce(&mut CampaignSettings)) {
    let mut s = store
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap();
    change(&mut s);
    store
        .update_campaign_settings(f.account, f.campaign, &s, t0())
        .await
        .unwrap();
}

async fn claim(store: &Store, f: &Fixture, node: &str, n: usize, at: DateTime<Utc>) -> Vec<LeadId> {
    store
        .claim_leads(f.account, f.campaign, node, n, at, LEASE)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn lead_of(store: &Store, f: &Fixture, contact: ContactId) -> LeadId {
    store
        .lead_for_contact(f.account, f.campaign, contact)
        .await
        .unwrap()
        .id
}

async fn nobody_is_called_outside_their_local_hours(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "hours").await;
    let ny = contact(s, &f, f.list, "+12125550100", "America/New_York").await;
    let london = contact(s, &f, f.list, "+447700900123", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let (ny, london) = (lead_of(s, &f, ny).await, lead_of(s, &f, london).await);
    // Each instant is checked by a fresh node after the last one's lease lapsed.
    let cases = [
        (3, vec![]),            // 03:00 London, 22:00 New York
        (12, vec![london]),     // 12:00 London, 07:00 New York
        (14, vec![london, ny]), // 14:00 London, 09:00 New York
        (22, vec![ny]),         // 22:00 London, 17:00 New York
        (2, vec![]),            // 02:00 London, 21:00 New York: closed at 21:00
    ];
    for (i, (hour, expected)) in cases.into_iter().enumerate() {
        let at = Utc.with_ymd_and_hms(2026, 1, 14, 0, 0, 0).unwrap() + Duration::hours(hour);
        let at = at + Duration::days(i as i64 * 7);
        let got: BTreeSet<LeadId> = claim(s, &f, &format!("n{i}"), 10, at)
            .await
            .into_iter()
            .collect();
        assert_eq!(got, expected.into_iter().collect(), "at {at}");
    }
    db
}

async fn suppressed_and_erased_numbers_are_skipped(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "suppression").await;
    let free = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    contact(s, &f, f.list, "+447700900002", "Europe/London").await;
    let erased = "+447700900003";
    s.suppress(f.account, "+447700900002", "asked", "agent", t0())
        .await
        .unwrap();
    // Erasure keeps only the hash; the number comes back on a later import.
    s.suppress(f.account, erased, "erased", "erasure", t0())
        .await
        .unwrap();
    s.forget_suppressed_number(f.account, erased).await.unwrap();
    contact(s, &f, f.list, erased, "Europe/London").await;
    assert_eq!(s.sync_leads(f.account, f.campaign, t0()).await.unwrap(), 3);
    assert_eq!(
        claim(s, &f, "a", 10, t0()).await,
        vec![lead_of(s, &f, free).await]
    );
    db
}

async fn exhausted_leads_are_skipped(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "exhausted").await;
    settings(s, &f, |c| {
        c.max_attempts = 3;
        c.retry_delays.no_answer = Some(60);
    })
    .await;
    let c = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead = lead_of(s, &f, c).await;
    let policy = s
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap()
        .retry_policy();
    let mut now = t0();
    for attempt in 1..=3 {
        assert_eq!(
            claim(s, &f, "a", 1, now).await,
            vec![lead],
            "attempt {attempt}"
        );
        let after = s
            .record_outcome(f.account, lead, AttemptOutcome::NoAnswer, now, &policy)
            .await
            .unwrap();
        assert_eq!(after.attempts, attempt);
        now += Duration::seconds(60);
    }
    assert_eq!(
        s.lead(f.account, lead).await.unwrap().state,
        LeadState::Done
    );
    assert!(claim(s, &f, "a", 1, now + Duration::hours(1))
        .await
        .is_empty());
    // Lowering the cap below a pending lead's attempts stops it too.
    let c2 = contact(s, &f, f.list, "+447700900002", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead2 = lead_of(s, &f, c2).await;
    assert_eq!(claim(s, &f, "a", 1, now).await, vec![lead2]);
    s.record_outcome(f.account, lead2, AttemptOutcome::Busy, now, &policy)
        .await
        .unwrap();
    settings(s, &f, |c| c.max_attempts = 1).await;
    assert!(claim(s, &f, "a", 1, now + Duration::hours(1))
        .await
        .is_empty());
    db
}

async fn retry_time_is_respected(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "retry").await;
    settings(s, &f, |c| c.retry_delays.busy = Some(900)).await;
    let c = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead = lead_of(s, &f, c).await;
    let policy = s
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap()
        .retry_policy();
    assert_eq!(claim(s, &f, "a", 1, t0()).await, vec![lead]);
    let after = s
        .record_outcome(f.account, lead, AttemptOutcome::Busy, t0(), &policy)
        .await
        .unwrap();
    assert_eq!(after.next_attempt_at, Some(t0() + Duration::seconds(900)));
    assert_eq!(after.state, LeadState::Pending);
    assert_eq!(after.lease_owner, None);
    assert!(claim(s, &f, "a", 1, t0() + Duration::seconds(899))
        .await
        .is_empty());
    assert_eq!(
        claim(s, &f, "a", 1, t0() + Duration::seconds(900)).await,
        vec![lead]
    );
    db
}

async fn callbacks_due_come_first(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "callbacks").await;
    let urgent = s
        .create_list(f.account, "Urgent", "GB", t0())
        .await
        .unwrap()
        .id;
    s.attach_list(f.account, f.campaign, urgent, 1)
        .await
        .unwrap();
    let plain = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    let later = contact(s, &f, f.list, "+447700900002", "Europe/London").await;
    let first = contact(s, &f, urgent, "+447700900003", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let (plain, later, first) = (
        lead_of(s, &f, plain).await,
        lead_of(s, &f, later).await,
        lead_of(s, &f, first).await,
    );
    let agent = s
        .create_user(f.account, "cb-agent", "$argon2id$test", Role::Agent, t0())
        .await
        .unwrap()
        .id;
    s.schedule_callback(
        f.account,
        plain,
        t0() - Duration::minutes(5),
        Some(agent),
        t0(),
    )
    .await
    .unwrap();
    // A callback booked for later holds its lead back until then.
    s.schedule_callback(f.account, later, t0() + Duration::hours(2), None, t0())
        .await
        .unwrap();
    let claimed = s
        .claim_leads_for(f.account, f.campaign, "a", 10, t0(), LEASE, &[agent])
        .await
        .unwrap();
    let ids: Vec<LeadId> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![plain, first]);
    assert!(claimed[0].is_callback && claimed[0].callback_user == Some(agent));
    assert_eq!(claimed[0].reserved_for, Some(agent));
    assert!(!claimed[1].is_callback);
    // Once the booked time comes, that callback goes ahead of the urgent list.
    let policy = s
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap()
        .retry_policy();
    s.record_outcome(f.account, plain, AttemptOutcome::NoAnswer, t0(), &policy)
        .await
        .unwrap();
    s.release_lead(f.account, first, "a", t0()).await.unwrap();
    let at = t0() + Duration::hours(2);
    assert_eq!(claim(s, &f, "b", 1, at).await, vec![later]);
    assert_eq!(claim(s, &f, "b", 1, at).await, vec![first]);
    let other = s.create_account("other", 1, t0()).await.unwrap();
    let stranger = s
        .create_user(other.id, "stranger", "$argon2id$test", Role::Agent, t0())
        .await
        .unwrap();
    let refused = s
        .schedule_callback(f.account, first, at, Some(stranger.id), t0())
        .await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))));
    db
}

async fn abandoned_numbers_rest_72_hours_without_a_reserved_agent(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "abandon").await;
    settings(s, &f, |c| {
        c.mode = DialMode::Predictive;
        c.retry_delays.abandoned = Some(60);
    })
    .await;
    let c = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead = lead_of(s, &f, c).await;
    let policy = s
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap()
        .retry_policy();
    assert_eq!(claim(s, &f, "a", 1, t0()).await, vec![lead]);
    let after = s
        .record_outcome(f.account, lead, AttemptOutcome::Abandoned, t0(), &policy)
        .await
        .unwrap();
    assert_eq!(after.last_abandon_at, Some(t0()));
    assert_eq!(after.next_attempt_at, Some(t0() + Duration::hours(72)));
    // Even a callback due sooner waits out the quiet time when predictive.
    s.schedule_callback(f.account, lead, t0() + Duration::hours(1), None, t0())
        .await
        .unwrap();
    assert!(claim(s, &f, "a", 1, t0() + Duration::hours(2))
        .await
        .is_empty());
    assert!(claim(s, &f, "a", 1, t0() + Duration::hours(71))
        .await
        .is_empty());
    assert_eq!(
        claim(s, &f, "a", 1, t0() + Duration::hours(72)).await,
        vec![lead]
    );
    s.release_lead(f.account, lead, "a", t0() + Duration::hours(72))
        .await
        .unwrap();
    // A progressive campaign reserves an agent, so the callback may go ahead.
    settings(s, &f, |c| c.mode = DialMode::Progressive).await;
    assert_eq!(
        claim(s, &f, "b", 1, t0() + Duration::hours(2)).await,
        vec![lead]
    );
    db
}

async fn leases_expire_and_come_back(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "leases").await;
    let c = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead = lead_of(s, &f, c).await;
    assert_eq!(claim(s, &f, "a", 5, t0()).await, vec![lead]);
    let held = s.lead(f.account, lead).await.unwrap();
    assert_eq!(held.state, LeadState::InProgress);
    assert_eq!(held.lease_owner.as_deref(), Some("a"));
    assert!(claim(s, &f, "b", 5, t0() + Duration::seconds(30))
        .await
        .is_empty());
    // A renewal at 30 s keeps it until 90 s.
    let renewed = s
        .renew_leases("a", t0() + Duration::seconds(30), LEASE)
        .await;
    assert_eq!(renewed.unwrap(), 1);
    assert!(claim(s, &f, "b", 5, t0() + Duration::seconds(89))
        .await
        .is_empty());
    // Node a falls silent: its lead comes back when the lease lapses.
    assert_eq!(
        claim(s, &f, "b", 5, t0() + Duration::seconds(90)).await,
        vec![lead]
    );
    let stolen = s
        .release_lead(f.account, lead, "a", t0() + Duration::seconds(91))
        .await;
    assert!(matches!(stolen, Err(StoreError::NotFound)));
    s.release_lead(f.account, lead, "b", t0() + Duration::seconds(91))
        .await
        .unwrap();
    assert_eq!(
        claim(s, &f, "c", 5, t0() + Duration::seconds(92)).await,
        vec![lead]
    );
    db
}

async fn two_nodes_never_claim_the_same_lead(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "nodes").await;
    for i in 0..200 {
        contact(s, &f, f.list, &format!("+4477009{i:05}"), "Europe/London").await;
    }
    assert_eq!(
        s.sync_leads(f.account, f.campaign, t0()).await.unwrap(),
        200
    );
    let mut nodes = Vec::new();
    for node in ["node-a", "node-b"] {
        // Each node has its own pool, as two processes would.
        let store = Store::connect(&db.url).await.unwrap();
        let (account, campaign) = (f.account, f.campaign);
        nodes.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_leads(account, campaign, node, 7, t0(), LEASE)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|c| c.id));
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
            assert!(all.insert(id), "lead {id:?} was claimed twice");
        }
    }
    assert_eq!(all.len(), 200, "every lead claimed once: {counts:?}");
    db
}

async fn claims_at_random_clocks_stay_inside_hours(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "random").await;
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    settings(s, &f, |c| {
        c.calling_hours.sat = Some(DayHours {
            start: hm(10, 0),
            end: hm(14, 30),
        });
        c.calling_hours.sun = None;
    })
    .await;
    let zones = [
        "America/New_York",
        "America/Los_Angeles",
        "Europe/London",
        "Asia/Tokyo",
        "Australia/Sydney",
    ];
    let mut zone_of = std::collections::BTreeMap::new();
    for (i, zone) in zones.iter().enumerate() {
        let c = contact(s, &f, f.list, &format!("+447700900{i:03}"), zone).await;
        zone_of.insert(c, zone.parse::<Tz>().unwrap());
    }
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for round in 0..60 {
        let at = t0() + Duration::minutes(rng.gen_range(0..60 * 24 * 400));
        let node = format!("n{round}");
        let claimed = s
            .claim_leads(f.account, f.campaign, &node, 10, at, LEASE)
            .await
            .unwrap();
        let got: BTreeSet<ContactId> = claimed.iter().map(|c| c.contact_id).collect();
        for (contact, tz) in &zone_of {
            let local = at.with_timezone(tz);
            let minutes = local.hour() * 60 + local.minute();
            let open = match local.format("%a").to_string().as_str() {
                "Sun" => false,
                "Sat" => (600..870).contains(&minutes),
                _ => (480..1260).contains(&minutes),
            };
            assert_eq!(got.contains(contact), open, "{tz} at {at} ({local})");
        }
        for c in claimed {
            s.release_lead(f.account, c.id, &node, at).await.unwrap();
        }
    }
    db
}

async fn sync_is_idempotent_and_takes_the_best_priority(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "sync").await;
    let second = s
        .create_list(f.account, "Second", "GB", t0())
        .await
        .unwrap()
        .id;
    s.attach_list(f.account, f.campaign, second, 2)
        .await
        .unwrap();
    let both = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.add_to_list(f.account, second, both, t0()).await.unwrap();
    contact(s, &f, f.list, "+447700900002", "Europe/London").await;
    assert_eq!(s.sync_leads(f.account, f.campaign, t0()).await.unwrap(), 2);
    assert_eq!(s.sync_leads(f.account, f.campaign, t0()).await.unwrap(), 0);
    let lead = s
        .lead_for_contact(f.account, f.campaign, both)
        .await
        .unwrap();
    assert_eq!(
        (lead.priority, lead.attempts, lead.state),
        (2, 0, LeadState::Pending)
    );
    db
}

async fn paused_and_foreign_campaigns_give_nothing(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "mine").await;
    let c = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead = lead_of(s, &f, c).await;
    let other = fixture(s, "theirs").await;
    let foreign = s
        .claim_leads(other.account, f.campaign, "x", 5, t0(), LEASE)
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    assert!(matches!(
        s.lead(other.account, lead).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.sync_leads(other.account, f.campaign, t0()).await,
        Err(StoreError::NotFound)
    ));
    s.set_campaign_status(f.account, f.campaign, CampaignStatus::Paused, t0())
        .await
        .unwrap();
    assert!(claim(s, &f, "a", 5, t0()).await.is_empty());
    db
}

async fn own_callbacks_wait_for_their_agent_until_the_grace_ends(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "own-callbacks").await;
    settings(s, &f, |c| c.callback_grace_minutes = 20).await;
    let c = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let lead = lead_of(s, &f, c).await;
    let user = |name: &'static str| async move {
        s.create_user(f.account, name, "$argon2id$test", Role::Agent, t0())
            .await
            .unwrap()
            .id
    };
    let (mine, other) = (user("mine").await, user("other").await);
    let due = t0() + Duration::minutes(10);
    s.schedule_callback(f.account, lead, due, Some(mine), t0())
        .await
        .unwrap();
    let for_agents = |agents: Vec<UserId>, at| async move {
        s.claim_leads_for(f.account, f.campaign, "a", 5, at, LEASE, &agents)
            .await
            .unwrap()
    };
    // Not due yet: nobody gets it, its owner included.
    assert!(for_agents(vec![mine], t0()).await.is_empty());
    // Due: only a claim made for its owner gets it, kept for them.
    let in_grace = due + Duration::minutes(19);
    assert!(for_agents(vec![other], in_grace).await.is_empty());
    assert!(claim(s, &f, "a", 5, in_grace).await.is_empty());
    let got = for_agents(vec![other, mine], in_grace).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].reserved_for), (lead, Some(mine)));
    s.release_lead(f.account, lead, "a", in_grace)
        .await
        .unwrap();
    // Once the grace is over, anyone may take it, kept for no one.
    let after = due + Duration::minutes(20);
    let got = for_agents(vec![other], after).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].reserved_for), (lead, None));
    assert_eq!(got[0].callback_user, Some(mine));
    s.release_lead(f.account, lead, "a", after).await.unwrap();
    assert_eq!(claim(s, &f, "b", 5, after).await, vec![lead]);
    db
}

async fn finished_leads_are_recycled_by_outcome_after_days_up_to_the_cap(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "recycle").await;
    settings(s, &f, |c| {
        c.max_attempts = 1;
        c.recycle = vec![RecycleRule {
            outcome: "no_answer".into(),
            after_days: 7,
        }];
        c.recycle_max_attempts = 3;
    })
    .await;
    let quiet = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    let busy = contact(s, &f, f.list, "+447700900002", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let (quiet, busy) = (lead_of(s, &f, quiet).await, lead_of(s, &f, busy).await);
    let policy = s
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap()
        .retry_policy();
    let mut now = t0();
    assert_eq!(claim(s, &f, "a", 5, now).await, vec![quiet, busy]);
    s.record_outcome(f.account, quiet, AttemptOutcome::NoAnswer, now, &policy)
        .await
        .unwrap();
    s.record_outcome(f.account, busy, AttemptOutcome::Busy, now, &policy)
        .await
        .unwrap();
    for attempt in 2..=3 {
        // Finished, and not yet seven days on.
        assert_eq!(
            s.lead(f.account, quiet).await.unwrap().state,
            LeadState::Done
        );
        let almost = now + Duration::days(7) - Duration::seconds(1);
        assert!(claim(s, &f, "a", 5, almost).await.is_empty());
        // Seven days after its last attempt, the no-answer lead comes back;
        // the busy one has no rule.
        now += Duration::days(7);
        assert_eq!(
            claim(s, &f, "a", 5, now).await,
            vec![quiet],
            "attempt {attempt}"
        );
        let after = s
            .record_outcome(f.account, quiet, AttemptOutcome::NoAnswer, now, &policy)
            .await
            .unwrap();
        assert_eq!((after.attempts, after.state), (attempt, LeadState::Done));
    }
    // Three attempts reach the cap: never again.
    assert!(claim(s, &f, "a", 5, now + Duration::days(60))
        .await
        .is_empty());
    // A lead that ended in a conversation is never recycled.
    let talked = contact(s, &f, f.list, "+447700900003", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, now).await.unwrap();
    let talked = lead_of(s, &f, talked).await;
    assert_eq!(claim(s, &f, "a", 5, now).await, vec![talked]);
    s.record_conversation(f.account, talked, now).await.unwrap();
    assert!(claim(s, &f, "a", 5, now + Duration::days(60))
        .await
        .is_empty());
    // Rules are checked when saved.
    let mut bad = s.campaign_settings(f.account, f.campaign).await.unwrap();
    bad.recycle_max_attempts = 1;
    let refused = s
        .update_campaign_settings(f.account, f.campaign, &bad, now)
        .await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))));
    bad.recycle_max_attempts = 3;
    bad.recycle[0].outcome = "answered".into();
    let refused = s
        .update_campaign_settings(f.account, f.campaign, &bad, now)
        .await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))));
    db
}

async fn recycling_is_the_same_on_every_node_and_claims_once(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "recycle-nodes").await;
    settings(s, &f, |c| {
        c.max_attempts = 1;
        c.recycle = vec![RecycleRule {
            outcome: "machine".into(),
            after_days: 2,
        }];
        c.recycle_max_attempts = 5;
    })
    .await;
    let mut leads = BTreeSet::new();
    for i in 0..6 {
        let c = contact(s, &f, f.list, &format!("+44770090010{i}"), "Europe/London").await;
        s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
        leads.insert(lead_of(s, &f, c).await);
    }
    let policy = s
        .campaign_settings(f.account, f.campaign)
        .await
        .unwrap()
        .retry_policy();
    for &lead in &leads {
        assert_eq!(claim(s, &f, "a", 1, t0()).await.len(), 1);
        s.record_outcome(f.account, lead, AttemptOutcome::Machine, t0(), &policy)
            .await
            .unwrap();
    }
    let later = t0() + Duration::days(2);
    // Two nodes claim at once: each recycled lead goes to exactly one.
    // (A claimer may skip rows the other has locked; a third picks up the rest.)
    let (a, b) = tokio::join!(claim(s, &f, "a", 4, later), claim(s, &f, "b", 4, later));
    let rest = claim(s, &f, "c", 6, later).await;
    let mut all: Vec<LeadId> = a.iter().chain(&b).chain(&rest).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        a.len() + b.len() + rest.len(),
        "no lead claimed twice"
    );
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), leads);
    // Leased now, they are not recycled again until written.
    assert!(claim(s, &f, "d", 6, later).await.is_empty());
    db
}

async fn upcoming_callbacks_are_listed_per_agent(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "upcoming").await;
    let one = contact(s, &f, f.list, "+447700900001", "Europe/London").await;
    let two = contact(s, &f, f.list, "+447700900002", "Europe/London").await;
    let three = contact(s, &f, f.list, "+447700900003", "Europe/London").await;
    s.sync_leads(f.account, f.campaign, t0()).await.unwrap();
    let agent = s
        .create_user(f.account, "upcoming", "$argon2id$test", Role::Agent, t0())
        .await
        .unwrap()
        .id;
    let (one, two, three) = (
        lead_of(s, &f, one).await,
        lead_of(s, &f, two).await,
        lead_of(s, &f, three).await,
    );
    s.schedule_callback(f.account, two, t0() + Duration::hours(3), Some(agent), t0())
        .await
        .unwrap();
    s.schedule_callback(f.account, one, t0() + Duration::hours(1), Some(agent), t0())
        .await
        .unwrap();
    s.schedule_callback(f.account, three, t0() + Duration::hours(2), None, t0())
        .await
        .unwrap();
    let mine = s
        .upcoming_callbacks(f.account, Some(agent), 50)
        .await
        .unwrap();
    let ids: Vec<LeadId> = mine.iter().map(|c| c.lead_id).collect();
    assert_eq!(ids, vec![one, two]);
    assert_eq!(mine[0].user_id, Some(agent));
    assert_eq!(mine[0].campaign_id, f.campaign);
    let all = s.upcoming_callbacks(f.account, None, 50).await.unwrap();
    let ids: Vec<LeadId> = all.iter().map(|c| c.lead_id).collect();
    assert_eq!(ids, vec![one, three, two]);
    let other = fixture(s, "upcoming-other").await;
    assert!(s
        .upcoming_callbacks(other.account, None, 50)
        .await
        .unwrap()
        .is_empty());
    db
}
