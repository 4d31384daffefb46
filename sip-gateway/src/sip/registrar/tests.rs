use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, UNIX_EPOCH};

use rsip::headers::UntypedHeader;

use super::*;
use crate::sip::digest::{Challenge, Credentials};
use crate::sip::message::{header_value, param};
use crate::sip::parse::parse_message;

const REALM: &str = "pbx.example.com";
const PASSWORD: &str = "Desk phone 42";

fn key() -> NonceKey {
    NonceKey::new(b"every node knows this secret").unwrap()
}

fn registrar() -> Registrar {
    Registrar::new(
        RegistrarConfig::new(REALM, key()),
        IdGenerator::from_seed(1),
    )
}

fn stored(user: &str) -> StoredCredentials {
    StoredCredentials::from_password(user, REALM, PASSWORD)
}

fn wall0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, last)), port)
}

/// A desk phone behind NAT: its Contact names a private address, its packets come from
/// a public one.
#[derive(Clone)]
struct Phone {
    user: String,
    password: String,
    source: SocketAddr,
    transport: Transport,
    call_id: String,
    cseq: u32,
    contact: String,
    algorithm: &'static str,
}

impl Phone {
    fn new(user: &str) -> Self {
        Phone {
            user: user.into(),
            password: PASSWORD.into(),
            source: addr(7, 40312),
            transport: Transport::Udp,
            call_id: format!("{user}-reg@192.168.1.20"),
            cseq: 0,
            contact: format!("<sip:{user}@192.168.1.20:5060>"),
            algorithm: "SHA-256",
        }
    }

    /// Builds the phone's next REGISTER, with `extra` header lines.
    fn request(&mut self, extra: &str, authorization: Option<&str>) -> rsip::Request {
        self.cseq += 1;
        let contact = match self.contact.is_empty() {
            true => String::new(),
            false => format!("Contact: {}\r\n", self.contact),
        };
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let text = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bK{}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{REALM}>;tag=ph1\r\n\
             To: <sip:{user}@{REALM}>\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n\
             {contact}{extra}{auth}Content-Length: 0\r\n\r\n",
            self.cseq,
            self.call_id,
            self.cseq,
            user = self.user,
        );
        match parse_message(text.as_bytes()).unwrap() {
            rsip::SipMessage::Request(r) => r,
            rsip::SipMessage::Response(_) => unreachable!("a request was built"),
        }
    }

    /// Answers the challenge of `response` that uses the phone's algorithm.
    fn answer(&self, response: &OutgoingResponse, nc: u32) -> String {
        let value = response
            .headers
            .iter()
            .filter(|(n, _)| n == "WWW-Authenticate")
            .map(|(_, v)| v)
            .find(|v| v.contains(&format!("algorithm={},", self.algorithm)))
            .expect("a challenge for the phone's algorithm");
        let credentials = Credentials {
            username: self.user.clone(),
            password: self.password.clone(),
        };
        Challenge::parse(value).unwrap().respond(
            &credentials,
            "REGISTER",
            &format!("sip:{REALM}"),
            b"",
            "c0ffee",
            nc,
        )
    }
}

fn respond(step: RegisterStep) -> OutgoingResponse {
    match step {
        RegisterStep::Respond(r) => r,
        RegisterStep::Pending(p) => panic!("expected an answer now, got a lookup for {p:?}"),
    }
}

fn pending(step: RegisterStep) -> Pending {
    match step {
        RegisterStep::Pending(p) => p,
        RegisterStep::Respond(r) => panic!("expected a lookup, got {} {:?}", r.status, r.headers),
    }
}

fn send(
    reg: &mut Registrar,
    phone: &mut Phone,
    extra: &str,
    auth: Option<&str>,
    now: Instant,
    wall: SystemTime,
) -> RegisterStep {
    let request = phone.request(extra, auth);
    reg.handle_register(&request, phone.source, phone.transport, now, wall)
}

/// Runs a whole registration: challenge, answer, lookup with `found`, completion.
fn register(
    reg: &mut Registrar,
    phone: &mut Phone,
    extra: &str,
    found: Option<&StoredCredentials>,
    now: Instant,
) -> Completion {
    let challenge = respond(send(reg, phone, extra, None, now, wall0()));
    assert_eq!(challenge.status, 401);
    let answer = phone.answer(&challenge, 1);
    let p = pending(send(reg, phone, extra, Some(&answer), now, wall0()));
    assert_eq!(p.username(), phone.user);
    reg.complete(p, found, now)
}

fn headers<'a>(response: &'a OutgoingResponse, name: &str) -> Vec<&'a str> {
    response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_phone_registers_with_either_algorithm_and_is_reached_where_it_sent_from() {
    for algorithm in ["SHA-256", "MD5"] {
        let now = Instant::now();
        let mut reg = registrar();
        let mut phone = Phone::new("alice");
        phone.algorithm = algorithm;
        let first = respond(send(
            &mut reg,
            &mut phone,
            "Expires: 600\r\n",
            None,
            now,
            wall0(),
        ));
        assert_eq!(first.status, 401);
        let challenges = headers(&first, "WWW-Authenticate");
        assert_eq!(challenges.len(), 2);
        assert!(
            challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5")
        );
        assert!(param(header_value_of(&first, "To"), "tag").is_some());

        let answer = phone.answer(&first, 1);
        let p = pending(send(
            &mut reg,
            &mut phone,
            "Expires: 600\r\n",
            Some(&answer),
            now,
            wall0(),
        ));
        assert_eq!(p.username(), "alice");
        assert_eq!(p.source(), addr(7, 40312));
        let done = reg.complete(p, Some(&stored("alice")), now);
        assert_eq!(done.response.status, 200, "{algorithm}");
        assert_eq!(done.destination, addr(7, 40312));
        assert_eq!(
            headers(&done.response, "Contact"),
            vec!["<sip:alice@192.168.1.20:5060>;expires=600"]
        );
        assert!(
            matches!(&done.changes[..], [BindingChange::Added { username, binding }]
            if username == "alice" && binding.destination == addr(7, 40312))
        );
        // The INVITE goes to the public address the REGISTER came from, not the private Contact.
        assert_eq!(
            reg.binding("alice", now),
            Some(Target {
                contact: "sip:alice@192.168.1.20:5060".into(),
                destination: addr(7, 40312),
                transport: Transport::Udp,
            })
        );
        assert_eq!(reg.binding("bob", now), None);
        // The top Via tells the phone where we see it.
        let via = header_value_of(&done.response, "Via");
        assert_eq!(param(via, "received"), Some("203.0.113.7"));
        assert_eq!(param(via, "rport"), Some("40312"));
        // What goes on the wire parses back, with its status and contacts.
        let wire = parse_message(&done.response.to_bytes()).unwrap();
        let rsip::SipMessage::Response(parsed) = wire else {
            panic!("a response")
        };
        assert_eq!(parsed.status_code.code(), 200);
        assert_eq!(
            header_value(&parsed.headers, "Contact").as_deref(),
            Some("<sip:alice@192.168.1.20:5060>;expires=600")
        );
    }
}

fn header_value_of<'a>(response: &'a OutgoingResponse, name: &str) -> &'a str {
    headers(response, name).first().copied().unwrap_or_default()
}

#[test]
fn unknown_users_and_wrong_passwords_get_the_same_403() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut alice = Phone::new("alice");
    alice.password = "not the password".into();
    let wrong = register(&mut reg, &mut alice, "", Some(&stored("alice")), now);
    let mut nobody = Phone::new("nobody");
    let unknown = register(&mut reg, &mut nobody, "", None, now);
    for done in [&wrong, &unknown] {
        assert_eq!(done.response.status, 403);
        assert!(
            done.failed,
            "counted, for a shell that shares counts between nodes"
        );
        assert!(done.changes.is_empty());
        assert!(headers(&done.response, "WWW-Authenticate").is_empty());
        assert!(headers(&done.response, "Warning").is_empty());
    }
    let names = |r: &OutgoingResponse| r.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&wrong.response), names(&unknown.response));
    assert_eq!(wrong.response.reason, unknown.response.reason);
    assert_eq!(reg.binding("alice", now), None);
    // Credentials stored for another realm do not verify either.
    let mut bob = Phone::new("bob");
    let elsewhere = StoredCredentials::from_password("bob", "old.example.com", PASSWORD);
    assert_eq!(
        register(&mut reg, &mut bob, "", Some(&elsewhere), now)
            .response
            .status,
        403
    );
}

#[test]
fn expiry_follows_the_contact_then_the_header_within_limits() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    let granted = |done: &Completion| headers(&done.response, "Contact").join(" | ");

    phone.contact = "<sip:alice@192.168.1.20:5060>;expires=120".into();
    let done = register(
        &mut reg,
        &mut phone,
        "Expires: 900\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(granted(&done), "<sip:alice@192.168.1.20:5060>;expires=120");
    phone.contact = "<sip:alice@192.168.1.20:5060>".into();
    let done = register(
        &mut reg,
        &mut phone,
        "Expires: 900\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(granted(&done), "<sip:alice@192.168.1.20:5060>;expires=900");
    assert!(matches!(
        &done.changes[..],
        [BindingChange::Refreshed { .. }]
    ));
    let done = register(
        &mut reg,
        &mut phone,
        "Expires: 86400\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(
        granted(&done),
        "<sip:alice@192.168.1.20:5060>;expires=3600",
        "shortened to the maximum"
    );
    let done = register(&mut reg, &mut phone, "", Some(&stored("alice")), now);
    assert_eq!(
        granted(&done),
        "<sip:alice@192.168.1.20:5060>;expires=3600",
        "the default"
    );

    let brief = register(
        &mut reg,
        &mut phone,
        "Expires: 30\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(brief.response.status, 423);
    assert_eq!(brief.response.reason, "Interval Too Brief");
    assert_eq!(headers(&brief.response, "Min-Expires"), vec!["60"]);
    assert!(brief.changes.is_empty());
    assert!(
        reg.binding("alice", now).is_some(),
        "a refused refresh keeps the binding"
    );

    // Later, 20 seconds on, the 200 counts down what is left.
    let later = now + Duration::from_secs(20);
    phone.contact = String::new();
    let listed = register(&mut reg, &mut phone, "", Some(&stored("alice")), later);
    assert_eq!(listed.response.status, 200);
    assert_eq!(
        granted(&listed),
        "<sip:alice@192.168.1.20:5060>;expires=3580"
    );
    assert!(listed.changes.is_empty(), "a query changes nothing");
}

#[test]
fn bindings_lapse_by_themselves() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    register(
        &mut reg,
        &mut phone,
        "Expires: 120\r\n",
        Some(&stored("alice")),
        now,
    );
    let expiry = now + Duration::from_secs(120);
    assert!(reg.poll_timeout().is_some_and(|t| t <= expiry));
    reg.handle_timeout(expiry - Duration::from_millis(1));
    assert_eq!(reg.poll_event(), None);
    assert!(reg
        .binding("alice", expiry - Duration::from_millis(1))
        .is_some());
    // Even before the timer fires, a lapsed binding is not offered.
    assert_eq!(reg.binding("alice", expiry), None);
    reg.handle_timeout(expiry);
    assert_eq!(
        reg.poll_event(),
        Some(BindingChange::Expired {
            username: "alice".into(),
            contact: "sip:alice@192.168.1.20:5060".into()
        })
    );
    assert_eq!(reg.poll_event(), None);
    assert!(reg.bindings("alice", expiry).is_empty());
    // Nonce counts and failures are forgotten too, so nothing is left to wake for.
    reg.handle_timeout(expiry + NONCE_LIFETIME + CLOCK_SKEW);
    assert_eq!(reg.poll_timeout(), None);
}

#[test]
fn contacts_are_removed_one_by_one_or_all_at_once() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut desk = Phone::new("alice");
    let mut other = Phone::new("alice");
    other.call_id = "second-phone".into();
    other.contact = "<sip:alice@192.168.1.30:5060;transport=tcp>".into();
    other.source = addr(7, 40999);
    other.transport = Transport::Tcp;
    register(&mut reg, &mut desk, "", Some(&stored("alice")), now);
    let both = register(&mut reg, &mut other, "", Some(&stored("alice")), now);
    assert_eq!(headers(&both.response, "Contact").len(), 2);
    // The phone registered last is the one rung.
    let target = reg.binding("alice", now).unwrap();
    assert_eq!(
        (target.destination, target.transport),
        (addr(7, 40999), Transport::Tcp)
    );

    let gone = register(
        &mut reg,
        &mut other,
        "Expires: 0\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(gone.response.status, 200);
    assert_eq!(
        gone.changes,
        vec![BindingChange::Removed {
            username: "alice".into(),
            contact: "sip:alice@192.168.1.30:5060;transport=tcp".into()
        }]
    );
    assert_eq!(headers(&gone.response, "Contact").len(), 1);
    assert_eq!(
        reg.binding("alice", now).unwrap().destination,
        addr(7, 40312)
    );

    register(&mut reg, &mut other, "", Some(&stored("alice")), now);
    other.contact = "*".into();
    let bad = respond(send(
        &mut reg,
        &mut other,
        "Expires: 60\r\n",
        None,
        now,
        wall0(),
    ));
    assert_eq!(bad.status, 400);
    let all = register(
        &mut reg,
        &mut other,
        "Expires: 0\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(all.response.status, 200);
    assert_eq!(all.changes.len(), 2);
    assert!(headers(&all.response, "Contact").is_empty());
    assert_eq!(reg.binding("alice", now), None);
}

#[test]
fn md5_alone_may_be_offered_for_phones_that_stumble_on_sha256() {
    let now = Instant::now();
    let mut config = RegistrarConfig::new(REALM, key());
    config.md5_only = true;
    let mut reg = Registrar::new(config, IdGenerator::from_seed(1));
    let mut phone = Phone::new("alice");
    phone.algorithm = "MD5";
    let first = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
    let challenges = headers(&first, "WWW-Authenticate");
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].contains("algorithm=MD5"));
    let answer = phone.answer(&first, 1);
    let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
    let done = reg.complete(p, Some(&stored("alice")), now);
    assert_eq!(done.response.status, 200);
    // A replayed answer is challenged again, with MD5 alone too.
    let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
    let stale = reg.complete(p, Some(&stored("alice")), now);
    assert_eq!(stale.response.status, 401);
    let retry = headers(&stale.response, "WWW-Authenticate");
    assert_eq!(retry.len(), 1);
    assert!(retry[0].contains("algorithm=MD5") && retry[0].contains("stale=true"));
}

#[test]
fn a_closed_connection_unbinds_only_what_was_registered_over_it() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut udp = Phone::new("alice");
    let mut tcp = Phone::new("alice");
    tcp.call_id = "tcp-phone".into();
    tcp.contact = "<sip:alice@192.168.1.30:5060;transport=tcp>".into();
    tcp.source = addr(7, 40999);
    tcp.transport = Transport::Tcp;
    let mut bob = Phone::new("bob");
    bob.source = addr(7, 40999);
    register(&mut reg, &mut udp, "", Some(&stored("alice")), now);
    register(&mut reg, &mut tcp, "", Some(&stored("alice")), now);
    // Bob's UDP binding shares the address and port, not the connection.
    register(&mut reg, &mut bob, "", Some(&stored("bob")), now);

    assert!(reg.disconnected(addr(7, 1)).is_empty());
    assert_eq!(
        reg.disconnected(addr(7, 40999)),
        vec![BindingChange::Disconnected {
            username: "alice".into(),
            contact: "sip:alice@192.168.1.30:5060;transport=tcp".into()
        }]
    );
    let target = reg.binding("alice", now).unwrap();
    assert_eq!(
        target.transport,
        Transport::Udp,
        "the UDP phone still rings"
    );
    assert_eq!(reg.binding("bob", now).unwrap().destination, addr(7, 40999));
    assert!(reg.disconnected(addr(7, 40999)).is_empty(), "told once");
}

#[test]
fn an_unavailable_store_gets_503_and_counts_nothing() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    let challenge = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
    let answer = phone.answer(&challenge, 1);
    let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
    let done = reg.unavailable(p, 10);
    assert_eq!(done.response.status, 503);
    assert_eq!(headers(&done.response, "Retry-After"), vec!["10"]);
    assert!(headers(&done.response, "WWW-Authenticate").is_empty());
    assert_eq!((done.destination, done.failed), (phone.source, false));
    assert!(done.changes.is_empty());
    // Far more than the limit of failures, and the phone still registers.
    for _ in 0..MAX_FAILURES_PER_USER * 2 {
        let challenge = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
        let answer = phone.answer(&challenge, 1);
        let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
        assert_eq!(reg.unavailable(p, 10).response.status, 503);
    }
    let done = register(&mut reg, &mut phone, "", Some(&stored("alice")), now);
    assert_eq!(done.response.status, 200);
}

#[test]
fn too_many_contacts_and_stale_requests_are_refused() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    phone.contact = (0..=MAX_BINDINGS_PER_USER)
        .map(|i| format!("<sip:alice@192.168.1.{i}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let many = register(&mut reg, &mut phone, "", Some(&stored("alice")), now);
    assert_eq!(many.response.status, 403);
    assert!(reg.binding("alice", now).is_none());

    // A REGISTER older (by CSeq, same Call-ID) than the binding it would change is refused.
    let mut phone = Phone::new("alice");
    phone.cseq = 10;
    register(&mut reg, &mut phone, "", Some(&stored("alice")), now);
    phone.cseq = 3;
    let old = register(
        &mut reg,
        &mut phone,
        "Expires: 0\r\n",
        Some(&stored("alice")),
        now,
    );
    assert_eq!(old.response.status, 500);
    assert!(reg.binding("alice", now).is_some());
}

#[test]
fn a_stale_nonce_is_answered_stale_only_with_the_right_password() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    let challenge = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
    let answer = phone.answer(&challenge, 1);
    let late = wall0() + NONCE_LIFETIME + Duration::from_secs(1);
    let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, late));
    let stale = reg.complete(p, Some(&stored("alice")), now);
    assert_eq!(stale.response.status, 401);
    let retry = headers(&stale.response, "WWW-Authenticate");
    assert_eq!(retry.len(), 2);
    assert!(retry.iter().all(|c| Challenge::parse(c).unwrap().stale));
    assert!(reg.binding("alice", now).is_none());
    // The new nonce works.
    let again = phone.answer(&stale.response, 1);
    let p = pending(send(&mut reg, &mut phone, "", Some(&again), now, late));
    assert_eq!(
        reg.complete(p, Some(&stored("alice")), now).response.status,
        200
    );

    let mut thief = Phone::new("alice");
    thief.password = "guess".into();
    let answer = thief.answer(&challenge, 1);
    let p = pending(send(&mut reg, &mut thief, "", Some(&answer), now, late));
    assert_eq!(
        reg.complete(p, Some(&stored("alice")), now).response.status,
        403
    );
}

#[test]
fn a_replayed_answer_is_challenged_again_and_a_counted_one_accepted() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    let challenge = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
    let answer = phone.answer(&challenge, 1);
    let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
    assert_eq!(
        reg.complete(p, Some(&stored("alice")), now).response.status,
        200
    );
    let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
    let replay = reg.complete(p, Some(&stored("alice")), now);
    assert_eq!(replay.response.status, 401);
    assert!(replay.changes.is_empty());
    let next = phone.answer(&challenge, 2);
    let p = pending(send(&mut reg, &mut phone, "", Some(&next), now, wall0()));
    assert_eq!(
        reg.complete(p, Some(&stored("alice")), now).response.status,
        200
    );
}

#[test]
fn answers_that_cannot_be_ours_are_refused_before_any_lookup() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    let challenge = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
    let answer = phone.answer(&challenge, 1);

    // The nonce was issued to another address: a fresh challenge, not stale, not a failure.
    let mut moved = phone.clone();
    moved.source = addr(99, 5060);
    let elsewhere = respond(send(&mut reg, &mut moved, "", Some(&answer), now, wall0()));
    assert_eq!(elsewhere.status, 401);
    assert!(headers(&elsewhere, "WWW-Authenticate")
        .iter()
        .all(|c| !Challenge::parse(c).unwrap().stale));
    // Credentials of another user for this AOR: a failure, whatever is stored.
    let mut bob = phone.clone();
    bob.user = "bob".into();
    let bobs = bob.answer(&challenge, 1);
    let p = pending(send(&mut reg, &mut phone, "", Some(&bobs), now, wall0()));
    assert_eq!(p.username(), "alice");
    let foreign_user = reg.complete(p, Some(&stored("alice")), now);
    assert_eq!(
        (foreign_user.response.status, foreign_user.failed),
        (403, true)
    );
    // A digest uri that is not the Request-URI, and junk Authorization.
    let other_uri = answer.replace(
        &format!("uri=\"sip:{REALM}\""),
        "uri=\"sip:elsewhere.example.com\"",
    );
    assert_eq!(
        respond(send(
            &mut reg,
            &mut phone,
            "",
            Some(&other_uri),
            now,
            wall0()
        ))
        .status,
        400
    );
    let junk = respond(send(
        &mut reg,
        &mut phone,
        "",
        Some("Digest realm=\"x\", realm=\"y\""),
        now,
        wall0(),
    ));
    assert_eq!(junk.status, 400);
    // Credentials for another realm, or of another scheme, earn a challenge.
    let foreign = answer.replace(&format!("realm=\"{REALM}\""), "realm=\"old.example.com\"");
    assert_eq!(
        respond(send(&mut reg, &mut phone, "", Some(&foreign), now, wall0())).status,
        401
    );
    assert_eq!(
        respond(send(
            &mut reg,
            &mut phone,
            "",
            Some("Basic YWxpY2U6cHc="),
            now,
            wall0()
        ))
        .status,
        401
    );
    // A method other than REGISTER, and a To without a user.
    let mut options = phone.request("", None);
    options.method = Method::Options;
    let refused =
        respond(reg.handle_register(&options, phone.source, phone.transport, now, wall0()));
    assert_eq!(
        (refused.status, headers(&refused, "Allow")),
        (405, vec!["REGISTER"])
    );
    let mut anonymous = phone.request("", None);
    anonymous
        .headers
        .retain(|h| !matches!(h, rsip::Header::To(_)));
    anonymous
        .headers
        .push(rsip::Header::To(rsip::headers::To::new(format!(
            "<sip:{REALM}>"
        ))));
    let malformed =
        respond(reg.handle_register(&anonymous, phone.source, phone.transport, now, wall0()));
    assert_eq!(malformed.status, 400);
    assert_eq!(reg.binding("alice", now), None);
}

mod properties;
mod throttling;
