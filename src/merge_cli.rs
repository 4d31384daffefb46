//! `dialcrm contact duplicates`, `contact merge` and `contact undo-merge`:
//! duplicate contacts found and merged from the command line, through the
//! same Store calls (and the same audit) as the API.

use anyhow::{Context, Result};
use clap::Args;
use crm::duplicates::DuplicateReason;
use crm::model::{Contact, ContactId};
use crm::store::duplicates::MAX_SCAN;
use crm::store::merge::{MergeId, MergeRequest};
use crm::Store;

use crate::contacts_cli::{account, cli_actor};

/// Flags of `contact duplicates`.
#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// List the likely duplicates of this contact only; without it, the
    /// account's pairs.
    #[arg(long)]
    pub contact: Option<i64>,
    /// Start after this contact id (the cursor a previous run printed).
    #[arg(long)]
    pub after: Option<i64>,
    /// Stop once this many pairs are listed.
    #[arg(long, default_value_t = 100)]
    pub max_pairs: usize,
    /// Print JSON, as the API answers, instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `contact merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The contact that stays.
    #[arg(long)]
    pub keep: i64,
    /// The contact merged into it.
    #[arg(long)]
    pub merge: i64,
    /// The kept contact's version as read; without it, the current one.
    #[arg(long)]
    pub version_keep: Option<i64>,
    /// The merged contact's version as read; without it, the current one.
    #[arg(long)]
    pub version_merge: Option<i64>,
    /// Print JSON, as the API answers.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `contact undo-merge`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The merge, as `contact merge` printed it.
    #[arg(long = "merge-id")]
    pub merge_id: i64,
}

/// Lists likely duplicates, of one contact or of the whole account.
pub async fn duplicates(store: &Store, args: DuplicatesArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    if let Some(id) = args.contact {
        let id = ContactId(id);
        let found = store
            .duplicates_of(account.id, id)
            .await
            .with_context(|| format!("finding duplicates of contact {id}"))?;
        store
            .audit(
                &cli_actor(&account),
                "contact.duplicates",
                Some(&format!("contact:{id}")),
                chrono::Utc::now(),
            )
            .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&found)?);
            return Ok(());
        }
        println!("{:>8}  {:<30} {:<16} reasons", "id", "name", "number");
        for d in &found {
            println!(
                "{:>8}  {:<30} {:<16} {}",
                d.contact.id,
                name(&d.contact),
                d.contact.fields.phone_e164,
                reasons(&d.reasons)
            );
        }
        eprintln!("{} likely duplicates of contact {id}", found.len());
        return Ok(());
    }
    let mut after = args.after.map(ContactId);
    let mut pairs = Vec::new();
    let mut scanned = 0u64;
    let next = loop {
        let page = store
            .duplicate_pairs(account.id, after, MAX_SCAN)
            .await
            .context("finding duplicates")?;
        scanned += u64::from(page.scanned);
        pairs.extend(page.pairs);
        match page.next_after {
            Some(n) if pairs.len() < args.max_pairs => after = Some(n),
            other => break other,
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&pairs)?);
    } else {
        println!(
            "{:>8} {:>8}  {:<24} {:<30} {:<30}",
            "a", "b", "reasons", "name a", "name b"
        );
        for p in &pairs {
            println!(
                "{:>8} {:>8}  {:<24} {:<30} {:<30}",
                p.a.id,
                p.b.id,
                reasons(&p.reasons),
                name(&p.a),
                name(&p.b)
            );
        }
    }
    match next {
        Some(n) => eprintln!(
            "{} pairs among {scanned} contacts; more after them: --after {n}",
            pairs.len()
        ),
        None => eprintln!("{} pairs among {scanned} contacts", pairs.len()),
    }
    Ok(())
}

/// Merges one contact into another.
pub async fn merge(store: &Store, args: MergeArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    let (keep, merge) = (ContactId(args.keep), ContactId(args.merge));
    let version = |given: Option<i64>, id: ContactId| {
        let account = &account;
        async move {
            match given {
                Some(v) => Ok(v),
                None => store
                    .contact(account.id, id)
                    .await
                    .map(|c| c.version)
                    .with_context(|| format!("finding contact {id} in {:?}", account.name)),
            }
        }
    };
    let req = MergeRequest {
        keep,
        merge,
        version_keep: version(args.version_keep, keep).await?,
        version_merge: version(args.version_merge, merge).await?,
    };
    let merged = store
        .merge_contacts(&cli_actor(&account), &req, chrono::Utc::now())
        .await
        .with_context(|| format!("merging contact {merge} into contact {keep}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&merged)?);
        return Ok(());
    }
    let m = &merged.moved;
    println!(
        "contact {merge} merged into contact {keep} (merge {}); it can be undone until {}",
        merged.merge_id,
        merged.undo_until.to_rfc3339()
    );
    println!(
        "filled: {}",
        if merged.filled.is_empty() {
            "nothing".to_owned()
        } else {
            merged.filled.join(", ")
        }
    );
    println!(
        "moved: {} calls, {} interactions, {} recordings, {} leads, {} list memberships, \
         {} other numbers ({} leads and {} memberships set aside)",
        m.call_attempts,
        m.interactions,
        m.recordings,
        m.leads,
        m.list_memberships,
        m.other_numbers,
        m.leads_set_aside,
        m.list_memberships_set_aside
    );
    if merged.suppressed {
        println!("both numbers are on the suppression list: neither will be dialled");
    }
    Ok(())
}

/// Undoes a merge within its day.
pub async fn undo(store: &Store, args: UndoArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    let id = MergeId(args.merge_id);
    let undone = store
        .undo_merge(&cli_actor(&account), id, chrono::Utc::now())
        .await
        .with_context(|| format!("undoing merge {id}"))?;
    println!(
        "merge {id} undone: contacts {} and {} are as they were",
        undone.contact.id, undone.restored.id
    );
    Ok(())
}

fn name(c: &Contact) -> String {
    format!("{} {}", c.fields.first_name, c.fields.last_name)
        .trim()
        .to_owned()
}

fn reasons(r: &[DuplicateReason]) -> String {
    r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}
