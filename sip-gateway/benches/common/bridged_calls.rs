//! The bridged phase of `first_audio.rs`: calls to a carrier in its own process, each bridged
//! to an agent leg, with audio both ways; what each bridged call costs the gateway, and what
//! is lost on the way. Included with `#[path]` by `first_audio.rs` alone.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sip_gateway::carrier::CarrierStats;
use sip_gateway::drops::{media_drops, MediaDrop};
use sip_gateway::gateway::{CallEvent, CallEventKind, CallRef, DialRequest, Gateway};
use tokio::sync::broadcast;

use crate::carrier::request;
use crate::child::ChildProcess;
use crate::proc_stat::{cpu_time, udp_receive_buffer_drops};
use crate::{load_average, rss_kib, AgentCodec, AgentCounts, AgentsProcess, Settings};

/// The trunk to the carrier of this phase.
pub const TRUNK: &str = "far";

/// The ceiling for one bridged call, in percent of a core.
const CPU_TARGET_PERCENT: f64 = 0.07;
/// Calls at which the issue asks for no loss.
const CALLS_TARGET: usize = 1000;
/// Loss below this fraction counts as none.
const LOSS_TOLERANCE: f64 = 1e-4;
/// Packets a bridged call relays each second: 20 ms frames, both ways.
const PACKETS_PER_CALL: f64 = 100.0;
/// Below this share of its 50 frames a second, an end counts as having fallen behind.
const BEHIND: f64 = 0.95;
/// Calls dialled per second while bringing the calls up.
const RATE: u32 = 200;
/// Audio runs this long after the last bridge before the window opens.
const WARM_UP: Duration = Duration::from_secs(2);
/// Time for packets in flight to arrive once both ends stop sending.
const DRAIN: Duration = Duration::from_secs(1);

/// What the bridged phase measured.
pub struct BridgedResult {
    calls: usize,
    window: Duration,
    gateway_cpu: Duration,
    carrier_cpu: Duration,
    agents_cpu: Duration,
    /// Frames the carrier sent towards the agents, and frames the agents heard.
    to_agents: (u64, u64),
    /// Frames the agents sent towards the carrier, and packets the carrier received.
    to_carrier: (u64, u64),
    rss_grown_kib: u64,
    ended_early: usize,
    udp_drops: u64,
    /// What the gateway dropped rather than sent late, by where.
    gateway_drops: Vec<(MediaDrop, u64)>,
    load: String,
}

/// Brings up one call for each of the first `settings.bridged` of the connected `legs`,
/// bridges each to its leg, measures a window, hangs up.
pub async fn run_bridged(
    gateway: &Gateway,
    events: &mut broadcast::Receiver<CallEvent>,
    agents: &mut AgentsProcess,
    carrier: &mut ChildProcess,
    legs: &[CallRef],
    settings: &Settings,
    ticks: f64,
) -> Result<BridgedResult> {
    let window = settings.bridged_window;
    // The last calls of the previous phase are still being hung up, and a peer that heard
    // them keeps its microphone on for a moment: let both settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib()?;
    let calls = bring_up(gateway, events, &legs[..settings.bridged]).await?;
    tokio::time::sleep(WARM_UP).await;

    // Both ends fall silent around the window so that nothing is in flight at either edge.
    silence(carrier, agents, true).await?;
    tokio::time::sleep(DRAIN).await;
    let before = Snapshot::take(carrier, agents, ticks).await?;
    silence(carrier, agents, false).await?;
    if settings.sample == 0 {
        tokio::time::sleep(Duration::from_secs(window)).await;
    } else {
        sample_window(gateway, carrier, agents, legs, settings, ticks).await?;
    }
    let busy_end = Snapshot::take(carrier, agents, ticks).await?;
    let rss_grown_kib = rss_kib()?.saturating_sub(rss_before);
    let load = load_average();
    silence(carrier, agents, true).await?;
    tokio::time::sleep(DRAIN).await;
    let after = Snapshot::take(carrier, agents, ticks).await?;

    let ended_early = tear_down(gateway, events, &calls).await?;
    Ok(BridgedResult {
        calls: calls.len(),
        window: busy_end.at - before.at,
        gateway_cpu: busy_end.gateway_cpu.saturating_sub(before.gateway_cpu),
        carrier_cpu: busy_end.carrier_cpu.saturating_sub(before.carrier_cpu),
        agents_cpu: busy_end.agents_cpu.saturating_sub(before.agents_cpu),
        to_agents: (
            after.carrier.rtp_sent - before.carrier.rtp_sent,
            after.agents.heard - before.agents.heard,
        ),
        to_carrier: (
            after.agents.sent - before.agents.sent,
            after.carrier.rtp_received - before.carrier.rtp_received,
        ),
        rss_grown_kib,
        ended_early,
        udp_drops: after.udp_drops.saturating_sub(before.udp_drops),
        gateway_drops: after
            .gateway_drops
            .iter()
            .zip(&before.gateway_drops)
            .map(|(&(place, now), &(_, was))| (place, now.saturating_sub(was)))
            .collect(),
        load,
    })
}

impl BridgedResult {
    /// Prints the phase's rows, in the table format of the other phases.
    pub fn print(&self, codec: AgentCodec) {
        let seconds = self.window.as_secs_f64().max(1e-9);
        let calls = self.calls.max(1) as f64;
        let busy = 100.0 * self.gateway_cpu.as_secs_f64() / seconds;
        let per_call = busy / calls;
        let relayed = self.to_agents.1 + self.to_carrier.1;
        let per_packet = self.gateway_cpu.as_secs_f64() / relayed.max(1) as f64;
        // A loaded host can starve the carrier or the peers, so that a call carries fewer
        // packets than a real one; the verdict is on a call at its full 100 packets a second.
        let full_call = 100.0 * per_packet * PACKETS_PER_CALL;
        let rate = |sent: u64| sent as f64 / seconds / calls;
        let kind = match codec {
            AgentCodec::G711 => "G.711 both sides",
            AgentCodec::Opus => "Opus agents, transcoded",
        };
        let full = self.calls >= CALLS_TARGET;
        println!();
        println!(
            "bridged: {} calls, {kind}, {seconds:.1} s window, load average {} (2 cores)",
            self.calls, self.load
        );
        println!("| figure | measured | target | |");
        println!("| --- | --- | --- | --- |");
        println!(
            "| gateway CPU per bridged call, at 50 frames/s each way | {full_call:.3} % of a core | ≤ {CPU_TARGET_PERCENT} % | {} |",
            verdict(full_call <= CPU_TARGET_PERCENT)
        );
        println!("| gateway CPU per bridged call, as measured | {per_call:.3} % of a core | | |");
        println!("| gateway CPU, all bridged calls | {busy:.1} % of a core | | |");
        println!(
            "| gateway CPU per relayed packet | {:.2} µs | | |",
            per_packet * 1e6
        );
        for (name, sent) in [
            ("carrier", self.to_agents.0),
            ("agents' peers", self.to_carrier.0),
        ] {
            let each = rate(sent);
            let behind = if each < 50.0 * BEHIND {
                "fell behind: host too busy"
            } else {
                ""
            };
            println!("| frames/s per call sent by the {name} | {each:.1} | 50 | {behind} |");
        }
        println!(
            "| packets relayed per second | {:.0} | | |",
            relayed as f64 / seconds
        );
        for (name, (sent, arrived)) in [
            ("carrier → agents", self.to_agents),
            ("agents → carrier", self.to_carrier),
        ] {
            let lost = sent.saturating_sub(arrived);
            let loss = lost as f64 / sent.max(1) as f64;
            let (target, met) = if full {
                ("none at 1,000", verdict(loss < LOSS_TOLERANCE && sent > 0))
            } else {
                ("", "")
            };
            println!(
                "| loss {name} | {:.4} % ({lost} of {sent}, {arrived} arrived) | {target} | {met} |",
                loss * 100.0
            );
        }
        println!(
            "| gateway memory per bridged call | {:.1} KiB | | |",
            self.rss_grown_kib as f64 / calls
        );
        println!(
            "| carrier (other process), for scale | {:.1} % of a core | | |",
            100.0 * self.carrier_cpu.as_secs_f64() / seconds
        );
        println!(
            "| agents' peers (other process), for scale | {:.1} % of a core | | |",
            100.0 * self.agents_cpu.as_secs_f64() / seconds
        );
        println!(
            "| kernel UDP buffer drops (whole host) | {} | | |",
            self.udp_drops
        );
        for (place, dropped) in &self.gateway_drops {
            println!("| gateway drops: {} | {dropped} | | |", place.label());
        }
        if self.ended_early > 0 {
            println!(
                "| calls ended during the window | {} | none | MISSED |",
                self.ended_early
            );
        }
    }
}

/// Dials one call per leg at [`RATE`] a second and bridges each to its leg on answer.
///
/// Each request to the gateway runs as a task of its own: awaited in turn, every one would
/// wait for the gateway's turn on a thread that hundreds of legs' media keep busy, and the
/// calls would come up at a few a second.
async fn bring_up(
    gateway: &Gateway,
    events: &mut broadcast::Receiver<CallEvent>,
    legs: &[CallRef],
) -> Result<Vec<CallRef>> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(RATE)));
    let mut waiting: HashMap<CallRef, CallRef> = HashMap::with_capacity(legs.len());
    let mut calls = Vec::with_capacity(legs.len());
    let mut requests = tokio::task::JoinSet::new();
    // Generous: on a busy host the gateway, the carrier and the peers all wait for a core.
    let budget = Duration::from_secs(60 + 4 * legs.len() as u64 / u64::from(RATE));
    let ramp = async {
        while calls.len() < legs.len() || !waiting.is_empty() || !requests.is_empty() {
            tokio::select! {
                biased;
                Some(done) = requests.join_next() => done??,
                event = events.recv() => {
                    let event = received(event)?;
                    match event.kind {
                        CallEventKind::Answered => {
                            if let Some(leg) = waiting.remove(&event.call_ref) {
                                let gateway = gateway.clone();
                                requests.spawn(async move {
                                    gateway
                                        .bridge(event.call_ref, leg)
                                        .await
                                        .context("bridging a call to its agent leg")
                                });
                            }
                        }
                        CallEventKind::Ended { cause } if waiting.contains_key(&event.call_ref) => {
                            bail!("a bridged call ended before answer: {cause:?}");
                        }
                        _ => {}
                    }
                }
                _ = ticker.tick(), if calls.len() < legs.len() => {
                    let call_ref = CallRef::random();
                    waiting.insert(call_ref, legs[calls.len()]);
                    let gateway = gateway.clone();
                    requests.spawn(async move {
                        gateway.dial(far(call_ref)).await.context("dialling")?;
                        anyhow::Ok(())
                    });
                    calls.push(call_ref);
                }
            }
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(budget, ramp).await {
        Ok(done) => done?,
        Err(_) => bail!(
            "{} of {} calls dialled, {} not answered after {budget:?}",
            calls.len(),
            legs.len(),
            waiting.len()
        ),
    }
    Ok(calls)
}

/// Hangs every call up and waits until all have ended; returns how many had ended already.
async fn tear_down(
    gateway: &Gateway,
    events: &mut broadcast::Receiver<CallEvent>,
    calls: &[CallRef],
) -> Result<usize> {
    let mut open: HashMap<CallRef, ()> = calls.iter().map(|c| (*c, ())).collect();
    let mut ended_early = 0;
    loop {
        match events.try_recv() {
            Ok(CallEvent {
                call_ref,
                kind: CallEventKind::Ended { .. },
                ..
            }) => {
                if open.remove(&call_ref).is_some() {
                    ended_early += 1;
                }
            }
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Empty) => break,
            Err(error) => bail!("event stream failed: {error}"),
        }
    }
    for call_ref in open.keys() {
        // A call that ended meanwhile refuses the hang-up; its Ended event is counted below.
        let _ = gateway.hangup(*call_ref).await;
    }
    let wait = async {
        while !open.is_empty() {
            let event = received(events.recv().await)?;
            if let CallEventKind::Ended { .. } = event.kind {
                open.remove(&event.call_ref);
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("bridged calls not all ended after hang-up")??;
    Ok(ended_early)
}

/// Sleeps through the window in slices of `settings.sample` seconds, printing after each a
/// row of what a soak must show steady; then the RSS growth and the agent legs dropped.
///
/// Nothing is muted: each row compares running counters. A leg counts as dropped once the
/// gateway reports it disconnected or ended, and as connected again if it reconnects.
async fn sample_window(
    gateway: &Gateway,
    carrier: &mut ChildProcess,
    agents: &mut AgentsProcess,
    legs: &[CallRef],
    settings: &Settings,
    ticks: f64,
) -> Result<()> {
    // A receiver of its own, so that the phase's still holds every event for `tear_down`.
    let mut events = gateway.events();
    let legs: HashSet<CallRef> = legs.iter().copied().collect();
    let mut down = HashSet::new();
    let mut dropped = HashSet::new();
    let mut last = Snapshot::take(carrier, agents, ticks).await?;
    let start = last.at;
    let end = start + Duration::from_secs(settings.bridged_window);
    let mut first_rss = None;
    let mut last_rss = 0;
    println!(
        "soak: a row every {} s through the {} s window",
        settings.sample, settings.bridged_window
    );
    println!("| minute | gateway RSS | gateway CPU | packets relayed | gateway drops | agent legs connected |");
    println!("| --- | --- | --- | --- | --- | --- |");
    while last.at < end {
        let slice_end = (last.at + Duration::from_secs(settings.sample)).min(end);
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(slice_end));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                event = events.recv() => {
                    let event = received(event)?;
                    if !legs.contains(&event.call_ref) {
                        continue;
                    }
                    match event.kind {
                        CallEventKind::Disconnected | CallEventKind::Ended { .. } => {
                            down.insert(event.call_ref);
                            dropped.insert(event.call_ref);
                        }
                        CallEventKind::Answered => {
                            down.remove(&event.call_ref);
                        }
                        _ => {}
                    }
                }
            }
        }
        let now = Snapshot::take(carrier, agents, ticks).await?;
        let rss = rss_kib()?;
        let seconds = (now.at - last.at).as_secs_f64().max(1e-9);
        let cpu = now
            .gateway_cpu
            .saturating_sub(last.gateway_cpu)
            .as_secs_f64();
        let relayed = (now.agents.heard - last.agents.heard)
            + (now.carrier.rtp_received - last.carrier.rtp_received);
        let drops: u64 = now
            .gateway_drops
            .iter()
            .zip(&last.gateway_drops)
            .map(|(&(_, now), &(_, was))| now.saturating_sub(was))
            .sum();
        println!(
            "| {:.1} | {rss} KiB | {:.1} % of a core | {relayed} | {drops} | {} of {} |",
            (now.at - start).as_secs_f64() / 60.0,
            100.0 * cpu / seconds,
            legs.len() - down.len(),
            legs.len()
        );
        first_rss.get_or_insert(rss);
        last_rss = rss;
        last = now;
    }
    let first_rss = first_rss.unwrap_or(last_rss);
    let growth = last_rss as f64 - first_rss as f64;
    println!(
        "soak: gateway RSS {first_rss} KiB at the first row, {last_rss} KiB at the last: {growth:+.0} KiB ({:+.2} %); {} of {} agent legs dropped",
        100.0 * growth / first_rss.max(1) as f64,
        dropped.len(),
        legs.len()
    );
    println!();
    Ok(())
}

/// Mutes or unmutes both ends: the carrier's audio and the agents' microphones.
async fn silence(carrier: &mut ChildProcess, agents: &mut AgentsProcess, on: bool) -> Result<()> {
    carrier.command(if on { "mute" } else { "unmute" }).await?;
    agents.set_muted(on).await
}

/// Counters read at one edge of the window.
struct Snapshot {
    at: Instant,
    gateway_cpu: Duration,
    carrier_cpu: Duration,
    agents_cpu: Duration,
    carrier: CarrierStats,
    agents: AgentCounts,
    udp_drops: u64,
    gateway_drops: [(MediaDrop, u64); MediaDrop::ALL.len()],
}

impl Snapshot {
    async fn take(
        carrier: &mut ChildProcess,
        agents: &mut AgentsProcess,
        ticks: f64,
    ) -> Result<Self> {
        let carrier_stats = carrier.stats().await?;
        let agent_counts = agents.counts().await?;
        Ok(Snapshot {
            at: Instant::now(),
            gateway_cpu: cpu_time("self", ticks)?,
            carrier_cpu: cpu_time(&carrier.pid, ticks)?,
            agents_cpu: cpu_time(&agents.pid, ticks)?,
            carrier: carrier_stats,
            agents: agent_counts,
            udp_drops: udp_receive_buffer_drops()?,
            gateway_drops: media_drops(),
        })
    }
}

/// A call to this phase's carrier.
fn far(call_ref: CallRef) -> DialRequest {
    DialRequest {
        trunk: TRUNK.into(),
        ..request(call_ref)
    }
}

fn received(event: Result<CallEvent, broadcast::error::RecvError>) -> Result<CallEvent> {
    // A lagging receiver has lost events, so the counts would be wrong: the run fails.
    event.context("the gateway's event stream lagged or closed")
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}
