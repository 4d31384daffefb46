//! The recordings phase of `gateway_load.rs` (`GATEWAY_BENCH_RECORD=1`): bridged calls, each
//! recorded to a stereo WAV, every file then checked frame by frame (`recording_check.rs`).
//! Included with `#[path]`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use sip_gateway::carrier::counter::{FrameStamp, STAMP_SAMPLES};
use sip_gateway::carrier::CarrierStats;
use sip_gateway::gateway::{CallEvent, CallEventKind, CallRef, Gateway};
use sip_gateway::media::G711;
use tokio::sync::broadcast::Receiver;

use crate::carrier::request;
use crate::child::ChildProcess;
use crate::proc_stat::cpu_time;
use crate::recording_check::{check_channel, check_file, ChannelCheck, FileCheck};
use crate::{received, row, rss_kib, udp_receive_buffer_drops, Settings, BRIDGED_TARGET};

/// Audio runs this long after the last recording starts before the window opens.
const SETTLE: Duration = Duration::from_secs(1);
/// Time allowed for every call to end, and its file to be finished, after hang-up.
const FINISH_BUDGET: Duration = Duration::from_secs(60);

/// What the recordings phase measured.
pub struct RecordingsResult {
    calls: usize,
    window: Duration,
    gateway_cpu: Duration,
    writers_cpu: Duration,
    udp_drops: u64,
    carrier_cpu: Duration,
    carrier: CarrierStats,
    write_bytes: u64,
    write_calls_bytes: u64,
    finish: Duration,
    rss_before_kib: u64,
    rss_during_kib: u64,
    threads_during: u64,
    files: Vec<(PathBuf, FileCheck)>,
    dir: PathBuf,
}

/// Checks that the checker finds a gap, a repeat and a stranger it is shown; a checker that
/// cannot fail would let every run pass.
pub fn check_the_checker() -> Result<()> {
    let codec = G711::Pcmu;
    let mut channel = vec![0i16; 37];
    for index in (100..130).filter(|&i| i != 110) {
        let mut frame = [0i16; STAMP_SAMPLES];
        codec.decode(&FrameStamp { leg: 5, index }.payload(), &mut frame);
        channel.extend(frame);
        if index == 120 {
            channel.extend(frame);
        }
    }
    let mut stranger = [0i16; STAMP_SAMPLES];
    codec.decode(&FrameStamp { leg: 6, index: 0 }.payload(), &mut stranger);
    channel.extend(stranger);
    let check = check_channel(&channel);
    let expected = ChannelCheck {
        leg: Some(5),
        frames: 30,
        missing: 1,
        duplicated: 1,
        out_of_order: 0,
        foreign: 1,
        shifted: 0,
    };
    if check != expected {
        bail!("the recording checker is wrong: {check:?}, expected {expected:?}");
    }
    Ok(())
}

/// Brings up bridged pairs, records one leg of each pair, runs the window, hangs up, waits for
/// every file to be finished and checks them all.
pub async fn run_recordings(
    gateway: &Gateway,
    events: &mut Receiver<CallEvent>,
    carrier: &mut ChildProcess,
    settings: &Settings,
    ticks: f64,
) -> Result<RecordingsResult> {
    let dir = std::env::temp_dir().join(format!("gateway-bench-recordings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let legs = settings.calls * 2;
    let rss_before_kib = rss_kib()?;
    let order = answer_legs(gateway, events, legs, settings.rate).await?;
    let paths: Vec<PathBuf> = (0..settings.calls)
        .map(|k| dir.join(format!("call-{k:04}.wav")))
        .collect();
    let start_all = async {
        for pair in order.chunks_exact(2) {
            gateway
                .bridge(pair[0], pair[1])
                .await
                .context("bridging two legs")?;
        }
        // All at once: one after the other, each waits its turn on a runtime busy relaying.
        let started = order
            .chunks_exact(2)
            .zip(&paths)
            .map(|(pair, path)| gateway.record(pair[0], path));
        for result in join_all(started).await {
            result.context("starting a recording")?;
        }
        anyhow::Ok(())
    };
    // A gateway that cannot keep up would otherwise leave the run going for many minutes;
    // each request waits its turn behind the relaying, so the budget grows with the calls.
    let budget = FINISH_BUDGET + Duration::from_millis(100) * settings.calls as u32;
    tokio::time::timeout(budget, start_all)
        .await
        .context("recordings not all started")??;
    tokio::time::sleep(SETTLE).await;

    let io_before = ProcIo::read()?;
    let cpu_before = cpu_time("self", ticks)?;
    let writers_before = writer_threads_cpu(ticks)?;
    let drops_before = udp_receive_buffer_drops()?;
    let carrier_cpu_before = cpu_time(&carrier.pid, ticks)?;
    let stats_before = carrier.stats().await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(settings.window)).await;
    let window = started.elapsed();
    let gateway_cpu = cpu_time("self", ticks)? - cpu_before;
    let writers_cpu = writer_threads_cpu(ticks)?.saturating_sub(writers_before);
    let udp_drops = udp_receive_buffer_drops()? - drops_before;
    let carrier_cpu = cpu_time(&carrier.pid, ticks)? - carrier_cpu_before;
    let stats_after = carrier.stats().await?;
    let io_during = ProcIo::read()?;
    let rss_during_kib = rss_kib()?;
    let threads_during = threads()?;

    let hung_up = Instant::now();
    let mut open: HashMap<CallRef, ()> = order.iter().map(|c| (*c, ())).collect();
    let teardown = async {
        for call_ref in &order {
            let _ = gateway.hangup(*call_ref).await;
        }
        while !open.is_empty() {
            let event = received(events.recv().await)?;
            if let CallEventKind::Ended { .. } = event.kind {
                open.remove(&event.call_ref);
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(budget, teardown)
        .await
        .context("recorded calls not all ended after hang-up")??;
    let finish = hung_up.elapsed();
    let io_after = ProcIo::read()?;

    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let check = check_file(&path)?;
        files.push((path, check));
    }
    Ok(RecordingsResult {
        calls: settings.calls,
        window,
        gateway_cpu,
        writers_cpu,
        udp_drops,
        carrier_cpu,
        carrier: CarrierStats {
            rtp_sent: stats_after.rtp_sent - stats_before.rtp_sent,
            rtp_received: stats_after.rtp_received - stats_before.rtp_received,
            ..stats_after
        },
        write_bytes: io_during.write_bytes - io_before.write_bytes,
        write_calls_bytes: io_after.wchar - io_before.wchar,
        finish,
        rss_before_kib,
        rss_during_kib,
        threads_during,
        files,
        dir,
    })
}

/// Prints the phase's rows, removes the files if they are all whole, and fails the run if not.
pub fn report_recordings(r: &RecordingsResult) -> Result<()> {
    let label = "recordings";
    let seconds = r.window.as_secs_f64();
    let whole = r.files.iter().filter(|(_, f)| f.is_whole()).count();
    let audio: f64 = r.files.iter().map(|(_, f)| f.seconds).sum();
    let bytes: u64 = r.files.iter().map(|(_, f)| f.bytes).sum();
    let full_size = r.calls >= BRIDGED_TARGET;
    row(
        &format!("{label}: bridged calls recorded"),
        format!("{} for {seconds:.1} s", r.calls),
        "",
        None,
    );
    row(
        &format!("{label}: files whole"),
        format!("{whole} of {}", r.files.len()),
        "all",
        Some(whole == r.files.len() && r.files.len() == r.calls),
    );
    for (side, name) in [(1, "right"), (0, "left")] {
        let sum = |f: fn(&ChannelCheck) -> u64| -> u64 {
            r.files.iter().map(|(_, c)| f(&c.channels[side])).sum()
        };
        row(
            &format!("{label}: {name} frames"),
            sum(|c| c.frames).to_string(),
            "",
            None,
        );
        row(
            &format!("{label}: {name} missing / dup / foreign"),
            format!(
                "{} / {} / {}",
                sum(|c| c.missing),
                sum(|c| c.duplicated),
                sum(|c| c.foreign)
            ),
            "0 / 0 / 0",
            Some(sum(ChannelCheck::faults) == 0),
        );
        row(
            &format!("{label}: {name} out of order / shifted"),
            format!("{} / {}", sum(|c| c.out_of_order), sum(|c| c.shifted)),
            "",
            None,
        );
    }
    let unfinished = r.files.iter().filter(|(_, f)| !f.finalised).count();
    if unfinished > 0 {
        row(
            &format!("{label}: files not finalised"),
            unfinished.to_string(),
            "0",
            Some(false),
        );
    }
    if let Some((path, worst)) = r
        .files
        .iter()
        .max_by_key(|(_, f)| f.channels.iter().map(ChannelCheck::faults).sum::<u64>())
        .filter(|(_, f)| !f.is_whole())
    {
        row(
            &format!("{label}: worst file"),
            format!(
                "{} missing {}+{}",
                path.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                worst.channels[0].missing,
                worst.channels[1].missing
            ),
            "",
            None,
        );
    }
    row(
        &format!("{label}: audio recorded"),
        format!(
            "{audio:.0} s ({:.1} s a file)",
            audio / r.files.len().max(1) as f64
        ),
        "",
        None,
    );
    let lost = r.carrier.rtp_sent.saturating_sub(r.carrier.rtp_received);
    row(
        &format!("{label}: relay loss in window"),
        format!(
            "{:.4} % ({lost} of {}, edges in flight)",
            lost as f64 * 100.0 / r.carrier.rtp_sent.max(1) as f64,
            r.carrier.rtp_sent
        ),
        "",
        None,
    );
    row(
        &format!("{label}: kernel UDP buffer drops"),
        format!("{} (whole host)", r.udp_drops),
        "",
        None,
    );
    let busy = r.gateway_cpu.as_secs_f64() / seconds;
    let writers = r.writers_cpu.as_secs_f64() / seconds;
    row(
        &format!("{label}: gateway CPU, all threads"),
        format!("{:.1} % of a core", busy * 100.0),
        "",
        None,
    );
    row(
        &format!("{label}: of which WAV writers"),
        format!("{:.1} % of a core", writers * 100.0),
        "",
        None,
    );
    let relay = busy - writers;
    row(
        &format!("{label}: relay thread (the rest)"),
        format!("{:.1} % of a core", relay * 100.0),
        if full_size { "< 100 %" } else { "" },
        full_size.then_some(relay < 1.0),
    );
    row(
        &format!("{label}: CPU per call"),
        format!("{:.2} % of a core", busy * 100.0 / r.calls.max(1) as f64),
        "",
        None,
    );
    row(
        &format!("{label}: carrier CPU"),
        format!(
            "{:.1} % of a core",
            r.carrier_cpu.as_secs_f64() / seconds * 100.0
        ),
        "",
        None,
    );
    row(
        &format!("{label}: disk written in window"),
        format!(
            "{:.2} MB/s ({:.0} MB)",
            r.write_bytes as f64 / seconds / 1e6,
            r.write_bytes as f64 / 1e6
        ),
        "",
        None,
    );
    row(
        &format!("{label}: bytes in files / written since window"),
        format!(
            "{:.0} / {:.0} MB",
            bytes as f64 / 1e6,
            r.write_calls_bytes as f64 / 1e6
        ),
        "",
        None,
    );
    row(
        &format!("{label}: hang-up to all files done"),
        format!("{:.2} s", r.finish.as_secs_f64()),
        "",
        None,
    );
    let grown = r.rss_during_kib.saturating_sub(r.rss_before_kib);
    row(
        &format!("{label}: RSS, threads"),
        format!("+{} MiB, {} threads", grown / 1024, r.threads_during),
        "",
        None,
    );
    println!("{:-<96}", "");
    if whole == r.files.len() && r.files.len() == r.calls {
        std::fs::remove_dir_all(&r.dir).with_context(|| format!("removing {}", r.dir.display()))?;
        Ok(())
    } else {
        bail!(
            "{} of {} recordings have gaps; the files are in {}",
            r.files.len() - whole,
            r.calls,
            r.dir.display()
        )
    }
}

/// Dials `legs` calls at `rate` a second and waits for all of them to be answered.
pub async fn answer_legs(
    gateway: &Gateway,
    events: &mut Receiver<CallEvent>,
    legs: usize,
    rate: u32,
) -> Result<Vec<CallRef>> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut waiting: HashMap<CallRef, ()> = HashMap::with_capacity(legs);
    let mut order = Vec::with_capacity(legs);
    let budget = Duration::from_secs(30 + legs as u64 / u64::from(rate.max(1)));
    let ramp = async {
        while order.len() < legs || !waiting.is_empty() {
            tokio::select! {
                biased;
                event = events.recv() => {
                    let event = received(event)?;
                    match event.kind {
                        CallEventKind::Answered => {
                            waiting.remove(&event.call_ref);
                        }
                        CallEventKind::Ended { cause } if waiting.contains_key(&event.call_ref) => {
                            bail!("a leg ended before answer: {cause:?}");
                        }
                        _ => {}
                    }
                }
                _ = ticker.tick(), if order.len() < legs => {
                    let call_ref = CallRef::random();
                    waiting.insert(call_ref, ());
                    gateway.dial(request(call_ref)).await.context("dialling a leg")?;
                    order.push(call_ref);
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(budget, ramp).await.with_context(|| {
        format!(
            "{} of {legs} legs dialled, {} not answered after {budget:?}",
            order.len(),
            waiting.len()
        )
    })??;
    Ok(order)
}

/// Bytes this process wrote, from `/proc/self/io`.
struct ProcIo {
    /// Bytes handed to `write` and its kin.
    wchar: u64,
    /// Bytes sent, or due to be sent, to storage.
    write_bytes: u64,
}

impl ProcIo {
    fn read() -> Result<Self> {
        let io = std::fs::read_to_string("/proc/self/io").context("reading /proc/self/io")?;
        let field = |name: &str| -> Result<u64> {
            io.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("no {name} in /proc/self/io"))
        };
        Ok(ProcIo {
            wchar: field("wchar:")?,
            write_bytes: field("write_bytes:")?,
        })
    }
}

/// CPU time of this process's threads that write recordings (named `recorder…`).
fn writer_threads_cpu(ticks: f64) -> Result<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")?;
    let mut total = Duration::ZERO;
    for task in tasks {
        let tid = task?.file_name().to_string_lossy().into_owned();
        let comm =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
        if comm.starts_with("recorder") {
            // A thread that ended meanwhile is simply not counted.
            total += cpu_time(&format!("self/task/{tid}"), ticks).unwrap_or_default();
        }
    }
    Ok(total)
}

fn threads() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Threads in /proc/self/status")
}
