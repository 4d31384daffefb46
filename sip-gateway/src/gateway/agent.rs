//! An agent's WebRTC leg as a leg of the gateway, so trunk calls can be bridged into it.
//!
//! The leg's task sits between the browser's session ([`AgentLegHandle`]) and
//! the gateway's bridging: RTP packets bridged in from a trunk leg go to the
//! browser as G.711 frames, and the browser's frames go to the bridged leg as
//! RTP packets, which that leg relays, transcodes and records as it does for
//! any bridged leg. A bridged call that ends only stops the audio; the
//! browser's session stays up for the next call.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{interval, Interval, MissedTickBehavior};

use super::engine::{CallEntry, Engine};
use super::leg::{lock, BridgedPacket, LegCommand, LegEvent, LegHandle, SharedOutbound};
use super::now;
use super::types::{CallRef, CoachMode, GatewayError};
use crate::drops::{self, MediaDrop};
use crate::media::relay::SourceId;
use crate::media::rtp::{RtpBuilder, RtpHeader, RtpPacket};
use crate::media::tone::ToneGenerator;
use crate::media::G711;
use crate::sip::sdp::Codec;
use crate::sip::EndCause;
use crate::webrtc::{
    AgentLegHandle, AgentLegStreams, LegEvent as SessionEvent, OutgoingFrame, ReceivedFrame,
};

/// Packets a bridged leg may queue towards the browser before new ones are dropped.
const BRIDGE_QUEUE: usize = 64;
/// How long a closing leg waits for its session to say goodbye to the browser.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// The zip tone's pitch and peak (about -12 dBFS).
const ZIP_HZ: f64 = 1400.0;
const ZIP_PEAK: i16 = 8000;
/// The zip tone, 20 ms frame by frame: a beep, a gap, a beep.
const ZIP_PATTERN: [bool; 13] = [
    true, true, true, true, true, false, false, false, true, true, true, true, true,
];
/// Samples in one 20 ms frame of G.711.
const FRAME_SAMPLES: usize = 160;

/// An agent leg as the engine keeps it.
#[derive(Debug)]
pub(crate) struct AgentEntry {
    pub leg: LegHandle,
    pub span: tracing::Span,
    /// Set when we close the leg; a leg that ends without it was closed by the browser.
    pub ending: Option<EndCause>,
}

impl Engine {
    /// Accepts a browser's offer on a socket from the RTP range and starts its leg.
    pub(crate) async fn attach_agent(
        &mut self,
        offer_sdp: &str,
    ) -> Result<(CallRef, String), GatewayError> {
        let ip = self.agent_ip()?;
        let socket = self.ports.bind().map_err(|source| GatewayError::Io {
            context: "binding an agent leg's socket".into(),
            source,
        })?;
        let runtime = socket.runtime;
        let (session, answer, streams) =
            AgentLegHandle::accept_on(offer_sdp, ip, socket.socket, &runtime)?;
        let call_ref = loop {
            let candidate = CallRef::random();
            if !self.calls.contains_key(&candidate) && !self.agents.contains_key(&candidate) {
                break candidate;
            }
        };
        self.next_leg_id += 1;
        let span = tracing::info_span!("agent", %call_ref);
        let leg = spawn(
            call_ref,
            SourceId(self.next_leg_id),
            session,
            streams,
            self.leg_events.clone(),
            span.clone(),
            &runtime,
        );
        tracing::info!(parent: &span, local = %leg.local, "agent leg attached");
        self.agents.insert(
            call_ref,
            AgentEntry {
                leg,
                span,
                ending: None,
            },
        );
        Ok((call_ref, answer))
    }

    /// Closes an agent leg; its `Ended` event follows once the session is down.
    pub(crate) fn detach_agent(&mut self, call_ref: CallRef) -> Result<(), GatewayError> {
        let entry = self
            .agents
            .get_mut(&call_ref)
            .ok_or(GatewayError::NoSuchCall)?;
        entry.ending.get_or_insert(EndCause::LocalHangup);
        entry.leg.send(LegCommand::Close);
        Ok(())
    }

    /// Puts a supervisor's leg on a trunk call in `mode`; see [`super::Gateway::coach`].
    ///
    /// The leg stops hearing whatever it heard before: a bridged call or another listened
    /// one. On the same call it changes mode in place, on the same connection.
    pub(crate) fn coach(
        &mut self,
        call: CallRef,
        listener: CallRef,
        mode: CoachMode,
    ) -> Result<(), GatewayError> {
        let listening = match self.agents.get(&listener) {
            Some(entry) => entry.leg.clone(),
            None if self.calls.contains_key(&listener) => return Err(GatewayError::NotAnAgentLeg),
            None => return Err(GatewayError::NoSuchCall),
        };
        let Some(entry) = self.calls.get(&call) else {
            if self.agents.contains_key(&call) {
                return Err(GatewayError::NotATrunkCall);
            }
            return Err(GatewayError::NoSuchCall);
        };
        if entry.ending.is_some() {
            return Err(GatewayError::NoSuchCall);
        }
        tracing::info!(parent: &entry.span, %listener, ?mode, "supervisor on the call");
        let call_leg = entry.leg.clone();
        if mode == CoachMode::TakeOver {
            // No longer a listener of the call but its other side; the agent's leg
            // forgets the call in the bridge.
            call_leg.send(LegCommand::Forget(listening.inbox.clone()));
            return self.bridge(call, listener);
        }
        // The call itself keeps the leg, so a change of mode keeps the mix going.
        self.forget_everywhere(listener, &[listener, call]);
        call_leg.send(LegCommand::Coach {
            listener: listening.inbox.clone(),
            source: listening.source,
            mode,
        });
        self.feed(call, listener);
        match mode {
            CoachMode::Listen | CoachMode::TakeOver => listening.send(LegCommand::Unbridge),
            CoachMode::Whisper | CoachMode::Barge => {
                listening.send(LegCommand::Bridge {
                    peer: call_leg.inbox.clone(),
                    source: call_leg.source,
                    outbound: call_leg.outbound.clone(),
                });
                self.feed(listener, call);
            }
        }
        Ok(())
    }

    /// Plays an agent leg the zip tone; see [`super::Gateway::zip_tone`].
    pub(crate) fn zip_tone(&self, agent: CallRef) -> Result<(), GatewayError> {
        match self.agents.get(&agent) {
            Some(entry) => {
                entry.leg.send(LegCommand::ZipTone);
                Ok(())
            }
            None if self.calls.contains_key(&agent) => Err(GatewayError::NotAnAgentLeg),
            None => Err(GatewayError::NoSuchCall),
        }
    }

    /// Tells every leg but `except` that was told to send to `receiver`, as its
    /// peer or as a listener, to stop.
    pub(crate) fn forget_everywhere(&mut self, receiver: CallRef, except: &[CallRef]) {
        let (calls, agents) = (&self.calls, &self.agents);
        let leg = leg_in(calls, agents, receiver);
        let (Some(leg), Some(senders)) = (leg, self.feeds.get_mut(&receiver)) else {
            return;
        };
        senders.retain(|sender| {
            if except.contains(sender) {
                return true;
            }
            if let Some(other) = leg_in(calls, agents, *sender) {
                other.send(LegCommand::Forget(leg.inbox.clone()));
            }
            false
        });
    }

    /// Notes that `sender` was told to send audio to `receiver`.
    pub(crate) fn feed(&mut self, sender: CallRef, receiver: CallRef) {
        let senders = self.feeds.entry(receiver).or_default();
        if !senders.contains(&sender) {
            senders.push(sender);
        }
    }

    /// Returns the leg of a trunk call or an agent.
    pub(crate) fn any_leg(&self, call_ref: CallRef) -> Option<&LegHandle> {
        leg_in(&self.calls, &self.agents, call_ref)
    }

    /// Picks the address browsers reach agent legs at: advertised, else bound.
    fn agent_ip(&self) -> Result<IpAddr, GatewayError> {
        let ip = self
            .config
            .advertised_ip
            .unwrap_or(self.config.sip_udp.ip());
        if ip.is_unspecified() {
            return Err(GatewayError::Config(
                "agent legs need advertised_ip when the gateway binds a wildcard address".into(),
            ));
        }
        Ok(ip)
    }
}

/// Starts the task that bridges one agent's session into the gateway.
fn spawn(
    call_ref: CallRef,
    source: SourceId,
    session: AgentLegHandle,
    streams: AgentLegStreams,
    events: mpsc::UnboundedSender<LegEvent>,
    span: tracing::Span,
    runtime: &tokio::runtime::Handle,
) -> LegHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (inbox, inbox_rx) = mpsc::channel(BRIDGE_QUEUE);
    let local = session.local_addr();
    let bridge = AgentBridge {
        call_ref,
        source,
        session: Some(session),
        peer: None,
        peer_out: None,
        ssrc: rand::random(),
        sequence: rand::random(),
        events,
        zip: None,
        heard: G711::Pcmu,
    };
    runtime.spawn(tracing::Instrument::instrument(
        bridge.run(command_rx, inbox_rx, streams),
        span,
    ));
    LegHandle {
        commands,
        inbox,
        local,
        source,
        outbound: None,
    }
}

struct AgentBridge {
    call_ref: CallRef,
    source: SourceId,
    session: Option<AgentLegHandle>,
    peer: Option<mpsc::Sender<BridgedPacket>>,
    /// The bridged RTP leg's sending side: the agent's audio goes straight
    /// out through it when that leg takes it so.
    peer_out: Option<SharedOutbound>,
    ssrc: u32,
    sequence: u16,
    events: mpsc::UnboundedSender<LegEvent>,
    /// The zip tone while it plays.
    zip: Option<Zip>,
    /// The law of the audio last sent to the browser, for the zip tone.
    heard: G711,
}

/// A zip tone being played, frame by frame on its own 20 ms clock.
struct Zip {
    ticks: Interval,
    frame: usize,
    timestamp: u32,
    tone: ToneGenerator,
}

impl Zip {
    fn new() -> Self {
        let mut ticks = interval(std::time::Duration::from_millis(20));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Zip {
            ticks,
            frame: 0,
            timestamp: rand::random(),
            tone: ToneGenerator::new(ZIP_HZ, ZIP_PEAK, 8000),
        }
    }
}

/// Waits for the zip tone's next frame; forever when none is playing.
async fn zip_tick(zip: &mut Option<Zip>) {
    match zip {
        Some(zip) => {
            zip.ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl AgentBridge {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<LegCommand>,
        mut inbox: mpsc::Receiver<BridgedPacket>,
        mut streams: AgentLegStreams,
    ) {
        let session_closed = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(LegCommand::Close) => break false,
                    Some(LegCommand::Bridge { peer, outbound, .. }) => {
                        tracing::debug!("bridged");
                        self.peer = Some(peer);
                        self.peer_out = outbound;
                    }
                    Some(LegCommand::Unbridge) => self.unbridge(),
                    Some(LegCommand::ZipTone) => self.zip = Some(Zip::new()),
                    Some(LegCommand::Forget(leg)) => {
                        if self.peer.as_ref().is_some_and(|p| p.same_channel(&leg)) {
                            self.unbridge();
                        }
                    }
                    // The engine refuses the others for agent legs before they get here.
                    Some(other) => tracing::debug!(?other, "command ignored by an agent leg"),
                },
                () = zip_tick(&mut self.zip) => self.zip_frame(),
                Some(packet) = inbox.recv() => self.on_bridged(packet),
                Some(frame) = streams.frames.recv() => self.on_agent_frame(frame),
                event = streams.events.recv() => match event {
                    Some(SessionEvent::Connected) => self.report(LegEvent::Connected(self.call_ref)),
                    Some(SessionEvent::Disconnected) => {
                        self.report(LegEvent::Disconnected(self.call_ref));
                    }
                    Some(SessionEvent::Closed) | None => break true,
                },
            }
        };
        // Dropping the session's only handle closes it; its goodbye reaches the browser first.
        self.session = None;
        if !session_closed {
            let goodbye = async {
                while let Some(event) = streams.events.recv().await {
                    if event == SessionEvent::Closed {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, goodbye).await;
        }
        tracing::debug!(by_browser = session_closed, "agent leg closed");
        self.report(LegEvent::Closed(self.call_ref));
    }

    fn unbridge(&mut self) {
        self.peer = None;
        self.peer_out = None;
    }

    /// Sends the audio of a bridged packet to the browser; other payloads are dropped.
    fn on_bridged(&mut self, packet: BridgedPacket) {
        let Some(session) = &self.session else { return };
        self.heard = g711(packet.codec);
        if self.zip.is_some() {
            // The agent hears the tone, not the call, until it ends.
            return;
        }
        let Ok(view) = RtpPacket::parse(&packet.bytes) else {
            return;
        };
        if view.payload_type() != packet.codec.payload_type() || view.has_padding() {
            return;
        }
        let frame = OutgoingFrame {
            codec: g711(packet.codec),
            timestamp: view.timestamp(),
            payload: Bytes::copy_from_slice(view.payload()),
        };
        if session.send_frame(frame).is_err() {
            tracing::trace!("frame for a closing agent leg dropped");
        }
    }

    /// Sends the browser the zip tone's next frame, and ends it after the last.
    fn zip_frame(&mut self) {
        let Some(zip) = &mut self.zip else { return };
        let Some(&beep) = ZIP_PATTERN.get(zip.frame) else {
            self.zip = None;
            return;
        };
        let mut samples = [0i16; FRAME_SAMPLES];
        if beep {
            zip.tone.fill(&mut samples);
        }
        let mut payload = [0u8; FRAME_SAMPLES];
        self.heard.encode(&samples, &mut payload);
        let frame = OutgoingFrame {
            codec: self.heard,
            timestamp: zip.timestamp,
            payload: Bytes::copy_from_slice(&payload),
        };
        zip.frame += 1;
        zip.timestamp = zip.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        if let Some(session) = &self.session {
            if session.send_frame(frame).is_err() {
                tracing::trace!("zip tone frame for a closing agent leg dropped");
            }
        }
    }

    /// Wraps a frame of the agent's audio in RTP for the bridged leg.
    fn on_agent_frame(&mut self, frame: ReceivedFrame) {
        let Some(peer) = &self.peer else { return };
        let codec = match frame.codec {
            G711::Pcmu => Codec::Pcmu,
            G711::Pcma => Codec::Pcma,
        };
        let header = RtpHeader {
            marker: false,
            payload_type: codec.payload_type(),
            sequence: self.sequence,
            timestamp: frame.timestamp,
            ssrc: self.ssrc,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut bytes = RtpBuilder {
            header,
            payload: &frame.payload,
            ..RtpBuilder::default()
        }
        .to_vec();
        let sent = self
            .peer_out
            .as_deref()
            .is_some_and(|out| lock(out).relay_direct(self.source, codec, None, &mut bytes, now()));
        if sent {
            return;
        }
        let packet = BridgedPacket {
            source: self.source,
            codec,
            telephone_event: None,
            bytes,
        };
        // A closed inbox means the bridged call has ended: the agent stays, the audio stops.
        match peer.try_send(packet) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => drops::count(MediaDrop::InboxFull),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("bridged call has gone");
                self.unbridge();
            }
        }
    }

    fn report(&self, event: LegEvent) {
        let _ = self.events.send(event);
    }
}

fn g711(codec: Codec) -> G711 {
    match codec {
        Codec::Pcmu => G711::Pcmu,
        Codec::Pcma => G711::Pcma,
    }
}

/// The leg of a trunk call or an agent, from the engine's maps (borrowed
/// apart from the rest of the engine where it is changed meanwhile).
fn leg_in<'a>(
    calls: &'a BTreeMap<CallRef, CallEntry>,
    agents: &'a BTreeMap<CallRef, AgentEntry>,
    call_ref: CallRef,
) -> Option<&'a LegHandle> {
    let call = calls.get(&call_ref).map(|e| &e.leg);
    call.or_else(|| agents.get(&call_ref).map(|e| &e.leg))
}
