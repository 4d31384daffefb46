use super::*;

fn run(mode: Mode, agents: u64, seed: u64) -> SimReport {
    let report = simulate(&SimConfig {
        mode,
        agents,
        seed,
        ..SimConfig::default()
    });
    println!("{mode:?} agents={agents} seed={seed}: {report:?}");
    report
}

#[test]
fn same_seed_gives_the_same_run() {
    let config = SimConfig {
        agents: 5,
        duration: Duration::from_secs(600),
        ..SimConfig::default()
    };
    assert_eq!(simulate(&config), simulate(&config));
}

#[test]
fn predictive_keeps_abandons_under_three_percent_and_beats_progressive() {
    for (agents, seed) in [(10, 7), (25, 11)] {
        let progressive = run(Mode::Progressive, agents, seed);
        let predictive = run(Mode::Predictive, agents, seed);
        assert_eq!(progressive.abandons, 0);
        assert!(
            predictive.live > 200,
            "too few calls to judge: {}",
            predictive.live
        );
        assert!(
            predictive.abandon_rate <= 0.03,
            "abandon rate {}",
            predictive.abandon_rate
        );
        assert!(
            predictive.utilisation > progressive.utilisation,
            "predictive {} vs progressive {}",
            predictive.utilisation,
            progressive.utilisation
        );
    }
}

#[test]
fn predictive_stays_under_three_percent_with_five_agents() {
    for seed in 1..=3 {
        let report = run(Mode::Predictive, 5, seed);
        assert!(
            report.abandon_rate <= 0.03,
            "abandon rate {}",
            report.abandon_rate
        );
    }
}

#[test]
#[ignore = "prints a grid of figures for tuning"]
fn grid() {
    for agents in [5, 10, 25, 50] {
        for answer_rate in [0.15, 0.25, 0.35] {
            for mode in [Mode::Progressive, Mode::Predictive] {
                let mut worst: f64 = 0.0;
                let mut excess: f64 = 0.0;
                let mut util = 0.0;
                for seed in 1..=3 {
                    let r = simulate(&SimConfig {
                        mode,
                        agents,
                        answer_rate,
                        seed,
                        ..SimConfig::default()
                    });
                    worst = worst.max(r.abandon_rate);
                    excess = excess.max(r.peak_excess);
                    util += r.utilisation / 3.0;
                }
                println!("{agents:>3} {answer_rate:.2} {mode:?}: util {util:.3} worst abandon {worst:.4} excess {excess:.2}");
            }
        }
    }
}

#[test]
#[ignore = "prints figures for a long run"]
fn long_run() {
    for answer_rate in [0.15, 0.25] {
        let duration = Duration::from_secs(4 * 3600);
        let r = simulate(&SimConfig {
            answer_rate,
            duration,
            ..SimConfig::default()
        });
        println!("25 agents {answer_rate} 4h: {r:?}");
    }
}
