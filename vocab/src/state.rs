//! What an agent is doing and where a call is, as every crate names them.

use serde::{Deserialize, Serialize};

/// What an agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Logged in and waiting for a call.
    Ready,
    /// Logged in but not taking calls.
    Paused,
    /// Talking to a contact.
    InCall,
    /// Finishing the notes of the last call.
    WrapUp,
    /// Not logged in.
    LoggedOut,
}

impl AgentState {
    /// Returns the state's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Ready => "ready",
            AgentState::Paused => "paused",
            AgentState::InCall => "in_call",
            AgentState::WrapUp => "wrap_up",
            AgentState::LoggedOut => "logged_out",
        }
    }
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// The INVITE is out.
    Dialling,
    /// The far end is ringing.
    Ringing,
    /// The far end answered; no agent is on it yet.
    Answered,
    /// An inbound caller waits in a queue for an agent.
    Queued,
    /// An agent is talking to the contact.
    Connected,
    /// Answered, but no agent was connected in time: the message plays and
    /// the call ends.
    Abandoned,
    /// An answering machine answered and the campaign's voicemail message
    /// is being left on it; no agent is on the call.
    Voicemail,
    /// The call is over.
    Ended,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_their_wire_names() {
        for s in [
            AgentState::Ready,
            AgentState::Paused,
            AgentState::InCall,
            AgentState::WrapUp,
            AgentState::LoggedOut,
        ] {
            let json = serde_json::to_string(&s).ok();
            assert_eq!(json, Some(format!("\"{}\"", s.as_str())));
        }
        let phase = serde_json::to_string(&CallPhase::Dialling).ok();
        assert_eq!(phase.as_deref(), Some("\"dialling\""));
        let phase = serde_json::to_string(&CallPhase::Abandoned).ok();
        assert_eq!(phase.as_deref(), Some("\"abandoned\""));
        let phase = serde_json::to_string(&CallPhase::Voicemail).ok();
        assert_eq!(phase.as_deref(), Some("\"voicemail\""));
    }
}
