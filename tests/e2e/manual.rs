//! The agent's call controls over the desk websocket, against a simulated
//! carrier: the account's pause codes, a number dialled by hand (checked
//! against the do-not-call list and calling hours), hold, digits, pausing
//! the recording, and the recording linked to the call in the CRM.

use chrono::Utc;
use crm::model::ContactFields;
use crm::store::campaign_settings::DialMode;
use serde_json::{json, Value};

use crate::desk::{agent_floor, next, open_desk, say, wait_for, AgentFloor};
use crate::dialler::{agent_phone, DAY_ZONE, NIGHT_ZONE};

#[tokio::test]
async fn an_agent_dials_by_hand_and_works_the_call_on_sqlite() {
    manual_call(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn an_agent_dials_by_hand_and_works_the_call_on_postgres() {
    manual_call(crm::testing::TestBackend::Postgres).await;
}

async fn manual_call(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, None).await else {
        return;
    };
    let AgentFloor {
        t,
        customers,
        acme,
        sup_pw,
        agent_pw,
        agent,
        ..
    } = f;
    let s = &t.db.store;
    let now = Utc::now();
    // The campaign's list is empty: whatever is dialled is the agent's choice.
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let night = "+442079460551";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Nocturne".into(),
                phone_e164: night.into(),
                phone_raw: night.into(),
                time_zone: Some(NIGHT_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let barred = "+442079460552";
    s.suppress(acme.id, barred, "asked not to be called", "test", now)
        .await
        .expect("suppressed");
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "By hand",
            DialMode::Progressive,
            None,
            ("sue", &sup_pw),
        )
        .await;

    // The supervisor sets the account's pause codes; agents may read them.
    let sue = t.login("sue", &sup_pw).await;
    let codes = json!({"pause_codes": [
        {"code": "coaching", "label": "Coaching"},
        {"code": "break", "label": "Break"}
    ]});
    let r = sue
        .put(t.url("/api/account/pause-codes"))
        .json(&codes)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let bad = json!({"pause_codes": [{"code": "login", "label": "Mine"}]});
    let r = sue
        .put(t.url("/api/account/pause-codes"))
        .json(&bad)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 400, "the service's own reasons are reserved");
    let al = t.login("al", &agent_pw).await;
    let r = al
        .put(t.url("/api/account/pause-codes"))
        .json(&codes)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 403, "agents may not change them");
    let read: Value = al
        .get(t.url("/api/account/pause-codes"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(read["pause_codes"][0]["code"], "coaching");

    let cookie = t.session_cookie("al", &agent_pw).await;
    let mut ws = open_desk(&t, &cookie).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let offered: Vec<&str> = welcome["pause_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c["code"].as_str().expect("code"))
        .collect();
    assert_eq!(offered, ["coaching", "break"]);

    say(
        &mut ws,
        json!({"type": "manual_dial", "number": night, "confirm": true}),
    )
    .await;
    let early = next(&mut ws).await;
    assert_eq!(early["type"], "error", "no campaign joined yet: {early}");

    let leg = agent_phone(&t.app.telephony.gateway).await;
    t.app.legs.set(agent.id, leg);
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    assert_eq!(wait_for(&mut ws, "state").await["state"], "ready");
    say(&mut ws, json!({"type": "pause", "code": "lunch"})).await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["type"], "error", "not one of the account's codes");
    say(&mut ws, json!({"type": "pause", "code": "coaching"})).await;
    let paused = wait_for(&mut ws, "state").await;
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["reason"], "coaching");

    say(
        &mut ws,
        json!({"type": "manual_dial", "number": "call my mum"}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "error");
    say(
        &mut ws,
        json!({"type": "manual_dial", "number": "+44 20 7946 0552", "confirm": true}),
    )
    .await;
    let barred_check = wait_for(&mut ws, "dial_check").await;
    assert_eq!(barred_check["may_confirm"], false);
    assert!(barred_check["warnings"][0]
        .as_str()
        .expect("warning")
        .contains("do-not-call"));
    say(&mut ws, json!({"type": "manual_dial", "number": night})).await;
    let hours_check = wait_for(&mut ws, "dial_check").await;
    assert_eq!(hours_check["may_confirm"], true);
    assert!(hours_check["warnings"][0]
        .as_str()
        .expect("warning")
        .contains("calling hours"));
    assert_eq!(
        customers.stats().calls,
        0,
        "nothing dialled before confirming"
    );

    customers.start_capture();
    say(
        &mut ws,
        json!({"type": "manual_dial", "number": night, "confirm": true}),
    )
    .await;
    assert_eq!(wait_for(&mut ws, "state").await["state"], "dialling");
    let dialling = wait_for(&mut ws, "dialling").await;
    let call_ref = dialling["call_ref"].as_str().expect("ref").to_owned();
    assert_eq!(dialling["number"], night);
    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["call_ref"], call_ref.as_str());
    assert_eq!(card["contact"]["first_name"], "Nocturne");
    let controls = wait_for(&mut ws, "call_controls").await;
    assert_eq!(controls["held"], false);
    assert_eq!(controls["recording"], "on");

    say(&mut ws, json!({"type": "hold", "on": true})).await;
    assert_eq!(wait_for(&mut ws, "call_controls").await["held"], true);
    say(&mut ws, json!({"type": "dtmf", "digits": "1"})).await;
    let on_hold = next(&mut ws).await;
    assert_eq!(on_hold["type"], "error", "no digits while held: {on_hold}");
    say(&mut ws, json!({"type": "hold", "on": false})).await;
    assert_eq!(wait_for(&mut ws, "call_controls").await["held"], false);
    say(&mut ws, json!({"type": "dtmf", "digits": "12x"})).await;
    assert_eq!(next(&mut ws).await["type"], "error", "not a digit");
    say(&mut ws, json!({"type": "dtmf", "digits": "4#"})).await;
    // Each digit sounds for 100 ms; wait until both reached the customer.
    let mut digits = Vec::new();
    for _ in 0..100 {
        digits.extend(customers.take_capture().digits);
        if digits.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(digits, ['4', '#'], "the customer's side got the digits");
    say(&mut ws, json!({"type": "recording", "paused": true})).await;
    assert_eq!(
        wait_for(&mut ws, "call_controls").await["recording"],
        "paused"
    );
    say(&mut ws, json!({"type": "recording", "paused": false})).await;
    assert_eq!(wait_for(&mut ws, "call_controls").await["recording"], "on");

    say(&mut ws, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    assert_eq!(ended["call_ref"], call_ref.as_str());
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "sale"}),
    )
    .await;
    wait_for(&mut ws, "saved").await;

    let attempt = s
        .attempt_by_ref(acme.id, call_ref.parse().expect("a call reference"))
        .await
        .expect("the call is logged");
    assert_eq!(attempt.contact_id, Some(contact.id));
    assert_eq!(attempt.outcome.as_deref(), Some("answered"));
    let recordings = s
        .recordings_for_contact(acme.id, contact.id)
        .await
        .expect("recordings");
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    assert_eq!(recordings[0].attempt_id, Some(attempt.id));
    assert_eq!(
        recordings[0].call_ref.map(|c| c.to_string()),
        Some(call_ref.clone())
    );
    let wav = std::fs::metadata(&recordings[0].path).expect("the file exists");
    assert!(wav.len() > 8_000, "about a second of stereo audio at least");
    let audit = s
        .audit_entries(acme.id, 200)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect::<Vec<_>>();
    for action in [
        "account.pause_codes",
        "call.manual_outside_hours",
        "call.recording_paused",
        "call.recording_resumed",
        "call.disposition",
    ] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    ws.close(None).await.expect("close");
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

#[tokio::test]
async fn an_agent_neither_sees_nor_joins_a_campaign_they_are_not_assigned_to() {
    let Some(f) = agent_floor(crm::testing::TestBackend::Sqlite, None).await else {
        return;
    };
    let AgentFloor {
        t,
        acme,
        sup_pw,
        agent_pw,
        agent,
        ..
    } = f;
    let s = &t.db.store;
    let list = s
        .create_list(acme.id, "L", "GB", Utc::now())
        .await
        .expect("list");
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "Theirs",
            DialMode::Progressive,
            None,
            ("sue", &sup_pw),
        )
        .await;
    s.assign_agents(acme.id, campaign.id, &[])
        .await
        .expect("nobody assigned");
    t.app
        .legs
        .set(agent.id, agent_phone(&t.app.telephony.gateway).await);
    let cookie = t.session_cookie("al", &agent_pw).await;
    let mut ws = open_desk(&t, &cookie).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["campaigns"], json!([]), "{welcome}");
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["type"], "error");
    assert!(refused["message"]
        .as_str()
        .expect("text")
        .contains("not assigned"));
    ws.close(None).await.expect("close");
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

#[tokio::test]
async fn a_deactivated_agent_loses_the_desk_and_the_audio_leg() {
    let Some(f) = agent_floor(crm::testing::TestBackend::Sqlite, None).await else {
        return;
    };
    let AgentFloor {
        t,
        sup_pw,
        agent_pw,
        agent,
        ..
    } = f;
    t.app
        .legs
        .set(agent.id, agent_phone(&t.app.telephony.gateway).await);
    let cookie = t.session_cookie("al", &agent_pw).await;
    let mut ws = open_desk(&t, &cookie).await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    let sue = t.login("sue", &sup_pw).await;
    let r = sue
        .post(t.url(&format!("/api/users/{}/active", agent.id)))
        .json(&json!({"active": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use futures_util::StreamExt;
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the desk ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the desk closes at once")
    .expect("with a reason");
    assert_eq!(u16::from(closed.code), 4001);
    assert!(
        t.app.legs.get(agent.id).is_none(),
        "the audio leg is hung up"
    );
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

#[tokio::test]
async fn a_wrap_up_left_past_the_limit_closes_and_the_agent_is_ready_again() {
    let Some(f) = agent_floor(crm::testing::TestBackend::Sqlite, Some(1)).await else {
        return;
    };
    let AgentFloor {
        t,
        acme,
        sup_pw,
        agent_pw,
        agent,
        ..
    } = f;
    let s = &t.db.store;
    let now = Utc::now();
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let phone = "+442079460661";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Brief".into(),
                phone_e164: phone.into(),
                phone_raw: phone.into(),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    s.add_to_list(acme.id, list.id, contact.id, now)
        .await
        .expect("member");
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "Quick",
            DialMode::Progressive,
            None,
            ("sue", &sup_pw),
        )
        .await;
    let mut settings = s
        .campaign_settings(acme.id, campaign.id)
        .await
        .expect("settings");
    settings.wrap_up_limit_secs = 2;
    s.update_campaign_settings(acme.id, campaign.id, &settings, now)
        .await
        .expect("a two-second wrap-up");
    t.app
        .legs
        .set(agent.id, agent_phone(&t.app.telephony.gateway).await);
    let cookie = t.session_cookie("al", &agent_pw).await;
    let mut ws = open_desk(&t, &cookie).await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let call = wait_for(&mut ws, "call").await;
    let call_ref = call["call_ref"].as_str().expect("ref").to_owned();
    let ended = wait_for(&mut ws, "call_ended").await;
    assert!(
        ended["wrap_up_secs"].as_u64().is_some_and(|s| s <= 2),
        "{ended}"
    );
    let expired = wait_for(&mut ws, "wrap_up_expired").await;
    assert_eq!(expired["call_ref"], call_ref.as_str());
    let state = wait_for(&mut ws, "state").await;
    assert_eq!(state["state"], "ready");
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "sale"}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await["type"],
        "error",
        "the closed wrap-up takes no disposition"
    );
    let history = s
        .interactions_for_contact(acme.id, contact.id)
        .await
        .expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].disposition, None);
    assert_eq!(history[0].user_id, Some(agent.id));
    let audit = s.audit_entries(acme.id, 50).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "call.wrap_up_expired"));
    ws.close(None).await.expect("close");
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
