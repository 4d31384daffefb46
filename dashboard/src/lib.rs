//! The dashboard: the HTTP face of dialcrm.
//!
//! - [`access`] states who may call each API route; a test holds the
//!   handlers to it.
//! - [`router`] builds the axum router: login and sessions ([`auth`]), the
//!   REST API ([`api`]), health and metrics ([`ops`]) and the static pages
//!   ([`pages`]), wrapped in security headers and request metrics.
//! - [`AppState`] holds what every handler shares: the Store, the clock, the
//!   login throttle and the metrics.
//! - [`stream`] is the supervisors' websocket: a snapshot, then numbered
//!   deltas fed from the event bus through the [`stream::hub::StreamHub`].
//! - [`desk`] is the agent's websocket: Ready and Paused, the contact card
//!   of a connected call, and the disposition after it.
//! - The desk passes agents' changes to this node's campaigns through the
//!   dialler's `dialer::floor::Floor`, which the service attaches here.
//! - [`history`] keeps agents' state changes for the supervisors' reports.
//! - [`webhooks`] sends the deliveries the Store queues for accounts'
//!   webhook endpoints, signed, from a task of its own, so no endpoint
//!   ever holds up the dialler or another endpoint.
//! - [`revocation`] closes a user's sockets on every node when their
//!   sessions end on any.
//! - [`throttle`] is the login throttle: a sans-IO policy over failure
//!   counts every node shares in the database; [`clock`] lets tests move
//!   time without sleeping.
//!
//! Every handler that touches customer data takes the caller's account from
//! the session, never from the request, and every role check is made here on
//! the server.

pub mod access;
pub mod api;
pub mod auth;
pub mod clock;
pub mod desk;
pub mod error;
pub mod history;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod peers;
pub mod proxies;
pub mod revocation;
pub mod stream;
pub mod throttle;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use clock::{Clock, ManualClock, SetClock, SystemClock};
pub use error::ApiError;

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Whether the session cookie is marked `Secure` (set behind HTTPS).
    pub secure_cookies: bool,
    /// The max-age of `Strict-Transport-Security`, sent when served over
    /// HTTPS.
    pub hsts_max_age: Option<Duration>,
    /// Replay and per-client buffers of the supervisors' stream.
    pub hub: stream::hub::HubConfig,
    /// This node's name, kept with the agent states its desks set.
    pub node: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: proxies::TrustedProxies,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            hsts_max_age: None,
            hub: stream::hub::HubConfig::default(),
            node: String::new(),
            trusted_proxies: proxies::TrustedProxies::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The CRM store.
    pub store: crm::Store,
    /// The HTTP settings.
    pub config: Arc<DashboardConfig>,
    /// The wall clock (a manual one in tests).
    pub clock: Arc<dyn Clock>,
    /// Failed-login tracking per username and per IP, in the database.
    pub throttle: Arc<throttle::LoginThrottle>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The event bus producers publish on.
    pub bus: crm::events::EventBus,
    /// The supervisors' stream, fed from the bus.
    pub hub: Arc<stream::hub::StreamHub>,
    /// The campaigns dialling on this node; absent without telephony.
    pub floor: Option<Arc<dialer::floor::Floor>>,
    /// The agents' media legs.
    pub legs: Arc<desk::Legs>,
    /// The agents' desks as kept between connections.
    pub desks: Arc<desk::Desks>,
    /// The supervisors' listening legs.
    pub listeners: Arc<api::Listeners>,
    /// The NATS link that shares events between nodes, if any.
    pub shared: Option<Arc<stream::shared::SharedStream>>,
    /// Requests to and from the other nodes, with a shared stream.
    pub peers: Option<Arc<peers::Peers>>,
    /// This node's sockets, woken when their user's sessions end anywhere.
    pub revocations: Arc<revocation::Revocations>,
}

/// How far back a node looks for agents still logged in when it seeds its
/// wallboards: a desk left open longer than a week is not shown.
const SEED_DAYS: i64 = 7;

impl AppState {
    /// Builds the shared state over a store and starts feeding the stream
    /// hub from the bus; call it inside a tokio runtime.
    pub fn new(
        store: crm::Store,
        config: DashboardConfig,
        clock: Arc<dyn Clock>,
        bus: crm::events::EventBus,
    ) -> Self {
        let hub = Arc::new(stream::hub::StreamHub::new(config.hub));
        tokio::spawn(hub.clone().run(bus.subscribe()));
        Self::with_hub(store, config, clock, bus, hub)
    }

    /// Builds the shared state with the supervisors' stream on the stream
    /// shared by every node, to which this node's bus is published
    /// ([`stream::shared::SharedStream::publish_from`]): every node's events
    /// come back from it, numbered by it. Returns once the stream has been
    /// read up to where it was.
    pub async fn shared(
        store: crm::Store,
        config: DashboardConfig,
        clock: Arc<dyn Clock>,
        bus: crm::events::EventBus,
        stream: Arc<stream::shared::SharedStream>,
    ) -> Result<Self, stream::shared::SharedError> {
        // Agents whose last change is older than the stream keeps are
        // seeded from the database, so every node shows them alike.
        let since = clock.now() - chrono::TimeDelta::days(SEED_DAYS);
        let seed = match store.agents_logged_in(since).await {
            Ok(seed) => seed,
            Err(e) => {
                tracing::warn!(error = %e, "reading the agents logged in failed; the wallboards start from the stream alone");
                Vec::new()
            }
        };
        let hub = stream.start(config.hub, &seed).await?;
        let mut state = Self::with_hub(store, config, clock, bus, hub);
        state.peers = Some(Arc::new(peers::Peers::new(
            stream.client().clone(),
            &state.config.node,
        )));
        // Sessions other nodes end come through the stream; this node's own
        // also come from its bus, so they are acted on while NATS is away.
        tokio::spawn(
            state
                .revocations
                .clone()
                .follow(stream.events().subscribe()),
        );
        state.shared = Some(stream);
        Ok(state)
    }

    fn with_hub(
        store: crm::Store,
        config: DashboardConfig,
        clock: Arc<dyn Clock>,
        bus: crm::events::EventBus,
        hub: Arc<stream::hub::StreamHub>,
    ) -> Self {
        // Agent states are kept by the node whose desks set them: from the
        // local bus, whichever bus feeds the stream. So are this node's
        // metrics (Prometheus adds the nodes up).
        let metrics = Arc::new(metrics::Metrics::new());
        tokio::spawn(metrics::follow(metrics.clone(), bus.subscribe()));
        tokio::spawn(history::keep_agent_states(
            store.clone(),
            config.node.clone(),
            bus.subscribe(),
        ));
        let revocations = Arc::new(revocation::Revocations::default());
        tokio::spawn(revocations.clone().follow(bus.subscribe()));
        AppState {
            revocations,
            floor: None,
            legs: Arc::new(desk::Legs::default()),
            desks: Arc::new(desk::Desks::default()),
            listeners: Arc::new(api::Listeners::default()),
            shared: None,
            peers: None,
            bus,
            hub,
            throttle: Arc::new(throttle::LoginThrottle::new(
                throttle::ThrottlePolicy::default(),
                store.clone(),
            )),
            store,
            config: Arc::new(config),
            clock,
            metrics,
        }
    }
}

impl AppState {
    /// Attaches the floor that dials this node's campaigns, and has the
    /// stream follow its trunks so every wallboard starts knowing them
    /// (on one node; with a shared stream the floor announces them).
    pub fn with_floor(mut self, floor: Arc<dialer::floor::Floor>) -> Self {
        // With the stream shared between nodes, every node's trunks come
        // through it (the floor announces them), so snapshots agree.
        if self.shared.is_none() {
            tokio::spawn(stream::follow_trunks(
                self.hub.clone(),
                floor.clone(),
                self.clock.clone(),
            ));
        }
        self.floor = Some(floor);
        // The other nodes' requests need this node's gateway.
        if let Some(peers) = self.peers.clone() {
            tokio::spawn(peers.serve(self.clone()));
        }
        self
    }
}

/// Builds the whole HTTP router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth::routes())
        .merge(api::routes())
        .merge(ops::routes())
        .merge(stream::routes())
        .merge(desk::routes())
        .merge(pages::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::security_headers,
        ))
        .with_state(state)
}
