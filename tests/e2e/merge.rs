//! Duplicate contacts found and merged over HTTP and from the command line:
//! supervisors and admins of the account only, each contact at the version
//! read, and the merge undone within its day.

use chrono::Duration;
use crm::model::{ContactId, Role};
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(
    supervisors_find_merge_and_undo_duplicates,
    duplicates_and_merges_are_the_account_managers_alone,
    duplicates_are_merged_from_the_command_line,
);

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a contact over HTTP as the client, returning it.
async fn create(t: &TestApp, c: &reqwest::Client, body: Value) -> Value {
    let (status, contact) = send(c.post(t.url("/api/contacts")).json(&body)).await;
    assert_eq!(status, 201, "{contact}");
    contact
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("an id")
}

async fn supervisors_find_merge_and_undo_duplicates(t: TestApp) -> TestApp {
    t.clock.stand_still();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let admin_pw = t.user(&acme, "ann", Role::Admin).await;
    let sup = t.login("sue", &sup_pw).await;
    let ada = create(
        &t,
        &sup,
        json!({
            "first_name": "Ada", "phone": "+447400600001", "email": "ada@example.org"
        }),
    )
    .await;
    let typo = create(
        &t,
        &sup,
        json!({
            "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400600002",
            "email": "ADA@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH"
        }),
    )
    .await;
    create(
        &t,
        &sup,
        json!({ "first_name": "Charles", "phone": "+447400600003" }),
    )
    .await;

    // Found for one contact, and in the account's pages of pairs.
    let (status, found) = send(
        sup.get(t.url("/api/contacts/duplicates"))
            .query(&[("contact_id", id(&ada))]),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["contact_id"], id(&ada));
    assert_eq!(found["candidates"][0]["contact"]["id"], id(&typo));
    assert_eq!(found["candidates"][0]["reasons"], json!(["same_email"]));
    assert_eq!(found["candidates"].as_array().map(Vec::len), Some(1));
    let (status, page) = send(sup.get(t.url("/api/contacts/duplicates?limit=2"))).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["scanned"], 2);
    assert_eq!(page["next_after"], id(&typo));
    assert_eq!(page["pairs"][0]["a"]["id"], id(&ada));
    assert_eq!(page["pairs"][0]["b"]["id"], id(&typo));
    assert_eq!(page["pairs"][0]["reasons"], json!(["same_email"]));
    let (_, rest) = send(
        sup.get(t.url("/api/contacts/duplicates"))
            .query(&[("after", id(&typo))]),
    )
    .await;
    assert_eq!(rest["pairs"], json!([]), "each pair once");
    assert_eq!(rest["next_after"], Value::Null);
    for bad in ["limit=0", "limit=501", "after=x", "contact_id=ada"] {
        let (status, error) =
            send(sup.get(t.url(&format!("/api/contacts/duplicates?{bad}")))).await;
        assert_eq!(status, 400, "{bad}: {error}");
    }

    // A stale version is a 409 and merges nothing.
    let merge = |version_keep: &Value, version_merge: &Value| {
        sup.post(t.url("/api/contacts/merge")).json(&json!({
            "keep": id(&ada), "merge": id(&typo),
            "version_keep": version_keep, "version_merge": version_merge
        }))
    };
    let (status, error) = send(merge(&json!(1), &json!(3))).await;
    assert_eq!(status, 409, "{error}");
    assert!(error["error"]
        .as_str()
        .expect("message")
        .contains("version 1"));
    let (status, error) = send(sup.post(t.url("/api/contacts/merge")).json(&json!({
        "keep": id(&ada), "merge": id(&ada), "version_keep": 1, "version_merge": 1
    })))
    .await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = send(
        sup.post(t.url("/api/contacts/merge"))
            .json(&json!({ "keep": 1 })),
    )
    .await;
    assert_eq!(status, 400, "{error}");

    let (status, merged) = send(merge(&ada["version"], &typo["version"])).await;
    assert_eq!(status, 200, "{merged}");
    let merge_id = merged["merge_id"].as_i64().expect("a merge id");
    assert_eq!(merged["merged_id"], id(&typo));
    assert_eq!(merged["contact"]["id"], id(&ada));
    assert_eq!(merged["contact"]["version"], 2);
    assert_eq!(merged["contact"]["last_name"], "Lovelace");
    assert_eq!(
        merged["contact"]["email"], "ada@example.org",
        "never overwritten"
    );
    assert_eq!(
        merged["filled"],
        json!(["last_name", "postal_address", "other_numbers"])
    );
    assert_eq!(merged["moved"]["call_attempts"], 0);
    assert_eq!(merged["moved"]["other_numbers"], 1);
    // The kept contact's number is the one dialled; the merged one's is
    // kept beside it, and finds it.
    assert_eq!(merged["contact"]["phone_e164"], "+447400600001");
    let others = &merged["contact"]["other_numbers"];
    assert_eq!(others.as_array().map(Vec::len), Some(1), "{others}");
    assert_eq!(others[0]["phone_e164"], "+447400600002");
    assert_eq!(others[0]["phone_raw"], "+447400600002");
    let added: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(others[0]["added_at"].clone()).expect("a time");
    // PostgreSQL keeps times to the microsecond.
    assert!((added - t.clock.now_utc()).abs() < Duration::milliseconds(1));
    let (_, card) = send(sup.get(t.url(&format!("/api/contacts/{}", id(&ada))))).await;
    assert_eq!(card["other_numbers"], merged["contact"]["other_numbers"]);
    let (_, found) = send(sup.get(t.url("/api/contacts?q=07400%20600002&field=number"))).await;
    assert_eq!(found["contacts"][0]["id"], id(&ada), "{found}");
    assert_eq!(merged["suppressed"], false);
    let until = t.clock.now_utc() + Duration::hours(24);
    assert_eq!(merged["undo_until"], json!(until));
    // Merging it again is refused: it is merged already.
    let (status, _) = send(merge(&json!(2), &json!(2))).await;
    assert_eq!(status, 409);

    // The merged contact is gone from searches; the merge is listed.
    let (_, search) = send(sup.get(t.url("/api/contacts?q=lovelace"))).await;
    let ids: Vec<i64> = search["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(id)
        .collect();
    assert_eq!(ids, [id(&ada)]);
    let (status, merges) = send(
        sup.get(t.url("/api/contacts/merges"))
            .query(&[("contact_id", id(&typo))]),
    )
    .await;
    assert_eq!(status, 200, "{merges}");
    assert_eq!(merges[0]["merge_id"], merge_id);
    assert_eq!(merges[0]["state"], "open");
    assert_eq!(merges[0]["kept_id"], id(&ada));
    let (_, story) = send(sup.get(t.url(&format!("/api/contacts/{}/timeline", id(&ada))))).await;
    assert!(
        story
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "contact.merge"),
        "{story}"
    );

    // Undone within the day; a second undo is a 409.
    t.clock.advance(Duration::hours(1));
    let (status, undone) =
        send(sup.post(t.url(&format!("/api/contacts/merge/{merge_id}/undo")))).await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["contact"]["last_name"], "");
    assert_eq!(undone["contact"]["version"], 3);
    assert_eq!(undone["restored"]["id"], id(&typo));
    assert_eq!(
        undone["cleared"],
        json!(["last_name", "postal_address", "other_numbers"])
    );
    assert_eq!(undone["contact"]["other_numbers"], json!([]));
    let (_, found) = send(sup.get(t.url("/api/contacts?q=07400%20600002&field=number"))).await;
    assert_eq!(found["contacts"][0]["id"], id(&typo), "{found}");
    assert_eq!(found["contacts"].as_array().map(Vec::len), Some(1));
    let (status, _) = send(sup.post(t.url(&format!("/api/contacts/merge/{merge_id}/undo")))).await;
    assert_eq!(status, 409);
    let (status, _) = send(sup.post(t.url("/api/contacts/merge/999999/undo"))).await;
    assert_eq!(status, 404);

    // Audited with both ids and field names, never values.
    let admin = t.login("ann", &admin_pw).await;
    let (_, log) = send(admin.get(t.url("/api/audit?action=contact.merge"))).await;
    assert_eq!(
        log[0]["detail"],
        format!(
            "merged=contact:{} merge={merge_id} fields=last_name,postal_address,other_numbers",
            id(&typo)
        )
    );
    assert_eq!(log[0]["target"], format!("contact:{}", id(&ada)));
    let (_, log) = send(admin.get(t.url("/api/audit?action=contact.merge_undo"))).await;
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    let (_, everything) = send(admin.get(t.url("/api/audit"))).await;
    let text = everything.to_string();
    for value in ["Lovelace", "ada@example", "SW1Y", "7400"] {
        assert!(!text.contains(value), "{value} in the audit log");
    }
    t
}

async fn duplicates_and_merges_are_the_account_managers_alone(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let admin_pw = t.user(&acme, "ann", Role::Admin).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let oz_pw = t.user(&other, "oz", Role::Admin).await;
    let ann = t.login("ann", &admin_pw).await;
    let one = create(
        &t,
        &ann,
        json!({ "first_name": "One", "phone": "+447400700001",
        "email": "same@example.org" }),
    )
    .await;
    let two = create(
        &t,
        &ann,
        json!({ "first_name": "Two", "phone": "+447400700002",
        "email": "same@example.org" }),
    )
    .await;
    let body =
        json!({ "keep": id(&one), "merge": id(&two), "version_keep": 1, "version_merge": 1 });

    // An agent is refused everything: 403.
    let al = t.login("al", &agent_pw).await;
    let agent_calls = [
        al.get(t.url(&format!("/api/contacts/duplicates?contact_id={}", id(&one)))),
        al.get(t.url("/api/contacts/duplicates")),
        al.get(t.url("/api/contacts/merges")),
        al.post(t.url("/api/contacts/merge")).json(&body),
        al.post(t.url("/api/contacts/merge/1/undo")),
    ];
    for req in agent_calls {
        let (status, error) = send(req).await;
        assert_eq!(status, 403, "{error}");
    }

    // Another account's admin finds nothing of acme's: 404s.
    let oz = t.login("oz", &oz_pw).await;
    let (status, _) = send(oz.post(t.url("/api/contacts/merge")).json(&body)).await;
    assert_eq!(status, 404);
    let (status, _) =
        send(oz.get(t.url(&format!("/api/contacts/duplicates?contact_id={}", id(&one))))).await;
    assert_eq!(status, 404);
    let (status, page) = send(oz.get(t.url("/api/contacts/duplicates"))).await;
    assert_eq!((status, page["pairs"].clone()), (200, json!([])));
    let mine = create(
        &t,
        &oz,
        json!({ "first_name": "Mine", "phone": "+447400700009" }),
    )
    .await;
    let (status, _) = send(oz.post(t.url("/api/contacts/merge")).json(&json!({
        "keep": id(&mine), "merge": id(&two), "version_keep": 1, "version_merge": 1
    })))
    .await;
    assert_eq!(status, 404, "across accounts");

    // Acme's admin merges; the other account cannot undo it.
    let (status, merged) = send(ann.post(t.url("/api/contacts/merge")).json(&body)).await;
    assert_eq!(status, 200, "{merged}");
    let merge_id = merged["merge_id"].as_i64().expect("merge id");
    let (status, _) = send(oz.post(t.url(&format!("/api/contacts/merge/{merge_id}/undo")))).await;
    assert_eq!(status, 404);
    let (_, theirs) = send(oz.get(t.url("/api/contacts/merges"))).await;
    assert_eq!(theirs, json!([]));
    let (status, _) = send(al.post(t.url(&format!("/api/contacts/merge/{merge_id}/undo")))).await;
    assert_eq!(status, 403);
    // A day later it cannot be undone, and the merged contact is deleted.
    t.clock.advance(Duration::hours(25));
    let ann = t.login("ann", &admin_pw).await;
    let (status, error) =
        send(ann.post(t.url(&format!("/api/contacts/merge/{merge_id}/undo")))).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        t.db.store
            .finalise_merges(t.clock.now_utc())
            .await
            .expect("final"),
        1
    );
    let (status, _) = send(ann.get(t.url(&format!("/api/contacts/{}", id(&two))))).await;
    assert_eq!(status, 404);
    t
}

async fn duplicates_are_merged_from_the_command_line(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ann", Role::Admin).await;
    let ann = t.login("ann", &admin_pw).await;
    let kept = create(
        &t,
        &ann,
        json!({ "first_name": "Grace", "last_name": "Hopper",
        "phone": "+447400800001", "postal_address": "1 Navy Way, York YO1 7HH" }),
    )
    .await;
    let other = create(
        &t,
        &ann,
        json!({ "first_name": "Hopper", "last_name": "Grace",
        "phone": "+447400800002", "postal_address": "YO1 7HH", "profession": "Admiral" }),
    )
    .await;
    let cli = |args: Vec<String>| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialcrm"));
        c.args(&args)
            .args(["--database-url", &t.db.url])
            .env_remove("DIALCRM_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        async move {
            let out = c.output().await.expect("runs");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (kept_id, other_id) = (id(&kept).to_string(), id(&other).to_string());

    let (ok, out, err) = cli(args(&["contact", "duplicates", "--account", "acme"])).await;
    assert!(ok, "{err}");
    assert!(out.contains("similar_name_postcode"), "{out}");
    assert!(
        out.contains("Grace Hopper") && out.contains("Hopper Grace"),
        "{out}"
    );
    assert!(err.contains("1 pairs among 2 contacts"), "{err}");
    let (ok, out, err) = cli(args(&[
        "contact",
        "duplicates",
        "--account",
        "acme",
        "--contact",
        &kept_id,
        "--json",
    ]))
    .await;
    assert!(ok, "{err}");
    let found: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(found[0]["contact"]["id"], id(&other));
    assert_eq!(found[0]["reasons"], json!(["similar_name_postcode"]));

    let (ok, _, err) = cli(args(&[
        "contact",
        "merge",
        "--account",
        "acme",
        "--keep",
        &kept_id,
        "--merge",
        &other_id,
        "--version-keep",
        "9",
    ]))
    .await;
    assert!(!ok, "a stale version is refused");
    assert!(err.contains("version 9"), "{err}");
    let (ok, _, err) = cli(args(&[
        "contact",
        "merge",
        "--account",
        "nobody",
        "--keep",
        &kept_id,
        "--merge",
        &other_id,
    ]))
    .await;
    assert!(!ok);
    assert!(err.contains("nobody"), "{err}");
    let (ok, out, err) = cli(args(&[
        "contact",
        "merge",
        "--account",
        "acme",
        "--keep",
        &kept_id,
        "--merge",
        &other_id,
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("contact {other_id} merged into contact {kept_id}")),
        "{out}"
    );
    assert!(out.contains("filled: profession, other_numbers"), "{out}");
    assert!(out.contains("1 other numbers"), "{out}");
    let k = s
        .contact(acme.id, ContactId(id(&kept)))
        .await
        .expect("kept");
    assert_eq!(k.fields.profession.as_deref(), Some("Admiral"));
    let merges = s.merges(acme.id, Some(k.id), 10).await.expect("merges");
    let merge_id = merges[0].merge_id.to_string();
    let log = s.audit_entries(acme.id, 10).await.expect("audit");
    let entry = log
        .iter()
        .find(|e| e.action == "contact.merge")
        .expect("audited");
    assert_eq!(entry.user_agent.as_deref(), Some("dialcrm-cli"));
    assert_eq!(
        entry.detail.as_deref(),
        Some(
            format!("merged=contact:{other_id} merge={merge_id} fields=profession,other_numbers")
                .as_str()
        )
    );

    let (ok, out, err) = cli(args(&[
        "contact",
        "undo-merge",
        "--account",
        "acme",
        "--merge-id",
        &merge_id,
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("merge {merge_id} undone")), "{out}");
    let k = s.contact(acme.id, k.id).await.expect("kept");
    assert_eq!(k.fields.profession, None);
    assert_eq!(
        s.merged_into(acme.id, ContactId(id(&other)))
            .await
            .expect("q"),
        None
    );
    t
}
