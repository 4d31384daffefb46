//! The tokio shell around the sans-IO cores: the gateway's Rust API.
//!
//! [`Gateway::start`] binds the SIP sockets and spawns one engine task that owns every call
//! attempt (a [`crate::sip::Call`] each) and every trunk (keepalives, registration), fed by
//! the socket tasks in [`transport`], by commands from [`Gateway`] handles, and by one timer
//! at the cores' next timeout, re-armed as it moves. Each call has one RTP leg task ([`leg`])
//! on its own socket from the port range. Calls are reported as [`CallEvent`]s on a broadcast channel.
//! An agent's browser session ([`crate::webrtc`]) joins as a leg of its own ([`agent`]), so
//! a trunk call can be bridged into it like into any other leg. A trunk call's leg also
//! holds it (playing the hold tone), sends its DTMF, mixes both sides for supervisors
//! listening in, and lays a coaching supervisor's voice over what the agent (whisper) or
//! both sides (barge) hear ([`Gateway::coach`]).
//!
//! Agents' desk phones register with the gateway when [`Gateway::start_with`] is given
//! [`PhoneOptions`]: a REGISTER, from whoever sends it, goes through server transactions of
//! its own to the sans-IO [`crate::sip::registrar`], and the credentials it needs come from
//! the service's [`PhoneDirectory`], looked up off the engine's task (`phones`).
//! [`Gateway::phone`] says where an INVITE to a phone goes now, [`Gateway::phone_events`]
//! tells registrations as they change. Anything else from an address that is not a trunk
//! gets 403, as does REGISTER when no directory was given, unless it belongs to a call we
//! placed to a phone at that IP address.
//!
//! [`Gateway::call_phone`] calls a registered phone, to be an agent's audio leg
//! (`phone_calls`): an INVITE from the service to the phone's binding, over the phone's
//! own connection for TCP, with no trunk (an attempt's `Route` is a trunk or a phone). The
//! call is then like one placed through a trunk, bridged into customer calls as a browser's
//! leg is.
//!
//! - [`config`]: [`GatewayConfig`] and [`TrunkConfig`], read from TOML.
//! - [`types`]: [`DialRequest`], [`CallRef`], [`CallEvent`] and the errors.

mod agent;
mod calls;
mod coach;
pub mod config;
mod engine;
mod health;
mod inbound;
mod leg;
mod media_threads;
mod phone_calls;
mod phones;
mod ports;
mod probe;
mod tls;
mod transport;
mod trunk;
pub mod types;

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use crate::sip::digest_server::StoredCredentials;
pub use crate::sip::registrar::RegistrarConfig;
pub use config::{GatewayConfig, Secret, TrunkConfig, TrunkTransport};
pub use phones::{
    DirectoryError, GatewayOptions, Lookup, PhoneDirectory, PhoneEvent, PhoneEventKind,
    PhoneOptions, PhoneTarget, LOOKUP_TIMEOUT, MAX_LOOKUPS, RETRY_AFTER,
};
pub use probe::{probe_trunk, ProbeError, TrunkProbe};
pub use types::GatewayError;
pub use types::{
    AmdVerdict, Audio, CallEvent, CallEventKind, CallRef, CoachMode, DialError, DialRequest,
    EndCause, GreetingEnded, IncomingCall, TrunkStatus,
};

use crate::media::dtmf_sender::is_key;
use crate::media::playback::load_wav;
use crate::media::{Recorder, RecorderConfig};
use crate::sip::outbound::Trunk;
use crate::sip::transaction::Slack;
use engine::{Command, Engine, PhoneCall, Reply};
use phones::Phones;
use transport::{SipTransport, TlsLinks};
use trunk::TrunkState;

/// The most digits one [`Gateway::send_dtmf`] may send.
pub const MAX_DTMF_DIGITS: usize = 32;

/// Events buffered for a slow subscriber before it starts missing them.
const EVENT_CAPACITY: usize = 4096;

/// The grid the SIP housekeeping timers are rounded up to: the calls that
/// finish within one step share a wake-up, and a finished call's state
/// lingers at most this much beyond what RFC 3261 asks.
const HOUSEKEEPING_STEP: std::time::Duration = std::time::Duration::from_millis(100);

/// A handle on the running gateway; clones share it, and it stops when the last is dropped.
#[derive(Debug, Clone)]
pub struct Gateway {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<CallEvent>,
    trunk_events: broadcast::Sender<TrunkStatus>,
    phone_events: broadcast::Sender<PhoneEvent>,
    sip_udp: SocketAddr,
    sip_tcp: Option<SocketAddr>,
}

impl Gateway {
    /// Binds the SIP sockets, resolves the trunks and starts the engine; takes no desk phones.
    pub async fn start(
        config: GatewayConfig,
        trunks: Vec<TrunkConfig>,
    ) -> Result<Gateway, GatewayError> {
        Gateway::start_with(config, trunks, GatewayOptions::default()).await
    }

    /// Starts the gateway as [`Gateway::start`] does, with `options`: desk phones register
    /// when [`GatewayOptions::phones`] is set.
    pub async fn start_with(
        config: GatewayConfig,
        trunks: Vec<TrunkConfig>,
        options: GatewayOptions,
    ) -> Result<Gateway, GatewayError> {
        let io = |context: &str| {
            let context = context.to_string();
            move |source| GatewayError::Io { context, source }
        };
        let udp = UdpSocket::bind(config.sip_udp)
            .await
            .map_err(io("binding the SIP UDP socket"))?;
        let sip_udp = udp
            .local_addr()
            .map_err(io("reading the SIP UDP address"))?;
        widen_sip_receive_buffer(&udp);
        let tcp = match config.sip_tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(io("binding the SIP TCP listener"))?,
            ),
            None => None,
        };
        let sip_tcp = match &tcp {
            Some(listener) => Some(
                listener
                    .local_addr()
                    .map_err(io("reading the SIP TCP address"))?,
            ),
            None => None,
        };
        let now = tokio::time::Instant::now().into_std();
        let mut resolved_trunks = Vec::new();
        let mut tls_targets = HashMap::new();
        let mut system_roots = tls::SystemRoots::default();
        for trunk in trunks {
            if resolved_trunks
                .iter()
                .any(|(c, _): &(TrunkConfig, Trunk)| c.name == trunk.name)
            {
                return Err(GatewayError::Config(format!(
                    "trunk {:?} appears twice",
                    trunk.name
                )));
            }
            let named = |e| GatewayError::Config(format!("trunk {:?}: {e}", trunk.name));
            trunk.check().map_err(named)?;
            let resolved = resolve(&trunk).await?;
            if trunk.transport == TrunkTransport::Tls {
                let target = tls::target(&trunk, &mut system_roots).map_err(named)?;
                tls_targets.insert(resolved.address, target);
            }
            resolved_trunks.push((trunk, resolved));
        }
        let tls = TlsLinks::reserve(sip_udp.ip(), tls_targets)
            .map_err(io("reserving the local port for SIP over TLS"))?;
        let sip_tls = tls.local_port();
        let sip_timers = config
            .timers()
            .with_slack(Slack::new(now, HOUSEKEEPING_STEP));
        let mut states = Vec::new();
        for (trunk, resolved) in resolved_trunks {
            let port = match trunk.transport {
                TrunkTransport::Udp => sip_udp.port(),
                TrunkTransport::Tcp => sip_tcp
                    .ok_or_else(|| {
                        GatewayError::Config(format!(
                            "trunk {:?} uses TCP but sip_tcp is off",
                            trunk.name
                        ))
                    })?
                    .port(),
                TrunkTransport::Tls => tls
                    .local_port()
                    .expect("a port is reserved whenever a trunk uses TLS"),
            };
            let ip = local_ip(&config, sip_udp.ip(), resolved.address);
            states.push(TrunkState::new(
                trunk,
                resolved,
                SocketAddr::new(ip, port),
                sip_timers,
                now,
            ));
        }
        let trunk_ips = states.iter().map(|s| s.trunk.address.ip()).collect();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let (leg_tx, leg_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (trunk_events, _) = broadcast::channel(64);
        let (phone_events, _) = broadcast::channel(EVENT_CAPACITY);
        let (lookups, lookup_rx) = mpsc::unbounded_channel();
        let known_phones = transport::KnownPhones::default();
        let phones = options.phones.map(|o| {
            Phones::new(
                o,
                sip_timers,
                lookups,
                phone_events.clone(),
                known_phones.clone(),
            )
        });
        let takes_phones = phones.is_some();
        let media = media_threads::MediaThreads::start(config.media_threads)
            .map_err(io("starting the media threads"))?;
        let engine = Engine {
            ports: ports::PortPool::new(config.sip_udp.ip(), config.rtp_ports(), media),
            config,
            sip_timers,
            trunks: states,
            attempts: HashMap::new(),
            timers: BinaryHeap::new(),
            calls: BTreeMap::new(),
            agents: BTreeMap::new(),
            feeds: HashMap::new(),
            transport: SipTransport::start(udp, tcp, tls, inbound_tx, trunk_ips, known_phones),
            events: events.clone(),
            watchers: HashMap::new(),
            trunk_events: trunk_events.clone(),
            leg_events: leg_tx,
            next_leg_id: 0,
            incoming: None,
            phones,
            sip_udp,
            sip_tcp,
        };
        tokio::spawn(engine.run(command_rx, inbound_rx, leg_rx, lookup_rx));
        tracing::info!(%sip_udp, ?sip_tcp, ?sip_tls, takes_phones, "gateway started");
        Ok(Gateway {
            commands,
            events,
            trunk_events,
            phone_events,
            sip_udp,
            sip_tcp,
        })
    }

    /// Places a call; its progress arrives on [`Gateway::events`].
    pub async fn dial(&self, request: DialRequest) -> Result<CallRef, DialError> {
        self.place(request, None).await
    }

    /// Places a call whose every event, up to and including `Ended`, also
    /// goes to `events`, a channel of the caller's own that never drops one.
    pub async fn dial_watched(
        &self,
        request: DialRequest,
        events: mpsc::UnboundedSender<CallEvent>,
    ) -> Result<CallRef, DialError> {
        self.place(request, Some(events)).await
    }

    async fn place(
        &self,
        request: DialRequest,
        watcher: Option<mpsc::UnboundedSender<CallEvent>>,
    ) -> Result<CallRef, DialError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Dial(request, watcher, reply))
            .map_err(|_| DialError::Stopped)?;
        answer.await.map_err(|_| DialError::Stopped)?
    }

    /// Subscribes to the trunks' changes of health (down, up) from now on.
    pub fn trunk_events(&self) -> broadcast::Receiver<TrunkStatus> {
        self.trunk_events.subscribe()
    }

    /// Returns every trunk's state now, in failover order.
    pub async fn trunks(&self) -> Result<Vec<TrunkStatus>, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Trunks(reply))
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)
    }

    /// Subscribes to the events of every call from now on.
    pub fn events(&self) -> broadcast::Receiver<CallEvent> {
        self.events.subscribe()
    }

    /// Hangs up a call: CANCEL while it rings, BYE once answered.
    pub async fn hangup(&self, call_ref: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Hangup(call_ref, reply)).await
    }

    /// Plays audio into a call, from its start if media is not yet up.
    pub async fn play(&self, call_ref: CallRef, audio: Audio) -> Result<(), GatewayError> {
        let samples = audio.load().await?;
        self.ask(|reply| Command::Play(call_ref, samples, reply))
            .await
    }

    /// Leaves a message on the answering machine that answered a call: waits
    /// for the end of its greeting (a beep that stops, or 1.5 s of quiet;
    /// [`crate::media::greeting`]), then plays `audio`, reporting
    /// [`CallEventKind::GreetingEnded`] and, at the message's end,
    /// [`CallEventKind::PlaybackFinished`]. If the greeting has not ended
    /// within 30 s, only `GreetingEnded` (`TimedOut`) comes. A leg bridged
    /// to the call is parted from it at once, so an agent who found the
    /// machine hears no more of it and can take another call. The caller
    /// hangs up. [`Gateway::stop_playing`] cancels it. Errors as for
    /// [`Gateway::hold`], and those of loading a file.
    pub async fn leave_message(&self, call_ref: CallRef, audio: Audio) -> Result<(), GatewayError> {
        let samples = audio.load().await?;
        self.ask(|reply| Command::LeaveMessage(call_ref, samples, reply))
            .await
    }

    /// Stops what [`Gateway::play`] is playing into a call, at once and
    /// without a `PlaybackFinished` event; nothing playing is no error.
    pub async fn stop_playing(&self, call_ref: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::StopPlaying(call_ref, reply))
            .await
    }

    /// Records a call to a stereo WAV: what we send on the left, the customer on the right.
    ///
    /// The file is complete when the call's `Ended` event arrives.
    pub async fn record(
        &self,
        call_ref: CallRef,
        path: impl AsRef<Path>,
    ) -> Result<(), GatewayError> {
        let path = path.as_ref().to_path_buf();
        let start = tokio::time::Instant::now().into_std();
        let recorder = tokio::task::spawn_blocking(move || {
            Recorder::create(&path, RecorderConfig::default(), start)
        })
        .await
        .map_err(|_| GatewayError::Stopped)??;
        self.ask(|reply| Command::Record(call_ref, recorder, reply))
            .await
    }

    /// Records silence until [`Gateway::resume_recording`], e.g. while a card number is read out.
    pub async fn pause_recording(&self, call_ref: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::PauseRecording(call_ref, reply))
            .await
    }

    /// Records audio again after [`Gateway::pause_recording`].
    pub async fn resume_recording(&self, call_ref: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::ResumeRecording(call_ref, reply))
            .await
    }

    /// Relays audio both ways between two calls, or a call and an agent leg.
    ///
    /// Bridging replaces each side's earlier peer. When a bridged call ends,
    /// an agent leg stays up and can be bridged to the next call.
    pub async fn bridge(&self, a: CallRef, b: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Bridge(a, b, reply)).await
    }

    /// Puts an answered trunk call on hold at the gateway, or takes it off (`on` false).
    ///
    /// Media stays anchored here, so the trunk sees no re-INVITE. While held
    /// the customer hears the hold tone ([`crate::media::hold`]), nothing of
    /// the agent reaches the customer and nothing of the customer reaches the
    /// agent; a recording carries on with what is actually sent and received.
    /// Hold belongs to the call, so it lasts across a `bridge` to a new agent
    /// leg. Holding a held call, or releasing one that is not, does nothing.
    /// Errors: `NoSuchCall`, `NotATrunkCall`, or `NotAnswered` for a call that
    /// is still ringing or already ending.
    pub async fn hold(&self, call: CallRef, on: bool) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Hold(call, on, reply)).await
    }

    /// Sends DTMF digits to the customer's side of an answered trunk call.
    ///
    /// Up to [`MAX_DTMF_DIGITS`] of `0`-`9`, `*`, `#` and `A`-`D` (either
    /// case); anything else is refused whole with `InvalidDigits`, and nothing
    /// is sent. When the trunk's answer negotiated telephone-event the digits
    /// go as RFC 4733 events, otherwise as in-band tones; each sounds for
    /// 100 ms with an 80 ms gap, and replaces the agent's audio to the
    /// customer while it plays. Digits sent while earlier ones are still going
    /// out follow them. Errors otherwise as for [`Gateway::hold`].
    pub async fn send_dtmf(&self, call: CallRef, digits: &str) -> Result<(), GatewayError> {
        check_digits(digits)?;
        self.ask(|reply| Command::SendDtmf(call, digits.to_ascii_uppercase(), reply))
            .await
    }

    /// Lets a supervisor listen in silently: `listener`, a leg from
    /// [`Gateway::attach_agent`], hears a mix of both sides of the trunk `call`.
    ///
    /// The mix is what the customer says and what is sent to the customer
    /// (the agent, or the hold tone, playback and digits), decoded, summed and
    /// re-encoded for the listener's browser. Nothing the listener sends
    /// reaches anyone. Any number of listeners may hear one call. A listener
    /// stops with [`Gateway::hangup`], by listening to another call, or by
    /// being bridged; when the call ends the listener's leg stays up, as an
    /// agent's does. Errors: `NoSuchCall`, `NotATrunkCall` for `call`, and
    /// `NotAnAgentLeg` for a `listener` that is a trunk call.
    pub async fn listen(&self, call: CallRef, listener: CallRef) -> Result<(), GatewayError> {
        self.coach(call, listener, CoachMode::Listen).await
    }

    /// Puts a supervisor's leg (from [`Gateway::attach_agent`]) on the trunk `call` in
    /// `mode`, on the same connection whatever the mode before: no new offer is needed.
    ///
    /// In every mode but `TakeOver` the supervisor hears the mix [`Gateway::listen`]
    /// describes. `Whisper`: the supervisor's audio is laid over what the agent hears,
    /// and the customer hears nothing of it. `Barge`: also over what the customer hears
    /// (and the call's recording has it). The voice rides the packets passing to each
    /// side, decoded, summed and re-encoded in place, so a side whose stream is paused
    /// (the call on hold) does not hear it meanwhile, and nothing is mixed while nobody
    /// whispers or barges. Other listeners hear the customer and the agent only.
    /// `TakeOver`: the call is bridged to the supervisor's leg as [`Gateway::bridge`]
    /// would, and the agent's leg hears nothing of the call and sends it nothing; it stays
    /// up for the agent's next call. The call is then the supervisor's: listening to it
    /// again in another mode leaves the customer with nobody. Changing mode on the same
    /// call is a change in place; pointing the leg at another call leaves the first.
    /// Errors as for [`Gateway::listen`].
    pub async fn coach(
        &self,
        call: CallRef,
        listener: CallRef,
        mode: CoachMode,
    ) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Coach(call, listener, mode, reply))
            .await
    }

    /// Plays the agent of a browser leg a short double beep (a "zip tone",
    /// 1400 Hz, two 100 ms beeps 60 ms apart) in place of what they hear, to
    /// mark that a call has just been put through to them; the caller hears
    /// nothing of it and it is not recorded. Audio bridged to the leg meanwhile
    /// is dropped, and flows again after the tone. Errors: `NoSuchCall`, and
    /// `NotAnAgentLeg` for a trunk call.
    pub async fn zip_tone(&self, agent: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::ZipTone(agent, reply)).await
    }

    /// Accepts an agent browser's WebRTC offer as a new leg and returns its reference and SDP answer.
    ///
    /// The leg takes a socket from the RTP port range and lives until
    /// [`Gateway::hangup`] or the browser closes it, across any number of
    /// bridged calls. It reports `Answered` when its connection is up (and
    /// again after a recovered `Disconnected`), and `Ended` when closed: with
    /// `LocalHangup` after `hangup`, `RemoteHangup` when the browser went.
    /// A reconnecting browser sends a new offer and gets a new leg; the caller
    /// replaces the old one with it: hang the old one up and bridge any call
    /// in progress to the new one. `play` and `record` apply to the trunk
    /// call, not to the agent leg; a bridged call's recording has the agent on
    /// the left and the customer on the right.
    pub async fn attach_agent(&self, offer_sdp: &str) -> Result<(CallRef, String), GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::AttachAgent(offer_sdp.to_string(), reply))
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)?
    }

    /// Takes the calls the trunks offer from now on: each arrives as an
    /// [`IncomingCall`] carrying its own events, and must be answered,
    /// rung or rejected within ten seconds or the caller gets 480. Only one
    /// taker at a time: a later call to this replaces the earlier. Without
    /// one, offered calls get 404.
    pub fn incoming(&self) -> mpsc::UnboundedReceiver<IncomingCall> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.commands.send(Command::Incoming(tx));
        rx
    }

    /// Answers an offered call; it is then a call like one placed: bridge,
    /// play, record, hold, send digits and hang up work on it. Errors:
    /// `NoSuchCall`, `NotOffered` for a call we placed or one already
    /// answered, refused or cancelled.
    pub async fn answer(&self, call: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Answer(call, reply)).await
    }

    /// Tells the caller of an offered call it rings (180), while deciding.
    pub async fn ring(&self, call: CallRef) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Ring(call, reply)).await
    }

    /// Refuses an offered call with `status` (4xx to 6xx; 404 for a number
    /// that is not ours, 480 or 486 when nobody can take it).
    pub async fn reject(&self, call: CallRef, status: u16) -> Result<(), GatewayError> {
        self.ask(|reply| Command::Reject(call, status, reply)).await
    }

    /// Returns where an INVITE to the desk phone registered as `sip_username` goes now (the
    /// contact it registered last), or `None` when it has no live registration.
    pub async fn phone(&self, sip_username: &str) -> Result<Option<PhoneTarget>, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Phone(sip_username.to_string(), reply))
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)
    }

    /// Calls the desk phone registered as `sip_username`, to be an agent's audio leg; its
    /// progress arrives on [`Gateway::events`] as `call_ref`'s.
    ///
    /// The INVITE goes to the contact the phone registered last, at the address and over the
    /// transport it registered from (over TCP, its own connection), offering G.711 over
    /// plain RTP, from the service (`sip:dialcrm@` our address) to the phone's address of
    /// record: nothing of the CRM. The phone rings for at most `ring_timeout`. Once placed
    /// it is a call like one through a trunk: bridge it into customer calls, and `hangup`,
    /// `record`, `play`, `hold`, `send_dtmf` and `listen` work on it. A phone that
    /// challenges the INVITE ends the call with `AuthenticationFailed`; when the
    /// connection it registered over closes, the call ends with `TrunkFailure`.
    /// Errors: `PhoneNotRegistered` when it has no live registration (or desk phones are
    /// not taken), `DuplicateRef`, `NoMediaPort`.
    pub async fn call_phone(
        &self,
        sip_username: &str,
        call_ref: CallRef,
        ring_timeout: std::time::Duration,
    ) -> Result<CallRef, DialError> {
        self.ring_phone(sip_username, call_ref, ring_timeout, None)
            .await
    }

    /// Calls a desk phone as [`Gateway::call_phone`] does; every event of the call, up to
    /// and including `Ended`, also goes to `events`, which never drops one.
    pub async fn call_phone_watched(
        &self,
        sip_username: &str,
        call_ref: CallRef,
        ring_timeout: std::time::Duration,
        events: mpsc::UnboundedSender<CallEvent>,
    ) -> Result<CallRef, DialError> {
        self.ring_phone(sip_username, call_ref, ring_timeout, Some(events))
            .await
    }

    async fn ring_phone(
        &self,
        sip_username: &str,
        call_ref: CallRef,
        ring_timeout: std::time::Duration,
        watcher: Option<mpsc::UnboundedSender<CallEvent>>,
    ) -> Result<CallRef, DialError> {
        let call = PhoneCall {
            sip_username: sip_username.to_string(),
            call_ref,
            ring_timeout,
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::CallPhone(call, watcher, reply))
            .map_err(|_| DialError::Stopped)?;
        answer.await.map_err(|_| DialError::Stopped)?
    }

    /// Subscribes to desk phones' registrations, refreshes, unregistrations, expiries and
    /// closed connections from now on.
    pub fn phone_events(&self) -> broadcast::Receiver<PhoneEvent> {
        self.phone_events.subscribe()
    }

    /// Drops every registration of `sip_username`, as when its credentials are removed or
    /// its user deactivated; tells whether it had any. The phone is not told: its next
    /// REGISTER is checked against the directory like any other.
    pub async fn unregister(&self, sip_username: &str) -> Result<bool, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Unregister(sip_username.to_string(), reply))
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)
    }

    /// Returns the bound SIP UDP address.
    pub fn sip_udp_addr(&self) -> SocketAddr {
        self.sip_udp
    }

    /// Returns the bound SIP TCP address, if TCP is on.
    pub fn sip_tcp_addr(&self) -> Option<SocketAddr> {
        self.sip_tcp
    }

    async fn ask(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)?
    }
}

/// Refuses a digit string that is empty, too long, or holds anything but DTMF keys.
fn check_digits(digits: &str) -> Result<(), GatewayError> {
    let count = digits.chars().count();
    if count == 0 {
        return Err(GatewayError::InvalidDigits("no digits given".into()));
    }
    if count > MAX_DTMF_DIGITS {
        return Err(GatewayError::InvalidDigits(format!(
            "{count} digits, at most {MAX_DTMF_DIGITS} at once"
        )));
    }
    match digits.chars().enumerate().find(|(_, c)| !is_key(*c)) {
        Some((at, c)) => Err(GatewayError::InvalidDigits(format!(
            "{c:?} (character {}) is not one of 0-9 * # A-D",
            at + 1
        ))),
        None => Ok(()),
    }
}

/// Looks up a trunk's address and builds the core's view of it.
async fn resolve(config: &TrunkConfig) -> Result<Trunk, GatewayError> {
    let (host, port) = config
        .host_and_port()
        .map_err(|e| GatewayError::Config(format!("trunk {:?}: {e}", config.name)))?;
    let address = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            GatewayError::Config(format!(
                "cannot resolve trunk {:?}: host {host:?} port {port}",
                config.name
            ))
        })?;
    Ok(Trunk {
        port: (port != config.transport.default_port()).then_some(port),
        address,
        transport: config.transport.into(),
        from_domain: config.from_domain.clone().unwrap_or_else(|| host.clone()),
        host,
    })
}

/// Picks the IP address a trunk should send to: configured, bound, or the route's source.
fn local_ip(config: &GatewayConfig, bound: IpAddr, trunk: SocketAddr) -> IpAddr {
    if let Some(ip) = config.advertised_ip {
        return ip;
    }
    if !bound.is_unspecified() {
        return bound;
    }
    // Connecting a UDP socket sends nothing; it only asks the kernel for the route.
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bound, 0))
        .and_then(|s| s.connect(trunk).and_then(|()| s.local_addr()));
    probe.map(|a| a.ip()).unwrap_or(bound)
}

/// The runtime's clock as a `std` instant, for the sans-IO cores.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Audio {
    /// The samples to play, read from the file off the gateway's thread.
    async fn load(self) -> Result<std::sync::Arc<[i16]>, GatewayError> {
        match self {
            Audio::Samples(samples) => Ok(samples),
            Audio::File(path) => tokio::task::spawn_blocking(move || load_wav(&path))
                .await
                .map_err(|_| GatewayError::Stopped)?
                .map_err(GatewayError::from),
        }
    }
}

/// The receive buffer asked of the kernel for the SIP UDP socket. Datagrams come in bursts
/// (a trunk's answers to a round of dials, a flood of junk with headers of tens of
/// kilobytes), and while the buffer is full the kernel drops what arrives, a trunk's
/// 200 OK as readily as junk: the call then waits half a second for its retransmission.
/// Linux caps the request at `net.core.rmem_max`.
pub const SIP_RECEIVE_BUFFER: usize = 4 << 20;

/// Asks the kernel for a [`SIP_RECEIVE_BUFFER`] on a SIP socket; returns the size granted.
pub fn widen_receive_buffer(socket: &UdpSocket) -> std::io::Result<usize> {
    let socket = socket2::SockRef::from(socket);
    socket.set_recv_buffer_size(SIP_RECEIVE_BUFFER)?;
    // Linux keeps, and reports, twice the size it grants: the half for its own bookkeeping.
    Ok(socket.recv_buffer_size()? / 2)
}

/// Widens the gateway's SIP socket's receive buffer, and says so when it gets less than asked.
fn widen_sip_receive_buffer(socket: &UdpSocket) {
    match widen_receive_buffer(socket) {
        Ok(granted) if granted < SIP_RECEIVE_BUFFER => tracing::info!(
            granted,
            wanted = SIP_RECEIVE_BUFFER,
            "the SIP socket's receive buffer is smaller than asked: raise net.core.rmem_max \
             so that bursts are not dropped"
        ),
        Ok(granted) => tracing::debug!(granted, "SIP socket receive buffer"),
        Err(error) => {
            tracing::warn!(%error, "the SIP socket's receive buffer could not be widened")
        }
    }
}

#[cfg(test)]
mod receive_buffer_tests {
    use super::*;

    /// The SIP socket gets the buffer asked for, or all that `net.core.rmem_max` allows.
    #[tokio::test]
    async fn the_sip_socket_gets_a_wide_receive_buffer() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let before = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .expect("read");
        let granted = widen_receive_buffer(&socket).expect("widened");
        let Some(cap) = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        else {
            assert!(2 * granted >= before, "{granted} of {before}");
            return;
        };
        assert_eq!(granted, SIP_RECEIVE_BUFFER.min(cap), "rmem_max {cap}");
    }
}
