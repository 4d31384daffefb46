//! Two contacts merged into one: the kept contact's empty fields are filled
//! from the merged one's, never overwriting a value, and undoing the merge
//! empties again those that still hold what the merge put there.
//!
//! [`fill`] and [`unfill`] are pure; [`crate::Store::merge_contacts`] and
//! [`crate::Store::undo_merge`] move the history and write them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::ContactFields;

/// What a merge filled on the kept contact, by name only: what undoing it
/// empties again. Kept with the merge until it is undone or final.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filled {
    /// The contact's own fields filled, such as `email`.
    pub columns: Vec<String>,
    /// Keys of `custom_fields` the kept contact did not have.
    #[serde(default)]
    pub custom_absent: Vec<String>,
    /// Keys of `custom_fields` the kept contact held empty (`null` or
    /// `""`), with that empty value.
    #[serde(default)]
    pub custom_blank: BTreeMap<String, Value>,
}

impl Filled {
    /// Returns the names of the fields filled, as an edit names them
    /// (`custom_fields` for any key of it).
    pub fn names(&self) -> Vec<String> {
        let mut names = self.columns.clone();
        if !self.custom_absent.is_empty() || !self.custom_blank.is_empty() {
            names.push("custom_fields".into());
        }
        names
    }
}

/// Returns the kept contact's fields with its empty ones filled from the
/// merged contact's, and what was filled. The number is never taken: each
/// contact has its own.
pub fn fill(kept: &ContactFields, merged: &ContactFields) -> (ContactFields, Filled) {
    let mut next = kept.clone();
    let mut filled = Filled::default();
    let mut text = |name: &str, into: &mut String, from: &str| {
        if into.trim().is_empty() && !from.trim().is_empty() {
            from.clone_into(into);
            filled.columns.push(name.to_owned());
        }
    };
    text("first_name", &mut next.first_name, &merged.first_name);
    text("last_name", &mut next.last_name, &merged.last_name);
    let mut optional = |name: &str, into: &mut Option<String>, from: &Option<String>| {
        if is_blank(into.as_deref()) && !is_blank(from.as_deref()) {
            into.clone_from(from);
            filled.columns.push(name.to_owned());
        }
    };
    optional("email", &mut next.email, &merged.email);
    optional(
        "postal_address",
        &mut next.postal_address,
        &merged.postal_address,
    );
    optional("profession", &mut next.profession, &merged.profession);
    optional("time_zone", &mut next.time_zone, &merged.time_zone);
    if let (Some(into), Some(from)) = (
        next.custom_fields.as_object_mut(),
        merged.custom_fields.as_object(),
    ) {
        for (key, value) in from {
            if is_empty_value(value) {
                continue;
            }
            match into.get(key) {
                None => filled.custom_absent.push(key.clone()),
                Some(v) if is_empty_value(v) => {
                    filled.custom_blank.insert(key.clone(), v.clone());
                }
                Some(_) => continue,
            }
            into.insert(key.clone(), value.clone());
        }
    }
    (next, filled)
}

/// Returns the kept contact's fields with what a merge filled emptied
/// again, where the field still holds the merged contact's value (a value
/// someone set since is kept), and the names of the fields emptied.
pub fn unfill(
    current: &ContactFields,
    merged: &ContactFields,
    filled: &Filled,
) -> (ContactFields, Vec<String>) {
    let mut next = current.clone();
    let mut cleared = Vec::new();
    for name in &filled.columns {
        let emptied = match name.as_str() {
            "first_name" => clear_text(&mut next.first_name, &merged.first_name),
            "last_name" => clear_text(&mut next.last_name, &merged.last_name),
            "email" => clear_optional(&mut next.email, &merged.email),
            "postal_address" => clear_optional(&mut next.postal_address, &merged.postal_address),
            "profession" => clear_optional(&mut next.profession, &merged.profession),
            "time_zone" => clear_optional(&mut next.time_zone, &merged.time_zone),
            _ => false,
        };
        if emptied {
            cleared.push(name.clone());
        }
    }
    let empty = Map::new();
    let from = merged.custom_fields.as_object().unwrap_or(&empty);
    let mut custom = false;
    if let Some(into) = next.custom_fields.as_object_mut() {
        for key in &filled.custom_absent {
            if into.get(key).is_some() && into.get(key) == from.get(key) {
                into.remove(key);
                custom = true;
            }
        }
        for (key, before) in &filled.custom_blank {
            if into.get(key).is_some() && into.get(key) == from.get(key) {
                into.insert(key.clone(), before.clone());
                custom = true;
            }
        }
    }
    if custom {
        cleared.push("custom_fields".into());
    }
    (next, cleared)
}

fn clear_text(into: &mut String, merged: &str) -> bool {
    if !into.is_empty() && into == merged {
        into.clear();
        return true;
    }
    false
}

fn clear_optional(into: &mut Option<String>, merged: &Option<String>) -> bool {
    if into.is_some() && into == merged {
        *into = None;
        return true;
    }
    false
}

fn is_blank(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kept() -> ContactFields {
        ContactFields {
            first_name: "Ada".into(),
            last_name: String::new(),
            phone_e164: "+447400100123".into(),
            phone_raw: "07400 100123".into(),
            email: Some("ada@example.org".into()),
            postal_address: None,
            profession: Some(String::new()),
            custom_fields: json!({ "plan": "gold", "source": null, "note": "" }),
            ..ContactFields::default()
        }
    }

    fn merged() -> ContactFields {
        ContactFields {
            first_name: "Adah".into(),
            last_name: "Lovelace".into(),
            phone_e164: "+447400100456".into(),
            phone_raw: "07400 100456".into(),
            email: Some("ada.l@example.org".into()),
            postal_address: Some("12 St James's Sq, London SW1Y 4JH".into()),
            profession: Some("Mathematician".into()),
            time_zone: None,
            custom_fields: json!({ "plan": "silver", "source": "fair", "region": "north", "note": null }),
        }
    }

    #[test]
    fn only_empty_fields_are_filled_and_never_the_number() {
        let (next, filled) = fill(&kept(), &merged());
        assert_eq!(next.first_name, "Ada", "a value is never overwritten");
        assert_eq!(next.last_name, "Lovelace");
        assert_eq!(next.email.as_deref(), Some("ada@example.org"));
        assert_eq!(next.postal_address, merged().postal_address);
        assert_eq!(next.profession.as_deref(), Some("Mathematician"));
        assert_eq!(next.time_zone, None);
        assert_eq!(next.phone_e164, "+447400100123");
        assert_eq!(next.phone_raw, "07400 100123");
        assert_eq!(
            next.custom_fields,
            json!({ "plan": "gold", "source": "fair", "region": "north", "note": "" })
        );
        assert_eq!(
            filled.names(),
            ["last_name", "postal_address", "profession", "custom_fields"]
        );
        assert_eq!(filled.custom_absent, ["region"]);
        assert_eq!(
            filled.custom_blank,
            [("source".to_owned(), Value::Null)].into_iter().collect()
        );
    }

    #[test]
    fn unfilling_restores_what_was_there_and_keeps_later_edits() {
        let before = kept();
        let (mut after, filled) = fill(&before, &merged());
        let (restored, cleared) = unfill(&after, &merged(), &filled);
        assert_eq!(
            restored.custom_fields, before.custom_fields,
            "custom fields as they were"
        );
        assert_eq!(restored.last_name, before.last_name);
        assert_eq!(restored.postal_address, None);
        assert_eq!(
            cleared,
            ["last_name", "postal_address", "profession", "custom_fields"]
        );
        // An empty string read as empty comes back as no value.
        assert_eq!(restored.profession, None);

        // Someone corrected the address after the merge: it stays.
        after.postal_address = Some("1 New Road, York YO1 7HH".into());
        after.custom_fields["region"] = json!("south");
        let (restored, cleared) = unfill(&after, &merged(), &filled);
        assert_eq!(restored.postal_address, after.postal_address);
        assert_eq!(restored.custom_fields["region"], "south");
        assert_eq!(restored.custom_fields["source"], Value::Null);
        assert_eq!(cleared, ["last_name", "profession", "custom_fields"]);
    }

    #[test]
    fn the_record_of_what_was_filled_holds_names_not_values() {
        let (_, filled) = fill(&kept(), &merged());
        let stored = serde_json::to_string(&filled).expect("serialises");
        for value in ["Lovelace", "SW1Y", "Mathematician", "fair", "north"] {
            assert!(!stored.contains(value), "{value} in {stored}");
        }
        let back: Filled = serde_json::from_str(&stored).expect("reads back");
        assert_eq!(back, filled);
    }
}
