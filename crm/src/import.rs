//! Streaming CSV import of contacts into a call list.
//!
//! A parser thread reads the file record by record and hands batches to the
//! store, which writes each batch in one transaction: memory stays flat
//! whatever the file's size, and the database sees one statement per batch,
//! not per row. A bad record is reported with the line it starts on and the
//! import goes on.
//!
//! An import is resumable rather than atomic: each batch commits on its own,
//! so a file cut short or a failed connection leaves the batches before it in
//! place, and running the same file again with [`OnDuplicate::Skip`] adds only
//! the rows still missing. Problems with the file as a whole (empty, not CSV,
//! no phone column) are found before anything is written.
//!
//! A column named as one of the account's fields (by key or label) holds
//! that field's values, read by its kind: a bad value refuses its row, as a
//! bad number does. A row may leave a required field empty: imports bring
//! what a list holds, and the field is filled in later (on the card, say).
//! With [`OnDuplicate::Update`], an empty cell leaves the contact's value
//! in that field as it was.

mod parse;

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::fields::{FieldDef, FieldId};
use crate::model::{Actor, ContactFields, ListId};
use crate::store::{BatchFailure, ImportTarget, MAX_BATCH_ROWS};
use crate::{Store, StoreError};
use parse::{ContactReader, Row};

pub use parse::{e164, is_contact_column, region};

/// How many row errors a summary keeps; later ones are only counted.
pub const MAX_KEPT_ERRORS: usize = 1000;

/// What an import does with a number the list or account already holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    /// Keeps the existing contact as it is and puts it on the list.
    #[default]
    Skip,
    /// Overwrites the existing contact's fields with the row's.
    Update,
}

impl OnDuplicate {
    /// Returns the choice as written in URLs and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDuplicate::Skip => "skip",
            OnDuplicate::Update => "update",
        }
    }
}

impl std::str::FromStr for OnDuplicate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(OnDuplicate::Skip),
            "update" => Ok(OnDuplicate::Update),
            other => Err(format!(
                "unknown duplicate policy {other:?}: expected skip or update"
            )),
        }
    }
}

/// Rows a CSV import writes per transaction unless told otherwise. Every
/// index page a transaction touches is written once at its commit, so larger
/// batches write far fewer pages a row: on SQLite a million rows went in at
/// 12,300 rows/s in batches of 500 and 29,900 in batches of 4,000, and
/// another account's saves meanwhile waited less at worst, since the import
/// takes the write lock an eighth as often (docs/benchmarks.md).
pub const DEFAULT_BATCH_ROWS: usize = 4000;

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What to do with numbers already known.
    pub on_duplicate: OnDuplicate,
    /// The region for numbers without a country code; the list's by default.
    pub region: Option<String>,
    /// Rows written per transaction.
    pub batch_size: usize,
    /// Roughly how many rows pass between progress reports.
    pub progress_every: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            on_duplicate: OnDuplicate::Skip,
            region: None,
            batch_size: DEFAULT_BATCH_ROWS,
            progress_every: 10_000,
        }
    }
}

/// A record that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RowError {
    /// The physical line of the file where the record starts.
    pub line: u64,
    /// Why it was refused; never the row's contents.
    pub reason: String,
}

/// What an import did, so far or in the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportSummary {
    /// Data records read, valid or not.
    pub rows_read: u64,
    /// New contacts created.
    pub imported: u64,
    /// Existing contacts overwritten (with [`OnDuplicate::Update`]).
    pub updated: u64,
    /// Rows whose number was already in the file or the account, left as is.
    pub skipped_duplicates: u64,
    /// Contacts added to the list: new ones, and existing ones of the
    /// account (skipped or updated) that were not on it yet.
    #[serde(default)]
    pub added_to_list: u64,
    /// Rows refused.
    pub invalid: u64,
    /// Rows imported whose number is on the account's suppression list.
    pub suppressed_flagged: u64,
    /// The first refused rows, with their reasons.
    pub errors: Vec<RowError>,
    /// The lines of the first suppressed rows.
    pub suppressed_lines: Vec<u64>,
}

/// Errors that stop an import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file holds nothing, not even a header.
    #[error("the file is empty")]
    Empty,
    /// The file is not CSV text.
    #[error("not a CSV file: {0}")]
    NotCsv(String),
    /// No header names a phone column.
    #[error("no phone column: name one phone, number, telephone or mobile")]
    NoPhoneColumn,
    /// The list's or the given default region is not a country code.
    #[error("unknown region {0:?}: expected a two-letter country code such as GB")]
    UnknownRegion(String),
    /// Reading the input failed part way; batches before it are kept.
    #[error("reading the file failed: {0}")]
    Read(#[source] std::io::Error),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The parser thread died, which is a bug.
    #[error("the CSV parser stopped unexpectedly")]
    Parser,
}

/// Imports a CSV file into a list of the actor's account.
///
/// `progress` is called about every `progress_every` rows and once at the
/// end, also when an error stops the import: its last summary then counts
/// everything written before the error, which stays written. A list of
/// another account is [`StoreError::NotFound`].
pub async fn import_csv<R, F>(
    store: &Store,
    actor: &Actor,
    list: ListId,
    input: R,
    options: &ImportOptions,
    now: DateTime<Utc>,
    mut progress: F,
) -> Result<ImportSummary, ImportError>
where
    R: Read + Send + 'static,
    F: FnMut(&ImportSummary),
{
    let account = actor.account_id.ok_or(StoreError::NotFound)?;
    let found = store.list(account, list).await?;
    let region_name = options
        .region
        .clone()
        .unwrap_or(found.default_region)
        .to_ascii_uppercase();
    let region: phonenumber::country::Id = region_name
        .parse()
        .map_err(|_| ImportError::UnknownRegion(region_name.clone()))?;
    store
        .audit(actor, "list.import", Some(&format!("list:{list}")), now)
        .await?;
    let mut target = store.import_target(account, list, true).await?;

    let fields = store.fields(account).await?;
    let batch_size = options.batch_size.clamp(1, MAX_BATCH_ROWS);
    // One batch waiting while one is written: the parser reads several times
    // faster than either store writes, and each batch held is thousands of rows.
    let (tx, mut rx) = mpsc::channel(1);
    let parser =
        tokio::task::spawn_blocking(move || parse_batches(input, region, fields, batch_size, tx));

    let mut summary = ImportSummary::default();
    let mut next_report = options.progress_every.max(1);
    let mut failure = None;
    while let Some(message) = rx.recv().await {
        let batch = match message {
            Ok(batch) => batch,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if let Err(e) = apply(store, &mut target, options, now, batch, &mut summary).await {
            failure = Some(e);
            break;
        }
        if summary.rows_read >= next_report {
            progress(&summary);
            next_report = (summary.rows_read / options.progress_every.max(1) + 1)
                * options.progress_every.max(1);
        }
    }
    // Dropping the receiver stops the parser at its next batch.
    drop(rx);
    let joined = parser.await;
    if let Some(e) = failure {
        // What the batches before the error (and a committed part of the
        // failing one) wrote stays written: the last report must count it.
        progress(&summary);
        return Err(e);
    }
    joined.map_err(|_| ImportError::Parser)?;
    progress(&summary);
    tracing::info!(
        account = %account,
        list = %list,
        rows = summary.rows_read,
        imported = summary.imported,
        updated = summary.updated,
        skipped = summary.skipped_duplicates,
        added_to_list = summary.added_to_list,
        invalid = summary.invalid,
        suppressed = summary.suppressed_flagged,
        "list import finished"
    );
    Ok(summary)
}

/// Reads CSV text as [`import_csv`] does, without a store, handing each record to `row`: the
/// contact with the line its record starts on, or why the record was refused.
///
/// This is the import's parsing and validation layer on its own, the part that sees the
/// uploaded bytes; the fuzz target `csv_import` drives it.
pub fn read_contacts<R: Read>(
    input: R,
    region: phonenumber::country::Id,
    mut row: impl FnMut(Result<(u64, ContactFields), RowError>),
) -> Result<(), ImportError> {
    let mut reader = ContactReader::open(input, region, Vec::new())?;
    while let Some(next) = reader.next_row()? {
        row(match next {
            Row::Contact(line, fields, _) => Ok((line, fields)),
            Row::Invalid(error) => Err(error),
        });
    }
    Ok(())
}

/// A valid row: its line, the contact's fields, and its values in the
/// account's fields.
type ParsedRow = (u64, ContactFields, Vec<(FieldId, String)>);

/// One batch from the parser: valid rows and the records refused among them.
struct Batch {
    rows: Vec<ParsedRow>,
    errors: Vec<RowError>,
    read: u64,
}

fn parse_batches<R: Read>(
    input: R,
    region: phonenumber::country::Id,
    fields: Vec<FieldDef>,
    batch_size: usize,
    tx: mpsc::Sender<Result<Batch, ImportError>>,
) {
    let mut reader = match ContactReader::open(input, region, fields) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let fresh = || Batch {
        rows: Vec::with_capacity(batch_size),
        errors: Vec::new(),
        read: 0,
    };
    let mut batch = fresh();
    loop {
        match reader.next_row() {
            Ok(Some(row)) => {
                batch.read += 1;
                match row {
                    Row::Contact(line, fields, values) => batch.rows.push((line, fields, values)),
                    Row::Invalid(e) => batch.errors.push(e),
                }
                if batch.read as usize >= batch_size
                    && tx
                        .blocking_send(Ok(std::mem::replace(&mut batch, fresh())))
                        .is_err()
                {
                    return;
                }
            }
            Ok(None) => {
                if batch.read > 0 {
                    let _ = tx.blocking_send(Ok(batch));
                }
                return;
            }
            Err(e) => {
                // Rows read before the failure are still written.
                if tx.blocking_send(Ok(batch)).is_ok() {
                    let _ = tx.blocking_send(Err(e));
                }
                return;
            }
        }
    }
}

async fn apply(
    store: &Store,
    target: &mut ImportTarget,
    options: &ImportOptions,
    now: DateTime<Utc>,
    batch: Batch,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    summary.rows_read += batch.read;
    summary.invalid += batch.errors.len() as u64;
    let room = MAX_KEPT_ERRORS.saturating_sub(summary.errors.len());
    summary.errors.extend(batch.errors.into_iter().take(room));

    // A number twice in one batch: skip keeps the first, update the last.
    let mut index: HashMap<String, usize> = HashMap::with_capacity(batch.rows.len());
    let mut lines = Vec::with_capacity(batch.rows.len());
    let mut rows: Vec<ContactFields> = Vec::with_capacity(batch.rows.len());
    let mut values: Vec<Vec<(FieldId, String)>> = Vec::with_capacity(batch.rows.len());
    for (line, fields, held) in batch.rows {
        match index.get(&fields.phone_e164) {
            Some(&i) => match options.on_duplicate {
                OnDuplicate::Skip => summary.skipped_duplicates += 1,
                OnDuplicate::Update => {
                    rows[i] = fields;
                    values[i] = held;
                    lines[i] = line;
                    summary.updated += 1;
                }
            },
            None => {
                index.insert(fields.phone_e164.clone(), rows.len());
                lines.push(line);
                rows.push(fields);
                values.push(held);
            }
        }
    }
    let (outcome, failure) = match store
        .write_import_batch(target, &rows, &values, options.on_duplicate, now)
        .await
    {
        Ok(outcome) => (outcome, None),
        // Half of a split batch may have committed: count what it wrote.
        Err(BatchFailure { written, error }) => (written, Some(error)),
    };
    summary.imported += outcome.imported;
    summary.updated += outcome.updated;
    summary.skipped_duplicates += outcome.skipped;
    summary.added_to_list += outcome.added_to_list;
    summary.suppressed_flagged += outcome.suppressed.len() as u64;
    let room = MAX_KEPT_ERRORS.saturating_sub(summary.suppressed_lines.len());
    summary
        .suppressed_lines
        .extend(outcome.suppressed.iter().take(room).map(|&i| lines[i]));
    match failure {
        None => Ok(()),
        Some(error) => Err(error.into()),
    }
}

/// What the store did with one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New contacts created.
    pub imported: u64,
    /// Existing contacts overwritten.
    pub updated: u64,
    /// Existing contacts left as they were.
    pub skipped: u64,
    /// Contacts new to the list, whether new to the account or not.
    pub added_to_list: u64,
    /// Positions in the batch of the rows whose number is suppressed.
    pub suppressed: Vec<usize>,
}

impl BatchOutcome {
    /// Adds what another part of the same batch did.
    pub(crate) fn add(&mut self, other: BatchOutcome) {
        self.imported += other.imported;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.added_to_list += other.added_to_list;
        self.suppressed.extend(other.suppressed);
    }
}

/// Whether a background import is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Still reading the file.
    Running,
    /// Finished; the summary is final.
    Done,
    /// Stopped by an error about the whole file; batches before it are kept.
    Failed,
}

impl ImportStatus {
    /// Returns the status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Done => "done",
            ImportStatus::Failed => "failed",
        }
    }
}

/// An import run in the background, as the HTTP API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportJob {
    /// The job's id.
    pub id: i64,
    /// The list imported into.
    pub list_id: ListId,
    /// Whether it is still going.
    pub status: ImportStatus,
    /// The duplicate policy chosen.
    pub on_duplicate: OnDuplicate,
    /// The counts and first errors so far.
    pub summary: ImportSummary,
    /// Why the import failed, when it did.
    pub error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its progress was last written.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}
