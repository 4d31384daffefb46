//! A sans-IO SIP registrar (RFC 3261 §10.3) for agents' desk phones.
//!
//! The credentials live in a database, so a REGISTER takes two steps.
//! [`Registrar::handle_register`] answers at once whatever needs no lookup: 400 for a malformed
//! request, 401 challenges (SHA-256 then MD5, [`super::digest_server`]), 403 while the source
//! or the username is throttled. Otherwise it returns a [`Pending`] naming the username; the
//! shell looks that up and hands what it found to [`Registrar::complete`], which verifies the
//! answer and changes the bindings. An unknown user and a wrong password get the same 403.
//!
//! A binding keeps the address and transport the REGISTER came from, and [`Registrar::binding`]
//! says to send there, not to the Contact's host, which behind NAT is a private address (the
//! idea of Via `received` and `rport`, RFC 3581). Bindings expire by themselves through
//! [`Registrar::poll_timeout`] and [`Registrar::handle_timeout`].
//!
//! Failed authentications are counted per source IP and per username: past
//! [`MAX_FAILURES_PER_ADDRESS`] or [`MAX_FAILURES_PER_USER`] within [`FAILURE_WINDOW`], requests
//! get a bare 403 with no challenge and no lookup, except from the very address and transport
//! of a live binding of that username, so a stranger cannot lock out a registered phone.

mod request;
mod throttle;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use rsip::Method;

use self::request::{ContactRequest, Contacts, Register};
use self::throttle::Throttle;
pub use self::throttle::{
    FAILURE_WINDOW, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_USER, MAX_TRACKED_KEYS,
};
use super::digest::Algorithm;
use super::digest_server::{
    verify_response, Authorization, AuthorizationError, DigestServer, NonceCheck, NonceKey,
    Refusal, StoredCredentials, CLOCK_SKEW, NONCE_LIFETIME,
};
use super::message::{header_values, reason_phrase, OutgoingResponse, Transport};
use super::outbound::IdGenerator;

/// Shortest registration granted, in seconds; shorter requests get 423 with Min-Expires.
pub const MIN_EXPIRES: u32 = 60;

/// Longest registration granted, in seconds; longer requests are shortened to it.
pub const MAX_EXPIRES: u32 = 3600;

/// Registration granted when a phone asks for no particular length, in seconds.
pub const DEFAULT_EXPIRES: u32 = 3600;

/// Most contacts one username may have bound at once.
pub const MAX_BINDINGS_PER_USER: usize = 5;

/// How the registrar is set up.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Realm of challenges; the stored HA1 values must have been computed for it.
    pub realm: String,
    /// Secret that signs nonces, the same on every node.
    pub nonce_key: NonceKey,
    /// Shortest registration granted, in seconds.
    pub min_expires: u32,
    /// Longest registration granted, in seconds.
    pub max_expires: u32,
    /// Registration granted when none is asked for, in seconds.
    pub default_expires: u32,
    /// Challenges with MD5 only, for phones that fail on a challenge whose algorithm they do
    /// not know instead of skipping it (baresip 1.0 on libre 1.1), or that answer the first
    /// challenge whatever its algorithm (sipp 3.6). Off by default: SHA-256, then MD5. An
    /// answer with either is accepted in both cases.
    pub md5_only: bool,
}

impl RegistrarConfig {
    /// Returns a configuration with the default expiry limits.
    pub fn new(realm: impl Into<String>, nonce_key: NonceKey) -> Self {
        RegistrarConfig {
            realm: realm.into(),
            nonce_key,
            min_expires: MIN_EXPIRES,
            max_expires: MAX_EXPIRES,
            default_expires: DEFAULT_EXPIRES,
            md5_only: false,
        }
    }
}

/// One contact bound to a username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI the phone registered.
    pub contact: String,
    /// Where the REGISTER came from, and so where requests to the phone go.
    pub destination: SocketAddr,
    /// Transport the REGISTER came over; for TCP and TLS, the connection from `destination`.
    pub transport: Transport,
    /// When the binding lapses unless refreshed.
    pub expires_at: Instant,
    call_id: String,
    cseq: u32,
}

/// Where to send an INVITE for a phone now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Request-URI of the INVITE: the Contact the phone registered.
    pub contact: String,
    /// Network address to send to.
    pub destination: SocketAddr,
    /// Transport to send with.
    pub transport: Transport,
}

/// A change to the bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// A contact was bound.
    Added {
        /// Whose binding.
        username: String,
        /// The new binding.
        binding: Binding,
    },
    /// A bound contact was registered again, perhaps from a new address.
    Refreshed {
        /// Whose binding.
        username: String,
        /// The binding as it is now.
        binding: Binding,
    },
    /// A contact was unbound by its phone or by [`Registrar::unregister`].
    Removed {
        /// Whose binding.
        username: String,
        /// The contact that was bound.
        contact: String,
    },
    /// A binding lapsed without being refreshed.
    Expired {
        /// Whose binding.
        username: String,
        /// The contact that was bound.
        contact: String,
    },
    /// A binding over TCP or TLS was dropped because its connection closed, so nothing can
    /// reach the phone there any more (see [`Registrar::disconnected`]).
    Disconnected {
        /// Whose binding.
        username: String,
        /// The contact that was bound.
        contact: String,
    },
}

/// What [`Registrar::handle_register`] decided.
#[derive(Debug)]
pub enum RegisterStep {
    /// Send this response to the source now.
    Respond(OutgoingResponse),
    /// Look up the credentials of [`Pending::username`], then call [`Registrar::complete`].
    Pending(Pending),
}

/// A REGISTER waiting for its user's stored credentials; `Debug` shows where it came from
/// only, as usernames may name people.
pub struct Pending(Box<PendingRegister>);

struct PendingRegister {
    register: Register,
    auth: Authorization,
    source: SocketAddr,
    transport: Transport,
    headers: Vec<(String, String)>,
    stale: bool,
    retry: Vec<String>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("source", &self.0.source)
            .field("transport", &self.0.transport)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Returns the SIP username whose credentials to look up.
    pub fn username(&self) -> &str {
        &self.0.register.username
    }

    /// Returns the address the REGISTER came from, where the response goes.
    pub fn source(&self) -> SocketAddr {
        self.0.source
    }

    /// Returns the transport the REGISTER came over.
    pub fn transport(&self) -> Transport {
        self.0.transport
    }
}

/// The outcome of a REGISTER whose credentials were looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Where to send the response.
    pub destination: SocketAddr,
    /// Transport to send it with.
    pub transport: Transport,
    /// The response.
    pub response: OutgoingResponse,
    /// What the REGISTER changed, in order; empty unless it succeeded.
    pub changes: Vec<BindingChange>,
    /// Whether it counted as a failed authentication (unknown user, wrong password, another
    /// user's credentials); a shell that shares failure counts between nodes records it there.
    pub failed: bool,
}

/// Desk phones' registrations: challenges, bindings, their expiry, and the failure throttle.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    digest: DigestServer,
    ids: IdGenerator,
    bindings: BTreeMap<String, Vec<Binding>>,
    throttle: Throttle,
    /// Highest nonce count accepted per nonce, until the nonce can no longer be fresh.
    counts: BTreeMap<String, (u32, Instant)>,
    events: VecDeque<BindingChange>,
}

impl Registrar {
    /// Creates a registrar with no bindings; expiry limits out of order are put in order.
    pub fn new(mut config: RegistrarConfig, ids: IdGenerator) -> Self {
        config.min_expires = config.min_expires.max(1);
        config.max_expires = config.max_expires.max(config.min_expires);
        config.default_expires = config
            .default_expires
            .clamp(config.min_expires, config.max_expires);
        let digest = DigestServer::new(config.realm.clone(), config.nonce_key.clone());
        Registrar {
            config,
            digest,
            ids,
            bindings: BTreeMap::new(),
            throttle: Throttle::default(),
            counts: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Takes a REGISTER that arrived from `source` over `transport`.
    ///
    /// `now` drives the bindings and the throttle; `wall` dates nonces, which other nodes
    /// check against their own clocks.
    pub fn handle_register(
        &mut self,
        request: &rsip::Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
        wall: SystemTime,
    ) -> RegisterStep {
        let headers = self.response_headers(request, source);
        let respond = |status, extra: Vec<(String, String)>| {
            RegisterStep::Respond(response(&headers, status, extra))
        };
        if request.method != Method::Register {
            return respond(405, vec![("Allow".into(), "REGISTER".into())]);
        }
        let register = match request::read(request) {
            Ok(register) => register,
            Err(why) => return respond(400, vec![warning(why)]),
        };
        if self.throttled(&register.username, source, transport, now) {
            tracing::debug!("REGISTER refused unheard: too many failures");
            return respond(403, Vec::new());
        }
        let mut ours = None;
        for value in header_values(&request.headers, "Authorization") {
            match Authorization::parse(&value) {
                Ok(auth) if auth.realm == self.config.realm => ours = Some(auth),
                Ok(_) | Err(AuthorizationError::NotDigest) => {}
                Err(_) => return respond(400, vec![warning("malformed Authorization")]),
            }
        }
        let challenge = |registrar: &mut Self, stale| {
            let nonce = registrar.nonce(source, wall);
            registrar
                .challenges(&nonce, stale)
                .into_iter()
                .map(|c| ("WWW-Authenticate".to_string(), c))
                .collect()
        };
        let Some(auth) = ours else {
            return respond(401, challenge(self, false));
        };
        let stale = match self.digest.precheck(&auth, &request.uri, source.ip(), wall) {
            Ok(check) => check == NonceCheck::Stale,
            Err(Refusal::OtherRealm | Refusal::InvalidNonce) => {
                return respond(401, challenge(self, false))
            }
            Err(Refusal::BadRequest(why)) => return respond(400, vec![warning(why)]),
        };
        let nonce = self.nonce(source, wall);
        let retry = self.challenges(&nonce, true);
        RegisterStep::Pending(Pending(Box::new(PendingRegister {
            register,
            auth,
            source,
            transport,
            headers,
            stale,
            retry,
        })))
    }

    /// Finishes a REGISTER with the stored credentials of its username, `None` when there are
    /// none (unknown or inactive user).
    pub fn complete(
        &mut self,
        pending: Pending,
        stored: Option<&StoredCredentials>,
        now: Instant,
    ) -> Completion {
        self.handle_timeout(now);
        let p = *pending.0;
        let done = |status, extra, changes| Completion {
            destination: p.source,
            transport: p.transport,
            response: response(&p.headers, status, extra),
            changes,
            failed: false,
        };
        let username = &p.register.username;
        // Checked again: other answers may have failed since this one was first seen, and
        // the limit must hold however many guesses arrive at once.
        if self.throttled(username, p.source, p.transport, now) {
            return done(403, Vec::new(), Vec::new());
        }
        // RFC 3261 §10.3 step 3: the credentials must be those of the AOR's own user.
        let verified = self.verify(&p.auth, stored);
        if !verified || p.auth.username != *username {
            tracing::debug!("REGISTER refused: unknown user or wrong credentials");
            self.throttle.record(p.source.ip(), username, now);
            return Completion {
                failed: true,
                ..done(403, Vec::new(), Vec::new())
            };
        }
        let retry = || {
            p.retry
                .iter()
                .map(|c| ("WWW-Authenticate".into(), c.clone()))
        };
        let nc = p.auth.nc.unwrap_or(0);
        let replayed = self
            .counts
            .get(&p.auth.nonce)
            .is_some_and(|(seen, _)| nc <= *seen);
        if p.stale || replayed {
            return done(401, retry().collect(), Vec::new());
        }
        let until = now + NONCE_LIFETIME + CLOCK_SKEW;
        self.counts.insert(p.auth.nonce.clone(), (nc, until));
        match self.apply(&p.register, p.source, p.transport, now) {
            Ok(changes) => {
                let contacts = self.contact_headers(username, now);
                done(200, contacts, changes)
            }
            Err((status, extra)) => done(status, extra, Vec::new()),
        }
    }

    /// Answers a pending REGISTER with a bare 403 without checking or counting it, for a shell
    /// whose failure counts shared between nodes say its username or address is over the limit.
    pub fn refuse(&mut self, pending: Pending) -> Completion {
        let p = *pending.0;
        Completion {
            destination: p.source,
            transport: p.transport,
            response: response(&p.headers, 403, Vec::new()),
            changes: Vec::new(),
            failed: false,
        }
    }

    /// Answers a pending REGISTER with 503 and `Retry-After`, without checking or counting it,
    /// for a shell that cannot look its credentials up now (the store is down or slow, or too
    /// many lookups are under way).
    pub fn unavailable(&mut self, pending: Pending, retry_after: u32) -> Completion {
        let p = *pending.0;
        let extra = vec![("Retry-After".into(), retry_after.to_string())];
        Completion {
            destination: p.source,
            transport: p.transport,
            response: response(&p.headers, 503, extra),
            changes: Vec::new(),
            failed: false,
        }
    }

    /// Drops the bindings made over the TCP or TLS connection from `peer`, which has closed.
    ///
    /// A phone is reached through the connection it registered over: we cannot open one to
    /// the port it connected from, and its Contact names an address behind NAT. Until it
    /// registers again, over a new connection, it is unreachable.
    pub fn disconnected(&mut self, peer: SocketAddr) -> Vec<BindingChange> {
        let mut changes = Vec::new();
        for (username, list) in self.bindings.iter_mut() {
            list.retain(|b| {
                let lost = b.destination == peer && b.transport.is_reliable();
                if lost {
                    changes.push(BindingChange::Disconnected {
                        username: username.clone(),
                        contact: b.contact.clone(),
                    });
                }
                !lost
            });
        }
        self.bindings.retain(|_, list| !list.is_empty());
        changes
    }

    /// Returns where to send an INVITE for `username` now: the binding refreshed last.
    pub fn binding(&self, username: &str, now: Instant) -> Option<Target> {
        let binding = self
            .bindings
            .get(username)?
            .iter()
            .rev()
            .find(|b| b.expires_at > now)?;
        Some(Target {
            contact: binding.contact.clone(),
            destination: binding.destination,
            transport: binding.transport,
        })
    }

    /// Returns the live bindings of `username`, refreshed last at the end.
    pub fn bindings(&self, username: &str, now: Instant) -> Vec<Binding> {
        self.bindings
            .get(username)
            .map(|list| {
                list.iter()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops every binding of `username`, as when its credentials are removed.
    pub fn unregister(&mut self, username: &str) -> Vec<BindingChange> {
        self.bindings
            .remove(username)
            .unwrap_or_default()
            .into_iter()
            .map(|b| BindingChange::Removed {
                username: username.to_string(),
                contact: b.contact,
            })
            .collect()
    }

    /// Returns when [`Registrar::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let bindings = self.bindings.values().flatten().map(|b| b.expires_at);
        let counts = self.counts.values().map(|(_, until)| *until);
        bindings
            .chain(counts)
            .chain(self.throttle.next_expiry())
            .min()
    }

    /// Expires bindings (see [`Registrar::poll_event`]) and forgets old failures and nonces.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (username, list) in self.bindings.iter_mut() {
            list.retain(|b| {
                let live = b.expires_at > now;
                if !live {
                    self.events.push_back(BindingChange::Expired {
                        username: username.clone(),
                        contact: b.contact.clone(),
                    });
                }
                live
            });
        }
        self.bindings.retain(|_, list| !list.is_empty());
        self.counts.retain(|_, (_, until)| *until > now);
        self.throttle.prune(now);
    }

    /// Returns the next binding that expired; changes a REGISTER made come in its
    /// [`Completion`] instead.
    pub fn poll_event(&mut self) -> Option<BindingChange> {
        self.events.pop_front()
    }

    /// Tells whether a request gets 403 unheard. A phone refreshing its binding from the same
    /// address and transport is let through, so a stranger's failures for its username cannot
    /// lock it out.
    fn throttled(
        &self,
        username: &str,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> bool {
        let bound_here = self.bindings.get(username).is_some_and(|list| {
            list.iter()
                .any(|b| b.destination == source && b.transport == transport && b.expires_at > now)
        });
        !bound_here && self.throttle.blocked(source.ip(), username, now)
    }

    fn verify(&self, auth: &Authorization, stored: Option<&StoredCredentials>) -> bool {
        let ha1 = stored
            .filter(|s| s.realm == self.config.realm)
            .and_then(|s| s.ha1(auth.algorithm));
        match ha1 {
            Some(ha1) => verify_response(auth, "REGISTER", ha1),
            None => {
                // The same work as for a known user, so timing tells a stranger nothing.
                let decoy = match auth.algorithm {
                    Algorithm::Sha256 | Algorithm::Sha256Sess => "0".repeat(64),
                    Algorithm::Md5 | Algorithm::Md5Sess => "0".repeat(32),
                };
                let _ = verify_response(auth, "REGISTER", &decoy);
                false
            }
        }
    }

    /// Applies an authenticated REGISTER to the bindings, or says which error answers it.
    fn apply(
        &mut self,
        register: &Register,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Result<Vec<BindingChange>, Refused> {
        let username = &register.username;
        let current = self.bindings.get(username).cloned().unwrap_or_default();
        // RFC 3261 §10.3 step 7: a request older than the binding it would change is refused.
        let out_of_order = |contact: &str| {
            current.iter().any(|b| {
                b.contact == contact && b.call_id == register.call_id && b.cseq >= register.cseq
            })
        };
        let requests: &[ContactRequest] = match &register.contacts {
            Contacts::Query => return Ok(Vec::new()),
            Contacts::RemoveAll => {
                if current.iter().any(|b| out_of_order(&b.contact)) {
                    return Err((500, vec![warning("REGISTER out of order")]));
                }
                return Ok(self.unregister(username));
            }
            Contacts::Update(requests) => requests,
        };
        let mut next = current.clone();
        let mut changes = Vec::new();
        for request in requests {
            let asked = request.expires.unwrap_or(self.config.default_expires);
            if asked != 0 && asked < self.config.min_expires {
                let min = self.config.min_expires.to_string();
                return Err((423, vec![("Min-Expires".into(), min)]));
            }
            if out_of_order(&request.uri) {
                return Err((500, vec![warning("REGISTER out of order")]));
            }
            let existing = next.iter().position(|b| b.contact == request.uri);
            let old = existing.map(|i| next.remove(i));
            if asked == 0 {
                if old.is_some() {
                    changes.push(BindingChange::Removed {
                        username: username.clone(),
                        contact: request.uri.clone(),
                    });
                }
                continue;
            }
            let granted = asked.min(self.config.max_expires);
            let binding = Binding {
                contact: request.uri.clone(),
                destination: source,
                transport,
                expires_at: now + std::time::Duration::from_secs(u64::from(granted)),
                call_id: register.call_id.clone(),
                cseq: register.cseq,
            };
            changes.push(match old {
                Some(_) => BindingChange::Refreshed {
                    username: username.clone(),
                    binding: binding.clone(),
                },
                None => BindingChange::Added {
                    username: username.clone(),
                    binding: binding.clone(),
                },
            });
            next.push(binding);
        }
        if next.len() > MAX_BINDINGS_PER_USER {
            return Err((403, vec![warning("too many registered contacts")]));
        }
        match next.is_empty() {
            true => self.bindings.remove(username),
            false => self.bindings.insert(username.clone(), next),
        };
        Ok(changes)
    }

    /// Returns a Contact header for each live binding, with the seconds it has left.
    fn contact_headers(&self, username: &str, now: Instant) -> Vec<(String, String)> {
        self.bindings(username, now)
            .into_iter()
            .map(|b| {
                let left = b.expires_at.saturating_duration_since(now);
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                ("Contact".into(), format!("<{}>;expires={secs}", b.contact))
            })
            .collect()
    }

    /// Returns the headers every response to `request` carries, the top Via stamped with
    /// where it came from.
    fn response_headers(
        &mut self,
        request: &rsip::Request,
        source: SocketAddr,
    ) -> Vec<(String, String)> {
        let tag = self.ids.tag();
        let mut base = OutgoingResponse::to_request(request, 200, Some(&tag)).headers;
        if let Some((_, via)) = base.iter_mut().find(|(name, _)| name == "Via") {
            *via = stamp_via(via, source);
        }
        base
    }

    /// Returns the WWW-Authenticate values for a nonce: both, or MD5 alone.
    fn challenges(&self, nonce: &str, stale: bool) -> Vec<String> {
        let [sha256, md5] = self.digest.challenges(nonce, stale);
        match self.config.md5_only {
            true => vec![md5],
            false => vec![sha256, md5],
        }
    }

    fn nonce(&mut self, source: SocketAddr, wall: SystemTime) -> String {
        let salt = u64::from_str_radix(&self.ids.hex(8), 16).unwrap_or_default();
        self.digest.nonce(source.ip(), wall, salt)
    }
}

/// Adds `received` and fills `rport` in the top Via (RFC 3261 §18.2.1, RFC 3581), so the
/// phone learns the address we see it at.
fn stamp_via(value: &str, source: SocketAddr) -> String {
    let (top, rest) = match super::message::split_list(value).split_first() {
        Some((top, rest)) => (top.clone(), rest.to_vec()),
        None => return value.to_string(),
    };
    let mut parts = top.split(';').map(str::trim);
    let sent_by = parts.next().unwrap_or_default().to_string();
    let mut params: Vec<String> = Vec::new();
    let mut rport = false;
    for part in parts {
        let name = part.split('=').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("rport") {
            rport = true;
        } else if !name.eq_ignore_ascii_case("received") && !part.is_empty() {
            params.push(part.to_string());
        }
    }
    let ip = source.ip().to_canonical();
    let mut stamped = format!("{sent_by};received={ip}");
    if rport {
        stamped.push_str(&format!(";rport={}", source.port()));
    }
    for param in params {
        stamped.push(';');
        stamped.push_str(&param);
    }
    std::iter::once(stamped)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(", ")
}

fn response(
    headers: &[(String, String)],
    status: u16,
    extra: Vec<(String, String)>,
) -> OutgoingResponse {
    let reason = match status {
        403 => "Forbidden",
        423 => "Interval Too Brief",
        other => reason_phrase(other),
    };
    let mut all = headers.to_vec();
    all.extend(extra);
    OutgoingResponse {
        status,
        reason: reason.to_string(),
        headers: all,
        body: Vec::new(),
    }
}

/// A status and the headers that explain it, for a REGISTER that changes nothing.
type Refused = (u16, Vec<(String, String)>);

fn warning(text: &str) -> (String, String) {
    ("Warning".into(), format!("399 - \"{text}\""))
}

#[cfg(test)]
mod tests;
