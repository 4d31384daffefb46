use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 9, 0, 0).unwrap()
}

fn ledger_with(connected: u64, abandoned: u64, at: DateTime<Utc>) -> ComplianceLedger {
    let mut ledger = ComplianceLedger::new(AbandonTarget::default());
    for _ in 0..connected {
        ledger.record(LiveAnswer::Connected, at);
    }
    for _ in 0..abandoned {
        ledger.record(LiveAnswer::Abandoned, at);
    }
    ledger
}

#[test]
fn rate_counts_abandons_against_all_live_answers() {
    let ledger = ledger_with(97, 3, t0());
    let counts = ledger.counts(Window::Day, t0());
    assert_eq!(
        counts,
        Counts {
            live: 100,
            abandoned: 3
        }
    );
    assert!((ledger.rate(Window::Day, t0()) - 0.03).abs() < 1e-12);
    assert_eq!(ledger.headroom(t0()), 0);
}

#[test]
fn empty_ledger_reports_zero_rate_and_no_headroom() {
    let ledger = ComplianceLedger::new(AbandonTarget::default());
    assert_eq!(ledger.rate(Window::Month, t0()), 0.0);
    assert_eq!(ledger.headroom(t0()), 0);
}

#[test]
fn headroom_is_the_largest_count_that_stays_within_target() {
    // 3 more abandons give 3/103 = 2.9%; a fourth gives 4/104 = 3.8%.
    let ledger = ledger_with(100, 0, t0());
    assert_eq!(ledger.headroom(t0()), 3);
}

#[test]
fn abandons_leave_the_day_window_but_stay_in_the_month() {
    let mut ledger = ledger_with(10, 1, t0());
    let day_later = t0() + TimeDelta::hours(24);
    assert_eq!(ledger.counts(Window::Day, day_later).abandoned, 1);
    let past_day = day_later + TimeDelta::minutes(1);
    ledger.prune(past_day);
    assert_eq!(ledger.counts(Window::Day, past_day), Counts::default());
    assert_eq!(ledger.counts(Window::Month, past_day).abandoned, 1);
    let past_month = t0() + TimeDelta::days(30) + TimeDelta::hours(1);
    ledger.prune(past_month);
    assert_eq!(ledger.counts(Window::Month, past_month), Counts::default());
}

#[test]
fn memory_stays_bounded_over_a_long_run() {
    let mut ledger = ComplianceLedger::new(AbandonTarget::default());
    for minute in 0..(60 * 24 * 45) {
        ledger.record(LiveAnswer::Connected, t0() + TimeDelta::minutes(minute));
    }
    assert!(ledger.day.buckets.len() <= 1441);
    assert!(ledger.month.buckets.len() <= 721);
}

#[test]
fn target_refuses_one_hundred_percent() {
    assert!(AbandonTarget::from_basis_points(10_000).is_none());
    assert_eq!(
        AbandonTarget::from_basis_points(250).unwrap().fraction(),
        0.025
    );
}

#[test]
fn abandoned_number_rests_72_hours_unless_an_agent_is_reserved() {
    let abandoned = Some(t0());
    let soon = t0() + TimeDelta::hours(71);
    let later = t0() + TimeDelta::hours(72);
    assert!(may_redial_after_abandon(None, soon, false));
    assert!(!may_redial_after_abandon(abandoned, soon, false));
    assert!(may_redial_after_abandon(abandoned, soon, true));
    assert!(may_redial_after_abandon(abandoned, later, false));
}

/// Counts raw events the way the buckets define each window.
fn recount(events: &[(i64, bool)], now: i64, width: i64, span: i64) -> Counts {
    let first = now.div_euclid(width) - span;
    let mut counts = Counts::default();
    for &(at, abandoned) in events {
        if at.div_euclid(width) >= first {
            counts.live += 1;
            counts.abandoned += u64::from(abandoned);
        }
    }
    counts
}

proptest! {
    #[test]
    fn rates_match_a_recount_of_raw_events(
        steps in prop::collection::vec((0i64..40_000, any::<bool>(), 0i64..200_000), 1..200),
    ) {
        let mut ledger = ComplianceLedger::new(AbandonTarget::default());
        let mut events = Vec::new();
        let mut clock = t0().timestamp();
        for (gap, abandoned, look_ahead) in steps {
            clock += gap;
            let at = DateTime::from_timestamp(clock, 0).unwrap();
            let answer = if abandoned { LiveAnswer::Abandoned } else { LiveAnswer::Connected };
            ledger.record(answer, at);
            events.push((clock, abandoned));
            let now_secs = clock + look_ahead;
            let now = DateTime::from_timestamp(now_secs, 0).unwrap();
            let day = ledger.counts(Window::Day, now);
            let month = ledger.counts(Window::Month, now);
            prop_assert_eq!(day, recount(&events, now_secs, 60, 1440));
            prop_assert_eq!(month, recount(&events, now_secs, 3600, 720));
            // Every event inside the nominal window is remembered.
            let exact = events.iter().filter(|(t, _)| now_secs - t <= 86_400).count() as u64;
            prop_assert!(day.live >= exact);
            for rate in [day.rate(), month.rate()] {
                prop_assert!((0.0..=1.0).contains(&rate));
            }
        }
    }

    #[test]
    fn headroom_is_exactly_the_last_abandon_within_target(
        live in 0u64..100_000, share in 0u64..=100, bp in 1u16..2_000,
    ) {
        let abandoned = live * share / 100;
        let target = AbandonTarget::from_basis_points(bp).unwrap();
        let k = Counts { live, abandoned }.headroom(target);
        let within = |extra: u64| {
            10_000 * u128::from(abandoned + extra) <= u128::from(bp) * u128::from(live + extra)
        };
        if within(0) {
            prop_assert!(within(k));
        }
        prop_assert!(!within(k + 1));
    }
}
