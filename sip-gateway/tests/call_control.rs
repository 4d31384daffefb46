//! What an agent's softphone does to a live call, against the simulated carrier as the
//! customer and str0m softphones as agents and supervisors: hold, DTMF and listening in.
//!
//! The carrier plays the customer's 1000 Hz and keeps what it receives, so each test
//! checks what the customer actually heard; the softphones play their own tones and
//! keep what they hear.

mod common;
#[path = "common/softphone.rs"]
mod softphone;

use std::time::Duration;

use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    CallEventKind, CallRef, Gateway, GatewayConfig, GatewayError, TrunkConfig,
};
use sip_gateway::media::hold::HOLD_NOTES;
use sip_gateway::media::tone::goertzel_power;

use common::{channels, request, temp_wav, wait_for};
use softphone::Softphone;

const LIMIT: Duration = Duration::from_secs(10);
const CUSTOMER: f64 = 1000.0;
const AGENT: f64 = 440.0;
const SECOND_AGENT: f64 = 697.0;
const SECOND_CUSTOMER: f64 = 1400.0;
const SUPERVISOR: f64 = 350.0;
const SECOND_SUPERVISOR: f64 = 852.0;
/// Goertzel power of a tone that is clearly there (a sine of ~1000 peak gives 0.00023).
const PRESENT: f64 = 0.0005;
/// Goertzel power below which a tone is absent.
const ABSENT: f64 = 0.0001;

/// A gateway with three trunks: "answer" to a carrier that answers, "ring" to one that
/// never does, and "second" to another that answers with [`SECOND_CUSTOMER`].
struct Setup {
    gateway: Gateway,
    customer: Carrier,
    second: Carrier,
    _ringing: Carrier,
}

async fn setup() -> Setup {
    let customer = carrier(Outcome::Answer, CUSTOMER).await;
    customer.start_capture();
    let second = carrier(Outcome::Answer, SECOND_CUSTOMER).await;
    second.start_capture();
    let ringing = carrier(Outcome::NoAnswer, CUSTOMER).await;
    let trunks = vec![
        TrunkConfig::new("answer", customer.sip_addr()),
        TrunkConfig::new("ring", ringing.sip_addr()),
        TrunkConfig::new("second", second.sip_addr()),
    ];
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        ..GatewayConfig::loopback()
    };
    let gateway = Gateway::start(config, trunks).await.unwrap();
    Setup {
        gateway,
        customer,
        second,
        _ringing: ringing,
    }
}

async fn carrier(outcome: Outcome, tone: f64) -> Carrier {
    Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        mix: Mix::always(outcome),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        audio: CarrierAudio::Tone(tone),
        ..CarrierConfig::default()
    })
    .await
    .unwrap()
}

/// Dials the answering carrier and waits for the answer.
async fn answered_call(gateway: &Gateway) -> CallRef {
    answered_call_through(gateway, "answer").await
}

/// Dials through `trunk` and waits for the answer.
async fn answered_call_through(gateway: &Gateway, trunk: &str) -> CallRef {
    let mut events = gateway.events();
    let call = gateway.dial(request(trunk, LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    call
}

/// Waits `span`, then returns the audio the customer received during it.
async fn customer_hears(customer: &Carrier, span: Duration) -> Vec<i16> {
    customer.take_capture();
    tokio::time::sleep(span).await;
    customer.take_capture().audio
}

/// Splits audio into 100 ms blocks and returns the power of `hz` in each.
fn block_powers(samples: &[i16], hz: f64) -> Vec<f64> {
    samples
        .chunks_exact(800)
        .map(|block| goertzel_power(block, hz, 8000))
        .collect()
}

fn power(samples: &[i16], hz: f64) -> f64 {
    goertzel_power(samples, hz, 8000)
}

/// Fails unless `samples` carry the hold chime: each note in some 100 ms block, and never `absent`.
fn assert_hold_tone(samples: &[i16], absent: &[f64], what: &str) {
    assert!(
        samples.len() >= 8000,
        "{what}: only {} samples",
        samples.len()
    );
    for note in HOLD_NOTES {
        let loud = block_powers(samples, note)
            .into_iter()
            .filter(|p| *p > PRESENT)
            .count();
        assert!(
            loud >= 2,
            "{what}: the {note} Hz note sounded in {loud} blocks"
        );
    }
    for &hz in absent {
        let worst = block_powers(samples, hz).into_iter().fold(0.0, f64::max);
        assert!(worst < ABSENT, "{what}: {hz} Hz got through ({worst})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_customer_hears_the_hold_tone_and_neither_side_hears_the_other() {
    let Setup {
        gateway, customer, ..
    } = setup().await;
    let agent = Softphone::attach(&gateway, AGENT).await.unwrap();
    let call = answered_call(&gateway).await;
    gateway.bridge(call, agent.call_ref).await.unwrap();
    let recording = temp_wav("hold");
    gateway.record(call, &recording).await.unwrap();

    let heard = customer_hears(&customer, Duration::from_millis(600)).await;
    assert!(
        power(&heard, AGENT) > PRESENT,
        "the customer hears the agent"
    );
    let heard = agent.hear_for(Duration::from_millis(400)).await;
    assert!(
        power(&heard, CUSTOMER) > PRESENT,
        "the agent hears the customer"
    );

    gateway.hold(call, true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent.take_heard();
    let heard = customer_hears(&customer, Duration::from_millis(1700)).await;
    assert_hold_tone(&heard, &[AGENT], "held, the customer");
    let agent_heard = agent.take_heard();
    assert!(
        power(&agent_heard, CUSTOMER) < ABSENT,
        "held, the agent heard the customer"
    );

    // The agent's page reloads: a new leg is bridged to the held call, which stays held.
    let reloaded = Softphone::attach(&gateway, SECOND_AGENT).await.unwrap();
    gateway.bridge(call, reloaded.call_ref).await.unwrap();
    gateway.hangup(agent.call_ref).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    reloaded.take_heard();
    let heard = customer_hears(&customer, Duration::from_millis(1700)).await;
    assert_hold_tone(&heard, &[AGENT, SECOND_AGENT], "held after a re-bridge");
    assert!(power(&reloaded.take_heard(), CUSTOMER) < ABSENT);

    gateway.hold(call, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let heard = customer_hears(&customer, Duration::from_millis(600)).await;
    assert!(
        power(&heard, SECOND_AGENT) > PRESENT,
        "off hold, the customer hears the agent again"
    );
    for note in HOLD_NOTES {
        assert!(
            power(&heard, note) < ABSENT,
            "off hold, {note} Hz still plays"
        );
    }
    let heard = reloaded.hear_for(Duration::from_millis(400)).await;
    assert!(
        power(&heard, CUSTOMER) > PRESENT,
        "off hold, the agent hears the customer"
    );

    let mut events = gateway.events();
    gateway.hangup(call).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    let (sent, received) = channels(&recording);
    assert!(power(&sent, AGENT) > ABSENT, "the recording has the agent");
    assert!(
        block_powers(&sent, HOLD_NOTES[0])
            .iter()
            .any(|p| *p > PRESENT),
        "the recording has the hold tone the customer heard"
    );
    assert!(
        power(&received, CUSTOMER) > PRESENT,
        "the recording has the customer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_refuses_unknown_ringing_and_agent_references() {
    let setup = setup().await;
    let gateway = &setup.gateway;
    let unknown = gateway.hold(CallRef::random(), true).await;
    assert!(
        matches!(unknown, Err(GatewayError::NoSuchCall)),
        "{unknown:?}"
    );

    let mut events = gateway.events();
    let ringing = gateway.dial(request("ring", LIMIT)).await.unwrap();
    wait_for(&mut events, ringing, LIMIT, |k| {
        *k == CallEventKind::Ringing
    })
    .await;
    let refused = gateway.hold(ringing, true).await;
    assert!(
        matches!(refused, Err(GatewayError::NotAnswered)),
        "{refused:?}"
    );
    gateway.hangup(ringing).await.unwrap();

    let agent = Softphone::attach(gateway, AGENT).await.unwrap();
    let refused = gateway.hold(agent.call_ref, true).await;
    assert!(
        matches!(refused, Err(GatewayError::NotATrunkCall)),
        "{refused:?}"
    );
}

/// Waits until the customer has received `count` digits and their last packets, or `LIMIT`;
/// returns the capture.
async fn customer_digits(customer: &Carrier, count: usize) -> sip_gateway::carrier::Capture {
    let mut all = sip_gateway::carrier::Capture::default();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut settled = false;
    while !settled && tokio::time::Instant::now() < deadline {
        // A digit counts at its first end packet; the next 100 ms bring its repeats.
        settled = all.digits.len() >= count;
        let wait = if settled { 100 } else { 50 };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let more = customer.take_capture();
        all.audio.extend(more.audio);
        all.events.extend(more.events);
        all.digits.extend(more.digits);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_reach_the_customer_as_rfc_4733_events_in_order() {
    let Setup {
        gateway, customer, ..
    } = setup().await;
    let agent = Softphone::attach(&gateway, AGENT).await.unwrap();
    let call = answered_call(&gateway).await;
    gateway.bridge(call, agent.call_ref).await.unwrap();
    let heard = customer_hears(&customer, Duration::from_millis(400)).await;
    assert!(
        power(&heard, AGENT) > PRESENT,
        "the customer hears the agent"
    );

    customer.take_capture();
    gateway.send_dtmf(call, "123*#0").await.unwrap();
    gateway.send_dtmf(call, "d").await.unwrap();
    let capture = customer_digits(&customer, 7).await;
    assert_eq!(capture.digits, ['1', '2', '3', '*', '#', '0', 'D']);

    // Each digit: one timestamp, the marker first, growing durations, the end sent three times.
    let mut digits = Vec::new();
    for event in &capture.events {
        match digits.last_mut() {
            Some((ts, group)) if *ts == event.timestamp => Vec::push(group, *event),
            _ => digits.push((event.timestamp, vec![*event])),
        }
    }
    assert_eq!(digits.len(), 7, "one event per digit");
    for (_, group) in &digits {
        assert!(group[0].marker && group[1..].iter().all(|e| !e.marker));
        let durations: Vec<u16> = group.iter().map(|e| e.event.duration).collect();
        assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");
        assert_eq!(group.iter().filter(|e| e.event.end).count(), 3);
        assert!(!group[0].event.end);
        let last = group[group.len() - 1].event.duration;
        assert!((720..=880).contains(&last), "a digit of {last} samples");
        for pair in group.windows(2) {
            assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        }
    }
    // Tone and gap: digits start 160 to 220 ms apart.
    for pair in digits.windows(2) {
        let apart = pair[1].1[0].at - pair[0].1[0].at;
        assert!(
            (Duration::from_millis(160)..=Duration::from_millis(260)).contains(&apart),
            "digits {apart:?} apart"
        );
    }
    // While digits play, the agent's audio is replaced: the gaps are silence.
    let blocks = block_powers(&capture.audio, AGENT);
    let during = &blocks[1..blocks.len().saturating_sub(3)];
    assert!(!during.is_empty());
    assert!(
        during.iter().all(|p| *p < ABSENT),
        "the agent was heard between digits: {blocks:?}"
    );
    let heard = customer_hears(&customer, Duration::from_millis(400)).await;
    assert!(
        power(&heard, AGENT) > PRESENT,
        "after the digits, the agent again"
    );
}

/// Finds DTMF keys in audio by Goertzel over 20 ms frames; a key counts once per run of frames.
fn decode_in_band(samples: &[i16]) -> String {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let strongest = |frame: &[i16], set: &[f64; 4]| {
        let mut powers: Vec<(usize, f64)> = set
            .iter()
            .map(|&hz| goertzel_power(frame, hz, 8000))
            .enumerate()
            .collect();
        powers.sort_by(|a, b| b.1.total_cmp(&a.1));
        (powers[0].1 > 0.002 && powers[1].1 < powers[0].1 / 10.0).then_some(powers[0].0)
    };
    let mut keys = String::new();
    let mut run: Option<(char, usize)> = None;
    for frame in samples.chunks_exact(160) {
        let key = strongest(frame, &ROWS)
            .zip(strongest(frame, &COLUMNS))
            .and_then(|(r, c)| KEYS[r].chars().nth(c));
        run = match (run, key) {
            (Some((k, n)), Some(now)) if k == now => Some((k, n + 1)),
            (previous, now) => {
                if let Some((k, _)) = previous.filter(|(_, n)| *n >= 2) {
                    keys.push(k);
                }
                now.map(|k| (k, 1))
            }
        };
    }
    if let Some((k, _)) = run.filter(|(_, n)| *n >= 2) {
        keys.push(k);
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_telephone_event_digits_are_sent_as_tones() {
    let Setup {
        gateway, customer, ..
    } = setup().await;
    customer.set_telephone_events(false);
    let call = answered_call(&gateway).await;
    customer.take_capture();
    gateway.send_dtmf(call, "159#A0").await.unwrap();
    tokio::time::sleep(Duration::from_millis(6 * 180 + 400)).await;
    let capture = customer.take_capture();
    assert!(capture.events.is_empty(), "no telephone events were agreed");
    assert_eq!(decode_in_band(&capture.audio), "159#A0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_digits_and_bad_calls_are_refused_and_nothing_is_sent() {
    let setup = setup().await;
    let (gateway, customer) = (&setup.gateway, &setup.customer);
    let call = answered_call(gateway).await;
    customer.take_capture();
    for bad in ["12x4", "", "1 2", "٣", &"1".repeat(33)] {
        let refused = gateway.send_dtmf(call, bad).await;
        assert!(
            matches!(refused, Err(GatewayError::InvalidDigits(_))),
            "{bad:?}: {refused:?}"
        );
    }
    let unknown = gateway.send_dtmf(CallRef::random(), "1").await;
    assert!(
        matches!(unknown, Err(GatewayError::NoSuchCall)),
        "{unknown:?}"
    );
    let agent = Softphone::attach(gateway, AGENT).await.unwrap();
    let refused = gateway.send_dtmf(agent.call_ref, "1").await;
    assert!(
        matches!(refused, Err(GatewayError::NotATrunkCall)),
        "{refused:?}"
    );

    let mut events = gateway.events();
    let ringing = gateway.dial(request("ring", LIMIT)).await.unwrap();
    wait_for(&mut events, ringing, LIMIT, |k| {
        *k == CallEventKind::Ringing
    })
    .await;
    let refused = gateway.send_dtmf(ringing, "1").await;
    assert!(
        matches!(refused, Err(GatewayError::NotAnswered)),
        "{refused:?}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        customer.take_capture().events.is_empty(),
        "a refused digit went out"
    );
    // The largest allowed string goes through whole.
    gateway.send_dtmf(call, &"7".repeat(32)).await.unwrap();
    let capture = customer_digits(customer, 32).await;
    assert_eq!(capture.digits, vec!['7'; 32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_hear_both_sides_and_no_one_hears_them() {
    let setup = setup().await;
    let (gateway, customer) = (&setup.gateway, &setup.customer);
    let agent = Softphone::attach(gateway, AGENT).await.unwrap();
    let call = answered_call(gateway).await;
    gateway.bridge(call, agent.call_ref).await.unwrap();
    let supervisor = Softphone::attach(gateway, SUPERVISOR).await.unwrap();
    let other = Softphone::attach(gateway, SECOND_SUPERVISOR).await.unwrap();
    gateway.listen(call, supervisor.call_ref).await.unwrap();
    gateway.listen(call, other.call_ref).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    for (who, listener) in [("first", &supervisor), ("second", &other)] {
        let heard = listener.hear_for(Duration::from_millis(600)).await;
        assert!(
            power(&heard, CUSTOMER) > PRESENT,
            "{who} hears the customer"
        );
        assert!(power(&heard, AGENT) > PRESENT, "{who} hears the agent");
    }
    let heard = customer_hears(customer, Duration::from_millis(600)).await;
    assert!(
        power(&heard, AGENT) > PRESENT,
        "the customer hears the agent"
    );
    for hz in [SUPERVISOR, SECOND_SUPERVISOR] {
        assert!(
            power(&heard, hz) < ABSENT,
            "the customer heard a supervisor"
        );
    }
    let heard = agent.hear_for(Duration::from_millis(400)).await;
    assert!(
        power(&heard, CUSTOMER) > PRESENT,
        "the agent hears the customer"
    );
    for hz in [SUPERVISOR, SECOND_SUPERVISOR] {
        assert!(power(&heard, hz) < ABSENT, "the agent heard a supervisor");
    }

    // The first supervisor moves to another call, and hears only that one.
    let second = answered_call_through(gateway, "second").await;
    gateway.listen(second, supervisor.call_ref).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let heard = supervisor.hear_for(Duration::from_millis(500)).await;
    assert!(
        power(&heard, SECOND_CUSTOMER) > PRESENT,
        "the new call is heard"
    );
    assert!(
        power(&heard, CUSTOMER) < ABSENT,
        "the old call is still heard"
    );
    assert!(
        power(&heard, AGENT) < ABSENT,
        "the old agent is still heard"
    );
    let heard = other.hear_for(Duration::from_millis(400)).await;
    assert!(
        power(&heard, CUSTOMER) > PRESENT,
        "the other one still listens"
    );
    let heard = customer_hears(&setup.second, Duration::from_millis(400)).await;
    assert!(
        power(&heard, SUPERVISOR) < ABSENT,
        "the new customer heard the supervisor"
    );

    // The second supervisor hangs up; the call goes on.
    let mut events = gateway.events();
    gateway.hangup(other.call_ref).await.unwrap();
    wait_for(&mut events, other.call_ref, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    let heard = agent.hear_for(Duration::from_millis(300)).await;
    assert!(power(&heard, CUSTOMER) > PRESENT, "the call goes on");

    // The listened call ends; the supervisor's leg stays up and listens again.
    gateway.hangup(second).await.unwrap();
    wait_for(&mut events, second, LIMIT, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(event) = events.try_recv() {
        assert_ne!(event.call_ref, supervisor.call_ref, "{:?}", event.kind);
    }
    gateway.listen(call, supervisor.call_ref).await.unwrap();
    let heard = supervisor.hear_for(Duration::from_millis(500)).await;
    assert!(
        power(&heard, CUSTOMER) > PRESENT,
        "listening again after a call ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_refuses_unknown_and_mismatched_references() {
    let setup = setup().await;
    let gateway = &setup.gateway;
    let call = answered_call(gateway).await;
    let supervisor = Softphone::attach(gateway, SUPERVISOR).await.unwrap();
    let cases = [
        (CallRef::random(), supervisor.call_ref, "unknown call"),
        (call, CallRef::random(), "unknown listener"),
        (
            supervisor.call_ref,
            supervisor.call_ref,
            "a leg as the call",
        ),
        (call, call, "a call as the listener"),
    ];
    for (listened, listener, what) in cases {
        let refused = gateway.listen(listened, listener).await;
        let expected = match what {
            "a leg as the call" => matches!(refused, Err(GatewayError::NotATrunkCall)),
            "a call as the listener" => matches!(refused, Err(GatewayError::NotAnAgentLeg)),
            _ => matches!(refused, Err(GatewayError::NoSuchCall)),
        };
        assert!(expected, "{what}: {refused:?}");
    }
    // Nothing was set up by the refusals: the supervisor hears nothing.
    let heard = supervisor.hear_for(Duration::from_millis(300)).await;
    assert!(power(&heard, CUSTOMER) < ABSENT);
}
