//! Sans-IO SIP signalling towards trunks.
//!
//! - [`parse`]: bytes from the network to validated `rsip` messages, never panicking; its
//!   `canonical` helper first unfolds and tidies the head as RFC 3261 allows senders to write it.
//! - [`screen`]: the RFC 3261 §8.2 checks a UAS makes before acting on a request.
//! - [`message`]: what we send ([`OutgoingRequest`], [`OutgoingResponse`], [`Transmit`]) and
//!   header helpers.
//! - [`transaction`]: RFC 3261 client and server transactions with their timers.
//! - [`digest`]: answers to 401/407 digest challenges (MD5, SHA-256).
//! - [`digest_server`]: our own challenges, with stateless nonces any node can check, and the
//!   check of an answer against a stored HA1.
//! - [`sdp`]: G.711 and telephone-event offer/answer, as RTP or SRTP keyed by [`sdes`].
//! - [`outbound`]: INVITE, OPTIONS and REGISTER towards a trunk, from a header whitelist.
//! - [`registrar`]: REGISTER from agents' desk phones, two-step so credentials can come
//!   from a database, with bindings that remember where each phone is reachable through NAT.
//! - [`dialog`]: the dialog a 2xx creates: ACK, BYE, in-dialog answers; CANCEL.
//! - [`call`]: the per-call state machine the gateway shell drives, built on all of the above.
//! - [`inbound`]: its counterpart for a call a trunk offers us, which we answer or refuse.

pub mod call;
mod canonical;
pub mod dialog;
pub mod digest;
pub mod digest_server;
pub mod inbound;
pub mod message;
pub mod outbound;
pub mod parse;
pub mod registrar;
pub mod screen;
pub mod sdes;
pub mod sdp;
pub mod transaction;

pub use call::{Call, CallEvent, CallParams, EndCause, PhoneCallParams};
pub use inbound::{InboundCall, InboundParams, Offer};
pub use message::{OutgoingRequest, OutgoingResponse, Transmit, Transport};
pub use parse::{parse_message, ParseError};
