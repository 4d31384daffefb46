//! Throughput of a CSV import of contacts into a call list, on SQLite and PostgreSQL.
//!
//! `cargo bench -p crm --bench contact_import` writes a CSV file of `IMPORT_BENCH_ROWS` data
//! rows (default 1,000,000; 2,000 when run by `cargo test --benches`) to a temporary folder,
//! then for each backend of `IMPORT_BENCH_BACKEND` (`sqlite`, `postgres` or `both`, the
//! default) makes a fresh database (a SQLite file in a temporary directory, or a fresh
//! database on the test server), defines a choice field `tier` in the account, suppresses a
//! thousandth of the numbers, imports a hundredth of them into another list first (numbers
//! the account already holds), and times `import::import_csv` reading the file from disk with
//! the options the CLI uses (`IMPORT_BENCH_BATCH` sets another batch size): the code path of `dialcrm lists import` and of
//! `POST /api/lists/{id}/import`, less the upload. Reports rows per second, the summary and
//! its row errors by reason, and the process's peak resident memory during the import (the
//! PostgreSQL server's own is not in it).
//!
//! The file: a header `first_name,last_name,phone,email,address,tier,source`; row i is
//! person i, with a number `+44 7400 …`, `07400 …` or `07400…` (a mobile, in three ways of
//! writing it), an email for nine in ten, an address ending in a British postcode, a tier
//! for four in five, a source that lands in the custom fields, and now and then a quoted
//! name with a comma. Every 100th row repeats the number of the row three before (a
//! duplicate in the same batch, written another way) and every 100th another repeats one
//! from a thousand rows before (a duplicate across batches); one row in 100 is broken
//! (no number, text for a number, a number too short, a cell missing, a tier not offered).
//! The summary is checked against what the file holds; a mismatch fails the run, a missed
//! target does not.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crm::fields::{FieldKind, NewField};
use crm::import::{import_csv, ImportOptions, ImportSummary};
use crm::model::{AccountId, Actor, ContactFields};
use crm::testing::{TestBackend, TestDb};
use crm::Store;

/// The targets, in rows per second.
const SQLITE_TARGET: f64 = 30_000.0;
const POSTGRES_TARGET: f64 = 50_000.0;
/// The rows of a run under `cargo test --benches`, which only checks that the bench works.
const TOY_ROWS: u64 = 2_000;
const FIRST: [&str; 12] = [
    "Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Arthur", "Ivy", "Leo", "Freya",
    "Oscar",
];
const LAST: [&str; 10] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "O'Neill",
];
const STREETS: [&str; 6] = [
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Road",
    "Park Avenue",
    "Victoria Street",
];
const TOWNS: [(&str, &str); 6] = [
    ("Leeds", "LS"),
    ("York", "YO"),
    ("Bristol", "BS"),
    ("Norwich", "NR"),
    ("Cardiff", "CF"),
    ("Glasgow", "G"),
];
const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let benching = std::env::args().any(|a| a == "--bench");
    let rows: u64 = env_or(
        "IMPORT_BENCH_ROWS",
        if benching { 1_000_000 } else { TOY_ROWS },
    )?;
    let backends = match std::env::var("IMPORT_BENCH_BACKEND").as_deref() {
        Ok("sqlite") => vec![TestBackend::Sqlite],
        Ok("postgres") => vec![TestBackend::Postgres],
        Ok("both") | Err(_) => vec![TestBackend::Sqlite, TestBackend::Postgres],
        Ok(other) => bail!("IMPORT_BENCH_BACKEND must be sqlite, postgres or both, not {other:?}"),
    };
    let dir = std::env::temp_dir().join(format!("dialcrm-import-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("making the temporary folder")?;
    let result = run_in(&dir, rows, &backends, benching).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(dir: &Path, rows: u64, backends: &[TestBackend], benching: bool) -> Result<()> {
    let started = Instant::now();
    let file = dir.join("contacts.csv");
    let plan = write_csv(&file, rows)?;
    let previous = dir.join("previous.csv");
    write_previous(&previous, rows)?;
    println!(
        "{rows} rows ({:.1} MB) written in {:.1} s: {} valid, {} broken, {} repeat a number \
         of the file, {} a number the account holds",
        std::fs::metadata(&file)?.len() as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        plan.imported + plan.repeated + plan.held,
        plan.invalid,
        plan.repeated,
        plan.held,
    );
    let started = Instant::now();
    let mut valid = 0u64;
    crm::import::read_contacts(File::open(&file)?, phonenumber::country::Id::GB, |row| {
        valid += u64::from(row.is_ok());
    })?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reading and checking the file alone (no store, no account fields): {secs:.1} s, \
         {:.0} rows/s, {valid} valid",
        rows as f64 / secs
    );
    for &backend in backends {
        let db = TestDb::new(backend)
            .await
            .context("no database for the backend (is PostgreSQL running?)")?;
        let outcome = import_once(&db.store, &file, &previous, rows).await;
        db.finish().await;
        let (summary, secs, peak, neighbour) = outcome?;
        report(backend, &summary, secs, peak, benching);
        println!("{neighbour}");
        check(&summary, &plan, rows)?;
    }
    Ok(())
}

/// Sets an account up, imports the file once, and returns the summary, the seconds it took,
/// the peak resident memory during it and how long another account's saves waited.
async fn import_once(
    store: &Store,
    file: &Path,
    previous: &Path,
    rows: u64,
) -> Result<(ImportSummary, f64, Option<u64>, String)> {
    let now = Utc::now();
    let account = store.create_account("bench", 10, now).await?;
    let actor = Actor {
        account_id: Some(account.id),
        ..Actor::default()
    };
    store
        .define_field(
            &actor,
            &NewField {
                key: "tier".into(),
                kind: Some(FieldKind::Choice),
                choices: TIERS.iter().map(|t| t.to_string()).collect(),
                ..NewField::default()
            },
            now,
        )
        .await?;
    suppress(store, account.id, rows, now).await?;
    let mut options = ImportOptions::default();
    if let Ok(size) = std::env::var("IMPORT_BENCH_BATCH") {
        options.batch_size = size
            .parse()
            .context("IMPORT_BENCH_BATCH must be a number")?;
    }
    let old = store.create_list(account.id, "previous", "GB", now).await?;
    import_csv(
        store,
        &actor,
        old.id,
        File::open(previous)?,
        &options,
        now,
        |_| {},
    )
    .await?;
    let list = store.create_list(account.id, "spring", "GB", now).await?;

    let neighbour = Neighbour::start(store).await?;
    reset_peak_memory();
    let input = File::open(file).context("reopening the CSV file")?;
    let started = Instant::now();
    let mut last = Instant::now();
    let summary = import_csv(store, &actor, list.id, input, &options, now, |p| {
        if last.elapsed().as_secs() >= 10 {
            println!(
                "  … {} rows read, {:.0} rows/s so far",
                p.rows_read,
                p.rows_read as f64 / started.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_memory();
    let neighbour = neighbour.finish().await?;
    Ok((summary, secs, peak, neighbour))
}

/// Another account's agent saving a contact every 50 ms while the import
/// runs: how long an ordinary write waits behind the import's batches (on
/// SQLite, for the write lock each batch holds).
struct Neighbour {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Vec<Duration>>>,
}

impl Neighbour {
    async fn start(store: &Store) -> Result<Neighbour> {
        let now = Utc::now();
        let account = store.create_account("neighbour", 10, now).await?;
        let store = store.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut waits = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            for n in 0u64.. {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let fields = ContactFields {
                    first_name: "Neighbour".into(),
                    phone_e164: e164(5_000_000_000 + n),
                    phone_raw: e164(5_000_000_000 + n),
                    custom_fields: serde_json::json!({}),
                    ..ContactFields::default()
                };
                let started = Instant::now();
                store
                    .create_contact(account.id, &fields, Utc::now())
                    .await?;
                waits.push(started.elapsed());
            }
            Ok(waits)
        });
        Ok(Neighbour { stop, task })
    }

    /// Stops the saves and describes their waits.
    async fn finish(self) -> Result<String> {
        let _ = self.stop.send(());
        let mut waits = self.task.await.context("the neighbour's task")??;
        waits.sort_unstable();
        let at = |q: f64| {
            waits
                .get(((waits.len() as f64 * q) as usize).min(waits.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Ok(format!(
            "  another account's contact saved every 50 ms meanwhile: {} saves, \
             p50 {:.1} ms, p99 {:.1} ms, longest {:.1} ms",
            waits.len(),
            at(0.5),
            at(0.99),
            waits.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        ))
    }
}

/// Suppresses the numbers of every thousandth person.
async fn suppress(
    store: &Store,
    account: AccountId,
    rows: u64,
    now: chrono::DateTime<Utc>,
) -> Result<()> {
    for p in (7..rows).step_by(1000) {
        store
            .suppress(account, &e164(p), "do-not-call", "bench", now)
            .await?;
    }
    Ok(())
}

fn report(backend: TestBackend, s: &ImportSummary, secs: f64, peak: Option<u64>, benching: bool) {
    let rate = s.rows_read as f64 / secs;
    let target = match backend {
        TestBackend::Sqlite => SQLITE_TARGET,
        TestBackend::Postgres => POSTGRES_TARGET,
    };
    let verdict = if !benching {
        "not judged outside `cargo bench`"
    } else if rate >= target {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "{backend:?}: {} rows in {secs:.1} s: {rate:.0} rows/s (target {target:.0}: {verdict})",
        s.rows_read
    );
    println!(
        "  imported {}, skipped duplicates {}, added to list {}, invalid {}, suppressed flagged {}",
        s.imported, s.skipped_duplicates, s.added_to_list, s.invalid, s.suppressed_flagged
    );
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &s.errors {
        *reasons.entry(e.reason.as_str()).or_default() += 1;
    }
    println!(
        "  row errors: {} ({} kept; first at line {}), by reason among those kept:",
        s.invalid,
        s.errors.len(),
        s.errors.first().map_or(0, |e| e.line)
    );
    for (reason, n) in reasons {
        println!("    {n:>5}  {reason}");
    }
    match peak {
        Some(kib) => println!(
            "  peak resident memory during the import: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("  peak resident memory: not available on this system"),
    }
}

/// Fails the run when the summary is not what the file holds.
fn check(s: &ImportSummary, plan: &Plan, rows: u64) -> Result<()> {
    let want = (
        rows,
        plan.imported,
        plan.repeated + plan.held,
        plan.invalid,
        plan.imported + plan.held_distinct,
    );
    let got = (
        s.rows_read,
        s.imported,
        s.skipped_duplicates,
        s.invalid,
        s.added_to_list,
    );
    if got != want {
        bail!(
            "the summary (read, imported, skipped, invalid, added) is {got:?}, \
             but the file holds {want:?}"
        );
    }
    if rows >= 1000 && s.suppressed_flagged == 0 {
        bail!("no suppressed number was flagged");
    }
    Ok(())
}

/// What the file holds, counted as it is written.
#[derive(Debug, Default)]
struct Plan {
    /// Rows with a number new to the account.
    imported: u64,
    /// Valid rows whose number an earlier row of the file already had.
    repeated: u64,
    /// Valid rows whose number the account held before the import.
    held: u64,
    /// The distinct numbers among those, each put on the list once.
    held_distinct: u64,
    /// Broken rows.
    invalid: u64,
}

/// Writes the file the bench imports, and counts what it holds.
fn write_csv(path: &PathBuf, rows: u64) -> Result<Plan> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    writeln!(out, "first_name,last_name,phone,email,address,tier,source")?;
    let mut persons = Vec::with_capacity(rows as usize);
    let mut seen = vec![false; rows as usize];
    let mut plan = Plan::default();
    for i in 0..rows {
        let person = match i % 100 {
            37 if i >= 3 => persons[(i - 3) as usize],
            71 if i >= 1000 => persons[(i - 1000) as usize],
            _ => i,
        };
        persons.push(person);
        let broken = broken(i);
        write_row(&mut out, i, person, broken)?;
        if broken.is_some() {
            plan.invalid += 1;
        } else if is_held(person) {
            plan.held += 1;
            plan.held_distinct += u64::from(!seen[person as usize]);
            seen[person as usize] = true;
        } else if seen[person as usize] {
            plan.repeated += 1;
        } else {
            seen[person as usize] = true;
            plan.imported += 1;
        }
    }
    out.flush()?;
    Ok(plan)
}

/// Writes the list imported before the timed one: every person the account already holds.
fn write_previous(path: &PathBuf, rows: u64) -> Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "first_name,last_name,phone,email,address,tier,source")?;
    for p in (0..rows).filter(|&p| is_held(p)) {
        write_row(&mut out, p, p, None)?;
    }
    out.flush()?;
    Ok(())
}

fn is_held(person: u64) -> bool {
    person % 100 == 50
}

/// How row i is broken, if it is: the phone cell it has instead, or a missing cell.
#[derive(Clone, Copy)]
enum Broken {
    Phone(&'static str),
    MissingCell,
    BadTier,
}

fn broken(i: u64) -> Option<Broken> {
    match i % 1000 {
        13 | 213 | 413 | 613 | 813 => Some(Broken::Phone("")),
        113 | 513 => Some(Broken::Phone("n/a")),
        301 => Some(Broken::Phone("0123")),
        501 => Some(Broken::MissingCell),
        901 => Some(Broken::BadTier),
        _ => None,
    }
}

fn write_row(out: &mut impl Write, i: u64, person: u64, broken: Option<Broken>) -> Result<()> {
    let first = FIRST[(person % 12) as usize];
    let last = LAST[((person / 12) % 10) as usize];
    let digits = number(person);
    let phone = match broken {
        Some(Broken::Phone(p)) => p.to_owned(),
        _ => match i % 3 {
            0 => format!("+44 {} {}", &digits[..4], &digits[4..]),
            1 => format!("0{} {}", &digits[..4], &digits[4..]),
            _ => format!("0{digits}"),
        },
    };
    let email = if person % 10 == 9 {
        String::new()
    } else {
        format!(
            "{}.{}{person}@example.org",
            first.to_lowercase(),
            last.to_lowercase()
        )
        .replace('\'', "")
    };
    let (town, area) = TOWNS[(person % 6) as usize];
    let address = format!(
        "\"{} {}, {town} {area}{} {}{}{}\"",
        1 + person % 180,
        STREETS[((person / 6) % 6) as usize],
        1 + person % 28,
        person % 10,
        (b'A' + (person % 26) as u8) as char,
        (b'A' + ((person / 26) % 26) as u8) as char,
    );
    let tier = match broken {
        Some(Broken::BadTier) => "platinum",
        _ if person % 5 == 4 => "",
        _ => TIERS[(person % 3) as usize],
    };
    let name = if person % 50 == 1 {
        format!("\"{last}, Jr.\"")
    } else {
        last.to_owned()
    };
    let source = ["web", "fair", "referral", "partner"][(person % 4) as usize];
    match broken {
        Some(Broken::MissingCell) => writeln!(out, "{first},{name},{phone},{email},{address}")?,
        _ => writeln!(
            out,
            "{first},{name},{phone},{email},{address},{tier},{source}"
        )?,
    }
    Ok(())
}

/// The national significant number of a person: a mobile in the 7400 to 7403 ranges.
fn number(person: u64) -> String {
    format!("{}", 7_400_000_000 + person * 3)
}

fn e164(person: u64) -> String {
    format!("+44{}", number(person))
}

/// Makes the next reading of the peak resident memory start from now.
fn reset_peak_memory() {
    // Writing 5 resets the high-water mark (Linux 4.0 and later); elsewhere the peak is
    // the process's whole life, which only overstates it.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Returns the peak resident memory in KiB, where the system says.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number, not {v:?}")),
        Err(_) => Ok(default),
    }
}
