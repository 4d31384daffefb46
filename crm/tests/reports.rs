//! Supervisors' reports over planted calls, states and dispositions, on
//! both backends: every figure is checked against what was planted.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use crm::events::AgentState;
use crm::model::*;
use crm::store::reports::Period;
use crm::testing::TestDb;
use crm::StoreError;
use vocab::CallRef;

crm::on_both_backends!(
    agent_figures_add_up_calls_states_and_dispositions,
    campaign_figures_count_outcomes_and_abandons_by_hour,
    agents_are_added_only_within_the_seats,
);

fn at(day: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, h, m, s)
        .single()
        .expect("valid time")
}

fn day_14() -> Period {
    Period {
        from: at(14, 0, 0, 0),
        to: at(15, 0, 0, 0),
    }
}

struct Floor {
    account: AccountId,
    spring: CampaignId,
    autumn: CampaignId,
    contact: ContactId,
    al: UserId,
    bo: UserId,
}

async fn plant(db: &TestDb, name: &str) -> Floor {
    let s = &db.store;
    let t0 = at(1, 0, 0, 0);
    let account = s.create_account(name, 5, t0).await.unwrap().id;
    let user = |n: &str, role| {
        let n = format!("{name}-{n}");
        async move { s.create_user(account, &n, "x", role, t0).await.unwrap().id }
    };
    let al = user("al", Role::Agent).await;
    let bo = user("bo", Role::Agent).await;
    user("cy", Role::Agent).await;
    user("sue", Role::Supervisor).await;
    let spring = s
        .create_campaign(account, "Spring", "+442079460000", t0)
        .await
        .unwrap()
        .id;
    let autumn = s
        .create_campaign(account, "Autumn", "+442079460000", t0)
        .await
        .unwrap()
        .id;
    let contact = s
        .create_contact(
            account,
            &ContactFields {
                first_name: "Rita".into(),
                phone_e164: "+447700900123".into(),
                phone_raw: "07700 900123".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            t0,
        )
        .await
        .unwrap()
        .id;
    Floor {
        account,
        spring,
        autumn,
        contact,
        al,
        bo,
    }
}

/// Plants one call: placed, maybe answered, ended with an outcome, and
/// maybe disposed of by an agent.
#[allow(clippy::too_many_arguments)]
async fn call(
    db: &TestDb,
    f: &Floor,
    campaign: CampaignId,
    started: DateTime<Utc>,
    answered: Option<DateTime<Utc>>,
    ended: DateTime<Utc>,
    outcome: &str,
    disposed: Option<(UserId, &str, DateTime<Utc>)>,
) {
    let s = &db.store;
    // One reference per account and start, as the dialler would never repeat one.
    let micros = u64::try_from(started.timestamp_micros()).unwrap_or(0);
    let call_ref =
        CallRef::from_u128((u128::from(f.account.0.unsigned_abs()) << 64) | u128::from(micros));
    let a = s
        .create_attempt(
            f.account,
            call_ref,
            Some(campaign),
            Some(f.contact),
            started,
        )
        .await
        .unwrap();
    if let Some(t) = answered {
        s.mark_answered(f.account, a.id, t).await.unwrap();
    }
    s.mark_ended(f.account, a.id, outcome, ended).await.unwrap();
    if let Some((user, disposition, t)) = disposed {
        s.record_interaction(
            f.account,
            &NewInteraction {
                contact_id: f.contact,
                user_id: Some(user),
                attempt_id: Some(a.id),
                kind: "call".into(),
                disposition: Some(disposition.into()),
                notes: None,
            },
            t,
        )
        .await
        .unwrap();
    }
}

async fn plant_calls(db: &TestDb, f: &Floor) {
    let sp = f.spring;
    call(
        db,
        f,
        sp,
        at(14, 9, 0, 0),
        Some(at(14, 9, 0, 10)),
        at(14, 9, 2, 10),
        "answered",
        Some((f.al, "Sale", at(14, 9, 3, 0))),
    )
    .await;
    call(
        db,
        f,
        sp,
        at(14, 9, 10, 0),
        Some(at(14, 9, 10, 5)),
        at(14, 9, 11, 5),
        "answered",
        Some((f.al, "No sale", at(14, 9, 12, 0))),
    )
    .await;
    call(
        db,
        f,
        sp,
        at(14, 9, 20, 0),
        Some(at(14, 9, 20, 3)),
        at(14, 9, 20, 30),
        "abandoned",
        None,
    )
    .await;
    call(
        db,
        f,
        sp,
        at(14, 10, 5, 0),
        None,
        at(14, 10, 5, 20),
        "no_answer",
        None,
    )
    .await;
    call(
        db,
        f,
        sp,
        at(14, 10, 6, 0),
        Some(at(14, 10, 6, 2)),
        at(14, 10, 7, 2),
        "answered",
        Some((f.bo, "Sale", at(14, 10, 8, 0))),
    )
    .await;
    call(
        db,
        f,
        sp,
        at(14, 10, 30, 0),
        None,
        at(14, 10, 30, 4),
        "busy",
        None,
    )
    .await;
    // The day before: outside the period.
    call(
        db,
        f,
        sp,
        at(13, 23, 59, 59),
        Some(at(14, 0, 0, 1)),
        at(14, 0, 0, 9),
        "abandoned",
        None,
    )
    .await;
    call(
        db,
        f,
        f.autumn,
        at(14, 11, 0, 0),
        Some(at(14, 11, 0, 5)),
        at(14, 11, 0, 9),
        "machine",
        None,
    )
    .await;
}

async fn agent_figures_add_up_calls_states_and_dispositions(db: TestDb) -> TestDb {
    let f = plant(&db, "acme").await;
    let other = plant(&db, "other").await;
    plant_calls(&db, &f).await;
    plant_calls(&db, &other).await;
    let s = &db.store;
    let states = [
        (f.al, AgentState::Paused, Some("login"), at(13, 22, 0, 0)),
        (f.al, AgentState::Ready, None, at(14, 8, 0, 0)),
        (f.al, AgentState::InCall, None, at(14, 9, 0, 10)),
        (f.al, AgentState::WrapUp, None, at(14, 9, 2, 10)),
        (f.al, AgentState::Ready, None, at(14, 9, 3, 0)),
        (f.al, AgentState::InCall, None, at(14, 9, 10, 5)),
        (f.al, AgentState::WrapUp, None, at(14, 9, 11, 5)),
        (f.al, AgentState::Paused, Some("lunch"), at(14, 9, 12, 0)),
        (f.al, AgentState::Ready, None, at(14, 10, 12, 0)),
        (f.al, AgentState::LoggedOut, None, at(14, 10, 30, 0)),
        // After the period: not counted.
        (f.al, AgentState::Ready, None, at(15, 8, 0, 0)),
        (f.bo, AgentState::Paused, None, at(14, 23, 0, 0)),
    ];
    for (user, state, code, t) in states {
        s.record_agent_state(f.account, user, state, code, t)
            .await
            .unwrap();
        // The other account's agents work the same hours.
        let twin = if user == f.al { other.al } else { other.bo };
        s.record_agent_state(other.account, twin, state, code, t)
            .await
            .unwrap();
    }
    // A user of another account cannot be written into this one.
    s.record_agent_state(
        f.account,
        other.al,
        AgentState::Paused,
        Some("x"),
        at(14, 1, 0, 0),
    )
    .await
    .unwrap();

    let now = at(14, 23, 30, 0);
    let report = s.agent_report(f.account, day_14(), now).await.unwrap();
    let names: Vec<&str> = report.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(
        names,
        ["acme-al", "acme-bo", "acme-cy"],
        "agents only, by name"
    );

    let al = &report[0];
    assert_eq!(al.calls_handled, 2);
    assert_eq!(al.talk_secs, 120 + 60);
    assert_eq!(al.wrap_up_secs, 50 + 55);
    assert_eq!(al.ready_secs, 3610 + 425 + 1080);
    assert_eq!(al.pause_secs, 8 * 3600 + 3600);
    assert_eq!(
        al.pause_by_code,
        BTreeMap::from([("login".to_owned(), 8 * 3600), ("lunch".to_owned(), 3600)])
    );
    assert_eq!(
        al.dispositions,
        BTreeMap::from([("No sale".to_owned(), 1), ("Sale".to_owned(), 1)])
    );

    let bo = &report[1];
    assert_eq!((bo.calls_handled, bo.talk_secs), (1, 60));
    assert_eq!(
        bo.pause_secs, 1800,
        "a state still current counts up to now"
    );
    assert_eq!(
        bo.pause_by_code,
        BTreeMap::from([("unspecified".to_owned(), 1800)])
    );

    let cy = &report[2];
    assert_eq!((cy.calls_handled, cy.talk_secs, cy.pause_secs), (0, 0, 0));

    // A period that opens mid-lunch counts only the rest of it.
    let afternoon = Period {
        from: at(14, 9, 42, 0),
        to: at(14, 10, 12, 30),
    };
    let report = s.agent_report(f.account, afternoon, now).await.unwrap();
    assert_eq!(
        report[0].pause_by_code,
        BTreeMap::from([("lunch".to_owned(), 1800)])
    );
    assert_eq!(report[0].ready_secs, 30);
    assert_eq!(report[0].calls_handled, 0);
    db
}

async fn campaign_figures_count_outcomes_and_abandons_by_hour(db: TestDb) -> TestDb {
    let f = plant(&db, "acme").await;
    let other = plant(&db, "other").await;
    plant_calls(&db, &f).await;
    plant_calls(&db, &other).await;
    let report = db.store.campaign_report(f.account, day_14()).await.unwrap();
    let names: Vec<&str> = report.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Autumn", "Spring"]);

    let spring = &report[1];
    assert_eq!(spring.campaign_id, f.spring);
    assert_eq!(spring.attempts, 6);
    assert_eq!(
        spring.outcomes,
        BTreeMap::from([
            ("abandoned".to_owned(), 1),
            ("answered".to_owned(), 3),
            ("busy".to_owned(), 1),
            ("no_answer".to_owned(), 1),
        ])
    );
    assert_eq!((spring.answered, spring.abandoned), (4, 1));
    assert!(
        (spring.abandon_rate - 0.25).abs() < 1e-9,
        "{}",
        spring.abandon_rate
    );
    assert_eq!(spring.hours.len(), 2);
    let nine = &spring.hours[0];
    assert_eq!(nine.hour, at(14, 9, 0, 0));
    assert_eq!((nine.attempts, nine.answered, nine.abandoned), (3, 3, 1));
    assert!((nine.abandon_rate - 1.0 / 3.0).abs() < 1e-9);
    let ten = &spring.hours[1];
    assert_eq!(ten.hour, at(14, 10, 0, 0));
    assert_eq!((ten.attempts, ten.answered, ten.abandoned), (3, 1, 0));
    assert_eq!(ten.abandon_rate, 0.0);
    assert_eq!(
        spring.dispositions,
        BTreeMap::from([("No sale".to_owned(), 1), ("Sale".to_owned(), 2)])
    );

    let autumn = &report[0];
    assert_eq!(
        (autumn.attempts, autumn.answered, autumn.abandoned),
        (1, 1, 0)
    );
    assert_eq!(autumn.abandon_rate, 0.0, "a machine is not a live answer");

    // The day before holds only the call placed at 23:59:59.
    let before = Period {
        from: at(13, 0, 0, 0),
        to: at(14, 0, 0, 0),
    };
    let report = db.store.campaign_report(f.account, before).await.unwrap();
    assert_eq!((report[1].attempts, report[1].abandoned), (1, 1));
    assert_eq!(report[1].abandon_rate, 1.0);
    db
}

async fn agents_are_added_only_within_the_seats(db: TestDb) -> TestDb {
    let s = &db.store;
    let t0 = at(1, 0, 0, 0);
    let a = s.create_account("small", 2, t0).await.unwrap().id;
    let one = s
        .add_user_within_seats(a, "one", "x", Role::Agent, t0)
        .await
        .unwrap();
    s.add_user_within_seats(a, "two", "x", Role::Agent, t0)
        .await
        .unwrap();
    let full = s
        .add_user_within_seats(a, "three", "x", Role::Agent, t0)
        .await;
    match full {
        Err(StoreError::Refused(m)) => assert!(m.contains("2 agent seats"), "{m}"),
        other => panic!("a third agent on two seats: {other:?}"),
    }
    // Supervisors take no agent seat.
    s.add_user_within_seats(a, "boss", "x", Role::Supervisor, t0)
        .await
        .unwrap();
    // A taken username is still a conflict, not a seat problem.
    s.set_user_active_within_seats(a, one.id, false)
        .await
        .unwrap();
    assert!(matches!(
        s.add_user_within_seats(a, "two", "x", Role::Agent, t0)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let three = s
        .add_user_within_seats(a, "three", "x", Role::Agent, t0)
        .await
        .unwrap();
    assert_eq!(s.active_agents(a).await.unwrap(), 2);
    assert!(matches!(
        s.set_user_active_within_seats(a, one.id, true).await,
        Err(StoreError::Refused(_))
    ));
    assert!(!s.user(a, one.id).await.unwrap().active, "still inactive");
    s.set_user_active_within_seats(a, three.id, false)
        .await
        .unwrap();
    s.set_user_active_within_seats(a, one.id, true)
        .await
        .unwrap();
    assert!(s.user(a, one.id).await.unwrap().active);
    db
}
