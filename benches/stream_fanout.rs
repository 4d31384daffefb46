//! Load benchmark of the supervisors' stream: many websockets, one busy account.
//!
//! `cargo bench --bench stream_fanout` starts the whole service in process on a SQLite file in
//! a temporary directory, creates an account and a supervisor, logs in once over HTTP, then
//! opens `STREAM_BENCH_CLIENTS` websockets (default 5,000) to `/api/stream` with that session.
//! It publishes `STREAM_BENCH_RATE` alerts per second (default 50) on the event bus for
//! `STREAM_BENCH_SECS` seconds (default 20); each alert carries its publish time, and each
//! client measures delivery latency as receive time − publish time (both the system clock of
//! this machine). `STREAM_BENCH_MAX_REST_MS` sets the writers' longest rest after a fan-out
//! (the service's `stream_max_rest_ms`, 20 by default; 0 never rests), and
//! `STREAM_BENCH_CLIENTS_PER_WRITER` the clients a writer takes before the account gets another
//! (up to one per core). Reports latency p50/p95/p99/max, frames delivered against expected, clients
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

#[path = "common/host.rs"]
mod host;
#[path = "../sip-gateway/benches/common/proc_stat.rs"]
mod proc_stat;
#[path = "common/stream_client.rs"]
mod stream_client;
use host::{check_open_files, machine_busy_seconds, rss_bytes};
use proc_stat::{clock_ticks, cpu_time};
use stream_client::{login, publish_alerts, Fleet};

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::model::Role;
use dialcrm::{App, Settings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The target for the 99th percentile of delivery latency.
const P99_TARGET: Duration = Duration::from_millis(100);
/// Time after the last publish for frames still in flight to arrive.
const DRAIN: Duration = Duration::from_secs(3);

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
    /// The stream writers' longest rest (`stream_max_rest_ms`).
    max_rest: Duration,
    /// Clients a stream writer takes before the account gets another.
    clients_per_writer: usize,
}

impl Params {
    fn from_env() -> Result<Params> {
        Ok(Params {
            clients: env_or("STREAM_BENCH_CLIENTS", 5_000)?,
            rate: env_or("STREAM_BENCH_RATE", 50)?,
            secs: env_or("STREAM_BENCH_SECS", 20)?,
            max_rest: Duration::from_millis(env_or(
                "STREAM_BENCH_MAX_REST_MS",
                Settings::default().stream.max_rest.as_millis() as u64,
            )?),
            clients_per_writer: env_or(
                "STREAM_BENCH_CLIENTS_PER_WRITER",
                Settings::default().stream.clients_per_writer,
            )?,
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
        stream: dashboard::stream::hub::HubConfig {
            max_rest: p.max_rest,
            clients_per_writer: p.clients_per_writer,
            ..Settings::default().stream
        },
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
    let cookie = login(&app.base_url(), "bench-sup", password).await?;

    let ticks = clock_ticks();
    let rss_before = rss_bytes("self")?;
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
    let rss_connected = rss_bytes("self")?;

    let child_pid = child.id().context("the child's pid")?.to_string();
    let cpu_seconds = |pid: &str| cpu_time(pid, ticks).map(|d| d.as_secs_f64());
    let cpu_start = cpu_seconds("self")?;
    let child_cpu_start = cpu_seconds(&child_pid)?;
    let machine_start = machine_busy_seconds(ticks)?;
    let wall_start = Instant::now();
    let published = publish_alerts(&app.bus, account.id, p.rate, p.secs).await;
    let publish_wall = wall_start.elapsed();
    tokio::time::sleep(DRAIN).await;
    let cpu_used = cpu_seconds("self")? - cpu_start;
    let child_cpu_used = cpu_seconds(&child_pid)? - child_cpu_start;
    let machine_used = machine_busy_seconds(ticks)? - machine_start;
    let wall_used = wall_start.elapsed();
    let rss_after = rss_bytes("self")?;

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
        "  writers              rest up to {} ms; another every {} clients",
        p.max_rest.as_millis(),
        p.clients_per_writer
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

async fn clients_process() -> Result<()> {
    let addr = std::env::var("STREAM_BENCH_ADDR").context("STREAM_BENCH_ADDR")?;
    let cookie = std::env::var("STREAM_BENCH_COOKIE").context("STREAM_BENCH_COOKIE")?;
    let n: usize = env_or("STREAM_BENCH_CLIENTS", 5_000)?;
    let fleet = Fleet::connect(&[format!("ws://{addr}/api/stream")], &cookie, n).await?;
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
    let seen = fleet.finish().await?;
    let seen = seen.first().context("one group of clients")?;
    let micros = |d: Duration| d.as_micros();
    let latencies = &seen.frames.latencies;
    println!("clients {n}");
    println!("delivered {}", seen.frames.delivered);
    println!("resync_snapshots {}", seen.frames.resyncs);
    println!("resynced_clients {}", seen.resynced_clients);
    println!("p50_us {}", micros(latencies.quantile(0.50)));
    println!("p95_us {}", micros(latencies.quantile(0.95)));
    println!("p99_us {}", micros(latencies.quantile(0.99)));
    println!("max_us {}", micros(latencies.max()));
    Ok(())
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
