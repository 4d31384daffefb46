//! The dialler: decides who may be called now and how many lines to open.
//!
//! Its cores (pacer, compliance ledger, calling hours) are sans-IO state
//! machines: inputs and the current `Instant` go in, orders come out.

pub mod compliance;
pub mod hours;
pub mod pacer;
pub mod simulation;
pub mod zone;
