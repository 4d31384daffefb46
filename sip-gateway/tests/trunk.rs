//! Trunk upkeep: registration with a digest challenge, and OPTIONS keepalives.

use std::time::Duration;

use sip_gateway::gateway::{Gateway, GatewayConfig, Secret, TrunkConfig};
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
