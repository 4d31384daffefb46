//! The account's do-not-call list: numbers added, checked and taken off one
//! by one, or imported in bulk; for supervisors and admins, every change
//! audited (by the number's keyed hash, never the number).
//!
//! Numbers are kept as keyed hashes: a check hashes the number asked
//! about. The numbers themselves are kept beside them only where the
//! account's admin asks (`/api/dnc/settings`), so that the list can be read
//! back (`GET /api/dnc`). A number on the list is never dialled by any
//! path, as with agents' do-not-call dispositions and erasures.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::store::suppression::{DncReport, DNC_IMPORT_SOURCE, DNC_LIST_SOURCE};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

/// The largest list the API takes in one request; larger ones go through
/// `dialcrm dnc import`, which streams a file.
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dnc", get(list).post(add))
        .route("/api/dnc/settings", get(settings).put(set_settings))
        .route("/api/dnc/{number}", get(check).delete(remove))
        .route("/api/dnc/import", post(import).layer(bulk()))
}

fn bulk() -> DefaultBodyLimit {
    DefaultBodyLimit::max(IMPORT_LIMIT)
}

fn default_region() -> String {
    "GB".into()
}

/// A number to put on the do-not-call list.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "NewDncEntry")]
pub(crate) struct NewEntry {
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
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DncEntry")]
pub(crate) struct Entry {
    /// Whether the number may not be dialled.
    suppressed: bool,
    /// Whether this request put it on the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<bool>,
    reason: Option<String>,
    source: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    1000
}

/// One entry of the list as read back.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DncListed")]
pub(crate) struct Listed {
    /// The entry's number in the list, to page on from.
    id: i64,
    /// The number, where the account keeps it; `null` where only its
    /// keyed hash is kept (an erased person's, or every entry while the
    /// account keeps hashes only).
    number: Option<String>,
    reason: String,
    source: String,
    since: chrono::DateTime<chrono::Utc>,
}

/// Reads the list back, oldest first, `limit` (1–10,000, default 1,000)
/// entries after `after`; audited, as it may hold numbers.
async fn list(
    State(state): State<AppState>,
    Manager(me): Manager,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Listed>>, ApiError> {
    if !(1..=10_000).contains(&page.limit) || page.after < 0 {
        return Err(ApiError::BadRequest(
            "limit is 1 to 10000, after at least 0".into(),
        ));
    }
    let entries = state
        .store
        .dnc_entries(me.account(), page.after, page.limit)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "dnc.list",
            Some(&format!("{} entries after {}", entries.len(), page.after)),
            state.clock.now(),
        )
        .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|(id, e)| Listed {
                id,
                number: e.number_e164,
                reason: e.reason,
                source: e.source,
                since: e.created_at,
            })
            .collect(),
    ))
}

/// Whether the account keeps its do-not-call list's numbers.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "DncSettings")]
pub(crate) struct Settings {
    keep_numbers: bool,
}

async fn settings(
    State(state): State<AppState>,
    Manager(me): Manager,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(Settings {
        keep_numbers: state.store.dnc_keeps_numbers(me.account()).await?,
    }))
}

/// Keeps the list's numbers from now on, or forgets those kept (admins).
async fn set_settings(
    State(state): State<AppState>,
    Admin(me): Admin,
    ApiJson(body): ApiJson<Settings>,
) -> Result<Json<Settings>, ApiError> {
    let forgotten = state
        .store
        .set_dnc_keeps_numbers(me.account(), body.keep_numbers)
        .await?;
    let target = match body.keep_numbers {
        true => "on".to_owned(),
        false => format!("off, {forgotten} numbers forgotten"),
    };
    state
        .store
        .audit(
            &me.actor(),
            "dnc.keep_numbers",
            Some(&target),
            state.clock.now(),
        )
        .await?;
    Ok(Json(body))
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
    let keep = state.store.dnc_keeps_numbers(me.account()).await?;
    let (entry, added) = state
        .store
        .suppress_number(me.account(), &number, reason, DNC_LIST_SOURCE, keep, now)
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
        .import_dnc(me.account(), &body[..], &q.region, DNC_IMPORT_SOURCE, now)
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
