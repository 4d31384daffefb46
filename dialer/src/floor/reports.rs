//! Turns a runner's reports into events on the bus.

use crate::runner::Report;
use std::sync::Arc;

use crm::events::{CampaignFigures, Event, EventBus};
use crm::model::{AccountId, CampaignId};
use tokio::sync::mpsc;
use vocab::Clock;

use super::user_id;

/// Forwards reports until the runner stops.
pub async fn forward(
    mut reports: mpsc::UnboundedReceiver<Report>,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    account: AccountId,
    campaign: CampaignId,
    node: String,
) {
    while let Some(report) = reports.recv().await {
        bus.publish(event(report, clock.now(), account, campaign, &node));
    }
}

fn event(
    report: Report,
    at: chrono::DateTime<chrono::Utc>,
    account: AccountId,
    campaign: CampaignId,
    node: &str,
) -> Event {
    match report {
        Report::Preview { agent, lead } => Event::PreviewOffered {
            account,
            campaign_id: campaign,
            agent: user_id(agent),
            lead_id: lead.as_ref().map(|l| l.id),
            contact_id: lead.map(|l| l.contact_id),
        },
        Report::ManualRefused { agent } => Event::DialRefused {
            account,
            campaign_id: campaign,
            agent: user_id(agent),
        },
        Report::Call {
            call_ref,
            phase,
            agent,
            cause,
            ..
        } => Event::CallState {
            account,
            call_ref,
            campaign_id: Some(campaign),
            state: phase,
            agent: agent.map(user_id),
            cause: cause.map(|c| format!("{c:?}")),
            at,
        },
        Report::Figures {
            lines,
            ready,
            dialled,
            answered,
            compliance,
            dial_level_cap,
        } => Event::CampaignFigures {
            account,
            campaign_id: campaign,
            node: node.to_owned(),
            figures: CampaignFigures {
                lines_in_use: u32::try_from(lines).unwrap_or(u32::MAX),
                agents_ready: u32::try_from(ready).unwrap_or(u32::MAX),
                dialled,
                answered,
                abandon_rate_24h: compliance.day.rate(),
                abandon_rate_30d: compliance.month.rate(),
                live_24h: compliance.day.live,
                abandoned_24h: compliance.day.abandoned,
                live_30d: compliance.month.live,
                abandoned_30d: compliance.month.abandoned,
                abandons_allowed: compliance.headroom(),
                dial_level: if ready == 0 {
                    0.0
                } else {
                    lines as f64 / ready as f64
                },
                max_dial_level: dial_level_cap,
                ..CampaignFigures::default()
            },
            at,
        },
    }
}
