//! CSV import and export of call lists over HTTP and through the binary.

use std::time::Duration;

use crm::model::{ListId, Role};
use serde_json::Value;

use crate::helpers::{client, on_both_backends, TestApp};

on_both_backends!(
    a_broken_upload_reports_its_rows_and_loses_nothing_else,
    only_managers_of_the_account_reach_imports_and_exports,
    the_binary_imports_and_exports_a_list,
);

const BROKEN: &str = "First Name;Last Name;Phone;Colour\n\
    Ann;Ash;07400 100001;red\n\
    Bob;Birch;;blue\n\
    \"Cy\nCole\";Cedar;07400100003;green\n\
    Di;Dunn;12345;grey\n\
    Ed;Elm;07400100005\n\
    Fay;Fir;+44 7400 100006;\"unterminated\n";

async fn create_list(t: &TestApp, c: &reqwest::Client, name: &str) -> i64 {
    let r = c
        .post(t.url("/api/lists"))
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id")
}

async fn upload(t: &TestApp, c: &reqwest::Client, list: i64, body: &str) -> reqwest::Response {
    c.post(t.url(&format!("/api/lists/{list}/import?on_duplicate=skip")))
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

/// Polls an import until it leaves `running`, for at most 30 seconds.
async fn finished(t: &TestApp, c: &reqwest::Client, id: i64) -> Value {
    for _ in 0..600 {
        let job: Value = c
            .get(t.url(&format!("/api/imports/{id}")))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} did not finish");
}

async fn a_broken_upload_reports_its_rows_and_loses_nothing_else(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let sue = t.login("sue", &pw).await;
    let list = create_list(&t, &sue, "leads").await;

    let r = upload(&t, &sue, list, BROKEN).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["import_id"]
        .as_i64()
        .expect("id");
    let job = finished(&t, &sue, id).await;
    assert_eq!(job["status"], "done", "{job}");
    let s = &job["summary"];
    assert_eq!(s["rows_read"], 6);
    assert_eq!(s["imported"], 2);
    assert_eq!(s["invalid"], 4);
    let errors: Vec<(i64, String)> = s["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap_or(0),
                e["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let lines: Vec<i64> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![3, 6, 7, 8], "{errors:?}");
    assert!(errors[3].1.contains("cut off"));

    let contacts: Vec<Value> = sue
        .get(t.url(&format!("/api/lists/{list}/contacts")))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = contacts
        .iter()
        .filter_map(|c| c["first_name"].as_str())
        .collect();
    assert_eq!(names, vec!["Ann", "Cy\nCole"]);

    let r = sue
        .get(t.url(&format!("/api/lists/{list}/export.csv")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/csv"));
    let body = r.text().await.expect("body");
    assert!(
        body.starts_with("first_name,last_name,phone_e164,"),
        "{body}"
    );
    assert!(
        body.contains("Ann,Ash,+447400100001,07400 100001"),
        "{body}"
    );
    assert!(body.contains("\"Cy\nCole\",Cedar,+447400100003"), "{body}");

    let audit = t.db.store.audit_entries(acme.id, 20).await.expect("audit");
    let target = format!("list:{list}");
    for action in ["list.import", "list.export"] {
        assert!(
            audit
                .iter()
                .any(|a| a.action == action && a.target.as_deref() == Some(&target)),
            "{action} audited"
        );
    }

    // A file that is not CSV fails the job with a reason and writes nothing.
    let r = upload(&t, &sue, list, "name,email\nAnn,a@example.org\n").await;
    let id = r.json::<Value>().await.expect("json")["import_id"]
        .as_i64()
        .expect("id");
    let job = finished(&t, &sue, id).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or("")
            .contains("no phone column"),
        "{job}"
    );
    let size =
        t.db.store
            .list(acme.id, ListId(list))
            .await
            .expect("list")
            .size;
    assert_eq!(size, 2);
    t
}

async fn only_managers_of_the_account_reach_imports_and_exports(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let globex = t.account("globex", 5).await;
    let sue_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let al_pw = t.user(&acme, "al", Role::Agent).await;
    let gus_pw = t.user(&globex, "gus", Role::Admin).await;
    let sue = t.login("sue", &sue_pw).await;
    let al = t.login("al", &al_pw).await;
    let gus = t.login("gus", &gus_pw).await;
    let list = create_list(&t, &sue, "leads").await;
    let r = upload(&t, &sue, list, "phone\n07400100001\n").await;
    let id = r.json::<Value>().await.expect("json")["import_id"]
        .as_i64()
        .expect("id");
    finished(&t, &sue, id).await;

    assert_eq!(
        upload(&t, &al, list, "phone\n07400100002\n").await.status(),
        403
    );
    assert_eq!(
        t.get_status(&al, &format!("/api/lists/{list}/export.csv"))
            .await,
        403
    );
    assert_eq!(t.get_status(&al, &format!("/api/imports/{id}")).await, 403);

    assert_eq!(
        upload(&t, &gus, list, "phone\n07400100003\n")
            .await
            .status(),
        404
    );
    assert_eq!(
        t.get_status(&gus, &format!("/api/lists/{list}/export.csv"))
            .await,
        404
    );
    assert_eq!(t.get_status(&gus, &format!("/api/imports/{id}")).await, 404);
    assert_eq!(
        t.get_status(&client(), &format!("/api/imports/{id}")).await,
        401
    );

    let r = sue
        .post(t.url(&format!("/api/lists/{list}/import")))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 415);
    let r = sue
        .post(t.url(&format!("/api/lists/{list}/import?on_duplicate=merge")))
        .header("content-type", "text/csv")
        .body("phone\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);

    let size =
        t.db.store
            .list(acme.id, ListId(list))
            .await
            .expect("list")
            .size;
    assert_eq!(size, 1, "only the supervisor's row was imported");
    let exports = t.db.store.audit_entries(acme.id, 50).await.expect("audit");
    assert!(
        !exports.iter().any(|a| a.action == "list.export"),
        "refused exports leave no entry"
    );
    t
}

async fn the_binary_imports_and_exports_a_list(t: TestApp) -> TestApp {
    t.account("acme", 5).await;
    let dir = std::env::temp_dir().join(format!("dialcrm-lists-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("in.csv");
    std::fs::write(&input, BROKEN).expect("written");
    let out = run(
        &t,
        &[
            "import",
            "--account",
            "acme",
            "--list",
            "cli",
            "--region",
            "GB",
        ],
        Some(&input),
    )
    .await;
    assert!(out.contains("6 rows read into list \"cli\""), "{out}");
    assert!(
        out.contains("2 added to the list (2 new contacts)"),
        "{out}"
    );
    assert!(out.contains("4 invalid"), "{out}");
    assert!(out.contains("line 3: no phone number"), "{out}");

    let exported = dir.join("out.csv");
    let path = exported.to_str().expect("utf-8 path").to_owned();
    run(
        &t,
        &[
            "export",
            "--account",
            "acme",
            "--list",
            "cli",
            "--out",
            &path,
        ],
        None,
    )
    .await;
    let file = std::fs::read_to_string(&exported).expect("exported");
    let stdout = run(&t, &["export", "--account", "acme", "--list", "cli"], None).await;
    assert_eq!(file, stdout);
    assert_eq!(file.matches("+4474001000").count(), 2, "{file}");

    // Importing the export into another list gives the same contacts.
    let again = run(
        &t,
        &["import", "--account", "acme", "--list", "copy"],
        Some(&exported),
    )
    .await;
    assert!(again.contains("2 rows read"), "{again}");
    assert!(again.contains("2 duplicates skipped"), "{again}");
    assert!(
        again.contains("2 added to the list (0 new contacts)"),
        "the list received them: {again}"
    );
    let store = &t.db.store;
    let acme = store.account_by_name("acme").await.expect("acme");
    let lists = store.lists(acme.id).await.expect("lists");
    let ids: Vec<Vec<i64>> = {
        let mut v = Vec::new();
        for l in &lists {
            let c = store
                .list_contacts(acme.id, l.id, 100, 0)
                .await
                .expect("contacts");
            v.push(c.into_iter().map(|c| c.id.0).collect());
        }
        v
    };
    assert_eq!(ids[0], ids[1], "both lists hold the same contacts");
    let _ = std::fs::remove_dir_all(&dir);
    t
}

async fn run(t: &TestApp, args: &[&str], file: Option<&std::path::Path>) -> String {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialcrm"));
    cmd.args(args)
        .args(["--database-url", &t.db.url])
        .env("RUST_LOG", "info")
        .kill_on_drop(true);
    if let Some(f) = file {
        cmd.arg(f);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("finishes")
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Not a terminal: no progress line to redraw, and log lines stand alone.
    assert!(
        !stderr.contains('\r'),
        "progress drawn off a terminal: {stderr:?}"
    );
    if args.first() == Some(&"import") {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("list import finished") && !l.contains("rows read")),
            "the log line stands on its own: {stderr:?}"
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rand_suffix() -> String {
    format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
