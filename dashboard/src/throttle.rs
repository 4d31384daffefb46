//! The login throttle: repeated failures slow further attempts down, on
//! every node alike.
//!
//! [`ThrottlePolicy`] is the sans-IO core: given the failures remembered
//! under a key and the current time, it says how long a caller must wait.
//! Failures are counted per username and per client IP; after
//! `free_failures` in a row (each within `window` of the one before), each
//! further attempt must wait `base_delay × 2^(extra failures)`, capped at
//! `max_delay`. A success clears the username's count, not the IP's, so a
//! valid login cannot launder an address that is guessing other accounts.
//!
//! [`LoginThrottle`] is its shell: the counts are kept in the database
//! (`crm::store::login_failures`), so every node sees the same ones and a
//! restart keeps them, under keyed hashes rather than the names.

use chrono::{DateTime, Duration, Utc};
use crm::store::{FailureKey, LoginFailures, LoginSecret};
use crm::{Store, StoreError};
use tokio::sync::OnceCell;

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
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            window: Duration::minutes(15),
            base_delay: Duration::seconds(1),
            max_delay: Duration::minutes(15),
        }
    }
}

impl ThrottlePolicy {
    /// Returns how long a caller whose key has these failures must still
    /// wait before trying, if at all.
    pub fn wait(&self, failures: &LoginFailures, now: DateTime<Utc>) -> Option<Duration> {
        if now - failures.last > self.window || failures.count < self.free_failures {
            return None;
        }
        let extra = failures.count - self.free_failures;
        let factor = 1i32.checked_shl(extra.min(20)).unwrap_or(i32::MAX);
        let delay = (self.base_delay * factor).min(self.max_delay);
        let until = failures.last + delay;
        (until > now).then(|| until - now)
    }

    /// Returns the longest wait any of the keys asks for.
    pub fn longest_wait(&self, keys: &[LoginFailures], now: DateTime<Utc>) -> Option<Duration> {
        keys.iter().filter_map(|f| self.wait(f, now)).max()
    }

    /// Returns the time before which failures are forgotten: a failure
    /// after a key's last one was before it counts from one again.
    pub fn forget_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }
}

/// Returns a wait as the whole seconds of a `Retry-After`, rounded up: a
/// client that waits that long is not turned away again.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let micros = wait.num_microseconds().unwrap_or(i64::MAX).max(0);
    (micros as u64).div_ceil(1_000_000).max(1)
}

/// Failed-login bookkeeping over the shared database.
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    store: Store,
    /// Read from the database on first use; the same on every node.
    secret: OnceCell<LoginSecret>,
}

impl LoginThrottle {
    /// Creates a throttle over the store's counts.
    pub fn new(policy: ThrottlePolicy, store: Store) -> Self {
        LoginThrottle {
            policy,
            store,
            secret: OnceCell::new(),
        }
    }

    /// Returns how long the caller must still wait before trying, if at all.
    pub async fn check(
        &self,
        username: &str,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let (user, address) = self.keys(username, ip, now).await?;
        let failures = self.store.login_failures(&[&user, &address]).await?;
        Ok(self.policy.longest_wait(&failures, now))
    }

    /// Records a failed attempt; returns how many failures in a row the
    /// username now has, counted on every node.
    pub async fn fail(
        &self,
        username: &str,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let (user, address) = self.keys(username, ip, now).await?;
        let after = self
            .store
            .record_login_failure(&[&user, &address], now, self.policy.forget_before(now))
            .await?;
        Ok(after.first().map_or(0, |f| f.count))
    }

    /// Records a successful login, which clears the username's failures.
    pub async fn succeed(&self, username: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let user = self.secret(now).await?.username(username);
        self.store.clear_login_failures(&user).await
    }

    /// Deletes the counts the window has forgotten; returns how many.
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store
            .purge_login_failures(self.policy.forget_before(now))
            .await
    }

    async fn keys(
        &self,
        username: &str,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<(FailureKey, FailureKey), StoreError> {
        let secret = self.secret(now).await?;
        Ok((secret.username(username), secret.address(ip)))
    }

    async fn secret(&self, now: DateTime<Utc>) -> Result<&LoginSecret, StoreError> {
        self.secret
            .get_or_try_init(|| self.store.login_secret(now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use crm::testing::TestDb;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid")
    }

    fn failures(count: u32, last: DateTime<Utc>) -> LoginFailures {
        LoginFailures { count, last }
    }

    #[test]
    fn five_failures_are_free_then_delays_double() {
        let p = ThrottlePolicy::default();
        let now = t0();
        for n in 0..5 {
            assert_eq!(p.wait(&failures(n, now), now), None);
        }
        assert_eq!(p.wait(&failures(5, now), now), Some(Duration::seconds(1)));
        assert_eq!(p.wait(&failures(6, now), now), Some(Duration::seconds(2)));
        assert_eq!(
            p.wait(&failures(6, now), now + Duration::milliseconds(500)),
            Some(Duration::milliseconds(1500)),
            "measured from the last failure"
        );
        assert_eq!(p.wait(&failures(6, now), now + Duration::seconds(2)), None);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::seconds(2)), 2);
        // Times kept to the microsecond leave a wait a hair short or long.
        assert_eq!(retry_after_secs(Duration::nanoseconds(1_999_999_500)), 2);
        assert_eq!(retry_after_secs(Duration::microseconds(2_000_001)), 3);
        assert_eq!(retry_after_secs(Duration::zero()), 1, "never 0");
    }

    #[test]
    fn the_longest_wait_of_the_keys_holds() {
        let p = ThrottlePolicy::default();
        let keys = [failures(2, t0()), failures(7, t0()), failures(6, t0())];
        assert_eq!(p.longest_wait(&keys, t0()), Some(Duration::seconds(4)));
        assert_eq!(p.longest_wait(&[], t0()), None);
    }

    #[test]
    fn delay_is_capped_and_the_window_forgets() {
        let p = ThrottlePolicy::default();
        assert_eq!(
            p.wait(&failures(60, t0()), t0()),
            Some(Duration::minutes(15))
        );
        assert_eq!(
            p.wait(&failures(u32::MAX, t0()), t0()),
            Some(Duration::minutes(15)),
            "no overflow however many"
        );
        let later = t0() + Duration::minutes(16);
        assert_eq!(p.wait(&failures(60, t0()), later), None);
        assert_eq!(p.forget_before(later), t0() + Duration::minutes(1));
    }

    crm::on_both_backends!(
        an_address_guessing_many_users_is_slowed,
        success_clears_the_user_but_not_the_address,
        the_purge_keeps_what_the_window_remembers,
    );

    async fn an_address_guessing_many_users_is_slowed(db: TestDb) -> TestDb {
        let t = LoginThrottle::new(ThrottlePolicy::default(), db.store.clone());
        for i in 0..6 {
            t.fail(&format!("user{i}"), "6.6.6.6", t0())
                .await
                .expect("fail");
        }
        let wait = t.check("fresh", "6.6.6.6", t0()).await.expect("check");
        assert_eq!(wait, Some(Duration::seconds(2)));
        assert_eq!(
            t.check("fresh", "7.7.7.7", t0()).await.expect("check"),
            None
        );
        db
    }

    async fn success_clears_the_user_but_not_the_address(db: TestDb) -> TestDb {
        let t = LoginThrottle::new(ThrottlePolicy::default(), db.store.clone());
        let mut counts = Vec::new();
        for _ in 0..7 {
            counts.push(t.fail("Ann", "1.1.1.1", t0()).await.expect("fail"));
        }
        assert_eq!(counts, [1, 2, 3, 4, 5, 6, 7]);
        // Another node, another throttle: the same counts.
        let other = LoginThrottle::new(ThrottlePolicy::default(), db.store.clone());
        assert_eq!(
            other.check("ann", "9.9.9.9", t0()).await.expect("check"),
            Some(Duration::seconds(4)),
            "usernames are counted whatever their case"
        );
        other.succeed("ann", t0()).await.expect("succeed");
        assert_eq!(t.check("ann", "9.9.9.9", t0()).await.expect("check"), None);
        assert_eq!(
            t.check("bob", "1.1.1.1", t0()).await.expect("check"),
            Some(Duration::seconds(4)),
            "the address keeps its failures"
        );
        assert_eq!(t.fail("ann", "2.2.2.2", t0()).await.expect("fail"), 1);
        db
    }

    async fn the_purge_keeps_what_the_window_remembers(db: TestDb) -> TestDb {
        let t = LoginThrottle::new(ThrottlePolicy::default(), db.store.clone());
        t.fail("old", "3.3.3.3", t0()).await.expect("fail");
        let recent = t0() + Duration::minutes(10);
        t.fail("new", "4.4.4.4", recent).await.expect("fail");
        let purged = t.purge(t0() + Duration::minutes(20)).await.expect("purge");
        assert_eq!(purged, 2, "the old username and address");
        assert_eq!(db.store.login_failure_rows().await.expect("rows"), 2);
        assert_eq!(
            t.fail("new", "4.4.4.4", t0() + Duration::minutes(20))
                .await
                .expect("fail"),
            2,
            "the recent count is kept"
        );
        db
    }
}
