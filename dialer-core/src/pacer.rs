//! The pacer: decides how many lines to open now, and which agent takes an answered call.
//!
//! Agent states, call events, the supervisor's cap and the compliance
//! figures go in with the current `Instant`; dial orders ([`Pacer::poll_dial`])
//! and connect/abandon decisions ([`Pacer::poll_event`]) come out.
//!
//! - **Preview** never dials on its own; an agent's [`PacerInput::PreviewDial`]
//!   orders one line reserved for that agent.
//! - **Progressive** keeps exactly one line ordered or ringing for each Ready
//!   agent, reserved for that agent, so its calls are never abandoned while
//!   the agent stays Ready.
//! - **Predictive** opens unreserved lines, learning as the campaign runs.
//!   From a sliding window of recent calls it knows the share of lines
//!   answered live, how long live answers and other results took after the
//!   order (so a line still ringing is judged by its age: one older than any
//!   recent live answer will most likely ring out), the wrap-up times agents
//!   took (so an agent's remaining wrap-up follows them: a fixed wrap-up is
//!   known to the second), and a log-normal fit of talk times (so a call's
//!   remaining talk depends on how long it has lasted). It cuts the time
//!   ahead, up to the longest recent wait for a live answer, into intervals;
//!   in each, the live answers and the agents coming free in time for them
//!   (by the interval's end plus [`ABANDON_GRACE`]) are Poisson-binomial
//!   counts, and idle agents carry over to the next interval while answers
//!   do not, which gives the expected abandons of any number of new lines.
//!   It opens lines while each one's share of the expected abandons, over
//!   its chance of a live answer, stays under a marginal target.
//!
//!   The marginal target is feedback on the ledger: `marginal_risk` times
//!   the abandon target, scaled by `exp(feedback * (spare - cushion))`, where
//!   `spare` is how many more abandons the worse of the 24-hour and 30-day
//!   windows could take at the target and the cushion is
//!   `cushion_per_agent` abandons per staffed agent. With budget to spare
//!   it dials harder, with little it dials softer, so the rolling rate climbs
//!   towards the target instead of staying far below it (docs/benchmarks.md,
//!   "Predictive pacing"). Past `backoff_from` of the target it is scaled
//!   down to zero at the target; with no headroom, or too little history, it
//!   opens one line per free agent. Whatever the model says, lines in flight
//!   beyond the free agents never exceed the ledger's headroom: even if
//!   every line were answered at once and no agent came free, the abandons
//!   would fit in the headroom the ledger reported when they were dialled.
//!   This costs utilisation while a campaign's windows are nearly empty.
//!
//! An inbound queue that shares the agents may have some Ready agents held
//! back ([`PacerInput::HoldBack`]): progressive covers only the Ready agents
//! beyond them, and predictive counts them out of the free agents, so its
//! model expects the first agents to come free to refill the reserve.
//!
//! Every mode stays under the hard ceiling (`max_lines`, and `max_dial_level`
//! lines per staffed agent) and the supervisor's dial-level cap. A call
//! answered live waits at most [`ABANDON_GRACE`] for an agent, then the pacer
//! emits [`PacerEvent::Abandon`].

mod history;
mod model;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::compliance::{AbandonTarget, ComplianceSnapshot, Counts, ABANDON_GRACE};
use history::History;

/// Identifies an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub u64);

/// Identifies one line the pacer ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineId(pub u64);

/// How a campaign dials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Agents choose each call.
    Preview,
    /// One reserved line per ready agent.
    Progressive,
    /// As many lines as keep abandons under target.
    Predictive,
}

/// An agent's state, as the desk, the floor and the dashboard name it.
pub use vocab::AgentState;

/// What happened to a line the pacer ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallEvent {
    /// The call was placed and is ringing.
    Dialled,
    /// Nothing was dialled (no lead due, or refused before dialling).
    NotDialled,
    /// A person answered.
    AnsweredLive,
    /// A person answered and was heard by machine detection first: they
    /// have already waited this long since their greeting ended, which the
    /// time they may wait for an agent is cut by.
    AnsweredLiveAfter(Duration),
    /// A machine answered.
    AnsweredMachine,
    /// Nobody answered before the ring timeout.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The call failed in the network.
    Failed,
    /// The shell bridged the call to an agent.
    Connected {
        /// The agent now on the call.
        agent: AgentId,
    },
    /// The shell abandoned the call (a bridge that failed, for example).
    Abandoned,
    /// The connected call ended after this much talk.
    Ended {
        /// Time the agent and the contact talked.
        talk: Duration,
    },
}

/// One input to the pacer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PacerInput {
    /// An agent changed state.
    Agent {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
    },
    /// Something happened to a line.
    Call {
        /// The line.
        line: LineId,
        /// What happened.
        event: CallEvent,
    },
    /// An agent in a preview campaign chose to call the contact on screen.
    PreviewDial {
        /// The agent.
        agent: AgentId,
    },
    /// A Paused agent dials a number by hand in any mode: one line is
    /// ordered for them alone, past the dial level, and they stay Paused
    /// (out of the dialler's reach) until it connects or fails.
    ManualDial {
        /// The agent.
        agent: AgentId,
    },
    /// Keeps a line ordered or ringing for one agent, who is Ready and has
    /// no line: a callback booked for them. Answered, it goes to them while
    /// they stay Ready; ignored when they are not free.
    Reserve {
        /// The line.
        line: LineId,
        /// The agent.
        agent: AgentId,
    },
    /// Ready agents to leave without a line, for an inbound queue that
    /// shares them (see [`crate::blend::reserve`]): progressive and
    /// predictive dial only for Ready agents beyond them. It limits
    /// dialling, not connecting: a person who answers still gets any free
    /// agent rather than be abandoned. Zero, the default, holds none back.
    HoldBack(usize),
    /// The supervisor's cap on lines ordered or ringing per staffed agent.
    DialLevelCap(f64),
    /// The campaign's ledger figures as of now.
    Compliance(ComplianceSnapshot),
}

/// An order to dial one line; `agent` is set when an agent is reserved for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialOrder {
    /// The new line's id, for its call events.
    pub line: LineId,
    /// The agent held for this call, if any.
    pub agent: Option<AgentId>,
}

/// A decision about an answered call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacerEvent {
    /// Bridge the line to the agent.
    Connect {
        /// The answered line.
        line: LineId,
        /// The agent to bridge it to.
        agent: AgentId,
    },
    /// No agent came within the grace period: play the message and hang up.
    Abandon {
        /// The answered line.
        line: LineId,
    },
}

/// Pacer settings for one campaign.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacerConfig {
    /// The dialling mode.
    pub mode: Mode,
    /// The abandon target the planner aims under.
    pub target: AbandonTarget,
    /// Hard ceiling on lines ordered or ringing.
    pub max_lines: usize,
    /// Hard ceiling on lines ordered or ringing per staffed agent.
    pub max_dial_level: f64,
    /// Calls kept in the sliding window of history.
    pub history: usize,
    /// Calls with a result needed before predicting.
    pub min_history: usize,
    /// Largest chance that a new line's live answer is abandoned, in
    /// multiples of the target, before the feedback scales it.
    pub marginal_risk: f64,
    /// How much each abandon the ledger could still take, beyond the
    /// cushion or short of it, scales the risk the planner takes (`exp`).
    pub feedback: f64,
    /// Abandons of headroom the feedback keeps in reserve per staffed agent.
    pub cushion_per_agent: f64,
    /// Share of the target at which the rolling rate starts to slow dialling.
    pub backoff_from: f64,
    /// Pause before ordering again after a [`CallEvent::NotDialled`]; the
    /// order after it is one probe line, unreserved, until a line is dialled.
    pub starved_pause: Duration,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Predictive,
            target: AbandonTarget::default(),
            max_lines: 500,
            max_dial_level: 4.0,
            history: 300,
            min_history: 30,
            marginal_risk: 2.0,
            feedback: 0.1,
            cushion_per_agent: 1.0,
            backoff_from: 0.9,
            starved_pause: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Agent {
    state: AgentState,
    since: Instant,
    /// The line reserved for or connected to this agent.
    line: Option<LineId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineState {
    Ordered,
    Ringing,
    Waiting { deadline: Instant },
    Connected,
}

#[derive(Clone, Copy, Debug)]
struct Line {
    state: LineState,
    reserved: Option<AgentId>,
    ordered_at: Instant,
}

/// The pacing state machine for one campaign.
#[derive(Debug)]
pub struct Pacer {
    config: PacerConfig,
    /// The situation predictive planning last planned for.
    planned: Option<predictive::Situation>,
    cap: f64,
    hold_back: usize,
    compliance: ComplianceSnapshot,
    agents: BTreeMap<AgentId, Agent>,
    lines: BTreeMap<LineId, Line>,
    history: History,
    next_line: u64,
    starved_until: Option<Instant>,
    /// The last claim found nothing to dial, and no claim has found a lead
    /// since: only one probe line is ordered at a time until one does.
    starved: bool,
    orders: VecDeque<DialOrder>,
    events: VecDeque<PacerEvent>,
    now: Instant,
}

mod machine;
mod planning;
mod predictive;

#[cfg(test)]
mod tests;
