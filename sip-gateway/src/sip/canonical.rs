//! Puts the head of a received message into the plain form the tokenizer understands.
//!
//! RFC 3261 lets a sender fold header lines, put whitespace around the colon and inside Via,
//! and use characters in a Request-URI's user part that `rsip` does not take. RFC 4475 sends
//! all of these. This pass unfolds and trims each header, tightens Via, escapes the user part,
//! and rejects what no amount of tidying makes valid: a bad request line, an empty Via
//! parameter, an unclosed quote, a second Call-ID.

use std::borrow::Cow;

use super::message::long_name;
use super::parse::ParseError;

/// URI schemes a request may be addressed to.
const SCHEMES: [&str; 3] = ["sip", "sips", "tel"];

/// Headers that a message carries at most once (RFC 3261 §7.3.1, §20).
const SINGLE: [(&str, &str); 6] = [
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("from", "From"),
    ("to", "To"),
    ("content-length", "Content-Length"),
    ("max-forwards", "Max-Forwards"),
];

/// A message head in plain form, with the Content-Length it declares.
#[derive(Debug)]
pub(crate) struct Head {
    /// Start line and header lines joined with CRLF, without the blank line.
    pub text: String,
    /// The declared body length, if the message has a Content-Length header.
    pub content_length: Option<usize>,
}

/// Brings a head (the bytes before the blank line) into plain form, or says why it is invalid.
pub(crate) fn canonical_head(head: &[u8]) -> Result<Head, ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::Malformed("not UTF-8".into()))?;
    let lines = unfold(head);
    let (start, fields) = lines
        .split_first()
        .ok_or_else(|| ParseError::Malformed("empty message".into()))?;
    let mut text = String::with_capacity(head.len() + 16);
    match start.starts_with("SIP/") {
        true => text.push_str(start),
        false => text.push_str(&canonical_request_line(start)?),
    }
    let mut content_length = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for line in fields {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::Malformed("header line without a colon".into()))?;
        let name = name.trim_end();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::Malformed("invalid header name".into()));
        }
        let long = long_name(name);
        let is = |wanted: &str| long.eq_ignore_ascii_case(wanted);
        if let Some((_, proper)) = SINGLE.iter().find(|(single, _)| is(single)) {
            if seen.contains(proper) {
                return Err(ParseError::DuplicateHeader(proper));
            }
            seen.push(proper);
        }
        let value = value.trim();
        text.push_str("\r\n");
        text.push_str(name);
        text.push_str(": ");
        if is("via") {
            text.push_str(&canonical_via(value)?);
            continue;
        }
        if (is("from") || is("to") || is("contact")) && !quotes_balanced(value) {
            return Err(ParseError::Malformed("unclosed quoted string".into()));
        }
        if is("content-length") {
            content_length = Some(value.parse().map_err(|_| ParseError::BadContentLength)?);
        }
        text.push_str(value);
    }
    Ok(Head {
        text,
        content_length,
    })
}

/// Checks a request line and returns it with the Request-URI's user part escaped.
///
/// The errors tell apart what RFC 3261 answers with its own status: another SIP version (505),
/// a method we do not know (501), a URI scheme we do not serve (416).
pub(crate) fn canonical_request_line(line: &str) -> Result<String, ParseError> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(ParseError::Malformed(
            "request line is not METHOD URI VERSION".into(),
        ));
    };
    if *version != "SIP/2.0" {
        return Err(match version.starts_with("SIP/") {
            true => ParseError::UnsupportedVersion,
            false => ParseError::Malformed("no SIP version in the request line".into()),
        });
    }
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(ParseError::Malformed("invalid method".into()));
    }
    if method.parse::<rsip::Method>().is_err() {
        return Err(ParseError::UnknownMethod);
    }
    let scheme = uri.split_once(':').map(|(s, _)| s).unwrap_or("");
    let valid_scheme = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme {
        return Err(ParseError::Malformed("invalid Request-URI".into()));
    }
    if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(ParseError::UnsupportedScheme);
    }
    Ok(format!("{method} {} {version}", escape_user(uri)))
}

/// Joins folded lines (a line starting with space or tab continues the one before); a line
/// that nothing continues is borrowed as it is.
pub(crate) fn unfold(head: &str) -> Vec<Cow<'_, str>> {
    let mut lines: Vec<Cow<'_, str>> = Vec::new();
    for line in head.split("\r\n") {
        match (line.starts_with([' ', '\t']), lines.len()) {
            // A start line cannot be continued, so such a line stays as it is and fails later.
            (true, n) if n > 1 => {
                let last = lines.last_mut().expect("n > 1").to_mut();
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => lines.push(Cow::Borrowed(line)),
        }
    }
    lines
}

/// Escapes `;`, `?` and `/` in a SIP URI's user part, which RFC 3261 allows there but the
/// tokenizer reads as the start of parameters. Escaped and plain forms are equivalent (§19.1.4).
fn escape_user(uri: &str) -> String {
    let lower = uri.to_ascii_lowercase();
    let Some(prefix) = ["sip:", "sips:"].into_iter().find(|p| lower.starts_with(p)) else {
        return uri.to_string();
    };
    let Some(at) = uri.rfind('@') else {
        return uri.to_string();
    };
    let user = &uri[prefix.len()..at];
    let escaped = user
        .replace(';', "%3B")
        .replace('?', "%3F")
        .replace('/', "%2F");
    format!("{}{escaped}{}", &uri[..prefix.len()], &uri[at..])
}

/// Removes the whitespace RFC 3261 allows around Via's separators and checks each value's shape.
fn canonical_via(value: &str) -> Result<String, ParseError> {
    let mut tight = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.chars() {
        if c == ' ' || c == '\t' {
            pending_space = true;
            continue;
        }
        let separator = matches!(c, '/' | ';' | '=' | ',');
        let after_separator = tight.ends_with(['/', ';', '=', ',']);
        if pending_space && !separator && !after_separator && !tight.is_empty() {
            tight.push(' ');
        }
        pending_space = false;
        tight.push(c);
    }
    let parts: Vec<&str> = tight.split(',').collect();
    for part in &parts {
        let mut params = part.split(';');
        let sent = params.next().unwrap_or("");
        let (protocol, host) = sent.split_once(' ').unwrap_or((sent, ""));
        let transport = protocol.strip_prefix("SIP/2.0/").unwrap_or("");
        let valid = !transport.is_empty()
            && transport.bytes().all(is_token_byte)
            && !host.is_empty()
            && !host.contains(' ')
            && params.all(|p| !p.is_empty() && !p.starts_with('='));
        if !valid {
            return Err(ParseError::Malformed("invalid Via".into()));
        }
    }
    Ok(tight)
}

/// Tells whether every quoted string in a header value is closed (`\` escapes inside quotes).
fn quotes_balanced(value: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

/// RFC 3261 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_join_and_via_tightens() {
        let head =
            "OPTIONS sip:a@b SIP/2.0\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=x\r\n\
                    cseq: 0009\r\n  OPTIONS";
        let head = canonical_head(head.as_bytes()).unwrap();
        assert_eq!(
            head.text,
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=x\r\ncseq: 0009 OPTIONS"
        );
    }

    #[test]
    fn request_line_errors_carry_their_status() {
        let status = |line: &str| canonical_request_line(line).map_err(|e| e.status());
        assert_eq!(status("OPTIONS sip:a@b SIP/7.0"), Err(505));
        assert_eq!(status("NEWMETHOD sip:a@b SIP/2.0"), Err(501));
        assert_eq!(status("OPTIONS nobody:opaque SIP/2.0"), Err(416));
        assert_eq!(status("INVITE <sip:a@b> SIP/2.0"), Err(400));
        assert_eq!(status("INVITE  sip:a@b  SIP/2.0"), Err(400));
        assert_eq!(
            canonical_request_line("OPTIONS sip:u;p=a%40b@h SIP/2.0").unwrap(),
            "OPTIONS sip:u%3Bp=a%40b@h SIP/2.0"
        );
    }

    #[test]
    fn empty_via_parameters_and_open_quotes_are_invalid() {
        let via = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,";
        assert!(canonical_head(via.as_bytes()).is_err());
        let quote = "OPTIONS sip:a@b SIP/2.0\r\nTo: \"Mr. J. User <sip:j@b>";
        assert!(canonical_head(quote.as_bytes()).is_err());
        let escaped = "OPTIONS sip:a@b SIP/2.0\r\nFrom: \"J \\\\\\\"\" <sip:j@b>";
        assert!(canonical_head(escaped.as_bytes()).is_ok());
    }
}
