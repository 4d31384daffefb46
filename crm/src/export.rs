//! Streaming CSV export of a call list, a page of contacts at a time.
//!
//! The header names the contact fields, then the account's fields marked
//! exported (by key, in their order), then every other custom column found
//! on the list (their union, sorted), then the columns dialcrm itself keeps,
//! prefixed `dialcrm_` so that importing an export again ignores them.
//! Importing an export again maps the account's fields back by their keys.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::fields::FieldDef;
use crate::model::{AccountId, Actor, Contact, ContactId, ListId};
use crate::{Store, StoreError};

/// Contacts read from the database per chunk of output.
const PAGE: i64 = 1000;

/// The contact field columns, in the order written.
pub const FIELD_COLUMNS: [&str; 8] = [
    "first_name",
    "last_name",
    "phone_e164",
    "phone_raw",
    "email",
    "postal_address",
    "profession",
    "time_zone",
];

/// The columns dialcrm keeps about each contact, written last. The other
/// numbers (those of contacts merged into it, E.164, separated by `;`) are
/// among them: an import does not read them back.
pub const SYSTEM_COLUMNS: [&str; 6] = [
    "dialcrm_contact_id",
    "dialcrm_attempts",
    "dialcrm_last_outcome",
    "dialcrm_last_disposition",
    "dialcrm_last_interaction_at",
    "dialcrm_other_numbers",
];

/// One contact with its call history figures, as exported.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExportRow {
    /// The contact.
    #[sqlx(flatten)]
    pub contact: Contact,
    /// How many calls were placed to the contact.
    pub attempts: i64,
    /// How the last call ended.
    pub last_outcome: Option<String>,
    /// The last disposition an agent set.
    pub last_disposition: Option<String>,
    /// When the last interaction happened.
    pub last_interaction_at: Option<DateTime<Utc>>,
}

/// An export in progress; each [`ListExport::next_chunk`] yields CSV bytes.
pub struct ListExport {
    store: Store,
    account: AccountId,
    list: ListId,
    fields: Vec<FieldDef>,
    custom: Vec<String>,
    after: ContactId,
    header_done: bool,
    finished: bool,
    rows: u64,
}

impl ListExport {
    /// Starts exporting a list of the actor's account and writes `list.export`
    /// to the audit log.
    pub async fn open(
        store: &Store,
        actor: &Actor,
        list: ListId,
        now: DateTime<Utc>,
    ) -> Result<ListExport, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        store.list(account, list).await?;
        let defined = store.fields(account).await?;
        // A custom column named as a field's key is that field's column: its
        // value is written there when the contact has no value in the field.
        let custom = store
            .list_custom_field_names(account, list)
            .await?
            .into_iter()
            .filter(|name| !defined.iter().any(|d| d.key == *name))
            .collect();
        let fields = defined.into_iter().filter(|f| f.exported).collect();
        store
            .audit(actor, "list.export", Some(&format!("list:{list}")), now)
            .await?;
        Ok(ListExport {
            store: store.clone(),
            account,
            list,
            fields,
            custom,
            after: ContactId(0),
            header_done: false,
            finished: false,
            rows: 0,
        })
    }

    /// Returns the next piece of the file, or `None` when it is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        if !self.header_done {
            self.header_done = true;
            let header = FIELD_COLUMNS
                .iter()
                .copied()
                .chain(self.fields.iter().map(|f| f.key.as_str()))
                .chain(self.custom.iter().map(String::as_str))
                .chain(SYSTEM_COLUMNS.iter().copied());
            out.write_record(header).map_err(csv_error)?;
        }
        let page = self
            .store
            .export_page(self.account, self.list, self.after, PAGE)
            .await?;
        if (page.len() as i64) < PAGE {
            self.finished = true;
        }
        for row in &page {
            out.write_record(self.record(row)).map_err(csv_error)?;
        }
        if let Some(last) = page.last() {
            self.after = last.contact.id;
        }
        self.rows += page.len() as u64;
        let bytes = out
            .into_inner()
            .map_err(|e| StoreError::Invalid(format!("writing CSV: {}", e.error())))?;
        Ok(Some(bytes))
    }

    /// Writes the whole export and returns how many contacts it held.
    pub async fn write_all<W: std::io::Write>(mut self, out: &mut W) -> std::io::Result<u64> {
        while let Some(chunk) = self.next_chunk().await.map_err(std::io::Error::other)? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        Ok(self.rows)
    }

    /// Returns how many contacts were written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn record(&self, row: &ExportRow) -> Vec<String> {
        let f = &row.contact.fields;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut record = vec![
            f.first_name.clone(),
            f.last_name.clone(),
            f.phone_e164.clone(),
            f.phone_raw.clone(),
            text(&f.email),
            text(&f.postal_address),
            text(&f.profession),
            text(&f.time_zone),
        ];
        for field in &self.fields {
            let value = row
                .contact
                .values
                .get(&field.key)
                .or_else(|| f.custom_fields.get(&field.key));
            record.push(cell(value));
        }
        for name in &self.custom {
            record.push(cell(f.custom_fields.get(name)));
        }
        record.push(row.contact.id.to_string());
        record.push(row.attempts.to_string());
        record.push(text(&row.last_outcome));
        record.push(text(&row.last_disposition));
        record.push(
            row.last_interaction_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default(),
        );
        let others: Vec<&str> = row
            .contact
            .other_numbers
            .iter()
            .map(|n| n.phone_e164.as_str())
            .collect();
        record.push(others.join(";"));
        record
    }
}

/// Returns a value as a cell: text as it is, yes/no as `yes` or `no`
/// (which an import reads back), numbers as written.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
        Some(other) => other.to_string(),
    }
}

fn csv_error(e: csv::Error) -> StoreError {
    StoreError::Invalid(format!("writing CSV: {e}"))
}
