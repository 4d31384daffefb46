//! CSV import and export of call lists over HTTP.
//!
//! An upload is streamed to a private temporary file (never held in memory),
//! then imported by a background task that writes its progress to the
//! `import_jobs` table, so any node behind the same database can answer
//! `GET /api/imports/{id}`; the file is deleted when the import ends.

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crm::export::ListExport;
use crm::import::{import_csv, ImportJob, ImportOptions, ImportStatus, OnDuplicate};
use crm::model::{AccountId, ListId, Role};
use futures_util::StreamExt;
use rand::RngCore;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

/// The largest CSV upload accepted.
pub const MAX_UPLOAD_BYTES: u64 = 200 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/lists/{id}/import", post(upload))
        .route("/api/lists/{id}/export.csv", get(export))
        .route("/api/imports/{id}", get(job))
}

#[derive(Deserialize)]
struct UploadQuery {
    on_duplicate: Option<String>,
}

async fn upload(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    let on_duplicate: OnDuplicate = query
        .on_duplicate
        .as_deref()
        .unwrap_or("skip")
        .parse()
        .map_err(ApiError::BadRequest)?;
    let list = state.store.list(me.account(), ListId(id)).await?;
    let csv_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if !matches!(
        csv_type.as_deref(),
        Some("text/csv" | "application/csv" | "text/plain")
    ) {
        return Ok(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the CSV file as the body with Content-Type: text/csv",
        ));
    }
    let path = upload_path()?;
    if let Err(response) = save_body(request.into_body(), &path).await {
        let _ = tokio::fs::remove_file(&path).await;
        return Ok(response);
    }
    let now = state.clock.now();
    let job = state
        .store
        .create_import_job(me.account(), list.id, Some(me.user.id), on_duplicate, now)
        .await;
    let job = match job {
        Ok(job) => job,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e.into());
        }
    };
    tokio::spawn(run_import(state, me, list.id, job, on_duplicate, path));
    let location = format!("/api/imports/{job}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "import_id": job, "status_url": location })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn job(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ImportJob>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.import_job(me.account(), id).await?))
}

async fn export(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    let export = ListExport::open(&state.store, &me.actor(), ListId(id), state.clock.now()).await?;
    // A whole list leaving the system is worth a supervisor's glance.
    state.bus.publish(crm::events::Event::Alert {
        account: me.account(),
        alert: "list.export".into(),
        message: format!("{} exported list {id}", me.user.username),
        at: state.clock.now(),
    });
    let chunks = futures_util::stream::unfold(Some(export), |export| async move {
        let mut export = export?;
        match export.next_chunk().await {
            Ok(Some(bytes)) => Some((Ok(Bytes::from(bytes)), Some(export))),
            Ok(None) => None,
            Err(e) => {
                // The status is already sent; cutting the body short tells the client.
                tracing::error!(error = %e, "list export failed part way");
                Some((Err(std::io::Error::other("export failed")), None))
            }
        }
    });
    let disposition = format!("attachment; filename=\"list-{id}.csv\"");
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Imports a saved upload, writing progress to the job as it goes.
async fn run_import(
    state: AppState,
    me: CurrentUser,
    list: ListId,
    job: i64,
    on_duplicate: OnDuplicate,
    path: PathBuf,
) {
    let account = me.account();
    let (tx, rx) = watch::channel(Default::default());
    let writer = tokio::spawn(write_progress(state.clone(), account, job, rx));
    let options = ImportOptions {
        on_duplicate,
        progress_every: 5_000,
        ..ImportOptions::default()
    };
    let result = match std::fs::File::open(&path) {
        Ok(file) => {
            let now = state.clock.now();
            import_csv(&state.store, &me.actor(), list, file, &options, now, |p| {
                tx.send_replace(p.clone());
            })
            .await
            .map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("the upload could not be reopened: {e}")),
    };
    drop(tx);
    let _ = writer.await;
    let _ = tokio::fs::remove_file(&path).await;
    let now = state.clock.now();
    let written = match &result {
        Ok(summary) => {
            state
                .store
                .update_import_job(account, job, ImportStatus::Done, summary, None, now)
                .await
        }
        Err(reason) => {
            tracing::info!(job, %reason, "list import failed");
            let so_far = state
                .store
                .import_job(account, job)
                .await
                .map(|j| j.summary)
                .unwrap_or_default();
            state
                .store
                .update_import_job(
                    account,
                    job,
                    ImportStatus::Failed,
                    &so_far,
                    Some(reason),
                    now,
                )
                .await
        }
    };
    if let Err(e) = written {
        tracing::error!(job, error = %e, "recording the end of an import failed");
    }
}

async fn write_progress(
    state: AppState,
    account: AccountId,
    job: i64,
    mut rx: watch::Receiver<crm::import::ImportSummary>,
) {
    while rx.changed().await.is_ok() {
        let summary = rx.borrow_and_update().clone();
        let now = state.clock.now();
        if let Err(e) = state
            .store
            .update_import_job(account, job, ImportStatus::Running, &summary, None, now)
            .await
        {
            tracing::warn!(job, error = %e, "recording import progress failed");
        }
    }
}

/// Streams a request body to a file, refusing more than the upload limit.
async fn save_body(body: Body, path: &PathBuf) -> Result<(), Response> {
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "saving an upload failed");
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    };
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "the upload was cut off before its end",
            )
        })?;
        total += chunk.len() as u64;
        if total > MAX_UPLOAD_BYTES {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the file is larger than 200 MB; split it or use `dialcrm import`",
            ));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    Ok(())
}

fn upload_path() -> Result<PathBuf, ApiError> {
    let dir = std::env::temp_dir().join("dialcrm-uploads");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::Internal(format!("creating {}: {e}", dir.display())))?;
    let mut name = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut name);
    Ok(dir.join(format!("{}.csv", hex::encode(name))))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
