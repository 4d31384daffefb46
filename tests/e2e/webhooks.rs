//! Webhooks as an integrating developer meets them: endpoints an admin adds
//! over the API, deliveries of real calls placed through the simulated
//! carrier, signed so a receiver can verify them, retried when the receiver
//! fails, logged with the last error, carrying contact fields only when
//! opted into, and never held up by an endpoint that hangs. A merge of two
//! contacts reaches the endpoints that take `contact.merged`, by ids.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use crm::model::{ContactFields, Role};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::desk::{agent_floor_tuned, say, wait_for, AgentFloor};
use crate::dialler::DAY_ZONE;
use crate::helpers::{spawn_app_tuned, NowUtc, TestApp};
use crate::https::TestCerts;

#[tokio::test]
async fn calls_reach_endpoints_signed_and_a_hanging_one_holds_up_nothing_on_sqlite() {
    two_calls(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn calls_reach_endpoints_signed_and_a_hanging_one_holds_up_nothing_on_postgres() {
    two_calls(TestBackend::Postgres).await;
}

#[tokio::test]
async fn a_merge_reaches_endpoints_by_ids_on_sqlite() {
    merges(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_merge_reaches_endpoints_by_ids_on_postgres() {
    merges(TestBackend::Postgres).await;
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_and_its_log_keeps_the_last_error_on_sqlite() {
    retries(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_and_its_log_keeps_the_last_error_on_postgres() {
    retries(TestBackend::Postgres).await;
}

/// One request a receiver took, as it arrived.
#[derive(Debug, Clone)]
struct Hit {
    endpoint: String,
    signature: String,
    delivery: String,
    event: String,
    raw: Bytes,
}

impl Hit {
    fn body(&self) -> Value {
        serde_json::from_slice(&self.raw).expect("a JSON body")
    }
}

/// An HTTP receiver on the loopback: `/good…` answers 200, `/flaky` 500
/// then 204, `/hang` never answers. It records every request.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// How many requests each endpoint has taken.
    counts: Arc<Mutex<HashMap<String, usize>>>,
    changed: Arc<Notify>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/{endpoint}", post(take))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (receiver, base)
    }

    fn hits(&self, endpoint: &str) -> Vec<Hit> {
        let hits = self.hits.lock().expect("lock");
        hits.iter()
            .filter(|h| h.endpoint == endpoint)
            .cloned()
            .collect()
    }

    /// Waits (at most 30 s) until `endpoint` has taken `n` requests.
    async fn wait_for(&self, endpoint: &str, n: usize) -> Vec<Hit> {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let hits = self.hits(endpoint);
                if hits.len() >= n {
                    return hits;
                }
                changed.await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(hits) => hits,
            Err(_) => panic!(
                "{endpoint} took {} requests within 30 s, not {n}: {:?}",
                self.hits(endpoint).len(),
                self.hits(endpoint)
                    .iter()
                    .map(|h| h.event.clone())
                    .collect::<Vec<_>>()
            ),
        }
    }
}

async fn take(
    State(r): State<Receiver>,
    UrlPath(endpoint): UrlPath<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let hit = Hit {
        endpoint: endpoint.clone(),
        signature: header("dialcrm-signature"),
        delivery: header("dialcrm-delivery"),
        event: header("dialcrm-event"),
        raw,
    };
    let seen = {
        let mut counts = r.counts.lock().expect("lock");
        let n = counts.entry(endpoint.clone()).or_default();
        *n += 1;
        *n
    };
    r.hits.lock().expect("lock").push(hit);
    r.changed.notify_waiters();
    match endpoint.as_str() {
        "hang" => std::future::pending().await,
        "flaky" if seen == 1 => StatusCode::INTERNAL_SERVER_ERROR,
        "flaky" => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    }
}

/// Checks a request's signature as docs/api.md tells receivers to: the
/// HMAC-SHA256 of `"{t}.{body}"` under the endpoint's secret, with `t`
/// within five minutes of the service's clock.
fn verifies(secret: &str, hit: &Hit, now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in hit.signature.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hit.raw);
    (now - t).abs() <= 300 && mac.verify_slice(&v1).is_ok()
}

/// Creates an endpoint over the API and returns its id and secret.
async fn add_endpoint(
    t: &TestApp,
    admin: &reqwest::Client,
    url: String,
    events: &[&str],
    fields: &[&str],
) -> (i64, String) {
    let r = admin
        .post(t.url("/api/webhooks"))
        .json(
            &json!({ "url": url, "events": events, "contact_fields": fields,
                       "description": "test receiver" }),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let secret = created["secret"].as_str().expect("shown once").to_owned();
    (created["id"].as_i64().expect("id"), secret)
}

async fn log(t: &TestApp, admin: &reqwest::Client, id: i64) -> Vec<Value> {
    let r = admin
        .get(t.url(&format!("/api/webhooks/{id}/deliveries")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let mut log: Vec<Value> = r.json().await.expect("json");
    log.reverse();
    log
}

/// Reads the delivery log until `done` holds of it (at most 30 s).
async fn log_until(
    t: &TestApp,
    admin: &reqwest::Client,
    id: i64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..300 {
        let entries = log(t, admin, id).await;
        if done(&entries) {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the log of {id} never got there: {:#?}",
        log(t, admin, id).await
    );
}

async fn two_calls(backend: TestBackend) {
    // One slot per endpoint and a long deadline: the hanging endpoint holds
    // its only slot for the whole test.
    let Some(f) = agent_floor_tuned(backend, Some(1), |s| {
        s.webhooks.per_endpoint = 1;
        s.webhooks.timeout = Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    let AgentFloor {
        ref t,
        ref acme,
        ref sup_pw,
        ..
    } = f;
    let s = &t.db.store;
    let now = Utc::now();
    let (receiver, base) = Receiver::start().await;
    let admin_pw = t.user(acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &admin_pw).await;
    let all = [
        "call.answered",
        "call.ended",
        "disposition.saved",
        "contact.erased",
        "campaign.started",
        "campaign.paused",
    ];
    let (good, good_secret) = add_endpoint(t, &admin, format!("{base}/good"), &all, &[]).await;
    let (opted, opted_secret) = add_endpoint(
        t,
        &admin,
        format!("{base}/good-opted"),
        &["call.answered", "disposition.saved"],
        &["first_name", "custom.plan", "notes"],
    )
    .await;
    let (hang, hang_secret) = add_endpoint(t, &admin, format!("{base}/hang"), &all, &[]).await;
    let listed: Value = admin
        .get(t.url("/api/webhooks"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().expect("list").len(), 3);
    assert!(
        !listed.to_string().contains(&good_secret) && !listed.to_string().contains("secret"),
        "secrets are shown once: {listed}"
    );

    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let people = [
        ("Philippa", "Oddington", "+447700900771", "gold"),
        ("Quentin", "Blake", "+447700900772", "silver"),
    ];
    for (first, last, phone, plan) in people {
        let c = s
            .create_contact(
                acme.id,
                &ContactFields {
                    first_name: first.into(),
                    last_name: last.into(),
                    phone_e164: phone.into(),
                    phone_raw: phone.into(),
                    email: Some(format!("{}@example.org", first.to_lowercase())),
                    time_zone: Some(DAY_ZONE.into()),
                    custom_fields: json!({ "plan": plan }),
                    ..ContactFields::default()
                },
                now,
            )
            .await
            .expect("contact");
        s.add_to_list(acme.id, list.id, c.id, now)
            .await
            .expect("member");
    }
    let campaign = t
        .start_campaign(
            acme,
            list.id,
            "Spring",
            DialMode::Progressive,
            Some("customers"),
            ("sue", sup_pw),
        )
        .await;

    f.connect_audio().await;
    let mut ws = f.open_desk().await;
    assert_eq!(wait_for(&mut ws, "welcome").await["type"], "welcome");
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let mut calls = Vec::new();
    for n in 0..2 {
        let card = wait_for(&mut ws, "call").await;
        let call_ref = card["call_ref"].as_str().expect("ref").to_owned();
        let first = card["contact"]["first_name"].as_str().expect("name");
        calls.push((
            call_ref.clone(),
            card["contact"]["id"].clone(),
            first.to_owned(),
        ));
        wait_for(&mut ws, "call_ended").await;
        say(
            &mut ws,
            json!({"type": "disposition", "call_ref": call_ref, "disposition": "sale",
                   "notes": format!("note {n}: wants the plan")}),
        )
        .await;
        assert_eq!(wait_for(&mut ws, "saved").await["call_ref"], call_ref);
    }

    // Every event of both calls reached the good endpoint while the
    // hanging one still holds its first request: it held up neither the
    // second call nor the other endpoints' deliveries.
    let good_hits = receiver.wait_for("good", 7).await;
    let opted_hits = receiver.wait_for("good-opted", 4).await;
    let hang_hits = receiver.hits("hang");
    assert_eq!(hang_hits.len(), 1, "one slot, held: {hang_hits:?}");
    assert_eq!(hang_hits[0].event, "campaign.started");
    let hang_log = log(t, &admin, hang).await;
    assert_eq!(hang_log.len(), 7, "queued all the same");
    assert!(
        hang_log
            .iter()
            .all(|d| d["status"] == "pending" && d["attempts"] == 0),
        "{hang_log:#?}"
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for hit in &good_hits {
        *counts.entry(hit.event.clone()).or_default() += 1;
    }
    assert_eq!(counts["campaign.started"], 1);
    assert_eq!(counts["call.answered"], 2);
    assert_eq!(counts["call.ended"], 2);
    assert_eq!(counts["disposition.saved"], 2);

    // Each request is signed with its endpoint's secret, names itself, and
    // a changed body no longer verifies.
    let clock = t.clock.now_utc().timestamp();
    for (hits, secret) in [
        (&good_hits, &good_secret),
        (&opted_hits, &opted_secret),
        (&hang_hits, &hang_secret),
    ] {
        for hit in hits.iter() {
            assert!(verifies(secret, hit, clock), "{hit:?}");
            assert!(!verifies(&good_secret, hit, clock) || secret == &good_secret);
            let body = hit.body();
            assert_eq!(body["id"].to_string(), hit.delivery);
            assert_eq!(body["event"], hit.event.as_str());
            assert_eq!(body["account_id"], acme.id.0);
            let mut forged = hit.clone();
            forged.raw = Bytes::from(hit.raw.to_vec().repeat(2));
            assert!(!verifies(secret, &forged, clock));
        }
    }

    // The facts: ids, outcome and times, per call.
    for (call_ref, contact_id, _) in &calls {
        let of_call = |event: &str| -> Value {
            good_hits
                .iter()
                .map(Hit::body)
                .find(|b| b["event"] == event && b["data"]["call_ref"] == call_ref.as_str())
                .unwrap_or_else(|| panic!("{event} of {call_ref}"))
        };
        let answered = of_call("call.answered");
        assert_eq!(answered["data"]["contact_id"], *contact_id);
        assert_eq!(answered["data"]["campaign_id"], campaign.id.0);
        let ended = of_call("call.ended");
        assert_eq!(ended["data"]["outcome"], "answered");
        assert!(ended["data"]["ended_at"].is_string());
        assert!(ended["data"]["answered_at"].is_string());
        let saved = of_call("disposition.saved");
        assert_eq!(saved["data"]["disposition"], "sale");
        assert_eq!(saved["data"]["agent_id"], f.agent.id.0);
        assert_eq!(saved["data"]["contact_id"], *contact_id);
    }

    // No personal value goes where it was not opted into.
    for hit in &good_hits {
        let text = String::from_utf8_lossy(&hit.raw);
        assert!(hit.body().get("contact").is_none(), "{text}");
        for (first, last, phone, plan) in people {
            for personal in [
                first,
                last,
                phone,
                &phone[3..],
                plan,
                "example.org",
                "wants",
            ] {
                assert!(!text.contains(personal), "{personal} sent in {text}");
            }
        }
    }
    // Only the opted fields, of the right contact, go to the other.
    for hit in &opted_hits {
        let body = hit.body();
        let text = String::from_utf8_lossy(&hit.raw).into_owned();
        let contact = &body["contact"];
        let (_, _, first) = calls
            .iter()
            .find(|(r, _, _)| body["data"]["call_ref"] == r.as_str())
            .expect("one of the calls");
        let person = people.iter().find(|p| p.0 == first).expect("known");
        assert_eq!(contact["first_name"], person.0, "{text}");
        assert_eq!(contact["custom.plan"], person.3, "{text}");
        if hit.event == "disposition.saved" {
            assert!(contact["notes"]
                .as_str()
                .is_some_and(|n| n.ends_with("wants the plan")));
        } else {
            assert!(contact.get("notes").is_none(), "{text}");
        }
        for (_, last, phone, _) in people {
            for personal in [last, phone, &phone[3..], "example.org"] {
                assert!(!text.contains(personal), "{personal} sent in {text}");
            }
        }
    }

    let good_log = log(t, &admin, good).await;
    assert_eq!(good_log.len(), 7);
    for d in &good_log {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status"], 200);
        assert!(d["last_error"].is_null());
        assert!(d["delivered_at"].is_string());
    }
    assert_eq!(log(t, &admin, opted).await.len(), 4);

    // Pausing the campaign is told too.
    let sup = t.login("sue", sup_pw).await;
    let paused = sup
        .post(t.url(&format!("/api/campaigns/{}/pause", campaign.id)))
        .send()
        .await
        .expect("sent");
    assert_eq!(paused.status(), 200);
    let hits = receiver.wait_for("good", 8).await;
    let last = hits.last().expect("hit").body();
    assert_eq!(last["event"], "campaign.paused");
    assert_eq!(last["data"]["campaign_id"], campaign.id.0);

    drop(ws);
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

async fn retries(backend: TestBackend) {
    let Some(t) = spawn_app_tuned(backend, false, Vec::new(), None, |s| {
        s.webhooks.retry_base = Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &admin_pw).await;
    let (receiver, base) = Receiver::start().await;

    // Bad bodies are a clear 400, and nothing is made.
    for (body, says) in [
        (
            json!({"url": "ftp://example.com/in", "events": ["call.ended"]}),
            "http or https",
        ),
        (
            json!({"url": "file:///etc/passwd", "events": ["call.ended"]}),
            "http or https",
        ),
        (
            json!({"url": "https://example.com/", "events": ["call.exploded"]}),
            "call.answered",
        ),
        (
            json!({"url": "https://example.com/", "events": []}),
            "at least one",
        ),
        (json!({"url": "https://example.com/"}), "events"),
        (
            json!({"url": "https://example.com/", "events": ["call.ended"],
                   "contact_fields": ["ssn"]}),
            "unknown contact field",
        ),
        (
            json!({"url": "https://example.com/", "events": ["call.ended"], "activ": true}),
            "activ",
        ),
    ] {
        let r = admin
            .post(t.url("/api/webhooks"))
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 400, "{body}");
        let error: Value = r.json().await.expect("json");
        let message = error["error"].as_str().expect("message");
        assert!(message.contains(says), "{body}: {message}");
    }
    let listed: Value = admin
        .get(t.url("/api/webhooks"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));

    let (flaky, secret) = add_endpoint(
        &t,
        &admin,
        format!("{base}/flaky"),
        &["campaign.started"],
        &[],
    )
    .await;
    let ping = admin
        .post(t.url(&format!("/api/webhooks/{flaky}/test")))
        .send()
        .await
        .expect("sent");
    assert_eq!(ping.status(), 202);
    let ping: Value = ping.json().await.expect("json");
    assert_eq!(ping["event"], "ping");
    let first = receiver.wait_for("flaky", 1).await;
    assert!(verifies(&secret, &first[0], t.clock.now_utc().timestamp()));
    assert_eq!(first[0].body()["event"], "ping");
    let failed = log_until(&t, &admin, flaky, |l| l[0]["attempts"] == 1).await;
    let entry = &failed[0];
    assert_eq!(entry["status"], "pending", "{entry}");
    assert_eq!(entry["last_status"], 500);
    assert_eq!(entry["last_error"], "HTTP 500 Internal Server Error");
    let next: chrono::DateTime<Utc> =
        serde_json::from_value(entry["next_attempt_at"].clone()).expect("a next try");
    let last: chrono::DateTime<Utc> =
        serde_json::from_value(entry["last_attempt_at"].clone()).expect("tried");
    let wait = next - last;
    assert!(
        wait >= chrono::TimeDelta::seconds(30) && wait <= chrono::TimeDelta::seconds(60),
        "backoff with jitter from 60 s: {wait}"
    );

    // Once the backoff has passed, it is sent again, with the same id.
    t.clock.advance(chrono::TimeDelta::seconds(61));
    let both = receiver.wait_for("flaky", 2).await;
    assert_eq!(both[1].delivery, both[0].delivery, "the same delivery id");
    assert!(verifies(&secret, &both[1], t.clock.now_utc().timestamp()));
    let done = log_until(&t, &admin, flaky, |l| l[0]["status"] == "delivered").await;
    assert_eq!(done[0]["attempts"], 2);
    assert_eq!(done[0]["last_status"], 204);
    assert_eq!(
        done[0]["last_error"], "HTTP 500 Internal Server Error",
        "the log keeps why it took two"
    );
    // And /metrics counts both attempts.
    let metrics = t
        .client()
        .get(t.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    for line in [
        "dialcrm_webhook_deliveries_total{outcome=\"retry\"} 1",
        "dialcrm_webhook_deliveries_total{outcome=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // An endpoint nobody listens on fails with the reason in its log.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_url = format!("http://{}/in", closed.local_addr().expect("addr"));
    drop(closed);
    let (gone, _) = add_endpoint(&t, &admin, closed_url, &["campaign.started"], &[]).await;
    let r = admin
        .post(t.url(&format!("/api/webhooks/{gone}/test")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
    let failed = log_until(&t, &admin, gone, |l| l[0]["attempts"] == 1).await;
    let error = failed[0]["last_error"].as_str().expect("an error");
    assert!(
        error.starts_with("cannot connect") && error.to_lowercase().contains("refused"),
        "{error}"
    );
    assert!(failed[0]["last_status"].is_null());

    // A rotated secret signs what is sent next; the old one no longer does.
    let rotated: Value = admin
        .patch(t.url(&format!("/api/webhooks/{flaky}")))
        .json(&json!({"rotate_secret": true, "description": "billing"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let new_secret = rotated["secret"].as_str().expect("shown once").to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["description"], "billing");
    let r = admin
        .post(t.url(&format!("/api/webhooks/{flaky}/test")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
    let third = &receiver.wait_for("flaky", 3).await[2];
    let now = t.clock.now_utc().timestamp();
    assert!(verifies(&new_secret, third, now));
    assert!(!verifies(&secret, third, now));
    let r = admin
        .patch(t.url(&format!("/api/webhooks/{flaky}")))
        .json(&json!({"url": "javascript:alert(1)"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);

    // Switched off, it is not pinged; deleted, it is gone with its log.
    let off = admin
        .patch(t.url(&format!("/api/webhooks/{flaky}")))
        .json(&json!({"active": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(off.status(), 200);
    let r = admin
        .post(t.url(&format!("/api/webhooks/{flaky}/test")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 409);
    let r = admin
        .delete(t.url(&format!("/api/webhooks/{flaky}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    assert_eq!(
        t.get_status(&admin, &format!("/api/webhooks/{flaky}"))
            .await,
        404
    );

    // Every change is audited, by names only: never the URL or a secret.
    let audit =
        t.db.store
            .audit_entries(acme.id, 1000)
            .await
            .expect("audit");
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| a.starts_with("webhook."))
        .collect();
    for action in [
        "webhook.create",
        "webhook.update",
        "webhook.test",
        "webhook.delete",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    for entry in audit.iter().filter(|e| e.action.starts_with("webhook.")) {
        let said = format!("{:?} {:?}", entry.target, entry.detail);
        assert!(entry
            .target
            .as_deref()
            .is_some_and(|t| t.starts_with("webhook:")));
        for hidden in [base.as_str(), "http", &secret, &new_secret] {
            assert!(!said.contains(hidden), "{hidden} in {said}");
        }
    }
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

#[tokio::test]
async fn https_endpoints_need_a_certificate_the_service_trusts() {
    let dir = std::env::temp_dir().join(format!("dialcrm-webhook-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let trusted = TestCerts::new(&dir.join("trusted"), &["127.0.0.1"]);
    let stranger = TestCerts::new(&dir.join("stranger"), &["127.0.0.1"]);
    let ca_file = dir.join("trusted").join("ca.pem");
    std::fs::write(&ca_file, &trusted.tls.authority_pem).expect("write");
    let Some(t) = spawn_app_tuned(TestBackend::Sqlite, false, Vec::new(), None, |s| {
        s.webhooks.ca_file = Some(ca_file.clone());
    })
    .await
    else {
        return;
    };
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &admin_pw).await;
    let (receiver, good_url) = https_receiver(&trusted).await;
    let (_, bad_url) = https_receiver(&stranger).await;
    let (ok, _) = add_endpoint(
        &t,
        &admin,
        format!("{good_url}/good"),
        &["campaign.paused"],
        &[],
    )
    .await;
    let (refused, _) = add_endpoint(
        &t,
        &admin,
        format!("{bad_url}/good"),
        &["campaign.paused"],
        &[],
    )
    .await;
    for id in [ok, refused] {
        let r = admin
            .post(t.url(&format!("/api/webhooks/{id}/test")))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 202);
    }
    receiver.wait_for("good", 1).await;
    let delivered = log_until(&t, &admin, ok, |l| l[0]["status"] == "delivered").await;
    assert_eq!(delivered[0]["attempts"], 1);
    let failed = log_until(&t, &admin, refused, |l| l[0]["attempts"] == 1).await;
    let error = failed[0]["last_error"].as_str().expect("an error");
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(failed[0]["status"], "pending", "tried again later");
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A [`Receiver`] over TLS with the certificate given; returns its base URL.
async fn https_receiver(certs: &TestCerts) -> (Receiver, String) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&certs.cert)
        .expect("chain")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM");
    let key = PrivateKeyDer::from_pem_file(Path::new(&certs.key)).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("certificate");
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/{endpoint}", post(take))
        .with_state(receiver.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("https://{}", tcp.local_addr().expect("addr"));
    let listener =
        dialcrm::tls::listener::TlsListener::new(tcp, Arc::new(config)).expect("listener");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, base)
}

/// A supervisor merges two contacts over the API: the endpoint that takes
/// `contact.merged` gets one signed delivery naming the kept contact, the
/// merged one and the merge, with no personal value unless opted into;
/// an endpoint that does not take it gets nothing, and an undo sends
/// nothing more.
async fn merges(backend: TestBackend) {
    let Some(t) = spawn_app_tuned(backend, false, Vec::new(), None, |_| {}).await else {
        return;
    };
    t.clock.stand_still();
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let admin = t.login("ada", &admin_pw).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let sup = t.login("sue", &sup_pw).await;
    let (receiver, base) = Receiver::start().await;
    let (told, secret) =
        add_endpoint(&t, &admin, format!("{base}/good"), &["contact.merged"], &[]).await;
    let (_opted, _) = add_endpoint(
        &t,
        &admin,
        format!("{base}/good-opted"),
        &["contact.merged"],
        &["first_name", "phone"],
    )
    .await;
    let (_other, _) = add_endpoint(
        &t,
        &admin,
        format!("{base}/good-calls"),
        &["call.ended", "contact.erased"],
        &[],
    )
    .await;
    let create = |body: Value| {
        let sup = sup.clone();
        let url = t.url("/api/contacts");
        async move {
            let r = sup.post(url).json(&body).send().await.expect("sent");
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.expect("json")
        }
    };
    let kept = create(json!({ "first_name": "Ada", "phone": "+447400700001" })).await;
    let merged = create(json!({
        "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400700002",
        "email": "ada@example.org"
    }))
    .await;
    let r = sup
        .post(t.url("/api/contacts/merge"))
        .json(&json!({
            "keep": kept["id"], "merge": merged["id"],
            "version_keep": kept["version"], "version_merge": merged["version"]
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.expect("json");
    let merge_id = done["merge_id"].as_i64().expect("a merge id");

    let hits = receiver.wait_for("good", 1).await;
    assert_eq!(hits.len(), 1, "one delivery per merge");
    let hit = &hits[0];
    assert_eq!(hit.event, "contact.merged");
    assert!(verifies(&secret, hit, t.clock.now_utc().timestamp()));
    let body = hit.body();
    assert_eq!(body["event"], "contact.merged");
    assert_eq!(body["account_id"], acme.id.0);
    let mut data = body["data"].clone();
    let merged_at = data["merged_at"].take();
    assert_eq!(
        data,
        json!({
            "contact_id": kept["id"],
            "merged_contact_id": merged["id"],
            "merge_id": merge_id,
            "merged_at": null,
        }),
        "{body}"
    );
    // PostgreSQL keeps `occurred_at` to the microsecond.
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
    };
    assert!(
        (time(&merged_at) - time(&body["occurred_at"])).abs() < chrono::TimeDelta::milliseconds(1),
        "{body}"
    );
    assert!(body.get("contact").is_none(), "{body}");
    let text = String::from_utf8_lossy(&hit.raw);
    for personal in ["Ada", "Lovelace", "+447400700", "example.org"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    // Opted into fields, the endpoint reads them from the kept contact as
    // it is after the merge.
    let opted = receiver.wait_for("good-opted", 1).await[0].body();
    assert_eq!(
        opted["contact"],
        json!({ "first_name": "Ada", "phone": "+447400700001" }),
        "{opted}"
    );
    let entries = log_until(&t, &admin, told, |l| {
        l.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["contact_id"], kept["id"]);

    let r = sup
        .post(t.url(&format!("/api/contacts/merge/{merge_id}/undo")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    // A ping queued after the undo arrives after anything the undo queued.
    let r = admin
        .post(t.url(&format!("/api/webhooks/{told}/test")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
    let hits = receiver.wait_for("good", 2).await;
    assert_eq!(
        hits.iter().map(|h| h.event.as_str()).collect::<Vec<_>>(),
        ["contact.merged", "ping"],
        "the undo sent nothing"
    );
    assert!(
        receiver.hits("good-calls").is_empty(),
        "an endpoint that does not take the event is not told"
    );
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
