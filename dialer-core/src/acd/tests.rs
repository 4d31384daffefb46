//! The distributor's choices on a virtual clock.

use std::time::{Duration, Instant};

use super::*;

const SALES: QueueId = QueueId(1);
const SUPPORT: QueueId = QueueId(2);

fn waiting(call: u32, queue: QueueId, since: Instant) -> Waiting<u32> {
    Waiting {
        call,
        queue,
        since,
        priority: 0,
        preferred: None,
        prefer_until: None,
        overflow_at: None,
    }
}

fn offers(acd: &mut Acd<u32>) -> Vec<(u32, u64)> {
    std::iter::from_fn(|| acd.poll_offer())
        .map(|o| (o.call, o.agent.0))
        .collect()
}

#[test]
fn a_call_goes_to_the_best_skilled_free_agent_then_the_longest_idle() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.agent_free(AgentId(1), [(SALES, 5)], t);
    acd.agent_free(AgentId(2), [(SALES, 9)], t + Duration::from_secs(5));
    acd.agent_free(AgentId(3), [(SALES, 9)], t + Duration::from_secs(2));
    assert!(offers(&mut acd).is_empty(), "no call, no offer");
    acd.call_waiting(waiting(10, SALES, t), t + Duration::from_secs(6));
    // Agents 2 and 3 share the best skill; 3 has been idle longer.
    assert_eq!(offers(&mut acd), vec![(10, 3)]);
    acd.taken(10);
    acd.call_waiting(waiting(11, SALES, t), t + Duration::from_secs(7));
    assert_eq!(offers(&mut acd), vec![(11, 2)]);
    acd.taken(11);
    acd.call_waiting(waiting(12, SALES, t), t + Duration::from_secs(8));
    assert_eq!(
        offers(&mut acd),
        vec![(12, 1)],
        "the less skilled when no one better is free"
    );
}

#[test]
fn an_agent_only_gets_calls_of_their_queues() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.agent_free(AgentId(1), [(SUPPORT, 5)], t);
    acd.call_waiting(waiting(10, SALES, t), t);
    assert!(offers(&mut acd).is_empty());
    assert_eq!(acd.waiting_in(SALES), vec![(10, t)]);
    acd.agent_free(AgentId(2), [(SALES, 1), (SUPPORT, 1)], t);
    assert_eq!(offers(&mut acd), vec![(10, 2)]);
}

#[test]
fn a_free_agent_takes_the_higher_priority_queue_then_the_oldest_call() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut old_sales = waiting(10, SALES, t);
    old_sales.priority = 0;
    let mut support = waiting(11, SUPPORT, t + Duration::from_secs(30));
    support.priority = 5;
    let newer_sales = waiting(12, SALES, t + Duration::from_secs(10));
    acd.call_waiting(newer_sales, t);
    acd.call_waiting(old_sales, t);
    acd.call_waiting(support, t);
    let both = [(SALES, 5), (SUPPORT, 5)];
    acd.agent_free(AgentId(1), both, t + Duration::from_secs(40));
    assert_eq!(offers(&mut acd), vec![(11, 1)], "priority first");
    acd.taken(11);
    acd.agent_free(AgentId(2), both, t + Duration::from_secs(41));
    assert_eq!(offers(&mut acd), vec![(10, 2)], "then the oldest");
}

#[test]
fn an_offered_agent_gets_no_second_call_and_a_declined_call_waits_again() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.agent_free(AgentId(1), [(SALES, 5)], t);
    acd.call_waiting(waiting(10, SALES, t), t);
    acd.call_waiting(waiting(11, SALES, t + Duration::from_secs(1)), t);
    assert_eq!(offers(&mut acd), vec![(10, 1)]);
    // The outbound dialler had the agent: the call waits again, first in line.
    acd.declined(10, t + Duration::from_secs(2));
    assert!(offers(&mut acd).is_empty());
    assert_eq!(acd.waiting_in(SALES).len(), 2);
    acd.agent_free(AgentId(2), [(SALES, 1)], t + Duration::from_secs(3));
    assert_eq!(offers(&mut acd), vec![(10, 2)]);
}

#[test]
fn a_return_caller_waits_for_their_agent_a_while_then_for_anyone() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.agent_free(AgentId(1), [(SALES, 9)], t);
    let mut call = waiting(10, SALES, t);
    call.preferred = Some(AgentId(2));
    call.prefer_until = Some(t + Duration::from_secs(5));
    acd.call_waiting(call, t);
    assert!(offers(&mut acd).is_empty(), "agent 2 is not free yet");
    assert_eq!(acd.poll_timeout(), Some(t + Duration::from_secs(5)));
    acd.agent_free(AgentId(2), [(SALES, 1)], t + Duration::from_secs(2));
    assert_eq!(
        offers(&mut acd),
        vec![(10, 2)],
        "their agent, though less skilled"
    );

    let mut other = waiting(11, SALES, t);
    other.preferred = Some(AgentId(3));
    other.prefer_until = Some(t + Duration::from_secs(5));
    acd.call_waiting(other, t + Duration::from_secs(2));
    assert!(offers(&mut acd).is_empty());
    acd.handle_timeout(t + Duration::from_secs(5));
    assert_eq!(
        offers(&mut acd),
        vec![(11, 1)],
        "anyone once the preference lapses"
    );
    assert_eq!(acd.poll_timeout(), None, "no lapsed deadline keeps firing");
}

#[test]
fn a_call_nobody_takes_overflows_at_its_time() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut call = waiting(10, SALES, t);
    call.overflow_at = Some(t + Duration::from_secs(120));
    acd.call_waiting(call, t);
    assert_eq!(acd.poll_timeout(), Some(t + Duration::from_secs(120)));
    acd.handle_timeout(t + Duration::from_secs(119));
    assert_eq!(acd.poll_overflow(), None);
    acd.handle_timeout(t + Duration::from_secs(120));
    assert_eq!(acd.poll_overflow(), Some(10));
    assert!(acd.waiting_in(SALES).is_empty());
    acd.agent_free(AgentId(1), [(SALES, 5)], t + Duration::from_secs(121));
    assert!(
        offers(&mut acd).is_empty(),
        "an overflowed call is no longer offered"
    );
}

#[test]
fn a_caller_who_hangs_up_is_forgotten_and_a_busy_agent_gets_nothing() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.call_waiting(waiting(10, SALES, t), t);
    acd.call_gone(10);
    acd.agent_free(AgentId(1), [(SALES, 5)], t);
    assert!(offers(&mut acd).is_empty());
    assert_eq!(acd.free_in(SALES), 1);
    acd.agent_busy(AgentId(1));
    assert_eq!(acd.free_in(SALES), 0);
    acd.call_waiting(waiting(11, SALES, t), t);
    assert!(offers(&mut acd).is_empty());
    acd.agent_gone(AgentId(1));
    acd.agent_free(AgentId(1), [(SALES, 5)], t + Duration::from_secs(1));
    assert_eq!(offers(&mut acd), vec![(11, 1)]);
}

#[test]
fn the_same_call_waits_once() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.call_waiting(waiting(10, SALES, t), t);
    acd.call_waiting(waiting(10, SALES, t), t);
    assert_eq!(acd.waiting_in(SALES).len(), 1);
}

mod index {
    //! The per-queue index of free agents against the seats it is built
    //! from, over random sequences of everything a switchboard does.

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Free {
            agent: u64,
            skills: Vec<(u32, u8)>,
        },
        Busy(u64),
        Gone(u64),
        Call {
            call: u32,
            queue: u32,
            priority: i64,
        },
        Taken,
        Declined,
        Hangup(u32),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6u64, prop::collection::vec((1..4u32, 1..=10u8), 0..3))
                .prop_map(|(agent, skills)| Op::Free { agent, skills }),
            (0..6u64).prop_map(Op::Busy),
            (0..6u64).prop_map(Op::Gone),
            (0..20u32, 1..4u32, 0..3i64).prop_map(|(call, queue, priority)| Op::Call {
                call,
                queue,
                priority
            }),
            Just(Op::Taken),
            Just(Op::Declined),
            (0..20u32).prop_map(Op::Hangup),
            (1..5u64).prop_map(Op::Tick),
        ]
    }

    /// The index holds exactly the free seats, waiting calls are in serving
    /// order, and no call waits while a free agent of its queue is idle.
    fn check(acd: &Acd<u32>) {
        let mut expected: BTreeMap<QueueId, BTreeSet<Rank>> = BTreeMap::new();
        for (&agent, seat) in &acd.seats {
            if let Some(since) = seat.free_since {
                for (&queue, &skill) in &seat.skills {
                    expected
                        .entry(queue)
                        .or_default()
                        .insert((Reverse(skill), since, agent));
                }
            }
        }
        assert_eq!(acd.free, expected);
        let keys: Vec<_> = acd
            .waiting
            .iter()
            .map(|w| (Reverse(w.priority), w.since))
            .collect();
        assert!(keys.windows(2).all(|k| k[0] <= k[1]), "{keys:?}");
        for w in &acd.waiting {
            assert_eq!(
                acd.free_in(w.queue),
                0,
                "call {} waits by a free agent",
                w.call
            );
        }
    }

    proptest! {
        #[test]
        fn the_index_matches_the_seats(ops in prop::collection::vec(op(), 1..80)) {
            let start = Instant::now();
            let mut now = start;
            let mut acd = Acd::new();
            let mut out: VecDeque<Offer<u32>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Free { agent, skills } => acd.agent_free(
                        AgentId(agent),
                        skills.into_iter().map(|(q, s)| (QueueId(q.into()), s)),
                        now,
                    ),
                    Op::Busy(agent) => acd.agent_busy(AgentId(agent)),
                    Op::Gone(agent) => acd.agent_gone(AgentId(agent)),
                    Op::Call { call, queue, priority } => {
                        let mut w = waiting(call, QueueId(queue.into()), now);
                        w.priority = priority;
                        acd.call_waiting(w, now);
                    }
                    Op::Taken => {
                        if let Some(o) = out.pop_front() {
                            acd.taken(o.call);
                        }
                    }
                    Op::Declined => {
                        if let Some(o) = out.pop_front() {
                            acd.declined(o.call, now);
                        }
                    }
                    Op::Hangup(call) => {
                        out.retain(|o| o.call != call);
                        acd.call_gone(call);
                    }
                    Op::Tick(secs) => {
                        now += Duration::from_secs(secs);
                        acd.handle_timeout(now);
                    }
                }
                while let Some(offer) = acd.poll_offer() {
                    let seat = &acd.seats[&offer.agent];
                    prop_assert!(seat.free_since.is_none(), "an offered agent is not free");
                    prop_assert!(seat.skills.contains_key(&offer.queue));
                    out.push_back(offer);
                }
                check(&acd);
            }
        }
    }
}
