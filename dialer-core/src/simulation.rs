//! Runs the real pacer and ledger against a simulated population on a virtual clock.
//!
//! Each dialled line is answered live with probability `answer_rate` after 3
//! to 15 seconds, answered by a machine with probability `machine_rate`,
//! busy with probability `busy_rate` after 1 to 3 seconds, and otherwise
//! rings out at `ring_timeout`. Talk times are log-normal around
//! `talk_mean`; wrap-up takes exactly `wrap`. Agents are Ready from the
//! start and go back to Ready after each wrap-up. Utilisation is the share of
//! logged-in time agents spend talking or wrapping up.
//!
//! Inbound calls may share the floor ([`simulate_with_inbound`],
//! [`InboundConfig`]): see [`inbound`] for how they arrive, wait and are
//! answered, and how the two ways of pooling the agents differ.
//!
//! The same seed gives the same run: the random source is a SplitMix64
//! generator and every queue is ordered by time, then by insertion. Inbound
//! callers draw from a second generator of their own, so a run with blended
//! agents and one with a fixed split meet the same callers.

pub mod inbound;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use inbound::{InboundConfig, Pooling};

use crate::compliance::{AbandonTarget, ComplianceLedger, LiveAnswer, Window};
use crate::pacer::{
    AgentId, AgentState, CallEvent, LineId, Mode, Pacer, PacerConfig, PacerEvent, PacerInput,
};

/// Parameters of one simulated run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// The dialling mode under test.
    pub mode: Mode,
    /// Agents logged in for the whole run (with inbound calls, the whole floor).
    pub agents: u64,
    /// Probability that a dial is answered by a person.
    pub answer_rate: f64,
    /// Probability that a dial is answered by a machine.
    pub machine_rate: f64,
    /// Probability that a dial is busy.
    pub busy_rate: f64,
    /// Mean talk time of a connected call.
    pub talk_mean: Duration,
    /// Wrap-up time after each call.
    pub wrap: Duration,
    /// How long an unanswered call rings.
    pub ring_timeout: Duration,
    /// Length of the run.
    pub duration: Duration,
    /// Seed of the random source.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Predictive,
            agents: 25,
            answer_rate: 0.25,
            machine_rate: 0.10,
            busy_rate: 0.10,
            talk_mean: Duration::from_secs(90),
            wrap: Duration::from_secs(10),
            ring_timeout: Duration::from_secs(20),
            duration: Duration::from_secs(3600),
            seed: 1,
        }
    }
}

/// What a run measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimReport {
    /// Lines dialled.
    pub dials: u64,
    /// Calls answered by a person.
    pub live: u64,
    /// Live calls that got no agent in time.
    pub abandons: u64,
    /// Abandons over live answers.
    pub abandon_rate: f64,
    /// The most abandons ever counted beyond what the 3% target allowed at that moment.
    pub peak_excess: f64,
    /// The highest rolling 24-hour abandon rate the ledger reported, read after every abandon.
    pub peak_day_rate: f64,
    /// Share of agent time spent talking or wrapping up, on either kind of call.
    pub utilisation: f64,
    /// Minutes of outbound talk per agent-hour of the whole floor.
    pub talk_minutes_per_agent_hour: f64,
    /// Lines dialled per hour.
    pub dials_per_hour: f64,
    /// Inbound calls that arrived.
    pub inbound_offered: u64,
    /// Inbound calls an agent answered.
    pub inbound_answered: u64,
    /// Inbound callers who hung up before an agent answered.
    pub inbound_abandoned: u64,
    /// Inbound calls answered within the target's time, over all offered (0 when none were).
    pub service_level: f64,
    /// Mean wait of the inbound calls answered.
    pub average_speed_of_answer: Duration,
    /// Minutes of inbound talk per agent-hour of the whole floor.
    pub inbound_talk_minutes_per_agent_hour: f64,
}

/// Runs one simulation to completion, with no inbound calls.
pub fn simulate(config: &SimConfig) -> SimReport {
    simulate_with_inbound(config, &InboundConfig::default())
}

/// Runs one simulation to completion, with inbound calls on the same floor.
pub fn simulate_with_inbound(config: &SimConfig, inbound: &InboundConfig) -> SimReport {
    Run::new(config, inbound).finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    Result(LineId, Outcome),
    Hangup(LineId, AgentId, Duration),
    WrapDone(AgentId),
    Arrival,
    GiveUp(u64),
    InboundHangup(AgentId, Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Live,
    Machine,
    Busy,
    NoAnswer,
}

struct Run<'a> {
    config: &'a SimConfig,
    inbound: &'a InboundConfig,
    rng: SplitMix64,
    callers_rng: SplitMix64,
    pacer: Pacer,
    ledger: ComplianceLedger,
    start: Instant,
    wall: DateTime<Utc>,
    queue: BinaryHeap<Reverse<(Instant, u64, Happening)>>,
    seq: u64,
    busy_since: BTreeMap<AgentId, Instant>,
    busy: Duration,
    talk: Duration,
    dials: u64,
    live: u64,
    abandons: u64,
    peak_excess: f64,
    peak_day_rate: f64,
    /// Agents the pacer dials for: all of them, or the outbound side of a split.
    dialling: u64,
    /// Agents neither talking nor wrapping up, and since when.
    idle_since: BTreeMap<AgentId, Instant>,
    /// Agents handling an inbound call, talking or wrapping up.
    on_inbound: BTreeSet<AgentId>,
    callers: VecDeque<Caller>,
    next_caller: u64,
    held_back: usize,
    inbound_talk: Duration,
    offered: u64,
    answered: u64,
    answered_in_time: u64,
    gave_up: u64,
    waited: Duration,
}

/// An inbound caller waiting for an agent.
#[derive(Clone, Copy, Debug)]
struct Caller {
    id: u64,
    arrived: Instant,
    /// Seconds the call will last once answered.
    talk: f64,
}

impl<'a> Run<'a> {
    fn new(config: &'a SimConfig, inbound: &'a InboundConfig) -> Self {
        let start = Instant::now();
        let pacer_config = PacerConfig {
            mode: config.mode,
            ..PacerConfig::default()
        };
        let mut run = Self {
            config,
            inbound,
            rng: SplitMix64(config.seed),
            callers_rng: SplitMix64(config.seed ^ CALLERS_STREAM),
            pacer: Pacer::new(pacer_config, start),
            ledger: ComplianceLedger::new(AbandonTarget::default()),
            start,
            wall: DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000),
            queue: BinaryHeap::new(),
            seq: 0,
            busy_since: BTreeMap::new(),
            busy: Duration::ZERO,
            talk: Duration::ZERO,
            dials: 0,
            live: 0,
            abandons: 0,
            peak_excess: 0.0,
            peak_day_rate: 0.0,
            dialling: inbound.dialling_agents(config.agents),
            idle_since: (0..config.agents).map(|id| (AgentId(id), start)).collect(),
            on_inbound: BTreeSet::new(),
            callers: VecDeque::new(),
            next_caller: 0,
            held_back: 0,
            inbound_talk: Duration::ZERO,
            offered: 0,
            answered: 0,
            answered_in_time: 0,
            gave_up: 0,
            waited: Duration::ZERO,
        };
        // The reserve goes in before the agents, or the first plan would
        // dial for every one of them.
        run.update_hold_back(start);
        for id in 0..run.dialling {
            run.input(
                PacerInput::Agent {
                    agent: AgentId(id),
                    state: AgentState::Ready,
                },
                start,
            );
        }
        run.schedule_arrival(start);
        run
    }

    fn finish(mut self) -> SimReport {
        let end = self.start + self.config.duration;
        loop {
            let next_event = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let timeout = self.pacer.poll_timeout();
            let now = match (next_event, timeout) {
                (Some(e), Some(t)) => e.min(t),
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            if now > end {
                break;
            }
            if timeout.is_some_and(|t| t <= now) {
                self.pacer.handle_timeout(now);
                self.drain(now);
            } else if let Some(Reverse((at, _, happening))) = self.queue.pop() {
                self.happen(happening, at);
            }
            // The pacer's reach moves with every answer.
            self.update_hold_back(now);
        }
        for since in std::mem::take(&mut self.busy_since).into_values() {
            self.busy += end.saturating_duration_since(since);
        }
        let agent_hours = self.config.agents as f64 * self.config.duration.as_secs_f64() / 3600.0;
        let average_speed_of_answer = match u32::try_from(self.answered) {
            Ok(n) if n > 0 => self.waited / n,
            _ => Duration::ZERO,
        };
        SimReport {
            dials: self.dials,
            live: self.live,
            abandons: self.abandons,
            abandon_rate: ratio(self.abandons, self.live),
            peak_excess: self.peak_excess,
            peak_day_rate: self.peak_day_rate,
            utilisation: self.busy.as_secs_f64() / (agent_hours * 3600.0),
            talk_minutes_per_agent_hour: self.talk.as_secs_f64() / 60.0 / agent_hours,
            dials_per_hour: self.dials as f64 / (self.config.duration.as_secs_f64() / 3600.0),
            inbound_offered: self.offered,
            inbound_answered: self.answered,
            inbound_abandoned: self.gave_up,
            service_level: ratio(self.answered_in_time, self.offered),
            average_speed_of_answer,
            inbound_talk_minutes_per_agent_hour: self.inbound_talk.as_secs_f64()
                / 60.0
                / agent_hours,
        }
    }

    fn happen(&mut self, happening: Happening, now: Instant) {
        match happening {
            Happening::Result(line, outcome) => {
                let event = match outcome {
                    Outcome::Live => {
                        self.live += 1;
                        CallEvent::AnsweredLive
                    }
                    Outcome::Machine => CallEvent::AnsweredMachine,
                    Outcome::Busy => CallEvent::Busy,
                    Outcome::NoAnswer => CallEvent::NoAnswer,
                };
                self.input(PacerInput::Call { line, event }, now);
            }
            Happening::Hangup(line, agent, talk) => {
                self.talk += talk;
                self.input(
                    PacerInput::Call {
                        line,
                        event: CallEvent::Ended { talk },
                    },
                    now,
                );
                self.input(
                    PacerInput::Agent {
                        agent,
                        state: AgentState::WrapUp,
                    },
                    now,
                );
                self.schedule(now + self.config.wrap, Happening::WrapDone(agent));
            }
            Happening::WrapDone(agent) => {
                if let Some(since) = self.busy_since.remove(&agent) {
                    self.busy += now.saturating_duration_since(since);
                }
                self.on_inbound.remove(&agent);
                // Idle before the pacer hears of it, so that a call it hands
                // this agent at once takes them off the idle list again.
                self.idle_since.insert(agent, now);
                if self.dials_for(agent) {
                    self.input(
                        PacerInput::Agent {
                            agent,
                            state: AgentState::Ready,
                        },
                        now,
                    );
                }
                self.serve_callers(now);
            }
            Happening::Arrival => self.arrive(now),
            Happening::GiveUp(caller) => self.give_up(caller, now),
            Happening::InboundHangup(agent, talk) => self.inbound_hangup(agent, talk, now),
        }
    }

    fn input(&mut self, input: PacerInput, now: Instant) {
        self.pacer.handle_input(input, now);
        self.drain(now);
    }

    /// Dials every order and acts on every decision the pacer has ready.
    fn drain(&mut self, now: Instant) {
        loop {
            if let Some(order) = self.pacer.poll_dial() {
                self.dial(order.line, now);
            } else if let Some(event) = self.pacer.poll_event() {
                self.decided(event, now);
            } else {
                return;
            }
        }
    }

    fn dial(&mut self, line: LineId, now: Instant) {
        self.dials += 1;
        self.pacer.handle_input(
            PacerInput::Call {
                line,
                event: CallEvent::Dialled,
            },
            now,
        );
        let c = self.config;
        let draw = self.rng.unit();
        let (outcome, delay) = if draw < c.answer_rate {
            (Outcome::Live, self.rng.between(3.0, 15.0))
        } else if draw < c.answer_rate + c.machine_rate {
            (Outcome::Machine, self.rng.between(3.0, 15.0))
        } else if draw < c.answer_rate + c.machine_rate + c.busy_rate {
            (Outcome::Busy, self.rng.between(1.0, 3.0))
        } else {
            (Outcome::NoAnswer, c.ring_timeout.as_secs_f64())
        };
        self.schedule(
            now + Duration::from_secs_f64(delay),
            Happening::Result(line, outcome),
        );
    }

    fn decided(&mut self, event: PacerEvent, now: Instant) {
        let wall = self.wall + chrono::TimeDelta::from_std(now - self.start).unwrap_or_default();
        match event {
            PacerEvent::Connect { line, agent } => {
                self.ledger.record(LiveAnswer::Connected, wall);
                self.idle_since.remove(&agent);
                self.busy_since.insert(agent, now);
                let talk = self.talk_time();
                self.schedule(now + talk, Happening::Hangup(line, agent, talk));
            }
            PacerEvent::Abandon { .. } => {
                self.abandons += 1;
                self.ledger.record(LiveAnswer::Abandoned, wall);
                let day = self.ledger.counts(Window::Day, wall);
                let allowed = self.ledger.target().fraction() * day.live as f64;
                self.peak_excess = self.peak_excess.max(day.abandoned as f64 - allowed);
                self.peak_day_rate = self.peak_day_rate.max(day.rate());
            }
        }
        let snapshot = self.ledger.snapshot(wall);
        self.pacer
            .handle_input(PacerInput::Compliance(snapshot), now);
    }

    fn talk_time(&mut self) -> Duration {
        Duration::from_secs_f64(log_normal_secs(&mut self.rng, self.config.talk_mean))
    }

    fn schedule(&mut self, at: Instant, happening: Happening) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, happening)));
    }
}

/// Returns a log-normal time in seconds with sigma 0.6 and the given mean.
fn log_normal_secs(rng: &mut SplitMix64, mean: Duration) -> f64 {
    // mu is chosen so that the mean is `mean`.
    let sigma = 0.6;
    let mu = mean.as_secs_f64().ln() - sigma * sigma / 2.0;
    (mu + sigma * rng.normal()).exp()
}

/// Mixed into the seed for the inbound callers' own generator.
const CALLERS_STREAM: u64 = 0x6A09_E667_F3BC_C909;

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A small, seedable random source (SplitMix64), good enough for simulation.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a uniform value in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Returns an exponential value with the given mean.
    fn exponential(&mut self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }

    /// Returns a standard normal value (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests;
