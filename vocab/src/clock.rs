//! The wall clock, injectable so tests can expire sessions without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Tells the current UTC time.
pub trait Clock: Send + Sync {
    /// Returns the current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// Creates a clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A clock set to a chosen time that then runs at the system's pace, jumps
/// when told to, and can be made to stand still: for end-to-end tests that
/// need "09:00 in London on a Friday" while timers still fire.
#[derive(Debug)]
pub struct SetClock(Mutex<SetState>);

#[derive(Debug)]
struct SetState {
    /// The time read at `since`.
    base: DateTime<Utc>,
    /// When the clock last started running; `None` while it stands still.
    since: Option<std::time::Instant>,
}

impl SetClock {
    /// Creates a running clock that reads `start` now.
    pub fn new(start: DateTime<Utc>) -> Self {
        SetClock(Mutex::new(SetState {
            base: start,
            since: Some(std::time::Instant::now()),
        }))
    }

    /// Moves the clock forward at once.
    pub fn advance(&self, by: Duration) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.base += by;
    }

    /// Stops the clock where it is; only [`SetClock::advance`] moves it then.
    pub fn stand_still(&self) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.base = state.read();
        state.since = None;
    }
}

impl SetState {
    fn read(&self) -> DateTime<Utc> {
        let ran = self
            .since
            .map(|s| Duration::from_std(s.elapsed()).unwrap_or(Duration::zero()))
            .unwrap_or(Duration::zero());
        self.base + ran
    }
}

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).read()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_set_clock_starts_where_set_runs_and_jumps() {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let clock = SetClock::new(start);
        let first = clock.now();
        assert!(first >= start && first - start < Duration::seconds(1));
        clock.advance(Duration::hours(2));
        assert!(clock.now() - start >= Duration::hours(2));
        assert!(clock.now() >= first);
        clock.stand_still();
        let still = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now(), still);
        clock.advance(Duration::seconds(1));
        assert_eq!(clock.now(), still + Duration::seconds(1));
    }
}
