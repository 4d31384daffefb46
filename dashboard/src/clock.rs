//! The wall clock, injectable so tests can expire sessions without sleeping;
//! one clock for the whole service, defined in `vocab`.

pub use vocab::clock::{Clock, ManualClock, SetClock, SystemClock};
