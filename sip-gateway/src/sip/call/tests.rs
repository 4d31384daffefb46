//! Call state machine tests on a virtual clock, with the test playing the trunk.

use std::time::{Duration, Instant};

use rsip::SipMessage;

use super::*;
use crate::sip::digest::Credentials;
use crate::sip::message::{header_value, param};
use crate::sip::outbound::tests::trunk;
use crate::sip::sdp::{Codec, Direction};

const ANSWER_SDP: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n\
    t=0 0\r\nm=audio 30000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn params(credentials: Option<Credentials>) -> CallParams {
    CallParams {
        number: "+441234567890".into(),
        caller_id: "+442070000000".into(),
        trunk: trunk(),
        credentials,
        ring_timeout: Duration::from_secs(30),
        local_sip: "192.0.2.10:5060".parse().unwrap(),
        local_rtp: "192.0.2.10:40000".parse().unwrap(),
        timers: TimerConfig::default(),
        srtp: None,
    }
}

fn creds() -> Credentials {
    Credentials {
        username: "acct".into(),
        password: "secret".into(),
    }
}

fn start(credentials: Option<Credentials>) -> (Call, Instant, String) {
    let now = Instant::now();
    let mut call = Call::with_ids(params(credentials), IdGenerator::from_seed(1), now).unwrap();
    let sent = sent(&mut call);
    assert_eq!(sent.len(), 1);
    (call, now, sent[0].clone())
}

fn sent(call: &mut Call) -> Vec<String> {
    std::iter::from_fn(|| call.poll_transmit())
        .map(|t| {
            assert_eq!(t.destination, trunk().address);
            String::from_utf8(t.payload).unwrap()
        })
        .collect()
}

fn events(call: &mut Call) -> Vec<CallEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

fn request_of(text: &str) -> rsip::Request {
    match parse_message(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

/// Builds the trunk's response to one of our requests.
fn reply(to: &str, status: u16, extra: &str, body: &str) -> Vec<u8> {
    let req = request_of(to);
    let mut out = format!("SIP/2.0 {status} Whatever\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let mut value = header_value(&req.headers, name).unwrap();
        if name == "To" && status > 100 && param(&value, "tag").is_none() {
            value.push_str(";tag=trunk1");
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if (200..300).contains(&status) {
        out.push_str("Contact: <sip:gw@198.51.100.7:5060>\r\n");
    }
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(extra);
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// Builds an in-dialog request from the trunk, given our INVITE.
fn from_trunk(invite: &str, method: &str, cseq: u32, branch: &str, body: &str) -> Vec<u8> {
    let req = request_of(invite);
    let from = header_value(&req.headers, "From").unwrap();
    let to = header_value(&req.headers, "To").unwrap();
    let call_id = header_value(&req.headers, "Call-ID").unwrap();
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1;branch={branch}\r\n\
         From: {to};tag=trunk1\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:gw@198.51.100.7:5060>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn answered() -> (Call, Instant, String) {
    let (mut call, now, invite) = start(None);
    call.handle_datagram(&reply(&invite, 180, "", ""), now);
    call.handle_datagram(&reply(&invite, 200, "", ANSWER_SDP), now);
    let acks = sent(&mut call);
    assert_eq!(acks.len(), 1);
    assert!(acks[0].starts_with("ACK sip:gw@198.51.100.7:5060 SIP/2.0\r\n"));
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Ringing, CallEvent::Answered { .. }]
    ));
    (call, now, invite)
}

fn ended(call: &mut Call) -> (EndCause, Option<u16>, bool) {
    match events(call).pop() {
        Some(CallEvent::Ended {
            cause,
            status,
            try_next_trunk,
        }) => (cause, status, try_next_trunk),
        other => panic!("expected Ended, got {other:?}"),
    }
}

#[test]
fn answered_call_reports_progress_and_media() {
    let (mut call, now, invite) = start(None);
    call.handle_datagram(&reply(&invite, 100, "", ""), now);
    call.handle_datagram(&reply(&invite, 183, "", ANSWER_SDP), now);
    call.handle_datagram(&reply(&invite, 200, "", ANSWER_SDP), now);
    let evs = events(&mut call);
    let media = NegotiatedMedia {
        remote_rtp: "198.51.100.7:30000".parse().unwrap(),
        codec: Codec::Pcma,
        telephone_event: Some(101),
        remote_direction: Direction::SendRecv,
        srtp: None,
    };
    assert_eq!(
        evs,
        vec![
            CallEvent::Trying,
            CallEvent::Ringing,
            CallEvent::EarlyMedia { media },
            CallEvent::Answered { media }
        ]
    );
    let ack = sent(&mut call).remove(0);
    assert!(ack.contains("CSeq: 1 ACK\r\n"));
    assert!(ack.contains(";tag=trunk1\r\n"));
}

#[test]
fn retransmitted_200_is_acked_again_without_an_event() {
    let (mut call, now, invite) = answered();
    let ok = reply(&invite, 200, "", ANSWER_SDP);
    call.handle_datagram(&ok, now + Duration::from_millis(500));
    let again = sent(&mut call);
    assert_eq!(again.len(), 1);
    assert!(again[0].starts_with("ACK "));
    assert!(events(&mut call).is_empty());
    // Also after the INVITE transaction is gone (Timer M).
    call.handle_timeout(now + Duration::from_secs(40));
    call.handle_datagram(&ok, now + Duration::from_secs(41));
    assert_eq!(sent(&mut call).len(), 1);
    assert!(events(&mut call).is_empty());
}

fn challenged(status: u16, header: &str, answer: &str) {
    let (mut call, now, invite) = start(Some(creds()));
    let challenge = format!("{header}: Digest realm=\"trunk\", nonce=\"abc\", qop=\"auth\"\r\n");
    call.handle_datagram(&reply(&invite, status, &challenge, ""), now);
    let out = sent(&mut call);
    assert_eq!(out.len(), 2, "ACK for the challenge, then the new INVITE");
    assert!(out[0].starts_with("ACK "));
    let retry = request_of(&out[1]);
    let value = header_value(&retry.headers, answer).unwrap();
    assert!(value.contains("uri=\"sip:+441234567890@trunk.example.com\""));
    assert!(value.contains("nc=00000001"));
    assert_eq!(header_value(&retry.headers, "CSeq").unwrap(), "2 INVITE");
    let first = request_of(&invite);
    for name in ["Call-ID", "From", "To"] {
        assert_eq!(
            header_value(&retry.headers, name),
            header_value(&first.headers, name)
        );
    }
    assert_ne!(
        header_value(&retry.headers, "Via"),
        header_value(&first.headers, "Via")
    );
    // The same challenge again means the credentials were refused.
    call.handle_datagram(&reply(&out[1], status, &challenge, ""), now);
    assert_eq!(
        ended(&mut call),
        (EndCause::AuthenticationFailed, Some(status), false)
    );
}

#[test]
fn answers_a_401_once() {
    challenged(401, "WWW-Authenticate", "Authorization");
}

#[test]
fn answers_a_407_once() {
    challenged(407, "Proxy-Authenticate", "Proxy-Authorization");
}

#[test]
fn ring_timeout_cancels_and_ends_on_487() {
    let (mut call, now, invite) = start(None);
    call.handle_datagram(&reply(&invite, 180, "", ""), now);
    events(&mut call);
    assert_eq!(call.poll_timeout(), Some(now + Duration::from_secs(30)));
    call.handle_timeout(now + Duration::from_secs(30));
    let cancel = sent(&mut call).remove(0);
    assert!(cancel.starts_with("CANCEL sip:+441234567890@trunk.example.com SIP/2.0"));
    assert!(cancel.contains("CSeq: 1 CANCEL\r\n"));
    call.handle_datagram(&reply(&cancel, 200, "", ""), now + Duration::from_secs(30));
    call.handle_datagram(&reply(&invite, 487, "", ""), now + Duration::from_secs(30));
    assert!(
        sent(&mut call)[0].starts_with("ACK "),
        "the transaction ACKs the 487"
    );
    assert_eq!(ended(&mut call), (EndCause::NoAnswer, Some(487), false));
}

#[test]
fn a_200_crossing_the_cancel_is_acked_and_hung_up() {
    let (mut call, now, invite) = start(None);
    call.handle_datagram(&reply(&invite, 180, "", ""), now);
    call.hangup(now);
    let cancel = sent(&mut call).remove(0);
    assert!(cancel.starts_with("CANCEL "));
    call.handle_datagram(&reply(&invite, 200, "", ANSWER_SDP), now);
    let out = sent(&mut call);
    assert_eq!(out.len(), 2);
    assert!(out[0].starts_with("ACK sip:gw@198.51.100.7:5060"));
    assert!(out[1].starts_with("BYE sip:gw@198.51.100.7:5060"));
    assert!(out[1].contains("CSeq: 2 BYE\r\n"));
    assert_eq!(events(&mut call), vec![CallEvent::Ringing]);
    call.handle_datagram(&reply(&out[1], 200, "", ""), now);
    assert_eq!(ended(&mut call), (EndCause::LocalHangup, None, false));
}

#[test]
fn hangup_before_any_response_cancels_on_the_first_1xx() {
    let (mut call, now, invite) = start(None);
    call.hangup(now);
    assert!(
        sent(&mut call).is_empty(),
        "no CANCEL before a provisional response"
    );
    call.handle_datagram(&reply(&invite, 100, "", ""), now);
    assert!(sent(&mut call)[0].starts_with("CANCEL "));
    call.handle_datagram(&reply(&invite, 487, "", ""), now);
    assert_eq!(ended(&mut call).0, EndCause::LocalHangup);
}

#[test]
fn far_end_bye_is_answered() {
    let (mut call, now, invite) = answered();
    call.handle_datagram(&from_trunk(&invite, "BYE", 1, "z9hG4bKb1", ""), now);
    let ok = sent(&mut call).remove(0);
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(ok.contains("CSeq: 1 BYE\r\n"));
    assert_eq!(ended(&mut call), (EndCause::RemoteHangup, None, false));
    call.handle_timeout(now + Duration::from_secs(40));
    assert!(call.is_finished());
}

#[test]
fn local_hangup_sends_bye_and_ends_on_its_200_or_timeout() {
    let (mut call, now, _) = answered();
    call.hangup(now);
    let bye = sent(&mut call).remove(0);
    assert!(bye.starts_with("BYE "));
    call.handle_datagram(&reply(&bye, 200, "", ""), now);
    assert_eq!(ended(&mut call), (EndCause::LocalHangup, None, false));

    let (mut call, now, _) = answered();
    call.hangup(now);
    sent(&mut call);
    call.handle_timeout(now + Duration::from_secs(32));
    assert_eq!(ended(&mut call).0, EndCause::LocalHangup);
}

#[test]
fn failures_map_to_causes() {
    let cases = [
        (486, EndCause::Busy, false),
        (600, EndCause::Busy, false),
        (408, EndCause::NoAnswer, true),
        (480, EndCause::NoAnswer, false),
        (403, EndCause::Rejected, false),
        (603, EndCause::Rejected, false),
        (302, EndCause::Rejected, false),
        (404, EndCause::InvalidNumber, false),
        (484, EndCause::InvalidNumber, false),
        (604, EndCause::InvalidNumber, false),
        (503, EndCause::Congestion, true),
        (500, EndCause::TrunkFailure, true),
        (488, EndCause::MediaFailed, false),
        (401, EndCause::AuthenticationFailed, false),
    ];
    for (status, cause, next) in cases {
        let (mut call, now, invite) = start(None);
        call.handle_datagram(&reply(&invite, status, "", ""), now);
        assert_eq!(
            ended(&mut call),
            (cause, Some(status), next),
            "status {status}"
        );
    }
}

#[test]
fn timer_b_and_transport_errors_are_trunk_failures() {
    let (mut call, now, _) = start(None);
    while let Some(t) = call
        .poll_timeout()
        .filter(|t| *t < now + Duration::from_secs(60))
    {
        call.handle_timeout(t);
    }
    assert_eq!(sent(&mut call).len(), 6, "Timer A retransmissions");
    assert_eq!(ended(&mut call), (EndCause::TrunkFailure, None, true));

    let (mut call, now, _) = start(None);
    call.transport_error(now);
    assert_eq!(ended(&mut call), (EndCause::TrunkFailure, None, true));
}

#[test]
fn reinvite_for_hold_is_answered_with_our_sdp() {
    let (mut call, now, invite) = answered();
    let hold = ANSWER_SDP.replace("a=sendrecv", "a=sendonly");
    call.handle_datagram(&from_trunk(&invite, "INVITE", 2, "z9hG4bKr1", &hold), now);
    let ok = sent(&mut call).remove(0);
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(ok.contains("a=recvonly\r\n"));
    assert!(ok.contains("Contact: <sip:192.0.2.10:5060>\r\n"));
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::MediaChanged { media }] if media.remote_direction == Direction::SendOnly
    ));
    // The 2xx is retransmitted until the ACK arrives, then stops.
    call.handle_timeout(now + Duration::from_millis(500));
    assert_eq!(sent(&mut call).len(), 1);
    call.handle_datagram(&from_trunk(&invite, "ACK", 2, "z9hG4bKr2", ""), now);
    call.handle_timeout(now + Duration::from_secs(2));
    assert!(sent(&mut call).is_empty());
    call.handle_datagram(&from_trunk(&invite, "OPTIONS", 3, "z9hG4bKo1", ""), now);
    assert!(sent(&mut call)[0].starts_with("SIP/2.0 200 OK\r\n"));
}

#[test]
fn requests_outside_the_dialog_get_481() {
    let (mut call, now, invite) = answered();
    let stranger = String::from_utf8(from_trunk(&invite, "BYE", 9, "z9hG4bKx", ""))
        .unwrap()
        .replace(";tag=trunk1", ";tag=other");
    call.handle_datagram(stranger.as_bytes(), now);
    assert!(sent(&mut call)[0].starts_with("SIP/2.0 481 "));
    assert!(events(&mut call).is_empty());
}

#[path = "srtp_tests.rs"]
mod srtp;

#[path = "phone_tests.rs"]
mod phone;
