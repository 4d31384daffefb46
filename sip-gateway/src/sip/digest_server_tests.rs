use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::sip::digest::{Challenge, Credentials};

const REALM: &str = "phones.example.com";

fn server() -> DigestServer {
    DigestServer::new(
        REALM,
        NonceKey::new(b"a secret shared by every node").unwrap(),
    )
}

fn phone() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

fn uri(text: &str) -> rsip::Uri {
    rsip::Uri::try_from(text).unwrap()
}

/// Answers the server's challenge for `algorithm` with the existing client code.
fn client_answer(server: &DigestServer, algorithm: &str, password: &str) -> Authorization {
    let nonce = server.nonce(phone(), t0(), 42);
    let challenge = server
        .challenges(&nonce, false)
        .into_iter()
        .find(|c| c.contains(&format!("algorithm={algorithm},")))
        .unwrap();
    let challenge = Challenge::parse(&challenge).unwrap();
    let credentials = Credentials {
        username: "alice".into(),
        password: password.into(),
    };
    let header = challenge.respond(
        &credentials,
        "REGISTER",
        "sip:phones.example.com;transport=tcp",
        b"",
        "0a4f113b",
        1,
    );
    Authorization::parse(&header).unwrap()
}

#[test]
fn answers_from_the_client_verify_for_both_algorithms() {
    let server = server();
    let stored = StoredCredentials::from_password("alice", REALM, "Correct horse 7");
    let request_uri = uri("sip:phones.example.com;transport=tcp");
    for (name, algorithm) in [("SHA-256", Algorithm::Sha256), ("MD5", Algorithm::Md5)] {
        let auth = client_answer(&server, name, "Correct horse 7");
        assert_eq!(auth.algorithm, algorithm);
        assert_eq!(auth.nc, Some(1));
        assert_eq!(
            server.precheck(&auth, &request_uri, phone(), t0()),
            Ok(NonceCheck::Fresh)
        );
        let ha1 = stored.ha1(algorithm).unwrap();
        assert!(verify_response(&auth, "REGISTER", ha1), "{name}");
        // The same answer for another method, or under the other algorithm's HA1, fails.
        assert!(!verify_response(&auth, "INVITE", ha1), "{name}");
        let other = match algorithm {
            Algorithm::Md5 => &stored.ha1_sha256,
            _ => &stored.ha1_md5,
        };
        assert!(!verify_response(&auth, "REGISTER", other), "{name}");

        let wrong = client_answer(&server, name, "correct horse 7");
        assert!(!verify_response(&wrong, "REGISTER", ha1), "{name}");
        // A flipped digit in a correct response fails too.
        let mut flipped = auth.clone();
        let last = if flipped.response.ends_with('0') {
            "1"
        } else {
            "0"
        };
        flipped.response.pop();
        flipped.response.push_str(last);
        assert!(!verify_response(&flipped, "REGISTER", ha1), "{name}");
    }
}

#[test]
fn published_examples_verify() {
    // RFC 2617 §3.5, and RFC 7616 §3.9.1 with SHA-256.
    let md5 = Authorization::parse(
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
         nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    let stored = StoredCredentials::from_password("Mufasa", "testrealm@host.com", "Circle Of Life");
    assert_eq!(stored.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
    assert!(verify_response(&md5, "GET", &stored.ha1_md5));

    let sha = Authorization::parse(
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
         algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
         cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
         response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    )
    .unwrap();
    let stored =
        StoredCredentials::from_password("Mufasa", "http-auth@example.org", "Circle of Life");
    assert!(verify_response(&sha, "GET", &stored.ha1_sha256));
    assert!(!verify_response(&sha, "GET", &stored.ha1_md5));
}

#[test]
fn nonces_are_checked_without_state() {
    let server = server();
    let nonce = server.nonce(phone(), t0(), 7);
    assert_eq!(nonce.len(), 64);
    assert_ne!(nonce, server.nonce(phone(), t0(), 8), "the salt varies it");
    // Any node with the same key and realm accepts it.
    let other_node = DigestServer::new(
        REALM,
        NonceKey::new(b"a secret shared by every node").unwrap(),
    );
    assert_eq!(
        other_node.check_nonce(&nonce, phone(), t0()),
        NonceCheck::Fresh
    );
    let later = |secs| t0() + Duration::from_secs(secs);
    assert_eq!(
        server.check_nonce(&nonce, phone(), later(300)),
        NonceCheck::Fresh
    );
    assert_eq!(
        server.check_nonce(&nonce, phone(), later(301)),
        NonceCheck::Stale
    );
    // Another address, key or realm, an altered nonce, or one from the future is not ours.
    let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(
        server.check_nonce(&nonce, elsewhere, t0()),
        NonceCheck::Invalid
    );
    let stranger = DigestServer::new(REALM, NonceKey::new(b"another secret of 16+").unwrap());
    assert_eq!(
        stranger.check_nonce(&nonce, phone(), t0()),
        NonceCheck::Invalid
    );
    let realm = DigestServer::new(
        "other.example.com",
        NonceKey::new(b"a secret shared by every node").unwrap(),
    );
    assert_eq!(
        realm.check_nonce(&nonce, phone(), t0()),
        NonceCheck::Invalid
    );
    let mut altered = nonce.clone().into_bytes();
    altered[3] = if altered[3] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(
        server.check_nonce(&altered, phone(), t0()),
        NonceCheck::Invalid
    );
    let early = t0() - Duration::from_secs(31);
    assert_eq!(
        server.check_nonce(&nonce, phone(), early),
        NonceCheck::Invalid
    );
    let skewed = t0() - Duration::from_secs(30);
    assert_eq!(
        server.check_nonce(&nonce, phone(), skewed),
        NonceCheck::Fresh
    );
    for junk in [
        "",
        "xyz",
        &nonce[..63],
        &format!("{nonce}0"),
        &"g".repeat(64),
    ] {
        assert_eq!(server.check_nonce(junk, phone(), t0()), NonceCheck::Invalid);
    }
    // A v4 address seen through a dual-stack socket is the same client.
    let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped());
    assert_eq!(server.check_nonce(&nonce, mapped, t0()), NonceCheck::Fresh);
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9));
    let nonce6 = server.nonce(v6, t0(), 1);
    assert_eq!(server.check_nonce(&nonce6, v6, t0()), NonceCheck::Fresh);
}

#[test]
fn challenges_offer_sha256_first_and_say_stale() {
    let server = server();
    let [first, second] = server.challenges("n", true);
    assert!(first.starts_with("Digest realm=\"phones.example.com\""));
    assert!(first.contains("algorithm=SHA-256") && second.contains("algorithm=MD5"));
    for value in [&first, &second] {
        let parsed = Challenge::parse(value).unwrap();
        assert!(parsed.stale);
        assert_eq!(parsed.qop, Some(Qop::Auth));
        assert_eq!(parsed.nonce, "n");
    }
    let [fresh, _] = server.challenges("n", false);
    assert!(!Challenge::parse(&fresh).unwrap().stale);
}

#[test]
fn precheck_refuses_what_we_did_not_offer() {
    let server = server();
    let request_uri = uri("sip:phones.example.com;transport=tcp");
    let good = client_answer(&server, "MD5", "pw");
    let with = |change: &dyn Fn(&mut Authorization)| {
        let mut auth = good.clone();
        change(&mut auth);
        server.precheck(&auth, &request_uri, phone(), t0())
    };
    assert_eq!(with(&|_| {}), Ok(NonceCheck::Fresh));
    assert_eq!(
        with(&|a| a.realm = "elsewhere".into()),
        Err(Refusal::OtherRealm)
    );
    assert!(matches!(
        with(&|a| a.algorithm = Algorithm::Md5Sess),
        Err(Refusal::BadRequest(_))
    ));
    assert!(matches!(
        with(&|a| a.qop = None),
        Err(Refusal::BadRequest(_))
    ));
    assert!(matches!(
        with(&|a| a.qop = Some(Qop::AuthInt)),
        Err(Refusal::BadRequest(_))
    ));
    assert!(matches!(
        with(&|a| a.nc = Some(0)),
        Err(Refusal::BadRequest(_))
    ));
    assert!(matches!(
        with(&|a| a.uri = "sip:other.example.com".into()),
        Err(Refusal::BadRequest(_))
    ));
    assert!(matches!(
        with(&|a| a.uri = "not a uri at all".into()),
        Err(Refusal::BadRequest(_))
    ));
    assert_eq!(
        with(&|a| a.nonce = "f".repeat(64)),
        Err(Refusal::InvalidNonce)
    );
    // The URI is compared as parsed: rsip writes `transport=` its own way on both sides.
    assert_eq!(
        with(&|a| a.uri = "sip:phones.example.com;transport=TCP".into()),
        Ok(NonceCheck::Fresh)
    );
    let stale = t0() + NONCE_LIFETIME + Duration::from_secs(1);
    assert_eq!(
        server.precheck(&good, &request_uri, phone(), stale),
        Ok(NonceCheck::Stale)
    );
}

#[test]
fn authorization_headers_parse_in_their_forms() {
    let auth = Authorization::parse(
        "digest  USERNAME=\"al\\\"ice\",realm=\"r, with comma\" ,nonce=abc, uri=\"sip:h\",\
         response=\"0123456789ABCDEF0123456789abcdef\",qop=\"auth\",nc=0000000A,cnonce=xyz",
    )
    .unwrap();
    assert_eq!(auth.username, "al\"ice");
    assert_eq!(auth.realm, "r, with comma");
    assert_eq!(auth.nonce, "abc");
    assert_eq!(auth.response, "0123456789abcdef0123456789abcdef");
    assert_eq!(auth.algorithm, Algorithm::Md5);
    assert_eq!(auth.qop, Some(Qop::Auth));
    assert_eq!(auth.nc, Some(10));
    assert_eq!(auth.cnonce.as_deref(), Some("xyz"));

    let base = "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:h\", \
                response=\"0123456789abcdef0123456789abcdef\"";
    assert!(
        Authorization::parse(base).is_ok(),
        "the RFC 2069 form parses"
    );
    let cases: &[(&str, AuthorizationError)] = &[
        (
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            AuthorizationError::NotDigest,
        ),
        ("", AuthorizationError::NotDigest),
        ("Digest", AuthorizationError::Missing("response")),
        (
            &base.replace("username=\"a\", ", ""),
            AuthorizationError::Missing("username"),
        ),
        (
            &format!("{base}, realm=\"x\""),
            AuthorizationError::Duplicate,
        ),
        (
            &format!("{base}, REALM=\"x\""),
            AuthorizationError::Duplicate,
        ),
        (
            &format!("{base}, qop=auth"),
            AuthorizationError::Missing("nc and cnonce"),
        ),
        (
            &format!("{base}, qop=auth, nc=1, cnonce=c"),
            AuthorizationError::Malformed("nc"),
        ),
        (
            &format!("{base}, qop=auth, nc=0000000g, cnonce=c"),
            AuthorizationError::Malformed("nc"),
        ),
        (
            &format!("{base}, qop=bogus"),
            AuthorizationError::Malformed("qop"),
        ),
        (
            &format!("{base}, algorithm=SHA-512"),
            AuthorizationError::UnknownAlgorithm,
        ),
        (
            &format!("{base}, algorithm=SHA-256"),
            AuthorizationError::Malformed("response"),
        ),
        (
            &base.replace("0123456789abcdef0123456789abcdef", "zz"),
            AuthorizationError::Malformed("response"),
        ),
        (
            &format!("{base}, opaque=\"{}\"", "o".repeat(MAX_PARAM_LEN + 1)),
            AuthorizationError::Malformed("opaque"),
        ),
    ];
    for (value, error) in cases {
        assert_eq!(Authorization::parse(value).as_ref(), Err(error), "{value}");
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let stored = StoredCredentials::from_password("alice", REALM, "pw");
    let printed = format!("{stored:?} {:?}", NonceKey::random());
    assert!(!printed.contains(&stored.ha1_md5) && !printed.contains(&stored.ha1_sha256));
    assert!(printed.contains("redacted"));
    assert!(NonceKey::new(b"too short").is_none());
}

proptest! {
    #[test]
    fn arbitrary_headers_never_panic(value in any::<String>()) {
        let _ = Authorization::parse(&value);
        let _ = Authorization::parse(&format!("Digest {value}"));
        let _ = server().check_nonce(&value, phone(), t0());
        let _ = same_uri(&value, &uri("sip:h"));
    }

    #[test]
    fn arbitrary_parameter_values_never_panic(
        values in proptest::collection::vec("[ -~]{0,40}", 9),
        quoted in proptest::collection::vec(any::<bool>(), 9),
    ) {
        let names = ["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce"];
        let header = names
            .iter()
            .zip(&values)
            .zip(&quoted)
            .map(|((n, v), q)| if *q { format!("{n}=\"{v}\"") } else { format!("{n}={v}") })
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(auth) = Authorization::parse(&format!("Digest {header}")) {
            let server = server();
            let _ = server.precheck(&auth, &uri("sip:h"), phone(), t0());
            let _ = verify_response(&auth, "REGISTER", &"0".repeat(32));
        }
    }

    #[test]
    fn only_the_right_password_verifies(password in "[ -~]{1,24}", other in "[ -~]{1,24}") {
        let server = server();
        let stored = StoredCredentials::from_password("alice", REALM, &password);
        for name in ["SHA-256", "MD5"] {
            let auth = client_answer(&server, name, &other);
            let ha1 = stored.ha1(auth.algorithm).unwrap();
            prop_assert_eq!(verify_response(&auth, "REGISTER", ha1), password == other);
        }
    }
}
