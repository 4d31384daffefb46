//! Managing inbound queues as an operator would: from the command line
//! (`dialcrm queue create/assign/set/list`) and over the API (create,
//! change, agents, the queues report as JSON and CSV), with the audit log
//! following, on both backends.

use chrono::Utc;
use crm::model::Role;
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, TestApp};

on_both_backends!(
    an_operator_sets_up_a_queue_from_the_command_line,
    a_supervisor_manages_queues_and_reads_their_report_over_the_api,
);

async fn campaign_with_agent(t: &TestApp) -> (crm::model::Account, crm::model::CampaignId) {
    let acme = t.account("acme", 5).await;
    t.user(&acme, "al", Role::Agent).await;
    let s = &t.db.store;
    let campaign = s
        .create_campaign(acme.id, "Spring", "+441632960000", Utc::now())
        .await
        .expect("campaign");
    let al = s.credentials("al").await.expect("q").expect("al").0;
    s.assign_agents(acme.id, campaign.id, &[al.id])
        .await
        .expect("assigned");
    (acme, campaign.id)
}

async fn an_operator_sets_up_a_queue_from_the_command_line(t: TestApp) -> TestApp {
    let (acme, campaign) = campaign_with_agent(&t).await;
    let run = |args: Vec<&str>| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialcrm"));
        c.env_remove("DIALCRM_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args(&args)
            .args(["--database-url", &t.db.url]);
        async move { c.output().await.expect("runs") }
    };
    let out = run(vec![
        "queue",
        "create",
        "--account",
        "acme",
        "--name",
        "Sales",
        "--campaign",
        "Spring",
        "--did",
        "+441632960001",
        "--hours",
        "mon-fri 09:00-17:30",
        "--max-wait",
        "90",
        "--overflow",
        "callback",
        "--service-level",
        "90/15",
    ])
    .await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("+441632960001"), "{said}");
    let s = &t.db.store;
    let queue = s.queue_named(acme.id, "Sales").await.expect("created");
    assert_eq!(queue.settings.campaign_id, campaign);
    assert_eq!(queue.settings.max_wait_secs, 90);
    assert_eq!(
        (
            queue.settings.service_level_pct,
            queue.settings.service_level_secs
        ),
        (90, 15)
    );
    assert!(queue.settings.opening_hours.sat.is_none());

    let out = run(vec![
        "queue",
        "assign",
        "--account",
        "acme",
        "--name",
        "Sales",
        "--agent",
        "al",
        "--skill",
        "7",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members = s.queue_members(acme.id, queue.id).await.expect("members");
    assert_eq!((members[0].username.as_str(), members[0].skill), ("al", 7));

    let out = run(vec![
        "queue",
        "assign",
        "--account",
        "acme",
        "--name",
        "Sales",
        "--agent",
        "al",
        "--skill",
        "11",
    ])
    .await;
    assert!(!out.status.success(), "a skill is 1 to 10");

    let out = run(vec![
        "queue",
        "set",
        "--account",
        "acme",
        "--name",
        "Sales",
        "--add-did",
        "+441632960002",
        "--remove-did",
        "+441632960001",
        "--record",
        "true",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queue = s.queue(acme.id, queue.id).await.expect("queue");
    assert_eq!(queue.numbers, vec!["+441632960002".to_owned()]);
    assert!(queue.settings.record_calls);

    let out = run(vec![
        "queue",
        "set",
        "--account",
        "acme",
        "--name",
        "Sales",
        "--hours",
        "mon 9-5",
    ])
    .await;
    assert!(!out.status.success(), "bad hours are refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("time of day"));

    let out = run(vec!["queue", "list", "--account", "acme"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("Sales"));
    let audit = s.audit_entries(acme.id, 100).await.expect("audit");
    for action in ["queue.create", "queue.assign_agents", "queue.update"] {
        assert!(audit.iter().any(|e| e.action == action), "{action} audited");
    }
    t
}

async fn a_supervisor_manages_queues_and_reads_their_report_over_the_api(t: TestApp) -> TestApp {
    let (acme, campaign) = campaign_with_agent(&t).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let sue = t.login("sue", &pw).await;
    let al =
        t.db.store
            .credentials("al")
            .await
            .expect("q")
            .expect("al")
            .0;

    let created = sue
        .post(t.url("/api/queues"))
        .json(&json!({"name": "Sales", "campaign_id": campaign.0,
                      "numbers": ["+441632960001"], "max_wait_secs": 60}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let queue: Value = created.json().await.expect("json");
    let id = queue["id"].as_i64().expect("id");
    assert_eq!(queue["numbers"], json!(["+441632960001"]));
    assert_eq!(queue["overflow"], "voicemail");
    assert_eq!(queue["max_wait_secs"], 60);

    let clash = sue
        .post(t.url("/api/queues"))
        .json(&json!({"name": "Support", "campaign_id": campaign.0, "numbers": ["+441632960001"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(clash.status(), 409, "a number routes to one queue");
    let unknown = sue
        .post(t.url("/api/queues"))
        .json(&json!({"name": "X", "campaign_id": campaign.0, "colour": "red"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 400, "unknown fields are refused");

    let changed: Value = sue
        .patch(t.url(&format!("/api/queues/{id}")))
        .json(&json!({"overflow": "callback", "numbers": ["+441632960002"]}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(changed["overflow"], "callback");
    assert_eq!(changed["max_wait_secs"], 60, "what is not given stays");
    assert_eq!(changed["numbers"], json!(["+441632960002"]));

    let agents = sue
        .put(t.url(&format!("/api/queues/{id}/agents")))
        .json(&json!({"agents": [{"user_id": al.id.0, "skill": 9}]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(agents.status(), 200);
    let agents: Value = agents.json().await.expect("json");
    assert_eq!(agents["agents"][0]["username"], "al");
    assert_eq!(agents["agents"][0]["skill"], 9);
    let sue_id =
        t.db.store
            .credentials("sue")
            .await
            .expect("q")
            .expect("sue")
            .0
            .id;
    let refused = sue
        .put(t.url(&format!("/api/queues/{id}/agents")))
        .json(&json!({"agents": [{"user_id": sue_id.0, "skill": 5}]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        refused.status(),
        400,
        "not assigned to the queue's campaign"
    );

    let report: Value = sue
        .get(t.url("/api/reports/queues"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(report["queues"][0]["name"], "Sales");
    assert_eq!(report["queues"][0]["offered"], 0);
    let csv = sue
        .get(t.url("/api/reports/queues?format=csv"))
        .send()
        .await
        .expect("sent");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("text");
    assert!(
        text.starts_with("queue_id,queue,offered,answered,abandoned"),
        "{text}"
    );
    assert!(text.contains(",Sales,0,0,0"), "{text}");

    let deleted = sue
        .delete(t.url(&format!("/api/queues/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), 204);
    assert_eq!(t.get_status(&sue, &format!("/api/queues/{id}")).await, 404);
    t
}
