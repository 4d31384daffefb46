//! The agent page's contact card in a real headless Chromium, during a call
//! with the simulated carrier's customer: the agent opens the card's Edit
//! form with the keyboard, finds an input of the right kind for each of the
//! account's fields on the card, corrects the postal address and two of
//! those fields and saves with Ctrl+Enter; the card shows the change in
//! place, the contact is at the next version, the audit names the fields
//! only and the supervisors' stream is told. A save that a supervisor's
//! change beat is refused and the agent offered the card anew; a number
//! that is not one is refused beside the form; a suppressed one is saved
//! and flagged; the card can still be corrected during the wrap-up. A
//! supervisor's change reaches the card as it is made, naming only the
//! fields the card shows, and never throws away what the agent typed.
//! Hostile values stay text throughout.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crm::model::{AccountId, Role, UserId};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::carrier::{Mix, Outcome};
use sip_gateway::gateway::TrunkConfig;

use crate::dialler::{carrier, DAY_ZONE};
use crate::helpers::{next_json, run_then_stop, spawn_app_with, NowUtc, Scratch, TestApp, Ws};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{agent_page_ready, with_ids, write_tone, ONE_AT_A_TIME};

/// A value that would become an element, and run, if it were read as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";
/// What the agent types into a text field: a script, if it were markup.
const TYPED: &str = "<script>window.pwned = 'typed'</script>";
const ADDRESS: &str = "3 Mill Lane, Leeds LS1 1AA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_edits_the_contact_of_their_call_on_the_card_in_chromium_on_sqlite() {
    card_edit_page(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_edits_the_contact_of_their_call_on_the_card_in_chromium_on_postgres() {
    card_edit_page(TestBackend::Postgres).await;
}

async fn card_edit_page(backend: TestBackend) {
    let Some(binary) = crate::softphone::chromium_or_skip("the card edit page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let customers = carrier(Mix::always(Outcome::Answer), 1000.0, None).await;
    let trunks = vec![TrunkConfig::new("customers", customers.sip_addr())];
    let Some(t) = spawn_app_with(backend, false, trunks).await else {
        return;
    };
    let dir = Scratch::new(&format!("card-edit-{backend:?}"));
    let limit = Duration::from_secs(120);
    run_then_stop(t, "the card edit page test", limit, async |t| {
        edit_the_card(t, &binary, dir.path()).await
    })
    .await;
}

/// The account, its people and the one contact its campaign calls.
struct Desk {
    account: AccountId,
    agent: UserId,
    agent_pw: String,
    sup_pw: String,
    sue: reqwest::Client,
    ann: reqwest::Client,
    philippa: i64,
    campaign: i64,
}

async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Fields of every kind (one kept off the card), and Philippa, with values
/// in them, the one lead of a running campaign.
async fn desk(t: &TestApp) -> Result<Desk> {
    let s = &t.db.store;
    let now = t.clock.now_utc();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let ann_pw = t.user(&acme, "ann", Role::Admin).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    let agent = s.credentials("al").await?.context("al exists")?.0;
    let sue = t.login("sue", &sup_pw).await;
    let ann = t.login("ann", &ann_pw).await;
    for field in [
        json!({ "key": "plan", "kind": "choice", "label": "Plan", "choices": ["Bronze", "Gold"], "required": true }),
        json!({ "key": "seats", "kind": "number", "label": "Seats" }),
        json!({ "key": "remark", "kind": "text", "label": HOSTILE }),
        json!({ "key": "renewal", "kind": "date", "label": "Renewal" }),
        json!({ "key": "opt_in", "kind": "yes_no", "label": "Opted in" }),
        json!({ "key": "credit", "kind": "text", "label": "Credit note", "on_card": false }),
    ] {
        let (status, body) = send(ann.post(t.url("/api/account/fields")).json(&field)).await?;
        anyhow::ensure!(status == 201, "{field} -> {status} {body}");
    }
    let list = s.create_list(acme.id, "Calls", "GB", now).await?;
    let (status, philippa) = send(sue.post(t.url("/api/contacts")).json(&json!({
        "first_name": "Philippa", "last_name": "Oddington", "phone": "+447400100321",
        "email": "philippa@example.org", "profession": HOSTILE, "time_zone": DAY_ZONE,
        "list_id": list.id,
        "fields": { "plan": "Gold", "seats": 3, "remark": HOSTILE, "credit": "kept" }
    })))
    .await?;
    anyhow::ensure!(status == 201, "{philippa}");
    let campaign = t
        .start_campaign(
            &acme,
            list.id,
            "Calls",
            DialMode::Progressive,
            None,
            ("sue", &sup_pw),
        )
        .await;
    Ok(Desk {
        account: acme.id,
        agent: agent.id,
        agent_pw,
        sup_pw,
        sue,
        ann,
        philippa: philippa["id"].as_i64().context("Philippa's id")?,
        campaign: campaign.id.0,
    })
}

async fn edit_the_card(t: &TestApp, binary: &Path, dir: &Path) -> Result<()> {
    let d = desk(t).await?;
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, t, &d).await;
    chromium.stop(&mut cdp).await;
    outcome?;

    // The wrap-up was saved after the card was corrected during it.
    let done =
        t.db.store
            .interactions_for_contact(d.account, crm::model::ContactId(d.philippa))
            .await?;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].disposition.as_deref(), Some("sale"));
    assert_eq!(done[0].user_id, Some(d.agent));
    Ok(())
}

async fn drive(cdp: &mut Cdp, t: &TestApp, d: &Desk) -> Result<()> {
    let page = agent_page_ready(cdp, t, &d.agent_pw, d.campaign).await?;
    // Key presses go to the page that has the focus.
    cdp.call(Some(&page), "Page.bringToFront", json!({}))
        .await?;
    cdp.call(
        Some(&page),
        "Emulation.setFocusEmulationEnabled",
        json!({ "enabled": true }),
    )
    .await?;
    // The page's policy forbids inline handlers and scripts, so an injected
    // element would not run either way; what must not exist is the element.
    eval(
        cdp,
        &page,
        "(window.alert = (m) => { window.pwned = String(m); }, window.stillHere = true, true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "$('state').dataset.state === 'in_call' && \
         $('contact-name').textContent === 'Philippa Oddington' && !$('card-actions').hidden",
    )
    .await
    .context("the call is connected and its card shown")?;
    let card = shown_card(cdp, &page).await?;
    assert_eq!(card["Profession"], HOSTILE, "{card}");
    assert_eq!(card[HOSTILE], HOSTILE, "{card}");
    assert_eq!(card["Seats"], "3", "{card}");
    assert!(card.get("Credit note").is_none(), "off the card: {card}");

    open_and_save(cdp, &page, t, d).await?;
    conflict(cdp, &page, t, d).await?;
    numbers(cdp, &page, t, d).await?;
    escape_keeps_what_was_typed(cdp, &page).await?;
    wrap_up(cdp, &page, t, d).await?;

    let safe = eval_json(
        cdp,
        &page,
        "JSON.stringify({ elements: $('contact').querySelectorAll('img, script, iframe, svg, object').length, \
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

/// Opens the form with C, checks what it holds, corrects the address and
/// two of the account's fields, and saves with Ctrl+Enter.
async fn open_and_save(cdp: &mut Cdp, page: &str, t: &TestApp, d: &Desk) -> Result<()> {
    eval(cdp, page, "(document.activeElement.blur(), true)").await?;
    press(cdp, page, "c", 0).await?;
    until(
        cdp,
        page,
        "!$('card-form').hidden && document.activeElement === $('card-form').first_name && \
         $('contact-fields').hidden && $('contact-edit').getAttribute('aria-expanded') === 'true'",
    )
    .await
    .context("C opens the form, focused on the first name")?;
    let form = eval_json(
        cdp,
        page,
        "JSON.stringify({ \
           values: Object.fromEntries([...$('card-form').elements].filter((e) => e.name)\
             .map((e) => [e.name, e.value])), \
           kinds: [...$('card-account-fields').querySelectorAll('[data-key]')]\
             .map((e) => [e.dataset.key, e.tagName.toLowerCase(), e.type]), \
           remarkLabel: $('card-form').elements.namedItem('field.remark').parentElement.firstChild.textContent })",
    )
    .await?;
    let values = &form["values"];
    assert_eq!(values["first_name"], "Philippa", "{form}");
    assert_eq!(values["last_name"], "Oddington");
    assert_eq!(values["phone"], "+447400100321");
    assert_eq!(values["email"], "philippa@example.org");
    assert_eq!(values["postal_address"], "");
    assert_eq!(values["profession"], HOSTILE);
    assert_eq!(values["field.plan"], "Gold");
    assert_eq!(values["field.seats"], "3");
    assert_eq!(values["field.remark"], HOSTILE);
    assert_eq!(values["field.renewal"], "");
    assert_eq!(values["field.opt_in"], "");
    assert!(values.get("field.credit").is_none(), "off the card: {form}");
    assert_eq!(
        form["kinds"],
        json!([
            ["plan", "select", "select-one"],
            ["seats", "input", "number"],
            ["remark", "input", "text"],
            ["renewal", "input", "date"],
            ["opt_in", "select", "select-one"]
        ]),
        "each field's input matches its kind"
    );
    assert_eq!(form["remarkLabel"], format!("{HOSTILE} "));

    let mut stream = supervisor_stream(t, &d.sup_pw).await;
    assert_eq!(next_json(&mut stream).await["type"], "snapshot");
    eval(
        cdp,
        page,
        &format!(
            "(() => {{ const f = $('card-form'); f.postal_address.value = {}; \
             f.elements.namedItem('field.seats').value = '7'; \
             f.elements.namedItem('field.remark').value = {}; \
             f.postal_address.focus(); return document.activeElement === f.postal_address; }})()",
            js(ADDRESS),
            js(TYPED)
        ),
    )
    .await?;
    press(cdp, page, "Enter", CTRL).await?;
    until(
        cdp,
        page,
        &format!(
            "$('card-status').textContent === {} && !$('card-status').classList.contains('error') && \
             $('card-form').hidden && !$('contact-fields').hidden && \
             document.activeElement === $('contact-edit')",
            js(&format!("Saved (postal address, Seats, {HOSTILE})."))
        ),
    )
    .await
    .context("Ctrl+Enter saves the card, which says so")?;
    let card = shown_card(cdp, page).await?;
    assert_eq!(
        card["Address"], ADDRESS,
        "the card shows the change: {card}"
    );
    assert_eq!(card["Seats"], "7", "{card}");
    assert_eq!(card[HOSTILE], TYPED, "{card}");
    assert_eq!(card["Plan"], "Gold", "{card}");

    let path = format!("/api/contacts/{}", d.philippa);
    let (_, saved) = send(d.sue.get(t.url(&path))).await?;
    assert_eq!(saved["version"], 2, "{saved}");
    assert_eq!(saved["postal_address"], ADDRESS);
    assert_eq!(saved["fields"]["seats"], 7);
    assert_eq!(saved["fields"]["remark"], TYPED);
    assert_eq!(saved["fields"]["plan"], "Gold", "untouched fields are kept");
    assert_eq!(saved["fields"]["credit"], "kept");
    assert_eq!(saved["first_name"], "Philippa");

    // Supervisors are told which fields changed, and by whom; never the values.
    let told = loop {
        let frame = next_json(&mut stream).await;
        if frame["event"]["kind"] == "contact_edited" {
            break frame;
        }
    };
    assert_eq!(told["event"]["contact_id"], d.philippa, "{told}");
    assert_eq!(told["event"]["version"], 2, "{told}");
    assert_eq!(told["event"]["by"], d.agent.0, "{told}");
    assert_eq!(
        told["event"]["fields"],
        json!(["postal_address", "field.seats", "field.remark"])
    );
    let said = told.to_string();
    assert!(
        !said.contains("Mill Lane") && !said.contains("pwned"),
        "{told}"
    );

    // The audit names the agent and the fields, never the values.
    let (_, log) = send(d.ann.get(t.url("/api/audit?action=contact.edit"))).await?;
    let entries = log.as_array().context("entries")?;
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["user_id"], d.agent.0, "{log}");
    assert_eq!(
        entries[0]["detail"],
        "fields=postal_address,field.seats,field.remark"
    );
    let (_, everything) = send(d.ann.get(t.url("/api/audit"))).await?;
    let everything = everything.to_string();
    for value in ["Mill Lane", "pwned", "Philippa"] {
        assert!(!everything.contains(value), "{value} in the audit");
    }
    Ok(())
}

/// The agent starts a correction; meanwhile the supervisor changes the
/// contact. The agent's save is refused, theirs kept, and the reload shows it.
async fn conflict(cdp: &mut Cdp, page: &str, t: &TestApp, d: &Desk) -> Result<()> {
    eval(cdp, page, "($('contact-edit').click(), true)").await?;
    until(cdp, page, "!$('card-form').hidden").await?;
    eval(
        cdp,
        page,
        "($('card-form').first_name.value = 'Pippa', true)",
    )
    .await?;
    let path = format!("/api/contacts/{}", d.philippa);
    let (status, theirs) = send(
        d.sue
            .patch(t.url(&path))
            .json(&json!({ "version": 2, "last_name": "Oddington-Smythe" })),
    )
    .await?;
    assert_eq!(status, 200, "{theirs}");
    // The card is told at once; what the agent typed stays in the form.
    until(
        cdp,
        page,
        "$('card-status').textContent === 'Changed by sue just now: last name. Your changes are \
still in the form and not saved: saving them now would be refused, so reload the card to see \
theirs first.' && $('contact-name').textContent === 'Philippa Oddington-Smythe' && \
         $('card-form').first_name.value === 'Pippa' && !$('card-form').hidden",
    )
    .await
    .context("the supervisor's change reaches the card")?;
    eval(cdp, page, "($('card-save').click(), true)").await?;
    until(
        cdp,
        page,
        "!$('card-conflict').hidden && $('card-conflict-text').textContent.startsWith(\
           'Someone else changed this contact since you opened the form (you read version 2; \
it is now at version 3). Your changes were not saved.') && \
         document.activeElement === $('card-conflict-reload') && \
         $('card-form').first_name.value === 'Pippa'",
    )
    .await
    .context("the stale save is refused and the reload offered")?;
    let (_, kept) = send(d.sue.get(t.url(&path))).await?;
    assert_eq!(
        (&kept["first_name"], &kept["last_name"], &kept["version"]),
        (&json!("Philippa"), &json!("Oddington-Smythe"), &json!(3)),
        "nothing was overwritten: {kept}"
    );
    eval(cdp, page, "($('card-conflict-reload').click(), true)").await?;
    until(
        cdp,
        page,
        "$('card-conflict').hidden && !$('card-form').hidden && \
         $('card-form').first_name.value === 'Philippa' && \
         $('card-form').last_name.value === 'Oddington-Smythe' && \
         $('card-form').postal_address.value === '3 Mill Lane, Leeds LS1 1AA' && \
         $('contact-name').textContent === 'Philippa Oddington-Smythe' && \
         $('card-form-status').textContent.startsWith('The card shows the contact as it is now (version 3)') && \
         document.activeElement === $('card-form').first_name",
    )
    .await
    .context("the reload shows their change")?;
    Ok(())
}

/// A number that is not one is refused beside the form; a suppressed one
/// is saved, and the agent told it will never be dialled.
async fn numbers(cdp: &mut Cdp, page: &str, t: &TestApp, d: &Desk) -> Result<()> {
    let path = format!("/api/contacts/{}", d.philippa);
    eval(
        cdp,
        page,
        "(() => { $('card-form').phone.value = '12'; $('card-save').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('card-form-status').classList.contains('error') && \
         $('card-form-status').textContent.includes('phone') && \
         $('card-form').phone.getAttribute('aria-invalid') === 'true' && \
         document.activeElement === $('card-form').phone && !$('card-form').hidden",
    )
    .await
    .context("the API's refusal of the number is shown at the number")?;
    let (_, kept) = send(d.sue.get(t.url(&path))).await?;
    assert_eq!(
        (&kept["phone_e164"], &kept["version"]),
        (&json!("+447400100321"), &json!(3))
    );

    t.db.store
        .suppress(
            d.account,
            "+447400100777",
            "asked",
            "agent",
            t.clock.now_utc(),
        )
        .await?;
    eval(
        cdp,
        page,
        "(() => { $('card-form').phone.value = '07400 100777'; $('card-save').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('card-status').textContent === \
           'Saved (number). The number is on the suppression list: it is never dialled.' && \
         $('card-status').classList.contains('error') && $('card-form').hidden",
    )
    .await
    .context("a suppressed number is saved and flagged")?;
    let card = shown_card(cdp, page).await?;
    assert_eq!(card["Number"], "+447400100777", "{card}");
    let (_, moved) = send(d.sue.get(t.url(&path))).await?;
    assert_eq!(moved["phone_e164"], "+447400100777", "{moved}");
    assert_eq!(moved["version"], 4);
    assert_eq!(moved["suppressed"], true);
    Ok(())
}

/// Escape closes an untouched form, but not one holding a change.
async fn escape_keeps_what_was_typed(cdp: &mut Cdp, page: &str) -> Result<()> {
    press(cdp, page, "c", 0).await?;
    until(
        cdp,
        page,
        "!$('card-form').hidden && document.activeElement === $('card-form').first_name",
    )
    .await?;
    press(cdp, page, "Escape", 0).await?;
    until(
        cdp,
        page,
        "$('card-form').hidden && document.activeElement === $('contact-edit')",
    )
    .await
    .context("Escape closes the untouched form")?;
    press(cdp, page, "c", 0).await?;
    until(cdp, page, "!$('card-form').hidden").await?;
    eval(
        cdp,
        page,
        "($('card-form').profession.value = 'Apiarist', $('card-form').profession.focus(), true)",
    )
    .await?;
    press(cdp, page, "Escape", 0).await?;
    until(
        cdp,
        page,
        "!$('card-form').hidden && $('card-form').profession.value === 'Apiarist' && \
         $('card-form-status').textContent === 'Save your changes, or press Cancel to drop them.'",
    )
    .await
    .context("Escape keeps a typed change")?;
    eval(cdp, page, "($('card-cancel').click(), true)").await?;
    until(
        cdp,
        page,
        "$('card-form').hidden && document.activeElement === $('contact-edit')",
    )
    .await
    .context("Cancel drops it")?;
    Ok(())
}

/// After the call the card can still be corrected; the wrap-up is not
/// saved over a correction left unsaved.
async fn wrap_up(cdp: &mut Cdp, page: &str, t: &TestApp, d: &Desk) -> Result<()> {
    eval(cdp, page, "($('hangup').click(), true)").await?;
    until(
        cdp,
        page,
        "!$('wrapup-panel').hidden && $('state').dataset.state === 'wrap_up' && \
         [...$('wrapup').disposition.options].some((o) => o.value === 'sale') && \
         !$('card-actions').hidden",
    )
    .await
    .context("the wrap-up is due and the card still editable")?;
    eval(
        cdp,
        page,
        "(() => { $('contact-edit').click(); $('card-form').email.value = 'pippa@example.org'; \
         $('wrapup').disposition.value = 'sale'; \
         document.querySelector('#wrapup button[type=submit]').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "$('status').textContent === 'Save or cancel your changes to the contact first.' && \
         !$('wrapup-panel').hidden && document.activeElement === $('card-save')",
    )
    .await
    .context("the wrap-up waits for the correction")?;
    eval(cdp, page, "($('card-save').click(), true)").await?;
    until(
        cdp,
        page,
        "$('card-status').textContent === \
           'Saved (email). The number is on the suppression list: it is never dialled.' && \
         $('card-form').hidden",
    )
    .await
    .context("the correction is saved during the wrap-up")?;
    let (_, saved) = send(d.sue.get(t.url(&format!("/api/contacts/{}", d.philippa)))).await?;
    assert_eq!(saved["email"], "pippa@example.org", "{saved}");
    assert_eq!(saved["version"], 5);
    // A supervisor changes a field on the card and one off it: the card
    // shows the first as it is saved, and names only it.
    let (status, theirs) = send(
        d.sue
            .patch(t.url(&format!("/api/contacts/{}", d.philippa)))
            .json(&json!({ "version": 5, "fields": { "seats": 9, "credit": "changed" } })),
    )
    .await?;
    assert_eq!(status, 200, "{theirs}");
    until(
        cdp,
        page,
        "$('card-status').textContent === 'Changed by sue just now: Seats.' && \
         [...$('contact-fields').querySelectorAll('dt')].some((dt) => dt.textContent === 'Seats' \
           && dt.nextElementSibling.textContent === '9') && $('card-form').hidden",
    )
    .await
    .context("a change made during the wrap-up reaches the card")?;
    let card = shown_card(cdp, page).await?;
    assert!(card.get("Credit note").is_none(), "off the card: {card}");
    eval(
        cdp,
        page,
        "(document.querySelector('#wrapup button[type=submit]').click(), true)",
    )
    .await?;
    until(
        cdp,
        page,
        "$('wrapup-panel').hidden && $('contact').hidden && $('card-actions').hidden",
    )
    .await
    .context("the wrap-up is saved and the card closed")?;
    eval(cdp, page, "($('pause').click(), true)").await?;
    until(cdp, page, "$('state').dataset.state === 'paused'").await?;
    Ok(())
}

/// The card's read-only fields, label to value.
async fn shown_card(cdp: &mut Cdp, page: &str) -> Result<Value> {
    eval_json(
        cdp,
        page,
        "JSON.stringify(Object.fromEntries([...$('contact-fields').querySelectorAll('dt')]\
           .map((dt) => [dt.textContent, dt.nextElementSibling.textContent])))",
    )
    .await
}

/// Opens the live stream as the supervisor.
async fn supervisor_stream(t: &TestApp, password: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/api/stream", t.app.http_addr)
        .into_client_request()
        .expect("request");
    let cookie = t.session_cookie("sue", password).await;
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("the stream opens")
        .0
}

/// The Ctrl key, in CDP's modifiers.
pub(crate) const CTRL: i64 = 2;

/// Presses a key in the page as a keyboard would.
pub(crate) async fn press(cdp: &mut Cdp, page: &str, key: &str, modifiers: i64) -> Result<()> {
    let (code, vk, text) = match key {
        "c" => ("KeyC", 67, "c"),
        "Enter" => ("Enter", 13, "\r"),
        "Escape" => ("Escape", 27, ""),
        other => bail!("no key {other}"),
    };
    let mut down = json!({
        "type": "keyDown", "key": key, "code": code, "modifiers": modifiers,
        "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
    });
    if !text.is_empty() && modifiers == 0 {
        down["text"] = json!(text);
    }
    cdp.call(Some(page), "Input.dispatchKeyEvent", down).await?;
    cdp.call(
        Some(page),
        "Input.dispatchKeyEvent",
        json!({ "type": "keyUp", "key": key, "code": code, "modifiers": modifiers,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk }),
    )
    .await?;
    Ok(())
}

/// A string as a JavaScript literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// Resolves once `condition` holds in the page; on failure, says what the
/// card showed.
async fn until(cdp: &mut Cdp, page: &str, condition: &str) -> Result<()> {
    if let Err(e) = crate::softphone::until(cdp, page, condition).await {
        let shown = eval(
            cdp,
            page,
            "JSON.stringify({ status: $('status').textContent, \
               state: $('state').dataset.state, \
               card: $('card-status').textContent, \
               form: $('card-form-status').textContent, \
               formHidden: $('card-form').hidden, \
               conflict: $('card-conflict-text').textContent, \
               focus: document.activeElement && (document.activeElement.id || document.activeElement.name) })",
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
