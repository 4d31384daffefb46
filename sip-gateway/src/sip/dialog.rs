//! The UAC dialog (RFC 3261 §12) created by a 2xx to our INVITE, and CANCEL building.
//!
//! Only loose routing is supported: the route set goes into Route headers and the remote
//! target into the Request-URI. Requests are always sent to the trunk address anyway.

use std::net::SocketAddr;

use rsip::Method;

use super::message::{
    header_value, header_values, param, split_list, uri_of, OutgoingRequest, OutgoingResponse,
    Transport,
};
use super::outbound::{contact, via, ALLOW};

/// Why a dialog could not be created from a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// The 2xx has no To tag.
    #[error("2xx without To tag")]
    MissingToTag,
    /// The 2xx has no Contact.
    #[error("2xx without Contact")]
    MissingContact,
    /// The INVITE lacks a From tag or Call-ID (a bug in the caller).
    #[error("INVITE lacks From tag or Call-ID")]
    BadInvite,
}

/// An established (confirmed) dialog seen from our side, the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID shared by every request in the dialog.
    pub call_id: String,
    /// Our tag (From of our requests).
    pub local_tag: String,
    /// The far end's tag (To of our requests).
    pub remote_tag: String,
    /// Where in-dialog requests are addressed (the far end's Contact URI).
    pub remote_target: String,
    /// Route set: Record-Route of the 2xx, reversed.
    pub route_set: Vec<String>,
    /// CSeq number of our last request.
    pub local_cseq: u32,
    /// CSeq number of the far end's last request, if any.
    pub remote_cseq: Option<u32>,
    local_uri: String,
    remote_uri: String,
    local: SocketAddr,
    transport: Transport,
}

impl Dialog {
    /// Creates the dialog from our INVITE and the 2xx that answered it.
    pub fn from_2xx(
        invite: &OutgoingRequest,
        response: &rsip::Response,
        local: SocketAddr,
        transport: Transport,
    ) -> Result<Self, DialogError> {
        let from = invite.header("From").ok_or(DialogError::BadInvite)?;
        let local_tag = param(from, "tag").ok_or(DialogError::BadInvite)?;
        let call_id = invite.header("Call-ID").ok_or(DialogError::BadInvite)?;
        let to = header_value(&response.headers, "To").unwrap_or_default();
        let remote_tag = param(&to, "tag")
            .filter(|t| !t.is_empty())
            .ok_or(DialogError::MissingToTag)?;
        let contact = header_value(&response.headers, "Contact")
            .and_then(|c| split_list(&c).into_iter().next())
            .ok_or(DialogError::MissingContact)?;
        let mut route_set: Vec<String> = header_values(&response.headers, "Record-Route")
            .iter()
            .flat_map(|v| split_list(v))
            .collect();
        route_set.reverse();
        Ok(Dialog {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: remote_tag.to_string(),
            remote_target: uri_of(&contact).to_string(),
            route_set,
            local_cseq: invite.cseq().unwrap_or(1),
            remote_cseq: None,
            local_uri: format!("<{}>", uri_of(from)),
            remote_uri: format!("<{}>", uri_of(invite.header("To").unwrap_or_default())),
            local,
            transport,
        })
    }

    /// Creates the dialog we answer as the called party: from the caller's
    /// INVITE and the To tag we chose (RFC 3261 §12.1.1). The route set is
    /// the INVITE's Record-Route in order; our own requests count from 1.
    pub fn from_invite(
        invite: &rsip::Request,
        local_tag: &str,
        local: SocketAddr,
        transport: Transport,
    ) -> Result<Self, DialogError> {
        let from = header_value(&invite.headers, "From").ok_or(DialogError::BadInvite)?;
        // An RFC 2543 caller sends no From tag: the dialog's remote tag is then empty.
        let remote_tag = param(&from, "tag").unwrap_or_default().to_string();
        let call_id = header_value(&invite.headers, "Call-ID").ok_or(DialogError::BadInvite)?;
        // An RFC 2543 caller may send no Contact: its From URI is then the
        // best target there is (and requests go to the trunk's address anyway).
        let contact = header_value(&invite.headers, "Contact")
            .and_then(|c| split_list(&c).into_iter().next())
            .unwrap_or_else(|| from.clone());
        let route_set = header_values(&invite.headers, "Record-Route")
            .iter()
            .flat_map(|v| split_list(v))
            .collect();
        let to = header_value(&invite.headers, "To").unwrap_or_default();
        let remote_cseq = header_value(&invite.headers, "CSeq")
            .and_then(|c| c.split_whitespace().next()?.parse::<u32>().ok());
        Ok(Dialog {
            call_id,
            local_tag: local_tag.to_string(),
            remote_tag,
            remote_target: uri_of(&contact).to_string(),
            route_set,
            local_cseq: 0,
            remote_cseq,
            local_uri: format!("<{}>", uri_of(&to)),
            remote_uri: format!("<{}>", uri_of(&from)),
            local,
            transport,
        })
    }

    /// Returns whether a response belongs to this dialog (same Call-ID and To tag).
    pub fn matches_response(&self, response: &rsip::Response) -> bool {
        let to = header_value(&response.headers, "To").unwrap_or_default();
        header_value(&response.headers, "Call-ID").as_deref() == Some(self.call_id.as_str())
            && param(&to, "tag") == Some(self.remote_tag.as_str())
    }

    /// Returns whether a request from the far end belongs to this dialog.
    pub fn matches_request(&self, request: &rsip::Request) -> bool {
        let from = header_value(&request.headers, "From").unwrap_or_default();
        let to = header_value(&request.headers, "To").unwrap_or_default();
        header_value(&request.headers, "Call-ID").as_deref() == Some(self.call_id.as_str())
            && param(&from, "tag").unwrap_or_default() == self.remote_tag
            && param(&to, "tag") == Some(self.local_tag.as_str())
    }

    /// Builds the ACK for a 2xx to the INVITE with CSeq `invite_cseq` (a new branch, no transaction).
    pub fn ack(&self, invite_cseq: u32, branch: &str) -> OutgoingRequest {
        self.build(Method::Ack, invite_cseq, branch)
    }

    /// Builds a new in-dialog request (such as BYE), taking the next local CSeq.
    pub fn request(&mut self, method: Method, branch: &str) -> OutgoingRequest {
        self.local_cseq += 1;
        self.build(method, self.local_cseq, branch)
    }

    /// Checks an in-dialog request's CSeq; a lower one than the last is out of order (answer 500).
    pub fn accept_remote_cseq(&mut self, request: &rsip::Request) -> bool {
        let cseq = header_value(&request.headers, "CSeq")
            .and_then(|c| c.split_whitespace().next()?.parse::<u32>().ok());
        match (cseq, self.remote_cseq) {
            (Some(n), Some(last)) if n < last => false,
            (Some(n), _) => {
                if request.method != Method::Ack {
                    self.remote_cseq = Some(n);
                }
                true
            }
            (None, _) => false,
        }
    }

    /// Takes a new remote target from a target-refresh request (re-INVITE) Contact.
    pub fn refresh_target(&mut self, request: &rsip::Request) {
        if let Some(c) = header_value(&request.headers, "Contact") {
            if let Some(first) = split_list(&c).into_iter().next() {
                self.remote_target = uri_of(&first).to_string();
            }
        }
    }

    /// Builds our response to an in-dialog request, with an optional SDP body.
    pub fn response(
        &self,
        request: &rsip::Request,
        status: u16,
        sdp: Option<String>,
    ) -> OutgoingResponse {
        let mut response = OutgoingResponse::to_request(request, status, None);
        if request.method == Method::Invite && (200..300).contains(&status) {
            response
                .headers
                .push(("Contact".into(), contact(self.local, self.transport)));
        }
        if request.method == Method::Options || status == 405 || status == 501 {
            response.headers.push(("Allow".into(), ALLOW.into()));
        }
        if let Some(sdp) = sdp {
            response
                .headers
                .push(("Content-Type".into(), "application/sdp".into()));
            response.body = sdp.into_bytes();
        }
        response
    }

    fn build(&self, method: Method, cseq: u32, branch: &str) -> OutgoingRequest {
        let mut headers = vec![
            ("Via".to_string(), via(self.local, self.transport, branch)),
            ("Max-Forwards".to_string(), "70".to_string()),
        ];
        for route in &self.route_set {
            headers.push(("Route".to_string(), route.clone()));
        }
        headers.extend([
            (
                "From".to_string(),
                format!("{};tag={}", self.local_uri, self.local_tag),
            ),
            (
                "To".to_string(),
                format!("{};tag={}", self.remote_uri, self.remote_tag),
            ),
            ("Call-ID".to_string(), self.call_id.clone()),
            ("CSeq".to_string(), format!("{cseq} {method}")),
        ]);
        OutgoingRequest {
            method,
            uri: self.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
    }
}

/// Builds the CANCEL for `invite` (RFC 3261 §9.1): same branch, URI, Call-ID, From, To, CSeq number.
pub fn cancel(invite: &OutgoingRequest) -> OutgoingRequest {
    let mut headers = Vec::new();
    for name in ["Via", "Max-Forwards"] {
        if let Some(value) = invite.header(name) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    for (name, value) in &invite.headers {
        if name.eq_ignore_ascii_case("Route") {
            headers.push((name.clone(), value.clone()));
        }
    }
    for name in ["From", "To", "Call-ID"] {
        if let Some(value) = invite.header(name) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    headers.push((
        "CSeq".to_string(),
        format!("{} CANCEL", invite.cseq().unwrap_or(1)),
    ));
    OutgoingRequest {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::outbound::{invite, tests::trunk, IdGenerator};
    use crate::sip::parse::parse_message;
    use rsip::SipMessage;

    fn setup() -> (OutgoingRequest, rsip::Response) {
        let mut ids = IdGenerator::from_seed(5);
        let local = "192.0.2.10:5060".parse().unwrap();
        let inv = invite("100", "200", &trunk(), local, "", &mut ids).unwrap();
        let text = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nRecord-Route: <sip:p2.example.com;lr>\r\n\
             Record-Route: <sip:p1.example.com;lr>, <sip:p0.example.com;lr>\r\n\
             From: {}\r\nTo: {};tag=remote1\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:100@198.51.100.7:5070;transport=udp>\r\nContent-Length: 0\r\n\r\n",
            inv.header("Via").unwrap(),
            inv.header("From").unwrap(),
            inv.header("To").unwrap(),
            inv.header("Call-ID").unwrap()
        );
        let SipMessage::Response(ok) = parse_message(text.as_bytes()).unwrap() else {
            panic!("expected a response")
        };
        (inv, ok)
    }

    #[test]
    fn dialog_takes_target_and_reversed_route_set() {
        let (inv, ok) = setup();
        let local = "192.0.2.10:5060".parse().unwrap();
        let mut dialog = Dialog::from_2xx(&inv, &ok, local, Transport::Udp).unwrap();
        assert_eq!(dialog.remote_tag, "remote1");
        assert_eq!(
            dialog.remote_target,
            "sip:100@198.51.100.7:5070;transport=udp"
        );
        assert_eq!(
            dialog.route_set,
            vec![
                "<sip:p0.example.com;lr>",
                "<sip:p1.example.com;lr>",
                "<sip:p2.example.com;lr>"
            ]
        );
        assert!(dialog.matches_response(&ok));
        let ack = dialog.ack(1, "z9hG4bKack");
        assert_eq!(ack.header("CSeq"), Some("1 ACK"));
        assert_eq!(ack.uri, dialog.remote_target);
        let bye = dialog.request(Method::Bye, "z9hG4bKbye");
        assert_eq!(bye.header("CSeq"), Some("2 BYE"));
        assert!(bye.header("To").unwrap().ends_with(";tag=remote1"));
        assert_eq!(bye.header("Route"), Some("<sip:p0.example.com;lr>"));
        assert!(parse_message(&bye.to_bytes()).is_ok());
    }

    #[test]
    fn cancel_copies_the_invite() {
        let (inv, _) = setup();
        let c = cancel(&inv);
        assert_eq!(c.uri, inv.uri);
        assert_eq!(c.branch(), inv.branch());
        for name in ["From", "To", "Call-ID"] {
            assert_eq!(c.header(name), inv.header(name));
        }
        assert_eq!(c.header("CSeq"), Some("1 CANCEL"));
        assert!(param(c.header("To").unwrap(), "tag").is_none());
    }

    #[test]
    fn two_hundred_without_tag_or_contact_is_refused() {
        let (inv, mut ok) = setup();
        let local = "192.0.2.10:5060".parse().unwrap();
        ok.headers
            .retain(|h| !matches!(h, rsip::Header::Contact(_)));
        assert_eq!(
            Dialog::from_2xx(&inv, &ok, local, Transport::Udp),
            Err(DialogError::MissingContact)
        );
    }
}
