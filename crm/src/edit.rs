//! A contact created or changed by hand: the fields given, checked and
//! normalised the same way whether they come from the API or the CLI.
//!
//! [`ContactChange::apply`] is pure: it turns the current fields and a
//! change into the new fields and the names of those that changed, which
//! is what the audit log records (names, never values).
//! [`crate::Store::edit_contact`] and [`crate::Store::add_contact`] write them,
//! and check the values given in the account's own fields ([`crate::fields`]),
//! whose definitions only the Store knows.

use phonenumber::country;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::import::e164;
use crate::model::{ContactFields, ListId};
use crate::StoreError;

/// The longest name, profession or time zone accepted.
pub(crate) const MAX_SHORT: usize = 200;
/// The longest postal address accepted.
pub(crate) const MAX_ADDRESS: usize = 1000;
/// The longest email address (RFC 5321's path limit).
pub(crate) const MAX_EMAIL: usize = 254;

/// A contact to create. The number may be in any format; one without its
/// country code is read in `region`, or the list's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Family name.
    #[serde(default)]
    pub last_name: String,
    /// The phone number as typed.
    #[serde(alias = "phone_e164")]
    pub phone: String,
    /// The region for a number without its country code, such as GB.
    pub region: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Postal address, one free-text field.
    pub postal_address: Option<String>,
    /// Profession or job title.
    pub profession: Option<String>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Other fields, a JSON object.
    pub custom_fields: Option<Value>,
    /// Values in the fields the account defined, by key.
    pub fields: Option<Map<String, Value>>,
    /// A list of the account to put the contact on.
    pub list_id: Option<ListId>,
}

/// The fields an edit changes; a field left out keeps its value, and a
/// nullable field given as `null` is cleared.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ContactChange {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// The phone number as typed.
    #[serde(alias = "phone_e164")]
    pub phone: Option<String>,
    /// The region for a number without its country code; by default the
    /// current number's.
    pub region: Option<String>,
    /// Email address.
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    /// Postal address.
    #[serde(default, deserialize_with = "nullable")]
    pub postal_address: Option<Option<String>>,
    /// Profession or job title.
    #[serde(default, deserialize_with = "nullable")]
    pub profession: Option<Option<String>>,
    /// IANA time zone.
    #[serde(default, deserialize_with = "nullable")]
    pub time_zone: Option<Option<String>>,
    /// Other fields, a JSON object that replaces the current one.
    pub custom_fields: Option<Value>,
    /// Values in the fields the account defined, by key: those named are
    /// set (`null` or `""` clears one), the others kept.
    pub fields: Option<Map<String, Value>>,
}

impl NewContact {
    /// Returns the contact's checked fields; `list_region` is the region
    /// of the list it goes on, used when the body names none.
    pub fn fields(&self, list_region: Option<&str>) -> Result<ContactFields, StoreError> {
        let region = region(self.region.as_deref().or(list_region), &self.phone)?;
        let custom_fields = self
            .custom_fields
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        if !custom_fields.is_object() {
            return Err(invalid("custom_fields must be a JSON object"));
        }
        Ok(ContactFields {
            first_name: text("first_name", &self.first_name, MAX_SHORT)?,
            last_name: text("last_name", &self.last_name, MAX_SHORT)?,
            phone_e164: number(&self.phone, region)?,
            phone_raw: text("phone", &self.phone, 64)?,
            email: email(self.email.as_deref())?,
            postal_address: optional(
                "postal_address",
                self.postal_address.as_deref(),
                MAX_ADDRESS,
            )?,
            profession: optional("profession", self.profession.as_deref(), MAX_SHORT)?,
            time_zone: time_zone(self.time_zone.as_deref())?,
            custom_fields,
        })
    }
}

impl ContactChange {
    /// Returns the fields after the change and the names of those whose
    /// value differs, in a fixed order; a bad value is
    /// [`StoreError::Invalid`] naming the field.
    pub fn apply(
        &self,
        current: &ContactFields,
    ) -> Result<(ContactFields, Vec<&'static str>), StoreError> {
        let mut next = current.clone();
        if let Some(v) = &self.first_name {
            next.first_name = text("first_name", v, MAX_SHORT)?;
        }
        if let Some(v) = &self.last_name {
            next.last_name = text("last_name", v, MAX_SHORT)?;
        }
        if let Some(typed) = &self.phone {
            let fallback = region_of(&current.phone_e164);
            let region = match self.region.as_deref() {
                Some(r) => region(Some(r), typed)?,
                None => match fallback {
                    Some(r) => r,
                    None => region(None, typed)?,
                },
            };
            next.phone_e164 = number(typed, region)?;
            next.phone_raw = text("phone", typed, 64)?;
        } else if self.region.is_some() {
            return Err(invalid("region only reads a phone given with it"));
        }
        if let Some(v) = &self.email {
            next.email = email(v.as_deref())?;
        }
        if let Some(v) = &self.postal_address {
            next.postal_address = optional("postal_address", v.as_deref(), MAX_ADDRESS)?;
        }
        if let Some(v) = &self.profession {
            next.profession = optional("profession", v.as_deref(), MAX_SHORT)?;
        }
        if let Some(v) = &self.time_zone {
            next.time_zone = time_zone(v.as_deref())?;
        }
        if let Some(v) = &self.custom_fields {
            if !v.is_object() {
                return Err(invalid("custom_fields must be a JSON object"));
            }
            next.custom_fields = v.clone();
        }
        let changed = changed_fields(current, &next);
        Ok((next, changed))
    }

    /// Returns whether the change names no field at all.
    pub fn is_empty(&self) -> bool {
        *self == ContactChange::default()
    }
}

/// Returns the names of the fields that differ, in the model's order.
pub fn changed_fields(before: &ContactFields, after: &ContactFields) -> Vec<&'static str> {
    let mut names = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            names.push(name);
        }
    };
    check("first_name", before.first_name != after.first_name);
    check("last_name", before.last_name != after.last_name);
    check("phone_e164", before.phone_e164 != after.phone_e164);
    check("phone_raw", before.phone_raw != after.phone_raw);
    check("email", before.email != after.email);
    check(
        "postal_address",
        before.postal_address != after.postal_address,
    );
    check("profession", before.profession != after.profession);
    check("time_zone", before.time_zone != after.time_zone);
    check("custom_fields", before.custom_fields != after.custom_fields);
    names
}

/// Reads `Some(null)` as `Some(None)`, so a field sent as null is cleared
/// while a field left out is kept.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn region(given: Option<&str>, typed: &str) -> Result<country::Id, StoreError> {
    match given {
        Some(r) => r.trim().to_ascii_uppercase().parse().map_err(|_| {
            invalid(&format!(
                "unknown region {r:?}: expected a two-letter country code such as GB"
            ))
        }),
        // An international number reads the same in any region.
        None if typed.trim_start().starts_with('+') => Ok(country::Id::GB),
        None => Err(invalid(
            "the number has no country code: write it with one (such as +44), \
             or give a region or a list",
        )),
    }
}

/// Returns the region of a stored E.164 number, for reading a new number
/// typed without its country code.
fn region_of(e164_number: &str) -> Option<country::Id> {
    // The parser is fed stored text that may predate validation; a panic in
    // it must not fail the request.
    std::panic::catch_unwind(|| {
        phonenumber::parse(None, e164_number)
            .ok()
            .and_then(|n| n.country().id())
    })
    .ok()
    .flatten()
}

fn number(typed: &str, region: country::Id) -> Result<String, StoreError> {
    e164(typed.trim(), region).map_err(|why| invalid(&format!("phone: {why}")))
}

fn text(name: &str, value: &str, max: usize) -> Result<String, StoreError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(invalid(&format!("{name} is longer than {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(&format!("{name} holds control characters")));
    }
    Ok(value.to_owned())
}

fn optional(name: &str, value: Option<&str>, max: usize) -> Result<Option<String>, StoreError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = text(name, v, max)?;
            Ok((!v.is_empty()).then_some(v))
        }
    }
}

fn email(value: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(v) = optional("email", value, MAX_EMAIL)? else {
        return Ok(None);
    };
    let well_formed = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !v.contains(char::is_whitespace)
        }
        None => false,
    };
    if !well_formed {
        return Err(invalid("email is not an address such as name@example.org"));
    }
    Ok(Some(v))
}

fn time_zone(value: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(v) = optional("time_zone", value, MAX_SHORT)? else {
        return Ok(None);
    };
    v.parse::<chrono_tz::Tz>()
        .map_err(|_| invalid("time_zone must be an IANA zone such as Europe/London"))?;
    Ok(Some(v))
}

fn invalid(message: &str) -> StoreError {
    StoreError::Invalid(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> ContactFields {
        ContactFields {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            phone_e164: "+447400100123".into(),
            phone_raw: "07400 100123".into(),
            email: Some("ada@example.org".into()),
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        }
    }

    fn change(body: Value) -> Result<ContactChange, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn only_fields_whose_value_differs_are_named() {
        let c = change(serde_json::json!({
            "first_name": " Ada ", "last_name": "King", "email": null
        }))
        .expect("a valid body");
        let (next, names) = c.apply(&current()).expect("applies");
        assert_eq!(names, ["last_name", "email"]);
        assert_eq!(next.last_name, "King");
        assert_eq!(next.email, None);
        assert_eq!(next.first_name, "Ada");
    }

    #[test]
    fn a_national_number_is_read_in_the_current_numbers_region() {
        let c = change(serde_json::json!({ "phone": "07400 100456" })).expect("valid");
        let (next, names) = c.apply(&current()).expect("applies");
        assert_eq!(next.phone_e164, "+447400100456");
        assert_eq!(names, ["phone_e164", "phone_raw"]);
        let c =
            change(serde_json::json!({ "phone": "212 555 0134", "region": "us" })).expect("valid");
        assert_eq!(
            c.apply(&current()).expect("applies").0.phone_e164,
            "+12125550134"
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let refused = |body: Value| match change(body) {
            Ok(c) => match c.apply(&current()) {
                Err(StoreError::Invalid(m)) => m,
                other => panic!("expected a refusal, got {other:?}"),
            },
            Err(e) => e.to_string(),
        };
        assert!(refused(serde_json::json!({ "phone": "12" })).contains("phone"));
        assert!(refused(serde_json::json!({ "email": "nobody" })).contains("email"));
        assert!(refused(serde_json::json!({ "time_zone": "Mars/Base" })).contains("time_zone"));
        assert!(refused(serde_json::json!({ "custom_fields": [1] })).contains("custom_fields"));
        assert!(refused(serde_json::json!({ "last_name": "x".repeat(201) })).contains("last_name"));
        assert!(refused(serde_json::json!({ "region": "GB" })).contains("region"));
        assert!(refused(serde_json::json!({ "shoe_size": 9 })).contains("unknown field"));
        assert!(refused(serde_json::json!({ "first_name": 3 })).contains("invalid type"));
    }

    #[test]
    fn a_new_contact_needs_a_country_code_a_region_or_a_list() {
        let mut new = NewContact {
            phone: "07400 100999".into(),
            ..NewContact::default()
        };
        assert!(matches!(new.fields(None), Err(StoreError::Invalid(_))));
        assert_eq!(
            new.fields(Some("GB")).expect("valid").phone_e164,
            "+447400100999"
        );
        new.phone = "+1 212-555-0134".into();
        let fields = new.fields(None).expect("valid");
        assert_eq!(fields.phone_e164, "+12125550134");
        assert_eq!(fields.custom_fields, serde_json::json!({}));
    }
}
