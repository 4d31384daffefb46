//! The account's pause codes: what agents choose from when they pause.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use crm::store::softphone::PauseCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/account/pause-codes", get(list).put(replace))
}

/// The reasons agents may give for pausing.
#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct PauseCodes {
    /// The codes, in the order agents see them; `null` in a request goes
    /// back to the built-in list.
    pause_codes: Option<Vec<PauseCode>>,
}

async fn list(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<PauseCodes>, ApiError> {
    Ok(Json(PauseCodes {
        pause_codes: Some(state.store.pause_codes(me.account()).await?),
    }))
}

async fn replace(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(body): ApiJson<PauseCodes>,
) -> Result<Json<PauseCodes>, ApiError> {
    let codes = state
        .store
        .set_pause_codes(me.account(), body.pause_codes.as_deref())
        .await?;
    let target = format!("codes:{}", codes.len());
    state
        .store
        .audit(
            &me.actor(),
            "account.pause_codes",
            Some(&target),
            state.clock.now(),
        )
        .await?;
    Ok(Json(PauseCodes {
        pause_codes: Some(codes),
    }))
}
