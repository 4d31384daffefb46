//! The vocabulary every dialcrm crate shares without knowing the others.
//!
//! It sits below all of them (docs/decisions/0003): the gateway, the Store,
//! the dialler's cores and the dashboard speak of one call by one
//! [`CallRef`], of its end by one [`EndCause`], of who answered by one
//! [`AmdVerdict`], of a row by its typed id, of an agent by one
//! [`AgentState`] and of a call's progress by one [`CallPhase`], and read
//! the time from one injected [`Clock`].
//!
//! - [`call`] holds the call reference and how calls end.
//! - [`clock`] is the wall clock, with a manual one for tests.
//! - [`ids`] holds the ids of the CRM's rows.
//! - [`state`] holds agents' states and calls' phases.
//!
//! With the `sqlx` feature, the ids and [`CallRef`] bind and decode
//! directly on SQLite and PostgreSQL.
//! With the `schema` feature, they have JSON Schemas for the API's
//! description.

pub mod call;
pub mod clock;
pub mod ids;
#[cfg(feature = "sqlx")]
mod sql;
pub mod state;

pub use call::{AmdVerdict, CallRef, EndCause, ParseCallRefError};
pub use clock::{Clock, ManualClock, SetClock, SystemClock};
pub use ids::{
    AccountId, AttemptId, CampaignId, ContactId, DeliveryId, InteractionId, LeadId, ListId,
    QueueId, UserId, WebhookId,
};
pub use state::{AgentState, CallPhase};
