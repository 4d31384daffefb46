//! The login throttle: repeated failures slow further attempts down.
//!
//! A sans-IO core: the current time is passed in. Failures are counted per
//! username and per client IP; after `free_failures` within `window`, each
//! further attempt must wait `base_delay × 2^(extra failures)`, capped at
//! `max_delay`. A success clears the username's count, not the IP's, so a
//! valid login cannot launder an address that is guessing other accounts.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

/// How forgiving the throttle is.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// How long a failure is remembered.
    pub window: Duration,
    /// The first delay once throttling starts.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// How many keys are kept at most before old ones are dropped.
    pub max_keys: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            window: Duration::minutes(15),
            base_delay: Duration::seconds(1),
            max_delay: Duration::minutes(15),
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: DateTime<Utc>,
}

/// Failed-login bookkeeping.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    records: BTreeMap<String, Record>,
}

impl LoginThrottle {
    /// Creates an empty throttle.
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            records: BTreeMap::new(),
        }
    }

    /// Returns how long the caller must still wait before trying, if at all.
    pub fn check(&self, username: &str, ip: &str, now: DateTime<Utc>) -> Option<Duration> {
        [user_key(username), ip_key(ip)]
            .iter()
            .filter_map(|k| self.wait_for(k, now))
            .max()
    }

    /// Records a failed attempt.
    pub fn fail(&mut self, username: &str, ip: &str, now: DateTime<Utc>) {
        self.prune(now);
        for key in [user_key(username), ip_key(ip)] {
            let window = self.policy.window;
            let r = self.records.entry(key).or_insert(Record {
                failures: 0,
                last_failure: now,
            });
            if now - r.last_failure > window {
                r.failures = 0;
            }
            r.failures = r.failures.saturating_add(1);
            r.last_failure = now;
        }
    }

    /// Records a successful login, which clears the username's failures.
    pub fn succeed(&mut self, username: &str) {
        self.records.remove(&user_key(username));
    }

    /// Returns how many failures are remembered for a username.
    pub fn failures_of(&self, username: &str) -> u32 {
        self.records
            .get(&user_key(username))
            .map_or(0, |r| r.failures)
    }

    fn wait_for(&self, key: &str, now: DateTime<Utc>) -> Option<Duration> {
        let r = self.records.get(key)?;
        if now - r.last_failure > self.policy.window || r.failures < self.policy.free_failures {
            return None;
        }
        let extra = r.failures - self.policy.free_failures;
        let factor = 1i32.checked_shl(extra.min(20)).unwrap_or(i32::MAX);
        let delay = (self.policy.base_delay * factor).min(self.policy.max_delay);
        let until = r.last_failure + delay;
        (until > now).then(|| until - now)
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        if self.records.len() < self.policy.max_keys {
            return;
        }
        let window = self.policy.window;
        self.records.retain(|_, r| now - r.last_failure <= window);
        // Still full of fresh keys: drop the oldest half rather than grow.
        if self.records.len() >= self.policy.max_keys {
            let mut times: Vec<_> = self.records.values().map(|r| r.last_failure).collect();
            times.sort();
            let cutoff = times[times.len() / 2];
            self.records.retain(|_, r| r.last_failure > cutoff);
        }
    }
}

fn user_key(username: &str) -> String {
    format!("u:{}", username.to_lowercase())
}

fn ip_key(ip: &str) -> String {
    format!("i:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn five_failures_are_free_then_delays_double() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        let now = t0();
        for _ in 0..5 {
            assert_eq!(t.check("ann", "1.2.3.4", now), None);
            t.fail("ann", "1.2.3.4", now);
        }
        assert_eq!(t.check("ann", "9.9.9.9", now), Some(Duration::seconds(1)));
        t.fail("ann", "9.9.9.9", now);
        assert_eq!(t.check("ann", "9.9.9.9", now), Some(Duration::seconds(2)));
        assert_eq!(t.check("ann", "9.9.9.9", now + Duration::seconds(2)), None);
    }

    #[test]
    fn an_address_guessing_many_users_is_slowed() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for i in 0..6 {
            t.fail(&format!("user{i}"), "6.6.6.6", t0());
        }
        assert!(t.check("fresh", "6.6.6.6", t0()).is_some());
        assert!(t.check("fresh", "7.7.7.7", t0()).is_none());
    }

    #[test]
    fn success_clears_the_user_and_the_window_forgets() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for _ in 0..7 {
            t.fail("Ann", "1.1.1.1", t0());
        }
        assert_eq!(t.failures_of("ann"), 7);
        t.succeed("ann");
        assert_eq!(t.failures_of("ann"), 0);
        let later = t0() + Duration::minutes(16);
        assert!(t.check("x", "1.1.1.1", later).is_none());
    }

    #[test]
    fn delay_is_capped_and_memory_is_bounded() {
        let policy = ThrottlePolicy {
            max_keys: 100,
            ..ThrottlePolicy::default()
        };
        let mut t = LoginThrottle::new(policy);
        for _ in 0..60 {
            t.fail("ann", "1.1.1.1", t0());
        }
        assert_eq!(t.check("ann", "2.2.2.2", t0()), Some(Duration::minutes(15)));
        for i in 0..1000 {
            t.fail(
                &format!("u{i}"),
                &format!("ip{i}"),
                t0() + Duration::seconds(i),
            );
        }
        assert!(t.records.len() <= 100);
    }
}
