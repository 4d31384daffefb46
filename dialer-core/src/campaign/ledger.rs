//! The campaign's compliance figures as a cache of the database.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use crate::compliance::{AbandonTarget, ComplianceSnapshot, Counts, LiveAnswer};

/// Names one read of the figures: it answers for every write queued before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

/// The figures every node wrote, as last read, plus this runner's own live
/// answers that no read has covered yet.
///
/// The database is the truth: a runner that starts (after a pause, a
/// restart, a crash) reads it before it knows anything, and a read replaces
/// the base wholesale, so another node's calls count from the next read on.
/// Until the first read answers, the figures allow no abandon at all.
#[derive(Debug, Clone)]
pub struct SharedLedger {
    target: AbandonTarget,
    base: Option<(Counts, Counts)>,
    /// The newest read applied.
    applied: Option<ReadId>,
    /// Local live answers, numbered in the order their writes were queued.
    local: VecDeque<(u64, LiveAnswer, DateTime<Utc>)>,
    /// The number the next local answer gets; a read started now is
    /// `ReadId(next)` and covers every answer numbered below it.
    next: u64,
}

impl SharedLedger {
    /// Creates a ledger that knows nothing yet.
    pub fn new(target: AbandonTarget) -> Self {
        SharedLedger {
            target,
            base: None,
            applied: None,
            local: VecDeque::new(),
            next: 0,
        }
    }

    /// Counts one of this runner's live answers, whose write is queued now.
    pub fn record(&mut self, answer: LiveAnswer, at: DateTime<Utc>) {
        self.local.push_back((self.next, answer, at));
        self.next += 1;
    }

    /// Starts a read, queued after every write so far.
    pub fn begin_read(&mut self) -> ReadId {
        // Each read gets its own number even with no answer in between, so
        // an older read that answers late is told apart and ignored.
        self.next += 1;
        ReadId(self.next - 1)
    }

    /// Takes the figures a read found; an older read than one applied is ignored.
    pub fn apply_read(&mut self, read: ReadId, day: Counts, month: Counts) {
        if self.applied.is_some_and(|a| a >= read) {
            return;
        }
        self.applied = Some(read);
        self.base = Some((day, month));
        while self.local.front().is_some_and(|(n, _, _)| *n < read.0) {
            self.local.pop_front();
        }
    }

    /// Returns whether any read has answered yet.
    pub fn is_known(&self) -> bool {
        self.base.is_some()
    }

    /// Returns the figures as of `now`.
    pub fn snapshot(&self, now: DateTime<Utc>) -> ComplianceSnapshot {
        let Some((mut day, mut month)) = self.base else {
            return ComplianceSnapshot::unknown(self.target);
        };
        for (_, answer, at) in &self.local {
            let abandoned = u64::from(*answer == LiveAnswer::Abandoned);
            if *at > now - TimeDelta::hours(24) {
                day.live += 1;
                day.abandoned += abandoned;
            }
            if *at > now - TimeDelta::days(30) {
                month.live += 1;
                month.abandoned += abandoned;
            }
        }
        ComplianceSnapshot {
            target: self.target,
            day,
            month,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 10, 10, 0, 0)
            .single()
            .expect("valid")
    }

    fn counts(live: u64, abandoned: u64) -> Counts {
        Counts { live, abandoned }
    }

    #[test]
    fn nothing_is_allowed_until_the_database_answers() {
        let mut ledger = SharedLedger::new(AbandonTarget::default());
        ledger.record(LiveAnswer::Connected, t0());
        assert!(!ledger.is_known());
        assert_eq!(ledger.snapshot(t0()).headroom(), 0);
    }

    #[test]
    fn a_read_covers_the_answers_queued_before_it_and_no_others() {
        let mut ledger = SharedLedger::new(AbandonTarget::default());
        ledger.record(LiveAnswer::Abandoned, t0());
        let read = ledger.begin_read();
        ledger.record(LiveAnswer::Connected, t0());
        // The database has the abandon (and another node's 98 calls).
        ledger.apply_read(read, counts(99, 1), counts(99, 1));
        let now = ledger.snapshot(t0());
        assert_eq!(
            now.day,
            counts(100, 1),
            "the later answer still counts once"
        );
        assert_eq!(now.month, counts(100, 1));
        // The next read covers the connected call too.
        let read = ledger.begin_read();
        ledger.apply_read(read, counts(100, 1), counts(100, 1));
        assert_eq!(ledger.snapshot(t0()).day, counts(100, 1));
    }

    #[test]
    fn a_late_answer_to_an_older_read_is_ignored() {
        let mut ledger = SharedLedger::new(AbandonTarget::default());
        let old = ledger.begin_read();
        let new = ledger.begin_read();
        ledger.apply_read(new, counts(10, 1), counts(20, 1));
        ledger.apply_read(old, counts(3, 0), counts(3, 0));
        assert_eq!(ledger.snapshot(t0()).day, counts(10, 1));
    }

    #[test]
    fn local_answers_leave_the_day_after_a_day() {
        let mut ledger = SharedLedger::new(AbandonTarget::default());
        let read = ledger.begin_read();
        ledger.apply_read(read, counts(0, 0), counts(0, 0));
        ledger.record(LiveAnswer::Abandoned, t0());
        let later = t0() + TimeDelta::hours(25);
        let snapshot = ledger.snapshot(later);
        assert_eq!(snapshot.day, counts(0, 0));
        assert_eq!(snapshot.month, counts(1, 1));
    }
}
