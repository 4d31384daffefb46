//! The vocabulary every dialcrm crate shares without knowing the others.
//!
//! It sits below all of them (docs/decisions/0003): the gateway, the Store,
//! the dialler's cores and the dashboard speak of one call by one
//! [`CallRef`], of its end by one [`EndCause`], of who answered by one
//! [`AmdVerdict`], and read the time from one injected [`Clock`].
//!
//! - [`call`] holds the call reference and how calls end.
//! - [`clock`] is the wall clock, with a manual one for tests.

pub mod call;
pub mod clock;

pub use call::{AmdVerdict, CallRef, EndCause};
pub use clock::{Clock, ManualClock, SetClock, SystemClock};
