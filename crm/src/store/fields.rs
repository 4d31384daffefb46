//! The fields an account defines for its contacts, and the values contacts
//! hold in them: one row per contact and field in `contact_field_values`,
//! indexed by field and value for search (docs/decisions/0010-custom-fields.md).
//!
//! Defining, changing and removing a field is audited by its key; removing
//! one erases every value held in it, in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{on_pool, Backend, Store};
use crate::fields::{FieldChange, FieldDef, FieldId, FieldKind, NewField, MAX_FIELDS};
use crate::import::is_contact_column;
use crate::model::{AccountId, Actor, Contact};
use crate::StoreError;

/// Sets one value of a contact: `$1` account, `$2` contact, `$3` field, `$4` value.
pub(super) const UPSERT_VALUE: &str = "INSERT INTO contact_field_values \
     (account_id, contact_id, field_id, value) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value";
/// Clears one value of a contact: `$1` account, `$2` contact, `$3` field.
pub(super) const DELETE_VALUE: &str = "DELETE FROM contact_field_values \
     WHERE account_id = $1 AND contact_id = $2 AND field_id = $3";

const DEF_COLUMNS: &str =
    "id, key, label, kind, choices, required, on_card, exported, position, created_at";

/// Contacts whose values one query reads.
const VALUES_CHUNK: usize = 500;

impl Store {
    /// Returns the account's fields, in their order.
    pub async fn fields(&self, account: AccountId) -> Result<Vec<FieldDef>, StoreError> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM contact_field_defs WHERE account_id = $1 \
             ORDER BY position, id"
        );
        let rows: Vec<FieldDef> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }

    /// Returns one field of the account by its key.
    pub async fn field(&self, account: AccountId, key: &str) -> Result<FieldDef, StoreError> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM contact_field_defs WHERE account_id = $1 AND key = $2"
        );
        let row: FieldDef = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(key)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }

    /// Defines a field in the actor's account, after the others unless a
    /// position is given; audited as `field.define` with its key.
    pub async fn define_field(
        &self,
        actor: &Actor,
        new: &NewField,
        now: DateTime<Utc>,
    ) -> Result<FieldDef, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let mut def = new.check(is_contact_column)?;
        let existing = self.fields(account).await?;
        if existing.len() as i64 >= MAX_FIELDS {
            return Err(StoreError::Refused(format!(
                "an account defines at most {MAX_FIELDS} fields; remove one first"
            )));
        }
        refuse_taken(&existing, &def, None)?;
        def.position = match new.position {
            Some(p) => p,
            None => existing.iter().map(|d| d.position).max().unwrap_or(0) + 1,
        };
        let sql = format!(
            "INSERT INTO contact_field_defs (account_id, key, label, kind, choices, required, \
             on_card, exported, position, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {DEF_COLUMNS}"
        );
        let row: FieldDef = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .bind(&def.key)
            .bind(&def.label)
            .bind(def.kind.as_str())
            .bind(Json(&def.choices))
            .bind(def.required)
            .bind(def.on_card)
            .bind(def.exported)
            .bind(def.position)
            .bind(now)
            .fetch_one(pool)
            .await?);
        self.audit(actor, "field.define", Some(&target(&row.key)), now)
            .await?;
        Ok(row)
    }

    /// Changes a field's label, choices, flags or position; audited as
    /// `field.change` with the names of what changed.
    ///
    /// A choice that contacts still hold cannot be taken away (a
    /// [`StoreError::Conflict`] saying how many hold it); a choice spelled
    /// anew, case aside, is spelled anew in their values too.
    pub async fn change_field(
        &self,
        actor: &Actor,
        key: &str,
        change: &FieldChange,
        now: DateTime<Utc>,
    ) -> Result<FieldDef, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let current = self.field(account, key).await?;
        let (next, changed) = change.apply(&current, is_contact_column)?;
        if changed.is_empty() {
            return Ok(current);
        }
        refuse_taken(&self.fields(account).await?, &next, Some(current.id))?;
        let mut respelled: Vec<(String, String)> = Vec::new();
        if next.kind == FieldKind::Choice && next.choices != current.choices {
            let held: Vec<(String, i64)> = on_pool!(self, |pool| sqlx::query_as(
                "SELECT value, COUNT(*) FROM contact_field_values \
                 WHERE account_id = $1 AND field_id = $2 GROUP BY value"
            )
            .bind(account.0)
            .bind(current.id.0)
            .fetch_all(pool)
            .await?);
            let mut lost = Vec::new();
            let mut holders = 0;
            for (value, count) in held {
                match next
                    .choices
                    .iter()
                    .find(|c| c.to_lowercase() == value.to_lowercase())
                {
                    Some(c) if *c == value => {}
                    Some(c) => respelled.push((value, c.clone())),
                    None => {
                        holders += count;
                        lost.push(value);
                    }
                }
            }
            if !lost.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "{holders} contacts hold the choices {} of field {key}; \
                     change their values before taking the choices away",
                    lost.join(", ")
                )));
            }
        }
        let begin = self.begin_write();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(
                "UPDATE contact_field_defs SET label = $1, choices = $2, required = $3, \
                 on_card = $4, exported = $5, position = $6 WHERE id = $7 AND account_id = $8",
            )
            .bind(&next.label)
            .bind(Json(&next.choices))
            .bind(next.required)
            .bind(next.on_card)
            .bind(next.exported)
            .bind(next.position)
            .bind(current.id.0)
            .bind(account.0)
            .execute(&mut *tx)
            .await?;
            for (old, new) in &respelled {
                sqlx::query(
                    "UPDATE contact_field_values SET value = $1 \
                     WHERE account_id = $2 AND field_id = $3 AND value = $4",
                )
                .bind(new)
                .bind(account.0)
                .bind(current.id.0)
                .bind(old)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.audit_detail(
            actor,
            "field.change",
            Some(&target(key)),
            Some(&format!("changed={}", changed.join(","))),
            now,
        )
        .await?;
        Ok(next)
    }

    /// Removes a field and erases every value contacts held in it, in one
    /// transaction with its `field.remove` audit entry, which names the
    /// field's key only. Returns how many values were erased.
    pub async fn remove_field(
        &self,
        actor: &Actor,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let def = self.field(account, key).await?;
        let begin = self.begin_write();
        let erased = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let erased = sqlx::query(
                "DELETE FROM contact_field_values WHERE account_id = $1 AND field_id = $2",
            )
            .bind(account.0)
            .bind(def.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM contact_field_defs WHERE id = $1 AND account_id = $2")
                .bind(def.id.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO audit_log (account_id, user_id, action, target, ip, user_agent, \
                 occurred_at) VALUES ($1, $2, 'field.remove', $3, $4, $5, $6)",
            )
            .bind(account.0)
            .bind(actor.user_id.map(|u| u.0))
            .bind(target(key))
            .bind(&actor.ip)
            .bind(&actor.user_agent)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            erased
        });
        // Erased values linger neither in free pages nor in the WAL file.
        self.checkpoint_wal().await?;
        tracing::info!(%account, field = %key, erased, "field removed");
        Ok(erased)
    }

    /// Returns the statement that opens a transaction which writes: on
    /// SQLite `BEGIN IMMEDIATE`, which waits its turn for the write lock,
    /// where a deferred transaction may be refused it (`SQLITE_BUSY`)
    /// when another writer commits first.
    pub(super) fn begin_write(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Fills in the contacts' values in the account's fields, and their
    /// other numbers.
    pub(crate) async fn fill_values(
        &self,
        account: AccountId,
        contacts: &mut [Contact],
    ) -> Result<(), StoreError> {
        self.fill_values_of(account, contacts.iter_mut().collect())
            .await
    }

    /// Fills in the values of contacts held in other rows, such as an
    /// export's, and their other numbers.
    pub(crate) async fn fill_values_of(
        &self,
        account: AccountId,
        mut contacts: Vec<&mut Contact>,
    ) -> Result<(), StoreError> {
        if contacts.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = contacts.iter().map(|c| c.id.0).collect();
        let mut by_contact: HashMap<i64, Vec<(String, FieldKind, String)>> = HashMap::new();
        for chunk in ids.chunks(VALUES_CHUNK) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT v.contact_id, d.key, d.kind, v.value FROM contact_field_values v \
                 JOIN contact_field_defs d ON d.id = v.field_id AND d.account_id = $1 \
                 WHERE v.account_id = $1 AND v.contact_id IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(i64, String, FieldKind, String)> = on_pool!(self, |pool| {
                let mut q = sqlx::query_as(&sql).bind(account.0);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            });
            for (contact, key, kind, value) in rows {
                by_contact
                    .entry(contact)
                    .or_default()
                    .push((key, kind, value));
            }
        }
        for c in contacts.iter_mut() {
            c.values = by_contact
                .remove(&c.id.0)
                .unwrap_or_default()
                .into_iter()
                .map(|(key, kind, value)| (key, kind.to_json(&value)))
                .collect();
        }
        self.fill_numbers_of(account, &mut contacts).await
    }

    /// Returns the ids of the account's text fields, those on the card
    /// only when `card_only`: what a search's text is matched against.
    pub(crate) async fn text_field_ids(
        &self,
        account: AccountId,
        card_only: bool,
    ) -> Result<Vec<FieldId>, StoreError> {
        Ok(self
            .fields(account)
            .await?
            .into_iter()
            .filter(|d| d.kind == FieldKind::Text && (d.on_card || !card_only))
            .map(|d| d.id)
            .collect())
    }
}

/// Refuses a key or a label (case aside) another field of the account has.
fn refuse_taken(
    existing: &[FieldDef],
    def: &FieldDef,
    except: Option<FieldId>,
) -> Result<(), StoreError> {
    for other in existing.iter().filter(|d| Some(d.id) != except) {
        if other.key == def.key {
            return Err(StoreError::Conflict(format!(
                "the account has a field {} already",
                def.key
            )));
        }
        if other.label.to_lowercase() == def.label.to_lowercase() {
            return Err(StoreError::Conflict(format!(
                "field {} has the label {:?} already",
                other.key, other.label
            )));
        }
    }
    Ok(())
}

fn target(key: &str) -> String {
    format!("field:{key}")
}
