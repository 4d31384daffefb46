//! Privacy operations for admins: subject access exports, erasure, and the
//! audit log that records both.
//!
//! Every route here is admin only and account scoped: another account's
//! contact is a 404, and every export and erasure is itself audited.

use std::io::Write;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use crm::model::{AuditEntry, ContactId, Role, UserId};
use crm::store::audit_search::AuditFilter;
use crm::store::erasure::ErasureReport;
use crm::subject::SubjectAccess;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

/// The most audit entries one CSV export holds.
const MAX_CSV_ENTRIES: i64 = 100_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/contacts/{id}/export.zip", get(export_contact))
        .route("/api/contacts/{id}/erase", post(erase_contact))
        .route("/api/audit", get(audit))
        .route("/api/audit.csv", get(audit_csv))
}

/// The `contact.json` of a subject access export.
#[derive(Serialize)]
struct ExportDocument<'a> {
    exported_at: DateTime<Utc>,
    #[serde(flatten)]
    access: &'a SubjectAccess,
    /// Where each recording is inside the zip; `None` when its file is gone.
    recording_files: Vec<RecordingFile>,
}

#[derive(Serialize)]
struct RecordingFile {
    recording_id: i64,
    file: Option<String>,
}

async fn export_contact(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    me.require(&[Role::Admin])?;
    let contact = ContactId(id);
    let access = state.store.subject_access(me.account(), contact).await?;
    let now = state.clock.now();
    let zip = tokio::task::spawn_blocking(move || build_zip(&access, now))
        .await
        .map_err(|e| ApiError::Internal(format!("building a subject access zip panicked: {e}")))?
        .map_err(|e| ApiError::Internal(format!("building a subject access zip: {e}")))?;
    state
        .store
        .audit(
            &me.actor(),
            "contact.export",
            Some(&format!("contact:{contact}")),
            now,
        )
        .await?;
    tracing::info!(%contact, bytes = zip.len(), "subject access export");
    let disposition = format!("attachment; filename=\"contact-{contact}.zip\"");
    let mut response = zip.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn erase_contact(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ErasureReport>, ApiError> {
    me.require(&[Role::Admin])?;
    // The store writes the `contact.erase` audit entry in its transaction.
    let report = state
        .store
        .erase_contact(me.account(), ContactId(id), &me.actor(), state.clock.now())
        .await?;
    Ok(Json(report))
}

/// The audit filters as they arrive; empty values mean "any".
#[derive(Deserialize)]
struct AuditQuery {
    action: Option<String>,
    user_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    me.require(&[Role::Admin])?;
    let filter = query.into_filter(1000)?;
    Ok(Json(state.store.search_audit(me.account(), &filter).await?))
}

async fn audit_csv(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    me.require(&[Role::Admin])?;
    let mut filter = query.into_filter(MAX_CSV_ENTRIES)?;
    filter.limit = filter.limit.map(|l| l.min(MAX_CSV_ENTRIES));
    let entries = state.store.search_audit(me.account(), &filter).await?;
    let csv = audit_to_csv(&entries)
        .map_err(|e| ApiError::Internal(format!("writing the audit CSV: {e}")))?;
    state
        .store
        .audit(
            &me.actor(),
            "audit.export",
            Some(&format!("entries:{}", entries.len())),
            state.clock.now(),
        )
        .await?;
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit.csv\""),
    );
    Ok(response)
}

impl AuditQuery {
    fn into_filter(self, default_limit: i64) -> Result<AuditFilter, ApiError> {
        let given = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let time = |name: &str, v: Option<String>| {
            given(v)
                .map(|s| {
                    DateTime::parse_from_rfc3339(&s)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            ApiError::BadRequest(format!(
                                "{name} must be an RFC 3339 time such as 2026-11-27T09:00:00Z"
                            ))
                        })
                })
                .transpose()
        };
        let number = |name: &str, v: Option<String>| {
            given(v)
                .map(|s| {
                    s.parse::<i64>()
                        .map_err(|_| ApiError::BadRequest(format!("{name} must be a number")))
                })
                .transpose()
        };
        Ok(AuditFilter {
            action: given(self.action),
            user_id: number("user_id", self.user_id)?.map(UserId),
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            limit: Some(number("limit", self.limit)?.unwrap_or(default_limit).max(0)),
        })
    }
}

/// Writes the subject access zip: `contact.json`, then each recording that
/// is still on disk under `recordings/`. Entries are stored, not deflated.
fn build_zip(access: &SubjectAccess, now: DateTime<Utc>) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut files = Vec::new();
    let mut audio = Vec::new();
    for r in &access.recordings {
        let base = std::path::Path::new(&r.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("recording.wav");
        match std::fs::read(&r.path) {
            Ok(bytes) => {
                let name = format!("recordings/{}-{base}", r.id.0);
                files.push(RecordingFile {
                    recording_id: r.id.0,
                    file: Some(name.clone()),
                });
                audio.push((name, bytes));
            }
            Err(error) => {
                tracing::warn!(recording = r.id.0, %error, "a recording for an export is unreadable");
                files.push(RecordingFile {
                    recording_id: r.id.0,
                    file: None,
                });
            }
        }
    }
    let document = ExportDocument {
        exported_at: now,
        access,
        recording_files: files,
    };
    let json = serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?;
    zip.start_file("contact.json", options)
        .map_err(|e| e.to_string())?;
    zip.write_all(&json).map_err(|e| e.to_string())?;
    for (name, bytes) in audio {
        zip.start_file(name, options).map_err(|e| e.to_string())?;
        zip.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    Ok(zip.finish().map_err(|e| e.to_string())?.into_inner())
}

/// Writes audit entries as CSV, newest first, with cells that a
/// spreadsheet would run as a formula defused by a leading quote.
fn audit_to_csv(entries: &[AuditEntry]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "occurred_at",
        "action",
        "user_id",
        "target",
        "ip",
        "user_agent",
        "detail",
    ])?;
    for e in entries {
        let opt = |v: &Option<String>| defuse(v.as_deref().unwrap_or_default());
        out.write_record([
            e.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            defuse(&e.action),
            e.user_id.map(|u| u.to_string()).unwrap_or_default(),
            opt(&e.target),
            opt(&e.ip),
            opt(&e.user_agent),
            opt(&e.detail),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// Returns a cell a spreadsheet would run as a formula with a leading quote.
pub(super) fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}
