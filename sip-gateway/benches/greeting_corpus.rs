//! Machine detection and the end of a greeting, measured on spoken audio over real calls.
//!
//! `cargo bench -p sip-gateway --bench greeting_corpus` speaks a corpus with espeak-ng
//! (`common/speech_corpus.rs`: machines' greetings of 2 to 12 s in several voices,
//! speeds and languages, most with a beep; people saying "hello?", "yes, speaking", or
//! pausing before a word; noise under many of them), writes each item as an 8 kHz WAV,
//! and plays each over a real call: the gateway dials a simulated carrier that answers
//! and plays the item, with `detect_machine` on. For every call it takes the
//! `AnsweredBy` verdict and its time from `Answered`; for every machine (whatever its
//! verdict) it then asks the gateway to `leave_message` and takes how the greeting was
//! heard to end and when, against when the carrier sent the greeting's last packet (it
//! sends each at the start of the 20 ms it holds). A message that starts before that is
//! cut off on the recording: an early start.
//!
//! - `GREETING_CORPUS_SIZE`: items of each kind (default 120 machines and 120 people);
//! - `GREETING_CORPUS_PARALLEL`: calls at a time (default 12);
//! - `GREETING_CORPUS_SEED`: draws another corpus of the same kinds (default 0), to
//!   check that thresholds tuned on one corpus hold on another;
//! - `GREETING_CORPUS_OFFLINE=1`: runs the same detectors on the same audio through
//!   G.711 without any call, in a second; for trying thresholds, never for the figures.
//!
//! One carrier per item, one trunk per carrier, one gateway: every call hears only its
//! own item from its first packet.

#[path = "common/figures.rs"]
mod figures;
#[path = "common/speech_corpus.rs"]
mod speech_corpus;
use figures::{env_number, ms, percentile};
use speech_corpus::{Item, Noise, Truth};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    Audio, CallEvent, CallEventKind, CallRef, DialRequest, Gateway, GatewayConfig, TrunkConfig,
};
use sip_gateway::media::amd::{AmdConfig, MachineCheck};
use sip_gateway::media::greeting::{GreetingConfig, GreetingEnded, GreetingWatch};
use sip_gateway::media::playback::load_wav;
use sip_gateway::media::tone::sine;
use sip_gateway::media::{AmdVerdict, G711};
use tokio::sync::broadcast;

/// The share of machines the issue asks to catch, and of people it allows to be hung up on.
const CAUGHT_TARGET: f64 = 95.0;
const HUNG_UP_TARGET: f64 = 2.0;

fn main() -> Result<()> {
    let size: usize = env_number("GREETING_CORPUS_SIZE", 120)?;
    let parallel: usize = env_number("GREETING_CORPUS_PARALLEL", 12)?;
    let seed: u64 = env_number("GREETING_CORPUS_SEED", 0)?;
    let offline = std::env::var("GREETING_CORPUS_OFFLINE").as_deref() == Ok("1");
    let dir = std::env::temp_dir().join(format!("greeting-corpus-{}", std::process::id()));
    let started = Instant::now();
    let items = speech_corpus::build(&dir, size, size, seed)?;
    let spoken = started.elapsed();
    let results = if offline {
        items
            .iter()
            .map(listen_offline)
            .collect::<Result<Vec<_>>>()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(call_all(&items, parallel.max(1)))?
    };
    let _ = std::fs::remove_dir_all(&dir);
    print_report(&items, &results, offline, seed, spoken, started.elapsed());
    Ok(())
}

/// What one call found.
#[derive(Debug, Clone, Copy)]
struct Heard {
    verdict: AmdVerdict,
    /// From the answer to the verdict.
    verdict_after: Duration,
    /// For machines: how the greeting was heard to end, and when that was in
    /// ms from the answer.
    ended: Option<(GreetingEnded, f64)>,
}

async fn call_all(items: &[Item], parallel: usize) -> Result<Vec<Heard>> {
    let mut carriers = Vec::with_capacity(items.len());
    let mut trunks = Vec::with_capacity(items.len());
    for item in items {
        let carrier = Carrier::start(CarrierConfig {
            sip_addr: "127.0.0.1:0".parse()?,
            mix: Mix::always(Outcome::Answer),
            ring_delay: Duration::from_millis(5),
            answer_delay: Duration::from_millis(20),
            audio: CarrierAudio::Wav(item.wav.clone()),
            ..CarrierConfig::default()
        })
        .await
        .with_context(|| format!("a carrier for {}", item.wav.display()))?;
        trunks.push(TrunkConfig::new(trunk_name(item), carrier.sip_addr()));
        carriers.push(carrier);
    }
    let config = GatewayConfig {
        sip_tcp: None,
        ..GatewayConfig::loopback()
    };
    let gateway = Arc::new(Gateway::start(config, trunks).await?);
    let mut results: BTreeMap<usize, Heard> = BTreeMap::new();
    let mut next = 0;
    let mut running = tokio::task::JoinSet::new();
    while results.len() < items.len() {
        while next < items.len() && running.len() < parallel {
            let item = items[next].clone();
            let gateway = gateway.clone();
            running.spawn(async move { (next, call_one(&gateway, &item).await) });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            bail!("no call running");
        };
        let (index, heard) = done?;
        let heard = heard.with_context(|| format!("calling {}", items[index].wav.display()))?;
        results.insert(index, heard);
    }
    drop(carriers);
    Ok(results.into_values().collect())
}

/// One call to one item: the verdict, then for a machine the greeting's end.
async fn call_one(gateway: &Gateway, item: &Item) -> Result<Heard> {
    let limit = Duration::from_secs(45);
    let mut events = gateway.events();
    let call = gateway
        .dial(DialRequest {
            number: "+441632960123".into(),
            caller_id: "+442079460000".into(),
            trunk: trunk_name(item),
            ring_timeout: Duration::from_secs(30),
            call_ref: CallRef::random(),
            detect_machine: true,
        })
        .await?;
    wait_for(&mut events, call, limit, |k| *k == CallEventKind::Answered).await?;
    let answered = Instant::now();
    let kind = wait_for(&mut events, call, limit, |k| {
        matches!(k, CallEventKind::AnsweredBy { .. })
    })
    .await?;
    let verdict_after = answered.elapsed();
    let CallEventKind::AnsweredBy { verdict } = kind else {
        bail!("expected a verdict, got {kind:?}");
    };
    let mut ended = None;
    if item.truth == Truth::Machine {
        let message: Arc<[i16]> = sine(697.0, 8000, 8000, 1600).into();
        gateway.leave_message(call, Audio::Samples(message)).await?;
        let kind = wait_for(&mut events, call, limit, |k| {
            matches!(k, CallEventKind::GreetingEnded { .. })
        })
        .await?;
        let at = answered.elapsed().as_secs_f64() * 1e3;
        if let CallEventKind::GreetingEnded { ended: how } = kind {
            ended = Some((how, at));
        }
    }
    gateway.hangup(call).await?;
    wait_for(&mut events, call, limit, |k| {
        matches!(k, CallEventKind::Ended { .. })
    })
    .await?;
    Ok(Heard {
        verdict,
        verdict_after,
        ended,
    })
}

/// Waits for `call`'s first event that `wanted` accepts; fails on its end or after `limit`.
async fn wait_for(
    events: &mut broadcast::Receiver<CallEvent>,
    call: CallRef,
    limit: Duration,
    wanted: impl Fn(&CallEventKind) -> bool,
) -> Result<CallEventKind> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("no such event in time")?;
        let event = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => bail!("missed {n} events"),
            Err(error) => return Err(error.into()),
        };
        if event.call_ref != call {
            continue;
        }
        if wanted(&event.kind) {
            return Ok(event.kind);
        }
        if matches!(event.kind, CallEventKind::Ended { .. }) {
            bail!("the call ended first: {:?}", event.kind);
        }
    }
}

/// The same detectors on the item's audio through G.711, as the gateway's leg
/// runs them, with no call: the greeting watch starts where the verdict came.
fn listen_offline(item: &Item) -> Result<Heard> {
    let pcm = load_wav(&item.wav)?;
    let start = Instant::now();
    let mut check = MachineCheck::new(AmdConfig::default(), start);
    let mut payload = [0u8; 160];
    let mut verdict = None;
    let mut frame_at = 0;
    for (n, frame) in pcm.chunks(160).enumerate() {
        G711::Pcmu.encode(frame, &mut payload[..frame.len()]);
        frame_at = n + 1;
        if let Some(v) = check.push_g711(G711::Pcmu, &payload[..frame.len()], 160 * n as u32) {
            verdict = Some(v);
            break;
        }
    }
    let verdict = verdict.unwrap_or(AmdVerdict::Unsure);
    // A packet leaves the carrier at the start of the 20 ms it holds.
    let verdict_after = Duration::from_millis((frame_at as u64).saturating_sub(1) * 20);
    let mut ended = None;
    if item.truth == Truth::Machine {
        let mut watch = GreetingWatch::new(GreetingConfig::default(), start);
        for (n, frame) in pcm.chunks(160).enumerate().skip(frame_at) {
            G711::Pcmu.encode(frame, &mut payload[..frame.len()]);
            if let Some(how) = watch.push_g711(G711::Pcmu, &payload[..frame.len()], 160 * n as u32)
            {
                ended = Some((how, (n * 20) as f64));
                break;
            }
        }
    }
    Ok(Heard {
        verdict,
        verdict_after,
        ended,
    })
}

/// When the carrier sends the last packet that holds any of the greeting (or
/// its beep), in ms from the answer: a packet leaves at the start of the
/// 20 ms it holds. A message that starts before this overlaps the greeting.
fn sent_end_ms(item: &Item) -> f64 {
    (item.greeting_end_ms.div_ceil(20).saturating_sub(1) * 20) as f64
}

fn trunk_name(item: &Item) -> String {
    match item.truth {
        Truth::Machine => format!("machine-{}", item.index),
        Truth::Person => format!("person-{}", item.index),
    }
}

fn print_report(
    items: &[Item],
    results: &[Heard],
    offline: bool,
    seed: u64,
    spoken: Duration,
    total: Duration,
) {
    let how = if offline {
        "offline, no calls (not for the record)"
    } else {
        "over real calls"
    };
    let machines = items.iter().filter(|i| i.truth == Truth::Machine).count();
    let people = items.len() - machines;
    println!(
        "greeting_corpus: {machines} machines and {people} people (seed {seed}), {how}; corpus spoken in {:.1} s, run {:.1} s",
        spoken.as_secs_f64(),
        total.as_secs_f64()
    );
    let lengths: Vec<u64> = items
        .iter()
        .filter(|i| i.truth == Truth::Machine)
        .map(|i| i.speech_end_ms - i.speech_start_ms)
        .collect();
    if let (Some(min), Some(max)) = (lengths.iter().min(), lengths.iter().max()) {
        let beeps = items.iter().filter(|i| i.beep_hz.is_some()).count();
        println!(
            "greetings last {:.1} to {:.1} s; {beeps} of {machines} end with a beep",
            *min as f64 / 1e3,
            *max as f64 / 1e3
        );
    }
    let count = |truth: Truth, verdict: AmdVerdict| {
        items
            .iter()
            .zip(results)
            .filter(|(i, h)| i.truth == truth && h.verdict == verdict)
            .count()
    };
    println!();
    println!("| truth \\ verdict | Machine | Human | Unsure |");
    println!("| --- | --- | --- | --- |");
    for (name, truth) in [("machine", Truth::Machine), ("person", Truth::Person)] {
        println!(
            "| {name} | {} | {} | {} |",
            count(truth, AmdVerdict::Machine),
            count(truth, AmdVerdict::Human),
            count(truth, AmdVerdict::Unsure)
        );
    }
    let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    let caught = share(count(Truth::Machine, AmdVerdict::Machine), machines);
    let hung_up = share(count(Truth::Person, AmdVerdict::Machine), people);
    let verdict_times = |truth: Truth| -> Vec<Duration> {
        let mut t: Vec<Duration> = items
            .iter()
            .zip(results)
            .filter(|(i, _)| i.truth == truth)
            .map(|(_, h)| h.verdict_after)
            .collect();
        t.sort();
        t
    };
    let (machine_times, person_times) =
        (verdict_times(Truth::Machine), verdict_times(Truth::Person));
    let met = |ok: bool| if ok { "met" } else { "missed" };
    println!();
    println!("| figure | measured | target | |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| machines caught (verdict Machine) | {caught:.1} % | ≥ {CAUGHT_TARGET} % | {} |",
        met(caught >= CAUGHT_TARGET)
    );
    println!(
        "| people hung up on (verdict Machine) | {hung_up:.1} % | ≤ {HUNG_UP_TARGET} % | {} |",
        met(hung_up <= HUNG_UP_TARGET)
    );
    for (name, times) in [("machines", &machine_times), ("people", &person_times)] {
        println!(
            "| answer → verdict, {name}, p50 / p95 | {} / {} ms | | |",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.95))
        );
    }
    greeting_report(items, results);
    misses(items, results);
}

fn greeting_report(items: &[Item], results: &[Heard]) {
    let mut by_kind: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut delays = Vec::new();
    let mut early = 0;
    for (item, heard) in items.iter().zip(results) {
        let Some((how, at)) = heard.ended else {
            continue;
        };
        let truth = if item.beep_hz.is_some() {
            "with a beep"
        } else {
            "without a beep"
        };
        let how = match how {
            GreetingEnded::Beep => "Beep",
            GreetingEnded::Silence => "Silence",
            GreetingEnded::TimedOut => "TimedOut",
        };
        *by_kind.entry((truth, how)).or_default() += 1;
        let delay = at - sent_end_ms(item);
        if delay < 0.0 {
            early += 1;
        }
        if how != "TimedOut" {
            delays.push(delay);
        }
    }
    delays.sort_by(f64::total_cmp);
    let quantile = |q: f64| -> f64 {
        if delays.is_empty() {
            return 0.0;
        }
        let rank = (q * delays.len() as f64).ceil() as usize;
        delays[rank.clamp(1, delays.len()) - 1]
    };
    println!();
    println!("| greeting \\ heard to end by | Beep | Silence | TimedOut |");
    println!("| --- | --- | --- | --- |");
    for truth in ["with a beep", "without a beep"] {
        let n = |how: &str| by_kind.get(&(truth, how)).copied().unwrap_or(0);
        println!(
            "| {truth} | {} | {} | {} |",
            n("Beep"),
            n("Silence"),
            n("TimedOut")
        );
    }
    println!();
    println!("| figure | measured |");
    println!("| --- | --- |");
    println!("| messages started before the greeting was sent in full | {early} |");
    println!(
        "| greeting's last packet sent → message, p50 / p95 (not timed out) | {:.0} / {:.0} ms |",
        quantile(0.5),
        quantile(0.95)
    );
}

/// Lists what went wrong, item by item, to see what the detectors miss.
fn misses(items: &[Item], results: &[Heard]) {
    let mut lines = Vec::new();
    for (item, heard) in items.iter().zip(results) {
        let wrong_verdict = match item.truth {
            Truth::Machine => heard.verdict != AmdVerdict::Machine,
            Truth::Person => heard.verdict == AmdVerdict::Machine,
        };
        let wrong_end = match heard.ended {
            Some((GreetingEnded::TimedOut, _)) => true,
            Some((_, at)) => at < sent_end_ms(item),
            None => false,
        };
        if wrong_verdict || wrong_end {
            let noise = match item.noise {
                Noise::None => "no noise".to_string(),
                Noise::White(snr) => format!("white {snr} dB"),
                Noise::Pink(snr) => format!("pink {snr} dB"),
            };
            lines.push(format!(
                "  {} {:?} {} s{} {} ({} ms speech, end {} ms, beep {:?}, {noise}): {:?} after {} ms, end {:?}",
                trunk_name(item),
                item.kind,
                item.voice,
                item.speed,
                if wrong_verdict { "VERDICT" } else { "END" },
                item.speech_end_ms - item.speech_start_ms,
                item.greeting_end_ms,
                item.beep_hz,
                heard.verdict,
                heard.verdict_after.as_millis(),
                heard.ended.map(|(h, at)| (h, at as u64)),
            ));
        }
    }
    if !lines.is_empty() {
        println!();
        println!("misses ({}):", lines.len());
        for line in lines {
            println!("{line}");
        }
    }
}
