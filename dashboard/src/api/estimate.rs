//! What predictive (and progressive) dialling would do for a campaign,
//! before a supervisor switches it on: the dialler's own pacer run on a
//! simulated shift with the campaign's answer rates and talk time, as
//! `dialcrm simulate --campaign` does.

use schemars::JsonSchema;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use crm::model::CampaignId;
use crm::store::compliance::{HISTORY_DAYS, MIN_HISTORY_CALLS};
use dialer_core::pacer::Mode;
use dialer_core::simulation::{simulate, SimConfig, SimReport};
use serde::{Deserialize, Serialize};

use crate::auth::Manager;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/campaigns/{id}/estimate", get(estimate))
}

/// The query: the floor to simulate.
#[derive(Debug, Deserialize)]
struct Floor {
    /// Agents logged in; the campaign's assigned agents by default.
    agents: Option<u64>,
    /// Shift length in hours (1 to 24; 8 by default).
    hours: Option<f64>,
    /// Wrap-up after each call in seconds (0 to 600; 10 by default).
    wrap: Option<f64>,
    /// Seed of the random source (1 by default).
    seed: Option<u64>,
}

/// What the campaign's calls say.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "EstimateHistory")]
pub(crate) struct History {
    days: i64,
    calls: u64,
    answer_rate: f64,
    machine_rate: f64,
    busy_rate: f64,
    talk_mean_secs: f64,
}

/// One mode's simulated shift.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "EstimateOutcome")]
pub(crate) struct Outcome {
    utilisation: f64,
    abandon_rate: f64,
    live_answers: u64,
    abandons: u64,
    dials: u64,
    talk_minutes_per_agent_hour: f64,
}

impl From<SimReport> for Outcome {
    fn from(r: SimReport) -> Self {
        Outcome {
            utilisation: r.utilisation,
            abandon_rate: r.abandon_rate,
            live_answers: r.live,
            abandons: r.abandons,
            dials: r.dials,
            talk_minutes_per_agent_hour: r.talk_minutes_per_agent_hour,
        }
    }
}

/// Predictive and progressive dialling simulated for a campaign's floor.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Estimate {
    agents: u64,
    hours: f64,
    history: History,
    predictive: Outcome,
    progressive: Outcome,
}

async fn estimate(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    Query(floor): Query<Floor>,
) -> Result<Json<Estimate>, ApiError> {
    let account = me.account();
    let campaign = CampaignId(id);
    let settings = state.store.campaign_settings(account, campaign).await?;
    let assigned = state.store.campaign_agents(account, campaign).await?.len() as u64;
    let agents = floor.agents.unwrap_or(assigned.max(1));
    if !(1..=1000).contains(&agents) {
        return Err(ApiError::BadRequest(format!(
            "agents must be between 1 and 1000, not {agents}"
        )));
    }
    let hours = floor.hours.unwrap_or(8.0);
    if !(1.0..=24.0).contains(&hours) {
        return Err(ApiError::BadRequest(format!(
            "hours must be between 1 and 24, not {hours}"
        )));
    }
    let wrap = floor.wrap.unwrap_or(10.0);
    if !(0.0..=600.0).contains(&wrap) {
        return Err(ApiError::BadRequest(format!(
            "wrap must be between 0 and 600 seconds, not {wrap}"
        )));
    }
    let since = state.clock.now() - chrono::TimeDelta::days(HISTORY_DAYS);
    let h = state
        .store
        .campaign_history(account, campaign, since)
        .await?;
    let Some(rates) = h.rates() else {
        return Err(ApiError::Conflict(format!(
            "the campaign has {} finished calls and {} live answers in the last {HISTORY_DAYS} \
             days: an estimate needs at least {MIN_HISTORY_CALLS} calls with live answers among \
             them",
            h.dials, h.live
        )));
    };
    let history = History {
        days: HISTORY_DAYS,
        calls: h.dials,
        answer_rate: rates.answer,
        machine_rate: rates.machine,
        busy_rate: rates.busy,
        talk_mean_secs: h.talk_mean_secs.unwrap_or(90.0).max(1.0),
    };
    let config = |mode| SimConfig {
        mode,
        agents,
        answer_rate: history.answer_rate,
        machine_rate: history.machine_rate,
        busy_rate: history.busy_rate,
        talk_mean: Duration::from_secs_f64(history.talk_mean_secs),
        wrap: Duration::from_secs_f64(wrap),
        ring_timeout: Duration::from_secs(u64::from(settings.ring_timeout_secs)),
        duration: Duration::from_secs_f64(hours * 3600.0),
        seed: floor.seed.unwrap_or(1),
    };
    let (predictive, progressive) = (config(Mode::Predictive), config(Mode::Progressive));
    // Seconds of CPU for a big floor: off the request threads.
    let (predictive, progressive) =
        tokio::task::spawn_blocking(move || (simulate(&predictive), simulate(&progressive)))
            .await
            .map_err(|e| ApiError::Internal(format!("the simulation failed: {e}")))?;
    Ok(Json(Estimate {
        agents,
        hours,
        history,
        predictive: predictive.into(),
        progressive: progressive.into(),
    }))
}
