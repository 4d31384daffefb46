//! Role checks and account scoping over HTTP.

use chrono::Utc;
use crm::model::{ContactFields, Role};

use crate::helpers::{client, on_both_backends, TestApp};

on_both_backends!(
    roles_are_checked_on_the_server,
    another_accounts_data_is_not_found,
    admins_add_users_who_can_then_log_in,
    pages_need_the_right_role,
    admins_set_the_retention_period,
);

async fn roles_are_checked_on_the_server(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent = t.login("al", &agent_pw).await;
    let sup = t.login("sue", &sup_pw).await;
    for path in ["/api/users", "/api/lists", "/api/account"] {
        assert_eq!(t.get_status(&agent, path).await, 403, "agent on {path}");
        assert_eq!(t.get_status(&sup, path).await, 200, "supervisor on {path}");
    }
    assert_eq!(t.get_status(&agent, "/api/campaigns").await, 200);
    let r = sup
        .post(t.url("/api/users"))
        .json(&serde_json::json!({"username": "x", "password": "Abcdefg1", "role": "admin"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403, "only admins add admins");
    let r = agent
        .post(t.url("/api/lists"))
        .json(&serde_json::json!({"name": "mine"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);
    for path in [
        "/api/users",
        "/api/lists",
        "/api/campaigns",
        "/api/contacts/1",
    ] {
        assert_eq!(t.get_status(&client(), path).await, 401, "anonymous {path}");
    }
    t
}

async fn another_accounts_data_is_not_found(t: TestApp) -> TestApp {
    let a = t.account("a", 5).await;
    let b = t.account("b", 5).await;
    let s = &t.db.store;
    let now = Utc::now();
    let contact = s
        .create_contact(
            a.id,
            &ContactFields {
                first_name: "Oona".into(),
                phone_e164: "+447700900555".into(),
                phone_raw: "07700 900555".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let list = s.create_list(a.id, "L", "GB", now).await.expect("list");
    s.add_to_list(a.id, list.id, contact.id, now)
        .await
        .expect("member");
    let camp = s
        .create_campaign(a.id, "C", "+441632960123", now)
        .await
        .expect("campaign");
    t.user(&a, "a-admin", Role::Admin).await;
    let b_pw = t.user(&b, "b-admin", Role::Admin).await;
    let a_sup_pw = t.user(&a, "a-sup", Role::Supervisor).await;
    let a_user = s.credentials("a-admin").await.expect("q").expect("user").0;

    let a_sup = t.login("a-sup", &a_sup_pw).await;
    let b_admin = t.login("b-admin", &b_pw).await;
    let paths = [
        format!("/api/contacts/{}", contact.id),
        format!("/api/lists/{}", list.id),
        format!("/api/lists/{}/contacts", list.id),
        format!("/api/campaigns/{}", camp.id),
        format!("/api/users/{}", a_user.id),
    ];
    for path in &paths {
        assert_eq!(t.get_status(&a_sup, path).await, 200, "own account {path}");
        assert_eq!(t.get_status(&b_admin, path).await, 404, "foreign {path}");
    }
    let r = b_admin
        .post(t.url(&format!("/api/users/{}/active", a_user.id)))
        .json(&serde_json::json!({ "active": false }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);
    let lists: Vec<serde_json::Value> = b_admin
        .get(t.url("/api/lists"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(lists.is_empty());
    t
}

async fn admins_add_users_who_can_then_log_in(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &pw).await;
    let weak = admin
        .post(t.url("/api/users"))
        .json(&serde_json::json!({"username": "new", "password": "short", "role": "agent"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(weak.status(), 400);
    assert!(weak.text().await.expect("text").contains("8 characters"));
    let r = admin
        .post(t.url("/api/users"))
        .json(&serde_json::json!({"username": "new", "password": "Fresh-Pass-9", "role": "agent"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    let dup = admin
        .post(t.url("/api/users"))
        .json(&serde_json::json!({"username": "new", "password": "Fresh-Pass-9", "role": "agent"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(dup.status(), 409);
    let bad_role = admin
        .post(t.url("/api/users"))
        .json(&serde_json::json!({"username": "n2", "password": "Fresh-Pass-9", "role": "boss"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad_role.status(), 400);
    assert!(bad_role.text().await.expect("text").contains("role"));
    let agent = t.login("new", "Fresh-Pass-9").await;
    assert_eq!(t.get_status(&agent, "/api/me").await, 200);
    let audit = t.db.store.audit_entries(acme.id, 50).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "user.create"));
    assert!(audit.iter().any(|e| e.action == "login"));
    t
}

async fn pages_need_the_right_role(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let anon = client();
    assert_eq!(t.get_status(&anon, "/login").await, 200);
    for page in ["/agent", "/supervisor", "/admin"] {
        assert_eq!(t.get_status(&anon, page).await, 303, "anonymous {page}");
    }
    let agent = t.login("al", &agent_pw).await;
    assert_eq!(t.get_status(&agent, "/agent").await, 200);
    assert_eq!(t.get_status(&agent, "/admin").await, 403);
    assert_eq!(t.get_status(&agent, "/supervisor").await, 403);
    let admin = t.login("ada", &admin_pw).await;
    let r = admin.get(t.url("/admin")).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("CSP")
        .to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    let html = r.text().await.expect("html");
    assert!(html.contains("/static/app.js") && !html.contains("<script>"));
    assert_eq!(t.get_status(&admin, "/supervisor").await, 200);
    assert_eq!(t.get_status(&anon, "/static/app.js").await, 200);
    t
}

async fn admins_set_the_retention_period(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let admin = t.login("ada", &admin_pw).await;
    let sup = t.login("sue", &sup_pw).await;
    let put = |c: &reqwest::Client, body: serde_json::Value| {
        c.put(t.url("/api/account/retention")).json(&body).send()
    };
    assert_eq!(
        put(&sup, serde_json::json!({"retention_days": 30}))
            .await
            .expect("sent")
            .status(),
        403
    );
    assert_eq!(
        put(&admin, serde_json::json!({"retention_days": -1}))
            .await
            .expect("sent")
            .status(),
        400
    );
    assert_eq!(
        put(&admin, serde_json::json!({"retention_days": 90}))
            .await
            .expect("sent")
            .status(),
        200
    );
    assert_eq!(t.db.store.retention(acme.id).await.expect("q"), Some(90));
    let audit = t.db.store.audit_entries(acme.id, 5).await.expect("audit");
    assert_eq!(audit[0].action, "account.retention");
    t
}
