use super::*;

/// Erlang B by its definition, `(a^N/N!) / Σ_{k<=N} a^k/k!`, for small `N`.
fn direct_b(n: u32, a: f64) -> f64 {
    let terms = direct_terms(n, a);
    terms[n as usize] / terms.iter().sum::<f64>()
}

/// Erlang C by its definition, for small `N > a`.
fn direct_c(n: u32, a: f64) -> f64 {
    let terms = direct_terms(n, a);
    let top = terms[n as usize] * f64::from(n) / (f64::from(n) - a);
    top / (terms[..n as usize].iter().sum::<f64>() + top)
}

/// `a^k/k!` for k = 0..=n, each from its own power and factorial.
fn direct_terms(n: u32, a: f64) -> Vec<f64> {
    (0..=n)
        .map(|k| a.powi(k as i32) / (1..=k).map(f64::from).product::<f64>())
        .collect()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1e-300)
}

#[test]
fn erlang_b_and_c_match_their_definitions() {
    for a in [0.5, 2.0, 6.333, 10.0, 17.5] {
        for n in 1..=30 {
            let b = erlang_b(n, a);
            assert!(close(b, direct_b(n, a), 1e-12), "B({n}, {a})");
            if f64::from(n) > a {
                let c = erlang_c(n, a);
                assert!(close(c, direct_c(n, a), 1e-12), "C({n}, {a})");
            } else {
                assert_eq!(erlang_c(n, a), 1.0, "everyone waits at C({n}, {a})");
            }
        }
    }
}

#[test]
fn textbook_values() {
    assert_eq!(erlang_b(1, 1.0), 0.5);
    assert!(close(erlang_b(2, 2.0), 0.4, 1e-15));
    // M/M/2 at one erlang, and M/M/3 at two: 1/3 and 4/9 of callers wait.
    assert!(close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-15));
    assert!(close(erlang_c(3, 2.0), 4.0 / 9.0, 1e-15));
    // The classic: 100 calls in half an hour, 180 s handle time, 80 % in
    // 20 s. Figures from exact rational arithmetic.
    let rate = 100.0 / 1800.0;
    let handle = Duration::from_secs(180);
    let within = Duration::from_secs(20);
    assert!(close(erlang_c(13, 10.0), 0.285_270_453_036_493, 1e-9));
    assert!(close(erlang_c(14, 10.0), 0.174_131_933_595_050, 1e-9));
    assert!(close(
        service_level(13, rate, handle, within),
        0.795_594_788_417_783,
        1e-9
    ));
    assert!(close(
        service_level(14, rate, handle, within),
        0.888_350_019_179_467,
        1e-9
    ));
    assert_eq!(agents_for_service_level(rate, handle, within, 0.8), 14);
    assert_eq!(agents_for_service_level(rate, handle, within, 0.79), 13);
}

#[test]
fn large_floors_stay_finite_and_more_agents_serve_better() {
    let within = Duration::from_secs(20);
    let handle = Duration::from_secs(300);
    // 1,950 erlangs: powers and factorials would overflow long before.
    let rate = 1950.0 / 300.0;
    let mut last = 0.0;
    for n in 1951..2100 {
        let c = erlang_c(n, 1950.0);
        assert!(c.is_finite() && (0.0..=1.0).contains(&c), "C({n}) = {c}");
        let sl = service_level(n, rate, handle, within);
        assert!(sl >= last, "service level fell at {n}");
        last = sl;
    }
    let n = agents_for_service_level(rate, handle, within, 0.8);
    assert!(service_level(n, rate, handle, within) >= 0.8);
    assert!(service_level(n - 1, rate, handle, within) < 0.8);
}

#[test]
fn agents_for_service_level_refuses_nonsense_quietly() {
    let h = Duration::from_secs(180);
    let t = Duration::from_secs(20);
    assert_eq!(agents_for_service_level(0.0, h, t, 0.8), 0);
    assert_eq!(agents_for_service_level(-1.0, h, t, 0.8), 0);
    assert_eq!(agents_for_service_level(f64::NAN, h, t, 0.8), 0);
    assert_eq!(agents_for_service_level(0.1, h, t, f64::NAN), 0);
    assert_eq!(agents_for_service_level(0.1, Duration::ZERO, t, 0.8), 0);
    assert_eq!(
        agents_for_service_level(f64::INFINITY, h, t, 0.8),
        MAX_AGENTS
    );
    assert_eq!(agents_for_service_level(0.1, h, t, 1.5), MAX_AGENTS);
    assert_eq!(erlang_b(5, f64::INFINITY), 1.0);
    assert_eq!(erlang_c(5, f64::NAN), 0.0);
}

/// `W(k)` from the cut-off chain's distribution itself: `π_m` for
/// `m = s-k ..` up to far in the tail, normalised; the share of `m >= s`.
fn chain_wait(s: u32, a: f64, k: u32) -> f64 {
    let mut weight = 1.0;
    let mut below = 0.0;
    let mut above = 0.0;
    for m in (s - k)..(s + 5_000) {
        if m >= s {
            above += weight;
        } else {
            below += weight;
        }
        weight *= a / f64::from((m + 1).min(s));
    }
    above / (below + above)
}

#[test]
fn pooled_wait_matches_the_chain_and_its_two_ends() {
    for (s, a) in [(5, 2.0), (25, 6.333), (25, 20.0), (60, 40.0)] {
        assert_eq!(pooled_wait_probability(s, a, 0), 1.0);
        assert!(close(
            pooled_wait_probability(s, a, s),
            erlang_c(s, a),
            1e-12
        ));
        for k in 0..=s {
            let w = pooled_wait_probability(s, a, k);
            assert!(close(w, chain_wait(s, a, k), 1e-9), "W({k}) s={s} a={a}");
        }
    }
    assert_eq!(pooled_wait_probability(5, 5.0, 3), 1.0, "overloaded");
}

fn scenario() -> (QueueLoad, Floor) {
    // 120 calls an hour, 180 s talk and 10 s wrap-up, on 25 agents.
    let queue = QueueLoad {
        arrivals_per_sec: 120.0 / 3600.0,
        handle: Duration::from_secs(190),
        target: ServiceTarget::default(),
    };
    let floor = Floor {
        staffed: 25,
        on_inbound: 0,
        waiting: 0,
        lead: Duration::ZERO,
    };
    (queue, floor)
}

#[test]
fn reserve_is_the_smallest_threshold_that_meets_the_target() {
    let (queue, floor) = scenario();
    for lead in [0, 5, 11, 15, 20, 30] {
        let floor = Floor {
            lead: Duration::from_secs(lead),
            ..floor
        };
        let k = reserve(&queue, &floor);
        assert!(
            pooled_service_level(&queue, &floor, k) >= 0.8,
            "lead {lead}"
        );
        if k > 0 {
            assert!(pooled_service_level(&queue, &floor, k - 1) < 0.8);
        }
    }
    // 25 agents free one every 7.6 s on average: with nothing promised
    // ahead a caller may wait for the next, W(0) = 1 and SL = 0.86; with
    // 11 s promised W(1) = 0.253 is needed; with all 20 s, W(2) = 0.066.
    let at = |lead| {
        reserve(
            &queue,
            &Floor {
                lead: Duration::from_secs(lead),
                ..floor
            },
        )
    };
    assert_eq!((at(0), at(11), at(20)), (0, 1, 2));
}

#[test]
fn reserve_adds_one_agent_per_waiting_caller() {
    let (queue, floor) = scenario();
    let floor = Floor {
        lead: Duration::from_secs(11),
        ..floor
    };
    let base = reserve(&queue, &floor);
    for waiting in 1..5 {
        assert_eq!(reserve(&queue, &Floor { waiting, ..floor }), base + waiting);
    }
}

#[test]
fn reserve_never_exceeds_what_a_dedicated_group_lacks() {
    let (queue, floor) = scenario();
    let target = queue.target;
    let dedicated =
        agents_for_service_level(queue.arrivals_per_sec, queue.handle, target.within, 0.8);
    assert_eq!(dedicated, 9);
    // So far ahead that the pool's help never comes in time.
    let blind = Floor {
        lead: Duration::from_secs(60),
        ..floor
    };
    for on_inbound in 0..12 {
        let k = reserve(
            &queue,
            &Floor {
                on_inbound,
                ..blind
            },
        );
        assert!(
            k <= dedicated.saturating_sub(on_inbound),
            "{on_inbound}: {k}"
        );
    }
    assert_eq!(
        reserve(
            &queue,
            &Floor {
                on_inbound: 9,
                ..blind
            }
        ),
        0
    );
}

#[test]
fn reserve_with_no_traffic_or_no_room() {
    let (queue, floor) = scenario();
    let quiet = QueueLoad {
        arrivals_per_sec: 0.0,
        ..queue
    };
    assert_eq!(
        reserve(
            &quiet,
            &Floor {
                waiting: 2,
                ..floor
            }
        ),
        2
    );
    let nan = QueueLoad {
        arrivals_per_sec: f64::NAN,
        ..queue
    };
    assert_eq!(reserve(&nan, &floor), 0);
    // Six agents cannot carry 6.3 erlangs: keep them all.
    let small = Floor {
        staffed: 6,
        ..floor
    };
    assert_eq!(reserve(&queue, &small), 6);
    let flood = QueueLoad {
        arrivals_per_sec: f64::INFINITY,
        ..queue
    };
    assert_eq!(
        reserve(
            &flood,
            &Floor {
                waiting: 1,
                ..floor
            }
        ),
        26
    );
    assert_eq!(
        reserve(
            &queue,
            &Floor {
                staffed: 0,
                ..floor
            }
        ),
        0
    );
}

#[test]
fn more_traffic_never_lowers_the_reserve() {
    let (queue, floor) = scenario();
    let floor = Floor {
        lead: Duration::from_secs(11),
        ..floor
    };
    let mut last = 0;
    for per_hour in (0..=450).step_by(10) {
        let q = QueueLoad {
            arrivals_per_sec: f64::from(per_hour) / 3600.0,
            ..queue
        };
        let k = reserve(&q, &floor);
        assert!(k >= last, "{per_hour}/h: {k} after {last}");
        last = k;
    }
    assert_eq!(last, 25, "450 calls an hour need the whole floor");
}
