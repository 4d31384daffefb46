//! Call scripts end to end: supervisors write and preview them over HTTP
//! (agents may not; another account's campaign is a 404), the desk sends
//! the script rendered with the `call` message, and the agent's page in
//! Chromium shows a CSV-imported hostile contact's values as plain text.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use crm::fields::{FieldKind, NewField};
use crm::model::{Account, Actor, Role};
use crm::store::campaign_settings::DialMode;
use serde_json::{json, Value};

use crate::desk::{agent_floor, say, wait_for, AgentFloor};
use crate::helpers::{client, on_both_backends, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{
    landed_on_agent_page, peers_or_skip, until, with_ids, write_tone, ONE_AT_A_TIME,
};

on_both_backends!(call_scripts_are_edited_and_previewed_by_supervisors_only);

/// Contacts as a hostile CSV file brings them in: markup, script syntax,
/// template syntax, URLs and spreadsheet formulas in names and a field.
const HOSTILE_CSV: &str = "first_name,last_name,phone,time_zone,plan\n\
    \"<script>window.pwned=1</script>\",\"<img src=x onerror=\"\"window.pwned=2\"\">\",\
    +442079460101,Europe/London,\"=cmd|' /C calc'!A0\"\n";
const FIRST: &str = "<script>window.pwned=1</script>";
const LAST: &str = "<img src=x onerror=\"window.pwned=2\">";
const PLAN: &str = "=cmd|' /C calc'!A0";

/// The script every test saves: formatting around each merge field.
fn script_body() -> Value {
    json!({ "sections": [
        { "title": "Opening", "body": "Hello **{first_name} {last_name}**, this is {agent} \
            from *{campaign}*.\n\n- Your plan: {field.plan}\n- Ask about \\{ braces \\} and 5 * 3" },
        { "title": "Close", "body": "Thank you, {first_name}." }
    ]})
}

/// The account's `plan` field, on the card, and `secret`, off it.
async fn define_fields(t: &TestApp, account: &Account) {
    let actor = Actor {
        account_id: Some(account.id),
        ..Actor::default()
    };
    for (key, on_card) in [("plan", true), ("secret", false)] {
        t.db.store
            .define_field(
                &actor,
                &NewField {
                    key: key.into(),
                    kind: Some(FieldKind::Text),
                    on_card: Some(on_card),
                    ..NewField::default()
                },
                chrono::Utc::now(),
            )
            .await
            .expect("field");
    }
}

/// Imports [`HOSTILE_CSV`] over HTTP into a new list; returns the list's id.
async fn import_hostile(t: &TestApp, sup: &reqwest::Client) -> i64 {
    let r = sup
        .post(t.url("/api/lists"))
        .json(&json!({ "name": "hostile" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    let list = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let r = sup
        .post(t.url(&format!("/api/lists/{list}/import?on_duplicate=skip")))
        .header("content-type", "text/csv")
        .body(HOSTILE_CSV)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
    let job = r.json::<Value>().await.expect("json")["import_id"]
        .as_i64()
        .expect("id");
    for _ in 0..600 {
        let status: Value = sup
            .get(t.url(&format!("/api/imports/{job}")))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        if status["status"] != "running" {
            assert_eq!(status["summary"]["imported"], 1, "{status}");
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import did not finish");
}

/// The text of every span of a rendered script that came from `field`.
fn field_texts(rendered: &Value, field: &str) -> Vec<String> {
    let mut out = Vec::new();
    for section in rendered["sections"].as_array().into_iter().flatten() {
        for block in section["blocks"].as_array().into_iter().flatten() {
            let lines = block.get("lines").or(block.get("items"));
            let spans = lines
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten();
            for span in spans {
                if span["field"] == field {
                    out.push(span["text"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    out
}

async fn call_scripts_are_edited_and_previewed_by_supervisors_only(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let other = t.account("other", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let other_pw = t.user(&other, "otto", Role::Admin).await;
    define_fields(&t, &acme).await;
    let campaign =
        t.db.store
            .create_campaign(acme.id, "Renewals", "+441632960000", chrono::Utc::now())
            .await
            .expect("campaign");
    let path = format!("/api/campaigns/{}/script", campaign.id);
    let preview = format!("{path}/preview");
    let sue = t.login("sue", &sup_pw).await;

    let empty: Value = sue
        .get(t.url(&path))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(empty["sections"], json!([]));
    assert_eq!(empty["updated_at"], Value::Null);

    // Unknown fields are named, all at once, and nothing is saved.
    let bad = json!({ "sections": [{ "title": "T", "body": "{frist_name} {field.tier} {field.secret}" }] });
    let r = sue.put(t.url(&path)).json(&bad).send().await.expect("sent");
    assert_eq!(r.status(), 400);
    let message = r.json::<Value>().await.expect("json")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("{frist_name}, {field.tier}"), "{message}");
    let r = sue
        .post(t.url(&preview))
        .json(&bad)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400, "a draft is checked as a save is");
    let r = sue
        .put(t.url(&path))
        .json(&json!({ "sections": [{ "title": "T", "body": "{field.secret}" }] }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400, "a field off the card is refused");
    let unclosed = json!({ "sections": [{ "title": "T", "body": "ok\nHello {first_name" }] });
    let r = sue
        .put(t.url(&path))
        .json(&unclosed)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);
    let message = r.json::<Value>().await.expect("json")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("section 1 (T), line 2"), "{message}");

    let r = sue
        .put(t.url(&path))
        .json(&script_body())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let saved: Value = r.json().await.expect("json");
    assert_eq!(saved["sections"][1]["title"], "Close");
    assert!(saved["updated_at"].is_string());
    let read: Value = sue
        .get(t.url(&path))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(read, saved);
    let audit = t.db.store.audit_entries(acme.id, 100).await.expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "campaign.script"
            && e.target.as_deref() == Some(&format!("campaign:{}", campaign.id))),
        "the change is audited"
    );

    // A preview with a made-up contact, of the saved script.
    let r = sue
        .post(t.url(&preview))
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let sample: Value = r.json().await.expect("json");
    assert_eq!(sample["sample"], true);
    assert_eq!(field_texts(&sample, "first_name"), ["Alex", "Alex"]);
    assert_eq!(field_texts(&sample, "agent"), ["sue"]);
    assert_eq!(field_texts(&sample, "campaign"), ["Renewals"]);

    // A preview with a contact a hostile CSV import brought in.
    let list = import_hostile(&t, &sue).await;
    let contacts =
        t.db.store
            .list_contacts(acme.id, crm::model::ListId(list), 10, 0)
            .await
            .expect("contacts");
    let contact = contacts[0].id;
    let r = sue
        .post(t.url(&preview))
        .json(&json!({ "contact_id": contact.0 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let hostile: Value = r.json().await.expect("json");
    assert_eq!(hostile["sample"], false);
    assert_eq!(field_texts(&hostile, "first_name"), [FIRST, FIRST]);
    assert_eq!(field_texts(&hostile, "last_name"), [LAST]);
    assert_eq!(field_texts(&hostile, "field.plan"), [PLAN]);
    // The values changed no structure: the same spans as the sample's.
    let structure = |v: &Value| -> Vec<(usize, usize)> {
        v["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["blocks"].as_array().cloned().unwrap_or_default())
            .map(|b| {
                let lines = b
                    .get("lines")
                    .or(b.get("items"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                (
                    lines.len(),
                    lines.iter().map(|l| l.as_array().map_or(0, Vec::len)).sum(),
                )
            })
            .collect()
    };
    assert_eq!(structure(&hostile), structure(&sample));
    let braces: Vec<String> = hostile["sections"][0]["blocks"][1]["items"][1]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        braces.concat(),
        "Ask about { braces } and 5 * 3",
        "escapes read as text"
    );

    // Agents may not read, change or preview scripts.
    let al = t.login("al", &agent_pw).await;
    assert_eq!(t.get_status(&al, &path).await, 403);
    let r = al
        .put(t.url(&path))
        .json(&script_body())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);
    let r = al
        .post(t.url(&preview))
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 403);

    // Another account's admin finds no such campaign, nor its contact.
    let otto = t.login("otto", &other_pw).await;
    assert_eq!(t.get_status(&otto, &path).await, 404);
    let r = otto
        .put(t.url(&path))
        .json(&json!({ "sections": [] }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);
    let r = otto
        .post(t.url(&preview))
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);
    let theirs =
        t.db.store
            .create_campaign(other.id, "Theirs", "+441632960001", chrono::Utc::now())
            .await
            .expect("campaign");
    let r = otto
        .post(t.url(&format!("/api/campaigns/{}/script/preview", theirs.id)))
        .json(&json!({ "contact_id": contact.0 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404, "another account's contact");
    assert_eq!(t.get_status(&client(), &path).await, 401);
    let kept: Value = sue
        .get(t.url(&path))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(kept, saved, "refused requests changed nothing");

    // An empty script removes it.
    let r = sue
        .put(t.url(&path))
        .json(&json!({ "sections": [] }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["sections"],
        json!([])
    );
    t
}

/// Starts a progressive campaign dialling the hostile contact, without a
/// script yet.
async fn hostile_campaign(f: &AgentFloor, mode: DialMode) -> crm::model::Campaign {
    let t = &f.t;
    define_fields(t, &f.acme).await;
    let sue = t.login("sue", &f.sup_pw).await;
    let list = import_hostile(t, &sue).await;
    t.start_campaign(
        &f.acme,
        crm::model::ListId(list),
        "Renewals",
        mode,
        None,
        ("sue", &f.sup_pw),
    )
    .await
}

/// Starts [`hostile_campaign`] with [`script_body`] saved over HTTP.
async fn campaign_with_script(f: &AgentFloor, mode: DialMode) -> crm::model::Campaign {
    let campaign = hostile_campaign(f, mode).await;
    let sue = f.t.login("sue", &f.sup_pw).await;
    let r = sue
        .put(f.t.url(&format!("/api/campaigns/{}/script", campaign.id)))
        .json(&script_body())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    campaign
}

#[tokio::test]
async fn the_desk_sends_the_call_script_with_the_call_on_sqlite() {
    desk_gets_the_script(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn the_desk_sends_the_call_script_with_the_call_on_postgres() {
    desk_gets_the_script(crm::testing::TestBackend::Postgres).await;
}

async fn desk_gets_the_script(backend: crm::testing::TestBackend) {
    let Some(f) = agent_floor(backend, Some(2)).await else {
        return;
    };
    let campaign = campaign_with_script(&f, DialMode::Progressive).await;
    f.connect_audio().await;
    let mut ws = f.open_desk().await;
    assert_eq!(wait_for(&mut ws, "welcome").await["type"], "welcome");
    say(
        &mut ws,
        json!({ "type": "ready", "campaign_id": campaign.id.0 }),
    )
    .await;
    let call = wait_for(&mut ws, "call").await;
    let script = &call["script"];
    assert_eq!(script["sections"][0]["title"], "Opening");
    assert_eq!(field_texts(script, "first_name"), [FIRST, FIRST]);
    assert_eq!(field_texts(script, "last_name"), [LAST]);
    assert_eq!(field_texts(script, "field.plan"), [PLAN]);
    assert_eq!(field_texts(script, "agent"), ["al"]);
    assert_eq!(field_texts(script, "campaign"), ["Renewals"]);
    let opening = &script["sections"][0]["blocks"][0]["lines"][0];
    assert_eq!(
        opening[1],
        json!({ "text": FIRST, "bold": true, "field": "first_name" })
    );
    assert!(call["contact"]["fields"].get("secret").is_none());
    drop(ws);
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// In a preview campaign the script comes with the contact on screen,
/// before anything is dialled, and again with the call.
#[tokio::test]
async fn a_preview_carries_the_call_script() {
    let Some(f) = agent_floor(crm::testing::TestBackend::Sqlite, Some(1)).await else {
        return;
    };
    let campaign = campaign_with_script(&f, DialMode::Preview).await;
    f.connect_audio().await;
    let mut ws = f.open_desk().await;
    wait_for(&mut ws, "welcome").await;
    say(
        &mut ws,
        json!({ "type": "ready", "campaign_id": campaign.id.0 }),
    )
    .await;
    let preview = wait_for(&mut ws, "preview").await;
    assert_eq!(
        field_texts(&preview["script"], "first_name"),
        [FIRST, FIRST]
    );
    assert_eq!(field_texts(&preview["script"], "field.plan"), [PLAN]);
    assert_eq!(
        f.customers.stats().calls,
        0,
        "nothing dialled while previewing"
    );
    say(&mut ws, json!({ "type": "preview_call" })).await;
    let call = wait_for(&mut ws, "call").await;
    assert_eq!(call["script"], preview["script"]);
    drop(ws);
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// The agent's page in Chromium shows the script beside the card, with the
/// hostile values as text: no element came from them, no script ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_shows_the_call_script_as_text_in_chromium() {
    let Some(binary) = peers_or_skip().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(f) = agent_floor(crm::testing::TestBackend::Sqlite, Some(20)).await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dialcrm-script-page-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        page_shows_script(&f, &binary, &dir),
    )
    .await;
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
        .expect("the Chromium test took longer than 90 s")
        .unwrap();
}

async fn page_shows_script(f: &AgentFloor, binary: &Path, dir: &Path) -> Result<()> {
    let campaign = hostile_campaign(f, DialMode::Progressive).await;
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = async {
        write_in_the_editor(&mut cdp, &f.t, &f.sup_pw, campaign.id.0).await?;
        let saved = f.t.db.store.campaign_script(f.acme.id, campaign.id).await?;
        let expected: crm::script::Script = serde_json::from_value(script_body())?;
        assert_eq!(
            saved.sections, expected.sections,
            "the editor saved the script"
        );
        drive(&mut cdp, &f.t, &f.agent_pw, campaign.id.0).await
    }
    .await;
    chromium.stop(&mut cdp).await;
    outcome
}

/// The supervisor writes the script on the Scripts tab: a bad merge field
/// is named, the preview renders with a made-up contact, and it saves.
async fn write_in_the_editor(
    cdp: &mut Cdp,
    t: &TestApp,
    password: &str,
    campaign: i64,
) -> Result<()> {
    let page = cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(password)?
    );
    cdp.evaluate(&page, &login).await?;
    crate::wallboard::landed_on_wallboard(cdp, &page).await?;
    cdp.evaluate(
        &page,
        "(document.querySelector('.tabs [data-tab=scripts]').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        &format!(
            "$('script-campaign').value === '{campaign}' && \
             $('script-sections').children.length === 1 && \
             $('script-status').textContent.includes('no script yet')"
        ),
    )
    .await
    .context("the editor opens on the campaign")?;
    let sections = script_body()["sections"].clone();
    let set = |index: usize, title: &str, body: &str| -> Result<String> {
        Ok(format!(
            "(() => {{ const box = document.querySelectorAll('#script-sections .script-editor-section')[{index}]; \
             box.querySelector('[name=title]').value = {}; box.querySelector('[name=body]').value = {}; \
             return true; }})()",
            serde_json::to_string(title)?,
            serde_json::to_string(body)?
        ))
    };
    cdp.evaluate(&page, &set(0, "Opening", "Hello {frist_name}")?)
        .await?;
    cdp.evaluate(&page, &with_ids("($('script-save').click(), true)"))
        .await?;
    until(
        cdp,
        &page,
        "$('script-status').textContent.includes('unknown merge fields: {frist_name}')",
    )
    .await
    .context("the unknown field is named")?;
    let opening = sections[0]["body"].as_str().unwrap_or_default();
    let close = sections[1]["body"].as_str().unwrap_or_default();
    cdp.evaluate(&page, &set(0, "Opening", opening)?).await?;
    cdp.evaluate(&page, &with_ids("($('script-add').click(), true)"))
        .await?;
    cdp.evaluate(&page, &set(1, "Close", close)?).await?;
    cdp.evaluate(
        &page,
        &with_ids("($('script-preview-button').click(), true)"),
    )
    .await?;
    until(
        cdp,
        &page,
        "$('script-preview').textContent.includes('Hello Alex Sample, this is sue from Renewals.') && \
         $('script-preview').querySelectorAll('li').length === 2 && \
         $('script-status').textContent.includes('made-up contact')",
    )
    .await
    .context("the preview renders the draft")?;
    cdp.evaluate(&page, &with_ids("($('script-save').click(), true)"))
        .await?;
    until(cdp, &page, "$('script-status').textContent === 'Saved.'")
        .await
        .context("the script is saved")?;
    Ok(())
}

async fn drive(cdp: &mut Cdp, t: &TestApp, password: &str, campaign: i64) -> Result<()> {
    let page = cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'al'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(password)?
    );
    cdp.evaluate(&page, &login).await?;
    landed_on_agent_page(cdp, &page).await?;
    until(cdp, &page, "$('audio').dataset.state === 'live'").await?;
    until(
        cdp,
        &page,
        &format!("[...$('campaign').options].some((o) => o.value === '{campaign}')"),
    )
    .await?;
    cdp.evaluate(
        &page,
        &with_ids(&format!(
            "($('campaign').value = '{campaign}', $('ready').click(), true)"
        )),
    )
    .await?;
    until(cdp, &page, "$('state').dataset.state === 'in_call'").await?;
    until(cdp, &page, "!$('script-panel').hidden").await?;
    let seen = cdp
        .evaluate(
            &page,
            &with_ids(
                "JSON.stringify({ \
                   text: $('script').textContent, \
                   elements: $('script').querySelectorAll('script, img, svg, iframe, a').length, \
                   bold: [...$('script').querySelectorAll('strong')].map((e) => e.textContent).join(''), \
                   fields: [...$('script').querySelectorAll('.merge')].map((e) => [e.dataset.field, e.textContent]), \
                   pwned: window.pwned === undefined ? null : window.pwned, \
                   beside: !$('contact').hidden })",
            ),
        )
        .await?;
    let seen: Value = serde_json::from_str(seen.as_str().context("a JSON string")?)?;
    assert_eq!(seen["elements"], 0, "no element came from a value: {seen}");
    assert_eq!(seen["pwned"], Value::Null, "no value ran as script: {seen}");
    assert_eq!(seen["beside"], true, "the card is shown too");
    let text = seen["text"].as_str().unwrap_or_default();
    for value in [FIRST, LAST, PLAN, "Opening", "Thank you, "] {
        assert!(
            text.contains(value),
            "{value:?} in the script's text: {text}"
        );
    }
    assert_eq!(
        seen["bold"],
        format!("{FIRST} {LAST}"),
        "bold as the script says"
    );
    assert_eq!(seen["fields"][0], json!(["first_name", FIRST]));
    assert_eq!(seen["fields"][2], json!(["agent", "al"]));
    cdp.evaluate(&page, &with_ids("($('hangup').click(), true)"))
        .await?;
    until(cdp, &page, "!$('wrapup-panel').hidden").await?;
    Ok(())
}
