//! The supervisor page's Queues tab in a real headless Chromium: a
//! supervisor creates a queue with a hostile name, gives it an agent with a
//! skill, changes its wait and numbers, reads today's figures and deletes
//! it after confirming; each change is checked over the API. The name stays
//! text everywhere, and a browser whose session is an agent's gets the
//! API's refusal on the tab instead of the account's queues.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{Datelike, TimeDelta, Timelike, Utc, Weekday};
use crm::model::{Account, Role};
use crm::store::nodes::Holder;
use crm::store::queues::{InboundOutcome, QueueSettings};
use crm::testing::TestBackend;
use serde_json::{json, Value};
use sip_gateway::gateway::CallRef;

use crate::helpers::{run_then_stop, spawn_app, NowUtc, Scratch, TestApp};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{landed_on_agent_page, with_ids, write_tone, ONE_AT_A_TIME};
use crate::wallboard::landed_on_wallboard;

/// A name that would become an element, and run, if it were read as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_manages_queues_on_the_page_in_chromium_on_sqlite() {
    queues_page(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_manages_queues_on_the_page_in_chromium_on_postgres() {
    queues_page(TestBackend::Postgres).await;
}

async fn queues_page(backend: TestBackend) {
    let Some(binary) = crate::softphone::chromium_or_skip("the queues page test") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(t) = spawn_app(backend, false).await else {
        return;
    };
    let dir = Scratch::new(&format!("queues-page-{backend:?}"));
    let limit = Duration::from_secs(90);
    run_then_stop(t, "the queues page test", limit, async |t| {
        manage(t, &binary, dir.path()).await
    })
    .await;
}

/// The account's people and campaigns; another account has a queue too.
struct Floor {
    acme: Account,
    sup_pw: String,
    agent_pw: String,
    al: i64,
    bo: i64,
    service: i64,
}

async fn floor(t: &TestApp) -> Result<Floor> {
    let s = &t.db.store;
    let now = Utc::now();
    let acme = t.account("acme", 5).await;
    let sup_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let agent_pw = t.user(&acme, "al", Role::Agent).await;
    t.user(&acme, "bo", Role::Agent).await;
    let al = s.credentials("al").await?.context("al")?.0.id;
    let bo = s.credentials("bo").await?.context("bo")?.0.id;
    s.create_campaign(acme.id, "Renewals", "+441632960000", now)
        .await?;
    let service = s
        .create_campaign(acme.id, "Service", "+441632960009", now)
        .await?;
    s.assign_agents(acme.id, service.id, &[al]).await?;
    let other = t.account("other", 5).await;
    let theirs = s
        .create_campaign(other.id, "Theirs", "+441632960008", now)
        .await?;
    s.create_queue(
        other.id,
        "Their queue",
        &QueueSettings::new(theirs.id),
        &["+441632960099".to_owned()],
        now,
    )
    .await?;
    Ok(Floor {
        acme,
        sup_pw,
        agent_pw,
        al: al.0,
        bo: bo.0,
        service: service.id.0,
    })
}

async fn manage(t: &TestApp, binary: &Path, dir: &Path) -> Result<()> {
    let f = floor(t).await?;
    let tone = dir.join("tone.wav");
    write_tone(&tone, 440.0)?;
    let chromium = Chromium::start(binary, &dir.join("profile"), &tone).await?;
    let mut cdp = Cdp::connect(&chromium.ws_url).await?;
    let outcome = drive(&mut cdp, t, &f).await;
    chromium.stop(&mut cdp).await;
    outcome
}

/// Resolves once `condition` holds in the page; on failure, says what the
/// tab's status line and lists showed.
async fn until(cdp: &mut Cdp, page: &str, condition: &str) -> Result<()> {
    if let Err(e) = crate::softphone::until(cdp, page, condition).await {
        let shown = eval(
            cdp,
            page,
            "JSON.stringify({ status: $('queue-status').textContent, \
               queues: $('queue-list').tBodies[0].textContent, \
               report: $('queue-report').tBodies[0].textContent })",
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

async fn log_in(cdp: &mut Cdp, page: &str, username: &str, password: &str) -> Result<()> {
    let login = format!(
        "(() => {{ const f = document.getElementById('login'); f.username.value = {}; \
         f.password.value = {}; f.requestSubmit(); return true; }})()",
        serde_json::to_string(username)?,
        serde_json::to_string(password)?
    );
    cdp.evaluate(page, &login).await?;
    Ok(())
}

async fn drive(cdp: &mut Cdp, t: &TestApp, f: &Floor) -> Result<()> {
    let sue = t.login("sue", &f.sup_pw).await;
    let page = cdp.open_page(&t.url("/login")).await?;
    log_in(cdp, &page, "sue", &f.sup_pw).await?;
    landed_on_wallboard(cdp, &page).await?;
    // The page's policy forbids inline handlers, so an injected element's
    // onerror would not run either way; what must not exist is the element.
    eval(
        cdp,
        &page,
        "(window.alert = (m) => { window.pwned = String(m); }, true)",
    )
    .await?;
    eval(
        cdp,
        &page,
        "(document.querySelector('.tabs [data-tab=queues]').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "!$('tab-queues').hidden && $('tab-floor').hidden && \
         !$('queue-none').hidden && $('queue-status').textContent === '' && \
         $('queue-form').elements.namedItem('campaign_id').options.length === 2",
    )
    .await
    .context("the tab opens on an account without queues")?;

    // Create the queue, choosing the second campaign and changing every setting.
    let fill = format!(
        "(() => {{ const f = $('queue-form'); const set = (n, v) => {{ f.elements.namedItem(n).value = v; }}; \
         set('name', {name}); set('campaign_id', '{campaign}'); \
         set('numbers', '+441632960001, +441632960002'); set('time_zone', 'Europe/London'); \
         f.elements.namedItem('open-sun').click(); set('start-sat', '10:00'); set('end-sat', '13:00'); \
         set('max_wait_secs', '90'); set('overflow', 'callback'); set('service_level_pct', '90'); \
         set('service_level_secs', '15'); set('ring_secs', '20'); set('priority', '3'); \
         f.elements.namedItem('record_calls').checked = true; set('welcome_message', '/srv/welcome.wav'); \
         $('queue-save').click(); return true; }})()",
        name = serde_json::to_string(HOSTILE)?,
        campaign = f.service,
    );
    eval(cdp, &page, &fill).await?;
    until(
        cdp,
        &page,
        "$('queue-status').textContent.includes('created') && \
         document.querySelectorAll('#queue-list tbody tr').length === 1 && \
         !$('queue-agents-section').hidden",
    )
    .await
    .context("the queue is created")?;
    let id = eval(
        cdp,
        &page,
        "Number(document.querySelector('#queue-list tbody tr').dataset.queueId)",
    )
    .await?
    .as_i64()
    .context("the row's queue id")?;
    let path = format!("/api/queues/{id}");
    let created: Value = sue.get(t.url(&path)).send().await?.json().await?;
    assert_eq!(created["name"], HOSTILE, "{created}");
    assert_eq!(created["campaign_id"], f.service);
    assert_eq!(
        created["numbers"],
        json!(["+441632960001", "+441632960002"])
    );
    assert_eq!(created["max_wait_secs"], 90);
    assert_eq!(created["overflow"], "callback");
    assert_eq!(
        (
            &created["service_level_pct"],
            &created["service_level_secs"]
        ),
        (&json!(90), &json!(15))
    );
    assert_eq!(created["ring_secs"], 20);
    assert_eq!(created["priority"], 3);
    assert_eq!(created["record_calls"], true);
    assert_eq!(created["welcome_message"], "/srv/welcome.wav");
    assert_eq!(created["hold_music"], Value::Null);
    assert_eq!(created["time_zone"], "Europe/London");
    assert_eq!(created["opening_hours"]["sun"], Value::Null);
    assert_eq!(
        created["opening_hours"]["sat"],
        json!({ "start": "10:00:00", "end": "13:00:00" })
    );
    assert_eq!(
        created["opening_hours"]["mon"],
        json!({ "start": "08:00:00", "end": "21:00:00" })
    );

    // Its agents: only those on the queue's campaign may be chosen.
    let picks = eval_json(
        cdp,
        &page,
        "JSON.stringify([...$('queue-agent-pick').options].map((o) => [Number(o.value), o.textContent, o.disabled]))",
    )
    .await?;
    let picks = picks.as_array().context("options")?;
    assert!(picks.contains(&json!([f.al, "al", false])), "{picks:?}");
    assert!(
        picks.contains(&json!([f.bo, "bo (not in Service)", true])),
        "{picks:?}"
    );
    eval(
        cdp,
        &page,
        &format!(
            "($('queue-agent-pick').value = '{}', $('queue-agent-skill').value = '7', \
             $('queue-agent-add').click(), $('queue-agents-save').click(), true)",
            f.al
        ),
    )
    .await?;
    until(
        cdp,
        &page,
        "$('queue-status').textContent.endsWith(': 1 agent saved.') && \
         document.querySelector('#queue-list tbody tr td:nth-child(5)').textContent === '1'",
    )
    .await
    .context("the agent is saved")?;
    let members: Value = sue
        .get(t.url(&format!("{path}/agents")))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        members,
        json!({ "agents": [{ "user_id": f.al, "username": "al", "skill": 7 }] })
    );

    // Edit: a longer wait and another number; the rest is kept.
    eval(
        cdp,
        &page,
        "(document.querySelector('#queue-list tbody tr button').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        &format!(
            "$('queue-form-title').textContent === {} && $('queue-form').elements.namedItem('name').readOnly \
             && $('queue-form').elements.namedItem('max_wait_secs').value === '90' \
             && !$('queue-form').elements.namedItem('open-sun').checked \
             && $('queue-form').elements.namedItem('start-sat').value === '10:00' \
             && document.querySelectorAll('#queue-agents tbody tr').length === 1",
            serde_json::to_string(&format!("Edit {HOSTILE}"))?
        ),
    )
    .await
    .context("the form shows the saved queue")?;
    eval(
        cdp,
        &page,
        "(() => { const f = $('queue-form'); f.elements.namedItem('max_wait_secs').value = '240'; \
         f.elements.namedItem('numbers').value = '+441632960003'; $('queue-save').click(); return true; })()",
    )
    .await?;
    until(
        cdp,
        &page,
        &format!(
            "$('queue-status').textContent === {}",
            serde_json::to_string(&format!("{HOSTILE} saved."))?
        ),
    )
    .await
    .context("the change is saved")?;
    let edited: Value = sue.get(t.url(&path)).send().await?.json().await?;
    assert_eq!(edited["max_wait_secs"], 240, "{edited}");
    assert_eq!(edited["numbers"], json!(["+441632960003"]));
    for unchanged in [
        "name",
        "campaign_id",
        "overflow",
        "service_level_pct",
        "service_level_secs",
        "ring_secs",
        "priority",
        "record_calls",
        "welcome_message",
        "opening_hours",
        "time_zone",
    ] {
        assert_eq!(edited[unchanged], created[unchanged], "{unchanged} kept");
    }

    // Today's figures: two calls as the switchboard logs them, one taken
    // after 10 s (within the 15 s target), one given up after 30 s.
    let queue = t.db.store.queue(f.acme.id, crm::model::QueueId(id)).await?;
    let al = crm::model::UserId(f.al);
    let now = t.clock.now_utc();
    for (ago, taken, ends, outcome) in [
        (30, Some(10), 100, InboundOutcome::Answered),
        (20, None, 30, InboundOutcome::Abandoned),
    ] {
        let call = CallRef::random();
        let at = now - TimeDelta::minutes(ago);
        let s = &t.db.store;
        s.inbound_call_arrived(&queue, Some("+447400123456"), call, &Holder::from("n1"), at)
            .await?;
        if let Some(secs) = taken {
            s.inbound_call_taken(f.acme.id, call, al, at + TimeDelta::seconds(secs))
                .await?;
        }
        s.inbound_call_ended(f.acme.id, call, outcome, at + TimeDelta::seconds(ends))
            .await?;
    }
    let before = open_in_london(Utc::now());
    eval(
        cdp,
        &page,
        "(document.querySelector('.tabs [data-tab=queues]').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "document.querySelector('#queue-report tbody tr td:nth-child(2)')?.textContent === '2'",
    )
    .await
    .context("the report shows today's calls")?;
    let seen = eval_json(
        cdp,
        &page,
        "JSON.stringify({ \
           row: [...document.querySelector('#queue-list tbody tr').children].map((c) => c.textContent), \
           report: [...document.querySelector('#queue-report tbody tr').children].map((c) => c.textContent), \
           title: $('queue-form-title').textContent, agentsOf: $('queue-agents-name').textContent, \
           member: document.querySelector('#queue-agents tbody td').textContent, \
           elements: $('tab-queues').querySelectorAll('img, script, iframe, svg').length, \
           images: document.images.length, \
           pwned: window.pwned === undefined ? null : window.pwned, \
           csv: $('queue-report-csv').getAttribute('href') })",
    )
    .await?;
    let after = open_in_london(Utc::now());
    assert_eq!(
        seen["row"],
        json!([
            HOSTILE,
            "+441632960003",
            "Service",
            seen["row"][3],
            "1",
            "Edit"
        ]),
        "{seen}"
    );
    assert!(
        seen["row"][3] == "open" || seen["row"][3] == "closed",
        "{seen}"
    );
    if before == after {
        let open = if before { "open" } else { "closed" };
        assert_eq!(seen["row"][3], open, "by the hours, now in London");
    }
    assert_eq!(
        seen["report"],
        json!([
            HOSTILE,
            "2",
            "1",
            "1",
            "50.0 %",
            "90 % in 15 s",
            "0:10",
            "0:30"
        ]),
        "{seen}"
    );
    assert_eq!(seen["title"], format!("Edit {HOSTILE}"));
    assert_eq!(seen["agentsOf"], HOSTILE);
    assert_eq!(seen["member"], "al");
    assert_eq!(seen["elements"], 0, "no element came from the name: {seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["pwned"], Value::Null, "nothing ran: {seen}");
    let csv_path = seen["csv"].as_str().context("the CSV link")?;
    assert!(
        csv_path.starts_with("/api/reports/queues?") && csv_path.contains("format=csv"),
        "{csv_path}"
    );
    let csv = sue.get(t.url(csv_path)).send().await?;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await?;
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("{id},{HOSTILE},2,1,1,"))),
        "the CSV holds the queue's day: {csv}"
    );

    // The browser's session becomes an agent's: the API refuses and the
    // tab shows the refusal, with nothing of the account left on it.
    let other = cdp.open_page(&t.url("/login")).await?;
    log_in(cdp, &other, "al", &f.agent_pw).await?;
    landed_on_agent_page(cdp, &other).await?;
    let supervisor_page = eval(cdp, &other, "fetch('/supervisor').then((r) => r.status)").await?;
    assert_eq!(supervisor_page, 403, "the agent may not open the page");
    eval(
        cdp,
        &page,
        "(document.querySelector('.tabs [data-tab=queues]').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "$('queue-status').textContent === 'the agent role may not do this' && \
         $('queue-status').classList.contains('error') && \
         document.querySelectorAll('#queue-list tbody tr, #queue-report tbody tr').length === 0 && \
         $('queue-agents-section').hidden && $('queue-form-title').textContent === 'New queue' && \
         $('queue-form').elements.namedItem('campaign_id').options.length === 0",
    )
    .await
    .context("the tab shows the refusal")?;
    let text = eval(cdp, &page, "$('tab-queues').textContent").await?;
    assert!(
        !text.as_str().unwrap_or_default().contains(HOSTILE),
        "the queue's name is gone from the tab"
    );
    let al_client = t.login("al", &f.agent_pw).await;
    for refused in [
        "/api/queues".to_owned(),
        path.clone(),
        format!("{path}/agents"),
        "/api/reports/queues".to_owned(),
    ] {
        assert_eq!(t.get_status(&al_client, &refused).await, 403, "{refused}");
    }
    let r = al_client
        .patch(t.url(&path))
        .json(&json!({ "max_wait_secs": 5 }))
        .send()
        .await?;
    assert_eq!(r.status(), 403);

    // The supervisor again: Delete asks first; keeping it keeps it.
    log_in_again(cdp, t, "sue", &f.sup_pw).await?;
    eval(
        cdp,
        &page,
        "(document.querySelector('.tabs [data-tab=queues]').click(), true)",
    )
    .await?;
    until(
        cdp,
        &page,
        "document.querySelectorAll('#queue-list tbody tr').length === 1 && \
         !$('queue-status').classList.contains('error')",
    )
    .await
    .context("the list is back")?;
    eval(
        cdp,
        &page,
        "(document.querySelector('#queue-list tbody tr button').click(), true)",
    )
    .await?;
    until(cdp, &page, "!$('queue-delete').hidden").await?;
    eval(cdp, &page, "($('queue-delete').click(), true)").await?;
    until(
        cdp,
        &page,
        &format!(
            "$('queue-delete-dialog').open && $('queue-delete-question').textContent.includes({})",
            serde_json::to_string(HOSTILE)?
        ),
    )
    .await
    .context("the dialog asks")?;
    eval(
        cdp,
        &page,
        "($('queue-delete-dialog').querySelector('button[value=keep]').click(), true)",
    )
    .await?;
    until(cdp, &page, "!$('queue-delete-dialog').open").await?;
    assert_eq!(t.get_status(&sue, &path).await, 200, "kept");
    eval(cdp, &page, "($('queue-delete').click(), true)").await?;
    until(cdp, &page, "$('queue-delete-dialog').open").await?;
    eval(cdp, &page, "($('queue-delete-confirm').click(), true)").await?;
    until(
        cdp,
        &page,
        "$('queue-status').textContent.endsWith(' deleted.') && \
         document.querySelectorAll('#queue-list tbody tr').length === 0 && \
         !$('queue-none').hidden && $('queue-delete').hidden",
    )
    .await
    .context("the queue is deleted")?;
    assert_eq!(t.get_status(&sue, &path).await, 404, "deleted");
    let audit = t.db.store.audit_entries(f.acme.id, 100).await?;
    let target = format!("queue:{id}");
    for action in [
        "queue.create",
        "queue.update",
        "queue.assign_agents",
        "queue.delete",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.target.as_deref() == Some(target.as_str())),
            "{action} is audited"
        );
    }
    Ok(())
}

/// Logs in on a fresh tab of the same browser, which then holds the session.
async fn log_in_again(cdp: &mut Cdp, t: &TestApp, username: &str, password: &str) -> Result<()> {
    let page = cdp.open_page(&t.url("/login")).await?;
    log_in(cdp, &page, username, password).await?;
    landed_on_wallboard(cdp, &page).await
}

/// Whether the edited queue's hours (08:00–21:00 Monday to Friday, 10:00–13:00
/// Saturday, closed Sunday) hold at `now` in London.
fn open_in_london(now: chrono::DateTime<Utc>) -> bool {
    let local = now.with_timezone(&chrono_tz::Europe::London);
    let minutes = local.hour() * 60 + local.minute();
    match local.weekday() {
        Weekday::Sun => false,
        Weekday::Sat => (600..780).contains(&minutes),
        _ => (480..1260).contains(&minutes),
    }
}
