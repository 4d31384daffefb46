//! Webhook endpoints and the outbox of their deliveries.
//!
//! An account's admins keep endpoints: a URL, the events it takes, the
//! contact fields the account opted into for it, and the secret that signs
//! what it is sent. Each fact a webhook reports is written here as one
//! delivery per endpoint that takes its event, in the same transaction as
//! the fact ([`enqueue_webhooks`]), so a fact is never written without its
//! deliveries, nor they without it.
//!
//! A sender on any node claims due deliveries of one endpoint at a time
//! ([`Store::claim_webhook_deliveries`]) under a lease: on PostgreSQL the
//! rows are read `FOR UPDATE SKIP LOCKED`, on SQLite in a `BEGIN IMMEDIATE`
//! transaction, and the lease is taken by a conditional update, so each
//! delivery is sent by one node at a time, and again by another only once
//! the lease lapses. The result of each attempt is written back with the
//! next try or the final state ([`Store::record_webhook_attempt`]).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{on_pool, Backend, Store};
use crate::model::{AccountId, ContactId, DeliveryId, WebhookId};
use crate::webhooks::{
    check_contact_field, check_url, Occurrence, Outgoing, RetryPolicy, SigningSecret, WebhookEvent,
};
use crate::StoreError;

/// The most endpoints one account may keep.
pub const MAX_ENDPOINTS: usize = 50;

/// An endpoint as admins see it; the secret is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "WebhookEndpoint")
)]
pub struct Endpoint {
    /// The endpoint's id.
    pub id: WebhookId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Where deliveries are posted.
    pub url: String,
    /// What it is for, in the admins' words.
    pub description: String,
    /// The events it takes.
    pub events: Vec<WebhookEvent>,
    /// The contact fields the account opted into for it.
    pub contact_fields: Vec<String>,
    /// Whether it takes new deliveries and is sent those it has.
    pub active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// An endpoint to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEndpoint {
    /// Where deliveries are posted: http or https.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The events it takes; at least one.
    pub events: Vec<WebhookEvent>,
    /// The contact fields opted into; none by default.
    pub contact_fields: Vec<String>,
    /// Whether it starts active.
    pub active: bool,
}

/// A change to an endpoint; what is `None` stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointChange {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new set of events.
    pub events: Option<Vec<WebhookEvent>>,
    /// A new set of contact fields.
    pub contact_fields: Option<Vec<String>>,
    /// Turns it on or off.
    pub active: Option<bool>,
    /// Replaces the secret with a new one, shown once.
    pub rotate_secret: bool,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Failed,
}

impl DeliveryStatus {
    /// Returns the status's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(format!("stored delivery status {other:?}")),
        }
    }
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "WebhookDelivery")
)]
pub struct Delivery {
    /// The delivery's id, sent as `Dialcrm-Delivery`.
    pub id: DeliveryId,
    /// The endpoint.
    pub endpoint_id: WebhookId,
    /// The event.
    pub event: WebhookEvent,
    /// The contact concerned; `None` once erased.
    pub contact_id: Option<ContactId>,
    /// The facts reported: ids, outcome, times.
    pub data: Value,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer, if one came.
    pub last_status: Option<u16>,
    /// Why the latest failed attempt failed; kept after a later success,
    /// so the log shows what a delivery went through.
    pub last_error: Option<String>,
    /// When the endpoint took it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What one attempt to send a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered with a 2xx status.
    Delivered {
        /// The status.
        status: u16,
    },
    /// The endpoint could not be reached, timed out or answered otherwise.
    Failed {
        /// The status, if an answer came.
        status: Option<u16>,
        /// What went wrong, for the delivery log.
        error: String,
    },
}

/// Writes one delivery of an [`Occurrence`] for every active endpoint of the
/// account that takes its event, on the connection or transaction given,
/// so it commits or rolls back with the fact it reports.
macro_rules! enqueue_webhooks {
    ($conn:expr, $account:expr, $occurrence:expr) => {{
        let occurrence: &$crate::webhooks::Occurrence = $occurrence;
        let account: $crate::model::AccountId = $account;
        sqlx::query($crate::store::webhooks::ENQUEUE)
            .bind(account.0)
            .bind(occurrence.event.as_str())
            .bind(occurrence.contact.map(|c| c.0))
            .bind(occurrence.data.to_string())
            .bind(occurrence.at)
            .execute($conn)
            .await
            .map(|r| r.rows_affected())
    }};
}
pub(crate) use enqueue_webhooks;

/// The insert behind [`enqueue_webhooks`]: `$1` account, `$2` event, `$3`
/// contact, `$4` data, `$5` when.
pub(crate) const ENQUEUE: &str = "INSERT INTO webhook_deliveries (account_id, endpoint_id, \
     event, contact_id, data, occurred_at, status, attempts, next_attempt_at, created_at) \
     SELECT e.account_id, e.id, $2, $3, $4, $5, 'pending', 0, $5, $5 \
     FROM webhook_endpoints e JOIN webhook_events ev ON ev.endpoint_id = e.id \
     WHERE e.account_id = $1 AND e.active AND ev.event = $2";

const ENDPOINT_COLUMNS: &str =
    "id, account_id, url, description, contact_fields, active, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, account_id, endpoint_id, event, contact_id, data, \
     occurred_at, status, attempts, next_attempt_at, last_attempt_at, last_status, last_error, \
     delivered_at";
/// A delivery a sender may take now: pending, due, and not leased.
const CLAIMABLE: &str = "status = 'pending' AND next_attempt_at <= $2 \
     AND (lease_expires_at IS NULL OR lease_expires_at <= $2)";

impl Store {
    /// Creates an endpoint with a new secret, returned here only.
    pub async fn create_webhook(
        &self,
        account: AccountId,
        new: &NewEndpoint,
        now: DateTime<Utc>,
    ) -> Result<(Endpoint, SigningSecret), StoreError> {
        let url = check_url(&new.url).map_err(StoreError::Invalid)?;
        let description = check_description(&new.description)?;
        let events = check_events(&new.events)?;
        let fields = check_fields(&new.contact_fields)?;
        if self.webhooks(account).await?.len() >= MAX_ENDPOINTS {
            return Err(StoreError::Refused(format!(
                "an account keeps at most {MAX_ENDPOINTS} webhook endpoints"
            )));
        }
        let secret = SigningSecret::generate();
        let fields_json = serde_json::to_string(&fields).unwrap_or_else(|_| "[]".into());
        let id: i64 = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO webhook_endpoints (account_id, url, description, secret, \
                 contact_fields, active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
            )
            .bind(account.0)
            .bind(&url)
            .bind(&description)
            .bind(secret.expose())
            .bind(&fields_json)
            .bind(new.active)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            for event in &events {
                sqlx::query(
                    "INSERT INTO webhook_events (endpoint_id, account_id, event) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(account.0)
                .bind(event.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            id
        });
        Ok((self.webhook(account, WebhookId(id)).await?, secret))
    }

    /// Returns the account's endpoints, oldest first.
    pub async fn webhooks(&self, account: AccountId) -> Result<Vec<Endpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = $1 ORDER BY id"
        );
        let rows: Vec<EndpointRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        let events: Vec<(WebhookId, WebhookEvent)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT endpoint_id, event FROM webhook_events WHERE account_id = $1 \
             ORDER BY endpoint_id, event"
        )
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|row| {
                let mine = events
                    .iter()
                    .filter(|(id, _)| *id == row.id)
                    .map(|(_, e)| *e)
                    .collect();
                row.into_endpoint(mine)
            })
            .collect())
    }

    /// Returns one endpoint of the account.
    pub async fn webhook(&self, account: AccountId, id: WebhookId) -> Result<Endpoint, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND account_id = $2"
        );
        let row: EndpointRow = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .fetch_optional(pool)
            .await?)
        .ok_or(StoreError::NotFound)?;
        let events = self.webhook_events(id).await?;
        Ok(row.into_endpoint(events))
    }

    /// Changes an endpoint; returns it, and its new secret when rotated.
    pub async fn update_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        change: &EndpointChange,
        now: DateTime<Utc>,
    ) -> Result<(Endpoint, Option<SigningSecret>), StoreError> {
        let current = self.webhook(account, id).await?;
        let url = match &change.url {
            Some(u) => check_url(u).map_err(StoreError::Invalid)?,
            None => current.url,
        };
        let description = match &change.description {
            Some(d) => check_description(d)?,
            None => current.description,
        };
        let events = change.events.as_deref().map(check_events).transpose()?;
        let fields = match &change.contact_fields {
            Some(f) => check_fields(f)?,
            None => current.contact_fields,
        };
        let fields_json = serde_json::to_string(&fields).unwrap_or_else(|_| "[]".into());
        let active = change.active.unwrap_or(current.active);
        let secret = change.rotate_secret.then(SigningSecret::generate);
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE webhook_endpoints SET url = $1, description = $2, contact_fields = $3, \
                 active = $4, secret = COALESCE($5, secret), updated_at = $6 \
                 WHERE id = $7 AND account_id = $8",
            )
            .bind(&url)
            .bind(&description)
            .bind(&fields_json)
            .bind(active)
            .bind(secret.as_ref().map(SigningSecret::expose))
            .bind(now)
            .bind(id.0)
            .bind(account.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if let Some(events) = &events {
                sqlx::query("DELETE FROM webhook_events WHERE endpoint_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                for event in events {
                    sqlx::query(
                        "INSERT INTO webhook_events (endpoint_id, account_id, event) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id.0)
                    .bind(account.0)
                    .bind(event.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        });
        Ok((self.webhook(account, id).await?, secret))
    }

    /// Deletes an endpoint with its delivery log; what was pending is
    /// never sent.
    pub async fn delete_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Returns an endpoint's deliveries, newest first: up to `limit`, older
    /// than `before` when given.
    pub async fn webhook_deliveries(
        &self,
        account: AccountId,
        id: WebhookId,
        limit: u32,
        before: Option<DeliveryId>,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.webhook(account, id).await?;
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE endpoint_id = $1 AND account_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<DeliveryRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .bind(before.map_or(i64::MAX, |b| b.0))
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    /// Queues a test delivery (`ping`) to one active endpoint.
    pub async fn ping_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        now: DateTime<Utc>,
    ) -> Result<Delivery, StoreError> {
        let endpoint = self.webhook(account, id).await?;
        if !endpoint.active {
            return Err(StoreError::Refused(
                "the endpoint is inactive; activate it first".into(),
            ));
        }
        let ping = Occurrence::ping(now);
        let sql = format!(
            "INSERT INTO webhook_deliveries (account_id, endpoint_id, event, contact_id, data, \
             occurred_at, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, NULL, $4, $5, 'pending', 0, $5, $5) RETURNING {DELIVERY_COLUMNS}"
        );
        let row: DeliveryRow = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(id.0)
            .bind(ping.event.as_str())
            .bind(ping.data.to_string())
            .bind(now)
            .fetch_one(pool)
            .await?);
        row.into_delivery()
    }

    /// Returns the active endpoints, of every account, with deliveries a
    /// sender may take at `now`.
    pub async fn webhooks_due(&self, now: DateTime<Utc>) -> Result<Vec<WebhookId>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT DISTINCT d.endpoint_id FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $1) AND e.active \
             ORDER BY d.endpoint_id LIMIT 1000"
        )
        .bind(now)
        .fetch_all(pool)
        .await?))
    }

    /// Leases up to `n` due deliveries of an active endpoint to `node`
    /// until `now + lease`, oldest due first.
    pub async fn claim_webhook_deliveries(
        &self,
        endpoint: WebhookId,
        node: &str,
        n: usize,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Vec<Outgoing>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let (begin, lock) = match self.backend() {
            Backend::Sqlite => ("BEGIN IMMEDIATE", ""),
            Backend::Postgres => ("BEGIN", " FOR UPDATE SKIP LOCKED"),
        };
        let select = format!(
            "SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND {CLAIMABLE} \
             AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = $1 AND e.active) \
             ORDER BY next_attempt_at, id LIMIT $3{lock}"
        );
        let rows: Vec<DeliveryRow> = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let ids: Vec<i64> = sqlx::query_scalar(&select)
                .bind(endpoint.0)
                .bind(now)
                .bind(n as i64)
                .fetch_all(&mut *tx)
                .await?;
            if ids.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let update = format!(
                "UPDATE webhook_deliveries SET lease_owner = $1, lease_expires_at = $3 \
                 WHERE endpoint_id = $4 AND {CLAIMABLE} AND id IN ({}) \
                 RETURNING {DELIVERY_COLUMNS}",
                placeholders(5, ids.len())
            );
            let mut query = sqlx::query_as(&update)
                .bind(node)
                .bind(now)
                .bind(now + lease)
                .bind(endpoint.0);
            for id in &ids {
                query = query.bind(id);
            }
            let rows: Vec<DeliveryRow> = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        });
        let mut out: Vec<Outgoing> = rows
            .into_iter()
            .map(DeliveryRow::into_outgoing)
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|o| (o.occurred_at, o.id));
        Ok(out)
    }

    /// Returns an endpoint, of any account, with its secret, for the sender.
    pub async fn webhook_signing(
        &self,
        id: WebhookId,
    ) -> Result<(Endpoint, SigningSecret), StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS}, secret FROM webhook_endpoints WHERE id = $1");
        let row: SigningRow = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .fetch_optional(pool)
            .await?)
        .ok_or(StoreError::NotFound)?;
        let events = self.webhook_events(id).await?;
        let secret = SigningSecret::from_stored(row.secret);
        Ok((row.endpoint.into_endpoint(events), secret))
    }

    /// Writes what an attempt came to, if `node` still holds the delivery's
    /// lease: delivered; or failed, to be tried again after the policy's
    /// backoff (spread by `jitter`, in `[0, 1]`) or given up after its last
    /// attempt. Returns the delivery's new status, or `None` when the lease
    /// had passed to another node, which then decides.
    pub async fn record_webhook_attempt(
        &self,
        delivery: &Outgoing,
        node: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let attempts = delivery.attempts.saturating_add(1);
        let (status, next, code, error) = match result {
            AttemptResult::Delivered { status } => {
                (DeliveryStatus::Delivered, None, Some(*status), None)
            }
            AttemptResult::Failed { status, error } => {
                let error: String = error.chars().take(500).collect();
                match policy.delay(attempts, jitter) {
                    Some(wait) => (
                        DeliveryStatus::Pending,
                        Some(now + wait),
                        *status,
                        Some(error),
                    ),
                    None => (DeliveryStatus::Failed, None, *status, Some(error)),
                }
            }
        };
        let delivered_at = (status == DeliveryStatus::Delivered).then_some(now);
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
             last_attempt_at = $4, last_status = $5, last_error = COALESCE($6, last_error), \
             delivered_at = $7, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $8 AND lease_owner = $9 AND status = 'pending'"
        )
        .bind(status.as_str())
        .bind(i64::from(attempts))
        .bind(next)
        .bind(now)
        .bind(code.map(i64::from))
        .bind(error)
        .bind(delivered_at)
        .bind(delivery.id.0)
        .bind(node)
        .execute(pool)
        .await?
        .rows_affected());
        Ok((n > 0).then_some(status))
    }

    /// Deletes the delivered and failed deliveries created before `before`,
    /// of every account; returns how many.
    pub async fn purge_webhook_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed') \
             AND created_at < $1"
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    async fn webhook_events(&self, id: WebhookId) -> Result<Vec<WebhookEvent>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT event FROM webhook_events WHERE endpoint_id = $1 ORDER BY event"
        )
        .bind(id.0)
        .fetch_all(pool)
        .await?))
    }
}

fn check_description(d: &str) -> Result<String, StoreError> {
    let d = d.trim();
    if d.chars().count() > 200 {
        return Err(StoreError::Invalid(
            "description: at most 200 characters".into(),
        ));
    }
    Ok(d.to_owned())
}

fn check_events(events: &[WebhookEvent]) -> Result<Vec<WebhookEvent>, StoreError> {
    if events.contains(&WebhookEvent::Ping) {
        return Err(StoreError::Invalid(
            "events: ping is sent on request only; subscribe to the others".into(),
        ));
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    if events.is_empty() {
        let names: Vec<&str> = WebhookEvent::SUBSCRIBABLE
            .iter()
            .map(|e| e.as_str())
            .collect();
        return Err(StoreError::Invalid(format!(
            "events: choose at least one of {}",
            names.join(", ")
        )));
    }
    Ok(events)
}

fn check_fields(fields: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    for field in fields {
        check_contact_field(field).map_err(StoreError::Invalid)?;
        if !out.contains(field) {
            out.push(field.clone());
        }
    }
    if out.len() > 50 {
        return Err(StoreError::Invalid(
            "contact_fields: at most 50 fields".into(),
        ));
    }
    Ok(out)
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: WebhookId,
    account_id: AccountId,
    url: String,
    description: String,
    contact_fields: String,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl EndpointRow {
    fn into_endpoint(self, events: Vec<WebhookEvent>) -> Endpoint {
        // Written by this module from a checked list; an unreadable one
        // sends no contact field rather than failing the endpoint.
        let contact_fields = serde_json::from_str(&self.contact_fields).unwrap_or_default();
        Endpoint {
            id: self.id,
            account_id: self.account_id,
            url: self.url,
            description: self.description,
            events,
            contact_fields,
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SigningRow {
    #[sqlx(flatten)]
    endpoint: EndpointRow,
    secret: String,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: DeliveryId,
    account_id: AccountId,
    endpoint_id: WebhookId,
    event: WebhookEvent,
    contact_id: Option<ContactId>,
    data: String,
    occurred_at: DateTime<Utc>,
    status: DeliveryStatus,
    attempts: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    last_status: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<Delivery, StoreError> {
        let data = serde_json::from_str(&self.data)
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))?;
        Ok(Delivery {
            id: self.id,
            endpoint_id: self.endpoint_id,
            event: self.event,
            contact_id: self.contact_id,
            data,
            occurred_at: self.occurred_at,
            status: self.status,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            last_attempt_at: self.last_attempt_at,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            delivered_at: self.delivered_at,
        })
    }

    fn into_outgoing(self) -> Result<Outgoing, StoreError> {
        let account_id = self.account_id;
        let d = self.into_delivery()?;
        Ok(Outgoing {
            id: d.id,
            endpoint_id: d.endpoint_id,
            account_id,
            event: d.event,
            contact_id: d.contact_id,
            data: d.data,
            occurred_at: d.occurred_at,
            attempts: d.attempts,
        })
    }
}
