//! The tokio driver of one agent leg on its own UDP socket.
//!
//! One socket per leg rather than one shared socket: a leg lives for a whole
//! shift, so an agent costs one port for hours, and the kernel does the
//! demultiplexing that a shared socket would need by STUN username and then
//! by source address. It is also how the gateway's call legs take ports.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, trace};

use super::leg::{AgentLeg, LegEvent, LegInput, LegOutput, ReceivedFrame};
use super::WebRtcError;
use crate::alarm::Alarm;
use crate::drops::{self, MediaDrop};
use crate::media::G711;

/// Received frames buffered for a slow reader before new ones are dropped (five seconds).
const FRAME_CAPACITY: usize = 250;
/// Outgoing frames queued before new ones are dropped (one second).
const OUTGOING_CAPACITY: usize = 50;
/// Large enough for any datagram a browser sends.
const RECEIVE_BUFFER: usize = 2048;

/// One frame of audio for the agent to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFrame {
    /// The codec of the payload; the leg transcodes if the browser chose the other law.
    pub codec: G711,
    /// The source's RTP timestamp, in 8 kHz samples.
    pub timestamp: u32,
    /// The G.711 payload, one byte per sample.
    pub payload: Bytes,
}

/// What a leg reports: the agent's audio and its connection state.
#[derive(Debug)]
pub struct AgentLegStreams {
    /// Frames of the agent's audio, in arrival order.
    pub frames: mpsc::Receiver<ReceivedFrame>,
    /// Connection state changes, ending with [`LegEvent::Closed`].
    pub events: mpsc::UnboundedReceiver<LegEvent>,
}

/// A handle on a running agent leg; the leg closes when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct AgentLegHandle {
    outgoing: mpsc::Sender<OutgoingFrame>,
    local_addr: SocketAddr,
}

impl AgentLegHandle {
    /// Accepts the browser's offer on `socket`, starts the leg's task, and returns the SDP answer.
    ///
    /// `local_ip` is the address the browser can reach the socket at.
    pub fn accept(
        offer_sdp: &str,
        local_ip: IpAddr,
        socket: UdpSocket,
    ) -> Result<(AgentLegHandle, String, AgentLegStreams), WebRtcError> {
        Self::accept_on(offer_sdp, local_ip, socket, &Handle::current())
    }

    /// As [`AgentLegHandle::accept`], with the leg's task on `runtime`, the
    /// runtime whose poller `socket` is registered with.
    pub fn accept_on(
        offer_sdp: &str,
        local_ip: IpAddr,
        socket: UdpSocket,
        runtime: &Handle,
    ) -> Result<(AgentLegHandle, String, AgentLegStreams), WebRtcError> {
        let local_addr = socket.local_addr().map_err(|source| WebRtcError::Io {
            context: "reading the agent leg's socket address",
            source,
        })?;
        let now = Instant::now().into_std();
        let (leg, answer) = AgentLeg::from_offer(offer_sdp, local_ip, local_addr, now)?;
        let (outgoing_tx, outgoing_rx) = mpsc::channel(OUTGOING_CAPACITY);
        let (frames_tx, frames_rx) = mpsc::channel(FRAME_CAPACITY);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            leg,
            socket,
            outgoing: outgoing_rx,
            frames: frames_tx,
            events: events_tx,
        };
        runtime.spawn(driver.run());
        let handle = AgentLegHandle {
            outgoing: outgoing_tx,
            local_addr,
        };
        let streams = AgentLegStreams {
            frames: frames_rx,
            events: events_rx,
        };
        Ok((handle, answer, streams))
    }

    /// Queues a frame for the browser; while the leg is not connected it is dropped.
    pub fn send_frame(&self, frame: OutgoingFrame) -> Result<(), WebRtcError> {
        match self.outgoing.try_send(frame) {
            Ok(()) => Ok(()),
            // Late audio is worse than lost audio: a stalled leg drops frames.
            Err(mpsc::error::TrySendError::Full(_)) => {
                drops::count(MediaDrop::ToAgentBacklog);
                trace!("agent leg backlog full; frame dropped");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WebRtcError::Ended),
        }
    }

    /// Returns the address of the leg's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

struct Driver {
    leg: AgentLeg,
    socket: UdpSocket,
    outgoing: mpsc::Receiver<OutgoingFrame>,
    frames: mpsc::Sender<ReceivedFrame>,
    events: mpsc::UnboundedSender<LegEvent>,
}

impl Driver {
    async fn run(mut self) {
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        let mut alarm = Alarm::new();
        loop {
            let Some(deadline) = self.drain().await else {
                return;
            };
            alarm.set(Some(deadline));
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, source)) => {
                        let input = LegInput::Datagram { source, contents: &buf[..len] };
                        if let Err(e) = self.leg.handle_input(input, now()) {
                            trace!(error = %e, %source, "agent datagram refused");
                        }
                    }
                    // ICMP errors from an earlier send surface here; the leg carries on.
                    Err(e) => debug!(error = %e, "agent leg receive failed"),
                },
                frame = self.outgoing.recv() => match frame {
                    Some(f) => {
                        if let Err(e) = self.leg.send_frame(f.codec, &f.payload, f.timestamp, now()) {
                            drops::count(MediaDrop::ToAgentRefused);
                            trace!(error = %e, "frame for the agent dropped");
                        }
                    }
                    None => self.leg.close(),
                },
                () = alarm.fired() => {
                    if let Err(e) = self.leg.handle_input(LegInput::Timeout, now()) {
                        debug!(error = %e, "agent leg timeout failed");
                    }
                }
            }
        }
    }

    /// Carries out every pending output; returns the next deadline, or `None` once closed.
    async fn drain(&mut self) -> Option<std::time::Instant> {
        loop {
            match self.leg.poll_output() {
                LegOutput::Transmit(t) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                        debug!(error = %e, destination = %t.destination, "agent leg send failed");
                    }
                }
                LegOutput::Frame(frame) => {
                    if let Err(mpsc::error::TrySendError::Full(_)) = self.frames.try_send(frame) {
                        drops::count(MediaDrop::FromAgentBehind);
                        trace!("agent frame dropped: reader is behind");
                    }
                }
                LegOutput::Event(event) => {
                    debug!(?event, "agent leg state");
                    // A dropped receiver only means nobody listens for state.
                    let _ = self.events.send(event);
                    if event == LegEvent::Closed {
                        return None;
                    }
                }
                LegOutput::Timeout(at) => return Some(at),
            }
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}
