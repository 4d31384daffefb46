//! How a call reacts to responses to its INVITE and to transaction failures.

use std::time::Instant;

use super::{cause_for_status, Call, CallEvent, EndCause, Phase};
use crate::sip::dialog::Dialog;
use crate::sip::digest::{Challenge, ChallengeKind};
use crate::sip::message::header_value;
use crate::sip::outbound::via;
use crate::sip::sdp;
use crate::sip::transaction::TransactionKey;

impl Call {
    pub(super) fn on_provisional(&mut self, response: rsip::Response, now: Instant) {
        let code = response.status_code.code();
        if self.phase == Phase::Calling {
            self.phase = Phase::Early;
            if let Some(cause) = self.cancel_pending.take() {
                self.send_cancel(cause, now);
            }
        }
        if code == 100 {
            if !self.reported_trying {
                self.reported_trying = true;
                self.events.push_back(CallEvent::Trying);
            }
            return;
        }
        if !self.reported_ringing {
            self.reported_ringing = true;
            self.events.push_back(CallEvent::Ringing);
        }
        if !response.body.is_empty() && self.early_sdp.as_ref() != Some(&response.body) {
            if let Ok(media) = sdp::negotiate_answer(&self.local_media, &response.body) {
                self.early_sdp = Some(response.body.clone());
                self.events.push_back(CallEvent::EarlyMedia { media });
            }
        }
    }

    pub(super) fn on_invite_final(&mut self, response: rsip::Response, now: Instant) {
        let status = response.status_code.code();
        if (200..300).contains(&status) {
            return self.on_2xx(response, now);
        }
        if matches!(status, 401 | 407) && self.retry_with_credentials(&response, now) {
            return;
        }
        let cause = match self.phase {
            Phase::Cancelling(cause) if status == 487 => cause,
            Phase::Cancelling(EndCause::LocalHangup) => EndCause::LocalHangup,
            _ => match self.cancel_pending {
                Some(EndCause::LocalHangup) => EndCause::LocalHangup,
                _ => cause_for_status(status),
            },
        };
        self.end(cause, Some(status));
    }

    pub(super) fn on_2xx(&mut self, response: rsip::Response, now: Instant) {
        if let Some(dialog) = &self.dialog {
            // A retransmitted 2xx: our ACK was lost, so send it again, and report nothing.
            if dialog.matches_response(&response) {
                if let Some(ack) = self.ack.clone() {
                    self.send_raw(ack);
                }
            }
            return;
        }
        let dialog = match Dialog::from_2xx(&self.invite, &response, self.local_sip, self.transport)
        {
            Ok(dialog) => dialog,
            Err(error) => {
                tracing::debug!(%error, "unusable 2xx to INVITE");
                return self.end(EndCause::TrunkFailure, Some(response.status_code.code()));
            }
        };
        let ack = dialog
            .ack(self.invite.cseq().unwrap_or(1), &self.ids.branch())
            .to_bytes();
        self.send_raw(ack.clone());
        self.ack = Some(ack);
        self.dialog = Some(dialog);
        self.ring_deadline = None;
        let crossing = match self.phase {
            Phase::Cancelling(cause) => Some(cause),
            _ => self.cancel_pending.take(),
        };
        self.phase = Phase::Confirmed;
        if let Some(cause) = crossing {
            // The 2xx crossed our CANCEL (or a hangup before any 1xx): end it with BYE.
            return self.send_bye(cause, now);
        }
        let answer = match response.body.is_empty() {
            true => self.early_sdp.clone().unwrap_or_default(),
            false => response.body.clone(),
        };
        match sdp::negotiate_answer(&self.local_media, &answer) {
            Ok(media) => self.events.push_back(CallEvent::Answered { media }),
            Err(error) => {
                if error == sdp::SdpError::NoCrypto {
                    // Never fall back to clear audio on a trunk that asks for SRTP.
                    tracing::warn!(%error, "answer without SRTP keys; hanging up");
                } else {
                    tracing::debug!(%error, "unusable SDP answer");
                }
                self.send_bye(EndCause::MediaFailed, now);
            }
        }
    }

    fn retry_with_credentials(&mut self, response: &rsip::Response, now: Instant) -> bool {
        let Some(credentials) = self.credentials.clone() else {
            return false;
        };
        let (header, kind) = match response.status_code.code() {
            401 => ("WWW-Authenticate", ChallengeKind::Www),
            _ => ("Proxy-Authenticate", ChallengeKind::Proxy),
        };
        let Some(challenge) =
            header_value(&response.headers, header).and_then(|value| Challenge::parse(&value).ok())
        else {
            return false;
        };
        // One answer per challenge; a second challenge is only met again if the nonce was stale.
        if self.auth_attempts >= 1 && !challenge.stale || self.auth_attempts >= 3 {
            return false;
        }
        if let Phase::Cancelling(_) = self.phase {
            return false;
        }
        self.auth_attempts += 1;
        self.nonce_count += 1;
        let mut request = self.invite.clone();
        let cseq = request.cseq().unwrap_or(1) + 1;
        let value = challenge.respond(
            &credentials,
            "INVITE",
            &request.uri,
            &request.body,
            &self.ids.hex(8),
            self.nonce_count,
        );
        let via = via(self.local_sip, self.transport, &self.ids.branch());
        request.set_header("Via", via);
        request.set_header("CSeq", format!("{cseq} INVITE"));
        request.set_header(kind.answer_header(), value);
        match self
            .layer
            .send_request(request.clone(), self.peer, self.transport, now)
        {
            Ok(key) => {
                self.invite = request;
                self.invite_key = key;
                self.phase = Phase::Calling;
                true
            }
            Err(_) => false,
        }
    }

    pub(super) fn on_failure(&mut self, key: &TransactionKey) {
        if *key == self.invite_key {
            match self.phase {
                Phase::Calling | Phase::Early => match self.cancel_pending {
                    Some(EndCause::LocalHangup) => self.end(EndCause::LocalHangup, None),
                    _ => self.end(EndCause::TrunkFailure, None),
                },
                Phase::Cancelling(cause) => self.end(cause, None),
                _ => {}
            }
        } else if Some(key) == self.bye_key.as_ref() {
            if let Phase::Terminating(cause) = self.phase {
                self.end(cause, None);
            }
        }
    }
}
