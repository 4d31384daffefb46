//! The dialler's rules as sans-IO state machines and pure functions: inputs
//! and the current time go in, decisions come out. Nothing here reads the
//! clock, sleeps, or touches a socket or the database, so every rule can be
//! stepped on a virtual clock; the `dialer` crate is the tokio shell that
//! drives these cores over the SIP gateway and the CRM's Store.
//!
//! - [`acd`] distributes waiting inbound calls to free agents by queue
//!   priority, skill and idle time.
//! - [`blend`] sizes an inbound queue by Erlang C and says how many Ready
//!   agents a campaign that shares them must leave idle for it.
//! - [`campaign`] is one campaign's whole dialling as one state machine:
//!   the pacer, the ledger (a cache of every node's figures in the
//!   database) and the life of each line; its shell executes the commands.
//! - [`compliance`] counts live answers and abandons per campaign over the
//!   rolling 24 hours and 30 days, and holds the 72-hour redial rule.
//! - [`desk`] is an agent's desk: ready, paused, previewing, dialling by
//!   hand, in a call and wrapping up, and what each message or call event
//!   changes.
//! - [`hours`] says whether a contact may be called now in its local time,
//!   and when it next may; [`zone`] picks that local time zone.
//! - [`pacer`] turns agent states, call events and the ledger's figures into
//!   dial orders and connect/abandon decisions.
//! - [`retry`] schedules the next attempt or callback after each call.
//! - [`simulation`] runs the pacer and ledger against a simulated population
//!   on a virtual clock, for tests and benchmarks.
//!
//! Pacing runs on monotonic `Instant`s; anything stored or compared with a
//! calendar (the ledger's windows, calling hours, retry times) uses
//! `DateTime<Utc>`.

pub mod acd;
pub mod blend;
pub mod campaign;
pub mod compliance;
pub mod desk;
pub mod hours;
pub mod pacer;
pub mod retry;
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
pub use simulation::{simulate, SimConfig, SimReport};
pub use zone::{resolve_zone, zone_for_number, ResolvedZone, ZoneError, ZoneSource};
