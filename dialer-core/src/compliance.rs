//! Abandon-rate bookkeeping for one campaign, and the 72-hour redial rule.
//!
//! A live-answered call either reaches an agent within [`ABANDON_GRACE`]
//! (connected) or is abandoned. The ledger reports abandons divided by
//! live-answered calls (connected plus abandoned) over the rolling 24 hours
//! (Ofcom) and the rolling 30 days (FTC TSR).
//!
//! Times are wall-clock `DateTime<Utc>`, not `Instant`: both windows outlive a
//! process, so the shell rebuilds the ledger at start-up from the timestamps
//! stored with each interaction, and an `Instant` cannot be stored.
//!
//! Memory is bounded by counting into buckets: one per minute for the 24-hour
//! window (at most 1,441) and one per hour for the 30-day window (at most 721).
//! A window keeps whole buckets, so an event is forgotten only once its whole
//! bucket is older than the window: the window spans between its nominal
//! length and one bucket more, which errs towards remembering abandons.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// How long a live-answered call may wait for an agent before it is abandoned.
pub const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// How long an abandoned number rests before it may be dialled without an agent reserved.
pub const ABANDON_REDIAL_QUIET: TimeDelta = TimeDelta::hours(72);

/// The highest abandon rate a campaign accepts, in basis points of live-answered calls.
///
/// Basis points keep the headroom arithmetic exact; the default is 3%.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbandonTarget {
    basis_points: u16,
}

impl AbandonTarget {
    /// Builds a target from basis points (300 is 3%), refusing 100% or more.
    pub const fn from_basis_points(basis_points: u16) -> Option<Self> {
        if basis_points < 10_000 {
            Some(Self { basis_points })
        } else {
            None
        }
    }

    /// Returns the target in basis points.
    pub const fn basis_points(self) -> u16 {
        self.basis_points
    }

    /// Returns the target as a fraction in [0, 1).
    pub fn fraction(self) -> f64 {
        f64::from(self.basis_points) / 10_000.0
    }
}

impl Default for AbandonTarget {
    fn default() -> Self {
        Self { basis_points: 300 }
    }
}

/// How a live-answered call ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiveAnswer {
    /// An agent was connected within the grace period.
    Connected,
    /// No agent was connected within the grace period.
    Abandoned,
}

/// One of the two rolling windows the regulators measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// The rolling 24 hours (Ofcom).
    Day,
    /// The rolling 30 days (FTC TSR).
    Month,
}

/// Live-answered and abandoned counts within one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Live-answered calls, abandoned ones included.
    pub live: u64,
    /// Abandoned calls.
    pub abandoned: u64,
}

impl Counts {
    /// Returns abandons over live-answered calls, 0 when nothing was answered.
    pub fn rate(self) -> f64 {
        if self.live == 0 {
            0.0
        } else {
            self.abandoned as f64 / self.live as f64
        }
    }

    /// Returns how many more abandons keep this window within the target.
    pub fn headroom(self, target: AbandonTarget) -> u64 {
        // Each further abandon is also a live answer: (a + k) / (l + k) <= t
        // gives k <= (t l - a) / (1 - t), in basis points to stay exact.
        let bp = u128::from(target.basis_points);
        let allowed = bp * u128::from(self.live);
        let used = 10_000 * u128::from(self.abandoned);
        let k = allowed.saturating_sub(used) / (10_000 - bp);
        u64::try_from(k).unwrap_or(u64::MAX)
    }
}

/// The figures a pacer and a dashboard need at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ComplianceSnapshot {
    /// The campaign's target.
    pub target: AbandonTarget,
    /// Counts over the rolling 24 hours.
    pub day: Counts,
    /// Counts over the rolling 30 days.
    pub month: Counts,
}

impl ComplianceSnapshot {
    /// Returns a snapshot that allows no abandons, for when no ledger has been read yet.
    pub fn unknown(target: AbandonTarget) -> Self {
        Self {
            target,
            day: Counts::default(),
            month: Counts::default(),
        }
    }

    /// Returns the higher of the two rolling rates.
    pub fn worst_rate(&self) -> f64 {
        self.day.rate().max(self.month.rate())
    }

    /// Returns how many more abandons keep both windows within the target.
    pub fn headroom(&self) -> u64 {
        self.day
            .headroom(self.target)
            .min(self.month.headroom(self.target))
    }
}

/// The per-campaign record of live answers and abandons.
#[derive(Clone, Debug)]
pub struct ComplianceLedger {
    target: AbandonTarget,
    day: Tier,
    month: Tier,
}

impl ComplianceLedger {
    /// Creates an empty ledger for a campaign with the given target.
    pub fn new(target: AbandonTarget) -> Self {
        Self {
            target,
            day: Tier::new(60, 24 * 60),
            month: Tier::new(3600, 30 * 24),
        }
    }

    /// Returns the campaign's target.
    pub fn target(&self) -> AbandonTarget {
        self.target
    }

    /// Records one live-answered call at the time it was answered.
    pub fn record(&mut self, answer: LiveAnswer, at: DateTime<Utc>) {
        self.day.record(answer, at);
        self.month.record(answer, at);
    }

    /// Forgets buckets that have left both windows as of `now`.
    ///
    /// Queries at times earlier than the latest `now` seen here may then
    /// miss events; callers advance time monotonically.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.day.prune(now);
        self.month.prune(now);
    }

    /// Returns the counts within a window ending at `now`.
    pub fn counts(&self, window: Window, now: DateTime<Utc>) -> Counts {
        match window {
            Window::Day => self.day.counts(now),
            Window::Month => self.month.counts(now),
        }
    }

    /// Returns the abandon rate within a window ending at `now`, in [0, 1].
    pub fn rate(&self, window: Window, now: DateTime<Utc>) -> f64 {
        self.counts(window, now).rate()
    }

    /// Returns how many more abandons are allowed now under the target in both windows.
    pub fn headroom(&self, now: DateTime<Utc>) -> u64 {
        self.snapshot(now).headroom()
    }

    /// Returns both windows' counts as of `now`.
    pub fn snapshot(&self, now: DateTime<Utc>) -> ComplianceSnapshot {
        ComplianceSnapshot {
            target: self.target,
            day: self.day.counts(now),
            month: self.month.counts(now),
        }
    }
}

/// Tells whether a number may be dialled now under the 72-hour abandon rule.
///
/// A number abandoned less than 72 hours ago may only be dialled with an
/// agent reserved for the call (preview or progressive dialling).
pub fn may_redial_after_abandon(
    last_abandon: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    agent_reserved: bool,
) -> bool {
    match last_abandon {
        None => true,
        Some(_) if agent_reserved => true,
        Some(at) => now >= at + ABANDON_REDIAL_QUIET,
    }
}

/// Counts per bucket for one window length.
#[derive(Clone, Debug)]
struct Tier {
    width_secs: i64,
    span_buckets: i64,
    buckets: BTreeMap<i64, Counts>,
}

impl Tier {
    fn new(width_secs: i64, span_buckets: i64) -> Self {
        Self {
            width_secs,
            span_buckets,
            buckets: BTreeMap::new(),
        }
    }

    fn index(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.width_secs)
    }

    fn first_kept(&self, now: DateTime<Utc>) -> i64 {
        self.index(now) - self.span_buckets
    }

    fn record(&mut self, answer: LiveAnswer, at: DateTime<Utc>) {
        let counts = self.buckets.entry(self.index(at)).or_default();
        counts.live += 1;
        if answer == LiveAnswer::Abandoned {
            counts.abandoned += 1;
        }
        self.prune(at);
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        let first = self.first_kept(now);
        // A late record can sit below the newest bucket; prune relative to
        // the newest one so memory stays bounded whatever the order.
        let newest = self.buckets.keys().next_back().copied().unwrap_or(first);
        let first = first.max(newest - self.span_buckets);
        self.buckets = self.buckets.split_off(&first);
    }

    fn counts(&self, now: DateTime<Utc>) -> Counts {
        self.buckets
            .range(self.first_kept(now)..)
            .fold(Counts::default(), |sum, (_, c)| Counts {
                live: sum.live + c.live,
                abandoned: sum.abandoned + c.abandoned,
            })
    }
}

#[cfg(test)]
mod tests;
