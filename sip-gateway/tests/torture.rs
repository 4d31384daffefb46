//! RFC 4475 torture messages against the SIP parser and a running gateway.
//!
//! Each message in `tests/rfc4475/` is parsed with [`parse_message`], the entry point of the
//! transport, and sent over UDP to a gateway from an address of its trunk. The table below
//! says, per message, what the RFC expects: a valid message parses (with a spot check of what
//! makes it tricky) and gets the answer our UAS gives its method; an invalid request gets 400
//! or the status the RFC names; a response or garbage gets no answer. After every message an
//! OPTIONS probe must be answered, so no message stalls the gateway, and at the end the
//! gateway still places a call.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{request, wait_for};
use rsip::SipMessage;
use sip_gateway::carrier::Outcome;
use sip_gateway::gateway::{CallEventKind, Gateway, GatewayConfig, TrunkConfig};
use sip_gateway::sip::message::{header_values, param, split_list};
use sip_gateway::sip::parse::{bad_request_response, MAX_MESSAGE_SIZE};
use sip_gateway::sip::{parse_message, ParseError};
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(5);

/// What the parser makes of a message.
#[derive(Debug, Clone, Copy)]
enum Parsed {
    /// A request with this method.
    Request(&'static str),
    /// A response with this status.
    Response(u16),
    /// An error whose status (for a request) is this.
    Rejected(u16),
}

/// What the gateway sends back to the message's sender.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// A response with this status.
    Status(u16),
    /// Nothing.
    Silence,
}

struct Case {
    name: &'static str,
    section: &'static str,
    parsed: Parsed,
    answer: Answer,
}

use Answer::{Silence, Status};
use Parsed::{Rejected, Request, Response};

/// Every message of RFC 4475, with the outcome it expects of a UAS that, like ours, answers
/// a fresh INVITE with 404 (this gateway has no taker for offered calls), one naming a dialog
/// that does not exist (a To tag) with 481, OPTIONS with 200 and methods it does not
/// implement with 405.
/// Where the RFC lets an element be liberal (badaspec, baddn, baddate, regbadct, badbranch)
/// we accept the message; where it says "ideally 400" for a request with no From, To or Call-ID
/// (insuf), we stay silent, since such a response could not be matched either.
const CASES: &[Case] = &[
    // 3.1.1 valid messages
    case("wsinv", "3.1.1.1", Request("INVITE"), Status(481)),
    case("intmeth", "3.1.1.2", Rejected(501), Status(501)),
    case("esc01", "3.1.1.3", Request("INVITE"), Status(404)),
    case("escnull", "3.1.1.4", Request("REGISTER"), Status(405)),
    case("esc02", "3.1.1.5", Rejected(501), Status(501)),
    case("lwsdisp", "3.1.1.6", Request("OPTIONS"), Status(200)),
    case("longreq", "3.1.1.7", Request("INVITE"), Status(404)),
    case("dblreq", "3.1.1.8", Request("REGISTER"), Status(405)),
    case("semiuri", "3.1.1.9", Request("OPTIONS"), Status(200)),
    case("transports", "3.1.1.10", Request("OPTIONS"), Status(200)),
    case("mpart01", "3.1.1.11", Request("MESSAGE"), Status(405)),
    case("unreason", "3.1.1.12", Response(200), Silence),
    case("noreason", "3.1.1.13", Response(100), Silence),
    // 3.1.2 invalid messages
    case("badinv01", "3.1.2.1", Rejected(400), Status(400)),
    case("clerr", "3.1.2.2", Rejected(400), Status(400)),
    case("ncl", "3.1.2.3", Rejected(400), Status(400)),
    case("scalar02", "3.1.2.4", Rejected(400), Status(400)),
    case("scalarlg", "3.1.2.5", Rejected(400), Silence),
    case("quotbal", "3.1.2.6", Rejected(400), Status(400)),
    case("ltgtruri", "3.1.2.7", Rejected(400), Status(400)),
    case("lwsruri", "3.1.2.8", Rejected(400), Status(400)),
    case("lwsstart", "3.1.2.9", Rejected(400), Status(400)),
    case("trws", "3.1.2.10", Rejected(400), Status(400)),
    case("escruri", "3.1.2.11", Rejected(400), Status(400)),
    case("baddate", "3.1.2.12", Request("INVITE"), Status(404)),
    case("regbadct", "3.1.2.13", Request("REGISTER"), Status(405)),
    case("badaspec", "3.1.2.14", Request("OPTIONS"), Status(200)),
    case("baddn", "3.1.2.15", Request("OPTIONS"), Status(200)),
    case("badvers", "3.1.2.16", Rejected(505), Status(505)),
    case("mismatch01", "3.1.2.17", Rejected(400), Status(400)),
    case("mismatch02", "3.1.2.18", Rejected(501), Status(501)),
    case("bigcode", "3.1.2.19", Rejected(400), Silence),
    // 3.2 transaction layer
    case("badbranch", "3.2.1", Request("OPTIONS"), Status(200)),
    // 3.3 application layer
    case("insuf", "3.3.1", Rejected(400), Silence),
    case("unkscm", "3.3.2", Rejected(416), Status(416)),
    case("novelsc", "3.3.3", Rejected(416), Status(416)),
    case("unksm2", "3.3.4", Request("REGISTER"), Status(405)),
    case("bext01", "3.3.5", Request("OPTIONS"), Status(420)),
    case("invut", "3.3.6", Request("INVITE"), Status(415)),
    case("regaut01", "3.3.7", Request("REGISTER"), Status(405)),
    case("multi01", "3.3.8", Rejected(400), Status(400)),
    case("mcl01", "3.3.9", Rejected(400), Status(400)),
    case("bcast", "3.3.10", Response(200), Silence),
    case("zeromf", "3.3.11", Request("OPTIONS"), Status(200)),
    case("cparam01", "3.3.12", Request("REGISTER"), Status(405)),
    case("cparam02", "3.3.13", Request("REGISTER"), Status(405)),
    case("regescrt", "3.3.14", Request("REGISTER"), Status(405)),
    case("sdp01", "3.3.15", Request("INVITE"), Status(406)),
    // 3.4 backward compatibility
    case("inv2543", "3.4.1", Request("INVITE"), Status(404)),
];

const fn case(name: &'static str, section: &'static str, parsed: Parsed, answer: Answer) -> Case {
    Case {
        name,
        section,
        parsed,
        answer,
    }
}

fn message(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/rfc4475/{name}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_rfc4475_message_is_in_the_table() {
    let dir = format!("{}/tests/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".dat").map(str::to_string))
        .collect();
    files.sort();
    let mut names: Vec<String> = CASES.iter().map(|c| c.name.to_string()).collect();
    names.sort();
    assert_eq!(files, names);
    assert_eq!(CASES.len(), 49, "RFC 4475 has 49 messages");
}

#[test]
fn the_parser_accepts_the_valid_and_rejects_the_invalid() {
    for case in CASES {
        let bytes = message(case.name);
        let result = parse_message(&bytes);
        let what = format!("{} ({})", case.name, case.section);
        match (case.parsed, &result) {
            (Request(method), Ok(SipMessage::Request(r))) => {
                assert_eq!(r.method.to_string(), method, "{what}")
            }
            (Response(status), Ok(SipMessage::Response(r))) => {
                assert_eq!(r.status_code.code(), status, "{what}")
            }
            (Rejected(status), Err(error)) => assert_eq!(error.status(), status, "{what}: {error}"),
            (expected, got) => panic!("{what}: expected {expected:?}, got {got:?}"),
        }
        if let Ok(parsed) = result {
            spot_check(case.name, &parsed);
        }
    }
}

/// Checks the field that makes each valid message tricky.
fn spot_check(name: &str, message: &SipMessage) {
    let (headers, body) = match message {
        SipMessage::Request(r) => (&r.headers, &r.body),
        SipMessage::Response(r) => (&r.headers, &r.body),
    };
    let one = |n: &str| header_values(headers, n).remove(0);
    let vias: Vec<String> = header_values(headers, "Via")
        .iter()
        .flat_map(|v| split_list(v))
        .collect();
    let uri = match message {
        SipMessage::Request(r) => r.uri.to_string(),
        SipMessage::Response(_) => String::new(),
    };
    match name {
        "wsinv" => {
            // Folded lines, LWS everywhere, compact and long Via forms mixed.
            assert_eq!(uri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
            assert_eq!(param(&one("To"), "tag"), Some("1918181833n"));
            assert_eq!(param(&one("From"), "tag"), Some("98asjd8"));
            assert_eq!(one("CSeq"), "0009 INVITE");
            assert_eq!(vias.len(), 3, "{vias:?}");
            assert_eq!(vias[0], "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw");
            assert_eq!(vias[2], "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239");
            assert_eq!(
                one("NewFangledHeader"),
                "newfangled value continued newfangled value"
            );
            assert_eq!(one("Subject"), "");
            assert_eq!(body.len(), 150);
        }
        "esc01" => {
            assert_eq!(uri, "sip:sips%3Auser%40example.com@example.net");
            assert_eq!(one("To"), "sip:%75se%72@example.com");
            assert_eq!(one("Call-ID"), "esc01.239409asdfakjkn23onasd0-3234");
        }
        "escnull" => {
            assert_eq!(one("To"), "sip:null-%00-null@example.com");
            assert_eq!(header_values(headers, "Contact").len(), 2);
        }
        "lwsdisp" => assert_eq!(one("From"), "caller<sip:caller@example.com>;tag=323"),
        "longreq" => {
            assert_eq!(vias.len(), 34);
            assert_eq!(param(&one("From"), "tag").map(str::len), Some(155));
            assert_eq!(body.len(), 150);
        }
        "dblreq" => {
            // The INVITE after the REGISTER's empty body is noise (RFC 3261 §18.3).
            assert_eq!(one("Call-ID"), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
            assert!(body.is_empty());
        }
        "semiuri" => {
            // The user part is "user;par=u@example.net", escaped so its ';' is not a parameter.
            assert_eq!(uri, "sip:user%3Bpar=u%40example.net@example.com");
            assert_eq!(split_list(&one("Accept")).len(), 6);
        }
        "transports" => {
            assert_eq!(vias.len(), 5);
            assert!(vias[3].starts_with("SIP/2.0/UNKNOWN "));
        }
        "mpart01" => {
            assert_eq!(body.len(), 463);
            assert!(body.contains(&0), "the binary part keeps its NULs");
        }
        "unreason" | "bcast" => assert_eq!(body.len(), 154),
        "badbranch" => assert_eq!(param(&vias[0], "branch"), Some("z9hG4bK")),
        "inv2543" => {
            assert_eq!(param(&vias[0], "branch"), None);
            assert_eq!(body.len(), 105);
        }
        _ => {}
    }
}

#[test]
fn oversized_requests_get_413() {
    let mut bytes = message("lwsdisp");
    bytes.resize(MAX_MESSAGE_SIZE + 1, b'x');
    assert!(matches!(
        parse_message(&bytes),
        Err(ParseError::TooLarge(_))
    ));
    let reply = bad_request_response(&bytes, "too large").expect("an answer");
    assert!(reply.starts_with(b"SIP/2.0 413 "));
}

#[tokio::test]
async fn the_gateway_answers_each_message_as_the_rfc_expects_and_still_calls() {
    let carrier = common::carrier(Outcome::Answer, None).await;
    let t1 = Duration::from_millis(10);
    let config = GatewayConfig {
        t1,
        ..GatewayConfig::loopback()
    };
    // The messages come from a trunk of their own, as answers go to a trunk's address.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunks = vec![
        TrunkConfig::new("torture", socket.local_addr().unwrap()),
        TrunkConfig::new("sim", carrier.sip_addr()),
    ];
    let gw = Gateway::start(config, trunks).await.unwrap();
    let gateway = gw.sip_udp_addr();
    let mut answers: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let mut keys = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let bytes = message(case.name);
        // cparam02 repeats cparam01's branch, sent-by and method: RFC 3261 §17.2.3 makes it a
        // retransmission of that transaction, so it goes only once that one has ended.
        let key = transaction_key(&bytes);
        if keys.contains(&key) {
            tokio::time::sleep(t1 * 64 + Duration::from_millis(100)).await;
            keys.clear();
        }
        keys.push(key);
        socket.send_to(&bytes, gateway).await.unwrap();
        let probe = format!("probe-{i}");
        socket
            .send_to(
                options(&probe, socket.local_addr().unwrap()).as_bytes(),
                gateway,
            )
            .await
            .unwrap();
        collect_until(&socket, &probe, &mut answers).await;
        let what = format!("{} ({})", case.name, case.section);
        let got = call_id_of(&message(case.name)).and_then(|id| answers.get(&id).cloned());
        match case.answer {
            Status(status) => {
                let got = got.unwrap_or_else(|| panic!("{what}: no answer"));
                assert_eq!(got[0], status, "{what}");
            }
            Silence => assert_eq!(got, None, "{what}: answered"),
        }
        assert_eq!(answers.get(&probe), Some(&vec![200]), "{what}: probe");
    }
    assert!(
        !answers.contains_key(""),
        "an answer without Call-ID: {answers:?}"
    );

    let mut events = gw.events();
    let call = gw.dial(request("sim", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    gw.hangup(call).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
}

/// Reads answers until the probe's, noting the statuses each Call-ID was answered with.
async fn collect_until(socket: &UdpSocket, probe: &str, answers: &mut BTreeMap<String, Vec<u16>>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = tokio::time::timeout(LIMIT, socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no answer to {probe}: the gateway stalled"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        if !text.starts_with("SIP/2.0 ") {
            continue; // a request of the gateway's own, such as a keepalive
        }
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a response: {text}"));
        let id = call_id_of(&buf[..n]).unwrap_or_default();
        let seen = answers.entry(id.clone()).or_default();
        // A retransmitted final response repeats the status it had; keep the first of each.
        if !seen.contains(&status) {
            seen.push(status);
        }
        if id == probe {
            return;
        }
    }
}

/// Returns a request's method and its first Via line, which a server transaction is known by.
fn transaction_key(bytes: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(bytes);
    let method = text.split(' ').next().unwrap_or("").to_string();
    let via = text
        .split("\r\n")
        .find(|l| l.starts_with("Via:") || l.starts_with("v:"))
        .unwrap_or("")
        .to_string();
    (method, via)
}

/// Returns the first Call-ID of raw message bytes, long or compact form.
fn call_id_of(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim().to_string())
    })
}

fn options(call_id: &str, from: SocketAddr) -> String {
    format!(
        "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call_id}\r\n\
         From: <sip:probe@{from}>;tag=1\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}
