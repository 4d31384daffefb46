//! What makes two contacts likely the same person: the same email, the
//! same number (as their phone, or written in one of the other's fields),
//! or a similar name at the same postal code.
//!
//! Everything here is pure and tested beside the code;
//! [`crate::Store::duplicates_of`] and [`crate::Store::duplicate_pairs`]
//! look the candidates up through the indexes, and
//! [`crate::Store::merge_contacts`] merges two of them.

use phonenumber::country;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::import::e164;

/// Why two contacts may be the same person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// The same email address, case aside.
    SameEmail,
    /// The same number: the same E.164 phone, or one's phone written in a
    /// field of the other.
    SameNumber,
    /// The same postal code, and names within two letters of each other
    /// or the same words in another order.
    SimilarNamePostcode,
}

impl DuplicateReason {
    /// Returns the reason's name as the API and the CLI show it.
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateReason::SameEmail => "same_email",
            DuplicateReason::SameNumber => "same_number",
            DuplicateReason::SimilarNamePostcode => "similar_name_postcode",
        }
    }
}

/// The most letter changes between two names still read as one name.
pub const MAX_NAME_DISTANCE: usize = 2;

/// Returns the postal code of a free-text address, lower-cased, as the
/// words the address index holds (`sw1a 2aa`), or `None` when it shows none.
///
/// The code is the last word holding a digit, with the word before it
/// when the two read as a British postcode (`SW1A 2AA`); it must have at
/// least four letters and digits, and a number that opens an address of
/// several words is its house number, not a code.
pub fn postal_code(address: &str) -> Option<String> {
    let words: Vec<&str> = address
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let last = words
        .iter()
        .rposition(|w| w.chars().any(|c| c.is_ascii_digit()))?;
    let mut first = last;
    if last > 0 && is_inward_code(words[last]) {
        let outward = words[last - 1];
        if (2..=4).contains(&outward.len()) && outward.chars().any(|c| c.is_ascii_digit()) {
            first = last - 1;
        }
    }
    let code = &words[first..=last];
    let chars: usize = code.iter().map(|w| w.chars().count()).sum();
    if !(4..=12).contains(&chars) {
        return None;
    }
    // "10 Downing Street": a number opening the address is a house number.
    if first == 0 && words.len() - last > 2 {
        return None;
    }
    Some(code.join(" ").to_lowercase())
}

/// Returns whether two contacts' names read as one person's: the same
/// words in any order, or at most [`MAX_NAME_DISTANCE`] letters apart.
/// An empty name is like no other; a short name allows fewer changes (one
/// under six letters, none under four), or every short name would match.
pub fn similar_names(a: (&str, &str), b: (&str, &str)) -> bool {
    let a = name_words(a);
    let b = name_words(b);
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let mut sorted_a = a.clone();
    let mut sorted_b = b.clone();
    sorted_a.sort();
    sorted_b.sort();
    if sorted_a == sorted_b {
        return true;
    }
    let letters = |w: &[String]| w.iter().map(|w| w.chars().count()).sum::<usize>();
    let max = match letters(&a).min(letters(&b)) {
        0..=3 => return false,
        4 | 5 => 1,
        _ => MAX_NAME_DISTANCE,
    };
    within(&a.join(" "), &b.join(" "), max) || within(&sorted_a.join(" "), &sorted_b.join(" "), max)
}

/// Returns the first two letters, lower-cased, of each word of a name: a
/// similar name starts its first or last name with one of them, unless a
/// typo changed the start of every word.
pub fn name_starts(name: (&str, &str)) -> Vec<String> {
    let mut starts: Vec<String> = name_words(name)
        .iter()
        .map(|w| w.chars().take(2).collect())
        .collect();
    starts.sort();
    starts.dedup();
    starts.truncate(4);
    starts
}

/// Returns the texts, lower-cased, in which a field may hold this number:
/// E.164 with and without its `+`, the national and international formats
/// with and without spaces, and the number as it was entered.
pub fn number_forms(e164_number: &str, raw: &str) -> Vec<String> {
    let mut forms = vec![e164_number.to_lowercase()];
    if let Some(digits) = e164_number.strip_prefix('+') {
        forms.push(digits.to_owned());
    }
    forms.push(raw.trim().to_lowercase());
    // The parser is fed stored text that may predate validation; a panic in
    // it must not fail the request.
    let formatted = std::panic::catch_unwind(|| {
        let n = phonenumber::parse(None, e164_number).ok()?;
        Some([
            n.format().mode(phonenumber::Mode::National).to_string(),
            n.format()
                .mode(phonenumber::Mode::International)
                .to_string(),
        ])
    });
    if let Ok(Some(texts)) = formatted {
        for t in texts {
            forms.push(t.clone());
            forms.push(t.chars().filter(|c| !c.is_whitespace()).collect());
        }
    }
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

/// Returns the E.164 numbers that values written in a contact's fields
/// stand for, reading a number without its country code in `region`.
/// Only values that look like a phone number (digits and `+ ()-./`, six
/// digits or more) are read.
pub fn numbers_in<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    region: country::Id,
) -> Vec<String> {
    let mut found = Vec::new();
    for value in values {
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        let digits = text.chars().filter(char::is_ascii_digit).count();
        let dialable = text
            .chars()
            .all(|c| c.is_ascii_digit() || " +()-./".contains(c));
        if !dialable || !(6..=17).contains(&digits) {
            continue;
        }
        if let Ok(n) = e164(&text, region) {
            if !found.contains(&n) {
                found.push(n);
            }
        }
    }
    found
}

/// Returns the region of a stored E.164 number, GB when it has none.
pub fn region_of(e164_number: &str) -> country::Id {
    std::panic::catch_unwind(|| {
        phonenumber::parse(None, e164_number)
            .ok()
            .and_then(|n| n.country().id())
    })
    .ok()
    .flatten()
    .unwrap_or(country::Id::GB)
}

/// Returns whether the two texts are at most `max` single-letter edits
/// apart (Levenshtein distance), stopping early once they are not.
fn within(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        if current.iter().min().is_some_and(|m| *m > max) {
            return false;
        }
        previous = current;
    }
    previous.last().is_some_and(|d| *d <= max)
}

/// Returns a name's words, lower-cased, without punctuation between them.
fn name_words((first, last): (&str, &str)) -> Vec<String> {
    format!("{first} {last}")
        .split(|c: char| c.is_whitespace() || ",.-".contains(c))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Returns whether a word reads as the inward half of a British postcode:
/// a digit and two letters.
fn is_inward_code(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 3 && b[0].is_ascii_digit() && b[1..].iter().all(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_postal_code_is_read_from_the_end_of_the_address() {
        let code = |a: &str| postal_code(a);
        assert_eq!(
            code("12 St James's Sq, London SW1Y 4JH").as_deref(),
            Some("sw1y 4jh")
        );
        assert_eq!(code("SW1A 2AA").as_deref(), Some("sw1a 2aa"));
        assert_eq!(
            code("1600 Amphitheatre Pkwy, Mountain View, CA 94043").as_deref(),
            Some("94043")
        );
        assert_eq!(
            code("12 rue de Rivoli, 75001 Paris").as_deref(),
            Some("75001")
        );
        assert_eq!(code("75001 Paris").as_deref(), Some("75001"));
        // A house number is not a postal code.
        assert_eq!(code("10 Downing Street, London"), None);
        assert_eq!(code("1600 Amphitheatre Parkway Mountain View"), None);
        assert_eq!(code("Flat 3, 12 High St"), None);
        assert_eq!(code(""), None);
        assert_eq!(code("The Old Rectory, Little Snoring"), None);
    }

    #[test]
    fn names_are_similar_when_reordered_or_two_letters_apart() {
        assert!(similar_names(("Ada", "Lovelace"), ("Ada", "Lovelace")));
        assert!(similar_names(("Ada", "Lovelace"), ("ada", "LOVELACE")));
        assert!(similar_names(("Ada", "Lovelace"), ("Lovelace", "Ada")));
        assert!(similar_names(("Ada", "Lovelace"), ("", "Lovelace Ada")));
        assert!(similar_names(("Ada", "Lovelace"), ("Adda", "Lovelase")));
        assert!(similar_names(("Ada", "Lovelace"), ("Ada", "Lovlace")));
        assert!(similar_names(("Ada", "Lovelace"), ("Lovelce", "Ada")));
        assert!(!similar_names(("Ada", "Lovelace"), ("Ann", "Lovelock")));
        assert!(!similar_names(("Ada", "Lovelace"), ("Charles", "Babbage")));
        assert!(!similar_names(("", ""), ("", "")));
        assert!(!similar_names(("Ada", ""), ("", "")));
        // Short names allow fewer changes.
        assert!(!similar_names(("Al", "Li"), ("Bo", "Li")));
        assert!(similar_names(("Al", "Li"), ("Li", "Al")));
        assert!(similar_names(("Al", "Li"), ("Ali", "Li")));
        assert!(!similar_names(("Al", "Li"), ("Bo", "Lu")));
        assert!(
            !similar_names(("Jo", "L"), ("Jo", "M")),
            "three letters must match"
        );
    }

    #[test]
    fn a_name_starts_with_the_start_of_each_word() {
        assert_eq!(name_starts(("Ada", "Lovelace")), ["ad", "lo"]);
        assert_eq!(
            name_starts(("Mary-Ann", "de Vries")),
            ["an", "de", "ma", "vr"]
        );
        assert!(name_starts(("", " ")).is_empty());
    }

    #[test]
    fn a_number_has_the_forms_people_write_it_in() {
        let forms = number_forms("+447400100123", " 07400 100123 ");
        for want in [
            "+447400100123",
            "447400100123",
            "07400 100123",
            "07400100123",
            "+44 7400 100123",
        ] {
            assert!(forms.contains(&want.to_owned()), "{want} in {forms:?}");
        }
    }

    #[test]
    fn numbers_are_read_from_values_that_look_like_numbers() {
        let values = [
            serde_json::json!("07400 100456"),
            serde_json::json!("+1 212-555-0134"),
            serde_json::json!(447400100789_i64),
            serde_json::json!("SW1A 2AA"),
            serde_json::json!("12345"),
            serde_json::json!(true),
            serde_json::json!("call 07400 100999 after six"),
        ];
        assert_eq!(
            numbers_in(values.iter(), country::Id::GB),
            ["+447400100456", "+12125550134", "+447400100789"]
        );
        assert_eq!(region_of("+12125550134"), country::Id::US);
        assert_eq!(region_of("garbage"), country::Id::GB);
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_bounded_by_the_edits_made(
            base in "[a-z]{4,12}",
            at in 0usize..12,
            letter in "[a-z]",
        ) {
            let at = at.min(base.len());
            let mut edited = base.clone();
            edited.insert_str(at, &letter);
            prop_assert!(within(&base, &edited, 1));
            prop_assert!(within(&edited, &base, 1));
            prop_assert_eq!(within(&base, &edited, 0), base == edited);
            prop_assert!(similar_names((&base, "Smith"), ("Smith", &base)));
        }

        #[test]
        fn postal_codes_never_panic(address in "\\PC{0,80}") {
            let _ = postal_code(&address);
            let _ = similar_names((&address, ""), ("", &address));
        }
    }
}
