//! The simulated carrier in a child process of the service's SIP benchmarks
//! (`child.rs`), and what the parent asks of it. Included with `#[path]` by
//! `gateway_load.rs` and `sip_flood.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, CarrierStats, Mix, Outcome};
use sip_gateway::gateway::{CallRef, DialRequest};

use crate::child::ChildProcess;

/// Set in a carrier child's environment to have it stamp every frame it sends with its leg
/// and index (`sip_gateway::carrier::counter`) instead of playing a tone.
pub const COUNT_FRAMES_VAR: &str = "GATEWAY_BENCH_COUNT_FRAMES";

impl ChildProcess {
    /// The SIP address a carrier child greeted with (`sip ADDR`).
    pub fn sip_addr(&self) -> Result<SocketAddr> {
        self.greeting
            .strip_prefix("sip ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected carrier greeting {:?}", self.greeting))
    }

    /// Asks a carrier child for its counters.
    pub async fn stats(&mut self) -> Result<CarrierStats> {
        let line = self.ask("stats").await?;
        let numbers: Vec<u64> = line
            .strip_prefix("stats ")
            .context("unexpected carrier reply")?
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [calls, answered, rtp_sent, rtp_received] = numbers[..] else {
            bail!("unexpected carrier reply {line:?}");
        };
        Ok(CarrierStats {
            calls,
            answered,
            rtp_sent,
            rtp_received,
            ..CarrierStats::default()
        })
    }
}

/// Runs the carrier: prints its SIP address, answers `stats` and
/// `mute`/`unmute` lines, and exits when stdin closes.
pub async fn carrier_process() -> Result<()> {
    let carrier = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse()?,
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::ZERO,
        answer_delay: Duration::ZERO,
        audio: CarrierAudio::Tone(440.0),
        count_frames: std::env::var_os(COUNT_FRAMES_VAR).is_some(),
        ..CarrierConfig::default()
    })
    .await
    .context("starting the carrier")?;
    println!("sip {}", carrier.sip_addr());
    let carrier = std::sync::Arc::new(carrier);
    let shared = carrier.clone();
    // Reading stdin blocks, so it gets a thread; the runtime keeps serving calls meanwhile.
    let reader = std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "stats" => {
                    let s = shared.stats();
                    println!(
                        "stats {} {} {} {}",
                        s.calls, s.answered, s.rtp_sent, s.rtp_received
                    );
                }
                "mute" | "unmute" => {
                    shared.set_muted(line.trim() == "mute");
                    println!("ok");
                }
                other => println!("unknown command {other:?}"),
            }
        }
    });
    tokio::task::spawn_blocking(move || reader.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the stdin reader panicked"))?;
    drop(carrier);
    Ok(())
}

/// A call to the carrier's trunk.
pub fn request(call_ref: CallRef) -> DialRequest {
    DialRequest {
        number: "+441632960123".into(),
        caller_id: "+442079460000".into(),
        trunk: "sim".into(),
        ring_timeout: Duration::from_secs(20),
        call_ref,
        detect_machine: false,
    }
}
