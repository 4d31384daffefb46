//! Fields an account defines for its contacts (text, number, date, choice
//! list, yes/no), and the values contacts hold in them.
//!
//! Everything here is pure: a definition is checked, a value given over the
//! API (JSON) or in a CSV cell (text) is read into the one canonical text the
//! Store keeps, and a stored value is written back as JSON or as a cell.
//! [`crate::Store::define_field`] and its neighbours in `store/fields.rs`
//! keep the definitions and values (docs/decisions/0010-custom-fields.md).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StoreError;

/// The most fields one account may define.
pub const MAX_FIELDS: i64 = 100;
/// The longest key accepted.
pub const MAX_KEY: usize = 40;
/// The longest label, or choice, accepted.
pub const MAX_LABEL: usize = 100;
/// The most choices a choice list may offer.
pub const MAX_CHOICES: usize = 100;
/// The longest text value accepted.
pub const MAX_TEXT: usize = 1000;
/// The most bytes a text value may take as UTF-8. Values are kept in a
/// search index, whose entries PostgreSQL caps at about 2.7 KB: a thousand
/// characters of three or four bytes each were the database's error.
pub const MAX_TEXT_BYTES: usize = 2000;

/// A contact's values in the account's fields, by key, as the API shows
/// them: text, choices and dates as strings, numbers as numbers, yes/no
/// as `true` or `false`.
pub type FieldValues = BTreeMap<String, Value>;

/// Identifies a field definition.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct FieldId(pub i64);

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text on one or more lines.
    Text,
    /// A decimal number.
    Number,
    /// A calendar day, ISO 8601 (`2026-03-31`).
    Date,
    /// One of a list of choices.
    Choice,
    /// Yes or no.
    YesNo,
}

impl FieldKind {
    /// Returns the kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Choice => "choice",
            FieldKind::YesNo => "yes_no",
        }
    }

    /// Returns a value stored for a field of this kind as the API shows it.
    pub fn to_json(self, stored: &str) -> Value {
        match self {
            FieldKind::Number => match stored.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => stored
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(stored.to_owned()), Value::Number),
            },
            FieldKind::YesNo => Value::Bool(stored == "yes"),
            FieldKind::Text | FieldKind::Date | FieldKind::Choice => {
                Value::String(stored.to_owned())
            }
        }
    }
}

impl std::str::FromStr for FieldKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(FieldKind::Text),
            "number" => Ok(FieldKind::Number),
            "date" => Ok(FieldKind::Date),
            "choice" => Ok(FieldKind::Choice),
            "yes_no" => Ok(FieldKind::YesNo),
            other => Err(format!(
                "unknown field kind {other:?}: expected text, number, date, choice or yes_no"
            )),
        }
    }
}

/// A field the account defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FieldDef {
    /// The definition's id; the API names a field by its key.
    #[serde(skip)]
    pub id: FieldId,
    /// The slug that names the field in the API, imports and exports.
    pub key: String,
    /// The name people see.
    pub label: String,
    /// What the field holds.
    pub kind: FieldKind,
    /// The allowed values of a choice list, in the order offered.
    #[sqlx(json)]
    pub choices: Vec<String>,
    /// Whether a contact created by hand must have a value, and no edit
    /// may clear it.
    pub required: bool,
    /// Whether the agent's card shows the field.
    pub on_card: bool,
    /// Whether list exports write the field.
    pub exported: bool,
    /// Where the field comes among the account's fields, lowest first.
    pub position: i64,
    /// When the field was defined.
    pub created_at: DateTime<Utc>,
}

/// A field to define.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewField {
    /// The slug: a lower-case letter, then letters, digits or `_`.
    pub key: String,
    /// The name people see; the key when left out.
    pub label: Option<String>,
    /// What the field holds.
    pub kind: Option<FieldKind>,
    /// The choices of a choice list.
    #[serde(default)]
    pub choices: Vec<String>,
    /// Whether a contact created by hand must have a value; no by default.
    #[serde(default)]
    pub required: bool,
    /// Whether the agent's card shows the field; yes by default.
    pub on_card: Option<bool>,
    /// Whether list exports write the field; yes by default.
    pub exported: Option<bool>,
    /// Where the field comes; after the others by default.
    pub position: Option<i64>,
}

/// A change to a field's definition; what is left out stays. The key and
/// the kind never change: a field of another kind is a new field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    /// Refused unless it is the field's own key.
    pub key: Option<String>,
    /// Refused unless it is the field's own kind.
    pub kind: Option<FieldKind>,
    /// The name people see.
    pub label: Option<String>,
    /// The choices of a choice list, replacing the current ones.
    pub choices: Option<Vec<String>>,
    /// Whether a contact created by hand must have a value.
    pub required: Option<bool>,
    /// Whether the agent's card shows the field.
    pub on_card: Option<bool>,
    /// Whether list exports write the field.
    pub exported: Option<bool>,
    /// Where the field comes.
    pub position: Option<i64>,
}

/// A value to write for a contact: `Some` sets it, `None` clears it.
pub type ValueWrite = (FieldId, Option<String>);

impl NewField {
    /// Returns the definition checked and filled with its defaults, but
    /// for its id, position and time, which the Store gives it.
    pub fn check(&self, reads_as_builtin: impl Fn(&str) -> bool) -> Result<FieldDef, StoreError> {
        let key = self.key.trim();
        check_key(key)?;
        let label = label(self.label.as_deref().unwrap_or(key))?;
        for (what, name) in [("key", key), ("label", label.as_str())] {
            if reads_as_builtin(name) {
                return Err(invalid(format!(
                    "the {what} {name:?} is what an import reads as a contact's own column; \
                     choose another"
                )));
            }
        }
        let kind = self.kind.ok_or_else(|| {
            invalid(format!(
                "field {key} needs a kind: text, number, date, choice or yes_no"
            ))
        })?;
        Ok(FieldDef {
            id: FieldId(0),
            key: key.to_owned(),
            choices: choices(key, kind, &self.choices)?,
            label,
            kind,
            required: self.required,
            on_card: self.on_card.unwrap_or(true),
            exported: self.exported.unwrap_or(true),
            position: self.position.unwrap_or(0),
            // A placeholder: the Store stamps the time it is defined.
            created_at: DateTime::<Utc>::MIN_UTC,
        })
    }
}

impl FieldChange {
    /// Returns the definition after the change and the names of the
    /// attributes it changed, in a fixed order.
    pub fn apply(
        &self,
        current: &FieldDef,
        reads_as_builtin: impl Fn(&str) -> bool,
    ) -> Result<(FieldDef, Vec<&'static str>), StoreError> {
        if self.key.as_deref().is_some_and(|k| k.trim() != current.key) {
            return Err(invalid(format!(
                "field {}: a key never changes; define a new field instead",
                current.key
            )));
        }
        if self.kind.is_some_and(|k| k != current.kind) {
            return Err(invalid(format!(
                "field {}: a kind never changes; remove the field and define it anew",
                current.key
            )));
        }
        let mut next = current.clone();
        if let Some(l) = &self.label {
            next.label = label(l)?;
            if reads_as_builtin(&next.label) {
                return Err(invalid(format!(
                    "the label {:?} is what an import reads as a contact's own column; \
                     choose another",
                    next.label
                )));
            }
        }
        if let Some(c) = &self.choices {
            next.choices = choices(&current.key, current.kind, c)?;
        }
        if let Some(v) = self.required {
            next.required = v;
        }
        if let Some(v) = self.on_card {
            next.on_card = v;
        }
        if let Some(v) = self.exported {
            next.exported = v;
        }
        if let Some(v) = self.position {
            next.position = v;
        }
        let mut changed = Vec::new();
        for (name, differs) in [
            ("label", next.label != current.label),
            ("choices", next.choices != current.choices),
            ("required", next.required != current.required),
            ("on_card", next.on_card != current.on_card),
            ("exported", next.exported != current.exported),
            ("position", next.position != current.position),
        ] {
            if differs {
                changed.push(name);
            }
        }
        Ok((next, changed))
    }

    /// Returns whether the change names nothing to change.
    pub fn is_empty(&self) -> bool {
        FieldChange {
            key: None,
            kind: None,
            ..self.clone()
        } == FieldChange::default()
    }
}

impl FieldDef {
    /// Reads a value given over the API into its stored text; `null` or an
    /// empty string is `None`, which clears it. A bad value is
    /// [`StoreError::Invalid`] naming the field, never quoting the value.
    pub fn read(&self, given: &Value) -> Result<Option<String>, StoreError> {
        match given {
            Value::Null => Ok(None),
            Value::String(s) => self.read_text(s),
            Value::Bool(b) if self.kind == FieldKind::YesNo => Ok(Some(yes_no(*b))),
            Value::Number(n) if self.kind == FieldKind::Number => self.read_text(&n.to_string()),
            _ => Err(self.bad(self.expected())),
        }
    }

    /// Reads a value written as text (a CSV cell, a search filter) into its
    /// stored text; an empty one is `None`.
    pub fn read_text(&self, given: &str) -> Result<Option<String>, StoreError> {
        let text = given.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let stored = match self.kind {
            FieldKind::Text => {
                if text.chars().count() > MAX_TEXT {
                    return Err(self.bad(format!("is longer than {MAX_TEXT} characters")));
                }
                if text.len() > MAX_TEXT_BYTES {
                    return Err(self.bad(format!("is longer than {MAX_TEXT_BYTES} bytes as UTF-8")));
                }
                if text.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(self.bad("holds control characters".into()));
                }
                text.to_owned()
            }
            FieldKind::Number => number(text).ok_or_else(|| self.bad(self.expected()))?,
            FieldKind::Date => {
                let day = (text.len() == 10)
                    .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
                    .flatten()
                    .ok_or_else(|| self.bad(self.expected()))?;
                day.format("%Y-%m-%d").to_string()
            }
            FieldKind::Choice => self
                .choices
                .iter()
                .find(|c| c.to_lowercase() == text.to_lowercase())
                .cloned()
                .ok_or_else(|| self.bad(self.expected()))?,
            FieldKind::YesNo => match text.to_ascii_lowercase().as_str() {
                "yes" | "y" | "true" | "1" => yes_no(true),
                "no" | "n" | "false" | "0" => yes_no(false),
                _ => return Err(self.bad(self.expected())),
            },
        };
        Ok(Some(stored))
    }

    /// Returns a stored value as the API shows it.
    pub fn to_json(&self, stored: &str) -> Value {
        self.kind.to_json(stored)
    }

    /// Returns what a value must look like, for error messages.
    fn expected(&self) -> String {
        match self.kind {
            FieldKind::Text => "must be text".into(),
            FieldKind::Number => "must be a number such as 12 or -3.5".into(),
            FieldKind::Date => "must be a date written as 2026-03-31".into(),
            FieldKind::Choice => format!("must be one of: {}", self.choices.join(", ")),
            FieldKind::YesNo => "must be yes or no".into(),
        }
    }

    fn bad(&self, why: String) -> StoreError {
        invalid(format!("field {} ({}) {why}", self.key, self.label))
    }
}

/// Reads the `fields` object of a new contact or an edit against the
/// account's definitions: the values to write, by field. A key no field has
/// is refused, naming it.
pub fn read_values(
    defs: &[FieldDef],
    given: &Map<String, Value>,
) -> Result<BTreeMap<FieldId, Option<String>>, StoreError> {
    let mut out = BTreeMap::new();
    for (key, value) in given {
        let def = defs.iter().find(|d| d.key == *key).ok_or_else(|| {
            invalid(format!(
                "no field {key:?} is defined in the account (see GET /api/account/fields)"
            ))
        })?;
        out.insert(def.id, def.read(value)?);
    }
    Ok(out)
}

/// Returns a contact's stored values as the API shows them, by key.
pub fn to_values<'a>(
    defs: &[FieldDef],
    stored: impl IntoIterator<Item = (FieldId, &'a str)>,
) -> FieldValues {
    let mut out = FieldValues::new();
    for (id, text) in stored {
        if let Some(def) = defs.iter().find(|d| d.id == id) {
            out.insert(def.key.clone(), def.to_json(text));
        }
    }
    out
}

/// Returns the required fields a new contact's values leave empty, as an
/// error naming them.
pub fn missing_required(
    defs: &[FieldDef],
    values: &BTreeMap<FieldId, Option<String>>,
) -> Result<(), StoreError> {
    let missing: Vec<String> = defs
        .iter()
        .filter(|d| d.required && !matches!(values.get(&d.id), Some(Some(_))))
        .map(|d| format!("{} ({})", d.key, d.label))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "required fields have no value: {}",
            missing.join(", ")
        )))
    }
}

/// Returns the name a changed field goes by in `changed` lists and the
/// audit log's details: `field.` and its key.
pub fn changed_name(key: &str) -> String {
    format!("field.{key}")
}

fn check_key(key: &str) -> Result<(), StoreError> {
    let mut chars = key.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed || key.len() > MAX_KEY {
        return Err(invalid(format!(
            "a field's key is a lower-case letter, then up to {} letters, digits or _, \
             such as renewal_date",
            MAX_KEY - 1
        )));
    }
    Ok(())
}

fn label(given: &str) -> Result<String, StoreError> {
    let label = given.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL {
        return Err(invalid(format!(
            "a field's label is 1 to {MAX_LABEL} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(invalid("a field's label holds control characters".into()));
    }
    Ok(label.to_owned())
}

fn choices(key: &str, kind: FieldKind, given: &[String]) -> Result<Vec<String>, StoreError> {
    if kind != FieldKind::Choice {
        if given.is_empty() {
            return Ok(Vec::new());
        }
        return Err(invalid(format!(
            "field {key}: only a choice field has choices"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(given.len());
    for c in given {
        let c = c.trim();
        if c.is_empty() || c.chars().count() > MAX_LABEL || c.chars().any(char::is_control) {
            return Err(invalid(format!(
                "field {key}: each choice is 1 to {MAX_LABEL} characters of text"
            )));
        }
        if !seen.insert(c.to_lowercase()) {
            return Err(invalid(format!(
                "field {key}: the choice {c:?} is given twice"
            )));
        }
        out.push(c.to_owned());
    }
    if out.is_empty() || out.len() > MAX_CHOICES {
        return Err(invalid(format!(
            "field {key}: a choice field offers 1 to {MAX_CHOICES} choices"
        )));
    }
    Ok(out)
}

/// Returns a number's canonical text: whole numbers without a point, others
/// in the shortest form that reads back the same; `None` if not a number.
fn number(text: &str) -> Option<String> {
    // Rust reads "inf" and "NaN" as numbers; a field does not.
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
    {
        return None;
    }
    let n: f64 = text.parse().ok().filter(|n: &f64| n.is_finite())?;
    if n.fract() == 0.0 && n.abs() < 1e15 {
        // Exact: |n| < 2^53, so the cast loses nothing; -0 becomes 0.
        Some(format!("{}", n as i64))
    } else {
        Some(format!("{n}"))
    }
}

fn yes_no(yes: bool) -> String {
    if yes { "yes" } else { "no" }.to_owned()
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: FieldKind, choices: &[&str]) -> FieldDef {
        NewField {
            key: "renewal".into(),
            label: Some("Renewal".into()),
            kind: Some(kind),
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            ..NewField::default()
        }
        .check(|_| false)
        .expect("a valid definition")
    }

    fn refusal(r: Result<Option<String>, StoreError>) -> String {
        match r {
            Err(StoreError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn values_are_read_into_one_canonical_text() {
        let n = def(FieldKind::Number, &[]);
        assert_eq!(n.read(&json!(12)).expect("ok"), Some("12".into()));
        assert_eq!(n.read(&json!("12.50")).expect("ok"), Some("12.5".into()));
        assert_eq!(n.read(&json!(" -3 ")).expect("ok"), Some("-3".into()));
        assert_eq!(n.read(&json!(1e3)).expect("ok"), Some("1000".into()));
        assert_eq!(n.to_json("12.5"), json!(12.5));
        assert_eq!(n.to_json("12"), json!(12));
        let d = def(FieldKind::Date, &[]);
        assert_eq!(
            d.read(&json!("2026-03-31")).expect("ok"),
            Some("2026-03-31".into())
        );
        let c = def(FieldKind::Choice, &["Gold", "Silver"]);
        assert_eq!(c.read(&json!("gold")).expect("ok"), Some("Gold".into()));
        let y = def(FieldKind::YesNo, &[]);
        assert_eq!(y.read(&json!(true)).expect("ok"), Some("yes".into()));
        assert_eq!(y.read_text("N").expect("ok"), Some("no".into()));
        assert_eq!(y.to_json("no"), json!(false));
        let t = def(FieldKind::Text, &[]);
        assert_eq!(
            t.read(&json!("  Acme Ltd ")).expect("ok"),
            Some("Acme Ltd".into())
        );
        for kind in [FieldKind::Text, FieldKind::Number, FieldKind::YesNo] {
            assert_eq!(def(kind, &[]).read(&json!(null)).expect("ok"), None);
            assert_eq!(def(kind, &[]).read(&json!("  ")).expect("ok"), None);
        }
    }

    #[test]
    fn bad_values_are_refused_naming_the_field_not_the_value() {
        let n = def(FieldKind::Number, &[]);
        for bad in [
            json!("twelve"),
            json!("inf"),
            json!("NaN"),
            json!("1e400"),
            json!(true),
        ] {
            let m = refusal(n.read(&bad));
            assert!(m.contains("renewal") && m.contains("number"), "{m}");
        }
        let d = def(FieldKind::Date, &[]);
        for bad in ["31/03/2026", "2026-02-30", "2026-3-1", "tomorrow"] {
            let m = refusal(d.read(&json!(bad)));
            assert!(m.contains("2026-03-31") && !m.contains(bad), "{m}");
        }
        let c = def(FieldKind::Choice, &["Gold", "Silver"]);
        let m = refusal(c.read(&json!("Bronze")));
        assert!(m.contains("Gold, Silver") && !m.contains("Bronze"), "{m}");
        let y = def(FieldKind::YesNo, &[]);
        assert!(refusal(y.read(&json!("maybe"))).contains("yes or no"));
        let t = def(FieldKind::Text, &[]);
        assert!(refusal(t.read(&json!(5))).contains("text"));
        assert!(refusal(t.read(&json!("x".repeat(1001)))).contains("longer"));
    }

    #[test]
    fn definitions_are_checked() {
        let new = |key: &str, kind, choices: &[&str]| NewField {
            key: key.into(),
            kind,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            ..NewField::default()
        };
        let refused = |n: NewField| match n.check(|name| name == "email") {
            Err(StoreError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(new("Plan", Some(FieldKind::Text), &[])).contains("lower-case"));
        assert!(refused(new("1plan", Some(FieldKind::Text), &[])).contains("lower-case"));
        assert!(refused(new("plan", None, &[])).contains("kind"));
        assert!(refused(new("email", Some(FieldKind::Text), &[])).contains("own column"));
        assert!(refused(new("plan", Some(FieldKind::Choice), &[])).contains("1 to 100"));
        assert!(refused(new("plan", Some(FieldKind::Text), &["a"])).contains("only a choice"));
        assert!(refused(new("plan", Some(FieldKind::Choice), &["A", "a"])).contains("twice"));
        let ok = new("plan", Some(FieldKind::Choice), &[" Gold "])
            .check(|_| false)
            .expect("valid");
        assert_eq!(
            (ok.label.as_str(), ok.choices[0].as_str()),
            ("plan", "Gold")
        );
        assert!(ok.on_card && ok.exported && !ok.required);
    }

    #[test]
    fn a_change_names_what_it_changed_and_keeps_key_and_kind() {
        let current = def(FieldKind::Choice, &["Gold"]);
        let change: FieldChange = serde_json::from_value(json!({
            "label": "Renewal", "choices": ["Gold", "Silver"], "on_card": false, "kind": "choice"
        }))
        .expect("valid");
        let (next, changed) = change.apply(&current, |_| false).expect("applies");
        assert_eq!(changed, ["choices", "on_card"]);
        assert_eq!(next.choices, ["Gold", "Silver"]);
        let kind: FieldChange = serde_json::from_value(json!({ "kind": "text" })).expect("valid");
        assert!(matches!(
            kind.apply(&current, |_| false),
            Err(StoreError::Invalid(m)) if m.contains("kind never changes")
        ));
        assert!(FieldChange::default().is_empty());
        assert!(kind.is_empty(), "naming the kind alone changes nothing");
    }

    #[test]
    fn unknown_keys_and_missing_required_fields_are_named() {
        let mut plan = def(FieldKind::Text, &[]);
        plan.required = true;
        let defs = [plan];
        let given = json!({ "shoe_size": 9 });
        assert!(matches!(
            read_values(&defs, given.as_object().expect("object")),
            Err(StoreError::Invalid(m)) if m.contains("shoe_size")
        ));
        let none = BTreeMap::new();
        assert!(matches!(
            missing_required(&defs, &none),
            Err(StoreError::Invalid(m)) if m.contains("renewal (Renewal)")
        ));
    }
}
