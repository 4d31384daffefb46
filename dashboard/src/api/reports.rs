//! Supervisors' reports per agent and per campaign over a period, as JSON
//! or as CSV for a spreadsheet.
//!
//! Accounts have no time zone setting, so periods, days and hours are UTC
//! and every answer says so.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc};
use crm::store::queues::QueueReport;
use crm::store::reports::{AgentFigures, CampaignReport, Period};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::privacy::defuse;
use crate::auth::Manager;
use crate::{ApiError, AppState};

/// The zone periods and hours are read in.
const TIME_ZONE: &str = "UTC";

/// The longest period one report covers.
const MAX_DAYS: i64 = 366;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/reports/agents", get(agents))
        .route("/api/reports/campaigns", get(campaigns))
        .route("/api/reports/queues", get(queues))
}

/// The period and format as they arrive; empty values take the defaults.
#[derive(Debug, Default, Deserialize)]
struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    by: Option<String>,
}

/// A report over a period, UTC.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Report {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    time_zone: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<AgentFigures>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaigns: Option<Vec<CampaignReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queues: Option<Vec<QueueReport>>,
}

async fn agents(
    State(state): State<AppState>,
    Manager(me): Manager,
    headers: HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let period = query.period(now)?;
    let figures = state.store.agent_report(me.account(), period, now).await?;
    if wants_csv(&query, &headers) {
        let csv = agents_csv(&figures).map_err(csv_failed)?;
        return Ok(csv_response(csv, "agents", period));
    }
    Ok(Json(Report {
        from: period.from,
        to: period.to,
        time_zone: TIME_ZONE,
        agents: Some(figures),
        campaigns: None,
        queues: None,
    })
    .into_response())
}

async fn campaigns(
    State(state): State<AppState>,
    Manager(me): Manager,
    headers: HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let period = query.period(state.clock.now())?;
    let by_hour = match query.by.as_deref().map(str::trim) {
        None | Some("") | Some("campaign") => false,
        Some("hour") => true,
        Some(_) => return Err(ApiError::BadRequest("by must be campaign or hour".into())),
    };
    let reports = state.store.campaign_report(me.account(), period).await?;
    if wants_csv(&query, &headers) {
        let (csv, name) = if by_hour {
            (hours_csv(&reports), "campaign-hours")
        } else {
            (campaigns_csv(&reports), "campaigns")
        };
        return Ok(csv_response(csv.map_err(csv_failed)?, name, period));
    }
    Ok(Json(Report {
        from: period.from,
        to: period.to,
        time_zone: TIME_ZONE,
        agents: None,
        campaigns: Some(reports),
        queues: None,
    })
    .into_response())
}

/// Inbound queues: offered, answered, abandoned in the queue, the service
/// level against each queue's target, the average speed of answer and the
/// longest wait; `by=hour` gives the CSV hour by hour.
async fn queues(
    State(state): State<AppState>,
    Manager(me): Manager,
    headers: HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let period = query.period(state.clock.now())?;
    let by_hour = match query.by.as_deref().map(str::trim) {
        None | Some("") | Some("queue") => false,
        Some("hour") => true,
        Some(_) => return Err(ApiError::BadRequest("by must be queue or hour".into())),
    };
    let reports = state.store.queue_report(me.account(), period).await?;
    if wants_csv(&query, &headers) {
        let (csv, name) = if by_hour {
            (queue_hours_csv(&reports), "queue-hours")
        } else {
            (queues_csv(&reports), "queues")
        };
        return Ok(csv_response(csv.map_err(csv_failed)?, name, period));
    }
    Ok(Json(Report {
        from: period.from,
        to: period.to,
        time_zone: TIME_ZONE,
        agents: None,
        campaigns: None,
        queues: Some(reports),
    })
    .into_response())
}

impl ReportQuery {
    /// Reads the period: `from` and `to` are dates (`to` included) or
    /// RFC 3339 times (`to` excluded); `from` defaults to today, `to` to a
    /// day after `from`.
    fn period(&self, now: DateTime<Utc>) -> Result<Period, ApiError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        let from = match given(&self.from) {
            Some(s) => parse_time("from", s)?.0,
            None => midnight(now.date_naive()),
        };
        let to = match given(&self.to) {
            Some(s) => match parse_time("to", s)? {
                (t, Given::Date) => t + TimeDelta::days(1),
                (t, Given::Time) => t,
            },
            None => from + TimeDelta::days(1),
        };
        if to <= from {
            return Err(ApiError::BadRequest("to must come after from".into()));
        }
        if to - from > TimeDelta::days(MAX_DAYS) {
            return Err(ApiError::BadRequest(format!(
                "a report covers at most {MAX_DAYS} days"
            )));
        }
        Ok(Period { from, to })
    }
}

enum Given {
    Date,
    Time,
}

fn parse_time(name: &str, s: &str) -> Result<(DateTime<Utc>, Given), ApiError> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok((midnight(day), Given::Date));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| (t.with_timezone(&Utc), Given::Time))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be a date such as 2026-11-27 or an RFC 3339 time such as \
                 2026-11-27T09:00:00Z"
            ))
        })
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Returns whether the caller asked for CSV, by `?format=csv` or `Accept`.
fn wants_csv(query: &ReportQuery, headers: &HeaderMap) -> bool {
    if let Some(f) = query.format.as_deref() {
        return f.eq_ignore_ascii_case("csv");
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/csv"))
}

fn csv_response(body: Vec<u8>, name: &str, period: Period) -> Response {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%MZ").to_string();
    let filename = format!("{name}-{}-{}.csv", stamp(period.from), stamp(period.to));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The name is made of ASCII letters, digits and dashes only.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

fn csv_failed(e: csv::Error) -> ApiError {
    ApiError::Internal(format!("writing a report CSV: {e}"))
}

/// One row per agent; a column per pause code and per disposition seen.
fn agents_csv(figures: &[AgentFigures]) -> Result<Vec<u8>, csv::Error> {
    let codes = union(figures.iter().map(|f| f.pause_by_code.keys()));
    let dispositions = union(figures.iter().map(|f| f.dispositions.keys()));
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "user_id",
        "username",
        "calls_handled",
        "talk_secs",
        "wrap_up_secs",
        "ready_secs",
        "pause_secs",
    ]
    .map(str::to_owned)
    .to_vec();
    header.extend(codes.iter().map(|c| defuse(&format!("pause:{c}"))));
    header.extend(
        dispositions
            .iter()
            .map(|d| defuse(&format!("disposition:{d}"))),
    );
    out.write_record(&header)?;
    for f in figures {
        let mut row = vec![
            f.user_id.to_string(),
            defuse(&f.username),
            f.calls_handled.to_string(),
            f.talk_secs.to_string(),
            f.wrap_up_secs.to_string(),
            f.ready_secs.to_string(),
            f.pause_secs.to_string(),
        ];
        row.extend(codes.iter().map(|c| count(f.pause_by_code.get(*c))));
        row.extend(dispositions.iter().map(|d| count(f.dispositions.get(*d))));
        out.write_record(&row)?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// One row per campaign; a column per outcome and per disposition seen.
fn campaigns_csv(reports: &[CampaignReport]) -> Result<Vec<u8>, csv::Error> {
    let outcomes = union(reports.iter().map(|r| r.outcomes.keys()));
    let dispositions = union(reports.iter().map(|r| r.dispositions.keys()));
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "campaign_id",
        "campaign",
        "attempts",
        "answered",
        "abandoned",
        "abandon_rate",
    ]
    .map(str::to_owned)
    .to_vec();
    header.extend(outcomes.iter().map(|o| defuse(&format!("outcome:{o}"))));
    header.extend(
        dispositions
            .iter()
            .map(|d| defuse(&format!("disposition:{d}"))),
    );
    out.write_record(&header)?;
    for r in reports {
        let mut row = vec![
            r.campaign_id.to_string(),
            defuse(&r.name),
            r.attempts.to_string(),
            r.answered.to_string(),
            r.abandoned.to_string(),
            format!("{:.4}", r.abandon_rate),
        ];
        row.extend(outcomes.iter().map(|o| count(r.outcomes.get(*o))));
        row.extend(dispositions.iter().map(|d| count(r.dispositions.get(*d))));
        out.write_record(&row)?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// One row per campaign and hour with calls.
fn hours_csv(reports: &[CampaignReport]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "campaign_id",
        "campaign",
        "hour",
        "attempts",
        "answered",
        "abandoned",
        "abandon_rate",
    ])?;
    for r in reports {
        for h in &r.hours {
            out.write_record([
                r.campaign_id.to_string(),
                defuse(&r.name),
                h.hour.to_rfc3339_opts(SecondsFormat::Secs, true),
                h.attempts.to_string(),
                h.answered.to_string(),
                h.abandoned.to_string(),
                format!("{:.4}", h.abandon_rate),
            ])?;
        }
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// One row per queue.
fn queues_csv(reports: &[QueueReport]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "queue_id",
        "queue",
        "offered",
        "answered",
        "abandoned",
        "voicemail",
        "callbacks",
        "closed",
        "service_level",
        "average_speed_of_answer_secs",
        "longest_wait_secs",
    ])?;
    for r in reports {
        out.write_record([
            r.queue_id.to_string(),
            defuse(&r.name),
            r.offered.to_string(),
            r.answered.to_string(),
            r.abandoned.to_string(),
            r.voicemail.to_string(),
            r.callbacks.to_string(),
            r.closed.to_string(),
            format!("{:.4}", r.service_level),
            format!("{:.1}", r.average_speed_of_answer_secs),
            r.longest_wait_secs.to_string(),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// One row per queue and hour with calls.
fn queue_hours_csv(reports: &[QueueReport]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "queue_id",
        "queue",
        "hour",
        "offered",
        "answered",
        "abandoned",
        "service_level",
    ])?;
    for r in reports {
        for h in &r.hours {
            out.write_record([
                r.queue_id.to_string(),
                defuse(&r.name),
                h.hour.to_rfc3339_opts(SecondsFormat::Secs, true),
                h.offered.to_string(),
                h.answered.to_string(),
                h.abandoned.to_string(),
                format!("{:.4}", h.service_level),
            ])?;
        }
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

fn union<'a>(keys: impl Iterator<Item = impl Iterator<Item = &'a String>>) -> Vec<&'a String> {
    let set: std::collections::BTreeSet<&String> = keys.flatten().collect();
    set.into_iter().collect()
}

fn count(v: Option<&i64>) -> String {
    v.copied().unwrap_or(0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn query(from: &str, to: &str) -> ReportQuery {
        ReportQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            ..ReportQuery::default()
        }
    }

    #[test]
    fn dates_cover_whole_days_and_to_is_included() {
        let now = at("2026-11-27T15:30:00Z");
        let p = query("2026-11-01", "2026-11-02").period(now).unwrap();
        assert_eq!(p.from, at("2026-11-01T00:00:00Z"));
        assert_eq!(p.to, at("2026-11-03T00:00:00Z"));
        let today = ReportQuery::default().period(now).unwrap();
        assert_eq!(today.from, at("2026-11-27T00:00:00Z"));
        assert_eq!(today.to, at("2026-11-28T00:00:00Z"));
        let exact = query("2026-11-27T09:00:00+01:00", "2026-11-27T10:00:00Z")
            .period(now)
            .unwrap();
        assert_eq!(exact.from, at("2026-11-27T08:00:00Z"));
        assert_eq!(exact.to, at("2026-11-27T10:00:00Z"));
    }

    #[test]
    fn bad_periods_are_refused_with_a_reason() {
        let now = at("2026-11-27T15:30:00Z");
        for (from, to, why) in [
            ("yesterday", "", "from must be a date"),
            ("2026-11-27T10:00:00Z", "2026-11-27T09:00:00Z", "after from"),
            ("2025-01-01", "2026-11-27", "at most 366 days"),
        ] {
            match query(from, to).period(now) {
                Err(ApiError::BadRequest(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{from}..{to}: {other:?}"),
            }
        }
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_defused() {
        let f = AgentFigures {
            user_id: crm::model::UserId(7),
            username: "=cmd|'/c calc'!A1".into(),
            calls_handled: 1,
            talk_secs: 2,
            wrap_up_secs: 3,
            ready_secs: 4,
            pause_secs: 5,
            pause_by_code: [("+lunch".to_owned(), 5)].into(),
            dispositions: [("@sale".to_owned(), 1)].into(),
        };
        let text = String::from_utf8(agents_csv(&[f]).unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "user_id,username,calls_handled,talk_secs,wrap_up_secs,ready_secs,pause_secs,\
                 pause:+lunch,disposition:@sale"
            )
        );
        assert_eq!(lines.next(), Some("7,'=cmd|'/c calc'!A1,1,2,3,4,5,5,1"));
    }
}
