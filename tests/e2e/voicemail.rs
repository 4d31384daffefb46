//! Voicemail drop through the whole service: a campaign with a message
//! leaves it on answering machines, found by the detector or by an agent
//! who presses "Leave voicemail" and moves on at once; the attempt says a
//! message was left, and the lead rests for the campaign's voicemail delay.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use crm::model::{Account, CampaignId, ContactFields, ContactId, Role, User};
use crm::store::campaign_settings::DialMode;
use serde_json::json;
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;
use sip_gateway::media::tone::{dominant_frequency, sine};

use crate::desk::{next, open_desk, say, wait_for};
use crate::dial::write_wav;
use crate::dialler::{agent_phone, carrier, DAY_ZONE};
use crate::helpers::{spawn_app_tuned, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{
    agent_page_ready, peers_or_skip, until, with_ids, write_tone, ONE_AT_A_TIME,
};

#[tokio::test]
async fn an_agent_leaves_a_voicemail_and_moves_on_on_sqlite() {
    agent_leaves_a_voicemail(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn an_agent_leaves_a_voicemail_and_moves_on_on_postgres() {
    agent_leaves_a_voicemail(crm::testing::TestBackend::Postgres).await;
}

#[tokio::test]
async fn a_screened_machine_gets_the_voicemail_message_on_sqlite() {
    screened_machine_gets_the_message(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_screened_machine_gets_the_voicemail_message_on_postgres() {
    screened_machine_gets_the_message(crm::testing::TestBackend::Postgres).await;
}

/// The service dialling answering machines that greet with eight words,
/// then (with `beep`) a 1000 Hz beep, then record for 12 s; the account
/// `acme` with its supervisor `sue` and agent `al`, and a campaign of one
/// contact whose message is a second of 697 Hz.
struct Machines {
    t: TestApp,
    machines: Carrier,
    _phones: Carrier,
    acme: Account,
    agent: User,
    agent_pw: String,
    campaign: CampaignId,
    contact: ContactId,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A folder removed when dropped.
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn machines(
    backend: crm::testing::TestBackend,
    beep: bool,
    detect_machines: bool,
) -> Option<Machines> {
    let machines = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().expect("addr"),
        mix: Mix::always(Outcome::Machine),
        ring_delay: Duration::from_millis(20),
        machine_answer_delay: Duration::from_millis(100),
        machine_greeting: Duration::from_secs(12),
        machine_audio: Some(CarrierAudio::Greeting {
            words: 8,
            beep_hz: beep.then_some(1000.0),
        }),
        ..CarrierConfig::default()
    })
    .await
    .expect("carrier");
    machines.start_capture();
    let phones = carrier(Mix::always(Outcome::Answer), 1000.0, None).await;
    let mut trunk = TrunkConfig::new("customers", machines.sip_addr());
    trunk.max_cps = 100;
    let trunks = vec![trunk, TrunkConfig::new("phones", phones.sip_addr())];
    let t = spawn_app_tuned(backend, false, trunks, None, |_| {}).await?;
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
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-voicemail-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let message = dir.join("voicemail.wav");
    write_wav(&message, &sine(697.0, 8000, 8000, 8000));

    let s = &t.db.store;
    let now = Utc::now();
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let phone = "+447700900888";
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Mabel".into(),
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
    let path = message.to_string_lossy().into_owned();
    let campaign = t
        .start_campaign_with(&acme, list.id, "Spring", ("sue", &sup_pw), |s| {
            s.mode = DialMode::Progressive;
            s.detect_machines = detect_machines;
            s.voicemail_message_path = Some(path);
        })
        .await;
    Some(Machines {
        t,
        machines,
        _phones: phones,
        acme,
        agent,
        agent_pw,
        campaign: campaign.id,
        contact: contact.id,
        _dir: tempdir::Dir(dir),
    })
}

fn rand_suffix() -> u64 {
    use std::time::SystemTime;
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}

impl Machines {
    /// Waits until the contact's only attempt has ended; returns its
    /// outcome and checks the lead rests two days (the default delay).
    async fn message_left(&self) -> String {
        let s = &self.t.db.store;
        let (account, campaign, contact) = (self.acme.id, self.campaign, self.contact);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let attempt = loop {
            let attempts = s
                .attempts_for_contact(account, contact)
                .await
                .expect("attempts");
            if let Some(a) = attempts.into_iter().find(|a| a.ended_at.is_some()) {
                break a;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the attempt never ended"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let lead = s
            .lead_for_contact(account, campaign, contact)
            .await
            .expect("lead");
        assert_eq!(lead.last_outcome, attempt.outcome);
        let (last, next) = (
            lead.last_attempt_at.expect("attempted"),
            lead.next_attempt_at.expect("retried"),
        );
        let rest = next - last;
        assert!(
            rest >= TimeDelta::days(2) - TimeDelta::seconds(1) && rest < TimeDelta::days(3),
            "the lead rests {rest} after a message"
        );
        // The machine recorded the message: at least four 200 ms stretches.
        let heard = self.machines.take_capture().audio;
        let chunks = heard
            .chunks(1600)
            .filter(|c| dominant_frequency(c, &[697.0, 1000.0], 8000, 1e-4) == Some(697.0))
            .count();
        assert!(chunks >= 4, "the machine recorded {chunks} chunks of it");
        attempt.outcome.unwrap_or_default()
    }

    async fn finish(self) {
        self.t.app.stop().await.expect("stops");
        self.t.db.finish().await;
    }
}

async fn agent_leaves_a_voicemail(backend: crm::testing::TestBackend) {
    // No beep: the greeting ends in 1.5 s of quiet.
    let Some(m) = machines(backend, false, false).await else {
        return;
    };
    let cookie = m.t.session_cookie("al", &m.agent_pw).await;
    let mut ws = open_desk(&m.t, &cookie).await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    say(&mut ws, json!({"type": "leave_voicemail"})).await;
    let refused = wait_for_error(&mut ws).await;
    assert!(refused.contains("no call in progress"), "{refused}");
    let leg = agent_phone(&m.t.app.telephony.gateway).await;
    m.t.app.legs.set(m.agent.id, leg);
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": m.campaign.0}),
    )
    .await;
    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["voicemail"], true, "{card}");
    let call_ref = card["call_ref"].as_str().expect("ref").to_owned();
    say(&mut ws, json!({"type": "leave_voicemail"})).await;
    let left = wait_for(&mut ws, "voicemail_left").await;
    assert_eq!(left["call_ref"], call_ref.as_str());
    let state = wait_for(&mut ws, "state").await;
    assert_eq!(state["state"], "ready", "free at once: {state}");
    assert_eq!(m.message_left().await, "voicemail");
    // No wrap-up was asked of the agent: the next messages are not one.
    say(&mut ws, json!({"type": "hangup"})).await;
    let reply = next(&mut ws).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert!(
        !m.t.db
            .store
            .interactions_for_contact(m.acme.id, m.contact)
            .await
            .expect("q")
            .iter()
            .any(|i| i.disposition.is_some()),
        "no disposition was due"
    );
    m.finish().await;
}

async fn screened_machine_gets_the_message(backend: crm::testing::TestBackend) {
    let Some(m) = machines(backend, true, true).await else {
        return;
    };
    let cookie = m.t.session_cookie("al", &m.agent_pw).await;
    let mut ws = open_desk(&m.t, &cookie).await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    let leg = agent_phone(&m.t.app.telephony.gateway).await;
    m.t.app.legs.set(m.agent.id, leg);
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": m.campaign.0}),
    )
    .await;
    assert_eq!(wait_for(&mut ws, "state").await["state"], "ready");
    assert_eq!(m.message_left().await, "voicemail");
    // The machine never reached the agent.
    let quiet = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let m = next(&mut ws).await;
            if m["type"] == "call" {
                return m;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a machine reached the agent: {quiet:?}");
    m.finish().await;
}

async fn wait_for_error(ws: &mut crate::desk::Ws) -> String {
    loop {
        let m = next(ws).await;
        if m["type"] == "error" {
            return m["message"].as_str().unwrap_or_default().to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_leaves_a_voicemail_in_chromium() {
    let Some(binary) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(m) = machines(crm::testing::TestBackend::Sqlite, true, false).await else {
        return;
    };
    let outcome =
        tokio::time::timeout(Duration::from_secs(90), press_leave_voicemail(&m, &binary)).await;
    outcome
        .expect("the Chromium test took longer than 90 s")
        .unwrap();
    assert_eq!(m.message_left().await, "voicemail");
    m.finish().await;
}

async fn press_leave_voicemail(m: &Machines, binary: &std::path::Path) -> anyhow::Result<()> {
    let dir = &m._dir.0;
    let tone = dir.join("agent.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = async {
        let cdp = &mut cdp;
        let page = agent_page_ready(cdp, &m.t, &m.agent_pw, m.campaign.0).await?;
        until(cdp, &page, "$('state').dataset.state === 'in_call'").await?;
        until(
            cdp,
            &page,
            "!$('voicemail').hidden && !$('voicemail').disabled",
        )
        .await?;
        cdp.evaluate(&page, &with_ids("$('voicemail').click()"))
            .await?;
        until(
            cdp,
            &page,
            "$('state').dataset.state === 'ready' && $('voicemail').hidden \
             && $('wrapup-panel').hidden && $('contact').hidden \
             && $('status').textContent.includes('voicemail message is being left')",
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    chromium.stop(&mut cdp).await;
    outcome
}
