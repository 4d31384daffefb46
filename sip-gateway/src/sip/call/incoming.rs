//! How a call answers requests from the provider, in and out of its dialog.

use std::time::Instant;

use rsip::Method;

use super::{Call, CallEvent, EndCause, Phase};
use crate::sip::message::OutgoingResponse;
use crate::sip::outbound::ALLOW;
use crate::sip::sdp;
use crate::sip::transaction::TransactionKey;

impl Call {
    /// Answers a request from the trunk; `key` is `None` for an ACK to a 2xx.
    pub(super) fn on_request(
        &mut self,
        key: Option<TransactionKey>,
        request: rsip::Request,
        now: Instant,
    ) {
        let Some(key) = key else {
            return self.on_ack(&request);
        };
        let response = self.answer(&request, now);
        if let Err(error) = self.layer.respond(&key, &response, now) {
            tracing::debug!(%error, "could not answer request");
        }
    }

    /// Re-sends our ACK when a 2xx arrives after its INVITE transaction has gone.
    pub(super) fn on_stray(&mut self, response: &rsip::Response) {
        let is_invite_2xx = (200..300).contains(&response.status_code.code())
            && crate::sip::message::header_value(&response.headers, "CSeq")
                .is_some_and(|c| c.ends_with("INVITE"));
        let matches = self
            .dialog
            .as_ref()
            .is_some_and(|d| d.matches_response(response));
        if let (true, true, Some(ack)) = (is_invite_2xx, matches, self.ack.clone()) {
            self.send_raw(ack);
        }
    }

    fn answer(&mut self, request: &rsip::Request, now: Instant) -> OutgoingResponse {
        let in_dialog = self
            .dialog
            .as_ref()
            .is_some_and(|d| d.matches_request(request));
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
                    Phase::Terminating(cause) => self.end(cause, None),
                    _ => self.end(EndCause::RemoteHangup, None),
                }
                response
            }
            Method::Invite if self.phase == Phase::Confirmed => self.reinvite(request, now),
            Method::Invite => dialog.response(request, 491, None),
            Method::Options | Method::Cancel => dialog.response(request, 200, None),
            _ => dialog.response(request, 501, None),
        }
    }

    /// Answers a re-INVITE (hold, unhold, session refresh) with our SDP.
    fn reinvite(&mut self, request: &rsip::Request, _now: Instant) -> OutgoingResponse {
        let Some(dialog) = self.dialog.as_mut() else {
            return OutgoingResponse::to_request(request, 481, None);
        };
        dialog.refresh_target(request);
        if request.body.is_empty() {
            // An offerless re-INVITE: we offer in the 2xx and the answer comes in the ACK.
            self.sdp_version += 1;
            self.awaiting_ack_sdp = true;
            let offer = sdp::offer(&self.local_media, self.sdp_version);
            return dialog.response(request, 200, Some(offer));
        }
        match sdp::answer(&self.local_media, self.sdp_version + 1, &request.body) {
            Ok((answer, media)) => {
                self.sdp_version += 1;
                self.events.push_back(CallEvent::MediaChanged { media });
                dialog.response(request, 200, Some(answer))
            }
            Err(error) => {
                tracing::debug!(%error, "unusable re-INVITE offer");
                dialog.response(request, 488, None)
            }
        }
    }

    fn on_ack(&mut self, request: &rsip::Request) {
        let in_dialog = self
            .dialog
            .as_ref()
            .is_some_and(|d| d.matches_request(request));
        if !(in_dialog && self.awaiting_ack_sdp) || request.body.is_empty() {
            return;
        }
        self.awaiting_ack_sdp = false;
        if let Ok(media) = sdp::negotiate_answer(&self.local_media, &request.body) {
            self.events.push_back(CallEvent::MediaChanged { media });
        }
    }
}
