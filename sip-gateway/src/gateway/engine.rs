//! The gateway task: owns every call attempt and trunk, fed by sockets, commands and timers.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rsip::SipMessage;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::agent::AgentEntry;
use super::config::GatewayConfig;
use super::leg::{LegEvent, LegHandle};
use super::now;
use super::phones::{LookupDone, PhoneTarget, Phones};
use super::ports::PortPool;
use super::transport::{Inbound, SipTransport};
use super::trunk::TrunkState;
use super::types::TrunkStatus;
use super::types::{
    CallEvent, CallEventKind, CallRef, CoachMode, DialError, DialRequest, GatewayError,
    IncomingCall,
};
use crate::alarm::Alarm;
use crate::media::Recorder;
use crate::sip::message::{header_value, OutgoingResponse};
use crate::sip::parse::{bad_request_response, parse_message, ParseError};
use crate::sip::transaction::TimerConfig;
use crate::sip::{Call, EndCause, InboundCall, Transport};

/// A request from a [`super::Gateway`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    Dial(
        DialRequest,
        Option<mpsc::UnboundedSender<CallEvent>>,
        oneshot::Sender<Result<CallRef, DialError>>,
    ),
    Hangup(CallRef, Reply),
    Play(CallRef, Arc<[i16]>, Reply),
    StopPlaying(CallRef, Reply),
    Record(CallRef, Recorder, Reply),
    PauseRecording(CallRef, Reply),
    ResumeRecording(CallRef, Reply),
    Bridge(CallRef, CallRef, Reply),
    Hold(CallRef, bool, Reply),
    SendDtmf(CallRef, String, Reply),
    Coach(CallRef, CallRef, CoachMode, Reply),
    ZipTone(CallRef, Reply),
    LeaveMessage(CallRef, Arc<[i16]>, Reply),
    AttachAgent(
        String,
        oneshot::Sender<Result<(CallRef, String), GatewayError>>,
    ),
    Trunks(oneshot::Sender<Vec<TrunkStatus>>),
    Incoming(mpsc::UnboundedSender<IncomingCall>),
    Answer(CallRef, Reply),
    Ring(CallRef, Reply),
    Reject(CallRef, u16, Reply),
    Phone(String, oneshot::Sender<Option<PhoneTarget>>),
    Unregister(String, oneshot::Sender<bool>),
    CallPhone(
        PhoneCall,
        Option<mpsc::UnboundedSender<CallEvent>>,
        oneshot::Sender<Result<CallRef, DialError>>,
    ),
}

/// What [`super::Gateway::call_phone`] asks for.
#[derive(Debug)]
pub(crate) struct PhoneCall {
    pub sip_username: String,
    pub call_ref: CallRef,
    pub ring_timeout: std::time::Duration,
}

pub(crate) type Reply = oneshot::Sender<Result<(), GatewayError>>;

/// One INVITE attempt through one trunk; a call that fails over has several.
/// A call a trunk offered us has one, its [`InboundCall`]; so has a call to a desk phone.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub call: CallCore,
    pub call_ref: CallRef,
    pub route: Route,
    pub ended: bool,
    /// The deadline last pushed to [`Engine::timers`] for this attempt.
    pub scheduled: Option<Instant>,
}

/// Whom an attempt's signalling goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The trunk at this index: the attempt counts among its active calls, and its
    /// connection closing is the trunk's transport failing.
    Trunk(usize),
    /// A registered desk phone, straight at the address it registered from; no trunk's
    /// limits apply, and the call never fails over.
    Phone {
        address: SocketAddr,
        transport: Transport,
    },
}

/// The signalling of one attempt: a call we placed, or one we were offered.
#[derive(Debug)]
// One per live attempt, in a map: the few hundred bytes between the variants do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CallCore {
    Placed(Call),
    Offered(InboundCall),
}

impl CallCore {
    pub fn handle_message(&mut self, message: SipMessage, now: Instant) {
        match self {
            CallCore::Placed(c) => c.handle_message(message, now),
            CallCore::Offered(c) => c.handle_message(message, now),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            CallCore::Placed(c) => c.handle_timeout(now),
            CallCore::Offered(c) => c.handle_timeout(now),
        }
    }

    pub fn hangup(&mut self, now: Instant) {
        self.terminate(EndCause::LocalHangup, now);
    }

    pub fn terminate(&mut self, cause: EndCause, now: Instant) {
        match self {
            CallCore::Placed(c) => c.terminate(cause, now),
            CallCore::Offered(c) => c.terminate(cause, now),
        }
    }

    pub fn transport_error(&mut self, now: Instant) {
        match self {
            CallCore::Placed(c) => c.transport_error(now),
            CallCore::Offered(c) => c.transport_error(now),
        }
    }

    /// Ends the call at once: the connection its far end is reached over closed for good.
    pub fn connection_lost(&mut self, now: Instant) {
        match self {
            CallCore::Placed(c) => c.connection_lost(now),
            CallCore::Offered(c) => c.transport_error(now),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<crate::sip::Transmit> {
        match self {
            CallCore::Placed(c) => c.poll_transmit(),
            CallCore::Offered(c) => c.poll_transmit(),
        }
    }

    pub fn poll_event(&mut self) -> Option<crate::sip::CallEvent> {
        match self {
            CallCore::Placed(c) => c.poll_event(),
            CallCore::Offered(c) => c.poll_event(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            CallCore::Placed(c) => c.poll_timeout(),
            CallCore::Offered(c) => c.poll_timeout(),
        }
    }

    pub fn is_finished(&self) -> bool {
        match self {
            CallCore::Placed(c) => c.is_finished(),
            CallCore::Offered(c) => c.is_finished(),
        }
    }
}

/// A call as the dialler sees it, across its attempts.
#[derive(Debug)]
pub(crate) struct CallEntry {
    pub request: DialRequest,
    /// Call-ID of the current attempt.
    pub call_id: String,
    /// Trunks still to try, in order.
    pub fallbacks: Vec<usize>,
    pub leg: LegHandle,
    pub span: tracing::Span,
    pub answered: bool,
    /// Set once the call is over; `Ended` goes out when the leg has closed.
    pub ending: Option<EndCause>,
}

/// State of the gateway task.
pub(crate) struct Engine {
    pub config: GatewayConfig,
    /// The SIP timers every call's transactions run on, their housekeeping
    /// rounded to one grid for the whole gateway.
    pub sip_timers: TimerConfig,
    pub trunks: Vec<TrunkState>,
    pub attempts: HashMap<String, Attempt>,
    /// The attempts' deadlines, earliest first, by Call-ID. `drive` pushes
    /// an attempt's deadline when it changes; an entry that a later one
    /// replaced, or whose attempt has gone, is dropped when it comes due.
    /// Finding the next timeout is then a peek, not a walk over every live
    /// attempt and its transactions on each turn of the loop.
    pub timers: BinaryHeap<Reverse<(Instant, String)>>,
    pub calls: BTreeMap<CallRef, CallEntry>,
    pub agents: BTreeMap<CallRef, AgentEntry>,
    /// For each leg, the legs told to send it audio (as its peer, or to it
    /// as a listener), so that bridging it elsewhere tells those legs alone
    /// to stop rather than every leg of the node.
    pub feeds: HashMap<CallRef, Vec<CallRef>>,
    pub transport: SipTransport,
    pub ports: PortPool,
    pub events: broadcast::Sender<CallEvent>,
    /// Callers that asked for one call's events on a channel of their own,
    /// which never drops one (unlike the broadcast, which can lag).
    pub watchers: HashMap<CallRef, mpsc::UnboundedSender<CallEvent>>,
    /// Where trunks' changes of health are told.
    pub trunk_events: broadcast::Sender<TrunkStatus>,
    pub leg_events: mpsc::UnboundedSender<LegEvent>,
    pub next_leg_id: u64,
    /// Where calls the trunks offer us go; without it they get 404.
    pub incoming: Option<mpsc::UnboundedSender<IncomingCall>>,
    /// Desk phones' registrar; without it, REGISTER gets 403 like any stranger's request.
    pub phones: Option<Phones>,
    /// The bound SIP UDP address, and TCP when on: where desk phones reach us.
    pub sip_udp: SocketAddr,
    pub sip_tcp: Option<SocketAddr>,
}

impl Engine {
    /// Runs until every gateway handle is dropped.
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut leg_events: mpsc::UnboundedReceiver<LegEvent>,
        mut lookups: mpsc::UnboundedReceiver<LookupDone>,
    ) {
        let mut alarm = Alarm::new();
        loop {
            alarm.set(self.poll_timeout());
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => break,
                },
                Some(input) = inbound.recv() => self.on_inbound(input, now()).await,
                Some(event) = leg_events.recv() => self.on_leg_event(event, now()),
                Some(done) = lookups.recv() => self.on_lookup(done, now()),
                () = alarm.fired() => self.on_timeout(now()),
            }
        }
        let now = now();
        let refs: Vec<CallRef> = self.calls.keys().copied().collect();
        for call_ref in refs {
            self.hangup(call_ref, now);
        }
        tracing::debug!("gateway stopped");
    }

    /// Publishes an event; having no subscriber is normal.
    pub fn emit(&mut self, call_ref: CallRef, kind: CallEventKind) {
        let event = CallEvent { call_ref, kind };
        let ended = matches!(event.kind, CallEventKind::Ended { .. });
        if let Some(watcher) = self.watchers.get(&call_ref) {
            let _ = watcher.send(event.clone());
        }
        if ended {
            self.watchers.remove(&call_ref);
        }
        let _ = self.events.send(event);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let attempts = &self.attempts;
        let calls = first_current(&mut self.timers, |call_id, at| {
            attempts
                .get(call_id)
                .is_some_and(|attempt| attempt.scheduled == Some(at))
        });
        let trunks = self.trunks.iter().filter_map(TrunkState::poll_timeout);
        let phones = self.phones.as_ref().and_then(Phones::poll_timeout);
        calls.into_iter().chain(trunks).chain(phones).min()
    }

    /// Notes an attempt's next deadline in the timer heap if it changed.
    pub(crate) fn schedule(&mut self, call_id: &str) {
        let Some(attempt) = self.attempts.get_mut(call_id) else {
            return;
        };
        let next = attempt.call.poll_timeout();
        if next != attempt.scheduled {
            attempt.scheduled = next;
            if let Some(at) = next {
                self.timers.push(Reverse((at, call_id.to_owned())));
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, call_id))) = self.timers.pop() else {
                break;
            };
            let Some(attempt) = self.attempts.get_mut(&call_id) else {
                continue;
            };
            if attempt.scheduled != Some(at) {
                // Replaced by a later push, which has its own entry.
                continue;
            }
            // Popped: a deadline that `drive` finds unchanged must be pushed again.
            attempt.scheduled = None;
            if attempt.call.poll_timeout().is_some_and(|t| t <= now) {
                attempt.call.handle_timeout(now);
            }
            self.drive(&call_id, now);
        }
        for index in 0..self.trunks.len() {
            if self.trunks[index].poll_timeout().is_some_and(|t| t <= now) {
                self.trunks[index].handle_timeout(now);
                self.flush_trunk(index);
            }
        }
        if let Some(phones) = &mut self.phones {
            if phones.poll_timeout().is_some_and(|t| t <= now) {
                phones.handle_timeout(now);
                self.flush_phones();
            }
        }
    }

    async fn on_inbound(&mut self, input: Inbound, now: Instant) {
        match input {
            Inbound::Connected { peer, writer } => self.transport.connected(peer, writer),
            Inbound::Disconnected { peer } => {
                self.transport.disconnected(peer);
                if let Some(phones) = &mut self.phones {
                    phones.disconnected(peer);
                }
                let hit: Vec<(String, Route)> = self
                    .attempts
                    .iter()
                    .filter(|(_, a)| match a.route {
                        Route::Trunk(index) => {
                            let trunk = &self.trunks[index].trunk;
                            trunk.transport.is_reliable() && trunk.address == peer
                        }
                        Route::Phone { address, transport } => {
                            transport.is_reliable() && address == peer
                        }
                    })
                    .map(|(id, a)| (id.clone(), a.route))
                    .collect();
                for (call_id, route) in hit {
                    if let Some(attempt) = self.attempts.get_mut(&call_id) {
                        match route {
                            Route::Trunk(_) => attempt.call.transport_error(now),
                            // Only the phone opens its connection: none can be opened to it.
                            Route::Phone { .. } => attempt.call.connection_lost(now),
                        }
                    }
                    self.drive(&call_id, now);
                }
            }
            Inbound::Message {
                bytes,
                source,
                transport,
            } => self.on_message(&bytes, source, transport, now).await,
        }
    }

    async fn on_message(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let parsed = match (parse_message(bytes), &mut self.phones) {
            // Desk phones' registrations, from whoever sends them: a provider never does.
            (Ok(SipMessage::Request(request)), Some(phones))
                if request.method == rsip::Method::Register =>
            {
                phones.handle_register(request, source, transport, now);
                return self.flush_phones();
            }
            (parsed, _) => parsed,
        };
        let Some(trunk) = self.trunk_for(source) else {
            // A desk phone we call answers, and sends its requests, from its own address.
            let phone_call = parsed
                .as_ref()
                .ok()
                .and_then(|message| self.phone_call_of(message, source));
            return match (phone_call, parsed) {
                (Some(call_id), Ok(message)) => {
                    if let Some(attempt) = self.attempts.get_mut(&call_id) {
                        attempt.call.handle_message(message, now);
                    }
                    self.drive(&call_id, now)
                }
                (_, parsed) => self.refuse(parsed, source, transport),
            };
        };
        let message = match parsed {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, %source, "malformed SIP message");
                if let Some(reply) = bad_request_response(bytes, &error.to_string()) {
                    self.transport.send(crate::sip::Transmit {
                        destination: source,
                        transport,
                        payload: reply,
                    });
                }
                return;
            }
        };
        let headers = match &message {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        };
        let call_id = header_value(headers, "Call-ID").unwrap_or_default();
        match self.attempts.get_mut(&call_id) {
            Some(attempt) => {
                attempt.call.handle_message(message, now);
                self.drive(&call_id, now);
            }
            None => match message {
                SipMessage::Request(request) if super::inbound::is_new_call(&request) => {
                    self.offered(request, trunk, source, transport, now).await
                }
                message => {
                    self.trunks[trunk].handle_message(message, now);
                    self.flush_trunk(trunk);
                }
            },
        }
    }

    /// Returns the Call-ID of our call to a desk phone that `message` from `source` belongs
    /// to: one with its Call-ID, to a phone at the same IP address.
    fn phone_call_of(&self, message: &SipMessage, source: SocketAddr) -> Option<String> {
        let headers = match message {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        };
        let call_id = header_value(headers, "Call-ID")?;
        let attempt = self.attempts.get(&call_id)?;
        match attempt.route {
            Route::Phone { address, .. } if address.ip() == source.ip() => Some(call_id),
            _ => None,
        }
    }

    /// Returns the trunk a packet from `source` belongs to; trunks are known by IP address.
    fn trunk_for(&self, source: SocketAddr) -> Option<usize> {
        let exact = self.trunks.iter().position(|t| t.trunk.address == source);
        exact.or_else(|| {
            self.trunks
                .iter()
                .position(|t| t.trunk.address.ip() == source.ip())
        })
    }

    /// Answers a stranger's request with 403, keeping no state; anything else is dropped.
    fn refuse(
        &mut self,
        parsed: Result<SipMessage, ParseError>,
        source: SocketAddr,
        transport: Transport,
    ) {
        tracing::debug!(%source, "SIP from an address that is not a trunk");
        let Ok(SipMessage::Request(request)) = parsed else {
            return;
        };
        if request.method == rsip::Method::Ack {
            return;
        }
        let tag = format!("{:016x}", rand::random::<u64>());
        let response = OutgoingResponse::to_request(&request, 403, Some(&tag));
        let mut response = response;
        response.reason = "Forbidden".into();
        self.transport.send(crate::sip::Transmit {
            destination: source,
            transport,
            payload: response.to_bytes(),
        });
    }

    /// Completes the REGISTER whose credentials were looked up.
    fn on_lookup(&mut self, done: LookupDone, now: Instant) {
        if let Some(phones) = &mut self.phones {
            phones.looked_up(done, now);
            self.flush_phones();
        }
    }

    fn flush_phones(&mut self) {
        let Some(phones) = &mut self.phones else {
            return;
        };
        while let Some(transmit) = phones.poll_transmit() {
            self.transport.send(transmit);
        }
    }

    fn flush_trunk(&mut self, index: usize) {
        while let Some(transmit) = self.trunks[index].poll_transmit() {
            self.transport.send(transmit);
        }
        while let Some(up) = self.trunks[index].poll_health() {
            let status = self.trunk_status(index);
            if up {
                tracing::info!(trunk = %status.name, "trunk up: it takes new calls again");
            } else {
                tracing::warn!(trunk = %status.name, "trunk down: no new call goes to it");
            }
            let _ = self.trunk_events.send(status);
        }
    }

    /// Returns a trunk's state now.
    pub(crate) fn trunk_status(&self, index: usize) -> TrunkStatus {
        let t = &self.trunks[index];
        TrunkStatus {
            name: t.config.name.clone(),
            up: t.is_up(),
            active_calls: t.active,
        }
    }

    fn on_leg_event(&mut self, event: LegEvent, now: Instant) {
        match event {
            LegEvent::Dtmf(call_ref, digit) => self.emit(call_ref, CallEventKind::Dtmf { digit }),
            LegEvent::AnsweredBy(call_ref, verdict) => {
                self.emit(call_ref, CallEventKind::AnsweredBy { verdict })
            }
            LegEvent::PlaybackFinished(call_ref) => {
                self.emit(call_ref, CallEventKind::PlaybackFinished)
            }
            LegEvent::GreetingEnded(call_ref, ended) => {
                self.emit(call_ref, CallEventKind::GreetingEnded { ended })
            }
            LegEvent::Connected(call_ref) => self.emit(call_ref, CallEventKind::Answered),
            LegEvent::Disconnected(call_ref) => {
                if let Some(entry) = self.agents.get(&call_ref) {
                    tracing::info!(parent: &entry.span, "agent disconnected");
                }
                self.emit(call_ref, CallEventKind::Disconnected)
            }
            LegEvent::MediaTimeout(call_ref) => {
                let Some(entry) = self.calls.get(&call_ref) else {
                    return;
                };
                tracing::info!(parent: &entry.span, "media timeout");
                let call_id = entry.call_id.clone();
                if let Some(attempt) = self.attempts.get_mut(&call_id) {
                    attempt.call.terminate(EndCause::MediaTimeout, now);
                }
                self.drive(&call_id, now);
            }
            LegEvent::Closed(call_ref) => {
                self.feeds.remove(&call_ref);
                if let Some(entry) = self.calls.remove(&call_ref) {
                    let cause = entry.ending.unwrap_or(EndCause::LocalHangup);
                    tracing::info!(parent: &entry.span, ?cause, "call ended");
                    self.emit(call_ref, CallEventKind::Ended { cause });
                } else if let Some(entry) = self.agents.remove(&call_ref) {
                    let cause = entry.ending.unwrap_or(EndCause::RemoteHangup);
                    tracing::info!(parent: &entry.span, ?cause, "agent leg ended");
                    self.emit(call_ref, CallEventKind::Ended { cause });
                }
            }
        }
    }
}

/// Returns the earliest deadline in `timers` that `current` says still
/// stands, dropping those before it that do not.
///
/// Entries that a later deadline replaced, or whose attempt has gone, are
/// dropped here rather than when they come due: a call answered and hung up
/// at once leaves its INVITE's and its BYE's retransmission timers behind,
/// and each would wake the loop for nothing.
fn first_current(
    timers: &mut BinaryHeap<Reverse<(Instant, String)>>,
    current: impl Fn(&str, Instant) -> bool,
) -> Option<Instant> {
    while let Some(Reverse((at, call_id))) = timers.peek() {
        if current(call_id, *at) {
            return Some(*at);
        }
        timers.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn replaced_and_orphaned_deadlines_never_wake_the_loop() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut timers = BinaryHeap::new();
        // "a" moved from its retransmission at 500 ms to Timer K at 5 s;
        // "b" has ended; "c" stands at 900 ms.
        for (ms, id) in [(500, "a"), (5_000, "a"), (600, "b"), (900, "c")] {
            timers.push(Reverse((at(ms), id.to_string())));
        }
        let scheduled = HashMap::from([("a", at(5_000)), ("c", at(900))]);
        let current = |id: &str, when: Instant| scheduled.get(id) == Some(&when);
        assert_eq!(first_current(&mut timers, current), Some(at(900)));
        assert_eq!(timers.len(), 2, "the two stale entries are gone");
        timers.pop();
        assert_eq!(first_current(&mut timers, current), Some(at(5_000)));
        timers.pop();
        assert_eq!(first_current(&mut timers, current), None);
    }
}
