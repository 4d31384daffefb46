//! The gateway calling agents' registered desk phones, so that a phone is an agent's audio
//! leg: sipp as a phone that registers and answers with its audio echoed (scenarios
//! `tests/sipp/desk_phone_answers*.xml`), over UDP and TCP, bridged to a customer on the
//! simulated carrier; Debian's baresip as a phone that registers, answers with a tone of
//! its own and sends a digit; and a hand-driven phone for what neither can do (challenge
//! the INVITE, drop its connection mid-call).
//!
//! sipp (Debian package `sip-tester`) and baresip must be installed for the tests that run
//! them: under `CI=true` a missing one fails them; elsewhere they are skipped loudly.

#[path = "registrar/baresip.rs"]
mod baresip;
mod common;
#[path = "registrar/phone.rs"]
mod phone;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use baresip::{DeskBaresip, DeskOptions};
use common::{channels, dominant, request, temp_wav, wait_for};
use phone::{Directory, RawPhone, Response, REALM};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    Audio, CallEventKind, CallRef, DialError, EndCause, Gateway, GatewayConfig, GatewayOptions,
    PhoneEventKind, PhoneOptions, TrunkConfig,
};
use sip_gateway::media::tone::sine;
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(10);
const SECRET: &[u8] = b"the nonce secret every node shares";
const ALICE: (&str, &str) = ("alice", "correct horse battery");
const CUSTOMER: f64 = 1000.0;
/// The tone baresip answers with.
const PHONE_TONE: f64 = 697.0;
/// The tone the gateway plays to baresip: neither the customer's nor the phone's.
const GATEWAY_TONE: f64 = 1400.0;
/// Where the phones are: not the carrier's address, so nothing of theirs passes as a trunk's.
const PHONE_IP: &str = "127.0.0.2";

/// A gateway taking desk phones, with one trunk "customer" to a carrier answering with
/// [`CUSTOMER`] Hz; challenging phones with MD5 alone when `md5_only`.
async fn gateway(md5_only: bool) -> (Gateway, Carrier) {
    let customer = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        audio: CarrierAudio::Tone(CUSTOMER),
        ..CarrierConfig::default()
    })
    .await
    .unwrap();
    let directory = Arc::new(Directory::with(&[ALICE]));
    let mut phones = PhoneOptions::new(REALM, SECRET, directory).unwrap();
    phones.registrar.md5_only = md5_only;
    let config = GatewayConfig {
        t1: Duration::from_millis(100),
        ..GatewayConfig::loopback()
    };
    let trunks = vec![TrunkConfig::new("customer", customer.sip_addr())];
    let options = GatewayOptions {
        phones: Some(phones),
    };
    let gw = Gateway::start_with(config, trunks, options).await.unwrap();
    (gw, customer)
}

/// Waits until a phone has registered with `gw`.
async fn registered(
    events: &mut tokio::sync::broadcast::Receiver<sip_gateway::gateway::PhoneEvent>,
) {
    let event = tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("the phone registers in time")
        .unwrap();
    assert!(
        matches!(event.kind, PhoneEventKind::Registered(_)),
        "{event:?}"
    );
}

/// sipp as a desk phone that registers and answers one call; killed if the test ends early.
struct SippPhone {
    child: Child,
    log: PathBuf,
}

impl SippPhone {
    /// Starts the phone against `gw` over UDP, or TCP when `tcp`; `None` when sipp is
    /// absent outside CI.
    async fn start(gw: &Gateway, tcp: bool) -> Option<SippPhone> {
        let installed = Command::new("sipp")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok();
        if !installed {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "sipp is not installed (Debian sip-tester) and CI=true");
            eprintln!("!!! SKIPPING desk phone test: sipp is not installed (apt-get install sip-tester) !!!");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sipp");
        let log = temp_wav("sipp-desk-phone").with_extension("log");
        let (remote, transport) = match tcp {
            true => (gw.sip_tcp_addr().expect("TCP is on"), "t1"),
            false => (gw.sip_udp_addr(), "u1"),
        };
        let (user, password) = ALICE;
        let child = Command::new("sipp")
            .arg(remote.to_string())
            .arg("-sf")
            .arg(dir.join("desk_phone_answers.xml"))
            .arg("-oocsf")
            .arg(dir.join("desk_phone_answers_call.xml"))
            .args(["-s", user, "-au", user, "-ap", password, "-t", transport])
            .args(["-i", PHONE_IP, "-p", &free_port(1).to_string()])
            .args(["-mp", &free_port(4).to_string(), "-rtp_echo"])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&log)
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(log.with_extension("msg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Some(SippPhone { child, log })
    }

    /// Waits for sipp to finish and asserts the scenario passed.
    async fn passed(mut self) {
        let status = tokio::time::timeout(LIMIT * 2, self.child.wait())
            .await
            .expect("sipp finishes its scenario")
            .unwrap();
        let errors = std::fs::read_to_string(&self.log).unwrap_or_default();
        let messages = std::fs::read_to_string(self.log.with_extension("msg")).unwrap_or_default();
        assert!(
            status.success(),
            "sipp scenario failed ({status}): {errors}\n{messages}"
        );
    }
}

/// Returns the first of `count` consecutive ports (even when more than one) free for UDP
/// and TCP at [`PHONE_IP`].
fn free_port(count: u16) -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind((PHONE_IP, 0)).unwrap();
        let port = match count {
            1 => probe.local_addr().unwrap().port(),
            _ => probe.local_addr().unwrap().port() & !1,
        };
        drop(probe);
        let free = (0..count).all(|i| {
            std::net::UdpSocket::bind((PHONE_IP, port + i)).is_ok()
                && std::net::TcpListener::bind((PHONE_IP, port + i)).is_ok()
        });
        if port > 1024 && free {
            return port;
        }
    }
}

/// The gateway calls sipp's phone, bridges it to a customer and checks, in the customer
/// call's recording, that the customer's tone reached the phone and came back.
async fn a_desk_phone_carries_a_customer_call(tcp: bool) {
    // sipp 3.6 answers the first challenge and knows only MD5.
    let (gw, customer) = gateway(true).await;
    let mut phone_events = gw.phone_events();
    let mut events = gw.events();
    let Some(sipp) = SippPhone::start(&gw, tcp).await else {
        return;
    };
    registered(&mut phone_events).await;

    let phone = gw
        .call_phone("alice", CallRef::random(), LIMIT)
        .await
        .expect("the phone is called");
    let seen = wait_for(&mut events, phone, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");

    let call = gw.dial(request("customer", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    let path = temp_wav("desk-phone");
    gw.record(call, &path).await.expect("records");
    gw.bridge(call, phone).await.expect("bridges");
    tokio::time::sleep(Duration::from_secs(2)).await;
    gw.hangup(call).await.expect("hangs the customer up");
    let seen = wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    let (left, right) = channels(&path);
    assert_eq!(dominant(&right), Some(CUSTOMER), "the customer's tone");
    assert_eq!(
        dominant(&left[left.len() / 2..]),
        Some(CUSTOMER),
        "the customer's tone, echoed back by the phone"
    );

    // The phone stays up for the agent's next customer until hung up itself.
    gw.hangup(phone).await.expect("hangs the phone up");
    let seen = wait_for(&mut events, phone, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    sipp.passed().await;
    drop(customer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_phone_over_udp_carries_a_customer_call_both_ways() {
    a_desk_phone_carries_a_customer_call(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_phone_over_tcp_is_called_through_its_own_connection() {
    a_desk_phone_carries_a_customer_call(true).await;
}

/// baresip registers as alice with digest, the gateway calls it and it answers at once.
/// Each side's tone must reach the other: baresip's, played by aufile from a WAV, in the
/// gateway's recording of the call; the gateway's, played with `Gateway::play`, in what
/// baresip heard. baresip 1.0's `aufile` module registers an audio source only: given
/// `audio_player aufile,<path>`, its player fails to start ("start_player failed …: No
/// such file or directory") and it never answers. So what baresip heard is read from the
/// dump its `sndfile` filter writes of the audio it decoded. A digit baresip sends
/// (RFC 4733, its `sndcode` command) must arrive as a `Dtmf` event, and the gateway's
/// hang-up must end baresip's call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_answers_and_carries_audio_and_a_digit_both_ways() {
    // baresip 1.0 gives up on challenges with SHA-256 among them.
    let (gw, _customer) = gateway(true).await;
    let mut phone_events = gw.phone_events();
    let mut events = gw.events();
    let dir = temp_wav("baresip-desk-phone").with_extension("d");
    let options = DeskOptions {
        ip: Some(PHONE_IP.parse().unwrap()),
        answer_with: Some(PHONE_TONE),
    };
    let Some(mut baresip) = DeskBaresip::start_with(&dir, &gw, ALICE, options).await else {
        return;
    };
    let event = tokio::time::timeout(LIMIT, phone_events.recv())
        .await
        .unwrap_or_else(|_| panic!("baresip registers; its log:\n{}", baresip.log()))
        .unwrap();
    assert!(
        matches!(event.kind, PhoneEventKind::Registered(_)),
        "{event:?}"
    );

    let phone = gw
        .call_phone("alice", CallRef::random(), LIMIT)
        .await
        .expect("the phone is called");
    let seen = wait_for(&mut events, phone, LIMIT, |k| {
        *k == CallEventKind::Answered || matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Answered),
        "baresip answers; its log:\n{}",
        baresip.log()
    );
    baresip.call_event("CALL_ESTABLISHED").await;

    let path = temp_wav("baresip-desk-phone");
    gw.record(phone, &path).await.expect("records");
    let tone = sine(GATEWAY_TONE, 8000, 8000, 16000);
    gw.play(phone, Audio::Samples(tone.into()))
        .await
        .expect("plays");
    baresip.command("sndcode", "7").await;
    let seen = wait_for(&mut events, phone, LIMIT, |k| {
        *k == CallEventKind::PlaybackFinished
    })
    .await;
    assert!(
        seen.contains(&CallEventKind::Dtmf { digit: '7' }),
        "baresip's digit arrives: {seen:?}"
    );

    gw.hangup(phone).await.expect("hangs the phone up");
    let seen = wait_for(&mut events, phone, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    baresip.call_event("CALL_CLOSED").await;

    let (left, right) = channels(&path);
    assert_eq!(
        dominant(&left),
        Some(GATEWAY_TONE),
        "the tone the gateway sent"
    );
    assert_eq!(
        dominant(&right),
        Some(PHONE_TONE),
        "baresip's tone reached the gateway"
    );
    let heard = baresip.heard().await;
    assert_eq!(
        dominant(&heard),
        Some(GATEWAY_TONE),
        "the gateway's tone reached baresip"
    );
}

#[tokio::test]
async fn a_phone_that_is_not_registered_cannot_be_called() {
    let (gw, _customer) = gateway(false).await;
    let mut events = gw.events();
    let result = gw.call_phone("alice", CallRef::random(), LIMIT).await;
    assert!(
        matches!(result, Err(DialError::PhoneNotRegistered)),
        "{result:?}"
    );
    let result = gw.call_phone("nobody", CallRef::random(), LIMIT).await;
    assert!(matches!(result, Err(DialError::PhoneNotRegistered)));
    // Without desk phones at all, no more.
    let plain = Gateway::start(GatewayConfig::loopback(), Vec::new())
        .await
        .unwrap();
    let result = plain.call_phone("alice", CallRef::random(), LIMIT).await;
    assert!(matches!(result, Err(DialError::PhoneNotRegistered)));
    assert!(events.try_recv().is_err(), "no call was started");
}

/// Registers a hand-driven phone as alice and returns it with the INVITE the gateway
/// sends it when called, and the call.
async fn called(gw: &Gateway, tcp: bool) -> (RawPhone, Response, CallRef) {
    let mut phone_events = gw.phone_events();
    let (user, password) = ALICE;
    let mut phone = match tcp {
        true => RawPhone::tcp_from(PHONE_IP, gw.sip_tcp_addr().unwrap(), user, password).await,
        false => RawPhone::udp(PHONE_IP, gw.sip_udp_addr(), user, password).await,
    };
    assert_eq!(phone.register_fully(600).await.status(), 200);
    registered(&mut phone_events).await;
    let call = gw
        .call_phone("alice", CallRef::random(), LIMIT)
        .await
        .unwrap();
    let invite = phone.recv().await;
    (phone, invite, call)
}

/// Builds the phone's response to the gateway's INVITE.
fn answer(invite: &Response, status: u16, extra: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {status} Whatever\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for value in invite.headers(name) {
            let value = match name {
                "To" => format!("{value};tag=phone1"),
                _ => value,
            };
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str(extra);
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

#[tokio::test]
async fn a_phone_that_challenges_the_invite_ends_the_call() {
    let (gw, _customer) = gateway(false).await;
    let mut events = gw.events();
    let (mut phone, invite, call) = called(&gw, false).await;
    assert!(invite.0.starts_with("INVITE sip:alice@"), "{}", invite.0);
    assert_eq!(invite.headers("To"), vec![format!("<sip:alice@{REALM}>")]);
    let challenge = "WWW-Authenticate: Digest realm=\"phone\", nonce=\"0123\"\r\n";
    phone.send(&answer(&invite, 401, challenge, "")).await;
    let seen = wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::AuthenticationFailed
        })
    );
    let ack = phone.recv().await;
    assert!(ack.0.starts_with("ACK "), "only an ACK follows: {}", ack.0);
    assert!(
        phone.try_recv(Duration::from_millis(500)).await.is_none(),
        "no second INVITE"
    );
}

#[tokio::test]
async fn a_phone_whose_connection_closes_mid_call_ends_it() {
    let (gw, _customer) = gateway(false).await;
    let mut events = gw.events();
    let (mut phone, invite, call) = called(&gw, true).await;
    let local = phone.local();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 8\r\na=sendrecv\r\n";
    let contact = format!("Contact: <sip:alice@{local};transport=tcp>\r\n");
    phone.send(&answer(&invite, 200, &contact, sdp)).await;
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    drop(phone);
    let seen = wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::TrunkFailure
        })
    );
}
