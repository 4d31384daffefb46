//! Whether a trunk is up, from its OPTIONS pings and registrations: down
//! after a number of failures in a row, up again after a number of
//! successes in a row. Sans-IO: the trunk feeds each outcome in.

/// One trunk's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkHealth {
    up: bool,
    failures: u32,
    successes: u32,
    down_after: u32,
    up_after: u32,
}

impl TrunkHealth {
    /// A trunk that starts up, goes down after `down_after` failures in a
    /// row and comes back after `up_after` successes in a row (each at least 1).
    pub fn new(down_after: u32, up_after: u32) -> Self {
        TrunkHealth {
            up: true,
            failures: 0,
            successes: 0,
            down_after: down_after.max(1),
            up_after: up_after.max(1),
        }
    }

    /// Counts one outcome; returns the new state when it changed.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.up && self.successes >= self.up_after {
                self.up = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.up && self.failures >= self.down_after {
                self.up = false;
                return Some(false);
            }
        }
        None
    }

    /// Returns whether the trunk takes new calls.
    pub fn is_up(&self) -> bool {
        self.up
    }
}

/// Returns whether an answer to OPTIONS shows the trunk working: any
/// answer but a timeout (408) or a server failure (5xx).
pub fn options_answer_is_healthy(status: u16) -> bool {
    status != 408 && !(500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_failures_in_a_row_and_up_after_successes_in_a_row() {
        let mut h = TrunkHealth::new(3, 2);
        assert!(h.is_up());
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None, "a success breaks the run");
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.observe(false), None, "told once");
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None, "a failure breaks the run");
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
        assert!(h.is_up());
    }

    #[test]
    fn thresholds_of_zero_act_as_one() {
        let mut h = TrunkHealth::new(0, 0);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.observe(true), Some(true));
    }

    #[test]
    fn any_answer_but_a_timeout_or_a_server_failure_is_healthy() {
        for status in [200, 401, 403, 404, 405, 407, 488, 603] {
            assert!(options_answer_is_healthy(status), "{status}");
        }
        for status in [408, 500, 503, 504] {
            assert!(!options_answer_is_healthy(status), "{status}");
        }
    }
}
