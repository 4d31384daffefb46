//! The dialler: the one owner of running campaigns on a node.
//!
//! The rules it runs by (pacer, compliance ledger, calling hours, zones,
//! retries) are the sans-IO cores of `dialer-core`, re-exported here under
//! the same names. This crate is their shell: it drives them over real calls
//! through the SIP gateway, with leads and outcomes kept in the CRM's Store.
//!
//! - [`floor`] is the node's application service: it starts a runner for
//!   every campaign the database says is running, passes agents' changes to
//!   it, and turns its reports into events on the bus.
//! - [`runner`] is the tokio shell that drives one campaign's pacer over the
//!   gateway, with leads from a [`LeadSource`].
//! - [`leads`] is that lead source over the Store: leases, attempts,
//!   retries, and the compliance figures every node shares.
//! - [`switchboard`] takes the node's inbound calls: routes them to their
//!   queue, holds the caller, and connects them to a free agent lent by
//!   that agent's campaign, so inbound and outbound share the agents.
//!
//! The crate graph reads bottom-up: `sip-gateway` and `crm` know nothing of
//! each other or of this crate; `dashboard` and the binary sit above it
//! (docs/decisions/0003-where-the-dialler-runs.md).

pub mod floor;
pub mod leads;
pub mod runner;
pub mod switchboard;

pub use dialer_core::{compliance, hours, pacer, retry, simulation, zone};
pub use dialer_core::{
    decide_retry, may_call, may_redial_after_abandon, next_open, resolve_zone, simulate,
    zone_for_number, AbandonTarget, AgentId, AgentState, AttemptOutcome, CallEvent, Callback,
    CallingWindow, ComplianceLedger, ComplianceSnapshot, Counts, DayWindow, DialOrder, HoursError,
    LineId, LiveAnswer, Mode, Pacer, PacerConfig, PacerEvent, PacerInput, ResolvedZone,
    RetryDecision, RetryPolicy, SimConfig, SimReport, Window, ZoneError, ZoneSource, ABANDON_GRACE,
    ABANDON_REDIAL_QUIET,
};
pub use runner::LeadSource;
