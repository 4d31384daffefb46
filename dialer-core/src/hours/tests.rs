use super::*;
use chrono_tz::{America, Australia, Europe};
use proptest::prelude::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn window(start: (u32, u32), end: (u32, u32)) -> DayWindow {
    DayWindow::new(hm(start.0, start.1), hm(end.0, end.1)).unwrap()
}

fn sunday_only(day: DayWindow) -> CallingWindow {
    CallingWindow::closed().with_day(Weekday::Sun, Some(day))
}

#[test]
fn default_hours_move_with_london_summer_time() {
    let hours = CallingWindow::default();
    let tz = Europe::London;
    // Saturday 29 March 2025 is GMT; Sunday 30 March is BST.
    assert!(!may_call(&hours, tz, utc(2025, 3, 29, 7, 59)));
    assert!(may_call(&hours, tz, utc(2025, 3, 29, 8, 0)));
    assert!(!may_call(&hours, tz, utc(2025, 3, 30, 6, 59)));
    assert!(may_call(&hours, tz, utc(2025, 3, 30, 7, 0)));
    assert!(may_call(&hours, tz, utc(2025, 3, 30, 19, 59)));
    assert!(!may_call(&hours, tz, utc(2025, 3, 30, 20, 0)));
}

#[test]
fn window_starting_in_londons_skipped_hour_opens_when_clocks_go_forward() {
    let hours = sunday_only(window((1, 30), (3, 0)));
    let from = utc(2025, 3, 30, 0, 0);
    // 01:00 GMT jumps to 02:00 BST, which is 01:00 UTC.
    assert_eq!(
        next_open(&hours, Europe::London, from),
        Some(utc(2025, 3, 30, 1, 0))
    );
}

#[test]
fn london_default_hours_open_at_eight_local_on_the_day_clocks_go_back() {
    let hours = CallingWindow::default();
    let from = utc(2025, 10, 25, 21, 0);
    let opens = next_open(&hours, Europe::London, from);
    assert_eq!(opens, Some(utc(2025, 10, 26, 8, 0)));
}

#[test]
fn new_york_window_in_the_skipped_hour_opens_at_three_daylight_time() {
    let hours = CallingWindow::every_day(window((2, 30), (5, 0)));
    let tz = America::New_York;
    // Midnight EST on 9 March 2025; 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    assert_eq!(
        next_open(&hours, tz, utc(2025, 3, 9, 5, 0)),
        Some(utc(2025, 3, 9, 7, 0))
    );
    // The next day 02:30 EDT is 06:30 UTC.
    assert_eq!(
        next_open(&hours, tz, utc(2025, 3, 9, 10, 0)),
        Some(utc(2025, 3, 10, 6, 30))
    );
}

#[test]
fn new_york_repeated_hour_opens_at_the_first_occurrence() {
    let hours = CallingWindow::every_day(window((1, 30), (3, 0)));
    let tz = America::New_York;
    // 01:30 EDT on 2 November 2025 is 05:30 UTC.
    assert_eq!(
        next_open(&hours, tz, utc(2025, 11, 2, 4, 0)),
        Some(utc(2025, 11, 2, 5, 30))
    );
}

#[test]
fn window_ending_in_the_repeated_hour_reopens_when_clocks_go_back() {
    let hours = CallingWindow::every_day(window((0, 0), (1, 30)));
    let tz = America::New_York;
    // Closed at 01:45 EDT; at 06:00 UTC the clock reads 01:00 EST again.
    let from = utc(2025, 11, 2, 5, 45);
    assert!(!may_call(&hours, tz, from));
    assert_eq!(next_open(&hours, tz, from), Some(utc(2025, 11, 2, 6, 0)));
    assert!(may_call(&hours, tz, utc(2025, 11, 2, 6, 15)));
}

#[test]
fn closed_days_are_skipped() {
    let hours = CallingWindow::default().with_day(Weekday::Sun, None);
    // Saturday 7 June 2025, 21:30 BST.
    let opens = next_open(&hours, Europe::London, utc(2025, 6, 7, 20, 30));
    assert_eq!(opens, Some(utc(2025, 6, 9, 7, 0)));
}

#[test]
fn open_now_means_now_and_never_open_means_none() {
    let now = utc(2025, 6, 9, 12, 0);
    assert_eq!(
        next_open(&CallingWindow::default(), Europe::Paris, now),
        Some(now)
    );
    assert_eq!(
        next_open(&CallingWindow::closed(), Europe::Paris, now),
        None
    );
}

#[test]
fn inverted_window_is_refused() {
    let err = DayWindow::new(hm(21, 0), hm(8, 0)).unwrap_err();
    assert_eq!(
        err,
        HoursError::Inverted {
            start: hm(21, 0),
            end: hm(8, 0)
        }
    );
}

const ZONES: [Tz; 8] = [
    Europe::London,
    Europe::Berlin,
    America::New_York,
    America::Los_Angeles,
    America::Santiago,
    Australia::Sydney,
    Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
];

/// Instants around the 2025 transitions of the zones above, where bugs live.
const TRANSITIONS: [(i32, u32, u32); 6] = [
    (2025, 3, 9),
    (2025, 3, 30),
    (2025, 4, 6),
    (2025, 9, 7),
    (2025, 10, 5),
    (2025, 11, 2),
];

fn instants() -> impl Strategy<Value = DateTime<Utc>> {
    let near = (0..TRANSITIONS.len(), -86_400i64..86_400).prop_map(|(i, secs)| {
        let (y, m, d) = TRANSITIONS[i];
        utc(y, m, d, 0, 0) + TimeDelta::seconds(secs)
    });
    let anywhere =
        (1_577_836_800i64..1_893_456_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap());
    prop_oneof![near, anywhere]
}

fn hours_strategy() -> impl Strategy<Value = CallingWindow> {
    // Half the windows start in the small hours, where clocks change.
    let start = prop_oneof![0u32..16, 0u32..96];
    let day = prop::option::weighted(0.8, (start, 1u32..96)).prop_map(|slot| {
        slot.map(|(start, len)| {
            let end = (start + len).min(95) * 15 + 14;
            DayWindow::new(hm(start * 15 / 60, start * 15 % 60), hm(end / 60, end % 60))
                .unwrap_or_else(|_| window((23, 0), (23, 59)))
        })
    });
    prop::array::uniform7(day).prop_map(|days| CallingWindow { days })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn may_call_agrees_with_local_time_computed_from_the_offset(
        zone in 0..ZONES.len(), now in instants(), hours in hours_strategy(),
    ) {
        let tz = ZONES[zone];
        let local = now.naive_utc() + TimeDelta::seconds(i64::from(utc_offset(tz, now)));
        let expected = hours.day(local.weekday()).is_some_and(|d| d.contains(local.time()));
        prop_assert_eq!(may_call(&hours, tz, now), expected);
    }

    #[test]
    fn next_open_is_open_and_nothing_before_it_is(
        zone in 0..ZONES.len(), now in instants(), hours in hours_strategy(),
    ) {
        let tz = ZONES[zone];
        match next_open(&hours, tz, now) {
            Some(opens) => {
                prop_assert!(opens >= now);
                prop_assert!(may_call(&hours, tz, opens));
                let mut probe = now;
                while probe < opens {
                    prop_assert!(!may_call(&hours, tz, probe), "open at {probe} before {opens}");
                    probe += TimeDelta::minutes(10);
                }
                if opens > now {
                    prop_assert!(!may_call(&hours, tz, opens - TimeDelta::seconds(1)));
                }
            }
            None => {
                for step in 0..(8 * 24 * 6) {
                    let probe = now + TimeDelta::minutes(10 * step);
                    prop_assert!(!may_call(&hours, tz, probe));
                }
            }
        }
    }
}
