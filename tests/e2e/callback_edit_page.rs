//! The agent page's callback list in a real headless Chromium, between
//! calls: the agent opens the contact of one of their callbacks with the
//! keyboard, corrects it and saves with Ctrl+Enter; the contact is at the
//! next version, the audit names the agent and the fields only, and the
//! list shows the new name. A save that a supervisor's change beat is
//! refused and the contact offered anew; Escape never drops what was typed.
//! A callback whose campaign the agent no longer works is refused them, on
//! the page and over the API. Hostile values stay text throughout.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::TimeDelta;
use crm::model::{ContactId, Role};
use crm::testing::TestBackend;
use serde_json::{json, Value};

use crate::card_edit_page::{press, CTRL};
use crate::helpers::{run_then_stop, spawn_app, NowUtc, Scratch, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{landed_on_agent_page, with_ids, write_tone, ONE_AT_A_TIME};

/// A value that would become an element, and run, if it were read as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_edits_the_contact_of_a_callback_in_chromium_on_sqlite() {
    callback_edit_page(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_edits_the_contact_of_a_callback_in_chromium_on_postgres() {
    callback_edit_page(TestBackend::Postgres).await;
}

async fn callback_edit_page(backend: TestBackend) {
    let Some(binary) = crate::softphone::chromium_or_skip("the callback edit page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(t) = spawn_app(backend, false).await else {
        return;
    };
    let dir = Scratch::new(&format!("callback-edit-{backend:?}"));
    let limit = Duration::from_secs(120);
    run_then_stop(t, "the callback edit page test", limit, async |t| {
        manage(t, &binary, dir.path()).await
    })
    .await;
}

/// The account's people, and the contacts of al's callbacks.
struct Book {
    agent: i64,
    agent_pw: String,
    sue: reqwest::Client,
    ann: reqwest::Client,
    grace: i64,
    hedy: i64,
}

async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Grace, with a callback booked for al in a campaign he works; Hedy, with
/// one booked for him in a campaign he no longer works; Ivy, with one
/// booked for bo.
async fn book(t: &TestApp) -> Result<Book> {
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let acme = t.account("acme", 5).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    t.user(&acme, "bo", Role::Agent).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let ann_pw = t.user(&acme, "ann", Role::Admin).await;
    let al = s.credentials("al").await?.context("al")?.0.id;
    let bo = s.credentials("bo").await?.context("bo")?.0.id;
    let sue = t.login("sue", &sup_pw).await;
    let ann = t.login("ann", &ann_pw).await;
    for field in [
        json!({ "key": "plan", "kind": "choice", "label": "Plan", "choices": ["Bronze", "Gold"], "required": true }),
        json!({ "key": "remark", "kind": "text", "label": HOSTILE }),
        json!({ "key": "credit", "kind": "text", "label": "Credit note", "on_card": false }),
    ] {
        let (status, body) = send(ann.post(t.url("/api/account/fields")).json(&field)).await?;
        anyhow::ensure!(status == 201, "{field} -> {status} {body}");
    }
    let mine = s.create_list(acme.id, "Mine", "GB", now).await?;
    let former = s.create_list(acme.id, "Former", "GB", now).await?;
    let mut ids = Vec::new();
    for (body, list) in [
        (
            json!({ "first_name": "Grace", "last_name": "Hopper", "phone": "+447400200001",
                    "profession": HOSTILE, "fields": { "plan": "Gold", "remark": HOSTILE, "credit": "kept" } }),
            mine.id,
        ),
        (
            json!({ "first_name": "Hedy", "last_name": "Lamarr", "phone": "+447400200002",
                    "fields": { "plan": "Gold" } }),
            former.id,
        ),
        (
            json!({ "first_name": "Ivy", "phone": "+447400200003", "fields": { "plan": "Gold" } }),
            mine.id,
        ),
    ] {
        let mut body = body;
        body["list_id"] = json!(list);
        let (status, c) = send(sue.post(t.url("/api/contacts")).json(&body)).await?;
        anyhow::ensure!(status == 201, "{body} -> {status} {c}");
        ids.push(ContactId(c["id"].as_i64().context("an id")?));
    }
    let works = s
        .create_campaign(acme.id, "Works", "+441632960000", now)
        .await?;
    let worked = s
        .create_campaign(acme.id, "Worked", "+441632960000", now)
        .await?;
    s.attach_list(acme.id, works.id, mine.id, 0).await?;
    s.attach_list(acme.id, worked.id, former.id, 0).await?;
    s.assign_agents(acme.id, works.id, &[al, bo]).await?;
    for campaign in [works.id, worked.id] {
        s.sync_leads(acme.id, campaign, now).await?;
    }
    for (campaign, contact, agent, hours) in [
        (works.id, ids[0], al, 2),
        (worked.id, ids[1], al, 3),
        (works.id, ids[2], bo, 4),
    ] {
        let lead = s.lead_for_contact(acme.id, campaign, contact).await?;
        s.schedule_callback(
            acme.id,
            lead.id,
            now + TimeDelta::hours(hours),
            Some(agent),
            now,
        )
        .await?;
    }
    Ok(Book {
        agent: al.0,
        agent_pw,
        sue,
        ann,
        grace: ids[0].0,
        hedy: ids[1].0,
    })
}

async fn manage(t: &TestApp, binary: &Path, dir: &Path) -> Result<()> {
    let b = book(t).await?;
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, t, &b).await;
    chromium.stop(&mut cdp).await;
    outcome
}

async fn drive(cdp: &mut Cdp, t: &TestApp, b: &Book) -> Result<()> {
    let page = cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'al'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(&b.agent_pw)?
    );
    cdp.evaluate(&page, &login).await?;
    landed_on_agent_page(cdp, &page).await?;
    // Key presses go to the page that has the focus.
    cdp.call(Some(&page), "Page.bringToFront", json!({}))
        .await?;
    cdp.call(
        Some(&page),
        "Emulation.setFocusEmulationEnabled",
        json!({ "enabled": true }),
    )
    .await?;
    eval(
        cdp,
        &page,
        "(window.alert = (m) => { window.pwned = String(m); }, window.stillHere = true, true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "document.querySelectorAll('#callbacks li button').length === 2",
    )
    .await
    .context("al's two callbacks are listed, each with its Edit")?;
    let labels = eval_json(
        cdp,
        &page,
        "JSON.stringify([...document.querySelectorAll('#callbacks li button')]\
           .map((b) => b.getAttribute('aria-label')))",
    )
    .await?;
    assert_eq!(
        labels,
        json!([
            "Edit the contact Grace Hopper",
            "Edit the contact Hedy Lamarr"
        ]),
        "bo's callback is not al's"
    );

    edit_and_save(cdp, &page, t, b).await?;
    conflict_and_escape(cdp, &page, t, b).await?;
    outside_his_campaigns(cdp, &page, t, b).await?;

    let safe = eval_json(
        cdp,
        &page,
        "JSON.stringify({ elements: $('callbacks-panel').querySelectorAll('img, script, iframe, svg, object').length, \
           images: document.images.length, \
           pwned: window.pwned === undefined ? null : window.pwned, \
           stillHere: window.stillHere === true })",
    )
    .await?;
    assert_eq!(
        safe,
        json!({ "elements": 0, "images": 0, "pwned": null, "stillHere": true }),
        "no value became an element or ran, and the page was never reloaded"
    );
    Ok(())
}

/// Enter on Grace's Edit opens her contact; a correction saved with
/// Ctrl+Enter reaches the contact, the audit and the list.
async fn edit_and_save(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    let edit = format!("#callbacks button[data-contact-id=\"{}\"]", b.grace);
    eval(
        cdp,
        page,
        &format!("(document.querySelector({}).focus(), true)", js(&edit)),
    )
    .await?;
    press(cdp, page, "Enter", 0).await?;
    until(
        cdp,
        page,
        "!$('callback-form').hidden && document.activeElement === $('callback-form').first_name && \
         $('callback-form-title').textContent === 'Edit Grace Hopper'",
    )
    .await
    .context("Enter opens the contact of the callback")?;
    let form = eval_json(
        cdp,
        page,
        "JSON.stringify({ \
           values: Object.fromEntries([...$('callback-form').elements].filter((e) => e.name)\
             .map((e) => [e.name, e.value])), \
           remarkLabel: $('callback-form').elements.namedItem('field.remark').parentElement.firstChild.textContent })",
    )
    .await?;
    let values = &form["values"];
    assert_eq!(values["first_name"], "Grace", "{form}");
    assert_eq!(values["last_name"], "Hopper");
    assert_eq!(values["phone"], "+447400200001");
    assert_eq!(values["profession"], HOSTILE);
    assert_eq!(values["field.plan"], "Gold");
    assert_eq!(values["field.remark"], HOSTILE);
    assert!(values.get("field.credit").is_none(), "off the card: {form}");
    assert_eq!(form["remarkLabel"], format!("{HOSTILE} "));

    eval(
        cdp,
        page,
        "(() => { const f = $('callback-form'); f.last_name.value = 'Hopper-Murray'; \
         f.elements.namedItem('field.plan').value = 'Bronze'; f.last_name.focus(); \
         return document.activeElement === f.last_name; })()",
    )
    .await?;
    press(cdp, page, "Enter", CTRL).await?;
    until(
        cdp,
        page,
        &format!(
            "$('callback-status').textContent === 'Saved Grace Hopper-Murray (last name, Plan).' && \
             $('callback-form').hidden && \
             document.activeElement === document.querySelector({edit}) && \
             document.querySelector({edit}).parentElement.textContent.includes('Grace Hopper-Murray')",
            edit = js(&edit)
        ),
    )
    .await
    .context("Ctrl+Enter saves, and the list shows the new name with the focus kept")?;
    let path = format!("/api/contacts/{}", b.grace);
    let (_, saved) = send(b.sue.get(t.url(&path))).await?;
    assert_eq!(saved["version"], 2, "{saved}");
    assert_eq!(saved["last_name"], "Hopper-Murray");
    assert_eq!(saved["fields"]["plan"], "Bronze");
    assert_eq!(
        saved["fields"]["credit"], "kept",
        "a field off the card is kept"
    );
    let (_, log) = send(b.ann.get(t.url("/api/audit?action=contact.edit"))).await?;
    let entries = log.as_array().context("entries")?;
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["user_id"], b.agent, "{log}");
    assert_eq!(entries[0]["target"], format!("contact:{}", b.grace));
    assert_eq!(entries[0]["detail"], "fields=last_name,field.plan");
    Ok(())
}

/// A supervisor's change beats the agent's save, which is refused and the
/// contact offered anew; Escape keeps what was typed, Cancel drops it.
async fn conflict_and_escape(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    let edit = format!("#callbacks button[data-contact-id=\"{}\"]", b.grace);
    press(cdp, page, "Enter", 0).await?;
    until(cdp, page, "!$('callback-form').hidden").await?;
    eval(
        cdp,
        page,
        "($('callback-form').first_name.value = 'Amazing Grace', true)",
    )
    .await?;
    let path = format!("/api/contacts/{}", b.grace);
    let (status, theirs) = send(
        b.sue
            .patch(t.url(&path))
            .json(&json!({ "version": 2, "profession": "Rear admiral" })),
    )
    .await?;
    assert_eq!(status, 200, "{theirs}");
    eval(cdp, page, "($('callback-save').click(), true)").await?;
    until(
        cdp,
        page,
        "!$('callback-conflict').hidden && $('callback-conflict-text').textContent.startsWith(\
           'Someone else changed this contact since you opened the form (you read version 2; \
it is now at version 3). Your changes were not saved.') && \
         document.activeElement === $('callback-conflict-reload') && \
         $('callback-form').first_name.value === 'Amazing Grace'",
    )
    .await
    .context("the stale save is refused and the reload offered")?;
    let (_, kept) = send(b.sue.get(t.url(&path))).await?;
    assert_eq!(
        (&kept["first_name"], &kept["profession"], &kept["version"]),
        (&json!("Grace"), &json!("Rear admiral"), &json!(3)),
        "nothing was overwritten: {kept}"
    );
    press(cdp, page, "Enter", 0).await?;
    until(
        cdp,
        page,
        "$('callback-conflict').hidden && !$('callback-form').hidden && \
         $('callback-form').first_name.value === 'Grace' && \
         $('callback-form').profession.value === 'Rear admiral' && \
         $('callback-form-status').textContent.startsWith('The form shows the contact as it is now (version 3)') && \
         document.activeElement === $('callback-form').first_name",
    )
    .await
    .context("the reload shows their change")?;

    // Escape with something typed keeps it; Cancel drops it.
    eval(
        cdp,
        page,
        "($('callback-form').first_name.value = 'Grace B.', true)",
    )
    .await?;
    press(cdp, page, "Escape", 0).await?;
    until(
        cdp,
        page,
        "!$('callback-form').hidden && $('callback-form').first_name.value === 'Grace B.' && \
         $('callback-form-status').textContent === 'Save your changes, or press Cancel to drop them.'",
    )
    .await
    .context("Escape keeps what was typed")?;
    eval(cdp, page, "($('callback-cancel').click(), true)").await?;
    until(
        cdp,
        page,
        &format!(
            "$('callback-form').hidden && document.activeElement === document.querySelector({})",
            js(&edit)
        ),
    )
    .await
    .context("Cancel closes the form, back on the callback")?;
    let (_, kept) = send(b.sue.get(t.url(&path))).await?;
    assert_eq!(kept["first_name"], "Grace", "nothing typed was saved");
    assert_eq!(kept["version"], 3);
    Ok(())
}

/// Hedy's callback is in a campaign al no longer works: the page says so
/// and opens nothing, and the API refuses him as for any stranger.
async fn outside_his_campaigns(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    eval(
        cdp,
        page,
        &format!(
            "(document.querySelector('#callbacks button[data-contact-id=\"{}\"]').click(), true)",
            b.hedy
        ),
    )
    .await?;
    until(
        cdp,
        page,
        "$('callback-status').classList.contains('error') && \
         $('callback-status').textContent === 'Hedy Lamarr is not in your campaigns any more: \
ask a supervisor to correct it.' && $('callback-form').hidden",
    )
    .await
    .context("a callback outside his campaigns is refused")?;
    let al = t.login("al", &b.agent_pw).await;
    let (status, _) = send(
        al.patch(t.url(&format!("/api/contacts/{}", b.hedy)))
            .json(&json!({ "version": 1, "last_name": "Markey" })),
    )
    .await?;
    assert_eq!(status, 404, "as if it did not exist");
    Ok(())
}

/// A string as a JavaScript literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// Resolves once `condition` holds in the page; on failure, says what the
/// callbacks panel showed.
async fn until(cdp: &mut Cdp, page: &str, condition: &str) -> Result<()> {
    if let Err(e) = crate::softphone::until(cdp, page, condition).await {
        let shown = eval(
            cdp,
            page,
            "JSON.stringify({ status: $('status').textContent, \
               callbacks: $('callbacks').textContent, \
               said: $('callback-status').textContent, \
               form: $('callback-form-status').textContent, \
               formHidden: $('callback-form').hidden, \
               conflict: $('callback-conflict-text').textContent, \
               focus: document.activeElement && (document.activeElement.id || \
                 document.activeElement.name || document.activeElement.getAttribute('aria-label')) })",
        )
        .await
        .unwrap_or_default();
        return Err(e.context(format!("the page showed {shown}")));
    }
    Ok(())
}

async fn eval(cdp: &mut Cdp, page: &str, expression: &str) -> Result<Value> {
    cdp.evaluate(page, &with_ids(expression)).await
}

/// Evaluates an expression that returns `JSON.stringify(…)`, and parses it.
async fn eval_json(cdp: &mut Cdp, page: &str, expression: &str) -> Result<Value> {
    let text = eval(cdp, page, expression).await?;
    Ok(serde_json::from_str(
        text.as_str().context("a JSON string")?,
    )?)
}
