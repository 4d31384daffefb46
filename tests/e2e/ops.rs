//! Health, metrics, the demo seeding, and a cross-origin POST.

use crm::model::Role;

use crate::helpers::{client, on_both_backends, spawn_app, TestApp};

on_both_backends!(
    healthz_reports_the_database,
    metrics_are_prometheus_text,
    cross_origin_posts_are_refused,
);

async fn healthz_reports_the_database(t: TestApp) -> TestApp {
    let c = client();
    assert_eq!(t.get_status(&c, "/healthz").await, 200);
    t.app.store.close().await;
    assert_eq!(t.get_status(&c, "/healthz").await, 503);
    t
}

async fn metrics_are_prometheus_text(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    t.login("sue", &pw).await;
    let r = client().get(t.url("/metrics")).send().await.expect("sent");
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/openmetrics-text")));
    let text = r.text().await.expect("text");
    assert!(text.contains("# TYPE dialcrm_http_responses counter"));
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The API's description is served to anyone, and lists the routes.
    let doc: serde_json::Value = client()
        .get(t.url("/api/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/campaigns/{id}/settings"]["put"]["summary"].is_string());
    assert!(text.contains("dialcrm_logins_total{outcome=\"ok\"} 1"));
    assert!(text.contains("dialcrm_database_up 1"));
    assert!(text.contains("dialcrm_sessions 1"));
    t
}

async fn cross_origin_posts_are_refused(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let c = client();
    let r = c
        .post(t.url("/api/login"))
        .header("origin", "http://evil.example")
        .json(&serde_json::json!({"username": "sue", "password": pw}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);
    let same = c
        .post(t.url("/api/login"))
        .header("origin", t.base.clone())
        .json(&serde_json::json!({"username": "sue", "password": pw}))
        .send()
        .await
        .expect("sent");
    assert_eq!(same.status(), 200);
    t
}

#[tokio::test]
async fn the_demo_is_seeded_once_on_sqlite() {
    demo_seeded_once(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn the_demo_is_seeded_once_on_postgres() {
    demo_seeded_once(crm::testing::TestBackend::Postgres).await;
}

async fn demo_seeded_once(backend: crm::testing::TestBackend) {
    let Some(t) = spawn_app(backend, true).await else {
        return;
    };
    let demo = t.app.demo.clone().expect("an empty database gets the demo");
    assert_eq!(demo.contacts, 50);
    let roles: Vec<Role> = demo.logins.iter().map(|l| l.role).collect();
    assert_eq!(
        roles,
        [Role::Admin, Role::Supervisor, Role::Agent, Role::Agent]
    );
    for login in &demo.logins {
        t.login(&login.username, &login.password).await;
    }
    let sup = &demo.logins[1];
    let c = t.login(&sup.username, &sup.password).await;
    let lists: Vec<serde_json::Value> = c
        .get(t.url("/api/lists"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0]["size"], 50);
    let campaigns: Vec<serde_json::Value> = c
        .get(t.url("/api/campaigns"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(campaigns.len(), 1);
    // The demo campaign is ready to start at any hour over the simulated carrier.
    let started: serde_json::Value = c
        .post(t.url(&format!("/api/campaigns/{}/start", campaigns[0]["id"])))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(started["status"], "running");
    assert_eq!(started["new_leads"], 50);
    let campaign = crm::model::CampaignId(campaigns[0]["id"].as_i64().expect("id"));
    assert!(t.app.floor.is_running(campaign).await, "the floor dials it");
    assert!(
        t.app.telephony.carrier.is_some(),
        "over the simulated carrier"
    );
    // A second start over the same database seeds nothing.
    let settings = dialcrm::Settings {
        database_url: dialcrm::settings::Secret::new(t.db.url.clone()),
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        demo: true,
        recordings_dir: std::env::temp_dir().join(format!("dialcrm-ops-{}", std::process::id())),
        ..dialcrm::Settings::default()
    };
    let again = dialcrm::App::start(&settings).await.expect("starts again");
    assert!(again.demo.is_none());
    again.stop().await.expect("stops");
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
