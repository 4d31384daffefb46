//! Silent listening over the API: only supervisors and admins attach a
//! listening leg, only to a live call of their own account, and every
//! start is audited. The calls are real gateway calls to the simulated
//! carrier; the legs are attached from a browser-like SDP offer.

use chrono::Utc;
use crm::model::{Account, Role};
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::carrier::{Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;

use crate::dialler::{agent_phone, carrier};
use crate::helpers::{spawn_app_with, TestApp};

#[tokio::test]
async fn listening_is_for_managers_on_live_calls_of_their_account_on_sqlite() {
    listening_rules(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn listening_is_for_managers_on_live_calls_of_their_account_on_postgres() {
    listening_rules(TestBackend::Postgres).await;
}

async fn listening_rules(backend: TestBackend) {
    let phones = carrier(Mix::always(Outcome::Answer), 300.0, None).await;
    let trunks = vec![TrunkConfig::new("phones", phones.sip_addr())];
    let Some(t) = spawn_app_with(backend, false, trunks).await else {
        return;
    };
    check_rules(&t).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

async fn check_rules(t: &TestApp) {
    let s = &t.db.store;
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let sue = t.user(&acme, "sue", Role::Supervisor).await;
    let al = t.user(&acme, "al", Role::Agent).await;
    let ann = t.user(&acme, "ann", Role::Admin).await;
    let bob = t.user(&other, "bob", Role::Supervisor).await;
    let sue = t.login("sue", &sue).await;
    let al = t.login("al", &al).await;
    let ann = t.login("ann", &ann).await;
    let bob = t.login("bob", &bob).await;

    let ours = live_call(t, &acme).await;
    let theirs = live_call(t, &other).await;

    // Agents may do none of it.
    assert_eq!(attach(t, &al).await.0, 403);
    assert_eq!(start(t, &al, &ours).await, 403);
    assert_eq!(status(al.delete(t.url("/api/listen"))).await, 403);

    // A supervisor needs a leg before choosing a call.
    assert_eq!(start(t, &sue, &ours).await, 409, "no leg yet");
    let bad = sue
        .post(t.url("/api/listen"))
        .json(&json!({ "sdp": "v=0 nonsense" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 400, "a malformed offer is the client's fault");
    let (code, answer) = attach(t, &sue).await;
    assert_eq!(code, 200);
    let answer = answer["sdp"].as_str().expect("an SDP answer");
    assert!(
        answer.contains("m=audio") && answer.contains("a=sendonly"),
        "a receive-only offer gets a send-only answer: {answer}"
    );

    assert_eq!(
        start(t, &sue, &ours).await,
        204,
        "a live call of the account"
    );
    assert_eq!(start(t, &sue, &theirs).await, 404, "another account's call");
    assert_eq!(start(t, &sue, &"0".repeat(32)).await, 404, "no such call");
    assert_eq!(start(t, &sue, "not-a-ref").await, 404, "not a reference");

    // Another account's supervisor, leg and all, finds nothing of ours.
    assert_eq!(attach(t, &bob).await.0, 200);
    assert_eq!(start(t, &bob, &ours).await, 404);
    assert_eq!(start(t, &bob, &theirs).await, 204);

    // An admin may listen too.
    assert_eq!(attach(t, &ann).await.0, 200);
    assert_eq!(start(t, &ann, &ours).await, 204);

    // A call that has ended is not listened to, even if the gateway still held it.
    let attempt = s
        .attempt_by_ref(acme.id, ours.parse().expect("a call reference"))
        .await
        .expect("attempt");
    s.mark_ended(acme.id, attempt.id, "answered", Utc::now())
        .await
        .expect("ended");
    assert_eq!(start(t, &sue, &ours).await, 404, "an ended call");

    // Every start is audited with who listened to which call; refusals are not starts.
    let audit = s.audit_entries(acme.id, 100).await.expect("audit");
    let listens: Vec<_> = audit.iter().filter(|e| e.action == "call.listen").collect();
    assert_eq!(listens.len(), 2, "sue's and ann's starts: {listens:?}");
    let target = format!("call:{ours}");
    assert!(listens
        .iter()
        .all(|e| e.target.as_deref() == Some(target.as_str())));
    let sue_id = s.credentials("sue").await.expect("q").expect("sue").0.id;
    assert!(listens.iter().any(|e| e.user_id == Some(sue_id)));
    let theirs_audit = s.audit_entries(other.id, 100).await.expect("audit");
    assert_eq!(
        theirs_audit
            .iter()
            .filter(|e| e.action == "call.listen")
            .count(),
        1,
        "bob's start is in his own account's log"
    );

    // Stopping hangs the leg up: a new call needs a new leg.
    assert_eq!(status(sue.delete(t.url("/api/listen"))).await, 204);
    assert_eq!(
        status(sue.delete(t.url("/api/listen"))).await,
        204,
        "idempotent"
    );
    let next = live_call(t, &acme).await;
    assert_eq!(start(t, &sue, &next).await, 409, "the leg is gone");
}

/// Places an answered call through the gateway and records it as the account's attempt.
async fn live_call(t: &TestApp, account: &Account) -> String {
    let call = agent_phone(&t.app.telephony.gateway).await;
    t.db.store
        .create_attempt(account.id, call, None, None, Utc::now())
        .await
        .expect("attempt");
    call.to_string()
}

async fn attach(t: &TestApp, client: &reqwest::Client) -> (u16, Value) {
    let r = client
        .post(t.url("/api/listen"))
        .json(&json!({ "sdp": browser_offer() }))
        .send()
        .await
        .expect("sent");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn start(t: &TestApp, client: &reqwest::Client, call: &str) -> u16 {
    status(client.post(t.url(&format!("/api/listen/{call}")))).await
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("sent").status().as_u16()
}

/// A receive-only audio offer shaped like a browser's; it never connects,
/// but the gateway holds a leg for it.
fn browser_offer() -> String {
    let fingerprint: Vec<String> = (0..32u8).map(|b| format!("{b:02X}")).collect();
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 8",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Qx7d",
        "a=ice-pwd:m4Pz9sJ2vT8kL1wQ6rY3uE5a",
        "a=ice-options:trickle",
        &format!("a=fingerprint:sha-256 {}", fingerprint.join(":")),
        "a=setup:actpass",
        "a=mid:0",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "",
    ]
    .join("\r\n")
}
