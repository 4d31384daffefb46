//! Call lists of the caller's account.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{Contact, ContactList, ListId, Role};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::auth::{CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/lists", get(all).post(create))
        .route("/api/lists/{id}", get(one))
        .route("/api/lists/{id}/contacts", get(contacts))
}

async fn all(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<ContactList>>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.lists(me.account()).await?))
}

async fn one(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ContactList>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.list(me.account(), ListId(id)).await?))
}

/// A call list to create.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct NewList {
    name: String,
    #[serde(default = "default_region")]
    default_region: String,
}

fn default_region() -> String {
    "GB".into()
}

async fn create(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(body): ApiJson<NewList>,
) -> Result<(StatusCode, Json<ContactList>), ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    let region = body.default_region.trim().to_ascii_uppercase();
    if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ApiError::BadRequest(
            "default_region must be a two-letter country code such as GB".into(),
        ));
    }
    let now = state.clock.now();
    let list = state
        .store
        .create_list(me.account(), &body.name, &region, now)
        .await?;
    state
        .store
        .audit(
            &me.actor(),
            "list.create",
            Some(&format!("list:{}", list.id)),
            now,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(list)))
}

#[derive(Deserialize)]
struct Page {
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_limit() -> i64 {
    100
}

async fn contacts(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Contact>>, ApiError> {
    me.require(&[Role::Supervisor, Role::Admin])?;
    let contacts = state
        .store
        .list_contacts(
            me.account(),
            ListId(id),
            page.limit.clamp(1, 1000),
            page.offset,
        )
        .await?;
    Ok(Json(contacts))
}
