use super::*;
use crate::compliance::Counts;
use proptest::prelude::*;

struct Harness {
    pacer: Pacer,
    start: Instant,
    now: Instant,
}

impl Harness {
    fn new(mode: Mode) -> Self {
        let start = Instant::now();
        let config = PacerConfig {
            mode,
            ..PacerConfig::default()
        };
        Self {
            pacer: Pacer::new(config, start),
            start,
            now: start,
        }
    }

    fn at(&mut self, secs: f64) {
        self.now = self.start + Duration::from_secs_f64(secs);
    }

    fn input(&mut self, input: PacerInput) {
        self.pacer.handle_input(input, self.now);
    }

    fn agent(&mut self, id: u64, state: AgentState) {
        self.input(PacerInput::Agent {
            agent: AgentId(id),
            state,
        });
    }

    fn call(&mut self, line: LineId, event: CallEvent) {
        self.input(PacerInput::Call { line, event });
    }

    fn orders(&mut self) -> Vec<DialOrder> {
        std::iter::from_fn(|| self.pacer.poll_dial()).collect()
    }

    fn events(&mut self) -> Vec<PacerEvent> {
        std::iter::from_fn(|| self.pacer.poll_event()).collect()
    }

    fn healthy_ledger(&mut self) {
        let counts = Counts {
            live: 1_000,
            abandoned: 0,
        };
        let snapshot = ComplianceSnapshot {
            target: AbandonTarget::default(),
            day: counts,
            month: counts,
        };
        self.input(PacerInput::Compliance(snapshot));
    }

    /// Gives the pacer a history of 100 results, one in four answered live.
    fn learn(&mut self) {
        for i in 0..100u64 {
            let line = self.pacer.next_line;
            self.pacer.order(None, self.now);
            let event = if i % 4 == 0 {
                CallEvent::AnsweredLive
            } else {
                CallEvent::NoAnswer
            };
            self.call(LineId(line), event);
            self.call(
                LineId(line),
                CallEvent::Ended {
                    talk: Duration::from_secs(90),
                },
            );
        }
        self.orders();
        self.events();
    }
}

#[test]
fn progressive_reserves_one_line_per_ready_agent() {
    let mut h = Harness::new(Mode::Progressive);
    for id in 0..3 {
        h.agent(id, AgentState::Ready);
    }
    let orders = h.orders();
    let agents: Vec<_> = orders.iter().map(|o| o.agent).collect();
    assert_eq!(
        agents,
        [Some(AgentId(0)), Some(AgentId(1)), Some(AgentId(2))]
    );

    h.call(orders[1].line, CallEvent::AnsweredLive);
    assert_eq!(
        h.events(),
        [PacerEvent::Connect {
            line: orders[1].line,
            agent: AgentId(1)
        }]
    );
    assert!(h.orders().is_empty());

    h.call(orders[0].line, CallEvent::NoAnswer);
    assert_eq!(
        h.orders().iter().map(|o| o.agent).collect::<Vec<_>>(),
        [Some(AgentId(0))]
    );
}

#[test]
fn progressive_hands_a_paused_agents_line_to_the_next_ready_agent() {
    let mut h = Harness::new(Mode::Progressive);
    h.agent(0, AgentState::Ready);
    h.agent(1, AgentState::InCall);
    let line = h.orders()[0].line;
    h.agent(0, AgentState::Paused);
    h.agent(1, AgentState::Ready);
    assert!(h.orders().is_empty(), "the orphaned line covers agent 1");
    h.call(line, CallEvent::AnsweredLive);
    assert_eq!(
        h.events(),
        [PacerEvent::Connect {
            line,
            agent: AgentId(1)
        }]
    );
}

#[test]
fn preview_dials_only_when_an_agent_asks() {
    let mut h = Harness::new(Mode::Preview);
    h.agent(7, AgentState::Ready);
    assert!(h.orders().is_empty());
    h.input(PacerInput::PreviewDial { agent: AgentId(7) });
    h.input(PacerInput::PreviewDial { agent: AgentId(7) });
    let orders = h.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].agent, Some(AgentId(7)));
}

#[test]
fn a_paused_agent_dials_by_hand_and_only_they_take_the_call() {
    let mut h = Harness::new(Mode::Progressive);
    h.agent(0, AgentState::Paused);
    h.agent(1, AgentState::Ready);
    let dialler_line = h.orders()[0].line;
    h.input(PacerInput::ManualDial { agent: AgentId(0) });
    h.input(PacerInput::ManualDial { agent: AgentId(0) });
    let orders = h.orders();
    assert_eq!(
        orders.len(),
        1,
        "one line per manual dial, however often asked"
    );
    assert_eq!(orders[0].agent, Some(AgentId(0)));
    let manual = orders[0].line;
    assert_eq!(h.pacer.dials_for(AgentId(0)), Some(manual));
    h.call(manual, CallEvent::Dialled);
    h.call(manual, CallEvent::AnsweredLive);
    assert_eq!(
        h.events(),
        [PacerEvent::Connect {
            line: manual,
            agent: AgentId(0)
        }],
        "the dialling agent takes their own call although Paused"
    );
    h.call(dialler_line, CallEvent::Dialled);
    h.call(dialler_line, CallEvent::AnsweredLive);
    assert_eq!(
        h.events(),
        [PacerEvent::Connect {
            line: dialler_line,
            agent: AgentId(1)
        }]
    );
}

#[test]
fn a_failed_manual_dial_leaves_the_agent_paused_and_unreachable() {
    let mut h = Harness::new(Mode::Progressive);
    h.agent(0, AgentState::Paused);
    h.input(PacerInput::ManualDial { agent: AgentId(0) });
    let manual = h.orders()[0].line;
    h.call(manual, CallEvent::Dialled);
    h.call(manual, CallEvent::Busy);
    assert_eq!(h.pacer.dials_for(AgentId(0)), None);
    assert!(h.orders().is_empty(), "a Paused agent is not dialled for");
    assert_eq!(h.pacer.ready_agents(), 0);
}

#[test]
fn a_ready_or_busy_agent_cannot_dial_by_hand() {
    let mut h = Harness::new(Mode::Preview);
    h.agent(0, AgentState::Ready);
    h.agent(1, AgentState::InCall);
    h.input(PacerInput::ManualDial { agent: AgentId(0) });
    h.input(PacerInput::ManualDial { agent: AgentId(1) });
    h.input(PacerInput::ManualDial { agent: AgentId(9) });
    assert!(h.orders().is_empty());
}

#[test]
fn answered_call_without_agent_is_abandoned_after_two_seconds() {
    let mut h = Harness::new(Mode::Predictive);
    h.agent(0, AgentState::Ready);
    let line = h.orders()[0].line;
    h.agent(0, AgentState::Paused);
    h.at(5.0);
    h.call(line, CallEvent::AnsweredLive);
    assert!(h.events().is_empty());
    assert_eq!(
        h.pacer.poll_timeout(),
        Some(h.start + Duration::from_secs(7))
    );
    h.pacer
        .handle_timeout(h.start + Duration::from_millis(6_999));
    assert!(h.events().is_empty());
    h.pacer.handle_timeout(h.start + Duration::from_secs(7));
    assert_eq!(h.events(), [PacerEvent::Abandon { line }]);
    assert_eq!(h.pacer.poll_timeout(), None);
}

#[test]
fn a_screened_person_waits_only_what_is_left_of_the_two_seconds() {
    let mut h = Harness::new(Mode::Predictive);
    h.agent(0, AgentState::Ready);
    let line = h.orders()[0].line;
    h.agent(0, AgentState::Paused);
    h.at(5.0);
    // Machine detection heard 0.8 s of silence after the greeting.
    h.call(
        line,
        CallEvent::AnsweredLiveAfter(Duration::from_millis(800)),
    );
    assert!(h.events().is_empty());
    assert_eq!(
        h.pacer.poll_timeout(),
        Some(h.start + Duration::from_millis(6_200))
    );
    h.pacer
        .handle_timeout(h.start + Duration::from_millis(6_200));
    assert_eq!(h.events(), [PacerEvent::Abandon { line }]);
}

#[test]
fn waiting_call_goes_to_an_agent_who_becomes_ready_in_time() {
    let mut h = Harness::new(Mode::Predictive);
    h.agent(0, AgentState::Ready);
    let line = h.orders()[0].line;
    h.agent(0, AgentState::WrapUp);
    h.call(line, CallEvent::AnsweredLive);
    h.at(1.5);
    h.agent(0, AgentState::Ready);
    assert_eq!(
        h.events(),
        [PacerEvent::Connect {
            line,
            agent: AgentId(0)
        }]
    );
    h.pacer.handle_timeout(h.start + Duration::from_secs(3));
    assert!(h.events().is_empty());
}

#[test]
fn predictive_without_history_opens_one_line_per_free_agent() {
    let mut h = Harness::new(Mode::Predictive);
    h.healthy_ledger();
    for id in 0..4 {
        h.agent(id, AgentState::Ready);
    }
    let orders = h.orders();
    assert_eq!(orders.len(), 4);
    assert!(orders.iter().all(|o| o.agent.is_none()));
}

#[test]
fn predictive_overdials_with_history_and_backs_off_at_the_cap() {
    let mut h = Harness::new(Mode::Predictive);
    for id in 0..10 {
        h.agent(id, AgentState::InCall);
    }
    h.learn();
    h.healthy_ledger();
    for id in 0..10 {
        h.agent(id, AgentState::Ready);
    }
    let lines = h.orders().len();
    assert!(
        lines > 15,
        "a 25% answer rate needs more than one line per agent: {lines}"
    );

    let mut h = Harness::new(Mode::Predictive);
    for id in 0..10 {
        h.agent(id, AgentState::InCall);
    }
    h.learn();
    let at_cap = Counts {
        live: 1_000,
        abandoned: 30,
    };
    let snapshot = ComplianceSnapshot {
        target: AbandonTarget::default(),
        day: at_cap,
        month: at_cap,
    };
    h.input(PacerInput::Compliance(snapshot));
    for id in 0..10 {
        h.agent(id, AgentState::Ready);
    }
    assert_eq!(h.orders().len(), 10);
}

#[test]
fn supervisor_cap_limits_lines_per_staffed_agent() {
    let mut h = Harness::new(Mode::Predictive);
    for id in 0..4 {
        h.agent(id, AgentState::InCall);
    }
    h.learn();
    h.healthy_ledger();
    h.input(PacerInput::DialLevelCap(1.5));
    for id in 0..4 {
        h.agent(id, AgentState::Ready);
    }
    assert_eq!(h.orders().len(), 6);
    assert_eq!(h.pacer.lines_in_flight(), 6);
}

#[test]
fn nothing_to_dial_pauses_ordering() {
    let mut h = Harness::new(Mode::Progressive);
    h.agent(0, AgentState::Ready);
    let line = h.orders()[0].line;
    h.call(line, CallEvent::NotDialled);
    assert!(h.orders().is_empty());
    assert_eq!(
        h.pacer.poll_timeout(),
        Some(h.start + Duration::from_secs(5))
    );
    h.pacer.handle_timeout(h.start + Duration::from_secs(5));
    assert_eq!(h.orders().len(), 1);
}

#[test]
fn a_starved_progressive_campaign_probes_with_one_line_for_all_its_agents() {
    let mut h = Harness::new(Mode::Progressive);
    for id in 0..50 {
        h.at(id as f64 / 100.0);
        h.agent(id, AgentState::Ready);
    }
    let first = h.orders();
    assert_eq!(first.len(), 50);
    for order in &first {
        h.call(order.line, CallEvent::NotDialled);
    }
    assert!(h.orders().is_empty());
    assert_eq!(h.pacer.free_agents().len(), 50);
    for round in 1..=3u64 {
        h.at(5.5 * round as f64);
        h.pacer.handle_timeout(h.now);
        let probe = h.orders();
        assert_eq!(probe.len(), 1, "one claim a pause, not one per agent");
        assert_eq!(probe[0].agent, None, "the probe is no one's yet");
        assert_eq!(
            h.pacer.free_agents().len(),
            50,
            "no agent is held for the probe"
        );
        // Agents coming and going while the probe's claim runs order nothing more.
        h.agent(99, AgentState::Ready);
        h.agent(99, AgentState::Paused);
        assert!(h.orders().is_empty());
        h.call(probe[0].line, CallEvent::NotDialled);
    }
    // Leads again: the probe is dialled, covers the longest idle, and every
    // other Ready agent gets a line of their own at once.
    h.at(30.0);
    h.pacer.handle_timeout(h.now);
    let probe = h.orders()[0].line;
    h.call(probe, CallEvent::Dialled);
    let rest = h.orders();
    assert_eq!(rest.len(), 49);
    assert!(rest.iter().all(|o| o.agent.is_some()));
    assert_eq!(h.pacer.dials_for(AgentId(0)), Some(probe));
    assert!(h.pacer.free_agents().is_empty());
}

#[test]
fn a_probe_kept_for_a_callback_owner_is_theirs_not_the_longest_idles() {
    let mut h = Harness::new(Mode::Progressive);
    h.agent(0, AgentState::Ready);
    h.at(1.0);
    h.agent(1, AgentState::Ready);
    for order in h.orders() {
        h.call(order.line, CallEvent::NotDialled);
    }
    h.at(6.0);
    h.pacer.handle_timeout(h.now);
    let probe = h.orders()[0].line;
    h.input(PacerInput::Reserve {
        line: probe,
        agent: AgentId(1),
    });
    h.call(probe, CallEvent::Dialled);
    assert_eq!(h.pacer.dials_for(AgentId(1)), Some(probe));
    let rest = h.orders();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].agent, Some(AgentId(0)));
}

#[test]
fn a_starved_predictive_campaign_probes_with_one_line() {
    let mut h = Harness::new(Mode::Predictive);
    h.learn();
    h.healthy_ledger();
    for id in 0..10 {
        h.agent(id, AgentState::Ready);
    }
    let first = h.orders();
    assert!(first.len() > 10, "predictive dials ahead: {}", first.len());
    for order in &first {
        h.call(order.line, CallEvent::NotDialled);
    }
    h.at(6.0);
    h.pacer.handle_timeout(h.now);
    let probe = h.orders();
    assert_eq!(probe.len(), 1);
    h.call(probe[0].line, CallEvent::Dialled);
    // The predictive planner orders on its next tick.
    h.at(6.5);
    h.pacer.handle_timeout(h.now);
    assert!(
        h.orders().len() > 1,
        "dials ahead again once a lead is found"
    );
}

#[test]
fn progressive_leaves_the_last_agents_to_come_free_without_a_line() {
    let mut h = Harness::new(Mode::Progressive);
    h.input(PacerInput::HoldBack(1));
    for id in 0..4 {
        h.at(id as f64);
        h.agent(id, AgentState::Ready);
    }
    let lines: Vec<_> = h.orders().iter().map(|o| o.agent).collect();
    assert_eq!(
        lines,
        [Some(AgentId(0)), Some(AgentId(1)), Some(AgentId(2))],
        "the longest idle are dialled for"
    );
    assert_eq!(h.pacer.free_agents(), [AgentId(3)]);

    h.input(PacerInput::HoldBack(3));
    assert!(h.orders().is_empty());
    assert_eq!(h.pacer.lines_in_flight(), 3, "lines already out stay out");

    h.input(PacerInput::HoldBack(0));
    let lines: Vec<_> = h.orders().iter().map(|o| o.agent).collect();
    assert_eq!(
        lines,
        [Some(AgentId(3))],
        "no hold back: every agent dialled for"
    );
}

#[test]
fn predictive_without_history_dials_only_for_agents_beyond_the_hold_back() {
    let mut h = Harness::new(Mode::Predictive);
    h.healthy_ledger();
    h.input(PacerInput::HoldBack(1));
    for id in 0..4 {
        h.agent(id, AgentState::Ready);
    }
    assert_eq!(h.orders().len(), 3);
    h.input(PacerInput::HoldBack(4));
    h.agent(4, AgentState::Ready);
    assert!(
        h.orders().is_empty(),
        "five free, four held, three lines out"
    );
}

#[test]
fn predictive_expects_agents_coming_free_to_refill_the_reserve_first() {
    let lines_with = |held| {
        let mut h = Harness::new(Mode::Predictive);
        h.learn();
        h.healthy_ledger();
        h.input(PacerInput::HoldBack(held));
        // Every agent wrapping up, none free: any line counts on an agent
        // coming free within the horizon.
        for id in 0..10 {
            h.agent(id, AgentState::WrapUp);
        }
        h.orders().len()
    };
    let (none, two, all) = (lines_with(0), lines_with(2), lines_with(10));
    assert!(none > 0, "ten busy agents free up within the horizon");
    assert!(
        two < none,
        "{two} lines with two held back, {none} with none"
    );
    assert_eq!(all, 0);
}

#[test]
fn a_held_back_agent_still_takes_a_call_that_would_be_abandoned() {
    let mut h = Harness::new(Mode::Predictive);
    h.healthy_ledger();
    h.input(PacerInput::HoldBack(1));
    h.agent(0, AgentState::Ready);
    h.agent(1, AgentState::Ready);
    let orders = h.orders();
    assert_eq!(orders.len(), 1);
    // A caller waits now: both agents held, yet an answer still connects.
    h.input(PacerInput::HoldBack(2));
    assert!(h.orders().is_empty());
    assert_eq!(h.pacer.lines_in_flight(), 1, "the line out stays out");
    let line = orders[0].line;
    h.call(line, CallEvent::Dialled);
    h.call(line, CallEvent::AnsweredLive);
    assert_eq!(
        h.events(),
        [PacerEvent::Connect {
            line,
            agent: AgentId(0)
        }]
    );
}

#[test]
fn only_predictive_lines_reach_ahead_of_the_agents() {
    let mut h = Harness::new(Mode::Predictive);
    assert_eq!(h.pacer.reach(), Duration::from_secs(12), "assumed at first");
    h.learn();
    // The harness answers every line the instant it is ordered.
    assert_eq!(h.pacer.reach(), Duration::from_secs(2));
    assert_eq!(
        Harness::new(Mode::Progressive).pacer.reach(),
        Duration::ZERO
    );
    assert_eq!(Harness::new(Mode::Preview).pacer.reach(), Duration::ZERO);
}

#[derive(Clone, Debug)]
enum Op {
    Agent(u64, AgentState),
    Call(usize, CallEvent),
    Preview(u64),
    Cap(f64),
    HoldBack(usize),
    Ledger(u64, u64),
    Wait(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let state = prop_oneof![
        Just(AgentState::Ready),
        Just(AgentState::Paused),
        Just(AgentState::InCall),
        Just(AgentState::WrapUp),
        Just(AgentState::LoggedOut),
    ];
    let event = prop_oneof![
        Just(CallEvent::Dialled),
        Just(CallEvent::NotDialled),
        Just(CallEvent::AnsweredLive),
        Just(CallEvent::AnsweredMachine),
        Just(CallEvent::AnsweredLiveAfter(Duration::from_millis(800))),
        Just(CallEvent::NoAnswer),
        Just(CallEvent::Busy),
        Just(CallEvent::Failed),
        (0u64..8).prop_map(|a| CallEvent::Connected { agent: AgentId(a) }),
        Just(CallEvent::Abandoned),
        (0u64..300).prop_map(|s| CallEvent::Ended {
            talk: Duration::from_secs(s)
        }),
    ];
    let op = prop_oneof![
        3 => (0u64..8, state).prop_map(|(a, s)| Op::Agent(a, s)),
        6 => (any::<usize>(), event).prop_map(|(i, e)| Op::Call(i, e)),
        1 => (0u64..8).prop_map(Op::Preview),
        1 => (0.0f64..6.0).prop_map(Op::Cap),
        1 => (0usize..6).prop_map(Op::HoldBack),
        1 => (0u64..2_000, 0u64..100).prop_map(|(l, a)| Op::Ledger(l, a.min(l))),
        2 => (0u64..5_000).prop_map(Op::Wait),
    ];
    prop::collection::vec(op, 1..400)
}

/// Runs random inputs and checks what must hold after every step that ordered lines.
fn check(mode: Mode, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new(mode);
    let mut lines: Vec<LineId> = Vec::new();
    let mut previews = 0;
    for op in ops {
        match op {
            Op::Agent(a, s) => h.agent(a, s),
            Op::Call(_, _) if lines.is_empty() => {}
            Op::Call(i, e) => h.call(lines[i % lines.len()], e),
            Op::Preview(a) => {
                previews += 1;
                h.input(PacerInput::PreviewDial { agent: AgentId(a) });
            }
            Op::Cap(c) => h.input(PacerInput::DialLevelCap(c)),
            Op::HoldBack(n) => h.input(PacerInput::HoldBack(n)),
            Op::Ledger(live, abandoned) => {
                let counts = Counts { live, abandoned };
                let snapshot = ComplianceSnapshot {
                    target: AbandonTarget::default(),
                    day: counts,
                    month: counts,
                };
                h.input(PacerInput::Compliance(snapshot));
            }
            Op::Wait(ms) => {
                h.now += Duration::from_millis(ms);
                h.pacer.handle_timeout(h.now);
            }
        }
        h.events();
        let orders = h.orders();
        if orders.is_empty() {
            continue;
        }
        let in_flight = h.pacer.lines_in_flight();
        prop_assert!(
            in_flight <= h.pacer.line_limit(),
            "{in_flight} over the limit"
        );
        prop_assert!(in_flight <= h.pacer.config.max_lines);
        match mode {
            Mode::Preview => prop_assert!(orders.len() <= 1 && previews > 0),
            Mode::Progressive => {
                prop_assert!(in_flight <= h.pacer.ready_agents());
                let free = h.pacer.free_agents().len();
                prop_assert!(
                    free >= h.pacer.held_back(),
                    "dialled leaving {free} free, {} held back",
                    h.pacer.held_back()
                );
            }
            Mode::Predictive => {
                // Were every line in flight answered and no busy agent to
                // come free, abandons would stay within the ledger's headroom.
                let waiting = h
                    .pacer
                    .lines
                    .values()
                    .filter(|l| matches!(l.state, LineState::Waiting { .. }))
                    .count();
                let free = h.pacer.free_agents().len() as i64
                    - waiting as i64
                    - h.pacer.held_back() as i64;
                let headroom = h.pacer.compliance.headroom() as i64;
                prop_assert!(
                    in_flight as i64 <= free + headroom,
                    "{in_flight} lines, {free} free, headroom {headroom}"
                );
            }
        }
        lines.extend(orders.iter().map(|o| o.line));
    }
    Ok(())
}

proptest! {
    #[test]
    fn predictive_never_exceeds_its_ceiling_or_the_cap(ops in ops()) {
        check(Mode::Predictive, ops)?;
    }

    #[test]
    fn progressive_never_has_more_lines_than_ready_agents(ops in ops()) {
        check(Mode::Progressive, ops)?;
    }

    #[test]
    fn preview_dials_only_on_request(ops in ops()) {
        let no_requests: Vec<Op> = ops.into_iter().filter(|o| !matches!(o, Op::Preview(_))).collect();
        let mut h = Harness::new(Mode::Preview);
        for op in no_requests {
            if let Op::Agent(a, s) = op {
                h.agent(a, s);
            }
            h.pacer.handle_timeout(h.now);
            prop_assert!(h.orders().is_empty());
        }
    }

    #[test]
    fn preview_stays_under_the_cap(ops in ops()) {
        check(Mode::Preview, ops)?;
    }
}

#[test]
fn a_reserved_predictive_line_goes_to_its_agent_not_the_longest_waiting() {
    let mut h = Harness::new(Mode::Predictive);
    h.healthy_ledger();
    h.agent(1, AgentState::Ready);
    h.at(5.0);
    h.agent(2, AgentState::Ready);
    let line = h.orders().first().expect("a line for two free agents").line;
    h.input(PacerInput::Reserve {
        line,
        agent: AgentId(2),
    });
    assert_eq!(h.pacer.dials_for(AgentId(2)), Some(line));
    assert_eq!(h.pacer.free_agents(), [AgentId(1)]);
    h.call(line, CallEvent::Dialled);
    h.call(line, CallEvent::AnsweredLive);
    assert!(h.events().contains(&PacerEvent::Connect {
        line,
        agent: AgentId(2)
    }));
}

#[test]
fn a_reservation_is_refused_for_an_agent_who_is_not_free() {
    let mut h = Harness::new(Mode::Predictive);
    h.healthy_ledger();
    h.agent(1, AgentState::Ready);
    h.agent(2, AgentState::Paused);
    let line = h.orders().first().expect("a line").line;
    h.input(PacerInput::Reserve {
        line,
        agent: AgentId(2),
    });
    assert_eq!(h.pacer.dials_for(AgentId(2)), None, "a paused agent");
    h.input(PacerInput::Reserve {
        line: LineId(999),
        agent: AgentId(1),
    });
    assert_eq!(h.pacer.free_agents(), [AgentId(1)], "no such line");
    // Answered, the line goes to whoever is free.
    h.call(line, CallEvent::Dialled);
    h.call(line, CallEvent::AnsweredLive);
    assert!(h.events().contains(&PacerEvent::Connect {
        line,
        agent: AgentId(1)
    }));
}
