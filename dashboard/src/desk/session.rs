//! One connected agent: the shell around their [`Desk`]. Messages from the
//! browser, call events from the bus, the login session and the wrap-up
//! timer become the desk's inputs; the shell carries out what the desk asks
//! with the store, the floor and the gateway, and sends the page its
//! replies.

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use chrono::{DateTime, Utc};
use crm::events::{CallPhase, Event};
use crm::model::{CampaignId, ContactId, User, UserId};
use crm::store::desks::KeptDesk;
use dialer::floor::Floor;
use dialer::pacer::AgentState;
use dialer::runner::AgentUpdate;
use dialer_core::desk::{self, Action, Desk, Input, Phase, Refusal};
use sip_gateway::gateway::{CallEventKind, CallRef, DialError, DialRequest};
use tokio::sync::broadcast::error::RecvError;

use super::card_news::next_shared;
use super::protocol::{ClientMessage, ServerMessage};
use super::wrapup;
use crate::auth::publish_agent_state;
use crate::revocation::{SessionHold, CLOSE_SIGNED_OUT, SIGNED_OUT_REASON};
use crate::AppState;

/// An agent's desk, with calls known by the gateway's references.
pub(crate) type AgentDesk = Desk<CallRef>;

pub(super) struct Session {
    pub state: AppState,
    /// The node's floor; the desk's route is not served without one.
    pub floor: Arc<Floor>,
    pub user: User,
    /// The login session this connection was opened with.
    token_hash: String,
    pub desk: AgentDesk,
    /// The desk as last kept in the database.
    kept: Option<KeptDesk>,
    /// News of the agent's audio legs: the desk phone calls this
    /// connection placed, and the leg it found.
    phone_news: tokio::sync::mpsc::UnboundedSender<PhoneNews>,
    /// The desk phone calls this connection placed.
    phone_calls: std::collections::HashSet<CallRef>,
    /// The contact on the page's card, whose edits it is sent.
    pub card: Option<ContactId>,
}

/// What became of a call to the agent's desk phone.
#[derive(Debug, Clone, Copy)]
pub(super) enum PhoneNews {
    /// The agent answered: the call is their audio from now on.
    Answered(CallRef),
    /// The call ended, answered or not.
    Ended(CallRef),
}

/// The cause a desk is given for a call a supervisor took over.
pub(crate) const TAKEN_OVER: &str = "TakenOver";

/// Waits for the next call taken over from `user`; forever once the desks' channel is gone.
async fn next_release(
    releases: &mut tokio::sync::broadcast::Receiver<(UserId, CallRef)>,
    user: UserId,
) -> CallRef {
    loop {
        match releases.recv().await {
            Ok((agent, call)) if agent == user => return call,
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "an agent's desk missed takeovers");
            }
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// How long the agent's desk phone rings before the service gives up.
const DESK_PHONE_RING: std::time::Duration = std::time::Duration::from_secs(30);

/// How often a connected desk checks that its login session still holds.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves one agent until the socket closes or their login session ends
/// (on any node: [`crate::revocation`]).
pub async fn run(mut socket: WebSocket, state: AppState, user: User, token_hash: String) {
    // The route refuses the upgrade without a floor, so this never returns.
    let Some(floor) = state.floor.clone() else {
        return;
    };
    let mut bus = state.bus.subscribe();
    // Subscribed before the desk is read: a takeover meanwhile is not missed.
    let mut releases = state.desks.releases();
    // Every node's edits of contacts, when nodes share a stream.
    let mut shared = state.shared.as_ref().map(|s| s.events().subscribe());
    // Watching from before the welcome: a logout meanwhile is not missed.
    let mut hold = SessionHold::new(&state, user.id, token_hash.clone());
    // This node's own desk for the agent, or the one another node kept
    // (the agent's node died and their page reconnected here).
    let kept = match state.store.kept_desk(user.account_id, user.id).await {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!(error = %e, "reading a kept desk failed");
            None
        }
    };
    // Another node's is the newer when it kept the desk last.
    let elsewhere = kept.as_ref().filter(|k| k.node != state.config.node);
    let saved = match elsewhere {
        Some(k) => Some(resumed(k)),
        None => state.desks.load(user.id),
    };
    let returning = saved.is_some();
    let (phone_news, mut phone_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut s = Session {
        desk: saved.unwrap_or_default(),
        floor,
        state,
        user,
        token_hash,
        kept,
        phone_news,
        phone_calls: std::collections::HashSet::new(),
        card: None,
    };
    // The audio leg a reload finds (a desk phone call outlives the page):
    // its end still pauses a waiting agent.
    if let Some(leg) = s.state.legs.get(s.user.id) {
        s.watch_leg(leg);
    }
    let mut opening = vec![s.welcome().await];
    if returning {
        opening.extend(s.restore().await);
    }
    let mut draining = s.floor.watch_draining();
    if *draining.borrow_and_update() {
        opening.push(restarting());
    }
    s.keep().await;
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
            _ = sleep_until(s.desk.poll_timeout(), s.state.clock.now()) => s.timeout().await,
            Some(news) = phone_rx.recv() => s.phone_news(news).await,
            call = next_release(&mut releases, s.user.id) => s.taken_over(call).await,
            edit = next_shared(&mut shared) => s.card_news(&edit).await,
            Ok(()) = draining.changed() => {
                if *draining.borrow_and_update() {
                    vec![restarting()]
                } else {
                    Vec::new()
                }
            }
            _ = check.tick() => {
                if !s.signed_in().await {
                    return s.signed_out(socket).await;
                }
                Vec::new()
            }
            // A logout, a logout everywhere, a password change or a
            // deactivation, on this node or another: this connection ends
            // with its session.
            () = hold.ended() => return s.signed_out(socket).await,
            event = bus.recv() => match event {
                Ok(event) => s.event(&event).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "an agent's desk fell behind the bus");
                    Vec::new()
                }
                Err(RecvError::Closed) => break,
            },
        };
        s.remember();
        s.keep().await;
        for reply in replies {
            if send(&mut socket, &reply).await.is_err() {
                s.dropped().await;
                return;
            }
        }
    }
    s.dropped().await;
}

impl Session {
    /// Feeds the desk one input and carries out what follows.
    async fn step(&mut self, input: Input<CallRef>) -> Vec<ServerMessage> {
        self.desk.handle_input(input, self.state.clock.now());
        self.carry_out().await
    }

    /// The wrap-up timer went off.
    async fn timeout(&mut self) -> Vec<ServerMessage> {
        self.desk.handle_timeout(self.state.clock.now());
        self.carry_out().await
    }

    /// Carries out everything the desk asks, answering its requests, and
    /// returns the messages for the page.
    async fn carry_out(&mut self) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        while let Some(action) = self.desk.poll_action() {
            if let Some(answer) = self.perform(action, &mut out).await {
                self.desk.handle_input(answer, self.state.clock.now());
            }
        }
        out
    }

    /// Carries out one action, adding to `out` what the page must hear, and
    /// returns the desk's answer to a request that succeeded.
    async fn perform(
        &mut self,
        action: Action<CallRef>,
        out: &mut Vec<ServerMessage>,
    ) -> Option<Input<CallRef>> {
        let account = self.user.account_id;
        let gateway = self.floor.gateway();
        let done = match action {
            Action::Send(reply) => {
                let message = self.render(reply).await;
                if let Some(m) = &message {
                    self.note_card(m);
                }
                out.extend(message);
                Ok(None)
            }
            Action::TellFloor { campaign, state } => {
                self.tell_floor(campaign, state).await;
                Ok(None)
            }
            Action::Publish { state, reason } => {
                publish_agent_state(&self.state, &self.user, state, reason.as_deref());
                Ok(None)
            }
            Action::Join { campaign, leave } => self.join(campaign, leave).await.map(Some),
            Action::PreviewNext { campaign } => {
                let next = AgentUpdate::PreviewNext {
                    agent: self.agent(),
                };
                let _ = self.floor.update(account, campaign, next).await;
                Ok(None)
            }
            Action::PreviewCall { campaign } => {
                let call = AgentUpdate::PreviewCall {
                    agent: self.agent(),
                };
                self.preview(campaign, vec![call]).await.map(|()| None)
            }
            Action::PreviewSkip { campaign } => {
                let agent = self.agent();
                let updates = vec![
                    AgentUpdate::PreviewSkip { agent },
                    AgentUpdate::PreviewNext { agent },
                ];
                self.preview(campaign, updates).await.map(|()| None)
            }
            Action::PlaceManualDial {
                campaign,
                number,
                confirm,
                pause_first,
            } => self
                .place_manual_dial(campaign, &number, confirm, pause_first)
                .await
                .map(Some),
            Action::HangUp { call } => match gateway.hangup(call).await {
                Ok(()) => Ok(None),
                Err(_) => Err(error("the call could not be hung up".into())),
            },
            Action::LeaveMessage { campaign, call } => {
                self.leave_message(campaign, call).await.map(|()| None)
            }
            Action::DropCall { call } => {
                let _ = gateway.hangup(call).await;
                Ok(None)
            }
            Action::DropAudio => {
                if let Some(leg) = self.state.legs.remove(self.user.id) {
                    let _ = gateway.hangup(leg).await;
                }
                self.floor.ring_phone(self.user.id, None).await;
                Ok(None)
            }
            Action::Bridge { call } => {
                if let Some(leg) = self.state.legs.get(self.user.id) {
                    let _ = gateway.bridge(call, leg).await;
                }
                Ok(None)
            }
            Action::Hold { call, on } => self.hold(call, on).await.map(Some),
            Action::SendDigits { call, digits } => {
                self.send_digits(call, &digits).await.map(|()| None)
            }
            Action::SetRecording { call, paused } => {
                self.set_recording(call, paused).await.map(Some)
            }
            Action::SaveDisposition {
                campaign,
                call,
                disposition,
            } => {
                let saved = wrapup::save(
                    &self.state,
                    &self.user,
                    wrapup::Wrapup {
                        campaign,
                        call_ref: call,
                        disposition: &disposition.name,
                        notes: disposition.notes.as_deref(),
                        callback_at: disposition.callback_at,
                        callback_mine: disposition.callback_mine,
                    },
                )
                .await;
                match saved {
                    Ok(()) => Ok(Some(Input::DispositionSaved { call })),
                    Err(e) => Err(error(e.to_string())),
                }
            }
            Action::StartWrapUp {
                call,
                campaign,
                cause,
            } => {
                let (ended_at, limit_secs) =
                    wrapup::limit(&self.state, &self.user, call, campaign).await;
                Ok(Some(Input::WrapUpLimit {
                    call,
                    cause,
                    ended_at,
                    limit_secs,
                }))
            }
            Action::ExpireWrapUp { call } => {
                if let Err(e) = wrapup::expire(&self.state, &self.user, call).await {
                    tracing::warn!(error = %e, "closing an expired wrap-up failed");
                }
                Ok(None)
            }
        };
        done.unwrap_or_else(|message| {
            out.push(message);
            None
        })
    }

    /// Turns a message from the browser into the desk's input.
    async fn message(&mut self, text: &str) -> Vec<ServerMessage> {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => m,
            Err(e) => return vec![error(format!("unreadable message: {e}"))],
        };
        let input = match message {
            ClientMessage::WebrtcOffer { sdp } => return self.offer(&sdp).await,
            ClientMessage::DeskPhone { per_call: false } => return self.call_desk_phone().await,
            ClientMessage::DeskPhone { per_call: true } => return self.ring_desk_phone().await,
            ClientMessage::Ready { campaign_id } => Input::Ready {
                campaign: campaign_id,
            },
            ClientMessage::Pause { code } => {
                let known = self
                    .state
                    .store
                    .pause_codes(self.user.account_id)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.code == code);
                Input::Pause { code, known }
            }
            ClientMessage::PreviewCall => Input::PreviewCall,
            ClientMessage::PreviewSkip => Input::PreviewSkip,
            ClientMessage::Hold { on } => Input::Hold { on },
            ClientMessage::Dtmf { digits } => Input::Digits { digits },
            ClientMessage::Recording { paused } => Input::Recording { paused },
            ClientMessage::ManualDial { number, confirm } => Input::ManualDial { number, confirm },
            ClientMessage::Hangup => Input::HangUp,
            ClientMessage::LeaveVoicemail => Input::LeaveMessage,
            ClientMessage::Disposition {
                call_ref,
                disposition,
                notes,
                callback_at,
                callback_mine,
            } => {
                // A reference the desk never gave out cannot be the one due.
                let Some(call) = call_ref_of(&call_ref) else {
                    return vec![error(Refusal::NoDispositionDue.to_string())];
                };
                Input::Disposition {
                    call,
                    disposition: desk::Disposition {
                        name: disposition,
                        notes,
                        callback_at,
                        callback_mine,
                    },
                }
            }
        };
        self.step(input).await
    }

    /// Sets up the browser's audio leg; a new offer (after a reload)
    /// replaces the old leg, and the desk moves a call in progress onto it.
    async fn offer(&mut self, sdp: &str) -> Vec<ServerMessage> {
        if sdp.len() > 64 * 1024 {
            return vec![error("the offer is too large".into())];
        }
        let gateway = self.floor.gateway();
        let (leg, answer) = match gateway.attach_agent(sdp).await {
            Ok(attached) => attached,
            Err(e) => return vec![error(format!("audio could not be set up: {e}"))],
        };
        self.floor.ring_phone(self.user.id, None).await;
        if let Some(old) = self.state.legs.set(self.user.id, leg) {
            let _ = gateway.hangup(old).await;
        }
        let mut out = self.step(Input::AudioConnected).await;
        out.push(ServerMessage::WebrtcAnswer { sdp: answer });
        out
    }

    /// The SIP username of the agent's desk phone, or why there is none.
    async fn my_desk_phone(&self) -> Result<String, ServerMessage> {
        let store = &self.state.store;
        let phones = match store.desk_phones(self.user.account_id).await {
            Ok(phones) => phones,
            Err(_) => return Err(error("your desk phone could not be looked up".into())),
        };
        match phones.into_iter().find(|p| p.user_id == self.user.id) {
            Some(phone) => Ok(phone.sip_username),
            None => Err(error(
                "you have no desk phone: an admin gives you a SIP password (dialcrm phone set)"
                    .into(),
            )),
        }
    }

    /// Takes the agent's queue calls on their desk phone, rung for each
    /// call: no audio leg is kept up, so any the agent had is hung up.
    async fn ring_desk_phone(&mut self) -> Vec<ServerMessage> {
        let phone = match self.my_desk_phone().await {
            Ok(phone) => phone,
            Err(refusal) => return vec![refusal],
        };
        let gateway = self.floor.gateway().clone();
        if !matches!(gateway.phone(&phone).await, Ok(Some(_))) {
            return vec![error(
                "your desk phone is not registered: check it is on and signed in".into(),
            )];
        }
        self.floor.ring_phone(self.user.id, Some(phone)).await;
        if let Some(leg) = self.state.legs.remove(self.user.id) {
            self.phone_calls.remove(&leg);
            let _ = gateway.hangup(leg).await;
        }
        let mut out = vec![ServerMessage::DeskPhone { state: "per_call" }];
        out.extend(self.step(Input::AudioConnected).await);
        out
    }

    /// Calls the agent's registered desk phone to be their audio; what
    /// becomes of the call comes back as [`PhoneNews`].
    async fn call_desk_phone(&mut self) -> Vec<ServerMessage> {
        let phone = match self.my_desk_phone().await {
            Ok(phone) => phone,
            Err(refusal) => return vec![refusal],
        };
        let gateway = self.floor.gateway().clone();
        let call = CallRef::random();
        // Listening from before the call, so its answer is not missed.
        self.watch_leg(call);
        self.phone_calls.insert(call);
        match gateway.call_phone(&phone, call, DESK_PHONE_RING).await {
            Ok(_) => vec![ServerMessage::DeskPhone { state: "ringing" }],
            Err(DialError::PhoneNotRegistered) => {
                self.phone_calls.remove(&call);
                self.call_desk_phone_elsewhere().await
            }
            Err(e) => {
                self.phone_calls.remove(&call);
                vec![error(format!("your desk phone could not be called: {e}"))]
            }
        }
    }

    /// Reaches the agent's desk phone through the other nodes, when it is
    /// registered with one of them: each is asked for it at once (those
    /// without it refuse), and the first call the phone answers is the leg.
    async fn call_desk_phone_elsewhere(&mut self) -> Vec<ServerMessage> {
        let not_registered = || {
            vec![error(
                "your desk phone is not registered: check it is on and signed in".into(),
            )]
        };
        let Some((number, caller_id)) =
            dialer::switchboard::relay_number(self.user.account_id, self.user.id)
        else {
            return not_registered();
        };
        let gateway = self.floor.gateway().clone();
        let mut asked = 0;
        for node in self.floor.peers().to_vec() {
            let call = CallRef::random();
            self.watch_leg(call);
            self.phone_calls.insert(call);
            let request = DialRequest {
                number: number.clone(),
                caller_id: caller_id.clone(),
                trunk: node,
                ring_timeout: DESK_PHONE_RING,
                call_ref: call,
                detect_machine: false,
            };
            match gateway.dial(request).await {
                Ok(_) => asked += 1,
                Err(e) => {
                    tracing::debug!(error = %e, "another node could not be asked for a desk phone");
                    self.phone_calls.remove(&call);
                }
            }
        }
        if asked == 0 {
            return not_registered();
        }
        vec![ServerMessage::DeskPhone { state: "ringing" }]
    }

    /// Tells this connection when `leg` (a desk phone call, or the leg a
    /// reload found) is answered and when it ends.
    fn watch_leg(&self, leg: CallRef) {
        let mut events = self.floor.gateway().events();
        let news = self.phone_news.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) if e.call_ref == leg => match e.kind {
                        CallEventKind::Answered => {
                            let _ = news.send(PhoneNews::Answered(leg));
                        }
                        CallEventKind::Ended { .. } => {
                            let _ = news.send(PhoneNews::Ended(leg));
                            return;
                        }
                        _ => {}
                    },
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// A call to the agent's desk phone was answered or ended.
    async fn phone_news(&mut self, news: PhoneNews) -> Vec<ServerMessage> {
        let gateway = self.floor.gateway().clone();
        match news {
            // A browser leg that recovered says Answered again: nothing to do.
            PhoneNews::Answered(call) if !self.phone_calls.contains(&call) => Vec::new(),
            PhoneNews::Answered(call) => {
                self.floor.ring_phone(self.user.id, None).await;
                // Other nodes still asked for the phone have it not: done.
                let others: Vec<CallRef> = self
                    .phone_calls
                    .iter()
                    .copied()
                    .filter(|c| *c != call)
                    .collect();
                for other in others {
                    self.phone_calls.remove(&other);
                    let _ = gateway.hangup(other).await;
                }
                if let Some(old) = self.state.legs.set(self.user.id, call) {
                    if old != call {
                        let _ = gateway.hangup(old).await;
                    }
                }
                let mut out = vec![ServerMessage::DeskPhone { state: "connected" }];
                out.extend(self.step(Input::AudioConnected).await);
                out
            }
            PhoneNews::Ended(call) => {
                let phone = self.phone_calls.remove(&call);
                if self.state.legs.get(self.user.id) == Some(call) {
                    self.state.legs.remove(self.user.id);
                    let mut out = Vec::new();
                    if phone {
                        out.push(ServerMessage::DeskPhone { state: "ended" });
                    }
                    out.extend(self.step(Input::AudioLost).await);
                    out
                } else if phone && self.phone_calls.is_empty() {
                    // Said once every node asked for the phone said no.
                    vec![ServerMessage::DeskPhone {
                        state: "unanswered",
                    }]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Turns a bus event about this agent, or a call of their account, into
    /// the desk's input.
    async fn event(&mut self, event: &Event) -> Vec<ServerMessage> {
        let me = (self.user.account_id, self.user.id);
        let input = match event {
            Event::PreviewOffered {
                account,
                agent,
                lead_id,
                contact_id,
                ..
            } if (*account, *agent) == me => Input::PreviewOffered {
                lead: *lead_id,
                contact: *contact_id,
            },
            Event::DialRefused { account, agent, .. } if (*account, *agent) == me => {
                Input::DialRefused
            }
            Event::AgentNotAnswering {
                account, user_id, ..
            } if (*account, *user_id) == me => Input::NotAnswering,
            Event::ContactEdited { .. } if self.state.shared.is_none() => {
                return self.card_news(event).await
            }
            Event::CallState {
                account,
                call_ref,
                state,
                agent,
                cause,
                ..
            } if *account == self.user.account_id => {
                let call = *call_ref;
                // A call taken over is no longer the agent's: its end must not
                // touch what they do by then.
                let released = self.state.desks.is_released(self.user.id, call);
                if released && *state == CallPhase::Ended {
                    self.state.desks.ended(self.user.id, call);
                }
                let mine = *agent == Some(self.user.id) && !released;
                match state {
                    CallPhase::Dialling | CallPhase::Ringing if mine => Input::CallRinging { call },
                    CallPhase::Connected if mine => Input::CallConnected {
                        call,
                        recorded: self.recorded_from_start().await,
                    },
                    CallPhase::Voicemail if mine => Input::MessageLeft { call },
                    CallPhase::Ended => Input::CallEnded {
                        call,
                        mine,
                        cause: cause.clone(),
                    },
                    _ => return Vec::new(),
                }
            }
            _ => return Vec::new(),
        };
        self.step(input).await
    }

    /// A supervisor took the agent's call over: for the agent it has ended,
    /// and the wrap-up is due.
    async fn taken_over(&mut self, call: CallRef) -> Vec<ServerMessage> {
        if !matches!(self.desk.phase(), Phase::InCall { call: c, .. } if *c == call) {
            return Vec::new();
        }
        tracing::info!(%call, "the call was taken over from the agent");
        self.step(Input::CallEnded {
            call,
            mine: true,
            cause: Some(TAKEN_OVER.into()),
        })
        .await
    }

    /// Tells a reconnected page what it was doing, after asking the store
    /// whether the call it left is still up.
    async fn restore(&mut self) -> Vec<ServerMessage> {
        let attempt = match self.desk.live_call() {
            // Taken over while the page was away: over for the agent.
            Some(call) if self.state.desks.is_released(self.user.id, *call) => {
                Some(desk::AttemptStatus {
                    answered: true,
                    ended: true,
                })
            }
            Some(call) => self
                .state
                .store
                .attempt_by_ref(self.user.account_id, *call)
                .await
                .ok()
                .map(|a| desk::AttemptStatus {
                    answered: a.answered_at.is_some(),
                    ended: a.ended_at.is_some(),
                }),
            None => None,
        };
        let out = self.step(Input::Reconnected { attempt }).await;
        self.remember();
        out
    }

    /// The browser went away; the desk is kept for its return.
    async fn dropped(&mut self) {
        self.step(Input::Disconnected).await;
        self.remember();
    }

    /// The agent's session ended (logout, expiry, deactivation): the desk
    /// signs out, and the page is told why as the socket closes.
    async fn signed_out(mut self, mut socket: WebSocket) {
        self.step(Input::SignedOut).await;
        self.remember();
        let close = axum::extract::ws::CloseFrame {
            code: CLOSE_SIGNED_OUT,
            reason: Utf8Bytes::from_static(SIGNED_OUT_REASON),
        };
        let _ = socket.send(Message::Close(Some(close))).await;
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

    fn remember(&self) {
        self.state.desks.save(self.user.id, self.desk.clone());
    }

    /// Keeps in the database where the desk stands, when that changed, so
    /// another node can carry on if this one dies.
    async fn keep(&mut self) {
        let now = kept_of(&self.desk, &self.state.config.node);
        if self.kept.as_ref() == Some(&now) {
            return;
        }
        let written = self
            .state
            .store
            .keep_desk(
                self.user.account_id,
                self.user.id,
                &now,
                self.state.clock.now(),
            )
            .await;
        match written {
            Ok(()) => self.kept = Some(now),
            Err(e) => tracing::warn!(error = %e, "keeping an agent's desk failed"),
        }
    }

    /// Tells the campaign's runner the agent's state, with their audio leg.
    pub(super) async fn tell_floor(&self, campaign: CampaignId, state: AgentState) {
        let leg = self.state.legs.get(self.user.id);
        let account = self.user.account_id;
        let _ = self
            .floor
            .agent(account, campaign, self.user.id, state, leg)
            .await;
    }

    /// The agent, as the campaign's runner knows them.
    pub(super) fn agent(&self) -> dialer::pacer::AgentId {
        dialer::floor::agent_id(self.user.id)
    }
}

/// Tells the agent the service is about to restart.
fn restarting() -> ServerMessage {
    ServerMessage::Restarting {
        message: "The service is restarting: no new call will come. Finish the call \
                  in progress and its wrap-up; this page reconnects by itself after."
            .into(),
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), ()> {
    let text = serde_json::to_string(message).map_err(|_| ())?;
    socket
        .send(Message::Text(Utf8Bytes::from(text)))
        .await
        .map_err(|_| ())
}

/// Waits for the time the desk's timer is due, as read on the service's
/// clock at `now`, or for ever.
async fn sleep_until(at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    match at {
        Some(at) => tokio::time::sleep((at - now).to_std().unwrap_or_default()).await,
        None => std::future::pending().await,
    }
}

/// Reads a call reference from the browser; any spelling other than the one
/// the wire writes is not a reference this desk gave out.
fn call_ref_of(text: &str) -> Option<CallRef> {
    text.parse().ok()
}

pub(super) fn error(message: String) -> ServerMessage {
    ServerMessage::Error { message }
}

/// What another node needs of a desk to carry on: the campaign, and the
/// call in progress or wrapped up. Ready, previewing or dialling by hand
/// are kept as paused: the new node's runner knows nothing of them, and
/// the page goes Ready again with one click.
fn kept_of(desk: &AgentDesk, node: &str) -> KeptDesk {
    let (phase, call_ref, pause_code) = match desk.phase() {
        Phase::InCall { call, .. } => ("in_call", Some(*call), None),
        Phase::WrapUp { call, .. } => ("wrap_up", Some(*call), None),
        Phase::Paused { code } => ("paused", None, code.clone()),
        _ => ("paused", None, None),
    };
    KeptDesk {
        campaign_id: desk.campaign(),
        phase: phase.into(),
        call_ref,
        pause_code,
        node: node.to_owned(),
    }
}

/// A desk another node kept, to carry on here; [`Session::restore`] then
/// finds out whether its call is still up.
fn resumed(kept: &KeptDesk) -> AgentDesk {
    let phase = match (kept.phase.as_str(), kept.call_ref) {
        ("in_call", Some(call)) => Phase::InCall {
            call,
            controls: desk::Controls::default(),
        },
        ("wrap_up", Some(call)) => Phase::WrapUp {
            call,
            deadline: None,
        },
        _ => Phase::Paused {
            code: kept.pause_code.clone(),
        },
    };
    Desk::resumed(kept.campaign_id, phase)
}
