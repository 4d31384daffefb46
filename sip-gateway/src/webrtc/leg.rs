//! The sans-IO agent leg: one browser's WebRTC session, audio only, G.711 to the gateway.
//!
//! A browser that offers PCMU or PCMA gets them, and its frames pass through
//! untouched. One that offers only Opus gets Opus, transcoded here at the
//! edge: its packets leave the leg as G.711 at 8 kHz, and the G.711 frames
//! sent to it are encoded as 20 ms Opus packets, so nothing past the leg
//! (bridging, recording, hold, DTMF, listening in) sees anything else.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::change::SdpOffer;
use str0m::config::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tracing::{debug, trace};

use super::clock::OutgoingClock;
use super::WebRtcError;
use crate::media::opus::{OpusDecoder, OpusEncoder, OpusPacket};
use crate::media::resample::FACTOR;
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

/// The audio codec a leg and its browser agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711, relayed as it is.
    G711(G711),
    /// Opus, transcoded at the leg.
    Opus,
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
    send: Option<(Pt, AudioCodec)>,
    clock: OutgoingClock,
    /// Set when the browser offered only Opus.
    opus: Option<Box<OpusLeg>>,
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
        let offered = offered_audio(offer_sdp)?;
        let config = RtcConfig::new()
            .set_crypto_provider(crypto_provider())
            .set_ice_lite(true)
            .clear_codecs()
            .set_stats_interval(None)
            // An audio leg estimates no bandwidth. Without transport-wide
            // sequence numbers (nor the estimators' send times) in the
            // answer, the browser stamps none on its packets, keeps no
            // record of ours and sends no transport-cc feedback for the
            // leg to read. The audio level and the MID are all it keeps.
            .clear_extension_map()
            .set_extension(1, Extension::AudioLevel)
            .set_extension(4, Extension::RtpMid);
        let (config, opus) = match offered {
            // PCMU first so the bridge to a trunk relays bytes unchanged; Opus
            // is not even answered, so the browser cannot pick it.
            Offered::G711 => (
                config.enable_pcmu(true, false).enable_pcma(true, false),
                None,
            ),
            Offered::OpusOnly => (
                config.enable_opus(true, false),
                Some(Box::new(OpusLeg::new()?)),
            ),
        };
        let mut rtc = config.build(now);
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
            opus,
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

    /// Sends one G.711 frame to the browser, transcoding if it negotiated the other law or Opus.
    ///
    /// `timestamp` is the source's own; the leg maps it onto one continuous
    /// outgoing timeline, so sources can change without renegotiation.
    /// With Opus, frames are gathered into 20 ms packets, so a shorter frame
    /// may send nothing yet.
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
        let send_law = match send_codec {
            AudioCodec::G711(law) => law,
            AudioCodec::Opus => return self.send_opus(mid, pt, codec, payload, out_ts, now),
        };
        let mut data = payload.to_vec();
        codec.transcode_in_place(send_law, &mut data);
        let writer = self.rtc.writer(mid).ok_or(WebRtcError::NotConnected)?;
        writer.write(pt, now, MediaTime::new(out_ts, Frequency::EIGHT_KHZ), data)?;
        Ok(())
    }

    /// Returns whether media can flow now.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Returns the codec frames go to the browser in, once the first has been sent.
    pub fn send_codec_negotiated(&self) -> Option<AudioCodec> {
        self.send.map(|(_, c)| c)
    }

    /// Returns whether the leg transcodes Opus, which it does when the browser offered nothing else.
    pub fn transcodes_opus(&self) -> bool {
        self.opus.is_some()
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
                    Codec::Opus => {
                        let opus = self.opus.as_mut()?;
                        // The low 32 bits are the RTP timestamp itself.
                        return opus.receive(&data.data, data.time.numer() as u32);
                    }
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

    /// Encodes a G.711 frame for an Opus browser; `out_ts` is on the 8 kHz outgoing timeline.
    fn send_opus(
        &mut self,
        mid: Mid,
        pt: Pt,
        codec: G711,
        payload: &[u8],
        out_ts: u64,
        now: Instant,
    ) -> Result<(), WebRtcError> {
        let opus = self.opus.as_mut().ok_or(WebRtcError::NotConnected)?;
        for packet in opus.send(codec, payload, out_ts)? {
            // A writer is used up by one write.
            let writer = self.rtc.writer(mid).ok_or(WebRtcError::NotConnected)?;
            let time = MediaTime::new(packet.timestamp, Frequency::FORTY_EIGHT_KHZ);
            writer.write(pt, now, time, packet.payload)?;
        }
        Ok(())
    }

    fn send_codec(&mut self, mid: Mid) -> Result<(Pt, AudioCodec), WebRtcError> {
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
        let send = match (find(Codec::PCMU), find(Codec::PCMA), find(Codec::Opus)) {
            (Some(pt), _, _) => (pt, AudioCodec::G711(G711::Pcmu)),
            (None, Some(pt), _) => (pt, AudioCodec::G711(G711::Pcma)),
            (None, None, Some(pt)) if self.opus.is_some() => (pt, AudioCodec::Opus),
            _ => return Err(WebRtcError::NoCodec),
        };
        self.send = Some(send);
        Ok(send)
    }
}

/// What an offer's audio allows the leg to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    /// PCMU or PCMA, whatever else is offered.
    G711,
    /// Opus and no G.711: the leg transcodes.
    OpusOnly,
}

/// Reads which codecs an offer's audio has; refuses offers without audio or without a codec we speak.
fn offered_audio(offer_sdp: &str) -> Result<Offered, WebRtcError> {
    let mut audio = false;
    let mut g711 = false;
    let mut opus = false;
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
                opus |= upper.starts_with("OPUS/48000");
            }
        }
    }
    match (audio, g711, opus) {
        (false, _, _) => Err(WebRtcError::NoAudio),
        (true, true, _) => Ok(Offered::G711),
        (true, false, true) => Ok(Offered::OpusOnly),
        (true, false, false) => Err(WebRtcError::NoCodec),
    }
}

/// The transcoding state of a leg whose browser speaks only Opus.
#[derive(Debug)]
struct OpusLeg {
    decoder: OpusDecoder,
    encoder: OpusEncoder,
    /// The law of the frames bridged in; the browser's audio goes out in it too,
    /// so a trunk leg can relay it without changing law.
    law: G711,
    /// The last received 48 kHz timestamp and the 8 kHz one it became.
    received: Option<(u32, u32)>,
    pcm: Vec<i16>,
    packets: Vec<OpusPacket>,
}

impl OpusLeg {
    fn new() -> Result<Self, WebRtcError> {
        Ok(OpusLeg {
            decoder: OpusDecoder::new()?,
            encoder: OpusEncoder::new()?,
            law: G711::Pcmu,
            received: None,
            pcm: Vec::with_capacity(960),
            packets: Vec::with_capacity(2),
        })
    }

    /// Decodes a packet from the browser into a G.711 frame at 8 kHz.
    fn receive(&mut self, packet: &[u8], timestamp: u32) -> Option<LegOutput> {
        self.pcm.clear();
        if let Err(e) = self.decoder.decode(packet, &mut self.pcm) {
            trace!(error = %e, "agent Opus packet dropped");
            return None;
        }
        // Steps on the 48 kHz clock become steps a sixth the size; the 8 kHz
        // clock starts wherever, as any RTP clock may.
        let narrow = match self.received {
            None => timestamp / FACTOR as u32,
            Some((wide, narrow)) => {
                let step = timestamp.wrapping_sub(wide) as i32 / FACTOR as i32;
                narrow.wrapping_add(step as u32)
            }
        };
        self.received = Some((timestamp, narrow));
        let mut payload = vec![0; self.pcm.len()];
        self.law.encode(&self.pcm, &mut payload);
        Some(LegOutput::Frame(ReceivedFrame {
            codec: self.law,
            timestamp: narrow,
            payload: Bytes::from(payload),
        }))
    }

    /// Encodes a G.711 frame stamped `out_ts` (8 kHz) into the packets now complete.
    fn send(
        &mut self,
        codec: G711,
        payload: &[u8],
        out_ts: u64,
    ) -> Result<std::vec::Drain<'_, OpusPacket>, WebRtcError> {
        self.law = codec;
        self.pcm.clear();
        self.pcm.resize(payload.len(), 0);
        codec.decode(payload, &mut self.pcm);
        self.encoder.encode(&self.pcm, out_ts, &mut self.packets)?;
        Ok(self.packets.drain(..))
    }
}

fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(str0m::crypto::from_feature_flags()))
        .clone()
}
