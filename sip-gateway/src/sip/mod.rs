//! Sans-IO SIP signalling towards trunks.
//!
//! - [`parse`]: bytes from the network to validated `rsip` messages, never panicking.
//! - [`message`]: what we send ([`OutgoingRequest`], [`OutgoingResponse`], [`Transmit`]) and
//!   header helpers.
//! - [`transaction`]: RFC 3261 client and server transactions with their timers.
//! - [`digest`]: answers to 401/407 digest challenges (MD5, SHA-256).
//! - [`sdp`]: G.711 and telephone-event offer/answer.

pub mod dialog;
pub mod digest;
pub mod message;
pub mod outbound;
pub mod parse;
pub mod sdp;
pub mod transaction;

pub use message::{OutgoingRequest, OutgoingResponse, Transmit, Transport};
pub use parse::{parse_message, ParseError};
