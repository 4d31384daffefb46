//! Finding contacts: one indexed query per kind of search, scoped by
//! account and, for agents, by the campaigns they are assigned to.
//!
//! Names and emails are matched as prefixes with a range over
//! `lower(column)`, which the expression indexes of migration 0012 answer
//! on both engines; a number is matched exactly in E.164; a postal code
//! goes through the address's full-text index (FTS5 on SQLite, a GIN
//! `tsvector` on PostgreSQL). See docs/decisions/0007-contact-search.md.
//!
//! Text typed for any field also matches the start of a value in the
//! account's text fields, and filters ask for a field's exact value, both
//! through `contact_field_values_search` (docs/decisions/0010-custom-fields.md).

use phonenumber::country;

use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Backend, Store};
use crate::fields::FieldId;
use crate::model::{AccountId, Contact, UserId};
use crate::search::{ContactQuery, Criterion, FieldFilter, Sort};
use crate::StoreError;

/// Leaves out the contacts merged into another.
const MERGED_OUT: &str = " AND c.merged_into IS NULL";

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
        let fields = self.searched_fields(account, scope, query).await?;
        let (sql, binds) = search_sql(self.backend(), account, scope, query, &fields);
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
        self.fill_values(account, &mut contacts).await?;
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
        let fields = self.searched_fields(account, scope, query).await?;
        let (sql, binds) = search_sql(self.backend(), account, scope, query, &fields);
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

    /// Returns the text fields a search's text is matched against: none
    /// when the text was meant for one of the contact's own fields; for an
    /// agent, only those the card shows.
    async fn searched_fields(
        &self,
        account: AccountId,
        scope: SearchScope,
        query: &ContactQuery,
    ) -> Result<Vec<FieldId>, StoreError> {
        if !query.matches_field_values() || query.criterion == Criterion::All {
            return Ok(Vec::new());
        }
        self.text_field_ids(account, matches!(scope, SearchScope::Agent(_)))
            .await
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

/// Builds a search's SQL and its values, `$1` being the account. With
/// `fields`, the text also matches the start of a value in those fields.
fn search_sql(
    backend: Backend,
    account: AccountId,
    scope: SearchScope,
    query: &ContactQuery,
    fields: &[FieldId],
) -> (String, Vec<Bind>) {
    let mut q = Sql {
        backend,
        binds: vec![Bind::Int(account.0)],
    };
    if let (Criterion::Name(words), Sort::Name | Sort::NameDesc) = (&query.criterion, query.sort) {
        return q.by_name(words, scope, query, fields);
    }
    // Without statistics SQLite may walk the sort's index and filter, rather
    // than look the value up; a lookup by number or email names its index.
    let hint = match (backend, &query.criterion) {
        (Backend::Sqlite, Criterion::Number(_)) => q.by_id(),
        (Backend::Sqlite, Criterion::Email(_)) => " INDEXED BY contacts_email",
        _ => "",
    };
    let mut matched = String::new();
    match &query.criterion {
        Criterion::All => {}
        Criterion::Number(numbers) => {
            let marks: Vec<String> = numbers
                .iter()
                .map(|n| q.push(Bind::Text(n.clone())))
                .collect();
            // SQLite plans `IN` of one value worse than `=`.
            let is = match marks.as_slice() {
                [one] => format!("= {one}"),
                _ => format!("IN ({})", marks.join(", ")),
            };
            // The contact's own number, or one of its other numbers (those
            // of contacts merged into it), each looked up in its index.
            let own = match backend {
                Backend::Sqlite => " INDEXED BY contacts_account_phone",
                Backend::Postgres => "",
            };
            matched.push_str(&format!(
                " AND c.id IN (SELECT p.id FROM contacts p{own} WHERE p.account_id = $1 \
                 AND p.phone_e164 {is} UNION SELECT n.contact_id FROM contact_numbers n \
                 WHERE n.account_id = $1 AND n.phone_e164 {is})"
            ));
        }
        Criterion::Email(start) => {
            let range = q.prefix("email", start);
            matched.push_str(&format!(" AND {range}"));
        }
        Criterion::Name(words) => {
            for word in longest_first(words) {
                matched.push_str(&format!(" AND {}", q.either_name(word)));
            }
        }
        Criterion::PostalCode(words) => {
            // The words are letters and digits only, so quoting them makes
            // an FTS5 phrase that no operator in the text can escape.
            match backend {
                Backend::Sqlite => {
                    let phrase = q.push(Bind::Text(format!("\"{words}\"")));
                    matched.push_str(&format!(
                        " AND c.id IN (SELECT rowid FROM contact_addresses \
                         WHERE contact_addresses MATCH {phrase})"
                    ));
                }
                Backend::Postgres => {
                    let phrase = q.push(Bind::Text(words.clone()));
                    matched.push_str(&format!(
                        " AND to_tsvector('simple', coalesce(c.postal_address, '')) \
                         @@ phraseto_tsquery('simple', {phrase})"
                    ));
                }
            }
        }
    }
    let mut sql = if fields.is_empty() || query.criterion == Criterion::All {
        // Filters alone are looked up in the values' index, not checked
        // against every contact walked in the sort's order.
        let hint = if query.criterion == Criterion::All && !query.filters.is_empty() {
            q.by_id()
        } else {
            hint
        };
        format!(
            "SELECT {} FROM contacts c{hint} WHERE c.account_id = $1{matched}",
            columns("c")
        )
    } else {
        // The contacts the criterion finds, and those whose field values
        // the text begins: each side on its own index.
        let values = q.field_values(fields, &query.text);
        format!(
            "SELECT {} FROM contacts c{} WHERE c.account_id = $1 AND c.id IN \
             (SELECT c.id FROM contacts c{hint} WHERE c.account_id = $1{matched} \
             UNION SELECT v.contact_id FROM contact_field_values v WHERE {values})",
            columns("c"),
            q.by_id()
        )
    };
    sql.push_str(&q.filters(&query.filters));
    sql.push_str(&q.scope(scope));
    let order = match query.sort {
        Sort::Name => format!("{}, {}, c.id", q.fold("last_name"), q.fold("first_name")),
        Sort::NameDesc => format!(
            "{} DESC, {} DESC, c.id DESC",
            q.fold("last_name"),
            q.fold("first_name")
        ),
        Sort::Created => "c.created_at, c.id".into(),
        Sort::CreatedDesc => "c.created_at DESC, c.id DESC".into(),
        Sort::Updated => "c.updated_at, c.id".into(),
        Sort::UpdatedDesc => "c.updated_at DESC, c.id DESC".into(),
    };
    // One more than the page, to tell whether another follows.
    let limit = q.push(Bind::Int(i64::from(query.per_page) + 1));
    let offset = q.push(Bind::Int(query.offset()));
    sql.push_str(&format!(" ORDER BY {order} LIMIT {limit} OFFSET {offset}"));
    (sql, q.binds)
}

/// A search's SQL being built: its values, and the engine's spelling.
struct Sql {
    backend: Backend,
    binds: Vec<Bind>,
}

impl Sql {
    /// Binds a value and returns its placeholder.
    fn push(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// Returns what makes SQLite read contacts by the ids a subquery
    /// found: without statistics it would rather walk an index in the
    /// sort's order and test each contact of the account. PostgreSQL
    /// weighs both itself.
    fn by_id(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => " NOT INDEXED",
            Backend::Postgres => "",
        }
    }

    /// Returns the contact's column folded to lower case and compared in
    /// byte order, as the indexes of migration 0012 hold it.
    fn fold(&self, column: &str) -> String {
        self.fold_expr(&format!("c.{column}"))
    }

    /// Returns an expression folded as the indexes hold it: lower() folds
    /// ASCII on SQLite and every letter on PostgreSQL; values are folded
    /// alike ([`Sql::folded`]).
    fn fold_expr(&self, expr: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("lower({expr})"),
            Backend::Postgres => format!("(lower({expr}) COLLATE \"C\")"),
        }
    }

    /// Returns text folded as `lower()` folds it on this engine.
    fn folded(&self, text: &str) -> String {
        match self.backend {
            Backend::Sqlite => text.to_ascii_lowercase(),
            Backend::Postgres => text.to_lowercase(),
        }
    }

    /// Returns the condition that the column starts with `text`.
    fn prefix(&mut self, column: &str, text: &str) -> String {
        self.starts(&format!("c.{column}"), text)
    }

    /// Returns the condition that an expression starts with `text`: the
    /// range [prefix, prefix + U+10FFFF) holds every such text, in byte order.
    fn starts(&mut self, expr: &str, text: &str) -> String {
        let low = self.folded(text);
        let high = format!("{low}\u{10FFFF}");
        let low = self.push(Bind::Text(low));
        let high = self.push(Bind::Text(high));
        let e = self.fold_expr(expr);
        format!("({e} >= {low} AND {e} < {high})")
    }

    /// Returns the condition on `contact_field_values v` that a value in
    /// one of the fields starts with `text`, which its index answers.
    fn field_values(&mut self, fields: &[FieldId], text: &str) -> String {
        let marks: Vec<String> = fields.iter().map(|f| self.push(Bind::Int(f.0))).collect();
        let range = self.starts("v.value", text);
        format!(
            "v.account_id = $1 AND v.field_id IN ({}) AND {range}",
            marks.join(", ")
        )
    }

    /// Returns the conditions that the contact holds each filter's value.
    fn filters(&mut self, filters: &[FieldFilter]) -> String {
        let mut sql = String::new();
        for f in filters {
            let field = self.push(Bind::Int(f.field.0));
            let value = self.push(Bind::Text(self.folded(&f.value)));
            sql.push_str(&format!(
                " AND c.id IN (SELECT v.contact_id FROM contact_field_values v \
                 WHERE v.account_id = $1 AND v.field_id = {field} AND {} = {value})",
                self.fold_expr("v.value")
            ));
        }
        sql
    }

    /// Returns the condition that the first or the last name starts with `word`.
    fn either_name(&mut self, word: &str) -> String {
        let first = self.prefix("first_name", word);
        let last = self.prefix("last_name", word);
        format!("({first} OR {last})")
    }

    /// Returns the restriction to the contacts in scope: none merged into
    /// another (it is shown through the contact it was merged into), and
    /// for an agent only the leads of their campaigns.
    fn scope(&mut self, scope: SearchScope) -> String {
        match scope {
            SearchScope::Account => MERGED_OUT.into(),
            SearchScope::Agent(user) => {
                let user = self.push(Bind::Int(user.0));
                format!(
                    "{MERGED_OUT} AND EXISTS (SELECT 1 FROM leads l JOIN campaign_agents a \
                     ON a.campaign_id = l.campaign_id WHERE l.contact_id = c.id \
                     AND l.account_id = $1 AND a.account_id = $1 AND a.user_id = {user})"
                )
            }
        }
    }

    /// A name search in name order: the contacts whose last name the
    /// longest word begins, by last then first name, then those whose
    /// first name it begins, by first then last name. Each half walks its
    /// index in order and stops after the page, so a short prefix shared by
    /// thousands reads a page's worth of rows, not all of them.
    ///
    /// With `fields`, a third part follows: the contacts whose value in one
    /// of them the whole text begins, that the name did not find.
    fn by_name(
        &mut self,
        words: &[String],
        scope: SearchScope,
        query: &ContactQuery,
        fields: &[FieldId],
    ) -> (String, Vec<Bind>) {
        let words = longest_first(words);
        let (lead, rest) = match words.split_first() {
            Some(split) => split,
            // A name criterion holds a word; without one, nothing matches.
            None => (&"", &[][..]),
        };
        let dir = if query.sort == Sort::NameDesc {
            " DESC"
        } else {
            ""
        };
        let upto = self.push(Bind::Int(query.offset() + i64::from(query.per_page) + 1));
        let (last, first) = (self.fold("last_name"), self.fold("first_name"));
        let half = |q: &mut Sql, part: u8| {
            let (by, then, index) = if part == 0 {
                (&last, &first, "contacts_last_name")
            } else {
                (&first, &last, "contacts_first_name")
            };
            let hint = match q.backend {
                Backend::Sqlite => format!(" INDEXED BY {index}"),
                Backend::Postgres => String::new(),
            };
            let column = if part == 0 { "last_name" } else { "first_name" };
            let mut sql = format!(
                "SELECT {}, {part} AS part, {by} AS k1, {then} AS k2 FROM contacts c{hint} \
                 WHERE c.account_id = $1 AND {}",
                columns("c"),
                q.prefix(column, lead)
            );
            if part == 1 {
                // Those whose last name it begins are in the first half.
                sql.push_str(&format!(" AND NOT {}", q.prefix("last_name", lead)));
            }
            for word in rest {
                sql.push_str(&format!(" AND {}", q.either_name(word)));
            }
            sql.push_str(&q.filters(&query.filters));
            sql.push_str(&q.scope(scope));
            sql.push_str(&format!(
                " ORDER BY {by}{dir}, {then}{dir}, c.id{dir} LIMIT {upto}"
            ));
            sql
        };
        let names = half(self, 0);
        let firsts = half(self, 1);
        let mut parts = format!("SELECT * FROM ({names}) a UNION ALL SELECT * FROM ({firsts}) b");
        if !fields.is_empty() {
            let values = self.field_values(fields, &query.text);
            let named: Vec<String> = words.iter().map(|w| self.either_name(w)).collect();
            let mut sql = format!(
                "SELECT {}, 2 AS part, {last} AS k1, {first} AS k2 FROM contacts c{} \
                 WHERE c.account_id = $1 AND c.id IN \
                 (SELECT v.contact_id FROM contact_field_values v WHERE {values}) \
                 AND NOT ({})",
                columns("c"),
                self.by_id(),
                named.join(" AND ")
            );
            sql.push_str(&self.filters(&query.filters));
            sql.push_str(&self.scope(scope));
            sql.push_str(&format!(
                " ORDER BY {last}{dir}, {first}{dir}, c.id{dir} LIMIT {upto}"
            ));
            parts.push_str(&format!(" UNION ALL SELECT * FROM ({sql}) f"));
        }
        let limit = self.push(Bind::Int(i64::from(query.per_page) + 1));
        let offset = self.push(Bind::Int(query.offset()));
        let sql = format!(
            "SELECT {} FROM ({parts}) r \
             ORDER BY r.part, r.k1{dir}, r.k2{dir}, r.id{dir} LIMIT {limit} OFFSET {offset}",
            columns("r")
        );
        (sql, std::mem::take(&mut self.binds))
    }
}

/// Returns the words longest first: without statistics SQLite drives a
/// search from the first condition's indexes, and the longest word is the
/// likeliest to be rare.
fn longest_first(words: &[String]) -> Vec<&str> {
    let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words
}

/// Returns the contact columns qualified by a table alias.
fn columns(alias: &str) -> String {
    CONTACT_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
