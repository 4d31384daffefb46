//! Nodes joining, beating, dying and being recovered by a survivor, and the
//! fencing that keeps a node declared dead from landing a late write, on
//! both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::store::campaign_settings::CampaignSettings;
use crm::store::compliance::INTERRUPTED;
use crm::store::desks::KeptDesk;
use crm::store::leads::LeadState;
use crm::store::nodes::{Beat, Holder};
use crm::testing::TestDb;
use crm::{Store, StoreError};
use dialer_core::AttemptOutcome;
use vocab::{AgentState, CallRef};

crm::on_both_backends!(
    each_start_takes_a_higher_epoch_and_fences_the_last,
    a_silent_node_is_declared_dead_once_and_a_left_one_never,
    a_fenced_node_can_neither_lease_nor_finish_nor_stamp,
    a_survivor_closes_only_the_dead_epoch,
    the_heartbeat_renews_leases_so_long_calls_keep_their_lead,
    an_unfinished_recovery_is_taken_over,
    a_desk_kept_by_one_node_is_read_by_any_and_only_in_its_account,
    agents_still_logged_in_seed_the_wallboards,
);

const LEASE: Duration = Duration::minutes(30);
const TIMEOUT: Duration = Duration::seconds(10);

/// Tuesday 10 November 2026, 10:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 10, 0, 0)
        .single()
        .expect("valid time")
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

struct Fixture {
    account: AccountId,
    campaign: CampaignId,
}

async fn fixture(s: &Store, contacts: usize) -> Fixture {
    let account = s.create_account("acme", 10, t0()).await.unwrap().id;
    let campaign = s
        .create_campaign(account, "Winter", "+442079460000", t0())
        .await
        .unwrap()
        .id;
    let list = s.create_list(account, "Main", "GB", t0()).await.unwrap().id;
    s.attach_list(account, campaign, list, 0).await.unwrap();
    s.set_campaign_status(account, campaign, CampaignStatus::Running, t0())
        .await
        .unwrap();
    for i in 0..contacts {
        let phone = format!("+4474009001{i:02}");
        let fields = ContactFields {
            first_name: "Lead".into(),
            phone_e164: phone.clone(),
            phone_raw: phone,
            time_zone: Some("Europe/London".into()),
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        };
        let id = s.create_contact(account, &fields, t0()).await.unwrap().id;
        s.add_to_list(account, list, id, t0()).await.unwrap();
    }
    s.sync_leads(account, campaign, t0()).await.unwrap();
    Fixture { account, campaign }
}

async fn join(s: &Store, name: &str, now: DateTime<Utc>) -> Holder {
    s.join_node(name, now, TIMEOUT).await.unwrap().0
}

async fn each_start_takes_a_higher_epoch_and_fences_the_last(db: TestDb) -> TestDb {
    let s = &db.store;
    let (first, clash) = s.join_node("a", at(0), TIMEOUT).await.unwrap();
    assert!(!clash, "nobody of that name was alive");
    assert_eq!(first.epoch(), 1);
    // Restarted two seconds later, as systemd would after a crash.
    let (second, clash) = s.join_node("a", at(2), TIMEOUT).await.unwrap();
    assert!(clash, "the last process of that name beat moments ago");
    assert!(second.epoch() > first.epoch());
    assert_eq!(
        s.beat(&first, at(3), LEASE).await.unwrap(),
        Beat::Fenced,
        "the old process learns it was replaced"
    );
    assert!(matches!(
        s.beat(&second, at(3), LEASE).await.unwrap(),
        Beat::Alive { .. }
    ));
    assert!(s.holds_membership(&second).await.unwrap());
    assert!(!s.holds_membership(&first).await.unwrap());
    assert!(
        !s.holds_membership(&Holder::from("a")).await.unwrap(),
        "a bare name is no member once the node joined"
    );
    assert!(matches!(
        s.join_node("", at(4), TIMEOUT).await,
        Err(StoreError::Invalid(_))
    ));
    db
}

async fn a_silent_node_is_declared_dead_once_and_a_left_one_never(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = join(s, "a", at(0)).await;
    let b = join(s, "b", at(0)).await;
    let c = join(s, "c", at(0)).await;
    s.leave_node(&c, at(1)).await.unwrap();
    // a goes silent; b beats on.
    for t in [2, 4, 6, 8, 10] {
        s.beat(&b, at(t), LEASE).await.unwrap();
    }
    assert!(
        s.declare_dead(&b, at(10), TIMEOUT)
            .await
            .unwrap()
            .is_empty(),
        "ten seconds of silence is not yet death"
    );
    assert_eq!(
        s.declare_dead(&b, at(11), TIMEOUT).await.unwrap(),
        vec!["a".to_owned()],
        "a is dead; c left cleanly and is nobody's to recover"
    );
    let row = s.node("a").await.unwrap().expect("a is known");
    assert_eq!(row.state, "down");
    assert!(row.epoch > a.epoch(), "declaring it dead fenced it");
    assert_eq!(row.recovered_by.as_deref(), Some("b"));
    // A second survivor racing gets nothing to do.
    let d = join(s, "d", at(11)).await;
    assert!(s
        .declare_dead(&d, at(11), TIMEOUT)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.beat(&a, at(12), LEASE).await.unwrap(), Beat::Fenced);
    let states: Vec<(String, String)> = s
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.name, n.state))
        .collect();
    assert_eq!(
        states,
        [("a", "down"), ("b", "up"), ("c", "left"), ("d", "up")]
            .map(|(n, st)| (n.to_owned(), st.to_owned()))
    );
    db
}

async fn a_fenced_node_can_neither_lease_nor_finish_nor_stamp(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 4).await;
    let a = join(s, "a", at(0)).await;
    let b = join(s, "b", at(0)).await;
    let leads = s
        .claim_leads(f.account, f.campaign, &a, 2, at(0), LEASE)
        .await
        .unwrap();
    assert_eq!(leads.len(), 2);
    let call = CallRef::random();
    s.open_attempt(f.account, call, f.campaign, leads[0].contact_id, &a, at(1))
        .await
        .unwrap();
    s.mark_call_answered(f.account, call, at(2)).await.unwrap();

    // a freezes (a paused VM); b declares it dead and recovers it.
    s.beat(&b, at(20), LEASE).await.unwrap();
    assert_eq!(
        s.declare_dead(&b, at(20), TIMEOUT).await.unwrap(),
        vec!["a".to_owned()]
    );
    let epoch = s.node("a").await.unwrap().unwrap().epoch;
    let recovery = s.recover_node_before("a", epoch, at(20)).await.unwrap();
    assert_eq!(recovery.abandoned, 1, "answered, no agent: an abandon");
    assert_eq!(recovery.leads, 2, "both leads are back");
    assert_eq!(recovery.calls.len(), 1);
    assert_eq!(recovery.calls[0].call_ref, call);
    s.node_recovered("a", at(20)).await.unwrap();

    // a wakes up and carries on as if nothing happened: every write fails.
    assert!(matches!(
        s.mark_connected(f.account, call, at(21)).await,
        Err(StoreError::NotFound)
    ));
    let counts = s.compliance_counts(f.campaign, at(21)).await.unwrap();
    assert_eq!(
        (counts.day.live, counts.day.abandoned),
        (1, 1),
        "one live call, abandoned: the late connection did not land"
    );
    let attempt = s.attempt_by_ref(f.account, call).await.unwrap();
    assert!(matches!(
        s.mark_ended(f.account, attempt.id, "answered", at(22))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.attempt_by_ref(f.account, call)
            .await
            .unwrap()
            .outcome
            .as_deref(),
        Some("abandoned"),
        "the survivor's account of the call stands"
    );
    let policy = CampaignSettings::defaults("+442079460000").retry_policy();
    let late = s
        .record_held_outcome(
            &a,
            f.account,
            leads[1].id,
            AttemptOutcome::NoAnswer,
            at(22),
            &policy,
        )
        .await;
    assert!(matches!(late, Err(StoreError::Refused(_))), "{late:?}");
    let late = s
        .record_held_conversation(&a, f.account, leads[0].id, at(22))
        .await;
    assert!(matches!(late, Err(StoreError::Refused(_))), "{late:?}");
    assert!(
        s.claim_leads(f.account, f.campaign, &a, 4, at(22), LEASE)
            .await
            .unwrap()
            .is_empty(),
        "a fenced node leases nothing"
    );
    assert!(matches!(
        s.release_lead(f.account, leads[1].id, &a, at(22)).await,
        Err(StoreError::NotFound)
    ));
    let first = s.lead(f.account, leads[0].id).await.unwrap();
    assert_eq!(first.attempts, 1, "the abandoned call counted once");
    let second = s.lead(f.account, leads[1].id).await.unwrap();
    assert_eq!(
        (second.state, second.attempts),
        (LeadState::Pending, 0),
        "the undialled lead is back, untouched by the late write"
    );

    // b, alive, takes the undialled lead and finishes it under its own lease.
    let taken = s
        .claim_leads(f.account, f.campaign, &b, 4, at(23), LEASE)
        .await
        .unwrap();
    assert!(taken.iter().any(|l| l.id == leads[1].id));
    s.record_held_outcome(
        &b,
        f.account,
        leads[1].id,
        AttemptOutcome::NoAnswer,
        at(30),
        &policy,
    )
    .await
    .unwrap();
    assert_eq!(s.lead(f.account, leads[1].id).await.unwrap().attempts, 1);
    db
}

async fn a_survivor_closes_only_the_dead_epoch(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 2).await;
    let old = join(s, "a", at(0)).await;
    let b = join(s, "b", at(0)).await;
    let leads = s
        .claim_leads(f.account, f.campaign, &old, 1, at(0), LEASE)
        .await
        .unwrap();
    let old_call = CallRef::random();
    s.open_attempt(
        f.account,
        old_call,
        f.campaign,
        leads[0].contact_id,
        &old,
        at(1),
    )
    .await
    .unwrap();
    s.beat(&b, at(20), LEASE).await.unwrap();
    s.declare_dead(&b, at(20), TIMEOUT).await.unwrap();
    let dead_epoch = s.node("a").await.unwrap().unwrap().epoch;
    // Before the survivor gets to it, a restarts and places a call.
    let new = join(s, "a", at(20)).await;
    let fresh = s
        .claim_leads(f.account, f.campaign, &new, 1, at(20), LEASE)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1);
    let new_call = CallRef::random();
    s.open_attempt(
        f.account,
        new_call,
        f.campaign,
        fresh[0].contact_id,
        &new,
        at(20),
    )
    .await
    .unwrap();
    let recovery = s
        .recover_node_before("a", dead_epoch, at(21))
        .await
        .unwrap();
    assert_eq!(recovery.calls.len(), 1, "{recovery:?}");
    assert_eq!(recovery.calls[0].call_ref, old_call);
    assert_eq!(recovery.calls[0].outcome, INTERRUPTED);
    let new_attempt = s.attempt_by_ref(f.account, new_call).await.unwrap();
    assert_eq!(new_attempt.ended_at, None, "the new start's call runs on");
    let lead = s.lead(f.account, fresh[0].id).await.unwrap();
    assert_eq!(lead.state, LeadState::InProgress);
    assert_eq!(lead.lease_owner.as_deref(), Some("a"));
    db
}

async fn the_heartbeat_renews_leases_so_long_calls_keep_their_lead(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 1).await;
    let a = join(s, "a", at(0)).await;
    let b = join(s, "b", at(0)).await;
    let short = Duration::seconds(60);
    let leads = s
        .claim_leads(f.account, f.campaign, &a, 1, at(0), short)
        .await
        .unwrap();
    assert_eq!(leads.len(), 1);
    // A conversation far longer than the lease, with a beating heart.
    for t in (30..=600).step_by(30) {
        assert_eq!(
            s.beat(&a, at(t), short).await.unwrap(),
            Beat::Alive { renewed: 1 }
        );
        s.beat(&b, at(t), short).await.unwrap();
        assert!(
            s.claim_leads(f.account, f.campaign, &b, 1, at(t), short)
                .await
                .unwrap()
                .is_empty(),
            "at {t} s the lead is still a's"
        );
    }
    db
}

async fn an_unfinished_recovery_is_taken_over(db: TestDb) -> TestDb {
    let s = &db.store;
    join(s, "a", at(0)).await;
    let b = join(s, "b", at(0)).await;
    let c = join(s, "c", at(0)).await;
    s.beat(&b, at(15), LEASE).await.unwrap();
    s.beat(&c, at(15), LEASE).await.unwrap();
    assert_eq!(
        s.declare_dead(&b, at(15), TIMEOUT).await.unwrap(),
        vec!["a".to_owned()]
    );
    // b dies before recovering a; c beats on.
    for t in [20, 25] {
        s.beat(&c, at(t), LEASE).await.unwrap();
    }
    let mut taken = s.declare_dead(&c, at(26), TIMEOUT).await.unwrap();
    taken.sort();
    assert_eq!(
        taken,
        vec!["a".to_owned(), "b".to_owned()],
        "c declares b dead and takes over a's unfinished recovery"
    );
    s.node_recovered("a", at(26)).await.unwrap();
    s.node_recovered("b", at(26)).await.unwrap();
    assert!(s
        .declare_dead(&c, at(60), TIMEOUT)
        .await
        .unwrap()
        .is_empty());
    db
}

async fn a_desk_kept_by_one_node_is_read_by_any_and_only_in_its_account(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 1).await;
    let hash = crm::password::hash("Pw-desk-1234").unwrap();
    let al = s
        .create_user(f.account, "al", &hash, Role::Agent, t0())
        .await
        .unwrap();
    let other = s.create_account("other", 1, t0()).await.unwrap().id;
    assert_eq!(s.kept_desk(f.account, al.id).await.unwrap(), None);
    let call = CallRef::random();
    let mut desk = KeptDesk {
        campaign_id: Some(f.campaign),
        phase: "in_call".into(),
        call_ref: Some(call),
        pause_code: None,
        node: "a".into(),
    };
    s.keep_desk(f.account, al.id, &desk, at(1)).await.unwrap();
    assert_eq!(
        s.kept_desk(f.account, al.id).await.unwrap(),
        Some(desk.clone())
    );
    // The node the page reconnects to carries on and keeps it in turn.
    desk.phase = "wrap_up".into();
    desk.node = "b".into();
    s.keep_desk(f.account, al.id, &desk, at(2)).await.unwrap();
    assert_eq!(
        s.kept_desk(f.account, al.id).await.unwrap(),
        Some(desk.clone())
    );
    // Another account neither reads nor writes it.
    assert_eq!(s.kept_desk(other, al.id).await.unwrap(), None);
    let foreign = KeptDesk {
        phase: "paused".into(),
        call_ref: None,
        ..desk.clone()
    };
    s.keep_desk(other, al.id, &foreign, at(3)).await.unwrap();
    assert_eq!(s.kept_desk(f.account, al.id).await.unwrap(), Some(desk));
    db
}

async fn agents_still_logged_in_seed_the_wallboards(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 0).await;
    let hash = crm::password::hash("Pw-seed-1234").unwrap();
    let mut users = Vec::new();
    for name in ["al", "bo", "cy", "di"] {
        let u = s
            .create_user(f.account, name, &hash, Role::Agent, t0())
            .await
            .unwrap();
        users.push(u.id);
    }
    let [al, bo, cy, di] = users[..] else {
        unreachable!("four users")
    };
    let day = |d: i64| t0() - Duration::days(d);
    let state = |u, st, at| s.record_agent_state(f.account, u, st, None, at);
    // al: ready two days ago, paused yesterday, and still paused.
    state(al, AgentState::Ready, day(2)).await.unwrap();
    s.record_agent_state(f.account, al, AgentState::Paused, Some("lunch"), day(1))
        .await
        .unwrap();
    // bo logged out; cy's last change is older than the week looked at;
    // di is ready but was deactivated.
    state(bo, AgentState::Ready, day(2)).await.unwrap();
    state(bo, AgentState::LoggedOut, day(1)).await.unwrap();
    state(cy, AgentState::Ready, day(10)).await.unwrap();
    state(di, AgentState::Ready, day(1)).await.unwrap();
    s.set_user_active(f.account, di, false).await.unwrap();
    let seed = s.agents_logged_in(day(7)).await.unwrap();
    assert_eq!(seed.len(), 1, "{seed:?}");
    let crm::events::Event::AgentState {
        account,
        user_id,
        username,
        state,
        pause_code,
        at,
    } = &seed[0]
    else {
        panic!("an agent state: {seed:?}")
    };
    assert_eq!((*account, *user_id), (f.account, al));
    assert_eq!(username, "al");
    assert_eq!(*state, AgentState::Paused);
    assert_eq!(pause_code.as_deref(), Some("lunch"));
    assert_eq!(*at, day(1));
    db
}
