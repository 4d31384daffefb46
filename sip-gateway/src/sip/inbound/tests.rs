//! Inbound call tests on a virtual clock, with the test playing the trunk.

use std::time::{Duration, Instant};

use rsip::SipMessage;

use super::*;
use crate::sip::message::param;
use crate::sip::parse::parse_message;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n\
    t=0 0\r\nm=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

const TRUNK: &str = "198.51.100.7:5060";

fn params() -> InboundParams {
    InboundParams {
        peer: TRUNK.parse().unwrap(),
        transport: Transport::Udp,
        local_sip: "192.0.2.10:5060".parse().unwrap(),
        local_rtp: "192.0.2.10:40000".parse().unwrap(),
        timers: TimerConfig::default(),
        srtp: None,
        decide_within: Duration::from_secs(8),
    }
}

fn invite_text(extra: &str, body: &str) -> String {
    format!(
        "INVITE sip:+441632960001@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bKin1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+447400123456@trunk.example.com>;tag=caller1\r\n\
         To: <sip:+441632960001@gw.example.com>\r\n\
         Call-ID: in-call-1\r\n\
         CSeq: 10 INVITE\r\n\
         Contact: <sip:+447400123456@{TRUNK}>\r\n\
         {extra}\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn request(text: &str) -> rsip::Request {
    match parse_message(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

fn start(extra: &str, body: &str) -> (InboundCall, Instant) {
    let now = Instant::now();
    let mut call = InboundCall::with_ids(
        request(&invite_text(extra, body)),
        params(),
        IdGenerator::from_seed(3),
        now,
    );
    call.trying(now);
    (call, now)
}

fn sent(call: &mut InboundCall) -> Vec<String> {
    std::iter::from_fn(|| call.poll_transmit())
        .map(|t| {
            assert_eq!(t.destination, TRUNK.parse().unwrap());
            String::from_utf8(t.payload).unwrap()
        })
        .collect()
}

fn events(call: &mut InboundCall) -> Vec<CallEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

fn status_of(text: &str) -> u16 {
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn to_tag(response: &str) -> String {
    let to = response
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .to_string();
    param(&to, "tag").unwrap().to_string()
}

/// A request from the trunk inside the dialog our 200 set up.
fn in_dialog(method: &str, cseq: u32, branch: &str, tag: &str, body: &str) -> SipMessage {
    let text = format!(
        "{method} sip:gw@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+447400123456@trunk.example.com>;tag=caller1\r\n\
         To: <sip:+441632960001@gw.example.com>;tag={tag}\r\n\
         Call-ID: in-call-1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:+447400123456@{TRUNK}>\r\n\
         {}Content-Length: {}\r\n\r\n{body}",
        if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        },
        body.len()
    );
    SipMessage::Request(request(&text))
}

#[test]
fn an_offer_says_trying_and_names_both_numbers() {
    let (mut call, _) = start("", OFFER);
    let offer = call.offer().cloned().expect("a usable offer");
    assert_eq!(offer.number, "+441632960001");
    assert_eq!(offer.caller.as_deref(), Some("+447400123456"));
    let out = sent(&mut call);
    assert_eq!(out.len(), 1);
    assert_eq!(status_of(&out[0]), 100);
    assert!(events(&mut call).is_empty());
    assert!(!call.is_answered());
}

#[test]
fn the_offer_debug_form_keeps_the_caller_out_of_logs() {
    let (call, _) = start("", OFFER);
    let shown = format!("{:?}", call.offer().unwrap());
    assert!(!shown.contains("7400123456"), "{shown}");
}

#[test]
fn the_asserted_identity_wins_and_a_withheld_number_stays_withheld() {
    let (call, _) = start("P-Asserted-Identity: <tel:+447400999999>\r\n", OFFER);
    assert_eq!(
        call.offer().unwrap().caller.as_deref(),
        Some("+447400999999")
    );
    let (call, _) = start(
        "P-Asserted-Identity: <tel:+447400999999>\r\nPrivacy: id\r\n",
        OFFER,
    );
    assert_eq!(call.offer().unwrap().caller, None);
}

#[test]
fn answering_sends_200_with_sdp_and_reports_the_media_at_once() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.ring(now);
    let ringing = sent(&mut call);
    assert_eq!(status_of(&ringing[0]), 180);
    assert!(call.answer(now));
    let out = sent(&mut call);
    assert_eq!(status_of(&out[0]), 200);
    assert!(out[0].contains("m=audio 40000 RTP/AVP 0"), "{}", out[0]);
    assert!(out[0].contains("Contact: <sip:192.0.2.10:5060>"));
    // The 180 and the 200 carry the same To tag: one dialog.
    assert_eq!(to_tag(&ringing[0]), to_tag(&out[0]));
    match events(&mut call).as_slice() {
        [CallEvent::Answered { media }] => {
            assert_eq!(media.remote_rtp, "198.51.100.7:30000".parse().unwrap());
            assert_eq!(media.codec, crate::sip::sdp::Codec::Pcmu);
        }
        other => panic!("expected Answered, got {other:?}"),
    }
    assert!(!call.answer(now), "a call is answered once");
}

#[test]
fn the_200_is_repeated_until_the_ack_and_a_bye_ends_the_call() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.answer(now);
    let ok = sent(&mut call);
    let tag = to_tag(&ok[0]);
    events(&mut call);
    let later = now + Duration::from_millis(600);
    call.handle_timeout(later);
    let again = sent(&mut call);
    assert_eq!(again.len(), 1, "the 2xx is retransmitted over UDP");
    assert_eq!(status_of(&again[0]), 200);
    call.handle_message(in_dialog("ACK", 10, "z9hG4bKack1", &tag, ""), later);
    call.handle_timeout(later + Duration::from_secs(5));
    assert!(
        sent(&mut call).is_empty(),
        "the ACK stops the retransmissions"
    );
    call.handle_message(in_dialog("BYE", 11, "z9hG4bKbye1", &tag, ""), later);
    let out = sent(&mut call);
    assert_eq!(status_of(&out[0]), 200);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Ended {
            cause: EndCause::RemoteHangup,
            ..
        }]
    ));
}

#[test]
fn hanging_up_after_the_answer_sends_bye_in_the_dialog() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.answer(now);
    let tag = to_tag(&sent(&mut call)[0]);
    call.handle_message(in_dialog("ACK", 10, "z9hG4bKack1", &tag, ""), now);
    events(&mut call);
    call.hangup(now);
    let out = sent(&mut call);
    assert_eq!(out.len(), 1);
    let bye = &out[0];
    assert!(
        bye.starts_with("BYE sip:+447400123456@198.51.100.7:5060 SIP/2.0"),
        "{bye}"
    );
    assert!(bye.contains(&format!(";tag={tag}")));
    assert!(bye.contains("To: <sip:+447400123456@trunk.example.com>;tag=caller1"));
    assert!(bye.contains("CSeq: 1 BYE"));
    assert!(
        events(&mut call).is_empty(),
        "ended once the BYE is answered"
    );
    let reply = format!(
        "SIP/2.0 200 OK\r\n{}\r\nContent-Length: 0\r\n\r\n",
        bye.lines()
            .filter(|l| ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| l.starts_with(h)))
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    call.handle_message(parse_message(reply.as_bytes()).unwrap(), now);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Ended {
            cause: EndCause::LocalHangup,
            ..
        }]
    ));
}

#[test]
fn a_cancel_before_the_answer_gets_200_and_the_invite_487() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    let cancel = format!(
        "CANCEL sip:+441632960001@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bKin1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+447400123456@trunk.example.com>;tag=caller1\r\n\
         To: <sip:+441632960001@gw.example.com>\r\n\
         Call-ID: in-call-1\r\n\
         CSeq: 10 CANCEL\r\n\
         Content-Length: 0\r\n\r\n"
    );
    call.handle_message(SipMessage::Request(request(&cancel)), now);
    let out: Vec<u16> = sent(&mut call).iter().map(|s| status_of(s)).collect();
    assert!(out.contains(&200) && out.contains(&487), "{out:?}");
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Ended {
            cause: EndCause::RemoteHangup,
            ..
        }]
    ));
    assert!(!call.answer(now));
}

#[test]
fn an_undecided_call_gets_480_at_its_deadline() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    let deadline = call.poll_timeout().unwrap();
    assert!(deadline <= now + Duration::from_secs(8));
    call.handle_timeout(now + Duration::from_secs(8));
    let out = sent(&mut call);
    assert_eq!(status_of(&out[0]), 480);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Ended {
            cause: EndCause::NoAnswer,
            ..
        }]
    ));
}

#[test]
fn a_ringing_call_has_the_ringing_limit_rather_than_the_deadline() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.ring(now + Duration::from_secs(1));
    assert_eq!(status_of(&sent(&mut call)[0]), 180);
    call.handle_timeout(now + Duration::from_secs(9));
    assert!(
        sent(&mut call).is_empty(),
        "still ringing past the deadline"
    );
    call.handle_timeout(now + Duration::from_secs(1) + RINGING_LIMIT);
    assert_eq!(status_of(&sent(&mut call)[0]), 480);
}

#[test]
fn rejecting_sends_the_status_asked_for() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.reject(404, now);
    assert_eq!(status_of(&sent(&mut call)[0]), 404);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Ended {
            cause: EndCause::Rejected,
            ..
        }]
    ));
}

#[test]
fn an_invite_without_usable_sdp_is_refused_with_488() {
    for body in ["", "v=0\r\nm=video 1 RTP/AVP 96\r\n"] {
        let (mut call, _) = start("", body);
        assert!(call.offer().is_none());
        assert_eq!(status_of(&sent(&mut call)[0]), 488);
    }
}

#[test]
fn a_reinvite_for_hold_changes_the_media() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.answer(now);
    let tag = to_tag(&sent(&mut call)[0]);
    call.handle_message(in_dialog("ACK", 10, "z9hG4bKack1", &tag, ""), now);
    events(&mut call);
    let held = OFFER.replace("a=sendrecv", "a=sendonly");
    call.handle_message(in_dialog("INVITE", 11, "z9hG4bKre1", &tag, &held), now);
    let out = sent(&mut call);
    assert_eq!(status_of(&out[0]), 200);
    assert!(out[0].contains("a=recvonly"), "{}", out[0]);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::MediaChanged { .. }]
    ));
}

#[test]
fn requests_of_another_dialog_get_481() {
    let (mut call, now) = start("", OFFER);
    sent(&mut call);
    call.answer(now);
    sent(&mut call);
    call.handle_message(in_dialog("BYE", 11, "z9hG4bKbye9", "not-ours", ""), now);
    assert_eq!(status_of(&sent(&mut call)[0]), 481);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Answered { .. }]
    ));
}

#[test]
fn user_parts_and_numbers_are_read_safely() {
    assert_eq!(
        user_part("sip:+441632960001@h;user=phone").as_deref(),
        Some("+441632960001")
    );
    assert_eq!(
        user_part("tel:+441632960001").as_deref(),
        Some("+441632960001")
    );
    assert_eq!(user_part("sip:host.example.com"), None);
    assert_eq!(user_part("mailto:x@y"), None);
    assert!(is_number("+44 1632 960001"));
    assert!(!is_number("anonymous"));
    assert!(!is_number("12"));
}
