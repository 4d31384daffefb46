//! SIP bytes from the network: the parser, the 400 builder, TCP framing, SDP, and on success
//! the per-call state machine and a server transaction layer.
//!
//! The call is started with a fixed id seed, so the seed corpus holds responses that match its
//! INVITE (same Call-ID and branch) and the fuzzer can walk the call through its states.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rsip::SipMessage;
use sip_gateway::sip::digest::Credentials;
use sip_gateway::sip::outbound::{IdGenerator, Trunk};
use sip_gateway::sip::parse::{bad_request_response, frame_length, parse_message};
use sip_gateway::sip::transaction::{TimerConfig, TransactionLayer};
use sip_gateway::sip::{sdp, Call, CallParams, Transport};

fuzz_target!(|data: &[u8]| {
    let _ = frame_length(data);
    let message = match parse_message(data) {
        Ok(message) => message,
        Err(error) => {
            let _ = bad_request_response(data, &error.to_string());
            return;
        }
    };
    let body = match &message {
        SipMessage::Request(r) => &r.body,
        SipMessage::Response(r) => &r.body,
    };
    let _ = sdp::negotiate(body);
    let _ = message.to_string();

    let now = start();
    let mut call = Call::with_ids(params(), IdGenerator::from_seed(1), now)
        .expect("the fixed parameters are valid");
    drain_call(&mut call);
    call.handle_message(message.clone(), now);
    drain_call(&mut call);
    call.hangup(now + Duration::from_millis(10));
    drain_call(&mut call);
    call.handle_timeout(now + Duration::from_secs(64));
    drain_call(&mut call);

    let mut layer = TransactionLayer::new(TimerConfig::default());
    let peer: SocketAddr = "192.0.2.1:5060".parse().expect("a valid literal");
    layer.handle_message(message, peer, Transport::Udp, now);
    while layer.poll_event().is_some() {}
    while layer.poll_transmit().is_some() {}
    layer.handle_timeout(now + Duration::from_secs(64));
    while layer.poll_event().is_some() {}
    while layer.poll_transmit().is_some() {}
});

/// One fixed starting instant, so every run sees the same relative times.
fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn params() -> CallParams {
    CallParams {
        number: "+441632960123".into(),
        caller_id: "+442079460000".into(),
        trunk: Trunk {
            host: "192.0.2.1".into(),
            port: None,
            address: "192.0.2.1:5060".parse().expect("a valid literal"),
            transport: Transport::Udp,
            from_domain: "192.0.2.1".into(),
        },
        credentials: Some(Credentials {
            username: "acct".into(),
            password: "secret".into(),
        }),
        ring_timeout: Duration::from_secs(30),
        local_sip: "192.0.2.10:5060".parse().expect("a valid literal"),
        local_rtp: "192.0.2.10:40000".parse().expect("a valid literal"),
        timers: TimerConfig::default(),
        srtp: None,
    }
}

fn drain_call(call: &mut Call) {
    while call.poll_transmit().is_some() {}
    while call.poll_event().is_some() {}
}
