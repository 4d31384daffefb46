//! Edits of the contact on an agent's card reach the agent's desk
//! websocket: during the call and its wrap-up, as the card anew with the
//! names of the fields the card shows and who changed it; never another
//! agent's desk, nor after the wrap-up is saved. One node on either
//! backend; `card_news_across` covers two nodes.

use std::time::Duration;

use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::desk::{agent_floor, next, open_desk, say, wait_for, AgentFloor, Ws};
use crate::dialler::DAY_ZONE;

#[tokio::test]
async fn edits_of_the_contact_on_the_card_reach_its_agent_on_sqlite() {
    card_news(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn edits_of_the_contact_on_the_card_reach_its_agent_on_postgres() {
    card_news(crm::testing::TestBackend::Postgres).await;
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Fails if the desk tells of an edit within half a second: the window in
/// which one would have come, as each arrives within milliseconds.
async fn no_news(ws: &mut Ws) {
    let deadline = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    assert!(!text.contains("\"contact_edited\""), "told: {text}");
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

async fn card_news(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, None).await else {
        return;
    };
    let AgentFloor {
        ref t,
        ref acme,
        ref sup_pw,
        ..
    } = f;
    let s = &t.db.store;
    let now = Utc::now();
    let ann_pw = t.user(acme, "ann", Role::Admin).await;
    let ann = t.login("ann", &ann_pw).await;
    let bo_pw = t.user(acme, "bo", Role::Agent).await;
    for field in [
        json!({ "key": "plan", "kind": "text", "label": "Plan" }),
        json!({ "key": "credit", "kind": "text", "label": "Credit note", "on_card": false }),
    ] {
        let (status, body) = send(ann.post(t.url("/api/account/fields")).json(&field)).await;
        assert_eq!(status, 201, "{body}");
    }
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let phone = "+447700900781";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Philippa".into(),
                last_name: "Oddington".into(),
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
            acme,
            list.id,
            "Spring",
            DialMode::Progressive,
            None,
            ("sue", sup_pw),
        )
        .await;
    let sue = t.login("sue", sup_pw).await;
    let path = format!("/api/contacts/{}", contact.id);

    // Bo is on his desk too, with no call.
    let bo_cookie = t.session_cookie("bo", &bo_pw).await;
    let mut bo = open_desk(t, &bo_cookie).await;
    assert_eq!(next(&mut bo).await["type"], "welcome");

    f.connect_audio().await;
    let mut al = f.open_desk().await;
    wait_for(&mut al, "welcome").await;
    say(
        &mut al,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut al, "call").await;
    assert_eq!(card["contact"]["id"], contact.id.0);
    let version = card["contact"]["version"].as_i64().expect("a version");

    // A supervisor corrects the contact during the call.
    let (status, saved) = send(sue.patch(t.url(&path)).json(&json!({
        "version": version, "last_name": "Oddington-Smythe",
        "fields": { "plan": "Gold", "credit": "secret" }
    })))
    .await;
    assert_eq!(status, 200, "{saved}");
    let told = wait_for(&mut al, "contact_edited").await;
    assert_eq!(told["contact"]["id"], contact.id.0, "{told}");
    assert_eq!(told["contact"]["version"], version + 1);
    assert_eq!(told["contact"]["last_name"], "Oddington-Smythe");
    assert_eq!(told["by"], "sue");
    assert_eq!(
        told["fields"],
        json!(["last_name", "field.plan"]),
        "the field off the card is not named"
    );
    assert_eq!(told["contact"]["fields"], json!({ "plan": "Gold" }));
    assert_eq!(told["contact"]["card_fields"][0]["value"], "Gold", "{told}");
    assert!(
        !told.to_string().contains("secret"),
        "no value of the field off the card: {told}"
    );
    // Another agent's desk is not told.
    no_news(&mut bo).await;

    // The agent's own edit comes back too, at its version; the page knows
    // it has it already.
    let al_http = t.login("al", &f.agent_pw).await;
    let (status, mine) = send(
        al_http
            .patch(t.url(&path))
            .json(&json!({ "version": version + 1, "email": "pippa@example.org" })),
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    let told = wait_for(&mut al, "contact_edited").await;
    assert_eq!(
        (&told["contact"]["version"], &told["by"], &told["fields"]),
        (&json!(version + 2), &json!("al"), &json!(["email"]))
    );

    // During the wrap-up the card is still shown, and still told.
    say(&mut al, json!({ "type": "hangup" })).await;
    let ended = wait_for(&mut al, "call_ended").await;
    let (status, _) = send(
        sue.patch(t.url(&path))
            .json(&json!({ "version": version + 2, "profession": "Admiral" })),
    )
    .await;
    assert_eq!(status, 200);
    let told = wait_for(&mut al, "contact_edited").await;
    assert_eq!(told["contact"]["profession"], "Admiral");
    assert_eq!(told["fields"], json!(["profession"]));

    // Once the wrap-up is saved the card is closed: no more news of it.
    say(
        &mut al,
        json!({ "type": "disposition", "call_ref": ended["call_ref"], "disposition": "sale" }),
    )
    .await;
    wait_for(&mut al, "saved").await;
    say(&mut al, json!({ "type": "pause", "code": "break" })).await;
    let (status, _) = send(
        sue.patch(t.url(&path))
            .json(&json!({ "version": version + 3, "profession": "Rear admiral" })),
    )
    .await;
    assert_eq!(status, 200);
    no_news(&mut al).await;
    drop((al, bo));
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
