//! RFC 3261 §17 transactions: client and server, INVITE and non-INVITE, with timers A–K.
//!
//! [`TransactionLayer`] owns every live transaction of one endpoint, matches incoming
//! messages to them by branch and method, and turns their timers into retransmissions and
//! events. Timer C belongs to proxies and is not implemented. A 2xx to a client INVITE moves
//! it to the RFC 6026 Accepted state, so retransmitted 2xx still reach the dialog (which
//! re-sends its own ACK); a server INVITE retransmits its 2xx until the ACK arrives.

mod client;
mod layer;
mod server;

use std::time::{Duration, Instant};

use rsip::Method;

use super::message::OutgoingRequest;

pub use layer::TransactionLayer;

/// Base timer values (RFC 3261 §17.1.1.1); every other timer derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate.
    pub t1: Duration,
    /// Largest retransmission interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
    /// Where the housekeeping timers are rounded to; `None` keeps them exact.
    pub slack: Option<Slack>,
}

/// A grid that the housekeeping timers (D, I, J, K and M: those that only keep a finished
/// transaction around to absorb retransmissions) are rounded up to.
///
/// RFC 3261 gives these timers minimums, not exact values. Rounding them up to a shared grid
/// lets the transactions that finish within one step end at the same instant, so a gateway
/// setting up hundreds of calls a second wakes once a step for them instead of once a call.
/// The grid's origin comes from the caller: the layer reads no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slack {
    origin: Instant,
    step: Duration,
}

impl Slack {
    /// Returns the grid of `step` through `origin`.
    pub fn new(origin: Instant, step: Duration) -> Self {
        Slack { origin, step }
    }

    /// Returns the first point of the grid at or after `at`; `at` itself before the origin.
    pub fn round_up(&self, at: Instant) -> Instant {
        let step = self.step.as_nanos();
        let Some(since) = at.checked_duration_since(self.origin) else {
            return at;
        };
        if step == 0 {
            return at;
        }
        let rounded = since.as_nanos().div_ceil(step) * step;
        u64::try_from(rounded)
            .ok()
            .and_then(|nanos| self.origin.checked_add(Duration::from_nanos(nanos)))
            .unwrap_or(at)
    }
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            slack: None,
        }
    }
}

impl TimerConfig {
    /// Returns 64*T1: Timers B, F, H, J and the RFC 6026 Timers L and M.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Returns Timer D for an unreliable transport, which RFC 3261 fixes at 32 seconds.
    pub fn timer_d(&self) -> Duration {
        Duration::from_secs(32)
    }

    /// Returns these timers with housekeeping rounded up to `slack`.
    pub fn with_slack(self, slack: Slack) -> Self {
        TimerConfig {
            slack: Some(slack),
            ..self
        }
    }

    /// Returns when a finished transaction that must linger `linger` from `now` may go:
    /// `now + linger`, rounded up to the slack's grid. No linger stays no linger.
    pub(crate) fn linger_until(&self, now: Instant, linger: Duration) -> Instant {
        match self.slack {
            Some(slack) if !linger.is_zero() => slack.round_up(now + linger),
            _ => now + linger,
        }
    }
}

/// Identifies a transaction: the top Via branch and the method (ACK counts as INVITE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionKey {
    /// Top Via branch (`z9hG4bK…`); for a server transaction followed by the Via's sent-by, or
    /// for an RFC 2543 request a key built from its fields.
    pub branch: String,
    /// Method of the request that created the transaction.
    pub method: Method,
}

impl Ord for TransactionKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // rsip's Method has no ordering; its canonical name gives a stable one.
        (&self.branch, self.method.to_string()).cmp(&(&other.branch, other.method.to_string()))
    }
}

impl PartialOrd for TransactionKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Something a transaction reports to the layer above (the dialog or call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A 1xx arrived for a client transaction.
    Provisional {
        /// The client transaction.
        key: TransactionKey,
        /// The response.
        response: rsip::Response,
    },
    /// A final response arrived for a client transaction (2xx retransmissions included).
    Final {
        /// The client transaction.
        key: TransactionKey,
        /// The response.
        response: rsip::Response,
    },
    /// Timer B or F fired (or the CANCEL guard): treat as a 408 Request Timeout.
    Timeout {
        /// The client transaction.
        key: TransactionKey,
    },
    /// The transport reported a failure while sending for this transaction.
    TransportError {
        /// The transaction.
        key: TransactionKey,
    },
    /// A new request arrived; `key` is `None` for an ACK to a 2xx, which is no transaction.
    Request {
        /// The server transaction created for it.
        key: Option<TransactionKey>,
        /// The request.
        request: rsip::Request,
    },
    /// A response matched no client transaction, such as a 2xx retransmitted after Timer M.
    StrayResponse {
        /// The response.
        response: rsip::Response,
    },
    /// A final response we sent was never acknowledged (Timer H, or the 2xx give-up timer).
    NoAck {
        /// The server INVITE transaction.
        key: TransactionKey,
    },
}

/// Why the layer refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The request has no top Via with a `z9hG4bK` branch.
    #[error("request has no RFC 3261 branch")]
    MissingBranch,
    /// ACK is never a transaction; send it with `send_stateless`.
    #[error("ACK is not sent through a transaction")]
    AckIsNotATransaction,
    /// A transaction with this key already exists.
    #[error("transaction already exists")]
    Duplicate,
    /// No server transaction has this key, or it already sent its final response.
    #[error("no such transaction awaiting a response")]
    NoSuchTransaction,
}

/// Builds the ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3).
pub fn ack_for_non_2xx(invite: &OutgoingRequest, response_to: &str) -> OutgoingRequest {
    let mut headers = Vec::new();
    if let Some(via) = invite.header("Via") {
        headers.push(("Via".to_string(), via.to_string()));
    }
    headers.push(("Max-Forwards".to_string(), "70".to_string()));
    for (name, value) in &invite.headers {
        if name.eq_ignore_ascii_case("Route") {
            headers.push((name.clone(), value.clone()));
        }
    }
    for name in ["From", "Call-ID"] {
        if let Some(value) = invite.header(name) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    headers.push(("To".to_string(), response_to.to_string()));
    headers.push((
        "CSeq".to_string(),
        format!("{} ACK", invite.cseq().unwrap_or(1)),
    ));
    OutgoingRequest {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
