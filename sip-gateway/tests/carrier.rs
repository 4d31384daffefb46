//! The gateway against the simulated carrier, over real loopback sockets.

mod common;

use std::time::Duration;

use common::{channels, dominant, next_event, request, temp_wav, wait_for};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    AmdVerdict, Audio, CallEventKind, DialError, EndCause, Gateway, GatewayConfig, GreetingEnded,
    TrunkConfig,
};
use sip_gateway::media::tone::sine;

const LIMIT: Duration = Duration::from_secs(5);

async fn carrier(outcome: Outcome, tone: f64) -> Carrier {
    Carrier::start(config(outcome, tone)).await.unwrap()
}

fn config(outcome: Outcome, tone: f64) -> CarrierConfig {
    CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        mix: Mix::always(outcome),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        machine_answer_delay: Duration::from_millis(30),
        machine_greeting: Duration::from_millis(300),
        audio: CarrierAudio::Tone(tone),
        ..CarrierConfig::default()
    }
}

async fn gateway(trunks: Vec<TrunkConfig>) -> Gateway {
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        ..GatewayConfig::loopback()
    };
    Gateway::start(config, trunks).await.unwrap()
}

fn ended(kind: &CallEventKind) -> bool {
    matches!(kind, CallEventKind::Ended { .. })
}

#[tokio::test]
async fn answered_call_carries_audio_both_ways_into_the_recording() {
    let carrier = carrier(Outcome::Answer, 1000.0).await;
    let gw = gateway(vec![TrunkConfig::new("sim", carrier.sip_addr())]).await;
    let mut events = gw.events();
    let call = gw.dial(request("sim", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");
    let path = temp_wav("carrier");
    gw.record(call, &path).await.unwrap();
    let tone = sine(440.0, 8000, 8000, 8000);
    gw.play(call, Audio::Samples(tone.into())).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| {
        *k == CallEventKind::PlaybackFinished
    })
    .await;
    gw.hangup(call).await.unwrap();
    let end = next_event(&mut events, call, LIMIT).await;
    assert_eq!(
        end,
        CallEventKind::Ended {
            cause: EndCause::LocalHangup
        }
    );
    let (left, right) = channels(&path);
    assert!(
        right.len() > 4000,
        "recording holds {} samples",
        right.len()
    );
    assert_eq!(dominant(&left), Some(440.0), "what we sent, on the left");
    assert_eq!(dominant(&right), Some(1000.0), "the customer, on the right");
    assert!(carrier.stats().rtp_received > 20);
}

#[tokio::test]
async fn busy_and_unanswered_calls_end_with_their_causes() {
    let busy = carrier(Outcome::Busy, 440.0).await;
    let silent = carrier(Outcome::NoAnswer, 440.0).await;
    let gw = gateway(vec![
        TrunkConfig::new("busy", busy.sip_addr()),
        TrunkConfig::new("silent", silent.sip_addr()),
    ])
    .await;
    let mut events = gw.events();
    let call = gw.dial(request("busy", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::Busy
        })
    );
    let call = gw
        .dial(request("silent", Duration::from_millis(300)))
        .await
        .unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::NoAnswer
        })
    );
    assert_eq!(silent.stats().cancelled, 1);
}

#[tokio::test]
async fn answering_machine_hangs_up_after_its_greeting() {
    let machine = carrier(Outcome::Machine, 440.0).await;
    let gw = gateway(vec![TrunkConfig::new("sim", machine.sip_addr())]).await;
    let mut events = gw.events();
    let call = gw.dial(request("sim", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert!(seen.contains(&CallEventKind::Answered), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::RemoteHangup
        })
    );
}

/// A carrier whose people say one word and whose machines say eight,
/// greeting long enough to be told.
async fn speaking_carrier(outcome: Outcome) -> Carrier {
    let config = CarrierConfig {
        machine_greeting: Duration::from_secs(4),
        ..config(outcome, 440.0)
    };
    Carrier::start(config.speaking(440.0)).await.unwrap()
}

#[tokio::test]
async fn machine_detection_tells_a_person_from_a_machine() {
    for (outcome, expected) in [
        (Outcome::Answer, AmdVerdict::Human),
        (Outcome::Machine, AmdVerdict::Machine),
    ] {
        let far_end = speaking_carrier(outcome).await;
        let gw = gateway(vec![TrunkConfig::new("sim", far_end.sip_addr())]).await;
        let mut events = gw.events();
        let mut detected = request("sim", LIMIT);
        detected.detect_machine = true;
        let call = gw.dial(detected).await.unwrap();
        let seen = wait_for(&mut events, call, LIMIT, |k| {
            matches!(k, CallEventKind::AnsweredBy { .. })
        })
        .await;
        let answered = seen.iter().position(|k| *k == CallEventKind::Answered);
        assert!(answered.is_some_and(|at| at + 1 < seen.len()), "{seen:?}");
        assert_eq!(
            seen.last(),
            Some(&CallEventKind::AnsweredBy { verdict: expected }),
            "{outcome:?}"
        );
        gw.hangup(call).await.unwrap();
    }
}

/// A machine that greets with eight words, then beeps at 1000 Hz or not,
/// then records for ten seconds.
async fn recording_machine(beep_hz: Option<f64>) -> Carrier {
    let config = CarrierConfig {
        machine_greeting: Duration::from_secs(10),
        machine_audio: Some(CarrierAudio::Greeting { words: 8, beep_hz }),
        ..config(Outcome::Machine, 440.0)
    };
    Carrier::start(config).await.unwrap()
}

#[tokio::test]
async fn a_message_is_left_after_the_beep_or_after_the_greeting_falls_silent() {
    // Eight words 300 ms long, 150 ms apart: the last ends at 3.45 s; the
    // beep after it at 4.1 s, else 1.5 s of quiet ends the greeting at 4.95 s.
    for (beep, expected, earliest) in [
        (Some(1000.0), GreetingEnded::Beep, 4.0),
        (None, GreetingEnded::Silence, 4.8),
    ] {
        let machine = recording_machine(beep).await;
        machine.start_capture();
        let gw = gateway(vec![TrunkConfig::new("sim", machine.sip_addr())]).await;
        let mut events = gw.events();
        let mut detected = request("sim", LIMIT);
        detected.detect_machine = true;
        let call = gw.dial(detected).await.unwrap();
        wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
        let answered = std::time::Instant::now();
        let verdict = wait_for(&mut events, call, LIMIT, |k| {
            matches!(k, CallEventKind::AnsweredBy { .. })
        })
        .await;
        assert_eq!(
            verdict.last(),
            Some(&CallEventKind::AnsweredBy {
                verdict: AmdVerdict::Machine
            })
        );
        let message: std::sync::Arc<[i16]> = sine(697.0, 8000, 8000, 8000).into();
        gw.leave_message(call, Audio::Samples(message))
            .await
            .unwrap();
        let seen = wait_for(&mut events, call, LIMIT, |k| {
            matches!(k, CallEventKind::GreetingEnded { .. })
        })
        .await;
        let waited = answered.elapsed().as_secs_f64();
        assert_eq!(
            seen.last(),
            Some(&CallEventKind::GreetingEnded { ended: expected })
        );
        assert!(
            (earliest..earliest + 1.5).contains(&waited),
            "{expected:?} heard {waited:.2} s after the answer"
        );
        wait_for(&mut events, call, LIMIT, |k| {
            *k == CallEventKind::PlaybackFinished
        })
        .await;
        gw.hangup(call).await.unwrap();
        wait_for(&mut events, call, LIMIT, ended).await;
        let heard = machine.take_capture().audio;
        let message_heard = heard
            .chunks(1600)
            .filter(|c| dominant(c) == Some(697.0))
            .count();
        // One second of message is five 200 ms chunks; alignment may split one.
        assert!(
            message_heard >= 4,
            "the machine recorded {message_heard} chunks"
        );
    }
}

#[tokio::test]
async fn calls_dialled_without_detection_report_no_verdict() {
    let far_end = speaking_carrier(Outcome::Answer).await;
    let gw = gateway(vec![TrunkConfig::new("sim", far_end.sip_addr())]).await;
    let mut events = gw.events();
    let call = gw.dial(request("sim", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    // A person is told within 1.2 s of speech; wait well past that.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gw.hangup(call).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert!(
        !seen
            .iter()
            .any(|k| matches!(k, CallEventKind::AnsweredBy { .. })),
        "{seen:?}"
    );
}

#[tokio::test]
async fn bridged_calls_hear_each_other() {
    let low = carrier(Outcome::Answer, 440.0).await;
    let high = carrier(Outcome::Answer, 1000.0).await;
    let gw = gateway(vec![
        TrunkConfig::new("low", low.sip_addr()),
        TrunkConfig::new("high", high.sip_addr()),
    ])
    .await;
    let mut events = gw.events();
    let a = gw.dial(request("low", LIMIT)).await.unwrap();
    let b = gw.dial(request("high", LIMIT)).await.unwrap();
    let mut answered = gw.events();
    wait_for(&mut events, a, LIMIT, |k| *k == CallEventKind::Answered).await;
    wait_for(&mut answered, b, LIMIT, |k| *k == CallEventKind::Answered).await;
    let (path_a, path_b) = (temp_wav("bridge-a"), temp_wav("bridge-b"));
    gw.record(a, &path_a).await.unwrap();
    gw.record(b, &path_b).await.unwrap();
    gw.bridge(a, b).await.unwrap();
    // Audio flows for a fixed stretch of real time; nothing is awaited here.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    gw.hangup(a).await.unwrap();
    gw.hangup(b).await.unwrap();
    wait_for(&mut events, a, LIMIT, ended).await;
    wait_for(&mut answered, b, LIMIT, ended).await;
    let (a_sent, a_heard) = channels(&path_a);
    let (b_sent, b_heard) = channels(&path_b);
    assert_eq!(dominant(&a_heard), Some(440.0));
    assert_eq!(dominant(&b_heard), Some(1000.0));
    assert_eq!(
        dominant(&a_sent),
        Some(1000.0),
        "leg A is sent leg B's audio"
    );
    assert_eq!(
        dominant(&b_sent),
        Some(440.0),
        "leg B is sent leg A's audio"
    );
}

#[tokio::test]
async fn trunk_limits_refuse_extra_calls() {
    let sim = carrier(Outcome::NoAnswer, 440.0).await;
    let mut one_line = TrunkConfig::new("one-line", sim.sip_addr());
    one_line.max_concurrent = 1;
    let mut slow = TrunkConfig::new("slow", sim.sip_addr());
    slow.max_cps = 1;
    let gw = gateway(vec![one_line, slow]).await;
    gw.dial(request("one-line", LIMIT)).await.unwrap();
    let refused = gw.dial(request("one-line", LIMIT)).await;
    assert!(
        matches!(refused, Err(DialError::TooManyCalls)),
        "{refused:?}"
    );
    gw.dial(request("slow", LIMIT)).await.unwrap();
    let refused = gw.dial(request("slow", LIMIT)).await;
    assert!(
        matches!(refused, Err(DialError::RateLimited)),
        "{refused:?}"
    );
    let unknown = gw.dial(request("nowhere", LIMIT)).await;
    assert!(
        matches!(unknown, Err(DialError::UnknownTrunk(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_silent_trunk_fails_over_to_the_next() {
    let sim = carrier(Outcome::Answer, 440.0).await;
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let gw = gateway(vec![
        TrunkConfig::new("dead", dead.local_addr().unwrap()),
        TrunkConfig::new("live", sim.sip_addr()),
    ])
    .await;
    let mut events = gw.events();
    let call = gw.dial(request("dead", LIMIT)).await.unwrap();
    // With T1 at 20 ms, Timer B gives up on the dead trunk after 1.28 s.
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert_eq!(sim.stats().answered, 1);
}

#[tokio::test]
async fn a_silent_trunk_never_fails_over_to_another_node_of_the_service() {
    let node = carrier(Outcome::Answer, 440.0).await;
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut peer = TrunkConfig::new("node-b", node.sip_addr());
    peer.peer = true;
    let gw = gateway(vec![
        TrunkConfig::new("dead", dead.local_addr().unwrap()),
        peer,
    ])
    .await;
    let mut events = gw.events();
    let call = gw.dial(request("dead", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert!(
        !seen.contains(&CallEventKind::Answered),
        "the call ended on the dead trunk: {seen:?}"
    );
    assert_eq!(node.stats().answered, 0, "the other node was never called");
    // Called by name, the other node is reached.
    let handed = gw.dial(request("node-b", LIMIT)).await.unwrap();
    wait_for(&mut events, handed, LIMIT, |k| {
        *k == CallEventKind::Answered
    })
    .await;
    assert_eq!(node.stats().answered, 1);
}

#[tokio::test]
async fn a_call_whose_rtp_stops_is_ended_after_the_media_timeout() {
    let far = carrier(Outcome::Answer, 440.0).await;
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        media_timeout: Duration::from_millis(600),
        ..GatewayConfig::loopback()
    };
    let gw = Gateway::start(config, vec![TrunkConfig::new("far", far.sip_addr())])
        .await
        .unwrap();
    let mut events = gw.events();
    let call = gw.dial(request("far", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    // Audio flows for longer than the timeout: the call stays up.
    tokio::time::sleep(Duration::from_millis(900)).await;
    far.set_muted(true);
    let muted_at = tokio::time::Instant::now();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::MediaTimeout
        })
    );
    let after = muted_at.elapsed();
    assert!(
        after >= Duration::from_millis(500) && after < Duration::from_secs(3),
        "ended {after:?} after the far end fell silent"
    );
}

#[tokio::test]
async fn a_paused_recording_keeps_silence_where_the_audio_was() {
    let far = carrier(Outcome::Answer, 440.0).await;
    let gw = gateway(vec![TrunkConfig::new("far", far.sip_addr())]).await;
    let mut events = gw.events();
    let call = gw.dial(request("far", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    let path = temp_wav("paused");
    gw.record(call, &path).await.unwrap();
    // One second recorded, one paused (a card number is read out), one more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    gw.pause_recording(call).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    gw.resume_recording(call).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    gw.hangup(call).await.unwrap();
    wait_for(&mut events, call, LIMIT, ended).await;
    let (_, right) = channels(&path);
    assert!(
        right.len() >= 8000 * 5 / 2,
        "about 3 s recorded: {}",
        right.len()
    );
    let second = |from: f64, to: f64| &right[(from * 8000.0) as usize..(to * 8000.0) as usize];
    assert_eq!(dominant(second(0.3, 0.8)), Some(440.0), "before the pause");
    assert!(
        second(1.25, 1.75).iter().all(|s| *s == 0),
        "nothing of the paused second is kept"
    );
    let end = right.len() as f64 / 8000.0;
    assert_eq!(
        dominant(second(end - 0.7, end - 0.2)),
        Some(440.0),
        "after the resume"
    );
}

#[tokio::test]
async fn a_watched_call_gets_its_own_events_through_ended_and_no_other() {
    let carrier = carrier(Outcome::Answer, 1000.0).await;
    let gw = gateway(vec![TrunkConfig::new("sim", carrier.sip_addr())]).await;
    let (tx, mut watched) = tokio::sync::mpsc::unbounded_channel();
    let call = gw.dial_watched(request("sim", LIMIT), tx).await.unwrap();
    // Another call, not watched, runs beside it.
    let mut all = gw.events();
    let other = gw.dial(request("sim", LIMIT)).await.unwrap();
    wait_for(&mut all, other, LIMIT, |k| *k == CallEventKind::Answered).await;
    let mut seen = Vec::new();
    loop {
        let event = match tokio::time::timeout(LIMIT, watched.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => panic!("the watch did not close after {seen:?}"),
        };
        assert_eq!(event.call_ref, call, "only the watched call's events");
        if event.kind == CallEventKind::Answered {
            gw.hangup(call).await.unwrap();
        }
        seen.push(event.kind);
    }
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");
    assert!(seen.contains(&CallEventKind::Answered), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        }),
        "Ended comes last, and then the channel closes: {seen:?}"
    );
    gw.hangup(other).await.unwrap();
}

#[tokio::test]
async fn a_trunk_written_as_host_and_port_is_reached() {
    let carrier = carrier(Outcome::Answer, 1000.0).await;
    let mut trunk = TrunkConfig::new("sim", carrier.sip_addr());
    trunk.host = format!("127.0.0.1:{}", carrier.sip_addr().port());
    trunk.port = None;
    let gw = gateway(vec![trunk]).await;
    let mut events = gw.events();
    let call = gw.dial(request("sim", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    gw.hangup(call).await.unwrap();
    let mut bad = TrunkConfig::new("bad", carrier.sip_addr());
    bad.host = "127.0.0.1:port".into();
    let refused = Gateway::start(GatewayConfig::loopback(), vec![bad]).await;
    let message = refused.expect_err("a bad port is refused").to_string();
    assert!(
        message.contains("\"bad\"") && message.contains("port"),
        "{message}"
    );
}
