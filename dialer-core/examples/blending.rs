//! Blended agents against the best fixed split of the same floor.
//!
//! 25 agents for 8 hours share an outbound campaign (one dial in four
//! answered live, 90 s talk, 10 s wrap-up) with an inbound queue (120 calls
//! an hour, 180 s talk, callers waiting two minutes on average, 80 % to
//! answer within 20 s). For each dialling mode and seed it finds the fixed
//! split with the fewest inbound agents that meets the target, runs the
//! same floor blended, and prints both.
//!
//! `cargo run --release -p dialer-core --example blending`

use std::time::Duration;

use dialer_core::blend::{agents_for_service_level, reserve, Floor, QueueLoad, ServiceTarget};
use dialer_core::pacer::Mode;
use dialer_core::simulation::{
    simulate_with_inbound, InboundConfig, Pooling, SimConfig, SimReport,
};

const SEEDS: u64 = 5;

fn main() {
    let target = ServiceTarget {
        fraction: 0.8,
        within: Duration::from_secs(20),
    };
    let inbound = InboundConfig {
        calls_per_hour: 120.0,
        talk_mean: Duration::from_secs(180),
        patience_mean: Duration::from_secs(120),
        target,
        pooling: Pooling::Blended,
    };
    let wrap = Duration::from_secs(10);
    let queue = QueueLoad {
        arrivals_per_sec: inbound.calls_per_hour / 3600.0,
        handle: inbound.talk_mean + wrap,
        target,
    };
    println!(
        "Erlang C: {} agents of their own for 80 % in 20 s; reserve on 25 blended agents, \
         nobody waiting: {} with nothing promised ahead, {} with 11 s",
        agents_for_service_level(queue.arrivals_per_sec, queue.handle, target.within, 0.8),
        reserve(&queue, &floor(0)),
        reserve(&queue, &floor(11)),
    );
    for mode in [Mode::Predictive, Mode::Progressive] {
        println!();
        println!("{mode:?}");
        println!(
            "| seed | pooling | SL 20 s | ASA | callers lost | outbound talk min/agent-h \
             | outbound abandon rate | live answers | utilisation |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut gain = Vec::new();
        for seed in 1..=SEEDS {
            let config = SimConfig {
                mode,
                agents: 25,
                answer_rate: 0.25,
                talk_mean: Duration::from_secs(90),
                wrap,
                duration: Duration::from_secs(8 * 3600),
                seed,
                ..SimConfig::default()
            };
            let Some((split, separate)) = best_split(&config, &inbound) else {
                println!("| {seed} | no split meets the target | | | | | | | |");
                continue;
            };
            let blended = simulate_with_inbound(&config, &inbound);
            row(seed, &format!("separate, {split} inbound"), &separate);
            row(seed, "blended", &blended);
            gain.push(blended.talk_minutes_per_agent_hour / separate.talk_minutes_per_agent_hour);
        }
        let mean = gain.iter().sum::<f64>() / gain.len().max(1) as f64;
        println!(
            "outbound talk, blended over separate: mean {:+.1} %, least {:+.1} %",
            (mean - 1.0) * 100.0,
            (gain.iter().copied().fold(f64::INFINITY, f64::min) - 1.0) * 100.0
        );
    }
}

fn floor(lead_secs: u64) -> Floor {
    Floor {
        staffed: 25,
        on_inbound: 0,
        waiting: 0,
        lead: Duration::from_secs(lead_secs),
    }
}

/// Returns the split with the fewest inbound agents that meets the target.
fn best_split(config: &SimConfig, inbound: &InboundConfig) -> Option<(u64, SimReport)> {
    (0..=config.agents).find_map(|inbound_agents| {
        let split = InboundConfig {
            pooling: Pooling::Separate { inbound_agents },
            ..*inbound
        };
        let report = simulate_with_inbound(config, &split);
        (report.service_level >= inbound.target.fraction).then_some((inbound_agents, report))
    })
}

fn row(seed: u64, pooling: &str, r: &SimReport) {
    println!(
        "| {seed} | {pooling} | {:.1} % | {:.1} s | {} of {} | {:.1} | {:.2} % | {} | {:.3} |",
        r.service_level * 100.0,
        r.average_speed_of_answer.as_secs_f64(),
        r.inbound_abandoned,
        r.inbound_offered,
        r.talk_minutes_per_agent_hour,
        r.abandon_rate * 100.0,
        r.live,
        r.utilisation,
    );
}
