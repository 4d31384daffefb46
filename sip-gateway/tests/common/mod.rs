//! Helpers shared by the gateway's shell and interop tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    Audio, CallEvent, CallEventKind, CallRef, DialRequest, EndCause, Gateway,
};
use sip_gateway::media::tone::dominant_frequency;
use tokio::sync::broadcast::Receiver;

/// Frequencies a recording is checked against.
pub const CANDIDATES: [f64; 5] = [350.0, 440.0, 697.0, 1000.0, 1400.0];

/// Returns a request for a test call through `trunk`.
pub fn request(trunk: &str, ring_timeout: Duration) -> DialRequest {
    DialRequest {
        number: "+441632960123".into(),
        caller_id: "+442079460000".into(),
        trunk: trunk.into(),
        ring_timeout,
        call_ref: CallRef::random(),
        detect_machine: false,
    }
}

/// Starts a simulated carrier on loopback that rings briefly, then ends
/// every call with `outcome`, playing `tone` Hz (silence when `None`).
pub async fn carrier(outcome: Outcome, tone: Option<f64>) -> Carrier {
    Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().expect("a valid literal"),
        mix: Mix::always(outcome),
        ring_delay: Duration::from_millis(20),
        answer_delay: Duration::from_millis(60),
        audio: tone.map_or(CarrierConfig::default().audio, CarrierAudio::Tone),
        ..CarrierConfig::default()
    })
    .await
    .expect("the simulated carrier starts")
}

/// Waits for the next event of `call`, failing the test after `limit`.
pub async fn next_event(
    events: &mut Receiver<CallEvent>,
    call: CallRef,
    limit: Duration,
) -> CallEventKind {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if event.call_ref == call => return event.kind,
                Ok(_) => {}
                Err(error) => panic!("event stream failed: {error}"),
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .unwrap_or_else(|_| panic!("no event for {call} within {limit:?}"))
}

/// Waits until `call` reports an event matching `wanted`, returning every event seen on the way.
pub async fn wait_for(
    events: &mut Receiver<CallEvent>,
    call: CallRef,
    limit: Duration,
    wanted: impl Fn(&CallEventKind) -> bool,
) -> Vec<CallEventKind> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let kind = next_event(events, call, left).await;
        let done = wanted(&kind);
        seen.push(kind);
        if done {
            return seen;
        }
        if matches!(seen.last(), Some(CallEventKind::Ended { .. })) {
            panic!("call ended before the awaited event: {seen:?}");
        }
    }
}

/// Reads a stereo WAV and returns its (left, right) channels.
pub fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("recording is a valid WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Returns the dominant test frequency of a channel, ignoring near-silence.
pub fn dominant(samples: &[i16]) -> Option<f64> {
    dominant_frequency(samples, &CANDIDATES, 8000, 0.001)
}

/// Returns a fresh path in the system temporary directory.
pub fn temp_wav(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcrm-gw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}.wav", CallRef::random()))
}

/// Records an answered call, plays `tone` (samples at 8 kHz) into it, hangs
/// up once it has played and checks the call ended by our hang-up; returns
/// the recording's channels: what we sent (left) and what we heard (right).
pub async fn play_record_hang_up(
    gw: &Gateway,
    events: &mut Receiver<CallEvent>,
    call: CallRef,
    name: &str,
    tone: Vec<i16>,
    limit: Duration,
) -> (Vec<i16>, Vec<i16>) {
    let path = temp_wav(name);
    gw.record(call, &path).await.expect("records");
    gw.play(call, Audio::Samples(tone.into()))
        .await
        .expect("plays");
    wait_for(events, call, limit, |k| {
        *k == CallEventKind::PlaybackFinished
    })
    .await;
    gw.hangup(call).await.expect("hangs up");
    let seen = wait_for(events, call, limit, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    channels(&path)
}
