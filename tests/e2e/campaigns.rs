//! Creating, configuring, starting and pausing campaigns over HTTP.

use crm::model::{CampaignId, ContactFields, Role};
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(
    supervisors_create_configure_and_start_a_campaign,
    unlawful_settings_get_400_and_change_nothing,
    agents_and_other_accounts_cannot_touch_campaigns,
    a_campaign_s_history_estimates_predictive_before_it_is_switched_on,
);

async fn supervisors_create_configure_and_start_a_campaign(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let sup = t.login("sue", &pw).await;
    let r = sup
        .post(t.url("/api/campaigns"))
        .json(&json!({"name": "Renewals", "caller_id": "+442079460000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let settings_url = t.url(&format!("/api/campaigns/{id}/settings"));
    let mut settings: Value = sup
        .get(&settings_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["ring_timeout_secs"], 20);
    assert_eq!(settings["abandon_target_bp"], 300);
    assert_eq!(settings["mode"], "progressive");
    settings["mode"] = json!("predictive");
    settings["calling_hours"]["sun"] = Value::Null;
    settings["ring_timeout_secs"] = json!(25);
    let r = sup.put(&settings_url).json(&settings).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let saved: Value = sup
        .get(&settings_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(saved, settings);

    // Starting needs a list; then every contact on it becomes a lead.
    let start = t.url(&format!("/api/campaigns/{id}/start"));
    assert_eq!(sup.post(&start).send().await.unwrap().status(), 409);
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let list = s.create_list(acme.id, "Main", "GB", now).await.unwrap();
    for phone in ["+447700900001", "+447700900002"] {
        let fields = ContactFields {
            phone_e164: phone.into(),
            phone_raw: phone.into(),
            custom_fields: json!({}),
            ..ContactFields::default()
        };
        let c = s.create_contact(acme.id, &fields, now).await.unwrap();
        s.add_to_list(acme.id, list.id, c.id, now).await.unwrap();
    }
    let r = sup
        .post(t.url(&format!("/api/campaigns/{id}/lists")))
        .json(&json!({"list_id": list.id, "priority": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = sup.post(&start).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    assert_eq!(started, json!({"status": "running", "new_leads": 2}));
    let campaign = s.campaign(acme.id, CampaignId(id)).await.unwrap();
    assert_eq!(campaign.status.as_str(), "running");
    let r = sup
        .post(t.url(&format!("/api/campaigns/{id}/pause")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "paused");
    let actions: Vec<String> = s
        .audit_entries(acme.id, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.target.as_deref() == Some(&format!("campaign:{id}")))
        .map(|e| e.action)
        .collect();
    for action in [
        "campaign.create",
        "campaign.settings",
        "campaign.start",
        "campaign.pause",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    t
}

async fn unlawful_settings_get_400_and_change_nothing(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &pw).await;
    let r = admin
        .post(t.url("/api/campaigns"))
        .json(&json!({"name": "No caller", "caller_id": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a campaign needs a caller ID");
    let c =
        t.db.store
            .create_campaign(acme.id, "Lawful", "+442079460000", t.clock.now_utc())
            .await
            .unwrap();
    let url = t.url(&format!("/api/campaigns/{}/settings", c.id));
    let before: Value = admin.get(&url).send().await.unwrap().json().await.unwrap();
    for (field, value) in [
        ("ring_timeout_secs", json!(10)),
        ("abandon_target_bp", json!(500)),
        ("caller_id", json!("anonymous")),
        ("default_time_zone", json!("Nowhere/Special")),
        ("mode", json!("telepathic")),
    ] {
        let mut body = before.clone();
        body[field] = value;
        let r = admin.put(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16() / 100, 4, "{field}");
        let error: Value = r.json().await.unwrap();
        assert!(error["error"].is_string(), "{field}: {error}");
    }
    let after: Value = admin.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(after, before);
    t
}

async fn agents_and_other_accounts_cannot_touch_campaigns(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let rival_pw = t.user(&other, "rita", Role::Supervisor).await;
    let c =
        t.db.store
            .create_campaign(acme.id, "Private", "+442079460000", t.clock.now_utc())
            .await
            .unwrap();
    let agent = t.login("al", &agent_pw).await;
    let rival = t.login("rita", &rival_pw).await;
    let settings = format!("/api/campaigns/{}/settings", c.id);
    assert_eq!(t.get_status(&agent, &settings).await, 403);
    assert_eq!(t.get_status(&rival, &settings).await, 404);
    for path in ["start", "pause"] {
        let url = t.url(&format!("/api/campaigns/{}/{path}", c.id));
        assert_eq!(agent.post(&url).send().await.unwrap().status(), 403);
        assert_eq!(rival.post(&url).send().await.unwrap().status(), 404);
    }
    let r = agent
        .post(t.url("/api/campaigns"))
        .json(&json!({"name": "Sneaky", "caller_id": "+442079460000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    t
}

async fn a_campaign_s_history_estimates_predictive_before_it_is_switched_on(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let rival_pw = t.user(&other, "rita", Role::Supervisor).await;
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let spring = s
        .create_campaign(acme.id, "Spring", "+442079460000", now)
        .await
        .unwrap();
    let quiet = s
        .create_campaign(acme.id, "Quiet", "+442079460000", now)
        .await
        .unwrap();
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Ada".into(),
                phone_e164: "+447400900701".into(),
                phone_raw: "+447400900701".into(),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .unwrap();
    crate::cli::seed_history(s, acme.id, spring.id, contact.id, now).await;
    let sup = t.login("sue", &pw).await;
    let url = |c: CampaignId, q: &str| t.url(&format!("/api/campaigns/{c}/estimate{q}"));
    let r = sup
        .get(url(spring.id, "?agents=5&hours=1&seed=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["history"]["calls"], 100);
    assert_eq!(got["history"]["answer_rate"], 0.35);
    assert_eq!(got["history"]["machine_rate"], 0.1);
    assert_eq!(got["history"]["busy_rate"], 0.2);
    assert_eq!(got["history"]["talk_mean_secs"], 60.0);
    let expected = |mode| {
        dialer_core::simulation::simulate(&dialer_core::simulation::SimConfig {
            mode,
            agents: 5,
            answer_rate: 0.35,
            machine_rate: 0.1,
            busy_rate: 0.2,
            talk_mean: std::time::Duration::from_secs(60),
            wrap: std::time::Duration::from_secs(10),
            ring_timeout: std::time::Duration::from_secs(20),
            duration: std::time::Duration::from_secs(3600),
            seed: 3,
        })
    };
    let predictive = expected(dialer_core::pacer::Mode::Predictive);
    let progressive = expected(dialer_core::pacer::Mode::Progressive);
    assert_eq!(got["predictive"]["dials"], predictive.dials, "{got}");
    assert_eq!(got["predictive"]["utilisation"], predictive.utilisation);
    assert_eq!(got["progressive"]["dials"], progressive.dials, "{got}");
    // Without history enough, or with a bad floor, it says so.
    let r = sup.get(url(quiet.id, "")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("at least 50 calls"));
    for bad in ["?agents=0", "?hours=30", "?wrap=-1", "?agents=many"] {
        let r = sup.get(url(spring.id, bad)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    // Agents may not ask; another account does not see the campaign.
    let agent = t.login("al", &agent_pw).await;
    let rival = t.login("rita", &rival_pw).await;
    let path = format!("/api/campaigns/{}/estimate", spring.id);
    assert_eq!(t.get_status(&agent, &path).await, 403);
    assert_eq!(t.get_status(&rival, &path).await, 404);
    t
}
