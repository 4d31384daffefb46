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
