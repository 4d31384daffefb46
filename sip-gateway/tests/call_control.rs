//! What an agent's softphone does to a live call, against the simulated carrier as the
//! customer and str0m softphones as agents: hold.
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
/// Goertzel power of a tone that is clearly there (a sine of ~1000 peak gives 0.00023).
const PRESENT: f64 = 0.0005;
/// Goertzel power below which a tone is absent.
const ABSENT: f64 = 0.0001;

/// A gateway with two trunks: "answer" to a carrier that answers, "ring" to one that never does.
struct Setup {
    gateway: Gateway,
    customer: Carrier,
    _ringing: Carrier,
}

async fn setup() -> Setup {
    let customer = carrier(Outcome::Answer).await;
    customer.start_capture();
    let ringing = carrier(Outcome::NoAnswer).await;
    let trunks = vec![
        TrunkConfig::new("answer", customer.sip_addr()),
        TrunkConfig::new("ring", ringing.sip_addr()),
    ];
    let config = GatewayConfig {
        t1: Duration::from_millis(20),
        ..GatewayConfig::loopback()
    };
    let gateway = Gateway::start(config, trunks).await.unwrap();
    Setup {
        gateway,
        customer,
        _ringing: ringing,
    }
}

async fn carrier(outcome: Outcome) -> Carrier {
    Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        mix: Mix::always(outcome),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        audio: CarrierAudio::Tone(CUSTOMER),
        ..CarrierConfig::default()
    })
    .await
    .unwrap()
}

/// Dials the answering carrier and waits for the answer.
async fn answered_call(gateway: &Gateway) -> CallRef {
    let mut events = gateway.events();
    let call = gateway.dial(request("answer", LIMIT)).await.unwrap();
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
