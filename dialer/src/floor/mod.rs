//! The floor: the campaigns this node is dialling and the agents working
//! them. It starts a [`crate::runner`] for every running campaign, passes
//! agents' changes to it, and turns its reports into bus events.

mod membership;
mod reports;
mod trunks;

pub use membership::Membership;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::pacer::{AgentId, AgentState, PacerConfig};
use crate::runner::{self, AgentUpdate, Plan, RunnerHandle};
use crm::events::EventBus;
use crm::model::{AccountId, CampaignId, UserId};
use crm::store::nodes::Holder;
use crm::{Store, StoreError};
use sip_gateway::gateway::{CallRef, Gateway};
use tokio::sync::{mpsc, Mutex};
use vocab::Clock;

/// The highest `max_dial_level` campaign settings allow.
const DIAL_LEVEL_CEILING: f64 = 20.0;

/// The campaigns running on this node.
pub struct Floor {
    store: Store,
    gateway: Gateway,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    node: String,
    /// The node's name and the epoch it joined with, which its leases carry.
    holder: std::sync::RwLock<Holder>,
    default_trunk: String,
    recordings: Option<PathBuf>,
    running: Mutex<HashMap<CampaignId, Running>>,
    /// Set once the node drains to restart: no campaign starts here again.
    draining: tokio::sync::watch::Sender<bool>,
    /// Where each agent of this node sits: the campaign they work, their
    /// state and audio leg, as their desk last told.
    seats: std::sync::Mutex<HashMap<UserId, Seat>>,
    /// Who hears of agents' changes (the node's switchboard).
    seat_watcher: std::sync::Mutex<Option<mpsc::UnboundedSender<SeatChange>>>,
    /// Agents who take queue calls on their registered desk phone, rung
    /// for each call: their SIP usernames.
    rung: std::sync::Mutex<HashMap<UserId, String>>,
    /// The trunks to the service's other nodes, named by their `node_id`.
    peers: Vec<String>,
}

/// How a lent agent is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lent {
    /// Through their audio leg, up for the shift: bridge the call into it.
    Leg(CallRef),
    /// By ringing their desk phone, registered under this SIP username.
    Phone(String),
}

/// An agent's place on this node's floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seat {
    account: AccountId,
    campaign: CampaignId,
    state: AgentState,
    leg: Option<CallRef>,
}

/// An agent's change of state on this node, as the switchboard hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatChange {
    /// The agent's account.
    pub account: AccountId,
    /// The agent.
    pub user: UserId,
    /// Their new state.
    pub state: AgentState,
}

struct Running {
    account: AccountId,
    /// The trunk its calls start at; they fail over to those after it.
    trunk: String,
    /// The dial-level cap last passed to the runner.
    max_dial_level: f64,
    handle: RunnerHandle,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Floor {
    /// Creates an idle floor that reads the time from `clock`;
    /// `default_trunk` serves campaigns naming none.
    pub fn new(
        store: Store,
        gateway: Gateway,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        node: impl Into<String>,
        default_trunk: impl Into<String>,
    ) -> Self {
        let node: String = node.into();
        Floor {
            store,
            gateway,
            bus,
            clock,
            holder: std::sync::RwLock::new(Holder::from(&node)),
            node,
            default_trunk: default_trunk.into(),
            recordings: None,
            running: Mutex::new(HashMap::new()),
            draining: tokio::sync::watch::Sender::new(false),
            seats: std::sync::Mutex::new(HashMap::new()),
            seat_watcher: std::sync::Mutex::new(None),
            rung: std::sync::Mutex::new(HashMap::new()),
            peers: Vec::new(),
        }
    }

    /// Tells the returned channel of every agent's change of state on this
    /// node from now on; a later call replaces the earlier watcher.
    pub fn seat_changes(&self) -> mpsc::UnboundedReceiver<SeatChange> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.seat_watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Lends a Ready agent of this node to an inbound call. An agent with
    /// an audio leg is lent by their campaign's runner, which checks they
    /// are free of its own calls and counts them as in a call; an agent
    /// whose desk phone is rung per call takes no outbound call, so is
    /// theirs to lend. Returns how to reach them, or `None` when they were
    /// not free.
    pub async fn lend(&self, user: UserId) -> Option<Lent> {
        let seat = self.seat(user)?;
        if seat.state != AgentState::Ready {
            return None;
        }
        let lent = match (seat.leg, self.rung_phone(user)) {
            (_, Some(phone)) => Lent::Phone(phone),
            (Some(leg), None) => {
                let running = self.running.lock().await;
                let free = match running.get(&seat.campaign) {
                    Some(r) if r.account == seat.account => r.handle.lend(agent_id(user)).await,
                    _ => false,
                };
                if !free {
                    return None;
                }
                Lent::Leg(leg)
            }
            (None, None) => return None,
        };
        self.set_state(user, AgentState::InCall);
        Some(lent)
    }

    /// Gives back an agent lent to a call that went before reaching them
    /// (the caller hung up while their desk phone rang): Ready again.
    pub fn unlend(&self, user: UserId) {
        self.set_state(user, AgentState::Ready);
    }

    /// Notes that an agent's desk phone rang out for a queue call: they
    /// count as paused here until their desk says otherwise.
    pub fn not_answering(&self, user: UserId) {
        self.set_state(user, AgentState::Paused);
    }

    /// Sets the state of a seated agent and tells the watcher.
    fn set_state(&self, user: UserId, state: AgentState) {
        let seat = {
            let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
            let Some(s) = seats.get_mut(&user) else {
                return;
            };
            if s.state == state {
                return;
            }
            s.state = state;
            *s
        };
        self.tell_watcher(seat, user);
    }

    /// Takes an agent's queue calls on their desk phone, registered as
    /// `phone`, rung for each call (`None`: back to an audio leg). Rung
    /// per call they take no outbound call, as a customer who answered
    /// must not wait for a phone to be picked up: the leg their
    /// campaign's runner knew is forgotten.
    pub async fn ring_phone(&self, user: UserId, phone: Option<String>) {
        {
            let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
            match &phone {
                Some(name) => rung.insert(user, name.clone()),
                None => rung.remove(&user),
            };
        }
        if phone.is_none() {
            return;
        }
        let seat = {
            let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
            seats.get_mut(&user).map(|s| {
                s.leg = None;
                *s
            })
        };
        if let Some(seat) = seat {
            let gone = AgentUpdate::State {
                agent: agent_id(user),
                state: AgentState::LoggedOut,
                leg: None,
            };
            let _ = self.update(seat.account, seat.campaign, gone).await;
            let back = AgentUpdate::State {
                agent: agent_id(user),
                state: seat.state,
                leg: None,
            };
            let _ = self.update(seat.account, seat.campaign, back).await;
        }
    }

    /// Returns the SIP username of the desk phone an agent takes queue
    /// calls on, rung per call.
    pub fn rung_phone(&self, user: UserId) -> Option<String> {
        self.rung
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .cloned()
    }

    /// Leaves `n` Ready agents of a campaign dialling here idle for the
    /// inbound queues that share them; nothing when it does not dial here.
    pub async fn hold_back(&self, campaign: CampaignId, n: usize) {
        if let Some(r) = self.running.lock().await.get(&campaign) {
            r.handle.set_hold_back(n);
        }
    }

    /// Returns where every agent of this node sits: their account, the
    /// campaign they work and their state.
    pub fn seated(&self) -> Vec<(UserId, AccountId, CampaignId, AgentState)> {
        self.seats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(user, s)| (*user, s.account, s.campaign, s.state))
            .collect()
    }

    /// Returns the state of an agent seated on this node.
    pub fn state_of(&self, user: UserId) -> Option<AgentState> {
        self.seat(user).map(|s| s.state)
    }

    fn seat(&self, user: UserId) -> Option<Seat> {
        self.seats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .copied()
    }

    /// Notes an agent's change and tells the watcher.
    fn seat_changed(&self, seat: Seat, user: UserId) {
        {
            let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
            if seat.state == AgentState::LoggedOut {
                // Leaving one campaign for another says LoggedOut to the old one.
                if seats
                    .get(&user)
                    .is_some_and(|s| s.campaign == seat.campaign)
                {
                    seats.remove(&user);
                }
            } else {
                seats.insert(user, seat);
            }
        }
        self.tell_watcher(seat, user);
    }

    fn tell_watcher(&self, seat: Seat, user: UserId) {
        let mut watcher = self.seat_watcher.lock().unwrap_or_else(|p| p.into_inner());
        let change = SeatChange {
            account: seat.account,
            user,
            state: seat.state,
        };
        if watcher.as_ref().is_some_and(|w| w.send(change).is_err()) {
            *watcher = None;
        }
    }

    /// Names the trunks to the service's other nodes (each their
    /// `node_id`), through which a desk phone registered with another node
    /// is reached.
    pub fn with_peers(mut self, peers: Vec<String>) -> Self {
        self.peers = peers;
        self
    }

    /// Returns the trunks to the service's other nodes.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// Records the connected calls of campaigns that record into `folder`.
    pub fn with_recordings(mut self, folder: impl Into<PathBuf>) -> Self {
        self.recordings = Some(folder.into());
        self
    }

    /// Returns whether this node records calls at all.
    pub fn records_calls(&self) -> bool {
        self.recordings.is_some()
    }

    /// Returns this node's name, which its lead leases carry.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Returns who this node's leases belong to: its name and the epoch it
    /// joined with (0 until it joins).
    pub fn holder(&self) -> Holder {
        self.holder
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Returns the gateway calls go through.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Joins the service under this node's name with a new epoch (which
    /// fences any earlier process of that name), then closes what this node
    /// left open when it last stopped without ending its calls (a crash, a
    /// kill, a power cut): its open attempts, the leads it held, its
    /// agents' states. Call it before dialling.
    pub async fn recover(
        &self,
        membership: &Membership,
    ) -> Result<crm::store::compliance::Recovery, StoreError> {
        let (holder, clash) = self
            .store
            .join_node(&self.node, self.clock.now(), membership.timeout_delta())
            .await?;
        if clash {
            tracing::warn!(
                node = %self.node,
                "a node of this name beat its heart moments ago: if it is not this one \
                 restarting, two nodes share a name (set node_id); the other is now fenced"
            );
        }
        tracing::info!(node = %self.node, epoch = holder.epoch(), "joined");
        *self.holder.write().unwrap_or_else(|p| p.into_inner()) = holder;
        let recovery = self
            .store
            .recover_node_before(&self.node, self.holder().epoch(), self.clock.now())
            .await?;
        self.announce_recovery(&recovery);
        if recovery != Default::default() {
            tracing::warn!(
                node = %self.node,
                abandoned = recovery.abandoned,
                interrupted = recovery.interrupted,
                leads = recovery.leads,
                agents = recovery.agents,
                "closed what this node left open when it last stopped"
            );
        }
        Ok(recovery)
    }

    /// Brings this node in line with the database: starts campaigns marked
    /// running (by another node, the CLI or an API call) and stops those no
    /// longer running. The service calls it every few seconds.
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        let wanted: std::collections::HashSet<CampaignId> = self
            .store
            .running_campaigns()
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let stale: Vec<CampaignId> = self
            .running
            .lock()
            .await
            .keys()
            .filter(|c| !wanted.contains(c))
            .copied()
            .collect();
        for campaign in stale {
            self.stop_campaign(campaign).await;
        }
        self.resume().await?;
        self.follow_dial_levels().await;
        Ok(())
    }

    /// Passes each running campaign's `max_dial_level`, as a supervisor
    /// may have changed it since, to its runner.
    async fn follow_dial_levels(&self) {
        let campaigns: Vec<(CampaignId, AccountId)> = {
            let running = self.running.lock().await;
            running.iter().map(|(c, r)| (*c, r.account)).collect()
        };
        for (campaign, account) in campaigns {
            let level = match self.store.campaign_settings(account, campaign).await {
                Ok(settings) => settings.max_dial_level,
                Err(e) => {
                    tracing::warn!(%campaign, error = %e, "reading a dial level failed");
                    continue;
                }
            };
            if let Some(r) = self.running.lock().await.get_mut(&campaign) {
                if r.max_dial_level != level {
                    r.handle.set_dial_level_cap(level);
                    r.max_dial_level = level;
                    tracing::info!(%campaign, level, "dial level cap changed");
                }
            }
        }
    }

    /// Starts every campaign the database says is running.
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let campaigns = self.store.running_campaigns().await?;
        let mut started = 0;
        for (account, campaign) in campaigns {
            if self.is_running(campaign).await {
                continue;
            }
            match self.start_campaign(account, campaign).await {
                Ok(()) => started += 1,
                Err(e) => {
                    tracing::warn!(%campaign, error = %e, "a running campaign did not resume")
                }
            }
        }
        Ok(started)
    }

    /// Starts dialling a campaign, or does nothing if it already dials here
    /// or the node is draining.
    pub async fn start_campaign(
        &self,
        account: AccountId,
        campaign: CampaignId,
    ) -> Result<(), StoreError> {
        let mut running = self.running.lock().await;
        if running.contains_key(&campaign) || self.is_draining() {
            return Ok(());
        }
        let settings = self.store.campaign_settings(account, campaign).await?;
        let trunk = if settings.trunk.is_empty() {
            self.default_trunk.clone()
        } else {
            settings.trunk.clone()
        };
        let plan_trunk = trunk.clone();
        let plan = Plan {
            pacer: PacerConfig {
                mode: settings.mode.pacer_mode(),
                target: settings.abandon_target(),
                // The ceiling settings allow; the campaign's own level is
                // the cap below, which a supervisor may change while it runs.
                max_dial_level: DIAL_LEVEL_CEILING,
                ..PacerConfig::default()
            },
            caller_id: settings.caller_id.clone(),
            trunk,
            ring_timeout: Duration::from_secs(u64::from(settings.ring_timeout_secs)),
            abandon_message: settings.abandon_message_path.clone().map(PathBuf::from),
            voicemail_message: settings.voicemail_message_path.clone().map(PathBuf::from),
            recordings: self.recordings.clone().filter(|_| settings.record_calls),
            detect_machines: settings.detect_machines,
        };
        let leads = crate::leads::StoreLeads::new(
            self.store.clone(),
            account,
            campaign,
            self.holder(),
            self.clock.clone(),
            settings.retry_policy(),
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = runner::spawn(plan, leads, self.gateway.clone(), self.clock.clone(), tx);
        // Sent before any agent joins, so no line is ordered above it.
        handle.set_dial_level_cap(settings.max_dial_level);
        let forwarder = tokio::spawn(reports::forward(
            rx,
            self.bus.clone(),
            self.clock.clone(),
            account,
            campaign,
            self.node.clone(),
        ));
        tracing::info!(%campaign, "campaign dialling");
        running.insert(
            campaign,
            Running {
                account,
                trunk: plan_trunk,
                max_dial_level: settings.max_dial_level,
                handle,
                forwarder,
            },
        );
        Ok(())
    }

    /// Stops dialling a campaign; its calls in progress are hung up and
    /// written, and its last reports reach the bus.
    pub async fn stop_campaign(&self, campaign: CampaignId) {
        let stopped = self.running.lock().await.remove(&campaign);
        if let Some(r) = stopped {
            r.handle.stop().await;
            let _ = r.forwarder.await;
            tracing::info!(%campaign, "campaign stopped dialling");
        }
    }

    /// Returns whether a campaign dials on this node.
    pub async fn is_running(&self, campaign: CampaignId) -> bool {
        self.running.lock().await.contains_key(&campaign)
    }

    /// Tells a campaign's runner that an agent of the account changed state.
    pub async fn agent(
        &self,
        account: AccountId,
        campaign: CampaignId,
        user: UserId,
        state: AgentState,
        leg: Option<CallRef>,
    ) -> Result<(), StoreError> {
        let update = AgentUpdate::State {
            agent: agent_id(user),
            state,
            leg,
        };
        self.update(account, campaign, update).await?;
        let leg = leg.or_else(|| self.seat(user).and_then(|s| s.leg));
        let seat = Seat {
            account,
            campaign,
            state,
            leg,
        };
        self.seat_changed(seat, user);
        Ok(())
    }

    /// Passes an agent's change (a state, or a preview choice: next, call,
    /// skip) to a campaign of the account running on this node.
    pub async fn update(
        &self,
        account: AccountId,
        campaign: CampaignId,
        update: AgentUpdate,
    ) -> Result<(), StoreError> {
        let running = self.running.lock().await;
        match running.get(&campaign) {
            Some(r) if r.account == account => {
                r.handle.agent(update);
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    /// Drains the node before it stops: no campaign places a new call or
    /// starts here again, and the calls in progress run to their end.
    pub async fn drain(&self) {
        self.draining.send_replace(true);
        for r in self.running.lock().await.values() {
            r.handle.drain();
        }
        tracing::info!(node = %self.node, "draining: no new calls");
    }

    /// Returns whether the node is draining.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Returns a watch that changes to `true` when the node starts draining.
    pub fn watch_draining(&self) -> tokio::sync::watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Returns the calls this node's campaigns placed and have not ended.
    pub async fn calls_in_progress(&self) -> usize {
        self.running
            .lock()
            .await
            .values()
            .map(|r| r.handle.calls_in_progress())
            .sum()
    }

    /// Stops every campaign.
    pub async fn shutdown(&self) {
        let all: Vec<_> = self.running.lock().await.drain().collect();
        for (_, r) in all {
            r.handle.stop().await;
            let _ = r.forwarder.await;
        }
    }

    /// Marks the node as stopped cleanly, so no survivor recovers it.
    pub async fn leave(&self) {
        if let Err(e) = self
            .store
            .leave_node(&self.holder(), self.clock.now())
            .await
        {
            tracing::warn!(error = %e, "recording this node's leave failed");
        }
    }
}

/// Returns the pacer's id for a user.
pub fn agent_id(user: UserId) -> AgentId {
    AgentId(user.0.unsigned_abs())
}

/// Returns the user behind a pacer's agent id.
pub fn user_id(agent: AgentId) -> UserId {
    UserId(i64::try_from(agent.0).unwrap_or(i64::MAX))
}
