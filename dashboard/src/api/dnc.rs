//! The account's do-not-call list: numbers added, checked and taken off one
//! by one, or imported in bulk; for supervisors and admins, every change
//! audited (by the number's keyed hash, never the number).
//!
//! Numbers are kept as keyed hashes only: a check hashes the number asked
//! about. A number on the list is never dialled by any path, as with
//! agents' do-not-call dispositions and erasures.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::store::suppression::DncReport;
use serde::{Deserialize, Serialize};

use crate::auth::Manager;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

/// The largest list the API takes in one request; larger ones go through
/// `dialcrm dnc import`, which streams a file.
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dnc", post(add))
        .route("/api/dnc/{number}", get(check).delete(remove))
        .route("/api/dnc/import", post(import).layer(bulk()))
}

fn bulk() -> DefaultBodyLimit {
    DefaultBodyLimit::max(IMPORT_LIMIT)
}

fn default_region() -> String {
    "GB".into()
}

#[derive(Deserialize)]
struct NewEntry {
    number: String,
    #[serde(default = "default_region")]
    region: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Region {
    #[serde(default = "default_region")]
    region: String,
}

/// What the list says of a number.
#[derive(Serialize)]
struct Entry {
    /// Whether the number may not be dialled.
    suppressed: bool,
    /// Whether this request put it on the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<bool>,
    reason: Option<String>,
    source: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
}

fn e164(number: &str, region: &str) -> Result<String, ApiError> {
    let region = crm::import::region(region).map_err(ApiError::BadRequest)?;
    crm::import::e164(number, region).map_err(|why| ApiError::BadRequest(format!("number: {why}")))
}

async fn add(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(body): ApiJson<NewEntry>,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    let number = e164(&body.number, &body.region)?;
    let reason = body.reason.as_deref().unwrap_or("do-not-call list");
    if reason.len() > 200 {
        return Err(ApiError::BadRequest(
            "reason: at most 200 characters".into(),
        ));
    }
    let now = state.clock.now();
    let (entry, added) = state
        .store
        .suppress_number(me.account(), &number, reason, "dnc-list", false, now)
        .await?;
    audit(&state, &me, "dnc.add", &entry.number_hash).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Entry {
            suppressed: true,
            added: Some(added),
            reason: Some(entry.reason),
            source: Some(entry.source),
            since: Some(entry.created_at),
        }),
    ))
}

async fn check(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(number): Path<String>,
    Query(q): Query<Region>,
) -> Result<Json<Entry>, ApiError> {
    let number = e164(&number, &q.region)?;
    let entry = state.store.suppression(me.account(), &number).await?;
    Ok(Json(Entry {
        suppressed: entry.is_some(),
        added: None,
        reason: entry.as_ref().map(|e| e.reason.clone()),
        source: entry.as_ref().map(|e| e.source.clone()),
        since: entry.map(|e| e.created_at),
    }))
}

async fn remove(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(number): Path<String>,
    Query(q): Query<Region>,
) -> Result<StatusCode, ApiError> {
    let number = e164(&number, &q.region)?;
    let hash = state
        .store
        .suppression(me.account(), &number)
        .await?
        .ok_or(ApiError::NotFound)?
        .number_hash;
    state.store.unsuppress(me.account(), &number).await?;
    audit(&state, &me, "dnc.remove", &hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn import(
    State(state): State<AppState>,
    Manager(me): Manager,
    Query(q): Query<Region>,
    body: Bytes,
) -> Result<Json<DncReport>, ApiError> {
    let now = state.clock.now();
    let report = state
        .store
        .import_dnc(me.account(), &body[..], &q.region, "dnc-import", now)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "dnc.import",
            Some(&format!("added {} of {} lines", report.added, report.lines)),
            now,
        )
        .await?;
    Ok(Json(report))
}

async fn audit(
    state: &AppState,
    me: &crate::auth::CurrentUser,
    action: &str,
    hash: &str,
) -> Result<(), ApiError> {
    // The keyed hash names the entry without the number.
    let short = hash.get(..16).unwrap_or(hash);
    state
        .store
        .audit(
            &me.actor(),
            action,
            Some(&format!("dnc:{short}")),
            state.clock.now(),
        )
        .await?;
    Ok(())
}
