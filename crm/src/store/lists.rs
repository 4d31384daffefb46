//! Call lists and their members.

use chrono::{DateTime, Utc};

use super::{on_pool, Store};
use crate::model::{AccountId, ContactId, ContactList, ListId};
use crate::StoreError;

const LIST_SELECT: &str = "SELECT l.id, l.account_id, l.name, l.default_region, l.created_at, \
     (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id) AS size FROM lists l";

impl Store {
    /// Creates an empty list in the account.
    pub async fn create_list(
        &self,
        account: AccountId,
        name: &str,
        default_region: &str,
        now: DateTime<Utc>,
    ) -> Result<ContactList, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a list needs a name".into()));
        }
        let id: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO lists (account_id, name, default_region, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id"
        )
        .bind(account.0)
        .bind(name)
        .bind(default_region)
        .bind(now)
        .fetch_one(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("list {name:?} exists")),
            other => other,
        })?);
        self.list(account, ListId(id)).await
    }

    /// Returns a list of the account, with its size.
    pub async fn list(&self, account: AccountId, id: ListId) -> Result<ContactList, StoreError> {
        let sql = format!("{LIST_SELECT} WHERE l.id = $1 AND l.account_id = $2");
        let row: ContactList = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }

    /// Returns the account's lists, by name.
    pub async fn lists(&self, account: AccountId) -> Result<Vec<ContactList>, StoreError> {
        let sql = format!("{LIST_SELECT} WHERE l.account_id = $1 ORDER BY l.name");
        let rows: Vec<ContactList> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }

    /// Adds a contact to a list; both must belong to the account.
    pub async fn add_to_list(
        &self,
        account: AccountId,
        list: ListId,
        contact: ContactId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO list_members (list_id, contact_id, account_id, added_at) \
             SELECT $1, $2, $3, $4 \
             WHERE EXISTS (SELECT 1 FROM lists WHERE id = $1 AND account_id = $3) \
               AND EXISTS (SELECT 1 FROM contacts WHERE id = $2 AND account_id = $3) \
             ON CONFLICT (list_id, contact_id) DO NOTHING"
        )
        .bind(list.0)
        .bind(contact.0)
        .bind(account.0)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            // Either already a member (fine) or a foreign/missing row.
            self.list(account, list).await?;
            self.contact(account, contact).await?;
        }
        Ok(())
    }

    /// Returns the ids of the lists a contact is on.
    pub async fn lists_of_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<ListId>, StoreError> {
        let ids: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT list_id FROM list_members WHERE contact_id = $1 AND account_id = $2 \
             ORDER BY list_id"
        )
        .bind(contact.0)
        .bind(account.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(ListId).collect())
    }
}
