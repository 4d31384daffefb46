//! The checks a UAS makes on a new request before acting on it (RFC 3261 §8.2.1–§8.2.3).
//!
//! The transaction layer answers a request that fails one of them itself, so neither the
//! trunk nor a call sees it: a method we do not implement (405), an extension we were
//! required to support (420), a body we cannot read (415), an INVITE whose sender cannot
//! read SDP (406).

use rsip::Method;

use super::message::{header_values, split_list, OutgoingResponse};
use super::outbound::ALLOW;

/// Returns the response a new request must get instead of reaching the layer above, if any.
///
/// ACKs are never answered and CANCEL is matched to its INVITE, so neither is screened.
pub fn screen(request: &rsip::Request) -> Option<OutgoingResponse> {
    screen_allowing(request, ALLOW)
}

/// Screens a request as [`screen`] does, for an endpoint that implements the methods of
/// `allow` (a comma-separated list, as in an Allow header) instead of [`ALLOW`].
pub fn screen_allowing(request: &rsip::Request, allow: &str) -> Option<OutgoingResponse> {
    if matches!(request.method, Method::Ack | Method::Cancel) {
        return None;
    }
    let (status, extra) = rejection(request, allow)?;
    let tag = format!("{:016x}", rand::random::<u64>());
    let mut response = OutgoingResponse::to_request(request, status, Some(&tag));
    response.headers.extend(extra);
    Some(response)
}

fn rejection(request: &rsip::Request, allow: &str) -> Option<(u16, Vec<(String, String)>)> {
    let method = request.method.to_string();
    let allowed = allow.split(',').any(|m| m.trim() == method);
    if !allowed {
        return Some((405, vec![("Allow".into(), allow.into())]));
    }
    let required: Vec<String> = header_values(&request.headers, "Require")
        .iter()
        .flat_map(|v| split_list(v))
        .collect();
    if !required.is_empty() {
        // We implement no SIP extension, so any option tag we are required to know is unknown.
        return Some((420, vec![("Unsupported".into(), required.join(", "))]));
    }
    if !request.body.is_empty() && !is_sdp(&request.headers) {
        return Some((415, vec![("Accept".into(), "application/sdp".into())]));
    }
    if request.method == Method::Invite && !accepts_sdp(&request.headers) {
        return Some((406, Vec::new()));
    }
    None
}

/// Tells whether the body is SDP: Content-Type application/sdp and no content coding.
fn is_sdp(headers: &rsip::Headers) -> bool {
    let media = header_values(headers, "Content-Type")
        .first()
        .map(|v| media_type(v))
        .unwrap_or_default();
    let coded = header_values(headers, "Content-Encoding")
        .iter()
        .flat_map(|v| split_list(v))
        .any(|c| !c.eq_ignore_ascii_case("identity"));
    media == "application/sdp" && !coded
}

/// Tells whether the sender reads SDP, which an answer to an INVITE carries (§8.2.3).
fn accepts_sdp(headers: &rsip::Headers) -> bool {
    let accept: Vec<String> = header_values(headers, "Accept")
        .iter()
        .flat_map(|v| split_list(v))
        .map(|v| media_type(&v))
        .collect();
    accept.is_empty()
        || accept
            .iter()
            .any(|m| matches!(m.as_str(), "application/sdp" | "application/*" | "*/*"))
}

/// Returns `type/subtype` in lower case, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::parse_message;

    fn request(extra: &str, body: &str) -> rsip::Request {
        let text = format!(
            "OPTIONS sip:gw@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:gw@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match parse_message(text.as_bytes()).unwrap() {
            rsip::SipMessage::Request(r) => r,
            rsip::SipMessage::Response(_) => panic!("expected a request"),
        }
    }

    fn status(request: &rsip::Request) -> Option<u16> {
        screen(request).map(|r| r.status)
    }

    #[test]
    fn plain_requests_pass() {
        assert_eq!(status(&request("", "")), None);
        assert_eq!(
            status(&request("Content-Type: application/sdp\r\n", "v=0\r\n")),
            None
        );
    }

    #[test]
    fn unsupported_requests_get_their_status() {
        let mut message = request("", "");
        message.method = Method::Message;
        let refused = screen(&message).unwrap();
        assert_eq!(refused.status, 405);
        assert!(refused
            .headers
            .iter()
            .any(|(n, v)| n == "Allow" && v == ALLOW));
        let required = screen(&request("Require: foo, bar\r\n", "")).unwrap();
        assert_eq!(required.status, 420);
        assert!(required
            .headers
            .iter()
            .any(|(n, v)| n == "Unsupported" && v == "foo, bar"));
        assert_eq!(
            status(&request("Content-Type: text/plain\r\n", "hi")),
            Some(415)
        );
        let mut invite = request("Accept: text/x-nothing\r\n", "");
        invite.method = Method::Invite;
        assert_eq!(status(&invite), Some(406));
    }

    #[test]
    fn an_endpoint_may_allow_other_methods() {
        let mut register = request("", "");
        register.method = Method::Register;
        assert_eq!(
            status(&register),
            Some(405),
            "the trunk side has no registrar"
        );
        assert!(screen_allowing(&register, "REGISTER").is_none());
        let options = request("", "");
        let refused = screen_allowing(&options, "REGISTER").unwrap();
        assert_eq!(refused.status, 405);
        assert!(refused
            .headers
            .iter()
            .any(|(n, v)| n == "Allow" && v == "REGISTER"));
        assert_eq!(
            screen_allowing(&request("Require: path\r\n", ""), "OPTIONS").map(|r| r.status),
            Some(420)
        );
    }
}
