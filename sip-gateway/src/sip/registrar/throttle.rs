//! Counts failed authentications per source IP and per username, so a scan stops costing us.
//!
//! A key with [`MAX_FAILURES_PER_USER`] (or, for an address, [`MAX_FAILURES_PER_ADDRESS`])
//! failures within the last [`FAILURE_WINDOW`] is answered 403 with no challenge and no
//! password check until its oldest counted failure is older than the window; requests refused
//! that way are not counted, so a steady scan gets that many guesses per window and no more.
//! Success resets nothing: an attacker holding one account must not clear the count of the
//! address it shares with its guesses at others.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures for one username, within the window, that stop further checks for it.
pub const MAX_FAILURES_PER_USER: usize = 5;

/// Failures from one source IP, within the window, that stop further checks from it. Higher
/// than per user because an office's phones share one public address behind NAT.
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;

/// How long a failure counts.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Most keys of each kind remembered; past it the key idle longest is forgotten first.
pub const MAX_TRACKED_KEYS: usize = 10_000;

/// Failure counts by source IP and by username.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    by_address: FailureLog<IpAddr>,
    by_user: FailureLog<String>,
}

impl Throttle {
    /// Tells whether requests from `ip` or for `username` get 403 unheard.
    pub fn blocked(&self, ip: IpAddr, username: &str, now: Instant) -> bool {
        self.by_address
            .count(&ip, now)
            .is_some_and(|n| n >= MAX_FAILURES_PER_ADDRESS)
            || self
                .by_user
                .count(username, now)
                .is_some_and(|n| n >= MAX_FAILURES_PER_USER)
    }

    /// Counts one failed authentication.
    pub fn record(&mut self, ip: IpAddr, username: &str, now: Instant) {
        self.by_address.record(ip, now, MAX_FAILURES_PER_ADDRESS);
        self.by_user
            .record(username.to_string(), now, MAX_FAILURES_PER_USER);
    }

    /// Forgets failures older than the window.
    pub fn prune(&mut self, now: Instant) {
        self.by_address.prune(now);
        self.by_user.prune(now);
    }

    /// Returns when the oldest counted failure leaves the window.
    pub fn next_expiry(&self) -> Option<Instant> {
        [self.by_address.next_expiry(), self.by_user.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }
}

#[derive(Debug)]
struct FailureLog<K> {
    entries: BTreeMap<K, VecDeque<Instant>>,
}

impl<K> Default for FailureLog<K> {
    fn default() -> Self {
        FailureLog {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> FailureLog<K> {
    fn count<Q>(&self, key: &Q, now: Instant) -> Option<usize>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let times = self.entries.get(key)?;
        Some(times.iter().filter(|at| counts(**at, now)).count())
    }

    fn record(&mut self, key: K, now: Instant, limit: usize) {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_TRACKED_KEYS {
            self.prune(now);
            if self.entries.len() >= MAX_TRACKED_KEYS {
                self.forget_idlest();
            }
        }
        let times = self.entries.entry(key).or_default();
        times.retain(|at| counts(*at, now));
        times.push_back(now);
        while times.len() > limit {
            times.pop_front();
        }
    }

    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, times| {
            times.retain(|at| counts(*at, now));
            !times.is_empty()
        });
    }

    fn forget_idlest(&mut self) {
        let idlest = self
            .entries
            .iter()
            .min_by_key(|(_, times)| times.back().copied())
            .map(|(key, _)| key.clone());
        if let Some(key) = idlest {
            self.entries.remove(&key);
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|times| times.front())
            .filter_map(|at| at.checked_add(FAILURE_WINDOW))
            .min()
    }
}

/// Tells whether a failure at `at` still counts at `now`.
fn counts(at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(at) < FAILURE_WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
    }

    #[test]
    fn a_username_is_blocked_for_the_window_after_its_failures() {
        let t0 = Instant::now();
        let mut throttle = Throttle::default();
        for i in 0..MAX_FAILURES_PER_USER {
            assert!(!throttle.blocked(ip(i as u8), "alice", t0));
            throttle.record(ip(i as u8), "alice", t0 + Duration::from_secs(i as u64));
        }
        let last = t0 + Duration::from_secs(MAX_FAILURES_PER_USER as u64 - 1);
        assert!(throttle.blocked(ip(200), "alice", last));
        assert!(!throttle.blocked(ip(200), "bob", last));
        // The first failure leaves the window one window after it happened.
        assert!(throttle.blocked(
            ip(200),
            "alice",
            t0 + FAILURE_WINDOW - Duration::from_millis(1)
        ));
        assert!(!throttle.blocked(ip(200), "alice", t0 + FAILURE_WINDOW));
        assert_eq!(throttle.next_expiry(), Some(t0 + FAILURE_WINDOW));
        throttle.prune(last + FAILURE_WINDOW);
        assert_eq!(throttle.next_expiry(), None);
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_whatever_the_usernames() {
        let t0 = Instant::now();
        let mut throttle = Throttle::default();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            assert!(!throttle.blocked(ip(1), &format!("user{i}"), t0));
            throttle.record(ip(1), &format!("user{i}"), t0);
        }
        assert!(throttle.blocked(ip(1), "someone-new", t0));
        assert!(!throttle.blocked(ip(2), "someone-new", t0));
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_keys() {
        let t0 = Instant::now();
        let mut log = FailureLog::<String>::default();
        for i in 0..MAX_TRACKED_KEYS + 50 {
            log.record(format!("u{i}"), t0 + Duration::from_millis(i as u64), 3);
        }
        assert_eq!(log.entries.len(), MAX_TRACKED_KEYS);
        assert!(log.count("u0", t0).is_none(), "the idlest key went first");
        let newest = format!("u{}", MAX_TRACKED_KEYS + 49);
        assert_eq!(
            log.count(newest.as_str(), t0 + Duration::from_secs(60)),
            Some(1)
        );
        for _ in 0..10 {
            log.record("busy".into(), t0 + Duration::from_secs(61), 3);
        }
        assert_eq!(log.entries["busy"].len(), 3);
    }
}
