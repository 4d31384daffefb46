//! The per-call UAS state machine for a call a trunk offers us, sans-IO.
//!
//! An [`InboundCall`] takes the trunk's INVITE, says 100 Trying when the
//! gateway passes it on ([`InboundCall::trying`]), and waits
//! for the service to decide: [`InboundCall::ring`], [`InboundCall::answer`]
//! (200 with our SDP answer; the media agreed is reported at once as
//! [`CallEvent::Answered`], since the caller may send audio as soon as the
//! 200 leaves) or [`InboundCall::reject`]. A call nobody decides on within
//! its deadline is refused with 480. Once answered it behaves as a placed
//! call does: BYE either way, re-INVITEs for hold, and the same
//! [`CallEvent`]s, so the gateway drives both kinds alike.
//!
//! What the service learns of the caller is the [`Offer`]: the number
//! dialled and the number calling, nothing else of the INVITE. Offers
//! without SDP (a delayed offer) are refused with 488.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Method, SipMessage};

use super::call::{answer_reinvite, CallEvent, EndCause};
use super::dialog::Dialog;
use super::message::{header_value, uri_of, OutgoingResponse, Transmit, Transport};
use super::outbound::{contact, IdGenerator, ALLOW};
use super::sdp::{self, LocalMedia, NegotiatedMedia};
use super::transaction::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use crate::media::srtp::MasterKey;

/// Everything needed to take one call.
#[derive(Debug, Clone)]
pub struct InboundParams {
    /// Where the INVITE came from; every message of the call goes there.
    pub peer: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
    /// Our SIP address as the trunk sees it (Contact).
    pub local_sip: SocketAddr,
    /// Where we receive RTP.
    pub local_rtp: SocketAddr,
    /// SIP timer values.
    pub timers: TimerConfig,
    /// Our SRTP master key when the trunk's media must be SRTP.
    pub srtp: Option<MasterKey>,
    /// How long the service has to answer, ring or refuse before the
    /// caller gets 480.
    pub decide_within: Duration,
}

/// How long a call the service rings for may ring before the caller gets
/// 480, counted from the last 180.
pub const RINGING_LIMIT: Duration = Duration::from_secs(120);

/// Who calls whom, as the INVITE says: all the service is told of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Offer {
    /// The number dialled: the Request-URI's user part (the To header's
    /// when the URI has none), as the trunk wrote it.
    pub number: String,
    /// The caller's number, from P-Asserted-Identity or else From; `None`
    /// when withheld or not a number.
    pub caller: Option<String>,
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The caller's number is personal data: logs above DEBUG must not carry it.
        f.debug_struct("Offer")
            .field("number", &self.number)
            .field("withheld", &self.caller.is_none())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// 100 sent; the service has not decided.
    Offered,
    /// 200 sent, not yet acknowledged.
    Answered,
    /// Answered and acknowledged.
    Confirmed,
    /// BYE sent; waiting for its response.
    Terminating(EndCause),
    /// Over.
    Ended,
}

/// One call offered by a trunk.
#[derive(Debug)]
pub struct InboundCall {
    params: InboundParams,
    ids: IdGenerator,
    layer: TransactionLayer,
    phase: Phase,
    offer: Option<Offer>,
    invite: Option<(rsip::Request, TransactionKey)>,
    call_id: String,
    local_tag: String,
    dialog: Option<Dialog>,
    local_media: LocalMedia,
    sdp_version: u64,
    /// Our answer and what it agreed, prepared when the offer arrived.
    answer: Option<(String, NegotiatedMedia)>,
    deadline: Option<Instant>,
    bye_key: Option<TransactionKey>,
    awaiting_ack_sdp: bool,
    events: VecDeque<CallEvent>,
}

impl InboundCall {
    /// Takes a trunk's INVITE. The call is refused at once (and
    /// [`InboundCall::offer`] is `None`) when the INVITE is unusable: no
    /// From tag or Contact, no SDP we can answer, or a Require we lack.
    pub fn new(invite: rsip::Request, params: InboundParams, now: Instant) -> Self {
        Self::with_ids(invite, params, IdGenerator::from_entropy(), now)
    }

    /// Takes an INVITE with a given id generator (reproducible tests).
    pub fn with_ids(
        invite: rsip::Request,
        params: InboundParams,
        mut ids: IdGenerator,
        now: Instant,
    ) -> Self {
        let local_media = LocalMedia {
            rtp: params.local_rtp,
            session_id: ids.number(),
            srtp: params.srtp,
        };
        let call_id = header_value(&invite.headers, "Call-ID").unwrap_or_default();
        let mut call = InboundCall {
            layer: TransactionLayer::new(params.timers),
            local_tag: ids.tag(),
            ids,
            phase: Phase::Offered,
            offer: None,
            invite: None,
            call_id,
            dialog: None,
            local_media,
            sdp_version: 1,
            answer: None,
            deadline: None,
            bye_key: None,
            awaiting_ack_sdp: false,
            events: VecDeque::new(),
            params,
        };
        let (peer, transport) = (call.params.peer, call.params.transport);
        call.layer
            .handle_message(SipMessage::Request(invite), peer, transport, now);
        let key = match call.layer.poll_event() {
            Some(TransactionEvent::Request {
                key: Some(key),
                request,
            }) if request.method == Method::Invite => (key, request),
            _ => {
                // Screened and answered by the transaction layer.
                call.phase = Phase::Ended;
                return call;
            }
        };
        call.take_offer(key.1, key.0, now);
        call
    }

    fn take_offer(&mut self, request: rsip::Request, key: TransactionKey, now: Instant) {
        let refusal = match Dialog::from_invite(
            &request,
            &self.local_tag,
            self.params.local_sip,
            self.params.transport,
        ) {
            Err(_) => Some(400),
            Ok(_) if request.body.is_empty() => Some(488),
            Ok(dialog) => match sdp::answer(&self.local_media, self.sdp_version, &request.body) {
                Ok(answer) => {
                    self.answer = Some(answer);
                    self.dialog = Some(dialog);
                    None
                }
                Err(error) => {
                    tracing::debug!(%error, "unusable offer in an inbound INVITE");
                    Some(488)
                }
            },
        };
        if let Some(status) = refusal {
            let response = OutgoingResponse::to_request(&request, status, Some(&self.local_tag));
            let _ = self.layer.respond(&key, &response, now);
            self.phase = Phase::Ended;
            return;
        }
        self.offer = Some(Offer {
            number: dialled(&request),
            caller: caller(&request),
        });
        self.deadline = Some(now + self.params.decide_within);
        self.invite = Some((request, key));
    }

    /// Says 100 Trying, once the call goes to the service to decide on.
    pub fn trying(&mut self, now: Instant) {
        if self.phase != Phase::Offered {
            return;
        }
        if let Some((request, _)) = &self.invite {
            let trying = OutgoingResponse::to_request(request, 100, None);
            self.respond_invite(&trying, now);
        }
    }

    /// Returns who calls whom, or `None` for an INVITE refused at once.
    pub fn offer(&self) -> Option<&Offer> {
        self.offer.as_ref()
    }

    /// Returns the Call-ID, which routes the trunk's messages to this call.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Tells the caller it rings (180), while the service decides: it then
    /// has [`RINGING_LIMIT`] from now to answer or refuse (a phone it rings
    /// on the caller's behalf takes longer than a decision).
    pub fn ring(&mut self, now: Instant) {
        if self.phase != Phase::Offered {
            return;
        }
        if let Some(response) = self.invite_response(180) {
            self.respond_invite(&response, now);
            self.deadline = Some(now + RINGING_LIMIT);
        }
    }

    /// Answers the call (200 with our SDP); returns false when it can no
    /// longer be answered (refused, cancelled or already answered).
    pub fn answer(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Offered {
            return false;
        }
        let Some((sdp, media)) = self.answer.clone() else {
            return false;
        };
        let Some(mut response) = self.invite_response(200) else {
            return false;
        };
        response.headers.push(("Allow".into(), ALLOW.into()));
        response
            .headers
            .push(("Content-Type".into(), "application/sdp".into()));
        response.body = sdp.into_bytes();
        self.respond_invite(&response, now);
        self.deadline = None;
        self.phase = Phase::Answered;
        self.events.push_back(CallEvent::Answered { media });
        true
    }

    /// Refuses the call with a final status (4xx to 6xx) while undecided.
    pub fn reject(&mut self, status: u16, now: Instant) {
        self.refuse(status, EndCause::Rejected, now);
        self.process(now);
    }

    /// Hangs up: 480 before the answer, BYE after.
    pub fn hangup(&mut self, now: Instant) {
        self.terminate(EndCause::LocalHangup, now);
    }

    /// Hangs up as `hangup` does, reporting `cause` in the `Ended` event.
    pub fn terminate(&mut self, cause: EndCause, now: Instant) {
        self.stop(cause, now);
        self.process(now);
    }

    /// Feeds one parsed message from the trunk.
    pub fn handle_message(&mut self, message: SipMessage, now: Instant) {
        let (peer, transport) = (self.params.peer, self.params.transport);
        self.layer.handle_message(message, peer, transport, now);
        self.process(now);
    }

    /// Reports that the transport failed to deliver to the trunk.
    pub fn transport_error(&mut self, now: Instant) {
        let key = match self.phase {
            Phase::Terminating(_) => self.bye_key.clone(),
            _ => self.invite.as_ref().map(|(_, key)| key.clone()),
        };
        if let Some(key) = key {
            self.layer.transport_error(&key, now);
        }
        self.process(now);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            tracing::warn!("an inbound call was not answered in time: refusing it");
            self.refuse(480, EndCause::NoAnswer, now);
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
        let deadline = self.deadline.filter(|_| self.phase == Phase::Offered);
        match (self.layer.poll_timeout(), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Returns whether the call has ended and no transaction is left to finish.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended && self.layer.poll_timeout().is_none()
    }

    /// Returns whether the call still waits for the service's decision.
    pub fn is_offered(&self) -> bool {
        self.phase == Phase::Offered
    }

    /// Returns whether the call was answered.
    pub fn is_answered(&self) -> bool {
        matches!(
            self.phase,
            Phase::Answered | Phase::Confirmed | Phase::Terminating(_)
        )
    }

    fn stop(&mut self, cause: EndCause, now: Instant) {
        match self.phase {
            Phase::Offered => self.refuse(480, cause, now),
            Phase::Answered | Phase::Confirmed => self.send_bye(cause, now),
            Phase::Terminating(_) | Phase::Ended => {}
        }
    }

    fn refuse(&mut self, status: u16, cause: EndCause, now: Instant) {
        if self.phase != Phase::Offered {
            return;
        }
        let status = if (400..700).contains(&status) {
            status
        } else {
            480
        };
        if let Some(response) = self.invite_response(status) {
            self.respond_invite(&response, now);
        }
        self.end(cause);
    }

    fn send_bye(&mut self, cause: EndCause, now: Instant) {
        let Some(dialog) = self.dialog.as_mut() else {
            self.end(cause);
            return;
        };
        let request = dialog.request(Method::Bye, &self.ids.branch());
        self.bye_key = self
            .layer
            .send_request(request, self.params.peer, self.params.transport, now)
            .ok();
        self.phase = Phase::Terminating(cause);
    }

    fn end(&mut self, cause: EndCause) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.deadline = None;
        self.events.push_back(CallEvent::Ended {
            cause,
            status: None,
            try_next_trunk: false,
        });
    }

    /// Builds a response to the INVITE with our To tag (and our Contact,
    /// which a 18x or 2xx needs to set up the dialog).
    fn invite_response(&self, status: u16) -> Option<OutgoingResponse> {
        let (request, _) = self.invite.as_ref()?;
        let mut response = OutgoingResponse::to_request(request, status, Some(&self.local_tag));
        if (101..300).contains(&status) {
            let contact = contact(self.params.local_sip, self.params.transport);
            response.headers.push(("Contact".into(), contact));
        }
        Some(response)
    }

    fn respond_invite(&mut self, response: &OutgoingResponse, now: Instant) {
        if let Some((_, key)) = &self.invite {
            if let Err(error) = self.layer.respond(key, response, now) {
                tracing::debug!(%error, status = response.status, "could not answer the INVITE");
            }
        }
    }

    fn process(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                TransactionEvent::Request { key: None, request } => self.on_ack(&request),
                TransactionEvent::Request {
                    key: Some(key),
                    request,
                } => self.on_request(key, request, now),
                TransactionEvent::Final { key, .. } | TransactionEvent::Timeout { key }
                    if Some(&key) == self.bye_key.as_ref() =>
                {
                    if let Phase::Terminating(cause) = self.phase {
                        self.end(cause);
                    }
                }
                TransactionEvent::TransportError { key } => {
                    if Some(&key) == self.bye_key.as_ref() {
                        if let Phase::Terminating(cause) = self.phase {
                            self.end(cause);
                        }
                    } else {
                        self.stop(EndCause::TrunkFailure, now);
                        self.end(EndCause::TrunkFailure);
                    }
                }
                TransactionEvent::NoAck { .. } => {
                    tracing::info!("an answered inbound call got no ACK");
                    self.stop(EndCause::TrunkFailure, now);
                }
                _ => {}
            }
        }
    }

    fn on_ack(&mut self, request: &rsip::Request) {
        let in_dialog = self
            .dialog
            .as_ref()
            .is_some_and(|d| d.matches_request(request));
        if !in_dialog {
            return;
        }
        if self.phase == Phase::Answered {
            self.phase = Phase::Confirmed;
        }
        if self.awaiting_ack_sdp && !request.body.is_empty() {
            self.awaiting_ack_sdp = false;
            if let Ok(media) = sdp::negotiate_answer(&self.local_media, &request.body) {
                self.events.push_back(CallEvent::MediaChanged { media });
            }
        }
    }

    fn on_request(&mut self, key: TransactionKey, request: rsip::Request, now: Instant) {
        let response = self.response_to(&request, now);
        if let Err(error) = self.layer.respond(&key, &response, now) {
            tracing::debug!(%error, "could not answer a request");
        }
    }

    fn response_to(&mut self, request: &rsip::Request, now: Instant) -> OutgoingResponse {
        if request.method == Method::Cancel {
            let ours = self.invite.as_ref().is_some_and(|(invite, _)| {
                header_value(&invite.headers, "Via") == header_value(&request.headers, "Via")
            });
            if !ours {
                return OutgoingResponse::to_request(request, 481, None);
            }
            if self.phase == Phase::Offered {
                // RFC 3261 §9.2: the INVITE gets 487 and the CANCEL 200.
                if let Some(response) = self.invite_response(487) {
                    self.respond_invite(&response, now);
                }
                self.end(EndCause::RemoteHangup);
            }
            return OutgoingResponse::to_request(request, 200, Some(&self.local_tag));
        }
        let in_dialog = self
            .dialog
            .as_ref()
            .is_some_and(|d| d.matches_request(request))
            && self.phase != Phase::Offered;
        if !in_dialog {
            let status = match request.method {
                Method::Options => 200,
                _ => 481,
            };
            let tag = self.ids.tag();
            let mut response = OutgoingResponse::to_request(request, status, Some(&tag));
            if status == 200 {
                response.headers.push(("Allow".into(), ALLOW.into()));
            }
            return response;
        }
        let Some(dialog) = self.dialog.as_mut() else {
            return OutgoingResponse::to_request(request, 481, None);
        };
        if !dialog.accept_remote_cseq(request) {
            return dialog.response(request, 500, None);
        }
        match request.method {
            Method::Bye => {
                let response = dialog.response(request, 200, None);
                match self.phase {
                    Phase::Terminating(cause) => self.end(cause),
                    _ => self.end(EndCause::RemoteHangup),
                }
                response
            }
            Method::Invite if self.phase == Phase::Confirmed => {
                let answered =
                    answer_reinvite(dialog, &self.local_media, &mut self.sdp_version, request);
                self.awaiting_ack_sdp |= answered.awaiting_ack_sdp;
                if let Some(media) = answered.media {
                    self.events.push_back(CallEvent::MediaChanged { media });
                }
                answered.response
            }
            Method::Invite => dialog.response(request, 491, None),
            Method::Options => dialog.response(request, 200, None),
            _ => dialog.response(request, 501, None),
        }
    }
}

/// The number dialled: the Request-URI's user, else the To header's.
fn dialled(request: &rsip::Request) -> String {
    let uri = request.uri.to_string();
    user_part(&uri)
        .or_else(|| header_value(&request.headers, "To").and_then(|to| user_part(uri_of(&to))))
        .unwrap_or_default()
}

/// The caller's number: P-Asserted-Identity first (what the network
/// vouches for), then From; withheld callers and names are `None`.
fn caller(request: &rsip::Request) -> Option<String> {
    let asserted = header_value(&request.headers, "P-Asserted-Identity");
    let privacy = header_value(&request.headers, "Privacy")
        .is_some_and(|p| p.split(';').any(|v| v.trim().eq_ignore_ascii_case("id")));
    if privacy {
        // The caller withheld their number (RFC 3323): the network may
        // still assert it to us, but it is not ours to show or keep.
        return None;
    }
    let from = header_value(&request.headers, "From");
    [asserted, from]
        .into_iter()
        .flatten()
        .filter_map(|value| user_part(uri_of(&value)))
        .find(|user| is_number(user))
}

/// The user part of a `sip:`, `sips:` or `tel:` URI, without parameters.
fn user_part(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))?;
    let user = match rest.find('@') {
        Some(at) => &rest[..at],
        None if uri.starts_with("tel:") => rest,
        None => return None,
    };
    let user = user.split(';').next().unwrap_or("");
    (!user.is_empty() && user.len() <= 64).then(|| user.to_string())
}

/// Whether a user part is a telephone number (`+`, digits and visual separators).
fn is_number(user: &str) -> bool {
    let digits = user.strip_prefix('+').unwrap_or(user);
    let count = digits.bytes().filter(u8::is_ascii_digit).count();
    (3..=20).contains(&count)
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-.() ".contains(&b))
}

#[cfg(test)]
mod tests;
