//! `dialcrm import` and `dialcrm export`: call lists in and out as CSV.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use crm::export::ListExport;
use crm::import::{import_csv, ImportOptions, ImportSummary, OnDuplicate};
use crm::model::{Account, Actor, ContactList};
use crm::Store;

/// How many invalid rows the summary prints.
const SHOWN_ERRORS: usize = 20;

/// Flags of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The list's name; it is created if absent.
    #[arg(long)]
    pub list: String,
    /// The region for numbers without a country code (default: the list's, or GB).
    #[arg(long)]
    pub region: Option<String>,
    /// What to do with a number the account already holds: skip or update.
    #[arg(long, default_value = "skip")]
    pub on_duplicate: OnDuplicate,
    /// The CSV file.
    pub file: PathBuf,
}

/// Flags of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The list's name.
    #[arg(long)]
    pub list: String,
    /// Where to write the CSV; standard output by default.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Imports a CSV file into a list, showing progress on standard error.
pub async fn import(store: &Store, args: ImportArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    let now = chrono::Utc::now();
    let list = match find_list(store, &account, &args.list).await? {
        Some(list) => list,
        None => {
            let region = args.region.as_deref().unwrap_or("GB").to_ascii_uppercase();
            store
                .create_list(account.id, &args.list, &region, now)
                .await
                .with_context(|| format!("creating list {:?}", args.list))?
        }
    };
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let consumed = Arc::new(AtomicU64::new(0));
    let input = Counted {
        inner: file,
        consumed: consumed.clone(),
    };
    let options = ImportOptions {
        on_duplicate: args.on_duplicate,
        region: args.region.clone(),
        ..ImportOptions::default()
    };
    let started = std::time::Instant::now();
    let summary = import_csv(
        store,
        &cli_actor(&account),
        list.id,
        input,
        &options,
        now,
        |p| {
            let done = consumed.load(Ordering::Relaxed);
            let percent = (done * 100).checked_div(size).unwrap_or(100).min(100);
            crate::console::progress(&format!("{percent:>3}%  {} rows read", p.rows_read));
        },
    )
    .await;
    crate::console::end_progress();
    let summary = summary.with_context(|| format!("importing {}", args.file.display()))?;
    print_summary(&summary, &list, started.elapsed());
    Ok(())
}

/// Writes a list as CSV to a file or standard output.
pub async fn export(store: &Store, args: ExportArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    let list = find_list(store, &account, &args.list)
        .await?
        .with_context(|| format!("no list {:?} in account {:?}", args.list, account.name))?;
    let export = ListExport::open(store, &cli_actor(&account), list.id, chrono::Utc::now())
        .await
        .context("starting the export")?;
    let rows = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            export.write_all(&mut out).await
        }
        None => export.write_all(&mut std::io::stdout().lock()).await,
    }
    .context("writing the export")?;
    eprintln!("exported {rows} contacts of list {:?}", list.name);
    Ok(())
}

fn print_summary(s: &ImportSummary, list: &ContactList, took: std::time::Duration) {
    println!(
        "{} rows read into list {:?} (id {}) in {:.1} s: {} added to the list ({} new \
         contacts), {} updated, {} duplicates skipped, {} invalid, {} suppressed \
         (imported, flagged)",
        s.rows_read,
        list.name,
        list.id,
        took.as_secs_f64(),
        s.added_to_list,
        s.imported,
        s.updated,
        s.skipped_duplicates,
        s.invalid,
        s.suppressed_flagged
    );
    if !s.errors.is_empty() {
        println!("invalid rows:");
        for e in s.errors.iter().take(SHOWN_ERRORS) {
            println!("  line {}: {}", e.line, e.reason);
        }
        let more = s.invalid.saturating_sub(SHOWN_ERRORS as u64);
        if more > 0 {
            println!("  … and {more} more");
        }
    }
    if !s.suppressed_lines.is_empty() {
        let lines: Vec<String> = s
            .suppressed_lines
            .iter()
            .take(SHOWN_ERRORS)
            .map(u64::to_string)
            .collect();
        println!("suppressed numbers on lines: {}", lines.join(", "));
    }
}

async fn account(store: &Store, name: &str) -> Result<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("finding account {name:?}"))
}

async fn find_list(store: &Store, account: &Account, name: &str) -> Result<Option<ContactList>> {
    let lists = store
        .lists(account.id)
        .await
        .context("reading the account's lists")?;
    Ok(lists.into_iter().find(|l| l.name == name.trim()))
}

/// Returns the audit actor of an operator at the command line.
fn cli_actor(account: &Account) -> Actor {
    Actor {
        account_id: Some(account.id),
        user_id: None,
        ip: None,
        user_agent: Some("dialcrm-cli".into()),
    }
}

/// Counts the bytes read, for the progress percentage.
struct Counted<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
