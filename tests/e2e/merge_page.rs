//! Duplicates on the supervisor page's Contacts tab in a real headless
//! Chromium, driven from the keyboard: a supervisor finds the account's
//! likely duplicate pairs, reviews two records side by side, chooses the
//! one to keep, backs out of the confirmation, is refused a merge of a
//! record changed since it was read (and shown it as it is now), merges
//! after confirming, and undoes the merge from the recent merges. Each step
//! is checked over the API. Hostile values stay text throughout.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use crm::model::Role;
use crm::testing::TestBackend;
use serde_json::{json, Value};

use crate::contacts_page::press;
use crate::helpers::{run_then_stop, spawn_app, Scratch, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{with_ids, write_tone, ONE_AT_A_TIME};
use crate::wallboard::landed_on_wallboard;

/// A value that would become an element, and run, if it were read as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_merges_and_undoes_duplicates_in_chromium_on_sqlite() {
    merge_page(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_merges_and_undoes_duplicates_in_chromium_on_postgres() {
    merge_page(TestBackend::Postgres).await;
}

async fn merge_page(backend: TestBackend) {
    let Some(binary) = crate::softphone::chromium_or_skip("the merge page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(t) = spawn_app(backend, false).await else {
        return;
    };
    let dir = Scratch::new(&format!("merge-page-{backend:?}"));
    let limit = Duration::from_secs(120);
    run_then_stop(t, "the merge page test", limit, async |t| {
        manage(t, &binary, dir.path()).await
    })
    .await;
}

/// The supervisor's API client and the contacts they find on the page.
struct Book {
    sue: reqwest::Client,
    sup_pw: String,
    ada: i64,
    adah: i64,
}

async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Ada, and Adah Lovelace with the same email written otherwise; Charles,
/// alone; and two records of one person made of hostile values.
async fn book(t: &TestApp) -> Result<Book> {
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let sue = t.login("sue", &sup_pw).await;
    let mut ids = Vec::new();
    for body in [
        json!({ "first_name": "Ada", "phone": "+447400100123", "email": "ada@example.org" }),
        json!({ "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400100456",
                "email": "ADA@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH" }),
        json!({ "first_name": "Charles", "phone": "+447400100789" }),
        json!({ "first_name": HOSTILE, "phone": "+447400100901", "email": "same@example.org" }),
        json!({ "first_name": "Bob", "last_name": HOSTILE, "phone": "+447400100902",
                "email": "same@example.org", "postal_address": HOSTILE,
                "custom_fields": { HOSTILE: HOSTILE } }),
    ] {
        let (status, c) = send(sue.post(t.url("/api/contacts")).json(&body)).await?;
        anyhow::ensure!(status == 201, "{body} -> {status} {c}");
        ids.push(c["id"].as_i64().context("an id")?);
    }
    Ok(Book {
        sue,
        sup_pw,
        ada: ids[0],
        adah: ids[1],
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
        "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(&b.sup_pw)?
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
        "!$('tab-contacts').hidden && !$('merge-none').hidden && \
         $('contact-matched').textContent === 'Every contact.'",
    )
    .await
    .context("the tab opens with no merge yet")?;

    find_and_review(cdp, &page, b).await?;
    back_out_and_stale(cdp, &page, t, b).await?;
    merge_and_undo(cdp, &page, t, b).await?;
    hostile_pair(cdp, &page).await?;
    assert_eq!(
        eval(cdp, &page, "window.stillHere === true").await?,
        json!(true),
        "the page was never reloaded"
    );
    Ok(())
}

/// Finds the pairs with Enter, opens the first with Enter, and reads the
/// comparison and what a merge would do, for either record kept.
async fn find_and_review(cdp: &mut Cdp, page: &str, b: &Book) -> Result<()> {
    eval(cdp, page, "($('dup-find').focus(), true)").await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        "document.querySelectorAll('#dup-pairs tbody tr').length === 2 && \
         $('merge-status').textContent === '2 likely duplicate pairs: every contact was looked at.' && \
         $('dup-more').hidden",
    )
    .await
    .context("both pairs are found")?;
    let first = eval_json(
        cdp,
        page,
        "JSON.stringify([...document.querySelector('#dup-pairs tbody tr').cells]\
           .map((c) => c.textContent))",
    )
    .await?;
    assert_eq!(
        first,
        json!([
            "Ada · +447400100123 · ada@example.org",
            "Adah Lovelace · +447400100456 · ADA@example.org",
            "same email",
            "Review"
        ])
    );
    eval(
        cdp,
        page,
        "(document.querySelector('#dup-pairs tbody button').focus(), true)",
    )
    .await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        "!$('merge-review').hidden && document.activeElement === $('merge-review-title') && \
         $('merge-review').keep.value === 'a'",
    )
    .await
    .context("Enter opens the comparison")?;
    let compare = eval_json(
        cdp,
        page,
        "JSON.stringify(Object.fromEntries([...$('merge-compare').tBodies[0].rows]\
           .map((r) => [r.cells[0].textContent, [r.cells[1].textContent, r.cells[2].textContent, \
              r.className]])))",
    )
    .await?;
    assert_eq!(
        compare["Last name"],
        json!(["", "Lovelace", "differs"]),
        "{compare}"
    );
    assert_eq!(
        compare["Number"],
        json!(["+447400100123", "+447400100456", "differs"])
    );
    assert_eq!(compare["Version"], json!(["1", "1", ""]));
    let plan = text_of(cdp, page, "merge-plan").await?;
    assert_eq!(
        plan,
        format!(
            "Ada (#{a}) stays, and is still called on +447400100123. Adah Lovelace's calls, \
             notes, recordings, lists and callbacks move to Ada. Ada keeps +447400100456 as \
             other numbers, never dialled. Ada's empty fields take Adah Lovelace's: last name, \
             postal address. No value is overwritten. Adah Lovelace (#{b}) is set aside; the \
             merge can be undone for a day.",
            a = b.ada,
            b = b.adah
        )
    );
    // The arrow keys choose the other record, and back.
    eval(cdp, page, "($('merge-review').keep[0].focus(), true)").await?;
    press(cdp, page, "ArrowDown").await?;
    until(
        cdp,
        page,
        "$('merge-review').keep.value === 'b' && \
         $('merge-plan').textContent.startsWith('Adah Lovelace (#') && \
         $('merge-plan').textContent.includes('is still called on +447400100456') && \
         $('merge-plan').textContent.includes('No field of Adah Lovelace\\'s changes')",
    )
    .await
    .context("keeping the other record")?;
    press(cdp, page, "ArrowUp").await?;
    until(
        cdp,
        page,
        "$('merge-review').keep.value === 'a' && $('merge-plan').textContent.startsWith('Ada (#')",
    )
    .await?;
    Ok(())
}

/// Escape leaves the confirmation with nothing merged; a record changed
/// since it was read is refused, and shown again as it is now.
async fn back_out_and_stale(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    eval(cdp, page, "($('merge-go').focus(), true)").await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        &format!(
            "$('merge-dialog').open && $('merge-question').textContent === \
               'Merge Adah Lovelace (#{}) into Ada (#{})?' && \
             $('merge-consequences').children.length === 5 && \
             document.activeElement.value === 'cancel'",
            b.adah, b.ada
        ),
    )
    .await
    .context("the confirmation, on Cancel")?;
    press(cdp, page, "Escape").await?;
    until(cdp, page, "!$('merge-dialog').open").await?;
    let (_, merges) = send(b.sue.get(t.url("/api/contacts/merges"))).await?;
    assert_eq!(merges, json!([]), "Escape merged nothing");

    // Someone corrects Adah meanwhile; the merge of what was read is refused.
    let (status, edited) = send(
        b.sue
            .patch(t.url(&format!("/api/contacts/{}", b.adah)))
            .json(&json!({ "version": 1, "profession": "Mathematician" })),
    )
    .await?;
    assert_eq!(status, 200, "{edited}");
    eval(cdp, page, "($('merge-go').focus(), true)").await?;
    press(cdp, page, "Enter").await?;
    until(cdp, page, "$('merge-dialog').open").await?;
    eval(cdp, page, "($('merge-confirm').focus(), true)").await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        "$('merge-status').classList.contains('error') && \
         $('merge-status').textContent.startsWith('Nothing was merged: someone changed one of \
these contacts since you read them.') && \
         !$('merge-review').hidden && \
         [...$('merge-compare').tBodies[0].rows].some((r) => r.cells[0].textContent === 'Profession' \
           && r.cells[2].textContent === 'Mathematician') && \
         [...$('merge-compare').tBodies[0].rows].some((r) => r.cells[0].textContent === 'Version' \
           && r.cells[2].textContent === '2')",
    )
    .await
    .context("the stale merge is refused and the records shown as they are")?;
    let (_, merges) = send(b.sue.get(t.url("/api/contacts/merges"))).await?;
    assert_eq!(merges, json!([]), "nothing was merged");
    Ok(())
}

/// Merges after confirming with the keyboard, then undoes it with Enter on
/// the Undo the page focuses.
async fn merge_and_undo(cdp: &mut Cdp, page: &str, t: &TestApp, b: &Book) -> Result<()> {
    eval(cdp, page, "($('merge-go').focus(), true)").await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        "$('merge-dialog').open && document.activeElement.value === 'cancel'",
    )
    .await?;
    press(cdp, page, "Tab").await?;
    until(cdp, page, "document.activeElement === $('merge-confirm')").await?;
    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        &format!(
            "!$('merge-dialog').open && \
             $('merge-status').textContent.startsWith('Merged Adah Lovelace (#{adah}) into \
Ada Lovelace (#{ada}), merge ') && \
             $('merge-review').hidden && \
             document.querySelectorAll('#dup-pairs tbody tr').length === 1 && \
             $('merge-list').tBodies[0].rows.length === 1 && \
             document.activeElement.getAttribute('aria-label') === \
               'Undo merge ' + $('merge-list').tBodies[0].rows[0].dataset.mergeId + \
               ': Adah Lovelace (#{adah}) into Ada Lovelace (#{ada})'",
            ada = b.ada,
            adah = b.adah
        ),
    )
    .await
    .context("merged, with its Undo focused")?;
    let row = eval_json(
        cdp,
        page,
        "JSON.stringify([...$('merge-list').tBodies[0].rows[0].cells].map((c) => c.textContent))",
    )
    .await?;
    assert_eq!(row[1], format!("Ada Lovelace (#{})", b.ada), "{row}");
    assert_eq!(row[2], format!("Adah Lovelace (#{})", b.adah));
    assert_eq!(row[3], "sue");
    assert!(
        row[4]
            .as_str()
            .unwrap_or_default()
            .starts_with("can be undone until "),
        "{row}"
    );
    let (_, kept) = send(b.sue.get(t.url(&format!("/api/contacts/{}", b.ada)))).await?;
    assert_eq!(kept["last_name"], "Lovelace", "{kept}");
    assert_eq!(kept["profession"], "Mathematician");
    assert_eq!(kept["phone_e164"], "+447400100123");
    assert_eq!(kept["other_numbers"][0]["phone_e164"], "+447400100456");
    let (_, merges) = send(b.sue.get(t.url("/api/contacts/merges"))).await?;
    assert_eq!(merges[0]["state"], "open", "{merges}");
    assert_eq!(merges[0]["kept_id"], b.ada);
    assert_eq!(merges[0]["merged_id"], b.adah);

    press(cdp, page, "Enter").await?;
    until(
        cdp,
        page,
        &format!(
            "$('merge-status').textContent === 'Merge ' + \
               $('merge-list').tBodies[0].rows[0].dataset.mergeId + ' undone: Adah Lovelace \
(#{adah}) and Ada (#{ada}) are two contacts again.' && \
             $('merge-list').tBodies[0].rows[0].dataset.state === 'undone' && \
             $('merge-list').tBodies[0].rows[0].querySelector('button') === null && \
             document.activeElement === $('merge-list-title')",
            ada = b.ada,
            adah = b.adah
        ),
    )
    .await
    .context("undone with Enter")?;
    let (_, merges) = send(b.sue.get(t.url("/api/contacts/merges"))).await?;
    assert_eq!(merges[0]["state"], "undone", "{merges}");
    let (_, kept) = send(b.sue.get(t.url(&format!("/api/contacts/{}", b.ada)))).await?;
    assert_eq!(kept["last_name"], "", "{kept}");
    assert_eq!(kept["profession"], Value::Null);
    assert_eq!(kept["other_numbers"], json!([]));
    let (_, found) = send(b.sue.get(t.url("/api/contacts?q=lovelace"))).await?;
    assert_eq!(
        found["contacts"][0]["id"], b.adah,
        "Adah stands on her own again: {found}"
    );

    // The open contact's own button finds its duplicates again.
    eval(
        cdp,
        page,
        "(() => { const f = $('contact-search'); f.q.value = 'ada@example.org'; \
         f.requestSubmit(); return true; })()",
    )
    .await?;
    until(
        cdp,
        page,
        "document.querySelectorAll('#contact-results tbody tr').length === 2",
    )
    .await?;
    eval(
        cdp,
        page,
        &format!(
            "(document.querySelector('#contact-results tr[data-contact-id=\"{}\"] button').click(), \
             true)",
            b.ada
        ),
    )
    .await?;
    until(cdp, page, "$('contact-title').textContent === 'Ada'").await?;
    eval(cdp, page, "($('contact-duplicates').click(), true)").await?;
    until(
        cdp,
        page,
        "$('merge-status').textContent === '1 contact may be the same person as Ada.' && \
         document.querySelectorAll('#dup-pairs tbody tr').length === 1 && \
         document.activeElement === document.querySelector('#dup-pairs tbody button')",
    )
    .await
    .context("the open contact's duplicates")?;
    Ok(())
}

/// A pair made of hostile values shows them as text in every place.
async fn hostile_pair(cdp: &mut Cdp, page: &str) -> Result<()> {
    eval(cdp, page, "($('dup-find').click(), true)").await?;
    until(
        cdp,
        page,
        "document.querySelectorAll('#dup-pairs tbody tr').length === 2",
    )
    .await?;
    eval(
        cdp,
        page,
        "(document.querySelectorAll('#dup-pairs tbody button')[1].click(), true)",
    )
    .await?;
    until(cdp, page, "!$('merge-review').hidden").await?;
    eval(cdp, page, "($('merge-go').click(), true)").await?;
    until(cdp, page, "$('merge-dialog').open").await?;
    let seen = eval_json(
        cdp,
        page,
        "JSON.stringify({ \
           pair: document.querySelectorAll('#dup-pairs tbody tr')[1].cells[0].textContent, \
           compare: [...$('merge-compare').tBodies[0].rows].map((r) => r.cells[0].textContent + '|' \
             + r.cells[1].textContent + '|' + r.cells[2].textContent), \
           question: $('merge-question').textContent, \
           elements: $('merge-section').querySelectorAll('img, script, iframe, svg, object').length, \
           images: document.images.length, \
           pwned: window.pwned === undefined ? null : window.pwned })",
    )
    .await?;
    press(cdp, page, "Escape").await?;
    assert_eq!(
        seen["pair"],
        format!("{HOSTILE} · +447400100901 · same@example.org"),
        "{seen}"
    );
    let compare: Vec<String> = serde_json::from_value(seen["compare"].clone())?;
    assert!(
        compare.contains(&format!("First name|{HOSTILE}|Bob")),
        "{seen}"
    );
    assert!(
        compare.contains(&format!("Postal address||{HOSTILE}")),
        "{seen}"
    );
    assert!(compare.contains(&format!("{HOSTILE}||{HOSTILE}")), "{seen}");
    assert!(
        seen["question"]
            .as_str()
            .unwrap_or_default()
            .contains(HOSTILE),
        "{seen}"
    );
    assert_eq!(seen["elements"], 0, "no element came from a value: {seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["pwned"], Value::Null, "nothing ran: {seen}");
    until(cdp, page, "!$('merge-dialog').open").await?;
    Ok(())
}

async fn text_of(cdp: &mut Cdp, page: &str, id: &str) -> Result<String> {
    Ok(eval(cdp, page, &format!("$('{id}').textContent"))
        .await?
        .as_str()
        .context("text")?
        .to_owned())
}

/// Resolves once `condition` holds in the page; on failure, says what the
/// tab's duplicates section showed.
async fn until(cdp: &mut Cdp, page: &str, condition: &str) -> Result<()> {
    if let Err(e) = crate::softphone::until(cdp, page, condition).await {
        let shown = eval(
            cdp,
            page,
            "JSON.stringify({ status: $('merge-status').textContent, \
               contacts: $('contact-status').textContent, \
               pairs: $('dup-pairs').tBodies[0].textContent, \
               plan: $('merge-plan').textContent, \
               dialog: $('merge-dialog').open, \
               merges: $('merge-list').tBodies[0].textContent, \
               focus: document.activeElement && (document.activeElement.id || \
                 document.activeElement.getAttribute('aria-label') || document.activeElement.tagName) })",
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
