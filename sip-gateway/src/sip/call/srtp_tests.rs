//! A call through a trunk whose media must be SRTP: keys offered, taken, or the call refused.

use super::*;
use crate::media::srtp::MasterKey;
use crate::sip::sdes::Crypto;
use crate::sip::sdp::SrtpKeys;

fn our_key() -> MasterKey {
    MasterKey::from_bytes([3; 30])
}

fn their_key() -> MasterKey {
    MasterKey::from_bytes([4; 30])
}

fn start_secure() -> (Call, Instant, String) {
    let now = Instant::now();
    let mut params = params(None);
    params.trunk.transport = crate::sip::Transport::Tls;
    params.srtp = Some(our_key());
    let mut call = Call::with_ids(params, IdGenerator::from_seed(1), now).unwrap();
    let invite = sent(&mut call).remove(0);
    (call, now, invite)
}

fn secure_answer(tag: u32) -> String {
    let line = Crypto {
        tag,
        key: their_key(),
    }
    .line();
    ANSWER_SDP.replace("RTP/AVP", "RTP/SAVP") + &line
}

#[test]
fn the_invite_offers_srtp_with_our_key() {
    let (_, _, invite) = start_secure();
    assert!(
        invite.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"),
        "{invite}"
    );
    let line = Crypto {
        tag: 1,
        key: our_key(),
    }
    .line();
    assert!(invite.contains(&line), "{invite}");
}

#[test]
fn an_answer_with_keys_gives_the_leg_both() {
    let (mut call, now, invite) = start_secure();
    call.handle_datagram(&reply(&invite, 200, "", &secure_answer(1)), now);
    let evs = events(&mut call);
    let [CallEvent::Answered { media }] = &evs[..] else {
        panic!("expected Answered, got {evs:?}");
    };
    assert_eq!(
        media.srtp,
        Some(SrtpKeys {
            local: our_key(),
            remote: their_key()
        })
    );
}

#[test]
fn an_answer_in_clear_ends_the_call_without_media() {
    for body in [ANSWER_SDP.to_string(), secure_answer(2)] {
        let (mut call, now, invite) = start_secure();
        call.handle_datagram(&reply(&invite, 183, "", &body), now);
        call.handle_datagram(&reply(&invite, 200, "", &body), now);
        let out = sent(&mut call);
        assert!(out[0].starts_with("ACK "), "{out:?}");
        assert!(out[1].starts_with("BYE "), "{out:?}");
        let bye = out[1].clone();
        call.handle_datagram(&reply(&bye, 200, "", ""), now);
        let evs = events(&mut call);
        assert!(
            !evs.iter()
                .any(|e| matches!(e, CallEvent::Answered { .. } | CallEvent::EarlyMedia { .. })),
            "no media may start in clear: {evs:?}"
        );
        assert!(matches!(
            evs.last(),
            Some(CallEvent::Ended {
                cause: EndCause::MediaFailed,
                ..
            })
        ));
    }
}

#[test]
fn a_reinvite_in_clear_is_refused() {
    let (mut call, now, invite) = start_secure();
    call.handle_datagram(&reply(&invite, 200, "", &secure_answer(1)), now);
    events(&mut call);
    sent(&mut call);
    let clear = from_trunk(&invite, "INVITE", 1, "z9hG4bKre1", ANSWER_SDP);
    call.handle_datagram(&clear, now);
    let out = sent(&mut call);
    assert!(out[0].starts_with("SIP/2.0 488 "), "{out:?}");
    assert!(events(&mut call).is_empty());
    let rekeyed = from_trunk(&invite, "INVITE", 2, "z9hG4bKre2", &secure_answer(5));
    call.handle_datagram(&rekeyed, now);
    let out = sent(&mut call);
    assert!(out[0].starts_with("SIP/2.0 200 "), "{out:?}");
    let ours = Crypto {
        tag: 5,
        key: our_key(),
    }
    .line();
    assert!(out[0].contains(&ours), "{out:?}");
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::MediaChanged { media }] if media.srtp.is_some()
    ));
}
