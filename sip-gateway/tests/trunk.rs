//! Trunk upkeep: registration with a digest challenge, and OPTIONS keepalives.

use std::time::Duration;

mod common;

use common::{request, wait_for};
use sip_gateway::carrier::Outcome;
use sip_gateway::gateway::{
    CallEventKind, DialError, Gateway, GatewayConfig, Secret, TrunkConfig, TrunkStatus,
};
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(3);

async fn receive(socket: &UdpSocket) -> (String, std::net::SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(LIMIT, socket.recv_from(&mut buf))
        .await
        .expect("the gateway sends")
        .unwrap();
    (String::from_utf8_lossy(&buf[..n]).to_string(), from)
}

fn reply(request: &str, status: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("");
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

#[tokio::test]
async fn registers_through_a_challenge_and_keeps_the_trunk_alive() {
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = TrunkConfig::new("reg", trunk.local_addr().unwrap());
    config.register = true;
    config.username = Some("acct".into());
    config.password = Secret::new("s3cret");
    config.options_interval = Some(Duration::from_millis(200));
    let _gw = Gateway::start(GatewayConfig::loopback(), vec![config])
        .await
        .unwrap();

    let mut registers = Vec::new();
    let mut options = 0;
    while registers.len() < 2 || options < 2 {
        let (request, from) = receive(&trunk).await;
        let answer = if request.starts_with("REGISTER ") {
            registers.push(request.clone());
            match registers.len() {
                1 => reply(
                    &request,
                    "401 Unauthorized",
                    "WWW-Authenticate: Digest realm=\"t\", nonce=\"n1\"\r\n",
                ),
                _ => reply(&request, "200 OK", "Expires: 600\r\n"),
            }
        } else {
            assert!(request.starts_with("OPTIONS "), "{request}");
            options += 1;
            reply(&request, "200 OK", "")
        };
        trunk.send_to(answer.as_bytes(), from).await.unwrap();
    }
    assert!(!registers[0].contains("Authorization"));
    assert!(
        registers[1].contains("Authorization: Digest username=\"acct\", realm=\"t\", nonce=\"n1\"")
    );
    assert!(registers[1].contains("CSeq: 2 REGISTER"));
    let call_id = |r: &str| {
        r.lines()
            .find(|l| l.starts_with("Call-ID"))
            .unwrap()
            .to_string()
    };
    assert_eq!(call_id(&registers[0]), call_id(&registers[1]));
}

#[tokio::test]
async fn a_trunk_that_stops_answering_options_goes_down_and_calls_fail_over() {
    let primary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let backup = common::carrier(Outcome::Answer, Some(440.0)).await;
    let mut main = TrunkConfig::new("primary", primary.local_addr().unwrap());
    main.options_interval = Some(Duration::from_millis(100));
    main.down_after = 2;
    main.up_after = 2;
    let config = GatewayConfig {
        t1: Duration::from_millis(10),
        ..GatewayConfig::loopback()
    };
    let gw = Gateway::start(
        config,
        vec![main, TrunkConfig::new("backup", backup.sip_addr())],
    )
    .await
    .unwrap();
    let mut health = gw.trunk_events();

    // The primary answers its first ping, then falls silent.
    let (ping, from) = receive(&primary).await;
    assert!(ping.starts_with("OPTIONS "), "{ping}");
    primary
        .send_to(reply(&ping, "200 OK", "").as_bytes(), from)
        .await
        .unwrap();
    let silent = async {
        loop {
            let _ = receive(&primary).await;
        }
    };
    let down = tokio::select! {
        status = health.recv() => status.unwrap(),
        _ = silent => unreachable!("the primary's socket keeps receiving"),
    };
    assert_eq!(
        down,
        TrunkStatus {
            name: "primary".into(),
            up: false,
            active_calls: 0
        }
    );

    // A call for the primary goes to the backup, which is up.
    let mut events = gw.events();
    let call = gw.dial(request("primary", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert_eq!(backup.stats().calls, 1, "the backup took the call");
    gw.hangup(call).await.unwrap();
    // A call for the backup alone, were it down too, would be refused;
    // it is up, and the trunks say so.
    let trunks = gw.trunks().await.unwrap();
    assert_eq!(
        trunks
            .iter()
            .map(|t| (t.name.as_str(), t.up))
            .collect::<Vec<_>>(),
        [("primary", false), ("backup", true)]
    );

    // The primary answers again: after two answers in a row it is back.
    let answering = async {
        loop {
            let (message, from) = receive(&primary).await;
            if message.starts_with("OPTIONS ") {
                let answer = reply(&message, "200 OK", "");
                primary.send_to(answer.as_bytes(), from).await.unwrap();
            }
        }
    };
    let up = tokio::select! {
        status = health.recv() => status.unwrap(),
        _ = answering => unreachable!("the primary's socket keeps receiving"),
    };
    assert!(up.up && up.name == "primary", "{up:?}");
    // And the next call for it goes to it.
    let call = gw.dial(request("primary", LIMIT)).await.unwrap();
    let invite = async {
        loop {
            let (message, _) = receive(&primary).await;
            if message.starts_with("INVITE ") {
                return message;
            }
        }
    };
    let invite = tokio::time::timeout(LIMIT, invite)
        .await
        .expect("an INVITE");
    assert!(invite.contains("+441632960123"), "{invite}");
    gw.hangup(call).await.unwrap();
    assert_eq!(backup.stats().calls, 1, "the backup took nothing more");
}

#[tokio::test]
async fn a_call_is_refused_when_its_trunk_and_those_after_it_are_down() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut only = TrunkConfig::new("only", silent.local_addr().unwrap());
    only.options_interval = Some(Duration::from_millis(50));
    only.down_after = 1;
    let config = GatewayConfig {
        t1: Duration::from_millis(10),
        ..GatewayConfig::loopback()
    };
    let gw = Gateway::start(config, vec![only]).await.unwrap();
    let mut health = gw.trunk_events();
    let down = tokio::time::timeout(LIMIT, health.recv())
        .await
        .expect("the trunk goes down")
        .unwrap();
    assert!(!down.up);
    let refused = gw.dial(request("only", LIMIT)).await;
    assert!(
        matches!(&refused, Err(DialError::TrunksDown(name)) if name == "only"),
        "{refused:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_probe_sees_options_answered_and_credentials_accepted_without_binding() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = TrunkConfig::new("main", peer.local_addr().unwrap());
    config.register = true;
    config.username = Some("acct".into());
    config.password = Secret::new("s3cret");
    let answering = async {
        let mut registers = Vec::new();
        loop {
            let (request, from) = receive_for(&peer, Duration::from_secs(10)).await;
            let answer = if request.starts_with("OPTIONS ") {
                reply(&request, "200 OK", "")
            } else if request.contains("Authorization: Digest") {
                registers.push(request.clone());
                reply(&request, "200 OK", "")
            } else {
                registers.push(request.clone());
                reply(
                    &request,
                    "401 Unauthorized",
                    "WWW-Authenticate: Digest realm=\"t\", nonce=\"n9\"\r\n",
                )
            };
            peer.send_to(answer.as_bytes(), from).await.unwrap();
            if registers.len() == 2 {
                return registers;
            }
        }
    };
    let gateway = GatewayConfig::loopback();
    let (probe, registers) = tokio::join!(
        sip_gateway::gateway::probe_trunk(&gateway, &config, LIMIT),
        answering
    );
    let probe = probe.expect("the trunk answers");
    assert_eq!(probe.options, 200);
    assert_eq!(probe.register, Some(200), "the credentials were accepted");
    for r in &registers {
        assert!(!r.contains("Contact:"), "a query binds nothing: {r}");
        assert!(!r.contains("Expires:"), "{r}");
    }
    assert!(registers[1].contains("username=\"acct\", realm=\"t\", nonce=\"n9\""));
}

#[tokio::test]
async fn a_probe_of_a_silent_or_unknown_trunk_says_what_failed() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = TrunkConfig::new("quiet", silent.local_addr().unwrap());
    let limit = Duration::from_millis(700);
    let e = sip_gateway::gateway::probe_trunk(&GatewayConfig::loopback(), &config, limit)
        .await
        .expect_err("nobody answers");
    assert!(e.to_string().contains("no answer to OPTIONS"), "{e}");
    // A host that cannot be resolved (checked without asking any DNS server).
    let mut unknown = config.clone();
    unknown.host = "127.0.0.1:port".into();
    let e = sip_gateway::gateway::probe_trunk(&GatewayConfig::loopback(), &unknown, limit)
        .await
        .expect_err("a bad host");
    assert!(e.to_string().contains("trunk \"quiet\""), "{e}");
}

async fn receive_for(socket: &UdpSocket, limit: Duration) -> (String, std::net::SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(limit, socket.recv_from(&mut buf))
        .await
        .expect("the probe sends")
        .unwrap();
    (String::from_utf8_lossy(&buf[..n]).to_string(), from)
}
