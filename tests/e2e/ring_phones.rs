//! Desk phones rung per queue call: two agents take queue calls on their
//! registered SIP desk phones (sipp), rung for each call rather than kept
//! up. sipp as the provider sends a customer's call to the queue's number;
//! the better-skilled agent's phone rings and nobody picks it up, so after
//! the queue's ring time the call goes to the other agent and the first is
//! paused as not answering. The second phone answers with a 440 Hz tone,
//! which the customer (echoing) sends back: the call's recording hears it
//! both ways. The agent hangs up from their desk, the phone and the
//! customer get BYE, and /metrics counts the call and the phone that rang
//! out. Both backends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use crm::model::{Actor, Role};
use crm::store::campaign_settings::DialMode;
use crm::store::queues::QueueSettings;
use serde_json::json;
use sip_gateway::carrier::pcap::pcmu_capture;
use sip_gateway::gateway::{Gateway, TrunkConfig};
use sip_gateway::media::tone::{dominant_frequency, sine};
use tokio::process::Child;

use crate::desk::{agent_floor_tuned, next, open_desk, say, wait_for, Ws};
use crate::inbound::{free_port, sipp_installed, Caller, DID};

#[tokio::test]
async fn a_queue_call_rings_desk_phones_until_one_answers_on_sqlite() {
    rung_per_call(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_queue_call_rings_desk_phones_until_one_answers_on_postgres() {
    rung_per_call(crm::testing::TestBackend::Postgres).await;
}

use crate::phones::PASSWORD;

/// A registered desk phone played by sipp; its scenario passes once the
/// service's call to it is over (answered and hung up, or rung out).
struct Phone {
    child: Child,
}

impl Phone {
    /// Registers `user` and waits for the service's call, handled by the
    /// out-of-call scenario `call_scenario`.
    async fn start(gateway: &Gateway, user: &str, call_scenario: &Path) -> Phone {
        let child = crate::phones::registered_phone(gateway, user, call_scenario, false).await;
        Phone { child }
    }

    async fn passed(mut self, who: &str) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("sipp ends")
            .expect("status");
        assert!(
            status.success(),
            "{who}'s phone scenario passed: {}",
            crate::phones::sipp_errors(&mut self.child).await
        );
    }
}

async fn rung_per_call(backend: crm::testing::TestBackend) {
    if !sipp_installed().await {
        return;
    }
    let sipp_port = free_port();
    let Some(f) = agent_floor_tuned(backend, None, |settings| {
        let provider = format!("127.0.0.1:{sipp_port}").parse().expect("addr");
        settings.trunks.push(TrunkConfig::new("provider", provider));
    })
    .await
    else {
        return;
    };
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    let bo_pw = f.t.user(acme, "bo", Role::Agent).await;
    let bo = s.credentials("bo").await.expect("q").expect("bo").0;
    let actor = Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    for user in [f.agent.id, bo.id] {
        s.set_sip_password(&actor, user, None, "dialcrm", PASSWORD, now)
            .await
            .expect("a SIP password");
    }
    let gateway = f.t.app.telephony.gateway.clone();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp");
    let al_phone = Phone::start(&gateway, "al", &dir.join("desk_phone_rings_out_call.xml")).await;
    let tone = tone_scenario(&dir);
    let bo_phone = Phone::start(&gateway, "bo", &tone).await;

    let list = s
        .create_list(acme.id, "Empty", "GB", now)
        .await
        .expect("list");
    let campaign =
        f.t.start_campaign(
            acme,
            list.id,
            "Service",
            DialMode::Progressive,
            Some("customers"),
            ("sue", &f.sup_pw),
        )
        .await;
    let mut settings = QueueSettings::new(campaign.id);
    settings.record_calls = true;
    settings.ring_secs = 5;
    let queue = s
        .create_queue(acme.id, "Sales", &settings, &[DID.to_owned()], now)
        .await
        .expect("queue");
    // Al is the better-skilled, so his phone rings first.
    s.assign_queue_agent(acme.id, queue.id, f.agent.id, 9)
        .await
        .expect("al in the queue");
    s.assign_queue_agent(acme.id, queue.id, bo.id, 5)
        .await
        .expect("bo in the queue");

    let mut al = f.open_desk().await;
    ready_on_desk_phone(&mut al, campaign.id).await;
    let cookie = f.t.session_cookie("bo", &bo_pw).await;
    let mut bo_desk = open_desk(&f.t, &cookie).await;
    ready_on_desk_phone(&mut bo_desk, campaign.id).await;
    // An agent rung per call takes no outbound call, so cannot dial by hand.
    say(
        &mut bo_desk,
        json!({"type": "manual_dial", "number": "+447700900123"}),
    )
    .await;
    assert_eq!(next(&mut bo_desk).await["type"], "error");

    let caller = Caller::call(
        "inbound_patient_caller.xml",
        gateway.sip_udp_addr(),
        sipp_port,
        DID,
    )
    .await;
    // Al's phone rings the queue's five seconds and nobody answers.
    let paused = wait_for(&mut al, "state").await;
    assert_eq!(
        (paused["state"].as_str(), paused["reason"].as_str()),
        (Some("paused"), Some("not_answering")),
        "{paused}"
    );
    // The caller waited on, and bo's phone took them.
    let card = wait_for(&mut bo_desk, "call").await;
    assert_eq!(card["inbound"]["queue"], "Sales");
    let call_ref = card["call_ref"].as_str().expect("ref").to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    say(&mut bo_desk, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut bo_desk, "call_ended").await;
    assert_eq!(ended["call_ref"], call_ref);
    say(
        &mut bo_desk,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "sale"}),
    )
    .await;
    wait_for(&mut bo_desk, "saved").await;
    caller.passed().await;
    al_phone.passed("al").await;
    bo_phone.passed("bo").await;

    let attempt = s
        .attempt_by_ref(acme.id, call_ref.parse().expect("a call ref"))
        .await
        .expect("the inbound attempt");
    let recordings = s
        .recordings_for_contact(acme.id, attempt.contact_id.expect("the caller's contact"))
        .await
        .expect("recordings");
    assert_eq!(recordings.len(), 1, "the queue records its calls");
    let (sent, heard) = crate::softphone::channels(Path::new(&recordings[0].path));
    // The last seconds, in the talk: before them the caller heard the hold
    // tone while al's phone rang.
    let middle =
        |x: &[i16]| x[x.len().saturating_sub(14_000)..x.len().saturating_sub(2_000)].to_vec();
    let candidates = [440.0, 1000.0];
    assert_eq!(
        dominant_frequency(&middle(&sent), &candidates, 8000, 1e-4),
        Some(440.0),
        "what bo's desk phone sent the customer"
    );
    assert_eq!(
        dominant_frequency(&middle(&heard), &candidates, 8000, 1e-4),
        Some(440.0),
        "the customer's echo of it, back from the provider"
    );

    let metrics = f.t.metrics_text().await;
    let answered = format!(
        "dialcrm_queue_calls_total{{account=\"{}\",queue=\"{}\",outcome=\"answered\"}} 1",
        acme.id.0, queue.id.0
    );
    assert!(metrics.contains(&answered), "{answered} in {metrics}");
    assert!(
        metrics.contains("dialcrm_desk_phones_not_answering_total 1"),
        "{metrics}"
    );
    drop(gateway);
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// Takes the agent's queue calls on their desk phone, rung per call, and
/// says Ready.
async fn ready_on_desk_phone(ws: &mut Ws, campaign: crm::model::CampaignId) {
    assert_eq!(next(ws).await["type"], "welcome");
    say(ws, json!({"type": "desk_phone", "per_call": true})).await;
    assert_eq!(wait_for(ws, "desk_phone").await["state"], "per_call");
    say(ws, json!({"type": "ready", "campaign_id": campaign.0})).await;
    assert_eq!(wait_for(ws, "state").await["state"], "ready");
}

/// The answering phone's call scenario, playing four seconds of 440 Hz
/// once the call is up: written beside a capture of that tone.
fn tone_scenario(dir: &Path) -> PathBuf {
    let out = std::env::temp_dir().join(format!(
        "dialcrm-tone-phone-{}-{}",
        std::process::id(),
        sip_gateway::gateway::CallRef::random()
    ));
    std::fs::create_dir_all(&out).expect("a folder");
    let pcap = out.join("tone440.pcap");
    std::fs::write(&pcap, tone_pcap(440.0, 200)).expect("the capture");
    let answers =
        std::fs::read_to_string(dir.join("desk_phone_answers_call.xml")).expect("the scenario");
    let ack = "<recv request=\"ACK\" crlf=\"true\"/>";
    assert!(answers.contains(ack));
    let play = format!(
        "{ack}\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>",
        pcap.display()
    );
    let scenario = out.join("desk_phone_answers_tone_call.xml");
    std::fs::write(&scenario, answers.replace(ack, &play)).expect("the scenario");
    scenario
}

/// A capture of `packets` 20 ms PCMU packets of a tone, for sipp's
/// `play_pcap_audio`.
fn tone_pcap(frequency: f64, packets: u32) -> Vec<u8> {
    pcmu_capture(&sine(frequency, 8000, 8000, packets as usize * 160))
}
