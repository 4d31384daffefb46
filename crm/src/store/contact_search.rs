//! Finding contacts: one indexed query per kind of search, scoped by
//! account and, for agents, by the campaigns they are assigned to.
//!
//! Names and emails are matched as prefixes with a range over
//! `lower(column)`, which the expression indexes of migration 0012 answer
//! on both engines; a number is matched exactly in E.164; a postal code
//! goes through the address's full-text index (FTS5 on SQLite, a GIN
//! `tsvector` on PostgreSQL). See docs/decisions/0006-contact-search.md.

use phonenumber::country;

use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Backend, Store};
use crate::model::{AccountId, Contact, UserId};
use crate::search::{ContactQuery, Criterion};
use crate::StoreError;

/// Whose contacts a search may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// Every contact of the account: supervisors and admins.
    Account,
    /// The leads of the campaigns this agent is assigned to.
    Agent(UserId),
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The contacts on the page, in the order asked.
    pub contacts: Vec<Contact>,
    /// Whether another page follows.
    pub has_more: bool,
}

impl Store {
    /// Returns a page of the contacts in scope that match the query.
    pub async fn search_contacts(
        &self,
        account: AccountId,
        scope: SearchScope,
        query: &ContactQuery,
    ) -> Result<SearchPage, StoreError> {
        let (sql, binds) = search_sql(self.backend(), account, scope, query);
        let mut contacts: Vec<Contact> = on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql);
            for b in &binds {
                q = match b {
                    Bind::Int(i) => q.bind(*i),
                    Bind::Text(t) => q.bind(t.clone()),
                };
            }
            q.fetch_all(pool).await?
        });
        let has_more = contacts.len() > query.per_page as usize;
        contacts.truncate(query.per_page as usize);
        Ok(SearchPage { contacts, has_more })
    }

    /// Returns the engine's plan for a search, one line per step
    /// (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL): what the
    /// tests and the benchmark check uses an index.
    pub async fn explain_search(
        &self,
        account: AccountId,
        scope: SearchScope,
        query: &ContactQuery,
    ) -> Result<Vec<String>, StoreError> {
        let (sql, binds) = search_sql(self.backend(), account, scope, query);
        let lines: Vec<String> = match &self.pool {
            super::Pool::Sqlite(pool) => {
                let sql = format!("EXPLAIN QUERY PLAN {sql}");
                let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
                for b in &binds {
                    q = match b {
                        Bind::Int(i) => q.bind(*i),
                        Bind::Text(t) => q.bind(t.clone()),
                    };
                }
                q.fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|(_, _, _, detail)| detail)
                    .collect()
            }
            super::Pool::Postgres(pool) => {
                let sql = format!("EXPLAIN {sql}");
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for b in &binds {
                    q = match b {
                        Bind::Int(i) => q.bind(*i),
                        Bind::Text(t) => q.bind(t.clone()),
                    };
                }
                q.fetch_all(pool).await?
            }
        };
        Ok(lines)
    }

    /// Returns the regions of the account's lists, in which a number
    /// typed without its country code is looked for; GB when it has none.
    pub async fn search_regions(&self, account: AccountId) -> Result<Vec<country::Id>, StoreError> {
        let names: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT DISTINCT default_region FROM lists WHERE account_id = $1 \
             ORDER BY default_region"
        )
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        let mut regions: Vec<country::Id> = names.iter().filter_map(|n| n.parse().ok()).collect();
        if regions.is_empty() {
            regions.push(country::Id::GB);
        }
        Ok(regions)
    }
}

/// A value bound to a search's placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Int(i64),
    Text(String),
}

/// Builds a search's SQL and its values, `$1` being the account.
fn search_sql(
    backend: Backend,
    account: AccountId,
    scope: SearchScope,
    query: &ContactQuery,
) -> (String, Vec<Bind>) {
    let columns = CONTACT_COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Without statistics SQLite may walk the sort's index and filter, rather
    // than look the value up; a lookup by number or email names its index.
    let hint = match (backend, &query.criterion) {
        (Backend::Sqlite, Criterion::Number(_)) => " INDEXED BY contacts_account_phone",
        (Backend::Sqlite, Criterion::Email(_)) => " INDEXED BY contacts_email",
        _ => "",
    };
    let mut sql = format!("SELECT {columns} FROM contacts c{hint} WHERE c.account_id = $1");
    let mut binds = vec![Bind::Int(account.0)];
    let next = |binds: &mut Vec<Bind>, value: Bind| {
        binds.push(value);
        format!("${}", binds.len())
    };
    // lower() folds ASCII on SQLite and every letter on PostgreSQL; the
    // value is folded alike, and compared in byte order on both.
    let fold = |column: &str| match backend {
        Backend::Sqlite => format!("lower(c.{column})"),
        Backend::Postgres => format!("(lower(c.{column}) COLLATE \"C\")"),
    };
    let fold_value = |text: &str| match backend {
        Backend::Sqlite => text.to_ascii_lowercase(),
        Backend::Postgres => text.to_lowercase(),
    };
    // The range [prefix, prefix + U+10FFFF) holds every text that starts
    // with the prefix, in byte order.
    let prefix = |binds: &mut Vec<Bind>, column: &str, text: &str| {
        let low = fold_value(text);
        let high = format!("{low}\u{10FFFF}");
        let low = next(binds, Bind::Text(low));
        let high = next(binds, Bind::Text(high));
        let e = fold(column);
        format!("({e} >= {low} AND {e} < {high})")
    };
    match &query.criterion {
        Criterion::All => {}
        Criterion::Number(numbers) => {
            let marks: Vec<String> = numbers
                .iter()
                .map(|n| next(&mut binds, Bind::Text(n.clone())))
                .collect();
            // SQLite plans `IN` of one value worse than `=`.
            match marks.as_slice() {
                [one] => sql.push_str(&format!(" AND c.phone_e164 = {one}")),
                _ => sql.push_str(&format!(" AND c.phone_e164 IN ({})", marks.join(", "))),
            }
        }
        Criterion::Email(start) => {
            let range = prefix(&mut binds, "email", start);
            sql.push_str(&format!(" AND {range}"));
        }
        Criterion::Name(words) => {
            // Without statistics SQLite drives the search from the first
            // word's indexes; the longest word is the likeliest to be rare.
            let mut words: Vec<&String> = words.iter().collect();
            words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
            for word in words {
                let first = prefix(&mut binds, "first_name", word);
                let last = prefix(&mut binds, "last_name", word);
                sql.push_str(&format!(" AND ({first} OR {last})"));
            }
        }
        Criterion::PostalCode(words) => {
            // The words are letters and digits only, so quoting them makes
            // an FTS5 phrase that no operator in the text can escape.
            match backend {
                Backend::Sqlite => {
                    let phrase = next(&mut binds, Bind::Text(format!("\"{words}\"")));
                    sql.push_str(&format!(
                        " AND c.id IN (SELECT rowid FROM contact_addresses \
                         WHERE contact_addresses MATCH {phrase})"
                    ));
                }
                Backend::Postgres => {
                    let phrase = next(&mut binds, Bind::Text(words.clone()));
                    sql.push_str(&format!(
                        " AND to_tsvector('simple', coalesce(c.postal_address, '')) \
                         @@ phraseto_tsquery('simple', {phrase})"
                    ));
                }
            }
        }
    }
    if let SearchScope::Agent(user) = scope {
        let user = next(&mut binds, Bind::Int(user.0));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM leads l JOIN campaign_agents a \
             ON a.campaign_id = l.campaign_id WHERE l.contact_id = c.id \
             AND l.account_id = $1 AND a.account_id = $1 AND a.user_id = {user})"
        ));
    }
    // One more than the page, to tell whether another follows.
    let limit = next(&mut binds, Bind::Int(i64::from(query.per_page) + 1));
    let offset = next(&mut binds, Bind::Int(query.offset()));
    sql.push_str(&format!(
        " ORDER BY {} LIMIT {limit} OFFSET {offset}",
        query.sort.order_by()
    ));
    (sql, binds)
}
