//! The abandon figures the law counts on outlive the process and span
//! nodes: a campaign runs real calls to a known number of live answers and
//! abandons, then the service restarts (or a second node starts on the same
//! PostgreSQL), and the figures and the pacer's allowance carry on from the
//! same counts.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use crm::events::{CallPhase, CampaignFigures, Event};
use crm::model::{Account, CampaignId, ContactFields, ContactId, Role, UserId};
use crm::store::campaign_settings::DialMode;
use crm::testing::TestBackend;
use dialer::pacer::AgentState;
use sip_gateway::carrier::{Carrier, Mix, Outcome};
use sip_gateway::gateway::{CallRef, TrunkConfig};
use tokio::sync::broadcast;

use crate::dialler::{agent_phone, carrier, DAY_ZONE};
use crate::helpers::{spawn_app_with, NowUtc, TestApp};

/// Live answers of an earlier day's work, written by a node long gone.
const HISTORY: u64 = 96;

#[tokio::test]
async fn abandon_figures_outlive_a_restart_on_sqlite() {
    outlive_a_restart(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn abandon_figures_outlive_a_restart_on_postgres() {
    outlive_a_restart(TestBackend::Postgres).await;
}

async fn outlive_a_restart(backend: TestBackend) {
    let peers = Peers::start().await;
    let Some(t) = spawn_app_with(backend, false, peers.trunks()).await else {
        return;
    };
    let floor = Floor::seed(&t, 4).await;
    // Three calls reach the agent; the fourth finds the agent's audio gone
    // and is abandoned.
    let (connected, abandoned) = floor.work(&t, 3, 1).await;
    assert_eq!((connected, abandoned), (3, 1));
    let expected = (HISTORY + 4, 1);
    let before = figures_reach(&t.app.bus, floor.campaign, expected).await;
    // 3% of 100 live answers is 3 abandons; one is used: 2 more are allowed.
    assert_eq!(before.abandons_allowed, 2);
    assert_eq!(before.live_30d, HISTORY + 4);
    assert_eq!(before.abandoned_30d, 1);

    // The operator restarts the service: a new process on the same database.
    let t = t.restart().await;
    let after = figures_reach(&t.app.bus, floor.campaign, expected).await;
    assert_eq!(after.abandons_allowed, 2, "the allowance carries on");
    assert_eq!(after.abandon_rate_24h, before.abandon_rate_24h);
    assert_eq!(after.live_30d, before.live_30d);

    // And it keeps counting: one more abandon after the restart.
    let leg = CallRef::random();
    floor.add_contacts(&t, 1).await;
    let mut bus = t.app.bus.subscribe();
    floor.ready(&t, leg).await;
    wait_for_call(&mut bus, CallPhase::Abandoned).await;
    let later = figures_reach(&t.app.bus, floor.campaign, (HISTORY + 5, 2)).await;
    assert_eq!(later.abandons_allowed, 1);
    t.app.stop().await.expect("clean shutdown");
    t.db.finish().await;
}

#[tokio::test]
async fn two_nodes_on_one_postgres_count_one_rate() {
    let peers = Peers::start().await;
    let Some(t) = spawn_app_with(TestBackend::Postgres, false, peers.trunks()).await else {
        return;
    };
    let floor = Floor::seed(&t, 3).await;
    let (connected, abandoned) = floor.work(&t, 2, 1).await;
    assert_eq!((connected, abandoned), (2, 1));
    let expected = (HISTORY + 3, 1);
    figures_reach(&t.app.bus, floor.campaign, expected).await;

    // A second node joins: it dials the same running campaign for its own
    // agents (none yet), pacing against the same figures.
    let b = t.another_node("node-b").await;
    let seen_by_b = figures_reach(&b.bus, floor.campaign, expected).await;
    // 3% of 99 live answers less the one abandon: 2 more.
    assert_eq!(seen_by_b.abandons_allowed, 2);

    // An abandon on node A reaches node B's figures: both nodes count every
    // node's attempts.
    floor.add_contacts(&t, 1).await;
    let mut bus = t.app.bus.subscribe();
    floor.ready(&t, CallRef::random()).await;
    wait_for_call(&mut bus, CallPhase::Abandoned).await;
    let on_b = figures_reach(&b.bus, floor.campaign, (HISTORY + 4, 2)).await;
    assert_eq!(
        on_b.abandons_allowed, 1,
        "node B paces against node A's abandon"
    );
    let on_a = figures_reach(&t.app.bus, floor.campaign, (HISTORY + 4, 2)).await;
    assert_eq!(on_a.abandons_allowed, 1);
    b.stop().await.expect("node B stops");
    t.app.stop().await.expect("clean shutdown");
    t.db.finish().await;
}

/// The customers' carrier (answers, talks a second, hangs up) and the phone
/// standing in for the agent's nailed-up audio leg.
struct Peers {
    customers: Carrier,
    phones: Carrier,
}

impl Peers {
    async fn start() -> Peers {
        Peers {
            customers: carrier(Mix::always(Outcome::Answer), 440.0, Some(1)).await,
            phones: carrier(Mix::always(Outcome::Answer), 1000.0, None).await,
        }
    }

    fn trunks(&self) -> Vec<TrunkConfig> {
        let mut customers = TrunkConfig::new("customers", self.customers.sip_addr());
        customers.max_cps = 100;
        vec![
            customers,
            TrunkConfig::new("phones", self.phones.sip_addr()),
        ]
    }
}

/// An account with one agent, a progressive campaign and its contacts.
struct Floor {
    account: Account,
    agent: UserId,
    campaign: CampaignId,
    list: crm::model::ListId,
}

impl Floor {
    async fn seed(t: &TestApp, contacts: usize) -> Floor {
        let s = &t.db.store;
        let now = t.clock.now_utc();
        let account = t.account("acme", 5).await;
        let sup = t.user(&account, "sue", Role::Supervisor).await;
        t.user(&account, "al", Role::Agent).await;
        let agent = s.credentials("al").await.expect("q").expect("al").0.id;
        let list = s
            .create_list(account.id, "L", "GB", now)
            .await
            .expect("list");
        let floor = Floor {
            campaign: CampaignId(0),
            account,
            agent,
            list: list.id,
        };
        let first = floor.add_contacts(t, contacts).await;
        let campaign = t
            .start_campaign(
                &floor.account,
                list.id,
                "Winter",
                DialMode::Progressive,
                Some("customers"),
                ("sue", &sup),
            )
            .await
            .id;
        // An earlier day's work by a node that is gone: 96 connected calls
        // an hour ago, in the same database.
        for _ in 0..HISTORY {
            let call = CallRef::random();
            let at = now - TimeDelta::hours(1);
            s.open_attempt(floor.account.id, call, campaign, first, "gone", at)
                .await
                .expect("attempt");
            s.mark_connected(floor.account.id, call, at)
                .await
                .expect("connected");
            let attempt = s
                .attempt_by_ref(floor.account.id, call)
                .await
                .expect("attempt");
            s.mark_ended(floor.account.id, attempt.id, "answered", at)
                .await
                .expect("ended");
        }
        Floor { campaign, ..floor }
    }

    /// Adds contacts in a zone inside calling hours to the campaign's list.
    async fn add_contacts(&self, t: &TestApp, n: usize) -> ContactId {
        let s = &t.db.store;
        let now = t.clock.now_utc();
        let mut first = None;
        for _ in 0..n {
            let phone = format!("+4477009{:05}", rand_suffix());
            let contact = s
                .create_contact(
                    self.account.id,
                    &ContactFields {
                        first_name: "Carol".into(),
                        phone_e164: phone.clone(),
                        phone_raw: phone,
                        time_zone: Some(DAY_ZONE.into()),
                        custom_fields: serde_json::json!({}),
                        ..ContactFields::default()
                    },
                    now,
                )
                .await
                .expect("contact");
            s.add_to_list(self.account.id, self.list, contact.id, now)
                .await
                .expect("member");
            first.get_or_insert(contact.id);
        }
        if self.campaign.0 != 0 {
            s.sync_leads(self.account.id, self.campaign, now)
                .await
                .expect("leads");
        }
        first.expect("at least one contact")
    }

    /// Tells the floor the agent is Ready on `leg`.
    async fn ready(&self, t: &TestApp, leg: CallRef) {
        t.app
            .floor
            .agent(
                self.account.id,
                self.campaign,
                self.agent,
                AgentState::Ready,
                Some(leg),
            )
            .await
            .expect("the campaign runs here");
    }

    /// Works `connect` calls with the agent on a real audio leg, then
    /// `abandon` calls with the agent's leg gone (the bridge fails, so the
    /// answered call is abandoned); returns what the bus saw.
    async fn work(&self, t: &TestApp, connect: usize, abandon: usize) -> (usize, usize) {
        let mut bus = t.app.bus.subscribe();
        let leg = agent_phone(&t.app.telephony.gateway).await;
        self.ready(t, leg).await;
        let (mut connected, mut abandoned) = (0, 0);
        while connected + abandoned < connect + abandon {
            match next_call_end(&mut bus).await {
                Some(CallPhase::Connected) => connected += 1,
                Some(CallPhase::Abandoned) => abandoned += 1,
                _ => continue,
            }
            // The agent wraps up and is Ready again, on the real leg until
            // enough calls were connected.
            let leg = if connected < connect {
                leg
            } else {
                CallRef::random()
            };
            wait_for_call(&mut bus, CallPhase::Ended).await;
            self.ready(t, leg).await;
        }
        (connected, abandoned)
    }
}

fn rand_suffix() -> u32 {
    (CallRef::random().as_u128() % 100_000) as u32
}

/// Returns the next connected or abandoned state of a call.
async fn next_call_end(bus: &mut broadcast::Receiver<Arc<Event>>) -> Option<CallPhase> {
    let event = tokio::time::timeout(Duration::from_secs(30), bus.recv())
        .await
        .expect("the campaign keeps calling")
        .expect("the bus runs");
    match event.as_ref() {
        Event::CallState { state, .. }
            if matches!(state, CallPhase::Connected | CallPhase::Abandoned) =>
        {
            Some(*state)
        }
        _ => None,
    }
}

async fn wait_for_call(bus: &mut broadcast::Receiver<Arc<Event>>, wanted: CallPhase) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = bus.recv().await.expect("the bus runs");
            if matches!(event.as_ref(), Event::CallState { state, .. } if *state == wanted) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a call reached {wanted:?}"));
}

/// Waits for the campaign's figures to show `(live, abandoned)` over the
/// last 24 hours, and returns them.
async fn figures_reach(
    bus: &crm::events::EventBus,
    campaign: CampaignId,
    (live, abandoned): (u64, u64),
) -> CampaignFigures {
    let mut events = bus.subscribe();
    let mut last = None;
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let event = events.recv().await.expect("the bus runs");
            if let Event::CampaignFigures {
                campaign_id,
                figures,
                ..
            } = event.as_ref()
            {
                if *campaign_id != campaign {
                    continue;
                }
                if (figures.live_24h, figures.abandoned_24h) == (live, abandoned) {
                    return figures.clone();
                }
                last = Some(figures.clone());
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("figures never reached {live}/{abandoned}; last {last:?}"))
}
