//! A supervisor on one node listens to a call another node holds, in real
//! Chromiums, the nodes being the real binary on PostgreSQL and NATS.
//!
//! The customer (the simulated carrier) plays 697 Hz; the agent, in one
//! Chromium on node A, speaks at 300 Hz; the supervisor, in another
//! Chromium on node B's wallboard, clicks Listen on the call: B finds it
//! held by A, the page sends a new offer, A makes the leg and points it at
//! the call, and the page hears both tones. The start is audited; Stop
//! hangs A's leg up.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use crm::model::Role;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use serde_json::Value;
use sip_gateway::carrier::{Carrier, Mix, Outcome};

use crate::dialler::carrier;
use crate::failover::Node;
use crate::listen_page::{
    analyse, assert_heard, packets_arrive, AGENT_HZ, CUSTOMER_HZ, MICROPHONE_HZ,
};
use crate::restarts::{go_ready, log_in, seed};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{peers_or_skip, until, write_tone, ONE_AT_A_TIME};
use crate::wallboard::landed_on_wallboard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_on_one_node_listens_to_a_call_held_by_another() {
    let Some(chromium) = peers_or_skip().await else {
        return;
    };
    let Some(nats) = TestNats::start().await else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("dialcrm-listen-across-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let customers = carrier(Mix::always(Outcome::Answer), CUSTOMER_HZ, None).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(150),
        listen_across(&db, &nats, &customers, &chromium, &dir),
    )
    .await;
    db.finish().await;
    outcome
        .expect("the cross-node listening test took longer than 150 s")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn listen_across(
    db: &TestDb,
    nats: &TestNats,
    customers: &Carrier,
    chromium: &Path,
    dir: &Path,
) -> Result<()> {
    let s = &db.store;
    let seeded = seed(s).await?;
    let password = "Pw-sue-listen-1234";
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
    let mut agent = Cdp::connect(&agent_browser.ws_url).await?;
    let sup_tone = dir.join("supervisor.wav");
    write_tone(&sup_tone, MICROPHONE_HZ)?;
    let sup_browser = Chromium::start(chromium, &dir.join("sup-profile"), &sup_tone).await?;
    let mut sup = Cdp::connect(&sup_browser.ws_url).await?;
    let result = async {
        // The agent takes a call on node A.
        let page = agent.open_page(&format!("{}/login", a.base)).await?;
        log_in(&mut agent, &page, &seeded.agent_password).await?;
        go_ready(&mut agent, &page, &a.base, seeded.campaign).await?;
        until(&mut agent, &page, "$('state').dataset.state === 'in_call'").await?;

        // The supervisor watches node B's wallboard and listens to it.
        let board = sup.open_page(&format!("{}/login", b.base)).await?;
        let login = format!(
            "(() => {{ const f = document.getElementById('login'); f.username.value = 'sue'; \
             f.password.value = {}; f.requestSubmit(); return true; }})()",
            serde_json::to_string(password)?
        );
        sup.evaluate(&board, &login).await?;
        landed_on_wallboard(&mut sup, &board).await?;
        let listen_button = "document.querySelector(\
             '#calls tbody tr[data-state=connected] button[data-listen=listen]')";
        until(&mut sup, &board, &format!("{listen_button} !== null"))
            .await
            .context("node B's wallboard offers Listen on node A's call")?;
        sup.evaluate(&board, &format!("{listen_button}.click()"))
            .await?;
        until(
            &mut sup,
            &board,
            "$('listen-audio').dataset.state === 'connected' \
             && document.querySelector('#calls tbody button[data-listen=stop]') !== null",
        )
        .await
        .context("the listening audio connects")?;
        anyhow::ensure!(
            a.log().contains("listening leg made for another node"),
            "node A, which holds the call, made the leg"
        );
        packets_arrive(&mut sup, &board).await?;
        let frames: Value = serde_json::from_str(
            sup.evaluate(&board, &analyse())
                .await?
                .as_str()
                .context("no analyser report")?,
        )?;
        assert_heard(&frames, "customer")?;
        assert_heard(&frames, "agent")?;

        let audit = s.audit_entries(seeded.account, 100).await?;
        let listens: Vec<_> = audit.iter().filter(|e| e.action == "call.listen").collect();
        anyhow::ensure!(listens.len() == 1, "one listen, audited: {listens:?}");
        anyhow::ensure!(listens[0].user_id == Some(sue.id));

        // Stop hangs the leg on node A up.
        sup.evaluate(
            &board,
            "document.querySelector('#calls tbody button[data-listen=stop]').click()",
        )
        .await?;
        until(
            &mut sup,
            &board,
            "$('listen-audio').dataset.state === 'closed' \
             && $('listen-status').textContent === 'Stopped listening.'",
        )
        .await
        .context("Stop ends the listening")?;
        Ok(())
    }
    .await;
    agent_browser.stop(&mut agent).await;
    sup_browser.stop(&mut sup).await;
    drop((a, b));
    result
}
