//! The account's do-not-call list over HTTP: numbers added in any format,
//! checked, taken off (never an erased person's), imported in bulk with
//! bad lines reported; the numbers themselves never stored, logged or
//! audited; a number on the list is never dialled.

use crm::model::{ContactFields, Role};
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(
    numbers_are_added_checked_removed_and_imported,
    an_account_that_asks_keeps_its_lists_numbers_and_can_forget_them,
);

/// The numbers of the list read back, by whether each is kept.
async fn listed(client: &reqwest::Client, t: &TestApp) -> Vec<Value> {
    let r = client.get(t.url("/api/dnc")).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    r.json().await.expect("JSON")
}

/// An admin has the account keep the numbers it adds to its do-not-call
/// list, so the list can be read back; hashes stay the only record of
/// what was added before, and of an erased person. Turned off again, the
/// kept numbers are forgotten, and every entry still blocks its number.
async fn an_account_that_asks_keeps_its_lists_numbers_and_can_forget_them(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let sup = t
        .login("sue", &t.user(&acme, "sue", Role::Supervisor).await)
        .await;
    let admin = t
        .login("ann", &t.user(&acme, "ann", Role::Admin).await)
        .await;
    let settings: Value = sup
        .get(t.url("/api/dnc/settings"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(settings["keep_numbers"], false, "hashes only by default");
    sup.post(t.url("/api/dnc"))
        .json(&json!({ "number": "+447400900111" }))
        .send()
        .await
        .expect("sent");
    let r = sup
        .put(t.url("/api/dnc/settings"))
        .json(&json!({ "keep_numbers": true }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403, "an admin's choice");
    let r = admin
        .put(t.url("/api/dnc/settings"))
        .json(&json!({ "keep_numbers": true }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    sup.post(t.url("/api/dnc"))
        .json(&json!({ "number": "07400 900222", "region": "GB" }))
        .send()
        .await
        .expect("sent");
    let r = sup
        .post(t.url("/api/dnc/import?region=GB"))
        .body("07400900333\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    // An erased person's number is never kept, whatever the setting.
    let now = t.clock.now_utc();
    let contact =
        t.db.store
            .create_contact(
                acme.id,
                &ContactFields {
                    first_name: "Erin".into(),
                    phone_e164: "+447400900444".into(),
                    phone_raw: "07400 900444".into(),
                    custom_fields: json!({}),
                    ..ContactFields::default()
                },
                now,
            )
            .await
            .expect("contact");
    let actor = crm::model::Actor {
        account_id: Some(acme.id),
        ..crm::model::Actor::default()
    };
    t.db.store
        .erase_contact(acme.id, contact.id, &actor, now)
        .await
        .expect("erased");

    let entries = listed(&sup, &t).await;
    let numbers: Vec<Option<&str>> = entries.iter().map(|e| e["number"].as_str()).collect();
    assert_eq!(
        numbers,
        vec![None, Some("+447400900222"), Some("+447400900333"), None],
        "{entries:?}"
    );
    assert_eq!(entries[3]["source"], "erasure");
    // Paged by the entries' numbers.
    let after = entries[1]["id"].as_i64().expect("an id");
    let page: Vec<Value> = sup
        .get(t.url(&format!("/api/dnc?after={after}&limit=1")))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["number"], "+447400900333");

    let r = admin
        .put(t.url("/api/dnc/settings"))
        .json(&json!({ "keep_numbers": false }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let entries = listed(&sup, &t).await;
    assert!(
        entries.iter().all(|e| e["number"].is_null()),
        "forgotten: {entries:?}"
    );
    for number in [
        "+447400900111",
        "+447400900222",
        "+447400900333",
        "+447400900444",
    ] {
        assert!(
            t.db.store.is_suppressed(acme.id, number).await.expect("q"),
            "{number} is still blocked"
        );
    }
    let audit = t.db.store.audit_entries(acme.id, 50).await.expect("audit");
    let targets: Vec<String> = audit
        .iter()
        .filter(|e| e.action == "dnc.keep_numbers")
        .filter_map(|e| e.target.clone())
        .collect();
    assert!(targets.contains(&"on".to_owned()), "{targets:?}");
    assert!(
        targets.contains(&"off, 2 numbers forgotten".to_owned()),
        "{targets:?}"
    );
    assert!(audit.iter().any(|e| e.action == "dnc.list"));
    t
}

async fn numbers_are_added_checked_removed_and_imported(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let sup = t
        .login("sue", &t.user(&acme, "sue", Role::Supervisor).await)
        .await;
    let stranger = t
        .login("olga", &t.user(&other, "olga", Role::Supervisor).await)
        .await;
    let agent = t.login("al", &t.user(&acme, "al", Role::Agent).await).await;

    // Added in national format, found in international format.
    let r = sup
        .post(t.url("/api/dnc"))
        .json(&json!({ "number": "07400 900123", "region": "GB", "reason": "asked on the phone" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    let again = sup
        .post(t.url("/api/dnc"))
        .json(&json!({ "number": "+447400900123" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 200, "already there");
    let body: Value = again.json().await.expect("JSON");
    assert_eq!(body["added"], false);
    assert_eq!(body["reason"], "asked on the phone");
    let check = |client: &reqwest::Client, number: &str| {
        let req = client.get(t.url(&format!("/api/dnc/{number}")));
        async move {
            let r = req.send().await.expect("sent");
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.expect("JSON")["suppressed"].clone()
        }
    };
    assert_eq!(check(&sup, "+447400900123").await, true);
    assert_eq!(
        check(&stranger, "+447400900123").await,
        false,
        "accounts keep their own lists"
    );
    assert!(
        t.db.store
            .is_suppressed(acme.id, "+447400900123")
            .await
            .expect("q"),
        "the dialler's check sees it"
    );
    let r = agent
        .get(t.url("/api/dnc/+447400900123"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403, "agents do not manage the list");
    let r = sup
        .post(t.url("/api/dnc"))
        .json(&json!({ "number": "not a number" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);

    // Stored as a keyed hash only; audited without the number.
    let entry =
        t.db.store
            .suppression(acme.id, "+447400900123")
            .await
            .expect("q")
            .expect("entry");
    assert_eq!(entry.number_e164, None, "the number itself is not kept");
    let audit = t.db.store.audit_entries(acme.id, 20).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "dnc.add"));
    assert!(
        audit.iter().all(|e| !e
            .target
            .as_deref()
            .unwrap_or_default()
            .contains("7400900123")),
        "{audit:?}"
    );

    // Taken off again.
    let r = sup
        .delete(t.url("/api/dnc/+447400900123"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    assert_eq!(check(&sup, "+447400900123").await, false);
    let r = sup
        .delete(t.url("/api/dnc/+447400900123"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);

    // An erased person's entry stays, even one the list had first.
    let now = t.clock.now_utc();
    let contact =
        t.db.store
            .create_contact(
                acme.id,
                &ContactFields {
                    first_name: "Erin".into(),
                    phone_e164: "+447400900555".into(),
                    phone_raw: "07400 900555".into(),
                    custom_fields: json!({}),
                    ..ContactFields::default()
                },
                now,
            )
            .await
            .expect("contact");
    sup.post(t.url("/api/dnc"))
        .json(&json!({ "number": "+447400900555" }))
        .send()
        .await
        .expect("sent");
    let actor = crm::model::Actor {
        account_id: Some(acme.id),
        ..crm::model::Actor::default()
    };
    t.db.store
        .erase_contact(acme.id, contact.id, &actor, now)
        .await
        .expect("erased");
    let r = sup
        .delete(t.url("/api/dnc/+447400900555"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap_or_default());
    assert_eq!(check(&sup, "+447400900555").await, true);

    // A bulk import: a header, numbers in several formats, a duplicate,
    // blank lines and junk, reported by line.
    let list = "number,name\n07400 900201,x\n+447400900202\n\n\"07400900203\"\nnonsense\n+447400900202\n12\n";
    let r = sup
        .post(t.url("/api/dnc/import?region=GB"))
        .body(list)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("JSON");
    assert_eq!(report["lines"], 6, "{report}");
    assert_eq!(report["added"], 3, "{report}");
    assert_eq!(report["already"], 1, "{report}");
    assert_eq!(report["invalid"], 2, "{report}");
    assert_eq!(report["invalid_lines"][0][0], 6, "{report}");
    assert_eq!(report["invalid_lines"][1][0], 8, "{report}");
    for n in ["+447400900201", "+447400900202", "+447400900203"] {
        assert_eq!(check(&sup, n).await, true, "{n}");
    }
    let r = sup
        .post(t.url("/api/dnc/import?region=XX"))
        .body("07400900204\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        r.status(),
        400,
        "an unknown region is refused before anything is read"
    );
    t
}
