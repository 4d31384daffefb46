//! The floor of the inbound benchmark (included with `#[path]` by `inbound_load.rs`): the
//! account, its agents with their desk phones' credentials, the campaign they sit Ready in
//! and the queue that borrows them; the calls to their phones that become their audio legs;
//! and the stand-in for their desks, which puts them back to Ready after each call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use crm::events::{CallPhase, Event};
use crm::model::{AccountId, CampaignId, Role, UserId};
use crm::store::campaign_settings::{CampaignSettings, DayHours, DialMode, WeeklyHours};
use crm::store::queues::QueueSettings;
use dialcrm::App;
use dialer_core::AgentState;
use sip_gateway::gateway::{CallEvent, CallEventKind, CallRef};
use tokio::sync::{broadcast, mpsc, watch};

/// The user and SIP name of the `i`th agent (from 0).
pub fn agent_name(i: usize) -> String {
    format!("agent{:04}", i + 1)
}

/// The SIP password of the `i`th agent's desk phone.
pub fn sip_password(i: usize) -> String {
    format!("desk-{:04}-phone-secret", i + 1)
}

/// The account, its campaign and queue, and its agents.
pub struct Centre {
    /// The account.
    pub account: AccountId,
    /// The campaign its agents work.
    pub campaign: CampaignId,
    /// Each agent and their SIP user name.
    pub agents: Vec<(UserId, String)>,
}

impl Centre {
    /// Creates the account, `count` agents (each with a SIP password), a running campaign
    /// in `mode` with nobody to call, and the queue on `number` that borrows its agents.
    pub async fn seat(app: &App, count: usize, mode: DialMode, number: &str) -> Result<Centre> {
        let store = &app.store;
        let now = Utc::now();
        let seats = i64::try_from(count).unwrap_or(i64::MAX);
        let account = store.create_account("Inbound bench", seats, now).await?;
        let actor = crm::model::Actor {
            account_id: Some(account.id),
            ..Default::default()
        };
        // One hash for every agent: they never log in, and each hash costs tens of ms.
        let hash = crm::password::hash("Bench-agent-1234")?;
        let mut agents = Vec::with_capacity(count);
        for i in 0..count {
            let name = agent_name(i);
            let user = store
                .create_user(account.id, &name, &hash, Role::Agent, now)
                .await?;
            store
                .set_sip_password(&actor, user.id, None, "dialcrm", &sip_password(i), now)
                .await?;
            agents.push((user.id, name));
        }
        let list = store.create_list(account.id, "Empty", "GB", now).await?;
        let campaign = store
            .create_campaign(account.id, "Service", "+441632960000", now)
            .await?;
        store
            .attach_list(account.id, campaign.id, list.id, 0)
            .await?;
        let mut settings = CampaignSettings::defaults("+441632960000");
        settings.mode = mode;
        settings.trunk = "provider".into();
        store
            .update_campaign_settings(account.id, campaign.id, &settings, now)
            .await?;
        let ids: Vec<UserId> = agents.iter().map(|(id, _)| *id).collect();
        store.assign_agents(account.id, campaign.id, &ids).await?;
        store.start_campaign(account.id, campaign.id, now).await?;
        app.floor.start_campaign(account.id, campaign.id).await?;
        // Open whenever the benchmark runs: the default hours (08:00–21:00)
        // would refuse every call of an evening run with 480.
        let mut queue_settings = QueueSettings::new(campaign.id);
        queue_settings.opening_hours = WeeklyHours::every_day(DayHours::all_day());
        let queue = store
            .create_queue(
                account.id,
                "Support",
                &queue_settings,
                &[number.to_owned()],
                now,
            )
            .await?;
        for id in &ids {
            store
                .assign_queue_agent(account.id, queue.id, *id, 5)
                .await?;
        }
        Ok(Centre {
            account: account.id,
            campaign: campaign.id,
            agents,
        })
    }

    /// Waits until every agent's phone is registered, or registrations stop coming;
    /// returns how many are.
    pub async fn wait_registered(&self, app: &App) -> Result<usize> {
        let gateway = &app.telephony.gateway;
        let mut last = (0, Instant::now());
        loop {
            let mut registered = 0;
            for (_, name) in &self.agents {
                if gateway.phone(name).await?.is_some() {
                    registered += 1;
                }
            }
            if registered == self.agents.len() {
                return Ok(registered);
            }
            if registered > last.0 {
                last = (registered, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(10) {
                return Ok(registered);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Calls every agent's phone, `rate` a second, as their desk does when they choose it
    /// as audio, and returns each agent's answered leg; a phone may ring for `ring`.
    pub async fn call_phones(
        &self,
        app: &App,
        rate: u32,
        ring: Duration,
        tx: mpsc::UnboundedSender<CallEvent>,
        events: &mut mpsc::UnboundedReceiver<CallEvent>,
    ) -> Result<Arc<HashMap<UserId, CallRef>>> {
        let gateway = &app.telephony.gateway;
        let mut ringing: HashMap<CallRef, UserId> = HashMap::new();
        let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
        for (user, name) in &self.agents {
            pace.tick().await;
            let leg = CallRef::random();
            gateway
                .call_phone_watched(name, leg, ring, tx.clone())
                .await
                .with_context(|| format!("calling the desk phone {name}"))?;
            ringing.insert(leg, *user);
        }
        let mut legs = HashMap::new();
        let answers = async {
            while legs.len() < self.agents.len() {
                let Some(event) = events.recv().await else {
                    bail!("the phone legs' events stopped");
                };
                match event.kind {
                    CallEventKind::Answered => {
                        if let Some(user) = ringing.remove(&event.call_ref) {
                            legs.insert(user, event.call_ref);
                        }
                    }
                    CallEventKind::Ended { cause } if ringing.contains_key(&event.call_ref) => {
                        bail!("a desk phone did not answer: {cause:?}");
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(ring + Duration::from_secs(5), answers)
            .await
            .context("desk phones still ringing")??;
        Ok(Arc::new(legs))
    }
}

/// What the bus said of the queue's calls.
#[derive(Debug, Default)]
pub struct FloorCounts {
    /// Calls answered and waiting for an agent.
    pub queued: usize,
    /// Calls connected to an agent.
    pub connected: usize,
    /// Calls ended.
    pub ended: usize,
    /// From `Queued` (the switchboard answered) to `Connected`, sorted.
    pub waits: Vec<Duration>,
}

/// Stands in for the agents' desks: each agent whose call ended is Ready again at once with
/// their phone leg; meanwhile counts the calls' `Queued`, `Connected` and `Ended`, telling
/// `ended` how many have ended.
pub async fn desks(
    mut bus: broadcast::Receiver<Arc<Event>>,
    floor: Arc<dialer::floor::Floor>,
    account: AccountId,
    campaign: CampaignId,
    legs: Arc<HashMap<UserId, CallRef>>,
    mut stop: watch::Receiver<bool>,
    ended: watch::Sender<usize>,
) -> Result<FloorCounts> {
    let mut counts = FloorCounts::default();
    let mut queued_at: HashMap<CallRef, DateTime<Utc>> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = bus.recv() => event.context("the event bus lagged or closed")?,
            _ = stop.changed() => break,
        };
        let Event::CallState {
            call_ref,
            campaign_id,
            state,
            agent,
            at,
            ..
        } = event.as_ref()
        else {
            continue;
        };
        if *campaign_id != Some(campaign) {
            continue;
        }
        match state {
            CallPhase::Queued => {
                counts.queued += 1;
                queued_at.insert(*call_ref, *at);
            }
            CallPhase::Connected => {
                counts.connected += 1;
                if let Some(from) = queued_at.remove(call_ref) {
                    counts
                        .waits
                        .push((*at - from).to_std().unwrap_or(Duration::ZERO));
                }
            }
            CallPhase::Ended => {
                counts.ended += 1;
                ended.send_replace(counts.ended);
                queued_at.remove(call_ref);
                if let Some(user) = agent {
                    let leg = legs.get(user).copied();
                    floor
                        .agent(account, campaign, *user, AgentState::Ready, leg)
                        .await
                        .context("an agent going Ready again")?;
                }
            }
            _ => {}
        }
    }
    counts.waits.sort();
    Ok(counts)
}
