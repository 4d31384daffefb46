//! One call's RTP leg: a socket and the task that latches, records, plays, holds, relays and
//! detects DTMF.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::coach::{lay_over_rtp, Listener};
use super::now;
use super::ports::MediaSocket;
use super::types::{CallRef, CoachMode};
use crate::alarm::Alarm;
use crate::drops::{self, MediaDrop};
use crate::media::amd::{AmdConfig, AmdVerdict, MachineCheck};
use crate::media::dtmf_sender::{DtmfMode, DtmfSender, DtmfSenderConfig};
use crate::media::greeting::{GreetingConfig, GreetingEnded, GreetingWatch};
use crate::media::hold::shared_hold_tone;
use crate::media::mix::Mixer;
use crate::media::playback::{Player, PlayerConfig, PlayerEvent};
use crate::media::recorder::{Recorder, RecorderTap, Side};
use crate::media::relay::{PayloadTypeMap, Relay, RelayConfig, SourceId};
use crate::media::rtp::{is_rtcp, RtpPacket};
use crate::media::srtp::Srtp;
use crate::media::{DtmfDetector, Latch, LatchConfig, LatchEvent, G711};
use crate::sip::sdp::{Codec, Direction, NegotiatedMedia, SrtpKeys};

/// Packets a bridged leg may queue towards its peer before new ones are dropped.
const BRIDGE_QUEUE: usize = 64;
/// The relay source id of playback; bridged legs use their own ids, which start at 1.
const PLAYER: SourceId = SourceId(0);
/// The relay source id of the hold tone, far above any leg's id.
const HOLD: SourceId = SourceId(u64::MAX);
/// The relay source id of digits being sent.
const DIGITS: SourceId = SourceId(u64::MAX - 1);
/// The source id of the mix sent to listeners.
const MIX: SourceId = SourceId(u64::MAX - 2);

/// What the engine tells a leg to do.
#[derive(Debug)]
pub(crate) enum LegCommand {
    /// Media was agreed or changed; `answered` turns the media timeout on.
    Media {
        media: NegotiatedMedia,
        answered: bool,
    },
    /// Plays samples into the leg, replacing any playback.
    Play(Arc<[i16]>),
    /// Stops any playback, without a `PlaybackFinished`.
    StopPlaying,
    /// Records both directions of the leg.
    Record(Recorder),
    /// Records silence until resumed.
    PauseRecording,
    /// Records audio again.
    ResumeRecording,
    /// Puts the call on hold (the customer hears the hold tone, the two sides
    /// hear nothing of each other) or takes it off.
    Hold(bool),
    /// Sends DTMF digits to the far end, already checked, after any still being sent.
    SendDtmf(String),
    /// Forwards received audio to another leg, and relays only that leg's audio.
    Bridge {
        peer: mpsc::Sender<BridgedPacket>,
        /// The peer's source id: packets from any other leg are dropped.
        source: SourceId,
        /// The peer's sending side, when it is an RTP leg: its audio then
        /// goes straight out through it while nothing else shapes it.
        outbound: Option<SharedOutbound>,
    },
    /// Stops forwarding to the bridged leg, if any.
    Unbridge,
    /// Sends a mix of both sides of the call to a supervisor's leg, and lays
    /// its audio over what the agent hears (whisper) or also over what the
    /// customer hears (barge); a leg already listening changes mode in place.
    /// Never `TakeOver`, which is a bridge.
    Coach {
        listener: mpsc::Sender<BridgedPacket>,
        /// The listener's source id, which its audio arrives under.
        source: SourceId,
        mode: CoachMode,
    },
    /// Stops sending anything to this leg, as its peer or as a listener.
    Forget(mpsc::Sender<BridgedPacket>),
    /// Listens to the far end's audio from now on and reports who answered.
    DetectMachine,
    /// Plays an agent leg the zip tone that marks a call put through.
    ZipTone,
    /// Waits for the end of the machine's greeting, then plays the message.
    LeaveMessage(Arc<[i16]>),
    /// Stops the leg, finishing any recording.
    Close,
}

/// An RTP packet received on one leg, on its way out through another.
#[derive(Debug)]
pub(crate) struct BridgedPacket {
    pub source: SourceId,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
    pub bytes: Vec<u8>,
}

/// What a leg reports to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegEvent {
    /// A key press arrived.
    Dtmf(CallRef, char),
    /// Machine detection reached its verdict.
    AnsweredBy(CallRef, AmdVerdict),
    /// RTP stopped arriving.
    MediaTimeout(CallRef),
    /// Playback reached its end.
    PlaybackFinished(CallRef),
    /// The machine's greeting ended, and the message is playing unless it
    /// timed out.
    GreetingEnded(CallRef, GreetingEnded),
    /// An agent leg's connection is up.
    Connected(CallRef),
    /// An agent leg's browser stopped answering.
    Disconnected(CallRef),
    /// The leg has stopped and its recording is complete.
    Closed(CallRef),
}

/// The engine's handle on a running leg.
#[derive(Debug, Clone)]
pub(crate) struct LegHandle {
    pub commands: mpsc::UnboundedSender<LegCommand>,
    pub inbox: mpsc::Sender<BridgedPacket>,
    /// Where the leg receives RTP, as written in our SDP.
    pub local: SocketAddr,
    /// The id the leg's audio goes by in other legs.
    pub source: SourceId,
    /// The sending side a bridged leg relays through directly; agent legs have none.
    pub outbound: Option<SharedOutbound>,
}

impl LegHandle {
    /// Sends a command; a leg that has already stopped needs none.
    pub fn send(&self, command: LegCommand) {
        let _ = self.commands.send(command);
    }
}

/// Starts the task of a leg whose socket is bound; `advertised` is the address put in SDP.
pub(crate) fn spawn(
    call_ref: CallRef,
    id: u64,
    socket: MediaSocket,
    advertised: SocketAddr,
    media_timeout: Duration,
    events: mpsc::UnboundedSender<LegEvent>,
) -> LegHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (inbox, inbox_rx) = mpsc::channel(BRIDGE_QUEUE);
    let MediaSocket { socket, runtime } = socket;
    let socket = Arc::new(socket);
    let outbound = Arc::new(Mutex::new(Outbound {
        socket: Arc::downgrade(&socket),
        relay: Relay::new(RelayConfig::narrowband(
            rand::random(),
            rand::random(),
            rand::random(),
        )),
        remote: None,
        tap: None,
        direct: None,
    }));
    let leg = Leg {
        call_ref,
        source: SourceId(id),
        socket,
        out: outbound.clone(),
        shared: Shared::default(),
        media: None,
        latch: None,
        media_timeout,
        player: None,
        hold: None,
        digits: None,
        pending_play: None,
        recorder: None,
        tap: None,
        dtmf: DtmfDetector::new(8000),
        peer: None,
        peer_out: None,
        scratch: Vec::new(),
        peer_source: None,
        listeners: Vec::new(),
        coaching: false,
        barging: false,
        mixer: None,
        machine: None,
        message: None,
        srtp: None,
        events,
    };
    let span = tracing::debug_span!("leg", %call_ref);
    runtime.spawn(tracing::Instrument::instrument(
        leg.run(command_rx, inbox_rx),
        span,
    ));
    LegHandle {
        commands,
        inbox,
        local: advertised,
        source: SourceId(id),
        outbound: Some(outbound),
    }
}

/// A leg's sending side, shared with the leg bridged into it: while only
/// that leg's audio goes out unchanged (no playback, hold tone, digits,
/// listeners or SRTP), its packets are rewritten and sent from its own task,
/// with no hop through this leg's inbox and no wake-up of this leg's task.
/// Everything else this leg sends goes through the same relay, so the far
/// end still sees one continuous stream.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The leg's socket, to send from the port the far end knows; it closes
    /// with the leg, whoever still holds this.
    socket: Weak<UdpSocket>,
    relay: Relay,
    /// Where the far end receives, as the leg's latch last chose.
    remote: Option<SocketAddr>,
    /// Records what the far end hears (the agent's side of the recording).
    tap: Option<RecorderTap>,
    /// The one source whose packets may go straight out, and the media the
    /// leg sends in; `None` while anything else shapes what the far end hears.
    direct: Option<(SourceId, Format)>,
}

/// What a leg sends in: its codec and its telephone-event payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    codec: Codec,
    telephone_event: Option<u8>,
}

impl From<NegotiatedMedia> for Format {
    fn from(media: NegotiatedMedia) -> Self {
        Format {
            codec: media.codec,
            telephone_event: media.telephone_event,
        }
    }
}

/// An RTP leg's [`Outbound`], as other legs hold it.
pub(crate) type SharedOutbound = Arc<Mutex<Outbound>>;

/// Locks a leg's sending side; a task that panicked holding it left nothing half-written
/// that matters more than the call's audio.
pub(crate) fn lock(outbound: &Mutex<Outbound>) -> MutexGuard<'_, Outbound> {
    outbound.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Outbound {
    /// Records the audio of a packet on its way to the far end, as the agent's side.
    fn record_sent(&self, timestamp: u32, codec: Codec, bytes: &[u8], now: Instant) {
        if let (Some(tap), Ok(packet)) = (&self.tap, RtpPacket::parse(bytes)) {
            tap.push_g711(Side::Agent, timestamp, g711(codec), packet.payload(), now);
        }
    }

    /// Takes nothing more straight out: the leg has stopped, and the peer,
    /// sending through the leg's inbox from now on, finds it closed.
    fn close(&mut self) {
        self.direct = None;
        self.remote = None;
        self.tap = None;
        self.socket = Weak::new();
    }

    /// Sends a packet of `source` to the far end at once if this leg relays
    /// that source directly now; false means it must go through the inbox.
    pub(crate) fn relay_direct(
        &mut self,
        source: SourceId,
        codec: Codec,
        telephone_event: Option<u8>,
        bytes: &mut [u8],
        now: Instant,
    ) -> bool {
        let (Some((from, media)), Some(remote)) = (self.direct, self.remote) else {
            return false;
        };
        let socket = match self.socket.upgrade() {
            Some(socket) if from == source => socket,
            _ => return false,
        };
        let Some(audio) = adapt(
            &mut self.relay,
            media,
            source,
            codec,
            telephone_event,
            bytes,
        ) else {
            return true;
        };
        let Ok(header) = self.relay.relay(source, bytes, now) else {
            return true;
        };
        if audio {
            self.record_sent(header.timestamp, media.codec, bytes, now);
        }
        if let Err(error) = socket.try_send_to(bytes, remote) {
            count_send_failure(&error);
            tracing::trace!(%error, "rtp send failed");
        }
        true
    }
}

/// What of a leg's state its [`Outbound`] was last told.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shared {
    direct: Option<(SourceId, Format)>,
    remote: Option<SocketAddr>,
}

/// Makes a bridged packet fit the stream of a leg speaking `media`: G.711
/// law converted, payload types mapped; returns whether it is audio, or
/// `None` when the leg cannot carry it.
fn adapt(
    relay: &mut Relay,
    media: Format,
    source: SourceId,
    codec: Codec,
    telephone_event: Option<u8>,
    bytes: &mut [u8],
) -> Option<bool> {
    let view = RtpPacket::parse(bytes).ok()?;
    let is_audio = view.payload_type() == codec.payload_type();
    if is_audio && codec != media.codec && !view.has_padding() {
        let start = bytes.len() - view.payload().len();
        g711(codec).transcode_in_place(g711(media.codec), &mut bytes[start..]);
    }
    let mut map = PayloadTypeMap::default();
    map.insert(codec.payload_type(), media.codec.payload_type());
    if let (Some(from), Some(to)) = (telephone_event, media.telephone_event) {
        map.insert(from, to);
    } else if !is_audio {
        return None;
    }
    relay.set_payload_map(source, map);
    Some(is_audio)
}

struct Leg {
    call_ref: CallRef,
    source: SourceId,
    socket: Arc<UdpSocket>,
    /// The sending side, shared with the leg bridged into this one.
    out: SharedOutbound,
    /// What `out` was last told of this leg's state.
    shared: Shared,
    media: Option<NegotiatedMedia>,
    latch: Option<Latch>,
    media_timeout: Duration,
    player: Option<Player>,
    /// The looping hold tone, while the call is on hold.
    hold: Option<Player>,
    /// Digits being sent; they replace every other audio towards the far end.
    digits: Option<DtmfSender>,
    pending_play: Option<Arc<[i16]>>,
    recorder: Option<Recorder>,
    tap: Option<RecorderTap>,
    dtmf: DtmfDetector,
    peer: Option<mpsc::Sender<BridgedPacket>>,
    /// The peer's sending side, when its audio may go straight out through it.
    peer_out: Option<SharedOutbound>,
    /// The packet being forwarded to the peer, reused.
    scratch: Vec<u8>,
    /// The source id of the peer, the one leg whose audio is relayed.
    peer_source: Option<SourceId>,
    /// Supervisors' legs that hear both sides of the call, and whose audio
    /// some side hears as their mode says.
    listeners: Vec<Listener>,
    /// Whether a listener whispers or barges: the agent hears their voice.
    coaching: bool,
    /// Whether a listener barges: the customer hears their voice.
    barging: bool,
    /// Mixes both sides while anyone listens.
    mixer: Option<Mixer>,
    /// Machine detection, from answer until its verdict.
    machine: Option<MachineCheck>,
    /// A message to leave once the machine's greeting ends, and the watch
    /// for that end.
    message: Option<(GreetingWatch, Arc<[i16]>)>,
    /// SRTP towards the trunk, when its media is encrypted.
    srtp: Option<LegSrtp>,
    events: mpsc::UnboundedSender<LegEvent>,
}

/// Both directions of SRTP on a trunk leg, and the keys they were made from.
struct LegSrtp {
    keys: SrtpKeys,
    /// Protects what we send, with our key.
    outbound: Srtp,
    /// Unprotects what arrives, with the trunk's key.
    inbound: Srtp,
}

impl LegSrtp {
    fn new(keys: SrtpKeys) -> Self {
        LegSrtp {
            keys,
            outbound: Srtp::new(&keys.local),
            inbound: Srtp::new(&keys.remote),
        }
    }

    /// Follows a change of keys (a re-INVITE), keeping the side whose key stayed,
    /// so its rollover counters carry on.
    fn rekey(&mut self, keys: SrtpKeys) {
        if keys.local != self.keys.local {
            self.outbound = Srtp::new(&keys.local);
        }
        if keys.remote != self.keys.remote {
            self.inbound = Srtp::new(&keys.remote);
        }
        self.keys = keys;
    }
}

impl Leg {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<LegCommand>,
        mut inbox: mpsc::Receiver<BridgedPacket>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut alarm = Alarm::new();
        loop {
            alarm.set(self.next_timeout());
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from, now()),
                    Err(error) => tracing::trace!(%error, "rtp receive failed"),
                },
                command = commands.recv() => match command {
                    None | Some(LegCommand::Close) => break,
                    Some(command) => self.on_command(command, now()),
                },
                Some(packet) = inbox.recv() => self.on_bridged(packet, now()),
                () = alarm.fired() => self.on_timeout(now()),
            }
            self.share();
        }
        lock(&self.out).close();
        if let Some(recorder) = self.recorder.take() {
            self.tap = None;
            let finished = tokio::task::spawn_blocking(move || recorder.finish()).await;
            match finished {
                Ok(Ok(stats)) => tracing::debug!(?stats, "recording finished"),
                Ok(Err(error)) => tracing::warn!(%error, "recording failed"),
                Err(error) => tracing::warn!(%error, "recording task failed"),
            }
        }
        let _ = self.events.send(LegEvent::Closed(self.call_ref));
    }

    fn next_timeout(&self) -> Option<Instant> {
        [
            self.latch.as_ref().and_then(Latch::poll_timeout),
            self.player.as_ref().and_then(Player::poll_timeout),
            self.hold.as_ref().and_then(Player::poll_timeout),
            self.digits.as_ref().and_then(DtmfSender::poll_timeout),
            self.mixer.as_ref().map(Mixer::poll_timeout),
            self.dtmf.poll_timeout(),
            self.machine.as_ref().map(MachineCheck::poll_timeout),
            self.message.as_ref().map(|(w, _)| w.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_command(&mut self, command: LegCommand, now: Instant) {
        match command {
            LegCommand::Media { media, answered } => self.set_media(media, answered, now),
            LegCommand::DetectMachine => {
                self.machine = Some(MachineCheck::new(AmdConfig::default(), now));
            }
            LegCommand::LeaveMessage(samples) => {
                let watch = GreetingWatch::new(GreetingConfig::default(), now);
                self.message = Some((watch, samples));
            }
            LegCommand::Play(samples) => match self.media {
                Some(_) => self.start_player(samples, now),
                None => self.pending_play = Some(samples),
            },
            LegCommand::StopPlaying => {
                self.pending_play = None;
                self.message = None;
                if self.player.take().is_some() {
                    lock(&self.out).relay.remove_source(PLAYER);
                }
            }
            LegCommand::Record(recorder) => {
                self.tap = Some(recorder.tap());
                lock(&self.out).tap = Some(recorder.tap());
                self.recorder = Some(recorder);
            }
            LegCommand::PauseRecording => self.recorder.iter().for_each(Recorder::pause),
            LegCommand::ResumeRecording => self.recorder.iter().for_each(Recorder::resume),
            LegCommand::Hold(on) => self.set_hold(on, now),
            LegCommand::SendDtmf(digits) => self.send_digits(&digits, now),
            LegCommand::Bridge {
                peer,
                source,
                outbound,
            } => {
                self.peer = Some(peer);
                self.peer_out = outbound;
                self.peer_source = Some(source);
            }
            LegCommand::Unbridge => self.unbridge(),
            LegCommand::Coach {
                listener,
                source,
                mode,
            } => {
                // A leg that was bridged here listens now: it is not the peer any more.
                if self
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.same_channel(&listener))
                {
                    self.unbridge();
                }
                Listener::join(&mut self.listeners, listener, source, mode);
                self.count_coaches();
                if self.mixer.is_none() {
                    let codec = self.media.map_or(G711::Pcmu, |m| g711(m.codec));
                    let (ssrc, seq, ts) = (rand::random(), rand::random(), rand::random());
                    self.mixer = Some(Mixer::new(codec, ssrc, seq, ts, now));
                }
            }
            LegCommand::Forget(leg) => {
                if self.peer.as_ref().is_some_and(|p| p.same_channel(&leg)) {
                    self.unbridge();
                }
                self.listeners.retain(|l| !l.inbox.same_channel(&leg));
                self.count_coaches();
                if self.listeners.is_empty() {
                    self.mixer = None;
                }
            }
            // Only agent legs play it; the engine sends it to no other.
            LegCommand::ZipTone | LegCommand::Close => {}
        }
    }

    fn unbridge(&mut self) {
        self.peer = None;
        self.peer_out = None;
        self.peer_source = None;
    }

    /// Tells the sending side what changed: whether the peer's audio may go
    /// straight out, and where to. Called after every turn of the loop.
    fn share(&mut self) {
        let plain = self.srtp.is_none()
            && self.player.is_none()
            && self.hold.is_none()
            && self.digits.is_none()
            && self.mixer.is_none();
        let shared = Shared {
            direct: match (self.peer_source, self.media) {
                (Some(source), Some(media)) if plain && sends(media) => {
                    Some((source, media.into()))
                }
                _ => None,
            },
            remote: self.latch.as_ref().and_then(Latch::remote),
        };
        if shared != self.shared {
            let mut out = lock(&self.out);
            out.direct = shared.direct;
            out.remote = shared.remote;
            self.shared = shared;
        }
    }

    fn set_media(&mut self, media: NegotiatedMedia, answered: bool, now: Instant) {
        let watching = answered && media.remote_direction == Direction::SendRecv;
        let same_remote = self.media.is_some_and(|m| m.remote_rtp == media.remote_rtp);
        match self.latch.as_mut() {
            Some(latch) if same_remote => latch.set_watching(watching, now),
            _ => {
                let mut payload_types = vec![media.codec.payload_type()];
                payload_types.extend(media.telephone_event);
                let mut latch = Latch::new(
                    LatchConfig {
                        sdp_addr: Some(media.remote_rtp),
                        prefer_sdp: false,
                        payload_types,
                        media_timeout: self.media_timeout,
                    },
                    now,
                );
                latch.set_watching(watching, now);
                self.latch = Some(latch);
            }
        }
        self.srtp = match (self.srtp.take(), media.srtp) {
            (Some(mut srtp), Some(keys)) => {
                srtp.rekey(keys);
                Some(srtp)
            }
            (None, Some(keys)) => Some(LegSrtp::new(keys)),
            (_, None) => None,
        };
        self.media = Some(media);
        if let Some(samples) = self.pending_play.take() {
            self.start_player(samples, now);
        }
    }

    fn start_player(&mut self, samples: Arc<[i16]>, now: Instant) {
        let Some(media) = self.media else { return };
        self.player = Some(new_player(samples, media.codec, false, now));
        self.on_timeout(now);
    }

    /// Starts or stops the hold tone; while it plays, neither side's audio reaches the other.
    fn set_hold(&mut self, on: bool, now: Instant) {
        match (on, self.hold.is_some(), self.media) {
            (true, false, Some(media)) => {
                tracing::debug!("call held");
                self.hold = Some(new_player(shared_hold_tone(), media.codec, true, now));
                self.on_timeout(now);
            }
            (false, true, _) => {
                tracing::debug!("call taken off hold");
                self.hold = None;
                lock(&self.out).relay.remove_source(HOLD);
            }
            _ => {}
        }
    }

    /// Queues digits: as telephone events if the far end took them, else as in-band tones.
    fn send_digits(&mut self, digits: &str, now: Instant) {
        let Some(media) = self.media else { return };
        let sender = self.digits.get_or_insert_with(|| {
            let mode = match media.telephone_event {
                Some(payload_type) => DtmfMode::Events { payload_type },
                None => DtmfMode::InBand,
            };
            tracing::debug!(?mode, "sending digits");
            let config = DtmfSenderConfig::new(
                mode,
                g711(media.codec),
                rand::random(),
                rand::random(),
                rand::random(),
            );
            DtmfSender::new(config, now)
        });
        if let Err(error) = sender.push(digits, now) {
            tracing::debug!(%error, "digits refused");
        }
        self.on_timeout(now);
    }

    fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        let (Some(latch), Some(media)) = (self.latch.as_mut(), self.media) else {
            return;
        };
        if is_rtcp(datagram) {
            return;
        }
        let decrypted;
        let datagram = match self.srtp.as_mut() {
            Some(srtp) => {
                let mut packet = datagram.to_vec();
                // Checked before the latch sees it, so a forged packet cannot move our media.
                if let Err(error) = srtp.inbound.unprotect(&mut packet) {
                    tracing::trace!(%error, "srtp packet dropped");
                    return;
                }
                decrypted = packet;
                &decrypted[..]
            }
            None => datagram,
        };
        if latch.handle_packet(from, datagram, now) != crate::media::latch::Verdict::Accepted {
            return;
        }
        self.drain_latch();
        let Ok(packet) = RtpPacket::parse(datagram) else {
            return;
        };
        if Some(packet.payload_type()) == media.telephone_event {
            if let Err(error) = self
                .dtmf
                .handle_packet(packet.timestamp(), packet.payload(), now)
            {
                tracing::trace!(%error, "bad telephone event");
            }
            self.drain_dtmf();
        } else if packet.payload_type() == media.codec.payload_type() {
            if let Some(tap) = &self.tap {
                tap.push_g711(
                    Side::Customer,
                    packet.timestamp(),
                    g711(media.codec),
                    packet.payload(),
                    now,
                );
            }
            if let Some(mixer) = self.mixer.as_mut() {
                mixer.push_g711(Side::Customer, g711(media.codec), packet.payload());
            }
            let heard = self
                .machine
                .as_mut()
                .and_then(|m| m.push_g711(g711(media.codec), packet.payload(), packet.timestamp()));
            if let Some(v) = heard {
                self.answered_by(v);
            }
            let ended = self.message.as_mut().and_then(|(w, _)| {
                w.push_g711(g711(media.codec), packet.payload(), packet.timestamp())
            });
            if let Some(ended) = ended {
                self.greeting_ended(ended, now);
            }
        }
        if let (Some(peer), None) = (&self.peer, &self.hold) {
            let mut bytes = std::mem::take(&mut self.scratch);
            bytes.clear();
            bytes.extend_from_slice(datagram);
            if self.coaching {
                // The agent hears the customer with the coaching supervisors over them.
                lay_over_rtp(g711(media.codec), &mut bytes, &mut self.listeners, |l| {
                    Some(&mut l.to_agent)
                });
            }
            let sent = self.peer_out.as_deref().is_some_and(|out| {
                lock(out).relay_direct(
                    self.source,
                    media.codec,
                    media.telephone_event,
                    &mut bytes,
                    now,
                )
            });
            if sent {
                self.scratch = bytes;
                return;
            }
            let forwarded = BridgedPacket {
                source: self.source,
                codec: media.codec,
                telephone_event: media.telephone_event,
                bytes,
            };
            match peer.try_send(forwarded) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => drops::count(MediaDrop::InboxFull),
                Err(mpsc::error::TrySendError::Closed(_)) => self.unbridge(),
            }
        }
    }

    fn on_bridged(&mut self, mut packet: BridgedPacket, now: Instant) {
        if let Some(listener) = self
            .listeners
            .iter_mut()
            .find(|l| l.source == packet.source)
        {
            return listener.heard(&packet);
        }
        // Only the peer is relayed: a leg bridged elsewhere since, or a
        // supervisor no longer coaching, may still have packets on the way.
        if self.peer_source != Some(packet.source) {
            return;
        }
        let Some(media) = self.media else { return };
        let replaced = self.player.is_some() || self.hold.is_some() || self.digits.is_some();
        if replaced || !sends(media) {
            return;
        }
        let adapted = adapt(
            &mut lock(&self.out).relay,
            media.into(),
            packet.source,
            packet.codec,
            packet.telephone_event,
            &mut packet.bytes,
        );
        let Some(is_audio) = adapted else {
            return;
        };
        let coached = is_audio && self.barging;
        self.send_coached(packet.source, packet.bytes, is_audio, coached, now);
    }

    fn on_timeout(&mut self, now: Instant) {
        if let Some(v) = self.machine.as_mut().and_then(|m| m.handle_timeout(now)) {
            self.answered_by(v);
        }
        if let Some(e) = self
            .message
            .as_mut()
            .and_then(|(w, _)| w.handle_timeout(now))
        {
            self.greeting_ended(e, now);
        }
        if let Some(latch) = self.latch.as_mut() {
            latch.handle_timeout(now);
        }
        self.drain_latch();
        self.dtmf.handle_timeout(now);
        self.drain_dtmf();
        self.feed_listeners(now);
        let sending = self.media.is_some_and(sends);
        // Digits go out over everything else; the hold tone over playback.
        let dialling = match self.digits.as_mut() {
            Some(digits) => {
                digits.handle_timeout(now);
                let frames: Vec<_> = std::iter::from_fn(|| digits.poll_transmit()).collect();
                let idle = digits.is_idle();
                for frame in frames.into_iter().filter(|_| sending) {
                    self.send_relayed(DIGITS, frame.bytes, frame.audio, now);
                }
                if idle {
                    self.digits = None;
                    lock(&self.out).relay.remove_source(DIGITS);
                }
                !idle
            }
            None => false,
        };
        let held = match self.hold.as_mut() {
            Some(hold) => {
                hold.handle_timeout(now);
                let frames: Vec<Vec<u8>> = std::iter::from_fn(|| hold.poll_transmit())
                    .map(|f| f.as_bytes().to_vec())
                    .collect();
                for frame in frames.into_iter().filter(|_| sending && !dialling) {
                    self.send_relayed(HOLD, frame, true, now);
                }
                true
            }
            None => false,
        };
        let Some(player) = self.player.as_mut() else {
            return;
        };
        player.handle_timeout(now);
        let mut frames = Vec::new();
        while let Some(frame) = player.poll_transmit() {
            frames.push(frame.as_bytes().to_vec());
        }
        let finished =
            std::iter::from_fn(|| player.poll_event()).any(|e| e == PlayerEvent::Finished);
        // Playback carries on under the hold tone, unheard, so it still finishes on time.
        for frame in frames.into_iter().filter(|_| sending && !held && !dialling) {
            self.send_relayed(PLAYER, frame, true, now);
        }
        if finished {
            self.player = None;
            lock(&self.out).relay.remove_source(PLAYER);
            let _ = self.events.send(LegEvent::PlaybackFinished(self.call_ref));
        }
    }

    fn send_relayed(&mut self, source: SourceId, bytes: Vec<u8>, audio: bool, now: Instant) {
        self.send_coached(source, bytes, audio, false, now);
    }

    /// Sends audio to the far end; when `coached`, with the barging supervisors laid over it.
    ///
    /// Listeners hear it as it was, so a supervisor never hears their own voice back; the
    /// recording has what the customer heard.
    fn send_coached(
        &mut self,
        source: SourceId,
        mut bytes: Vec<u8>,
        audio: bool,
        coached: bool,
        now: Instant,
    ) {
        let (Some(media), Some(remote)) = (self.media, self.latch.as_ref().and_then(Latch::remote))
        else {
            return;
        };
        let mut out = lock(&self.out);
        let Ok(header) = out.relay.relay(source, &mut bytes, now) else {
            return;
        };
        if audio {
            if let (Some(mixer), Ok(packet)) = (self.mixer.as_mut(), RtpPacket::parse(&bytes)) {
                mixer.push_g711(Side::Agent, g711(media.codec), packet.payload());
            }
            if coached {
                lay_over_rtp(g711(media.codec), &mut bytes, &mut self.listeners, |l| {
                    Some(&mut l.to_customer)
                });
            }
            out.record_sent(header.timestamp, media.codec, &bytes, now);
        }
        if let Some(srtp) = self.srtp.as_mut() {
            if let Err(error) = srtp.outbound.protect(&mut bytes) {
                tracing::trace!(%error, "srtp protect failed");
                return;
            }
        }
        if let Err(error) = self.socket.try_send_to(&bytes, remote) {
            count_send_failure(&error);
            tracing::trace!(%error, "rtp send failed");
        }
    }

    /// Sends the mix that is due to every listener, forgetting listeners that have gone.
    fn feed_listeners(&mut self, now: Instant) {
        let Some(mixer) = self.mixer.as_mut() else {
            return;
        };
        mixer.handle_timeout(now);
        let codec = match mixer.codec() {
            G711::Pcmu => Codec::Pcmu,
            G711::Pcma => Codec::Pcma,
        };
        let before = self.listeners.len();
        while let Some(bytes) = mixer.poll_transmit() {
            self.listeners.retain(|listener| {
                let packet = BridgedPacket {
                    source: MIX,
                    codec,
                    telephone_event: None,
                    bytes: bytes.clone(),
                };
                match listener.inbox.try_send(packet) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        drops::count(MediaDrop::InboxFull);
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
        if self.listeners.len() != before {
            self.count_coaches();
        }
        if self.listeners.is_empty() {
            self.mixer = None;
        }
    }

    /// Notes whether any listener whispers or barges, so the media path does
    /// no work for coaching while nobody coaches.
    fn count_coaches(&mut self) {
        (self.coaching, self.barging) = Listener::coaching(&self.listeners);
    }

    fn drain_latch(&mut self) {
        let Some(latch) = self.latch.as_mut() else {
            return;
        };
        while let Some(event) = latch.poll_event() {
            match event {
                LatchEvent::Latched(addr) => tracing::debug!(%addr, "media latched"),
                LatchEvent::MediaTimeout => {
                    let _ = self.events.send(LegEvent::MediaTimeout(self.call_ref));
                }
            }
        }
    }

    fn answered_by(&mut self, verdict: AmdVerdict) {
        self.machine = None;
        tracing::debug!(?verdict, "machine detection");
        let _ = self
            .events
            .send(LegEvent::AnsweredBy(self.call_ref, verdict));
    }

    /// Plays the message once the greeting is over; after a time-out, only reports it.
    fn greeting_ended(&mut self, ended: GreetingEnded, now: Instant) {
        let Some((_, message)) = self.message.take() else {
            return;
        };
        tracing::debug!(?ended, "greeting ended");
        if ended != GreetingEnded::TimedOut {
            self.start_player(message, now);
        }
        let _ = self
            .events
            .send(LegEvent::GreetingEnded(self.call_ref, ended));
    }

    fn drain_dtmf(&mut self) {
        while let Some(press) = self.dtmf.poll_event() {
            let _ = self.events.send(LegEvent::Dtmf(self.call_ref, press.digit));
        }
    }
}

/// Tells whether the far end wants our audio in this media state.
fn sends(media: NegotiatedMedia) -> bool {
    matches!(
        media.remote_direction,
        Direction::SendRecv | Direction::RecvOnly
    )
}

/// Creates a player of `samples` in the call's codec, starting now.
fn new_player(samples: Arc<[i16]>, codec: Codec, looping: bool, now: Instant) -> Player {
    let codec = g711(codec);
    let config = PlayerConfig {
        codec,
        payload_type: codec.payload_type(),
        ssrc: rand::random(),
        initial_sequence: rand::random(),
        initial_timestamp: rand::random(),
        looping,
    };
    Player::new(samples, config, now)
}

fn g711(codec: Codec) -> G711 {
    match codec {
        Codec::Pcmu => G711::Pcmu,
        Codec::Pcma => G711::Pcma,
    }
}

/// Counts an RTP send the operating system refused for want of buffer room;
/// other errors (an ICMP error from an earlier send, say) are not drops of
/// ours.
fn count_send_failure(error: &std::io::Error) {
    if error.kind() == std::io::ErrorKind::WouldBlock {
        drops::count(MediaDrop::SendRefused);
    }
}

#[cfg(test)]
#[path = "leg_tests.rs"]
mod tests;
