//! Calls under a flood of junk SIP: does junk at 5,000 packets per second disturb them?
//!
//! `cargo bench --bench sip_flood` runs the same call load twice against the simulated carrier
//! over loopback, first quiet, then while another process floods the gateway's SIP port:
//!
//! 1. `2 × SIP_FLOOD_CALLS` legs are dialled at `SIP_FLOOD_RATE` calls per second (default
//!    200 legs at 100 cps); setup time is the time from `dial` to the `Answered` event.
//! 2. The legs are bridged in pairs and carry audio for a window of `SIP_FLOOD_WINDOW` seconds
//!    (default 10), counted as in `gateway_load`: packets the carrier sent versus received.
//!
//! The flood comes from a child process (this binary again, `SIP_FLOOD_ROLE=flooder`) sending
//! `SIP_FLOOD_PPS` datagrams per second (default 5,000) for the whole second run: random bytes,
//! SIP cut short, malformed requests, requests with a header of tens of kilobytes, and
//! well-formed requests. Three quarters come from a stranger (127.0.0.2), the rest from the
//! carrier's host, so both the stranger path (403 or silence) and the trunk path (400) are hit.
//!
//! The criteria: no added loss, and setup p99 within 2× the quiet figure. A missed
//! criterion is reported in the table; the run fails only when the run itself fails.

#[path = "common/carrier.rs"]
mod carrier;
#[path = "common/child.rs"]
mod child;
#[path = "../sip-gateway/benches/common/figures.rs"]
mod figures;
#[path = "../sip-gateway/benches/common/proc_stat.rs"]
mod proc_stat;
use carrier::{carrier_process, request};
use child::{runtime, ChildProcess};
use figures::{env_number, ms, percentile};
use proc_stat::{clock_ticks, cpu_time, udp_receive_buffer_drops};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sip_gateway::gateway::{
    CallEvent, CallEventKind, CallRef, Gateway, GatewayConfig, TrunkConfig,
};
use tokio::net::UdpSocket;
use tokio::sync::broadcast::Receiver;

/// Loss below this fraction counts as none: packets in flight at the window's edges.
const LOSS_TOLERANCE: f64 = 1e-4;
/// Audio runs this long after bridging before the window opens.
const WARM_UP: Duration = Duration::from_secs(2);
/// Time for packets in flight to arrive once the carrier stops sending.
const DRAIN: Duration = Duration::from_secs(1);
/// The flood is sent in bursts this far apart.
const FLOOD_TICK: Duration = Duration::from_millis(5);

/// The variable that tells a child process of this binary its role.
const ROLE: &str = "SIP_FLOOD_ROLE";

fn main() -> Result<()> {
    match std::env::var("SIP_FLOOD_ROLE").as_deref() {
        Ok("carrier") => runtime()?.block_on(carrier_process()),
        Ok("flooder") => runtime()?.block_on(flooder_process()),
        _ => runtime()?.block_on(run(Settings::from_env()?)),
    }
}

/// Sizes of the run, from `SIP_FLOOD_*` variables.
struct Settings {
    calls: usize,
    rate: u32,
    window: u64,
    pps: u32,
}

impl Settings {
    fn from_env() -> Result<Self> {
        Ok(Settings {
            calls: env_number("SIP_FLOOD_CALLS", 100)?,
            rate: env_number("SIP_FLOOD_RATE", 100)?,
            window: env_number("SIP_FLOOD_WINDOW", 10)?,
            pps: env_number("SIP_FLOOD_PPS", 5000)?,
        })
    }
}

/// What one run of the call load measured.
struct Measured {
    setup: Vec<Duration>,
    sent: u64,
    received: u64,
    window: Duration,
    gateway_cpu: Duration,
    ended_early: usize,
    failed: usize,
    /// Datagrams the host's kernel dropped for a full socket buffer over the run, any socket's.
    udp_drops: u64,
}

impl Measured {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    fn loss(&self) -> f64 {
        self.lost() as f64 / self.sent.max(1) as f64
    }
}

async fn run(settings: Settings) -> Result<()> {
    let mut carrier = ChildProcess::spawn(ROLE, "carrier", &[], None).await?;
    let mut trunk = TrunkConfig::new("sim", carrier.sip_addr()?);
    trunk.max_concurrent = usize::MAX;
    trunk.max_cps = u32::MAX;
    let config = GatewayConfig {
        sip_tcp: None,
        ..GatewayConfig::loopback()
    };
    let gateway = Gateway::start(config, vec![trunk])
        .await
        .context("starting the gateway")?;
    let mut events = gateway.events();
    let ticks = clock_ticks();

    let quiet = run_load(&gateway, &mut events, &mut carrier, &settings, ticks)
        .await
        .context("quiet run")?;
    let target = gateway.sip_udp_addr().to_string();
    let pps = settings.pps.to_string();
    let flooder = ChildProcess::spawn(
        ROLE,
        "flooder",
        &[("SIP_FLOOD_TARGET", &target), ("SIP_FLOOD_PPS", &pps)],
        None,
    )
    .await?;
    let begun = Instant::now();
    let flooded = run_load(&gateway, &mut events, &mut carrier, &settings, ticks)
        .await
        .context("flooded run")?;
    let junk: u64 = flooder
        .stop()
        .await?
        .and_then(|l| l.strip_prefix("sent ")?.parse().ok())
        .context("the flooder did not report what it sent")?;
    let flood_rate = junk as f64 / begun.elapsed().as_secs_f64();
    carrier.stop().await?;
    report(&settings, &quiet, &flooded, junk, flood_rate);
    Ok(())
}

/// Dials the legs, bridges them in pairs, measures a window of audio, then hangs up.
async fn run_load(
    gateway: &Gateway,
    events: &mut Receiver<CallEvent>,
    carrier: &mut ChildProcess,
    settings: &Settings,
    ticks: f64,
) -> Result<Measured> {
    let drops_before = udp_receive_buffer_drops()?;
    let legs = settings.calls * 2;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(
        1.0 / f64::from(settings.rate.max(1)),
    ));
    let mut waiting: HashMap<CallRef, Instant> = HashMap::with_capacity(legs);
    let mut order = Vec::with_capacity(legs);
    let mut setup = Vec::with_capacity(legs);
    let mut answered = Vec::with_capacity(legs);
    let mut failed = 0;
    // Timer B (32 s) ends any INVITE that gets no answer, so every leg is settled by then.
    let budget = Duration::from_secs(45 + legs as u64 / u64::from(settings.rate.max(1)));
    let ramp = async {
        while order.len() < legs || !waiting.is_empty() {
            tokio::select! {
                biased;
                event = events.recv() => {
                    let event = event.context("the gateway's event stream lagged or closed")?;
                    match event.kind {
                        CallEventKind::Answered => {
                            if let Some(at) = waiting.remove(&event.call_ref) {
                                setup.push(at.elapsed());
                                answered.push(event.call_ref);
                            }
                        }
                        // A leg the flood kept from being set up is a result, not a broken run.
                        CallEventKind::Ended { .. } if waiting.remove(&event.call_ref).is_some() => {
                            failed += 1;
                        }
                        _ => {}
                    }
                }
                _ = ticker.tick(), if order.len() < legs => {
                    let call_ref = CallRef::random();
                    waiting.insert(call_ref, Instant::now());
                    gateway.dial(request(call_ref)).await.context("dialling a leg")?;
                    order.push(call_ref);
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(budget, ramp)
        .await
        .with_context(|| format!("legs not all answered after {budget:?}"))??;
    for pair in answered.chunks_exact(2) {
        gateway
            .bridge(pair[0], pair[1])
            .await
            .context("bridging two legs")?;
    }
    tokio::time::sleep(WARM_UP).await;
    // Audio pauses around the window, so every packet sent inside it has arrived or been lost.
    carrier.command("mute").await?;
    tokio::time::sleep(DRAIN).await;
    let before = carrier.stats().await?;
    let (at_start, cpu_start) = (Instant::now(), cpu_time("self", ticks)?);
    carrier.command("unmute").await?;
    tokio::time::sleep(Duration::from_secs(settings.window)).await;
    let (window, gateway_cpu) = (at_start.elapsed(), cpu_time("self", ticks)? - cpu_start);
    carrier.command("mute").await?;
    tokio::time::sleep(DRAIN).await;
    let after = carrier.stats().await?;
    carrier.command("unmute").await?;

    let mut ended_early = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event.kind, CallEventKind::Ended { .. }) {
            ended_early += 1;
        }
    }
    let mut open: HashMap<CallRef, ()> = answered.iter().map(|c| (*c, ())).collect();
    for call_ref in &answered {
        let _ = gateway.hangup(*call_ref).await;
    }
    let teardown = async {
        while open.len() > ended_early {
            let event = events.recv().await.context("event stream")?;
            if let CallEventKind::Ended { .. } = event.kind {
                open.remove(&event.call_ref);
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), teardown)
        .await
        .context("legs not all ended after hang-up")??;
    setup.sort();
    Ok(Measured {
        setup,
        sent: after.rtp_sent - before.rtp_sent,
        received: after.rtp_received - before.rtp_received,
        window,
        gateway_cpu,
        ended_early,
        failed,
        udp_drops: udp_receive_buffer_drops()?.saturating_sub(drops_before),
    })
}

fn report(settings: &Settings, quiet: &Measured, flooded: &Measured, junk: u64, rate: f64) {
    println!();
    println!(
        "sip_flood  {}  {} bridged calls ({} legs at {} cps), {} s window, flood {} pkt/s",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        settings.calls,
        settings.calls * 2,
        settings.rate,
        settings.window,
        settings.pps,
    );
    println!("{:-<120}", "");
    println!(
        "{:<10}{:>22}{:>28}{:>20}{:>20}{:>20}",
        "run",
        "setup p50 / p99 ms",
        "packets lost",
        "gateway core busy",
        "legs failed/ended",
        "UDP drops (host)"
    );
    println!("{:-<120}", "");
    for (label, m) in [("quiet", quiet), ("flooded", flooded)] {
        println!(
            "{label:<10}{:>22}{:>28}{:>19.1}%{:>20}{:>20}",
            format!(
                "{} / {}",
                ms(percentile(&m.setup, 0.50)),
                ms(percentile(&m.setup, 0.99))
            ),
            format!("{} of {} ({:.4} %)", m.lost(), m.sent, m.loss() * 100.0),
            m.gateway_cpu.as_secs_f64() / m.window.as_secs_f64() * 100.0,
            format!("{} / {}", m.failed, m.ended_early),
            m.udp_drops,
        );
    }
    println!("{:-<120}", "");
    println!("junk sent: {junk} datagrams, {rate:.0} per second");
    let added_loss = flooded.loss() > quiet.loss() + LOSS_TOLERANCE
        || flooded.ended_early > quiet.ended_early
        || flooded.failed > quiet.failed;
    let p99_quiet = percentile(&quiet.setup, 0.99);
    let p99_flooded = percentile(&flooded.setup, 0.99);
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("no added loss: {}", verdict(!added_loss));
    println!(
        "setup p99 within 2x of quiet ({} ms vs {} ms): {}",
        ms(p99_flooded),
        ms(p99_quiet),
        verdict(p99_flooded <= p99_quiet * 2)
    );
}

/// Sends junk to `SIP_FLOOD_TARGET` at `SIP_FLOOD_PPS` until stdin closes, then prints the count.
async fn flooder_process() -> Result<()> {
    let target: SocketAddr = std::env::var("SIP_FLOOD_TARGET")?.parse()?;
    let pps: u32 = env_number("SIP_FLOOD_PPS", 5000)?;
    let stranger = UdpSocket::bind("127.0.0.2:0").await?;
    let neighbour = UdpSocket::bind("127.0.0.1:0").await?;
    println!("flooding");
    let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Reading stdin blocks: it ends when the parent closes it, or dies.
        for _ in std::io::stdin().lines() {}
        let _ = stop_tx.send(());
    });
    let mut junk = Junk::new(0x5eed_f100d);
    let mut ticker = tokio::time::interval(FLOOD_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let begin = Instant::now();
    let mut sent: u64 = 0;
    let mut drain = vec![0u8; 65536];
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let due = (begin.elapsed().as_secs_f64() * f64::from(pps)) as u64;
        while sent < due {
            let packet = junk.next_packet(target);
            let socket = if sent % 4 == 3 { &neighbour } else { &stranger };
            // A full socket buffer only means this datagram is lost, as a flood's would be.
            let _ = socket.try_send_to(&packet, target);
            sent += 1;
        }
        // The gateway's answers are read and thrown away, so they cost it nothing extra.
        while stranger.try_recv_from(&mut drain).is_ok() {}
        while neighbour.try_recv_from(&mut drain).is_ok() {}
    }
    println!("sent {sent}");
    Ok(())
}

/// Makes the flood's datagrams from a fixed seed, so every run sends the same junk.
struct Junk {
    state: u64,
}

impl Junk {
    fn new(seed: u64) -> Self {
        Junk { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: small, and good enough to vary junk.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n.max(1)) as usize
    }

    fn next_packet(&mut self, target: SocketAddr) -> Vec<u8> {
        let n = self.next();
        let invite = format!(
            "INVITE sip:+441632960{:03}@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{n:x}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.2>;tag={n:x}\r\nTo: <sip:x@{target}>\r\n\
             Call-ID: {n:x}@flood\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            n % 1000
        );
        match n % 5 {
            // Random bytes, up to a typical MTU.
            0 => (0..1 + self.below(1400))
                .map(|_| self.next() as u8)
                .collect(),
            // SIP cut short anywhere.
            1 => invite.as_bytes()[..self.below(invite.len() as u64)].to_vec(),
            // Malformed requests: a broken CSeq, another version, an unclosed quote.
            2 => match n / 5 % 3 {
                0 => invite.replace("CSeq: 1 INVITE", "CSeq: x INVITE"),
                1 => invite.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1),
                _ => invite.replace("To: <", "To: \"<"),
            }
            .into_bytes(),
            // A header line of 8 to 60 KB.
            3 => invite
                .replace(
                    "Max-Forwards: 70",
                    &format!("X-Long: {}", "a".repeat(8_000 + self.below(52_000))),
                )
                .into_bytes(),
            // A well-formed request, which a stranger gets 403 for.
            _ => invite.into_bytes(),
        }
    }
}
