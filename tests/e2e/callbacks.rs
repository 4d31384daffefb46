//! A callback booked "for me" reaches that agent and not another Ready
//! agent while the campaign's grace lasts, and anyone after it; agents see
//! their own upcoming callbacks over the API.

use chrono::Duration;
use crm::model::{ContactFields, ContactId, Role};
use crm::store::campaign_settings::DialMode;
use serde_json::{json, Value};

use crate::desk::{agent_floor, open_desk, say, wait_for, AgentFloor};
use crate::dialler::{agent_phone, DAY_ZONE};
use crate::helpers::NowUtc;

#[tokio::test]
async fn a_callback_for_me_waits_for_me_until_the_grace_ends_on_sqlite() {
    own_callbacks(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_callback_for_me_waits_for_me_until_the_grace_ends_on_postgres() {
    own_callbacks(crm::testing::TestBackend::Postgres).await;
}

async fn own_callbacks(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, Some(1)).await else {
        return;
    };
    let bo_pw = f.t.user(&f.acme, "bo", Role::Agent).await;
    let AgentFloor {
        t,
        acme,
        sup_pw,
        agent_pw,
        agent: al,
        ..
    } = &f;
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let mut contacts = Vec::new();
    for (i, name) in ["Other", "Mine", "Late"].iter().enumerate() {
        let phone = format!("+44770090050{i}");
        let c = s
            .create_contact(
                acme.id,
                &ContactFields {
                    first_name: (*name).into(),
                    phone_e164: phone.clone(),
                    phone_raw: phone,
                    time_zone: Some(DAY_ZONE.into()),
                    custom_fields: json!({}),
                    ..ContactFields::default()
                },
                now,
            )
            .await
            .expect("contact");
        s.add_to_list(acme.id, list.id, c.id, now)
            .await
            .expect("member");
        contacts.push(c.id);
    }
    // Nobody is Ready yet, so nothing is dialled before the callbacks are booked.
    let campaign = t
        .start_campaign(
            acme,
            list.id,
            "Callbacks",
            DialMode::Progressive,
            None,
            ("sue", sup_pw),
        )
        .await;
    s.sync_leads(acme.id, campaign.id, now)
        .await
        .expect("leads");
    let lead = |c: ContactId| async move {
        s.lead_for_contact(acme.id, campaign.id, c)
            .await
            .expect("lead")
            .id
    };
    let (mine, late) = (lead(contacts[1]).await, lead(contacts[2]).await);
    // Due now, for al; and due in ten minutes, for al too.
    s.schedule_callback(acme.id, mine, now, Some(al.id), now)
        .await
        .expect("callback");
    s.schedule_callback(acme.id, late, now + Duration::minutes(10), Some(al.id), now)
        .await
        .expect("callback");

    // Each agent sees their own upcoming callbacks; the supervisor sees all.
    let listed = |user: &'static str, pw: String, query: &'static str| async move {
        let c = t.login(user, &pw).await;
        let r = c
            .get(t.url(&format!("/api/callbacks{query}")))
            .send()
            .await
            .expect("sent");
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let (status, al_list) = listed("al", agent_pw.clone(), "").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = al_list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["contact_name"].as_str())
        .collect();
    assert_eq!(names, ["Mine", "Late"]);
    assert_eq!(al_list[0]["username"], "al");
    let (_, bo_list) = listed("bo", bo_pw.clone(), "").await;
    assert_eq!(bo_list, json!([]));
    let c = t.login("bo", &bo_pw).await;
    let r = c
        .get(t.url(&format!("/api/callbacks?user={}", al.id.0)))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403, "an agent cannot list another's");
    let (_, al_by_sue) = listed("sue", sup_pw.clone(), "").await;
    assert!(al_by_sue
        .as_array()
        .expect("a list")
        .iter()
        .all(|c| c["user_id"] == al.id.0));
    let (_, all) = listed("sue", sup_pw.clone(), "").await;
    assert_eq!(all.as_array().expect("a list").len(), 2);
    let (status, _) = listed("sue", sup_pw.clone(), "?limit=lots").await;
    assert_eq!(status, 400);

    let gateway = &t.app.telephony.gateway;
    let bo = s.credentials("bo").await.expect("q").expect("bo").0;
    t.app.legs.set(al.id, agent_phone(gateway).await);
    t.app.legs.set(bo.id, agent_phone(gateway).await);
    let mut al_ws = open_desk(t, &t.session_cookie("al", agent_pw).await).await;
    let mut bo_ws = open_desk(t, &t.session_cookie("bo", &bo_pw).await).await;
    wait_for(&mut al_ws, "welcome").await;
    wait_for(&mut bo_ws, "welcome").await;

    // Bo is Ready first, with al's callback due: bo is given the other
    // contact, though a due callback comes before every other lead.
    say(
        &mut bo_ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut bo_ws, "call").await;
    assert_eq!(card["contact"]["first_name"], "Other");
    let bo_call = card["call_ref"].as_str().expect("ref").to_owned();
    wait_for(&mut bo_ws, "call_ended").await;
    // Al comes Ready: the callback goes to al.
    say(
        &mut al_ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut al_ws, "call").await;
    assert_eq!(card["contact"]["first_name"], "Mine");
    let al_call = card["call_ref"].as_str().expect("ref").to_owned();
    wait_for(&mut al_ws, "call_ended").await;
    say(
        &mut al_ws,
        json!({"type": "disposition", "call_ref": al_call, "disposition": "sale"}),
    )
    .await;
    wait_for(&mut al_ws, "saved").await;
    say(&mut al_ws, json!({"type": "pause", "code": "lunch"})).await;
    loop {
        if wait_for(&mut al_ws, "state").await["state"] == "paused" {
            break;
        }
    }
    assert_eq!(f.customers.stats().calls, 2, "Other and Mine, nothing else");

    // Past the later callback's time and its grace, with al away, the
    // callback goes to bo.
    t.clock.advance(Duration::minutes(41));
    say(
        &mut bo_ws,
        json!({"type": "disposition", "call_ref": bo_call, "disposition": "sale"}),
    )
    .await;
    wait_for(&mut bo_ws, "saved").await;
    let card = wait_for(&mut bo_ws, "call").await;
    assert_eq!(card["contact"]["first_name"], "Late");
    wait_for(&mut bo_ws, "call_ended").await;
    let (_, al_list) = listed("al", agent_pw.clone(), "").await;
    assert_eq!(al_list, json!([]), "both callbacks were made");

    al_ws.close(None).await.expect("close");
    bo_ws.close(None).await.expect("close");
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
