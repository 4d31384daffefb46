//! `dialcrm campaign …`: campaigns from the command line. A running
//! service follows a start or pause within a few seconds.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use crm::model::{Account, Campaign, CampaignStatus};
use crm::store::campaign_settings::DialMode;
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
