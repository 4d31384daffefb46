//! Server transactions (RFC 3261 §17.2): INVITE (Timers G, H, I) and non-INVITE (J).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::TimerConfig;

/// State of a server transaction; Trying (non-INVITE) folds into `Proceeding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// What a server transaction asks the layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerOutput {
    Send(Vec<u8>),
    NoAck,
}

/// One server transaction.
#[derive(Debug)]
pub(crate) struct ServerTransaction {
    invite: bool,
    reliable: bool,
    config: TimerConfig,
    state: ServerState,
    /// Call-ID and CSeq number, to match the ACK of a 2xx (which has its own branch).
    pub(crate) dialog_match: (String, u32),
    last_response: Option<Vec<u8>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    deadline: Option<Instant>,
    pub(crate) out: VecDeque<ServerOutput>,
}

impl ServerTransaction {
    /// Creates the transaction for a newly received request.
    pub(crate) fn new(
        invite: bool,
        reliable: bool,
        config: TimerConfig,
        dialog_match: (String, u32),
    ) -> Self {
        ServerTransaction {
            invite,
            reliable,
            config,
            state: ServerState::Proceeding,
            dialog_match,
            last_response: None,
            interval: config.t1,
            retransmit_at: None,
            deadline: None,
            out: VecDeque::new(),
        }
    }

    pub(crate) fn state(&self) -> ServerState {
        self.state
    }

    /// Returns the earliest instant at which a timer fires.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match (self.retransmit_at, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Returns whether the TU may still send a response.
    pub(crate) fn accepts_response(&self) -> bool {
        self.state == ServerState::Proceeding
    }

    /// Sends a response from the TU.
    pub(crate) fn respond(&mut self, status: u16, bytes: Vec<u8>, now: Instant) {
        self.out.push_back(ServerOutput::Send(bytes.clone()));
        self.last_response = Some(bytes);
        if status < 200 {
            return;
        }
        let timeout = self.config.transaction_timeout();
        match (self.invite, status) {
            (true, 200..=299) => {
                // The 2xx is retransmitted until its ACK arrives (RFC 3261 §13.3.1.4).
                self.state = ServerState::Accepted;
                self.retransmit_at = (!self.reliable).then(|| now + self.config.t1);
                self.deadline = Some(now + timeout);
            }
            (true, _) => {
                self.state = ServerState::Completed;
                self.retransmit_at = (!self.reliable).then(|| now + self.config.t1);
                self.deadline = Some(now + timeout);
            }
            (false, _) if self.reliable => self.terminate(),
            (false, _) => {
                // Timer J: only absorbs retransmitted requests, so it may run late.
                self.state = ServerState::Completed;
                self.deadline = Some(self.config.linger_until(now, timeout));
            }
        }
    }

    /// Handles a retransmission of the request that created this transaction.
    pub(crate) fn handle_retransmission(&mut self) {
        let resend = match self.state {
            ServerState::Proceeding | ServerState::Completed => true,
            ServerState::Accepted => true,
            ServerState::Confirmed | ServerState::Terminated => false,
        };
        if let (true, Some(bytes)) = (resend, &self.last_response) {
            self.out.push_back(ServerOutput::Send(bytes.clone()));
        }
    }

    /// Handles the ACK to our final response; returns whether it was absorbed here.
    pub(crate) fn handle_ack(&mut self, now: Instant) -> bool {
        match self.state {
            ServerState::Completed => {
                self.state = ServerState::Confirmed;
                self.retransmit_at = None;
                let linger = match self.reliable {
                    true => Duration::ZERO,
                    false => self.config.t4,
                };
                self.deadline = Some(self.config.linger_until(now, linger));
                true
            }
            ServerState::Accepted => {
                self.terminate();
                false
            }
            ServerState::Confirmed => true,
            _ => false,
        }
    }

    /// Handles a transport failure reported by the shell.
    pub(crate) fn transport_error(&mut self) {
        self.terminate();
    }

    /// Fires every timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            if matches!(self.state, ServerState::Completed | ServerState::Accepted) {
                self.out.push_back(ServerOutput::NoAck);
            }
            self.terminate();
            return;
        }
        if let Some(at) = self.retransmit_at.filter(|at| *at <= now) {
            if let Some(bytes) = &self.last_response {
                self.out.push_back(ServerOutput::Send(bytes.clone()));
            }
            self.interval = (self.interval * 2).min(self.config.t2);
            self.retransmit_at = Some(at + self.interval);
        }
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.retransmit_at = None;
        self.deadline = None;
    }
}
