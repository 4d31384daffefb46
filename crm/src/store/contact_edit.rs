//! Contacts created and edited by hand, each change audited by the names
//! of the fields it changed and guarded by the version the editor read.

use chrono::{DateTime, Utc};

use super::Store;
use crate::edit::{changed_fields, ContactChange, NewContact};
use crate::fields::{self, changed_name, FieldDef, ValueWrite};
use crate::model::{Actor, Contact, ContactFields, ContactId};
use crate::StoreError;

/// A contact as written, with whether its number is on the account's
/// suppression list: such a number is saved and flagged, as imports do,
/// and the dialler never calls it.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The contact after the write.
    pub contact: Contact,
    /// The fields the write changed (all given ones for a new contact);
    /// a field the account defined is named `field.` and its key.
    pub changed: Vec<String>,
    /// Whether the contact's number is suppressed.
    pub suppressed: bool,
}

impl Store {
    /// Creates a contact in the actor's account, on a list if one is named,
    /// audited as `contact.create` with the names of the fields given.
    /// Values in the account's fields are checked by their kind, and every
    /// required field must have one.
    ///
    /// A number another contact of the account holds is a
    /// [`StoreError::Conflict`] naming that contact, as an import would
    /// skip it.
    pub async fn add_contact(
        &self,
        actor: &Actor,
        new: &NewContact,
        now: DateTime<Utc>,
    ) -> Result<Saved, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let list = match new.list_id {
            Some(id) => Some(self.list(account, id).await.map_err(|e| match e {
                StoreError::NotFound => StoreError::Invalid(format!("no list {id} in the account")),
                other => other,
            })?),
            None => None,
        };
        let fields = new.fields(list.as_ref().map(|l| l.default_region.as_str()))?;
        let defs = self.fields(account).await?;
        let values = fields::read_values(&defs, &new.fields.clone().unwrap_or_default())?;
        fields::missing_required(&defs, &values)?;
        self.refuse_taken_number(account, &fields.phone_e164, None)
            .await?;
        let writes: Vec<ValueWrite> = values.into_iter().filter(|(_, v)| v.is_some()).collect();
        let contact = self
            .create_contact_with(account, &fields, &writes, now)
            .await?;
        if let Some(list) = &list {
            self.add_to_list(account, list.id, contact.id, now).await?;
        }
        let blank = ContactFields {
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        };
        let mut changed: Vec<String> = changed_fields(&blank, &fields)
            .into_iter()
            .map(str::to_owned)
            .collect();
        changed.extend(named(&defs, &writes));
        let mut detail = format!("fields={}", changed.join(","));
        if let Some(list) = &list {
            detail.push_str(&format!(" list={}", list.id));
        }
        self.audit_detail(
            actor,
            "contact.create",
            Some(&format!("contact:{}", contact.id)),
            Some(&detail),
            now,
        )
        .await?;
        let suppressed = self.is_suppressed(account, &fields.phone_e164).await?;
        Ok(Saved {
            contact,
            changed,
            suppressed,
        })
    }

    /// Applies a change to a contact of the actor's account if it is still
    /// at the version the editor read, audited as `contact.edit` with the
    /// names of the fields changed. The version goes up by one.
    ///
    /// A stale version is a [`StoreError::Stale`] and changes nothing; a
    /// change that alters no value writes nothing and keeps the version.
    /// A required field of the account may be changed but not cleared. A
    /// contact merged into another is [`StoreError::Refused`]: an undo of
    /// the merge brings it back as it was.
    pub async fn edit_contact(
        &self,
        actor: &Actor,
        id: ContactId,
        version: i64,
        change: &ContactChange,
        now: DateTime<Utc>,
    ) -> Result<Saved, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let current = self.contact(account, id).await?;
        if let Some(into) = self.merged_into(account, id).await? {
            return Err(StoreError::Refused(format!(
                "contact {id} was merged into contact {into}: change that one, \
                 or undo the merge first"
            )));
        }
        if current.version != version {
            return Err(stale(id, version, current.version));
        }
        let (fields, base) = change.apply(&current.fields)?;
        let defs = self.fields(account).await?;
        let writes = value_changes(&defs, &current, change)?;
        let mut changed: Vec<String> = base.into_iter().map(str::to_owned).collect();
        changed.extend(named(&defs, &writes));
        if changed.is_empty() {
            let suppressed = self.is_suppressed(account, &fields.phone_e164).await?;
            return Ok(Saved {
                contact: current,
                changed,
                suppressed,
            });
        }
        if fields.phone_e164 != current.fields.phone_e164 {
            self.refuse_taken_number(account, &fields.phone_e164, Some(id))
                .await?;
        }
        let written = self
            .write_contact_with(account, id, &fields, &writes, Some(version), now)
            .await?;
        let Some(contact) = written else {
            // Someone else's change landed between the read and the write.
            let now_at = self.contact(account, id).await?.version;
            return Err(stale(id, version, now_at));
        };
        self.audit_detail(
            actor,
            "contact.edit",
            Some(&format!("contact:{id}")),
            Some(&format!("fields={}", changed.join(","))),
            now,
        )
        .await?;
        let suppressed = self.is_suppressed(account, &fields.phone_e164).await?;
        if suppressed && changed.iter().any(|c| c == "phone_e164") {
            tracing::info!(account = %account, contact = %id, "edited number is suppressed");
        }
        Ok(Saved {
            contact,
            changed,
            suppressed,
        })
    }

    async fn refuse_taken_number(
        &self,
        account: crate::model::AccountId,
        e164: &str,
        except: Option<ContactId>,
    ) -> Result<(), StoreError> {
        let holder = self
            .contacts_by_number(account, e164)
            .await?
            .into_iter()
            .find(|c| Some(c.id) != except);
        match holder {
            Some(c) => Err(StoreError::Conflict(format!(
                "contact {} already has this number",
                c.id
            ))),
            None => Ok(()),
        }
    }
}

/// Returns the values a change sets or clears that differ from the
/// contact's; clearing a required field is refused, naming it.
fn value_changes(
    defs: &[FieldDef],
    current: &Contact,
    change: &ContactChange,
) -> Result<Vec<ValueWrite>, StoreError> {
    let Some(given) = &change.fields else {
        return Ok(Vec::new());
    };
    let values = fields::read_values(defs, given)?;
    let mut writes = Vec::new();
    for def in defs {
        let Some(next) = values.get(&def.id) else {
            continue;
        };
        let after = next.as_deref().map(|v| def.to_json(v));
        if current.values.get(&def.key) == after.as_ref() {
            continue;
        }
        if next.is_none() && def.required {
            return Err(StoreError::Invalid(format!(
                "field {} ({}) is required: it may be changed but not cleared",
                def.key, def.label
            )));
        }
        writes.push((def.id, next.clone()));
    }
    Ok(writes)
}

/// Returns the names of the fields written, in the account's order.
fn named(defs: &[FieldDef], writes: &[ValueWrite]) -> Vec<String> {
    defs.iter()
        .filter(|d| writes.iter().any(|(id, _)| *id == d.id))
        .map(|d| changed_name(&d.key))
        .collect()
}

fn stale(id: ContactId, read: i64, now_at: i64) -> StoreError {
    StoreError::Stale(format!(
        "contact {id} was changed by someone else since you read version {read}; \
         it is now at version {now_at}: read it again and reapply your change"
    ))
}
