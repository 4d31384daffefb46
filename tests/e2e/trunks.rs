//! A trunk that stops answering its OPTIONS pings goes down: a running
//! campaign left with no trunk raises an alert for its supervisors,
//! `/metrics` shows the trunk down, and both clear when it answers again.

use std::sync::Arc;
use std::time::Duration;

use crm::events::Event;
use crm::model::Role;
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use sip_gateway::gateway::TrunkConfig;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{next_json, spawn_app_with, NowUtc};

#[tokio::test]
async fn a_campaigns_last_trunk_going_down_raises_an_alert_and_shows_in_metrics() {
    let provider = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut trunk = TrunkConfig::new("provider", provider.local_addr().expect("addr"));
    trunk.options_interval = Some(Duration::from_millis(200));
    trunk.down_after = 1;
    trunk.up_after = 1;
    let t = spawn_app_with(TestBackend::Sqlite, false, vec![trunk])
        .await
        .expect("SQLite is always there");
    let s = &t.db.store;
    let acme = t.account("acme", 5).await;
    let sup = t.user(&acme, "sue", Role::Supervisor).await;
    let list = s
        .create_list(acme.id, "L", "GB", t.clock.now_utc())
        .await
        .expect("list");
    t.start_campaign(
        &acme,
        list.id,
        "Spring",
        DialMode::Progressive,
        Some("provider"),
        ("sue", &sup),
    )
    .await;
    let mut bus = t.app.bus.subscribe();

    // The provider answers nothing: its pings time out and it goes down.
    let drain = async {
        let mut buf = vec![0u8; 4096];
        loop {
            let _ = provider.recv_from(&mut buf).await;
        }
    };
    let down = tokio::select! {
        alert = alert(&mut bus) => alert,
        _ = drain => unreachable!("the socket keeps receiving"),
    };
    assert_eq!(down.0, "trunk.down");
    assert!(
        down.1.contains("provider") && down.1.contains("Spring"),
        "{}",
        down.1
    );
    let metrics = t.metrics_text().await;
    assert!(
        metrics.contains("dialcrm_trunk_up{trunk=\"provider\"} 0"),
        "{metrics}"
    );
    // A wallboard opened now shows the trunk's tile down.
    let cookie = t.session_cookie("sue", &sup).await;
    let mut url = format!("ws://{}/api/stream", t.app.http_addr)
        .into_client_request()
        .expect("request");
    url.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    let (mut board, _) = tokio_tungstenite::connect_async(url).await.expect("stream");
    let snapshot = next_json(&mut board).await;
    assert_eq!(snapshot["type"], "snapshot");
    let tile = |v: &serde_json::Value| {
        v["trunk"] == "provider" && v["up"] == false && v["node"] == t.settings.node_id.as_str()
    };
    // The hub reads the bus on its own: the down state is in the snapshot
    // or follows it at once.
    if !snapshot["trunks"]
        .as_array()
        .is_some_and(|ts| ts.iter().any(tile))
    {
        loop {
            let frame = next_json(&mut board).await;
            if frame["event"]["kind"] == "trunk_state" && tile(&frame["event"]) {
                break;
            }
        }
    }

    // It answers again: up, and the alert clears.
    let answer = async {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = provider.recv_from(&mut buf).await else {
                continue;
            };
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            if request.starts_with("OPTIONS ") {
                let _ = provider.send_to(ok(&request).as_bytes(), from).await;
            }
        }
    };
    let up = tokio::select! {
        alert = alert(&mut bus) => alert,
        _ = answer => unreachable!("the socket keeps receiving"),
    };
    assert_eq!(up.0, "trunk.up", "{}", up.1);
    // ... and the open wallboard is told it is up.
    let back = loop {
        let frame = next_json(&mut board).await;
        if frame["event"]["kind"] == "trunk_state" {
            break frame;
        }
    };
    assert_eq!(back["event"]["trunk"], "provider");
    assert_eq!(back["event"]["up"], true);
    let metrics = t.metrics_text().await;
    assert!(
        metrics.contains("dialcrm_trunk_up{trunk=\"provider\"} 1"),
        "{metrics}"
    );
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

/// Waits for the next alert on the bus: its kind and message.
async fn alert(bus: &mut broadcast::Receiver<Arc<Event>>) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Event::Alert { alert, message, .. } = bus.recv().await.expect("bus").as_ref() {
                return (alert.clone(), message.clone());
            }
        }
    })
    .await
    .expect("an alert")
}

/// A 200 OK to a request, echoing the headers that pair it with its request.
fn ok(request: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in request.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("");
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
