//! The dialler: decides who may be called now and how many lines to open.
//!
//! Its cores (pacer, compliance ledger, calling hours) are sans-IO state
//! machines: inputs and the current `Instant` go in, orders come out.
//!
//! - [`compliance`] counts live answers and abandons per campaign over the
//!   rolling 24 hours and 30 days, and holds the 72-hour redial rule.
//! - [`hours`] says whether a contact may be called now in its local time,
//!   and when it next may; [`zone`] picks that local time zone.
//! - [`pacer`] turns agent states, call events and the ledger's figures into
//!   dial orders and connect/abandon decisions.
//! - [`retry`] schedules the next attempt or callback after each call.
//! - [`runner`] is the tokio shell that drives one campaign's pacer over
//!   real calls through the SIP gateway, with leads from a [`LeadSource`].
//! - [`simulation`] runs the pacer and ledger against a simulated population
//!   on a virtual clock, for tests and benchmarks.
//!
//! Pacing runs on monotonic `Instant`s; anything stored or compared with a
//! calendar (the ledger's windows, calling hours, retry times) uses
//! `DateTime<Utc>`. No core module reads the clock, the database or the
//! network: the runner feeds them.

pub mod compliance;
pub mod hours;
pub mod pacer;
pub mod retry;
pub mod runner;
pub mod simulation;
pub mod zone;

pub use compliance::{
    may_redial_after_abandon, AbandonTarget, ComplianceLedger, ComplianceSnapshot, Counts,
    LiveAnswer, Window, ABANDON_GRACE, ABANDON_REDIAL_QUIET,
};
pub use hours::{may_call, next_open, CallingWindow, DayWindow, HoursError};
pub use pacer::{
    AgentId, AgentState, CallEvent, DialOrder, LineId, Mode, Pacer, PacerConfig, PacerEvent,
    PacerInput,
};
pub use retry::{decide_retry, AttemptOutcome, Callback, RetryDecision, RetryPolicy};
pub use runner::LeadSource;
pub use simulation::{simulate, SimConfig, SimReport};
pub use zone::{resolve_zone, zone_for_number, ResolvedZone, ZoneError, ZoneSource};
