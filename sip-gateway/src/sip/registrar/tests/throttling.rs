//! The failure throttle, seen from phones and from a scan.

use super::*;

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
