//! Agents assigned to campaigns: supervisors set them over HTTP and from
//! the command line, and an agent reads only the campaigns and contacts of
//! their own assignments.

use chrono::Utc;
use crm::model::{Account, CampaignId, ContactFields, ContactId, NewInteraction, Role, UserId};

use sip_gateway::gateway::CallRef;

use crate::helpers::{on_both_backends, TestApp};

on_both_backends!(
    supervisors_set_a_campaigns_agents,
    an_agent_reads_only_contacts_of_assigned_campaigns,
    the_command_line_assigns_agents_by_name,
);

/// A campaign with one list holding one contact, its lead made.
async fn campaign_with_contact(
    t: &TestApp,
    account: &Account,
    name: &str,
    number: &str,
) -> (CampaignId, ContactId) {
    let s = &t.db.store;
    let now = Utc::now();
    let contact = s
        .create_contact(
            account.id,
            &ContactFields {
                first_name: name.into(),
                phone_e164: number.into(),
                phone_raw: number.into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let list = s
        .create_list(account.id, name, "GB", now)
        .await
        .expect("list");
    s.add_to_list(account.id, list.id, contact.id, now)
        .await
        .expect("member");
    let campaign = s
        .create_campaign(account.id, name, "+441632960000", now)
        .await
        .expect("campaign");
    s.attach_list(account.id, campaign.id, list.id, 0)
        .await
        .expect("attach");
    s.sync_leads(account.id, campaign.id, now)
        .await
        .expect("leads");
    (campaign.id, contact.id)
}

async fn user_id(t: &TestApp, username: &str) -> UserId {
    t.db.store
        .credentials(username)
        .await
        .expect("query")
        .expect("user")
        .0
        .id
}

async fn supervisors_set_a_campaigns_agents(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let al_pw = t.user(&acme, "al", Role::Agent).await;
    t.user(&acme, "bo", Role::Agent).await;
    t.user(&other, "olga", Role::Agent).await;
    let (al, bo, sue, olga) = (
        user_id(&t, "al").await,
        user_id(&t, "bo").await,
        user_id(&t, "sue").await,
        user_id(&t, "olga").await,
    );
    let (campaign, _) = campaign_with_contact(&t, &acme, "Spring", "+447700900201").await;
    let sup = t.login("sue", &sup_pw).await;
    let url = t.url(&format!("/api/campaigns/{campaign}/agents"));
    let put = |ids: Vec<UserId>| {
        sup.put(url.clone())
            .json(&serde_json::json!({ "user_ids": ids }))
            .send()
    };

    let got: serde_json::Value = sup
        .get(url.clone())
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(got["user_ids"], serde_json::json!([]), "nobody at first");

    let r = put(vec![bo, al]).await.expect("sent");
    assert_eq!(r.status(), 200);
    let mut both = vec![al.0, bo.0];
    both.sort();
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["user_ids"], serde_json::json!(both));

    for refused in [sue, olga] {
        let r = put(vec![al, refused]).await.expect("sent");
        assert_eq!(r.status(), 400, "user {refused} is refused");
        let body: serde_json::Value = r.json().await.expect("json");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|m| m.contains("agent") || m.contains("not a user of this account")),
            "{body}"
        );
    }
    let got: serde_json::Value = sup
        .get(url.clone())
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        got["user_ids"],
        serde_json::json!(both),
        "refusals change nothing"
    );

    let agent = t.login("al", &al_pw).await;
    let r = agent
        .put(url.clone())
        .json(&serde_json::json!({ "user_ids": [al] }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);
    assert_eq!(
        t.get_status(&agent, &format!("/api/campaigns/{campaign}/agents"))
            .await,
        403
    );

    let audit = t.db.store.audit_entries(acme.id, 50).await.expect("audit");
    let assigned: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "campaign.assign_agents")
        .collect();
    assert_eq!(assigned.len(), 1, "one entry for the one change made");
    assert_eq!(
        assigned[0].target.as_deref(),
        Some(format!("campaign:{campaign}").as_str())
    );
    assert_eq!(assigned[0].user_id, Some(sue));
    t
}

async fn an_agent_reads_only_contacts_of_assigned_campaigns(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let al_pw = t.user(&acme, "al", Role::Agent).await;
    let al = user_id(&t, "al").await;
    let (spring, ada) = campaign_with_contact(&t, &acme, "Spring", "+447700900301").await;
    let (autumn, bram) = campaign_with_contact(&t, &acme, "Autumn", "+447700900302").await;
    // Ada is worked by Autumn too, where a call and its notes were made.
    let autumn_list = s.campaign(acme.id, autumn).await.expect("c").list_ids[0];
    s.add_to_list(acme.id, autumn_list, ada, now)
        .await
        .expect("member");
    s.sync_leads(acme.id, autumn, now).await.expect("leads");
    for (campaign, call_ref, notes) in [(spring, 0x5, "spring"), (autumn, 0xa, "autumn")] {
        let attempt = s
            .create_attempt(
                acme.id,
                CallRef::from_u128(call_ref),
                Some(campaign),
                Some(ada),
                now,
            )
            .await
            .expect("attempt");
        s.record_interaction(
            acme.id,
            &NewInteraction {
                contact_id: ada,
                user_id: None,
                attempt_id: Some(attempt.id),
                kind: "call".into(),
                disposition: Some("sale".into()),
                notes: Some(notes.into()),
            },
            now,
        )
        .await
        .expect("interaction");
    }
    s.assign_agents(acme.id, spring, &[al])
        .await
        .expect("assign");

    let agent = t.login("al", &al_pw).await;
    let sup = t.login("sue", &sup_pw).await;
    assert_eq!(
        t.get_status(&agent, &format!("/api/contacts/{ada}")).await,
        200
    );
    assert_eq!(
        t.get_status(&agent, &format!("/api/contacts/{bram}")).await,
        404,
        "a contact of a campaign the agent is not assigned to"
    );
    assert_eq!(
        t.get_status(&sup, &format!("/api/contacts/{bram}")).await,
        200
    );

    // The agent sees Ada's history in Spring only; the supervisor sees all.
    let card = |c: &reqwest::Client| {
        let url = t.url(&format!("/api/contacts/{ada}"));
        let c = c.clone();
        async move {
            let v: serde_json::Value = c
                .get(url)
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            v
        }
    };
    let mine = card(&agent).await;
    let notes = |v: &serde_json::Value| -> Vec<String> {
        v["interactions"]
            .as_array()
            .expect("interactions")
            .iter()
            .filter_map(|i| i["notes"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(notes(&mine), ["spring"]);
    assert_eq!(mine["attempts"].as_array().expect("attempts").len(), 1);
    let all = card(&sup).await;
    assert_eq!(notes(&all), ["spring", "autumn"]);

    // Campaigns: only the assigned one is listed or readable.
    let listed: Vec<serde_json::Value> = agent
        .get(t.url("/api/campaigns"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let ids: Vec<i64> = listed.iter().filter_map(|c| c["id"].as_i64()).collect();
    assert_eq!(ids, [spring.0]);
    assert_eq!(
        t.get_status(&agent, &format!("/api/campaigns/{autumn}"))
            .await,
        404
    );
    assert_eq!(
        t.get_status(&agent, &format!("/api/campaigns/{spring}"))
            .await,
        200
    );

    // Moved to Autumn: Bram appears, and Ada stays (a lead there too).
    let r = sup
        .put(t.url(&format!("/api/campaigns/{autumn}/agents")))
        .json(&serde_json::json!({ "user_ids": [al] }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let r = sup
        .put(t.url(&format!("/api/campaigns/{spring}/agents")))
        .json(&serde_json::json!({ "user_ids": [] }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(
        t.get_status(&agent, &format!("/api/contacts/{bram}")).await,
        200
    );
    assert_eq!(notes(&card(&agent).await), ["autumn"]);
    assert_eq!(
        t.get_status(&agent, &format!("/api/campaigns/{spring}"))
            .await,
        404
    );
    t
}

async fn the_command_line_assigns_agents_by_name(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    t.user(&acme, "al", Role::Agent).await;
    t.user(&acme, "bo", Role::Agent).await;
    t.user(&acme, "sue", Role::Supervisor).await;
    let (campaign, _) = campaign_with_contact(&t, &acme, "Spring", "+447700900401").await;
    // The SQLite and PostgreSQL runs share this process and may both get
    // campaign 1, so the folder is named by a counter, not the campaign:
    // one run removing its folder must not pull the other's from under it.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dialcrm-assign-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cli = |agents: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialcrm"));
        c.current_dir(&dir)
            .env_remove("DIALCRM_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args([
                "campaign",
                "assign",
                "--account",
                "acme",
                "--name",
                "Spring",
            ]);
        for a in agents {
            c.args(["--agent", a]);
        }
        c.args(["--database-url", &t.db.url]);
        async move { c.output().await.expect("runs") }
    };

    let out = cli(&["al", "bo"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("al, bo"));
    let (al, bo) = (user_id(&t, "al").await, user_id(&t, "bo").await);
    let mut both = vec![al, bo];
    both.sort();
    let s = &t.db.store;
    assert_eq!(s.campaign_agents(acme.id, campaign).await.expect("q"), both);

    let out = cli(&["al", "sue"]).await;
    assert!(!out.status.success(), "a supervisor is not assigned");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only agents"));
    let out = cli(&["nobody"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named"));
    assert_eq!(s.campaign_agents(acme.id, campaign).await.expect("q"), both);

    let out = cli(&[]).await;
    assert!(out.status.success());
    assert!(s
        .campaign_agents(acme.id, campaign)
        .await
        .expect("q")
        .is_empty());
    let audit = s.audit_entries(acme.id, 20).await.expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "campaign.assign_agents")
            .count(),
        2,
        "each change made is audited"
    );
    let _ = std::fs::remove_dir_all(&dir);
    t
}
