//! The desk's messages, version 1. Every message is a JSON object with a
//! `type`; unknown or malformed messages get an `error` reply and the
//! connection stays up.

use crm::fields::FieldKind;
use crm::model::{CampaignId, Contact, ContactId, Interaction, LeadId};
use crm::script::Rendered;
use crm::store::softphone::PauseCode;
use crm::store::timeline::TimelineEntry;
use serde::{Deserialize, Serialize};
use vocab::CallRef;

/// The protocol version this server speaks.
pub const VERSION: u32 = 1;

/// What the agent's browser sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The browser's WebRTC offer for its audio leg, kept for the shift.
    WebrtcOffer {
        /// The SDP offer.
        sdp: String,
    },
    /// Use the agent's registered SIP desk phone as their audio. By
    /// default the service calls it once; the agent answers and keeps it
    /// off-hook (or on auto-answer) for the shift, and calls are connected
    /// into it. With `per_call` the phone is instead rung for each queue
    /// call and hangs up with it; the agent then takes queue calls only
    /// (a customer who answered an outbound call cannot wait for a phone
    /// to be picked up), and a phone left ringing pauses them.
    DeskPhone {
        /// Ring the phone for each queue call rather than once.
        #[serde(default)]
        per_call: bool,
    },
    /// Ready to take calls of a campaign.
    Ready {
        /// The campaign to work.
        campaign_id: CampaignId,
    },
    /// Not taking calls, with one of the account's pause codes.
    Pause {
        /// Why, for example `break` or `training`.
        code: String,
    },
    /// Hang up the call in progress, or stop a manual dial ringing.
    Hangup,
    /// Put the call in progress on hold (the customer hears the hold tone)
    /// or take it off.
    Hold {
        /// Whether the call is held.
        on: bool,
    },
    /// Send digits to the far end of the call in progress, e.g. to get
    /// through a switchboard's menu.
    Dtmf {
        /// Digits: `0`–`9`, `*`, `#`, `A`–`D`.
        digits: String,
    },
    /// Pause the call's recording (for example while a card number is read
    /// out) or resume it.
    Recording {
        /// Whether the recording is paused.
        paused: bool,
    },
    /// The call in progress reached an answering machine: leave the
    /// campaign's voicemail message on it (after its greeting; the service
    /// plays it and hangs up) and be free at once, with no wrap-up.
    LeaveVoicemail,
    /// Dial a number by hand in the current campaign. Numbers on the
    /// do-not-call list are refused; outside the contact's calling hours
    /// the server answers `dial_check` and dials only when sent again with
    /// `confirm`.
    ManualDial {
        /// The number, in international form.
        number: String,
        /// The agent saw the warnings and dials anyway.
        #[serde(default)]
        confirm: bool,
    },
    /// In a preview campaign, call the contact on screen.
    PreviewCall,
    /// In a preview campaign, skip the contact on screen and see the next.
    PreviewSkip,
    /// Save the outcome of the last call.
    Disposition {
        /// The call it is for, as the browser spelled it; the desk reads it
        /// and answers a reference it never gave out as "no disposition due".
        call_ref: String,
        /// One of the campaign's dispositions.
        disposition: String,
        /// Free-text notes.
        #[serde(default)]
        notes: Option<String>,
        /// When to call back, for a callback disposition (RFC 3339).
        #[serde(default)]
        callback_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Whether the callback is for this agent only.
        #[serde(default)]
        callback_mine: bool,
    },
}

/// What the server sends the agent's browser.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent first: who the agent is and what they may work.
    Welcome {
        /// The protocol version.
        version: u32,
        /// The agent's username.
        username: String,
        /// The campaigns dialling now that the agent may join.
        campaigns: Vec<CampaignSummary>,
        /// Whether the agent's audio leg is connected.
        audio: bool,
        /// The account's pause codes to choose from.
        pause_codes: Vec<PauseCode>,
    },
    /// The answer to the browser's offer: its audio leg is being set up.
    WebrtcAnswer {
        /// The SDP answer.
        sdp: String,
    },
    /// Where the agent's desk phone stands as their audio: `ringing`,
    /// `connected`, `unanswered` or `ended` (it hung up) when kept up for
    /// the shift; `per_call` when it is rung for each queue call.
    DeskPhone {
        /// One of the states above.
        state: &'static str,
    },
    /// The agent's state as the server sees it.
    State {
        /// `paused`, `ready`, `in_call` or `wrap_up`.
        state: &'static str,
        /// The campaign being worked.
        campaign_id: Option<CampaignId>,
        /// Why paused.
        reason: Option<String>,
    },
    /// In a preview campaign, the next contact to call or skip; `contact`
    /// is absent when nobody may be called now.
    Preview {
        /// The lead on screen.
        lead_id: Option<LeadId>,
        /// The contact's card.
        contact: Option<Box<ContactCard>>,
        /// The campaign's call script rendered for this contact; absent
        /// when the campaign has none.
        #[serde(skip_serializing_if = "Option::is_none")]
        script: Option<Box<Rendered>>,
    },
    /// A call was connected to the agent: the contact card.
    Call {
        /// The call.
        call_ref: CallRef,
        /// The contact's card.
        contact: Box<ContactCard>,
        /// For a call the customer made to one of the account's queues:
        /// which, and whether their number is on the do-not-call list
        /// (they are answered all the same: they called us).
        #[serde(skip_serializing_if = "Option::is_none")]
        inbound: Option<InboundCard>,
        /// The campaign's call script rendered for this call: a tree of
        /// plain text (docs/api.md); absent when the campaign has none.
        #[serde(skip_serializing_if = "Option::is_none")]
        script: Option<Box<Rendered>>,
        /// Whether a voicemail message can be left on this call (a call the
        /// campaign placed, and the campaign has a message).
        voicemail: bool,
    },
    /// The contact on the card was changed by someone (a supervisor, a
    /// merge, the agent elsewhere): the card as it is now. The page shows
    /// it, unless the agent's edit form holds unsaved changes, which the
    /// version check would refuse.
    ContactEdited {
        /// The contact's card, at its new version.
        contact: Box<ContactCard>,
        /// The fields changed, by name, those on the card only
        /// (`field.KEY` for the account's fields).
        fields: Vec<String>,
        /// The username of who changed it, when known.
        by: Option<String>,
        /// The call script rendered anew for the contact; absent when the
        /// campaign has none.
        #[serde(skip_serializing_if = "Option::is_none")]
        script: Option<Box<Rendered>>,
    },
    /// The call ended; a disposition is due.
    CallEnded {
        /// The call.
        call_ref: CallRef,
        /// Why it ended.
        cause: Option<String>,
        /// The dispositions to choose from.
        dispositions: Vec<String>,
        /// Seconds left to save one before the wrap-up closes by itself;
        /// absent when the campaign sets no limit.
        #[serde(skip_serializing_if = "Option::is_none")]
        wrap_up_secs: Option<u64>,
    },
    /// Hold and recording of the call in progress, after any change.
    CallControls {
        /// The call.
        call_ref: CallRef,
        /// Whether the customer is on hold.
        held: bool,
        /// `on`, `paused` or `off` (the campaign does not record).
        recording: &'static str,
    },
    /// A manual dial needs the agent's confirmation, or is refused.
    DialCheck {
        /// The number, E.164.
        number: String,
        /// What the agent must know before dialling.
        warnings: Vec<String>,
        /// Whether sending the dial again with `confirm` dials anyway.
        may_confirm: bool,
    },
    /// A manual dial is ringing out.
    Dialling {
        /// The call.
        call_ref: CallRef,
        /// The number, E.164.
        number: String,
    },
    /// A manual or preview call ended before it was connected; nothing is
    /// due from the agent.
    NotConnected {
        /// The call.
        call_ref: Option<CallRef>,
        /// Why, e.g. `Busy` or `NoAnswer`.
        cause: Option<String>,
    },
    /// The wrap-up ran past the campaign's limit: the call was logged
    /// without a disposition and the agent is Ready again.
    WrapUpExpired {
        /// The call.
        call_ref: CallRef,
    },
    /// The voicemail message is being left on the call's machine; the
    /// agent is done with the call (no wrap-up) and goes Ready again.
    VoicemailLeft {
        /// The call.
        call_ref: CallRef,
    },
    /// The disposition was saved.
    Saved {
        /// The call it was for.
        call_ref: CallRef,
    },
    /// The service is restarting: no new call comes, the call in progress
    /// and its wrap-up carry on, and the page reconnects by itself after.
    Restarting {
        /// What the agent should know, in words.
        message: String,
    },
    /// The last message could not be acted on.
    Error {
        /// What went wrong, for the agent.
        message: String,
    },
}

/// A campaign an agent may join.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignSummary {
    /// Its id.
    pub id: CampaignId,
    /// Its name.
    pub name: String,
}

/// What the card says of an inbound call.
#[derive(Debug, Clone, Serialize)]
pub struct InboundCard {
    /// The queue the customer called.
    pub queue: String,
    /// Whether their number is on the do-not-call list.
    pub do_not_call: bool,
}

/// What an agent sees of the contact on a call.
#[derive(Debug, Clone, Serialize)]
pub struct ContactCard {
    /// The contact's id.
    pub id: ContactId,
    /// The contact's fields.
    #[serde(flatten)]
    pub contact: Contact,
    /// Earlier interactions, oldest first.
    pub history: Vec<Interaction>,
    /// The recent part of the contact's timeline, newest first, as the
    /// agent may see it (their campaigns' calls, notes and callbacks, and
    /// edits by field name).
    pub timeline: Vec<TimelineEntry>,
    /// The account's fields shown on the card, in their order, with the
    /// contact's value in each (`null` when it has none). The contact's
    /// `fields` holds these values only.
    pub card_fields: Vec<CardField>,
}

/// One of the account's fields as the card shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CardField {
    /// The field's key, as `PATCH /api/contacts/{id}` names it in `fields`.
    pub key: String,
    /// The name the agent sees.
    pub label: String,
    /// What the field holds.
    pub kind: FieldKind,
    /// The choices of a choice list.
    pub choices: Vec<String>,
    /// Whether it may not be cleared.
    pub required: bool,
    /// The contact's value, as the API shows it.
    pub value: serde_json::Value,
}
