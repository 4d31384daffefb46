//! A call to a registered desk phone: where its INVITE goes, a challenge it cannot meet,
//! and the phone's connection closing under it.

use super::*;
use crate::sip::Transport;

const PHONE: &str = "192.0.2.40:5062";
const CHALLENGE: &str = "WWW-Authenticate: Digest realm=\"phone\", nonce=\"abc\"\r\n";

fn phone_params(transport: Transport) -> PhoneCallParams {
    PhoneCallParams {
        contact: "sip:alice@10.0.0.7:5062;transport=tcp".into(),
        username: "alice".into(),
        domain: "phones.example.com".into(),
        address: PHONE.parse().unwrap(),
        transport,
        ring_timeout: Duration::from_secs(30),
        local_sip: "192.0.2.10:5060".parse().unwrap(),
        local_rtp: "192.0.2.10:40000".parse().unwrap(),
        timers: TimerConfig::default(),
    }
}

/// Drains what the call sends, checking it all goes to the phone over `transport`.
fn to_phone(call: &mut Call, transport: Transport) -> Vec<String> {
    std::iter::from_fn(|| call.poll_transmit())
        .map(|t| {
            assert_eq!(t.destination, PHONE.parse().unwrap());
            assert_eq!(t.transport, transport);
            String::from_utf8(t.payload).unwrap()
        })
        .collect()
}

fn ring(transport: Transport) -> (Call, Instant, String) {
    let now = Instant::now();
    let params = phone_params(transport);
    let mut call = Call::to_phone_with_ids(params, IdGenerator::from_seed(5), now).unwrap();
    let invite = to_phone(&mut call, transport).remove(0);
    (call, now, invite)
}

#[test]
fn the_invite_goes_to_the_registered_address_for_the_contact() {
    let (_, _, invite) = ring(Transport::Tcp);
    assert!(invite.starts_with("INVITE sip:alice@10.0.0.7:5062;transport=tcp SIP/2.0\r\n"));
    assert!(invite.contains("\r\nTo: <sip:alice@phones.example.com>\r\n"));
    assert!(invite.contains("\r\nFrom: <sip:dialcrm@192.0.2.10>;tag="));
    assert!(invite.contains("m=audio 40000 RTP/AVP "));
    assert!(!invite.contains("a=crypto"), "plain RTP to a desk phone");
}

#[test]
fn a_phone_that_challenges_is_not_called_again() {
    let (mut call, now, invite) = ring(Transport::Udp);
    call.handle_datagram(&reply(&invite, 401, CHALLENGE, ""), now);
    let sent = to_phone(&mut call, Transport::Udp);
    assert_eq!(sent.len(), 1, "only the ACK to the 401: {sent:?}");
    assert!(sent[0].starts_with("ACK "));
    assert_eq!(
        ended(&mut call),
        (EndCause::AuthenticationFailed, Some(401), false)
    );
}

#[test]
fn a_lost_connection_ends_a_ringing_call_without_a_cancel() {
    let (mut call, now, invite) = ring(Transport::Tcp);
    call.handle_datagram(&reply(&invite, 180, "", ""), now);
    assert_eq!(events(&mut call), vec![CallEvent::Ringing]);
    call.connection_lost(now);
    assert!(to_phone(&mut call, Transport::Tcp).is_empty());
    assert_eq!(ended(&mut call), (EndCause::TrunkFailure, None, true));
    assert!(call.is_finished());
}

#[test]
fn a_lost_connection_ends_an_answered_call_and_keeps_a_hangup_under_way() {
    let (mut call, now, invite) = ring(Transport::Tcp);
    call.handle_datagram(&reply(&invite, 200, "", ANSWER_SDP), now);
    assert!(to_phone(&mut call, Transport::Tcp)[0].starts_with("ACK "));
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Answered { .. }]
    ));
    call.connection_lost(now);
    assert!(to_phone(&mut call, Transport::Tcp).is_empty(), "no BYE");
    assert_eq!(ended(&mut call).0, EndCause::TrunkFailure);
    // The INVITE's transaction stays only to absorb retransmitted 2xx (RFC 6026).
    let later = now + Duration::from_secs(64);
    assert!(call.poll_timeout().is_some_and(|t| t <= later));
    call.handle_timeout(later);
    assert!(call.is_finished());
    assert!(to_phone(&mut call, Transport::Tcp).is_empty());

    let (mut call, now, invite) = ring(Transport::Tcp);
    call.handle_datagram(&reply(&invite, 200, "", ANSWER_SDP), now);
    to_phone(&mut call, Transport::Tcp);
    events(&mut call);
    call.hangup(now);
    assert!(to_phone(&mut call, Transport::Tcp)[0].starts_with("BYE "));
    call.connection_lost(now);
    assert_eq!(ended(&mut call).0, EndCause::LocalHangup);
}
