//! Contacts created and edited by hand, each change audited by the names
//! of the fields it changed and guarded by the version the editor read.

use chrono::{DateTime, Utc};

use super::Store;
use crate::edit::{changed_fields, ContactChange, NewContact};
use crate::model::{Actor, Contact, ContactFields, ContactId};
use crate::StoreError;

/// A contact as written, with whether its number is on the account's
/// suppression list: such a number is saved and flagged, as imports do,
/// and the dialler never calls it.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The contact after the write.
    pub contact: Contact,
    /// The fields the write changed (all given ones for a new contact).
    pub changed: Vec<&'static str>,
    /// Whether the contact's number is suppressed.
    pub suppressed: bool,
}

impl Store {
    /// Creates a contact in the actor's account, on a list if one is named,
    /// audited as `contact.create` with the names of the fields given.
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
        self.refuse_taken_number(account, &fields.phone_e164, None)
            .await?;
        let contact = self.create_contact(account, &fields, now).await?;
        if let Some(list) = &list {
            self.add_to_list(account, list.id, contact.id, now).await?;
        }
        let blank = ContactFields {
            custom_fields: serde_json::json!({}),
            ..ContactFields::default()
        };
        let changed = changed_fields(&blank, &fields);
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
        if current.version != version {
            return Err(stale(id, version, current.version));
        }
        let (fields, changed) = change.apply(&current.fields)?;
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
            .write_contact(account, id, &fields, Some(version), now)
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
        if suppressed && changed.contains(&"phone_e164") {
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

fn stale(id: ContactId, read: i64, now_at: i64) -> StoreError {
    StoreError::Stale(format!(
        "contact {id} was changed by someone else since you read version {read}; \
         it is now at version {now_at}: read it again and reapply your change"
    ))
}
