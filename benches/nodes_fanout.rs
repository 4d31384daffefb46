//! Load benchmark of the supervisors' stream across nodes: several `dialcrm` nodes on one
//! PostgreSQL and one NATS, every node's events delivered to every node's supervisors.
//!
//! `cargo bench --bench nodes_fanout` starts a `nats-server -js` of its own (free port, own
//! store folder) and creates a fresh PostgreSQL database (`crm::testing`), then starts
//! `NODES_BENCH_NODES` nodes (default 3), each in a child process of its own (this binary
//! again, `NODES_BENCH_ROLE=node`) running `dialcrm::App` with `nats_url`, `database_url`, a
//! node id of its own and `demo: false`, as `dialcrm serve --nats-url` does. A supervisor logs
//! in once; a client process (`NODES_BENCH_ROLE=clients`) opens `NODES_BENCH_CLIENTS`
//! websockets (default 1,000) to each node's `/api/stream` with that session.
//!
//! Then every node publishes its share of `NODES_BENCH_RATE` alerts a second (default 1,000
//! in all, split evenly) on its own event bus for `NODES_BENCH_SECS` seconds (default 20).
//! Each alert carries its publish time; each node relays its bus to the JetStream stream and
//! reads the whole stream back, so every socket should receive every node's alerts, in the
//! stream's one order. Each client measures delivery latency as receive time − publish time
//! (the system clock of this machine) and checks that stream numbers only rise.
//!
//! Reports latency p50/p95/p99/max over every socket and per receiving node, frames delivered
//! against expected, clients resynchronised with a snapshot because they fell behind, frames
//! out of order, and per node process its CPU seconds over the window, CPU per published event
//! and per delivered frame, and its RSS; then the NATS server's and the clients' CPU and the
//! whole machine's (so load from other programs shows). Before publishing, a short idle window
//! with every client connected gives each node's CPU at rest.
//!
//! The client process holds `NODES × CLIENTS` sockets and each node `CLIENTS`, so the
//! open-files limit must exceed that (the run checks and stops early otherwise; `ulimit -n
//! 20000`). Without `nats-server` or PostgreSQL the run skips with a loud message, except in
//! CI (`CI=true`), where it fails. It exits non-zero only when the run itself fails; how
//! many frames arrived, and how late, is reported.

#[path = "common/child.rs"]
mod child;
#[allow(dead_code)] // `percentile`: the clients' histograms give the quantiles here.
#[path = "../sip-gateway/benches/common/figures.rs"]
mod figures;
#[path = "common/host.rs"]
mod host;
#[path = "../sip-gateway/benches/common/proc_stat.rs"]
mod proc_stat;
#[path = "common/stream_client.rs"]
mod stream_client;
use child::{runtime, ChildProcess};
use figures::{env_number, ms};
use host::{check_open_files, child_named, cores, load_average, machine_busy_seconds, rss_bytes};
use proc_stat::{clock_ticks, cpu_time};
use stream_client::{login, publish_alerts, Fleet, GroupTally};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crm::model::{AccountId, Role};
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use dialcrm::settings::Secret;
use dialcrm::{App, Settings};
use serde_json::{json, Value};

/// The variable that picks a child process's role.
const ROLE: &str = "NODES_BENCH_ROLE";
/// How long the nodes' CPU at rest is measured, every client connected.
const IDLE: Duration = Duration::from_secs(2);
/// Time after the last publish for frames still in flight to arrive.
const DRAIN: Duration = Duration::from_secs(3);
/// How long the whole run may take beyond its publishing window.
const RUN_LIMIT: Duration = Duration::from_secs(900);
/// The supervisor's password.
const PASSWORD: &str = "Bench-supervisor-1234";

fn main() -> Result<()> {
    match std::env::var(ROLE).as_deref() {
        Ok("node") => multi_thread()?.block_on(node_process()),
        Ok("clients") => multi_thread()?.block_on(clients_process()),
        _ => runtime()?.block_on(bench()),
    }
}

/// What the run is asked to do.
struct Params {
    nodes: usize,
    clients: usize,
    rate: u32,
    secs: u64,
}

impl Params {
    fn from_env() -> Result<Params> {
        let p = Params {
            nodes: env_number("NODES_BENCH_NODES", 3)?,
            clients: env_number("NODES_BENCH_CLIENTS", 1_000)?,
            rate: env_number("NODES_BENCH_RATE", 1_000)?,
            secs: env_number("NODES_BENCH_SECS", 20)?,
        };
        if p.nodes == 0 {
            bail!("NODES_BENCH_NODES must be at least 1");
        }
        Ok(p)
    }

    /// The alerts a second node `i` publishes: an even share, the remainder to the first.
    fn node_rate(&self, i: usize) -> u32 {
        let nodes = self.nodes as u32;
        self.rate / nodes + u32::from((i as u32) < self.rate % nodes)
    }
}

/// One node process, as the parent sees it.
struct Node {
    id: String,
    addr: String,
    process: ChildProcess,
}

/// A process's CPU seconds and the wall time at one moment.
struct Reading {
    nodes: Vec<f64>,
    nats: Option<f64>,
    clients: f64,
    machine: f64,
    at: Instant,
}

async fn bench() -> Result<()> {
    let p = Params::from_env()?;
    check_open_files(p.nodes * p.clients)?;
    let Some(nats) = TestNats::start().await else {
        eprintln!("nodes_fanout: not run, no nats-server (see above)");
        return Ok(());
    };
    let Some(db) = TestDb::postgres().await else {
        eprintln!("nodes_fanout: not run, no PostgreSQL (see above)");
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("nodes-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let limit = RUN_LIMIT + Duration::from_secs(p.secs);
    let outcome = tokio::time::timeout(limit, run(&p, &nats, &db, &dir)).await;
    db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
    drop(nats);
    outcome.with_context(|| format!("the run took longer than {} s", limit.as_secs()))?
}

async fn run(p: &Params, nats: &TestNats, db: &TestDb, dir: &Path) -> Result<()> {
    let ticks = clock_ticks();
    let load_at_start = load_average();
    let now = chrono::Utc::now();
    let account = db
        .store
        .create_account("Bench", 5, now)
        .await
        .context("creating the account")?;
    let hash = crm::password::hash(PASSWORD).context("hashing the password")?;
    db.store
        .create_user(account.id, "bench-sup", &hash, Role::Supervisor, now)
        .await
        .context("creating the supervisor")?;

    let mut nodes = Vec::with_capacity(p.nodes);
    for i in 0..p.nodes {
        nodes.push(start_node(p, i, nats, db, dir, account.id).await?);
    }
    let cookie = login(&format!("http://{}", nodes[0].addr), "bench-sup", PASSWORD).await?;
    let rss_started: Vec<u64> = nodes.iter().map(rss).collect::<Result<_>>()?;

    let connecting = Instant::now();
    let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
    let clients_env = [
        ("NODES_BENCH_ADDRS", addrs.join(",")),
        ("NODES_BENCH_COOKIE", cookie),
        ("NODES_BENCH_CLIENTS", p.clients.to_string()),
    ];
    let env: Vec<(&str, &str)> = clients_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut clients = ChildProcess::spawn(ROLE, "clients", &env, None).await?;
    if clients.greeting != "connected" {
        bail!("the client process said {:?}", clients.greeting);
    }
    let connect_time = connecting.elapsed();
    // Lets the last handshakes' buffers settle before memory is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected: Vec<u64> = nodes.iter().map(rss).collect::<Result<_>>()?;

    let nats_pid = child_named("nats-server");
    let read = |nodes: &[Node], clients: &ChildProcess| -> Result<Reading> {
        let cpu = |pid: &str| cpu_time(pid, ticks).map(|d| d.as_secs_f64());
        Ok(Reading {
            nodes: nodes
                .iter()
                .map(|n| cpu(&n.process.pid))
                .collect::<Result<_>>()?,
            nats: nats_pid.as_deref().map(cpu).transpose()?,
            clients: cpu(&clients.pid)?,
            machine: machine_busy_seconds(ticks)?,
            at: Instant::now(),
        })
    };
    let idle_start = read(&nodes, &clients)?;
    tokio::time::sleep(IDLE).await;
    let start = read(&nodes, &clients)?;
    let load_at_publish = load_average();
    let asks = nodes.iter_mut().map(|n| n.process.ask("publish"));
    let replies = futures_util::future::try_join_all(asks).await?;
    let mut published = 0;
    let mut publish_wall = 0f64;
    for reply in &replies {
        let mut words = reply.split(' ');
        let (Some("published"), Some(n), Some(secs)) = (words.next(), words.next(), words.next())
        else {
            bail!("a node answered {reply:?} to publish");
        };
        published += n.parse::<u64>().context("the published count")?;
        publish_wall = publish_wall.max(secs.parse::<f64>().context("the publishing time")?);
    }
    tokio::time::sleep(DRAIN).await;
    let end = read(&nodes, &clients)?;
    let load_at_end = load_average();
    let rss_after: Vec<u64> = nodes.iter().map(rss).collect::<Result<_>>()?;

    let report = clients.ask("report").await?;
    let seen: Value = serde_json::from_str(
        report
            .strip_prefix("report ")
            .with_context(|| format!("the client process said {report:?}"))?,
    )
    .context("the client process's report")?;
    clients.stop().await?;
    for node in nodes.drain(..).rev() {
        node.process
            .stop()
            .await
            .with_context(|| format!("stopping {}", node.id))?;
    }

    let wall = end.at.duration_since(start.at).as_secs_f64();
    let idle_wall = start.at.duration_since(idle_start.at).as_secs_f64();
    let all = &seen["all"];
    let expected = published as f64 * (p.nodes * p.clients) as f64;
    let delivered = num(all, "delivered")?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let core = |cpu: f64, over: f64| 100.0 * cpu / over;
    let rates: Vec<String> = (0..p.nodes).map(|i| p.node_rate(i).to_string()).collect();

    println!("supervisor stream across {} nodes on NATS", p.nodes);
    println!(
        "  machine              {} cores; load average {load_at_start} at start, \
         {load_at_publish} when publishing began, {load_at_end} at the end",
        cores()
    );
    println!(
        "  clients              {} connected of {} ({} per node) in {:.1} s",
        num(all, "clients")?,
        p.nodes * p.clients,
        p.clients,
        connect_time.as_secs_f64()
    );
    println!(
        "  events               {published} published at {} /s ({} per node) over {publish_wall:.1} s",
        p.rate,
        rates.join(" + ")
    );
    println!(
        "  frames delivered     {delivered} of {expected} ({:.4} %)",
        100.0 * delivered / expected.max(1.0)
    );
    println!(
        "  resynchronised       {} clients ({} snapshots sent to slow clients)",
        num(all, "resynced_clients")?,
        num(all, "resyncs")?
    );
    println!(
        "  out of order         {} frames (stream number not above the one before)",
        num(all, "out_of_order")?
    );
    println!("  latency ms           {}", latency(all)?);
    println!(
        "  per receiving node   latency ms; frames; CPU over the {wall:.1} s window (publishing + {} s drain)",
        DRAIN.as_secs()
    );
    for i in 0..p.nodes {
        let id = format!("node-{i}");
        let g = &seen["nodes"][i];
        let cpu = end.nodes[i] - start.nodes[i];
        let idle = start.nodes[i] - idle_start.nodes[i];
        let frames = num(g, "delivered")?;
        println!("    {id:<8}           {}", latency(g)?);
        println!(
            "                       {frames} of {} frames, {} clients resynchronised",
            published as f64 * num(g, "clients")?,
            num(g, "resynced_clients")?
        );
        println!(
            "                       CPU {cpu:.2} s ({:.0} % of a core): {:.0} µs per published event, \
             {:.2} µs per delivered frame; at rest {:.1} % of a core",
            core(cpu, wall),
            1e6 * cpu / (published as f64).max(1.0),
            1e6 * cpu / frames.max(1.0),
            core(idle, idle_wall)
        );
        println!(
            "                       RSS {:.1} MiB started, {:.1} MiB connected, {:.1} MiB after",
            mib(rss_started[i]),
            mib(rss_connected[i]),
            mib(rss_after[i])
        );
    }
    let nodes_cpu: f64 = (0..p.nodes).map(|i| end.nodes[i] - start.nodes[i]).sum();
    let nats_cpu = match (start.nats, end.nats) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let clients_cpu = end.clients - start.clients;
    let machine_cpu = end.machine - start.machine;
    println!(
        "  nodes CPU            {nodes_cpu:.2} s in all ({:.0} % of a core), {:.0} µs per published event",
        core(nodes_cpu, wall),
        1e6 * nodes_cpu / (published as f64).max(1.0)
    );
    match nats_pid {
        Some(_) => println!(
            "  NATS server CPU      {nats_cpu:.2} s ({:.0} % of a core), {:.0} µs per published event",
            core(nats_cpu, wall),
            1e6 * nats_cpu / (published as f64).max(1.0)
        ),
        None => println!("  NATS server CPU      not found among this process's children"),
    }
    println!(
        "  clients CPU          {clients_cpu:.2} s ({:.0} % of a core)",
        core(clients_cpu, wall)
    );
    println!(
        "  machine CPU          {machine_cpu:.2} s busy of {:.2} s on {} cores ({:.0} % of one core); \
         others used {:.2} s",
        wall * cores() as f64,
        cores(),
        core(machine_cpu, wall),
        (machine_cpu - nodes_cpu - nats_cpu - clients_cpu).max(0.0)
    );
    Ok(())
}

/// Starts node `i` and waits until it serves.
async fn start_node(
    p: &Params,
    i: usize,
    nats: &TestNats,
    db: &TestDb,
    dir: &Path,
    account: AccountId,
) -> Result<Node> {
    let id = format!("node-{i}");
    let node_dir = dir.join(&id);
    let env = [
        ("NODES_BENCH_NODE", id.clone()),
        ("NODES_BENCH_DB", db.url.clone()),
        ("NODES_BENCH_NATS", nats.url.clone()),
        ("NODES_BENCH_DIR", node_dir.display().to_string()),
        ("NODES_BENCH_ACCOUNT", account.0.to_string()),
        ("NODES_BENCH_NODE_RATE", p.node_rate(i).to_string()),
        ("NODES_BENCH_SECS", p.secs.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let process = ChildProcess::spawn(ROLE, "node", &env, None).await?;
    let addr = process
        .greeting
        .strip_prefix("http ")
        .with_context(|| format!("{id} said {:?}", process.greeting))?
        .to_owned();
    Ok(Node { id, addr, process })
}

/// Runs one node: serves until stdin closes, publishing its share of alerts when told.
async fn node_process() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
    let node = var("NODES_BENCH_NODE")?;
    let dir = PathBuf::from(var("NODES_BENCH_DIR")?);
    let settings = Settings {
        database_url: Secret::new(var("NODES_BENCH_DB")?),
        http_addr: "127.0.0.1:0".parse().expect("a valid address literal"),
        demo: false,
        gateway: Some(sip_gateway::gateway::GatewayConfig::loopback()),
        node_id: node.clone(),
        nats_url: Some(Secret::new(var("NODES_BENCH_NATS")?)),
        recordings_dir: dir.join("recordings"),
        ..Settings::default()
    };
    let account = AccountId(env_number("NODES_BENCH_ACCOUNT", 0)?);
    let rate: u32 = env_number("NODES_BENCH_NODE_RATE", 0)?;
    let secs: u64 = env_number("NODES_BENCH_SECS", 0)?;
    let app = App::start(&settings)
        .await
        .with_context(|| format!("starting {node}"))?;
    println!("http {}", app.http_addr);
    let mut commands = stdin_lines();
    while let Some(line) = commands.recv().await {
        match line.trim() {
            "publish" => {
                let started = Instant::now();
                let n = publish_alerts(&app.bus, account, rate, secs).await;
                println!("published {n} {:.3}", started.elapsed().as_secs_f64());
            }
            other => println!("unknown command {other:?}"),
        }
    }
    app.stop().await.with_context(|| format!("stopping {node}"))
}

/// Runs the supervisors' websockets; answers `report` with what they saw, as JSON.
async fn clients_process() -> Result<()> {
    let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
    let urls: Vec<String> = var("NODES_BENCH_ADDRS")?
        .split(',')
        .map(|a| format!("ws://{a}/api/stream"))
        .collect();
    let cookie = var("NODES_BENCH_COOKIE")?;
    let per_node: usize = env_number("NODES_BENCH_CLIENTS", 1_000)?;
    let fleet = Fleet::connect(&urls, &cookie, per_node).await?;
    println!("connected");
    let mut commands = stdin_lines();
    loop {
        match commands.recv().await.as_deref().map(str::trim) {
            Some("report") => break,
            Some(other) => println!("unknown command {other:?}"),
            None => bail!("the parent left before asking for the report"),
        }
    }
    let groups = fleet.finish().await?;
    let mut all = GroupTally::default();
    for g in &groups {
        all.add(g);
    }
    let report = json!({
        "all": summary(&all),
        "nodes": groups.iter().map(summary).collect::<Vec<_>>(),
    });
    println!("report {report}");
    Ok(())
}

/// A group's figures, for the report line.
fn summary(g: &GroupTally) -> Value {
    let us = |q: f64| g.frames.latencies.quantile(q).as_micros() as u64;
    json!({
        "clients": g.clients,
        "delivered": g.frames.delivered,
        "resyncs": g.frames.resyncs,
        "resynced_clients": g.resynced_clients,
        "out_of_order": g.frames.out_of_order,
        "p50_us": us(0.50),
        "p95_us": us(0.95),
        "p99_us": us(0.99),
        "max_us": g.frames.latencies.max().as_micros() as u64,
    })
}

/// Formats a summary's latencies in milliseconds.
fn latency(g: &Value) -> Result<String> {
    let at = |k: &str| num(g, k).map(|us| ms(Duration::from_secs_f64(us / 1e6)));
    Ok(format!(
        "p50 {}  p95 {}  p99 {}  max {}",
        at("p50_us")?,
        at("p95_us")?,
        at("p99_us")?,
        at("max_us")?
    ))
}

/// Reads a number from a summary.
fn num(g: &Value, key: &str) -> Result<f64> {
    g[key]
        .as_f64()
        .with_context(|| format!("the client process did not report {key}"))
}

/// A node process's resident memory.
fn rss(node: &Node) -> Result<u64> {
    rss_bytes(&node.process.pid)
}

/// Lines from this process's stdin; the channel closes when stdin does.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // The workspace's tokio has no `io-std`; a thread of its own reads the parent's words.
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The runtime of a node and of the clients: every core, as `dialcrm serve` uses.
fn multi_thread() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}
