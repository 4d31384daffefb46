//! A running campaign dials the CRM's contacts through the gateway: only
//! those it may call now, writing every attempt to the database.

use std::time::Duration;

use crm::model::{CampaignStatus, ContactFields};
use crm::store::campaign_settings::{CampaignSettings, DialMode};
use dialer::leads::StoreLeads;
use dialer::pacer::{AgentId, AgentState, PacerConfig};
use dialer::runner::{self, AgentUpdate, CallPhase, Plan, Report};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    CallEventKind, CallRef, DialRequest, Gateway, GatewayConfig, TrunkConfig,
};
use tokio::sync::mpsc;

use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(a_campaign_dials_only_who_it_may_and_logs_every_attempt);

/// The test clock stands at 09:00 UTC on Friday 27 November 2026
/// (`helpers::spawn_app`): 09:00 in London, inside calling hours, and
/// 01:00 in Los Angeles, outside them.
pub const DAY_ZONE: &str = "Europe/London";
/// See [`DAY_ZONE`].
pub const NIGHT_ZONE: &str = "America/Los_Angeles";

async fn a_campaign_dials_only_who_it_may_and_logs_every_attempt(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let acme = t.account("acme", 5).await;
    let (day, night) = (DAY_ZONE, NIGHT_ZONE);
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let mut callable = Vec::new();
    let mut not_callable = Vec::new();
    for (i, zone, suppressed) in [
        (1, day, false),
        (2, day, false),
        (3, day, false),
        (4, night, false),
        (5, day, true),
    ] {
        let phone = format!("+44770090060{i}");
        let c = s
            .create_contact(
                acme.id,
                &ContactFields {
                    first_name: format!("Contact{i}"),
                    phone_e164: phone.clone(),
                    phone_raw: phone.clone(),
                    time_zone: Some(zone.into()),
                    custom_fields: serde_json::json!({}),
                    ..ContactFields::default()
                },
                now,
            )
            .await
            .expect("contact");
        s.add_to_list(acme.id, list.id, c.id, now)
            .await
            .expect("member");
        if suppressed {
            s.suppress(acme.id, &phone, "do-not-call", "test", now)
                .await
                .expect("suppress");
        }
        if zone == day && !suppressed {
            callable.push(c.id);
        } else {
            not_callable.push(c.id);
        }
    }
    let campaign = s
        .create_campaign(acme.id, "C", "+441632960000", now)
        .await
        .expect("campaign");
    s.attach_list(acme.id, campaign.id, list.id, 0)
        .await
        .expect("attach");
    let mut settings = CampaignSettings::defaults("+441632960000");
    settings.mode = DialMode::Progressive;
    settings.trunk = "customers".into();
    s.update_campaign_settings(acme.id, campaign.id, &settings, now)
        .await
        .expect("settings");
    s.set_campaign_status(acme.id, campaign.id, CampaignStatus::Running, now)
        .await
        .expect("start");
    s.sync_leads(acme.id, campaign.id, now)
        .await
        .expect("leads");

    let customers = carrier(Mix::always(Outcome::Answer), 440.0, Some(1)).await;
    let phones = carrier(Mix::always(Outcome::Answer), 1000.0, None).await;
    let mut trunk = TrunkConfig::new("customers", customers.sip_addr());
    trunk.max_cps = 100;
    let gateway = Gateway::start(
        GatewayConfig {
            t1: Duration::from_millis(100),
            ..GatewayConfig::loopback()
        },
        vec![trunk, TrunkConfig::new("phones", phones.sip_addr())],
    )
    .await
    .expect("gateway");
    let leg = agent_phone(&gateway).await;

    let leads = StoreLeads::new(
        s.clone(),
        acme.id,
        campaign.id,
        "node-a".into(),
        t.clock.clone(),
        settings.retry_policy(),
    );
    let plan = Plan {
        pacer: PacerConfig {
            mode: settings.mode.pacer_mode(),
            target: settings.abandon_target(),
            ..PacerConfig::default()
        },
        caller_id: settings.caller_id.clone(),
        trunk: settings.trunk.clone(),
        ring_timeout: Duration::from_secs(20),
        abandon_message: None,
        voicemail_message: None,
        recordings: None,
        detect_machines: settings.detect_machines,
    };
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = runner::spawn(plan, leads, gateway.clone(), t.clock.clone(), tx);
    let agent = AgentId(1);
    let ready = AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    };
    handle.agent(ready.clone());
    let mut ended = 0;
    let mut quiet = 0;
    while quiet < 2 {
        let report = tokio::time::timeout(Duration::from_secs(20), reports.recv())
            .await
            .expect("a report")
            .expect("runner alive");
        match report {
            Report::Call {
                phase: CallPhase::Ended,
                ..
            } => {
                ended += 1;
                handle.agent(ready.clone());
            }
            // Two idle seconds after the last call: nothing else may be dialled.
            Report::Figures {
                lines: 0, dialled, ..
            } if ended == 3 && dialled == 3 => quiet += 1,
            Report::Figures { dialled, .. } => {
                assert!(dialled <= 3, "dialled someone it may not: {dialled}");
            }
            _ => {}
        }
    }
    handle.stop().await;
    assert_eq!(customers.stats().calls, 3, "the carrier saw three calls");

    for id in &callable {
        let attempts = s.attempts_for_contact(acme.id, *id).await.expect("q");
        assert_eq!(attempts.len(), 1, "one attempt for each callable contact");
        assert_eq!(attempts[0].outcome.as_deref(), Some("answered"));
        assert!(attempts[0].answered_at.is_some() && attempts[0].ended_at.is_some());
        assert_eq!(attempts[0].campaign_id, Some(campaign.id));
    }
    for id in &not_callable {
        let attempts = s.attempts_for_contact(acme.id, *id).await.expect("q");
        assert!(
            attempts.is_empty(),
            "never dialled outside hours or when suppressed"
        );
    }
    t
}

pub async fn carrier(mix: Mix, tone: f64, hangup_after_secs: Option<u64>) -> Carrier {
    Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().expect("addr"),
        mix,
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(100),
        hangup_after: hangup_after_secs.map(Duration::from_secs),
        audio: CarrierAudio::Tone(tone),
        ..CarrierConfig::default()
    })
    .await
    .expect("carrier")
}

/// Calls the phone standing in for the agent's nailed-up media leg.
pub async fn agent_phone(gateway: &Gateway) -> CallRef {
    let mut events = gateway.events();
    let call = gateway
        .dial(DialRequest {
            number: "+441632960999".into(),
            caller_id: "+441632960000".into(),
            trunk: "phones".into(),
            ring_timeout: Duration::from_secs(15),
            call_ref: CallRef::random(),
            detect_machine: false,
        })
        .await
        .expect("placed");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.recv().await.expect("events");
            if e.call_ref == call && e.kind == CallEventKind::Answered {
                return;
            }
        }
    })
    .await
    .expect("answered");
    call
}
