//! The life of one dialled line, from placed to ended.

use std::time::{Duration, Instant};

use vocab::{CallRef, EndCause};

use super::{CallOutcome, Lead};
use crate::pacer::{AgentId, CallEvent};
use crate::retry::AttemptOutcome;

/// Where a dialled line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    /// Placed; the far end has not rung yet.
    Dialling,
    /// Ringing at the far end.
    Ringing,
    /// Answered, and being screened for a machine since `since`.
    Screening {
        /// When the call was answered.
        since: Instant,
    },
    /// A person answered and waits for an agent; the pacer holds the
    /// deadline after which the call is abandoned.
    Waiting,
    /// The pacer chose an agent and the bridge is being set up.
    Bridging {
        /// The agent.
        agent: AgentId,
    },
    /// Bridged to an agent since `since`.
    Connected {
        /// The agent.
        agent: AgentId,
        /// When the bridge came up.
        since: Instant,
    },
    /// No agent in time: the message plays, then the call is hung up.
    Abandoned,
    /// A machine answered; the call is being hung up.
    Machine,
    /// A machine answered and the voicemail message is being left on it
    /// (after its greeting); the pacer already counted the line as done.
    Message {
        /// The agent who reached the machine and moved on, if one did.
        by: Option<AgentId>,
        /// The message played to its end.
        left: bool,
    },
}

impl LineState {
    /// Returns whether the call has not been answered.
    pub fn unanswered(self) -> bool {
        matches!(self, LineState::Dialling | LineState::Ringing)
    }
}

/// One line this campaign dialled.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub lead: Lead,
    pub call: CallRef,
    /// The agent the call was placed for (preview and manual calls).
    pub for_agent: Option<AgentId>,
    /// Dialled with machine detection.
    pub detect: bool,
    pub state: LineState,
}

impl Line {
    pub fn new(lead: Lead, call: CallRef, for_agent: Option<AgentId>, detect: bool) -> Self {
        Line {
            lead,
            call,
            for_agent,
            detect,
            state: LineState::Dialling,
        }
    }

    /// Returns the agent connected to the call, or choosing to be.
    pub fn agent(&self) -> Option<AgentId> {
        match self.state {
            LineState::Connected { agent, .. } | LineState::Bridging { agent } => Some(agent),
            _ => None,
        }
    }

    /// Returns how the call came out, for the lead's record and the pacer,
    /// when it ends at `now` for `cause`.
    pub fn outcome(&self, cause: EndCause, now: Instant) -> (CallOutcome, CallEvent) {
        let unconnected = |o| CallOutcome::Unconnected(o);
        match self.state {
            LineState::Connected { agent, since } => {
                let talk = now.saturating_duration_since(since);
                (
                    CallOutcome::Conversation { agent, talk },
                    CallEvent::Ended { talk },
                )
            }
            LineState::Abandoned => (unconnected(AttemptOutcome::Abandoned), CallEvent::Abandoned),
            LineState::Machine | LineState::Message { left: false, .. } => (
                unconnected(AttemptOutcome::Machine),
                CallEvent::AnsweredMachine,
            ),
            LineState::Message { left: true, .. } => (
                unconnected(AttemptOutcome::Voicemail),
                CallEvent::AnsweredMachine,
            ),
            // Answered, then gone before an agent was on: the far end hung up.
            LineState::Screening { .. } | LineState::Waiting | LineState::Bridging { .. } => (
                unconnected(AttemptOutcome::NoAnswer),
                CallEvent::Ended {
                    talk: Duration::ZERO,
                },
            ),
            LineState::Dialling | LineState::Ringing => match cause {
                EndCause::Busy => (unconnected(AttemptOutcome::Busy), CallEvent::Busy),
                EndCause::NoAnswer => (unconnected(AttemptOutcome::NoAnswer), CallEvent::NoAnswer),
                _ => (unconnected(AttemptOutcome::Failed), CallEvent::Failed),
            },
        }
    }
}
