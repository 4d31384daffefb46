//! A softphone for tests: a str0m WebRTC peer on a real UDP socket, attached to the gateway
//! as an agent leg, that plays a tone and keeps what it hears.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sip_gateway::gateway::{CallEventKind, CallRef, Gateway};
use sip_gateway::media::tone::ToneGenerator;
use sip_gateway::media::G711;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::wait_for;

/// One browser-like agent leg with a microphone that plays a sine.
pub struct Softphone {
    /// The agent leg's reference at the gateway.
    pub call_ref: CallRef,
    /// The gateway's SDP answer.
    pub answer: String,
    heard: Arc<Mutex<Vec<i16>>>,
    _stop: oneshot::Sender<()>,
}

impl Softphone {
    /// Offers a leg to the gateway, plays `tone` Hz into it once connected, and waits for
    /// the gateway to report the leg answered.
    pub async fn attach(gateway: &Gateway, tone: f64) -> Result<Softphone> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let now = Instant::now().into_std();
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().context("an offer")?;
        let mut events = gateway.events();
        let (call_ref, answer) = gateway.attach_agent(&offer.to_sdp_string()).await?;
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel();
        let peer = Peer {
            rtc,
            socket,
            local,
            mid,
            tone: ToneGenerator::new(tone, 8000, 8000),
            timestamp: 0,
            connected: false,
            heard: heard.clone(),
        };
        tokio::spawn(peer.run(stopped));
        wait_for(&mut events, call_ref, Duration::from_secs(10), |k| {
            *k == CallEventKind::Answered
        })
        .await;
        Ok(Softphone {
            call_ref,
            answer,
            heard,
            _stop: stop,
        })
    }

    /// Returns what the softphone heard since the last call, decoded to 8 kHz samples.
    pub fn take_heard(&self) -> Vec<i16> {
        std::mem::take(&mut *self.heard.lock().unwrap())
    }

    /// Waits `span`, then returns what the softphone heard during it.
    pub async fn hear_for(&self, span: Duration) -> Vec<i16> {
        self.take_heard();
        tokio::time::sleep(span).await;
        self.take_heard()
    }
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: str0m::media::Mid,
    tone: ToneGenerator,
    timestamp: u64,
    connected: bool,
    heard: Arc<Mutex<Vec<i16>>>,
}

impl Peer {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            let deadline = match self.drain().await {
                Ok(deadline) => deadline,
                Err(error) => {
                    eprintln!("softphone stopped: {error}");
                    return;
                }
            };
            tokio::select! {
                _ = &mut stopped => return,
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((len, source)) = received else { continue };
                    let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..len]) else {
                        continue;
                    };
                    let _ = self.rtc.handle_input(Input::Receive(Instant::now().into_std(), receive));
                }
                _ = tick.tick() => self.speak(),
                () = tokio::time::sleep_until(Instant::from_std(deadline)) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now().into_std()));
                }
            }
        }
    }

    /// Sends 20 ms of the tone, once the connection is up.
    fn speak(&mut self) {
        if !self.connected {
            return;
        }
        let Some(pt) = self
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == Codec::PCMU)
            .map(|p| p.pt())
        else {
            return;
        };
        let mut pcm = [0i16; 160];
        self.tone.fill(&mut pcm);
        let mut payload = vec![0u8; 160];
        G711::Pcmu.encode(&pcm, &mut payload);
        let time = MediaTime::new(self.timestamp, Frequency::EIGHT_KHZ);
        self.timestamp += 160;
        if let Some(writer) = self.rtc.writer(self.mid) {
            let _ = writer.write(pt, Instant::now().into_std(), time, payload);
        }
    }

    /// Carries out what the peer wants done; returns its next deadline.
    async fn drain(&mut self) -> Result<std::time::Instant> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(data)) => {
                    let Some(codec) = G711::from_payload_type(*data.pt) else {
                        continue;
                    };
                    let mut pcm = vec![0; data.data.len()];
                    codec.decode(&data.data, &mut pcm);
                    self.heard.lock().unwrap().extend(pcm);
                }
                Output::Event(Event::IceConnectionStateChange(
                    str0m::IceConnectionState::Disconnected,
                )) => bail!("ICE disconnected"),
                Output::Event(_) => {}
            }
        }
    }
}
