//! The supervisor page's Contacts tab in a real headless Chromium: a
//! supervisor finds a contact by its number written nationally with spaces
//! (pressing Enter), pages and sorts the results, reaches a contact with
//! Tab and opens it with Enter, reads its account fields, lists and
//! timeline, corrects it, is told when a save is stale (and is never let
//! overwrite the other change), and creates a contact with the API's errors
//! shown beside the form. Hostile values stay text throughout. While an
//! agent on a call corrects the caller's contact, the supervisor's open
//! view shows the change without the page being reloaded.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::TimeDelta;
use crm::model::{AccountId, ContactFields, NewInteraction, Role};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::gateway::CallRef;

use crate::desk::{agent_floor, say, wait_for, AgentFloor};
use crate::dialler::DAY_ZONE;
use crate::helpers::{NowUtc, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{with_ids, write_tone, ONE_AT_A_TIME};
use crate::wallboard::landed_on_wallboard;

/// A value that would become an element, and run, if it were read as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_finds_edits_and_creates_contacts_in_chromium_on_sqlite() {
    contacts_page(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_finds_edits_and_creates_contacts_in_chromium_on_postgres() {
    contacts_page(TestBackend::Postgres).await;
}

async fn contacts_page(backend: TestBackend) {
    let Some(binary) = crate::softphone::chromium_or_skip("the contacts page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(f) = agent_floor(backend, None).await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "dialcrm-contacts-page-{backend:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let outcome = tokio::time::timeout(Duration::from_secs(120), manage(&f, &binary, &dir)).await;
    let AgentFloor { t, .. } = f;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
        .expect("the contacts page test took longer than 120 s")
        .unwrap();
}

/// What the account holds before the supervisor opens the tab.
struct Book {
    account: AccountId,
    sue: reqwest::Client,
    ann: reqwest::Client,
    ada: i64,
    spring: i64,
    calls_campaign: i64,
}

async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// The account's fields, Ada with a call, a disposition, a callback and
/// values in every field, Charles, a contact made of hostile values, eleven
/// Smiths to page through, and Philippa, the one lead of a running campaign.
async fn book(f: &AgentFloor) -> Result<Book> {
    let t = &f.t;
    let s = &t.db.store;
    let acme = &f.acme;
    let now = t.clock.now_utc();
    let ann_pw = t.user(acme, "ann", Role::Admin).await;
    let ann = t.login("ann", &ann_pw).await;
    let sue = t.login("sue", &f.sup_pw).await;
    for field in [
        json!({ "key": "plan", "kind": "choice", "label": "Plan", "choices": ["Bronze", "Gold"], "required": true }),
        json!({ "key": "renewal", "kind": "date", "label": "Renewal" }),
        json!({ "key": "opt_in", "kind": "yes_no", "label": "Opted in" }),
        json!({ "key": "seats", "kind": "number", "label": "Seats" }),
        json!({ "key": "remark", "kind": "text", "label": HOSTILE }),
    ] {
        let (status, body) = send(ann.post(t.url("/api/account/fields")).json(&field)).await?;
        anyhow::ensure!(status == 201, "{field} -> {status} {body}");
    }
    let spring = s.create_list(acme.id, "Spring", "GB", now).await?;
    let odd = s.create_list(acme.id, HOSTILE, "GB", now).await?;
    let create = |body: Value| sue.post(t.url("/api/contacts")).json(&body);
    let (status, ada) = send(create(json!({
        "first_name": "Ada", "last_name": "Lovelace", "phone": "+447400100123",
        "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
        "list_id": spring.id,
        "fields": { "plan": "Gold", "renewal": "2027-03-31", "opt_in": true, "seats": 12 }
    })))
    .await?;
    anyhow::ensure!(status == 201, "{ada}");
    let ada_id = ada["id"].as_i64().context("Ada's id")?;
    let (status, body) = send(create(json!({
        "first_name": "Charles", "last_name": "Babbage", "phone": "+447400100456",
        "fields": { "plan": "Bronze" }
    })))
    .await?;
    anyhow::ensure!(status == 201, "{body}");
    let (status, body) = send(create(json!({
        "first_name": HOSTILE, "last_name": "Tables", "phone": "+447400100555",
        "postal_address": HOSTILE, "profession": HOSTILE, "list_id": odd.id,
        "custom_fields": { HOSTILE: HOSTILE },
        "fields": { "plan": "Gold", "remark": HOSTILE }
    })))
    .await?;
    anyhow::ensure!(status == 201, "{body}");
    for i in 0..11 {
        let phone = format!("+4474001002{i:02}");
        s.create_contact(
            acme.id,
            &ContactFields {
                first_name: format!("Sam{i:02}"),
                last_name: "Smith".into(),
                phone_e164: phone.clone(),
                phone_raw: phone,
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await?;
    }

    // Ada's history in a campaign that is not running: a call al answered
    // for two minutes with a sale, and a callback booked for al.
    let autumn = s
        .create_campaign(acme.id, "Autumn", "+441632960000", now)
        .await?;
    s.attach_list(acme.id, autumn.id, spring.id, 0).await?;
    s.sync_leads(acme.id, autumn.id, now).await?;
    let ada_contact = crm::model::ContactId(ada_id);
    let called = now - TimeDelta::days(1);
    let attempt = s
        .create_attempt(
            acme.id,
            CallRef::random(),
            Some(autumn.id),
            Some(ada_contact),
            called,
        )
        .await?;
    s.mark_answered(acme.id, attempt.id, called + TimeDelta::seconds(5))
        .await?;
    s.mark_ended(
        acme.id,
        attempt.id,
        "answered",
        called + TimeDelta::seconds(125),
    )
    .await?;
    s.record_interaction(
        acme.id,
        &NewInteraction {
            contact_id: ada_contact,
            user_id: Some(f.agent.id),
            attempt_id: Some(attempt.id),
            kind: "call".into(),
            disposition: Some("sale".into()),
            notes: Some("Wants the gold plan".into()),
        },
        called + TimeDelta::seconds(130),
    )
    .await?;
    let lead = s.lead_for_contact(acme.id, autumn.id, ada_contact).await?;
    s.schedule_callback(
        acme.id,
        lead.id,
        now + TimeDelta::hours(2),
        Some(f.agent.id),
        now,
    )
    .await?;

    // Philippa is the only lead of the campaign al takes calls in.
    let calls = s.create_list(acme.id, "Calls", "GB", now).await?;
    let philippa = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Philippa".into(),
                last_name: "Oddington".into(),
                phone_e164: "+447700900777".into(),
                phone_raw: "+447700900777".into(),
                time_zone: Some(DAY_ZONE.into()),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await?;
    s.add_to_list(acme.id, calls.id, philippa.id, now).await?;
    let campaign = t
        .start_campaign(
            acme,
            calls.id,
            "Calls",
            DialMode::Progressive,
            None,
            ("sue", &f.sup_pw),
        )
        .await;
    Ok(Book {
        account: acme.id,
        sue,
        ann,
        ada: ada_id,
        spring: spring.id.0,
        calls_campaign: campaign.id.0,
    })
}

async fn manage(f: &AgentFloor, binary: &Path, dir: &Path) -> Result<()> {
    let b = book(f).await?;
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, f, &b).await;
    chromium.stop(&mut cdp).await;
    outcome
}

async fn drive(cdp: &mut Cdp, f: &AgentFloor, b: &Book) -> Result<()> {
    let t = &f.t;
    let page = cdp.open_page(&t.url("/login")).await?;
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(&f.sup_pw)?
    );
    cdp.evaluate(&page, &login).await?;
    landed_on_wallboard(cdp, &page).await?;
    // Key presses go to the page that has the focus.
    cdp.call(Some(&page), "Page.bringToFront", json!({}))
        .await?;
    cdp.call(
        Some(&page),
        "Emulation.setFocusEmulationEnabled",
        json!({ "enabled": true }),
    )
    .await?;
    // The page's policy forbids inline handlers, so an injected element's
    // onerror would not run either way; what must not exist is the element.
    eval(
        cdp,
        &page,
        "(window.alert = (m) => { window.pwned = String(m); }, window.stillHere = true, true)",
    )
    .await?;
    eval(
        cdp,
        &page,
        "(document.querySelector('.tabs [data-tab=contacts]').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "!$('tab-contacts').hidden && $('tab-floor').hidden && \
         $('contact-matched').textContent === 'Every contact.' && \
         document.querySelectorAll('#contact-results tbody tr').length === 15 && \
         $('contact-new').elements.namedItem('list_id').options.length === 4 && \
         !$('contact-new-fields').hidden",
    )
    .await
    .context("the tab opens on every contact")?;

    search_page_and_sort(cdp, &page).await?;
    open_with_the_keyboard(cdp, &page, b).await?;
    edit_and_conflict(cdp, &page, t, b).await?;
    create(cdp, &page, t, b).await?;
    hostile_values(cdp, &page).await?;
    edit_during_a_call(cdp, &page, f, b).await?;
    Ok(())
}

async fn search_page_and_sort(cdp: &mut Cdp, page: &str) -> Result<()> {
    // Eleven Smiths, ten a page.
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-search'); f.q.value = 'smith'; f.per_page.value = '10'; \
         f.requestSubmit(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-matched').textContent === 'Read as names.' && \
         document.querySelectorAll('#contact-results tbody tr').length === 10 && \
         !$('contact-next').disabled && $('contact-prev').disabled && \
         $('contact-page').textContent === 'Page 1'",
    )
    .await
    .context("the first page of Smiths")?;
    assert_eq!(first_row(cdp, page).await?, "Sam00 Smith");
    eval(cdp, page, "($('contact-next').click(), true)").await?;
    until(
        cdp,
        page,
        "document.querySelectorAll('#contact-results tbody tr').length === 1 && \
         $('contact-next').disabled && !$('contact-prev').disabled && \
         $('contact-page').textContent === 'Page 2'",
    )
    .await
    .context("the second page")?;
    assert_eq!(first_row(cdp, page).await?, "Sam10 Smith");
    // Sorting by name the other way starts again from the first page.
    eval(
        cdp,
        page,
        "(document.querySelector('#contact-results button[data-sort=name]').click(), true)",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-page').textContent === 'Page 1' && \
         document.querySelector('#contact-results tbody td')?.textContent === 'Sam10 Smith' && \
         document.querySelector('#contact-results button[data-sort=name]').parentElement\
           .getAttribute('aria-sort') === 'descending'",
    )
    .await
    .context("sorted by name, descending")?;
    eval(
        cdp,
        page,
        "(document.querySelector('#contact-results button[data-sort=name]').click(), true)",
    )
    .await?;
    until(
        cdp,
        page,
        "document.querySelector('#contact-results tbody td')?.textContent === 'Sam00 Smith'",
    )
    .await
    .context("sorted by name again")?;
    Ok(())
}

async fn first_row(cdp: &mut Cdp, page: &str) -> Result<String> {
    Ok(eval(
        cdp,
        page,
        "document.querySelector('#contact-results tbody td').textContent",
    )
    .await?
    .as_str()
    .context("a name")?
    .to_owned())
}

/// Types the number as people write it at home, presses Enter, then Tab
/// until the result's Open button has the focus, and Enter again.
async fn open_with_the_keyboard(cdp: &mut Cdp, page: &str, b: &Book) -> Result<()> {
    eval(
        cdp,
        page,
        "(() => { const q = $('contact-search').q; q.value = '07400 100 123'; q.focus(); \
         return document.activeElement === q; })()",
    )
    .await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        "$('contact-matched').textContent === 'Read as a number.' && \
         document.querySelectorAll('#contact-results tbody tr').length === 1 && \
         document.querySelector('#contact-results tbody td').textContent === 'Ada Lovelace'",
    )
    .await
    .context("the national, spaced number finds Ada")?;
    let row = eval_json(
        cdp,
        page,
        "JSON.stringify([...document.querySelector('#contact-results tbody tr').children]\
           .map((c) => c.textContent))",
    )
    .await?;
    assert_eq!(row[1], "+447400100123", "{row}");
    assert_eq!(row[2], "ada@example.org", "{row}");
    assert_eq!(row[6], "Open", "{row}");
    let mut reached = false;
    for _ in 0..12 {
        press(cdp, page, "Tab").await?;
        let on = eval(
            cdp,
            page,
            "document.activeElement.getAttribute('aria-label')",
        )
        .await?;
        if on == "Open Ada Lovelace" {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the result's Open button");
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        &format!(
            "!$('contact-card').hidden && $('contact-title').textContent === 'Ada Lovelace' && \
             document.activeElement === $('contact-title') && \
             document.querySelectorAll('#contact-timeline li').length === 5 && \
             Number(document.querySelector('#contact-results tbody tr').dataset.contactId) === {}",
            b.ada
        ),
    )
    .await
    .context("Enter opens the contact")?;
    let card = eval_json(
        cdp,
        page,
        "JSON.stringify({ \
           form: Object.fromEntries([...$('contact-form').elements].filter((e) => e.name)\
             .map((e) => [e.name, e.value])), \
           kinds: [...$('contact-account-fields').querySelectorAll('[data-key]')]\
             .map((e) => [e.dataset.key, e.tagName.toLowerCase(), e.type]), \
           lists: [...$('contact-lists').children].map((li) => li.textContent), \
           timeline: [...$('contact-timeline').children].map((li) => [li.dataset.kind, \
             li.querySelector('span').textContent, li.querySelector('.notes')?.textContent ?? null]), \
           meta: $('contact-meta').textContent })",
    )
    .await?;
    let form = &card["form"];
    assert_eq!(form["first_name"], "Ada", "{card}");
    assert_eq!(form["last_name"], "Lovelace");
    assert_eq!(form["phone"], "+447400100123");
    assert_eq!(form["email"], "ada@example.org");
    assert_eq!(form["postal_address"], "12 St James's Sq, London SW1Y 4JH");
    assert_eq!(form["field.plan"], "Gold");
    assert_eq!(form["field.renewal"], "2027-03-31");
    assert_eq!(form["field.opt_in"], "true");
    assert_eq!(form["field.seats"], "12");
    assert_eq!(form["field.remark"], "");
    assert_eq!(
        card["kinds"],
        json!([
            ["plan", "select", "select-one"],
            ["renewal", "input", "date"],
            ["opt_in", "select", "select-one"],
            ["seats", "input", "number"],
            ["remark", "input", "text"]
        ]),
        "each field's input matches its kind"
    );
    assert_eq!(card["lists"], json!(["Spring"]));
    assert!(
        card["meta"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Version 1, "),
        "{card}"
    );
    // Newest first: the callback due in two hours, the creation and the
    // list (both now), the disposition and the call of yesterday.
    let timeline = card["timeline"].as_array().context("entries")?;
    let kinds: Vec<&str> = timeline.iter().filter_map(|e| e[0].as_str()).collect();
    assert_eq!(
        kinds[0], "callback",
        "the callback is due latest: {timeline:?}"
    );
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["interaction", "call"],
        "{timeline:?}"
    );
    let said = |kind: &str| -> Vec<(String, Value)> {
        timeline
            .iter()
            .filter(|e| e[0] == kind)
            .map(|e| (e[1].as_str().unwrap_or_default().to_owned(), e[2].clone()))
            .collect()
    };
    assert_eq!(
        said("call"),
        [(
            "Call · Autumn · answered · agent al · talked 2:00".to_owned(),
            Value::Null
        )]
    );
    assert_eq!(
        said("interaction"),
        [(
            "Disposition: sale by al".to_owned(),
            json!("Wants the gold plan")
        )]
    );
    assert_eq!(
        said("callback"),
        [("Callback due (Autumn) for al".to_owned(), Value::Null)]
    );
    assert_eq!(
        said("added_to_list"),
        [("Added to the list Spring".to_owned(), Value::Null)]
    );
    let created = said("edit");
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(
        created[0]
            .0
            .starts_with("Created by sue: first name, last name, number"),
        "{created:?}"
    );
    assert!(created[0].0.contains("Plan, Renewal, Opted in, Seats"));
    Ok(())
}

async fn edit_and_conflict(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    let path = format!("/api/contacts/{}", b.ada);
    // Change the last name and the plan, and clear the email.
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-form'); f.last_name.value = 'King'; f.email.value = ''; \
         f.elements.namedItem('field.plan').value = 'Bronze'; $('contact-save').click(); \
         return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-form-status').textContent === \
           'Saved (last name, email, Plan): now at version 2.' && \
         $('contact-title').textContent === 'Ada King' && \
         $('contact-meta').textContent.startsWith('Version 2, ')",
    )
    .await
    .context("the change is saved")?;
    let (_, saved) = send(b.sue.get(t.url(&path))).await?;
    assert_eq!(saved["version"], 2, "{saved}");
    assert_eq!(saved["last_name"], "King");
    assert_eq!(saved["email"], Value::Null);
    assert_eq!(saved["fields"]["plan"], "Bronze");
    assert_eq!(saved["fields"]["seats"], 12, "untouched fields are kept");
    assert_eq!(saved["first_name"], "Ada");
    until(
        cdp,
        page,
        "[...$('contact-timeline').children].some((li) => li.dataset.kind === 'edit' && \
           li.querySelector('span').textContent === 'Edited by sue: last name, email, Plan')",
    )
    .await
    .context("the timeline tells the edit")?;
    assert_eq!(
        eval(cdp, page, "$('contact-notice').hidden").await?,
        json!(true),
        "the supervisor's own save is no news to them"
    );

    // A number another contact has: a 409 that is not about the version.
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-form'); f.phone.value = '+447400100456'; \
         $('contact-save').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-form-status').classList.contains('error') && \
         $('contact-form-status').textContent.includes('contact') && \
         $('contact-form').phone.getAttribute('aria-invalid') === 'true' && \
         $('contact-conflict').hidden",
    )
    .await
    .context("a taken number is refused beside the form")?;
    eval(cdp, page, "($('contact-reload').click(), true)").await?;
    until(
        cdp,
        page,
        "$('contact-form').phone.value === '+447400100123' && \
         $('contact-form-status').textContent === ''",
    )
    .await?;

    // The supervisor starts typing; meanwhile an admin changes the contact.
    eval(
        cdp,
        page,
        "($('contact-form').first_name.value = 'Augusta', true)",
    )
    .await?;
    let (status, theirs) = send(
        b.ann
            .patch(t.url(&path))
            .json(&json!({ "version": 2, "profession": "Mathematician" })),
    )
    .await?;
    assert_eq!(status, 200, "{theirs}");
    until(
        cdp,
        page,
        "!$('contact-notice').hidden && $('contact-notice').textContent === \
           'Changed by ann just now: profession. Your unsaved changes are still in the form: \
reload to see theirs.' && \
         $('contact-form').first_name.value === 'Augusta' && \
         $('contact-form').profession.value === ''",
    )
    .await
    .context("the supervisor is told, and keeps what they typed")?;
    eval(cdp, page, "($('contact-save').click(), true)").await?;
    until(
        cdp,
        page,
        "!$('contact-conflict').hidden && $('contact-conflict-text').textContent.startsWith(\
           'Someone else changed this contact since you opened it (you read version 2; \
it is now at version 3). Your changes were not saved.') && \
         document.activeElement === $('contact-conflict-reload')",
    )
    .await
    .context("the stale save is refused and the reload offered")?;
    let (_, kept) = send(b.sue.get(t.url(&path))).await?;
    assert_eq!(
        (&kept["first_name"], &kept["profession"], &kept["version"]),
        (&json!("Ada"), &json!("Mathematician"), &json!(3)),
        "nothing was overwritten: {kept}"
    );
    eval(cdp, page, "($('contact-conflict-reload').click(), true)").await?;
    until(
        cdp,
        page,
        "$('contact-conflict').hidden && $('contact-notice').hidden && \
         $('contact-form').first_name.value === 'Ada' && \
         $('contact-form').profession.value === 'Mathematician' && \
         $('contact-meta').textContent.startsWith('Version 3, ')",
    )
    .await
    .context("the reload shows their change")?;
    Ok(())
}

async fn create(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    // No number: the API's refusal is shown beside the form, at the number.
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-new'); f.first_name.value = 'Grace'; \
         f.last_name.value = 'Hopper'; $('contact-create').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-new-status').classList.contains('error') && \
         $('contact-new-status').textContent.includes('phone') && \
         $('contact-new').phone.getAttribute('aria-invalid') === 'true'",
    )
    .await
    .context("the number is required")?;
    // A national number, read in the list's region, but no plan.
    eval(
        cdp,
        page,
        &format!(
            "(() => {{ const f = $('contact-new'); f.phone.value = '07400 100999'; \
             f.list_id.value = '{}'; $('contact-create').click(); return true; }})()",
            b.spring
        ),
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-new-status').textContent === 'required fields have no value: plan (Plan)' && \
         $('contact-new').elements.namedItem('field.plan').getAttribute('aria-invalid') === 'true' && \
         $('contact-new').phone.getAttribute('aria-invalid') === null",
    )
    .await
    .context("the required field is named")?;
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-new'); f.elements.namedItem('field.plan').value = 'Gold'; \
         f.elements.namedItem('field.opt_in').value = 'false'; \
         $('contact-create').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-new-status').textContent === 'Created Grace Hopper (+447400100999).' && \
         $('contact-title').textContent === 'Grace Hopper' && \
         $('contact-new').phone.value === '' && \
         [...$('contact-lists').children].map((li) => li.textContent).join() === 'Spring'",
    )
    .await
    .context("the contact is created and opened")?;
    let found =
        t.db.store
            .contacts_by_number(b.account, "+447400100999")
            .await?;
    let grace = found.first().context("Grace is saved")?;
    assert_eq!(grace.fields.first_name, "Grace");
    assert_eq!(grace.values.get("plan"), Some(&json!("Gold")));
    assert_eq!(grace.values.get("opt_in"), Some(&json!(false)));
    assert_eq!(grace.values.get("seats"), None, "left empty");
    assert_eq!(
        t.db.store.lists_of_contact(b.account, grace.id).await?,
        [crm::model::ListId(b.spring)],
        "on the list chosen, whose region read the number"
    );
    Ok(())
}

async fn hostile_values(cdp: &mut Cdp, page: &str) -> Result<()> {
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-search'); f.q.value = 'tables'; f.requestSubmit(); \
         return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        &format!(
            "document.querySelectorAll('#contact-results tbody tr').length === 1 && \
             document.querySelector('#contact-results tbody td').textContent === {}",
            serde_json::to_string(&format!("{HOSTILE} Tables"))?
        ),
    )
    .await
    .context("the hostile name is found, as text")?;
    eval(
        cdp,
        page,
        "(document.querySelector('#contact-results tbody button').click(), true)",
    )
    .await?;
    until(
        cdp,
        page,
        &format!(
            "$('contact-title').textContent === {}",
            serde_json::to_string(&format!("{HOSTILE} Tables"))?
        ),
    )
    .await?;
    let seen = eval_json(
        cdp,
        page,
        "JSON.stringify({ \
           first: $('contact-form').first_name.value, \
           address: $('contact-form').postal_address.value, \
           remark: $('contact-form').elements.namedItem('field.remark').value, \
           remarkLabel: $('contact-form').elements.namedItem('field.remark').parentElement.firstChild.textContent, \
           lists: [...$('contact-lists').children].map((li) => li.textContent), \
           other: [...$('contact-other').children].map((e) => e.textContent), \
           timeline: [...$('contact-timeline').children].map((li) => li.querySelector('span').textContent), \
           newLabel: $('contact-new').elements.namedItem('field.remark').parentElement.firstChild.textContent, \
           listChoices: [...$('contact-new').list_id.options].map((o) => o.textContent), \
           elements: $('tab-contacts').querySelectorAll('img, script, iframe, svg, object').length, \
           images: document.images.length, \
           pwned: window.pwned === undefined ? null : window.pwned })",
    )
    .await?;
    assert_eq!(seen["first"], HOSTILE, "{seen}");
    assert_eq!(seen["address"], HOSTILE);
    assert_eq!(seen["remark"], HOSTILE);
    assert_eq!(seen["remarkLabel"], format!("{HOSTILE} "));
    assert_eq!(seen["newLabel"], format!("{HOSTILE} "));
    assert_eq!(seen["lists"], json!([HOSTILE]));
    assert_eq!(seen["other"], json!([HOSTILE, HOSTILE]));
    assert!(
        seen["timeline"]
            .as_array()
            .context("entries")?
            .contains(&json!(format!("Added to the list {HOSTILE}"))),
        "{seen}"
    );
    assert!(
        seen["listChoices"]
            .as_array()
            .context("choices")?
            .contains(&json!(HOSTILE)),
        "{seen}"
    );
    assert_eq!(seen["elements"], 0, "no element came from a value: {seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["pwned"], Value::Null, "nothing ran: {seen}");
    // Escape closes the contact and goes back to the search.
    eval(cdp, page, "($('contact-form').first_name.focus(), true)").await?;
    press(cdp, page, "Escape").await?;
    until(
        cdp,
        page,
        "$('contact-card').hidden && document.activeElement === $('contact-search').q && \
         $('contact-title').textContent === ''",
    )
    .await
    .context("Escape closes the contact")?;
    Ok(())
}

/// Al, on a call with Philippa, corrects her address; the supervisor has
/// her open, and sees the change and who made it without reloading.
async fn edit_during_a_call(cdp: &mut Cdp, page: &str, f: &AgentFloor, b: &Book) -> Result<()> {
    let t = &f.t;
    f.connect_audio().await;
    let mut desk = f.open_desk().await;
    wait_for(&mut desk, "welcome").await;
    say(
        &mut desk,
        json!({"type": "ready", "campaign_id": b.calls_campaign}),
    )
    .await;
    let card = wait_for(&mut desk, "call").await;
    assert_eq!(card["contact"]["first_name"], "Philippa");
    let philippa = card["contact"]["id"]
        .as_i64()
        .context("the card's contact")?;
    let version = card["contact"]["version"].as_i64().context("its version")?;

    eval(
        cdp,
        page,
        "(() => { const f = $('contact-search'); f.q.value = 'oddington'; f.requestSubmit(); \
         return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        &format!(
            "document.querySelectorAll('#contact-results tbody tr').length === 1 && \
             Number(document.querySelector('#contact-results tbody tr').dataset.contactId) === {philippa}"
        ),
    )
    .await?;
    eval(
        cdp,
        page,
        "(document.querySelector('#contact-results tbody button').click(), true)",
    )
    .await?;
    until(
        cdp,
        page,
        "$('contact-title').textContent === 'Philippa Oddington' && \
         $('contact-form').postal_address.value === '' && \
         [...$('contact-timeline').children].some((li) => \
           li.querySelector('span').textContent === 'Call · Calls · in progress')",
    )
    .await
    .context("the supervisor sees the call in progress")?;

    let al = t.login("al", &f.agent_pw).await;
    let (status, edited) = send(
        al.patch(t.url(&format!("/api/contacts/{philippa}")))
            .json(&json!({ "version": version, "postal_address": "3 Mill Lane, Leeds LS1 1AA" })),
    )
    .await?;
    assert_eq!(
        status, 200,
        "al may correct the contact of his call: {edited}"
    );
    until(
        cdp,
        page,
        "$('contact-notice').textContent === 'Changed by al just now: postal address.' && \
         !$('contact-notice').hidden && \
         $('contact-form').postal_address.value === '3 Mill Lane, Leeds LS1 1AA' && \
         [...$('contact-timeline').children].some((li) => \
           li.querySelector('span').textContent === 'Edited by al: postal address')",
    )
    .await
    .context("the open contact follows al's change")?;
    assert_eq!(
        eval(cdp, page, "window.stillHere === true").await?,
        json!(true),
        "without the page being reloaded"
    );
    drop(desk);
    Ok(())
}

/// Presses a key in the page as a keyboard would.
pub(crate) async fn press(cdp: &mut Cdp, page: &str, key: &str) -> Result<()> {
    let (code, text) = match key {
        "Enter" => (13, "\r"),
        "Tab" => (9, ""),
        "Escape" => (27, ""),
        "ArrowUp" => (38, ""),
        "ArrowDown" => (40, ""),
        other => bail!("no key {other}"),
    };
    let mut down = json!({
        "type": "keyDown", "key": key, "code": key,
        "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code,
    });
    if !text.is_empty() {
        down["text"] = json!(text);
    }
    cdp.call(Some(page), "Input.dispatchKeyEvent", down).await?;
    cdp.call(
        Some(page),
        "Input.dispatchKeyEvent",
        json!({ "type": "keyUp", "key": key, "code": key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code }),
    )
    .await?;
    Ok(())
}

/// Resolves once `condition` holds in the page; on failure, says what the
/// tab's status lines showed.
async fn until(cdp: &mut Cdp, page: &str, condition: &str) -> Result<()> {
    if let Err(e) = crate::softphone::until(cdp, page, condition).await {
        let shown = eval(
            cdp,
            page,
            "JSON.stringify({ status: $('contact-status').textContent, \
               matched: $('contact-matched').textContent, \
               results: $('contact-results').tBodies[0].textContent, \
               title: $('contact-title').textContent, \
               notice: $('contact-notice').textContent, \
               form: $('contact-form-status').textContent, \
               conflict: $('contact-conflict-text').textContent, \
               created: $('contact-new-status').textContent })",
        )
        .await
        .unwrap_or_default();
        return Err(e.context(format!("the tab showed {shown}")));
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
