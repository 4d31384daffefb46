use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
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

#[test]
fn failures_for_a_username_stop_all_checks_for_it_until_the_window_passes() {
    let now = Instant::now();
    let mut reg = registrar();
    for i in 0..MAX_FAILURES_PER_USER {
        let mut guess = Phone::new("alice");
        guess.password = format!("guess {i}");
        guess.source = addr(100 + i as u8, 5060);
        assert_eq!(
            register(&mut reg, &mut guess, "", Some(&stored("alice")), now)
                .response
                .status,
            403
        );
    }
    // Now even the right password, from a new place, gets a bare 403 with no challenge.
    let mut owner = Phone::new("alice");
    let blocked = respond(send(&mut reg, &mut owner, "", None, now, wall0()));
    assert_eq!(blocked.status, 403);
    assert!(headers(&blocked, "WWW-Authenticate").is_empty());
    // Other users are unaffected.
    let mut bob = Phone::new("bob");
    assert_eq!(
        register(&mut reg, &mut bob, "", Some(&stored("bob")), now)
            .response
            .status,
        200
    );
    // Once the window has passed, the owner registers.
    let later = now + FAILURE_WINDOW;
    assert_eq!(
        register(&mut reg, &mut owner, "", Some(&stored("alice")), later)
            .response
            .status,
        200
    );
}

#[test]
fn failures_from_an_address_stop_all_checks_from_it() {
    let now = Instant::now();
    let mut reg = registrar();
    for i in 0..MAX_FAILURES_PER_ADDRESS {
        let mut scan = Phone::new(&format!("user{i}"));
        assert_eq!(
            register(&mut reg, &mut scan, "", None, now).response.status,
            403
        );
    }
    let mut next = Phone::new("alice");
    let blocked = respond(send(&mut reg, &mut next, "", None, now, wall0()));
    assert_eq!(blocked.status, 403);
    assert!(headers(&blocked, "WWW-Authenticate").is_empty());
    next.source = addr(8, 5060);
    assert_eq!(
        register(&mut reg, &mut next, "", Some(&stored("alice")), now)
            .response
            .status,
        200
    );
}

#[test]
fn guesses_sent_together_are_still_limited() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut attacker = Phone::new("alice");
    attacker.source = addr(66, 5060);
    let challenge = respond(send(&mut reg, &mut attacker, "", None, now, wall0()));
    // Every guess passes the first step before any lookup returns.
    let lookups: Vec<Pending> = (0..20)
        .map(|i| {
            attacker.password = format!("guess {i}");
            let answer = attacker.answer(&challenge, i + 1);
            pending(send(
                &mut reg,
                &mut attacker,
                "",
                Some(&answer),
                now,
                wall0(),
            ))
        })
        .collect();
    // The right password arrives last, but the limit was reached before it was checked.
    attacker.password = PASSWORD.into();
    let answer = attacker.answer(&challenge, 21);
    let right = pending(send(
        &mut reg,
        &mut attacker,
        "",
        Some(&answer),
        now,
        wall0(),
    ));
    for p in lookups {
        assert_eq!(
            reg.complete(p, Some(&stored("alice")), now).response.status,
            403
        );
    }
    assert_eq!(
        reg.complete(right, Some(&stored("alice")), now)
            .response
            .status,
        403
    );
    assert!(reg.binding("alice", now).is_none());
}

#[test]
fn a_shell_may_refuse_a_pending_register_without_counting_it() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut phone = Phone::new("alice");
    let challenge = respond(send(&mut reg, &mut phone, "", None, now, wall0()));
    for i in 0..MAX_FAILURES_PER_USER as u32 + 2 {
        let answer = phone.answer(&challenge, i + 1);
        let p = pending(send(&mut reg, &mut phone, "", Some(&answer), now, wall0()));
        let refused = reg.refuse(p);
        assert_eq!((refused.response.status, refused.failed), (403, false));
        assert!(headers(&refused.response, "WWW-Authenticate").is_empty());
        assert_eq!(refused.destination, phone.source);
    }
    // None of them counted here: the right password still registers.
    let ok = register(&mut reg, &mut phone, "", Some(&stored("alice")), now);
    assert_eq!((ok.response.status, ok.failed), (200, false));
}

#[test]
fn a_registered_phone_is_not_locked_out_by_a_strangers_failures() {
    let now = Instant::now();
    let mut reg = registrar();
    let mut desk = Phone::new("alice");
    assert_eq!(
        register(&mut reg, &mut desk, "", Some(&stored("alice")), now)
            .response
            .status,
        200
    );
    for i in 0..MAX_FAILURES_PER_USER {
        let mut guess = Phone::new("alice");
        guess.password = format!("guess {i}");
        guess.source = addr(150, 6000 + i as u16);
        register(&mut reg, &mut guess, "", Some(&stored("alice")), now);
    }
    // The desk phone refreshes from its own address and port.
    let later = now + Duration::from_secs(60);
    assert_eq!(
        register(&mut reg, &mut desk, "", Some(&stored("alice")), later)
            .response
            .status,
        200
    );
    // The same username from anywhere else is refused unheard.
    let mut elsewhere = desk.clone();
    elsewhere.source = addr(7, 40313);
    assert_eq!(
        respond(send(&mut reg, &mut elsewhere, "", None, later, wall0())).status,
        403
    );
    // Removing the credentials drops the binding.
    assert_eq!(reg.unregister("alice").len(), 1);
    assert_eq!(reg.binding("alice", later), None);
}

fn sample_register() -> String {
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bK1\r\n\
         From: <sip:alice@{REALM}>;tag=1\r\n\
         To: <sip:alice@{REALM}>\r\n\
         Call-ID: c1\r\n\
         CSeq: 2 REGISTER\r\n\
         Contact: <sip:alice@192.168.1.20>;expires=60, <sip:a@b>\r\n\
         Expires: 120\r\n\
         Authorization: Digest username=\"alice\", realm=\"{REALM}\", nonce=\"00\", \
         uri=\"sip:{REALM}\", response=\"0123456789abcdef0123456789abcdef\", qop=auth, \
         nc=00000001, cnonce=\"x\"\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Feeds bytes through the parser and both steps, as the shell would.
fn feed(reg: &mut Registrar, bytes: &[u8], now: Instant) {
    if let Ok(rsip::SipMessage::Request(request)) = parse_message(bytes) {
        if let RegisterStep::Pending(p) =
            reg.handle_register(&request, addr(7, 5060), Transport::Udp, now, wall0())
        {
            let user = p.username().to_string();
            reg.complete(p, Some(&stored(&user)), now);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        feed(&mut registrar(), &bytes, Instant::now());
    }

    #[test]
    fn mutated_registers_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = sample_register().into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        feed(&mut registrar(), &bytes, Instant::now());
    }

    #[test]
    fn arbitrary_header_values_never_panic(
        name in prop::sample::select(vec!["To", "Contact", "Expires", "Authorization", "CSeq", "Via", "Call-ID"]),
        value in "[ -~]{0,120}",
    ) {
        let text = sample_register();
        let replaced: Vec<String> = text
            .split("\r\n")
            .map(|line| match line.starts_with(&format!("{name}:")) {
                true => format!("{name}: {value}"),
                false => line.to_string(),
            })
            .collect();
        feed(&mut registrar(), replaced.join("\r\n").as_bytes(), Instant::now());
    }

    /// Whatever phones do, no user holds more than the maximum of bindings and no lapsed
    /// binding is offered.
    #[test]
    fn bindings_stay_within_bounds(
        steps in proptest::collection::vec((0u8..3, 0u8..8, 0u32..5000, 0u64..4000), 1..30),
    ) {
        let start = Instant::now();
        let mut reg = registrar();
        let mut now = start;
        for (user, contact, expires, wait) in steps {
            now += Duration::from_secs(wait);
            let mut phone = Phone::new(&format!("user{user}"));
            phone.contact = format!("<sip:u@10.0.0.{contact}>");
            phone.call_id = format!("call-{contact}");
            phone.cseq = (wait as u32) * 10;
            let credentials = stored(&phone.user);
            let extra = format!("Expires: {expires}\r\n");
            let done = register(&mut reg, &mut phone, &extra, Some(&credentials), now);
            prop_assert!(matches!(done.response.status, 200 | 403 | 423 | 500));
            if let Some(t) = reg.poll_timeout() {
                if t <= now { reg.handle_timeout(now); }
            }
            for u in 0..3 {
                let name = format!("user{u}");
                let live = reg.bindings(&name, now);
                prop_assert!(live.len() <= MAX_BINDINGS_PER_USER);
                prop_assert!(live.iter().all(|b| b.expires_at > now));
                if let Some(target) = reg.binding(&name, now) {
                    prop_assert_eq!(Some(&target.contact), live.last().map(|b| &b.contact));
                }
            }
        }
    }
}
