//! Latency of contact search over many contacts, on SQLite or PostgreSQL.
//!
//! `cargo bench -p crm --bench contact_search` makes a fresh database (a SQLite file in a
//! temporary directory, or with `SEARCH_BENCH_BACKEND=postgres` a fresh database on the test
//! server), fills one account with `SEARCH_BENCH_CONTACTS` contacts (default 1,000,000) and a
//! second account with a tenth as many, in SQL inside the database (so the migration's
//! triggers and indexes are kept as an import would keep them), then runs
//! `SEARCH_BENCH_LOOKUPS` searches of each kind (default 1,000) one after another through
//! `ContactQuery::parse` and `Store::search_contacts`, the code path of `GET /api/contacts`
//! less HTTP. Reports p50/p95/p99/max per kind and the plan of one search of each kind.
//!
//! The data: contact i has the number +4474 and i in eight digits, a last name of four
//! syllables from the last four digits of i (10,000 names, 100 people each per million), a
//! first name of three syllables from the next three digits, the email `p{i}@example.org`
//! and an address ending in a postcode of 90 × 9 values. The run exits non-zero only when
//! the run itself fails; a missed target is reported.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use crm::model::AccountId;
use crm::search::{ContactQuery, Field, Sort};
use crm::store::SearchScope;
use crm::testing::{TestBackend, TestDb};
use crm::Store;
use phonenumber::country;

/// The target for a number or name lookup's 99th percentile.
const P99_TARGET: Duration = Duration::from_millis(50);
/// Makes the search text for contact i.
type TextOf = fn(i64) -> String;
const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "we", "zu"];

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let contacts: i64 = env_or("SEARCH_BENCH_CONTACTS", 1_000_000)?;
    let lookups: usize = env_or("SEARCH_BENCH_LOOKUPS", 1_000)?;
    let backend = match std::env::var("SEARCH_BENCH_BACKEND").as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        _ => TestBackend::Sqlite,
    };
    let db = TestDb::new(backend)
        .await
        .context("no database for the backend (is PostgreSQL running?)")?;
    let store = &db.store;
    let now = Utc::now();
    let big = store.create_account("big", 1, now).await?;
    let small = store.create_account("small", 1, now).await?;
    store.create_list(big.id, "all", "GB", now).await?;

    let started = Instant::now();
    fill(store, big.id, contacts).await?;
    fill(store, small.id, contacts / 10).await?;
    if let Some(pool) = store.postgres_pool() {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    println!(
        "{backend:?}: {contacts} contacts (+{} in a second account) written in {:.1} s",
        contacts / 10,
        started.elapsed().as_secs_f64()
    );

    let regions = store.search_regions(big.id).await?;
    let mut rng = Lcg(0x5eed);
    let kinds: [(&str, TextOf); 6] = [
        ("number, national format", |i| format!("074 {:08}", i)),
        ("number, international", |i| format!("+44 74{:08}", i)),
        ("full last name (≈{per} matches)", last_name),
        ("first and last name", |i| {
            format!("{} {}", first_name(i), last_name(i))
        }),
        ("last name prefix, 4 letters", |i| {
            last_name(i)[..4].to_owned()
        }),
        ("email", |i| format!("p{i}@example.org")),
    ];
    let per = (contacts / 10_000).max(1);
    let mut failed_target = false;
    for (label, text_of) in kinds.iter() {
        let label = label.replace("{per}", &per.to_string());
        let sample = text_of(contacts / 2);
        let q = query(&sample, &regions)?;
        let plan = store
            .explain_search(big.id, SearchScope::Account, &q)
            .await?;
        let mut times = Vec::with_capacity(lookups);
        let mut found = 0usize;
        for _ in 0..lookups {
            let i = 1 + (rng.next() % contacts.max(1) as u64) as i64;
            let text = text_of(i);
            let t = Instant::now();
            let q = query(&text, &regions)?;
            let page = store
                .search_contacts(big.id, SearchScope::Account, &q)
                .await?;
            times.push(t.elapsed());
            found += usize::from(!page.contacts.is_empty());
        }
        times.sort();
        let p99 = pct(&times, 99.0);
        let is_lookup = !label.contains("prefix");
        failed_target |= is_lookup && p99 > P99_TARGET;
        println!(
            "{label:<34} p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  \
             ({lookups} searches, {found} found something)",
            ms(pct(&times, 50.0)),
            ms(pct(&times, 95.0)),
            ms(p99),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
        );
        println!("    plan: {}", plan.join(" | "));
    }
    if failed_target {
        println!(
            "a lookup missed the p99 target of {} ms",
            P99_TARGET.as_millis()
        );
    }
    db.finish().await;
    Ok(())
}

/// Writes `n` contacts into the account in SQL inside the database.
async fn fill(store: &Store, account: AccountId, n: i64) -> Result<()> {
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
    // Batches keep each transaction, and SQLite's FTS work per commit, bounded.
    let batch = 100_000;
    let mut from = 1;
    while from <= n {
        let to = (from + batch - 1).min(n);
        match (store.sqlite_pool(), store.postgres_pool()) {
            (Some(pool), _) => {
                let sql = format!(
                    "WITH RECURSIVE seq(i) AS (SELECT $2 UNION ALL SELECT i + 1 FROM seq \
                     WHERE i < $3) {columns} SELECT $1, {first}, {last}, \
                     '+4474' || printf('%08d', i), '', 'p' || i || '@example.org', \
                     i || ' High St, Town AB' || (i % 90) || ' ' || (i % 9) || 'CD', '{{}}', \
                     $4, $4 FROM seq"
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
                     'p' || i || '@example.org', \
                     i || ' High St, Town AB' || (i % 90) || ' ' || (i % 9) || 'CD', '{{}}', \
                     $4, $4 FROM generate_series($2::bigint, $3::bigint) AS g(i)"
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

fn query(text: &str, regions: &[country::Id]) -> Result<ContactQuery> {
    Ok(ContactQuery::parse(
        text,
        Field::Any,
        regions,
        Sort::Name,
        None,
        None,
    )?)
}

fn word(mut n: i64, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(SYLLABLES[(n % 10) as usize]);
        n /= 10;
    }
    let mut chars = w.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => w,
    }
}

fn last_name(i: i64) -> String {
    word(i, 4)
}

fn first_name(i: i64) -> String {
    word(i / 10_000, 3)
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
