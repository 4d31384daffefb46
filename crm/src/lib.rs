//! The CRM: accounts, users, contacts, lists, campaigns, call attempts,
//! interactions, suppression and the audit log, kept in one [`Store`].
//!
//! - [`model`] holds the domain types every other crate speaks in.
//! - [`store`] is the single storage API with two backends, SQLite (the
//!   embedded default) and PostgreSQL; the URL scheme picks one. Every method
//!   that touches customer data takes the caller's [`model::AccountId`] and
//!   scopes its query by it, so one account can never reach another's rows.
//! - [`password`] hashes and verifies passwords with argon2id.
//! - [`privacy`] holds the keyed hashes that keep an erased number
//!   suppressed and name nobody in the login throttle's counts.
//! - [`subject`] gathers everything held about one contact for a subject
//!   access request; erasure itself is [`Store::erase_contact`].
//! - [`search`] reads what a contact search asks for, and [`edit`] checks
//!   a contact created or changed by hand; the Store runs both
//!   ([`Store::search_contacts`], [`Store::add_contact`], [`Store::edit_contact`]).
//! - [`duplicates`] says what makes two contacts likely the same person, and
//!   [`merge`] how one takes the other's empty fields; the Store finds them
//!   and merges them ([`Store::duplicates_of`], [`Store::merge_contacts`]).
//! - [`fields`] checks the fields an account defines for its contacts and
//!   reads their values; the Store keeps both ([`Store::define_field`]).
//! - [`script`] reads a campaign's call script and renders it for one call
//!   as a tree of plain text; the Store keeps it ([`Store::set_campaign_script`]).
//! - [`events`] is the event bus that carries live state to dashboards.
//! - [`webhooks`] says what an account's webhook endpoints are told and signs
//!   it; the Store keeps endpoints and an outbox of deliveries written with
//!   the facts they report ([`Store::claim_webhook_deliveries`]).
//! - [`demo`] seeds the demo account a first start creates.

pub mod demo;
pub mod duplicates;
pub mod edit;
pub mod error;
pub mod events;
pub mod export;
pub mod fields;
pub mod import;
pub mod merge;
pub mod model;
pub mod password;
pub mod privacy;
pub mod script;
pub mod search;
pub mod store;
pub mod subject;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use error::StoreError;
pub use store::{Backend, Store};
