//! The entry point for SIP bytes from the network: validated parsing that never panics.

use rsip::headers::UntypedHeader;
use rsip::{Header, SipMessage};

use super::canonical::{canonical_head, canonical_request_line, unfold};
use super::message::{canonical_name, header_value, param, reason_phrase};
use super::outbound::ALLOW;

/// Largest message accepted, in bytes.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Largest head (start line and headers) accepted, in bytes. RFC 4475's longest valid head is
/// under 4 KiB; refusing longer ones before tokenizing keeps a flood of over-long headers cheap.
pub const MAX_HEAD_SIZE: usize = 16 * 1024;

/// Why bytes from the network were not accepted as a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The message is larger than [`MAX_MESSAGE_SIZE`], or its head than [`MAX_HEAD_SIZE`].
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The bytes are not a SIP message at all.
    #[error("malformed SIP message: {0}")]
    Malformed(String),
    /// A header that every request and response must carry is absent.
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// The CSeq header is not `number METHOD`, or names another method than the request line.
    #[error("invalid CSeq header")]
    InvalidCSeq,
    /// The top Via carries no RFC 3261 branch, so the message cannot be matched to a transaction.
    #[error("top Via has no z9hG4bK branch")]
    MissingBranch,
    /// Content-Length is not a number or disagrees with the body.
    #[error("Content-Length does not match the body")]
    BadContentLength,
    /// The datagram ended before the body that Content-Length announced.
    #[error("body truncated")]
    Truncated,
    /// The status code is outside 100..=699.
    #[error("invalid status code")]
    InvalidStatus,
    /// The request line names another SIP version than 2.0.
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    /// The request's method is a valid token but not one we know.
    #[error("unknown method")]
    UnknownMethod,
    /// The Request-URI's scheme is not sip, sips or tel.
    #[error("unsupported URI scheme")]
    UnsupportedScheme,
    /// A header that a message carries once appears twice.
    #[error("more than one {0} header")]
    DuplicateHeader(&'static str),
}

impl ParseError {
    /// Returns the status a request failing this way is answered with (RFC 3261 §8.2, §21).
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge(_) => 413,
            ParseError::UnsupportedVersion => 505,
            ParseError::UnknownMethod => 501,
            ParseError::UnsupportedScheme => 416,
            _ => 400,
        }
    }
}

/// Parses one complete SIP message (one UDP datagram, or one framed TCP message).
///
/// The head is first put into plain form ([`canonical_head`]): folded lines joined, whitespace
/// around colons and inside Via removed. Octets after the body that Content-Length announces
/// are dropped, as RFC 3261 §18.3 asks for datagrams. A request's top Via may lack the
/// `z9hG4bK` cookie (an RFC 2543 peer); a response's may not, as it could match nothing of ours.
pub fn parse_message(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let head_end = match find(&bytes[..bytes.len().min(MAX_HEAD_SIZE + 4)], b"\r\n\r\n") {
        Some(end) => end,
        None if bytes.len() > MAX_HEAD_SIZE => return Err(ParseError::TooLarge(bytes.len())),
        None => return Err(ParseError::Malformed("no end of headers".into())),
    };
    let head = canonical_head(&bytes[..head_end])?;
    let body = &bytes[head_end + 4..];
    let body = match head.content_length {
        Some(length) if length > body.len() => return Err(ParseError::Truncated),
        Some(length) => &body[..length],
        None => body,
    };
    let mut plain = head.text.into_bytes();
    plain.extend_from_slice(b"\r\n\r\n");
    plain.extend_from_slice(body);
    let mut message = tokenize(&plain)?;
    normalise_compact_headers(&mut message);
    let headers = match &message {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if header_value(headers, name).is_none() {
            return Err(ParseError::MissingHeader(name));
        }
    }
    let via = header_value(headers, "Via").unwrap_or_default();
    let cookie = param(&via, "branch").is_some_and(|b| b.starts_with("z9hG4bK"));
    if !cookie && matches!(message, SipMessage::Response(_)) {
        return Err(ParseError::MissingBranch);
    }
    let cseq = header_value(headers, "CSeq").unwrap_or_default();
    let (number, method) = cseq.split_once(' ').ok_or(ParseError::InvalidCSeq)?;
    number
        .trim()
        .parse::<u32>()
        .map_err(|_| ParseError::InvalidCSeq)?;
    match &message {
        SipMessage::Request(r) if !r.method.to_string().eq_ignore_ascii_case(method.trim()) => {
            return Err(ParseError::InvalidCSeq);
        }
        SipMessage::Response(r) if !(100..=699).contains(&r.status_code.code()) => {
            return Err(ParseError::InvalidStatus);
        }
        _ => {}
    }
    Ok(message)
}

/// Returns the length of the first complete message in a TCP stream buffer, if it holds one.
pub fn frame_length(buffer: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some(head_end) = find(&buffer[..buffer.len().min(MAX_HEAD_SIZE + 4)], b"\r\n\r\n") else {
        return match buffer.len() > MAX_HEAD_SIZE {
            true => Err(ParseError::TooLarge(buffer.len())),
            false => Ok(None),
        };
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]);
    let mut length = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if canonical_name(name.trim()) == "content-length" {
                length = value
                    .trim()
                    .parse()
                    .map_err(|_| ParseError::BadContentLength)?;
            }
        }
    }
    let total = head_end.saturating_add(4).saturating_add(length);
    if total > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge(total));
    }
    Ok((buffer.len() >= total).then_some(total))
}

/// Builds the error response for a request that failed to parse, when enough of it survives.
///
/// The status follows RFC 3261: 505 for another SIP version, 501 (with Allow) for an unknown
/// method, 416 for an unknown URI scheme, 413 for an oversized message, 400 otherwise. It
/// scans the raw lines itself, since the message failed to parse. Returns `None` for
/// responses, ACKs (which are never answered) and requests missing a mandatory header.
pub fn bad_request_response(bytes: &[u8], reason: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_MESSAGE_SIZE)]);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let lines = unfold(head);
    let (request_line, fields) = lines.split_first()?;
    let method = request_line.split(' ').next()?;
    if method.is_empty() || method.starts_with("SIP/") || method.eq_ignore_ascii_case("ACK") {
        return None;
    }
    let head_too_long = find(&bytes[..bytes.len().min(MAX_HEAD_SIZE + 4)], b"\r\n\r\n").is_none()
        && bytes.len() > MAX_HEAD_SIZE;
    let status = match bytes.len() > MAX_MESSAGE_SIZE || head_too_long {
        true => 413,
        false => canonical_request_line(request_line)
            .err()
            .map_or(400, |e| e.status()),
    };
    let mut copied: Vec<(&'static str, String)> = Vec::new();
    for line in fields {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = match canonical_name(name.trim()).as_str() {
            "via" => "Via",
            "from" => "From",
            "to" => "To",
            "call-id" => "Call-ID",
            "cseq" => "CSeq",
            _ => continue,
        };
        let value = value.trim();
        // A bare CR or LF copied back could start a header of the sender's choosing.
        if value.is_empty() || value.contains(['\r', '\n']) {
            return None;
        }
        copied.push((name, value.to_string()));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if !copied.iter().any(|(n, _)| *n == name) {
            return None;
        }
    }
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason_phrase(status));
    for (name, value) in copied {
        let value = match name == "To" && param(&value, "tag").is_none() {
            true => format!("{value};tag={:016x}", rand::random::<u64>()),
            false => value,
        };
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if status == 501 {
        out.push_str(&format!("Allow: {ALLOW}\r\n"));
    }
    out.push_str(&format!(
        "Warning: 399 - \"{}\"\r\n",
        reason.replace('"', "'")
    ));
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

fn tokenize(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    // rsip is built on nom and has no explicit panics, and the proptests below found none; the
    // unwind guard remains because a panic here would be triggered by any packet from outside.
    match std::panic::catch_unwind(|| SipMessage::try_from(bytes)) {
        Ok(Ok(message)) => Ok(message),
        // rsip's error text quotes the message, which may hold numbers: it is neither logged
        // nor echoed in a Warning header.
        Ok(Err(_)) => Err(ParseError::Malformed("unparseable syntax".into())),
        Err(_) => Err(ParseError::Malformed("parser failure".into())),
    }
}

fn normalise_compact_headers(message: &mut SipMessage) {
    let headers = match message {
        SipMessage::Request(r) => &mut r.headers,
        SipMessage::Response(r) => &mut r.headers,
    };
    for header in headers.iter_mut() {
        let Header::Other(name, value) = header else {
            continue;
        };
        let value = value.clone();
        let replacement = match canonical_name(name).as_str() {
            "via" => Header::Via(rsip::headers::Via::new(value)),
            "from" => Header::From(rsip::headers::From::new(value)),
            "to" => Header::To(rsip::headers::To::new(value)),
            "call-id" => Header::CallId(rsip::headers::CallId::new(value)),
            "contact" => Header::Contact(rsip::headers::Contact::new(value)),
            "content-length" => Header::ContentLength(rsip::headers::ContentLength::new(value)),
            "content-type" => Header::ContentType(rsip::headers::ContentType::new(value)),
            "supported" => Header::Supported(rsip::headers::Supported::new(value)),
            _ => continue,
        };
        *header = replacement;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::header_values;
    use proptest::prelude::*;

    pub(crate) const INVITE: &str = "INVITE sip:441234567890@trunk.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc123;rport\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:442070000000@example.org>;tag=f1\r\n\
        To: <sip:441234567890@trunk.example.com>\r\n\
        Call-ID: 3f2a9c@192.0.2.10\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:192.0.2.10:5060>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn parses_a_valid_invite() {
        let msg = parse_message(INVITE.as_bytes()).unwrap();
        let SipMessage::Request(r) = msg else {
            panic!("expected a request")
        };
        assert_eq!(r.method, rsip::Method::Invite);
        assert_eq!(r.body, b"v=0\n");
    }

    #[test]
    fn compact_headers_are_normalised() {
        let text = "SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
            f: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: x\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
        let msg = parse_message(text.as_bytes()).unwrap();
        let SipMessage::Response(r) = msg else {
            panic!("expected a response")
        };
        assert_eq!(header_values(&r.headers, "Call-ID"), vec!["x"]);
        assert_eq!(header_values(&r.headers, "to"), vec!["<sip:c@d>;tag=2"]);
    }

    #[test]
    fn rejects_bad_messages() {
        let big = vec![b'a'; MAX_MESSAGE_SIZE + 1];
        assert!(matches!(parse_message(&big), Err(ParseError::TooLarge(_))));
        let no_callid = INVITE.replace("Call-ID: 3f2a9c@192.0.2.10\r\n", "");
        assert_eq!(
            parse_message(no_callid.as_bytes()),
            Err(ParseError::MissingHeader("Call-ID"))
        );
        let truncated = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert_eq!(
            parse_message(truncated.as_bytes()),
            Err(ParseError::Truncated)
        );
        // Octets past Content-Length in a datagram are dropped (RFC 3261 §18.3), not an error.
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 2");
        let SipMessage::Request(r) = parse_message(short.as_bytes()).unwrap() else {
            panic!("expected a request")
        };
        assert_eq!(r.body, b"v=");
        let nonsense = INVITE.replace("Content-Length: 4", "Content-Length: x");
        assert_eq!(
            parse_message(nonsense.as_bytes()),
            Err(ParseError::BadContentLength)
        );
        let cseq = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        assert_eq!(parse_message(cseq.as_bytes()), Err(ParseError::InvalidCSeq));
        let ok =
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
            To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let branch = ok.replace("branch=z9hG4bK1", "branch=old");
        assert_eq!(
            parse_message(branch.as_bytes()),
            Err(ParseError::MissingBranch)
        );
        let twice = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 INVITE\r\nCall-ID: again");
        assert_eq!(
            parse_message(twice.as_bytes()),
            Err(ParseError::DuplicateHeader("Call-ID"))
        );
    }

    #[test]
    fn overlong_heads_are_refused_as_too_large() {
        let long = INVITE.replace(
            "Max-Forwards: 70",
            &format!("X-Long: {}", "a".repeat(20_000)),
        );
        assert!(matches!(
            parse_message(long.as_bytes()),
            Err(ParseError::TooLarge(_))
        ));
        let reply = bad_request_response(long.as_bytes(), "too large").unwrap();
        assert!(reply.starts_with(b"SIP/2.0 413 "));
        assert!(matches!(
            frame_length(long.as_bytes()),
            Err(ParseError::TooLarge(_))
        ));
    }

    #[test]
    fn frames_tcp_stream() {
        let mut buffer = INVITE.as_bytes().to_vec();
        buffer.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n");
        assert_eq!(frame_length(&buffer), Ok(Some(INVITE.len())));
        assert_eq!(frame_length(&buffer[..INVITE.len() - 1]), Ok(None));
    }

    #[test]
    fn builds_400_for_a_malformed_request() {
        let broken = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert!(parse_message(broken.as_bytes()).is_err());
        let reply = bad_request_response(broken.as_bytes(), "truncated").unwrap();
        let parsed = parse_message(&reply).unwrap();
        let SipMessage::Response(r) = parsed else {
            panic!("expected a response")
        };
        assert_eq!(r.status_code.code(), 400);
        let version = INVITE.replace("SIP/2.0\r\nVia", "SIP/9.9\r\nVia");
        let reply = bad_request_response(version.as_bytes(), "version").unwrap();
        assert!(reply.starts_with(b"SIP/2.0 505 "));
        let to = header_values(&r.headers, "To").remove(0);
        assert!(param(&to, "tag").is_some());
        let no_via = broken.replace(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc123;rport\r\n",
            "",
        );
        assert!(bad_request_response(no_via.as_bytes(), "x").is_none());
        assert!(bad_request_response(b"SIP/2.0 200 OK\r\n\r\n", "x").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_message(&bytes);
            let _ = SipMessage::try_from(bytes.as_slice());
            let _ = frame_length(&bytes);
            let _ = bad_request_response(&bytes, "x");
        }

        #[test]
        fn mutated_messages_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = INVITE.as_bytes().to_vec();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = parse_message(&bytes);
            let _ = bad_request_response(&bytes, "x");
            // rsip is called without the unwind guard too, so a panic in it would show here.
            let _ = SipMessage::try_from(bytes.as_slice());
            let end = cut.index(bytes.len());
            let _ = parse_message(&bytes[..end]);
        }

        #[test]
        fn mutated_header_text_never_panics(line in "[ -~]{0,80}", at in 1usize..9) {
            let mut lines: Vec<&str> = INVITE.split("\r\n").collect();
            lines.insert(at, &line);
            let joined = lines.join("\r\n");
            let _ = parse_message(joined.as_bytes());
            let _ = SipMessage::try_from(joined.as_bytes());
        }
    }
}
