//! Client transactions (RFC 3261 §17.1): INVITE (Timers A, B, D) and non-INVITE (E, F, K).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ack_for_non_2xx, TimerConfig};
use crate::sip::message::{header_value, OutgoingRequest};

/// State of a client transaction; Calling and Trying share `Initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    Initial,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// What a client transaction asks the layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientOutput {
    Send(Vec<u8>),
    Provisional(rsip::Response),
    Final(rsip::Response),
    Timeout,
    TransportError,
}

/// One client transaction.
#[derive(Debug)]
pub(crate) struct ClientTransaction {
    invite: bool,
    reliable: bool,
    config: TimerConfig,
    state: ClientState,
    request: OutgoingRequest,
    bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    deadline: Option<Instant>,
    cancel_guard: Option<Instant>,
    pub(crate) out: VecDeque<ClientOutput>,
}

impl ClientTransaction {
    /// Starts the transaction, queueing the first transmission.
    pub(crate) fn new(
        request: OutgoingRequest,
        reliable: bool,
        config: TimerConfig,
        now: Instant,
    ) -> Self {
        let bytes = request.to_bytes();
        let invite = request.method == rsip::Method::Invite;
        let mut tx = ClientTransaction {
            invite,
            reliable,
            config,
            state: ClientState::Initial,
            request,
            bytes: bytes.clone(),
            ack: None,
            interval: config.t1,
            retransmit_at: (!reliable).then(|| now + config.t1),
            deadline: Some(now + config.transaction_timeout()),
            cancel_guard: None,
            out: VecDeque::new(),
        };
        tx.out.push_back(ClientOutput::Send(bytes));
        tx
    }

    pub(crate) fn state(&self) -> ClientState {
        self.state
    }

    /// Returns the earliest instant at which a timer fires.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match (self.retransmit_at, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles a response whose branch and CSeq method matched this transaction.
    pub(crate) fn handle_response(&mut self, response: rsip::Response, now: Instant) {
        let code = response.status_code.code();
        match (self.state, code) {
            (ClientState::Initial | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                if self.invite {
                    // Timer B guards only the Calling state; the TU ends a ringing call.
                    self.retransmit_at = None;
                    self.deadline = self.cancel_guard;
                } else if self.retransmit_at.is_some() {
                    self.interval = self.config.t2;
                }
                self.out.push_back(ClientOutput::Provisional(response));
            }
            (ClientState::Initial | ClientState::Proceeding, 200..=299) if self.invite => {
                self.state = ClientState::Accepted;
                self.retransmit_at = None;
                // Timer M: only absorbs retransmitted 2xx, so it may run late.
                self.deadline = Some(
                    self.config
                        .linger_until(now, self.config.transaction_timeout()),
                );
                self.out.push_back(ClientOutput::Final(response));
            }
            (ClientState::Accepted, 200..=299) => {
                self.out.push_back(ClientOutput::Final(response));
            }
            (ClientState::Initial | ClientState::Proceeding, 200..=699) => {
                self.state = ClientState::Completed;
                self.retransmit_at = None;
                let linger = match (self.reliable, self.invite) {
                    (true, _) => Duration::ZERO,
                    (false, true) => self.config.timer_d(),
                    (false, false) => self.config.t4,
                };
                self.deadline = Some(self.config.linger_until(now, linger));
                if self.invite {
                    let to = header_value(&response.headers, "To").unwrap_or_default();
                    let ack = ack_for_non_2xx(&self.request, &to).to_bytes();
                    self.out.push_back(ClientOutput::Send(ack.clone()));
                    self.ack = Some(ack);
                }
                self.out.push_back(ClientOutput::Final(response));
                if linger.is_zero() {
                    self.state = ClientState::Terminated;
                    self.deadline = None;
                }
            }
            (ClientState::Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.out.push_back(ClientOutput::Send(ack.clone()));
                }
            }
            _ => {}
        }
    }

    /// Starts the RFC 3261 §9.1 guard: with no final response 64*T1 after a CANCEL, give up.
    pub(crate) fn cancel_sent(&mut self, now: Instant) {
        if matches!(self.state, ClientState::Initial | ClientState::Proceeding) {
            let guard = now + self.config.transaction_timeout();
            let guard = self.cancel_guard.map_or(guard, |g| g.min(guard));
            self.cancel_guard = Some(guard);
            self.deadline = Some(self.deadline.map_or(guard, |d| d.min(guard)));
        }
    }

    /// Handles a transport failure reported by the shell.
    pub(crate) fn transport_error(&mut self) {
        if matches!(self.state, ClientState::Initial | ClientState::Proceeding) {
            self.terminate();
            self.out.push_back(ClientOutput::TransportError);
        }
    }

    /// Fires every timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            let timed_out = matches!(self.state, ClientState::Initial | ClientState::Proceeding);
            self.terminate();
            if timed_out {
                self.out.push_back(ClientOutput::Timeout);
            }
            return;
        }
        if let Some(at) = self.retransmit_at.filter(|at| *at <= now) {
            self.out.push_back(ClientOutput::Send(self.bytes.clone()));
            self.interval = match self.invite {
                true => self.interval * 2,
                false => (self.interval * 2).min(self.config.t2),
            };
            if self.state == ClientState::Proceeding {
                self.interval = self.config.t2;
            }
            self.retransmit_at = Some(at + self.interval);
        }
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit_at = None;
        self.deadline = None;
    }
}
