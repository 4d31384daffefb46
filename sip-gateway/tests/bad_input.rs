//! Strangers and malformed packets: 403 or 400 or silence, never a crash or lingering state.

use std::time::Duration;

use sip_gateway::gateway::{Gateway, GatewayConfig, TrunkConfig};
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(3);

fn options(from: std::net::SocketAddr, branch: &str) -> String {
    format!(
        "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{branch}\r\n\
         From: <sip:probe@{from}>;tag=1\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: {branch}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn status_of(socket: &UdpSocket) -> u16 {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(LIMIT, socket.recv_from(&mut buf))
        .await
        .expect("the gateway answers")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

#[tokio::test]
async fn strangers_get_403_and_malformed_trunk_packets_get_400_or_nothing() {
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk_addr = trunk.local_addr().unwrap();
    let gw = Gateway::start(
        GatewayConfig::loopback(),
        vec![TrunkConfig::new("t", trunk_addr)],
    )
    .await
    .unwrap();
    let gateway = gw.sip_udp_addr();

    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    let invite = options(stranger_addr, "s1").replace("OPTIONS", "INVITE");
    stranger.send_to(invite.as_bytes(), gateway).await.unwrap();
    assert_eq!(status_of(&stranger).await, 403);
    stranger.send_to(b"\x00\xffgarbage", gateway).await.unwrap();
    stranger
        .send_to(options(stranger_addr, "s2").as_bytes(), gateway)
        .await
        .unwrap();
    assert_eq!(
        status_of(&stranger).await,
        403,
        "garbage from a stranger got no answer"
    );

    let bad_length = options(trunk_addr, "t1").replace("Content-Length: 0", "Content-Length: 40");
    trunk.send_to(bad_length.as_bytes(), gateway).await.unwrap();
    assert_eq!(status_of(&trunk).await, 400);
    let missing_call_id = options(trunk_addr, "t2").replace("Call-ID: t2\r\n", "");
    for junk in [
        b"\r\n\r\n".to_vec(),
        vec![0xff; 3000],
        b"SIP/2.0 200\r\n".to_vec(),
        missing_call_id.into_bytes(),
    ] {
        trunk.send_to(&junk, gateway).await.unwrap();
    }
    trunk
        .send_to(options(trunk_addr, "t3").as_bytes(), gateway)
        .await
        .unwrap();
    assert_eq!(
        status_of(&trunk).await,
        200,
        "junk got no answer, and the gateway still serves"
    );
}

#[tokio::test]
async fn a_stranger_flooding_the_port_gets_few_answers_and_the_trunk_all_of_its() {
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk_addr = trunk.local_addr().unwrap();
    let gw = Gateway::start(
        GatewayConfig::loopback(),
        vec![TrunkConfig::new("t", trunk_addr)],
    )
    .await
    .unwrap();
    let gateway = gw.sip_udp_addr();
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    // Far more than a stranger may have answered in a second, at about
    // 10,000 a second (a faster burst overflows the kernel's socket buffer,
    // which drops from everyone alike), with the provider's own requests
    // among them.
    for i in 0..1000 {
        let probe = options(stranger_addr, &format!("flood{i}"));
        stranger.send_to(probe.as_bytes(), gateway).await.unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i % 100 == 0 {
            let own = options(trunk_addr, &format!("own{i}"));
            trunk.send_to(own.as_bytes(), gateway).await.unwrap();
        }
    }
    let mut answered = 0;
    for _ in 0..10 {
        assert_eq!(
            status_of(&trunk).await,
            200,
            "every provider request is answered"
        );
    }
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(300), stranger.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    // Within the burst's second or two, at most two seconds' budget.
    assert!(
        (1..=100).contains(&answered),
        "{answered} answers to a stranger's 1000 requests"
    );
}
