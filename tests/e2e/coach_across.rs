//! A supervisor on one node whispers to, then takes over, a call another node
//! holds, in real Chromiums, the nodes being the real binary on PostgreSQL and
//! NATS.
//!
//! The agent takes the call on node A; the supervisor, on node B's wallboard,
//! listens (B finds the call on A, the page sends a new offer, A makes the
//! leg), then whispers and takes over: each change of mode goes from B to A
//! over NATS, for the leg already there, with no new offer. The agent hears
//! the whisper and the customer does not; after the takeover the customer
//! hears the supervisor, the agent nothing, and the agent's desk on A is in
//! wrap-up. Each mode is audited on B.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use crm::model::Role;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use serde_json::json;
use sip_gateway::carrier::Carrier;

use crate::coach::{click_mode, hear, Ears, AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ};
use crate::failover::{Node, Stage};
use crate::restarts::{go_ready, log_in, seed};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{until, write_tone};
use crate::wallboard::landed_on_wallboard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_on_one_node_coaches_a_call_held_by_another() {
    let Some(st) = Stage::start("coach-across", CUSTOMER_HZ).await else {
        return;
    };
    st.customers.start_capture();
    let outcome = tokio::time::timeout(
        Duration::from_secs(150),
        coach_across(&st.db, &st.nats, &st.customers, &st.chromium, &st.dir),
    )
    .await;
    st.finish().await;
    outcome
        .expect("the cross-node coaching test took longer than 150 s")
        .unwrap();
}

async fn coach_across(
    db: &TestDb,
    nats: &TestNats,
    customers: &Carrier,
    chromium: &Path,
    dir: &Path,
) -> Result<()> {
    let s = &db.store;
    let seeded = seed(s).await?;
    let password = "Pw-sue-coach-1234";
    let hash = crm::password::hash(password)?;
    let sue = s
        .create_user(
            seeded.account,
            "sue",
            &hash,
            Role::Supervisor,
            chrono::Utc::now(),
        )
        .await?;
    let a = Node::serve(db, nats, customers, dir, "node-a").await?;
    let b = Node::serve(db, nats, customers, dir, "node-b").await?;

    let agent_tone = dir.join("agent.wav");
    write_tone(&agent_tone, AGENT_HZ)?;
    let agent_browser = Chromium::start(chromium, &dir.join("agent-profile"), &agent_tone).await?;
    let mut agent_cdp = Cdp::connect(&agent_browser.ws_url).await?;
    let sup_tone = dir.join("supervisor.wav");
    write_tone(&sup_tone, SUPERVISOR_HZ)?;
    let sup_browser = Chromium::start(chromium, &dir.join("sup-profile"), &sup_tone).await?;
    let mut sup_cdp = Cdp::connect(&sup_browser.ws_url).await?;
    let result = async {
        // The agent takes a call on node A.
        let page = agent_cdp.open_page(&format!("{}/login", a.base)).await?;
        log_in(&mut agent_cdp, &page, &seeded.agent_password).await?;
        go_ready(&mut agent_cdp, &page, &a.base, seeded.campaign).await?;
        until(&mut agent_cdp, &page, "$('state').dataset.state === 'in_call'").await?;

        // The supervisor works from node B's wallboard.
        let board = sup_cdp.open_page(&format!("{}/login", b.base)).await?;
        let login = format!(
            "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
             f.password.value = {}; f.requestSubmit(); return true; }})()",
            serde_json::to_string(password)?
        );
        sup_cdp.evaluate(&board, &login).await?;
        landed_on_wallboard(&mut sup_cdp, &board).await?;
        sup_cdp
            .call(
                Some(&board),
                "Page.navigate",
                json!({ "url": format!("{}/supervisor?processing=off", b.base) }),
            )
            .await?;
        landed_on_wallboard(&mut sup_cdp, &board).await?;
        let row = "document.querySelector('#calls tbody tr[data-state=connected]')";
        until(
            &mut sup_cdp,
            &board,
            &format!("{row} !== null && {row}.querySelector('button[data-listen=whisper]')"),
        )
        .await
        .context("node B's wallboard offers the modes on node A's call")?;
        let call = sup_cdp
            .evaluate(&board, &format!("{row}.dataset.callRef"))
            .await?
            .as_str()
            .context("the row names its call")?
            .to_owned();

        let mut agent = Ears {
            cdp: &mut agent_cdp,
            page,
            audio: "remote",
            who: "agent",
        };
        let mut supervisor = Ears {
            cdp: &mut sup_cdp,
            page: board,
            audio: "listen-audio",
            who: "supervisor",
        };
        click_mode(&mut supervisor, "listen").await?;
        until(
            supervisor.cdp,
            &supervisor.page,
            "$('listen-audio').dataset.state === 'connected' && $('listen-audio').srcObject !== null",
        )
        .await
        .context("the listening audio connects to node A")?;
        ensure!(
            a.log().contains("listening leg made for another node"),
            "node A, which holds the call, made the leg"
        );
        supervisor
            .cdp
            .evaluate(&supervisor.page, "window.firstPc = listening.pc; true")
            .await?;

        click_mode(&mut supervisor, "whisper").await?;
        let h = hear("whisper across nodes", customers, &mut agent, &mut supervisor).await?;
        h.page("agent", SUPERVISOR_HZ, true)?;
        h.page("agent", CUSTOMER_HZ, true)?;
        h.customer(SUPERVISOR_HZ, false)?;
        h.page("supervisor", CUSTOMER_HZ, true)?;
        ensure!(
            a.log().contains("mode changed for another node"),
            "node A changed the mode of the leg it holds"
        );

        click_mode(&mut supervisor, "takeover").await?;
        until(
            agent.cdp,
            &agent.page,
            "$('state').dataset.state === 'wrap_up'",
        )
        .await
        .context("the agent's desk on node A goes to wrap-up")?;
        let h = hear("take over across nodes", customers, &mut agent, &mut supervisor).await?;
        h.customer(SUPERVISOR_HZ, true)?;
        h.page("supervisor", CUSTOMER_HZ, true)?;
        h.page("agent", CUSTOMER_HZ, false)?;
        h.page("agent", SUPERVISOR_HZ, false)?;
        let same = supervisor
            .cdp
            .evaluate(&supervisor.page, "window.firstPc === listening.pc")
            .await?;
        ensure!(same == json!(true), "one connection for every mode");

        let audit = s.audit_entries(seeded.account, 100).await?;
        let target = format!("call:{call}");
        for action in ["call.listen", "call.whisper", "call.takeover"] {
            ensure!(
                audit.iter().any(|e| e.action == action
                    && e.user_id == Some(sue.id)
                    && e.target.as_deref() == Some(target.as_str())),
                "{action} audited: {audit:?}"
            );
        }

        // Hanging up on B ends the call A holds.
        supervisor
            .cdp
            .evaluate(
                &supervisor.page,
                "document.querySelector('#calls tbody button[data-listen=stop]').click()",
            )
            .await?;
        until(
            supervisor.cdp,
            &supervisor.page,
            &format!("document.querySelector('#calls tbody tr[data-call-ref=\"{call}\"]') === null"),
        )
        .await
        .context("the call taken over ends when the supervisor hangs up")?;
        Ok(())
    }
    .await;
    agent_browser.stop(&mut agent_cdp).await;
    sup_browser.stop(&mut sup_cdp).await;
    drop((a, b));
    result
}
