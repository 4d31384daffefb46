//! Customers calling in: sipp plays the provider sending a call to one of
//! the account's numbers, the service answers it, the caller waits in the
//! queue and reaches the agent working a campaign (blended: the same agent
//! takes outbound calls), who sees the card, talks (audio both ways,
//! checked by frequency in the call's recording), hangs up and saves a
//! disposition; the caller calling again pops the same contact with its
//! history. A number that is not ours gets 404. Both backends.
//!
//! sipp (Debian package `sip-tester`) must be installed: under `CI=true`
//! a missing sipp fails these tests; elsewhere they are skipped loudly.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use crm::store::campaign_settings::DialMode;
use crm::store::queues::QueueSettings;
use serde_json::json;
use sip_gateway::gateway::TrunkConfig;
use sip_gateway::media::tone::dominant_frequency;
use tokio::process::{Child, Command};

use crate::desk::{agent_floor_tuned, next, say, wait_for};

pub(crate) const DID: &str = "+441632960001";
const CALLER: &str = "+447400123456";

#[tokio::test]
async fn a_caller_reaches_a_blended_agent_and_calls_back_on_sqlite() {
    inbound_day(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_caller_reaches_a_blended_agent_and_calls_back_on_postgres() {
    inbound_day(crm::testing::TestBackend::Postgres).await;
}

#[tokio::test]
async fn callers_nobody_takes_leave_a_voicemail_or_get_called_back_on_sqlite() {
    overflow(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn callers_nobody_takes_leave_a_voicemail_or_get_called_back_on_postgres() {
    overflow(crm::testing::TestBackend::Postgres).await;
}

#[tokio::test]
async fn a_busy_queue_holds_an_agent_back_from_outbound_on_sqlite() {
    held_back(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_busy_queue_holds_an_agent_back_from_outbound_on_postgres() {
    held_back(crm::testing::TestBackend::Postgres).await;
}

/// sipp calling the service once, as the provider's customer.
pub(crate) struct Caller {
    child: Child,
    log: PathBuf,
}

impl Caller {
    pub(crate) async fn call(
        scenario: &str,
        gateway: std::net::SocketAddr,
        port: u16,
        number: &str,
    ) -> Caller {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        let log = std::env::temp_dir().join(format!(
            "dialcrm-inbound-{}-{}.log",
            std::process::id(),
            sip_gateway::gateway::CallRef::random()
        ));
        let media = free_port();
        let child = Command::new("sipp")
            .arg(gateway.to_string())
            .arg("-sf")
            .arg(&path)
            .args(["-s", number, "-key", "caller", CALLER])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string(), "-rtp_echo"])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Caller { child, log }
    }

    pub(crate) async fn passed(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("sipp finishes its call")
            .expect("status");
        let errors = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            status.success(),
            "sipp's scenario failed ({status}): {errors}"
        );
    }
}

pub(crate) async fn sipp_installed() -> bool {
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok();
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "sipp is not installed (Debian sip-tester) and CI=true");
        eprintln!(
            "!!! SKIPPING inbound tests: sipp is not installed (apt-get install sip-tester) !!!"
        );
    }
    found
}

pub(crate) fn free_port() -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if port > 1024 && (0..4).all(|i| std::net::UdpSocket::bind(("127.0.0.1", port + i)).is_ok())
        {
            return port;
        }
    }
}

async fn inbound_day(backend: crm::testing::TestBackend) {
    if !sipp_installed().await {
        return;
    }
    let Some((f, sipp_port)) = provider_floor(backend).await else {
        return;
    };
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    // The agent works a progressive campaign with nobody left to call, so
    // they sit Ready for it and the queue borrows them.
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
    let queue = s
        .create_queue(acme.id, "Sales", &settings, &[DID.to_owned()], now)
        .await
        .expect("queue");
    s.assign_queue_agent(acme.id, queue.id, f.agent.id, 5)
        .await
        .expect("agent in the queue");

    let mut ws = ready_desk(&f, campaign.id).await;

    let gateway = f.t.app.telephony.gateway.sip_udp_addr();
    // A number that is not ours is refused, and nobody's desk hears of it.
    Caller::call("inbound_unknown.xml", gateway, sipp_port, "+441632960999")
        .await
        .passed()
        .await;

    let caller = Caller::call("inbound_caller.xml", gateway, sipp_port, DID).await;
    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["inbound"]["queue"], "Sales");
    assert_eq!(card["inbound"]["do_not_call"], false);
    assert_eq!(card["contact"]["phone_e164"], CALLER, "{card}");
    let call_ref = card["call_ref"].as_str().expect("ref").to_owned();
    let contact = card["contact"]["id"].as_i64().expect("a contact id");
    // The agent's leg sends 1000 Hz; sipp echoes what it hears.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    say(&mut ws, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    assert_eq!(ended["call_ref"], call_ref);
    let choices = ended["dispositions"].as_array().expect("list").clone();
    assert!(choices.iter().any(|c| c == "sale"), "{ended}");
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": call_ref, "disposition": "sale",
               "notes": "renewed by phone"}),
    )
    .await;
    assert_eq!(wait_for(&mut ws, "saved").await["call_ref"], call_ref);
    assert_eq!(wait_for(&mut ws, "state").await["state"], "ready");
    caller.passed().await;

    let attempt = s
        .attempt_by_ref(acme.id, call_ref.parse().expect("a call reference"))
        .await
        .expect("attempt");
    assert_eq!(attempt.outcome.as_deref(), Some("answered"));
    assert_eq!(attempt.campaign_id, Some(campaign.id));
    let recordings = s
        .recordings_for_contact(acme.id, crm::model::ContactId(contact))
        .await
        .expect("recordings");
    assert_eq!(recordings.len(), 1, "the queue records its calls");
    let (left, right) = channels(std::path::Path::new(&recordings[0].path));
    let candidates = [440.0, 1000.0];
    assert_eq!(
        dominant_frequency(&left, &candidates, 8000, 0.001),
        Some(1000.0),
        "the agent reached the caller"
    );
    assert_eq!(
        dominant_frequency(&right[right.len() / 3..], &candidates, 8000, 0.001),
        Some(1000.0),
        "the caller reached the agent"
    );
    let counts = s
        .compliance_counts(campaign.id, Utc::now())
        .await
        .expect("figures");
    assert_eq!(counts.day.live, 0, "an inbound call is no outbound answer");

    // The same customer calls again: their card, with its history, pops.
    let again = Caller::call("inbound_caller.xml", gateway, sipp_port, DID).await;
    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["contact"]["id"], contact, "the same contact");
    let history = card["contact"]["history"].to_string();
    assert!(
        history.contains("renewed by phone") || history.contains("sale"),
        "{card}"
    );
    say(&mut ws, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": ended["call_ref"], "disposition": "sale"}),
    )
    .await;
    wait_for(&mut ws, "saved").await;
    again.passed().await;
    let calls = s
        .interactions_for_contact(acme.id, crm::model::ContactId(contact))
        .await
        .expect("interactions");
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|i| i.user_id == Some(f.agent.id)));
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// A queue nobody answers: after its longest wait one caller leaves a
/// voicemail, filed against their contact (and gone with the contact's
/// erasure); with the callback overflow another presses 1 and the queue's
/// campaign calls them back to its agent. A call outside opening hours
/// hears the closed message and ends.
async fn overflow(backend: crm::testing::TestBackend) {
    if !sipp_installed().await {
        return;
    }
    let Some((f, sipp_port)) = provider_floor(backend).await else {
        return;
    };
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
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
    // Nobody answers the queue: the campaign's agent works outbound only.
    let mut settings = QueueSettings::new(campaign.id);
    settings.max_wait_secs = 5;
    let queue = s
        .create_queue(acme.id, "Sales", &settings, &[DID.to_owned()], now)
        .await
        .expect("queue");
    let mut ws = ready_desk(&f, campaign.id).await;
    let gateway = f.t.app.telephony.gateway.sip_udp_addr();

    // The caller waits five seconds, hears the beep, speaks, hangs up at six.
    Caller::call("inbound_caller.xml", gateway, sipp_port, DID)
        .await
        .passed()
        .await;
    let contact = s
        .contacts_by_number(acme.id, CALLER)
        .await
        .expect("q")
        .first()
        .expect("the caller's contact")
        .id;
    let attempts = s.attempts_for_contact(acme.id, contact).await.expect("q");
    assert_eq!(attempts.len(), 1);
    let outcome = wait_until_outcome(s, acme.id, attempts[0].call_ref).await;
    assert_eq!(outcome, "voicemail");
    let voicemails = s.recordings_for_contact(acme.id, contact).await.expect("q");
    assert_eq!(
        voicemails.len(),
        1,
        "the voicemail is filed with the caller"
    );
    let file = std::path::PathBuf::from(&voicemails[0].path);
    assert!(file.exists());

    // The callback overflow: the caller presses 1 and is called back.
    let mut changed = queue.settings.clone();
    changed.overflow = crm::store::queues::Overflow::Callback;
    s.update_queue(acme.id, queue.id, &changed, now)
        .await
        .expect("callback overflow");
    let caller = Caller::call("inbound_callback_caller.xml", gateway, sipp_port, DID).await;
    let callback = wait_for(&mut ws, "call").await;
    assert!(
        callback["inbound"].is_null(),
        "an outbound call: {callback}"
    );
    assert_eq!(callback["contact"]["phone_e164"], CALLER, "{callback}");
    caller.passed().await;
    let booked = s.attempts_for_contact(acme.id, contact).await.expect("q");
    let inbound = booked
        .iter()
        .filter(|a| a.outcome.as_deref() == Some("callback_requested"))
        .count();
    assert_eq!(inbound, 1, "{booked:?}");

    // Erasing the caller takes the voicemail with them.
    let actor = crm::model::Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    say(&mut ws, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": ended["call_ref"], "disposition": "sale"}),
    )
    .await;
    wait_for(&mut ws, "saved").await;
    s.erase_contact(acme.id, contact, &actor, Utc::now())
        .await
        .expect("erased");
    assert!(!file.exists(), "the voicemail went with the erasure");

    // Outside opening hours (the service's clock says Friday 09:00 UTC):
    // the closed message plays and the service hangs up.
    let message = std::env::temp_dir().join(format!("dialcrm-closed-{}.wav", std::process::id()));
    crate::softphone::write_tone(&message, 697.0).expect("a message");
    let mut closed = changed.clone();
    closed.opening_hours = dialcrm::queues_cli::parse_hours("sat 10:00-11:00").expect("hours");
    closed.closed_message = Some(message.to_string_lossy().into_owned());
    s.update_queue(acme.id, queue.id, &closed, now)
        .await
        .expect("closed");
    Caller::call("inbound_caller.xml", gateway, sipp_port, DID)
        .await
        .passed()
        .await;
    let reports = s
        .queue_report(
            acme.id,
            crm::store::reports::Period {
                from: Utc::now() - chrono::TimeDelta::days(30),
                to: Utc::now() + chrono::TimeDelta::days(1),
            },
        )
        .await
        .expect("report");
    assert_eq!(reports[0].closed, 1, "{reports:?}");
    assert_eq!(reports[0].voicemail, 1);
    assert_eq!(reports[0].callbacks, 1);
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// Waits for the switchboard to close an inbound call, and returns its outcome.
async fn wait_until_outcome(
    s: &crm::Store,
    account: crm::model::AccountId,
    call: sip_gateway::gateway::CallRef,
) -> String {
    for _ in 0..100 {
        let attempt = s.attempt_by_ref(account, call).await.expect("attempt");
        if let Some(outcome) = attempt.outcome {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the inbound call was never closed");
}

/// An agent in an outbound call while a customer waits in the queue: when
/// the agent is free again the campaign, told to hold one agent back, dials
/// nothing for them, and the waiting caller gets them; once nobody waits,
/// the agent is the campaign's again.
async fn held_back(backend: crm::testing::TestBackend) {
    if !sipp_installed().await {
        return;
    }
    let Some((f, sipp_port)) = provider_floor(backend).await else {
        return;
    };
    let s = &f.t.db.store;
    let now = Utc::now();
    let acme = &f.acme;
    let list = s
        .create_list(acme.id, "Leads", "GB", now)
        .await
        .expect("list");
    for i in 0..4 {
        let phone = format!("+44770090050{i}");
        let c = s
            .create_contact(
                acme.id,
                &crm::model::ContactFields {
                    first_name: format!("Lead{i}"),
                    phone_e164: phone.clone(),
                    phone_raw: phone,
                    time_zone: Some(crate::dialler::DAY_ZONE.into()),
                    custom_fields: json!({}),
                    ..crm::model::ContactFields::default()
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
            "Blend",
            DialMode::Progressive,
            Some("customers"),
            ("sue", &f.sup_pw),
        )
        .await;
    let queue = s
        .create_queue(
            acme.id,
            "Sales",
            &QueueSettings::new(campaign.id),
            &[DID.to_owned()],
            now,
        )
        .await
        .expect("queue");
    s.assign_queue_agent(acme.id, queue.id, f.agent.id, 5)
        .await
        .expect("agent in the queue");

    let mut ws = f.open_desk().await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    f.connect_audio().await;
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let outbound = wait_for(&mut ws, "call").await;
    assert!(
        outbound["inbound"].is_null(),
        "an outbound call first: {outbound}"
    );

    let gateway = f.t.app.telephony.gateway.sip_udp_addr();
    let caller = Caller::call("inbound_patient_caller.xml", gateway, sipp_port, DID).await;
    // The caller waits; the blend sees them within its two-second round.
    tokio::time::sleep(Duration::from_secs(4)).await;
    say(&mut ws, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": ended["call_ref"], "disposition": "not_interested"}),
    )
    .await;
    wait_for(&mut ws, "saved").await;
    let next_call = wait_for(&mut ws, "call").await;
    assert_eq!(
        next_call["inbound"]["queue"], "Sales",
        "the waiting caller, not another lead: {next_call}"
    );
    say(&mut ws, json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    say(
        &mut ws,
        json!({"type": "disposition", "call_ref": ended["call_ref"], "disposition": "sale"}),
    )
    .await;
    wait_for(&mut ws, "saved").await;
    caller.passed().await;
    // Nobody waits: the campaign has the agent again.
    let again = wait_for(&mut ws, "call").await;
    assert!(again["inbound"].is_null(), "outbound again: {again}");
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// The service with the customers' and the agents' simulated carriers
/// (`crate::desk::agent_floor`) and a trunk `provider` at a free port on
/// loopback, for sipp to call from; `None` when the backend is absent.
async fn provider_floor(
    backend: crm::testing::TestBackend,
) -> Option<(crate::desk::AgentFloor, u16)> {
    let sipp_port = free_port();
    let f = agent_floor_tuned(backend, None, |settings| {
        let provider = format!("127.0.0.1:{sipp_port}").parse().expect("addr");
        settings.trunks.push(TrunkConfig::new("provider", provider));
    })
    .await?;
    Some((f, sipp_port))
}

/// The agent's desk, with audio, Ready in `campaign`.
async fn ready_desk(
    f: &crate::desk::AgentFloor,
    campaign: crm::model::CampaignId,
) -> crate::desk::Ws {
    let mut ws = f.open_desk().await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    f.connect_audio().await;
    say(&mut ws, json!({"type": "ready", "campaign_id": campaign.0})).await;
    assert_eq!(wait_for(&mut ws, "state").await["state"], "ready");
    ws
}

/// The two channels of a stereo recording: what was sent, what was heard.
fn channels(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
    let reader = hound::WavReader::open(path).expect("a WAV");
    let samples: Vec<i16> = reader.into_samples().map(|s| s.expect("sample")).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}
