//! Calls the trunks offer us: a fresh INVITE becomes an [`InboundCall`]
//! with a media leg of its own, and the service is told of it as an
//! [`IncomingCall`] to answer, ring or refuse.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::engine::{Attempt, CallCore, CallEntry, Engine, Route};
use super::leg;
use super::types::{CallRef, DialRequest, GatewayError, IncomingCall};
use crate::media::srtp::MasterKey;
use crate::sip::message::{header_value, param};
use crate::sip::{InboundCall, InboundParams, Transport};

/// How long the service has to decide on an offered call before the
/// caller gets 480.
pub(crate) const DECIDE_WITHIN: Duration = Duration::from_secs(10);

/// What the service decided for an offered call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decision {
    Answer,
    Ring,
    Reject(u16),
}

/// Whether a request starts a call: an INVITE outside any dialog.
pub(crate) fn is_new_call(request: &rsip::Request) -> bool {
    request.method == rsip::Method::Invite
        && header_value(&request.headers, "To").is_some_and(|to| param(&to, "tag").is_none())
}

impl Engine {
    /// Takes a trunk's fresh INVITE: refused at once when unusable, when
    /// the trunk is full or nobody takes calls (404); otherwise it gets a
    /// media leg and goes to the service.
    pub(crate) async fn offered(
        &mut self,
        request: rsip::Request,
        trunk: usize,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let call_ref = CallRef::random();
        let local_sip = self.trunks[trunk].local_sip;
        let socket = match self.ports.bind() {
            Ok(socket) => Some(socket),
            Err(error) => {
                tracing::warn!(%error, "no RTP port for an inbound call");
                None
            }
        };
        let port = socket
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map_or(0, |a| a.port());
        let advertised = SocketAddr::new(local_sip.ip(), port);
        let params = InboundParams {
            peer: source,
            transport,
            local_sip,
            local_rtp: advertised,
            timers: self.sip_timers,
            srtp: self.trunks[trunk].config.srtp.then(MasterKey::generate),
            decide_within: DECIDE_WITHIN,
        };
        let mut call = InboundCall::new(request, params, now);
        let call_id = call.call_id().to_string();
        if self.attempts.contains_key(&call_id) {
            // A second INVITE with a live call's Call-ID: a fork or a
            // mistake; the call it claims to be has its own transaction.
            call.reject(482, now);
        }
        let offer = call.offer().cloned();
        let state = &mut self.trunks[trunk];
        let full = state.active >= state.config.max_concurrent;
        let refusal = match (&offer, &socket, &self.incoming) {
            (None, _, _) => None,
            (Some(_), None, _) => Some(503),
            (Some(_), _, _) if full => Some(503),
            (Some(_), _, None) => Some(404),
            (Some(_), Some(_), Some(handler)) if handler.is_closed() => Some(404),
            _ => None,
        };
        let (Some(offer), Some(socket), None) = (offer, socket, refusal) else {
            if let Some(status) = refusal {
                tracing::info!(status, trunk = %state.config.name, "inbound call refused");
                call.reject(status, now);
            }
            // Kept only until its transactions end; nobody hears of it.
            self.attempts.insert(
                call_id.clone(),
                Attempt {
                    call: CallCore::Offered(call),
                    call_ref,
                    route: Route::Trunk(trunk),
                    ended: true,
                    scheduled: None,
                },
            );
            self.drive(&call_id, now);
            return;
        };
        state.active += 1;
        let span = tracing::info_span!("call", %call_ref);
        tracing::info!(parent: &span, trunk = %state.config.name, number = %offer.number, "inbound call offered");
        let (watcher, events) = mpsc::unbounded_channel();
        let incoming = IncomingCall {
            call_ref,
            trunk: state.config.name.clone(),
            number: offer.number.clone(),
            caller: offer.caller.clone(),
            events,
        };
        let request = DialRequest {
            number: offer.number,
            caller_id: offer.caller.unwrap_or_default(),
            trunk: state.config.name.clone(),
            ring_timeout: DECIDE_WITHIN,
            call_ref,
            detect_machine: false,
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
        self.calls.insert(
            call_ref,
            CallEntry {
                request,
                call_id: call_id.clone(),
                fallbacks: Vec::new(),
                leg,
                span,
                answered: false,
                ending: None,
            },
        );
        self.attempts.insert(
            call_id.clone(),
            Attempt {
                call: CallCore::Offered(call),
                call_ref,
                route: Route::Trunk(trunk),
                ended: false,
                scheduled: None,
            },
        );
        self.watchers.insert(call_ref, watcher);
        if let Some(Attempt {
            call: CallCore::Offered(call),
            ..
        }) = self.attempts.get_mut(&call_id)
        {
            call.trying(now);
        }
        let told = self
            .incoming
            .as_ref()
            .is_some_and(|handler| handler.send(incoming).is_ok());
        if !told {
            if let Some(Attempt {
                call: CallCore::Offered(call),
                ..
            }) = self.attempts.get_mut(&call_id)
            {
                call.reject(404, now);
            }
        }
        self.drive(&call_id, now);
    }

    /// Carries out the service's decision on an offered call.
    pub(crate) fn decide(
        &mut self,
        call_ref: CallRef,
        decision: Decision,
        now: Instant,
    ) -> Result<(), GatewayError> {
        let call_id = self
            .calls
            .get(&call_ref)
            .map(|e| e.call_id.clone())
            .ok_or(GatewayError::NoSuchCall)?;
        let Some(Attempt {
            call: CallCore::Offered(call),
            ..
        }) = self.attempts.get_mut(&call_id)
        else {
            return Err(GatewayError::NotOffered);
        };
        if !call.is_offered() {
            return Err(GatewayError::NotOffered);
        }
        let done = match decision {
            Decision::Answer => call.answer(now),
            Decision::Ring => {
                call.ring(now);
                true
            }
            Decision::Reject(status) => {
                call.reject(status, now);
                true
            }
        };
        self.drive(&call_id, now);
        done.then_some(()).ok_or(GatewayError::NotOffered)
    }
}
