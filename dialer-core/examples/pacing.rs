//! Predictive pacing on the simulator, over many seeds.
//!
//! The floor of docs/benchmarks.md, "Predictive pacing": one dial in four
//! answered live, no machines or busy lines, 90 s log-normal talk, 10 s
//! wrap-up, a 20 s ring timeout; 5, 10 and 25 agents.
//!
//! - `cargo run --release -p dialer-core --example pacing` runs seeds 1 to
//!   20 for 8 hours and prints utilisation, abandon rate and live answers.
//! - `cargo run --release -p dialer-core --example pacing -- day 100` runs
//!   seeds 1 to 100 for 24 hours and prints the worst 24-hour abandon rate
//!   (the ledger's rolling window at the end of the day, which then spans
//!   the whole run), the highest the rolling rate ever read after an
//!   abandon, and the most abandons ever counted beyond the 3 % allowance.
//!
//! A first argument of `shift` or `day` picks the run; a second, the number
//! of seeds; a third, the agent counts, comma-separated (`5,10,25`); a
//! fourth, the first seed (1).

use std::time::Duration;

use dialer_core::pacer::Mode;
use dialer_core::simulation::{simulate, SimConfig, SimReport};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let day = args.first().is_some_and(|a| a == "day");
    let seeds: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if day { 100 } else { 20 });
    let agents: Vec<u64> = args
        .get(2)
        .map(|s| s.split(',').filter_map(|a| a.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![5, 10, 25]);
    let first: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let last = first.saturating_add(seeds.saturating_sub(1));
    let hours = if day { 24 } else { 8 };
    println!("seeds {first} to {last}, {hours} hours each");
    println!(
        "| agents | utilisation mean | utilisation least | abandon rate mean | abandon rate worst \
         | live answers mean | rolling rate highest | most abandons over 3 % |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &n in &agents {
        let reports: Vec<SimReport> = (first..=last).map(|seed| run(n, hours, seed)).collect();
        let count = reports.len().max(1) as f64;
        let mean = |f: fn(&SimReport) -> f64| reports.iter().map(f).sum::<f64>() / count;
        let most = |f: fn(&SimReport) -> f64| reports.iter().map(f).fold(f64::MIN, f64::max);
        let least = |f: fn(&SimReport) -> f64| reports.iter().map(f).fold(f64::MAX, f64::min);
        let worst_seed = reports
            .iter()
            .zip(first..)
            .max_by(|(a, _), (b, _)| a.abandon_rate.total_cmp(&b.abandon_rate))
            .map_or(0, |(_, seed)| seed);
        println!(
            "| {n} | {:.3} | {:.3} | {:.2} % | {:.2} % (seed {worst_seed}) | {:.0} | {:.2} % | {:.2} |",
            mean(|r| r.utilisation),
            least(|r| r.utilisation),
            mean(|r| r.abandon_rate) * 100.0,
            most(|r| r.abandon_rate) * 100.0,
            mean(|r| r.live as f64),
            most(|r| r.peak_day_rate) * 100.0,
            most(|r| r.peak_excess).max(0.0),
        );
    }
}

fn run(agents: u64, hours: u64, seed: u64) -> SimReport {
    simulate(&SimConfig {
        mode: Mode::Predictive,
        agents,
        answer_rate: 0.25,
        machine_rate: 0.0,
        busy_rate: 0.0,
        talk_mean: Duration::from_secs(90),
        wrap: Duration::from_secs(10),
        ring_timeout: Duration::from_secs(20),
        duration: Duration::from_secs(hours * 3600),
        seed,
    })
}
