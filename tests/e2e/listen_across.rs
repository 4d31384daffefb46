//! A supervisor on one node listens to a call another node holds, in real
//! Chromiums, the nodes being the real binary on PostgreSQL and NATS.
//!
//! The customer (the simulated carrier) plays 697 Hz; the agent, in one
//! Chromium on node A, speaks at 300 Hz; the supervisor, in another
//! Chromium on node B's wallboard, clicks Listen on the call: B finds it
//! held by A, the page sends a new offer, A makes the leg and points it at
//! the call, and the page hears both tones. The start is audited; Stop
//! hangs A's leg up. A supervisor's stream on B sees A's call ring,
//! connect and end, each within a second of A telling it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use crm::model::Role;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use serde_json::Value;
use sip_gateway::carrier::Carrier;

use crate::failover::{login, stream, Node, Stage};
use crate::listen_page::{
    analyse, assert_heard, packets_arrive, AGENT_HZ, CUSTOMER_HZ, MICROPHONE_HZ,
};
use crate::restarts::{go_ready, log_in, seed};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{until, write_tone};
use crate::wallboard::landed_on_wallboard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_on_one_node_listens_to_a_call_held_by_another() {
    let Some(st) = Stage::start("listen-across", CUSTOMER_HZ).await else {
        return;
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(150),
        listen_across(&st.db, &st.nats, &st.customers, &st.chromium, &st.dir),
    )
    .await;
    st.finish().await;
    outcome
        .expect("the cross-node listening test took longer than 150 s")
        .unwrap();
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
    // A supervisor's stream on B notes when each of the call's states
    // arrives, against the time node A stamped on it (one machine, one clock).
    let cookie = login(&b.base, "sue", password).await?;
    let mut watch = stream(&b, &cookie).await?;
    let watched = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut seen: Vec<(String, chrono::DateTime<chrono::Utc>, Value)> = Vec::new();
        while let Some(Ok(message)) = watch.next().await {
            let received = chrono::Utc::now();
            let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if frame["event"]["kind"] == "call_state" {
                let state = frame["event"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let ended = state == "ended";
                seen.push((state, received, frame["event"].clone()));
                if ended {
                    break;
                }
            }
        }
        seen
    });
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

        // The agent hangs up: B's supervisor saw the call ring, connect and
        // end, each within a second.
        agent
            .evaluate(&page, "document.getElementById('hangup').click()")
            .await?;
        let seen = tokio::time::timeout(Duration::from_secs(20), watched)
            .await
            .context("B's stream saw the call end")??;
        for wanted in ["ringing", "connected", "ended"] {
            let (_, received, event) = seen
                .iter()
                .find(|(state, ..)| state == wanted)
                .with_context(|| format!("B's stream saw the call {wanted}: {seen:?}"))?;
            let at: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(event["at"].clone()).context("the event's time")?;
            let took = *received - at;
            anyhow::ensure!(
                took < chrono::TimeDelta::seconds(1),
                "the call's {wanted} reached a supervisor on node B {took} after node A told it"
            );
        }
        Ok(())
    }
    .await;
    agent_browser.stop(&mut agent).await;
    sup_browser.stop(&mut sup).await;
    drop((a, b));
    result
}
