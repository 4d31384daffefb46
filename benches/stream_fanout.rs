//! Load benchmark of the supervisors' stream: many websockets, one busy account.
//!
//! `cargo bench --bench stream_fanout` starts the whole service in process on a SQLite file in
//! a temporary directory, creates an account and a supervisor, logs in once over HTTP, then
//! opens `STREAM_BENCH_CLIENTS` websockets (default 5,000) to `/api/stream` with that session.
//! It publishes `STREAM_BENCH_RATE` alerts per second (default 50) on the event bus for
//! `STREAM_BENCH_SECS` seconds (default 20); each alert carries its publish time, and each
//! client measures delivery latency as receive time − publish time (both the system clock of
//! this machine). Reports latency p50/p95/p99/max, frames delivered against expected, clients
//! resynchronised with a snapshot because they fell behind, server RSS before and after the
//! clients connect, CPU seconds of the server, of the clients and of the whole machine over the
//! publishing window (so load from other programs shows).
//!
//! The clients run in a child process (this binary again, with `STREAM_BENCH_ROLE=clients`):
//! reading 250,000 frames a second costs about as much as sending them, and in one process that
//! work would be counted in the server's CPU and RSS and would queue on the server's runtime
//! threads. Both processes still share the machine's cores, so the latency includes the
//! clients' own scheduling delay; it is an upper bound on what the server adds.
//!
//! Each process holds one socket per client, so the open-files limit must exceed
//! `STREAM_BENCH_CLIENTS` (the run checks and stops early otherwise; `ulimit -n 20000`).
//! The run exits non-zero only when the run itself fails; a missed target is reported.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::events::Event;
use crm::model::Role;
use dialcrm::{App, Settings};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The target for the 99th percentile of delivery latency.
const P99_TARGET: Duration = Duration::from_millis(100);
/// Websocket handshakes in flight at once; more overflows the listen backlog.
const CONNECTS_IN_FLIGHT: usize = 128;
/// Time after the last publish for frames still in flight to arrive.
const DRAIN: Duration = Duration::from_secs(3);
/// The marker in each alert's message that precedes its publish time.
const STAMP: &str = "\"message\":\"sent_ns=";

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    if std::env::var("STREAM_BENCH_ROLE").as_deref() == Ok("clients") {
        return runtime.block_on(clients_process());
    }
    runtime.block_on(server_process())
}

/// What the run is asked to do.
struct Params {
    clients: usize,
    rate: u32,
    secs: u64,
}

impl Params {
    fn from_env() -> Result<Params> {
        Ok(Params {
            clients: env_or("STREAM_BENCH_CLIENTS", 5_000)?,
            rate: env_or("STREAM_BENCH_RATE", 50)?,
            secs: env_or("STREAM_BENCH_SECS", 20)?,
        })
    }
}

async fn server_process() -> Result<()> {
    let p = Params::from_env()?;
    check_open_files(p.clients)?;
    let dir = std::env::temp_dir().join(format!("stream-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run_server(&p, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_server(p: &Params, dir: &std::path::Path) -> Result<()> {
    let settings = Settings {
        database_url: dialcrm::settings::Secret::new(format!(
            "sqlite://{}",
            dir.join("bench.db").display()
        )),
        http_addr: "127.0.0.1:0".parse().expect("a valid address literal"),
        demo: false,
        gateway: Some(sip_gateway::gateway::GatewayConfig::loopback()),
        ..Settings::default()
    };
    let app = App::start(&settings)
        .await
        .context("starting the service")?;
    let now = Utc::now();
    let account = app
        .store
        .create_account("Bench", 5, now)
        .await
        .context("creating the account")?;
    let password = "Bench-supervisor-1234";
    let hash = crm::password::hash(password).context("hashing the password")?;
    app.store
        .create_user(account.id, "bench-sup", &hash, Role::Supervisor, now)
        .await
        .context("creating the supervisor")?;
    let cookie = login(&app, "bench-sup", password).await?;

    let rss_before = rss_bytes()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(
        std::env::current_exe().context("finding this benchmark's executable")?,
    )
    .env("STREAM_BENCH_ROLE", "clients")
    .env("STREAM_BENCH_ADDR", app.http_addr.to_string())
    .env("STREAM_BENCH_COOKIE", &cookie)
    .env("STREAM_BENCH_CLIENTS", p.clients.to_string())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .context("starting the client process")?;
    let mut to_child = child.stdin.take().context("the child's stdin")?;
    let mut from_child = BufReader::new(child.stdout.take().context("the child's stdout")?).lines();

    let line = from_child
        .next_line()
        .await?
        .context("the client process ended before connecting")?;
    if line != "connected" {
        bail!("the client process said {line:?} instead of connecting");
    }
    let connect_time = started.elapsed();
    // Lets the last handshakes' buffers settle before memory is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = rss_bytes()?;

    let child_stat = format!("/proc/{}/stat", child.id().context("the child's pid")?);
    let cpu_start = cpu_seconds("/proc/self/stat")?;
    let child_cpu_start = cpu_seconds(&child_stat)?;
    let machine_start = machine_busy_seconds()?;
    let wall_start = Instant::now();
    let published = publish(&app, account.id, p.rate, p.secs).await;
    let publish_wall = wall_start.elapsed();
    tokio::time::sleep(DRAIN).await;
    let cpu_used = cpu_seconds("/proc/self/stat")? - cpu_start;
    let child_cpu_used = cpu_seconds(&child_stat)? - child_cpu_start;
    let machine_used = machine_busy_seconds()? - machine_start;
    let wall_used = wall_start.elapsed();
    let rss_after = rss_bytes()?;

    to_child.write_all(b"stop\n").await?;
    to_child.flush().await?;
    let mut report = BTreeMap::new();
    while let Some(line) = from_child.next_line().await? {
        if let Some((k, v)) = line.split_once(' ') {
            report.insert(k.to_owned(), v.to_owned());
        }
    }
    let status = child
        .wait()
        .await
        .context("waiting for the client process")?;
    if !status.success() {
        bail!("the client process failed: {status}");
    }
    app.stop().await.context("stopping the service")?;

    let get = |k: &str| -> Result<f64> {
        report
            .get(k)
            .with_context(|| format!("the client process did not report {k}"))?
            .parse::<f64>()
            .with_context(|| format!("the client process's {k}"))
    };
    let clients = get("clients")?;
    let delivered = get("delivered")?;
    let expected = clients * published as f64;
    let p99_ms = get("p99_us")? / 1000.0;
    let per_conn = rss_connected.saturating_sub(rss_before) as f64 / clients.max(1.0);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);

    println!("supervisor stream fan-out");
    println!(
        "  clients              {clients} connected of {} in {:.1} s",
        p.clients,
        connect_time.as_secs_f64()
    );
    println!(
        "  events               {published} published at {} /s over {:.1} s",
        p.rate,
        publish_wall.as_secs_f64()
    );
    println!(
        "  frames delivered     {delivered} of {expected} ({:.4} %)",
        100.0 * delivered / expected.max(1.0)
    );
    println!(
        "  resynchronised       {} clients ({} snapshots sent to slow clients)",
        get("resynced_clients")?,
        get("resync_snapshots")?
    );
    println!(
        "  latency ms           p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
        get("p50_us")? / 1000.0,
        get("p95_us")? / 1000.0,
        p99_ms,
        get("max_us")? / 1000.0
    );
    println!(
        "  server RSS MiB       {:.1} before, {:.1} connected, {:.1} after the run",
        mib(rss_before),
        mib(rss_connected),
        mib(rss_after)
    );
    println!(
        "  memory per client    {:.1} KiB (RSS delta / clients)",
        per_conn / 1024.0
    );
    println!(
        "  server CPU           {cpu_used:.2} s over {:.1} s ({:.0} % of one core)",
        wall_used.as_secs_f64(),
        100.0 * cpu_used / wall_used.as_secs_f64()
    );
    let share = |cpu: f64| 100.0 * cpu / wall_used.as_secs_f64();
    println!(
        "  client CPU           {child_cpu_used:.2} s over the same window ({:.0} % of one core)",
        share(child_cpu_used)
    );
    println!(
        "  machine CPU          {machine_used:.2} s busy on all cores ({:.0} % of one core); \
         others used {:.2} s",
        share(machine_used),
        (machine_used - cpu_used - child_cpu_used).max(0.0)
    );
    let met = p99_ms < P99_TARGET.as_secs_f64() * 1000.0 && delivered >= expected;
    println!(
        "  target               p99 < {} ms with every frame delivered: {}",
        P99_TARGET.as_millis(),
        if met { "met" } else { "MISSED" }
    );
    Ok(())
}

/// Publishes `rate` alerts a second for `secs` seconds; returns how many.
async fn publish(app: &App, account: crm::model::AccountId, rate: u32, secs: u64) -> u64 {
    let total = u64::from(rate) * secs;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    for _ in 0..total {
        tick.tick().await;
        app.bus.publish(Event::Alert {
            account,
            alert: "bench".into(),
            message: format!("sent_ns={}", unix_nanos()),
            at: Utc::now(),
        });
    }
    total
}

/// Logs in over HTTP and returns the session cookie as `name=value`.
async fn login(app: &App, username: &str, password: &str) -> Result<String> {
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/login", app.http_addr))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .context("posting the login")?;
    if r.status() != 200 {
        bail!("the login answered {}", r.status());
    }
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("the login set no session cookie")
}

/// What one client saw.
#[derive(Default)]
struct ClientStats {
    delivered: u64,
    resyncs: u64,
    latencies_us: Vec<u32>,
}

async fn clients_process() -> Result<()> {
    let addr = std::env::var("STREAM_BENCH_ADDR").context("STREAM_BENCH_ADDR")?;
    let cookie = std::env::var("STREAM_BENCH_COOKIE").context("STREAM_BENCH_COOKIE")?;
    let n: usize = env_or("STREAM_BENCH_CLIENTS", 5_000)?;
    let url = format!("ws://{addr}/api/stream");
    let gate = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n.max(1));
    let mut tasks = Vec::with_capacity(n);
    let mut all_stats = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req = url.as_str().into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        let gate = gate.clone();
        let ready = ready_tx.clone();
        let stats = Arc::new(Mutex::new(ClientStats {
            latencies_us: Vec::with_capacity(1024),
            ..ClientStats::default()
        }));
        all_stats.push(stats.clone());
        tasks.push(tokio::spawn(client(req, gate, ready, stats)));
    }
    drop(ready_tx);
    for _ in 0..n {
        if ready_rx.recv().await.is_none() {
            bail!("a client failed to connect");
        }
    }
    println!("connected");

    // The workspace's tokio has no `io-std`; a blocking thread reads the parent's word.
    tokio::task::spawn_blocking(|| {
        std::io::stdin()
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "stop")
    })
    .await
    .context("reading the parent's stop")?;
    // A client that failed ended on its own; the rest are still reading.
    for t in &tasks {
        if t.is_finished() {
            continue;
        }
        t.abort();
    }
    for t in tasks {
        match t.await {
            Ok(result) => result?,
            Err(e) if e.is_cancelled() => {}
            Err(e) => bail!("a client task panicked: {e}"),
        }
    }
    let mut all = Vec::new();
    let (mut delivered, mut resync_snapshots, mut resynced_clients) = (0, 0, 0);
    for stats in all_stats {
        let s = stats.lock().unwrap_or_else(|p| p.into_inner());
        delivered += s.delivered;
        resync_snapshots += s.resyncs;
        resynced_clients += u64::from(s.resyncs > 0);
        all.extend_from_slice(&s.latencies_us);
    }
    all.sort_unstable();
    let pct = |q: f64| -> u32 {
        if all.is_empty() {
            return 0;
        }
        all[((all.len() - 1) as f64 * q).round() as usize]
    };
    println!("clients {n}");
    println!("delivered {delivered}");
    println!("resync_snapshots {resync_snapshots}");
    println!("resynced_clients {resynced_clients}");
    println!("p50_us {}", pct(0.50));
    println!("p95_us {}", pct(0.95));
    println!("p99_us {}", pct(0.99));
    println!("max_us {}", all.last().copied().unwrap_or(0));
    Ok(())
}

/// Connects one websocket, reads its snapshot, then times every frame until aborted.
///
/// The loop does nothing per frame but read, stamp and record: the stats live behind an
/// uncontended mutex the parent reads after aborting the task, rather than in a
/// `select!` against a stop signal, which cost the generator a future and a random
/// branch order per frame.
async fn client(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
    gate: Arc<Semaphore>,
    ready: tokio::sync::mpsc::Sender<()>,
    stats: Arc<Mutex<ClientStats>>,
) -> Result<()> {
    // Small buffers: the frames are small, and tungstenite zeroes the whole read buffer
    // before every read (5,000 × 128 KiB would also crowd the machine).
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0);
    let mut ws = {
        let _permit = gate.acquire().await?;
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
            .await
            .context("opening a websocket")?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("{\"type\":\"snapshot\"") => {}
            other => bail!("the first frame was not a snapshot: {other:?}"),
        }
        ws
    };
    let _ = ready.send(()).await;
    drop(ready);
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let received = unix_nanos();
                let mut stats = stats.lock().unwrap_or_else(|p| p.into_inner());
                if t.starts_with("{\"type\":\"snapshot\"") {
                    stats.resyncs += 1;
                } else if let Some(sent) = stamp_of(&t) {
                    stats.delivered += 1;
                    let us = received.saturating_sub(sent) / 1_000;
                    stats
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("the stream failed: {e}"),
            None => bail!("the server closed the stream"),
        }
    }
}

/// Reads the publish time out of a bench alert's frame without parsing all of it.
fn stamp_of(frame: &str) -> Option<u64> {
    let start = frame.find(STAMP)? + STAMP.len();
    let digits = &frame[start..];
    let end = digits.find('"')?;
    digits[..end].parse().ok()
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

/// Stops early when this process cannot hold a socket per client.
fn check_open_files(clients: usize) -> Result<()> {
    let limits =
        std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < clients + 256 => bail!(
            "the open-files limit is {soft}; {clients} clients need more: run `ulimit -n {}` first",
            (clients + 256).max(20_000)
        ),
        _ => Ok(()),
    }
}

/// Returns this process's resident memory.
fn rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .context("no VmRSS in /proc/self/status")
}

/// Returns the user and system CPU time a process has used, from its `/proc/PID/stat`.
fn cpu_seconds(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces; the fields after it are plain numbers.
    let rest = &stat[stat.rfind(')').context("a malformed /proc/self/stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .context("a short /proc/self/stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // USER_HZ is 100 on every Linux architecture the project builds for.
    Ok(ticks as f64 / 100.0)
}

/// Returns the CPU time all cores have spent running programs and the kernel.
fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .collect();
    // The fields are user nice system idle iowait irq softirq steal …; guest time is
    // already counted in user, and steal is time the hypervisor kept from this machine.
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum();
    Ok(busy as f64 / 100.0)
}
