//! When, if ever, a lead is dialled again after an attempt.
//!
//! A callback the contact asked for takes precedence over everything,
//! attempts left or not. Otherwise an outcome with a delay is retried after
//! it while attempts remain; an outcome without a delay is not retried.
//! After an abandon the delay is at least [`ABANDON_REDIAL_QUIET`] unless the
//! campaign reserves an agent for each call (preview or progressive). Times
//! are wall-clock because they are stored with the lead; the caller then
//! moves them into the contact's calling hours with
//! [`next_open`](crate::hours::next_open).

use chrono::{DateTime, TimeDelta, Utc};

use crate::compliance::ABANDON_REDIAL_QUIET;
use crate::pacer::AgentId;

/// How an attempt that reached no conversation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The line was busy.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// A machine answered and no message was left.
    Machine,
    /// A machine answered and the campaign's message was left on it.
    Voicemail,
    /// A person answered but no agent was connected in time.
    Abandoned,
    /// The call failed in the network.
    Failed,
}

/// A campaign's retry rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts allowed per lead, the first included.
    pub max_attempts: u32,
    /// Delay after a busy line, or `None` to stop.
    pub busy: Option<TimeDelta>,
    /// Delay after no answer, or `None` to stop.
    pub no_answer: Option<TimeDelta>,
    /// Delay after a machine, or `None` to stop.
    pub machine: Option<TimeDelta>,
    /// Delay after a message was left on a machine, or `None` to stop.
    pub voicemail: Option<TimeDelta>,
    /// Delay after an abandon, or `None` to stop.
    pub abandoned: Option<TimeDelta>,
    /// Delay after a failure, or `None` to stop.
    pub failed: Option<TimeDelta>,
    /// Whether every call of the campaign has an agent reserved for it.
    pub reserves_agent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            busy: Some(TimeDelta::minutes(15)),
            no_answer: Some(TimeDelta::hours(2)),
            machine: Some(TimeDelta::hours(4)),
            voicemail: Some(TimeDelta::days(2)),
            abandoned: Some(ABANDON_REDIAL_QUIET),
            failed: Some(TimeDelta::hours(1)),
            reserves_agent: false,
        }
    }
}

impl RetryPolicy {
    /// Returns the configured delay for an outcome.
    pub fn delay(&self, outcome: AttemptOutcome) -> Option<TimeDelta> {
        match outcome {
            AttemptOutcome::Busy => self.busy,
            AttemptOutcome::NoAnswer => self.no_answer,
            AttemptOutcome::Machine => self.machine,
            AttemptOutcome::Voicemail => self.voicemail,
            AttemptOutcome::Abandoned => self.abandoned,
            AttemptOutcome::Failed => self.failed,
        }
    }
}

/// A callback the contact asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callback {
    /// When to call.
    pub at: DateTime<Utc>,
    /// The agent who must make the call, or `None` for anyone.
    pub agent: Option<AgentId>,
}

/// What happens to a lead next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Call back at the agreed time.
    Callback(Callback),
    /// Dial again, not before `at`.
    Retry {
        /// The earliest time to dial.
        at: DateTime<Utc>,
    },
    /// Stop dialling this lead.
    Exhausted,
}

/// Decides what happens to a lead after `attempts` attempts, the last ending in `outcome` at `now`.
pub fn decide_retry(
    policy: &RetryPolicy,
    outcome: AttemptOutcome,
    attempts: u32,
    now: DateTime<Utc>,
    callback: Option<Callback>,
) -> RetryDecision {
    if let Some(callback) = callback {
        return RetryDecision::Callback(callback);
    }
    if attempts >= policy.max_attempts {
        return RetryDecision::Exhausted;
    }
    let Some(delay) = policy.delay(outcome) else {
        return RetryDecision::Exhausted;
    };
    let delay = if outcome == AttemptOutcome::Abandoned && !policy.reserves_agent {
        delay.max(ABANDON_REDIAL_QUIET)
    } else {
        delay
    };
    RetryDecision::Retry { at: now + delay }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 6, 14, 0, 0).unwrap()
    }

    #[test]
    fn each_outcome_waits_its_own_delay() {
        let policy = RetryPolicy::default();
        let busy = decide_retry(&policy, AttemptOutcome::Busy, 1, now(), None);
        assert_eq!(
            busy,
            RetryDecision::Retry {
                at: now() + TimeDelta::minutes(15)
            }
        );
        let machine = decide_retry(&policy, AttemptOutcome::Machine, 2, now(), None);
        assert_eq!(
            machine,
            RetryDecision::Retry {
                at: now() + TimeDelta::hours(4)
            }
        );
    }

    #[test]
    fn a_message_left_waits_the_voicemail_delay_not_the_machine_one() {
        let policy = RetryPolicy {
            voicemail: Some(TimeDelta::days(3)),
            ..RetryPolicy::default()
        };
        let left = decide_retry(&policy, AttemptOutcome::Voicemail, 1, now(), None);
        assert_eq!(
            left,
            RetryDecision::Retry {
                at: now() + TimeDelta::days(3)
            }
        );
        let policy = RetryPolicy {
            voicemail: None,
            ..policy
        };
        let left = decide_retry(&policy, AttemptOutcome::Voicemail, 1, now(), None);
        assert_eq!(left, RetryDecision::Exhausted);
    }

    #[test]
    fn last_attempt_exhausts_the_lead() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let decision = decide_retry(&policy, AttemptOutcome::NoAnswer, 3, now(), None);
        assert_eq!(decision, RetryDecision::Exhausted);
    }

    #[test]
    fn outcome_without_delay_is_not_retried() {
        let policy = RetryPolicy {
            failed: None,
            ..RetryPolicy::default()
        };
        let decision = decide_retry(&policy, AttemptOutcome::Failed, 1, now(), None);
        assert_eq!(decision, RetryDecision::Exhausted);
    }

    #[test]
    fn abandon_rests_72_hours_unless_an_agent_is_reserved() {
        let short = Some(TimeDelta::hours(1));
        let policy = RetryPolicy {
            abandoned: short,
            ..RetryPolicy::default()
        };
        let unreserved = decide_retry(&policy, AttemptOutcome::Abandoned, 1, now(), None);
        assert_eq!(
            unreserved,
            RetryDecision::Retry {
                at: now() + TimeDelta::hours(72)
            }
        );
        let policy = RetryPolicy {
            reserves_agent: true,
            ..policy
        };
        let reserved = decide_retry(&policy, AttemptOutcome::Abandoned, 1, now(), None);
        assert_eq!(
            reserved,
            RetryDecision::Retry {
                at: now() + TimeDelta::hours(1)
            }
        );
    }

    #[test]
    fn callback_wins_even_when_attempts_are_used_up() {
        let policy = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        for agent in [None, Some(AgentId(4))] {
            let callback = Callback {
                at: now() + TimeDelta::days(1),
                agent,
            };
            let decision = decide_retry(&policy, AttemptOutcome::Busy, 1, now(), Some(callback));
            assert_eq!(decision, RetryDecision::Callback(callback));
        }
    }
}
