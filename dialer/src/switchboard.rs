//! The switchboard: the node's inbound calls, from the trunk's INVITE to
//! an agent, around the distributor core ([`dialer_core::acd`]).
//!
//! A call offered by the gateway is routed by the number dialled to its
//! queue ([`crm::store::queues`]); a number that is not ours gets 404.
//! Outside opening hours the caller hears the closed message (or gets 480
//! without one). Otherwise the call is answered and logged against the
//! queue's campaign, the welcome message plays, and the caller waits with
//! hold music (the hold tone when the queue has none) while the
//! distributor looks for a free agent of the queue: best skill, then
//! longest idle, with a return caller waiting a few seconds for the agent
//! who last spoke to them. The agent is lent by their campaign's runner
//! (so the outbound dialler cannot take them at the same moment), the
//! call is bridged into their audio leg, and their desk hears of it as of
//! any connected call. An agent who takes queue calls on a desk phone rung
//! per call has no leg: their phone rings (the caller hears the music
//! still) for the queue's ring time; answered, the call is bridged into
//! it, and either hanging up ends both; unanswered, the caller waits again
//! in their place for the next agent and the agent is paused as not
//! answering. A caller who waits the queue's longest wait is
//! offered the overflow: a voicemail filed against their contact, or a
//! callback (press 1) that the queue's campaign dials under the usual
//! rules.
//!
//! With several nodes, a caller no agent here can take goes to a node
//! that has a free one (the `handover` module, decision 0015).
//!
//! Every change of a queue goes on the bus as [`Event::QueueStatus`], and
//! every call's as [`Event::CallState`], like outbound calls.
//!
//! Blending: every two seconds each campaign dialling here is told how many
//! of its Ready agents to leave idle for the queues they answer — the
//! threshold of [`dialer_core::blend::reserve`], from each queue's arrival
//! rate and talk time over the last hour (read from the database every
//! minute), its service-level target, its callers waiting and its agents on
//! inbound calls — so outbound fills the rest of their time.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm::events::{CallPhase, Event, EventBus};
use crm::model::{AccountId, AttemptId, CampaignId, ContactId, UserId};
use crm::store::queues::Membership;
use crm::store::queues::{InboundOutcome, Overflow, Queue};
use crm::{Store, StoreError};
use dialer_core::acd::{Acd, Offer, QueueId, Waiting};
use dialer_core::blend::{reserve, Floor as BlendFloor, QueueLoad, ServiceTarget};
use dialer_core::AgentState;
use sip_gateway::gateway::{Audio, CallEvent, CallEventKind, CallRef, Gateway, IncomingCall};
use tokio::sync::{broadcast, mpsc};
use vocab::Clock;

use crate::floor::{agent_id, user_id, Floor, Lent, SeatChange};

mod handover;
mod ledger;
mod relay;

use handover::next_peer_event;
pub use handover::Peers;
use ledger::{Entry, Ledger};
pub use relay::relay_number;
use relay::Relay;

/// How long a return caller waits for the agent who last spoke to them.
pub const PREFER_LAST_AGENT: Duration = Duration::from_secs(8);

/// How long a caller offered a callback has to press 1 after the prompt.
const CALLBACK_CHOICE: Duration = Duration::from_secs(10);

/// The longest voicemail kept.
const VOICEMAIL_LIMIT: Duration = Duration::from_secs(120);

/// How often the hold-back each campaign leaves for the queues is worked out again.
const BLEND_EVERY: Duration = Duration::from_secs(2);

/// How often each queue's traffic is read again from the database.
const LOAD_EVERY: Duration = Duration::from_secs(60);

/// The window a queue's arrival rate and talk time are measured over.
const LOAD_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The handle time assumed for a queue with no answered call in the window.
const DEFAULT_HANDLE: Duration = Duration::from_secs(180);

/// Wrap-up added to a queue's mean talk time to make its handle time.
const WRAP_ALLOWANCE: Duration = Duration::from_secs(10);

/// How long agents freed in a predictive campaign stay promised to lines
/// already dialled: the pacer's reach, about its model's horizon.
const PREDICTIVE_REACH: Duration = Duration::from_secs(11);

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The closed message plays; the call ends after it.
    Closed,
    /// The welcome message plays; the caller waits after it.
    Welcome,
    /// Waiting for an agent, with music.
    Waiting,
    /// Ringing an agent's desk phone (the call `phone`); the caller hears
    /// the hold music meanwhile.
    Ringing { user: UserId, phone: CallRef },
    /// With an agent.
    Connected(UserId),
    /// The voicemail prompt plays; recording starts after it.
    VoicemailPrompt,
    /// Recording the caller's message until they hang up or the limit.
    Voicemail,
    /// The callback prompt plays, then the caller may press 1.
    CallbackPrompt,
    /// The caller pressed 1: thanked, then the call ends.
    CallbackBooked,
    /// The call is being ended after its last message.
    Leaving,
    /// Being handed over to another node with a free agent (the call to it,
    /// `peer`, rings); the caller hears the music still.
    HandingOver { peer: CallRef },
    /// Handed over: bridged into the call to the other node, which logs it
    /// from now on; this node only carries its audio.
    HandedOver { peer: CallRef },
}

struct Caller {
    account: AccountId,
    queue: Queue,
    contact: Option<ContactId>,
    stage: Stage,
    /// A timer of the stage: the voicemail's limit, the callback choice.
    deadline: Option<Instant>,
    /// A voicemail being recorded.
    recording: Option<PathBuf>,
    /// Whether hold music (a file) plays, rather than the hold tone.
    music: bool,
    /// The agent who last spoke to this caller, whom they wait for first.
    last_agent: Option<UserId>,
    /// When the call was answered, and how long the caller then waited
    /// for an agent, once taken.
    answered: Instant,
    waited: Option<Duration>,
    /// The agent's desk phone, rung for this call, once it answered: it
    /// hangs up with the call.
    phone: Option<CallRef>,
    /// The number the caller dialled, as the trunk wrote it.
    number: String,
    /// The call's attempt row.
    attempt: AttemptId,
    /// When the caller started waiting for an agent (set once: a caller
    /// back from another node keeps their place and overflow time).
    wait_since: Option<Instant>,
    /// Whether another node handed the call here: it is never handed on.
    handed_in: bool,
    /// The nodes it was offered to that did not take it.
    tried: Vec<String>,
}

/// A desk phone rung for a waiting caller.
struct Ring {
    customer: CallRef,
    user: UserId,
    account: AccountId,
    answered: bool,
}

/// The node's inbound calls.
pub struct Switchboard {
    store: Store,
    gateway: Gateway,
    floor: Arc<Floor>,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    /// Where recorded calls and voicemails go; `None` records nothing.
    recordings: Option<PathBuf>,
    acd: Acd<CallRef>,
    calls: HashMap<CallRef, Caller>,
    /// The queues each Ready agent of this node answers, as last read.
    memberships: HashMap<UserId, Vec<Membership>>,
    /// Each queue's traffic, target, and the reach of campaigns, as last read.
    loads: HashMap<QueueId, QueueLoad>,
    reach: HashMap<CampaignId, Duration>,
    /// The hold-back last given to each campaign.
    held: HashMap<CampaignId, usize>,
    /// Each queue's service level today, as last read.
    levels: HashMap<QueueId, f64>,
    /// Desk phones rung per call, by the call to the phone.
    rings: HashMap<CallRef, Ring>,
    /// The other nodes of the service, by the name of the trunk that leads
    /// to each (their `node_id`).
    peers: HashSet<String>,
    /// The agents free in each queue on each other node, as they last said.
    remote: HashMap<QueueId, HashMap<String, u32>>,
    /// Calls to other nodes carrying a caller handed over, by that call.
    handovers: HashMap<CallRef, CallRef>,
    /// Desk phones rung for agents on other nodes, by the call to the phone.
    relays: HashMap<CallRef, Relay>,
    /// The same, by the call from the other node.
    relayed_from: HashMap<CallRef, CallRef>,
    next_blend: Instant,
    next_load: Instant,
    events_tx: mpsc::UnboundedSender<(CallRef, CallEvent)>,
    /// The calls' writes, made in order off this loop.
    ledger: Ledger,
    /// Agents' queues read after they went Ready, back to this loop.
    queues_read: mpsc::UnboundedSender<(SeatChange, Result<Vec<Membership>, StoreError>)>,
}

impl Switchboard {
    /// Starts taking the gateway's offered calls on this node, which has
    /// no other node to hand calls to.
    pub fn spawn(
        store: Store,
        floor: Arc<Floor>,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        recordings: Option<PathBuf>,
    ) -> tokio::task::JoinHandle<()> {
        Self::spawn_with_peers(store, floor, bus, clock, recordings, Peers::default())
    }

    /// Starts taking the gateway's offered calls on this node, handing
    /// callers no agent here can take to the other nodes in `peers`.
    pub fn spawn_with_peers(
        store: Store,
        floor: Arc<Floor>,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        recordings: Option<PathBuf>,
        peers: Peers,
    ) -> tokio::task::JoinHandle<()> {
        let peer_events = peers.events;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (queues_read, read_queues) = mpsc::unbounded_channel();
        let gateway = floor.gateway().clone();
        let incoming = gateway.incoming();
        let seats = floor.seat_changes();
        let ledger = Ledger::spawn(store.clone(), bus.clone());
        let board = Switchboard {
            store,
            gateway,
            floor,
            bus,
            clock,
            recordings,
            acd: Acd::new(),
            calls: HashMap::new(),
            memberships: HashMap::new(),
            loads: HashMap::new(),
            reach: HashMap::new(),
            held: HashMap::new(),
            levels: HashMap::new(),
            rings: HashMap::new(),
            peers: peers.trunks.into_iter().collect(),
            remote: HashMap::new(),
            handovers: HashMap::new(),
            relays: HashMap::new(),
            relayed_from: HashMap::new(),
            next_blend: Self::now(),
            next_load: Self::now(),
            events_tx,
            ledger,
            queues_read,
        };
        tokio::spawn(board.run(incoming, seats, read_queues, events, peer_events))
    }

    async fn run(
        mut self,
        mut incoming: mpsc::UnboundedReceiver<IncomingCall>,
        mut seats: mpsc::UnboundedReceiver<SeatChange>,
        mut read_queues: mpsc::UnboundedReceiver<(SeatChange, Result<Vec<Membership>, StoreError>)>,
        mut events: mpsc::UnboundedReceiver<(CallRef, CallEvent)>,
        mut peer_events: Option<broadcast::Receiver<Arc<Event>>>,
    ) {
        loop {
            let wake = self.next_timeout();
            tokio::select! {
                offered = incoming.recv() => match offered {
                    Some(call) => self.offered(call).await,
                    None => break,
                },
                Some(change) = seats.recv() => self.seat(change).await,
                Some((change, read)) = read_queues.recv() => self.queues_read(change, read),
                Some((call, event)) = events.recv() => self.event(call, event).await,
                heard = next_peer_event(&mut peer_events) => match heard {
                    Ok(event) => self.peer_event(&event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => peer_events = None,
                },
                _ = sleep_until(wake) => self.timeout().await,
            }
            self.dispatch().await;
        }
    }

    /// Brings a call's events to the one loop, in order, as `(call, event)`.
    fn forward_events(&self, call: CallRef, mut events: mpsc::UnboundedReceiver<CallEvent>) {
        let forward = self.events_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let _ = forward.send((call, event));
            }
        });
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn next_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|c| c.deadline);
        let blend = (!self.memberships.is_empty()).then_some(self.next_blend);
        calls.chain(self.acd.poll_timeout()).chain(blend).min()
    }

    /// A trunk offers a call: route it, or refuse it.
    async fn offered(&mut self, call: IncomingCall) {
        let IncomingCall {
            call_ref,
            trunk,
            number,
            caller,
            events,
        } = call;
        self.forward_events(call_ref, events);
        if self.peers.contains(&trunk) {
            if Self::is_relay(&number) {
                return self.relay_in(call_ref, &number, caller).await;
            }
            return self.handed_in(call_ref, number, caller).await;
        }
        let routed = match self.route(&number).await {
            Ok(Some(queue)) => queue,
            Ok(None) => {
                tracing::info!(call = %call_ref, "a call to a number that is not ours");
                let _ = self.gateway.reject(call_ref, 404).await;
                return;
            }
            Err(e) => {
                tracing::warn!(call = %call_ref, error = %e, "routing an inbound call failed");
                let _ = self.gateway.reject(call_ref, 503).await;
                return;
            }
        };
        let now = self.clock.now();
        let caller = caller.as_deref().and_then(e164);
        let arrived = self
            .store
            .inbound_call_arrived(
                &routed,
                caller.as_deref(),
                call_ref,
                &self.floor.holder(),
                now,
            )
            .await;
        let arrived = match arrived {
            Ok(arrived) => arrived,
            Err(e) => {
                tracing::warn!(call = %call_ref, error = %e, "logging an inbound call failed");
                let _ = self.gateway.reject(call_ref, 503).await;
                return;
            }
        };
        let open = routed.settings.is_open(now);
        if !open && routed.settings.closed_message.is_none() {
            let _ = self.gateway.reject(call_ref, 480).await;
            let left = self.left_event(
                routed.account_id,
                routed.id,
                InboundOutcome::Closed,
                Duration::ZERO,
            );
            self.close(
                call_ref,
                routed.account_id,
                InboundOutcome::Closed,
                vec![left],
            );
            return;
        }
        if let Err(e) = self.gateway.answer(call_ref).await {
            // The caller gave up meanwhile: their Ended event closes the call.
            tracing::info!(call = %call_ref, error = %e, "an inbound call went before the answer");
        }
        let account = routed.account_id;
        let campaign = routed.settings.campaign_id;
        let queue_id = routed.id;
        let mut caller_state = Caller {
            account,
            contact: arrived.contact_id,
            stage: Stage::Welcome,
            deadline: None,
            recording: None,
            music: false,
            last_agent: arrived.last_agent.filter(|_| arrived.known),
            queue: routed,
            answered: Self::now(),
            waited: None,
            phone: None,
            number,
            attempt: arrived.attempt_id,
            wait_since: None,
            handed_in: false,
            tried: Vec::new(),
        };
        if !open {
            caller_state.stage = Stage::Closed;
            let message = caller_state.queue.settings.closed_message.clone();
            self.calls.insert(call_ref, caller_state);
            self.play(call_ref, message).await;
            return;
        }
        self.publish_queued(account, call_ref, campaign);
        if caller_state.queue.settings.record_calls {
            self.record_call(call_ref, account, arrived.contact_id)
                .await;
        }
        let welcome = caller_state.queue.settings.welcome_message.clone();
        self.calls.insert(call_ref, caller_state);
        if welcome.is_some() {
            self.play(call_ref, welcome).await;
        } else {
            self.wait(call_ref).await;
        }
        self.publish_queue(account, queue_id);
    }

    /// The queue a dialled number routes to: as written, or in E.164.
    async fn route(&self, number: &str) -> Result<Option<Queue>, crm::StoreError> {
        if let Some(queue) = self.store.route_number(number).await? {
            return Ok(Some(queue));
        }
        match e164(number) {
            Some(normal) if normal != number => self.store.route_number(&normal).await,
            _ => Ok(None),
        }
    }

    /// The caller starts waiting for an agent, with music.
    async fn wait(&mut self, call: CallRef) {
        let now = Self::now();
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        let preferred = caller.last_agent;
        caller.stage = Stage::Waiting;
        caller.music = caller.queue.settings.hold_music.is_some();
        let music = caller.queue.settings.hold_music.clone();
        let since = *caller.wait_since.get_or_insert(now);
        let waiting = Waiting {
            call,
            queue: caller.queue.id,
            since,
            priority: caller.queue.settings.priority,
            preferred: preferred.map(agent_id),
            prefer_until: preferred.map(|_| now + PREFER_LAST_AGENT),
            overflow_at: Some(
                since + Duration::from_secs(u64::from(caller.queue.settings.max_wait_secs)),
            ),
        };
        self.acd.call_waiting(waiting, now);
        match music {
            Some(music) => self.play(call, Some(music)).await,
            None => {
                let _ = self.gateway.hold(call, true).await;
            }
        }
    }

    /// An agent of this node changed state.
    async fn seat(&mut self, change: SeatChange) {
        let agent = agent_id(change.user);
        match change.state {
            AgentState::Ready => {
                // Free at once in the queues last read for them; read again
                // off this loop, as an admin may have changed them since.
                if let Some(queues) = self.memberships.get(&change.user).cloned() {
                    self.agent_free(change.account, change.user, queues);
                }
                let (store, read) = (self.store.clone(), self.queues_read.clone());
                tokio::spawn(async move {
                    let queues = store.agent_queues(change.account, change.user).await;
                    let _ = read.send((change, queues));
                });
            }
            AgentState::LoggedOut => {
                self.acd.agent_gone(agent);
                if let Some(queues) = self.memberships.remove(&change.user) {
                    for m in queues {
                        self.publish_queue(change.account, m.queue_id);
                    }
                }
            }
            _ => {
                self.acd.agent_busy(agent);
                // Other nodes count this node's free agents to hand calls to.
                for m in self.memberships.get(&change.user).into_iter().flatten() {
                    self.publish_queue(change.account, m.queue_id);
                }
            }
        }
    }

    /// An agent's queues were read after they went Ready: they are free in
    /// those queues if still Ready here.
    fn queues_read(&mut self, change: SeatChange, read: Result<Vec<Membership>, StoreError>) {
        let queues = match read {
            Ok(queues) => queues,
            Err(e) => {
                tracing::warn!(error = %e, "reading an agent's queues failed");
                return;
            }
        };
        match self.floor.state_of(change.user) {
            Some(AgentState::Ready) => {}
            // Busy meanwhile: what they answer is kept for the blend.
            Some(state) if state != AgentState::LoggedOut && !queues.is_empty() => {
                self.memberships.insert(change.user, queues);
                return;
            }
            _ => return,
        }
        if queues.is_empty() {
            self.acd.agent_gone(agent_id(change.user));
            if let Some(queues) = self.memberships.remove(&change.user) {
                for m in queues {
                    self.publish_queue(change.account, m.queue_id);
                }
            }
            return;
        }
        self.agent_free(change.account, change.user, queues);
    }

    /// Lists a Ready agent as free in `queues` and tells their wallboards.
    fn agent_free(&mut self, account: AccountId, user: UserId, queues: Vec<Membership>) {
        let skills: Vec<(QueueId, u8)> = queues.iter().map(|m| (m.queue_id, m.skill)).collect();
        self.acd.agent_free(agent_id(user), skills, Self::now());
        for m in &queues {
            self.publish_queue(account, m.queue_id);
        }
        self.memberships.insert(user, queues);
    }

    /// Connects the calls the distributor chose agents for.
    async fn dispatch(&mut self) {
        while let Some(offer) = self.acd.poll_offer() {
            self.connect(offer).await;
        }
        while let Some(call) = self.acd.poll_overflow() {
            self.overflow(call).await;
        }
        if !self.remote.is_empty() {
            self.hand_over_waiting().await;
        }
    }

    async fn connect(&mut self, offer: Offer<CallRef>) {
        let call = offer.call;
        let user = user_id(offer.agent);
        let Some(caller) = self.calls.get(&call) else {
            self.acd.taken(call);
            return;
        };
        let (account, campaign, ring_secs) = (
            caller.account,
            caller.queue.settings.campaign_id,
            caller.queue.settings.ring_secs,
        );
        let leg = match self.floor.lend(user).await {
            Some(Lent::Leg(leg)) => leg,
            Some(Lent::Phone(phone)) => {
                let ring = Duration::from_secs(u64::from(ring_secs));
                return self.ring(call, user, account, &phone, ring).await;
            }
            None => {
                // Taken by the outbound dialler meanwhile, or gone.
                self.acd.declined(call, Self::now());
                return;
            }
        };
        self.stop_waiting_sound(call).await;
        if let Err(e) = self.gateway.bridge(call, leg).await {
            tracing::warn!(%call, error = %e, "bridging an inbound call to its agent failed");
            // The agent was lent: their desk never hears of the call, so
            // they stay in the campaign as the runner now counts them.
            let _ = self
                .floor
                .agent(account, campaign, user, AgentState::Ready, Some(leg))
                .await;
            self.acd.declined(call, Self::now());
            return;
        }
        // The agent's line was open already: a beep tells them someone is there.
        if let Err(e) = self.gateway.zip_tone(leg).await {
            tracing::debug!(%call, error = %e, "the zip tone did not play");
        }
        self.connected(call, user).await;
    }

    /// Stops the hold music (or tone) a waiting caller hears.
    async fn stop_waiting_sound(&self, call: CallRef) {
        let music = self.calls.get(&call).is_some_and(|c| c.music);
        if music {
            let _ = self.gateway.stop_playing(call).await;
        } else {
            let _ = self.gateway.hold(call, false).await;
        }
    }

    /// The call reached its agent: logged, and told to their desk (which
    /// takes it as any connected call) and to the wallboards.
    async fn connected(&mut self, call: CallRef, user: UserId) {
        self.acd.taken(call);
        let now = Self::now();
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        caller.stage = Stage::Connected(user);
        caller.waited = Some(now.saturating_duration_since(caller.answered));
        let (account, campaign, queue) = (
            caller.account,
            caller.queue.settings.campaign_id,
            caller.queue.id,
        );
        tracing::info!(%call, agent = %user, "inbound call connected");
        let at = self.clock.now();
        let told = self.call_event(
            account,
            call,
            campaign,
            CallPhase::Connected,
            Some(user),
            None,
        );
        self.ledger.write(
            Entry::Taken {
                account,
                call,
                user,
                at,
            },
            vec![told],
        );
        self.publish_queue(account, queue);
    }

    /// Rings the desk phone of the agent lent to a waiting caller, who
    /// keeps hearing the hold music until it answers.
    async fn ring(
        &mut self,
        call: CallRef,
        user: UserId,
        account: AccountId,
        sip_username: &str,
        ring: Duration,
    ) {
        let phone = CallRef::random();
        let (tx, events) = mpsc::unbounded_channel();
        self.forward_events(phone, events);
        self.rings.insert(
            phone,
            Ring {
                customer: call,
                user,
                account,
                answered: false,
            },
        );
        if let Some(caller) = self.calls.get_mut(&call) {
            caller.stage = Stage::Ringing { user, phone };
        }
        if let Err(e) = self
            .gateway
            .call_phone_watched(sip_username, phone, ring, tx)
            .await
        {
            tracing::info!(%call, agent = %user, error = %e, "an agent's desk phone could not be rung");
            self.rings.remove(&phone);
            self.rang_out(call, user, account).await;
        }
    }

    /// An event of a desk phone rung for a caller.
    async fn phone_event(&mut self, phone: CallRef, event: CallEventKind) {
        match event {
            CallEventKind::Answered => self.phone_answered(phone).await,
            CallEventKind::Ended { .. } => {
                let Some(ring) = self.rings.remove(&phone) else {
                    return;
                };
                if ring.answered {
                    // The agent hung up their phone: the call ends with it.
                    let connected = self.calls.get(&ring.customer).is_some_and(|c| {
                        c.phone == Some(phone) && c.stage == Stage::Connected(ring.user)
                    });
                    if connected {
                        let _ = self.gateway.hangup(ring.customer).await;
                    }
                } else {
                    self.rang_out(ring.customer, ring.user, ring.account).await;
                }
            }
            _ => {}
        }
    }

    /// A desk phone rung for a caller answered: the caller is put through.
    async fn phone_answered(&mut self, phone: CallRef) {
        let Some(ring) = self.rings.get_mut(&phone) else {
            return;
        };
        ring.answered = true;
        let (call, user) = (ring.customer, ring.user);
        let ringing =
            self.calls.get(&call).map(|c| c.stage) == Some(Stage::Ringing { user, phone });
        if !ringing {
            let _ = self.gateway.hangup(phone).await;
            return;
        }
        self.stop_waiting_sound(call).await;
        if let Err(e) = self.gateway.bridge(call, phone).await {
            tracing::warn!(%call, error = %e, "bridging an inbound call to a desk phone failed");
            self.rings.remove(&phone);
            let _ = self.gateway.hangup(phone).await;
            self.floor.unlend(user);
            self.back_to_waiting(call).await;
            return;
        }
        if let Some(caller) = self.calls.get_mut(&call) {
            caller.phone = Some(phone);
        }
        self.connected(call, user).await;
    }

    /// An agent's desk phone rang out (or could not ring) for a caller: the
    /// caller waits again for the next agent, and the agent is paused as
    /// not answering.
    async fn rang_out(&mut self, call: CallRef, user: UserId, account: AccountId) {
        tracing::info!(%call, agent = %user, "a desk phone was not answered: its agent is paused");
        self.floor.not_answering(user);
        self.bus.publish(Event::AgentNotAnswering {
            account,
            user_id: user,
            at: self.clock.now(),
        });
        self.back_to_waiting(call).await;
    }

    /// A caller offered to an agent who did not take them waits again, in
    /// their place, with their music still playing.
    async fn back_to_waiting(&mut self, call: CallRef) {
        if let Some(caller) = self.calls.get_mut(&call) {
            if matches!(caller.stage, Stage::Ringing { .. }) {
                caller.stage = Stage::Waiting;
            }
        }
        self.acd.declined(call, Self::now());
    }

    /// A caller waited the queue's longest wait.
    async fn overflow(&mut self, call: CallRef) {
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        let settings = caller.queue.settings.clone();
        let (account, queue) = (caller.account, caller.queue.id);
        let stage = match settings.overflow {
            Overflow::Voicemail if self.recordings.is_some() => Stage::VoicemailPrompt,
            Overflow::Callback if caller.contact.is_some() => Stage::CallbackPrompt,
            _ => Stage::Leaving,
        };
        caller.stage = stage;
        self.stop_waiting_sound(call).await;
        let message = match stage {
            Stage::Leaving => settings.closed_message,
            _ => settings.voicemail_message,
        };
        match (stage, message) {
            (_, Some(path)) => self.play(call, Some(path)).await,
            (Stage::Leaving, None) => {
                let _ = self.gateway.hangup(call).await;
            }
            // No prompt: a beep says the caller may speak, or press 1.
            (_, None) => {
                let beep = sip_gateway::media::tone::sine(1000.0, 6000, 8000, 2400);
                let _ = self.gateway.play(call, Audio::Samples(beep.into())).await;
            }
        }
        self.publish_queue(account, queue);
    }

    /// One of the calls' events.
    async fn event(&mut self, call: CallRef, event: CallEvent) {
        if self.rings.contains_key(&call) {
            return self.phone_event(call, event.kind).await;
        }
        if self.handovers.contains_key(&call) {
            return self.peer_call_event(call, event.kind).await;
        }
        if self.relays.contains_key(&call) {
            return self.relay_phone_event(call, event.kind).await;
        }
        if self.relayed_from.contains_key(&call) {
            return self.relay_call_event(call, event.kind).await;
        }
        match event.kind {
            CallEventKind::PlaybackFinished => self.played(call).await,
            CallEventKind::Dtmf { digit } => self.pressed(call, digit).await,
            CallEventKind::Ended { cause } => self.ended(call, cause).await,
            _ => {}
        }
    }

    /// What was playing into a call reached its end.
    async fn played(&mut self, call: CallRef) {
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        match caller.stage {
            Stage::Closed | Stage::Leaving | Stage::CallbackBooked => {
                let _ = self.gateway.hangup(call).await;
            }
            Stage::Welcome => self.wait(call).await,
            Stage::Waiting | Stage::Ringing { .. } | Stage::HandingOver { .. } if caller.music => {
                let music = caller.queue.settings.hold_music.clone();
                self.play(call, music).await;
            }
            Stage::VoicemailPrompt => self.start_voicemail(call).await,
            Stage::CallbackPrompt => {
                caller.deadline = Some(Self::now() + CALLBACK_CHOICE);
            }
            _ => {}
        }
    }

    async fn start_voicemail(&mut self, call: CallRef) {
        let Some(folder) = self.recordings.clone() else {
            return;
        };
        let path = folder.join(format!("{call}-voicemail.wav"));
        if let Err(e) = self.gateway.record(call, &path).await {
            tracing::warn!(%call, error = %e, "a voicemail could not be recorded");
            let _ = self.gateway.hangup(call).await;
            return;
        }
        if let Some(caller) = self.calls.get_mut(&call) {
            caller.stage = Stage::Voicemail;
            caller.recording = Some(path);
            caller.deadline = Some(Self::now() + VOICEMAIL_LIMIT);
        }
    }

    /// The caller pressed a key.
    async fn pressed(&mut self, call: CallRef, digit: char) {
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        if caller.stage != Stage::CallbackPrompt || digit != '1' {
            return;
        }
        caller.stage = Stage::CallbackBooked;
        caller.deadline = None;
        let (account, campaign, contact) = (
            caller.account,
            caller.queue.settings.campaign_id,
            caller.contact,
        );
        let booked = match contact {
            Some(contact) => self.book_callback(account, campaign, contact).await,
            None => false,
        };
        if !booked {
            tracing::warn!(%call, "a callback could not be booked");
        }
        let _ = self.gateway.hangup(call).await;
    }

    async fn book_callback(
        &self,
        account: AccountId,
        campaign: CampaignId,
        contact: ContactId,
    ) -> bool {
        let now = self.clock.now();
        let lead = match self
            .store
            .lead_for_contact(account, campaign, contact)
            .await
        {
            Ok(lead) => lead,
            Err(e) => {
                tracing::warn!(error = %e, "the caller's lead was not found");
                return false;
            }
        };
        self.store
            .schedule_callback(account, lead.id, now, None, now)
            .await
            .is_ok()
    }

    /// A call ended: log its outcome, tell the distributor and the floor.
    async fn ended(&mut self, call: CallRef, cause: sip_gateway::gateway::EndCause) {
        self.acd.call_gone(call);
        let Some(caller) = self.calls.remove(&call) else {
            return;
        };
        if let Stage::HandingOver { peer } | Stage::HandedOver { peer } = caller.stage {
            // The node it went to logs it; here only the carrying call ends.
            self.handovers.remove(&peer);
            let _ = self.gateway.hangup(peer).await;
            if matches!(caller.stage, Stage::HandingOver { .. }) {
                // Unless it never got there: closed here, if still ours.
                self.close(call, caller.account, InboundOutcome::Abandoned, Vec::new());
                self.publish_queue(caller.account, caller.queue.id);
            }
            return;
        }
        if let Stage::Ringing { user, phone } = caller.stage {
            // The caller went while the agent's phone rang: not the agent's doing.
            self.rings.remove(&phone);
            let _ = self.gateway.hangup(phone).await;
            self.floor.unlend(user);
        }
        if let Some(phone) = caller.phone {
            self.rings.remove(&phone);
            let _ = self.gateway.hangup(phone).await;
        }
        let outcome = match caller.stage {
            Stage::Closed => InboundOutcome::Closed,
            Stage::Welcome | Stage::Waiting | Stage::Ringing { .. } => InboundOutcome::Abandoned,
            Stage::Connected(_) => InboundOutcome::Answered,
            Stage::Voicemail => InboundOutcome::Voicemail,
            Stage::CallbackBooked => InboundOutcome::Callback,
            Stage::VoicemailPrompt | Stage::CallbackPrompt | Stage::Leaving => {
                InboundOutcome::Overflowed
            }
            // Dealt with above.
            Stage::HandingOver { .. } | Stage::HandedOver { .. } => InboundOutcome::Interrupted,
        };
        if let (Some(path), InboundOutcome::Voicemail) = (&caller.recording, outcome) {
            self.file_recording(call, caller.account, caller.contact, path.clone());
        }
        let agent = match caller.stage {
            Stage::Connected(user) => Some(user),
            _ => None,
        };
        let waited = caller
            .waited
            .unwrap_or_else(|| Self::now().saturating_duration_since(caller.answered));
        let told = vec![
            self.call_event(
                caller.account,
                call,
                caller.queue.settings.campaign_id,
                CallPhase::Ended,
                agent,
                Some(format!("{cause:?}")),
            ),
            self.left_event(caller.account, caller.queue.id, outcome, waited),
        ];
        self.close(call, caller.account, outcome, told);
        self.publish_queue(caller.account, caller.queue.id);
    }

    /// What tells the bus (and so the metrics) that a call left its queue.
    fn left_event(
        &self,
        account: AccountId,
        queue: QueueId,
        outcome: InboundOutcome,
        waited: Duration,
    ) -> Event {
        Event::QueueCall {
            account,
            queue_id: queue,
            node: self.floor.node().to_owned(),
            outcome: outcome.as_str().to_owned(),
            waited_secs: waited.as_secs_f64(),
            at: self.clock.now(),
        }
    }

    /// Logs how a call ended; `then` goes on the bus once it is written.
    fn close(&self, call: CallRef, account: AccountId, outcome: InboundOutcome, then: Vec<Event>) {
        let at = self.clock.now();
        let entry = Entry::Ended {
            account,
            call,
            outcome,
            at,
        };
        self.ledger.write(entry, then);
    }

    /// Stage timers: the voicemail's limit, the callback choice.
    async fn timeout(&mut self) {
        let now = Self::now();
        self.acd.handle_timeout(now);
        if now >= self.next_blend {
            self.next_blend = now + BLEND_EVERY;
            self.blend(now).await;
        }
        let due: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(call, _)| *call)
            .collect();
        for call in due {
            if let Some(caller) = self.calls.get_mut(&call) {
                caller.deadline = None;
                caller.stage = match caller.stage {
                    Stage::CallbackPrompt => Stage::Leaving,
                    other => other,
                };
            }
            let _ = self.gateway.hangup(call).await;
        }
    }

    /// Works out how many Ready agents each campaign dialling here must
    /// leave idle for the queues its agents answer (the blend's threshold,
    /// [`dialer_core::blend::reserve`]), and tells the campaigns that changed.
    async fn blend(&mut self, now: Instant) {
        if now >= self.next_load {
            self.next_load = now + LOAD_EVERY;
            self.read_loads().await;
        }
        let seated = self.floor.seated();
        let mut campaigns: HashMap<CampaignId, Vec<UserId>> = HashMap::new();
        for (user, _, campaign, state) in &seated {
            if *state != AgentState::LoggedOut {
                campaigns.entry(*campaign).or_default().push(*user);
            }
            // An agent whose lending was refused (a line was being dialled
            // for them) counts as busy until told otherwise; still Ready,
            // they are offered calls again.
            if *state == AgentState::Ready {
                if let Some(queues) = self.memberships.get(user) {
                    let skills: Vec<(QueueId, u8)> =
                        queues.iter().map(|m| (m.queue_id, m.skill)).collect();
                    self.acd.agent_free(agent_id(*user), skills, now);
                }
            }
        }
        let on_inbound: Vec<(UserId, QueueId)> = self
            .calls
            .values()
            .filter_map(|c| match c.stage {
                Stage::Connected(user) | Stage::Ringing { user, .. } => Some((user, c.queue.id)),
                _ => None,
            })
            .collect();
        let mut wanted: HashMap<CampaignId, usize> = HashMap::new();
        for (campaign, agents) in &campaigns {
            let mut queues: HashMap<QueueId, BlendFloor> = HashMap::new();
            for user in agents {
                for m in self.memberships.get(user).into_iter().flatten() {
                    let floor = queues.entry(m.queue_id).or_insert(BlendFloor {
                        staffed: 0,
                        on_inbound: 0,
                        waiting: 0,
                        lead: self.reach.get(campaign).copied().unwrap_or_default(),
                    });
                    floor.staffed += 1;
                    if on_inbound.contains(&(*user, m.queue_id)) {
                        floor.on_inbound += 1;
                    }
                }
            }
            let mut hold = 0usize;
            for (queue, mut floor) in queues {
                floor.waiting = u32::try_from(self.acd.waiting_in(queue).len()).unwrap_or(u32::MAX);
                let load = self.loads.get(&queue).copied().unwrap_or(QueueLoad {
                    arrivals_per_sec: 0.0,
                    handle: DEFAULT_HANDLE,
                    target: ServiceTarget::default(),
                });
                hold += reserve(&load, &floor) as usize;
            }
            wanted.insert(*campaign, hold.min(agents.len()));
        }
        // Campaigns whose agents all left keep no hold-back.
        for campaign in self.held.keys() {
            wanted.entry(*campaign).or_insert(0);
        }
        for (campaign, hold) in wanted {
            if self.held.get(&campaign).copied().unwrap_or(0) != hold {
                tracing::debug!(%campaign, hold, "agents held back for inbound");
                self.floor.hold_back(campaign, hold).await;
            }
            if hold == 0 {
                self.held.remove(&campaign);
            } else {
                self.held.insert(campaign, hold);
            }
        }
    }

    /// Reads each queue's traffic over the last hour and the reach of the
    /// campaigns its agents work.
    async fn read_loads(&mut self) {
        let since = self.clock.now() - LOAD_WINDOW;
        let seated = self.floor.seated();
        let mut queues: HashMap<QueueId, AccountId> = HashMap::new();
        let mut campaigns: HashMap<CampaignId, AccountId> = HashMap::new();
        for (user, account, campaign, _) in &seated {
            for m in self.memberships.get(user).into_iter().flatten() {
                queues.insert(m.queue_id, *account);
            }
            campaigns.insert(*campaign, *account);
        }
        // One read per campaign, however many of its agents sit here.
        for (campaign, account) in campaigns {
            if let Ok(settings) = self.store.campaign_settings(account, campaign).await {
                let reach = match settings.mode {
                    crm::store::campaign_settings::DialMode::Predictive => PREDICTIVE_REACH,
                    _ => Duration::ZERO,
                };
                self.reach.insert(campaign, reach);
            }
        }
        // Today's service level of each account's queues, for the tiles.
        let accounts: std::collections::HashSet<AccountId> = queues.values().copied().collect();
        let wall = self.clock.now();
        let today = crm::store::reports::Period {
            from: wall
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map_or(wall, |t| t.and_utc()),
            to: wall + chrono::TimeDelta::seconds(1),
        };
        for account in accounts {
            if let Ok(reports) = self.store.queue_report(account, today).await {
                for r in reports {
                    self.levels.insert(r.queue_id, r.service_level);
                }
            }
        }
        for (queue, account) in queues {
            let Ok(found) = self.store.queue(account, queue).await else {
                continue;
            };
            let Ok((offered, talk)) = self.store.queue_load(account, queue, since).await else {
                continue;
            };
            let window = LOAD_WINDOW.num_seconds().max(1) as f64;
            let handle = talk.map_or(DEFAULT_HANDLE, |t| {
                Duration::from_secs_f64(t.max(0.0)) + WRAP_ALLOWANCE
            });
            self.loads.insert(
                queue,
                QueueLoad {
                    arrivals_per_sec: offered as f64 / window,
                    handle,
                    target: ServiceTarget {
                        fraction: f64::from(found.settings.service_level_pct) / 100.0,
                        within: Duration::from_secs(u64::from(found.settings.service_level_secs)),
                    },
                },
            );
        }
    }

    /// Records an answered call into the recordings folder, filed with it.
    async fn record_call(&self, call: CallRef, account: AccountId, contact: Option<ContactId>) {
        let Some(folder) = &self.recordings else {
            return;
        };
        let path = folder.join(format!("{call}.wav"));
        if let Err(e) = self.gateway.record(call, &path).await {
            tracing::warn!(%call, error = %e, "an inbound call could not be recorded");
            return;
        }
        self.file_recording(call, account, contact, path);
    }

    /// Files a recording (of the call, or a voicemail) with the call's
    /// attempt and the caller's contact, so access, erasure and retention
    /// find it.
    fn file_recording(
        &self,
        call: CallRef,
        account: AccountId,
        contact: Option<ContactId>,
        path: PathBuf,
    ) {
        let at = self.clock.now();
        let entry = Entry::Recording {
            account,
            call,
            contact,
            path,
            at,
        };
        self.ledger.write(entry, Vec::new());
    }

    /// Plays a WAV into a call; one that cannot play counts as played.
    async fn play(&mut self, call: CallRef, path: Option<String>) {
        let played = match path {
            Some(path) => self.gateway.play(call, Audio::File(path.into())).await,
            None => Err(sip_gateway::gateway::GatewayError::NoMedia),
        };
        if let Err(e) = played {
            tracing::debug!(%call, error = %e, "a queue message did not play");
            Box::pin(self.played(call)).await;
        }
    }

    /// Tells the bus a caller is queued.
    fn publish_queued(&self, account: AccountId, call: CallRef, campaign: CampaignId) {
        let event = self.call_event(account, call, campaign, CallPhase::Queued, None, None);
        self.bus.publish(event);
    }

    /// What tells the bus of a call's new state.
    fn call_event(
        &self,
        account: AccountId,
        call: CallRef,
        campaign: CampaignId,
        state: CallPhase,
        agent: Option<UserId>,
        cause: Option<String>,
    ) -> Event {
        Event::CallState {
            account,
            call_ref: call,
            campaign_id: Some(campaign),
            state,
            agent,
            cause,
            at: self.clock.now(),
        }
    }

    /// Tells the wallboards how a queue stands on this node now.
    fn publish_queue(&self, account: AccountId, queue: QueueId) {
        let now = Self::now();
        let waiting = self.acd.waiting_in(queue);
        let longest = waiting.first().map_or(0, |(_, since)| {
            now.saturating_duration_since(*since).as_secs()
        });
        self.bus.publish(Event::QueueStatus {
            account,
            queue_id: queue,
            node: self.floor.node().to_owned(),
            waiting: u32::try_from(waiting.len()).unwrap_or(u32::MAX),
            longest_wait_secs: longest,
            agents_free: u32::try_from(self.acd.free_in(queue)).unwrap_or(u32::MAX),
            service_level: self.levels.get(&queue).copied(),
            at: self.clock.now(),
        });
    }
}

/// A number as E.164 where its form allows: `+` kept, `00` read as `+`, and
/// bare digits taken as already international. Visual separators go.
pub fn e164(number: &str) -> Option<String> {
    let kept: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = if let Some(rest) = kept.strip_prefix('+') {
        rest
    } else if let Some(rest) = kept.strip_prefix("00") {
        rest
    } else if kept.starts_with('0') {
        // A national number: which country it belongs to is not said.
        return None;
    } else {
        kept.as_str()
    };
    ((8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("+{digits}"))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn numbers_become_e164_where_their_form_allows() {
        assert_eq!(e164("+441632960001").as_deref(), Some("+441632960001"));
        assert_eq!(e164("441632960001").as_deref(), Some("+441632960001"));
        assert_eq!(e164("00441632960001").as_deref(), Some("+441632960001"));
        assert_eq!(e164("+44 1632 960-001").as_deref(), Some("+441632960001"));
        assert_eq!(
            e164("01632960001"),
            None,
            "national: the country is unknown"
        );
        assert_eq!(e164("anonymous"), None);
        assert_eq!(e164("+1234"), None);
    }
}
