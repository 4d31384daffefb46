//! Privacy on the wire: everything a trunk receives during a call placed for a known contact.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{request, wait_for};
use sip_gateway::gateway::{Audio, CallEventKind, Gateway, GatewayConfig, TrunkConfig};
use sip_gateway::media::tone::sine;
use sip_gateway::sip::outbound::INVITE_HEADERS;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(5);

/// A contact as the CRM holds it; only the phone number may reach the trunk.
struct Contact {
    name: &'static str,
    email: &'static str,
    address: &'static str,
    notes: &'static str,
    contact_id: &'static str,
    lead_id: &'static str,
    account_id: &'static str,
    phone: &'static str,
}

const CONTACT: Contact = Contact {
    name: "Margaret Thistlewood",
    email: "m.thistlewood@example.org",
    address: "42 Wallaby Way, Sydney",
    notes: "Prefers afternoons; disputed invoice INV-20931",
    contact_id: "99812345",
    lead_id: "7712340",
    account_id: "5f1e0c7a-9b2d-4c1e-8f00-3a6b1d2e4c55",
    phone: "+441632960777",
};

/// Plays a trunk that answers, recording every datagram it receives on SIP and RTP.
async fn capture_trunk(sip: UdpSocket, rtp: UdpSocket, captured: mpsc::UnboundedSender<Vec<u8>>) {
    let rtp_addr = rtp.local_addr().unwrap();
    let rtp_capture = captured.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = rtp.recv_from(&mut buf).await {
            let _ = rtp_capture.send(buf[..n].to_vec());
        }
    });
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = sip.recv_from(&mut buf).await {
        let bytes = buf[..n].to_vec();
        let _ = captured.send(bytes.clone());
        let text = String::from_utf8_lossy(&bytes).to_string();
        let replies = match text.split(' ').next().unwrap_or("") {
            "INVITE" => vec![
                reply(&text, "180 Ringing", ""),
                reply(&text, "200 OK", &sdp(rtp_addr)),
            ],
            "BYE" | "OPTIONS" => vec![reply(&text, "200 OK", "")],
            _ => vec![],
        };
        for r in replies {
            sip.send_to(r.as_bytes(), from).await.unwrap();
        }
    }
}

fn reply(request: &str, status: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("");
        if ["Via", "From", "Call-ID", "CSeq"].contains(&name) {
            out.push_str(line);
            out.push_str("\r\n");
        } else if name == "To" {
            let tagged = if line.contains(";tag=") {
                line.to_string()
            } else {
                format!("{line};tag=capture1")
            };
            out.push_str(&tagged);
            out.push_str("\r\n");
        }
    }
    out.push_str("Contact: <sip:trunk@127.0.0.1>\r\n");
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

fn sdp(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=sendrecv\r\n",
        rtp.port()
    )
}

fn header_names(message: &str) -> Vec<String> {
    message
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .split("\r\n")
        .skip(1)
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_trunk_receives_nothing_of_the_contact_but_the_number() {
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk = TrunkConfig::new("capture", sip.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(capture_trunk(sip, rtp, tx));
    let gw = Gateway::start(GatewayConfig::loopback(), vec![trunk])
        .await
        .unwrap();
    let mut events = gw.events();
    let mut dial = request("capture", LIMIT);
    dial.number = CONTACT.phone.into();
    let call_ref = dial.call_ref;
    let call = gw.dial(dial).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    let tone = sine(440.0, 8000, 8000, 1600);
    gw.play(call, Audio::Samples(tone.into())).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| {
        *k == CallEventKind::PlaybackFinished
    })
    .await;
    gw.hangup(call).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    drop(gw);

    let mut datagrams = Vec::new();
    while let Ok(d) = rx.try_recv() {
        datagrams.push(d);
    }
    let sip: Vec<String> = datagrams
        .iter()
        .filter(|d| d.starts_with(b"INVITE ") || d.starts_with(b"ACK ") || d.starts_with(b"BYE "))
        .map(|d| String::from_utf8(d.clone()).expect("SIP from the gateway is text"))
        .collect();
    assert!(datagrams.len() > sip.len() + 5, "RTP was captured too");
    let wire: Vec<u8> = datagrams.concat();
    let wire_text = String::from_utf8_lossy(&wire).to_lowercase();
    let secrets = [
        CONTACT.name,
        "thistlewood",
        "margaret",
        CONTACT.email,
        CONTACT.address,
        "wallaby",
        CONTACT.notes,
        "INV-20931",
        CONTACT.contact_id,
        CONTACT.lead_id,
        CONTACT.account_id,
        "5f1e0c7a",
    ];
    for secret in secrets {
        assert!(
            !wire_text.contains(&secret.to_lowercase()),
            "{secret:?} reached the trunk"
        );
    }
    let reference = call_ref.to_string();
    assert!(
        !wire_text.contains(&reference[..12]),
        "the call reference reached the trunk"
    );

    let invite = &sip[0];
    assert!(invite.starts_with(&format!("INVITE sip:{}@127.0.0.1:", CONTACT.phone)));
    let mut expected: Vec<&str> = INVITE_HEADERS
        .iter()
        .copied()
        .filter(|h| !h.ends_with("Authorization"))
        .collect();
    expected.push("Content-Length");
    assert_eq!(
        header_names(invite),
        expected,
        "INVITE headers are exactly the whitelist"
    );
    for message in &sip {
        for line in message
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .split("\r\n")
            .skip(1)
        {
            let (name, value) = line.split_once(": ").unwrap();
            assert!(
                INVITE_HEADERS.contains(&name) || ["Content-Length", "Route"].contains(&name),
                "{name} is outside the whitelist"
            );
            check_value(name, value);
        }
    }
}

/// Asserts that a header value holds only the number, caller ID, addresses and random ids.
fn check_value(name: &str, value: &str) {
    let hex_param = |v: &str, p: &str| {
        v.split(';')
            .find_map(|x| x.strip_prefix(&format!("{p}=")))
            .is_none_or(|x| {
                x.trim_start_matches("z9hG4bK")
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
            })
    };
    match name {
        "From" => {
            let caller = request("x", LIMIT).caller_id;
            assert!(
                value.starts_with(&format!("<sip:{caller}@127.0.0.1>")),
                "From: {value}"
            );
            assert!(hex_param(value, "tag"));
        }
        "To" => {
            assert!(
                value.starts_with(&format!("<sip:{}@127.0.0.1>", CONTACT.phone)),
                "To: {value}"
            );
        }
        "Call-ID" => assert!(value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())),
        "Via" => assert!(value.starts_with("SIP/2.0/UDP 127.0.0.1:") && hex_param(value, "branch")),
        "Contact" => assert!(value.starts_with("<sip:127.0.0.1:"), "Contact: {value}"),
        _ => {}
    }
}
