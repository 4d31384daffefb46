//! The transaction layer: matches messages to transactions and drives their timers.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Method, SipMessage};

use super::client::{ClientOutput, ClientState, ClientTransaction};
use super::server::{ServerOutput, ServerState, ServerTransaction};
use super::{TimerConfig, TransactionError, TransactionEvent, TransactionKey};
use crate::sip::message::{
    header_value, param, OutgoingRequest, OutgoingResponse, Transmit, Transport,
};
use crate::sip::outbound::ALLOW;
use crate::sip::screen::screen_allowing;

/// All live transactions of one endpoint, sans-IO.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    /// Methods a new request may have; others are answered 405 here.
    allow: &'static str,
    clients: BTreeMap<TransactionKey, (ClientTransaction, SocketAddr, Transport)>,
    servers: BTreeMap<TransactionKey, (ServerTransaction, SocketAddr, Transport)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
    /// The earliest timer of any transaction, kept by `drain`, through which
    /// every change passes: the endpoint asks for it on every turn of its
    /// loop, and a trunk's layer can hold thousands of transactions.
    next_timeout: Option<Instant>,
}

impl TransactionLayer {
    /// Creates an empty layer with these timer values, for the methods of [`ALLOW`].
    pub fn new(config: TimerConfig) -> Self {
        TransactionLayer::allowing(config, ALLOW)
    }

    /// Creates an empty layer whose server transactions take only the methods in `allow`
    /// (comma-separated, as in an Allow header), such as a registrar's `"REGISTER"`.
    pub fn allowing(config: TimerConfig, allow: &'static str) -> Self {
        TransactionLayer {
            config,
            allow,
            clients: BTreeMap::new(),
            servers: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_timeout: None,
        }
    }

    /// Returns the timer values.
    pub fn config(&self) -> TimerConfig {
        self.config
    }

    /// Starts a client transaction for `request` and queues its first transmission.
    pub fn send_request(
        &mut self,
        request: OutgoingRequest,
        destination: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Result<TransactionKey, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckIsNotATransaction);
        }
        let branch = request
            .branch()
            .filter(|b| b.starts_with("z9hG4bK"))
            .ok_or(TransactionError::MissingBranch)?;
        let key = TransactionKey {
            branch: branch.to_string(),
            method: request.method,
        };
        if self.clients.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let tx = ClientTransaction::new(request, transport.is_reliable(), self.config, now);
        self.clients
            .insert(key.clone(), (tx, destination, transport));
        self.drain(now);
        Ok(key)
    }

    /// Queues bytes outside any transaction, such as the ACK to a 2xx.
    pub fn send_stateless(
        &mut self,
        payload: Vec<u8>,
        destination: SocketAddr,
        transport: Transport,
    ) {
        self.transmits.push_back(Transmit {
            destination,
            transport,
            payload,
        });
    }

    /// Notes that a CANCEL was sent for this INVITE, starting the 64*T1 guard.
    pub fn cancel_sent(&mut self, invite: &TransactionKey, now: Instant) {
        if let Some((tx, _, _)) = self.clients.get_mut(invite) {
            tx.cancel_sent(now);
        }
        self.drain(now);
    }

    /// Sends a response through the server transaction `key`.
    pub fn respond(
        &mut self,
        key: &TransactionKey,
        response: &OutgoingResponse,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let (tx, _, _) = self
            .servers
            .get_mut(key)
            .filter(|(tx, _, _)| tx.accepts_response())
            .ok_or(TransactionError::NoSuchTransaction)?;
        tx.respond(response.status, response.to_bytes(), now);
        self.drain(now);
        Ok(())
    }

    /// Reports that sending for `key` failed at the transport (ICMP error, TCP reset).
    pub fn transport_error(&mut self, key: &TransactionKey, now: Instant) {
        if let Some((tx, _, _)) = self.clients.get_mut(key) {
            tx.transport_error();
        }
        if let Some((tx, _, _)) = self.servers.get_mut(key) {
            tx.transport_error();
            self.events
                .push_back(TransactionEvent::TransportError { key: key.clone() });
        }
        self.drain(now);
    }

    /// Feeds one parsed message received from `source`.
    pub fn handle_message(
        &mut self,
        message: SipMessage,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        match message {
            SipMessage::Response(response) => self.handle_response(response, now),
            SipMessage::Request(request) => self.handle_request(request, source, transport, now),
        }
        self.drain(now);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (tx, _, _) in self.clients.values_mut() {
            tx.handle_timeout(now);
        }
        for (tx, _, _) in self.servers.values_mut() {
            tx.handle_timeout(now);
        }
        self.drain(now);
    }

    /// Returns the next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns the next event for the layer above.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// Returns when `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    /// Returns whether a transaction with this key is still alive.
    pub fn is_active(&self, key: &TransactionKey) -> bool {
        self.clients.contains_key(key) || self.servers.contains_key(key)
    }

    fn handle_response(&mut self, response: rsip::Response, now: Instant) {
        let key = response_key(&response);
        match key.and_then(|k| self.clients.get_mut(&k)) {
            Some((tx, _, _)) => tx.handle_response(response, now),
            None => self
                .events
                .push_back(TransactionEvent::StrayResponse { response }),
        }
    }

    fn handle_request(
        &mut self,
        request: rsip::Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let branch = request_branch(&request);
        let method = match request.method {
            Method::Ack => Method::Invite,
            m => m,
        };
        let key = TransactionKey { branch, method };
        let dialog_match = dialog_match(&request);
        if let Some((tx, _, _)) = self.servers.get_mut(&key) {
            match request.method {
                Method::Ack if tx.handle_ack(now) => {}
                Method::Ack => self
                    .events
                    .push_back(TransactionEvent::Request { key: None, request }),
                _ => tx.handle_retransmission(),
            }
            return;
        }
        if request.method == Method::Ack {
            // The ACK of a 2xx has its own branch; it ends the matching 2xx retransmissions.
            for (tx, _, _) in self.servers.values_mut() {
                if tx.state() == ServerState::Accepted && tx.dialog_match == dialog_match {
                    tx.handle_ack(now);
                }
            }
            self.events
                .push_back(TransactionEvent::Request { key: None, request });
            return;
        }
        let invite = request.method == Method::Invite;
        let mut tx =
            ServerTransaction::new(invite, transport.is_reliable(), self.config, dialog_match);
        if let Some(response) = screen_allowing(&request, self.allow) {
            // Answered here, so a retransmission of the request gets the same answer.
            tx.respond(response.status, response.to_bytes(), now);
            self.servers.insert(key, (tx, source, transport));
            return;
        }
        self.servers.insert(key.clone(), (tx, source, transport));
        self.events.push_back(TransactionEvent::Request {
            key: Some(key),
            request,
        });
    }

    /// Moves transaction outputs into the layer queues and drops terminated transactions.
    fn drain(&mut self, _now: Instant) {
        for (key, (tx, destination, transport)) in self.clients.iter_mut() {
            while let Some(output) = tx.out.pop_front() {
                let key = key.clone();
                match output {
                    ClientOutput::Send(payload) => self.transmits.push_back(Transmit {
                        destination: *destination,
                        transport: *transport,
                        payload,
                    }),
                    ClientOutput::Provisional(response) => self
                        .events
                        .push_back(TransactionEvent::Provisional { key, response }),
                    ClientOutput::Final(response) => self
                        .events
                        .push_back(TransactionEvent::Final { key, response }),
                    ClientOutput::Timeout => {
                        self.events.push_back(TransactionEvent::Timeout { key })
                    }
                    ClientOutput::TransportError => self
                        .events
                        .push_back(TransactionEvent::TransportError { key }),
                }
            }
        }
        for (key, (tx, destination, transport)) in self.servers.iter_mut() {
            while let Some(output) = tx.out.pop_front() {
                match output {
                    ServerOutput::Send(payload) => self.transmits.push_back(Transmit {
                        destination: *destination,
                        transport: *transport,
                        payload,
                    }),
                    ServerOutput::NoAck => self
                        .events
                        .push_back(TransactionEvent::NoAck { key: key.clone() }),
                }
            }
        }
        let mut next: Option<Instant> = None;
        let mut note = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        self.clients.retain(|_, (tx, _, _)| {
            let live = tx.state() != ClientState::Terminated;
            if live {
                note(tx.next_timeout());
            }
            live
        });
        self.servers.retain(|_, (tx, _, _)| {
            let live = tx.state() != ServerState::Terminated;
            if live {
                note(tx.next_timeout());
            }
            live
        });
        self.next_timeout = next;
    }
}

fn response_key(response: &rsip::Response) -> Option<TransactionKey> {
    let via = header_value(&response.headers, "Via")?;
    let branch = param(&via, "branch")?.to_string();
    let cseq = header_value(&response.headers, "CSeq")?;
    let method: Method = cseq.split_whitespace().nth(1)?.parse().ok()?;
    Some(TransactionKey { branch, method })
}

/// Returns the key branch of a server transaction (RFC 3261 §17.2.3).
///
/// With the RFC 3261 cookie and an identifier, that is the top Via's branch and sent-by, since
/// two senders may pick the same branch. Without, it is built from the fields RFC 2543
/// requests are matched by (an ACK shares its INVITE's Request-URI, From tag, Call-ID, CSeq
/// number and top Via).
fn request_branch(request: &rsip::Request) -> String {
    let via = header_value(&request.headers, "Via").unwrap_or_default();
    let sent_by = via.split([';', ',']).next().unwrap_or("");
    if let Some(branch) = param(&via, "branch").filter(|b| b.len() > "z9hG4bK".len()) {
        if branch.starts_with("z9hG4bK") {
            return format!("{branch};{sent_by}");
        }
    }
    let from = header_value(&request.headers, "From").unwrap_or_default();
    let (call_id, cseq) = dialog_match(request);
    format!(
        "rfc2543;{};{};{call_id};{cseq};{sent_by}",
        request.uri,
        param(&from, "tag").unwrap_or("")
    )
}

fn dialog_match(request: &rsip::Request) -> (String, u32) {
    let call_id = header_value(&request.headers, "Call-ID").unwrap_or_default();
    let cseq = header_value(&request.headers, "CSeq")
        .and_then(|c| c.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (call_id, cseq)
}
