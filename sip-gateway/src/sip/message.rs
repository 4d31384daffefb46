//! Message types shared by the SIP core: what we send, where, and header access.

use std::net::SocketAddr;

use rsip::Method;

/// Transport protocol that carries SIP between us and a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// UDP: unreliable, so requests and final responses are retransmitted.
    Udp,
    /// TCP: reliable, so retransmission timers are not used.
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2): reliable, and the trunk's certificate is verified.
    Tls,
}

impl Transport {
    /// Returns whether the transport delivers reliably (no retransmissions needed).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// Returns the token used in Via headers.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Returns the `transport` URI parameter for Contact and Request-URI, if one is needed.
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
        }
    }
}

/// Bytes to send, and where to send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Address of the peer.
    pub destination: SocketAddr,
    /// Transport to send with.
    pub transport: Transport,
    /// One complete SIP message.
    pub payload: Vec<u8>,
}

/// A request we send, kept as wire text so the Request-URI stays byte-exact for digest hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// Request method.
    pub method: Method,
    /// Request-URI exactly as it goes on the wire.
    pub uri: String,
    /// Header fields in order, without Content-Length (added on serialisation).
    pub headers: Vec<(String, String)>,
    /// Message body.
    pub body: Vec<u8>,
}

impl OutgoingRequest {
    /// Returns the first value of the named header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every value of the named header with one value, or appends it.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.headers[i].1 = value;
                let mut seen = 0;
                self.headers.retain(|(n, _)| {
                    if n.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.headers.push((name.to_string(), value)),
        }
    }

    /// Returns the branch parameter of the top Via.
    pub fn branch(&self) -> Option<&str> {
        self.header("Via").and_then(|v| param(v, "branch"))
    }

    /// Returns the CSeq sequence number.
    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    }

    /// Serialises the request, adding Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire(
            format_args!("{} {} SIP/2.0\r\n", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }
}

/// A response we send, kept as wire text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingResponse {
    /// Status code, 100 to 699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in order, without Content-Length.
    pub headers: Vec<(String, String)>,
    /// Message body.
    pub body: Vec<u8>,
}

impl OutgoingResponse {
    /// Builds a response to `request` copying Via, From, To, Call-ID and CSeq as RFC 3261 §8.2.6 says.
    pub fn to_request(request: &rsip::Request, status: u16, to_tag: Option<&str>) -> Self {
        let mut headers = Vec::new();
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for value in header_values(&request.headers, name) {
                let value = match (name, to_tag) {
                    ("To", Some(tag)) if param(&value, "tag").is_none() => {
                        format!("{value};tag={tag}")
                    }
                    _ => value,
                };
                headers.push((name.to_string(), value));
            }
        }
        OutgoingResponse {
            status,
            reason: reason_phrase(status).to_string(),
            headers,
            body: Vec::new(),
        }
    }

    /// Serialises the response, adding Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire(
            format_args!("SIP/2.0 {} {}\r\n", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }
}

/// Returns the values of every header with this name (case-insensitive, compact forms included).
///
/// Comma-joined values are returned as they arrived; see [`split_list`] to split them.
pub fn header_values(headers: &rsip::Headers, name: &str) -> Vec<String> {
    let wanted = canonical_name(name);
    headers
        .iter()
        .filter_map(|h| value_if_named(h, &wanted))
        .collect()
}

/// Returns the first value of the named header.
pub fn header_value(headers: &rsip::Headers, name: &str) -> Option<String> {
    let wanted = canonical_name(name);
    headers.iter().find_map(|h| value_if_named(h, &wanted))
}

/// Returns the header's value if its name, in [`canonical_name`] form, is `wanted`.
///
/// The headers a call reads on every message are matched by their kind,
/// without formatting them: looking up one header used to format every
/// header of the message into a string of its own.
fn value_if_named(header: &rsip::Header, wanted: &str) -> Option<String> {
    let (name, value) = match header {
        rsip::Header::Other(name, value) => (canonical_name(name.trim()), value.as_str()),
        header => match named(header) {
            Some((name, value)) => (name.to_string(), value),
            None => return value_if_named_formatted(header, wanted),
        },
    };
    (name == wanted).then(|| value.trim().to_string())
}

/// The same as [`value_if_named`], for any header: by formatting it as its line.
fn value_if_named_formatted(header: &rsip::Header, wanted: &str) -> Option<String> {
    let line = header.to_string();
    let (n, v) = line.split_once(':')?;
    (canonical_name(n.trim()) == wanted).then(|| v.trim().to_string())
}

/// The canonical name and the value of the headers read on every message.
fn named(header: &rsip::Header) -> Option<(&'static str, &str)> {
    use rsip::headers::UntypedHeader;
    use rsip::Header as H;
    Some(match header {
        H::Via(h) => ("via", h.value()),
        H::From(h) => ("from", h.value()),
        H::To(h) => ("to", h.value()),
        H::CallId(h) => ("call-id", h.value()),
        H::CSeq(h) => ("cseq", h.value()),
        H::Contact(h) => ("contact", h.value()),
        H::RecordRoute(h) => ("record-route", h.value()),
        H::Route(h) => ("route", h.value()),
        H::MaxForwards(h) => ("max-forwards", h.value()),
        H::ContentLength(h) => ("content-length", h.value()),
        H::ContentType(h) => ("content-type", h.value()),
        H::Expires(h) => ("expires", h.value()),
        H::Require(h) => ("require", h.value()),
        H::Supported(h) => ("supported", h.value()),
        H::Allow(h) => ("allow", h.value()),
        _ => return None,
    })
}

/// Splits a comma-separated header value, ignoring commas in quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut quoted, mut angled, mut start) = (false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            ',' if !quoted && !angled => {
                parts.push(value[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim().to_string());
    parts.retain(|p| !p.is_empty());
    parts
}

/// Returns a header parameter (after the URI part) such as `tag` or `branch`.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Returns the URI inside a name-addr (`"x" <sip:a@b>;tag=1`) or addr-spec (`sip:a@b;tag=1`).
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or("").trim(),
    }
}

/// Returns the standard reason phrase for the status codes this core sends or maps.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        _ => "Unknown",
    }
}

/// Maps a header name to lower case long form, so compact forms compare equal.
pub(crate) fn canonical_name(name: &str) -> String {
    long_name(name).to_ascii_lowercase()
}

/// Returns the long form (lower case) of a compact header name (RFC 3261 §7.3.3), or the
/// name as it is; compare it with `eq_ignore_ascii_case`.
pub(crate) fn long_name(name: &str) -> &str {
    let [byte] = name.as_bytes() else {
        return name;
    };
    match byte.to_ascii_lowercase() {
        b'v' => "via",
        b'f' => "from",
        b't' => "to",
        b'i' => "call-id",
        b'm' => "contact",
        b'l' => "content-length",
        b'c' => "content-type",
        b'k' => "supported",
        b'e' => "content-encoding",
        b's' => "subject",
        _ => name,
    }
}

/// Writes a message: its start line, its fields, a Content-Length and the body, into a
/// buffer sized for it at once.
fn wire(start: std::fmt::Arguments<'_>, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    use std::fmt::Write as _;
    let fields: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut out = String::with_capacity(128 + fields + body.len());
    // Writing into a String cannot fail.
    let _ = out.write_fmt(start);
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_uris_are_extracted() {
        let to = "\"Bob, Jr\" <sip:bob@example.com;transport=tcp>;tag=abc ; x=1";
        assert_eq!(param(to, "tag"), Some("abc"));
        assert_eq!(uri_of(to), "sip:bob@example.com;transport=tcp");
        assert_eq!(param("sip:a@b;tag=9", "tag"), Some("9"));
        assert_eq!(uri_of("sip:a@b;tag=9"), "sip:a@b");
        let via = "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKx";
        assert_eq!(param(via, "branch"), Some("z9hG4bKx"));
        assert_eq!(param(via, "rport"), Some(""));
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        let rr = "<sip:p1;lr>, \"a,b\" <sip:p2,x;lr>,<sip:p3>";
        assert_eq!(
            split_list(rr),
            vec!["<sip:p1;lr>", "\"a,b\" <sip:p2,x;lr>", "<sip:p3>"]
        );
    }

    #[test]
    fn headers_read_by_kind_read_as_their_formatted_lines_do() {
        let text = "INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
            v: SIP/2.0/UDP g;branch=z9hG4bK2\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
            Call-ID: c@h\r\nCSeq: 7 INVITE\r\nContact: <sip:a@10.0.0.1>\r\n\
            Record-Route: <sip:p;lr>\r\nRoute: <sip:q;lr>\r\nMax-Forwards: 70\r\n\
            Content-Type: application/sdp\r\nExpires: 60\r\nRequire: 100rel\r\n\
            Supported: timer\r\nAllow: INVITE, BYE\r\nUser-Agent: x\r\n\
            X-Custom: y\r\nContent-Length: 0\r\n\r\n";
        let request = match crate::sip::parse::parse_message(text.as_bytes()) {
            Ok(rsip::SipMessage::Request(request)) => request,
            other => panic!("not a request: {other:?}"),
        };
        let mut kinds = std::collections::BTreeSet::new();
        for header in request.headers.iter() {
            kinds.extend(named(header).map(|(name, _)| name));
            let line = header.to_string();
            let name = canonical_name(line.split_once(':').unwrap().0.trim());
            for wanted in [name.as_str(), "via", "to", "x-custom", "nothing"] {
                assert_eq!(
                    value_if_named(header, wanted),
                    value_if_named_formatted(header, wanted),
                    "{line} looked up as {wanted}"
                );
            }
        }
        assert_eq!(
            kinds.len(),
            15,
            "every kind read without formatting was seen"
        );
        assert_eq!(
            header_values(&request.headers, "Via"),
            [
                "SIP/2.0/UDP h;branch=z9hG4bK1",
                "SIP/2.0/UDP g;branch=z9hG4bK2"
            ]
        );
        assert_eq!(
            header_value(&request.headers, "cseq").as_deref(),
            Some("7 INVITE")
        );
        assert_eq!(
            header_value(&request.headers, "X-Custom").as_deref(),
            Some("y")
        );
    }

    #[test]
    fn set_header_replaces_all_values() {
        let mut r = OutgoingRequest {
            method: Method::Invite,
            uri: "sip:1@h".into(),
            headers: vec![("Via".into(), "a".into()), ("via".into(), "b".into())],
            body: b"x".to_vec(),
        };
        r.set_header("Via", "c");
        assert_eq!(r.headers, vec![("Via".to_string(), "c".to_string())]);
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            text,
            "INVITE sip:1@h SIP/2.0\r\nVia: c\r\nContent-Length: 1\r\n\r\nx"
        );
    }
}
