//! One trunk at run time: its limits, OPTIONS keepalive, registration, and out-of-call requests.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Method, SipMessage};

use super::config::TrunkConfig;
use super::health::{options_answer_is_healthy, TrunkHealth};
use crate::sip::digest::{Challenge, ChallengeKind, Credentials};
use crate::sip::message::{header_value, param, OutgoingResponse};
use crate::sip::outbound::{self, IdGenerator, Trunk, ALLOW};
use crate::sip::transaction::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use crate::sip::Transmit;

/// How long to wait before trying a failed registration again.
const REGISTER_RETRY: Duration = Duration::from_secs(30);

/// A configured trunk, with everything the engine tracks about it.
#[derive(Debug)]
pub(crate) struct TrunkState {
    pub config: TrunkConfig,
    pub trunk: Trunk,
    pub credentials: Option<Credentials>,
    /// Our SIP address as this trunk sees it.
    pub local_sip: SocketAddr,
    /// Calls up or being set up through the trunk.
    pub active: usize,
    recent: VecDeque<Instant>,
    layer: TransactionLayer,
    ids: IdGenerator,
    next_options: Option<Instant>,
    /// OPTIONS pings sent and not yet answered or timed out.
    options_keys: Vec<TransactionKey>,
    register: Registration,
    health: TrunkHealth,
    /// Changes of health not yet told: `true` for up.
    changes: VecDeque<bool>,
}

#[derive(Debug)]
struct Registration {
    call_id: String,
    cseq: u32,
    next_at: Option<Instant>,
    key: Option<TransactionKey>,
    answered_challenge: bool,
    nonce_count: u32,
}

impl TrunkState {
    /// Creates the state of a trunk resolved to `trunk`, starting its timers at `now`.
    pub fn new(
        config: TrunkConfig,
        trunk: Trunk,
        local_sip: SocketAddr,
        timers: TimerConfig,
        now: Instant,
    ) -> Self {
        let credentials = config.username.clone().map(|username| Credentials {
            username,
            password: config.password.expose().to_string(),
        });
        let (config_down_after, config_up_after) = (config.down_after, config.up_after);
        let mut ids = IdGenerator::from_entropy();
        let register = Registration {
            call_id: ids.call_id(),
            cseq: 0,
            next_at: config.register.then_some(now),
            key: None,
            answered_challenge: false,
            nonce_count: 0,
        };
        TrunkState {
            next_options: config.options_interval.map(|_| now),
            config,
            trunk,
            credentials,
            local_sip,
            active: 0,
            recent: VecDeque::new(),
            layer: TransactionLayer::new(timers),
            ids,
            options_keys: Vec::new(),
            register,
            health: TrunkHealth::new(config_down_after, config_up_after),
            changes: VecDeque::new(),
        }
    }

    /// Returns whether the trunk takes new calls.
    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }

    /// Returns the next change of the trunk's health: `true` when it came up.
    pub fn poll_health(&mut self) -> Option<bool> {
        self.changes.pop_front()
    }

    fn observe(&mut self, ok: bool) {
        if let Some(up) = self.health.observe(ok) {
            self.changes.push_back(up);
        }
    }

    /// Tells whether the trunk may take one more call now, counting it if so.
    pub fn admit(&mut self, now: Instant) -> Result<(), super::DialError> {
        if self.active >= self.config.max_concurrent {
            return Err(super::DialError::TooManyCalls);
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.config.max_cps as usize {
            return Err(super::DialError::RateLimited);
        }
        self.recent.push_back(now);
        self.active += 1;
        Ok(())
    }

    /// Feeds a message from the trunk that belongs to no call.
    pub fn handle_message(&mut self, message: SipMessage, now: Instant) {
        self.layer
            .handle_message(message, self.trunk.address, self.trunk.transport, now);
        self.process(now);
    }

    /// Sends keepalives and registrations that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        if self.next_options.is_some_and(|t| t <= now) {
            let request = outbound::options(&self.trunk, self.local_sip, &mut self.ids);
            if let Some(key) = self.send(request, now) {
                self.options_keys.push(key);
            }
            self.next_options = self.config.options_interval.map(|i| now + i);
        }
        if self.register.next_at.is_some_and(|t| t <= now) {
            self.register.next_at = None;
            self.register.answered_challenge = false;
            self.send_register(None, now);
        }
        self.process(now);
    }

    /// Returns when `handle_timeout` must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.layer.poll_timeout(),
            self.next_options,
            self.register.next_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Returns the next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    fn send(
        &mut self,
        request: crate::sip::OutgoingRequest,
        now: Instant,
    ) -> Option<TransactionKey> {
        self.layer
            .send_request(request, self.trunk.address, self.trunk.transport, now)
            .ok()
    }

    fn send_register(&mut self, authorization: Option<(ChallengeKind, Challenge)>, now: Instant) {
        let Some(username) = self.config.username.clone() else {
            tracing::warn!(trunk = %self.config.name, "register is on but no username is set");
            return;
        };
        self.register.cseq += 1;
        let expires = u32::try_from(self.config.register_expires.as_secs()).unwrap_or(3600);
        let mut request = outbound::register(
            &self.trunk,
            &username,
            self.local_sip,
            expires,
            &self.register.call_id,
            self.register.cseq,
            &mut self.ids,
        );
        if let (Some((kind, challenge)), Some(credentials)) = (authorization, &self.credentials) {
            self.register.nonce_count += 1;
            let value = challenge.respond(
                credentials,
                "REGISTER",
                &request.uri,
                &request.body,
                &self.ids.hex(8),
                self.register.nonce_count,
            );
            request.set_header(kind.answer_header(), value);
        }
        self.register.key = self.send(request, now);
    }

    fn process(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                TransactionEvent::Final { key, response } if self.options_keys.contains(&key) => {
                    self.options_keys.retain(|k| *k != key);
                    let status = response.status_code.code();
                    tracing::debug!(trunk = %self.config.name, status, "options answered");
                    self.observe(options_answer_is_healthy(status));
                }
                TransactionEvent::Final { key, response }
                    if Some(&key) == self.register.key.as_ref() =>
                {
                    self.on_register_response(&response, now)
                }
                TransactionEvent::Timeout { key } | TransactionEvent::TransportError { key } => {
                    if Some(&key) == self.register.key.as_ref() {
                        tracing::warn!(trunk = %self.config.name, "registration got no answer");
                        self.register.next_at = Some(now + REGISTER_RETRY);
                        self.observe(false);
                    } else if self.options_keys.contains(&key) {
                        self.options_keys.retain(|k| *k != key);
                        tracing::warn!(trunk = %self.config.name, "trunk did not answer OPTIONS");
                        self.observe(false);
                    }
                }
                TransactionEvent::Request {
                    key: Some(key),
                    request,
                } => {
                    // Fresh INVITEs go to the engine as offered calls; what
                    // comes here names a dialog that does not exist.
                    let status = match request.method {
                        Method::Options => 200,
                        _ => 481,
                    };
                    let mut response =
                        OutgoingResponse::to_request(&request, status, Some(&self.ids.tag()));
                    if status == 200 {
                        response.headers.push(("Allow".into(), ALLOW.into()));
                    }
                    let _ = self.layer.respond(&key, &response, now);
                }
                _ => {}
            }
        }
    }

    fn on_register_response(&mut self, response: &rsip::Response, now: Instant) {
        let status = response.status_code.code();
        let name = &self.config.name;
        match status {
            200..=299 => {
                let granted = header_value(&response.headers, "Contact")
                    .and_then(|c| param(&c, "expires").and_then(|e| e.parse::<u64>().ok()))
                    .or_else(|| {
                        header_value(&response.headers, "Expires").and_then(|e| e.parse().ok())
                    })
                    .unwrap_or(self.config.register_expires.as_secs());
                // Refresh well before expiry so one lost REGISTER does not drop the binding.
                let refresh = Duration::from_secs(granted.max(10) * 3 / 4);
                tracing::info!(trunk = %name, expires = granted, "registered");
                self.register.next_at = Some(now + refresh);
                self.observe(true);
            }
            401 | 407 if !self.register.answered_challenge => {
                let (header, kind) = match status {
                    401 => ("WWW-Authenticate", ChallengeKind::Www),
                    _ => ("Proxy-Authenticate", ChallengeKind::Proxy),
                };
                match header_value(&response.headers, header).map(|v| Challenge::parse(&v)) {
                    Some(Ok(challenge)) => {
                        self.register.answered_challenge = true;
                        self.send_register(Some((kind, challenge)), now);
                    }
                    _ => self.register.next_at = Some(now + REGISTER_RETRY),
                }
            }
            _ => {
                tracing::warn!(trunk = %name, status, "registration refused");
                self.register.next_at = Some(now + REGISTER_RETRY);
            }
        }
    }
}
