//! Load benchmark of inbound calls to a queue whose agents take them on SIP desk phones.
//!
//! `cargo bench --bench inbound_load` starts the whole service in this process (on a SQLite
//! file in a temporary directory, the embedded default) with one trunk, `provider`, and two
//! sipp processes on loopback:
//!
//! - **the desk phones**: one sipp on 127.0.0.2 registers `INBOUND_BENCH_AGENTS` agents'
//!   phones (default 6 × the rate), each with its own SIP password, answering the registrar's
//!   digest challenge (`tests/sipp/desk_phones_register.xml`, user names and passwords from an
//!   injection file), then answers the gateway's INVITE to each phone and sends audio for as
//!   long as the call lasts, as a phone's microphone does (`desk_phone_talks_call.xml`, for
//!   calls it did not start). Each answered call is kept as that agent's nailed-up audio leg,
//!   as when an agent chooses their desk phone as audio. Phones register and are called at
//!   [`PHONE_RATE`] a second, within what the gateway takes from addresses that are not trunks.
//! - **the callers**: one sipp on 127.0.0.1, the provider's address, calls the queue's number
//!   at `INBOUND_BENCH_RATE` calls per second (default 100) for `INBOUND_BENCH_SECS` seconds
//!   (default 30), each from a number of its own, sends G.711 audio once answered, and hangs
//!   up after `INBOUND_BENCH_TALK_MS` milliseconds (default 3,000)
//!   (`tests/sipp/inbound_load_caller.xml`).
//!
//! The agents work a progressive campaign with nobody left to call (`INBOUND_BENCH_MODE=
//! preview` for a preview one), so they sit Ready in it and its queue borrows them: the switchboard answers each call (no welcome message), and
//! connects it to a free agent's phone leg. The benchmark stands in for the agents' desks:
//! it tells the floor an agent is Ready with their leg, as the desk does when a phone
//! answers, and Ready again as soon as a call of theirs ends (no wrap-up); the desk pages,
//! their websockets and dispositions are not part of the run.
//!
//! Reports: calls offered (sipp's INVITEs), answered by the service (a 200 OK reached the
//! caller), connected to an agent (`CallState` `Connected` on the event bus) and the
//! service's own count of each; INVITE → 200 OK set-up time as the caller saw it (sipp's
//! message trace, microsecond stamps); answer → agent connected (`Queued` → `Connected`
//! stamps on the bus); this process's CPU per inbound call (user + system from
//! `/proc/self/stat`, so the whole service — gateway, switchboard, floor, store — but not
//! sipp, which runs in processes of its own and is shown apart); RSS before and at its peak.
//!
//! Exits non-zero only when the run itself fails (sipp missing, phones not registering, a
//! run that does not end); a missed target is printed as `MISSED`.

#[path = "../sip-gateway/benches/common/figures.rs"]
mod figures;
// Only some of its helpers are used here.
#[allow(dead_code)]
#[path = "common/host.rs"]
mod host;
#[path = "common/inbound_floor.rs"]
mod inbound_floor;
#[path = "../sip-gateway/benches/common/proc_stat.rs"]
mod proc_stat;
#[path = "common/sipp.rs"]
mod sipp;
use figures::{env_number, ms, percentile};
use host::{load_average, rss_bytes};
use inbound_floor::{agent_name, desks, sip_password, Centre, FloorCounts};
use proc_stat::{clock_ticks, cpu_time};
use sipp::{SetupTimes, Sipp, Totals};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::store::campaign_settings::DialMode;
use crm::store::queues::QueueReport;
use dialcrm::{App, Settings};
use dialer_core::AgentState;
use sip_gateway::gateway::{CallEventKind, GatewayConfig, TrunkConfig};
use tokio::sync::{mpsc, watch};

/// The set-up time the issue asks for, as the 99th percentile.
const SETUP_P99_TARGET: Duration = Duration::from_millis(20);
/// The queue's number, as the provider sends it.
const DID: &str = "+441632960001";
/// How long each desk phone may ring before its call counts as unanswered.
const PHONE_RING: Duration = Duration::from_secs(10);
/// Phones registered, and phones called, per second. Over UDP the gateway takes at most 50
/// datagrams a second from addresses that are not trunks (`STRANGERS_PER_SECOND` in
/// `sip-gateway/src/gateway/transport.rs`), registered phones included; each phone sends two
/// REGISTERs, and answers its call with 180 and 200.
const PHONE_RATE: u32 = 20;
/// The longest the service may take to close the calls the callers hung up, after the
/// last, and the longest it may go without closing one meanwhile.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
const DRAIN_QUIET: Duration = Duration::from_secs(5);
/// How long the floor idles, agents Ready, before the calls, to measure the service's CPU
/// without them.
const IDLE: Duration = Duration::from_secs(3);
/// The media files the callers and the phones send, looped: a second of 440 Hz and of
/// 1000 Hz, mu-law.
const CALLER_AUDIO: &str = "caller.ulaw";
const PHONE_AUDIO: &str = "phone.ulaw";
/// The first ports of the callers' and the phones' RTP (sipp takes two more per call from
/// there): below the ephemeral range the gateway's own RTP ports come from.
const CALLERS_MEDIA_PORT: u16 = 16000;
const PHONES_MEDIA_PORT: u16 = 24000;

fn main() -> Result<()> {
    // The service's log, for a run that goes wrong: RUST_LOG=info (or debug) shows it.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let params = Params::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run(params))
}

/// Sizes of the run, from `INBOUND_BENCH_*` variables.
struct Params {
    /// Calls per second.
    rate: u32,
    /// Seconds of calling.
    secs: u64,
    /// Agents, each with a registered desk phone.
    agents: usize,
    /// How long each caller talks after the answer.
    talk: Duration,
    /// How the agents' campaign dials: with nobody to call, a progressive campaign keeps
    /// looking for leads for its Ready agents, a preview one looks only when asked.
    mode: DialMode,
}

impl Params {
    fn from_env() -> Result<Params> {
        let rate: u32 = env_number("INBOUND_BENCH_RATE", 100)?;
        let rate = rate.max(1);
        Ok(Params {
            rate,
            secs: env_number("INBOUND_BENCH_SECS", 30)?,
            agents: env_number("INBOUND_BENCH_AGENTS", rate as usize * 6)?,
            talk: Duration::from_millis(env_number("INBOUND_BENCH_TALK_MS", 3000)?),
            mode: match std::env::var("INBOUND_BENCH_MODE").as_deref() {
                Err(_) | Ok("progressive") => DialMode::Progressive,
                Ok("preview") => DialMode::Preview,
                Ok(other) => bail!("INBOUND_BENCH_MODE={other:?}: progressive or preview"),
            },
        })
    }

    fn calls(&self) -> u64 {
        u64::from(self.rate) * self.secs
    }
}

async fn run(p: Params) -> Result<()> {
    if !sipp::installed().await {
        bail!("sipp is not installed: apt-get install sip-tester");
    }
    let dir = std::env::temp_dir().join(format!("inbound-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = measure(&p, &dir).await;
    // Kept for a look at sipp's traces when the run fails, or when asked.
    let keep = env_number::<u8>("INBOUND_BENCH_KEEP", 0)? != 0;
    if result.is_err() || keep {
        eprintln!("sipp's files are kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    report.print(&p);
    // Some calls missed is a figure; none answered is a broken run (a closed
    // queue, a service that never took the calls), and fails.
    if report.setup.answered == 0 {
        bail!("the service answered none of the {} calls", p.calls());
    }
    Ok(())
}

/// What one run measured.
struct Report {
    caller_command: String,
    phones_command: String,
    registered: usize,
    legs: usize,
    legs_lost: usize,
    sipp: Totals,
    setup: SetupTimes,
    floor: FloorCounts,
    service: Option<QueueReport>,
    /// From the callers' start to the end of their last call.
    span: Duration,
    /// From the end of the last call to the service closing it.
    drain: Duration,
    /// `span` and the drain after it, over which `cpu` is measured.
    window: Duration,
    cpu: Duration,
    /// The service's CPU before the calls, agents Ready, as a fraction of a core.
    idle: f64,
    caller_cpu: Duration,
    phones_cpu: Duration,
    rss_before: u64,
    rss_peak: u64,
}

async fn measure(p: &Params, dir: &Path) -> Result<Report> {
    let caller_port = free_udp_port(Ipv4Addr::LOCALHOST)?;
    let phones_ip = Ipv4Addr::new(127, 0, 0, 2);
    let phones_port = free_udp_port(phones_ip)?;
    write_files(p, dir)?;

    let mut trunk = TrunkConfig::new(
        "provider",
        SocketAddr::from((Ipv4Addr::LOCALHOST, caller_port)),
    );
    trunk.max_concurrent = usize::MAX;
    trunk.max_cps = u32::MAX;
    let settings = Settings {
        database_url: dialcrm::settings::Secret::new(format!(
            "sqlite://{}",
            dir.join("bench.db").display()
        )),
        http_addr: "127.0.0.1:0".parse().expect("a valid address literal"),
        demo: false,
        trunks: vec![trunk],
        recordings_dir: dir.join("recordings"),
        gateway: Some(GatewayConfig {
            sip_tcp: None,
            ..GatewayConfig::loopback()
        }),
        ..Settings::default()
    };
    let app = App::start(&settings)
        .await
        .context("starting the service")?;
    let gateway = app.telephony.gateway.clone();
    let centre = Centre::seat(&app, p.agents, p.mode, DID)
        .await
        .context("setting up the floor")?;

    // The desk phones register, then wait for the gateway's calls.
    let phones_args = args(&[
        &gateway.sip_udp_addr().to_string(),
        "-sf",
        &sipp::scenario("desk_phones_register.xml")
            .display()
            .to_string(),
        "-oocsf",
        &sipp::scenario("desk_phone_talks_call.xml")
            .display()
            .to_string(),
        "-inf",
        "phones.csv",
        "-i",
        &phones_ip.to_string(),
        "-p",
        &phones_port.to_string(),
        "-mp",
        &PHONES_MEDIA_PORT.to_string(),
        "-r",
        &PHONE_RATE.to_string(),
        "-m",
        &p.agents.to_string(),
        "-l",
        &(p.agents * 2 + 10).to_string(),
        "-d",
        &(phones_stay(p).as_millis()).to_string(),
        "-timeout",
        &format!("{}s", phones_stay(p).as_secs() + 60),
        "-nostdin",
        "-trace_msg",
        "-message_file",
        "phones_messages.log",
        "-trace_err",
        "-error_file",
        "phones_errors.log",
    ]);
    let phones = Sipp::spawn(&phones_args, dir)?;
    let registered = centre.wait_registered(&app).await?;
    if registered < p.agents {
        bail!(
            "{registered} of {} desk phones registered (see phones_errors.log)",
            p.agents
        );
    }
    let (leg_tx, mut leg_events) = mpsc::unbounded_channel();
    let legs = centre
        .call_phones(&app, PHONE_RATE, PHONE_RING, leg_tx, &mut leg_events)
        .await?;

    // Desks: Ready with the phone leg now, and again whenever a call of theirs ends.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ended_tx, mut ended) = watch::channel(0usize);
    let desks = tokio::spawn(desks(
        app.bus.subscribe(),
        app.floor.clone(),
        centre.account,
        centre.campaign,
        legs.clone(),
        stop_rx,
        ended_tx,
    ));
    for (user, leg) in legs.iter() {
        app.floor
            .agent(
                centre.account,
                centre.campaign,
                *user,
                AgentState::Ready,
                Some(*leg),
            )
            .await
            .context("an agent going Ready")?;
    }
    // The switchboard hears of each agent and reads their queues; then the floor idles a
    // while, which gives the service's CPU without calls.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = clock_ticks();
    let idle_from = (Instant::now(), cpu_time("self", ticks)?);
    tokio::time::sleep(IDLE).await;
    let idle = (cpu_time("self", ticks)? - idle_from.1).as_secs_f64()
        / idle_from.0.elapsed().as_secs_f64();

    let caller_args = args(&[
        &gateway.sip_udp_addr().to_string(),
        "-sf",
        &sipp::scenario("inbound_load_caller.xml")
            .display()
            .to_string(),
        "-inf",
        "callers.csv",
        "-s",
        DID,
        "-i",
        "127.0.0.1",
        "-p",
        &caller_port.to_string(),
        "-mp",
        &CALLERS_MEDIA_PORT.to_string(),
        "-r",
        &p.rate.to_string(),
        "-m",
        &p.calls().to_string(),
        "-l",
        &(u64::from(p.rate) * (p.talk.as_secs() + 10)).to_string(),
        "-d",
        &p.talk.as_millis().to_string(),
        "-timeout",
        &format!("{}s", run_limit(p).as_secs()),
        "-nostdin",
        "-trace_msg",
        "-message_file",
        "callers_messages.log",
        "-trace_stat",
        "-stf",
        "callers_stat.csv",
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        "callers_errors.log",
    ]);
    let rss_before = rss_bytes("self")?;
    let mut rss_peak = rss_before;
    let cpu_before = cpu_time("self", ticks)?;
    let begin = Instant::now();
    let mut callers = Sipp::spawn(&caller_args, dir)?;
    let mut lost = 0usize;
    let deadline = begin + run_limit(p) + Duration::from_secs(10);
    let mut sample = tokio::time::interval(Duration::from_millis(500));
    let children_before = children_cpu_time(ticks)?;
    let phones_before = cpu_time(&phones.pid, ticks).unwrap_or_default();
    loop {
        tokio::select! {
            status = callers.wait(Duration::from_millis(500)) => {
                if status.is_ok() {
                    break;
                }
            }
            _ = sample.tick() => {
                rss_peak = rss_peak.max(rss_bytes("self")?);
            }
            Some(event) = leg_events.recv() => {
                if matches!(event.kind, CallEventKind::Ended { .. }) {
                    lost += 1;
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the callers' sipp did not finish within {:?}", run_limit(p));
        }
    }
    let span = begin.elapsed();
    // The callers' sipp has been waited for: its CPU is now this process's children's.
    let caller_cpu = children_cpu_time(ticks)? - children_before;
    // The service closes the calls the callers ended; it may be behind.
    let sipp_totals = sipp::totals(&dir.join("callers_stat.csv"))?;
    let offered = usize::try_from(sipp_totals.created).unwrap_or(usize::MAX);
    loop {
        if *ended.borrow() >= offered || begin.elapsed() > span + DRAIN_LIMIT {
            break;
        }
        match tokio::time::timeout(DRAIN_QUIET, ended.changed()).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let drain = begin.elapsed() - span;
    let cpu = cpu_time("self", ticks)? - cpu_before;
    let window = begin.elapsed();
    let phones_cpu = cpu_time(&phones.pid, ticks)
        .map(|c| c.saturating_sub(phones_before))
        .unwrap_or_default();
    let _ = stop_tx.send(true);
    let counts = desks.await.context("the desks' task")??;

    // The end of the agents' shift; the phones' answers to the BYEs are not waited for.
    for leg in legs.values() {
        let _ = gateway.hangup(*leg).await;
    }
    let phones_command = phones.command_line.clone();
    phones.stop().await;
    let service = app
        .store
        .queue_report(
            centre.account,
            crm::store::reports::Period {
                from: Utc::now() - chrono::TimeDelta::hours(1),
                to: Utc::now() + chrono::TimeDelta::minutes(1),
            },
        )
        .await
        .context("reading the queue's report")?
        .into_iter()
        .next();
    app.stop().await.context("stopping the service")?;

    let setup = sipp::setup_times(&dir.join("callers_messages.log"))?;
    Ok(Report {
        caller_command: callers.command_line.clone(),
        phones_command,
        registered,
        legs: legs.len(),
        legs_lost: lost,
        sipp: sipp_totals,
        setup,
        floor: counts,
        service,
        span,
        drain,
        window,
        cpu,
        idle,
        caller_cpu,
        phones_cpu,
        rss_before,
        rss_peak,
    })
}

/// The longest the callers' sipp may take: the calls, the last one's talk, and slack.
fn run_limit(p: &Params) -> Duration {
    Duration::from_secs(p.secs + 30) + p.talk
}

/// How long each phone's registration call stays: longer than the setting up and the run,
/// since sipp ends when they do; the benchmark stops it before.
fn phones_stay(p: &Params) -> Duration {
    run_limit(p) + Duration::from_secs(60)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Writes the injection files and the callers' audio into sipp's working directory.
fn write_files(p: &Params, dir: &Path) -> Result<()> {
    let mut phones = String::from("SEQUENTIAL\n");
    for i in 0..p.agents {
        phones.push_str(&format!(
            "{name};[authentication username={name} password={password}]\n",
            name = agent_name(i),
            password = sip_password(i)
        ));
    }
    std::fs::write(dir.join("phones.csv"), phones).context("writing phones.csv")?;
    let mut callers = String::from("SEQUENTIAL\n");
    for i in 0..p.calls().max(1) {
        callers.push_str(&format!("+4474{:08}\n", i + 1));
    }
    std::fs::write(dir.join("callers.csv"), callers).context("writing callers.csv")?;
    for (file, frequency) in [(CALLER_AUDIO, 440.0), (PHONE_AUDIO, 1000.0)] {
        let tone = sip_gateway::media::tone::sine(frequency, 8000, 8000, 8000);
        let mut ulaw = vec![0u8; tone.len()];
        sip_gateway::media::g711::G711::Pcmu.encode(&tone, &mut ulaw);
        std::fs::write(dir.join(file), ulaw).with_context(|| format!("writing {file}"))?;
    }
    Ok(())
}

/// Returns the CPU time of this process's children that have ended and been waited for
/// (`cutime` and `cstime` in `/proc/self/stat`).
fn children_cpu_time(ticks_per_second: f64) -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17; `rest` starts at field 3.
    let ticks: u64 = fields
        .get(13..15)
        .context("short stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second))
}

/// A UDP port free on `ip` now, even, with the next three free too (sipp's media takes two).
fn free_udp_port(ip: Ipv4Addr) -> Result<u16> {
    for _ in 0..100 {
        let probe = std::net::UdpSocket::bind((ip, 0)).context("binding a probe socket")?;
        let port = probe.local_addr()?.port() & !1;
        drop(probe);
        if port > 1024
            && (0..4).all(|i| std::net::UdpSocket::bind((IpAddr::V4(ip), port + i)).is_ok())
        {
            return Ok(port);
        }
    }
    bail!("no free UDP port on {ip}")
}

impl Report {
    fn print(&self, p: &Params) {
        let cpus = host::cores();
        println!();
        println!("caller sipp: {}", self.caller_command);
        println!("phones sipp: {}", self.phones_command);
        println!();
        println!(
            "inbound_load  {}  {} CPUs  load {}  {} cps for {} s, {} agents, {} ms talk, {} campaign",
            Utc::now().format("%Y-%m-%d %H:%M UTC"),
            cpus,
            load_average(),
            p.rate,
            p.secs,
            p.agents,
            p.talk.as_millis(),
            p.mode.as_str(),
        );
        println!("{:-<100}", "");
        println!("{:<48}{:>30}   {:<14}", "figure", "measured", "target");
        println!("{:-<100}", "");
        let offered = self.setup.invited;
        row(
            "desk phones registered (digest) / legs answered",
            format!("{} / {}", self.registered, self.legs),
            "",
            None,
        );
        row(
            "calls offered (INVITEs sent / sipp's calls)",
            format!("{offered} / {} of {}", self.sipp.created, p.calls()),
            "",
            None,
        );
        let all_answered = self.setup.answered == offered && offered as u64 == p.calls();
        row(
            "calls answered by the service (200 OK)",
            format!("{} of {offered}", self.setup.answered),
            "every call",
            Some(all_answered),
        );
        let all_connected = self.floor.connected == offered && offered as u64 == p.calls();
        row(
            "calls connected to an agent",
            format!("{} of {offered}", self.floor.connected),
            "every call",
            Some(all_connected),
        );
        let mut refused: Vec<_> = self.setup.refused.iter().collect();
        refused.sort();
        for (status, n) in refused {
            row(
                &format!("calls refused with {status}"),
                n.to_string(),
                "",
                None,
            );
        }
        if let Some(s) = &self.service {
            row(
                "service's log: offered / answered / abandoned",
                format!("{} / {} / {}", s.offered, s.answered, s.abandoned),
                "",
                None,
            );
        }
        row(
            "bus: queued / connected / ended",
            format!(
                "{} / {} / {}",
                self.floor.queued, self.floor.connected, self.floor.ended
            ),
            "",
            None,
        );
        row(
            "sipp's calls: successful / failed",
            format!("{} / {}", self.sipp.successful, self.sipp.failed),
            "",
            None,
        );
        let t = &self.setup.times;
        let (p50, p99) = (percentile(t, 0.50), percentile(t, 0.99));
        row(
            "set-up INVITE -> 200 OK p50 / p99 / max",
            format!(
                "{} / {} / {} ms",
                ms(p50),
                ms(p99),
                ms(t.last().copied().unwrap_or_default())
            ),
            "p99 < 20 ms",
            Some(!t.is_empty() && p99 < SETUP_P99_TARGET),
        );
        let w = &self.floor.waits;
        row(
            "answer -> agent connected p50 / p99 / max",
            format!(
                "{} / {} / {} ms",
                ms(percentile(w, 0.50)),
                ms(percentile(w, 0.99)),
                ms(w.last().copied().unwrap_or_default())
            ),
            "",
            None,
        );
        if self.legs_lost > 0 {
            row(
                "agent phone legs lost during the run",
                self.legs_lost.to_string(),
                "",
                None,
            );
        }
        let seconds = self.window.as_secs_f64();
        row(
            "service CPU per inbound call",
            format!(
                "{:.2} ms",
                self.cpu.as_secs_f64() * 1e3 / offered.max(1) as f64
            ),
            "",
            None,
        );
        row(
            "service CPU busy: idle before / over the calls",
            format!(
                "{:.1} % / {:.1} % of a core",
                self.idle * 100.0,
                self.cpu.as_secs_f64() / seconds * 100.0,
            ),
            "",
            None,
        );
        row(
            "first INVITE to last hang-up / + last closed",
            format!(
                "{:.1} s / +{:.1} s",
                self.span.as_secs_f64(),
                self.drain.as_secs_f64()
            ),
            "",
            None,
        );
        row(
            "sipp CPU busy: callers / phones",
            format!(
                "{:.1} % / {:.1} %",
                self.caller_cpu.as_secs_f64() / self.span.as_secs_f64() * 100.0,
                self.phones_cpu.as_secs_f64() / seconds * 100.0
            ),
            "",
            None,
        );
        row(
            "service RSS before calls / peak",
            format!(
                "{} / {} MiB",
                self.rss_before / (1 << 20),
                self.rss_peak / (1 << 20)
            ),
            "",
            None,
        );
        println!("{:-<100}", "");
    }
}

fn row(figure: &str, measured: String, target: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    println!("{figure:<48}{measured:>30}   {target:<14}{verdict}");
}
