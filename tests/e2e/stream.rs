//! The supervisors' websocket stream, driven by a websocket client.

use std::time::Duration;

use chrono::Utc;
use crm::events::{CallPhase, Event};
use crm::model::{AccountId, CampaignId, Role};
use futures_util::{SinkExt, StreamExt};

use sip_gateway::gateway::CallRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::{next_json, on_both_backends, TestApp, Ws};

on_both_backends!(
    a_snapshot_then_numbered_deltas,
    a_client_resuming_gets_what_it_missed,
    a_slow_client_gets_a_snapshot_and_slows_nobody,
    agents_and_other_accounts_are_kept_out,
    failed_logins_and_list_exports_raise_alerts,
    pings_are_answered_closes_echoed_and_breaches_refused,
);

async fn connect(t: &TestApp, cookie: &str, query: &str) -> Result<Ws, WsError> {
    let url = format!("ws://{}/api/stream{query}", t.app.http_addr);
    let mut req = url.into_client_request().expect("valid request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header value"));
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The calls the tests publish, by the numbers behind their references.
const C1: u128 = 0xc1;
const GAP: u128 = 0x9a0;
const MARKER: u128 = 0x3a7;
const SECRET_A: u128 = 0x5ec;
const MINE_B: u128 = 0xb;

/// A call's reference as the wire writes it.
fn hex(call: u128) -> String {
    CallRef::from_u128(call).to_string()
}

fn call_event(account: AccountId, call_ref: u128, state: CallPhase) -> Event {
    Event::CallState {
        account,
        call_ref: CallRef::from_u128(call_ref),
        campaign_id: Some(CampaignId(1)),
        state,
        agent: None,
        cause: None,
        at: Utc::now(),
    }
}

async fn supervisor(t: &TestApp, account: &str) -> (AccountId, String) {
    let a = t.account(account, 5).await;
    let name = format!("{account}-sup");
    let pw = t.user(&a, &name, Role::Supervisor).await;
    (a.id, t.session_cookie(&name, &pw).await)
}

async fn a_snapshot_then_numbered_deltas(t: TestApp) -> TestApp {
    let (account, cookie) = supervisor(&t, "acme").await;
    let acme = t.db.store.account(account).await.expect("account");
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let mut ws = connect(&t, &cookie, "").await.expect("connects");
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["seq"], 0);
    assert_eq!(first["agents"], serde_json::json!([]));

    t.login("al", &agent_pw).await;
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "event");
    assert_eq!(e["seq"], 1);
    assert_eq!(e["event"]["kind"], "agent_state");
    assert_eq!(e["event"]["username"], "al");
    assert_eq!(e["event"]["state"], "paused");

    t.app
        .bus
        .publish(call_event(account, C1, CallPhase::Dialling));
    t.app
        .bus
        .publish(call_event(account, C1, CallPhase::Answered));
    for seq in [2, 3] {
        let e = next_json(&mut ws).await;
        assert_eq!(e["seq"], seq);
        assert_eq!(e["event"]["call_ref"], hex(C1));
    }
    let mut late = connect(&t, &cookie, "").await.expect("connects");
    let snap = next_json(&mut late).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], 3);
    assert_eq!(snap["agents"][0]["username"], "al");
    assert_eq!(snap["calls"][0]["call_ref"], hex(C1));
    assert_eq!(snap["calls"][0]["state"], "answered");
    let figures = metrics(&t).await;
    assert_eq!(figures("dialcrm_stream_clients"), 2);
    assert_eq!(
        figures("dialcrm_stream_writers"),
        1,
        "one writer serves the account"
    );
    ws.close(None).await.expect("close");
    // A client that closes is let go of.
    let mut waited = 0;
    while metrics(&t).await("dialcrm_stream_clients") != 1 {
        waited += 1;
        assert!(waited < 100, "the closed client is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t
}

/// Reads `/metrics` and returns a lookup of its unlabelled figures.
async fn metrics(t: &TestApp) -> impl Fn(&str) -> u64 {
    let text = t.metrics_text().await;
    move |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    }
}

async fn a_client_resuming_gets_what_it_missed(t: TestApp) -> TestApp {
    let (account, cookie) = supervisor(&t, "acme").await;
    let mut ws = connect(&t, &cookie, "").await.expect("connects");
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    t.app
        .bus
        .publish(call_event(account, C1, CallPhase::Dialling));
    let seen = next_json(&mut ws).await["seq"].as_u64().expect("seq");
    drop(ws);
    for i in 0..5 {
        t.app
            .bus
            .publish(call_event(account, GAP + i, CallPhase::Dialling));
    }
    // A marker event tells the test the hub has numbered all five.
    let mut watcher = connect(&t, &cookie, "").await.expect("connects");
    next_json(&mut watcher).await;
    t.app
        .bus
        .publish(call_event(account, MARKER, CallPhase::Ringing));
    assert_eq!(
        next_json(&mut watcher).await["event"]["call_ref"],
        hex(MARKER)
    );

    let mut back = connect(&t, &cookie, &format!("?since={seen}"))
        .await
        .expect("reconnects");
    let mut refs = Vec::new();
    for expected in seen + 1..=seen + 6 {
        let e = next_json(&mut back).await;
        assert_eq!(e["type"], "event", "replayed, not a snapshot");
        assert_eq!(e["seq"], expected);
        refs.push(e["event"]["call_ref"].as_str().expect("ref").to_owned());
    }
    let gaps = (GAP..GAP + 5).chain([MARKER]);
    assert_eq!(refs, gaps.map(hex).collect::<Vec<_>>());

    // Far past the replay buffer, a fresh snapshot is sent instead.
    let mut stale = connect(&t, &cookie, "?since=999999")
        .await
        .expect("connects");
    assert_eq!(next_json(&mut stale).await["type"], "snapshot");
    t
}

async fn a_slow_client_gets_a_snapshot_and_slows_nobody(t: TestApp) -> TestApp {
    let (account, cookie) = supervisor(&t, "acme").await;
    let mut fast = connect(&t, &cookie, "").await.expect("connects");
    let mut slow = connect(&t, &cookie, "").await.expect("connects");
    assert_eq!(next_json(&mut fast).await["type"], "snapshot");
    assert_eq!(next_json(&mut slow).await["type"], "snapshot");
    // The publisher keeps pace with the fast client (batches smaller than a
    // client's buffer, each waiting for it to be read) while the slow one
    // reads nothing, so only the slow one can fall behind.
    const N: u64 = 40_000;
    const BATCH: u64 = 500;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        for expected in 1..=N {
            let e = next_json(&mut fast).await;
            assert_eq!(e["type"], "event", "the fast client never lags");
            assert_eq!(e["seq"], expected, "in order, none missing");
            if expected % BATCH == 0 {
                let _ = progress_tx.send(expected);
            }
        }
    });
    let padding = "x".repeat(400);
    for batch in 0..N / BATCH {
        for i in 0..BATCH {
            t.app.bus.publish(Event::Alert {
                account,
                alert: "load".into(),
                message: format!("{} {padding}", batch * BATCH + i),
                at: Utc::now(),
            });
        }
        let target = (batch + 1) * BATCH;
        tokio::time::timeout(
            Duration::from_secs(30),
            progress.wait_for(|&seen| seen >= target),
        )
        .await
        .expect("the fast client keeps up")
        .expect("reader alive");
    }
    reader.await.expect("reader ok");
    // The slow client now reads: somewhere it was sent a new snapshot
    // instead of the events it could not take.
    let mut last_seq = 0;
    let mut snapshots = 0;
    while last_seq < N {
        let f = next_json(&mut slow).await;
        let seq = f["seq"].as_u64().expect("seq");
        if f["type"] == "snapshot" {
            snapshots += 1;
            assert!(seq >= last_seq);
        } else {
            assert_eq!(seq, last_seq + 1, "deltas stay contiguous after a snapshot");
        }
        last_seq = seq;
    }
    assert!(snapshots >= 1, "the slow client was resynchronised");
    assert!(metrics(&t).await("dialcrm_stream_resyncs_total") >= 1);
    t
}

async fn agents_and_other_accounts_are_kept_out(t: TestApp) -> TestApp {
    let (a, a_cookie) = supervisor(&t, "a").await;
    let (b, b_cookie) = supervisor(&t, "b").await;
    let acc = t.db.store.account(a).await.expect("account");
    let agent_pw = t.user(&acc, "al", Role::Agent).await;
    let agent_cookie = t.session_cookie("al", &agent_pw).await;
    match connect(&t, &agent_cookie, "").await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("an agent must get 403, got {:?}", other.map(|_| ())),
    }
    match connect(&t, "dialcrm_session=forged", "").await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("no session must get 401, got {:?}", other.map(|_| ())),
    }
    let url = format!("ws://{}/api/stream", t.app.http_addr);
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("cookie", b_cookie.parse().expect("value"));
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().expect("value"));
    match tokio_tungstenite::connect_async(req).await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("cross-origin must get 403, got {:?}", other.map(|_| ())),
    }

    let mut b_ws = connect(&t, &b_cookie, "").await.expect("connects");
    let mut a_ws = connect(&t, &a_cookie, "").await.expect("connects");
    next_json(&mut b_ws).await;
    next_json(&mut a_ws).await;
    t.app
        .bus
        .publish(call_event(a, SECRET_A, CallPhase::Dialling));
    t.app
        .bus
        .publish(call_event(b, MINE_B, CallPhase::Dialling));
    assert_eq!(
        next_json(&mut a_ws).await["event"]["call_ref"],
        hex(SECRET_A)
    );
    let first_b = next_json(&mut b_ws).await;
    assert_eq!(first_b["event"]["call_ref"], hex(MINE_B));
    assert_eq!(first_b["seq"], 1);
    t
}

async fn failed_logins_and_list_exports_raise_alerts(t: TestApp) -> TestApp {
    let (account, cookie) = supervisor(&t, "acme").await;
    let acme = t.db.store.account(account).await.expect("account");
    t.user(&acme, "al", Role::Agent).await;
    let mut ws = connect(&t, &cookie, "").await.expect("connects");
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    let c = crate::helpers::client();
    for _ in 0..5 {
        assert_eq!(t.try_login(&c, "al", "Wrong-guess-1").await.status(), 401);
    }
    let alert = next_json(&mut ws).await;
    assert_eq!(alert["event"]["kind"], "alert");
    assert_eq!(alert["event"]["alert"], "login.failures");
    assert!(alert["event"]["message"]
        .as_str()
        .expect("text")
        .contains("5 failed logins"));
    let audit = t.db.store.audit_entries(account, 20).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "alert.login_failures"));

    let list =
        t.db.store
            .create_list(account, "L", "GB", Utc::now())
            .await
            .expect("list");
    let sup = crate::helpers::client();
    let r = sup
        .get(t.url(&format!("/api/lists/{}/export.csv", list.id)))
        .header("cookie", cookie.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let alert = next_json(&mut ws).await;
    assert_eq!(alert["event"]["alert"], "list.export");
    t
}

async fn pings_are_answered_closes_echoed_and_breaches_refused(t: TestApp) -> TestApp {
    let (_, cookie) = supervisor(&t, "acme").await;
    let mut ws = connect(&t, &cookie, "").await.expect("connects");
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    ws.send(Message::Ping("are you there".into()))
        .await
        .expect("ping sent");
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a reply within 10 s")
        .expect("open")
        .expect("frame ok");
    assert_eq!(reply, Message::Pong("are you there".into()));
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    })))
    .await
    .expect("close sent");
    let echo = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an echo within 10 s");
    match echo {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected the close echoed, got {other:?}"),
    }

    // A plain GET is told what the endpoint wants.
    let r = crate::helpers::client()
        .get(t.url("/api/stream"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("websocket"));

    // An unmasked frame from a client breaks RFC 6455: closed with 1002.
    let mut raw = TcpStream::connect(t.app.http_addr).await.expect("connects");
    let request = format!(
        "GET /api/stream HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        t.app.http_addr
    );
    raw.write_all(request.as_bytes()).await.expect("written");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = raw.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed during the handshake");
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    raw.write_all(b"\x81\x02hi").await.expect("written");
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf))
            .await
            .expect("the server answers within 10 s")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.ends_with(&[0x88, 0x02, 0x03, 0xEA]),
        "the last frame closes with 1002: {:02x?}",
        &seen[seen.len().saturating_sub(8)..]
    );
    t
}
