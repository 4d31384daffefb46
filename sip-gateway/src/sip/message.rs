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
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        write_fields(&mut out, &self.headers, self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
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
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_fields(&mut out, &self.headers, self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Returns the values of every header with this name (case-insensitive, compact forms included).
///
/// Comma-joined values are returned as they arrived; see [`split_list`] to split them.
pub fn header_values(headers: &rsip::Headers, name: &str) -> Vec<String> {
    let wanted = canonical_name(name);
    headers
        .iter()
        .filter_map(|h| {
            let line = h.to_string();
            let (n, v) = line.split_once(':')?;
            (canonical_name(n.trim()) == wanted).then(|| v.trim().to_string())
        })
        .collect()
}

/// Returns the first value of the named header.
pub fn header_value(headers: &rsip::Headers, name: &str) -> Option<String> {
    header_values(headers, name).into_iter().next()
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
    let long = match name.to_ascii_lowercase().as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "e" => "content-encoding",
        "s" => "subject",
        other => return other.to_string(),
    };
    long.to_string()
}

fn write_fields(out: &mut String, headers: &[(String, String)], body_len: usize) {
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
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
