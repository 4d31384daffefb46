//! Aggregate-only accounts over HTTP: an admin turns the mode on, and then
//! viewing or exporting a contact leaves only a daily count, not who did it
//! to whom; with the mode off the audit log names both.

use chrono::Utc;
use crm::model::{Account, AuditEntry, ContactFields, ContactId, NewInteraction, Role, UserId};
use crm::store::audit_search::AuditFilter;
use serde_json::Value;
use sip_gateway::gateway::CallRef;

use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(
    aggregate_only_keeps_counts_of_contact_views_and_no_names,
    without_aggregate_only_views_are_audited_in_full,
);

struct Floor {
    contact: ContactId,
    agent: UserId,
    agent_pw: String,
    admin_pw: String,
}

/// An account with an admin, an agent assigned to a campaign, and one
/// contact that is a lead of it with a call and its interaction on record.
async fn floor(t: &TestApp, account: &Account) -> Floor {
    let s = &t.db.store;
    let now = Utc::now();
    let admin_pw = t.user(account, "ada", Role::Admin).await;
    let agent_pw = t.user(account, "al", Role::Agent).await;
    let agent = s.credentials("al").await.expect("q").expect("al").0.id;
    let contact = s
        .create_contact(
            account.id,
            &ContactFields {
                first_name: "Quill".into(),
                phone_e164: "+447700900888".into(),
                phone_raw: "07700 900888".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact")
        .id;
    let list = s
        .create_list(account.id, "Spring", "GB", now)
        .await
        .expect("list");
    s.add_to_list(account.id, list.id, contact, now)
        .await
        .expect("member");
    let campaign = s
        .create_campaign(account.id, "Spring", "+441632960000", now)
        .await
        .expect("campaign");
    s.attach_list(account.id, campaign.id, list.id, 0)
        .await
        .expect("attach");
    s.sync_leads(account.id, campaign.id, now)
        .await
        .expect("leads");
    s.assign_agents(account.id, campaign.id, &[agent])
        .await
        .expect("assign");
    let attempt = s
        .create_attempt(
            account.id,
            CallRef::from_u128(0xa66),
            Some(campaign.id),
            Some(contact),
            now,
        )
        .await
        .expect("attempt");
    s.record_interaction(
        account.id,
        &NewInteraction {
            contact_id: contact,
            user_id: Some(agent),
            attempt_id: Some(attempt.id),
            kind: "call".into(),
            disposition: Some("sale".into()),
            notes: None,
        },
        now,
    )
    .await
    .expect("interaction");
    Floor {
        contact,
        agent,
        agent_pw,
        admin_pw,
    }
}

async fn audit(t: &TestApp, account: &Account) -> Vec<AuditEntry> {
    t.db.store
        .search_audit(account.id, &AuditFilter::default())
        .await
        .expect("audit")
}

async fn counts(t: &TestApp, admin: &reqwest::Client, path: &str) -> Vec<Value> {
    let r = admin.get(t.url(path)).send().await.expect("sent");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

async fn aggregate_only_keeps_counts_of_contact_views_and_no_names(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let f = floor(&t, &acme).await;
    let admin = t.login("ada", &f.admin_pw).await;
    let agent = t.login("al", &f.agent_pw).await;

    let privacy = t.url("/api/account/privacy");
    let got: Value = admin
        .get(&privacy)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(got["aggregate_only"], false, "off by default");
    let r = agent
        .put(&privacy)
        .json(&serde_json::json!({ "aggregate_only": true }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403, "only admins change it");
    let r = admin
        .put(&privacy)
        .json(&serde_json::json!({ "aggregate_only": true }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert!(t.db.store.aggregate_only(acme.id).await.expect("read"));
    let before = audit(&t, &acme).await;
    assert!(
        before
            .iter()
            .any(|e| e.action == "account.aggregate_only" && e.target.as_deref() == Some("on")),
        "turning it on is audited"
    );

    let card = format!("/api/contacts/{}", f.contact);
    assert_eq!(t.get_status(&agent, &card).await, 200);
    assert_eq!(t.get_status(&agent, &card).await, 200);
    assert_eq!(t.get_status(&admin, &card).await, 200);
    let export = format!("/api/contacts/{}/export.zip", f.contact);
    assert_eq!(t.get_status(&admin, &export).await, 200);

    let after = audit(&t, &acme).await;
    assert_eq!(
        after, before,
        "the views and the export left no audit entry"
    );
    let named = format!("contact:{}", f.contact);
    assert!(!after
        .iter()
        .any(|e| e.target.as_deref() == Some(named.as_str())));
    // The call record itself is untouched: the attempt and the interaction.
    let s = &t.db.store;
    assert_eq!(
        s.attempts_for_contact(acme.id, f.contact)
            .await
            .expect("q")
            .len(),
        1
    );
    let interactions = s
        .interactions_for_contact(acme.id, f.contact)
        .await
        .expect("q");
    assert_eq!(interactions.len(), 1);
    assert_eq!(interactions[0].user_id, Some(f.agent));

    let today = t.clock.now_utc().date_naive().to_string();
    let got = counts(&t, &admin, "/api/audit/counts").await;
    let count = |action: &str| {
        got.iter()
            .find(|c| c["action"] == action && c["day"] == today.as_str())
            .and_then(|c| c["count"].as_i64())
    };
    assert_eq!(count("contact.view"), Some(3), "{got:?}");
    assert_eq!(count("contact.export"), Some(1), "{got:?}");
    for c in &got {
        let mut keys: Vec<&String> = c.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["action", "count", "day"], "a count names no one");
    }
    let tomorrow = (t.clock.now_utc().date_naive() + chrono::Days::new(1)).to_string();
    assert!(
        counts(&t, &admin, &format!("/api/audit/counts?since={tomorrow}"))
            .await
            .is_empty()
    );
    assert_eq!(
        t.get_status(&admin, "/api/audit/counts?since=yesterday")
            .await,
        400
    );
    t
}

async fn without_aggregate_only_views_are_audited_in_full(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let f = floor(&t, &acme).await;
    let admin = t.login("ada", &f.admin_pw).await;
    let agent = t.login("al", &f.agent_pw).await;
    let card = format!("/api/contacts/{}", f.contact);
    assert_eq!(t.get_status(&agent, &card).await, 200);

    let views: Vec<AuditEntry> = audit(&t, &acme)
        .await
        .into_iter()
        .filter(|e| e.action == "contact.view")
        .collect();
    assert_eq!(views.len(), 1, "{views:?}");
    assert_eq!(
        views[0].target.as_deref(),
        Some(format!("contact:{}", f.contact).as_str())
    );
    assert_eq!(views[0].user_id, Some(f.agent));
    assert!(counts(&t, &admin, "/api/audit/counts").await.is_empty());

    // Turned on and off again: detailed entries resume.
    for on in [true, false] {
        let r = admin
            .put(t.url("/api/account/privacy"))
            .json(&serde_json::json!({ "aggregate_only": on }))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200);
    }
    assert_eq!(t.get_status(&agent, &card).await, 200);
    let views = audit(&t, &acme)
        .await
        .into_iter()
        .filter(|e| e.action == "contact.view")
        .count();
    assert_eq!(views, 2);
    t
}
