//! Calling hours in the called party's local time.
//!
//! A [`CallingWindow`] holds one optional [`DayWindow`] per weekday, in local
//! wall-clock time. [`may_call`] converts the instant to the contact's zone and
//! compares wall-clock times, so a daylight-saving change needs no special
//! case there: a skipped hour simply never occurs, a repeated hour occurs
//! twice.
//!
//! [`next_open`] has to find the first instant at which that comparison turns
//! true. The wall clock enters a window either by running into its start
//! (one instant, two in a repeated hour, none in a skipped hour) or by jumping
//! at an offset change, so the candidates are every mapping of each day's
//! start plus every offset change in the search span; the answer is the
//! earliest candidate that is open.

use chrono::{DateTime, Datelike, NaiveTime, Offset, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Errors in calling-hours configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// A day's window closes at or before the time it opens.
    #[error("calling window closes at {end} but opens at {start}")]
    Inverted {
        /// The opening time.
        start: NaiveTime,
        /// The closing time.
        end: NaiveTime,
    },
}

/// One day's calling hours, open from `start` up to but excluding `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DayWindow {
    start: NaiveTime,
    end: NaiveTime,
}

impl DayWindow {
    /// Builds a window, refusing one that does not close after it opens.
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, HoursError> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(HoursError::Inverted { start, end })
        }
    }

    /// Returns the opening time.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Returns the closing time, itself outside the window.
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// Tells whether a wall-clock time lies inside the window.
    pub fn contains(&self, time: NaiveTime) -> bool {
        self.start <= time && time < self.end
    }
}

impl Default for DayWindow {
    fn default() -> Self {
        Self {
            start: hm(8, 0),
            end: hm(21, 0),
        }
    }
}

/// Calling hours for each weekday; a day without a window is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallingWindow {
    days: [Option<DayWindow>; 7],
}

impl CallingWindow {
    /// Builds hours that are the same every day of the week.
    pub fn every_day(window: DayWindow) -> Self {
        Self {
            days: [Some(window); 7],
        }
    }

    /// Builds hours that are closed every day.
    pub fn closed() -> Self {
        Self { days: [None; 7] }
    }

    /// Returns these hours with one weekday changed (`None` closes it).
    pub fn with_day(mut self, day: Weekday, window: Option<DayWindow>) -> Self {
        self.days[day.num_days_from_monday() as usize] = window;
        self
    }

    /// Returns the window for a weekday, if the day is open.
    pub fn day(&self, day: Weekday) -> Option<DayWindow> {
        self.days[day.num_days_from_monday() as usize]
    }
}

impl Default for CallingWindow {
    /// Returns 08:00 to 21:00 every day.
    fn default() -> Self {
        Self::every_day(DayWindow::default())
    }
}

/// Tells whether a contact in zone `tz` may be called at `now`.
pub fn may_call(window: &CallingWindow, tz: Tz, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&tz);
    window
        .day(local.weekday())
        .is_some_and(|day| day.contains(local.time()))
}

/// Returns the first instant at or after `now` when a contact in zone `tz` may be called.
///
/// Returns `None` when no day of the week is open.
pub fn next_open(window: &CallingWindow, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if may_call(window, tz, now) {
        return Some(now);
    }
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |candidate: DateTime<Utc>| {
        if candidate >= now && may_call(window, tz, candidate) && best.is_none_or(|b| candidate < b)
        {
            best = Some(candidate);
        }
    };
    let today = now.with_timezone(&tz).date_naive();
    for offset in -1..=SEARCH_DAYS {
        let date = today + TimeDelta::days(offset);
        let Some(day) = window.day(date.weekday()) else {
            continue;
        };
        // A skipped start yields nothing here; the offset change that
        // skipped it is a candidate below.
        match tz.from_local_datetime(&date.and_time(day.start)) {
            chrono::LocalResult::Single(at) => consider(at.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(first, second) => {
                consider(first.with_timezone(&Utc));
                consider(second.with_timezone(&Utc));
            }
            chrono::LocalResult::None => {}
        }
    }
    for change in offset_changes(tz, now, SEARCH_DAYS) {
        consider(change);
    }
    best
}

/// Days ahead searched by [`next_open`]: two weeks, plus a day for a start lost to a skipped hour.
const SEARCH_DAYS: i64 = 15;

fn hm(hour: u32, minute: u32) -> NaiveTime {
    // Both callers pass constants within range.
    NaiveTime::from_hms_opt(hour, minute, 0).expect("constant time of day is valid")
}

fn utc_offset(tz: Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// Returns the instants in `(from, from + days]` at which the zone's UTC offset changes.
fn offset_changes(tz: Tz, from: DateTime<Utc>, days: i64) -> Vec<DateTime<Utc>> {
    // Offsets change on whole seconds, so search over whole seconds.
    let start = from.timestamp();
    let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or(from);
    let mut changes = Vec::new();
    for day in 0..days {
        let mut before = start + day * 86_400;
        let mut after = before + 86_400;
        let target = utc_offset(tz, at(after));
        if utc_offset(tz, at(before)) == target {
            continue;
        }
        // Zones change offset at most once a day, so one bisection finds it.
        while after - before > 1 {
            let mid = before + (after - before) / 2;
            if utc_offset(tz, at(mid)) == target {
                after = mid;
            } else {
                before = mid;
            }
        }
        changes.push(at(after));
    }
    changes
}

#[cfg(test)]
mod tests;
