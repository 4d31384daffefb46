//! The values a script's merge fields take for one call.

use std::collections::BTreeMap;

use serde_json::Value;

use super::MAX_VALUE;
use crate::fields::{FieldDef, FieldKind, FieldValues};
use crate::model::{Campaign, ContactFields};

/// The values of one call's merge fields, by name, each already cleaned
/// to one line of plain text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merge {
    values: BTreeMap<String, String>,
}

impl Merge {
    /// Returns an empty set: every field shows as missing.
    pub fn new() -> Self {
        Merge::default()
    }

    /// Adds the contact's own fields and its values in the account's
    /// fields (`values`, by key): pass only the values the reader may see.
    pub fn contact(mut self, contact: &ContactFields, values: &FieldValues) -> Self {
        self.set("first_name", &contact.first_name);
        self.set("last_name", &contact.last_name);
        self.set("phone", &contact.phone_e164);
        self.set("email", contact.email.as_deref().unwrap_or_default());
        for (key, value) in values {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "Yes" } else { "No" }.to_owned(),
                _ => continue,
            };
            self.set(&format!("field.{key}"), &text);
        }
        self
    }

    /// Adds a made-up contact for a preview without one: a name, a number,
    /// an email and a plausible value in each of `fields`.
    pub fn sample_contact(mut self, fields: &[FieldDef]) -> Self {
        self.set("first_name", "Alex");
        self.set("last_name", "Sample");
        self.set("phone", "+447700900123");
        self.set("email", "alex.sample@example.com");
        for f in fields {
            let value = match f.kind {
                FieldKind::Text => f.label.clone(),
                FieldKind::Number => "42".to_owned(),
                FieldKind::Date => "2026-03-31".to_owned(),
                FieldKind::Choice => f.choices.first().cloned().unwrap_or_default(),
                FieldKind::YesNo => "Yes".to_owned(),
            };
            self.set(&format!("field.{}", f.key), &value);
        }
        self
    }

    /// Adds the campaign's name and caller ID.
    pub fn campaign(mut self, campaign: &Campaign) -> Self {
        self.set("campaign", &campaign.name);
        self.set("caller_id", &campaign.caller_id);
        self
    }

    /// Adds the agent's name.
    pub fn agent(mut self, name: &str) -> Self {
        self.set("agent", name);
        self
    }

    /// Returns a field's value; `None` when the call has none.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn set(&mut self, name: &str, raw: &str) {
        let text = clean(raw, MAX_VALUE);
        if text.is_empty() {
            self.values.remove(name);
        } else {
            self.values.insert(name.to_owned(), text);
        }
    }
}

/// Returns a value as one line of at most `max` characters (and `…`):
/// control characters become spaces and the invisible characters that
/// reorder or hide text (bidirectional overrides, zero-width marks) go.
pub(super) fn clean(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    for c in raw.trim().chars() {
        if is_invisible(c) {
            continue;
        }
        if kept == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
        kept += 1;
    }
    out.trim_end().to_owned()
}

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}
