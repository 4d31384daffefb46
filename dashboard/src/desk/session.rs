//! One connected agent: messages from the browser, call events from the
//! bus, and the agent's state between them.

use std::str::FromStr;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use crm::events::{AgentState as Shown, CallState, Event};
use crm::model::{CampaignId, CampaignStatus, User};
use dialer::pacer::AgentState;
use dialer::runner::AgentUpdate;
use sip_gateway::gateway::CallRef;
use tokio::sync::broadcast::error::RecvError;

use super::protocol::{CampaignSummary, ClientMessage, ContactCard, ServerMessage, VERSION};
use super::wrapup;
use crate::auth::publish_agent_state;
use crate::AppState;
use dialer::floor::agent_id;

/// Where the agent is in the cycle of calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Phase {
    #[default]
    Paused,
    Ready,
    /// A number dialled by hand rings out; the call reference arrives with
    /// the runner's first report.
    Dialling {
        call: Option<String>,
        number: String,
    },
    InCall(String),
    WrapUp(String),
}

/// The call in progress's hold and recording, as the agent set them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Controls {
    pub held: bool,
    pub recording: Recording,
}

/// Whether the call in progress is being recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) enum Recording {
    #[default]
    Off,
    On,
    Paused,
}

impl Recording {
    pub fn as_str(self) -> &'static str {
        match self {
            Recording::Off => "off",
            Recording::On => "on",
            Recording::Paused => "paused",
        }
    }
}

/// An agent's desk as kept between connections.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Saved {
    campaign: Option<CampaignId>,
    phase: Phase,
    controls: Controls,
}

enum PreviewChoice {
    Call,
    Skip,
}

pub(super) struct Session {
    pub state: AppState,
    pub user: User,
    /// The login session this connection was opened with.
    token_hash: String,
    pub campaign: Option<CampaignId>,
    pub phase: Phase,
    pub controls: Controls,
    /// When the wrap-up due closes by itself, under the campaign's limit.
    wrap_until: Option<tokio::time::Instant>,
}

/// How often a connected desk checks that its login session still holds.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves one agent until the socket closes or their login session ends.
pub async fn run(mut socket: WebSocket, state: AppState, user: User, token_hash: String) {
    let mut bus = state.bus.subscribe();
    let saved = state.desks.load(user.id);
    let returning = saved.is_some();
    let saved = saved.unwrap_or_default();
    let mut s = Session {
        state,
        user,
        token_hash,
        campaign: saved.campaign,
        phase: saved.phase,
        controls: saved.controls,
        wrap_until: None,
    };
    let mut opening = vec![s.welcome().await];
    if returning {
        opening.extend(s.restore().await);
    }
    for message in &opening {
        if send(&mut socket, message).await.is_err() {
            return;
        }
    }
    let mut check = tokio::time::interval(SESSION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let replies = tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => s.message(&text).await,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Vec::new(),
            },
            _ = sleep_until_opt(s.wrap_until) => s.wrap_up_expired().await,
            _ = check.tick() => {
                if !s.signed_in().await {
                    return s.signed_out(socket).await;
                }
                Vec::new()
            }
            event = bus.recv() => match event {
                // A logout, a logout everywhere or a deactivation of this
                // agent: this connection ends with its session.
                Ok(event) if s.logged_out_elsewhere(&event) && !s.signed_in().await => {
                    return s.signed_out(socket).await;
                }
                Ok(event) => s.event(&event).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "an agent's desk fell behind the bus");
                    Vec::new()
                }
                Err(RecvError::Closed) => break,
            },
        };
        s.remember();
        for reply in replies {
            if send(&mut socket, &reply).await.is_err() {
                s.dropped().await;
                return;
            }
        }
    }
    s.dropped().await;
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), ()> {
    let text = serde_json::to_string(message).map_err(|_| ())?;
    socket
        .send(Message::Text(Utf8Bytes::from(text)))
        .await
        .map_err(|_| ())
}

impl Session {
    fn logged_out_elsewhere(&self, event: &Event) -> bool {
        matches!(event, Event::AgentState { user_id, state: Shown::LoggedOut, .. }
            if *user_id == self.user.id)
    }

    /// Whether this connection's login session is still live; a database
    /// that does not answer keeps the agent connected.
    async fn signed_in(&self) -> bool {
        let now = self.state.clock.now();
        !matches!(
            self.state.store.session(&self.token_hash, now).await,
            Ok(None)
        )
    }

    /// The agent's session ended (logout, expiry, deactivation): they leave
    /// the campaign, their audio leg and any call on it are hung up, and the
    /// page is told why as the socket closes.
    async fn signed_out(mut self, mut socket: WebSocket) {
        self.tell_floor(AgentState::LoggedOut).await;
        if let Some(floor) = self.state.floor.clone() {
            if let Phase::InCall(call)
            | Phase::Dialling {
                call: Some(call), ..
            } = &self.phase
            {
                if let Ok(call) = CallRef::from_str(call) {
                    let _ = floor.gateway().hangup(call).await;
                }
            }
            if let Some(leg) = self.state.legs.remove(self.user.id) {
                let _ = floor.gateway().hangup(leg).await;
            }
        }
        if matches!(
            self.phase,
            Phase::Ready | Phase::Paused | Phase::Dialling { .. }
        ) {
            self.phase = Phase::Paused;
        }
        self.remember();
        let close = axum::extract::ws::CloseFrame {
            code: CLOSE_SIGNED_OUT,
            reason: Utf8Bytes::from_static("your session has ended; log in again"),
        };
        let _ = socket.send(Message::Close(Some(close))).await;
    }

    fn remember(&self) {
        self.state.desks.save(
            self.user.id,
            Saved {
                campaign: self.campaign,
                phase: self.phase.clone(),
                controls: self.controls,
            },
        );
    }

    /// Tells a reconnected page what it was doing: the call in progress
    /// (which the next audio offer moves to the new leg) or the wrap-up
    /// still due. A call that ended while the page was away becomes a
    /// wrap-up.
    async fn restore(&mut self) -> Vec<ServerMessage> {
        if let Phase::InCall(call) = &self.phase {
            let ended = self
                .state
                .store
                .attempt_by_ref(self.user.account_id, call)
                .await
                .map(|a| a.ended_at.is_some())
                .unwrap_or(true);
            if ended {
                self.phase = Phase::WrapUp(call.clone());
                self.tell_floor(AgentState::WrapUp).await;
            }
        }
        if let Phase::Dialling { call, .. } = &self.phase {
            let attempt = match call {
                Some(call) => self
                    .state
                    .store
                    .attempt_by_ref(self.user.account_id, call)
                    .await
                    .ok(),
                None => None,
            };
            self.phase = match attempt {
                // Connected while the page was away: the offer that follows
                // moves the call onto the new leg.
                Some(a) if a.ended_at.is_none() && a.answered_at.is_some() => {
                    Phase::InCall(a.call_ref)
                }
                Some(a) if a.ended_at.is_none() => self.phase.clone(),
                _ => Phase::Paused,
            };
        }
        let mut out = vec![self.state_message(Some("reconnected".into()))];
        match self.phase.clone() {
            Phase::InCall(call) => {
                if let Some(contact) = self.card(&call).await {
                    out.push(ServerMessage::Call {
                        call_ref: call.clone(),
                        contact: Box::new(contact),
                    });
                }
                out.push(self.controls_message(&call));
            }
            Phase::Dialling {
                call: Some(call),
                number,
            } => out.push(ServerMessage::Dialling {
                call_ref: call,
                number,
            }),
            Phase::WrapUp(call) => out.push(ServerMessage::CallEnded {
                wrap_up_secs: self.start_wrap_timer(&call).await,
                call_ref: call,
                cause: None,
                dispositions: self.dispositions().await,
            }),
            Phase::Ready | Phase::Paused | Phase::Dialling { .. } => {}
        }
        self.remember();
        out
    }

    pub(super) async fn tell_floor(&self, state: AgentState) {
        if let (Some(floor), Some(campaign)) = (self.state.floor.as_ref(), self.campaign) {
            let _ = floor
                .agent(
                    self.user.account_id,
                    campaign,
                    self.user.id,
                    state,
                    self.state.legs.get(self.user.id),
                )
                .await;
        }
    }

    /// Starts the clock on the wrap-up of a call that has ended, from when
    /// it ended, and returns the whole seconds left; `None` without a limit.
    async fn start_wrap_timer(&mut self, call: &str) -> Option<u64> {
        let campaign = self.campaign?;
        let account = self.user.account_id;
        let store = &self.state.store;
        let limit = store
            .campaign_settings(account, campaign)
            .await
            .ok()?
            .wrap_up_limit_secs;
        let now = self.state.clock.now();
        let ended = store
            .attempt_by_ref(account, call)
            .await
            .ok()
            .and_then(|a| a.ended_at)
            .unwrap_or(now);
        let left = wrapup::remaining(ended, limit, now)?;
        self.wrap_until = Some(tokio::time::Instant::now() + left);
        Some(left.as_secs())
    }

    /// The wrap-up ran out: the call is logged without a disposition and
    /// the agent goes Ready again (or stays Paused without an audio leg).
    async fn wrap_up_expired(&mut self) -> Vec<ServerMessage> {
        self.wrap_until = None;
        let Phase::WrapUp(call) = self.phase.clone() else {
            return Vec::new();
        };
        if let Err(e) = wrapup::expire(&self.state, &self.user, &call).await {
            tracing::warn!(error = %e, "closing an expired wrap-up failed");
        }
        self.phase = Phase::Paused;
        let mut out = vec![ServerMessage::WrapUpExpired { call_ref: call }];
        match self.campaign {
            Some(campaign) => out.extend(self.ready(campaign).await),
            None => out.push(self.state_message(None)),
        }
        out
    }

    async fn dispositions(&self) -> Vec<String> {
        match self.campaign {
            Some(c) => self
                .state
                .store
                .campaign_settings(self.user.account_id, c)
                .await
                .map(|s| s.dispositions.into_iter().map(|d| d.name).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    async fn welcome(&self) -> ServerMessage {
        let account = self.user.account_id;
        let mut campaigns = Vec::new();
        let mine = self
            .state
            .store
            .agent_campaigns(account, self.user.id)
            .await
            .unwrap_or_default();
        if let (Ok(all), Some(floor)) = (
            self.state.store.campaigns(account).await,
            self.state.floor.as_ref(),
        ) {
            for c in all {
                if mine.contains(&c.id)
                    && c.status == CampaignStatus::Running
                    && floor.is_running(c.id).await
                {
                    campaigns.push(CampaignSummary {
                        id: c.id,
                        name: c.name,
                    });
                }
            }
        }
        ServerMessage::Welcome {
            version: VERSION,
            username: self.user.username.clone(),
            campaigns,
            audio: self.state.legs.get(self.user.id).is_some(),
            pause_codes: self
                .state
                .store
                .pause_codes(account)
                .await
                .unwrap_or_default(),
        }
    }

    async fn message(&mut self, text: &str) -> Vec<ServerMessage> {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => m,
            Err(e) => return vec![error(format!("unreadable message: {e}"))],
        };
        match message {
            ClientMessage::WebrtcOffer { sdp } => self.offer(&sdp).await,
            ClientMessage::Ready { campaign_id } => self.ready(campaign_id).await,
            ClientMessage::Pause { code } => self.pause(code).await,
            ClientMessage::PreviewCall => self.preview(PreviewChoice::Call).await,
            ClientMessage::PreviewSkip => self.preview(PreviewChoice::Skip).await,
            ClientMessage::Hold { on } => self.hold(on).await,
            ClientMessage::Dtmf { digits } => self.dtmf(&digits).await,
            ClientMessage::Recording { paused } => self.recording(paused).await,
            ClientMessage::ManualDial { number, confirm } => {
                self.manual_dial(&number, confirm).await
            }
            ClientMessage::Hangup => match &self.phase {
                Phase::InCall(call)
                | Phase::Dialling {
                    call: Some(call), ..
                } => {
                    let hung = match (CallRef::from_str(call), self.state.floor.as_ref()) {
                        (Ok(call), Some(floor)) => floor.gateway().hangup(call).await.is_ok(),
                        _ => false,
                    };
                    if hung {
                        Vec::new()
                    } else {
                        vec![error("the call could not be hung up".into())]
                    }
                }
                _ => vec![error("there is no call to hang up".into())],
            },
            ClientMessage::Disposition {
                call_ref,
                disposition,
                notes,
                callback_at,
                callback_mine,
            } => {
                let due = matches!(&self.phase, Phase::WrapUp(c) if *c == call_ref);
                let Some(campaign) = self.campaign.filter(|_| due) else {
                    return vec![error("no finished call awaits that disposition".into())];
                };
                let saved = wrapup::save(
                    &self.state,
                    &self.user,
                    wrapup::Wrapup {
                        campaign,
                        call_ref: &call_ref,
                        disposition: &disposition,
                        notes: notes.as_deref(),
                        callback_at,
                        callback_mine,
                    },
                )
                .await;
                match saved {
                    Ok(()) => {
                        self.wrap_until = None;
                        let mut out = vec![ServerMessage::Saved { call_ref }];
                        out.extend(self.ready(campaign).await);
                        out
                    }
                    Err(e) => vec![error(e.to_string())],
                }
            }
        }
    }

    /// Sets up the browser's audio leg; a new offer (after a reload)
    /// replaces the old leg, and a call in progress moves to the new one.
    async fn offer(&mut self, sdp: &str) -> Vec<ServerMessage> {
        let Some(floor) = self.state.floor.clone() else {
            return vec![error("audio is not available on this server".into())];
        };
        if sdp.len() > 64 * 1024 {
            return vec![error("the offer is too large".into())];
        }
        let (leg, answer) = match floor.gateway().attach_agent(sdp).await {
            Ok(attached) => attached,
            Err(e) => return vec![error(format!("audio could not be set up: {e}"))],
        };
        if let Some(old) = self.state.legs.set(self.user.id, leg) {
            let _ = floor.gateway().hangup(old).await;
        }
        if let Phase::InCall(call) = &self.phase {
            if let Ok(call) = CallRef::from_str(call) {
                let _ = floor.gateway().bridge(call, leg).await;
            }
        }
        // The leg just recorded is the one tell_floor passes on.
        if self.phase == Phase::Ready {
            self.tell_floor(AgentState::Ready).await;
        }
        vec![ServerMessage::WebrtcAnswer { sdp: answer }]
    }

    async fn ready(&mut self, campaign: CampaignId) -> Vec<ServerMessage> {
        let Some(floor) = self.state.floor.clone() else {
            return vec![error("dialling is not available on this server".into())];
        };
        if matches!(self.phase, Phase::InCall(_) | Phase::Dialling { .. }) {
            return vec![error("finish the call in progress first".into())];
        }
        let assigned = self
            .state
            .store
            .is_assigned(self.user.account_id, campaign, self.user.id)
            .await
            .unwrap_or(false);
        if !assigned {
            return vec![error("you are not assigned to that campaign".into())];
        }
        let Some(leg) = self.state.legs.get(self.user.id) else {
            return vec![error("connect your audio before going ready".into())];
        };
        if let Some(old) = self.campaign.filter(|c| *c != campaign) {
            let _ = floor
                .agent(
                    self.user.account_id,
                    old,
                    self.user.id,
                    AgentState::LoggedOut,
                    None,
                )
                .await;
        }
        let joined = floor
            .agent(
                self.user.account_id,
                campaign,
                self.user.id,
                AgentState::Ready,
                Some(leg),
            )
            .await;
        if joined.is_err() {
            return vec![error("that campaign is not dialling".into())];
        }
        self.campaign = Some(campaign);
        self.phase = Phase::Ready;
        publish_agent_state(&self.state, &self.user, Shown::Ready, None);
        let previewing = self
            .state
            .store
            .campaign_settings(self.user.account_id, campaign)
            .await
            .is_ok_and(|s| s.mode == crm::store::campaign_settings::DialMode::Preview);
        if previewing {
            let next = AgentUpdate::PreviewNext {
                agent: agent_id(self.user.id),
            };
            let _ = floor.update(self.user.account_id, campaign, next).await;
        }
        vec![self.state_message(None)]
    }

    async fn preview(&mut self, choice: PreviewChoice) -> Vec<ServerMessage> {
        let (Some(floor), Some(campaign), Phase::Ready) =
            (self.state.floor.clone(), self.campaign, &self.phase)
        else {
            return vec![error("go ready in a preview campaign first".into())];
        };
        let agent = agent_id(self.user.id);
        let updates = match choice {
            PreviewChoice::Call => vec![AgentUpdate::PreviewCall { agent }],
            PreviewChoice::Skip => vec![
                AgentUpdate::PreviewSkip { agent },
                AgentUpdate::PreviewNext { agent },
            ],
        };
        for update in updates {
            if floor
                .update(self.user.account_id, campaign, update)
                .await
                .is_err()
            {
                return vec![error("that campaign is not dialling".into())];
            }
        }
        Vec::new()
    }

    async fn pause(&mut self, code: String) -> Vec<ServerMessage> {
        let known = self
            .state
            .store
            .pause_codes(self.user.account_id)
            .await
            .unwrap_or_default();
        if !known.iter().any(|c| c.code == code) {
            return vec![error(format!(
                "{:?} is not one of this account's pause codes",
                code.chars().take(32).collect::<String>()
            ))];
        }
        if matches!(self.phase, Phase::Dialling { .. }) {
            return vec![error("hang up the call you are dialling first".into())];
        }
        self.tell_floor(AgentState::Paused).await;
        if !matches!(self.phase, Phase::InCall(_) | Phase::WrapUp(_)) {
            self.phase = Phase::Paused;
        }
        publish_agent_state(&self.state, &self.user, Shown::Paused, Some(&code));
        vec![self.state_message(Some(code))]
    }

    async fn event(&mut self, event: &Event) -> Vec<ServerMessage> {
        if let Event::PreviewOffered {
            account,
            agent,
            lead_id,
            contact_id,
            ..
        } = event
        {
            if *account != self.user.account_id || *agent != self.user.id {
                return Vec::new();
            }
            let contact = match contact_id {
                Some(c) => self.card_of(*c).await.map(Box::new),
                None => None,
            };
            return vec![ServerMessage::Preview {
                lead_id: *lead_id,
                contact,
            }];
        }
        if let Event::DialRefused { account, agent, .. } = event {
            if *account != self.user.account_id || *agent != self.user.id {
                return Vec::new();
            }
            return self.not_connected(None, Some("refused".into())).await;
        }
        let Event::CallState {
            account,
            call_ref,
            state,
            agent,
            cause,
            ..
        } = event
        else {
            return Vec::new();
        };
        if *account != self.user.account_id {
            return Vec::new();
        }
        let mine = *agent == Some(self.user.id);
        match state {
            CallState::Dialling | CallState::Ringing if mine => {
                if let Phase::Dialling { call: None, number } = &self.phase {
                    let number = number.clone();
                    self.phase = Phase::Dialling {
                        call: Some(call_ref.clone()),
                        number: number.clone(),
                    };
                    return vec![ServerMessage::Dialling {
                        call_ref: call_ref.clone(),
                        number,
                    }];
                }
                Vec::new()
            }
            CallState::Connected if mine => {
                self.phase = Phase::InCall(call_ref.clone());
                self.controls = Controls {
                    held: false,
                    recording: self.recorded_from_start().await,
                };
                publish_agent_state(&self.state, &self.user, Shown::InCall, None);
                let mut out = vec![self.state_message(None)];
                if let Some(contact) = self.card(call_ref).await {
                    out.push(ServerMessage::Call {
                        call_ref: call_ref.clone(),
                        contact: Box::new(contact),
                    });
                }
                out.push(self.controls_message(call_ref));
                out
            }
            CallState::Ended if mine && self.dialling(call_ref) => {
                self.not_connected(Some(call_ref.clone()), cause.clone())
                    .await
            }
            CallState::Ended if self.phase == Phase::InCall(call_ref.clone()) => {
                self.phase = Phase::WrapUp(call_ref.clone());
                self.controls = Controls::default();
                self.tell_floor(AgentState::WrapUp).await;
                publish_agent_state(&self.state, &self.user, Shown::WrapUp, None);
                let dispositions = self.dispositions().await;
                vec![
                    self.state_message(None),
                    ServerMessage::CallEnded {
                        call_ref: call_ref.clone(),
                        cause: cause.clone(),
                        dispositions,
                        wrap_up_secs: self.start_wrap_timer(call_ref).await,
                    },
                ]
            }
            _ => Vec::new(),
        }
    }

    async fn card(&self, call_ref: &str) -> Option<ContactCard> {
        let attempt = self
            .state
            .store
            .attempt_by_ref(self.user.account_id, call_ref)
            .await
            .ok()?;
        self.card_of(attempt.contact_id?).await
    }

    async fn card_of(&self, contact: crm::model::ContactId) -> Option<ContactCard> {
        let store = &self.state.store;
        let account = self.user.account_id;
        let contact = store.contact(account, contact).await.ok()?;
        let history = store
            .interactions_for_contact(account, contact.id)
            .await
            .unwrap_or_default();
        Some(ContactCard {
            id: contact.id,
            contact,
            history,
        })
    }

    pub(super) fn state_message(&self, reason: Option<String>) -> ServerMessage {
        ServerMessage::State {
            state: match self.phase {
                Phase::Paused => "paused",
                Phase::Ready => "ready",
                Phase::Dialling { .. } => "dialling",
                Phase::InCall(_) => "in_call",
                Phase::WrapUp(_) => "wrap_up",
            },
            campaign_id: self.campaign,
            reason,
        }
    }

    /// The browser went away: the agent is paused, and a call in progress
    /// or a wrap-up due stays as it is for the page's return.
    async fn dropped(&mut self) {
        if matches!(self.phase, Phase::Ready | Phase::Paused) {
            self.tell_floor(AgentState::Paused).await;
            self.phase = Phase::Paused;
        }
        self.remember();
        publish_agent_state(&self.state, &self.user, Shown::Paused, Some("disconnected"));
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The close code a desk gets when the agent's login session ended.
pub const CLOSE_SIGNED_OUT: u16 = 4001;

pub(super) fn error(message: String) -> ServerMessage {
    ServerMessage::Error { message }
}
