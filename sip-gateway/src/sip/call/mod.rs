//! The per-call UAC state machine towards a trunk or a registered desk phone, sans-IO.
//!
//! A [`Call`] sends the INVITE (through a trunk from [`CallParams`], or straight to a
//! desk phone from [`PhoneCallParams`]), answers digest challenges, cancels on ring timeout or hangup,
//! acknowledges the 2xx, answers the provider's in-dialog requests and reports [`CallEvent`]s.
//! Early-dialog forks (a second 2xx with another To tag) are not tracked.

mod cause;
mod incoming;
mod responses;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Method, SipMessage};

pub use cause::{cause_for_status, try_next_trunk, EndCause};
pub(crate) use incoming::answer_reinvite;

use super::dialog::{cancel, Dialog};
use super::digest::Credentials;
use super::message::Transmit;
use super::message::Transport;
use super::outbound::{invite, invite_to_phone, IdGenerator, OutboundError, Trunk};
use super::parse::{bad_request_response, parse_message};
use super::sdp::{self, LocalMedia, NegotiatedMedia};
use super::transaction::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use crate::media::srtp::MasterKey;

/// Everything needed to place one call.
#[derive(Debug, Clone)]
pub struct CallParams {
    /// Dialled number (`+` and digits).
    pub number: String,
    /// Presented caller ID (`+` and digits).
    pub caller_id: String,
    /// Trunk to send through.
    pub trunk: Trunk,
    /// Digest credentials, if the trunk challenges.
    pub credentials: Option<Credentials>,
    /// How long to let the call ring before cancelling it.
    pub ring_timeout: Duration,
    /// Our SIP address as the trunk should see it (Via and Contact).
    pub local_sip: SocketAddr,
    /// Where we receive RTP.
    pub local_rtp: SocketAddr,
    /// SIP timer values.
    pub timers: TimerConfig,
    /// Our SRTP master key when the trunk's media must be SRTP; fresh for each call.
    pub srtp: Option<MasterKey>,
}

/// Everything needed to call a registered desk phone: plain RTP, and no credentials, since a
/// phone that challenges us is not one we can call.
#[derive(Debug, Clone)]
pub struct PhoneCallParams {
    /// Request-URI: the Contact the phone registered.
    pub contact: String,
    /// The phone's SIP username, the user part of its address of record in To.
    pub username: String,
    /// The domain of its address of record (the registrar's realm).
    pub domain: String,
    /// Where the phone is reached: the address its REGISTER came from.
    pub address: SocketAddr,
    /// The transport it registered over.
    pub transport: Transport,
    /// How long to let the phone ring before cancelling.
    pub ring_timeout: Duration,
    /// Our SIP address as the phone should see it (Via, Contact and From).
    pub local_sip: SocketAddr,
    /// Where we receive RTP.
    pub local_rtp: SocketAddr,
    /// SIP timer values.
    pub timers: TimerConfig,
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The trunk acknowledged the INVITE (100).
    Trying,
    /// The far end is alerting (18x).
    Ringing,
    /// The far end sent media before answering (SDP in a 18x).
    EarlyMedia {
        /// Agreed media.
        media: NegotiatedMedia,
    },
    /// The call was answered.
    Answered {
        /// Agreed media.
        media: NegotiatedMedia,
    },
    /// The provider changed the media (hold, unhold, session refresh).
    MediaChanged {
        /// Agreed media after the change.
        media: NegotiatedMedia,
    },
    /// The call is over; no further events follow.
    Ended {
        /// Why.
        cause: EndCause,
        /// Final status code that caused it, if a response did.
        status: Option<u16>,
        /// Whether the dialler may retry through another trunk right away.
        try_next_trunk: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent, no provisional response yet (a CANCEL is not allowed yet).
    Calling,
    /// A provisional response arrived.
    Early,
    /// CANCEL sent; waiting for the 487 (or a crossing 2xx).
    Cancelling(EndCause),
    /// Answered and acknowledged.
    Confirmed,
    /// BYE sent; waiting for its response.
    Terminating(EndCause),
    /// Over.
    Ended,
}

/// One outbound call, through a trunk or to a desk phone.
#[derive(Debug)]
pub struct Call {
    /// Where every request goes and every message is taken from: the trunk or the phone.
    peer: SocketAddr,
    transport: Transport,
    local_sip: SocketAddr,
    credentials: Option<Credentials>,
    ids: IdGenerator,
    layer: TransactionLayer,
    phase: Phase,
    invite: super::message::OutgoingRequest,
    invite_key: TransactionKey,
    ring_deadline: Option<Instant>,
    /// A cancel wanted before any 1xx arrived: sent on the first one.
    cancel_pending: Option<EndCause>,
    auth_attempts: u32,
    nonce_count: u32,
    dialog: Option<Dialog>,
    ack: Option<Vec<u8>>,
    bye_key: Option<TransactionKey>,
    local_media: LocalMedia,
    sdp_version: u64,
    early_sdp: Option<Vec<u8>>,
    reported_trying: bool,
    reported_ringing: bool,
    awaiting_ack_sdp: bool,
    events: VecDeque<CallEvent>,
}

impl Call {
    /// Starts a call, queueing the INVITE.
    pub fn new(params: CallParams, now: Instant) -> Result<Self, OutboundError> {
        Self::with_ids(params, IdGenerator::from_entropy(), now)
    }

    /// Starts a call with a given id generator (reproducible tests and simulations).
    pub fn with_ids(
        params: CallParams,
        mut ids: IdGenerator,
        now: Instant,
    ) -> Result<Self, OutboundError> {
        let local_media = LocalMedia {
            rtp: params.local_rtp,
            session_id: ids.number(),
            srtp: params.srtp,
        };
        let offer = sdp::offer(&local_media, 1);
        let request = invite(
            &params.number,
            &params.caller_id,
            &params.trunk,
            params.local_sip,
            &offer,
            &mut ids,
        )?;
        let mut call = Call::start(
            request,
            local_media,
            params.trunk.address,
            params.trunk.transport,
            params.local_sip,
            ids,
            params.timers,
            now + params.ring_timeout,
            now,
        );
        call.credentials = params.credentials;
        Ok(call)
    }

    /// Starts a call to a registered desk phone, queueing the INVITE.
    pub fn to_phone(params: PhoneCallParams, now: Instant) -> Result<Self, OutboundError> {
        Self::to_phone_with_ids(params, IdGenerator::from_entropy(), now)
    }

    /// Starts a call to a desk phone with a given id generator.
    pub fn to_phone_with_ids(
        params: PhoneCallParams,
        mut ids: IdGenerator,
        now: Instant,
    ) -> Result<Self, OutboundError> {
        let local_media = LocalMedia {
            rtp: params.local_rtp,
            session_id: ids.number(),
            srtp: None,
        };
        let offer = sdp::offer(&local_media, 1);
        let request = invite_to_phone(
            &params.contact,
            &params.username,
            &params.domain,
            params.local_sip,
            params.transport,
            &offer,
            &mut ids,
        )?;
        Ok(Call::start(
            request,
            local_media,
            params.address,
            params.transport,
            params.local_sip,
            ids,
            params.timers,
            now + params.ring_timeout,
            now,
        ))
    }

    /// Sends `request`, the initial INVITE, to `peer`, and sets the call up around it.
    #[allow(clippy::too_many_arguments)]
    fn start(
        request: super::message::OutgoingRequest,
        local_media: LocalMedia,
        peer: SocketAddr,
        transport: Transport,
        local_sip: SocketAddr,
        ids: IdGenerator,
        timers: TimerConfig,
        ring_deadline: Instant,
        now: Instant,
    ) -> Self {
        let mut layer = TransactionLayer::new(timers);
        let key = layer
            .send_request(request.clone(), peer, transport, now)
            .expect("a freshly built INVITE has a branch and is not an ACK");
        Call {
            peer,
            transport,
            local_sip,
            credentials: None,
            ring_deadline: Some(ring_deadline),
            ids,
            layer,
            phase: Phase::Calling,
            invite: request,
            invite_key: key,
            cancel_pending: None,
            auth_attempts: 0,
            nonce_count: 0,
            dialog: None,
            ack: None,
            bye_key: None,
            local_media,
            sdp_version: 1,
            early_sdp: None,
            reported_trying: false,
            reported_ringing: false,
            awaiting_ack_sdp: false,
            events: VecDeque::new(),
        }
    }

    /// Feeds one datagram (or framed TCP message) from the trunk.
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Instant) {
        match parse_message(bytes) {
            Ok(message) => self.handle_message(message, now),
            Err(error) => {
                tracing::debug!(%error, "dropping malformed SIP message");
                if let Some(reply) = bad_request_response(bytes, &error.to_string()) {
                    self.send_raw(reply);
                }
            }
        }
    }

    /// Feeds one parsed message from the trunk (or the phone).
    pub fn handle_message(&mut self, message: SipMessage, now: Instant) {
        self.layer
            .handle_message(message, self.peer, self.transport, now);
        self.process(now);
    }

    /// Hangs up: CANCEL before answer, BYE after.
    pub fn hangup(&mut self, now: Instant) {
        self.terminate(EndCause::LocalHangup, now);
    }

    /// Hangs up as `hangup` does, reporting `cause` in the `Ended` event.
    pub fn terminate(&mut self, cause: EndCause, now: Instant) {
        self.stop(cause, now);
        self.process(now);
    }

    /// Returns the Call-ID of the call, which routes the trunk's messages to it.
    pub fn call_id(&self) -> &str {
        self.invite.header("Call-ID").unwrap_or_default()
    }

    /// Reports that the transport failed to deliver to the trunk.
    pub fn transport_error(&mut self, now: Instant) {
        let key = match self.phase {
            Phase::Terminating(_) => self.bye_key.clone(),
            _ => Some(self.invite_key.clone()),
        };
        if let Some(key) = key {
            self.layer.transport_error(&key, now);
        }
        self.process(now);
    }

    /// Ends the call at once, sending nothing more: the connection the far end is reached
    /// over has closed, and it cannot be reopened (a desk phone's, which only it opens).
    ///
    /// A hangup already under way ends with its own cause; anything else with `TrunkFailure`.
    pub fn connection_lost(&mut self, now: Instant) {
        self.layer.transport_error(&self.invite_key.clone(), now);
        if let Some(key) = self.bye_key.clone() {
            self.layer.transport_error(&key, now);
        }
        self.process(now);
        let cause = match self.phase {
            Phase::Cancelling(cause) | Phase::Terminating(cause) => cause,
            _ => EndCause::TrunkFailure,
        };
        self.end(cause, None);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        if self.ring_deadline.is_some_and(|d| d <= now) {
            self.ring_deadline = None;
            self.stop(EndCause::NoAnswer, now);
        }
        self.process(now);
    }

    /// Returns the next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    /// Returns the next call event.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// Returns when `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ring = self.ring_deadline.filter(|_| self.phase != Phase::Ended);
        match (self.layer.poll_timeout(), ring) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Returns whether the call has ended and no transaction is left to finish.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended && self.layer.poll_timeout().is_none()
    }

    /// Ends the call attempt for `cause` in whatever way the current phase allows.
    fn stop(&mut self, cause: EndCause, now: Instant) {
        match self.phase {
            Phase::Calling => {
                // RFC 3261 §9.1: a CANCEL may only follow a provisional response.
                self.cancel_pending.get_or_insert(cause);
            }
            Phase::Early => self.send_cancel(cause, now),
            Phase::Confirmed => self.send_bye(cause, now),
            Phase::Cancelling(_) | Phase::Terminating(_) | Phase::Ended => {}
        }
    }

    fn send_cancel(&mut self, cause: EndCause, now: Instant) {
        self.ring_deadline = None;
        self.phase = Phase::Cancelling(cause);
        let request = cancel(&self.invite);
        // CANCEL shares the INVITE branch but is keyed by its own method, so it cannot clash.
        let _ = self
            .layer
            .send_request(request, self.peer, self.transport, now);
        self.layer.cancel_sent(&self.invite_key, now);
    }

    fn send_bye(&mut self, cause: EndCause, now: Instant) {
        self.ring_deadline = None;
        let Some(dialog) = self.dialog.as_mut() else {
            self.end(cause, None);
            return;
        };
        let request = dialog.request(Method::Bye, &self.ids.branch());
        self.bye_key = self
            .layer
            .send_request(request, self.peer, self.transport, now)
            .ok();
        self.phase = Phase::Terminating(cause);
    }

    fn end(&mut self, cause: EndCause, status: Option<u16>) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.ring_deadline = None;
        self.events.push_back(CallEvent::Ended {
            cause,
            status,
            try_next_trunk: try_next_trunk(cause, status),
        });
    }

    fn send_raw(&mut self, payload: Vec<u8>) {
        self.layer
            .send_stateless(payload, self.peer, self.transport);
    }

    fn process(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                TransactionEvent::Provisional { key, response } if key == self.invite_key => {
                    self.on_provisional(response, now)
                }
                TransactionEvent::Final { key, response } if key == self.invite_key => {
                    self.on_invite_final(response, now)
                }
                TransactionEvent::Final { key, response }
                    if Some(&key) == self.bye_key.as_ref() =>
                {
                    tracing::trace!(status = response.status_code.code(), "BYE answered");
                    if let Phase::Terminating(cause) = self.phase {
                        self.end(cause, None);
                    }
                }
                TransactionEvent::Timeout { key } | TransactionEvent::TransportError { key } => {
                    self.on_failure(&key)
                }
                TransactionEvent::Request { key, request } => self.on_request(key, request, now),
                TransactionEvent::StrayResponse { response } => self.on_stray(&response),
                TransactionEvent::NoAck { .. } => self.stop(EndCause::TrunkFailure, now),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
