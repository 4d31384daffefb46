//! Counters exposed in Prometheus text format at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::stream::hub::StreamStats;
use crate::AppState;

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    logins_throttled: AtomicU64,
    logins_seat_limit: AtomicU64,
}

impl Metrics {
    /// Counts one login outcome.
    pub fn login(&self, outcome: &str) {
        let c = match outcome {
            "ok" => &self.logins_ok,
            "failed" => &self.logins_failed,
            "throttled" => &self.logins_throttled,
            _ => &self.logins_seat_limit,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one HTTP response by its status class.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Renders the counters, plus the given gauges, as Prometheus text.
    pub fn render(&self, db_up: bool, live_sessions: i64, stream: StreamStats) -> String {
        let mut out = String::new();
        out.push_str("# HELP dialcrm_http_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE dialcrm_http_responses_total counter\n");
        for (i, c) in self.requests.iter().enumerate() {
            out.push_str(&format!(
                "dialcrm_http_responses_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP dialcrm_logins_total Login attempts by outcome.\n");
        out.push_str("# TYPE dialcrm_logins_total counter\n");
        for (name, c) in [
            ("ok", &self.logins_ok),
            ("failed", &self.logins_failed),
            ("throttled", &self.logins_throttled),
            ("seat_limit", &self.logins_seat_limit),
        ] {
            out.push_str(&format!(
                "dialcrm_logins_total{{outcome=\"{name}\"}} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP dialcrm_database_up Whether the database answers.\n");
        out.push_str("# TYPE dialcrm_database_up gauge\n");
        out.push_str(&format!("dialcrm_database_up {}\n", u8::from(db_up)));
        out.push_str("# HELP dialcrm_sessions Live login sessions.\n");
        out.push_str("# TYPE dialcrm_sessions gauge\n");
        out.push_str(&format!("dialcrm_sessions {live_sessions}\n"));
        out.push_str("# HELP dialcrm_stream_clients Connected supervisors' stream clients.\n");
        out.push_str("# TYPE dialcrm_stream_clients gauge\n");
        out.push_str(&format!("dialcrm_stream_clients {}\n", stream.clients));
        out.push_str("# HELP dialcrm_stream_writers Tasks writing the stream to its clients.\n");
        out.push_str("# TYPE dialcrm_stream_writers gauge\n");
        out.push_str(&format!("dialcrm_stream_writers {}\n", stream.writers));
        out.push_str(
            "# HELP dialcrm_stream_resyncs_total Snapshots sent to stream clients that fell behind.\n",
        );
        out.push_str("# TYPE dialcrm_stream_resyncs_total counter\n");
        out.push_str(&format!(
            "dialcrm_stream_resyncs_total {}\n",
            stream.resyncs
        ));
        out
    }
}

/// Renders the trunks' health and load, and whether the node drains, as
/// Prometheus text.
pub fn render_node(trunks: &[sip_gateway::gateway::TrunkStatus], draining: bool) -> String {
    let mut out = String::new();
    out.push_str("# HELP dialcrm_trunk_up Whether a trunk takes new calls (1) or is down (0).\n");
    out.push_str("# TYPE dialcrm_trunk_up gauge\n");
    for t in trunks {
        out.push_str(&format!(
            "dialcrm_trunk_up{{trunk=\"{}\"}} {}\n",
            label(&t.name),
            u8::from(t.up)
        ));
    }
    out.push_str("# HELP dialcrm_trunk_calls Calls up or being set up through a trunk.\n");
    out.push_str("# TYPE dialcrm_trunk_calls gauge\n");
    for t in trunks {
        out.push_str(&format!(
            "dialcrm_trunk_calls{{trunk=\"{}\"}} {}\n",
            label(&t.name),
            t.active_calls
        ));
    }
    out.push_str("# HELP dialcrm_draining Whether this node is draining to stop.\n");
    out.push_str("# TYPE dialcrm_draining gauge\n");
    out.push_str(&format!("dialcrm_draining {}\n", u8::from(draining)));
    out
}

/// Escapes a label value as the text format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware counting every response.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics.response(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use sip_gateway::gateway::TrunkStatus;

    #[test]
    fn trunks_are_rendered_with_their_names_escaped() {
        let text = super::render_node(
            &[
                TrunkStatus {
                    name: "main".into(),
                    up: true,
                    active_calls: 3,
                },
                TrunkStatus {
                    name: "odd\"name".into(),
                    up: false,
                    active_calls: 0,
                },
            ],
            true,
        );
        assert!(
            text.contains("dialcrm_trunk_up{trunk=\"main\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("dialcrm_trunk_up{trunk=\"odd\\\"name\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("dialcrm_trunk_calls{trunk=\"main\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("dialcrm_draining 1\n"), "{text}");
    }
}
