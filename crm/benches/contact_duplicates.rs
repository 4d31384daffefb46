//! Latency of finding duplicate contacts over many contacts, on SQLite or PostgreSQL.
//!
//! `cargo bench -p crm --bench contact_duplicates` makes a fresh database (a SQLite file in a
//! temporary directory, or with `DUP_BENCH_BACKEND=postgres` a fresh database on the test
//! server), fills one account with `DUP_BENCH_CONTACTS` contacts (default 1,000,000) in SQL
//! inside the database, as the contact search benchmark does, then times
//! `DUP_BENCH_LOOKUPS` calls (default 300) of `Store::duplicates_of` on contacts picked at
//! random, and `DUP_BENCH_PAGES` pages (default 30) of `Store::duplicate_pairs` walking 100
//! contacts each from cursors picked at random: the code paths of
//! `GET /api/contacts/duplicates` less HTTP. Reports p50/p95/p99/max of each.
//!
//! The data: contact i has the number +4474 and i in eight digits, the email
//! `p{i}@example.org`, a last name of four syllables from the last four digits of i and a
//! first name of three from the next three, and an address ending in a British-shaped
//! postcode (`AB12 3CD`) shared by `DUP_BENCH_PER_POSTCODE` contacts (default 20; contacts
//! i and i + n / 20 share one, and many of those have names two letters apart). Every
//! 1,000th contact also shares its email with the one before, and has the one after's
//! number in its custom fields. The run exits non-zero only when the run itself fails.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use crm::model::{AccountId, ContactId};
use crm::testing::{TestBackend, TestDb};
use crm::Store;

const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "we", "zu"];

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let contacts: i64 = env_or("DUP_BENCH_CONTACTS", 1_000_000)?;
    let lookups: usize = env_or("DUP_BENCH_LOOKUPS", 300)?;
    let pages: usize = env_or("DUP_BENCH_PAGES", 30)?;
    let per_postcode: i64 = env_or("DUP_BENCH_PER_POSTCODE", 20)?;
    let backend = match std::env::var("DUP_BENCH_BACKEND").as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        _ => TestBackend::Sqlite,
    };
    let db = TestDb::new(backend)
        .await
        .context("no database for the backend (is PostgreSQL running?)")?;
    let store = &db.store;
    let account = store.create_account("big", 1, Utc::now()).await?.id;
    let started = Instant::now();
    fill(
        store,
        account,
        contacts,
        (contacts / per_postcode.max(1)).max(1),
    )
    .await?;
    // As autovacuum leaves a table in service: statistics taken, and the
    // address index's pending list merged (a bulk insert leaves it long).
    if let Some(pool) = store.postgres_pool() {
        sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    }
    println!(
        "{backend:?}: {contacts} contacts, {per_postcode} per postcode, written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let first: i64 = match (store.sqlite_pool(), store.postgres_pool()) {
        (Some(p), _) => {
            sqlx::query_scalar("SELECT MIN(id) FROM contacts")
                .fetch_one(p)
                .await?
        }
        (None, Some(p)) => {
            sqlx::query_scalar("SELECT MIN(id) FROM contacts")
                .fetch_one(p)
                .await?
        }
        (None, None) => unreachable!("a store has one of the two pools"),
    };

    let mut rng = Lcg(0x5eed);
    let mut times = Vec::with_capacity(lookups);
    let mut candidates = 0usize;
    for _ in 0..lookups {
        let id = ContactId(first + (rng.next() % contacts.max(1) as u64) as i64);
        let t = Instant::now();
        let found = store.duplicates_of(account, id).await?;
        times.push(t.elapsed());
        candidates += found.len();
    }
    report(
        "duplicates of one contact",
        &mut times,
        &format!("{lookups} contacts, {candidates} candidates in all"),
    );

    let mut times = Vec::with_capacity(pages);
    let mut pairs = 0usize;
    for _ in 0..pages {
        let after = ContactId(first + (rng.next() % contacts.max(1) as u64) as i64);
        let t = Instant::now();
        let page = store.duplicate_pairs(account, Some(after), 100).await?;
        times.push(t.elapsed());
        pairs += page.pairs.len();
    }
    report(
        "a page of pairs, 100 contacts",
        &mut times,
        &format!("{pages} pages, {pairs} pairs in all"),
    );
    db.finish().await;
    Ok(())
}

fn report(label: &str, times: &mut [Duration], what: &str) {
    times.sort();
    println!(
        "{label:<32} p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({what})",
        ms(pct(times, 50.0)),
        ms(pct(times, 95.0)),
        ms(pct(times, 99.0)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    );
}

/// Writes `n` contacts into the account in SQL inside the database, over
/// `postcodes` postcodes.
async fn fill(store: &Store, account: AccountId, n: i64, postcodes: i64) -> Result<()> {
    let syl = |digit: &str| {
        format!(
            "substr('{}', CAST(({digit}) * 2 + 1 AS INTEGER), 2)",
            SYLLABLES.concat()
        )
    };
    let digit = |i: &str, place: i64| format!("(({i} / {place}) % 10)");
    let cap = |s: String| format!("upper(substr({s}, 1, 1)) || substr({s}, 2)");
    let last = cap((0..4)
        .map(|k| syl(&digit("i", 10_i64.pow(k))))
        .collect::<Vec<_>>()
        .join(" || "));
    let first = cap((4..7)
        .map(|k| syl(&digit("i", 10_i64.pow(k))))
        .collect::<Vec<_>>()
        .join(" || "));
    let columns =
        "INSERT INTO contacts (account_id, first_name, last_name, phone_e164, phone_raw, \
         email, postal_address, custom_fields, created_at, updated_at)";
    // Every 1,000th contact: the email of the one before, the number of the one after.
    let email = "'p' || (CASE WHEN i % 1000 = 0 THEN i - 1 ELSE i END) || '@example.org'";
    // Postcode g: two letters and up to two digits, then a digit and CD.
    let g = format!("(i % {postcodes})");
    let postcode = |chr: &str| {
        format!(
            "{chr}(CAST(65 + {g} % 26 AS INTEGER)) || {chr}(CAST(65 + {g} / 26 % 26 AS INTEGER)) \
             || ({g} / 676 % 100) || ' ' \
             || ({g} / 67600 % 10) || 'CD'"
        )
    };
    let batch = 100_000;
    let mut from = 1;
    while from <= n {
        let to = (from + batch - 1).min(n);
        match (store.sqlite_pool(), store.postgres_pool()) {
            (Some(pool), _) => {
                let sql = format!(
                    "WITH RECURSIVE seq(i) AS (SELECT $2 UNION ALL SELECT i + 1 FROM seq \
                     WHERE i < $3) {columns} SELECT $1, {first}, {last}, \
                     '+4474' || printf('%08d', i), '', {email}, \
                     i || ' High St, Town ' || {}, \
                     CASE WHEN i % 1000 = 0 THEN '{{\"old\": \"+4474' || printf('%08d', i + 1) \
                     || '\"}}' ELSE '{{}}' END, $4, $4 FROM seq",
                    postcode("char")
                );
                sqlx::query(&sql)
                    .bind(account.0)
                    .bind(from)
                    .bind(to)
                    .bind(Utc::now())
                    .execute(pool)
                    .await?;
            }
            (None, Some(pool)) => {
                let sql = format!(
                    "{columns} SELECT $1, {first}, {last}, '+4474' || lpad(i::text, 8, '0'), '', \
                     {email}, i || ' High St, Town ' || {}, \
                     CASE WHEN i % 1000 = 0 THEN jsonb_build_object('old', \
                     '+4474' || lpad((i + 1)::text, 8, '0')) ELSE '{{}}'::jsonb END, \
                     $4, $4 FROM generate_series($2::bigint, $3::bigint) AS g(i)",
                    postcode("chr")
                );
                sqlx::query(&sql)
                    .bind(account.0)
                    .bind(from)
                    .bind(to)
                    .bind(Utc::now())
                    .execute(pool)
                    .await?;
            }
            (None, None) => unreachable!("a store has one of the two pools"),
        }
        from = to + 1;
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number, not {v:?}")),
        Err(_) => Ok(default),
    }
}

/// A small deterministic generator, so every run asks for the same contacts.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}
