//! The access matrix: every API route × every role × a foreign account,
//! held to the rules in `dashboard::access`. A route registered in the
//! dashboard's source without a rule fails this test.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Utc;
use crm::import::OnDuplicate;
use crm::model::{ContactFields, Role};
use dashboard::access::{Who, RULES};
use sip_gateway::gateway::CallRef;

use crate::helpers::{client, on_both_backends, TestApp};

on_both_backends!(every_route_refuses_whom_it_must);

#[test]
fn every_registered_route_has_an_access_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/src");
    let mut registered = BTreeSet::new();
    collect_routes(&src, &mut registered);
    let ruled: BTreeSet<(String, String)> = RULES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let pages = [
        "/",
        "/login",
        "/agent",
        "/supervisor",
        "/admin",
        "/static/{file}",
    ];
    let missing: Vec<_> = registered
        .iter()
        .filter(|(_, path)| !pages.contains(&path.as_str()))
        .filter(|r| !ruled.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an access rule: {missing:?}"
    );
    let stale: Vec<_> = ruled.difference(&registered).collect();
    assert!(
        stale.is_empty(),
        "rules for routes that do not exist: {stale:?}"
    );
    assert!(registered.len() > 30, "the scan found the routes");
}

/// Reads `.route("PATH", get(..).post(..))` registrations from the source.
fn collect_routes(dir: &Path, out: &mut BTreeSet<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_routes(&path, out);
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(\"") {
            rest = &rest[at + ".route(\"".len()..];
            let Some(end) = rest.find('"') else { break };
            let route = rest[..end].to_owned();
            // The methods are the chained calls up to the closing parenthesis.
            let mut depth = 1;
            let mut args_end = end;
            for (i, c) in rest[end..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            args_end = end + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[end..args_end];
            for (name, method) in [
                ("get(", "GET"),
                ("post(", "POST"),
                ("put(", "PUT"),
                ("delete(", "DELETE"),
                ("patch(", "PATCH"),
            ] {
                let direct =
                    args.contains(&format!(" {name}")) || args.contains(&format!("({name}"));
                if args.contains(&format!(".{name}")) || direct {
                    out.insert((method.to_owned(), route.clone()));
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Caller {
    Anonymous,
    Own(Role),
    ForeignAdmin,
}

async fn every_route_refuses_whom_it_must(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let now = Utc::now();
    let a = t.account("a", 5).await;
    let b = t.account("b", 5).await;
    let mut passwords = Vec::new();
    for role in [Role::Agent, Role::Supervisor, Role::Admin] {
        let name = format!("a-{role}");
        passwords.push((role, name.clone(), t.user(&a, &name, role).await));
    }
    let foreign_pw = t.user(&b, "b-admin", Role::Admin).await;
    let contact = s
        .create_contact(
            a.id,
            &ContactFields {
                first_name: "Matrix".into(),
                phone_e164: "+447700900808".into(),
                phone_raw: "07700 900808".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let list = s.create_list(a.id, "L", "GB", now).await.expect("list");
    let campaign = s
        .create_campaign(a.id, "C", "+441632960000", now)
        .await
        .expect("campaign");
    let job = s
        .create_import_job(a.id, list.id, None, OnDuplicate::Skip, now)
        .await
        .expect("import job");
    let user = s.credentials("a-agent").await.expect("q").expect("user").0;
    // A field of account a, for the routes that name one by its key.
    s.define_field(
        &crm::model::Actor {
            account_id: Some(a.id),
            ..Default::default()
        },
        &crm::fields::NewField {
            key: "matrix".into(),
            kind: Some(crm::fields::FieldKind::Text),
            ..Default::default()
        },
        now,
    )
    .await
    .expect("field");
    // A call of account a that has not ended, for the listening route.
    let call_ref = CallRef::from_u128(0x5eed);
    s.create_attempt(a.id, call_ref, None, None, now)
        .await
        .expect("attempt");
    let webhook = s
        .create_webhook(
            a.id,
            &crm::store::webhooks::NewEndpoint {
                url: "https://hooks.example.com/in".into(),
                events: vec![crm::webhooks::WebhookEvent::CallEnded],
                active: true,
                ..Default::default()
            },
            now,
        )
        .await
        .expect("webhook")
        .0;
    let queue = s
        .create_queue(
            a.id,
            "Matrix",
            &crm::store::queues::QueueSettings::new(campaign.id),
            &["+441632960555".to_owned()],
            now,
        )
        .await
        .expect("queue");
    let id_for = |path: &str| -> String {
        let id = if path.starts_with("/api/queues/") {
            queue.id.0
        } else if path.starts_with("/api/webhooks/") {
            webhook.id.0
        } else if path.starts_with("/api/contacts/") {
            contact.id.0
        } else if path.starts_with("/api/lists/") {
            list.id.0
        } else if path.starts_with("/api/campaigns/") {
            campaign.id.0
        } else if path.starts_with("/api/users/") {
            user.id.0
        } else if path.starts_with("/api/imports/") {
            job
        } else {
            0
        };
        path.replace("{id}", &id.to_string())
            .replace("{key}", "matrix")
            .replace("{call_ref}", &call_ref.to_string())
            .replace("{number}", "+447400900123")
    };

    let mut callers = vec![(Caller::Anonymous, None)];
    for (role, name, pw) in &passwords {
        callers.push((Caller::Own(*role), Some((name.clone(), pw.clone()))));
    }
    callers.push((
        Caller::ForeignAdmin,
        Some(("b-admin".to_owned(), foreign_pw)),
    ));
    let mut failures = Vec::new();
    for rule in RULES {
        let path = id_for(rule.path);
        for (caller, creds) in &callers {
            // A fresh session per request: logout routes end the one they use.
            let c = client();
            if let Some((name, pw)) = creds {
                assert_eq!(t.try_login(&c, name, pw).await.status(), 200);
            }
            let mut req = match rule.method {
                "GET" => c.get(t.url(&path)),
                "POST" => c.post(t.url(&path)),
                "PUT" => c.put(t.url(&path)),
                "DELETE" => c.delete(t.url(&path)),
                "PATCH" => c.patch(t.url(&path)),
                other => panic!("no test for method {other}"),
            };
            if rule.method != "GET" {
                req = req.json(&body_for(
                    rule.path,
                    list.id.0,
                    user.id.0,
                    campaign.id.0,
                    contact.id.0,
                ));
            }
            if path.ends_with("/ws") || path == "/api/stream" {
                req = req
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-version", "13")
                    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
            }
            let status = req.send().await.expect("sent").status().as_u16();
            let allowed = match (rule.who, caller) {
                (Who::Public, _) => true,
                (_, Caller::Anonymous) => false,
                (Who::AnyRole, _) => true,
                (Who::Roles(roles), Caller::Own(role)) => roles.contains(role),
                (Who::Roles(roles), Caller::ForeignAdmin) => roles.contains(&Role::Admin),
            };
            let ok = match (allowed, caller) {
                (false, Caller::Anonymous) => status == 401,
                (false, _) => status == 403,
                // Another account's row is indistinguishable from a missing one.
                (true, Caller::ForeignAdmin) if names_a_row(rule.path) => status == 404,
                // So is a row of a campaign the agent is not assigned to: this
                // one is assigned to none.
                (true, Caller::Own(Role::Agent)) if hidden_from_unassigned(rule.path) => {
                    status == 404
                }
                (true, _) => status != 401 && status != 403,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {caller:?}: got {status}",
                    rule.method, rule.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access matrix broken:\n{}",
        failures.join("\n")
    );
    t
}

/// Whether a route's path names a row of the caller's account.
fn names_a_row(path: &str) -> bool {
    path.contains("{id}") || path.contains("{call_ref}") || path.contains("{key}")
}

/// Whether a route's row is hidden from an agent who is not assigned to
/// its campaign.
fn hidden_from_unassigned(path: &str) -> bool {
    matches!(
        path,
        "/api/contacts/{id}" | "/api/contacts/{id}/timeline" | "/api/campaigns/{id}"
    )
}

/// A well-formed body for the routes that take one, so that a foreign
/// caller's refusal comes from the account scope, not from the body.
fn body_for(path: &str, list: i64, agent: i64, campaign: i64, contact: i64) -> serde_json::Value {
    match path {
        "/api/users/{id}/active" => serde_json::json!({ "active": true }),
        "/api/campaigns/{id}/settings" => serde_json::to_value(
            crm::store::campaign_settings::CampaignSettings::defaults("+441632960000"),
        )
        .expect("settings serialise"),
        "/api/campaigns/{id}/lists" => serde_json::json!({ "list_id": list, "priority": 0 }),
        "/api/campaigns/{id}/script" => serde_json::json!({
            "sections": [{ "title": "Matrix", "body": "Hello {first_name}" }]
        }),
        "/api/campaigns/{id}/dial-level" => serde_json::json!({ "max_dial_level": 2.0 }),
        "/api/campaigns/{id}/agents" => serde_json::json!({ "user_ids": [agent] }),
        "/api/account/privacy" => serde_json::json!({ "aggregate_only": false }),
        "/api/dnc" => serde_json::json!({ "number": "+447400900123" }),
        "/api/dnc/settings" => serde_json::json!({ "keep_numbers": false }),
        "/api/contacts" => serde_json::json!({ "phone": "+447400100808" }),
        "/api/contacts/{id}" => serde_json::json!({ "version": 1, "last_name": "Matrix" }),
        // The second contact does not exist: the matrix merges nothing.
        "/api/contacts/merge" => serde_json::json!({
            "keep": contact, "merge": contact + 1_000_000, "version_keep": 1, "version_merge": 1
        }),
        "/api/listen/{call_ref}/leg" => serde_json::json!({ "sdp": "v=0" }),
        "/api/webhooks" => serde_json::json!({
            "url": "https://hooks.example.com/other", "events": ["call.ended"]
        }),
        "/api/webhooks/{id}" => serde_json::json!({ "description": "matrix" }),
        "/api/account/fields" => serde_json::json!({ "key": "matrix_two", "kind": "yes_no" }),
        "/api/account/fields/{key}" => serde_json::json!({ "label": "Matrix field" }),
        "/api/queues" => serde_json::json!({ "name": "Matrix two", "campaign_id": campaign }),
        "/api/queues/{id}" => serde_json::json!({ "max_wait_secs": 90 }),
        "/api/queues/{id}/agents" => {
            serde_json::json!({ "agents": [{ "user_id": agent, "skill": 5 }] })
        }
        _ => serde_json::json!({}),
    }
}
