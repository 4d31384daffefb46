//! The account's own contact fields over HTTP: admins define them, contacts
//! carry them through create, edit, search, CSV import and export, agents
//! see and change only those on the card of their own contacts, and
//! removing a field erases its values.

use chrono::{Duration, Utc};
use crm::model::{ContactFields, ContactId, Role};
use crm::store::campaign_settings::DialMode;
use serde_json::{json, Value};

use crate::desk::{agent_floor, say, wait_for, AgentFloor};
use crate::dialler::DAY_ZONE;
use crate::helpers::{on_both_backends, NowUtc, TestApp};

on_both_backends!(
    admins_define_fields_that_contacts_carry_everywhere,
    agents_see_and_change_only_card_fields_of_their_contacts,
);

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn message(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

/// The fields both tests define: a text, a choice list on the card, a
/// required date, a number off the card and a yes/no left out of exports.
const FIELDS: [&str; 5] = [
    r#"{"key": "company", "label": "Company", "kind": "text"}"#,
    r#"{"key": "plan", "label": "Plan", "kind": "choice", "choices": ["Gold", "Silver"]}"#,
    r#"{"key": "renewal", "label": "Renewal date", "kind": "date", "required": true}"#,
    r#"{"key": "score", "label": "Internal score", "kind": "number", "on_card": false}"#,
    r#"{"key": "opt_in", "label": "Opted in", "kind": "yes_no", "exported": false}"#,
];

async fn define_all(t: &TestApp, admin: &reqwest::Client) {
    for body in FIELDS {
        let body: Value = serde_json::from_str(body).expect("JSON");
        let (status, def) = send(admin.post(t.url("/api/account/fields")).json(&body)).await;
        assert_eq!(status, 201, "{def}");
        assert_eq!(def["key"], body["key"]);
    }
}

async fn admins_define_fields_that_contacts_carry_everywhere(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ann", Role::Admin).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let other = t.account("other", 5).await;
    let other_pw = t.user(&other, "oz", Role::Admin).await;
    let ann = t.login("ann", &admin_pw).await;
    let sue = t.login("sue", &sup_pw).await;
    let oz = t.login("oz", &other_pw).await;

    // Only admins define fields; bad definitions say what is wrong.
    let body = json!({ "key": "company", "kind": "text" });
    let (status, _) = send(sue.post(t.url("/api/account/fields")).json(&body)).await;
    assert_eq!(status, 403, "a supervisor does not define fields");
    define_all(&t, &ann).await;
    for (body, status, says) in [
        (json!({ "key": "company", "kind": "text" }), 409, "already"),
        (
            json!({ "key": "Company Name", "kind": "text" }),
            400,
            "lower-case",
        ),
        (json!({ "key": "tier" }), 400, "kind"),
        (json!({ "key": "tier", "kind": "colour" }), 400, "kind"),
        (json!({ "key": "tier", "kind": "choice" }), 400, "choices"),
        (json!({ "key": "email", "kind": "text" }), 400, "own column"),
    ] {
        let (got, error) = send(ann.post(t.url("/api/account/fields")).json(&body)).await;
        assert_eq!(got, status, "{body} -> {error}");
        assert!(message(&error).contains(says), "{body}: {error}");
    }
    let (status, fields) = send(sue.get(t.url("/api/account/fields"))).await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = fields
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(keys, ["company", "plan", "renewal", "score", "opt_in"]);
    assert_eq!(fields[1]["choices"], json!(["Gold", "Silver"]));
    assert_eq!(fields[3]["on_card"], false);
    let (_, theirs) = send(oz.get(t.url("/api/account/fields"))).await;
    assert_eq!(theirs, json!([]), "another account's fields are its own");

    // A contact carries its values; bad ones are 400s naming the field.
    let (status, ada) = send(sue.post(t.url("/api/contacts")).json(&json!({
        "first_name": "Ada", "last_name": "Lovelace", "phone": "+447400100123",
        "fields": { "company": "Analytical Engines", "plan": "gold", "renewal": "2027-03-31",
                    "score": "7.5", "opt_in": true }
    })))
    .await;
    assert_eq!(status, 201, "{ada}");
    assert_eq!(
        ada["fields"],
        json!({ "company": "Analytical Engines", "plan": "Gold", "renewal": "2027-03-31",
                "score": 7.5, "opt_in": true })
    );
    let id = ada["id"].as_i64().expect("an id");
    for (fields, says) in [
        (
            json!({ "renewal": "31 March" }),
            "renewal (Renewal date) must be a date",
        ),
        (
            json!({ "renewal": "2027-03-31", "plan": "Bronze" }),
            "Gold, Silver",
        ),
        (json!({ "renewal": "2027-03-31", "score": "high" }), "score"),
        (
            json!({ "renewal": "2027-03-31", "shoe_size": 9 }),
            "shoe_size",
        ),
        (json!({ "company": "Babbage & Co" }), "required"),
    ] {
        let (status, error) = send(sue.post(t.url("/api/contacts")).json(&json!({
            "first_name": "Charles", "phone": "+447400100456", "fields": fields
        })))
        .await;
        assert_eq!(status, 400, "{fields} -> {error}");
        assert!(message(&error).contains(says), "{fields}: {error}");
    }

    // Edits: by key, with the version read; the version check still holds.
    let contact = format!("/api/contacts/{id}");
    let (status, edited) = send(sue.patch(t.url(&contact)).json(&json!({
        "version": 1, "fields": { "plan": "Silver", "opt_in": "no" }
    })))
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["changed"], json!(["field.plan", "field.opt_in"]));
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["fields"]["plan"], "Silver");
    assert_eq!(edited["fields"]["opt_in"], false);
    let (status, stale) = send(sue.patch(t.url(&contact)).json(&json!({
        "version": 1, "fields": { "plan": "Gold" }
    })))
    .await;
    assert_eq!(status, 409, "{stale}");
    assert!(message(&stale).contains("version 2"), "{stale}");
    let (status, error) = send(sue.patch(t.url(&contact)).json(&json!({
        "version": 2, "fields": { "renewal": null }
    })))
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(message(&error).contains("not cleared"), "{error}");
    let (_, card) = send(sue.get(t.url(&contact))).await;
    assert_eq!(card["fields"]["plan"], "Silver");
    assert_eq!(card["version"], 2);

    // Search: the start of a text value, and filters by value.
    let (status, found) = send(sue.get(t.url("/api/contacts?q=analytical"))).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["contacts"][0]["id"], id);
    assert_eq!(
        found["contacts"][0]["fields"]["company"],
        "Analytical Engines"
    );
    let (_, found) =
        send(sue.get(t.url("/api/contacts?field.plan=silver&field.renewal=2027-03-31"))).await;
    assert_eq!(
        found["contacts"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    let (_, found) = send(sue.get(t.url("/api/contacts?field.plan=Gold"))).await;
    assert_eq!(found["contacts"], json!([]));
    for (query, says) in [
        ("field.shoe=9", "field.shoe"),
        ("field.plan=Bronze", "Gold, Silver"),
        ("field.renewal=tomorrow", "renewal"),
    ] {
        let (status, error) = send(sue.get(t.url(&format!("/api/contacts?{query}")))).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert!(message(&error).contains(says), "{query}: {error}");
    }
    let (_, found) = send(oz.get(t.url("/api/contacts?q=analytical"))).await;
    assert_eq!(
        found["contacts"],
        json!([]),
        "another account finds nothing"
    );

    // A CSV import maps columns to fields by key or label; a bad value is a
    // broken row, reported, and costs nothing else.
    let (_, list) = send(
        sue.post(t.url("/api/lists"))
            .json(&json!({ "name": "Spring" })),
    )
    .await;
    let list = list["id"].as_i64().expect("a list");
    let csv = "first_name,phone,Company,PLAN,Renewal date,Opted in\n\
               Bea,07400 100201,Acorn Ltd,Gold,2027-01-31,yes\n\
               Cy,07400 100202,Cedar plc,Bronze,2027-01-31,no\n\
               Di,07400 100203,Dunn & Sons,silver,,\n";
    let (status, job) = send(
        sue.post(t.url(&format!("/api/lists/{list}/import")))
            .header("content-type", "text/csv")
            .body(csv),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["import_id"].as_i64().expect("an import");
    let summary = loop {
        let (_, job) = send(sue.get(t.url(&format!("/api/imports/{job_id}")))).await;
        if job["status"] != "running" {
            break job["summary"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        (summary["imported"].clone(), summary["invalid"].clone()),
        (json!(2), json!(1)),
        "{summary}"
    );
    assert_eq!(summary["errors"][0]["line"], 3);
    let reason = summary["errors"][0]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("plan (Plan) must be one of: Gold, Silver"),
        "{reason}"
    );
    let (_, members) = send(sue.get(t.url(&format!("/api/lists/{list}/contacts")))).await;
    let bea = &members[0];
    assert_eq!(bea["first_name"], "Bea");
    assert_eq!(
        bea["fields"],
        json!({ "company": "Acorn Ltd", "plan": "Gold", "renewal": "2027-01-31", "opt_in": true })
    );
    assert_eq!(
        members[1]["fields"],
        json!({ "company": "Dunn & Sons", "plan": "Silver" })
    );

    // The export writes the exported fields by key; opt_in is not one.
    let export = sue
        .get(t.url(&format!("/api/lists/{list}/export.csv")))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let header = export.lines().next().expect("a header");
    assert!(
        header.contains(",company,plan,renewal,score,dialcrm_contact_id"),
        "{header}"
    );
    assert!(!header.contains("opt_in"), "{header}");
    assert!(export.contains(",Acorn Ltd,Gold,2027-01-31,,"), "{export}");

    // Changing a field: admins only; another account's is a 404.
    let plan = "/api/account/fields/plan";
    let (status, _) = send(sue.patch(t.url(plan)).json(&json!({ "label": "Tier" }))).await;
    assert_eq!(status, 403);
    let (status, _) = send(oz.patch(t.url(plan)).json(&json!({ "label": "Tier" }))).await;
    assert_eq!(status, 404);
    let (status, changed) = send(
        ann.patch(t.url(plan))
            .json(&json!({ "label": "Tier", "on_card": false })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["label"].clone(), changed["on_card"].clone()),
        (json!("Tier"), json!(false))
    );
    let (status, error) = send(ann.patch(t.url(plan)).json(&json!({ "choices": ["Gold"] }))).await;
    assert_eq!(status, 409, "Silver is held: {error}");
    let (status, error) = send(ann.patch(t.url(plan)).json(&json!({ "kind": "text" }))).await;
    assert_eq!(status, 400, "{error}");
    assert!(message(&error).contains("kind never changes"), "{error}");
    let (status, _) = send(ann.patch(t.url(plan)).json(&json!({}))).await;
    assert_eq!(status, 400, "a change that names nothing");

    // Removing a field erases its values and says how many.
    let (status, _) = send(oz.delete(t.url("/api/account/fields/company"))).await;
    assert_eq!(status, 404);
    let (status, removed) = send(ann.delete(t.url("/api/account/fields/company"))).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["values_erased"], 3, "Ada, Bea and Di");
    let (_, card) = send(sue.get(t.url(&contact))).await;
    assert_eq!(card["fields"].get("company"), None);
    assert_eq!(card["fields"]["plan"], "Silver");
    let (_, found) = send(sue.get(t.url("/api/contacts?q=analytical"))).await;
    assert_eq!(found["contacts"], json!([]));
    let (status, _) = send(ann.delete(t.url("/api/account/fields/company"))).await;
    assert_eq!(status, 404, "gone");

    // The audit log: field actions by key, edits by field name, never a value.
    let (_, log) = send(ann.get(t.url("/api/audit"))).await;
    let entries = log.as_array().expect("entries");
    let of = |action: &str| -> Vec<(Value, Value)> {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| (e["target"].clone(), e["detail"].clone()))
            .collect()
    };
    assert_eq!(of("field.remove"), [(json!("field:company"), Value::Null)]);
    assert_eq!(
        of("field.change"),
        [(json!("field:plan"), json!("changed=label,on_card"))]
    );
    assert_eq!(of("field.define").len(), 5);
    assert!(of("contact.edit")
        .iter()
        .any(|(_, d)| d == "fields=field.plan,field.opt_in"));
    let text = log.to_string();
    for value in ["Analytical", "Acorn", "2027-03-31", "Silver"] {
        assert!(
            !text.contains(value),
            "the audit log holds {value:?}: {text}"
        );
    }
    t
}

async fn agents_see_and_change_only_card_fields_of_their_contacts(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ann", Role::Admin).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await.expect("q").expect("al").0;
    let ann = t.login("ann", &admin_pw).await;
    let al = t.login("al", &agent_pw).await;
    define_all(&t, &ann).await;

    // Agents define, change and remove nothing.
    let body = json!({ "key": "mood", "kind": "text" });
    assert_eq!(
        send(al.post(t.url("/api/account/fields")).json(&body))
            .await
            .0,
        403
    );
    let label = json!({ "label": "X" });
    assert_eq!(
        send(al.patch(t.url("/api/account/fields/plan")).json(&label))
            .await
            .0,
        403
    );
    assert_eq!(
        send(al.delete(t.url("/api/account/fields/plan"))).await.0,
        403
    );
    let (status, fields) = send(al.get(t.url("/api/account/fields"))).await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = fields
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["company", "plan", "renewal", "opt_in"],
        "not the off-card score"
    );

    // Nell is a lead of al's campaign; Nora is not.
    let mut ids = Vec::new();
    for (first, phone) in [("Nell", "+447400100301"), ("Nora", "+447400100302")] {
        let (status, saved) = send(ann.post(t.url("/api/contacts")).json(&json!({
            "first_name": first, "last_name": "Gwyn", "phone": phone,
            "fields": { "company": "Gwyn Oranges", "plan": "Gold", "renewal": "2027-05-01", "score": 9 }
        })))
        .await;
        assert_eq!(status, 201, "{saved}");
        ids.push(ContactId(saved["id"].as_i64().expect("an id")));
    }
    let (nell, nora) = (ids[0], ids[1]);
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    s.add_to_list(acme.id, list.id, nell, now)
        .await
        .expect("member");
    let campaign = s
        .create_campaign(acme.id, "C", "+441632960000", now)
        .await
        .expect("campaign");
    s.attach_list(acme.id, campaign.id, list.id, 0)
        .await
        .expect("attached");
    s.sync_leads(acme.id, campaign.id, now)
        .await
        .expect("leads");
    s.assign_agents(acme.id, campaign.id, &[agent.id])
        .await
        .expect("assigned");

    // Search: their leads only, off-card values hidden and not searchable.
    let (status, found) = send(al.get(t.url("/api/contacts?q=gwyn oranges"))).await;
    assert_eq!(status, 200, "{found}");
    let contacts = found["contacts"].as_array().expect("a page");
    assert_eq!(contacts.len(), 1, "{found}");
    assert_eq!(contacts[0]["id"], nell.0);
    assert_eq!(contacts[0]["fields"].get("score"), None, "{found}");
    assert_eq!(contacts[0]["fields"]["plan"], "Gold");
    let (status, error) = send(al.get(t.url("/api/contacts?field.score=9"))).await;
    assert_eq!(status, 400, "{error}");
    let (_, found) = send(al.get(t.url("/api/contacts?field.plan=gold"))).await;
    assert_eq!(
        found["contacts"].as_array().map(Vec::len),
        Some(1),
        "only Nell: {found}"
    );
    let (status, card) = send(al.get(t.url(&format!("/api/contacts/{nell}")))).await;
    assert_eq!(status, 200);
    assert_eq!(card["fields"].get("score"), None);
    assert_eq!(card["fields"]["company"], "Gwyn Oranges");
    assert_eq!(
        send(al.get(t.url(&format!("/api/contacts/{nora}"))))
            .await
            .0,
        404
    );

    // Edits: the contact of a callback booked for al, card fields only.
    let edit = |id: ContactId, fields: Value| {
        al.patch(t.url(&format!("/api/contacts/{id}")))
            .json(&json!({ "version": 1, "fields": fields }))
    };
    assert_eq!(send(edit(nora, json!({ "plan": "Silver" }))).await.0, 404);
    assert_eq!(
        send(edit(nell, json!({ "plan": "Silver" }))).await.0,
        403,
        "no call, no callback"
    );
    let lead = s
        .lead_for_contact(acme.id, campaign.id, nell)
        .await
        .expect("lead");
    s.schedule_callback(
        acme.id,
        lead.id,
        now + Duration::hours(2),
        Some(agent.id),
        now,
    )
    .await
    .expect("callback");
    let (status, error) = send(edit(nell, json!({ "score": 1 }))).await;
    assert_eq!(status, 403, "{error}");
    assert!(message(&error).contains("shown on the card"), "{error}");
    let (status, edited) = send(edit(nell, json!({ "plan": "Silver", "opt_in": "yes" }))).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["fields"]["plan"], "Silver");
    assert_eq!(edited["fields"].get("score"), None);
    let stored = s.contact(acme.id, nell).await.expect("contact");
    assert_eq!(stored.values["score"], 9, "kept, unseen");
    t
}

/// The card of a call shows the fields marked for it, with their values,
/// and nothing of the others.
#[tokio::test]
async fn the_card_shows_the_fields_marked_for_it_on_sqlite() {
    card_fields(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn the_card_shows_the_fields_marked_for_it_on_postgres() {
    card_fields(crm::testing::TestBackend::Postgres).await;
}

async fn card_fields(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, None).await else {
        return;
    };
    let t = &f.t;
    let s = &t.db.store;
    let now = Utc::now();
    let admin_pw = t.user(&f.acme, "ann", Role::Admin).await;
    let ann = t.login("ann", &admin_pw).await;
    define_all(t, &ann).await;
    let list = s
        .create_list(f.acme.id, "L", "GB", now)
        .await
        .expect("list");
    let contact = s
        .create_contact(
            f.acme.id,
            &ContactFields {
                first_name: "Philippa".into(),
                last_name: "Oddington".into(),
                phone_e164: "+447400100777".into(),
                phone_raw: "07400 100777".into(),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let (status, _) = send(
        ann.patch(t.url(&format!("/api/contacts/{}", contact.id)))
            .json(&json!({
                "version": 1, "fields": { "plan": "Gold", "score": 8675309, "opt_in": false }
            })),
    )
    .await;
    assert_eq!(status, 200);
    s.add_to_list(f.acme.id, list.id, contact.id, now)
        .await
        .expect("member");
    let campaign = t
        .start_campaign(
            &f.acme,
            list.id,
            "Spring",
            DialMode::Progressive,
            None,
            ("sue", &f.sup_pw),
        )
        .await;
    f.connect_audio().await;
    let mut ws = f.open_desk().await;
    wait_for(&mut ws, "welcome").await;
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut ws, "call").await;
    let shown: Vec<(Value, Value, Value)> = card["contact"]["card_fields"]
        .as_array()
        .expect("the card's fields")
        .iter()
        .map(|f| (f["key"].clone(), f["label"].clone(), f["value"].clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (json!("company"), json!("Company"), Value::Null),
            (json!("plan"), json!("Plan"), json!("Gold")),
            (json!("renewal"), json!("Renewal date"), Value::Null),
            (json!("opt_in"), json!("Opted in"), json!(false)),
        ],
        "{card}"
    );
    assert_eq!(
        card["contact"]["fields"],
        json!({ "plan": "Gold", "opt_in": false })
    );
    assert!(
        !card.to_string().contains("8675309"),
        "the off-card score stays off: {card}"
    );

    // During the call the agent corrects a card field through the API.
    let al = t.login("al", &f.agent_pw).await;
    let (status, edited) = send(
        al.patch(t.url(&format!("/api/contacts/{}", contact.id)))
            .json(&json!({
                "version": card["contact"]["version"], "fields": { "plan": "Silver" }
            })),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["changed"], json!(["field.plan"]));
    drop(ws);
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

/// `dialcrm contact edit --set field.KEY=VALUE`, through the same checks.
#[tokio::test]
async fn the_command_line_sets_a_field_on_sqlite() {
    command_line(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn the_command_line_sets_a_field_on_postgres() {
    command_line(crm::testing::TestBackend::Postgres).await;
}

async fn command_line(backend: crm::testing::TestBackend) {
    let Some(db) = crm::testing::TestDb::new(backend).await else {
        return;
    };
    let s = &db.store;
    let now = Utc::now();
    let acme = s.create_account("acme", 1, now).await.expect("account");
    let owner = crm::model::Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    let plan: crm::fields::NewField = serde_json::from_str(FIELDS[1]).expect("a definition");
    s.define_field(&owner, &plan, now).await.expect("defined");
    let ada = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Ada".into(),
                phone_e164: "+447400100123".into(),
                phone_raw: "07400 100123".into(),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let cli = |set: &str| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialcrm"));
        c.args(["contact", "edit", "--account", "acme", "--id"])
            .arg(ada.id.to_string())
            .args(["--set", set, "--database-url", &db.url])
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
    let (ok, out, err) = cli("field.plan=silver").await;
    assert!(ok, "{err}");
    assert!(out.contains("field.plan"), "{out}");
    let (ok, _, err) = cli("field.plan=Bronze").await;
    assert!(!ok);
    assert!(err.contains("Gold, Silver"), "{err}");
    let stored = s.contact(acme.id, ada.id).await.expect("contact");
    assert_eq!(stored.values["plan"], "Silver");
    let (ok, _, err) = cli("field.plan=").await;
    assert!(ok, "{err}");
    assert!(s
        .contact(acme.id, ada.id)
        .await
        .expect("contact")
        .values
        .is_empty());
    db.finish().await;
}
