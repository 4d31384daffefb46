//! What the engine does for each call: dialling, failover, commands, and the core's events.

use std::time::Instant;

use super::engine::{Attempt, CallCore, CallEntry, Command, Engine, Route};
use super::inbound::Decision;
use super::leg::{self, LegCommand};
use super::types::{CallEventKind, CallRef, DialError, DialRequest, GatewayError};
use crate::media::srtp::MasterKey;
use crate::sip::call::CallEvent as CoreEvent;
use crate::sip::{Call, CallParams};

impl Engine {
    /// Carries out one command from a gateway handle.
    pub(crate) async fn on_command(&mut self, command: Command) {
        let now = tokio::time::Instant::now().into_std();
        match command {
            Command::Dial(request, watcher, reply) => {
                let call_ref = request.call_ref;
                let placed = self.dial(request, now).await;
                if let (Ok(_), Some(watcher)) = (&placed, watcher) {
                    self.watchers.insert(call_ref, watcher);
                }
                let _ = reply.send(placed);
            }
            Command::Trunks(reply) => {
                let all = (0..self.trunks.len())
                    .map(|i| self.trunk_status(i))
                    .collect();
                let _ = reply.send(all);
            }
            Command::Hangup(call_ref, reply) if self.agents.contains_key(&call_ref) => {
                let _ = reply.send(self.detach_agent(call_ref));
            }
            Command::Hangup(call_ref, reply) => {
                let found = self.calls.contains_key(&call_ref);
                self.hangup(call_ref, now);
                let _ = reply.send(found.then_some(()).ok_or(GatewayError::NoSuchCall));
            }
            Command::Play(call_ref, samples, reply) => {
                let _ = reply.send(self.to_leg(call_ref, LegCommand::Play(samples)));
            }
            Command::StopPlaying(call_ref, reply) => {
                let _ = reply.send(self.to_leg(call_ref, LegCommand::StopPlaying));
            }
            Command::Record(call_ref, recorder, reply) => {
                let _ = reply.send(self.to_leg(call_ref, LegCommand::Record(recorder)));
            }
            Command::PauseRecording(call_ref, reply) => {
                let _ = reply.send(self.to_leg(call_ref, LegCommand::PauseRecording));
            }
            Command::ResumeRecording(call_ref, reply) => {
                let _ = reply.send(self.to_leg(call_ref, LegCommand::ResumeRecording));
            }
            Command::Bridge(a, b, reply) => {
                let _ = reply.send(self.bridge(a, b));
            }
            Command::Hold(call_ref, on, reply) => {
                let held = self
                    .answered_leg(call_ref)
                    .map(|leg| leg.send(LegCommand::Hold(on)));
                let _ = reply.send(held);
            }
            Command::Coach(call, listener, mode, reply) => {
                let _ = reply.send(self.coach(call, listener, mode));
            }
            Command::LeaveMessage(call_ref, samples, reply) => {
                let left = self.answered_leg(call_ref).cloned().map(|leg| {
                    // The message replaces whoever was bridged: the agent
                    // who found the machine hears no more of it.
                    self.forget_everywhere(call_ref, &[call_ref]);
                    leg.send(LegCommand::Unbridge);
                    leg.send(LegCommand::LeaveMessage(samples));
                });
                let _ = reply.send(left);
            }
            Command::ZipTone(agent, reply) => {
                let _ = reply.send(self.zip_tone(agent));
            }
            Command::SendDtmf(call_ref, digits, reply) => {
                let sent = self
                    .answered_leg(call_ref)
                    .map(|leg| leg.send(LegCommand::SendDtmf(digits)));
                let _ = reply.send(sent);
            }
            Command::AttachAgent(offer, reply) => {
                let _ = reply.send(self.attach_agent(&offer).await);
            }
            Command::Incoming(handler) => self.incoming = Some(handler),
            Command::Answer(call_ref, reply) => {
                let _ = reply.send(self.decide(call_ref, Decision::Answer, now));
            }
            Command::Ring(call_ref, reply) => {
                let _ = reply.send(self.decide(call_ref, Decision::Ring, now));
            }
            Command::Reject(call_ref, status, reply) => {
                let _ = reply.send(self.decide(call_ref, Decision::Reject(status), now));
            }
            Command::Phone(username, reply) => {
                let target = self.phones.as_ref().and_then(|p| p.target(&username, now));
                let _ = reply.send(target);
            }
            Command::CallPhone(call, watcher, reply) => {
                let call_ref = call.call_ref;
                let placed = self.call_phone(call, now).await;
                if let (Ok(_), Some(watcher)) = (&placed, watcher) {
                    self.watchers.insert(call_ref, watcher);
                }
                let _ = reply.send(placed);
            }
            Command::Unregister(username, reply) => {
                let removed = self
                    .phones
                    .as_mut()
                    .is_some_and(|p| p.unregister(&username));
                let _ = reply.send(removed);
            }
        }
    }

    /// Ends a call: CANCEL before answer, BYE after.
    pub(crate) fn hangup(&mut self, call_ref: CallRef, now: Instant) {
        let Some(entry) = self.calls.get(&call_ref) else {
            return;
        };
        let call_id = entry.call_id.clone();
        if let Some(attempt) = self.attempts.get_mut(&call_id) {
            attempt.call.hangup(now);
        }
        self.drive(&call_id, now);
    }

    /// Sends what an attempt queued and acts on its events.
    pub(crate) fn drive(&mut self, call_id: &str, now: Instant) {
        let Some(attempt) = self.attempts.get_mut(call_id) else {
            return;
        };
        let mut events = Vec::new();
        while let Some(transmit) = attempt.call.poll_transmit() {
            self.transport.send(transmit);
        }
        while let Some(event) = attempt.call.poll_event() {
            events.push(event);
        }
        let (call_ref, route, finished) =
            (attempt.call_ref, attempt.route, attempt.call.is_finished());
        for event in events {
            if let CoreEvent::Ended { .. } = event {
                if let Some(attempt) = self.attempts.get_mut(call_id) {
                    if !attempt.ended {
                        attempt.ended = true;
                        if let Route::Trunk(trunk) = route {
                            self.trunks[trunk].active -= 1;
                        }
                    }
                }
            }
            let current = self
                .calls
                .get(&call_ref)
                .is_some_and(|e| e.call_id == call_id);
            if current {
                self.on_core_event(call_ref, event, now);
            }
        }
        if finished {
            self.attempts.remove(call_id);
        } else {
            self.schedule(call_id);
        }
    }

    fn on_core_event(&mut self, call_ref: CallRef, event: CoreEvent, now: Instant) {
        let Some(entry) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let span = entry.span.clone();
        let _entered = span.enter();
        let kind = match event {
            CoreEvent::Trying => CallEventKind::Trying,
            CoreEvent::Ringing => CallEventKind::Ringing,
            CoreEvent::EarlyMedia { media } => {
                entry.leg.send(LegCommand::Media {
                    media,
                    answered: false,
                });
                CallEventKind::EarlyMedia
            }
            CoreEvent::Answered { media } => {
                entry.answered = true;
                entry.leg.send(LegCommand::Media {
                    media,
                    answered: true,
                });
                if entry.request.detect_machine {
                    entry.leg.send(LegCommand::DetectMachine);
                }
                tracing::info!(codec = ?media.codec, "call answered");
                CallEventKind::Answered
            }
            CoreEvent::MediaChanged { media } => {
                tracing::debug!(direction = ?media.remote_direction, "media changed");
                entry.leg.send(LegCommand::Media {
                    media,
                    answered: entry.answered,
                });
                return;
            }
            CoreEvent::Ended {
                cause,
                status,
                try_next_trunk,
            } => {
                tracing::debug!(?cause, ?status, "attempt ended");
                let answered = entry.answered;
                if try_next_trunk && !answered && self.fail_over(call_ref, now) {
                    return;
                }
                if let Some(entry) = self.calls.get_mut(&call_ref) {
                    entry.ending = Some(cause);
                    entry.leg.send(LegCommand::Close);
                }
                return;
            }
        };
        self.emit(call_ref, kind);
    }

    /// Places the call again through the next trunk that has room; false when none has.
    fn fail_over(&mut self, call_ref: CallRef, now: Instant) -> bool {
        loop {
            let Some(entry) = self.calls.get_mut(&call_ref) else {
                return false;
            };
            if entry.fallbacks.is_empty() {
                return false;
            }
            let trunk = entry.fallbacks.remove(0);
            if !self.trunks[trunk].is_up() || self.trunks[trunk].admit(now).is_err() {
                continue;
            }
            tracing::info!(parent: &entry.span, trunk = %self.trunks[trunk].config.name, "trying next trunk");
            let request = entry.request.clone();
            let local_rtp = entry.leg.local;
            match self.start_attempt(&request, trunk, local_rtp, now) {
                Ok(call_id) => {
                    if let Some(entry) = self.calls.get_mut(&call_ref) {
                        entry.call_id = call_id.clone();
                    }
                    self.drive(&call_id, now);
                    return true;
                }
                Err(_) => self.trunks[trunk].active -= 1,
            }
        }
    }

    async fn dial(&mut self, request: DialRequest, now: Instant) -> Result<CallRef, DialError> {
        let call_ref = request.call_ref;
        if self.calls.contains_key(&call_ref) {
            return Err(DialError::DuplicateRef);
        }
        let named = self
            .trunks
            .iter()
            .position(|t| t.config.name == request.trunk)
            .ok_or_else(|| DialError::UnknownTrunk(request.trunk.clone()))?;
        // A down trunk takes no new call: start at the first up one in
        // failover order.
        let first = (named..self.trunks.len())
            .find(|&i| self.trunks[i].is_up())
            .ok_or_else(|| DialError::TrunksDown(request.trunk.clone()))?;
        let span = tracing::info_span!("call", %call_ref);
        tracing::debug!(parent: &span, number = %request.number, "dialling");
        self.trunks[first].admit(now)?;
        let socket = match self.ports.bind() {
            Ok(socket) => socket,
            Err(error) => {
                self.trunks[first].active -= 1;
                return Err(DialError::NoMediaPort(error));
            }
        };
        let port = socket.local_addr().map_err(DialError::NoMediaPort)?.port();
        let advertised = std::net::SocketAddr::new(self.trunks[first].local_sip.ip(), port);
        let call_id = match self.start_attempt(&request, first, advertised, now) {
            Ok(call_id) => call_id,
            Err(error) => {
                self.trunks[first].active -= 1;
                return Err(error);
            }
        };
        self.next_leg_id += 1;
        let leg = leg::spawn(
            call_ref,
            self.next_leg_id,
            socket,
            advertised,
            self.config.media_timeout,
            self.leg_events.clone(),
        );
        tracing::info!(parent: &span, trunk = %self.trunks[first].config.name, "call placed");
        self.calls.insert(
            call_ref,
            CallEntry {
                // Another node of the service is no provider to fail over to.
                fallbacks: (first + 1..self.trunks.len())
                    .filter(|t| !self.trunks[*t].config.peer)
                    .collect(),
                request,
                call_id: call_id.clone(),
                leg,
                span,
                answered: false,
                ending: None,
            },
        );
        self.drive(&call_id, now);
        Ok(call_ref)
    }

    fn start_attempt(
        &mut self,
        request: &DialRequest,
        trunk: usize,
        local_rtp: std::net::SocketAddr,
        now: Instant,
    ) -> Result<String, DialError> {
        let state = &self.trunks[trunk];
        let params = CallParams {
            number: request.number.clone(),
            caller_id: request.caller_id.clone(),
            trunk: state.trunk.clone(),
            credentials: state.credentials.clone(),
            ring_timeout: request.ring_timeout,
            local_sip: state.local_sip,
            local_rtp,
            timers: self.sip_timers,
            // A fresh key for every attempt, from the OS's CSPRNG; never logged.
            srtp: state.config.srtp.then(MasterKey::generate),
        };
        let call = Call::new(params, now)?;
        let call_id = call.call_id().to_string();
        self.attempts.insert(
            call_id.clone(),
            Attempt {
                call: CallCore::Placed(call),
                call_ref: request.call_ref,
                route: Route::Trunk(trunk),
                ended: false,
                scheduled: None,
            },
        );
        Ok(call_id)
    }

    fn to_leg(&self, call_ref: CallRef, command: LegCommand) -> Result<(), GatewayError> {
        if self.agents.contains_key(&call_ref) {
            return Err(GatewayError::NotATrunkCall);
        }
        let entry = self.calls.get(&call_ref).ok_or(GatewayError::NoSuchCall)?;
        entry.leg.send(command);
        Ok(())
    }

    /// Returns the leg of a trunk call that is answered and not ending.
    fn answered_leg(&self, call_ref: CallRef) -> Result<&leg::LegHandle, GatewayError> {
        if self.agents.contains_key(&call_ref) {
            return Err(GatewayError::NotATrunkCall);
        }
        let entry = self.calls.get(&call_ref).ok_or(GatewayError::NoSuchCall)?;
        if !entry.answered || entry.ending.is_some() {
            return Err(GatewayError::NotAnswered);
        }
        Ok(&entry.leg)
    }

    pub(crate) fn bridge(&mut self, a: CallRef, b: CallRef) -> Result<(), GatewayError> {
        let leg_a = self.any_leg(a).ok_or(GatewayError::NoSuchCall)?.clone();
        let leg_b = self.any_leg(b).ok_or(GatewayError::NoSuchCall)?.clone();
        // Each side now hears only the other: not an earlier peer, nor a call it listened to.
        self.forget_everywhere(a, &[a, b]);
        self.forget_everywhere(b, &[a, b]);
        self.feed(a, b);
        self.feed(b, a);
        leg_a.send(LegCommand::Bridge {
            peer: leg_b.inbox.clone(),
            source: leg_b.source,
            outbound: leg_b.outbound.clone(),
        });
        leg_b.send(LegCommand::Bridge {
            peer: leg_a.inbox.clone(),
            source: leg_a.source,
            outbound: leg_a.outbound.clone(),
        });
        Ok(())
    }
}
