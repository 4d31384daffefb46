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
        let answered = answer_reinvite(dialog, &self.local_media, &mut self.sdp_version, request);
        self.awaiting_ack_sdp |= answered.awaiting_ack_sdp;
        if let Some(media) = answered.media {
            self.events.push_back(CallEvent::MediaChanged { media });
        }
        answered.response
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

/// What answering a re-INVITE gave: the response, the media agreed, and
/// whether the peer's answer is due in its ACK (an offerless re-INVITE).
pub(crate) struct ReinviteAnswer {
    pub response: OutgoingResponse,
    pub media: Option<sdp::NegotiatedMedia>,
    pub awaiting_ack_sdp: bool,
}

/// Answers a re-INVITE in `dialog` (hold, unhold, session refresh), for a
/// call we placed or one we answered alike.
pub(crate) fn answer_reinvite(
    dialog: &mut crate::sip::dialog::Dialog,
    local: &sdp::LocalMedia,
    version: &mut u64,
    request: &rsip::Request,
) -> ReinviteAnswer {
    dialog.refresh_target(request);
    if request.body.is_empty() {
        // An offerless re-INVITE: we offer in the 2xx and the answer comes in the ACK.
        *version += 1;
        let offer = sdp::offer(local, *version);
        return ReinviteAnswer {
            response: dialog.response(request, 200, Some(offer)),
            media: None,
            awaiting_ack_sdp: true,
        };
    }
    match sdp::answer(local, *version + 1, &request.body) {
        Ok((answer, media)) => {
            *version += 1;
            ReinviteAnswer {
                response: dialog.response(request, 200, Some(answer)),
                media: Some(media),
                awaiting_ack_sdp: false,
            }
        }
        Err(error) => {
            tracing::debug!(%error, "unusable re-INVITE offer");
            ReinviteAnswer {
                response: dialog.response(request, 488, None),
                media: None,
                awaiting_ack_sdp: false,
            }
        }
    }
}
