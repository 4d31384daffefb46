//! What goes into a campaign and what comes out: its settings, its inputs,
//! the facts it writes, what it reports, and the commands its shell runs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vocab::{AmdVerdict, CallRef, ContactId, EndCause, LeadId};

use super::ReadId;
use crate::compliance::{ComplianceSnapshot, Counts};
use crate::pacer::{AgentId, AgentState, LineId, PacerConfig};
use crate::retry::AttemptOutcome;

/// The time an input happens at: monotonic for timers, wall for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for the pacer and every timer.
    pub at: Instant,
    /// Calendar time, for what is written and the rolling windows.
    pub wall: DateTime<Utc>,
}

/// A lead claimed for dialling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// The lead's id in the Store.
    pub id: LeadId,
    /// The contact behind it, for the agent's screen.
    pub contact_id: ContactId,
    /// The number to dial, E.164.
    pub number: String,
    /// The agent the lead is kept for: a callback booked for them, inside
    /// the campaign's grace. Only a claim offering them returns it, and its
    /// call is kept for them.
    pub owner: Option<AgentId>,
}

/// How a call ended, as the lead's record takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// No conversation: retried or finished by the campaign's rules.
    Unconnected(AttemptOutcome),
    /// An agent talked to the contact for this long; the agent's
    /// disposition decides what happens to the lead.
    Conversation {
        /// The agent.
        agent: AgentId,
        /// How long they talked.
        talk: Duration,
    },
}

/// Where a call is, as reported outward and shown on the wire.
pub use vocab::CallPhase;

/// One campaign's settings, as the core needs them.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    /// Pacing mode, target and ceilings.
    pub pacer: PacerConfig,
    /// The supervisor's cap on lines per staffed agent at start.
    pub dial_level_cap: f64,
    /// Screens calls the pacer places for answering machines.
    pub detect_machines: bool,
    /// The silence after a greeting that tells a person apart; a person
    /// heard by the detector has already waited this long.
    pub after_greeting: Duration,
    /// Whether an abandoned call hears a message before it is hung up.
    pub abandon_message: bool,
    /// Whether the campaign has a voicemail message: a machine the detector
    /// hears gets it after its greeting, and an agent who reached one may
    /// leave it and move on.
    pub voicemail_message: bool,
    /// Whether connected calls are recorded.
    pub record: bool,
    /// How long a lead an agent skipped in preview stays held back.
    pub skip_hold: Duration,
    /// How often the campaign's figures are reported.
    pub figures_every: Duration,
    /// How often the compliance figures are read again from the database,
    /// where every node's attempts are.
    pub read_every: Duration,
}

impl CampaignConfig {
    /// Settings with the usual periods for a pacer configuration.
    pub fn new(pacer: PacerConfig) -> Self {
        CampaignConfig {
            pacer,
            dial_level_cap: pacer.max_dial_level,
            detect_machines: false,
            after_greeting: Duration::from_millis(800),
            abandon_message: false,
            voicemail_message: false,
            record: false,
            skip_hold: Duration::from_secs(600),
            figures_every: Duration::from_secs(1),
            read_every: Duration::from_secs(2),
        }
    }
}

/// A change on an agent's side, from the agent's desk.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentUpdate {
    /// The agent's state changed; `leg` is the agent's media leg in the
    /// gateway, which answered calls are bridged into.
    State {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
        /// The agent's nailed-up media leg, when connected.
        leg: Option<CallRef>,
    },
    /// In a preview campaign, the agent asks for the next contact to look at.
    PreviewNext {
        /// The agent.
        agent: AgentId,
    },
    /// The agent chose to call the contact on screen.
    PreviewCall {
        /// The agent.
        agent: AgentId,
    },
    /// The agent chose not to call the contact on screen; it is held back
    /// from this agent's next previews for a while.
    PreviewSkip {
        /// The agent.
        agent: AgentId,
    },
    /// The agent reached an answering machine: the campaign's voicemail
    /// message is left on it after the greeting and the call is hung up,
    /// while the agent is free at once. Ignored without a message, or when
    /// the agent has no connected call.
    LeaveMessage {
        /// The agent.
        agent: AgentId,
    },
    /// A Paused agent dials this lead, leased for them, by hand.
    ManualDial {
        /// The agent.
        agent: AgentId,
        /// The lead, already leased to this node.
        lead: Lead,
    },
    /// The supervisor's cap on lines per staffed agent. Not an agent's
    /// change, but it keeps its order with them on the same channel.
    DialLevelCap(f64),
    /// How many Ready agents to leave idle for inbound queues that share
    /// them (the blend's threshold): dialling covers only those beyond.
    HoldBack(usize),
}

/// What the gateway said about one of the campaign's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    /// The far end is ringing, or sends early media.
    Ringing,
    /// The call was answered.
    Answered,
    /// Who answered, for a screened call.
    AnsweredBy(AmdVerdict),
    /// The abandon or voicemail message reached its end.
    PlaybackFinished,
    /// The call is over; nothing follows.
    Ended(EndCause),
}

/// What the shell's claim for a line came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lead is leased and its attempt opened under `call`: dial it.
    Placed {
        /// The lead.
        lead: Lead,
        /// The new call's reference.
        call: CallRef,
    },
    /// No lead may be called now.
    Nothing,
    /// Claiming or opening the attempt failed; any lead was given back.
    Failed,
}

/// One input to a campaign.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An agent's change.
    Agent(AgentUpdate),
    /// The answer to [`Command::Claim`].
    Claimed {
        /// The line the claim was for.
        line: LineId,
        /// What it came to.
        claim: Claim,
    },
    /// The answer to [`Command::ClaimPreview`].
    Previewed {
        /// The agent.
        agent: AgentId,
        /// The lead held for them, if any may be called.
        lead: Option<Lead>,
    },
    /// The gateway's event for one of this campaign's calls.
    Call {
        /// The call.
        call: CallRef,
        /// What happened.
        event: LineEvent,
    },
    /// The gateway refused to place the call of [`Command::Dial`].
    DialFailed {
        /// The call.
        call: CallRef,
    },
    /// The bridge of [`Command::Bridge`] is up.
    Bridged {
        /// The call.
        call: CallRef,
    },
    /// The bridge of [`Command::Bridge`] failed.
    BridgeFailed {
        /// The call.
        call: CallRef,
    },
    /// The message of [`Command::PlayAbandonMessage`] or
    /// [`Command::LeaveMessage`] could not play.
    PlayFailed {
        /// The call.
        call: CallRef,
    },
    /// The answer to [`Command::ReadFigures`].
    FiguresRead {
        /// Which read.
        read: ReadId,
        /// The last 24 hours, every node.
        day: Counts,
        /// The last 30 days, every node.
        month: Counts,
    },
}

/// A fact to write to the Store, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// The call was answered.
    Answered {
        /// The call.
        call: CallRef,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent was connected: a live answer for compliance.
    Connected {
        /// The call.
        call: CallRef,
        /// When.
        at: DateTime<Utc>,
    },
    /// The call was abandoned: a live answer and an abandon for compliance.
    Abandoned {
        /// The call.
        call: CallRef,
        /// When.
        at: DateTime<Utc>,
    },
    /// The call ended: close the attempt and schedule the lead.
    Finished {
        /// The lead.
        lead: Lead,
        /// The call.
        call: CallRef,
        /// How it ended.
        outcome: CallOutcome,
        /// When.
        at: DateTime<Utc>,
    },
    /// Give a claimed lead back undialled.
    Release {
        /// The lead.
        lead: Lead,
    },
}

/// What the campaign tells the rest of the service.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A call changed phase.
    Call {
        /// The call.
        call_ref: CallRef,
        /// The lead called.
        lead: Lead,
        /// The new phase.
        phase: CallPhase,
        /// The agent on it: once connected, or from the start when the call
        /// was placed for one agent (preview and manual calls).
        agent: Option<AgentId>,
        /// Why it ended, once ended.
        cause: Option<EndCause>,
    },
    /// A contact offered to an agent in a preview campaign; `None` when no
    /// lead may be called now.
    Preview {
        /// The agent.
        agent: AgentId,
        /// The lead to look at.
        lead: Option<Lead>,
    },
    /// An agent's manual dial could not be placed (they were not Paused,
    /// had no audio leg, or already had a line); the lead was given back.
    ManualRefused {
        /// The agent.
        agent: AgentId,
    },
    /// The campaign's figures.
    Figures {
        /// Lines ordered, ringing or connected.
        lines: usize,
        /// Agents Ready.
        ready: usize,
        /// Calls placed since the runner started.
        dialled: u64,
        /// Calls answered since the runner started.
        answered: u64,
        /// The rolling figures of every node, as last read plus this
        /// runner's own since.
        compliance: ComplianceSnapshot,
        /// The most lines per staffed agent the pacer may dial now.
        dial_level_cap: f64,
    },
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Lease a lead (or take `held`, already leased), open its attempt
    /// under a fresh call reference, and answer with [`Input::Claimed`].
    Claim {
        /// The line.
        line: LineId,
        /// A lead already held for the line's agent (preview, manual).
        held: Option<Lead>,
        /// The agents the line's call may be kept for: a callback booked
        /// for one of them, inside its grace, may be claimed for this line,
        /// and none booked for anyone else.
        agents: Vec<AgentId>,
    },
    /// Lease a lead for an agent to look at, which may be a callback booked
    /// for them and for no one else; answer with [`Input::Previewed`].
    ClaimPreview {
        /// The agent.
        agent: AgentId,
    },
    /// Place the call; answer [`Input::DialFailed`] if the gateway refuses.
    Dial {
        /// The call's reference.
        call: CallRef,
        /// The number, E.164.
        number: String,
        /// Whether to screen the answer for a machine.
        detect_machine: bool,
    },
    /// Bridge the call into the agent's leg; answer [`Input::Bridged`] or
    /// [`Input::BridgeFailed`].
    Bridge {
        /// The call.
        call: CallRef,
        /// The agent's media leg.
        leg: CallRef,
    },
    /// Play the campaign's abandon message; answer [`Input::PlayFailed`]
    /// if it cannot play.
    PlayAbandonMessage {
        /// The call.
        call: CallRef,
    },
    /// Leave the campaign's voicemail message on the machine that answered,
    /// after its greeting, in place of anything bridged; answer
    /// [`Input::PlayFailed`] if it cannot be left.
    LeaveMessage {
        /// The call.
        call: CallRef,
    },
    /// Hang the call up.
    Hangup {
        /// The call.
        call: CallRef,
    },
    /// Record the connected call, and register the recording with its lead.
    Record {
        /// The call.
        call: CallRef,
        /// Its lead.
        lead: Lead,
    },
    /// Write a fact to the Store, after every write before it.
    Write(Write),
    /// Read the campaign's figures from the Store, after every write queued
    /// before it; answer with [`Input::FiguresRead`].
    ReadFigures(ReadId),
    /// Tell the rest of the service.
    Report(Report),
}
