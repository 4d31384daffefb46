//! The operator's telephony commands: `dial` tests a trunk with one call,
//! `carrier` runs the simulated carrier.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix};
use sip_gateway::gateway::{Audio, CallEventKind, CallRef, DialRequest, Gateway};

use crate::Settings;

/// Flags of `dial`.
#[derive(Debug, Args)]
pub struct DialArgs {
    /// The trunk to call through, by its name in the config file.
    #[arg(long)]
    pub trunk: String,
    /// The number to call, in E.164 (+ and digits).
    #[arg(long)]
    pub to: String,
    /// The caller ID to present, E.164; defaults to the config's caller_id.
    #[arg(long)]
    pub caller_id: Option<String>,
    /// A mono 16-bit WAV to play once the call is answered.
    #[arg(long, value_name = "FILE.wav")]
    pub play: Option<PathBuf>,
    /// A stereo WAV to record into: what we send left, the far end right.
    #[arg(long, value_name = "FILE.wav")]
    pub record: Option<PathBuf>,
    /// Hang up after this many seconds of conversation.
    #[arg(long, default_value_t = 30)]
    pub max_seconds: u64,
    /// Give up ringing after this many seconds (at least 15).
    #[arg(long, default_value_t = 30)]
    pub ring_timeout: u64,
}

/// Flags of `carrier`.
#[derive(Debug, Args)]
pub struct CarrierArgs {
    /// Where the carrier's SIP socket listens.
    #[arg(long, default_value = "127.0.0.1:5080")]
    pub sip_addr: SocketAddr,
    /// Weight of calls answered by a person.
    #[arg(long, default_value_t = 60)]
    pub answer: u32,
    /// Weight of calls refused as busy.
    #[arg(long, default_value_t = 10)]
    pub busy: u32,
    /// Weight of calls that ring out.
    #[arg(long, default_value_t = 20)]
    pub no_answer: u32,
    /// Weight of calls answered by a machine.
    #[arg(long, default_value_t = 10)]
    pub machine: u32,
    /// Seconds from INVITE to answer.
    #[arg(long, default_value_t = 2.0)]
    pub answer_delay: f64,
    /// Hang up answered calls after this many seconds.
    #[arg(long)]
    pub hangup_after: Option<f64>,
    /// Frequency of the tone played after answering, in Hz.
    #[arg(long, default_value_t = 440.0, conflicts_with = "wav")]
    pub tone: f64,
    /// A mono WAV to play after answering instead of a tone.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Seed of the outcome draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Places one call and prints what happens to it.
pub async fn dial(settings: &Settings, args: DialArgs) -> Result<()> {
    let caller_id = args
        .caller_id
        .clone()
        .or_else(|| settings.caller_id.clone())
        .context(
            "a caller ID is always presented: pass --caller-id or set caller_id in the config",
        )?;
    if args.ring_timeout < 15 {
        bail!("--ring-timeout must be at least 15 seconds");
    }
    if !settings.trunks.iter().any(|t| t.name == args.trunk) {
        let names: Vec<&str> = settings.trunks.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "no trunk named {:?} in the config (trunks: {names:?})",
            args.trunk
        );
    }
    let gateway = Gateway::start(settings.gateway_config(), settings.trunks.clone())
        .await
        .context("starting the SIP gateway")?;
    let mut events = gateway.events();
    let call = gateway
        .dial(DialRequest {
            number: args.to.clone(),
            caller_id,
            trunk: args.trunk.clone(),
            ring_timeout: Duration::from_secs(args.ring_timeout),
            call_ref: CallRef::random(),
            detect_machine: false,
        })
        .await
        .context("placing the call")?;
    println!("call {call} placed through trunk {}", args.trunk);
    let started = tokio::time::Instant::now();
    let mut answered_at = None;
    let mut hung_up = false;
    let limit = Duration::from_secs(args.max_seconds);
    loop {
        let hangup_at = answered_at.filter(|_| !hung_up).map(|t| t + limit);
        let event = tokio::select! {
            e = events.recv() => e.context("the gateway stopped")?,
            _ = crate::cli::shutdown_signal(), if !hung_up => {
                println!("{:>7.3}s  interrupted: hanging up", secs(started));
                hung_up = true;
                gateway.hangup(call).await.context("hanging up")?;
                continue;
            }
            _ = sleep_until_opt(hangup_at) => {
                println!("{:>7.3}s  hanging up after {} s", secs(started), args.max_seconds);
                hung_up = true;
                gateway.hangup(call).await.context("hanging up")?;
                continue;
            }
        };
        if event.call_ref != call {
            continue;
        }
        match &event.kind {
            CallEventKind::Answered => {
                println!("{:>7.3}s  answered", secs(started));
                answered_at = Some(tokio::time::Instant::now());
                if let Some(path) = &args.record {
                    gateway
                        .record(call, path)
                        .await
                        .context("starting the recording")?;
                    println!("          recording to {}", path.display());
                }
                if let Some(path) = &args.play {
                    gateway
                        .play(call, Audio::File(path.clone()))
                        .await
                        .with_context(|| format!("playing {}", path.display()))?;
                }
            }
            CallEventKind::Ended { cause } => {
                println!("{:>7.3}s  ended: {cause:?}", secs(started));
                let talk = answered_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
                println!("outcome: {cause:?}; talk time {talk:.1} s");
                return Ok(());
            }
            other => println!("{:>7.3}s  {other:?}", secs(started)),
        }
    }
}

/// Runs the simulated carrier until Ctrl-C or SIGTERM.
pub async fn carrier(args: CarrierArgs) -> Result<()> {
    let config = CarrierConfig {
        sip_addr: args.sip_addr,
        mix: Mix {
            answer: args.answer,
            busy: args.busy,
            no_answer: args.no_answer,
            machine: args.machine,
        },
        answer_delay: Duration::from_secs_f64(args.answer_delay.max(0.0)),
        hangup_after: args
            .hangup_after
            .map(|s| Duration::from_secs_f64(s.max(0.0))),
        audio: match args.wav {
            Some(path) => CarrierAudio::Wav(path),
            None => CarrierAudio::Tone(args.tone),
        },
        seed: args.seed,
        ..CarrierConfig::default()
    };
    let carrier = Carrier::start(config)
        .await
        .context("starting the simulated carrier")?;
    println!("simulated carrier listening on sip:{}", carrier.sip_addr());
    crate::cli::shutdown_signal().await;
    let s = carrier.stats();
    println!(
        "calls {} answered {} busy {} cancelled {} rtp packets received {}",
        s.calls, s.answered, s.busy, s.cancelled, s.rtp_received
    );
    Ok(())
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn secs(since: tokio::time::Instant) -> f64 {
    since.elapsed().as_secs_f64()
}
