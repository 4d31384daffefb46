//! Webhook deliveries, sent from this node.
//!
//! The Store queues a delivery with each fact an endpoint takes
//! (`crm::store::webhooks`); the [`Sender`] here polls for due ones, claims
//! them per endpoint under a lease so that one node sends each, and posts
//! each in a task of its own, signed ([`crm::webhooks::signature_header`]).
//! An endpoint has a few slots on a node ([`SenderConfig::per_endpoint`]):
//! a slow or failing endpoint fills its own and waits for them, while the
//! others' deliveries go on, and nothing of the dialler ever waits on a
//! delivery. Each attempt is written back with the next try or the final
//! state, and delivered or failed deliveries are purged after
//! [`SenderConfig::keep`].
//!
//! [`client`] is the HTTP client: https verified, one deadline per
//! exchange, no redirects followed.

pub mod client;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use crm::model::WebhookId;
use crm::store::webhooks::{AttemptResult, DeliveryStatus, Endpoint};
use crm::webhooks::{
    payload, signature_header, Outgoing, RetryPolicy, SigningSecret, WebhookEvent, DELIVERY_HEADER,
    EVENT_HEADER, SIGNATURE_HEADER,
};
use crm::{Store, StoreError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Clock;
pub use client::WebhookClient;

/// How this node sends deliveries.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// This node's name in the deliveries' leases.
    pub node: String,
    /// How often due deliveries are looked for.
    pub poll_every: Duration,
    /// The deadline of one attempt: connecting, sending, and the answer.
    pub timeout: Duration,
    /// Deliveries in flight to one endpoint from this node at most.
    pub per_endpoint: usize,
    /// Deliveries in flight from this node at most.
    pub in_flight: usize,
    /// When a failed delivery is tried again, and how often.
    pub policy: RetryPolicy,
    /// CA certificates to trust for https endpoints instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How long delivered and failed deliveries stay in the log.
    pub keep: TimeDelta,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            node: String::new(),
            poll_every: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            per_endpoint: 4,
            in_flight: 64,
            policy: RetryPolicy::default(),
            ca_file: None,
            keep: TimeDelta::days(30),
        }
    }
}

/// Sends the deliveries of every account from this node.
pub struct Sender {
    store: Store,
    clock: Arc<dyn Clock>,
    config: SenderConfig,
    client: WebhookClient,
    /// Each endpoint's slots on this node.
    slots: Mutex<HashMap<WebhookId, Arc<Semaphore>>>,
    /// Every slot of this node.
    in_flight: Arc<Semaphore>,
    /// Where attempts are counted for `/metrics`, once the service has it.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl Sender {
    /// Builds a sender; fails only on an unreadable `ca_file`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: SenderConfig) -> Result<Self, String> {
        let client = WebhookClient::new(config.timeout, config.ca_file.as_deref())?;
        Ok(Sender {
            store,
            clock,
            in_flight: Arc::new(Semaphore::new(config.in_flight.max(1))),
            config,
            client,
            slots: Mutex::new(HashMap::new()),
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Counts this node's attempts in `metrics`.
    pub fn count_in(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Sends due deliveries until the task is dropped; the attempts in
    /// flight are dropped with it, and their leases lapse for another node
    /// or the next start to send them again.
    pub async fn run(self: Arc<Self>) {
        let mut sends = JoinSet::new();
        let mut tick = tokio::time::interval(self.config.poll_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_purge = None;
        loop {
            tick.tick().await;
            while sends.try_join_next().is_some() {}
            if let Err(e) = self.start_due(&mut sends).await {
                tracing::warn!(error = %e, "looking for due webhook deliveries failed");
            }
            let now = self.clock.now();
            if last_purge.is_none_or(|at| now - at >= TimeDelta::hours(1)) {
                last_purge = Some(now);
                match self
                    .store
                    .purge_webhook_deliveries(now - self.config.keep)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deliveries = n, "purged old webhook deliveries"),
                    Err(e) => tracing::warn!(error = %e, "purging old webhook deliveries failed"),
                }
            }
        }
    }

    /// Claims what is due for every endpoint with a free slot and starts
    /// sending it; returns how many deliveries were started.
    pub async fn start_due(&self, sends: &mut JoinSet<()>) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut started = 0;
        for endpoint in self.store.webhooks_due(now).await? {
            match self.start_endpoint(endpoint, now, sends).await {
                Ok(n) => started += n,
                // Deleted meanwhile: its deliveries went with it.
                Err(StoreError::NotFound) => {}
                Err(e) => {
                    tracing::warn!(%endpoint, error = %e, "claiming webhook deliveries failed");
                }
            }
        }
        Ok(started)
    }

    /// Claims as many due deliveries of one endpoint as it has free slots,
    /// and starts sending them.
    async fn start_endpoint(
        &self,
        endpoint: WebhookId,
        now: chrono::DateTime<chrono::Utc>,
        sends: &mut JoinSet<()>,
    ) -> Result<usize, StoreError> {
        let slots = self.slots_of(endpoint);
        let free = slots
            .available_permits()
            .min(self.in_flight.available_permits());
        if free == 0 {
            return Ok(0);
        }
        let lease = TimeDelta::from_std(self.config.timeout).unwrap_or(TimeDelta::MAX)
            + TimeDelta::seconds(30);
        let claimed = self
            .store
            .claim_webhook_deliveries(endpoint, &self.config.node, free, now, lease)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let target = Arc::new(self.store.webhook_signing(endpoint).await?);
        let mut started = 0;
        for out in claimed {
            // Only this task takes slots, so the ones counted are still free.
            let (Ok(slot), Ok(overall)) = (
                slots.clone().try_acquire_owned(),
                self.in_flight.clone().try_acquire_owned(),
            ) else {
                break;
            };
            let job = Attempt {
                store: self.store.clone(),
                clock: self.clock.clone(),
                client: self.client.clone(),
                node: self.config.node.clone(),
                policy: self.config.policy,
                target: target.clone(),
                out,
                metrics: self.metrics.get().cloned(),
            };
            sends.spawn(async move {
                job.send().await;
                drop((slot, overall));
            });
            started += 1;
        }
        Ok(started)
    }

    fn slots_of(&self, endpoint: WebhookId) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(endpoint)
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_endpoint.max(1))))
            .clone()
    }
}

/// One attempt at one delivery.
struct Attempt {
    store: Store,
    clock: Arc<dyn Clock>,
    client: WebhookClient,
    node: String,
    policy: RetryPolicy,
    target: Arc<(Endpoint, SigningSecret)>,
    out: Outgoing,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Attempt {
    fn counted(&self, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.webhook(outcome);
        }
    }

    async fn send(self) {
        let (endpoint, secret) = &*self.target;
        let out = &self.out;
        let body = match self.body(endpoint).await {
            Ok(body) => body,
            Err(e) => {
                // The lease lapses and the delivery is tried again.
                tracing::warn!(endpoint = %endpoint.id, delivery = %out.id, error = %e, "reading a webhook delivery's contact failed");
                return;
            }
        };
        let timestamp = self.clock.now().timestamp();
        let headers = [
            (SIGNATURE_HEADER, signature_header(secret, timestamp, &body)),
            (DELIVERY_HEADER, out.id.to_string()),
            (EVENT_HEADER, out.event.as_str().to_owned()),
        ];
        let result = self.client.post(&endpoint.url, &headers, body).await;
        let jitter: f64 = rand::random();
        let recorded = self
            .store
            .record_webhook_attempt(
                out,
                &self.node,
                &result,
                self.clock.now(),
                &self.policy,
                jitter,
            )
            .await;
        let (endpoint, delivery, event) = (endpoint.id, out.id, out.event);
        match (&result, recorded) {
            (AttemptResult::Delivered { status }, Ok(_)) => {
                self.counted("delivered");
                tracing::debug!(%endpoint, %delivery, %event, status, "webhook delivered");
            }
            (AttemptResult::Failed { error, .. }, Ok(Some(DeliveryStatus::Failed))) => {
                self.counted("given_up");
                tracing::warn!(%endpoint, %delivery, %event, %error, "webhook delivery given up");
            }
            (AttemptResult::Failed { error, .. }, Ok(_)) => {
                self.counted("retry");
                tracing::info!(%endpoint, %delivery, %event, %error, "webhook delivery failed; it will be tried again");
            }
            (_, Err(e)) => {
                tracing::warn!(%endpoint, %delivery, error = %e, "writing a webhook attempt failed");
            }
        }
    }

    /// The signed body: the facts, and the contact fields opted into as
    /// the contact is now.
    async fn body(&self, endpoint: &Endpoint) -> Result<Vec<u8>, StoreError> {
        let out = &self.out;
        let fields = &endpoint.contact_fields;
        let wants_contact = fields.iter().any(|f| f != "notes");
        let contact = match out.contact_id {
            Some(id) if wants_contact && out.event != WebhookEvent::ContactErased => {
                found(self.store.contact(out.account_id, id).await)?
            }
            _ => None,
        };
        let interaction = out.data["interaction_id"].as_i64();
        let notes = match interaction {
            Some(id)
                if out.event == WebhookEvent::DispositionSaved
                    && fields.iter().any(|f| f == "notes") =>
            {
                found(
                    self.store
                        .interaction(out.account_id, crm::model::InteractionId(id))
                        .await,
                )?
                .and_then(|i| i.notes)
            }
            _ => None,
        };
        let body = payload(out, fields, contact.as_ref(), notes.as_deref());
        // A JSON value always serialises.
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// A row that is gone (an erased contact) is none; other errors stay.
fn found<T>(read: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}
