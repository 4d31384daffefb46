//! `dialcrm dnc …`: the account's do-not-call list from the command line;
//! `import` streams a file of any size.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use crm::store::suppression::{DNC_IMPORT_SOURCE, DNC_LIST_SOURCE};
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
    /// Prints the list, oldest first: each number where the account keeps
    /// it (else its keyed hash's start), why and since when.
    List(Account),
    /// Keeps the list's numbers from now on (`on`), or forgets those kept
    /// (`off`; their hashes go on blocking them).
    KeepNumbers(KeepNumbers),
}

/// An account.
#[derive(Debug, Args)]
pub struct Account {
    /// The account's name.
    #[arg(long)]
    pub account: String,
}

/// Flags of `dnc keep-numbers`.
#[derive(Debug, Args)]
pub struct KeepNumbers {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// `on` or `off`.
    #[arg(value_parser = ["on", "off"])]
    pub keep: String,
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
            let keep = store.dnc_keeps_numbers(account.id).await?;
            let (entry, added) = store
                .suppress_number(
                    account.id,
                    &e164,
                    "do-not-call list",
                    DNC_LIST_SOURCE,
                    keep,
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
                    DNC_IMPORT_SOURCE,
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
        DncCommand::List(which) => {
            let account = account_named(&which.account).await?;
            let mut after = 0;
            let mut shown = 0usize;
            loop {
                let page = store.dnc_entries(account.id, after, 1000).await?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = *last;
                for (_, e) in &page {
                    let number = match &e.number_e164 {
                        Some(n) => n.clone(),
                        None => format!("#{}", e.number_hash.get(..12).unwrap_or_default()),
                    };
                    println!(
                        "{number}\t{}\t{}\t{}",
                        e.reason,
                        e.source,
                        e.created_at.date_naive()
                    );
                }
                shown += page.len();
            }
            store
                .audit(
                    &actor(&account),
                    "dnc.list",
                    Some(&format!("{shown} entries")),
                    now,
                )
                .await?;
            eprintln!("{shown} entries (# and a hash where the number is not kept)");
        }
        DncCommand::KeepNumbers(k) => {
            let account = account_named(&k.account).await?;
            let on = k.keep == "on";
            let forgotten = store.set_dnc_keeps_numbers(account.id, on).await?;
            let target = match on {
                true => "on".to_owned(),
                false => format!("off, {forgotten} numbers forgotten"),
            };
            store
                .audit(&actor(&account), "dnc.keep_numbers", Some(&target), now)
                .await?;
            match on {
                true => println!("{} now keeps the numbers it adds to its list", account.name),
                false => println!(
                    "{} keeps hashes only: {forgotten} numbers forgotten",
                    account.name
                ),
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
