//! Likely duplicates: for one contact, or a page of the account's pairs.
//!
//! Each reason is one indexed lookup with a bound, so the cost of a
//! contact's candidates does not grow with the account:
//!
//! - `same_email`: `contacts_email` (account, lower-cased email);
//! - `same_number`: `contacts_account_phone` for the contact's number and
//!   the numbers written in its fields, and `contact_field_values_search`
//!   (field, lower-cased value) for the other contacts that hold its number,
//!   in its usual written forms, in a text or number field;
//! - `similar_name_postcode`: the address index (FTS5 on SQLite, GIN on
//!   PostgreSQL) for the contacts at its postal code whose first or last
//!   name starts as one of its name's words does, whose names are then
//!   compared here ([`crate::duplicates::similar_names`]).
//!
//! Each lookup returns at most [`PER_REASON`] contacts ([`AT_POSTCODE`] at a
//! postal code, where the cost follows how many share the code). The
//! account's pairs are read by walking its contacts by id from a cursor
//! (`contacts_account_id`), at most [`MAX_SCAN`] a page, so a page costs the
//! same on an account of a thousand contacts or of millions
//! (`crm/benches/contact_duplicates.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Backend, Store};
use crate::duplicates::{
    name_starts, number_forms, numbers_in, postal_code, region_of, similar_names, DuplicateReason,
};
use crate::fields::FieldKind;
use crate::model::{AccountId, Contact, ContactId};
use crate::StoreError;

/// The most contacts one lookup of a reason returns.
pub const PER_REASON: i64 = 50;
/// The most contacts at one postal code whose names are compared.
pub const AT_POSTCODE: i64 = 200;
/// The most contacts one page of pairs walks.
pub const MAX_SCAN: u32 = 500;
/// The contacts a page of pairs walks unless asked otherwise.
pub const DEFAULT_SCAN: u32 = 100;

/// A contact that may be the same person as the one asked about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Duplicate {
    /// The candidate.
    pub contact: Contact,
    /// Why, in a fixed order.
    pub reasons: Vec<DuplicateReason>,
}

/// Two contacts of the account that may be the same person.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DuplicatePair {
    /// The one with the lower id.
    pub a: Contact,
    /// The other.
    pub b: Contact,
    /// Why, in a fixed order.
    pub reasons: Vec<DuplicateReason>,
}

/// One page of the account's likely duplicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DuplicatePage {
    /// The pairs found among the contacts walked; each pair is listed once
    /// over all pages.
    pub pairs: Vec<DuplicatePair>,
    /// How many contacts the page walked.
    pub scanned: u32,
    /// The cursor of the next page, `None` after the last contact. A page
    /// may hold no pair and still have a next one.
    pub next_after: Option<ContactId>,
}

/// Candidates by contact id, with their reasons.
type Found = BTreeMap<i64, BTreeSet<DuplicateReason>>;

impl Store {
    /// Returns the contacts of the account that may be the same person as
    /// this one, by id, each with its reasons. A contact merged into
    /// another has none; a contact of another account is
    /// [`StoreError::NotFound`].
    pub async fn duplicates_of(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<Duplicate>, StoreError> {
        let c = self.contact(account, contact).await?;
        if self.merged_into(account, contact).await?.is_some() {
            return Ok(Vec::new());
        }
        let lookup = self.lookup(account).await?;
        let found = self.candidates(account, &c, &lookup).await?;
        let mut contacts = self
            .contacts_by_ids(account, &found.keys().copied().collect::<Vec<_>>())
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, reasons)| {
                Some(Duplicate {
                    contact: contacts.remove(&id)?,
                    reasons: reasons.into_iter().collect(),
                })
            })
            .collect())
    }

    /// Returns the likely duplicates among the next `scan` contacts of the
    /// account after `after` (by id), each pair once over all pages: a pair
    /// is listed on the page of the contact whose lookups find it first.
    pub async fn duplicate_pairs(
        &self,
        account: AccountId,
        after: Option<ContactId>,
        scan: u32,
    ) -> Result<DuplicatePage, StoreError> {
        if !(1..=MAX_SCAN).contains(&scan) {
            return Err(StoreError::Invalid(format!(
                "a page walks 1 to {MAX_SCAN} contacts"
            )));
        }
        let hint = match self.backend() {
            Backend::Sqlite => " INDEXED BY contacts_account_id",
            Backend::Postgres => "",
        };
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts{hint} WHERE account_id = $1 AND id > $2 \
             AND merged_into IS NULL ORDER BY id LIMIT $3"
        );
        let mut window: Vec<Contact> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(after.map_or(0, |a| a.0))
            .bind(i64::from(scan))
            .fetch_all(pool)
            .await?);
        self.fill_values(account, &mut window).await?;
        let lookup = self.lookup(account).await?;
        let mut pairs: Vec<(i64, i64, BTreeSet<DuplicateReason>)> = Vec::new();
        for c in &window {
            for (other, reasons) in self.candidates(account, c, &lookup).await? {
                if other > c.id.0 {
                    pairs.push((c.id.0, other, reasons));
                    continue;
                }
                // The other came first, and listed the pair if its own
                // lookups found this contact. An email and a name at a
                // postcode find each other both ways, as the same phone
                // does; a number written in a field may be in one only.
                if reasons.contains(&DuplicateReason::SameEmail)
                    || reasons.contains(&DuplicateReason::SimilarNamePostcode)
                {
                    continue;
                }
                let them = self.contact(account, ContactId(other)).await?;
                if them.fields.phone_e164 == c.fields.phone_e164 {
                    continue;
                }
                if !self
                    .number_candidates(account, &them, &lookup)
                    .await?
                    .contains(&c.id.0)
                {
                    pairs.push((other, c.id.0, reasons));
                }
            }
        }
        let ids: BTreeSet<i64> = pairs.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        let contacts = self
            .contacts_by_ids(account, &ids.into_iter().collect::<Vec<_>>())
            .await?;
        let scanned = window.len() as u32;
        Ok(DuplicatePage {
            pairs: pairs
                .into_iter()
                .filter_map(|(a, b, reasons)| {
                    Some(DuplicatePair {
                        a: contacts.get(&a)?.clone(),
                        b: contacts.get(&b)?.clone(),
                        reasons: reasons.into_iter().collect(),
                    })
                })
                .collect(),
            scanned,
            next_after: (scanned == scan)
                .then(|| window.last().map(|c| c.id))
                .flatten(),
        })
    }

    /// Reads what every contact's lookups share.
    async fn lookup(&self, account: AccountId) -> Result<Lookup, StoreError> {
        let value_fields = self
            .fields(account)
            .await?
            .into_iter()
            .filter(|d| matches!(d.kind, FieldKind::Text | FieldKind::Number))
            .map(|d| d.id.0)
            .collect();
        Ok(Lookup {
            backend: self.backend(),
            value_fields,
        })
    }

    /// Returns the contacts that may be the same person as `c`, by id.
    async fn candidates(
        &self,
        account: AccountId,
        c: &Contact,
        lookup: &Lookup,
    ) -> Result<Found, StoreError> {
        let mut found = Found::new();
        let mut add = |ids: Vec<i64>, reason| {
            for id in ids {
                found.entry(id).or_default().insert(reason);
            }
        };
        let acct = Bind::Int(account.0);
        let me = Bind::Int(c.id.0);
        let limit = Bind::Int(PER_REASON);
        if let Some(email) = c.fields.email.as_deref().filter(|e| !e.trim().is_empty()) {
            let sql = format!(
                "SELECT c.id FROM contacts c{} WHERE c.account_id = $1 AND {} = $2 \
                 AND c.id <> $3 AND c.merged_into IS NULL ORDER BY c.id LIMIT $4",
                lookup.hint("contacts_email"),
                lookup.fold("c.email")
            );
            let binds = [
                acct.clone(),
                Bind::Text(lookup.folded(email.trim())),
                me.clone(),
                limit.clone(),
            ];
            add(self.ids(&sql, &binds).await?, DuplicateReason::SameEmail);
        }

        add(
            self.number_candidates(account, c, lookup).await?,
            DuplicateReason::SameNumber,
        );

        // Those at its postal code whose name reads as its name. A name's
        // first two letters narrow the neighbours read, so the bound keeps
        // the likely ones: a typo seldom changes the start of every word.
        let starts = name_starts((&c.fields.first_name, &c.fields.last_name));
        let code = c.fields.postal_address.as_deref().and_then(postal_code);
        if let (Some(code), false) = (code, starts.is_empty()) {
            let (matched, phrase) = match lookup.backend {
                // The code's words are letters and digits only, so quoting
                // them makes an FTS5 phrase no operator in the text escapes.
                Backend::Sqlite => (
                    "c.id IN (SELECT rowid FROM contact_addresses \
                     WHERE contact_addresses MATCH $2)",
                    format!("\"{code}\""),
                ),
                Backend::Postgres => (
                    "to_tsvector('simple', coalesce(c.postal_address, '')) \
                     @@ phraseto_tsquery('simple', $2)",
                    code,
                ),
            };
            let mut binds = vec![acct, Bind::Text(phrase), me, Bind::Int(AT_POSTCODE)];
            // Compared, not looked up: the name indexes would read every
            // contact whose name starts so, when the postcode holds a few.
            let mut named = Vec::new();
            for start in starts {
                let len = start.chars().count();
                binds.push(Bind::Text(lookup.folded(&start)));
                let n = binds.len();
                for column in ["c.first_name", "c.last_name"] {
                    named.push(format!("substr(lower({column}), 1, {len}) = ${n}"));
                }
            }
            let sql = format!(
                "SELECT c.id, c.first_name, c.last_name FROM contacts c{} \
                 WHERE c.account_id = $1 AND {matched} AND c.id <> $3 \
                 AND c.merged_into IS NULL AND ({}) ORDER BY c.id LIMIT $4",
                lookup.by_id(),
                named.join(" OR ")
            );
            let neighbours = self.named(&sql, &binds).await?;
            let me = (c.fields.first_name.as_str(), c.fields.last_name.as_str());
            add(
                neighbours
                    .into_iter()
                    .filter(|(_, first, last)| similar_names(me, (first, last)))
                    .map(|(id, _, _)| id)
                    .collect(),
                DuplicateReason::SimilarNamePostcode,
            );
        }
        Ok(found)
    }

    /// Returns the contacts with the same number as `c`, as their phone or
    /// written in one of their fields, or whose phone `c` wrote in one of
    /// its own: the `same_number` lookups.
    async fn number_candidates(
        &self,
        account: AccountId,
        c: &Contact,
        lookup: &Lookup,
    ) -> Result<Vec<i64>, StoreError> {
        let mut found = Vec::new();
        let acct = Bind::Int(account.0);
        let me = Bind::Int(c.id.0);
        let limit = Bind::Int(PER_REASON);
        // Its number, and the numbers written in its fields, as others' phones.
        let written = c.values.values().chain(
            c.fields
                .custom_fields
                .as_object()
                .into_iter()
                .flat_map(|o| o.values()),
        );
        let mut numbers = vec![c.fields.phone_e164.clone()];
        for n in numbers_in(written, region_of(&c.fields.phone_e164)) {
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
        let sql = format!(
            "SELECT c.id FROM contacts c{} WHERE c.account_id = $1 AND c.phone_e164 IN ({}) \
             AND c.id <> $2 AND c.merged_into IS NULL ORDER BY c.id LIMIT $3",
            lookup.hint("contacts_account_phone"),
            marks(4, numbers.len())
        );
        let mut binds = vec![acct.clone(), me.clone(), limit.clone()];
        binds.extend(numbers.into_iter().map(Bind::Text));
        found.extend(self.ids(&sql, &binds).await?);

        // Others that wrote its number in one of their fields.
        if !lookup.value_fields.is_empty() {
            let forms: BTreeSet<String> = number_forms(&c.fields.phone_e164, &c.fields.phone_raw)
                .iter()
                .map(|f| lookup.folded(f))
                .collect();
            let fields = marks(4, lookup.value_fields.len());
            let values = marks(4 + lookup.value_fields.len(), forms.len());
            let sql = format!(
                "SELECT DISTINCT v.contact_id FROM contact_field_values v \
                 JOIN contacts c ON c.id = v.contact_id \
                 WHERE v.account_id = $1 AND v.field_id IN ({fields}) AND {} IN ({values}) \
                 AND v.contact_id <> $2 AND c.merged_into IS NULL ORDER BY v.contact_id LIMIT $3",
                lookup.fold("v.value")
            );
            let mut binds = vec![acct.clone(), me.clone(), limit.clone()];
            binds.extend(lookup.value_fields.iter().map(|f| Bind::Int(*f)));
            binds.extend(forms.into_iter().map(Bind::Text));
            found.extend(self.ids(&sql, &binds).await?);
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Runs a query of contact ids.
    async fn ids(&self, sql: &str, binds: &[Bind]) -> Result<Vec<i64>, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut q = sqlx::query_scalar(sql);
            for b in binds {
                q = match b {
                    Bind::Int(i) => q.bind(*i),
                    Bind::Text(t) => q.bind(t.clone()),
                };
            }
            q.fetch_all(pool).await?
        }))
    }

    /// Runs a query of contact ids with their first and last names.
    async fn named(
        &self,
        sql: &str,
        binds: &[Bind],
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut q = sqlx::query_as(sql);
            for b in binds {
                q = match b {
                    Bind::Int(i) => q.bind(*i),
                    Bind::Text(t) => q.bind(t.clone()),
                };
            }
            q.fetch_all(pool).await?
        }))
    }

    /// Returns the account's contacts with these ids, by id.
    async fn contacts_by_ids(
        &self,
        account: AccountId,
        ids: &[i64],
    ) -> Result<BTreeMap<i64, Contact>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(500) {
            // SQLite reads them by id, not by walking an index of the account.
            let hint = match self.backend() {
                Backend::Sqlite => " NOT INDEXED",
                Backend::Postgres => "",
            };
            let sql = format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts{hint} WHERE account_id = $1 \
                 AND id IN ({})",
                marks(2, chunk.len())
            );
            let mut rows: Vec<Contact> = on_pool!(self, |pool| {
                let mut q = sqlx::query_as(&sql).bind(account.0);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            });
            self.fill_values(account, &mut rows).await?;
            out.extend(rows.into_iter().map(|c| (c.id.0, c)));
        }
        Ok(out)
    }
}

/// What every contact's lookups share: the engine's spelling, and the
/// account's fields a number may be written in.
struct Lookup {
    backend: Backend,
    value_fields: Vec<i64>,
}

impl Lookup {
    /// Returns an expression folded to lower case as the indexes of
    /// migrations 0012 and 0016 hold it.
    fn fold(&self, expr: &str) -> String {
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

    /// Names the index SQLite must use: without statistics it would rather
    /// walk the contacts in id order. PostgreSQL weighs both itself.
    fn hint(&self, index: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!(" INDEXED BY {index}"),
            Backend::Postgres => String::new(),
        }
    }

    /// Makes SQLite read contacts by the ids a subquery found, not walk them.
    fn by_id(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => " NOT INDEXED",
            Backend::Postgres => "",
        }
    }
}

/// A value bound to a lookup's placeholder.
#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

/// Returns `$first, $first+1, …` for `n` values.
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
