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
//! - **Predictive** opens unreserved lines. From a sliding window of recent
//!   calls it estimates `p`, the chance a line is answered live, the mean
//!   time from order to answer (the horizon), and mean talk and wrap-up
//!   times. With `k` lines out, answers are `X ~ Binomial(k, p)`; the agents
//!   able to take them are the free ones plus `S`, the busy agents freed
//!   within the horizon (each with probability from an exponential model of
//!   remaining talk and wrap-up). It opens the most lines for which expected
//!   abandons `E[max(X - free - S, 0)]` stay within a planning target times
//!   expected live answers `k p`. The planning target is the abandon target
//!   times a safety factor, scaled down linearly to zero as the worse of the
//!   ledger's 24-hour and 30-day rates climbs from `backoff_from` of the
//!   target to the target itself; with no headroom left, or too little
//!   history, it opens one line per free agent. Lines beyond the free agents
//!   never exceed the ledger's headroom plus one, so even if every line were
//!   answered at once the rolling rate could pass the target by at most one
//!   call; this costs utilisation while a campaign's windows are nearly empty.
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

mod model;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::compliance::{AbandonTarget, ComplianceSnapshot, ABANDON_GRACE};
use model::History;

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
    /// Share of the target the planner aims for, below 1 to absorb model error.
    pub safety: f64,
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
            safety: 0.7,
            backoff_from: 0.6,
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

#[cfg(test)]
mod tests;
