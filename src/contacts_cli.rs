//! `dialcrm contact search` and `dialcrm contact edit`: the CRM's contacts
//! found and corrected from the command line, through the same Store calls
//! (and the same audit) as the API. Duplicates and merges are in
//! [`crate::merge_cli`].

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use crm::edit::ContactChange;
use crm::model::{Account, Actor, Contact, ContactId};
use crm::search::{ContactQuery, Field, Sort};
use crm::store::SearchScope;
use crm::Store;

/// `contact …`
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Finds an account's contacts by name, number (any format), email or
    /// postal code.
    Search(SearchArgs),
    /// Changes fields of a contact; audited by field name.
    Edit(EditArgs),
    /// Lists likely duplicates (same email, same number, similar name at
    /// one postal code), of one contact or of the account.
    Duplicates(crate::merge_cli::DuplicatesArgs),
    /// Merges a contact into another: history moves, empty fields are
    /// filled, suppression is the union; undoable for a day.
    Merge(crate::merge_cli::MergeArgs),
    /// Undoes a merge within its day.
    UndoMerge(crate::merge_cli::UndoArgs),
}

/// Flags of `contact search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// Read the text as this field: name, number, email or postal_code.
    #[arg(long)]
    pub field: Option<String>,
    /// The order: name, -name, created, -created, updated or -updated.
    #[arg(long)]
    pub sort: Option<String>,
    /// The page, from 1.
    #[arg(long)]
    pub page: Option<u32>,
    /// Contacts per page, at most 100.
    #[arg(long)]
    pub per_page: Option<u32>,
    /// What to look for; nothing lists every contact.
    pub query: Option<String>,
}

/// Flags of `contact edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The contact's id.
    #[arg(long)]
    pub id: i64,
    /// A field and its new value (repeatable); an empty value clears an
    /// optional field; custom_fields takes a JSON object; `field.KEY` names
    /// a field the account defined.
    #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
    pub set: Vec<String>,
    /// The version read; the edit is refused if the contact changed since.
    /// Without it, the edit applies to the version current now.
    #[arg(long)]
    pub version: Option<i64>,
}

/// Runs a `contact` subcommand.
pub async fn run(store: &Store, command: ContactCommand) -> Result<()> {
    match command {
        ContactCommand::Search(args) => search(store, args).await,
        ContactCommand::Edit(args) => edit(store, args).await,
        ContactCommand::Duplicates(args) => crate::merge_cli::duplicates(store, args).await,
        ContactCommand::Merge(args) => crate::merge_cli::merge(store, args).await,
        ContactCommand::UndoMerge(args) => crate::merge_cli::undo(store, args).await,
    }
}

async fn search(store: &Store, args: SearchArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    let field: Field = named("field", args.field.as_deref())?;
    let sort: Sort = named("sort", args.sort.as_deref())?;
    let regions = store.search_regions(account.id).await?;
    let query = ContactQuery::parse(
        args.query.as_deref().unwrap_or_default(),
        field,
        &regions,
        sort,
        args.page,
        args.per_page,
    )?;
    let found = store
        .search_contacts(account.id, SearchScope::Account, &query)
        .await
        .context("searching contacts")?;
    store
        .audit(
            &cli_actor(&account),
            "contact.search",
            None,
            chrono::Utc::now(),
        )
        .await?;
    println!(
        "{:>8}  {:<30} {:<16} {:<30} version",
        "id", "name", "number", "email"
    );
    for c in &found.contacts {
        println!("{}", line(c));
    }
    eprintln!(
        "{} contacts on page {} (matched by {}){}",
        found.contacts.len(),
        query.page,
        query.criterion.as_str(),
        if found.has_more {
            "; more on the next page"
        } else {
            ""
        }
    );
    Ok(())
}

async fn edit(store: &Store, args: EditArgs) -> Result<()> {
    let account = account(store, &args.account).await?;
    let mut body = serde_json::Map::new();
    for pair in &args.set {
        let Some((field, value)) = pair.split_once('=') else {
            bail!("--set takes FIELD=VALUE, not {pair:?}");
        };
        if let Some(key) = field.trim().strip_prefix("field.") {
            // A field the account defined; empty clears it.
            let value = if value.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(value.to_owned())
            };
            let fields = body
                .entry("fields")
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let Some(fields) = fields.as_object_mut() {
                fields.insert(key.to_owned(), value);
            }
            continue;
        }
        let value = if field.trim() == "custom_fields" {
            serde_json::from_str(value).context("custom_fields takes a JSON object")?
        } else {
            serde_json::Value::String(value.to_owned())
        };
        body.insert(field.trim().to_owned(), value);
    }
    let change: ContactChange =
        serde_json::from_value(serde_json::Value::Object(body)).context("reading --set")?;
    let id = ContactId(args.id);
    let version = match args.version {
        Some(v) => v,
        None => {
            store
                .contact(account.id, id)
                .await
                .with_context(|| format!("finding contact {id} in {:?}", account.name))?
                .version
        }
    };
    let saved = store
        .edit_contact(
            &cli_actor(&account),
            id,
            version,
            &change,
            chrono::Utc::now(),
        )
        .await
        .with_context(|| format!("editing contact {id}"))?;
    if saved.changed.is_empty() {
        println!("contact {id} unchanged (version {})", saved.contact.version);
    } else {
        println!(
            "contact {id} changed ({}), now version {}",
            saved.changed.join(", "),
            saved.contact.version
        );
    }
    if saved.suppressed {
        println!("its number is on the suppression list: it will not be dialled");
    }
    Ok(())
}

fn line(c: &Contact) -> String {
    let name = format!("{} {}", c.fields.first_name, c.fields.last_name);
    format!(
        "{:>8}  {:<30} {:<16} {:<30} {}",
        c.id,
        name.trim(),
        c.fields.phone_e164,
        c.fields.email.as_deref().unwrap_or("-"),
        c.version
    )
}

/// Reads an enumerated flag by its API name.
fn named<T: serde::de::DeserializeOwned + Default>(flag: &str, value: Option<&str>) -> Result<T> {
    match value {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(serde_json::Value::String(v.to_owned()))
            .with_context(|| format!("reading --{flag}")),
    }
}

/// Returns the account an operator named.
pub(crate) async fn account(store: &Store, name: &str) -> Result<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("finding account {name:?}"))
}

/// Returns the audit actor of an operator at the command line.
pub(crate) fn cli_actor(account: &Account) -> Actor {
    Actor {
        account_id: Some(account.id),
        user_id: None,
        ip: None,
        user_agent: Some("dialcrm-cli".into()),
    }
}
