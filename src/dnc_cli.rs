//! `dialcrm dnc …`: the account's do-not-call list from the command line;
//! `import` streams a file of any size.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use crm::Store;

/// `dnc …`
#[derive(Debug, Subcommand)]
pub enum DncCommand {
    /// Puts a number on the list.
    Add(One),
    /// Says whether a number is on the list, and why.
    Check(One),
    /// Takes a number off the list (never an erased person's).
    Remove(One),
    /// Imports a list: one number per line, or a CSV whose first column is
    /// the number; bad lines are reported by number.
    Import(Import),
}

/// One number.
#[derive(Debug, Args)]
pub struct One {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The region numbers without a country code are read in.
    #[arg(long, default_value = "GB")]
    pub region: String,
    /// The number, in any format.
    pub number: String,
}

/// Flags of `dnc import`.
#[derive(Debug, Args)]
pub struct Import {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The region numbers without a country code are read in.
    #[arg(long, default_value = "GB")]
    pub region: String,
    /// The file.
    pub file: PathBuf,
}

/// Runs a do-not-call command.
pub async fn run(store: &Store, command: DncCommand) -> Result<()> {
    let now = chrono::Utc::now();
    let account_named = |name: &str| {
        let name = name.to_owned();
        async move {
            store
                .account_by_name(&name)
                .await
                .with_context(|| format!("finding account {name:?}"))
        }
    };
    let number = |one: &One| -> Result<String> {
        let region = crm::import::region(&one.region).map_err(anyhow::Error::msg)?;
        crm::import::e164(&one.number, region)
            .map_err(|why| anyhow::anyhow!("{:?}: {why}", one.number))
    };
    let actor = |account: &crm::model::Account| crm::model::Actor {
        account_id: Some(account.id),
        user_agent: Some("dialcrm cli".into()),
        ..crm::model::Actor::default()
    };
    match command {
        DncCommand::Add(one) => {
            let account = account_named(&one.account).await?;
            let e164 = number(&one)?;
            let (entry, added) = store
                .suppress_number(
                    account.id,
                    &e164,
                    "do-not-call list",
                    "dnc-list",
                    false,
                    now,
                )
                .await?;
            audit(store, &actor(&account), "dnc.add", &entry.number_hash, now).await?;
            if added {
                println!("{e164} is now on the do-not-call list of {}", account.name);
            } else {
                println!(
                    "{e164} was already on the list ({}, since {})",
                    entry.reason,
                    entry.created_at.date_naive()
                );
            }
        }
        DncCommand::Check(one) => {
            let account = account_named(&one.account).await?;
            let e164 = number(&one)?;
            match store.suppression(account.id, &e164).await? {
                Some(e) => println!(
                    "{e164} is on the list: {} ({}, since {})",
                    e.reason,
                    e.source,
                    e.created_at.date_naive()
                ),
                None => println!("{e164} is not on the list"),
            }
        }
        DncCommand::Remove(one) => {
            let account = account_named(&one.account).await?;
            let e164 = number(&one)?;
            let hash = store
                .suppression(account.id, &e164)
                .await?
                .with_context(|| format!("{e164} is not on the list"))?
                .number_hash;
            store.unsuppress(account.id, &e164).await?;
            audit(store, &actor(&account), "dnc.remove", &hash, now).await?;
            println!("{e164} is off the list");
        }
        DncCommand::Import(import) => {
            let account = account_named(&import.account).await?;
            let file = std::fs::File::open(&import.file)
                .with_context(|| format!("opening {}", import.file.display()))?;
            let report = store
                .import_dnc(
                    account.id,
                    std::io::BufReader::new(file),
                    &import.region,
                    "dnc-import",
                    now,
                )
                .await?;
            store
                .audit(
                    &actor(&account),
                    "dnc.import",
                    Some(&format!("added {} of {} lines", report.added, report.lines)),
                    now,
                )
                .await?;
            println!(
                "{} lines: {} added, {} already on the list, {} invalid",
                report.lines, report.added, report.already, report.invalid
            );
            for (line, why) in &report.invalid_lines {
                println!("  line {line}: {why}");
            }
        }
    }
    Ok(())
}

async fn audit(
    store: &Store,
    actor: &crm::model::Actor,
    action: &str,
    hash: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let short = hash.get(..16).unwrap_or(hash);
    store
        .audit(actor, action, Some(&format!("dnc:{short}")), now)
        .await?;
    Ok(())
}
