//! The `dialcrm` binary's wiring: settings, start-up, shutdown. No business
//! logic lives here; it connects the CRM store, the dashboard and (as they
//! land) the dialler and the SIP gateway.

pub mod campaigns_cli;
pub mod cli;
pub mod console;
pub mod contacts_cli;
pub mod dnc_cli;
pub mod doctor;
pub mod lists_cli;
pub mod merge_cli;
pub mod phones;
pub mod queues_cli;
pub mod settings;
pub mod simulate_cli;
pub mod telephony;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use settings::{Overrides, Settings};

/// A running service, as `serve` and the end-to-end tests start it.
pub struct App {
    /// The address the HTTP server is bound to.
    pub http_addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub https: bool,
    /// The plain-HTTP port that redirects to HTTPS, if any.
    pub redirect_addr: Option<SocketAddr>,
    /// What the operator should know about the certificate.
    pub tls_notes: Vec<String>,
    /// The store the service uses.
    pub store: crm::Store,
    /// The event bus every producer publishes on.
    pub bus: crm::events::EventBus,
    /// The demo account created by this start, if it created one.
    pub demo: Option<crm::demo::Demo>,
    /// The campaigns dialling on this node.
    pub floor: Arc<dialer::floor::Floor>,
    /// The SIP gateway and, without trunks, the simulated carrier.
    pub telephony: Telephony,
    /// The agents' media legs, as their desks connect them.
    pub legs: Arc<dashboard::desk::Legs>,
    /// The agents' desks.
    pub desks: Arc<dashboard::desk::Desks>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    housekeeping: JoinHandle<()>,
    /// The sender of webhook deliveries.
    webhooks: JoinHandle<()>,
    /// The redirect server and the certificate renewal, if any.
    extras: Vec<JoinHandle<()>>,
}

impl App {
    /// Connects the database, migrates it, seeds the demo on an empty one
    /// (if asked), and starts serving HTTP.
    pub async fn start(settings: &Settings) -> Result<App> {
        Self::start_with_clock(settings, Arc::new(dashboard::SystemClock)).await
    }

    /// Starts the service with a given clock (tests use a manual one).
    pub async fn start_with_clock(
        settings: &Settings,
        clock: Arc<dyn dashboard::Clock>,
    ) -> Result<App> {
        // Certificates are checked first: a bad one stops the start before
        // anything else is touched. Browsers judge them by the real time.
        let tls = tls::prepare(&settings.tls, &settings.state_dir(), chrono::Utc::now())
            .map_err(anyhow::Error::msg)?;
        let url = settings.database_url.expose();
        let store = crm::Store::connect(url)
            .await
            .with_context(|| format!("opening the database ({})", redact_url(url)))?;
        store
            .migrate()
            .await
            .context("applying database migrations")?;
        // An unreadable CA file for webhooks stops the start here too.
        let webhooks = dashboard::webhooks::Sender::new(
            store.clone(),
            clock.clone(),
            settings.webhooks.sender(&settings.node_id),
        )
        .map_err(anyhow::Error::msg)
        .context("setting up webhook deliveries")?;
        let demo = if settings.demo && store.is_empty().await? {
            Some(
                crm::demo::seed(&store, clock.now())
                    .await
                    .context("creating the demo account")?,
            )
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("listening for HTTP on {}", settings.http_addr))?;
        let http_addr = listener.local_addr()?;
        let config = dashboard::DashboardConfig {
            session_ttl: settings.session_ttl,
            secure_cookies: settings.secure_cookies || tls.is_some(),
            hsts_max_age: tls
                .as_ref()
                .map(|_| settings.tls.hsts_max_age)
                .filter(|d| !d.is_zero()),
            node: settings.node_id.clone(),
            hub: settings.stream,
            trusted_proxies: dashboard::proxies::TrustedProxies::parse(&settings.trusted_proxies)
                .map_err(anyhow::Error::msg)?,
        };
        let bus = crm::events::EventBus::default();
        // On NATS, this node's events are published from the first: those of
        // the start itself (calls a crash left open, the trunks) included.
        let shared = match &settings.nats_url {
            None => None,
            Some(url) => {
                let url = url.expose();
                let shared =
                    dashboard::stream::shared::SharedStream::connect(url, &settings.node_id)
                        .await
                        .with_context(|| {
                            format!("putting the event bus on NATS at {}", redact_nats_url(url))
                        })?;
                shared.publish_from(&bus);
                tracing::info!(nats = %redact_nats_url(url), "the event bus is shared through NATS");
                Some(Arc::new(shared))
            }
        };
        std::fs::create_dir_all(&settings.recordings_dir).with_context(|| {
            format!(
                "creating the recordings folder {}",
                settings.recordings_dir.display()
            )
        })?;
        let telephony = Telephony::start(settings, Some(&store)).await?;
        let floor = Arc::new(
            dialer::floor::Floor::new(
                store.clone(),
                telephony.gateway.clone(),
                bus.clone(),
                clock.clone(),
                settings.node_id.clone(),
                telephony.default_trunk.clone(),
            )
            .with_recordings(&settings.recordings_dir)
            .with_peers(
                settings
                    .trunks
                    .iter()
                    .filter(|t| t.peer)
                    .map(|t| t.name.clone())
                    .collect(),
            ),
        );
        // Before anything dials: the node joins with a new epoch, and what
        // it left open when it last stopped without ending its calls is
        // closed and counted.
        let membership = dialer::floor::Membership::with_timeout(settings.node_timeout);
        floor
            .recover(&membership)
            .await
            .context("closing the calls this node left open")?;
        let heartbeat = tokio::spawn(floor.clone().keep_membership(membership));
        // Calls the trunks offer: routed to queues, connected to free agents.
        // With the other nodes it has trunks to, and their queue statuses
        // from the shared bus, it hands them callers no agent here can take.
        let peers = dialer::switchboard::Peers {
            trunks: floor.peers().to_vec(),
            events: shared.as_ref().map(|s| s.events().subscribe()),
        };
        let switchboard = dialer::switchboard::Switchboard::spawn_with_peers(
            store.clone(),
            floor.clone(),
            bus.clone(),
            clock.clone(),
            Some(settings.recordings_dir.clone()),
            peers,
        );
        let resumed = floor.resume().await.context("resuming running campaigns")?;
        tokio::spawn(floor.clone().watch_trunks());
        if settings.nats_url.is_some() {
            floor.announce_trunks().await;
        }
        if resumed > 0 {
            tracing::info!(campaigns = resumed, "resumed dialling");
        }
        let state = match shared {
            None => dashboard::AppState::new(store.clone(), config, clock.clone(), bus.clone()),
            Some(shared) => dashboard::AppState::shared(
                store.clone(),
                config,
                clock.clone(),
                bus.clone(),
                shared,
            )
            .await
            .context("reading the shared event stream from NATS")?,
        }
        .with_floor(floor.clone());
        webhooks.count_in(state.metrics.clone());
        let legs = state.legs.clone();
        let desks = state.desks.clone();
        let throttle = state.throttle.clone();
        let router = dashboard::router(state);
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = rx.await;
        };
        let make_service = router.into_make_service_with_connect_info::<SocketAddr>();
        let mut extras = Vec::new();
        let mut redirect_addr = None;
        let (server, tls_notes) = match tls {
            None => {
                // Small frames (stream events, desk updates) go out at once:
                // with Nagle's algorithm a frame written while the previous
                // one waits for the browser's delayed ACK would wait for that
                // ACK too, up to 40 ms.
                let listener = listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                });
                let server = tokio::spawn(async move {
                    axum::serve(listener, make_service)
                        .with_graceful_shutdown(shutdown)
                        .await
                });
                (server, Vec::new())
            }
            Some(prepared) => {
                // The TLS listener sets TCP_NODELAY as it accepts.
                let listener = tls::listener::TlsListener::new(listener, prepared.config.clone())?
                    .tap_io(|_| {});
                let server = tokio::spawn(async move {
                    axum::serve(listener, make_service)
                        .with_graceful_shutdown(shutdown)
                        .await
                });
                if let Some(addr) = settings.tls.redirect_addr {
                    let plain = tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("listening for plain HTTP on {addr}"))?;
                    redirect_addr = Some(plain.local_addr()?);
                    let router = tls::listener::redirect_router(http_addr.port());
                    extras.push(tokio::spawn(async move {
                        if let Err(e) = axum::serve(plain, router).await {
                            tracing::error!(error = %e, "the plain-HTTP redirect server failed");
                        }
                    }));
                }
                if let Some(files) = prepared.files {
                    let alert = system_alert(store.clone(), bus.clone(), "tls.reload_failed");
                    extras.push(tokio::spawn(files.keep_fresh(
                        prepared.store.clone(),
                        std::time::Duration::from_secs(30),
                        alert,
                    )));
                }
                if let Some((acme, facts)) = prepared.acme {
                    let facts = match facts {
                        Some(f) => Some(f),
                        None => Some(
                            tokio::time::timeout(
                                std::time::Duration::from_secs(180),
                                tls::acme::obtain(&acme, &prepared.store),
                            )
                            .await
                            .map_err(|_| {
                                anyhow::anyhow!(
                                    "the ACME authority did not answer within 3 minutes"
                                )
                            })
                            .and_then(|r| r)
                            .with_context(|| {
                                format!(
                                    "obtaining a TLS certificate for {} from {}",
                                    acme.domains.join(", "),
                                    acme.directory
                                )
                            })?,
                        ),
                    };
                    let alert = system_alert(store.clone(), bus.clone(), "tls.renewal_failed");
                    extras.push(tokio::spawn(tls::acme::keep_renewed(
                        acme,
                        prepared.store.clone(),
                        facts,
                        alert,
                    )));
                }
                (server, prepared.notes)
            }
        };
        extras.push(heartbeat);
        extras.push(switchboard);
        let housekeeping = tokio::spawn(housekeeping(
            store.clone(),
            clock,
            floor.clone(),
            throttle,
            settings.nats_url.is_some(),
        ));
        // Deliveries go out from a task of their own: no endpoint, however
        // slow, holds up the dialler.
        let webhooks = tokio::spawn(Arc::new(webhooks).run());
        tracing::info!(%http_addr, backend = ?store.backend(), "dialcrm started");
        Ok(App {
            http_addr,
            https: settings.tls.enabled(),
            redirect_addr,
            tls_notes,
            store,
            bus,
            demo,
            floor,
            telephony,
            legs,
            desks,
            shutdown: Some(tx),
            server,
            housekeeping,
            webhooks,
            extras,
        })
    }

    /// The service's base URL as this machine reaches it.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// Drains the node before it stops: no new call is placed, `/healthz`
    /// answers 503 so a load balancer sends no one new, and the calls in
    /// progress carry on.
    pub async fn drain(&self) {
        self.floor.drain().await;
    }

    /// Returns whether no call is in progress and no agent is in a call or
    /// its wrap-up: a draining node may stop without cutting anyone off.
    pub async fn is_idle(&self) -> bool {
        self.floor.calls_in_progress().await == 0 && self.desks.busy() == 0
    }

    /// Stops accepting requests, lets running ones finish, and closes the
    /// database.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.housekeeping.abort();
        self.webhooks.abort();
        for task in &self.extras {
            task.abort();
        }
        self.floor.shutdown().await;
        self.floor.leave().await;
        (&mut self.server)
            .await
            .context("the HTTP server task failed")?
            .context("the HTTP server failed")?;
        self.store.close().await;
        Ok(())
    }
}

/// The telephony side of a running service.
pub struct Telephony {
    /// The SIP gateway.
    pub gateway: sip_gateway::gateway::Gateway,
    /// The in-process simulated carrier, when no trunk is configured.
    pub carrier: Option<sip_gateway::carrier::Carrier>,
    /// The trunk campaigns use unless they name one.
    pub default_trunk: String,
}

impl Telephony {
    /// Starts the gateway over the configured trunks, or over an in-process
    /// simulated carrier when there are none, so the demo can dial at once;
    /// with a Store, agents' desk phones register against its SIP
    /// credentials.
    pub async fn start(settings: &Settings, store: Option<&crm::Store>) -> Result<Telephony> {
        use sip_gateway::carrier::{Carrier, CarrierConfig};
        use sip_gateway::gateway::{Gateway, GatewayOptions, TrunkConfig};
        // Trunks to the service's other nodes are no provider.
        let providers = settings.trunks.iter().filter(|t| !t.peer).count();
        let (trunks, carrier) = if providers == 0 {
            let carrier = Carrier::start(CarrierConfig {
                sip_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                hangup_after: Some(std::time::Duration::from_secs(60)),
                ..CarrierConfig::default()
            })
            .await
            .context("starting the simulated carrier")?;
            let mut trunk = TrunkConfig::new("simulated", carrier.sip_addr());
            trunk.max_cps = 50;
            let mut trunks = vec![trunk];
            trunks.extend(settings.trunks.iter().cloned());
            (trunks, Some(carrier))
        } else {
            (settings.trunks.clone(), None)
        };
        let default_trunk = trunks
            .iter()
            .find(|t| !t.peer)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let phones = match store {
            Some(store) => Some(crate::phones::options(store, &settings.phones).await?),
            None => None,
        };
        let gateway =
            Gateway::start_with(settings.gateway_config(), trunks, GatewayOptions { phones })
                .await
                .context("starting the SIP gateway")?;
        if let Some(c) = &carrier {
            tracing::info!(carrier = %c.sip_addr(), "no trunks configured: dialling the simulated carrier");
        }
        Ok(Telephony {
            gateway,
            carrier,
            default_trunk,
        })
    }
}

/// Periodic chores: every 5 s the floor follows campaigns started or paused
/// elsewhere; every minute expired sessions and the failed logins the
/// throttle has forgotten are deleted; every hour what accounts keep past
/// their retention is purged and, with several nodes, the trunks are told
/// again.
async fn housekeeping(
    store: crm::Store,
    clock: Arc<dyn dashboard::Clock>,
    floor: Arc<dialer::floor::Floor>,
    throttle: Arc<dashboard::throttle::LoginThrottle>,
    shared: bool,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        // Campaigns started or paused elsewhere (another node, the CLI).
        if let Err(e) = floor.reconcile().await {
            tracing::warn!(error = %e, "reconciling running campaigns failed");
        }
        ticks += 1;
        if ticks % 12 != 1 {
            continue;
        }
        let minutes = ticks / 12;
        match store.purge_expired_sessions(clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "purged expired sessions"),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        match throttle.purge(clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged forgotten failed logins"),
            Err(e) => tracing::warn!(error = %e, "purging forgotten failed logins failed"),
        }
        // The shared stream keeps a day: the trunks, which change rarely,
        // are told again every hour so a node starting tomorrow knows them.
        if shared && minutes > 0 && minutes.is_multiple_of(60) {
            floor.announce_trunks().await;
        }
        // Retention runs at start and then hourly; each purge is audited.
        if minutes.is_multiple_of(60) {
            match store.purge_retained(clock.now()).await {
                Ok(reports) => {
                    for (account, r) in reports
                        .iter()
                        .filter(|(_, r)| r.interactions + r.recordings + r.agent_states > 0)
                    {
                        tracing::info!(
                            %account,
                            interactions = r.interactions,
                            recordings = r.recordings,
                            agent_states = r.agent_states,
                            "retention purge"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the retention purge failed"),
            }
            // Contacts merged a day ago are deleted, and their merges final.
            if let Err(e) = store.finalise_merges(clock.now()).await {
                tracing::warn!(error = %e, "making merges final failed");
            }
        }
    }
}

/// Returns a reporter that raises `alert` with a message to every
/// account's supervisors (for what concerns the whole service, such as its
/// certificate).
fn system_alert(
    store: crm::Store,
    bus: crm::events::EventBus,
    alert: &'static str,
) -> impl Fn(String) + Send + 'static {
    move |message: String| {
        let (store, bus) = (store.clone(), bus.clone());
        tokio::spawn(async move {
            match store.accounts().await {
                Ok(accounts) => {
                    for account in accounts {
                        bus.publish(crm::events::Event::Alert {
                            account: account.id,
                            alert: alert.into(),
                            message: message.clone(),
                            at: chrono::Utc::now(),
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listing accounts for an alert failed"),
            }
        });
    }
}

/// Hides the credentials (user and password, or token) of NATS URLs,
/// one or several separated by commas, for messages.
pub fn redact_nats_url(urls: &str) -> String {
    urls.split(',')
        .map(|url| match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
            _ => url.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Hides the password of a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/crm"),
            "postgres://app:***@db:5432/crm"
        );
        assert_eq!(
            super::redact_url("sqlite://dialcrm.db"),
            "sqlite://dialcrm.db"
        );
        assert_eq!(
            super::redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            super::redact_nats_url("nats://s3cret@10.0.0.5:4222,nats://u:pw@10.0.0.6"),
            "nats://***@10.0.0.5:4222,nats://***@10.0.0.6"
        );
        assert_eq!(
            super::redact_nats_url("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }
}
