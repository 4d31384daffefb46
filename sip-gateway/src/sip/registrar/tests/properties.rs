//! Properties over arbitrary input and arbitrary sequences of registrations.

use proptest::prelude::*;

use super::*;

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
