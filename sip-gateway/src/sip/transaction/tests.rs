//! Transaction tests on a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rsip::{Method, SipMessage};

use super::*;
use crate::sip::message::{OutgoingResponse, Transport};
use crate::sip::parse::parse_message;

const T1: Duration = Duration::from_millis(500);

fn peer() -> SocketAddr {
    "203.0.113.1:5060".parse().unwrap()
}

fn request(method: Method, branch: &str) -> OutgoingRequest {
    OutgoingRequest {
        method,
        uri: "sip:100@trunk.example.com".into(),
        headers: vec![
            (
                "Via".into(),
                format!("SIP/2.0/UDP 192.0.2.10:5060;branch={branch}"),
            ),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), "<sip:200@example.org>;tag=f1".into()),
            ("To".into(), "<sip:100@trunk.example.com>".into()),
            ("Call-ID".into(), "c1".into()),
            ("CSeq".into(), format!("1 {method}")),
        ],
        body: Vec::new(),
    }
}

fn response(status: u16, branch: &str, method: Method) -> SipMessage {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n\
         From: <sip:200@example.org>;tag=f1\r\nTo: <sip:100@trunk.example.com>;tag=t9\r\n\
         Call-ID: c1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    parse_message(text.as_bytes()).unwrap()
}

fn incoming(method: Method, branch: &str, cseq: u32) -> SipMessage {
    let text = format!(
        "{method} sip:200@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1;branch={branch}\r\n\
         From: <sip:100@trunk.example.com>;tag=t9\r\nTo: <sip:200@example.org>;tag=f1\r\n\
         Call-ID: c1\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    );
    parse_message(text.as_bytes()).unwrap()
}

/// Runs every timer up to `end`, returning the offsets (from `start`) of each transmission.
fn run_until(layer: &mut TransactionLayer, start: Instant, end: Instant) -> Vec<Duration> {
    let mut sent = Vec::new();
    while let Some(t) = layer.poll_timeout().filter(|t| *t <= end) {
        layer.handle_timeout(t);
        while layer.poll_transmit().is_some() {
            sent.push(t - start);
        }
    }
    sent
}

fn events(layer: &mut TransactionLayer) -> Vec<TransactionEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

fn transmits(layer: &mut TransactionLayer) -> Vec<String> {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|t| String::from_utf8(t.payload).unwrap())
        .collect()
}

#[test]
fn invite_over_udp_doubles_timer_a_until_timer_b() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            request(Method::Invite, "z9hG4bK1"),
            peer(),
            Transport::Udp,
            start,
        )
        .unwrap();
    assert_eq!(transmits(&mut layer).len(), 1);
    let sent = run_until(&mut layer, start, start + Duration::from_secs(40));
    let expected: Vec<Duration> = [1, 3, 7, 15, 31, 63].iter().map(|n| T1 * *n).collect();
    assert_eq!(sent, expected);
    assert_eq!(
        events(&mut layer),
        vec![TransactionEvent::Timeout { key: key.clone() }]
    );
    assert!(!layer.is_active(&key));
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn invite_over_tcp_is_not_retransmitted_but_times_out() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            request(Method::Invite, "z9hG4bK1"),
            peer(),
            Transport::Tcp,
            start,
        )
        .unwrap();
    transmits(&mut layer);
    assert_eq!(layer.poll_timeout(), Some(start + T1 * 64));
    assert!(run_until(&mut layer, start, start + T1 * 64).is_empty());
    assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
}

#[test]
fn non_invite_timer_e_is_capped_at_t2() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (key, ms) = options_sent_until(&mut layer, start, Duration::from_secs(40));
    assert_eq!(
        ms,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
}

/// Sends an OPTIONS at `start` that nobody answers, and returns its key and the offsets
/// (ms) of its retransmissions up to `start + until`.
fn options_sent_until(
    layer: &mut TransactionLayer,
    start: Instant,
    until: Duration,
) -> (TransactionKey, Vec<u128>) {
    let key = layer
        .send_request(
            request(Method::Options, "z9hG4bK2"),
            peer(),
            Transport::Udp,
            start,
        )
        .unwrap();
    transmits(layer);
    let sent = run_until(layer, start, start + until);
    (key, sent.iter().map(Duration::as_millis).collect())
}

#[test]
fn non_2xx_final_is_acked_by_the_transaction() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            request(Method::Invite, "z9hG4bK3"),
            peer(),
            Transport::Udp,
            start,
        )
        .unwrap();
    transmits(&mut layer);
    let busy = response(486, "z9hG4bK3", Method::Invite);
    layer.handle_message(busy.clone(), peer(), Transport::Udp, start + T1);
    let sent = transmits(&mut layer);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("ACK sip:100@trunk.example.com SIP/2.0\r\n"));
    assert!(sent[0].contains("branch=z9hG4bK3"));
    assert!(sent[0].contains("To: <sip:100@trunk.example.com>;tag=t9\r\n"));
    assert!(sent[0].contains("CSeq: 1 ACK\r\n"));
    assert!(matches!(
        &events(&mut layer)[..],
        [TransactionEvent::Final { .. }]
    ));
    // A retransmitted 486 is absorbed: ACK again, nothing for the TU.
    layer.handle_message(busy, peer(), Transport::Udp, start + T1 * 2);
    assert_eq!(transmits(&mut layer).len(), 1);
    assert!(events(&mut layer).is_empty());
    // Timer D keeps it for 32 s, then it ends silently.
    assert!(run_until(&mut layer, start, start + Duration::from_secs(40)).is_empty());
    assert!(!layer.is_active(&key));
    assert!(events(&mut layer).is_empty());
}

#[test]
fn retransmitted_2xx_reaches_the_tu_until_timer_m() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer
        .send_request(
            request(Method::Invite, "z9hG4bK4"),
            peer(),
            Transport::Udp,
            start,
        )
        .unwrap();
    transmits(&mut layer);
    let ok = response(200, "z9hG4bK4", Method::Invite);
    layer.handle_message(ok.clone(), peer(), Transport::Udp, start);
    layer.handle_message(ok.clone(), peer(), Transport::Udp, start + T1);
    assert!(
        transmits(&mut layer).is_empty(),
        "the TU acknowledges a 2xx"
    );
    let evs = events(&mut layer);
    assert_eq!(evs.len(), 2);
    assert!(evs
        .iter()
        .all(|e| matches!(e, TransactionEvent::Final { .. })));
    run_until(&mut layer, start, start + T1 * 65);
    layer.handle_message(ok, peer(), Transport::Udp, start + T1 * 66);
    assert!(matches!(
        &events(&mut layer)[..],
        [TransactionEvent::StrayResponse { .. }]
    ));
}

#[test]
fn slack_rounds_up_to_its_grid_and_never_down() {
    let origin = Instant::now();
    let slack = Slack::new(origin, Duration::from_millis(100));
    let ms = |n: u64| origin + Duration::from_millis(n);
    assert_eq!(slack.round_up(ms(0)), ms(0));
    assert_eq!(slack.round_up(ms(1)), ms(100));
    assert_eq!(slack.round_up(ms(100)), ms(100));
    assert_eq!(slack.round_up(ms(5_001)), ms(5_100));
    let before = origin.checked_sub(Duration::from_millis(30));
    if let Some(before) = before {
        assert_eq!(slack.round_up(before), before, "before the grid: as it is");
    }
    let flat = Slack::new(origin, Duration::ZERO);
    assert_eq!(flat.round_up(ms(7)), ms(7));
}

/// Answers a BYE sent at `sent` at once and returns when its transaction goes (Timer K).
fn timer_k_of_a_bye(config: TimerConfig, branch: &str, sent: Instant) -> Instant {
    let mut layer = TransactionLayer::new(config);
    layer
        .send_request(request(Method::Bye, branch), peer(), Transport::Udp, sent)
        .unwrap();
    layer.handle_message(
        response(200, branch, Method::Bye),
        peer(),
        Transport::Udp,
        sent,
    );
    let gone = layer.poll_timeout().expect("Timer K is running");
    layer.handle_timeout(gone);
    assert_eq!(
        layer.poll_timeout(),
        None,
        "the transaction ended at Timer K"
    );
    gone
}

#[test]
fn housekeeping_timers_that_fall_in_one_step_share_an_instant() {
    let origin = Instant::now();
    let t4 = TimerConfig::default().t4;
    let exact = timer_k_of_a_bye(
        TimerConfig::default(),
        "z9hG4bKk0",
        origin + Duration::from_millis(10),
    );
    assert_eq!(exact, origin + Duration::from_millis(10) + t4);

    let config = TimerConfig::default().with_slack(Slack::new(origin, Duration::from_millis(100)));
    let first = timer_k_of_a_bye(config, "z9hG4bKk1", origin + Duration::from_millis(10));
    let second = timer_k_of_a_bye(config, "z9hG4bKk2", origin + Duration::from_millis(70));
    let next_step = timer_k_of_a_bye(config, "z9hG4bKk3", origin + Duration::from_millis(130));
    assert_eq!(first, origin + t4 + Duration::from_millis(100));
    assert_eq!(first, second, "BYEs answered 60 ms apart go together");
    assert_eq!(next_step, first + Duration::from_millis(100));
    assert!(
        second >= origin + Duration::from_millis(70) + t4,
        "never before T4"
    );
}

#[test]
fn slack_leaves_the_retransmission_timers_exact() {
    let start = Instant::now() + Duration::from_millis(37);
    let config =
        TimerConfig::default().with_slack(Slack::new(Instant::now(), Duration::from_millis(100)));
    let mut layer = TransactionLayer::new(config);
    let (_, ms) = options_sent_until(&mut layer, start, Duration::from_secs(4));
    assert_eq!(
        ms,
        vec![500, 1500, 3500],
        "Timer E runs on T1, not on the grid"
    );
}

#[test]
fn provisional_stops_timer_b_and_cancel_guard_ends_it() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            request(Method::Invite, "z9hG4bK5"),
            peer(),
            Transport::Udp,
            start,
        )
        .unwrap();
    layer.handle_message(
        response(180, "z9hG4bK5", Method::Invite),
        peer(),
        Transport::Udp,
        start,
    );
    assert!(matches!(
        &events(&mut layer)[..],
        [TransactionEvent::Provisional { .. }]
    ));
    assert_eq!(
        layer.poll_timeout(),
        None,
        "a ringing INVITE waits for the TU"
    );
    layer.cancel_sent(&key, start + Duration::from_secs(60));
    run_until(&mut layer, start, start + Duration::from_secs(100));
    assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
}

#[test]
fn cancel_guard_survives_a_later_provisional() {
    // Found by the property below: a 1xx after the CANCEL must not clear the guard.
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            request(Method::Invite, "z9hG4bK6"),
            peer(),
            Transport::Udp,
            start,
        )
        .unwrap();
    layer.cancel_sent(&key, start);
    layer.handle_message(
        response(100, "z9hG4bK6", Method::Invite),
        peer(),
        Transport::Udp,
        start,
    );
    assert_eq!(layer.poll_timeout(), Some(start + T1 * 64));
    run_until(&mut layer, start, start + T1 * 64);
    assert!(!layer.is_active(&key));
}

#[test]
fn server_non_invite_resends_its_response_until_timer_j() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let bye = incoming(Method::Bye, "z9hG4bKs1", 2);
    layer.handle_message(bye.clone(), peer(), Transport::Udp, start);
    let [TransactionEvent::Request {
        key: Some(key),
        request,
    }] = &events(&mut layer)[..]
    else {
        panic!("expected one request event");
    };
    let ok = OutgoingResponse::to_request(request, 200, None);
    layer.respond(key, &ok, start).unwrap();
    assert!(transmits(&mut layer)[0].starts_with("SIP/2.0 200 OK"));
    layer.handle_message(bye, peer(), Transport::Udp, start + T1);
    assert_eq!(transmits(&mut layer).len(), 1);
    assert!(events(&mut layer).is_empty());
    assert_eq!(
        layer.respond(key, &ok, start),
        Err(TransactionError::NoSuchTransaction)
    );
    run_until(&mut layer, start, start + T1 * 64);
    assert!(!layer.is_active(key));
}

#[test]
fn a_registrar_layer_takes_register_and_refuses_the_rest() {
    let start = Instant::now();
    let mut trunk_side = TransactionLayer::new(TimerConfig::default());
    trunk_side.handle_message(
        incoming(Method::Register, "z9hG4bKr0", 1),
        peer(),
        Transport::Udp,
        start,
    );
    assert!(events(&mut trunk_side).is_empty());
    assert!(transmits(&mut trunk_side)[0].starts_with("SIP/2.0 405"));

    let mut layer = TransactionLayer::allowing(TimerConfig::default(), "REGISTER");
    let register = incoming(Method::Register, "z9hG4bKr1", 1);
    layer.handle_message(register.clone(), peer(), Transport::Udp, start);
    let [TransactionEvent::Request { key: Some(key), .. }] = &events(&mut layer)[..] else {
        panic!("expected the REGISTER to reach the registrar");
    };
    // Retransmitted while the answer is being worked out: absorbed, nothing sent.
    layer.handle_message(register, peer(), Transport::Udp, start + T1);
    assert!(events(&mut layer).is_empty());
    assert!(transmits(&mut layer).is_empty());
    assert!(layer.is_active(key));
    layer.handle_message(
        incoming(Method::Options, "z9hG4bKr2", 1),
        peer(),
        Transport::Udp,
        start,
    );
    assert!(events(&mut layer).is_empty());
    assert!(transmits(&mut layer)[0].starts_with("SIP/2.0 405"));
}

#[test]
fn server_invite_retransmits_2xx_until_its_ack() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer.handle_message(
        incoming(Method::Invite, "z9hG4bKs2", 5),
        peer(),
        Transport::Udp,
        start,
    );
    let [TransactionEvent::Request {
        key: Some(key),
        request,
    }] = &events(&mut layer)[..]
    else {
        panic!("expected one request event");
    };
    layer
        .respond(
            key,
            &OutgoingResponse::to_request(request, 200, None),
            start,
        )
        .unwrap();
    transmits(&mut layer);
    let sent = run_until(&mut layer, start, start + T1 * 4);
    assert_eq!(sent, vec![T1, T1 * 3]);
    layer.handle_message(
        incoming(Method::Ack, "z9hG4bKs3", 5),
        peer(),
        Transport::Udp,
        start + T1 * 4,
    );
    assert!(matches!(
        &events(&mut layer)[..],
        [TransactionEvent::Request { key: None, .. }]
    ));
    assert!(!layer.is_active(key));
}

#[test]
fn server_invite_error_waits_for_ack_then_reports_no_ack() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer.handle_message(
        incoming(Method::Invite, "z9hG4bKs4", 5),
        peer(),
        Transport::Udp,
        start,
    );
    let [TransactionEvent::Request {
        key: Some(key),
        request,
    }] = &events(&mut layer)[..]
    else {
        panic!("expected one request event");
    };
    let busy = OutgoingResponse::to_request(request, 488, Some("x"));
    layer.respond(key, &busy, start).unwrap();
    transmits(&mut layer);
    let sent = run_until(&mut layer, start, start + T1 * 64);
    let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
    assert_eq!(
        &ms[..6],
        &[500, 1500, 3500, 7500, 11500, 15500],
        "Timer G caps at T2"
    );
    assert_eq!(
        events(&mut layer),
        vec![TransactionEvent::NoAck { key: key.clone() }]
    );
}

#[derive(Debug, Clone)]
enum Input {
    Response(u16),
    TransportError,
    Cancel,
    Wait(u64),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        prop::sample::select(vec![100u16, 180, 183, 200, 401, 486, 503, 603])
            .prop_map(Input::Response),
        Just(Input::TransportError),
        Just(Input::Cancel),
        (0u64..40_000).prop_map(Input::Wait),
    ]
}

proptest! {
    /// Every INVITE client transaction ends within 64*T1 of its start or its last input,
    /// except one left ringing with no CANCEL, whose end RFC 3261 leaves to the TU.
    #[test]
    fn invite_client_transactions_terminate(inputs in prop::collection::vec(input(), 0..12), tcp in any::<bool>()) {
        let start = Instant::now();
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let key = layer.send_request(request(Method::Invite, "z9hG4bKp"), peer(), transport, start).unwrap();
        let (mut now, mut last_input, mut ringing, mut cancelled) = (start, start, false, false);
        for i in inputs {
            match i {
                Input::Wait(ms) => {
                    let until = now + Duration::from_millis(ms);
                    run_until(&mut layer, start, until);
                    now = until;
                    continue;
                }
                Input::Response(code) => {
                    ringing |= code < 200 && layer.is_active(&key);
                    layer.handle_message(response(code, "z9hG4bKp", Method::Invite), peer(), transport, now);
                }
                Input::TransportError => layer.transport_error(&key, now),
                Input::Cancel => {
                    cancelled |= layer.is_active(&key);
                    layer.cancel_sent(&key, now);
                }
            }
            last_input = now;
        }
        let limit = last_input + T1 * 64;
        run_until(&mut layer, start, limit);
        if !ringing || cancelled {
            prop_assert!(!layer.is_active(&key), "still active at {:?}", limit - start);
        }
        let timeouts = events(&mut layer)
            .iter()
            .filter(|e| matches!(e, TransactionEvent::Timeout { .. }))
            .count();
        prop_assert!(timeouts <= 1);
    }
}
