//! The account's webhook endpoints and their delivery logs, for admins.
//!
//! An endpoint's secret is made by the service and shown once, when the
//! endpoint is created or its secret rotated; it is never listed or logged.
//! Every change is audited with the names of what changed, never the URL
//! (which may hold a token) or the secret.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::model::{DeliveryId, WebhookId};
use crm::store::webhooks::{Delivery, Endpoint, EndpointChange, NewEndpoint};
use crm::webhooks::{SigningSecret, WebhookEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, CurrentUser};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/webhooks", get(all).post(create))
        .route("/api/webhooks/{id}", get(one).patch(change).delete(remove))
        .route("/api/webhooks/{id}/deliveries", get(deliveries))
        .route("/api/webhooks/{id}/test", post(test))
}

/// A webhook endpoint to add.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "NewWebhook")]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBody {
    url: String,
    #[serde(default)]
    description: String,
    events: Vec<String>,
    #[serde(default)]
    contact_fields: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// The changes to a webhook endpoint; fields left out keep their value.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "WebhookChange")]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeBody {
    url: Option<String>,
    description: Option<String>,
    events: Option<Vec<String>>,
    contact_fields: Option<Vec<String>>,
    active: Option<bool>,
    #[serde(default)]
    rotate_secret: bool,
}

/// An endpoint, with its secret when it was just made.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "WebhookWithSecret")]
pub(crate) struct WithSecret {
    #[serde(flatten)]
    endpoint: Endpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WithSecret {
    fn new(endpoint: Endpoint, secret: Option<SigningSecret>) -> Self {
        WithSecret {
            endpoint,
            secret: secret.map(|s| s.expose().to_owned()),
        }
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<String>,
    before: Option<String>,
}

fn events(names: &[String]) -> Result<Vec<WebhookEvent>, ApiError> {
    names
        .iter()
        .map(|n| {
            n.parse::<WebhookEvent>()
                .map_err(|e| ApiError::BadRequest(format!("events: {e}")))
        })
        .collect()
}

async fn all(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<Json<Vec<Endpoint>>, ApiError> {
    Ok(Json(state.store.webhooks(me.account()).await?))
}

async fn create(
    State(state): State<AppState>,
    Admin(me): Admin,
    ApiJson(body): ApiJson<NewBody>,
) -> Result<(StatusCode, Json<WithSecret>), ApiError> {
    let new = NewEndpoint {
        url: body.url,
        description: body.description,
        events: events(&body.events)?,
        contact_fields: body.contact_fields,
        active: body.active,
    };
    let (endpoint, secret) = state
        .store
        .create_webhook(me.account(), &new, state.clock.now())
        .await?;
    let detail = format!(
        "events={}; contact_fields={}",
        names(&endpoint.events),
        endpoint.contact_fields.join(",")
    );
    audit(&state, &me, "webhook.create", endpoint.id, Some(&detail)).await?;
    Ok((
        StatusCode::CREATED,
        Json(WithSecret::new(endpoint, Some(secret))),
    ))
}

async fn one(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(
        state.store.webhook(me.account(), WebhookId(id)).await?,
    ))
}

async fn change(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<Json<WithSecret>, ApiError> {
    let id = WebhookId(id);
    let change = EndpointChange {
        events: body.events.as_deref().map(events).transpose()?,
        url: body.url,
        description: body.description,
        contact_fields: body.contact_fields,
        active: body.active,
        rotate_secret: body.rotate_secret,
    };
    let (endpoint, secret) = state
        .store
        .update_webhook(me.account(), id, &change, state.clock.now())
        .await?;
    let mut changed = Vec::new();
    for (name, given) in [
        ("url", change.url.is_some()),
        ("description", change.description.is_some()),
        ("events", change.events.is_some()),
        ("contact_fields", change.contact_fields.is_some()),
        ("active", change.active.is_some()),
        ("secret", change.rotate_secret),
    ] {
        if given {
            changed.push(name);
        }
    }
    let mut detail = format!("changed={}", changed.join(","));
    if change.events.is_some() {
        detail.push_str(&format!("; events={}", names(&endpoint.events)));
    }
    if change.contact_fields.is_some() {
        detail.push_str(&format!(
            "; contact_fields={}",
            endpoint.contact_fields.join(",")
        ));
    }
    audit(&state, &me, "webhook.update", id, Some(&detail)).await?;
    Ok(Json(WithSecret::new(endpoint, secret)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let id = WebhookId(id);
    state.store.delete_webhook(me.account(), id).await?;
    audit(&state, &me, "webhook.delete", id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let number = |name: &str, v: Option<&str>| -> Result<Option<i64>, ApiError> {
        match v.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number"))),
        }
    };
    let limit = match number("limit", page.limit.as_deref())? {
        None => 100,
        Some(n @ 1..=1000) => n as u32,
        Some(_) => return Err(ApiError::BadRequest("limit must be 1–1000".into())),
    };
    let before = number("before", page.before.as_deref())?.map(DeliveryId);
    Ok(Json(
        state
            .store
            .webhook_deliveries(me.account(), WebhookId(id), limit, before)
            .await?,
    ))
}

async fn test(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let id = WebhookId(id);
    let delivery = state
        .store
        .ping_webhook(me.account(), id, state.clock.now())
        .await?;
    audit(&state, &me, "webhook.test", id, None).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

fn names(events: &[WebhookEvent]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn audit(
    state: &AppState,
    me: &CurrentUser,
    action: &str,
    id: WebhookId,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    state
        .store
        .audit_detail(
            &me.actor(),
            action,
            Some(&format!("webhook:{id}")),
            detail,
            state.clock.now(),
        )
        .await?;
    Ok(())
}
