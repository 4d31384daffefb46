//! Requests towards a trunk, built from a header whitelist: the privacy boundary of the gateway.
//!
//! Nothing here takes a CRM id or display name. Call-IDs, tags and branches are fresh random
//! hex, so nothing on the wire can be linked back to a lead. No Supported header is sent: we
//! implement no extension, and offering `timer` would make us the session refresher.

use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::Method;

use super::message::{OutgoingRequest, Transport};

/// Every header an initial INVITE may carry; the last two only after a challenge.
pub const INVITE_HEADERS: &[&str] = &[
    "Via",
    "Max-Forwards",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Allow",
    "Content-Type",
    "Authorization",
    "Proxy-Authorization",
];

/// Methods we accept, for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";

/// A SIP trunk: where requests go and which names appear in URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    /// Host used in Request-URI and To (a domain or IP literal).
    pub host: String,
    /// Port written in the Request-URI, if not the default.
    pub port: Option<u16>,
    /// Address every request is sent to.
    pub address: SocketAddr,
    /// Transport to the trunk.
    pub transport: Transport,
    /// Domain in our From URI.
    pub from_domain: String,
}

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The dialled number is not `+` and digits.
    #[error("dialled number is not an E.164-like digit string")]
    InvalidNumber,
    /// The caller ID is not `+` and digits.
    #[error("caller ID is not an E.164-like digit string")]
    InvalidCallerId,
    /// The trunk host or from-domain contains characters not allowed in a SIP host.
    #[error("trunk host is not a plain host name")]
    InvalidHost,
    /// A desk phone's contact is not a plain sip or sips URI.
    #[error("the phone's contact is not a plain SIP URI")]
    InvalidContact,
}

/// Source of random Call-IDs, tags, branches and cnonces.
#[derive(Debug)]
pub struct IdGenerator {
    rng: StdRng,
}

impl IdGenerator {
    /// Creates a generator seeded from the operating system.
    pub fn from_entropy() -> Self {
        IdGenerator {
            rng: StdRng::from_entropy(),
        }
    }

    /// Creates a reproducible generator for tests and simulations.
    pub fn from_seed(seed: u64) -> Self {
        IdGenerator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Returns `n` random bytes as lower-case hex.
    pub fn hex(&mut self, n: usize) -> String {
        let bytes: Vec<u8> = (0..n).map(|_| self.rng.gen()).collect();
        hex::encode(bytes)
    }

    /// Returns a fresh RFC 3261 branch.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.hex(12))
    }

    /// Returns a fresh From or To tag.
    pub fn tag(&mut self) -> String {
        self.hex(8)
    }

    /// Returns a fresh Call-ID.
    pub fn call_id(&mut self) -> String {
        self.hex(16)
    }

    /// Returns a random number, for SDP session ids.
    pub fn number(&mut self) -> u64 {
        self.rng.gen_range(1..u64::from(u32::MAX))
    }
}

/// Builds the initial INVITE to `number` presenting `caller_id`, carrying `sdp`.
pub fn invite(
    number: &str,
    caller_id: &str,
    trunk: &Trunk,
    local: SocketAddr,
    sdp: &str,
    ids: &mut IdGenerator,
) -> Result<OutgoingRequest, OutboundError> {
    if !is_digits(number) {
        return Err(OutboundError::InvalidNumber);
    }
    if !is_digits(caller_id) {
        return Err(OutboundError::InvalidCallerId);
    }
    if !is_host(&trunk.host) || !is_host(&trunk.from_domain) {
        return Err(OutboundError::InvalidHost);
    }
    let uri = trunk_uri(Some(number), trunk);
    let headers = vec![
        ("Via".into(), via(local, trunk.transport, &ids.branch())),
        ("Max-Forwards".into(), "70".into()),
        (
            "From".into(),
            format!("<sip:{caller_id}@{}>;tag={}", trunk.from_domain, ids.tag()),
        ),
        ("To".into(), format!("<sip:{number}@{}>", trunk.host)),
        ("Call-ID".into(), ids.call_id()),
        ("CSeq".into(), "1 INVITE".into()),
        ("Contact".into(), contact(local, trunk.transport)),
        ("Allow".into(), ALLOW.into()),
        ("Content-Type".into(), "application/sdp".into()),
    ];
    Ok(OutgoingRequest {
        method: Method::Invite,
        uri,
        headers,
        body: sdp.as_bytes().to_vec(),
    })
}

/// The user part of our From towards desk phones: the service, never a person or a lead.
pub const PHONE_CALLER: &str = "dialcrm";

/// Builds the initial INVITE to a registered desk phone at `target`, its contact, carrying `sdp`.
///
/// The Request-URI is `target`, the contact the phone registered; To is the phone's address of
/// record, `username` at `domain` (at our own address when `domain` is not a plain host
/// name, as a realm need not be); From is the service itself, `dialcrm` at our address.
/// Nothing in it comes from the CRM.
pub fn invite_to_phone(
    target: &str,
    username: &str,
    domain: &str,
    local: SocketAddr,
    transport: Transport,
    sdp: &str,
    ids: &mut IdGenerator,
) -> Result<OutgoingRequest, OutboundError> {
    if !is_plain_sip_uri(target) {
        return Err(OutboundError::InvalidContact);
    }
    let ours = host_of(local);
    let domain = match is_host(domain) {
        true => domain.to_string(),
        false => ours.clone(),
    };
    let headers = vec![
        ("Via".into(), via(local, transport, &ids.branch())),
        ("Max-Forwards".into(), "70".into()),
        (
            "From".into(),
            format!("<sip:{PHONE_CALLER}@{ours}>;tag={}", ids.tag()),
        ),
        (
            "To".into(),
            format!("<sip:{}@{domain}>", escape_user(username)),
        ),
        ("Call-ID".into(), ids.call_id()),
        ("CSeq".into(), "1 INVITE".into()),
        ("Contact".into(), contact(local, transport)),
        ("Allow".into(), ALLOW.into()),
        ("Content-Type".into(), "application/sdp".into()),
    ];
    Ok(OutgoingRequest {
        method: Method::Invite,
        uri: target.to_string(),
        headers,
        body: sdp.as_bytes().to_vec(),
    })
}

/// Builds an out-of-dialog OPTIONS keepalive to the trunk.
pub fn options(trunk: &Trunk, local: SocketAddr, ids: &mut IdGenerator) -> OutgoingRequest {
    let uri = host_uri(trunk);
    OutgoingRequest {
        method: Method::Options,
        headers: vec![
            ("Via".into(), via(local, trunk.transport, &ids.branch())),
            ("Max-Forwards".into(), "70".into()),
            (
                "From".into(),
                format!("<sip:{}>;tag={}", trunk.from_domain, ids.tag()),
            ),
            ("To".into(), format!("<{uri}>")),
            ("Call-ID".into(), ids.call_id()),
            ("CSeq".into(), "1 OPTIONS".into()),
            ("Accept".into(), "application/sdp".into()),
        ],
        uri,
        body: Vec::new(),
    }
}

/// Builds a REGISTER binding `username` at the trunk to our address for `expires` seconds.
///
/// Re-registrations should reuse `call_id` and increase `cseq` (RFC 3261 §10.2.4).
pub fn register(
    trunk: &Trunk,
    username: &str,
    local: SocketAddr,
    expires: u32,
    call_id: &str,
    cseq: u32,
    ids: &mut IdGenerator,
) -> OutgoingRequest {
    let aor = format!("<sip:{username}@{}>", trunk.host);
    OutgoingRequest {
        method: Method::Register,
        uri: host_uri(trunk),
        headers: vec![
            ("Via".into(), via(local, trunk.transport, &ids.branch())),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), format!("{aor};tag={}", ids.tag())),
            ("To".into(), aor),
            ("Call-ID".into(), call_id.into()),
            ("CSeq".into(), format!("{cseq} REGISTER")),
            ("Contact".into(), contact(local, trunk.transport)),
            ("Expires".into(), expires.to_string()),
            ("Allow".into(), ALLOW.into()),
        ],
        body: Vec::new(),
    }
}

/// Returns our Via value with this branch.
pub fn via(local: SocketAddr, transport: Transport, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {local};branch={branch};rport",
        transport.via_token()
    )
}

/// Returns our Contact value: an address only, no user part.
pub fn contact(local: SocketAddr, transport: Transport) -> String {
    match transport.uri_param() {
        None => format!("<sip:{local}>"),
        Some(param) => format!("<sip:{local};transport={param}>"),
    }
}

fn host_uri(trunk: &Trunk) -> String {
    trunk_uri(None, trunk)
}

/// Returns a URI at the trunk; over TLS it says so, since a bare `sip:` URI means UDP or TCP
/// on port 5060 to anyone routing it (RFC 3263). TCP keeps the bare form trunks already accept.
fn trunk_uri(user: Option<&str>, trunk: &Trunk) -> String {
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    let port = trunk.port.map(|p| format!(":{p}")).unwrap_or_default();
    let transport = match trunk.transport {
        Transport::Tls => ";transport=tls",
        Transport::Udp | Transport::Tcp => "",
    };
    format!("sip:{user}{}{port}{transport}", trunk.host)
}

/// Returns our address as the host part of a URI (an IPv6 address in brackets), without port.
fn host_of(local: SocketAddr) -> String {
    match local {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

/// Whether `uri` is a sip or sips URI that can stand as a Request-URI and inside `<>`.
fn is_plain_sip_uri(uri: &str) -> bool {
    let rest = uri.split_once(':').and_then(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")).then_some(rest)
    });
    rest.is_some_and(|r| !r.is_empty())
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b','))
}

/// Escapes a SIP user part (RFC 3261 §25.1: unreserved and user-unreserved stay as they are).
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_digits(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or(value);
    (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_host(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sip::message::{header_values, param};
    use crate::sip::parse::parse_message;
    use rsip::SipMessage;

    pub(crate) fn trunk() -> Trunk {
        Trunk {
            host: "trunk.example.com".into(),
            port: None,
            address: "203.0.113.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            from_domain: "example.org".into(),
        }
    }

    fn local() -> SocketAddr {
        "192.0.2.10:5060".parse().unwrap()
    }

    #[test]
    fn invite_carries_exactly_the_whitelist() {
        let mut ids = IdGenerator::from_seed(7);
        let req = invite(
            "+441234567890",
            "+442070000000",
            &trunk(),
            local(),
            "v=0\r\n",
            &mut ids,
        )
        .unwrap();
        let names: Vec<&str> = req.headers.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<&str> = INVITE_HEADERS[..INVITE_HEADERS.len() - 2].to_vec();
        assert_eq!(names, expected);
        let bytes = req.to_bytes();
        let SipMessage::Request(parsed) = parse_message(&bytes).unwrap() else {
            panic!("expected a request")
        };
        let mut wire: Vec<String> = bytes_header_names(&bytes);
        wire.retain(|n| n != "Content-Length");
        assert_eq!(wire, expected);
        assert_eq!(req.uri, "sip:+441234567890@trunk.example.com");
        let from = header_values(&parsed.headers, "From").remove(0);
        assert!(from.starts_with("<sip:+442070000000@example.org>;tag="));
        let to = header_values(&parsed.headers, "To").remove(0);
        assert_eq!(to, "<sip:+441234567890@trunk.example.com>");
        assert!(req.branch().unwrap().starts_with("z9hG4bK"));
        let call_id = req.header("Call-ID").unwrap();
        assert_eq!(call_id.len(), 32);
        assert!(call_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(param(req.header("From").unwrap(), "tag").is_some());
    }

    #[test]
    fn invites_never_share_ids() {
        let mut ids = IdGenerator::from_entropy();
        let a = invite("1", "2", &trunk(), local(), "", &mut ids).unwrap();
        let b = invite("1", "2", &trunk(), local(), "", &mut ids).unwrap();
        for name in ["Call-ID", "From", "Via"] {
            assert_ne!(a.header(name), b.header(name));
        }
    }

    #[test]
    fn refuses_anything_but_digits() {
        let mut ids = IdGenerator::from_seed(1);
        let bad = ["", "12a", "1@evil", "\"Bob\" 1", "1\r\nX-Lead: 9", "+"];
        for number in bad {
            assert_eq!(
                invite(number, "1", &trunk(), local(), "", &mut ids),
                Err(OutboundError::InvalidNumber)
            );
            assert_eq!(
                invite("1", number, &trunk(), local(), "", &mut ids),
                Err(OutboundError::InvalidCallerId)
            );
        }
        let mut evil = trunk();
        evil.host = "h>\r\nX: y".into();
        assert_eq!(
            invite("1", "2", &evil, local(), "", &mut ids),
            Err(OutboundError::InvalidHost)
        );
    }

    #[test]
    fn options_and_register_parse() {
        let mut ids = IdGenerator::from_seed(3);
        let mut t = trunk();
        t.port = Some(5080);
        let opt = options(&t, local(), &mut ids);
        assert_eq!(opt.uri, "sip:trunk.example.com:5080");
        assert!(parse_message(&opt.to_bytes()).is_ok());
        let reg = register(&t, "acct", local(), 300, "cid", 2, &mut ids);
        assert_eq!(reg.header("Expires"), Some("300"));
        assert_eq!(reg.header("CSeq"), Some("2 REGISTER"));
        assert!(parse_message(&reg.to_bytes()).is_ok());
    }

    #[test]
    fn tls_requests_say_so_in_via_contact_and_uri() {
        let mut ids = IdGenerator::from_seed(5);
        let mut t = trunk();
        t.transport = Transport::Tls;
        let req = invite("+441234567890", "+442070000000", &t, local(), "", &mut ids).unwrap();
        assert_eq!(req.uri, "sip:+441234567890@trunk.example.com;transport=tls");
        assert!(req
            .header("Via")
            .unwrap()
            .starts_with("SIP/2.0/TLS 192.0.2.10:5060;"));
        assert_eq!(
            req.header("Contact"),
            Some("<sip:192.0.2.10:5060;transport=tls>")
        );
        t.port = Some(5071);
        let opt = options(&t, local(), &mut ids);
        assert_eq!(opt.uri, "sip:trunk.example.com:5071;transport=tls");
        assert!(parse_message(&opt.to_bytes()).is_ok());
        assert!(parse_message(&req.to_bytes()).is_ok());
    }

    #[test]
    fn an_invite_to_a_phone_names_the_service_and_the_phone_alone() {
        let mut ids = IdGenerator::from_seed(11);
        let contact = "sip:alice@192.0.2.40:5062;transport=tcp";
        let req = invite_to_phone(
            contact,
            "alice",
            "phones.example.com",
            local(),
            Transport::Tcp,
            "v=0\r\n",
            &mut ids,
        )
        .unwrap();
        assert_eq!(req.uri, contact);
        let names: Vec<&str> = req.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, INVITE_HEADERS[..INVITE_HEADERS.len() - 2].to_vec());
        let from = req.header("From").unwrap();
        assert!(from.starts_with("<sip:dialcrm@192.0.2.10>;tag="), "{from}");
        assert_eq!(req.header("To"), Some("<sip:alice@phones.example.com>"));
        assert!(req
            .header("Via")
            .unwrap()
            .starts_with("SIP/2.0/TCP 192.0.2.10:5060;"));
        assert_eq!(
            req.header("Contact"),
            Some("<sip:192.0.2.10:5060;transport=tcp>")
        );
        assert!(parse_message(&req.to_bytes()).is_ok());
    }

    #[test]
    fn an_invite_to_a_phone_escapes_its_user_and_refuses_odd_contacts() {
        let mut ids = IdGenerator::from_seed(12);
        let v6: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let req = invite_to_phone(
            "sip:x@h",
            "a b@c%",
            "realm with spaces",
            v6,
            Transport::Udp,
            "",
            &mut ids,
        )
        .unwrap();
        assert_eq!(req.header("To"), Some("<sip:a%20b%40c%25@[2001:db8::1]>"));
        assert!(req
            .header("From")
            .unwrap()
            .starts_with("<sip:dialcrm@[2001:db8::1]>"));
        assert!(parse_message(&req.to_bytes()).is_ok());
        for contact in [
            "",
            "tel:+441234",
            "sip:",
            "sip:a b@h",
            "sip:a@h>\r\nX: y",
            "http://h",
        ] {
            assert_eq!(
                invite_to_phone(contact, "a", "h", local(), Transport::Udp, "", &mut ids),
                Err(OutboundError::InvalidContact),
                "{contact:?}"
            );
        }
    }

    fn bytes_header_names(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let head = text.split("\r\n\r\n").next().unwrap().to_string();
        head.split("\r\n")
            .skip(1)
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect()
    }
}
