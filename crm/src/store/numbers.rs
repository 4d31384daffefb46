//! A contact's other numbers: those of the contacts merged into it
//! ([`crate::model::OtherNumber`]). A merge moves them, and undoing it
//! moves them back, by row id ([`super::merge`], [`super::unmerge`]);
//! erasure deletes them and keeps each suppressed ([`super::erasure`]).
//! Every read of a contact fills them in, with its values.

use std::collections::HashMap;

use super::{on_pool, Store};
use crate::model::{AccountId, Contact, ContactId, OtherNumber};
use crate::StoreError;

/// How many contacts one read of their numbers names.
const NUMBERS_CHUNK: usize = 500;

/// Moves the other numbers of contact `$3` of account `$2` to contact `$1`,
/// but those contact `$1` has already (its own number `$4` included),
/// returning the rows' ids. Those left go with contact `$3` when it is
/// deleted.
pub(super) const MOVE_NUMBERS: &str = "UPDATE contact_numbers SET contact_id = $1 \
     WHERE account_id = $2 AND contact_id = $3 AND phone_e164 <> $4 \
     AND phone_e164 NOT IN (SELECT k.phone_e164 FROM contact_numbers k \
     WHERE k.account_id = $2 AND k.contact_id = $1) RETURNING id";

/// Gives contact `$2` of account `$1` the other number `$3` (written as
/// `$4`) at `$5`, unless it has it already; returns the row's id.
pub(super) const ADD_NUMBER: &str = "INSERT INTO contact_numbers (account_id, contact_id, \
     phone_e164, phone_raw, added_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (contact_id, phone_e164) DO NOTHING RETURNING id";

impl Store {
    /// Fills in the contacts' other numbers.
    pub(super) async fn fill_numbers_of(
        &self,
        account: AccountId,
        contacts: &mut [&mut Contact],
    ) -> Result<(), StoreError> {
        if contacts.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = contacts.iter().map(|c| c.id.0).collect();
        let mut by_contact: HashMap<i64, Vec<OtherNumber>> = HashMap::new();
        for chunk in ids.chunks(NUMBERS_CHUNK) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT contact_id, phone_e164, phone_raw, added_at FROM contact_numbers \
                 WHERE account_id = $1 AND contact_id IN ({}) ORDER BY added_at, id",
                marks.join(", ")
            );
            type Row = (i64, String, String, chrono::DateTime<chrono::Utc>);
            let rows: Vec<Row> = on_pool!(self, |pool| {
                let mut q = sqlx::query_as(&sql).bind(account.0);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            });
            for (contact, phone_e164, phone_raw, added_at) in rows {
                by_contact.entry(contact).or_default().push(OtherNumber {
                    phone_e164,
                    phone_raw,
                    added_at,
                });
            }
        }
        for c in contacts.iter_mut() {
            c.other_numbers = by_contact.remove(&c.id.0).unwrap_or_default();
        }
        Ok(())
    }

    /// Returns the contact of the account that has this number as another
    /// of its numbers, the one that took it last when several have.
    pub(super) async fn contact_by_other_number(
        &self,
        account: AccountId,
        e164: &str,
    ) -> Result<Option<ContactId>, StoreError> {
        let id: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT contact_id FROM contact_numbers WHERE account_id = $1 AND phone_e164 = $2 \
             ORDER BY added_at DESC, id DESC LIMIT 1"
        )
        .bind(account.0)
        .bind(e164)
        .fetch_optional(pool)
        .await?);
        Ok(id.map(ContactId))
    }
}
