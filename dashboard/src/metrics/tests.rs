use chrono::TimeZone;
use crm::events::CampaignFigures;
use crm::model::{CampaignId, ListId};

use super::*;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_800_000_000_000 + ms)
        .single()
        .expect("valid")
}

fn call(n: u128, state: CallPhase, cause: Option<&str>, ms: i64) -> Event {
    Event::CallState {
        account: AccountId(1),
        call_ref: CallRef::from_u128(n),
        campaign_id: Some(CampaignId(7)),
        state,
        agent: None,
        cause: cause.map(str::to_owned),
        at: at(ms),
    }
}

fn agent(user: i64, state: AgentState) -> Event {
    Event::AgentState {
        account: AccountId(1),
        user_id: UserId(user),
        username: format!("a{user}"),
        state,
        pause_code: None,
        at: at(0),
    }
}

#[test]
fn calls_are_counted_by_campaign_and_outcome_with_their_set_up_time() {
    let m = Metrics::new();
    m.observe(&call(1, CallPhase::Dialling, None, 0));
    m.observe(&call(1, CallPhase::Ringing, None, 300));
    m.observe(&call(1, CallPhase::Answered, None, 2_500));
    m.observe(&call(1, CallPhase::Ended, Some("remote_hangup"), 9_000));
    m.observe(&call(2, CallPhase::Dialling, None, 0));
    m.observe(&call(2, CallPhase::Ended, Some("busy"), 1_000));
    m.observe(&call(3, CallPhase::Dialling, None, 0));
    m.observe(&call(3, CallPhase::Answered, None, 100));
    m.observe(&call(3, CallPhase::Abandoned, None, 2_200));
    m.observe(&call(3, CallPhase::Ended, Some("Local Hangup!"), 8_000));
    let text = m.render(&Scrape::default());
    for line in [
        "dialcrm_calls_total{account=\"1\",campaign=\"7\",outcome=\"remote_hangup\"} 1\n",
        "dialcrm_calls_total{account=\"1\",campaign=\"7\",outcome=\"busy\"} 1\n",
        "dialcrm_calls_total{account=\"1\",campaign=\"7\",outcome=\"abandoned\"} 1\n",
        "dialcrm_calls_total{account=\"1\",campaign=\"7\",outcome=\"other\"} 1\n",
        "# TYPE dialcrm_calls counter\n",
        "dialcrm_call_setup_seconds_count 2\n",
        "dialcrm_call_setup_seconds_sum 2.6\n",
        "dialcrm_call_setup_seconds_bucket{le=\"0.1\"} 1\n",
        "dialcrm_call_setup_seconds_bucket{le=\"3.2\"} 2\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(
        m.memory.lock().expect("lock").dialled.is_empty(),
        "ended calls are forgotten"
    );
}

#[test]
fn agents_are_counted_by_state_and_leave_when_they_log_out() {
    let m = Metrics::new();
    let text = m.render(&Scrape::default());
    assert!(
        text.contains("dialcrm_agents{state=\"ready\"} 0\n"),
        "{text}"
    );
    m.observe(&agent(1, AgentState::Ready));
    m.observe(&agent(2, AgentState::Ready));
    m.observe(&agent(3, AgentState::Paused));
    m.observe(&agent(2, AgentState::InCall));
    let text = m.render(&Scrape::default());
    for line in [
        "dialcrm_agents{state=\"ready\"} 1\n",
        "dialcrm_agents{state=\"in_call\"} 1\n",
        "dialcrm_agents{state=\"paused\"} 1\n",
        "dialcrm_agents{state=\"wrap_up\"} 0\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    m.observe(&agent(3, AgentState::LoggedOut));
    let text = m.render(&Scrape::default());
    assert!(
        text.contains("dialcrm_agents{state=\"paused\"} 0\n"),
        "{text}"
    );
}

#[test]
fn campaign_figures_imports_and_a_scrape_show_what_is_true_now() {
    let m = Metrics::new();
    m.observe(&Event::CampaignFigures {
        account: AccountId(1),
        campaign_id: CampaignId(7),
        node: "n1".into(),
        figures: CampaignFigures {
            lines_in_use: 4,
            dial_level: 2.5,
            abandon_rate_24h: 0.0125,
            abandon_rate_30d: 0.02,
            ..CampaignFigures::default()
        },
        at: at(0),
    });
    let progress = |rows, done| Event::ImportProgress {
        account: AccountId(1),
        list_id: ListId(3),
        rows,
        done,
    };
    m.observe(&progress(500, false));
    m.observe(&progress(1_200, false));
    m.observe(&progress(1_250, true));
    let text = m.render(&Scrape {
        database_up: true,
        sessions: 3,
        stream: StreamStats {
            clients: 2,
            writers: 1,
            resyncs: 5,
        },
        trunks: Some(vec![TrunkStatus {
            name: "odd\"name".into(),
            up: false,
            active_calls: 2,
        }]),
        media_drops: Some(vec![(MediaDrop::InboxFull, 4), (MediaDrop::SendRefused, 0)]),
        draining: true,
        nats: Some(("node-a".into(), false, 7)),
    });
    for line in [
        "dialcrm_campaign_lines{account=\"1\",campaign=\"7\"} 4\n",
        "dialcrm_campaign_dial_level{account=\"1\",campaign=\"7\"} 2.5\n",
        "dialcrm_campaign_abandon_rate_24h{account=\"1\",campaign=\"7\"} 0.0125\n",
        "dialcrm_import_rows_total 1250\n",
        "dialcrm_database_up 1\n",
        "dialcrm_sessions 3\n",
        "dialcrm_stream_clients 2\n",
        "dialcrm_stream_resyncs_total 5\n",
        "dialcrm_trunk_up{trunk=\"odd\\\"name\"} 0\n",
        "dialcrm_trunk_calls{trunk=\"odd\\\"name\"} 2\n",
        "dialcrm_media_dropped_total{place=\"inbox_full\"} 4\n",
        "dialcrm_media_dropped_total{place=\"send_refused\"} 0\n",
        "dialcrm_draining 1\n",
        "dialcrm_nats_connected{node=\"node-a\"} 0\n",
        "dialcrm_nats_events_held{node=\"node-a\"} 7\n",
        "# EOF\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // The resync counter follows the hub's total, not the number of scrapes.
    let again = m.render(&Scrape {
        stream: StreamStats {
            clients: 0,
            writers: 0,
            resyncs: 6,
        },
        media_drops: Some(vec![(MediaDrop::InboxFull, 9)]),
        ..Scrape::default()
    });
    assert!(
        again.contains("dialcrm_stream_resyncs_total 6\n"),
        "{again}"
    );
    assert!(
        again.contains("dialcrm_media_dropped_total{place=\"inbox_full\"} 9\n"),
        "the gateway's total, not a sum of scrapes: {again}"
    );
}

#[test]
fn logins_and_responses_are_counted_by_outcome_and_class() {
    let m = Metrics::new();
    m.login("ok");
    m.login("failed");
    m.login("failed");
    m.login("something new");
    m.response(204);
    m.response(404);
    m.response(999);
    let text = m.render(&Scrape::default());
    for line in [
        "dialcrm_logins_total{outcome=\"failed\"} 2\n",
        "dialcrm_logins_total{outcome=\"seat_limit\"} 1\n",
        "dialcrm_http_responses_total{class=\"2xx\"} 1\n",
        "dialcrm_http_responses_total{class=\"4xx\"} 1\n",
        "dialcrm_http_responses_total{class=\"5xx\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

#[test]
fn webhook_attempts_are_counted_by_outcome() {
    let m = Metrics::new();
    m.webhook("delivered");
    m.webhook("delivered");
    m.webhook("retry");
    let text = m.render(&Scrape::default());
    for line in [
        "dialcrm_webhook_deliveries_total{outcome=\"delivered\"} 2\n",
        "dialcrm_webhook_deliveries_total{outcome=\"retry\"} 1\n",
        "# TYPE dialcrm_webhook_deliveries counter\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(
        !text.contains("outcome=\"given_up\""),
        "no attempt was given up: {text}"
    );
}
