//! Inbound queues: supervisors and admins create them, route numbers to
//! them, set how they work and which agents answer them with which skill.
//! Every change is audited (`queue.create`, `queue.update`, `queue.delete`,
//! `queue.assign_agents`); another account's queue is a 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use crm::model::{CampaignId, QueueId, Role, UserId};
use crm::store::campaign_settings::WeeklyHours;
use crm::store::queues::{Overflow, Queue, QueueMember, QueueSettings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, Manager};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/queues", get(list).post(create))
        .route("/api/queues/{id}", get(one).patch(update).delete(remove))
        .route("/api/queues/{id}/agents", get(members).put(assign))
}

/// A queue to create, or the changes to one: fields left out keep their
/// value (on creation, the defaults: open 08:00–21:00 London time, two
/// minutes' wait then voicemail, 80 % in 20 seconds, not recorded).
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueBody {
    name: Option<String>,
    /// E.164 numbers routed to it, replacing those it had.
    numbers: Option<Vec<String>>,
    campaign_id: Option<CampaignId>,
    priority: Option<i64>,
    opening_hours: Option<WeeklyHours>,
    time_zone: Option<String>,
    welcome_message: Option<Option<String>>,
    hold_music: Option<Option<String>>,
    closed_message: Option<Option<String>>,
    voicemail_message: Option<Option<String>>,
    max_wait_secs: Option<u32>,
    overflow: Option<Overflow>,
    service_level_secs: Option<u32>,
    service_level_pct: Option<u32>,
    record_calls: Option<bool>,
    ring_secs: Option<u32>,
}

impl QueueBody {
    /// Applies the fields given to `settings`.
    fn apply(self, s: &mut QueueSettings) {
        let QueueBody {
            campaign_id,
            priority,
            opening_hours,
            time_zone,
            welcome_message,
            hold_music,
            closed_message,
            voicemail_message,
            max_wait_secs,
            overflow,
            service_level_secs,
            service_level_pct,
            record_calls,
            ring_secs,
            ..
        } = self;
        let set = |slot: &mut Option<String>, v: Option<Option<String>>| {
            if let Some(v) = v {
                *slot = v.filter(|p| !p.trim().is_empty());
            }
        };
        s.campaign_id = campaign_id.unwrap_or(s.campaign_id);
        s.priority = priority.unwrap_or(s.priority);
        s.opening_hours = opening_hours.unwrap_or(s.opening_hours);
        if let Some(zone) = time_zone {
            s.time_zone = zone;
        }
        set(&mut s.welcome_message, welcome_message);
        set(&mut s.hold_music, hold_music);
        set(&mut s.closed_message, closed_message);
        set(&mut s.voicemail_message, voicemail_message);
        s.max_wait_secs = max_wait_secs.unwrap_or(s.max_wait_secs);
        s.overflow = overflow.unwrap_or(s.overflow);
        s.service_level_secs = service_level_secs.unwrap_or(s.service_level_secs);
        s.service_level_pct = service_level_pct.unwrap_or(s.service_level_pct);
        s.record_calls = record_calls.unwrap_or(s.record_calls);
        s.ring_secs = ring_secs.unwrap_or(s.ring_secs);
    }
}

async fn list(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<Queue>>, ApiError> {
    me.require(MANAGERS)?;
    Ok(Json(state.store.queues(me.account()).await?))
}

async fn one(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Queue>, ApiError> {
    me.require(MANAGERS)?;
    Ok(Json(state.store.queue(me.account(), QueueId(id)).await?))
}

async fn create(
    State(state): State<AppState>,
    Manager(me): Manager,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<(StatusCode, Json<Queue>), ApiError> {
    me.require(MANAGERS)?;
    let now = state.clock.now();
    let Some(name) = body.name.clone() else {
        return Err(ApiError::BadRequest("a queue needs a name".into()));
    };
    let Some(campaign) = body.campaign_id else {
        return Err(ApiError::BadRequest(
            "a queue needs the campaign_id its calls are logged against".into(),
        ));
    };
    let numbers = body.numbers.clone().unwrap_or_default();
    let mut settings = QueueSettings::new(campaign);
    body.apply(&mut settings);
    let queue = state
        .store
        .create_queue(me.account(), &name, &settings, &numbers, now)
        .await?;
    audit(&state, &me, "queue.create", queue.id).await?;
    Ok((StatusCode::CREATED, Json(queue)))
}

/// Changes the fields given of a queue's settings, and its numbers when
/// given; a queue keeps its name.
async fn update(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<Json<Queue>, ApiError> {
    me.require(MANAGERS)?;
    let (account, id, now) = (me.account(), QueueId(id), state.clock.now());
    let current = state.store.queue(account, id).await?;
    if body
        .name
        .as_deref()
        .is_some_and(|n| n.trim() != current.name)
    {
        return Err(ApiError::BadRequest(
            "a queue keeps its name; create another for another name".into(),
        ));
    }
    let numbers = body.numbers.clone();
    let mut settings = current.settings.clone();
    body.apply(&mut settings);
    state
        .store
        .update_queue(account, id, &settings, now)
        .await?;
    if let Some(numbers) = numbers {
        state
            .store
            .set_queue_numbers(account, id, &numbers, now)
            .await?;
    }
    audit(&state, &me, "queue.update", id).await?;
    Ok(Json(state.store.queue(account, id).await?))
}

async fn remove(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    me.require(MANAGERS)?;
    let id = QueueId(id);
    state.store.delete_queue(me.account(), id).await?;
    audit(&state, &me, "queue.delete", id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One agent of a queue, with their skill from 1 to 10.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "QueueAgent")]
#[serde(deny_unknown_fields)]
pub(crate) struct Member {
    user_id: UserId,
    skill: u8,
    /// Their username, in answers only.
    #[serde(default, skip_deserializing)]
    username: String,
}

/// A queue's agents.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "QueueAgents")]
#[serde(deny_unknown_fields)]
pub(crate) struct Members {
    agents: Vec<Member>,
}

impl From<Vec<QueueMember>> for Members {
    fn from(members: Vec<QueueMember>) -> Self {
        Members {
            agents: members
                .into_iter()
                .map(|m| Member {
                    user_id: m.user_id,
                    skill: m.skill,
                    username: m.username,
                })
                .collect(),
        }
    }
}

async fn members(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Members>, ApiError> {
    me.require(MANAGERS)?;
    let members = state.store.queue_members(me.account(), QueueId(id)).await?;
    Ok(Json(members.into()))
}

/// Replaces a queue's agents; an agent not assigned to the queue's
/// campaign, of another account or an admin is a 400 and nothing changes.
async fn assign(
    State(state): State<AppState>,
    Manager(me): Manager,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Members>,
) -> Result<Json<Members>, ApiError> {
    me.require(MANAGERS)?;
    let (account, id) = (me.account(), QueueId(id));
    let wanted: Vec<(UserId, u8)> = body.agents.iter().map(|m| (m.user_id, m.skill)).collect();
    state.store.set_queue_members(account, id, &wanted).await?;
    audit(&state, &me, "queue.assign_agents", id).await?;
    Ok(Json(state.store.queue_members(account, id).await?.into()))
}

async fn audit(
    state: &AppState,
    me: &CurrentUser,
    action: &str,
    queue: QueueId,
) -> Result<(), ApiError> {
    state
        .store
        .audit(
            &me.actor(),
            action,
            Some(&format!("queue:{queue}")),
            state.clock.now(),
        )
        .await?;
    Ok(())
}
