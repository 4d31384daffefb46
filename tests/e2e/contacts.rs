//! Contacts found, created and corrected over HTTP: supervisors anywhere
//! in their account, agents on their own calls and callbacks.

use chrono::{Duration, Utc};
use crm::model::{ContactFields, ContactId, Role};
use crm::store::campaign_settings::DialMode;
use serde_json::{json, Value};

use crate::desk::{agent_floor, say, wait_for, AgentFloor};
use crate::dialler::DAY_ZONE;
use crate::helpers::{next_json, on_both_backends, NowUtc, TestApp};

on_both_backends!(
    supervisors_find_create_and_correct_contacts,
    agents_find_only_their_leads_and_edit_only_their_callbacks,
);

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn names(found: &Value) -> Vec<String> {
    found["contacts"]
        .as_array()
        .expect("a page of contacts")
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["first_name"].as_str().unwrap_or(""),
                c["last_name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

async fn supervisors_find_create_and_correct_contacts(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let admin_pw = t.user(&acme, "ann", Role::Admin).await;
    let other = t.account("other", 5).await;
    let other_pw = t.user(&other, "oz", Role::Admin).await;
    let sup = t.login("sue", &sup_pw).await;
    let list = s
        .create_list(acme.id, "Spring", "GB", t.clock.now_utc())
        .await
        .expect("list");

    // Create: a national number is read in the list's region.
    let (status, ada) = send(sup.post(t.url("/api/contacts")).json(&json!({
        "first_name": "Ada", "last_name": "Lovelace", "phone": "07400 100123",
        "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
        "list_id": list.id
    })))
    .await;
    assert_eq!(status, 201, "{ada}");
    assert_eq!(ada["phone_e164"], "+447400100123");
    assert_eq!(ada["version"], 1);
    assert_eq!(ada["suppressed"], false);
    let id = ada["id"].as_i64().expect("an id");
    assert_eq!(
        s.lists_of_contact(acme.id, ContactId(id))
            .await
            .expect("lists"),
        [list.id]
    );
    let (status, _) = send(sup.post(t.url("/api/contacts")).json(&json!({
        "first_name": "Charles", "last_name": "Babbage", "phone": "+44 7400 100456"
    })))
    .await;
    assert_eq!(status, 201);

    // Bad bodies are 400s that say what is wrong; a taken number is a 409.
    for (body, says) in [
        (json!({ "first_name": "No number" }), "phone"),
        (json!({ "phone": "07400 100999" }), "country code"),
        (
            json!({ "phone": "+447400100999", "email": "not-an-address" }),
            "email",
        ),
        (
            json!({ "phone": "+447400100999", "shoe_size": 9 }),
            "unknown field",
        ),
        (
            json!({ "phone": "+447400100999", "list_id": 999_999 }),
            "no list",
        ),
        (
            json!({ "phone": "+447400100999", "time_zone": "Mars/Olympus" }),
            "time_zone",
        ),
    ] {
        let (status, error) = send(sup.post(t.url("/api/contacts")).json(&body)).await;
        assert_eq!(status, 400, "{body} -> {error}");
        let message = error["error"].as_str().expect("a message");
        assert!(message.contains(says), "{body}: {message}");
    }
    let (status, error) = send(
        sup.post(t.url("/api/contacts"))
            .json(&json!({ "phone": "+447400100123" })),
    )
    .await;
    assert_eq!(status, 409);
    assert!(error["error"]
        .as_str()
        .expect("message")
        .contains(&format!("contact {id}")));

    // Find: by number in any format, name, email, postal code; paged.
    let find = |q: &str| sup.get(t.url("/api/contacts")).query(&[("q", q)]);
    let (status, found) = send(find("(07400) 100-123")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["matched_by"], "number");
    assert_eq!(names(&found), ["Ada Lovelace"]);
    assert_eq!(names(&send(find("love")).await.1), ["Ada Lovelace"]);
    assert_eq!(names(&send(find("ADA@example")).await.1), ["Ada Lovelace"]);
    let (_, by_postcode) = send(find("sw1y 4jh")).await;
    assert_eq!(by_postcode["matched_by"], "postal_code");
    assert_eq!(names(&by_postcode), ["Ada Lovelace"]);
    let (_, page1) = send(sup.get(t.url("/api/contacts?per_page=1&sort=-name"))).await;
    assert_eq!(
        (names(&page1), page1["has_more"].clone()),
        (vec!["Ada Lovelace".to_owned()], json!(true))
    );
    let (_, page2) = send(sup.get(t.url("/api/contacts?per_page=1&page=2&sort=-name"))).await;
    assert_eq!(
        (names(&page2), page2["has_more"].clone()),
        (vec!["Charles Babbage".to_owned()], json!(false))
    );
    for bad in [
        "sort=sideways",
        "page=0",
        "per_page=1000",
        "page=two",
        "field=shoe",
    ] {
        let (status, error) = send(sup.get(t.url(&format!("/api/contacts?q=a&{bad}")))).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert!(error["error"].is_string());
    }
    // Another account finds none of it, and cannot edit it.
    let oz = t.login("oz", &other_pw).await;
    assert!(names(&send(oz.get(t.url("/api/contacts?q=ada"))).await.1).is_empty());
    let (status, _) = send(
        oz.patch(t.url(&format!("/api/contacts/{id}")))
            .json(&json!({"version": 1, "last_name": "X"})),
    )
    .await;
    assert_eq!(status, 404);

    // Edit with the version read; the second writer with the same version
    // is told. Supervisors watching the stream learn which fields changed.
    let mut watching = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/api/stream", t.app.http_addr)
            .into_client_request()
            .expect("request");
        let cookie = t.session_cookie("sue", &sup_pw).await;
        req.headers_mut()
            .insert("cookie", cookie.parse().expect("header"));
        tokio_tungstenite::connect_async(req)
            .await
            .expect("stream")
            .0
    };
    assert_eq!(next_json(&mut watching).await["type"], "snapshot");
    let contact = format!("/api/contacts/{id}");
    let (status, edited) = send(sup.patch(t.url(&contact)).json(&json!({
        "version": 1, "last_name": "King", "email": null
    })))
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["changed"], json!(["last_name", "email"]));
    assert_eq!(edited["email"], Value::Null);
    let told = loop {
        let frame = next_json(&mut watching).await;
        if frame["event"]["kind"] == "contact_edited" {
            break frame;
        }
    };
    assert_eq!(told["event"]["fields"], json!(["last_name", "email"]));
    assert_eq!(told["event"]["version"], 2);
    assert!(
        !told.to_string().contains("King"),
        "names, never values: {told}"
    );
    let ann = t.login("ann", &admin_pw).await;
    let (status, stale) = send(
        ann.patch(t.url(&contact))
            .json(&json!({ "version": 1, "last_name": "Byron" })),
    )
    .await;
    assert_eq!(status, 409, "{stale}");
    assert!(
        stale["error"]
            .as_str()
            .expect("message")
            .contains("version 2"),
        "{stale}"
    );
    let card: Value = send(ann.get(t.url(&contact))).await.1;
    assert_eq!(
        (card["last_name"].clone(), card["version"].clone()),
        (json!("King"), json!(2))
    );
    for (body, says) in [
        (json!({ "last_name": "No version" }), "version"),
        (json!({ "version": 2 }), "at least one field"),
        (json!({ "version": 2, "phone": "12" }), "phone"),
        (json!({ "version": 2, "version_two": 1 }), "unknown field"),
        (json!([1, 2]), "object"),
    ] {
        let (status, error) = send(ann.patch(t.url(&contact)).json(&body)).await;
        assert_eq!(status, 400, "{body} -> {error}");
        assert!(
            error["error"].as_str().expect("message").contains(says),
            "{body}: {error}"
        );
    }

    // A new number is validated and checked against suppression: saved, flagged.
    s.suppress(
        acme.id,
        "+447400100777",
        "asked",
        "agent",
        t.clock.now_utc(),
    )
    .await
    .expect("suppressed");
    let (status, moved) = send(
        ann.patch(t.url(&contact))
            .json(&json!({ "version": 2, "phone": "07400 100777" })),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["phone_e164"], "+447400100777");
    assert_eq!(moved["suppressed"], true);
    assert_eq!(send(ann.get(t.url(&contact))).await.1["suppressed"], true);

    // The audit log names the fields changed and who changed them, never values.
    let (_, log) = send(ann.get(t.url("/api/audit?action=contact.edit"))).await;
    let details: Vec<&str> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(
        details,
        ["fields=phone_e164,phone_raw", "fields=last_name,email"]
    );
    let (_, everything) = send(ann.get(t.url("/api/audit"))).await;
    let text = everything.to_string();
    for value in ["King", "Lovelace", "ada@example", "7400", "SW1Y"] {
        assert!(
            !text.contains(value),
            "the audit log holds {value:?}: {text}"
        );
    }
    assert!(text.contains("contact.search") && text.contains("contact.create"));

    // The timeline tells the same story, newest first, by field name.
    let (status, story) = send(ann.get(t.url(&format!("{contact}/timeline")))).await;
    assert_eq!(status, 200, "{story}");
    let kinds: Vec<&str> = story
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["edit", "edit", "edit", "added_to_list"], "{story}");
    assert_eq!(story[0]["fields"], json!(["phone_e164", "phone_raw"]));
    assert_eq!(story[2]["action"], "contact.create");
    assert_eq!(story[3]["list_id"], list.id.0);
    let (status, _) = send(ann.get(t.url(&format!("{contact}/timeline?limit=0")))).await;
    assert_eq!(status, 400);
    let (status, _) = send(oz.get(t.url(&format!("{contact}/timeline")))).await;
    assert_eq!(status, 404);
    t
}

async fn agents_find_only_their_leads_and_edit_only_their_callbacks(t: TestApp) -> TestApp {
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let acme = t.account("acme", 5).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await.expect("q").expect("al").0;
    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let person = |first: &str, phone: &str| ContactFields {
        first_name: first.into(),
        last_name: "Gwyn".into(),
        phone_e164: phone.into(),
        phone_raw: phone.into(),
        custom_fields: json!({}),
        ..ContactFields::default()
    };
    let lead = s
        .create_contact(acme.id, &person("Nell", "+447400100201"), now)
        .await
        .expect("contact");
    let stranger = s
        .create_contact(acme.id, &person("Nora", "+447400100202"), now)
        .await
        .expect("contact");
    s.add_to_list(acme.id, list.id, lead.id, now)
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

    let al = t.login("al", &agent_pw).await;
    let (status, found) = send(al.get(t.url("/api/contacts?q=gwyn"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&found),
        ["Nell Gwyn"],
        "only the lead of al's campaign"
    );
    let (status, _) = send(
        al.post(t.url("/api/contacts"))
            .json(&json!({ "phone": "+447400100203" })),
    )
    .await;
    assert_eq!(status, 403, "agents do not create contacts");

    let edit = |id: ContactId, version: i64| {
        al.patch(t.url(&format!("/api/contacts/{id}")))
            .json(&json!({ "version": version, "first_name": "Eleanor" }))
    };
    assert_eq!(
        send(edit(stranger.id, 1)).await.0,
        404,
        "outside al's campaigns"
    );
    let (status, refused) = send(edit(lead.id, 1)).await;
    assert_eq!(status, 403, "not on a call with al, no callback: {refused}");
    assert!(refused["error"]
        .as_str()
        .expect("message")
        .contains("current call"));

    // A callback booked for al lets al correct the contact.
    let booked = s
        .lead_for_contact(acme.id, campaign.id, lead.id)
        .await
        .expect("lead");
    s.schedule_callback(
        acme.id,
        booked.id,
        now + Duration::hours(2),
        Some(agent.id),
        now,
    )
    .await
    .expect("callback");
    let (status, edited) = send(edit(lead.id, 1)).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["first_name"], "Eleanor");
    let log = s.audit_entries(acme.id, 20).await.expect("audit");
    let entry = log
        .iter()
        .find(|e| e.action == "contact.edit")
        .expect("audited");
    assert_eq!(entry.user_id, Some(agent.id));
    assert_eq!(entry.detail.as_deref(), Some("fields=first_name"));

    // The agent's timeline of the lead: the callback booked and the edit.
    let (status, story) = send(al.get(t.url(&format!("/api/contacts/{}/timeline", lead.id)))).await;
    assert_eq!(status, 200, "{story}");
    let kinds: Vec<&str> = story
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["callback", "edit"], "{story}");
    assert_eq!(story[0]["user_id"], agent.id.0);
    let (status, _) = send(al.get(t.url(&format!("/api/contacts/{}/timeline", stranger.id)))).await;
    assert_eq!(status, 404, "outside al's campaigns");
    t
}

/// An agent corrects the contact of the call they are on, and no other.
#[tokio::test]
async fn an_agent_edits_the_contact_of_their_call_on_sqlite() {
    edit_during_a_call(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn an_agent_edits_the_contact_of_their_call_on_postgres() {
    edit_during_a_call(crm::testing::TestBackend::Postgres).await;
}

async fn edit_during_a_call(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, None).await else {
        return;
    };
    let s = &f.t.db.store;
    let now = Utc::now();
    let list = s
        .create_list(f.acme.id, "L", "GB", now)
        .await
        .expect("list");
    let mut contacts = Vec::new();
    for (first, phone) in [("Philippa", "+447400100777"), ("Quentin", "+447400100778")] {
        let c = s
            .create_contact(
                f.acme.id,
                &ContactFields {
                    first_name: first.into(),
                    last_name: "Oddington".into(),
                    phone_e164: phone.into(),
                    phone_raw: phone.into(),
                    time_zone: Some(DAY_ZONE.into()),
                    custom_fields: json!({}),
                    ..ContactFields::default()
                },
                now,
            )
            .await
            .expect("contact");
        s.add_to_list(f.acme.id, list.id, c.id, now)
            .await
            .expect("member");
        contacts.push(c.id);
    }
    // An earlier call of a campaign al does not work, with a note al must
    // not see on the card.
    let autumn = s
        .create_campaign(f.acme.id, "Autumn", "+441632960000", now)
        .await
        .expect("campaign");
    for (n, contact) in contacts.iter().enumerate() {
        let earlier = now - Duration::days(1);
        let call = s
            .create_attempt(
                f.acme.id,
                sip_gateway::gateway::CallRef::from_u128(0xa0 + n as u128),
                Some(autumn.id),
                Some(*contact),
                earlier,
            )
            .await
            .expect("attempt");
        s.record_interaction(
            f.acme.id,
            &crm::model::NewInteraction {
                contact_id: *contact,
                user_id: None,
                attempt_id: Some(call.id),
                kind: "call".into(),
                disposition: Some("no_answer".into()),
                notes: Some("private to Autumn".into()),
            },
            earlier,
        )
        .await
        .expect("interaction");
    }
    let campaign =
        f.t.start_campaign(
            &f.acme,
            list.id,
            "Spring",
            DialMode::Progressive,
            None,
            ("sue", &f.sup_pw),
        )
        .await;
    let t = &f.t;
    let al = t.login("al", &f.agent_pw).await;
    let edit = |id: ContactId| {
        al.patch(t.url(&format!("/api/contacts/{id}")))
            .json(&json!({ "version": 1, "postal_address": "3 Mill Lane, Leeds LS1 1AA" }))
    };
    assert_eq!(send(edit(contacts[0])).await.0, 403, "no call yet");

    f.connect_audio().await;
    let mut ws = f.open_desk().await;
    assert_eq!(wait_for(&mut ws, "welcome").await["version"], 1);
    say(
        &mut ws,
        json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut ws, "call").await;
    let on_call = ContactId(card["contact"]["id"].as_i64().expect("the card's contact"));
    // The card carries the version to edit with and the recent timeline:
    // this call, and nothing of the Autumn campaign al does not work.
    assert_eq!(card["contact"]["version"], 1);
    assert_eq!(card["contact"]["history"], json!([]));
    let recent = card["contact"]["timeline"].as_array().expect("a timeline");
    assert_eq!(recent.len(), 1, "{recent:?}");
    assert_eq!(recent[0]["kind"], "call");
    assert_eq!(recent[0]["campaign_id"], campaign.id.0);
    assert_eq!(recent[0]["outcome"], Value::Null, "still going");
    let other = *contacts
        .iter()
        .find(|c| **c != on_call)
        .expect("two contacts");
    let (status, edited) = send(edit(on_call)).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["postal_address"], "3 Mill Lane, Leeds LS1 1AA");
    assert_eq!(
        send(edit(other)).await.0,
        403,
        "another lead of the campaign, not on the call"
    );
    let stored = s.contact(f.acme.id, on_call).await.expect("contact");
    assert_eq!(stored.version, 2);
    let sup = t.login("sue", &f.sup_pw).await;
    let (_, found) = send(sup.get(t.url("/api/contacts?q=LS1 1AA"))).await;
    assert_eq!(
        found["contacts"][0]["id"], on_call.0,
        "the change is saved at once"
    );
    drop(ws);
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

/// `dialcrm contact search` and `contact edit`, as an operator runs them.
#[tokio::test]
async fn contacts_are_found_and_edited_from_the_command_line_on_sqlite() {
    contact_cli(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn contacts_are_found_and_edited_from_the_command_line_on_postgres() {
    contact_cli(crm::testing::TestBackend::Postgres).await;
}

async fn contact_cli(backend: crm::testing::TestBackend) {
    let Some(db) = crm::testing::TestDb::new(backend).await else {
        return;
    };
    let s = &db.store;
    let now = Utc::now();
    let acme = s.create_account("acme", 1, now).await.expect("account");
    let ada = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                phone_e164: "+447400100123".into(),
                phone_raw: "07400 100123".into(),
                email: Some("ada@example.org".into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    let cli = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialcrm"));
        c.args(args)
            .args(["--database-url", &db.url])
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
    let (ok, out, err) = cli(&["contact", "search", "--account", "acme", "(07400) 100 123"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&ada.id.to_string()) && out.contains("Ada Lovelace"),
        "{out}"
    );
    assert!(err.contains("matched by number"), "{err}");
    let (ok, out, _) = cli(&["contact", "search", "--account", "acme", "nobody"]).await;
    assert!(ok);
    assert!(!out.contains("Lovelace"), "{out}");

    let id = ada.id.to_string();
    let (ok, out, err) = cli(&[
        "contact",
        "edit",
        "--account",
        "acme",
        "--id",
        &id,
        "--set",
        "last_name=King",
        "--set",
        "email=",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("last_name, email") && out.contains("version 2"),
        "{out}"
    );
    let stored = s.contact(acme.id, ada.id).await.expect("contact");
    assert_eq!(
        (
            stored.fields.last_name.as_str(),
            stored.fields.email.clone(),
            stored.version
        ),
        ("King", None, 2)
    );

    let (ok, _, err) = cli(&[
        "contact",
        "edit",
        "--account",
        "acme",
        "--id",
        &id,
        "--version",
        "1",
        "--set",
        "last_name=Byron",
    ])
    .await;
    assert!(!ok, "a stale version is refused");
    assert!(err.contains("version 2"), "{err}");
    let (ok, _, err) = cli(&[
        "contact",
        "edit",
        "--account",
        "acme",
        "--id",
        &id,
        "--set",
        "shoe_size=9",
    ])
    .await;
    assert!(!ok);
    assert!(err.contains("unknown field"), "{err}");
    assert_eq!(
        s.contact(acme.id, ada.id)
            .await
            .expect("contact")
            .fields
            .last_name,
        "King"
    );

    let log = s.audit_entries(acme.id, 10).await.expect("audit");
    let edit = log
        .iter()
        .find(|e| e.action == "contact.edit")
        .expect("audited");
    assert_eq!(edit.user_agent.as_deref(), Some("dialcrm-cli"));
    assert_eq!(edit.detail.as_deref(), Some("fields=last_name,email"));
    db.finish().await;
}
