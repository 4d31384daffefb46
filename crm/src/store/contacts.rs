//! Contacts: the people an account calls. Every read fills in the
//! contact's values in the account's fields ([`Contact::values`]).

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::fields::{DELETE_VALUE, UPSERT_VALUE};
use super::rows::CONTACT_COLUMNS;
use super::{on_pool, Store};
use crate::fields::ValueWrite;
use crate::model::{AccountId, Contact, ContactFields, ContactId, ListId};
use crate::StoreError;

impl Store {
    /// Creates a contact in the account.
    pub async fn create_contact(
        &self,
        account: AccountId,
        fields: &ContactFields,
        now: DateTime<Utc>,
    ) -> Result<Contact, StoreError> {
        self.create_contact_with(account, fields, &[], now).await
    }

    /// Creates a contact with values in the account's fields, in one
    /// transaction.
    pub(super) async fn create_contact_with(
        &self,
        account: AccountId,
        fields: &ContactFields,
        values: &[ValueWrite],
        now: DateTime<Utc>,
    ) -> Result<Contact, StoreError> {
        check_fields(fields)?;
        let sql = format!(
            "INSERT INTO contacts (account_id, first_name, last_name, phone_e164, phone_raw, \
             email, postal_address, profession, time_zone, custom_fields, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {CONTACT_COLUMNS}"
        );
        let begin = self.begin_write();
        let mut row: Contact = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let row: Contact = sqlx::query_as(&sql)
                .bind(account.0)
                .bind(&fields.first_name)
                .bind(&fields.last_name)
                .bind(&fields.phone_e164)
                .bind(&fields.phone_raw)
                .bind(&fields.email)
                .bind(&fields.postal_address)
                .bind(&fields.profession)
                .bind(&fields.time_zone)
                .bind(Json(&fields.custom_fields))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            for (field, value) in values {
                let q = match value {
                    Some(v) => sqlx::query(UPSERT_VALUE)
                        .bind(account.0)
                        .bind(row.id.0)
                        .bind(field.0)
                        .bind(v),
                    None => sqlx::query(DELETE_VALUE)
                        .bind(account.0)
                        .bind(row.id.0)
                        .bind(field.0),
                };
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            row
        });
        self.fill_values(account, std::slice::from_mut(&mut row))
            .await?;
        Ok(row)
    }

    /// Returns a contact of the account.
    pub async fn contact(&self, account: AccountId, id: ContactId) -> Result<Contact, StoreError> {
        let sql =
            format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1 AND account_id = $2");
        let mut row: Contact = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        self.fill_values(account, std::slice::from_mut(&mut row))
            .await?;
        Ok(row)
    }

    /// Replaces a contact's fields, whatever its version; an edit that must
    /// not overwrite another is [`Store::edit_contact`].
    pub async fn update_contact(
        &self,
        account: AccountId,
        id: ContactId,
        fields: &ContactFields,
        now: DateTime<Utc>,
    ) -> Result<Contact, StoreError> {
        check_fields(fields)?;
        self.write_contact(account, id, fields, None, now)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Writes a contact's fields and counts a version; with `version`, only
    /// if the contact is still at it (`None` when it is not, or absent).
    pub(super) async fn write_contact(
        &self,
        account: AccountId,
        id: ContactId,
        fields: &ContactFields,
        version: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<Contact>, StoreError> {
        self.write_contact_with(account, id, fields, &[], version, now)
            .await
    }

    /// Writes a contact's fields and values in its account's fields in one
    /// transaction, as [`Store::write_contact`] does; nothing is written
    /// when the version does not match.
    pub(super) async fn write_contact_with(
        &self,
        account: AccountId,
        id: ContactId,
        fields: &ContactFields,
        values: &[ValueWrite],
        version: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<Contact>, StoreError> {
        let guard = if version.is_some() {
            " AND version = $13"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE contacts SET first_name = $1, last_name = $2, phone_e164 = $3, \
             phone_raw = $4, email = $5, postal_address = $6, profession = $7, time_zone = $8, \
             custom_fields = $9, updated_at = $10, version = version + 1 \
             WHERE id = $11 AND account_id = $12{guard} RETURNING {CONTACT_COLUMNS}"
        );
        let begin = self.begin_write();
        let row: Option<Contact> = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let query = sqlx::query_as(&sql)
                .bind(&fields.first_name)
                .bind(&fields.last_name)
                .bind(&fields.phone_e164)
                .bind(&fields.phone_raw)
                .bind(&fields.email)
                .bind(&fields.postal_address)
                .bind(&fields.profession)
                .bind(&fields.time_zone)
                .bind(Json(&fields.custom_fields))
                .bind(now)
                .bind(id.0)
                .bind(account.0);
            let row: Option<Contact> = match version {
                Some(v) => query.bind(v),
                None => query,
            }
            .fetch_optional(&mut *tx)
            .await?;
            // A stale version wrote nothing, so no value is written either.
            if row.is_some() {
                for (field, value) in values {
                    let q = match value {
                        Some(v) => sqlx::query(UPSERT_VALUE)
                            .bind(account.0)
                            .bind(id.0)
                            .bind(field.0)
                            .bind(v),
                        None => sqlx::query(DELETE_VALUE)
                            .bind(account.0)
                            .bind(id.0)
                            .bind(field.0),
                    };
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            row
        });
        let Some(mut row) = row else {
            return Ok(None);
        };
        self.fill_values(account, std::slice::from_mut(&mut row))
            .await?;
        Ok(Some(row))
    }

    /// Returns the contacts of a list, by id, a page at a time.
    pub async fn list_contacts(
        &self,
        account: AccountId,
        list: ListId,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Contact>, StoreError> {
        // The list lookup makes a foreign list a NotFound, not an empty page.
        self.list(account, list).await?;
        let columns = CONTACT_COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM contacts c JOIN list_members m ON m.contact_id = c.id \
             WHERE m.list_id = $1 AND c.account_id = $2 AND m.account_id = $2 \
             ORDER BY c.id LIMIT $3 OFFSET $4"
        );
        let mut rows: Vec<Contact> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(list.0)
            .bind(account.0)
            .bind(limit.clamp(0, 10_000))
            .bind(offset.max(0))
            .fetch_all(pool)
            .await?);
        self.fill_values(account, &mut rows).await?;
        Ok(rows)
    }

    /// Returns the contacts of the account with this E.164 number, but
    /// those merged into another (see [`Store::merge_contacts`]).
    pub async fn contacts_by_number(
        &self,
        account: AccountId,
        e164: &str,
    ) -> Result<Vec<Contact>, StoreError> {
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE account_id = $1 AND phone_e164 = $2 \
             AND merged_into IS NULL ORDER BY id"
        );
        let mut rows: Vec<Contact> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(e164)
            .fetch_all(pool)
            .await?);
        self.fill_values(account, &mut rows).await?;
        Ok(rows)
    }
}

fn check_fields(fields: &ContactFields) -> Result<(), StoreError> {
    let e = &fields.phone_e164;
    let digits = e.strip_prefix('+').unwrap_or("");
    if !(2..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::Invalid(
            "phone_e164 must be + followed by 2 to 15 digits".into(),
        ));
    }
    if !fields.custom_fields.is_object() {
        return Err(StoreError::Invalid(
            "custom_fields must be a JSON object".into(),
        ));
    }
    if let Some(reason) = fields.too_long() {
        return Err(StoreError::Invalid(reason));
    }
    Ok(())
}
