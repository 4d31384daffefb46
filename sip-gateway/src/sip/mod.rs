//! Sans-IO SIP signalling towards trunks.
//!
//! - [`parse`]: bytes from the network to validated `rsip` messages, never panicking.
//! - [`message`]: what we send ([`OutgoingRequest`], [`OutgoingResponse`], [`Transmit`]) and
//!   header helpers.

pub mod digest;
pub mod message;
pub mod parse;

pub use message::{OutgoingRequest, OutgoingResponse, Transmit, Transport};
pub use parse::{parse_message, ParseError};
