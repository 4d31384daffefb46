//! The sans-IO agent leg: one browser's WebRTC session, audio only, G.711.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::change::SdpOffer;
use str0m::config::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tracing::{debug, trace};

use super::clock::OutgoingClock;
use super::WebRtcError;
use crate::media::G711;

/// One input to the leg.
#[derive(Debug, Clone, Copy)]
pub enum LegInput<'a> {
    /// A datagram that arrived on the leg's UDP socket.
    Datagram {
        /// Where it came from.
        source: SocketAddr,
        /// Its bytes.
        contents: &'a [u8],
    },
    /// The deadline last returned as [`LegOutput::Timeout`] has passed.
    Timeout,
}

/// What the leg wants done next.
#[derive(Debug)]
pub enum LegOutput {
    /// Bytes to send from the leg's socket.
    Transmit(Transmit),
    /// A frame of the agent's audio.
    Frame(ReceivedFrame),
    /// A change of connection state.
    Event(LegEvent),
    /// Nothing more until this instant or the next input.
    Timeout(Instant),
}

/// A datagram for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The browser's address.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// One frame of the agent's audio, as the browser encoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// The codec of the payload.
    pub codec: G711,
    /// The RTP timestamp, in 8 kHz samples.
    pub timestamp: u32,
    /// The G.711 payload, one byte per sample.
    pub payload: Bytes,
}

/// Connection state changes of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// ICE and DTLS are up: media flows both ways.
    Connected,
    /// The browser stopped answering consent checks; it may come back.
    Disconnected,
    /// The session is over for good; the leg can be dropped.
    Closed,
}

/// The server side of one agent's nailed-up WebRTC session.
#[derive(Debug)]
pub struct AgentLeg {
    rtc: Rtc,
    local_addr: SocketAddr,
    mid: Option<Mid>,
    send: Option<(Pt, G711)>,
    clock: OutgoingClock,
    dtls_up: bool,
    connected: bool,
    closed: bool,
    closed_reported: bool,
    last_now: Instant,
}

impl AgentLeg {
    /// Accepts a browser's SDP offer and returns the leg and the SDP answer.
    ///
    /// `local_ip` is the address the browser can reach; the answer offers it
    /// with the port of `udp_socket_addr`, the socket the leg's datagrams use.
    pub fn from_offer(
        offer_sdp: &str,
        local_ip: IpAddr,
        udp_socket_addr: SocketAddr,
        now: Instant,
    ) -> Result<(AgentLeg, String), WebRtcError> {
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
        check_audio_codecs(offer_sdp)?;
        // G.711 only: PCMU first so the bridge to a trunk relays bytes unchanged.
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(crypto_provider())
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .set_stats_interval(None)
            .build(now);
        let local_addr = SocketAddr::new(local_ip, udp_socket_addr.port());
        let candidate = Candidate::host(local_addr, "udp")
            .map_err(|e| WebRtcError::BadAddress(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc.sdp_api().accept_offer(offer)?;
        let leg = AgentLeg {
            rtc,
            local_addr,
            mid: None,
            send: None,
            clock: OutgoingClock::new(),
            dtls_up: false,
            connected: false,
            closed: false,
            closed_reported: false,
            last_now: now,
        };
        Ok((leg, answer.to_sdp_string()))
    }

    /// Feeds one input; bad datagrams are refused without harming the session.
    pub fn handle_input(&mut self, input: LegInput<'_>, now: Instant) -> Result<(), WebRtcError> {
        self.last_now = now;
        if self.closed {
            return Ok(());
        }
        let result = match input {
            LegInput::Timeout => self.rtc.handle_input(Input::Timeout(now)),
            LegInput::Datagram { source, contents } => {
                let receive = Receive::new(Protocol::Udp, source, self.local_addr, contents)
                    .map_err(|e| WebRtcError::Datagram(e.to_string()))?;
                self.rtc.handle_input(Input::Receive(now, receive))
            }
        };
        if !self.rtc.is_alive() {
            self.closed = true;
        }
        result.map_err(WebRtcError::from)
    }

    /// Returns the next thing to do; call until it returns a timeout.
    pub fn poll_output(&mut self) -> LegOutput {
        loop {
            if self.closed {
                if !self.closed_reported {
                    self.closed_reported = true;
                    self.connected = false;
                    return LegOutput::Event(LegEvent::Closed);
                }
                return LegOutput::Timeout(self.last_now + Duration::from_secs(3600));
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return LegOutput::Timeout(at),
                Ok(Output::Transmit(t)) => {
                    return LegOutput::Transmit(Transmit {
                        destination: t.destination,
                        contents: t.contents.into(),
                    })
                }
                Ok(Output::Event(event)) => {
                    if let Some(out) = self.on_event(event) {
                        return out;
                    }
                }
                Err(e) => {
                    debug!(error = %e, "agent leg failed");
                    self.closed = true;
                }
            }
        }
    }

    /// Sends one G.711 frame to the browser, transcoding if it negotiated the other law.
    ///
    /// `timestamp` is the source's own; the leg maps it onto one continuous
    /// outgoing timeline, so sources can change without renegotiation.
    pub fn send_frame(
        &mut self,
        codec: G711,
        payload: &[u8],
        timestamp: u32,
        now: Instant,
    ) -> Result<(), WebRtcError> {
        if !self.connected {
            return Err(WebRtcError::NotConnected);
        }
        let mid = self.mid.ok_or(WebRtcError::NotConnected)?;
        let (pt, send_codec) = self.send_codec(mid)?;
        let samples = u32::try_from(payload.len()).map_err(|_| WebRtcError::FrameTooLong)?;
        let out_ts = self.clock.stamp(timestamp, samples, now);
        let mut data = payload.to_vec();
        codec.transcode_in_place(send_codec, &mut data);
        let writer = self.rtc.writer(mid).ok_or(WebRtcError::NotConnected)?;
        writer.write(pt, now, MediaTime::new(out_ts, Frequency::EIGHT_KHZ), data)?;
        Ok(())
    }

    /// Returns whether media can flow now.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Returns the codec frames go to the browser in, once the audio is negotiated.
    pub fn send_codec_negotiated(&self) -> Option<G711> {
        self.send.map(|(_, c)| c)
    }

    /// Ends the session.
    pub fn close(&mut self) {
        self.rtc.disconnect();
        self.closed = true;
    }

    fn on_event(&mut self, event: Event) -> Option<LegOutput> {
        match event {
            Event::MediaAdded(added) if added.kind == MediaKind::Audio => {
                self.mid.get_or_insert(added.mid);
                None
            }
            Event::Connected => {
                self.dtls_up = true;
                self.set_connected(true)
            }
            Event::IceConnectionStateChange(state) => match state {
                IceConnectionState::Disconnected => self.set_connected(false),
                IceConnectionState::Connected | IceConnectionState::Completed if self.dtls_up => {
                    self.set_connected(true)
                }
                _ => None,
            },
            Event::MediaData(data) if Some(data.mid) == self.mid => {
                let codec = match data.params.spec().codec {
                    Codec::PCMU => G711::Pcmu,
                    Codec::PCMA => G711::Pcma,
                    other => {
                        trace!(codec = ?other, "agent frame in an unexpected codec");
                        return None;
                    }
                };
                Some(LegOutput::Frame(ReceivedFrame {
                    codec,
                    // The low 32 bits are the RTP timestamp itself.
                    timestamp: data.time.numer() as u32,
                    payload: Bytes::copy_from_slice(&data.data),
                }))
            }
            _ => None,
        }
    }

    fn set_connected(&mut self, connected: bool) -> Option<LegOutput> {
        if self.connected == connected {
            return None;
        }
        self.connected = connected;
        Some(LegOutput::Event(if connected {
            LegEvent::Connected
        } else {
            LegEvent::Disconnected
        }))
    }

    fn send_codec(&mut self, mid: Mid) -> Result<(Pt, G711), WebRtcError> {
        if let Some(send) = self.send {
            return Ok(send);
        }
        let remote = self
            .rtc
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default();
        let params = self.rtc.codec_config().params();
        let find = |codec: Codec| {
            params
                .iter()
                .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
                .map(|p| p.pt())
        };
        let send = match (find(Codec::PCMU), find(Codec::PCMA)) {
            (Some(pt), _) => (pt, G711::Pcmu),
            (None, Some(pt)) => (pt, G711::Pcma),
            (None, None) => return Err(WebRtcError::NoG711),
        };
        self.send = Some(send);
        Ok(send)
    }
}

/// Refuses offers without audio, or whose audio has neither PCMU nor PCMA.
///
/// Opus would need transcoding through a C library (libopus); until the
/// gateway takes that on, an Opus-only browser is told so plainly.
fn check_audio_codecs(offer_sdp: &str) -> Result<(), WebRtcError> {
    let mut audio = false;
    let mut g711 = false;
    let mut in_audio = false;
    for line in offer_sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            in_audio = media.starts_with("audio ");
            audio |= in_audio;
        } else if in_audio {
            if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let encoding = map.split_whitespace().nth(1).unwrap_or("");
                let upper = encoding.to_ascii_uppercase();
                g711 |= upper == "PCMU/8000" || upper == "PCMA/8000";
            }
        }
    }
    match (audio, g711) {
        (false, _) => Err(WebRtcError::NoAudio),
        (true, false) => Err(WebRtcError::NoG711),
        (true, true) => Ok(()),
    }
}

fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(str0m::crypto::from_feature_flags()))
        .clone()
}
