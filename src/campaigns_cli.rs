//! `dialcrm campaign …`: campaigns from the command line. A running
//! service follows a start or pause within a few seconds.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use crm::model::{Account, Campaign, CampaignStatus};
use crm::store::campaign_settings::{CampaignSettings, DialMode, RecycleRule};
use crm::Store;

/// `campaign …`
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Lists an account's campaigns.
    List(Which),
    /// Creates a paused campaign, optionally with lists attached.
    Create(Create),
    /// Starts dialling a campaign.
    Start(Named),
    /// Stops dialling a campaign for now.
    Pause(Named),
    /// Sets which agents work a campaign, replacing those assigned before;
    /// without `--agent` nobody is assigned.
    Assign(Assign),
    /// Changes a campaign's settings: only those given change; the same
    /// rules as the API's hold (a running campaign follows within seconds).
    Set(Set),
}

/// Flags of `campaign set`.
#[derive(Debug, Args)]
pub struct Set {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The campaign's name.
    #[arg(long)]
    pub name: String,
    /// preview, progressive or predictive.
    #[arg(long)]
    pub mode: Option<String>,
    /// The caller ID presented, E.164.
    #[arg(long)]
    pub caller_id: Option<String>,
    /// The trunk calls start at (they fail over to those after it).
    #[arg(long)]
    pub trunk: Option<String>,
    /// The most attempts per lead.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// How long a call may ring, in seconds (15 to 300).
    #[arg(long)]
    pub ring_timeout: Option<u32>,
    /// The abandon rate the pacer keeps under, in percent (at most 3).
    #[arg(long, value_name = "PERCENT")]
    pub abandon_target: Option<f64>,
    /// The most lines the pacer opens per ready agent.
    #[arg(long)]
    pub max_dial_level: Option<f64>,
    /// How long an agent may stay in wrap-up, in seconds; 0 for no limit.
    #[arg(long)]
    pub wrap_up_limit: Option<u32>,
    /// The time zone of contacts whose own is unknown (IANA name).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Record connected calls: true or false.
    #[arg(long, value_name = "BOOL")]
    pub record: Option<bool>,
    /// Screen calls for answering machines: true or false.
    #[arg(long, value_name = "BOOL")]
    pub detect_machines: Option<bool>,
    /// A recycling rule, OUTCOME:DAYS (no_answer:7); repeat for several.
    /// The rules given replace the campaign's; `none` clears them.
    #[arg(long, value_name = "OUTCOME:DAYS")]
    pub recycle: Vec<String>,
    /// The most attempts a lead may reach through recycling.
    #[arg(long)]
    pub recycle_max_attempts: Option<u32>,
    /// How long a callback booked for one agent waits for them, in minutes.
    #[arg(long, value_name = "MINUTES")]
    pub callback_grace: Option<u32>,
    /// The WAV left on answering machines (after the greeting of a screened
    /// machine, or when an agent presses "Leave voicemail"); `none` removes it.
    #[arg(long, value_name = "PATH")]
    pub voicemail_message: Option<String>,
    /// Hours a lead rests after a message was left on its machine; `never`
    /// stops dialling it.
    #[arg(long, value_name = "HOURS")]
    pub voicemail_retry: Option<String>,
}

/// The account.
#[derive(Debug, Args)]
pub struct Which {
    /// The account's name.
    #[arg(long)]
    pub account: String,
}

/// One campaign by name.
#[derive(Debug, Args)]
pub struct Named {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The campaign's name.
    #[arg(long)]
    pub name: String,
}

/// Flags of `campaign create`.
#[derive(Debug, Args)]
pub struct Create {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The campaign's name.
    #[arg(long)]
    pub name: String,
    /// The caller ID presented, E.164.
    #[arg(long)]
    pub caller_id: String,
    /// preview, progressive or predictive.
    #[arg(long, default_value = "progressive")]
    pub mode: String,
    /// Lists to attach, by name, in priority order.
    #[arg(long = "list")]
    pub lists: Vec<String>,
}

/// Flags of `campaign assign`.
#[derive(Debug, Args)]
pub struct Assign {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The campaign's name.
    #[arg(long)]
    pub name: String,
    /// An agent's username; repeat for each agent.
    #[arg(long = "agent")]
    pub agents: Vec<String>,
}

/// Runs a campaign command.
pub async fn run(store: &Store, command: CampaignCommand) -> Result<()> {
    let now = chrono::Utc::now();
    match command {
        CampaignCommand::List(w) => {
            let account = account(store, &w.account).await?;
            println!(
                "{:<6} {:<32} {:<9} {:<12} caller ID",
                "id", "name", "status", "mode"
            );
            for c in store.campaigns(account.id).await? {
                let mode = store.campaign_settings(account.id, c.id).await?.mode;
                println!(
                    "{:<6} {:<32} {:<9} {:<12} {}",
                    c.id,
                    c.name,
                    c.status.as_str(),
                    mode.as_str(),
                    c.caller_id
                );
            }
        }
        CampaignCommand::Create(c) => {
            let account = account(store, &c.account).await?;
            let mode: DialMode = c.mode.parse()?;
            let lists = store.lists(account.id).await?;
            let mut ids = Vec::new();
            for name in &c.lists {
                match lists.iter().find(|l| &l.name == name) {
                    Some(l) => ids.push(l.id),
                    None => bail!("no list named {name:?} in account {}", account.name),
                }
            }
            let campaign = store
                .create_campaign(account.id, &c.name, &c.caller_id, now)
                .await?;
            let mut settings = store.campaign_settings(account.id, campaign.id).await?;
            settings.mode = mode;
            store
                .update_campaign_settings(account.id, campaign.id, &settings, now)
                .await?;
            for (priority, list) in ids.into_iter().enumerate() {
                store
                    .attach_list(account.id, campaign.id, list, priority as i64)
                    .await?;
            }
            println!(
                "campaign {} created, paused (id {})",
                campaign.name, campaign.id
            );
        }
        CampaignCommand::Start(n) => {
            let (account, campaign) = named(store, &n).await?;
            let new = store.start_campaign(account.id, campaign.id, now).await?;
            audit(store, &account, "campaign.start", &campaign, now).await?;
            println!("campaign {} running ({new} new leads)", campaign.name);
        }
        CampaignCommand::Pause(n) => {
            let (account, campaign) = named(store, &n).await?;
            store
                .set_campaign_status(account.id, campaign.id, CampaignStatus::Paused, now)
                .await?;
            audit(store, &account, "campaign.pause", &campaign, now).await?;
            println!("campaign {} paused", campaign.name);
        }
        CampaignCommand::Set(set) => {
            let named_campaign = Named {
                account: set.account.clone(),
                name: set.name.clone(),
            };
            let (account, campaign) = named(store, &named_campaign).await?;
            let mut s = store.campaign_settings(account.id, campaign.id).await?;
            if let Some(mode) = &set.mode {
                s.mode = mode.parse()?;
            }
            if let Some(v) = &set.caller_id {
                s.caller_id = v.clone();
            }
            if let Some(v) = &set.trunk {
                s.trunk = v.clone();
            }
            if let Some(v) = set.max_attempts {
                s.max_attempts = v;
            }
            if let Some(v) = set.ring_timeout {
                s.ring_timeout_secs = v;
            }
            if let Some(percent) = set.abandon_target {
                if !(0.0..=100.0).contains(&percent) {
                    bail!("--abandon-target is a percentage: {percent} is not one");
                }
                s.abandon_target_bp = (percent * 100.0).round() as u16;
            }
            if let Some(v) = set.max_dial_level {
                s.max_dial_level = v;
            }
            if let Some(v) = set.wrap_up_limit {
                s.wrap_up_limit_secs = v;
            }
            if let Some(v) = &set.time_zone {
                s.default_time_zone = v.clone();
            }
            if let Some(v) = set.record {
                s.record_calls = v;
            }
            if let Some(v) = set.detect_machines {
                s.detect_machines = v;
            }
            if !set.recycle.is_empty() {
                s.recycle = recycle_rules(&set.recycle)?;
            }
            if let Some(v) = set.recycle_max_attempts {
                s.recycle_max_attempts = v;
            }
            if let Some(v) = set.callback_grace {
                s.callback_grace_minutes = v;
            }
            if let Some(v) = &set.voicemail_message {
                s.voicemail_message_path = (v != "none").then(|| v.clone());
            }
            if let Some(v) = &set.voicemail_retry {
                s.retry_delays.voicemail = voicemail_retry(v)?;
            }
            let s = store
                .update_campaign_settings(account.id, campaign.id, &s, now)
                .await
                .with_context(|| format!("changing campaign {}", campaign.name))?;
            audit(store, &account, "campaign.settings", &campaign, now).await?;
            println!(
                "campaign {}: {} through {}, caller ID {}, at most {} attempts, \
                 abandon target {:.2} %, dial level up to {}, ring {} s, recording {}, \
                 machine screening {}, voicemail message {}, recycling {}, \
                 callbacks kept for their agent {} min",
                campaign.name,
                s.mode.as_str(),
                if s.trunk.is_empty() {
                    "the default trunk"
                } else {
                    &s.trunk
                },
                s.caller_id,
                s.max_attempts,
                f64::from(s.abandon_target_bp) / 100.0,
                s.max_dial_level,
                s.ring_timeout_secs,
                if s.record_calls { "on" } else { "off" },
                if s.detect_machines { "on" } else { "off" },
                describe_voicemail(&s),
                describe_recycling(&s),
                s.callback_grace_minutes,
            );
        }
        CampaignCommand::Assign(a) => {
            let named_campaign = Named {
                account: a.account,
                name: a.name,
            };
            let (account, campaign) = named(store, &named_campaign).await?;
            let users = store.users(account.id).await?;
            let mut ids = Vec::new();
            for name in &a.agents {
                match users.iter().find(|u| &u.username == name) {
                    Some(u) => ids.push(u.id),
                    None => bail!("no user named {name:?} in account {}", account.name),
                }
            }
            store
                .assign_agents(account.id, campaign.id, &ids)
                .await
                .with_context(|| format!("assigning agents to campaign {}", campaign.name))?;
            audit(store, &account, "campaign.assign_agents", &campaign, now).await?;
            let assigned = store.campaign_agents(account.id, campaign.id).await?;
            let names: Vec<&str> = users
                .iter()
                .filter(|u| assigned.contains(&u.id))
                .map(|u| u.username.as_str())
                .collect();
            if names.is_empty() {
                println!("campaign {}: no agent assigned", campaign.name);
            } else {
                println!("campaign {}: {}", campaign.name, names.join(", "));
            }
        }
    }
    Ok(())
}

async fn account(store: &Store, name: &str) -> Result<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("finding account {name:?}"))
}

async fn named(store: &Store, n: &Named) -> Result<(Account, Campaign)> {
    let account = account(store, &n.account).await?;
    let campaign = store
        .campaigns(account.id)
        .await?
        .into_iter()
        .find(|c| c.name == n.name)
        .with_context(|| format!("no campaign named {:?} in account {}", n.name, account.name))?;
    Ok((account, campaign))
}

async fn audit(
    store: &Store,
    account: &Account,
    action: &str,
    campaign: &Campaign,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let actor = crm::model::Actor {
        account_id: Some(account.id),
        user_agent: Some("dialcrm cli".into()),
        ..crm::model::Actor::default()
    };
    store
        .audit(
            &actor,
            action,
            Some(&format!("campaign:{}", campaign.id)),
            now,
        )
        .await?;
    Ok(())
}

/// Reads `--recycle` values: `OUTCOME:DAYS` each, or a lone `none`.
fn recycle_rules(values: &[String]) -> Result<Vec<RecycleRule>> {
    if values.len() == 1 && values[0].trim() == "none" {
        return Ok(Vec::new());
    }
    values
        .iter()
        .map(|v| {
            let Some((outcome, days)) = v.split_once(':') else {
                bail!("--recycle takes OUTCOME:DAYS (no_answer:7), not {v:?}");
            };
            let after_days = days
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--recycle {v:?}: days must be a whole number"))?;
            Ok(RecycleRule {
                outcome: outcome.trim().to_owned(),
                after_days,
            })
        })
        .collect()
}

/// Reads `--voicemail-retry`: whole hours, or `never`.
fn voicemail_retry(value: &str) -> Result<Option<u32>> {
    if value == "never" {
        return Ok(None);
    }
    let hours: u32 = value
        .parse()
        .ok()
        .filter(|h| *h <= 24 * 365)
        .with_context(|| {
            format!("--voicemail-retry takes hours (0 to 8760) or never, not {value:?}")
        })?;
    Ok(Some(hours * 3600))
}

/// Says whether a voicemail message is left, and when its lead is next due.
fn describe_voicemail(s: &CampaignSettings) -> String {
    match (&s.voicemail_message_path, s.retry_delays.voicemail) {
        (None, _) => "none".into(),
        (Some(_), Some(secs)) => format!("left, retried after {} h", secs / 3600),
        (Some(_), None) => "left, not retried".into(),
    }
}

fn describe_recycling(s: &CampaignSettings) -> String {
    if s.recycle.is_empty() {
        return "off".to_owned();
    }
    let rules: Vec<String> = s
        .recycle
        .iter()
        .map(|r| format!("{} after {} d", r.outcome, r.after_days))
        .collect();
    format!(
        "{} up to {} attempts",
        rules.join(", "),
        s.recycle_max_attempts
    )
}
