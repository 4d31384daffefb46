//! The abandon figures counted from the attempts every node writes, and a
//! node closing what it left open, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::store::compliance::{ComplianceCounts, INTERRUPTED};
use crm::store::leads::LeadState;
use crm::testing::TestDb;
use crm::Store;
use dialer_core::Counts;
use vocab::CallRef;

crm::on_both_backends!(
    figures_count_every_node_over_both_windows,
    a_restarted_node_closes_what_it_left_open,
    recovery_leaves_other_nodes_alone,
);

/// Tuesday 10 November 2026, 10:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 10, 0, 0)
        .single()
        .expect("valid time")
}

struct Fixture {
    account: AccountId,
    campaign: CampaignId,
    contacts: Vec<ContactId>,
}

async fn fixture(store: &Store, contacts: usize) -> Fixture {
    let account = store.create_account("acme", 10, t0()).await.unwrap().id;
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
    store.attach_list(account, campaign, list, 0).await.unwrap();
    store
        .set_campaign_status(account, campaign, CampaignStatus::Running, t0())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..contacts {
        let phone = format!("+4477009001{i:02}");
        let fields = ContactFields {
            first_name: "Lead".into(),
            phone_e164: phone.clone(),
            phone_raw: phone,
            time_zone: Some("Europe/London".into()),
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        };
        let id = store
            .create_contact(account, &fields, t0())
            .await
            .unwrap()
            .id;
        store.add_to_list(account, list, id, t0()).await.unwrap();
        ids.push(id);
    }
    store.sync_leads(account, campaign, t0()).await.unwrap();
    Fixture {
        account,
        campaign,
        contacts: ids,
    }
}

/// Places, answers and settles one call at `at` from `node`.
async fn call(
    s: &Store,
    f: &Fixture,
    contact: ContactId,
    node: &str,
    at: DateTime<Utc>,
    abandoned: bool,
) -> CallRef {
    let call = CallRef::random();
    s.open_attempt(f.account, call, f.campaign, contact, node, at)
        .await
        .unwrap();
    s.mark_call_answered(f.account, call, at).await.unwrap();
    if abandoned {
        s.mark_abandoned(f.account, call, at + Duration::seconds(2))
            .await
            .unwrap();
    } else {
        s.mark_connected(f.account, call, at + Duration::seconds(1))
            .await
            .unwrap();
    }
    call
}

async fn figures_count_every_node_over_both_windows(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 1).await;
    let c = f.contacts[0];
    let now = t0();
    // Within the day: 6 live on two nodes, 2 of them abandoned.
    for (i, node) in ["a", "b", "a", "b", "a", "b"].into_iter().enumerate() {
        let at = now - Duration::minutes(10 * (i as i64 + 1));
        call(s, &f, c, node, at, i < 2).await;
    }
    // Within the month only: 3 live, 1 abandoned.
    for (i, days) in [2, 10, 29].into_iter().enumerate() {
        call(s, &f, c, "a", now - Duration::days(days), i == 0).await;
    }
    // Outside both windows, and an unanswered call: neither counts.
    call(s, &f, c, "a", now - Duration::days(31), true).await;
    s.open_attempt(f.account, CallRef::random(), f.campaign, c, "a", now)
        .await
        .unwrap();
    let counts = s.compliance_counts(f.campaign, now).await.unwrap();
    assert_eq!(
        counts,
        ComplianceCounts {
            day: Counts {
                live: 6,
                abandoned: 2
            },
            month: Counts {
                live: 9,
                abandoned: 3
            },
        }
    );
    // A day less a quarter of an hour on, only the newest call (abandoned)
    // is left in the day.
    let later = s
        .compliance_counts(
            f.campaign,
            now + Duration::hours(24) - Duration::minutes(15),
        )
        .await
        .unwrap();
    assert_eq!(
        later.day,
        Counts {
            live: 1,
            abandoned: 1
        }
    );
    // Another campaign's figures are its own.
    let other = s
        .create_campaign(f.account, "Other", "+442079460000", now)
        .await
        .unwrap();
    let none = s.compliance_counts(other.id, now).await.unwrap();
    assert_eq!(none, ComplianceCounts::default());
    db
}

async fn a_restarted_node_closes_what_it_left_open(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 4).await;
    let now = t0();
    let leads = s
        .claim_leads(f.account, f.campaign, "a", 4, now, Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(leads.len(), 4, "four leads leased to node a");
    let of = |contact: ContactId| contact;
    // Ringing when the node died.
    let ringing = CallRef::random();
    s.open_attempt(f.account, ringing, f.campaign, of(f.contacts[0]), "a", now)
        .await
        .unwrap();
    // Answered, waiting for an agent.
    let waiting = CallRef::random();
    s.open_attempt(f.account, waiting, f.campaign, f.contacts[1], "a", now)
        .await
        .unwrap();
    let attempt = s.attempt_by_ref(f.account, waiting).await.unwrap();
    s.mark_answered(f.account, attempt.id, now).await.unwrap();
    // Talking to an agent.
    let talking = call(s, &f, f.contacts[2], "a", now, false).await;
    // The fourth lead was claimed and never dialled.
    let before = s
        .compliance_counts(f.campaign, now + Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(
        before.day,
        Counts {
            live: 1,
            abandoned: 0
        }
    );

    let later = now + Duration::seconds(30);
    let recovery = s.recover_node("a", later).await.unwrap();
    assert_eq!(recovery.abandoned, 1, "the waiting call is an abandon");
    assert_eq!(recovery.interrupted, 2, "ringing and talking were cut");
    assert_eq!(recovery.leads, 4, "every lead node a held comes back");

    let after = s.compliance_counts(f.campaign, later).await.unwrap();
    assert_eq!(
        after.day,
        Counts {
            live: 2,
            abandoned: 1
        }
    );
    let outcome = |r: CallRef| async move { s.attempt_by_ref(f.account, r).await.unwrap().outcome };
    assert_eq!(outcome(ringing).await.as_deref(), Some(INTERRUPTED));
    assert_eq!(outcome(waiting).await.as_deref(), Some("abandoned"));
    assert_eq!(outcome(talking).await.as_deref(), Some(INTERRUPTED));
    for contact in &f.contacts {
        let lead = s
            .lead_for_contact(f.account, f.campaign, *contact)
            .await
            .unwrap();
        assert_eq!(lead.state, LeadState::Pending, "lead of {contact:?}");
        assert_eq!(lead.lease_owner, None);
    }
    let waited = s
        .lead_for_contact(f.account, f.campaign, f.contacts[1])
        .await
        .unwrap();
    assert_eq!(
        waited.last_abandon_at,
        Some(later),
        "the 72-hour rest applies"
    );
    assert_eq!(waited.attempts, 1, "the abandoned attempt counts");
    let undialled = s
        .lead_for_contact(f.account, f.campaign, f.contacts[3])
        .await
        .unwrap();
    assert_eq!(undialled.attempts, 0, "an undialled lead used no attempt");
    // Recovering again finds nothing: it is idempotent.
    let again = s.recover_node("a", later).await.unwrap();
    assert_eq!(again, Default::default());
    // No lead is claimed twice: the abandoned one rests, the others are due.
    let reclaimed = s
        .claim_leads(f.account, f.campaign, "a", 4, later, Duration::minutes(30))
        .await
        .unwrap();
    assert!(
        reclaimed.iter().all(|l| l.contact_id != f.contacts[1]),
        "an abandoned number rests 72 hours"
    );
    db
}

async fn recovery_leaves_other_nodes_alone(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, 2).await;
    let now = t0();
    let user = s
        .create_user(f.account, "agent", "x", Role::Agent, now)
        .await
        .unwrap();
    s.claim_leads(f.account, f.campaign, "b", 1, now, Duration::minutes(30))
        .await
        .unwrap();
    let theirs = CallRef::random();
    s.open_attempt(f.account, theirs, f.campaign, f.contacts[0], "b", now)
        .await
        .unwrap();
    s.record_agent_state_on(
        f.account,
        user.id,
        crm::events::AgentState::Ready,
        None,
        now,
        Some("b"),
    )
    .await
    .unwrap();
    let recovery = s.recover_node("a", now).await.unwrap();
    assert_eq!(recovery, Default::default(), "node a left nothing open");
    let attempt = s.attempt_by_ref(f.account, theirs).await.unwrap();
    assert_eq!(attempt.ended_at, None, "node b's call is still its own");
    let recovery = s.recover_node("b", now).await.unwrap();
    assert_eq!(recovery.agents, 1, "node b's Ready agent is closed");
    db
}
