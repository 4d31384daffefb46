//! Supervisors' reports, the users panel's API and the dial-level cap, over
//! HTTP on both backends, against calls and states planted in the CRM.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use crm::events::{AgentState, Event};
use crm::model::{Account, Campaign, ContactFields, NewInteraction, Role, UserId};
use crm::store::campaign_settings::DialMode;
use serde_json::{json, Value};
use sip_gateway::gateway::CallRef;

use crate::helpers::{client, on_both_backends, NowUtc, TestApp};

on_both_backends!(
    reports_add_up_a_planted_call_as_json_and_csv,
    only_the_accounts_managers_see_its_reports,
    supervisors_manage_agents_within_the_seats,
    agents_state_changes_are_kept_for_reports,
    a_dial_level_change_reaches_the_running_pacer,
);

/// Plants, on the test clock's day, one call of campaign "Board" that the
/// agent talked 90 s on and disposed of as "Sale", and the agent's states
/// around it: paused for lunch 30 min, ready, in the call, 25 s of wrap-up,
/// ready again, logged out at 09:30. Then moves the clock to 10:00.
pub(crate) async fn plant_a_call(t: &TestApp, account: &Account, agent: UserId) -> Campaign {
    let s = &t.db.store;
    let nine = t.clock.now_utc();
    let at = |secs: i64| nine + TimeDelta::seconds(secs);
    let campaign = s
        .create_campaign(account.id, "Board", "+441632960000", at(-7200))
        .await
        .expect("campaign");
    let contact = s
        .create_contact(
            account.id,
            &ContactFields {
                first_name: "Pia".into(),
                phone_e164: "+447700900777".into(),
                phone_raw: "07700 900777".into(),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            at(-7200),
        )
        .await
        .expect("contact");
    let attempt = s
        .create_attempt(
            account.id,
            CallRef::from_u128(0x91a7),
            Some(campaign.id),
            Some(contact.id),
            at(0),
        )
        .await
        .expect("attempt");
    s.mark_answered(account.id, attempt.id, at(5))
        .await
        .expect("answered");
    s.mark_ended(account.id, attempt.id, "answered", at(95))
        .await
        .expect("ended");
    s.record_interaction(
        account.id,
        &NewInteraction {
            contact_id: contact.id,
            user_id: Some(agent),
            attempt_id: Some(attempt.id),
            kind: "call".into(),
            disposition: Some("Sale".into()),
            notes: None,
        },
        at(120),
    )
    .await
    .expect("interaction");
    let states = [
        (AgentState::Paused, Some("lunch"), -3600),
        (AgentState::Ready, None, -1800),
        (AgentState::InCall, None, 5),
        (AgentState::WrapUp, None, 95),
        (AgentState::Ready, None, 120),
        (AgentState::LoggedOut, None, 1800),
    ];
    for (state, code, secs) in states {
        s.record_agent_state(account.id, agent, state, code, at(secs))
            .await
            .expect("state");
    }
    t.clock.advance(chrono::Duration::hours(1));
    campaign
}

async fn get_json(t: &TestApp, c: &reqwest::Client, path: &str) -> Value {
    let r = c.get(t.url(path)).send().await.expect("sent");
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.expect("json")
}

async fn reports_add_up_a_planted_call_as_json_and_csv(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    t.user(&acme, "al", Role::Agent).await;
    t.user(&acme, "=sum(1)", Role::Agent).await;
    let al =
        t.db.store
            .credentials("al")
            .await
            .expect("q")
            .expect("al")
            .0;
    let odd =
        t.db.store
            .credentials("=sum(1)")
            .await
            .expect("q")
            .expect("odd")
            .0;
    let campaign = plant_a_call(&t, &acme, al.id).await;
    let sup = t.login("sue", &sup_pw).await;

    // No period: the clock's day, in UTC.
    let r = get_json(&t, &sup, "/api/reports/agents").await;
    assert_eq!(r["from"], "2026-11-27T00:00:00Z");
    assert_eq!(r["to"], "2026-11-28T00:00:00Z");
    assert_eq!(r["time_zone"], "UTC");
    let agents = r["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2, "both agents, the supervisor not");
    let a = agents.iter().find(|a| a["username"] == "al").expect("al");
    assert_eq!(a["calls_handled"], 1);
    assert_eq!(a["talk_secs"], 90);
    assert_eq!(a["wrap_up_secs"], 25);
    assert_eq!(a["ready_secs"], 1805 + 1680);
    assert_eq!(a["pause_secs"], 1800);
    assert_eq!(a["pause_by_code"], json!({"lunch": 1800}));
    assert_eq!(a["dispositions"], json!({"Sale": 1}));

    let r = get_json(
        &t,
        &sup,
        "/api/reports/campaigns?from=2026-11-27&to=2026-11-27",
    )
    .await;
    let c = &r["campaigns"][0];
    assert_eq!(c["campaign_id"], campaign.id.0);
    assert_eq!(c["name"], "Board");
    assert_eq!(
        (c["attempts"].as_i64(), c["answered"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(c["abandoned"], 0);
    assert_eq!(c["abandon_rate"], 0.0);
    assert_eq!(c["outcomes"], json!({"answered": 1}));
    assert_eq!(c["dispositions"], json!({"Sale": 1}));
    assert_eq!(
        c["hours"],
        json!([{"hour": "2026-11-27T09:00:00Z", "attempts": 1, "answered": 1,
                "abandoned": 0, "abandon_rate": 0.0}])
    );
    // The day before holds nothing.
    let r = get_json(
        &t,
        &sup,
        "/api/reports/campaigns?from=2026-11-26&to=2026-11-26",
    )
    .await;
    assert_eq!(r["campaigns"][0]["attempts"], 0);

    let r = sup
        .get(t.url("/api/reports/agents?from=2026-11-27&to=2026-11-27&format=csv"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header("content-disposition"),
        "attachment; filename=\"agents-20261127T0000Z-20261128T0000Z.csv\""
    );
    let body = r.text().await.expect("body");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines,
        [
            "user_id,username,calls_handled,talk_secs,wrap_up_secs,ready_secs,pause_secs,\
             pause:lunch,disposition:Sale",
            &format!("{},'=sum(1),0,0,0,0,0,0,0", odd.id),
            &format!("{},al,1,90,25,3485,1800,1800,1", al.id),
        ]
    );

    let r = sup
        .get(t.url("/api/reports/campaigns?by=hour"))
        .header("accept", "text/csv")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert_eq!(
        body.lines().collect::<Vec<_>>(),
        [
            "campaign_id,campaign,hour,attempts,answered,abandoned,abandon_rate",
            &format!("{},Board,2026-11-27T09:00:00Z,1,1,0,0.0000", campaign.id),
        ]
    );
    let bad = sup
        .get(t.url("/api/reports/agents?from=27/11/2026"))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 400);
    assert!(bad
        .text()
        .await
        .expect("body")
        .contains("from must be a date"));
    t
}

async fn only_the_accounts_managers_see_its_reports(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let foreign_pw = t.user(&other, "oz", Role::Supervisor).await;
    let al =
        t.db.store
            .credentials("al")
            .await
            .expect("q")
            .expect("al")
            .0;
    plant_a_call(&t, &acme, al.id).await;

    let agent = t.login("al", &agent_pw).await;
    for path in ["/api/reports/agents", "/api/reports/campaigns?format=csv"] {
        assert_eq!(t.get_status(&agent, path).await, 403, "agent on {path}");
        assert_eq!(t.get_status(&client(), path).await, 401, "anonymous {path}");
    }
    let admin = t.login("ada", &admin_pw).await;
    let r = get_json(&t, &admin, "/api/reports/agents").await;
    assert_eq!(r["agents"][0]["calls_handled"], 1, "admins see them too");

    let foreign = t.login("oz", &foreign_pw).await;
    let r = get_json(&t, &foreign, "/api/reports/agents").await;
    assert_eq!(
        r["agents"],
        json!([]),
        "another account's agents are not there"
    );
    let r = get_json(&t, &foreign, "/api/reports/campaigns").await;
    assert_eq!(r["campaigns"], json!([]));
    t
}

async fn post(c: &reqwest::Client, t: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = c.post(t.url(path)).json(&body).send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn supervisors_manage_agents_within_the_seats(t: TestApp) -> TestApp {
    let acme = t.account("acme", 2).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    t.user(&acme, "al", Role::Agent).await;
    let sup = t.login("sue", &sup_pw).await;
    let admin = t.login("ada", &admin_pw).await;
    let new = |name: &str, role: &str| json!({"username": name, "password": "Fresh-Pass-9", "role": role});

    let (status, bo) = post(&sup, &t, "/api/users", new("bo", "agent")).await;
    assert_eq!(status, 201, "a supervisor adds an agent: {bo}");
    let (status, err) = post(&sup, &t, "/api/users", new("cy", "agent")).await;
    assert_eq!(status, 409, "two seats, two active agents");
    let msg = err["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("seat limit") && msg.contains("2 agent seats"),
        "{msg}"
    );
    let (status, err) = post(&sup, &t, "/api/users", new("sam", "supervisor")).await;
    assert_eq!(status, 403);
    assert!(err["error"]
        .as_str()
        .unwrap_or_default()
        .contains("agents only"));
    let (status, sam) = post(&admin, &t, "/api/users", new("sam", "supervisor")).await;
    assert_eq!(status, 201, "an admin adds a supervisor, who takes no seat");

    // Deactivating ends the agent's sessions and logins.
    let bo_client = t.login("bo", "Fresh-Pass-9").await;
    let bo_path = format!("/api/users/{}/active", bo["id"]);
    let (status, user) = post(&sup, &t, &bo_path, json!({"active": false})).await;
    assert_eq!((status, &user["active"]), (200, &json!(false)));
    assert_eq!(
        t.get_status(&bo_client, "/api/me").await,
        401,
        "session ended"
    );
    assert_eq!(
        t.try_login(&client(), "bo", "Fresh-Pass-9").await.status(),
        401
    );
    // The seat is free again: cy fits, and then bo cannot come back.
    let (status, _) = post(&sup, &t, "/api/users", new("cy", "agent")).await;
    assert_eq!(status, 201);
    let (status, err) = post(&sup, &t, &bo_path, json!({"active": true})).await;
    assert_eq!(status, 409, "{err}");
    let (status, _) = post(&admin, &t, &bo_path, json!({"active": true})).await;
    assert_eq!(status, 409, "not even an admin passes the seat limit");

    // A supervisor leaves supervisors and admins alone.
    let ada =
        t.db.store
            .credentials("ada")
            .await
            .expect("q")
            .expect("ada")
            .0;
    for id in [ada.id.0, sam["id"].as_i64().expect("id")] {
        let (status, _) = post(
            &sup,
            &t,
            &format!("/api/users/{id}/active"),
            json!({"active": false}),
        )
        .await;
        assert_eq!(status, 403);
    }
    let audit = t.db.store.audit_entries(acme.id, 50).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "user.deactivate"));
    assert_eq!(
        audit.iter().filter(|e| e.action == "user.create").count(),
        3
    );
    t
}

async fn agents_state_changes_are_kept_for_reports(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "al", Role::Agent).await;
    let al = t.login("al", &pw).await;
    t.clock.advance(chrono::Duration::minutes(10));
    let r = al.post(t.url("/api/logout")).send().await.expect("sent");
    assert_eq!(r.status(), 204);
    let today = crm::store::reports::Period {
        from: t.clock.now_utc() - TimeDelta::hours(1),
        to: t.clock.now_utc() + TimeDelta::hours(1),
    };
    // The history writer follows the bus; give it a moment.
    let mut paused = None;
    for _ in 0..100 {
        let report =
            t.db.store
                .agent_report(acme.id, today, t.clock.now_utc() + TimeDelta::hours(1))
                .await
                .expect("report");
        paused = report[0].pause_by_code.get("login").copied();
        if paused == Some(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        paused,
        Some(600),
        "paused from login to logout, and no longer after"
    );
    t
}

async fn a_dial_level_change_reaches_the_running_pacer(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let mut events = t.app.bus.subscribe();
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "Fast",
            DialMode::Predictive,
            None,
            ("sue", &sup_pw),
        )
        .await;
    wait_for_cap(&mut events, campaign.id, 3.0).await;

    let path = format!("/api/campaigns/{}/dial-level", campaign.id);
    let agent = t.login("al", &agent_pw).await;
    let r = agent
        .put(t.url(&path))
        .json(&json!({"max_dial_level": 1.5}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);
    let sup = t.login("sue", &sup_pw).await;
    let r = sup
        .put(t.url(&path))
        .json(&json!({"max_dial_level": 25.0}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400, "beyond what settings allow");
    let r = sup
        .put(t.url(&path))
        .json(&json!({"max_dial_level": 1.5}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"max_dial_level": 1.5})
    );
    let changed_at: DateTime<Utc> = Utc::now();
    wait_for_cap(&mut events, campaign.id, 1.5).await;
    assert!(
        Utc::now() - changed_at < TimeDelta::seconds(12),
        "within a reconcile cycle"
    );
    let settings = s
        .campaign_settings(acme.id, campaign.id)
        .await
        .expect("settings");
    assert_eq!(settings.max_dial_level, 1.5);
    t
}

/// Waits for the campaign's figures to carry this dial-level cap.
async fn wait_for_cap(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    campaign: crm::model::CampaignId,
    level: f64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no figures with a cap of {level}"));
        if let Ok(e) = event {
            if let Event::CampaignFigures {
                campaign_id,
                figures,
                ..
            } = e.as_ref()
            {
                if *campaign_id == campaign && figures.max_dial_level == level {
                    return;
                }
            }
        }
    }
}
