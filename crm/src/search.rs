//! What a contact search asks for: the text typed, read as a number, a
//! name, an email address or a postal code, with its sort and page, and
//! the values asked for in the account's own fields.
//!
//! Reading the text is pure and tested here; [`crate::Store::search_contacts`]
//! runs the query on the indexes migration 0012 adds
//! (docs/decisions/0007-contact-search.md).

use phonenumber::country;
use serde::{Deserialize, Serialize};

use crate::fields::{FieldDef, FieldId};
use crate::import::e164;
use crate::StoreError;

/// The longest search text accepted.
pub const MAX_QUERY_CHARS: usize = 200;
/// Contacts per page unless asked otherwise.
pub const DEFAULT_PER_PAGE: u32 = 25;
/// The most contacts one page holds.
pub const MAX_PER_PAGE: u32 = 100;
/// How deep paging goes; past it, narrow the search instead.
pub const MAX_OFFSET: u64 = 100_000;

/// The most field filters one search takes.
pub const MAX_FILTERS: usize = 10;

/// A value a contact must hold in one of the account's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFilter {
    /// The field.
    pub field: FieldId,
    /// The value, as stored.
    pub value: String,
}

/// What a search matches, once the text is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    /// Every contact in scope: browsing, sorted and paged.
    All,
    /// The E.164 numbers the text stands for, one per region tried.
    Number(Vec<String>),
    /// Words that each begin the first or the last name.
    Name(Vec<String>),
    /// The beginning of an email address, lower-cased.
    Email(String),
    /// Words found together in the postal address, such as a postal code.
    PostalCode(String),
}

impl Criterion {
    /// Returns the criterion's name as the API reports it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Criterion::All => "all",
            Criterion::Number(_) => "number",
            Criterion::Name(_) => "name",
            Criterion::Email(_) => "email",
            Criterion::PostalCode(_) => "postal_code",
        }
    }
}

/// Which field the text is meant for; `Any` lets its shape decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// A number, an email, a postal code or a name, by the text's shape.
    #[default]
    Any,
    /// A name.
    Name,
    /// A phone number, in any format.
    Number,
    /// An email address or its beginning.
    Email,
    /// A postal code or other words of the address.
    PostalCode,
}

/// The order of a page of results. A name search in name order lists the
/// contacts whose last name matches before those whose first name does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sort {
    /// By last name, then first name.
    #[default]
    #[serde(rename = "name")]
    Name,
    /// By last name, then first name, from Z.
    #[serde(rename = "-name")]
    NameDesc,
    /// Oldest first.
    #[serde(rename = "created")]
    Created,
    /// Newest first.
    #[serde(rename = "-created")]
    CreatedDesc,
    /// Least recently changed first.
    #[serde(rename = "updated")]
    Updated,
    /// Most recently changed first.
    #[serde(rename = "-updated")]
    UpdatedDesc,
}

/// One search: what to match, in what order, which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactQuery {
    /// What to match.
    pub criterion: Criterion,
    /// The text as typed, trimmed. Read by its shape (`field` left to
    /// `Any`), it also matches the start of a value in the account's text
    /// fields.
    pub text: String,
    /// Which field the text was meant for.
    pub field: Field,
    /// Values the contacts must hold in the account's fields, all of them.
    pub filters: Vec<FieldFilter>,
    /// The order of the results.
    pub sort: Sort,
    /// The page, from 1.
    pub page: u32,
    /// Contacts per page.
    pub per_page: u32,
}

impl ContactQuery {
    /// Reads a search. `regions` are tried in turn for a number written
    /// without its country code (the account's lists' regions).
    pub fn parse(
        text: &str,
        field: Field,
        regions: &[country::Id],
        sort: Sort,
        page: Option<u32>,
        per_page: Option<u32>,
    ) -> Result<Self, StoreError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 {
            return Err(invalid("page counts from 1"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(invalid(&format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        if u64::from(page - 1) * u64::from(per_page) > MAX_OFFSET {
            return Err(invalid(&format!(
                "pages stop after {MAX_OFFSET} contacts; narrow the search"
            )));
        }
        Ok(ContactQuery {
            criterion: criterion(text, field, regions)?,
            text: text.trim().to_owned(),
            field,
            filters: Vec::new(),
            sort,
            page,
            per_page,
        })
    }

    /// Adds a filter: only contacts whose value in the field is `value`
    /// (case aside for text and choices), read as the field's kind reads it.
    pub fn filter(mut self, def: &FieldDef, value: &str) -> Result<Self, StoreError> {
        let value = def.read_text(value)?.ok_or_else(|| {
            invalid(&format!(
                "the filter field.{} needs a value to match",
                def.key
            ))
        })?;
        if self.filters.len() >= MAX_FILTERS {
            return Err(invalid(&format!(
                "a search takes at most {MAX_FILTERS} field filters"
            )));
        }
        self.filters.push(FieldFilter {
            field: def.id,
            value,
        });
        Ok(self)
    }

    /// Returns whether the text is also matched against the account's
    /// text fields: when typed for any field, and not empty.
    pub fn matches_field_values(&self) -> bool {
        self.field == Field::Any && !self.text.is_empty()
    }

    /// Returns how many results come before this page.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }
}

fn criterion(text: &str, field: Field, regions: &[country::Id]) -> Result<Criterion, StoreError> {
    let text = text.trim();
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(&format!(
            "the search text is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("the search text holds control characters"));
    }
    if text.is_empty() {
        return Ok(Criterion::All);
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let dialable = text
        .chars()
        .all(|c| c.is_ascii_digit() || " +()-./".contains(c));
    match field {
        Field::Email => Ok(Criterion::Email(text.to_lowercase())),
        Field::PostalCode => postal(text),
        Field::Name => name(text),
        Field::Number => {
            let numbers = numbers(text, regions);
            if numbers.is_empty() {
                Err(invalid(
                    "not a phone number in any region of the account's lists; \
                     write it with its country code, such as +44",
                ))
            } else {
                Ok(Criterion::Number(numbers))
            }
        }
        Field::Any if text.contains('@') => Ok(Criterion::Email(text.to_lowercase())),
        Field::Any if dialable && digits > 0 => {
            let numbers = numbers(text, regions);
            if numbers.is_empty() {
                // Digits that make no number, such as 90210, are a postal code.
                postal(text)
            } else {
                Ok(Criterion::Number(numbers))
            }
        }
        Field::Any if digits > 0 && letters > 0 => postal(text),
        Field::Any => name(text),
    }
}

fn numbers(text: &str, regions: &[country::Id]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let tried: Vec<country::Id> = if text.starts_with('+') || regions.is_empty() {
        // An international number reads the same in any region.
        vec![country::Id::GB]
    } else {
        regions.to_vec()
    };
    for region in tried {
        if let Ok(n) = e164(text, region) {
            if !found.contains(&n) {
                found.push(n);
            }
        }
    }
    found
}

fn name(text: &str) -> Result<Criterion, StoreError> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .take(4)
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        return Err(invalid("a name search needs a letter"));
    }
    Ok(Criterion::Name(words))
}

fn postal(text: &str) -> Result<Criterion, StoreError> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(invalid("a postal code search needs a letter or digit"));
    }
    Ok(Criterion::PostalCode(words.join(" ").to_lowercase()))
}

fn invalid(message: &str) -> StoreError {
    StoreError::Invalid(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Criterion {
        ContactQuery::parse(text, Field::Any, &[country::Id::GB], Sort::Name, None, None)
            .expect("a valid search")
            .criterion
    }

    #[test]
    fn a_number_in_any_format_is_read_as_e164() {
        let want = Criterion::Number(vec!["+447400100123".into()]);
        assert_eq!(read("07400 100123"), want);
        assert_eq!(read("(07400) 100-123"), want);
        assert_eq!(read("+44 7400 100123"), want);
        assert_eq!(read("  +447400100123 "), want);
    }

    #[test]
    fn a_national_number_is_tried_in_each_region() {
        let q = ContactQuery::parse(
            "020 7946 0000",
            Field::Any,
            &[country::Id::GB, country::Id::FR],
            Sort::Name,
            None,
            None,
        )
        .expect("valid");
        // 020… is valid in London; in France it is not a number.
        assert_eq!(q.criterion, Criterion::Number(vec!["+442079460000".into()]));
    }

    #[test]
    fn text_is_read_by_its_shape() {
        assert_eq!(
            read("Jane.Doe@Example.org"),
            Criterion::Email("jane.doe@example.org".into())
        );
        assert_eq!(read("SW1A 2AA"), Criterion::PostalCode("sw1a 2aa".into()));
        assert_eq!(read("90210"), Criterion::PostalCode("90210".into()));
        assert_eq!(
            read("O'Brien, Mary"),
            Criterion::Name(vec!["O'Brien".into(), "Mary".into()])
        );
        assert_eq!(read("   "), Criterion::All);
    }

    #[test]
    fn a_field_named_overrides_the_shape() {
        let q = |text, field| {
            ContactQuery::parse(text, field, &[country::Id::GB], Sort::Name, None, None)
        };
        assert_eq!(
            q("Smith", Field::PostalCode).expect("valid").criterion,
            Criterion::PostalCode("smith".into())
        );
        assert!(matches!(
            q("12345", Field::Number),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn bad_searches_are_refused_with_a_reason() {
        let q = |text: &str, page, per_page| {
            ContactQuery::parse(text, Field::Any, &[], Sort::Name, page, per_page)
        };
        assert!(matches!(q("x", Some(0), None), Err(StoreError::Invalid(_))));
        assert!(matches!(q("x", None, Some(0)), Err(StoreError::Invalid(_))));
        assert!(matches!(
            q("x", None, Some(101)),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            q("x", Some(5000), Some(100)),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            q(&"a".repeat(201), None, None),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            q("a\u{0}b", None, None),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(q("x", Some(3), Some(10)).expect("valid").offset(), 20);
    }
}
