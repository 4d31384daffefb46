//! A caller reaches an agent on another node: two nodes of the service on
//! one PostgreSQL and one NATS, each with a trunk to the other. sipp, as
//! the provider, calls the queue's number at node A, where no agent of the
//! queue sits; the only one is Ready on node B. A hears from B's queue
//! status that B has a free agent, calls B for the caller and bridges
//! them; B takes the call's attempt over and connects the agent, whose
//! desk on B shows the caller's card. Audio crosses both nodes both ways
//! (the agent's 1000 Hz reaches the caller, whose echo comes back, in A's
//! recording), the call is logged once (on B, answered by the agent), and
//! the agent hanging up on B ends the caller's call at A.
//!
//! Several nodes need PostgreSQL, so this runs on it alone.

use std::time::Duration;

use chrono::Utc;
use crm::store::campaign_settings::{CampaignSettings, DialMode};
use crm::store::queues::QueueSettings;
use crm::testing::nats::TestNats;
use serde_json::json;
use sip_gateway::gateway::{GatewayConfig, TrunkConfig};
use sip_gateway::media::tone::dominant_frequency;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::desk::{agent_floor_tuned, next, say, wait_for, Ws};
use crate::inbound::{free_port, sipp_installed, Caller, DID};

const CALLER: &str = "+447400123456";

/// Two nodes, A (the test app, with the provider's trunk to sipp) and B,
/// each with a trunk to the other, on one PostgreSQL and one NATS.
struct TwoNodes {
    f: crate::desk::AgentFloor,
    b: dialcrm::App,
    sipp_port: u16,
    _nats: TestNats,
}

async fn two_nodes() -> Option<TwoNodes> {
    if !sipp_installed().await {
        return None;
    }
    let nats = TestNats::start().await?;
    let (sipp_port, sip_a, sip_b) = (free_port(), free_port(), free_port());
    let gateway_on = |port: u16| GatewayConfig {
        sip_udp: format!("127.0.0.1:{port}").parse().expect("addr"),
        t1: Duration::from_millis(100),
        ..GatewayConfig::loopback()
    };
    let peer = |name: &str, port: u16| {
        let mut trunk = TrunkConfig::new(name, format!("127.0.0.1:{port}").parse().expect("addr"));
        trunk.peer = true;
        trunk
    };
    let nats_url = nats.url.clone();
    let f = agent_floor_tuned(crm::testing::TestBackend::Postgres, None, |settings| {
        let provider = format!("127.0.0.1:{sipp_port}").parse().expect("addr");
        settings.trunks.push(TrunkConfig::new("provider", provider));
        settings.trunks.push(peer("node-b", sip_b));
        settings.node_id = "node-a".into();
        settings.gateway = Some(gateway_on(sip_a));
        settings.nats_url = Some(dialcrm::settings::Secret::new(nats_url));
    })
    .await?;
    // Node B: the same service and database, its own SIP port, a trunk
    // back to A.
    let mut settings_b = f.t.settings.clone();
    settings_b.node_id = "node-b".into();
    settings_b.gateway = Some(gateway_on(sip_b));
    settings_b.trunks.retain(|t| !t.peer);
    settings_b.trunks.push(peer("node-a", sip_a));
    let b = dialcrm::App::start_with_clock(&settings_b, f.t.clock.clone())
        .await
        .expect("node B starts");
    Some(TwoNodes {
        f,
        b,
        sipp_port,
        _nats: nats,
    })
}

/// Creates a progressive campaign dialling `list` through the customers'
/// trunk, with the agent assigned, and has the supervisor start it on B.
async fn start_on_b(n: &TwoNodes, list: crm::model::ListId) -> crm::model::Campaign {
    let (f, b) = (&n.f, &n.b);
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    let campaign = s
        .create_campaign(acme.id, "Service", "+441632960000", now)
        .await
        .expect("campaign");
    s.attach_list(acme.id, campaign.id, list, 0)
        .await
        .expect("attach");
    let mut settings = CampaignSettings::defaults("+441632960000");
    settings.mode = DialMode::Progressive;
    settings.trunk = "customers".into();
    s.update_campaign_settings(acme.id, campaign.id, &settings, now)
        .await
        .expect("settings");
    s.assign_agents(acme.id, campaign.id, &[f.agent.id])
        .await
        .expect("agent assigned");
    let sup = crate::helpers::client();
    let login = sup
        .post(format!("{}/api/login", b.base_url()))
        .json(&json!({"username": "sue", "password": f.sup_pw}))
        .send()
        .await
        .expect("sent");
    assert_eq!(login.status(), 200);
    let started = sup
        .post(format!(
            "{}/api/campaigns/{}/start",
            b.base_url(),
            campaign.id
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(started.status(), 200, "the supervisor starts it on B");
    campaign
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_at_one_node_reaches_an_agent_on_another() {
    let Some(n) = two_nodes().await else {
        return;
    };
    let (f, b, sipp_port) = (&n.f, &n.b, n.sipp_port);
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    // A campaign with nobody to call, started on B: its agents sit Ready there.
    let list = s
        .create_list(acme.id, "Empty", "GB", now)
        .await
        .expect("list");
    let campaign = start_on_b(&n, list.id).await;

    let mut queue_settings = QueueSettings::new(campaign.id);
    queue_settings.record_calls = true;
    let queue = s
        .create_queue(acme.id, "Sales", &queue_settings, &[DID.to_owned()], now)
        .await
        .expect("queue");
    s.assign_queue_agent(acme.id, queue.id, f.agent.id, 5)
        .await
        .expect("agent in the queue");

    // The agent works on node B, with B's audio leg.
    let leg = crate::dialler::agent_phone(&b.telephony.gateway).await;
    b.legs.set(f.agent.id, leg);
    let cookie = f.t.session_cookie("al", &f.agent_pw).await;
    let mut desk = open_desk_at(b.http_addr, &cookie).await;
    assert_eq!(next(&mut desk).await["type"], "welcome");
    say(
        &mut desk,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    assert_eq!(wait_for(&mut desk, "state").await["state"], "ready");

    // The provider sends the call to node A.
    let caller = Caller::call(
        "inbound_patient_caller.xml",
        f.t.app.telephony.gateway.sip_udp_addr(),
        sipp_port,
        DID,
    )
    .await;
    let card = wait_for(&mut desk, "call").await;
    assert_eq!(card["inbound"]["queue"], "Sales");
    assert_eq!(card["contact"]["phone_e164"], CALLER, "{card}");
    let call_ref = card["call_ref"].as_str().expect("ref").to_owned();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    say(&mut desk, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut desk, "call_ended").await;
    assert_eq!(ended["call_ref"], call_ref);
    say(
        &mut desk,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "sale"}),
    )
    .await;
    wait_for(&mut desk, "saved").await;
    // Hanging up on B ended the caller's call at A.
    caller.passed().await;

    let attempt = s
        .attempt_by_ref(acme.id, call_ref.parse().expect("a call ref"))
        .await
        .expect("the call's attempt, under B's reference");
    assert_eq!(attempt.outcome.as_deref(), Some("answered"));
    // The service logs calls by its clock.
    let wall = dashboard::Clock::now(f.t.clock.as_ref());
    let day = crm::store::reports::Period {
        from: wall - chrono::TimeDelta::hours(1),
        to: wall + chrono::TimeDelta::hours(1),
    };
    let report = s.queue_report(acme.id, day).await.expect("report");
    let sales = report
        .iter()
        .find(|r| r.queue_id == queue.id)
        .expect("the queue's row");
    assert_eq!(
        (sales.offered, sales.answered),
        (1, 1),
        "one call, counted once"
    );
    // A carried the audio and recorded it: the agent's tone, and the
    // caller's echo of it.
    let recordings = s
        .recordings_for_contact(acme.id, attempt.contact_id.expect("the caller's contact"))
        .await
        .expect("recordings");
    assert_eq!(
        recordings.len(),
        1,
        "recorded once, where the caller came in"
    );
    let (sent, heard) = crate::softphone::channels(std::path::Path::new(&recordings[0].path));
    let tail =
        |x: &[i16]| x[x.len().saturating_sub(12_000)..x.len().saturating_sub(2_000)].to_vec();
    let candidates = [440.0, 1000.0];
    assert_eq!(
        dominant_frequency(&tail(&sent), &candidates, 8000, 1e-4),
        Some(1000.0),
        "the agent on B reached the caller at A"
    );
    assert_eq!(
        dominant_frequency(&tail(&heard), &candidates, 8000, 1e-4),
        Some(1000.0),
        "the caller at A reached the agent on B"
    );
    n.finish().await;
}

impl TwoNodes {
    async fn finish(self) {
        self.b.stop().await.expect("B stops");
        self.f.t.app.stop().await.expect("A stops");
        self.f.t.db.finish().await;
    }
}

/// Opens the agent's desk websocket on the node at `addr`.
async fn open_desk_at(addr: std::net::SocketAddr, cookie: &str) -> Ws {
    let mut req = format!("ws://{addr}/api/agent/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("the agent's websocket opens")
        .0
}

/// The agent's desk phone registered with node A while their page is on
/// node B: B asks A for it through their trunk, A rings it (sipp answers
/// and echoes) and carries the call on, and B's campaign connects its
/// customer (the simulated carrier's 440 Hz) into that leg: B's recording
/// hears the customer and the phone's echo of them, back through A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_one_node_takes_calls_on_a_desk_phone_registered_with_another() {
    let Some(n) = two_nodes().await else {
        return;
    };
    let (f, b) = (&n.f, &n.b);
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    let actor = crm::model::Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    s.set_sip_password(
        &actor,
        f.agent.id,
        None,
        "dialcrm",
        crate::phones::PASSWORD,
        now,
    )
    .await
    .expect("a SIP password");
    // The phone registers with node A.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp");
    let gateway_a = f.t.app.telephony.gateway.clone();
    let answers = dir.join("desk_phone_answers_call.xml");
    let mut phone = crate::phones::registered_phone(&gateway_a, "al", &answers, true).await;
    assert!(
        b.telephony
            .gateway
            .phone("al")
            .await
            .expect("gateway")
            .is_none(),
        "registered with A only"
    );

    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let contact = s
        .create_contact(
            acme.id,
            &crm::model::ContactFields {
                first_name: "Far".into(),
                phone_e164: "+447700900612".into(),
                phone_raw: "+447700900612".into(),
                time_zone: Some(crate::dialler::DAY_ZONE.into()),
                custom_fields: json!({}),
                ..Default::default()
            },
            now,
        )
        .await
        .expect("contact");
    s.add_to_list(acme.id, list.id, contact.id, now)
        .await
        .expect("member");
    let campaign = start_on_b(&n, list.id).await;

    let cookie = f.t.session_cookie("al", &f.agent_pw).await;
    let mut desk = open_desk_at(b.http_addr, &cookie).await;
    assert_eq!(next(&mut desk).await["type"], "welcome");
    say(&mut desk, json!({"type": "desk_phone"})).await;
    assert_eq!(wait_for(&mut desk, "desk_phone").await["state"], "ringing");
    assert_eq!(
        wait_for(&mut desk, "desk_phone").await["state"],
        "connected"
    );
    say(
        &mut desk,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut desk, "call").await;
    assert_eq!(card["contact"]["first_name"], "Far");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    say(&mut desk, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut desk, "call_ended").await;
    say(
        &mut desk,
        json!({"type": "disposition", "call_ref": ended["call_ref"], "disposition": "sale"}),
    )
    .await;
    wait_for(&mut desk, "saved").await;
    let recordings = s
        .recordings_for_contact(acme.id, contact.id)
        .await
        .expect("recordings");
    assert_eq!(recordings.len(), 1);
    let (sent, heard) = crate::softphone::channels(std::path::Path::new(&recordings[0].path));
    let middle = |x: &[i16]| x[x.len() / 4..x.len() * 3 / 4].to_vec();
    let candidates = [440.0, 1000.0];
    assert_eq!(
        dominant_frequency(&middle(&heard), &candidates, 8000, 1e-4),
        Some(440.0),
        "the customer"
    );
    assert_eq!(
        dominant_frequency(&middle(&sent), &candidates, 8000, 1e-4),
        Some(440.0),
        "what the desk phone on A sent the customer on B: its echo of them"
    );
    // At the end of the shift B hangs the leg up; A hangs up the phone.
    let leg = b.legs.get(f.agent.id).expect("the relayed call is the leg");
    b.telephony.gateway.hangup(leg).await.expect("hung up");
    assert_eq!(wait_for(&mut desk, "desk_phone").await["state"], "ended");
    let status = tokio::time::timeout(Duration::from_secs(20), phone.wait())
        .await
        .expect("sipp ends")
        .expect("status");
    assert!(
        status.success(),
        "the phone's scenario passed: {}",
        crate::phones::sipp_errors(&mut phone).await
    );
    n.finish().await;
}
