//! How soon an agent hears a customer, and what a connected agent leg costs the gateway.
//!
//! `cargo bench -p sip-gateway --bench first_audio` runs two phases and prints one table:
//!
//! 1. **legs**: `FIRST_AUDIO_AGENTS` agent legs are attached and connected, each a str0m
//!    WebRTC peer that sends 20 ms of audio every 20 ms, as a browser with a live microphone
//!    does all shift. Over `FIRST_AUDIO_WINDOW` seconds with no call up, reports the
//!    gateway's memory per leg (RSS growth over attaching them) and CPU per leg.
//!    `FIRST_AUDIO_MIC=calls` makes each peer send only while it hears audio (a call is
//!    bridged to it), as the agent page does: between calls it sends its microphone to no
//!    one (`replaceTrack(null)`), so an idle leg carries only ICE consent checks and RTCP.
//! 2. **calls**: `FIRST_AUDIO_CALLS` calls to the simulated carrier, `FIRST_AUDIO_PARALLEL` at
//!    a time, while every leg stays connected. On each call's `Answered` event (the gateway
//!    has the carrier's 200 OK) the call is bridged to a free agent leg, as the dialler
//!    does, and the time until that agent's peer receives its first audio frame is taken.
//!    Reports p50, p99 and the worst.
//! 3. **bridged**: `FIRST_AUDIO_BRIDGED` calls (default: one per agent leg) to a second
//!    simulated carrier, each bridged to its own agent leg, with audio both ways: the carrier
//!    plays a tone and each peer sends its microphone. After a warm-up, over
//!    `FIRST_AUDIO_BRIDGED_WINDOW` seconds (default `FIRST_AUDIO_WINDOW`), reports the
//!    gateway's CPU per bridged call and per relayed packet, and the loss each way. Both
//!    ends fall silent before and after the window until nothing is in flight, so a packet
//!    counted as sent has either arrived or been lost when the counts are read.
//!    `FIRST_AUDIO_SAMPLE` (seconds, default 0: off) turns the window into a soak: it is
//!    slept in slices of that length, and after each a row gives the minutes elapsed, the
//!    gateway's RSS and CPU over the slice, the packets relayed and the gateway's drops in
//!    it, and the agent legs (all of them, not only the bridged ones) still connected; a
//!    last line gives the RSS growth from the first row to the last and the legs dropped.
//!
//! `FIRST_AUDIO_CODEC=opus` makes every peer offer Opus alone, as some browsers do, so the
//! gateway transcodes each leg both ways; the peers then send Opus packets of speech-like
//! audio coded as a browser codes them (the default, `g711`, offers PCMU and PCMA).
//!
//! The gateway and the first carrier run on one current-thread tokio runtime, so the gateway
//! uses one core (`FIRST_AUDIO_MEDIA_THREADS=N` spreads its legs over N media threads of
//! their own, the signalling staying on that one); the agents' peers run in a child process (this binary again, with
//! `FIRST_AUDIO_ROLE=agents`), so neither their CPU nor their memory counts as the
//! gateway's. The two processes compare times on the system clock. The bridged phase's
//! carrier runs in a child process too (`FIRST_AUDIO_ROLE=carrier`), so the gateway's CPU
//! in that phase is its own.

#[path = "common/bridged_calls.rs"]
mod bridged_calls;
#[path = "../../benches/common/carrier.rs"]
mod carrier;
#[path = "../../benches/common/child.rs"]
mod child;
#[path = "common/figures.rs"]
mod figures;
#[path = "common/proc_stat.rs"]
mod proc_stat;
use bridged_calls::run_bridged;
use child::ChildProcess;
use figures::{env_number, ms, percentile};
use proc_stat::{clock_ticks, cpu_time};

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    CallEvent, CallEventKind, CallRef, DialRequest, Gateway, GatewayConfig, TrunkConfig,
};
use sip_gateway::media::G711;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};

/// The p99 the softphone work asks for, from 200 OK to the agent's first audio.
const P99_TARGET: Duration = Duration::from_millis(150);
/// With `FIRST_AUDIO_MIC=calls`, how long a peer keeps sending after the last audio it heard.
const MIC_HOLD: Duration = Duration::from_millis(500);

/// Whether the agents' peers send their microphone all shift (`FIRST_AUDIO_MIC=always`, the
/// default, as a browser page that keeps it live) or only during calls (`calls`).
fn mic_always() -> Result<bool> {
    match std::env::var("FIRST_AUDIO_MIC").as_deref() {
        Err(_) | Ok("always") => Ok(true),
        Ok("calls") => Ok(false),
        Ok(other) => bail!("FIRST_AUDIO_MIC={other:?}: always or calls"),
    }
}

/// The codec the agents' peers offer, from `FIRST_AUDIO_CODEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentCodec {
    /// PCMU and PCMA, as most browsers offer: the gateway relays G.711 unchanged.
    G711,
    /// Opus alone: the gateway transcodes the leg both ways.
    Opus,
}

impl AgentCodec {
    fn from_env() -> Result<Self> {
        match std::env::var("FIRST_AUDIO_CODEC").as_deref() {
            Err(_) | Ok("g711") => Ok(AgentCodec::G711),
            Ok("opus") => Ok(AgentCodec::Opus),
            Ok(other) => bail!("FIRST_AUDIO_CODEC={other:?}: g711 or opus"),
        }
    }
}

fn main() -> Result<()> {
    match std::env::var("FIRST_AUDIO_ROLE").as_deref() {
        Ok("agents") => {
            return tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
                .block_on(agents_process());
        }
        Ok("carrier") => return child::runtime()?.block_on(carrier::carrier_process()),
        _ => {}
    }
    let agents = env_number("FIRST_AUDIO_AGENTS", 200)?;
    let window = env_number("FIRST_AUDIO_WINDOW", 10)?;
    let settings = Settings {
        agents,
        calls: env_number("FIRST_AUDIO_CALLS", 300)?,
        parallel: env_number("FIRST_AUDIO_PARALLEL", 10)?,
        window,
        bridged: env_number("FIRST_AUDIO_BRIDGED", agents)?,
        bridged_window: env_number("FIRST_AUDIO_BRIDGED_WINDOW", window)?,
        sample: env_number("FIRST_AUDIO_SAMPLE", 0)?,
        codec: AgentCodec::from_env()?,
        media_threads: env_number("FIRST_AUDIO_MEDIA_THREADS", 0)?,
    };
    mic_always()?;
    if settings.parallel == 0 || settings.parallel > settings.agents {
        bail!("FIRST_AUDIO_PARALLEL must be between 1 and FIRST_AUDIO_AGENTS");
    }
    if settings.bridged > settings.agents {
        bail!("FIRST_AUDIO_BRIDGED must be at most FIRST_AUDIO_AGENTS: one leg per call");
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(settings))
}

/// Sizes of the run, from `FIRST_AUDIO_*` variables.
struct Settings {
    agents: usize,
    calls: usize,
    parallel: usize,
    window: u64,
    /// Calls held bridged to agent legs in the bridged phase; 0 skips it.
    bridged: usize,
    /// Seconds of the bridged phase's window.
    bridged_window: u64,
    /// Seconds between the rows printed through the bridged phase's window; 0 prints none.
    sample: u64,
    codec: AgentCodec,
    /// The gateway's media threads (`GatewayConfig::media_threads`); 0 keeps
    /// the legs on the gateway's one thread.
    media_threads: usize,
}

async fn run(settings: Settings) -> Result<()> {
    let carrier = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse()?,
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::from_millis(5),
        answer_delay: Duration::from_millis(20),
        audio: CarrierAudio::Tone(1000.0),
        ..CarrierConfig::default()
    })
    .await?;
    let mut trunk = TrunkConfig::new("sim", carrier.sip_addr());
    trunk.max_concurrent = usize::MAX;
    trunk.max_cps = u32::MAX;
    let mut trunks = vec![trunk];
    let mut far_carrier = None;
    if settings.bridged > 0 {
        let child = ChildProcess::spawn("FIRST_AUDIO_ROLE", "carrier", &[], None).await?;
        let mut trunk = TrunkConfig::new(bridged_calls::TRUNK, child.sip_addr()?);
        trunk.max_concurrent = usize::MAX;
        trunk.max_cps = u32::MAX;
        trunks.push(trunk);
        far_carrier = Some(child);
    }
    let config = GatewayConfig {
        sip_tcp: None,
        media_threads: settings.media_threads,
        ..GatewayConfig::loopback()
    };
    let gateway = Gateway::start(config, trunks).await?;
    let mut events = gateway.events();
    let ticks = clock_ticks();

    let rss_before = rss_kib()?;
    let mut agents = AgentsProcess::spawn(settings.agents, settings.codec).await?;
    let mut legs = Vec::new();
    for index in 0..settings.agents {
        let offer = agents.offer().await?;
        let (leg, answer) = gateway.attach_agent(&offer).await?;
        agents.answer(&answer).await?;
        legs.push(leg);
        if legs.len() != index + 1 {
            bail!("lost a leg");
        }
    }
    let mut waiting: std::collections::BTreeSet<CallRef> = legs.iter().copied().collect();
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    while !waiting.is_empty() {
        let left = connect_deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .context("agent legs did not all connect within 60 s")??;
        if event.kind == CallEventKind::Answered {
            waiting.remove(&event.call_ref);
        }
    }
    // Let the legs' first packets and buffers settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_legs = rss_kib()?;
    let pid = std::process::id().to_string();
    let cpu_start = cpu_time(&pid, ticks)?;
    let peers_start = cpu_time(&agents.pid, ticks)?;
    let wall_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(settings.window)).await;
    let idle_cpu = cpu_time(&pid, ticks)?.saturating_sub(cpu_start);
    let peers_cpu = cpu_time(&agents.pid, ticks)?.saturating_sub(peers_start);
    let idle_wall = wall_start.elapsed();

    let latencies = run_calls(&gateway, &mut events, &mut agents, &legs, &settings).await?;
    let bridged = match far_carrier.as_mut() {
        Some(carrier) => Some(
            run_bridged(
                &gateway,
                &mut events,
                &mut agents,
                carrier,
                &legs,
                &settings,
                ticks,
            )
            .await
            .context("bridged phase")?,
        ),
        None => None,
    };
    agents.stop().await;
    if let Some(carrier) = far_carrier {
        carrier.stop().await?;
    }

    print_report(
        &settings,
        rss_legs.saturating_sub(rss_before),
        [idle_cpu, peers_cpu],
        idle_wall,
        &latencies,
    );
    if let Some(bridged) = &bridged {
        bridged.print(settings.codec);
    }
    Ok(())
}

/// Places the calls, bridging each on answer to a free leg; returns 200 OK → first audio.
async fn run_calls(
    gateway: &Gateway,
    events: &mut broadcast::Receiver<CallEvent>,
    agents: &mut AgentsProcess,
    legs: &[CallRef],
    settings: &Settings,
) -> Result<Vec<Duration>> {
    let mut free: Vec<usize> = (0..settings.parallel).collect();
    let mut live: HashMap<CallRef, usize> = HashMap::new();
    let mut answered_at: BTreeMap<usize, u128> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut dialled = 0;
    let deadline = Instant::now() + Duration::from_secs(60 + settings.calls as u64);
    while latencies.len() < settings.calls {
        while dialled < settings.calls {
            let Some(slot) = free.pop() else { break };
            agents.arm(slot).await?;
            let call = gateway.dial(request()).await?;
            live.insert(call, slot);
            dialled += 1;
        }
        if Instant::now() > deadline {
            bail!(
                "calls phase overran: {} of {} measured",
                latencies.len(),
                settings.calls
            );
        }
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(n)) => bail!("missed {n} events"),
                    Err(error) => return Err(error.into()),
                };
                let Some(&slot) = live.get(&event.call_ref) else { continue };
                match event.kind {
                    CallEventKind::Answered => {
                        answered_at.insert(slot, wall_nanos());
                        gateway.bridge(event.call_ref, legs[slot]).await?;
                    }
                    CallEventKind::Ended { cause } => {
                        live.remove(&event.call_ref);
                        if answered_at.remove(&slot).is_some() {
                            bail!("a call ended ({cause:?}) before its agent heard it");
                        }
                        free.push(slot);
                    }
                    _ => {}
                }
            }
            heard = agents.heard() => {
                let (slot, at) = heard?;
                let Some(answered) = answered_at.remove(&slot) else {
                    // A last frame of the slot's previous call, still in flight: wait again.
                    agents.arm(slot).await?;
                    continue;
                };
                let nanos = u64::try_from(at.saturating_sub(answered)).unwrap_or(u64::MAX);
                latencies.push(Duration::from_nanos(nanos));
                if let Some((&call, _)) = live.iter().find(|(_, s)| **s == slot) {
                    gateway.hangup(call).await?;
                }
            }
        }
    }
    Ok(latencies)
}

fn print_report(
    settings: &Settings,
    rss_kib: u64,
    [idle_cpu, peers_cpu]: [Duration; 2],
    idle_wall: Duration,
    latencies: &[Duration],
) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let p50 = percentile(&sorted, 0.50);
    let p99 = percentile(&sorted, 0.99);
    let worst = sorted.last().copied().unwrap_or_default();
    let agents = settings.agents.max(1) as f64;
    let busy = idle_cpu.as_secs_f64() / idle_wall.as_secs_f64().max(1e-9);
    let peers_busy = peers_cpu.as_secs_f64() / idle_wall.as_secs_f64().max(1e-9);
    let sending = if mic_always().unwrap_or(true) {
        "sending audio all shift"
    } else {
        "sending audio during calls only"
    };
    let codec = match settings.codec {
        AgentCodec::G711 => "offering G.711",
        AgentCodec::Opus => "offering Opus only",
    };
    println!(
        "first_audio: {} agent legs {codec}, {sending}, {} calls {} at a time, {} s window",
        settings.agents, settings.calls, settings.parallel, settings.window
    );
    println!("| figure | measured | target | |");
    println!("| --- | --- | --- | --- |");
    let met = if p99 < P99_TARGET { "met" } else { "missed" };
    println!(
        "| 200 OK → first audio at the agent, p50 | {} ms | | |",
        ms(p50)
    );
    println!(
        "| 200 OK → first audio at the agent, p99 | {} ms | < {} ms | {met} |",
        ms(p99),
        ms(P99_TARGET)
    );
    println!(
        "| 200 OK → first audio at the agent, worst | {} ms | | |",
        ms(worst)
    );
    println!(
        "| gateway memory per connected agent leg | {:.1} KiB | | |",
        rss_kib as f64 / agents
    );
    println!(
        "| gateway CPU per connected agent leg | {:.3} % of a core | | |",
        100.0 * busy / agents
    );
    println!(
        "| gateway CPU, all legs, no call up | {:.1} % of a core | | |",
        100.0 * busy
    );
    println!(
        "| agents' peers (other process), for scale | {:.1} % of a core | | |",
        100.0 * peers_busy
    );
    println!(
        "| load average at the end (2 cores) | {} | | |",
        load_average()
    );
}

/// The agents' peers in a child process, driven by lines on its stdin and stdout.
struct AgentsProcess {
    pid: String,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl AgentsProcess {
    async fn spawn(count: usize, codec: AgentCodec) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the benchmark binary")?;
        let codec = match codec {
            AgentCodec::G711 => "g711",
            AgentCodec::Opus => "opus",
        };
        let mut child = tokio::process::Command::new(exe)
            .env("FIRST_AUDIO_ROLE", "agents")
            .env("FIRST_AUDIO_AGENTS", count.to_string())
            .env("FIRST_AUDIO_CODEC", codec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the agents process")?;
        let stdin = child.stdin.take().context("agents stdin")?;
        let stdout = child.stdout.take().context("agents stdout")?;
        let pid = child.id().context("agents pid")?.to_string();
        Ok(AgentsProcess {
            pid,
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn line(&mut self) -> Result<String> {
        self.lines
            .next_line()
            .await?
            .context("the agents process exited")
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn offer(&mut self) -> Result<String> {
        let line = self.line().await?;
        let json = line.strip_prefix("offer ").context("expected an offer")?;
        Ok(serde_json::from_str(json)?)
    }

    async fn answer(&mut self, sdp: &str) -> Result<()> {
        self.send(&format!("answer {}", serde_json::to_string(sdp)?))
            .await
    }

    /// Asks agent `slot` to report the next audio frame it receives.
    async fn arm(&mut self, slot: usize) -> Result<()> {
        self.send(&format!("arm {slot}")).await
    }

    /// Waits for an armed agent's report: its slot and the system time of the frame, in ns.
    async fn heard(&mut self) -> Result<(usize, u128)> {
        let line = self.line().await?;
        let mut parts = line.split(' ');
        let (Some("heard"), Some(slot), Some(at)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("unexpected line from the agents: {line:?}");
        };
        Ok((slot.parse()?, at.parse()?))
    }

    /// Sends a command and returns its reply, passing over `heard` reports still in flight.
    async fn ask(&mut self, command: &str) -> Result<String> {
        self.send(command).await?;
        loop {
            let line = self.line().await?;
            if !line.starts_with("heard ") {
                return Ok(line);
            }
        }
    }

    /// Silences or restores every peer's microphone.
    async fn set_muted(&mut self, muted: bool) -> Result<()> {
        let command = if muted { "mute" } else { "unmute" };
        let reply = self.ask(command).await?;
        if reply != "ok" {
            bail!("the agents refused {command:?}: {reply:?}");
        }
        Ok(())
    }

    /// Returns the frames all peers have sent and heard since they started.
    async fn counts(&mut self) -> Result<AgentCounts> {
        let line = self.ask("counts").await?;
        let mut parts = line.split(' ');
        let (Some("counts"), Some(sent), Some(heard), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("unexpected reply from the agents: {line:?}");
        };
        Ok(AgentCounts {
            sent: sent.parse()?,
            heard: heard.parse()?,
        })
    }

    async fn stop(mut self) {
        let _ = self.send("quit").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Frames the agents' peers have sent and heard, all together.
#[derive(Debug, Clone, Copy, Default)]
struct AgentCounts {
    sent: u64,
    heard: u64,
}

/// What every peer of the agents process shares: its counts, and whether microphones are off.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    heard: AtomicU64,
    muted: AtomicBool,
}

/// Runs the agents' peers: one offer line each, an answer line back, then `arm`, `mute`,
/// `unmute`, `counts` and `quit`.
async fn agents_process() -> Result<()> {
    let count: usize = env_number("FIRST_AUDIO_AGENTS", 200)?;
    let microphone = Microphone::new(AgentCodec::from_env()?)?;
    let shared = Arc::new(Shared::default());
    let (heard_tx, mut heard_rx) = mpsc::unbounded_channel::<(usize, u128)>();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut armed = Vec::new();
    for slot in 0..count {
        let (peer, offer) =
            Peer::offer(slot, heard_tx.clone(), microphone.clone(), shared.clone()).await?;
        stdout
            .write_all(format!("offer {}\n", serde_json::to_string(&offer)?).as_bytes())
            .await?;
        stdout.flush().await?;
        let line = stdin.next_line().await?.context("no answer")?;
        let json = line.strip_prefix("answer ").context("expected an answer")?;
        let answer: String = serde_json::from_str(json)?;
        let (arm_tx, arm_rx) = mpsc::unbounded_channel();
        armed.push(arm_tx);
        tokio::spawn(peer.run(answer, arm_rx));
    }
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                if line == "quit" {
                    return Ok(());
                }
                let reply = match line.as_str() {
                    "mute" | "unmute" => {
                        shared.muted.store(line == "mute", Ordering::Relaxed);
                        "ok".to_string()
                    }
                    "counts" => format!(
                        "counts {} {}",
                        shared.sent.load(Ordering::Relaxed),
                        shared.heard.load(Ordering::Relaxed)
                    ),
                    _ => {
                        if let Some(slot) = line.strip_prefix("arm ") {
                            let slot: usize = slot.parse()?;
                            armed.get(slot).context("no such agent")?.send(())?;
                        }
                        continue;
                    }
                };
                stdout.write_all(format!("{reply}\n").as_bytes()).await?;
                stdout.flush().await?;
            }
            Some((slot, at)) = heard_rx.recv() => {
                stdout.write_all(format!("heard {slot} {at}\n").as_bytes()).await?;
                stdout.flush().await?;
            }
        }
    }
}

/// What a peer sends as its microphone.
#[derive(Clone)]
enum Microphone {
    /// G.711 silence: relayed unchanged, the gateway does the same work for any payload.
    G711,
    /// A loop of Opus packets of speech-like audio, coded once as a browser codes its
    /// microphone (48 kHz, fullband, 32 kbit/s), so the gateway decodes real speech.
    Opus(Arc<[Vec<u8>]>),
}

impl Microphone {
    fn new(codec: AgentCodec) -> Result<Self> {
        use opusic_c::{Application, Bitrate, Channels, Encoder, SampleRate};
        if codec == AgentCodec::G711 {
            return Ok(Microphone::G711);
        }
        let opus = |e: opusic_c::ErrorCode| anyhow::anyhow!("Opus: {}", e.message());
        let mut encoder =
            Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip).map_err(opus)?;
        encoder.set_bitrate(Bitrate::Value(32_000)).map_err(opus)?;
        // Five seconds of audio, long enough that the loop's seam is rare.
        let speech = speech_like(OPUS_FRAME * 250, 48_000);
        let mut packets = Vec::with_capacity(250);
        for frame in speech.chunks(OPUS_FRAME) {
            // opusic-c takes 16-bit samples as u16; the bits are libopus's i16.
            let frame: Vec<u16> = frame.iter().map(|&s| s as u16).collect();
            let mut payload = vec![0; 1500];
            let len = encoder
                .encode_to_slice(&frame, &mut payload)
                .map_err(opus)?;
            payload.truncate(len);
            packets.push(payload);
        }
        Ok(Microphone::Opus(packets.into()))
    }
}

/// Samples in 20 ms of Opus at its 48 kHz RTP clock.
const OPUS_FRAME: usize = 960;

/// A tone gliding between 200 and 2,400 Hz, switched on and off four times a second.
fn speech_like(len: usize, rate: u32) -> Vec<i16> {
    let rate = f64::from(rate);
    let mut phase = 0.0f64;
    (0..len)
        .map(|n| {
            let t = n as f64 / rate;
            let frequency = 1300.0 + 1100.0 * (std::f64::consts::TAU * 0.7 * t).sin();
            phase += std::f64::consts::TAU * frequency / rate;
            let envelope = (std::f64::consts::TAU * 2.0 * t).sin().max(0.0);
            (phase.sin() * envelope * 12_000.0) as i16
        })
        .collect()
}

/// One agent's browser: sends its microphone, and reports the first frame it hears once armed.
struct Peer {
    slot: usize,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pending: Option<str0m::change::SdpPendingOffer>,
    timestamp: u64,
    connected: bool,
    heard: mpsc::UnboundedSender<(usize, u128)>,
    /// Sends all shift, or only while it hears a call.
    mic_always: bool,
    /// When it last heard audio.
    last_heard: Option<Instant>,
    microphone: Microphone,
    /// Frames sent so far, to pick the next Opus packet.
    frames: usize,
    shared: Arc<Shared>,
}

impl Peer {
    async fn offer(
        slot: usize,
        heard: mpsc::UnboundedSender<(usize, u128)>,
        microphone: Microphone,
        shared: Arc<Shared>,
    ) -> Result<(Peer, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let config = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .set_stats_interval(None);
        let config = match microphone {
            Microphone::G711 => config.enable_pcmu(true, false).enable_pcma(true, false),
            Microphone::Opus(_) => config.enable_opus(true, false),
        };
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().context("an offer")?;
        let peer = Peer {
            slot,
            rtc,
            socket,
            local,
            mid,
            pending: Some(pending),
            timestamp: 0,
            connected: false,
            heard,
            mic_always: mic_always()?,
            last_heard: None,
            microphone,
            frames: 0,
            shared,
        };
        Ok((peer, offer.to_sdp_string()))
    }

    async fn run(mut self, answer: String, mut arm: mpsc::UnboundedReceiver<()>) {
        let Ok(answer) = SdpAnswer::from_sdp_string(&answer) else {
            return;
        };
        let Some(pending) = self.pending.take() else {
            return;
        };
        if self.rtc.sdp_api().accept_answer(pending, answer).is_err() {
            return;
        }
        let mut armed = false;
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            let Some(deadline) = self.drain(&mut armed).await else {
                return;
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((len, source)) = received else { continue };
                    if let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..len]) {
                        let _ = self.rtc.handle_input(Input::Receive(Instant::now(), receive));
                    }
                }
                Some(()) = arm.recv() => armed = true,
                _ = tick.tick() => self.speak(),
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
        }
    }

    fn speak(&mut self) {
        let in_call = self.last_heard.is_some_and(|t| t.elapsed() < MIC_HOLD);
        let muted = self.shared.muted.load(Ordering::Relaxed);
        if !self.connected || !(self.mic_always || in_call) || muted {
            return;
        }
        let (codec, time, payload) = match &self.microphone {
            Microphone::G711 => {
                let time = MediaTime::new(self.timestamp, Frequency::EIGHT_KHZ);
                self.timestamp += 160;
                (Codec::PCMU, time, vec![G711::Pcmu.silence(); 160])
            }
            Microphone::Opus(packets) => {
                let time = MediaTime::new(self.timestamp, Frequency::FORTY_EIGHT_KHZ);
                self.timestamp += OPUS_FRAME as u64;
                let packet = packets[self.frames % packets.len()].clone();
                (Codec::Opus, time, packet)
            }
        };
        let pt = self
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt());
        let (Some(pt), Some(writer)) = (pt, self.rtc.writer(self.mid)) else {
            return;
        };
        if writer.write(pt, Instant::now(), time, payload).is_ok() {
            self.frames += 1;
            self.shared.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn drain(&mut self, armed: &mut bool) -> Option<Instant> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Some(at),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(Event::MediaData(_))) => {
                    self.last_heard = Some(Instant::now());
                    self.shared.heard.fetch_add(1, Ordering::Relaxed);
                    if *armed {
                        *armed = false;
                        let _ = self.heard.send((self.slot, wall_nanos()));
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return None,
            }
        }
    }
}

fn request() -> DialRequest {
    DialRequest {
        number: "+441632960123".into(),
        caller_id: "+442079460000".into(),
        trunk: "sim".into(),
        ring_timeout: Duration::from_secs(30),
        call_ref: CallRef::random(),
        detect_machine: false,
    }
}

fn wall_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}
