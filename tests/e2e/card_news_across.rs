//! A supervisor on one node corrects the contact of a call an agent takes
//! on another, the nodes being the real binary on PostgreSQL and NATS: the
//! agent's card in Chromium on node A shows the change, and who made it,
//! without the page being reloaded.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use crm::model::Role;
use crm::testing::nats::TestNats;
use crm::testing::TestDb;
use serde_json::{json, Value};
use sip_gateway::carrier::Carrier;

use crate::failover::{login, Node, Stage};
use crate::helpers::client;
use crate::restarts::{go_ready, log_in, seed};
use crate::softphone::cdp::{Cdp, Chromium};
use crate::softphone::{until, write_tone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_node_reaches_the_card_of_an_agent_on_another() {
    let Some(st) = Stage::start("card-news-across", 440.0).await else {
        return;
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        across(&st.db, &st.nats, &st.customers, &st.chromium, &st.dir),
    )
    .await;
    st.finish().await;
    outcome
        .expect("the cross-node card test took longer than 120 s")
        .unwrap();
}

async fn across(
    db: &TestDb,
    nats: &TestNats,
    customers: &Carrier,
    chromium: &Path,
    dir: &Path,
) -> Result<()> {
    let s = &db.store;
    let seeded = seed(s).await?;
    let password = "Pw-sue-card-news-1234";
    let hash = crm::password::hash(password)?;
    s.create_user(
        seeded.account,
        "sue",
        &hash,
        Role::Supervisor,
        chrono::Utc::now(),
    )
    .await?;
    let a = Node::serve(db, nats, customers, dir, "node-a").await?;
    let b = Node::serve(db, nats, customers, dir, "node-b").await?;
    let tone = dir.join("agent.wav");
    write_tone(&tone, 300.0)?;
    let browser = Chromium::start(chromium, &dir.join("agent-profile"), &tone).await?;
    let mut agent = Cdp::connect(&browser.ws_url).await?;
    let result = async {
        let page = agent.open_page(&format!("{}/login", a.base)).await?;
        log_in(&mut agent, &page, &seeded.agent_password).await?;
        go_ready(&mut agent, &page, &a.base, seeded.campaign).await?;
        until(
            &mut agent,
            &page,
            "$('state').dataset.state === 'in_call' && !$('contact').hidden",
        )
        .await
        .context("the agent takes a call on node A")?;
        let call_ref: String = serde_json::from_value(
            agent
                .evaluate(&page, "document.getElementById('contact').dataset.callRef")
                .await?,
        )?;
        let attempt = s
            .attempt_by_ref(
                seeded.account,
                call_ref.parse().context("a call reference")?,
            )
            .await?;
        let contact = attempt.contact_id.context("the call's contact")?;
        let first = s.contact(seeded.account, contact).await?.fields.first_name;

        // The supervisor corrects it on node B.
        let cookie = login(&b.base, "sue", password).await?;
        let url = format!("{}/api/contacts/{contact}", b.base);
        let read: Value = client()
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await?
            .json()
            .await?;
        let r = client()
            .patch(&url)
            .header("cookie", &cookie)
            .json(&json!({ "version": read["version"], "last_name": "Byron" }))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "the edit on node B: {}", r.status());
        until(
            &mut agent,
            &page,
            &format!(
                "$('card-status').textContent === 'Changed by sue just now: last name.' && \
                 $('contact-name').textContent === {}",
                serde_json::to_string(&format!("{first} Byron"))?
            ),
        )
        .await
        .context("node A's agent sees node B's change on the card")?;
        agent
            .evaluate(&page, "document.getElementById('hangup').click()")
            .await?;
        Ok(())
    }
    .await;
    browser.stop(&mut agent).await;
    drop((a, b));
    result
}
