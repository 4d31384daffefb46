//! Subject access: everything the account holds about one contact.

use serde::Serialize;

use crate::model::Suppression;
use crate::model::{AccountId, CallAttempt, Contact, ContactId, ContactList, Interaction};
use crate::store::erasure::Recording;
use crate::{Store, StoreError};

/// What a subject access request hands over about one contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectAccess {
    /// The contact's fields, custom fields, values in the account's fields
    /// (`fields`, by key) and other numbers (`other_numbers`) included.
    pub contact: Contact,
    /// The contact's values in the account's fields, with the names people
    /// see, in the account's order: exported or not, on the card or not.
    pub fields: Vec<LabelledValue>,
    /// The lists the contact is on.
    pub lists: Vec<ListMembership>,
    /// Every call placed to the contact, with its outcome.
    pub attempts: Vec<CallAttempt>,
    /// Every interaction, with the agents' dispositions and notes.
    pub interactions: Vec<Interaction>,
    /// The do-not-call entry for the contact's number, if there is one.
    pub suppression: Option<Suppression>,
    /// The do-not-call entries for its other numbers, those that have one.
    pub other_suppressions: Vec<Suppression>,
    /// The call recordings kept on disk.
    pub recordings: Vec<Recording>,
}

/// A value in one of the account's fields, with the field's label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledValue {
    /// The field's key.
    pub key: String,
    /// The field's label.
    pub label: String,
    /// The value, as the API shows it.
    pub value: serde_json::Value,
}

/// A list the contact is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListMembership {
    /// The list's id.
    pub list_id: crate::model::ListId,
    /// The list's name.
    pub name: String,
}

impl From<ContactList> for ListMembership {
    fn from(l: ContactList) -> Self {
        ListMembership {
            list_id: l.id,
            name: l.name,
        }
    }
}

impl Store {
    /// Gathers everything held about a contact of the account.
    pub async fn subject_access(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<SubjectAccess, StoreError> {
        let found = self.contact(account, contact).await?;
        let mut lists = Vec::new();
        for id in self.lists_of_contact(account, contact).await? {
            lists.push(self.list(account, id).await?.into());
        }
        let fields = self
            .fields(account)
            .await?
            .into_iter()
            .filter_map(|d| {
                let value = found.values.get(&d.key)?.clone();
                Some(LabelledValue {
                    key: d.key,
                    label: d.label,
                    value,
                })
            })
            .collect();
        let mut other_suppressions = Vec::new();
        for other in &found.other_numbers {
            other_suppressions.extend(self.suppression(account, &other.phone_e164).await?);
        }
        Ok(SubjectAccess {
            other_suppressions,
            fields,
            lists,
            attempts: self.attempts_for_contact(account, contact).await?,
            interactions: self.interactions_for_contact(account, contact).await?,
            suppression: self.suppression(account, &found.fields.phone_e164).await?,
            recordings: self.recordings_for_contact(account, contact).await?,
            contact: found,
        })
    }
}
