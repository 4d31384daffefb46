//! An agent's day over the desk websocket: Ready, a call connected with the
//! contact card, the call ending, and a disposition saved to the CRM.

use std::time::Duration;

use chrono::Utc;
use crm::model::{Account, ContactFields, Role, User};
use crm::store::campaign_settings::DialMode;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::dialler::{agent_phone, carrier, DAY_ZONE};
use crate::helpers::{spawn_app_tuned, TestApp};

#[tokio::test]
async fn an_agent_takes_a_call_and_saves_a_disposition_on_sqlite() {
    agent_day(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn an_agent_takes_a_call_and_saves_a_disposition_on_postgres() {
    agent_day(crm::testing::TestBackend::Postgres).await;
}

async fn agent_day(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, Some(2)).await else {
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
    let phone = "+447700900777";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Philippa".into(),
                last_name: "Oddington".into(),
                phone_e164: phone.into(),
                phone_raw: phone.into(),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({ "plan": "gold" }),
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
            "Spring",
            DialMode::Progressive,
            None,
            ("sue", &sup_pw),
        )
        .await;

    let cookie = t.session_cookie("al", &agent_pw).await;
    let mut ws = open_desk(&t, &cookie).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["version"], 1);
    assert_eq!(welcome["audio"], false);
    assert_eq!(welcome["campaigns"][0]["id"], campaign.id.0);

    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["type"], "error");
    assert!(refused["message"].as_str().expect("text").contains("audio"));
    say(
        &mut ws,
        json!({"type": "webrtc_offer", "sdp": "v=0 not an offer"}),
    )
    .await;
    let bad_offer = next(&mut ws).await;
    assert_eq!(bad_offer["type"], "error");
    assert!(bad_offer["message"]
        .as_str()
        .expect("text")
        .contains("audio could not be set up"));
    say(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(
        next(&mut ws).await["type"],
        "error",
        "bad messages are answered"
    );

    let leg = agent_phone(&t.app.telephony.gateway).await;
    t.app.legs.set(agent.id, leg);
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let ready = next(&mut ws).await;
    assert_eq!(ready["type"], "state");
    assert_eq!(ready["state"], "ready");

    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["contact"]["first_name"], "Philippa");
    assert_eq!(card["contact"]["custom_fields"]["plan"], "gold");
    let call_ref = card["call_ref"].as_str().expect("ref").to_owned();
    // The page reloads mid-call: the new connection finds the call, or the
    // wrap-up if it ended meanwhile, and the disposition is still due.
    ws.close(None).await.expect("close");
    drop(ws);
    let mut ws = open_desk(&t, &cookie).await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    let restored = next(&mut ws).await;
    assert_eq!(restored["type"], "state");
    assert_eq!(restored["reason"], "reconnected");
    assert!(
        ["in_call", "wrap_up"].contains(&restored["state"].as_str().expect("state")),
        "{restored}"
    );
    let ended = wait_for(&mut ws, "call_ended").await;
    assert_eq!(ended["call_ref"], call_ref);
    let choices: Vec<&str> = ended["dispositions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(choices.contains(&"do_not_call"));

    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "callback"}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await["type"],
        "error",
        "a callback needs a time"
    );
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "do_not_call",
               "notes": "asked not to be called again"}),
    )
    .await;
    assert_eq!(wait_for(&mut ws, "saved").await["call_ref"], call_ref);
    assert_eq!(wait_for(&mut ws, "state").await["state"], "ready");

    let history = s
        .interactions_for_contact(acme.id, contact.id)
        .await
        .expect("q");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].disposition.as_deref(), Some("do_not_call"));
    assert_eq!(
        history[0].notes.as_deref(),
        Some("asked not to be called again")
    );
    assert_eq!(history[0].user_id, Some(agent.id));
    assert!(s.is_suppressed(acme.id, phone).await.expect("q"));
    let attempt = s
        .attempt_by_ref(acme.id, call_ref.parse().expect("a call reference"))
        .await
        .expect("attempt");
    assert_eq!(attempt.outcome.as_deref(), Some("answered"));
    assert_eq!(history[0].attempt_id, Some(attempt.id));
    ws.close(None).await.expect("close");
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

/// The service between two simulated carriers — `customers`, answering with
/// a 440 Hz tone and hanging up after `hangup_after_secs`, and `phones`,
/// standing in for agents' nailed-up audio legs — with the account `acme`,
/// its supervisor `sue` and its agent `al`.
pub(crate) struct AgentFloor {
    pub t: TestApp,
    pub customers: Carrier,
    _phones: Carrier,
    pub acme: Account,
    pub sup_pw: String,
    pub agent_pw: String,
    pub agent: User,
}

/// Starts an [`AgentFloor`] on `backend`; `None` when the backend is absent.
pub(crate) async fn agent_floor(
    backend: crm::testing::TestBackend,
    hangup_after_secs: Option<u64>,
) -> Option<AgentFloor> {
    agent_floor_tuned(backend, hangup_after_secs, |_| {}).await
}

/// Starts an [`AgentFloor`] as [`agent_floor`] does, with `tune` applied to
/// the service's settings.
pub(crate) async fn agent_floor_tuned(
    backend: crm::testing::TestBackend,
    hangup_after_secs: Option<u64>,
    tune: impl FnOnce(&mut dialcrm::Settings),
) -> Option<AgentFloor> {
    let customers = carrier(Mix::always(Outcome::Answer), 440.0, hangup_after_secs).await;
    let phones = carrier(Mix::always(Outcome::Answer), 1000.0, None).await;
    let mut trunk = TrunkConfig::new("customers", customers.sip_addr());
    trunk.max_cps = 100;
    let trunks = vec![trunk, TrunkConfig::new("phones", phones.sip_addr())];
    let t = spawn_app_tuned(backend, false, trunks, None, tune).await?;
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent =
        t.db.store
            .credentials("al")
            .await
            .expect("q")
            .expect("al")
            .0;
    Some(AgentFloor {
        t,
        customers,
        _phones: phones,
        acme,
        sup_pw,
        agent_pw,
        agent,
    })
}

impl AgentFloor {
    /// Gives the agent an audio leg: a call to the phones carrier.
    pub async fn connect_audio(&self) {
        let leg = agent_phone(&self.t.app.telephony.gateway).await;
        self.t.app.legs.set(self.agent.id, leg);
    }

    /// Logs the agent in and opens their desk websocket.
    pub async fn open_desk(&self) -> Ws {
        let cookie = self.t.session_cookie("al", &self.agent_pw).await;
        open_desk(&self.t, &cookie).await
    }
}

/// Opens the desk websocket with a session cookie.
pub(crate) async fn open_desk(t: &TestApp, cookie: &str) -> Ws {
    let mut req = format!("ws://{}/api/agent/ws", t.app.http_addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("the agent's websocket opens")
        .0
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn say(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .expect("sent");
}

pub(crate) async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

pub(crate) async fn wait_for(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = next(ws).await;
        if m["type"] == kind {
            return m;
        }
        assert_ne!(m["type"], "error", "unexpected error: {m}");
    }
}

#[tokio::test]
async fn preview_shows_the_contact_before_the_agent_calls_or_skips() {
    let Some(f) = agent_floor(crm::testing::TestBackend::Sqlite, Some(1)).await else {
        return;
    };
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    for (i, name) in ["Skipped", "Chosen"].iter().enumerate() {
        let phone = format!("+44770090091{i}");
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
    }
    let campaign =
        f.t.start_campaign(
            acme,
            list.id,
            "Look first",
            DialMode::Preview,
            None,
            ("sue", &f.sup_pw),
        )
        .await;
    f.connect_audio().await;
    let mut ws = f.open_desk().await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let first = wait_for(&mut ws, "preview").await;
    assert_eq!(first["contact"]["first_name"], "Skipped");
    say(&mut ws, json!({"type": "preview_skip"})).await;
    let second = wait_for(&mut ws, "preview").await;
    assert_eq!(second["contact"]["first_name"], "Chosen");
    assert_eq!(
        f.customers.stats().calls,
        0,
        "nothing dialled while previewing"
    );
    say(&mut ws, json!({"type": "preview_call"})).await;
    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["contact"]["first_name"], "Chosen");
    wait_for(&mut ws, "call_ended").await;
    assert_eq!(
        f.customers.stats().calls,
        1,
        "only the chosen contact was dialled"
    );
    ws.close(None).await.expect("close");
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
