//! Agents' desk phones registering with the gateway: the shell around the sans-IO
//! [`Registrar`].
//!
//! A REGISTER, from whoever sends it, passes a transaction layer of its own that takes
//! only REGISTER: a retransmission gets the answer already sent (or nothing while the
//! answer is being worked out) and never reaches the registrar twice, where a repeated
//! nonce count would look like a replay. When the registrar needs the user's stored
//! credentials, the service's [`PhoneDirectory`] is asked in a task of its own, at most
//! [`MAX_LOOKUPS`] at once and each for at most [`PhoneOptions::lookup_timeout`]; a
//! REGISTER beyond that bound, or whose lookup failed, gets 503 with `Retry-After`. The
//! answer comes back to the engine's loop on a channel, the registrar completes the
//! REGISTER, and its changes to the bindings are told as [`PhoneEvent`]s.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rsip::SipMessage;
use tokio::sync::{broadcast, mpsc};

use super::transport::KnownPhones;
use super::types::GatewayError;
use crate::sip::digest_server::{NonceKey, StoredCredentials};
use crate::sip::outbound::IdGenerator;
use crate::sip::registrar::{
    BindingChange, Completion, Pending, RegisterStep, Registrar, RegistrarConfig, Target,
};
use crate::sip::transaction::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use crate::sip::{OutgoingResponse, Transmit, Transport};

/// Most credential lookups under way at once; REGISTERs beyond get 503.
pub const MAX_LOOKUPS: usize = 256;

/// Seconds a phone is asked to wait in a 503's `Retry-After`.
pub const RETRY_AFTER: u32 = 10;

/// How long a lookup may take by default before the phone gets 503.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a [`PhoneDirectory`] lookup resolves to.
pub type Lookup =
    Pin<Box<dyn Future<Output = Result<Option<StoredCredentials>, DirectoryError>> + Send>>;

/// Where the gateway finds desk phones' credentials: the service plugs its store in here,
/// so that the gateway knows nothing of the CRM.
pub trait PhoneDirectory: Send + Sync + 'static {
    /// Looks up the stored credentials of `sip_username` (an exact match) for a REGISTER
    /// from `source`: `Ok(None)` for an unknown or inactive user.
    ///
    /// Called on the gateway's task: do the work in the returned future, not before.
    fn credentials(&self, sip_username: &str, source: IpAddr) -> Lookup;

    /// Notes that a REGISTER for `sip_username` from `source` failed to authenticate, for a
    /// directory that shares failure counts between nodes (and answers
    /// [`DirectoryError::Throttled`] past its limit). Called on the gateway's task: it must
    /// not block. Does nothing unless implemented.
    fn failed(&self, sip_username: &str, source: IpAddr) {
        let _ = (sip_username, source);
    }
}

/// Why a [`PhoneDirectory`] gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The store could not answer now: the phone gets 503 and tries again later, and
    /// nothing is counted against it.
    #[error("the phone directory is unavailable")]
    Unavailable,
    /// Failure counts kept by the directory are over the limit for this username or
    /// address: the phone gets a bare 403, checked and counted no further.
    #[error("too many failed registrations")]
    Throttled,
}

/// How desk phones register: the registrar's settings and where credentials come from.
pub struct PhoneOptions {
    /// Realm, nonce secret and expiry limits.
    pub registrar: RegistrarConfig,
    /// Where the credentials are looked up.
    pub directory: Arc<dyn PhoneDirectory>,
    /// How long one lookup may take before the phone gets 503.
    pub lookup_timeout: Duration,
}

impl PhoneOptions {
    /// Takes desk phones for `realm`, with nonces signed by `nonce_secret` (the same on
    /// every node, at least 16 bytes) and credentials from `directory`; default expiry limits.
    pub fn new(
        realm: impl Into<String>,
        nonce_secret: &[u8],
        directory: Arc<dyn PhoneDirectory>,
    ) -> Result<PhoneOptions, GatewayError> {
        let key = NonceKey::new(nonce_secret).ok_or_else(|| {
            GatewayError::Config("the nonce secret for desk phones is under 16 bytes".into())
        })?;
        Ok(PhoneOptions {
            registrar: RegistrarConfig::new(realm, key),
            directory,
            lookup_timeout: LOOKUP_TIMEOUT,
        })
    }
}

impl std::fmt::Debug for PhoneOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneOptions")
            .field("registrar", &self.registrar)
            .field("lookup_timeout", &self.lookup_timeout)
            .finish_non_exhaustive()
    }
}

/// What the gateway takes besides its config and trunks; the default takes no desk phones.
#[derive(Debug, Default)]
pub struct GatewayOptions {
    /// Desk phones may register when set; without, REGISTER gets 403 like anything else
    /// from an address that is not a trunk.
    pub phones: Option<PhoneOptions>,
}

/// Where an INVITE to a registered desk phone goes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneTarget {
    /// Request-URI of the INVITE: the Contact the phone registered.
    pub contact: String,
    /// Address its REGISTER came from (its public address behind NAT); for TCP and TLS, the
    /// far end of the connection it registered over, which the gateway keeps.
    pub address: SocketAddr,
    /// Transport it registered over.
    pub transport: Transport,
}

impl From<Target> for PhoneTarget {
    fn from(target: Target) -> Self {
        PhoneTarget {
            contact: target.contact,
            address: target.destination,
            transport: target.transport,
        }
    }
}

/// A change to one desk phone's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneEvent {
    /// Whose phone: the SIP username it registered as.
    pub sip_username: String,
    /// What changed.
    pub kind: PhoneEventKind,
}

/// What changed in a desk phone's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEventKind {
    /// A contact was bound: the phone can be called there.
    Registered(PhoneTarget),
    /// A bound contact registered again, perhaps from a new address.
    Refreshed(PhoneTarget),
    /// The phone unregistered the contact, or [`super::Gateway::unregister`] removed it.
    Unregistered {
        /// The contact that was bound.
        contact: String,
    },
    /// The contact lapsed without being refreshed.
    Expired {
        /// The contact that was bound.
        contact: String,
    },
    /// The TCP or TLS connection the contact was registered over closed.
    Disconnected {
        /// The contact that was bound.
        contact: String,
    },
}

impl From<BindingChange> for PhoneEvent {
    fn from(change: BindingChange) -> Self {
        let (sip_username, kind) = match change {
            BindingChange::Added { username, binding } => (
                username,
                PhoneEventKind::Registered(PhoneTarget {
                    contact: binding.contact,
                    address: binding.destination,
                    transport: binding.transport,
                }),
            ),
            BindingChange::Refreshed { username, binding } => (
                username,
                PhoneEventKind::Refreshed(PhoneTarget {
                    contact: binding.contact,
                    address: binding.destination,
                    transport: binding.transport,
                }),
            ),
            BindingChange::Removed { username, contact } => {
                (username, PhoneEventKind::Unregistered { contact })
            }
            BindingChange::Expired { username, contact } => {
                (username, PhoneEventKind::Expired { contact })
            }
            BindingChange::Disconnected { username, contact } => {
                (username, PhoneEventKind::Disconnected { contact })
            }
        };
        PhoneEvent { sip_username, kind }
    }
}

/// A lookup's answer, back on the engine's loop.
#[derive(Debug)]
pub(crate) struct LookupDone {
    id: u64,
    answer: Result<Option<StoredCredentials>, DirectoryError>,
}

/// A REGISTER waiting for its lookup, and the transaction its answer goes through.
#[derive(Debug)]
struct InFlight {
    key: TransactionKey,
    pending: Pending,
}

/// The engine's desk phones: their registrar, its transactions and the lookups under way.
pub(crate) struct Phones {
    /// The registrar's realm, which names the domain of phones' addresses of record.
    realm: String,
    registrar: Registrar,
    layer: TransactionLayer,
    directory: Arc<dyn PhoneDirectory>,
    lookup_timeout: Duration,
    lookups: BTreeMap<u64, InFlight>,
    next_lookup: u64,
    done: mpsc::UnboundedSender<LookupDone>,
    events: broadcast::Sender<PhoneEvent>,
    /// Where phones registered from over UDP, for the receive task's budget.
    known: KnownPhones,
    /// The registrar's next deadline, kept after each change so the engine's loop need not
    /// walk every binding on each turn.
    registrar_timeout: Option<Instant>,
}

impl Phones {
    /// Sets up the registrar; lookups report on `done`, changes go to `events`.
    pub fn new(
        options: PhoneOptions,
        timers: TimerConfig,
        done: mpsc::UnboundedSender<LookupDone>,
        events: broadcast::Sender<PhoneEvent>,
        known: KnownPhones,
    ) -> Phones {
        Phones {
            known,
            realm: options.registrar.realm.clone(),
            registrar: Registrar::new(options.registrar, IdGenerator::from_entropy()),
            layer: TransactionLayer::allowing(timers, "REGISTER"),
            directory: options.directory,
            lookup_timeout: options.lookup_timeout,
            lookups: BTreeMap::new(),
            next_lookup: 0,
            done,
            events,
            registrar_timeout: None,
        }
    }

    /// Takes a REGISTER (or its retransmission) from `source`.
    pub fn handle_register(
        &mut self,
        request: rsip::Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        self.layer
            .handle_message(SipMessage::Request(request), source, transport, now);
        while let Some(event) = self.layer.poll_event() {
            // One message in, so a new request here is this one.
            if let TransactionEvent::Request {
                key: Some(key),
                request,
            } = event
            {
                self.register(key, &request, source, transport, now);
            }
        }
        self.note_timeout();
    }

    /// Completes the REGISTER whose lookup answered.
    pub fn looked_up(&mut self, done: LookupDone, now: Instant) {
        let Some(InFlight { key, pending }) = self.lookups.remove(&done.id) else {
            return;
        };
        let username = pending.username().to_string();
        let source = pending.source().ip();
        let completion = match done.answer {
            Ok(stored) => self.registrar.complete(pending, stored.as_ref(), now),
            Err(DirectoryError::Throttled) => self.registrar.refuse(pending),
            Err(DirectoryError::Unavailable) => {
                tracing::warn!("phone directory unavailable: REGISTER answered 503");
                self.registrar.unavailable(pending, RETRY_AFTER)
            }
        };
        if completion.failed {
            self.directory.failed(&username, source);
        }
        self.finish(&key, completion, now);
        self.drain_expired();
        self.note_timeout();
    }

    /// Drops the bindings made over a TCP or TLS connection that closed.
    pub fn disconnected(&mut self, peer: SocketAddr) {
        for change in self.registrar.disconnected(peer) {
            self.tell(change);
        }
        self.note_timeout();
    }

    /// Drops every binding of `sip_username`; tells whether there was any.
    pub fn unregister(&mut self, sip_username: &str) -> bool {
        let changes = self.registrar.unregister(sip_username);
        let any = !changes.is_empty();
        for change in changes {
            self.tell(change);
        }
        self.note_timeout();
        any
    }

    /// Returns where an INVITE to `sip_username` goes now.
    pub fn target(&self, sip_username: &str, now: Instant) -> Option<PhoneTarget> {
        self.registrar
            .binding(sip_username, now)
            .map(PhoneTarget::from)
    }

    /// Returns the realm phones register in.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Returns when [`Phones::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.layer.poll_timeout(), self.registrar_timeout]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the transactions' and the registrar's timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.layer.poll_timeout().is_some_and(|t| t <= now) {
            self.layer.handle_timeout(now);
        }
        if self.registrar_timeout.is_some_and(|t| t <= now) {
            self.registrar.handle_timeout(now);
            self.drain_expired();
            self.note_timeout();
        }
    }

    /// Returns the next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    fn register(
        &mut self,
        key: TransactionKey,
        request: &rsip::Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        // Nonces are dated by the wall clock, which other nodes compare with theirs.
        let wall = SystemTime::now();
        let pending = match self
            .registrar
            .handle_register(request, source, transport, now, wall)
        {
            RegisterStep::Respond(response) => return self.respond(&key, &response, now),
            RegisterStep::Pending(pending) => pending,
        };
        if self.lookups.len() >= MAX_LOOKUPS {
            tracing::debug!(%source, "too many phone lookups under way: REGISTER answered 503");
            let completion = self.registrar.unavailable(pending, RETRY_AFTER);
            return self.finish(&key, completion, now);
        }
        self.next_lookup += 1;
        let id = self.next_lookup;
        let lookup = self.directory.credentials(pending.username(), source.ip());
        self.lookups.insert(id, InFlight { key, pending });
        let done = self.done.clone();
        let limit = self.lookup_timeout;
        tokio::spawn(async move {
            let answer = tokio::time::timeout(limit, lookup)
                .await
                .unwrap_or(Err(DirectoryError::Unavailable));
            let _ = done.send(LookupDone { id, answer });
        });
    }

    /// Sends a completed REGISTER's response through its transaction (to the source it
    /// came from, which is the completion's destination) and tells what it changed.
    fn finish(&mut self, key: &TransactionKey, completion: Completion, now: Instant) {
        let Completion {
            response, changes, ..
        } = completion;
        self.respond(key, &response, now);
        for change in changes {
            self.tell(change);
        }
    }

    fn respond(&mut self, key: &TransactionKey, response: &OutgoingResponse, now: Instant) {
        if let Err(error) = self.layer.respond(key, response, now) {
            // Only if the transaction ended first, on a transport error.
            tracing::debug!(%error, "REGISTER response not sent");
        }
    }

    fn drain_expired(&mut self) {
        while let Some(change) = self.registrar.poll_event() {
            self.tell(change);
        }
    }

    /// Logs a binding change (the username at DEBUG only) and publishes it.
    fn tell(&mut self, change: BindingChange) {
        if let BindingChange::Added { binding, .. } | BindingChange::Refreshed { binding, .. } =
            &change
        {
            if binding.transport == Transport::Udp {
                self.known.bound(binding.destination, binding.expires_at);
            }
        }
        let event = PhoneEvent::from(change);
        let what = match &event.kind {
            PhoneEventKind::Registered(_) => "desk phone registered",
            PhoneEventKind::Refreshed(_) => "desk phone refreshed its registration",
            PhoneEventKind::Unregistered { .. } => "desk phone unregistered",
            PhoneEventKind::Expired { .. } => "desk phone registration expired",
            PhoneEventKind::Disconnected { .. } => "desk phone connection closed",
        };
        match event.kind {
            PhoneEventKind::Refreshed(_) => tracing::debug!(user = %event.sip_username, "{what}"),
            _ => {
                tracing::info!("{what}");
                tracing::debug!(user = %event.sip_username, "{what}");
            }
        }
        // Having no subscriber is normal.
        let _ = self.events.send(event);
    }

    fn note_timeout(&mut self) {
        self.registrar_timeout = self.registrar.poll_timeout();
    }
}
