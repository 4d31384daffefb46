//! An agent leg stepped against a str0m peer playing the browser, with no sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use super::leg::{AgentLeg, AudioCodec, LegEvent, LegInput, LegOutput};
use super::WebRtcError;
use crate::media::opus::{OpusDecoder, OpusEncoder};
use crate::media::tone::{dominant_frequency, sine};
use crate::media::G711;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CANDIDATES: [f64; 4] = [440.0, 697.0, 1000.0, 1336.0];

struct Browser {
    rtc: Rtc,
    addr: SocketAddr,
    mid: Mid,
    received: Vec<i16>,
    connected: bool,
    /// Set when the browser speaks only Opus: it codes at 8 kHz through the leg's own wrappers.
    opus: Option<(OpusEncoder, OpusDecoder)>,
}

struct Pair {
    browser: Browser,
    leg: AgentLeg,
    leg_addr: SocketAddr,
    now: Instant,
    leg_events: Vec<LegEvent>,
    leg_audio: Vec<(G711, Vec<i16>)>,
    leg_timestamps: Vec<u32>,
}

fn browser_config(g711: bool) -> RtcConfig {
    let config = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs();
    if g711 {
        config
            .enable_opus(true, false)
            .enable_pcma(true, false)
            .enable_pcmu(true, false)
    } else {
        config.enable_opus(true, false)
    }
}

fn offer(g711: bool, now: Instant) -> (Rtc, Mid, String, str0m::change::SdpPendingOffer) {
    let mut rtc = browser_config(g711).build(now);
    let addr = SocketAddr::new(LOOPBACK, 40000);
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    (rtc, mid, offer.to_sdp_string(), pending)
}

/// The loopback port the agent leg under test is said to be on.
const LEG_PORT: u16 = 50000;

/// Answers `offer_sdp` as a leg on loopback port [`LEG_PORT`] would.
fn answer_on_loopback(offer_sdp: &str, now: Instant) -> Result<(AgentLeg, String), WebRtcError> {
    AgentLeg::from_offer(
        offer_sdp,
        LOOPBACK,
        SocketAddr::new(LOOPBACK, LEG_PORT),
        now,
    )
}

impl Pair {
    fn new() -> Pair {
        Pair::offering(true)
    }

    fn offering(g711: bool) -> Pair {
        let now = Instant::now();
        let (mut rtc, mid, offer_sdp, pending) = offer(g711, now);
        let (leg, answer) = answer_on_loopback(&offer_sdp, now).unwrap();
        let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        let browser = Browser {
            rtc,
            addr: SocketAddr::new(LOOPBACK, 40000),
            mid,
            received: Vec::new(),
            connected: false,
            opus: (!g711).then(|| (OpusEncoder::new().unwrap(), OpusDecoder::new().unwrap())),
        };
        Pair {
            browser,
            leg,
            leg_addr: SocketAddr::new(LOOPBACK, LEG_PORT),
            now,
            leg_events: Vec::new(),
            leg_audio: Vec::new(),
            leg_timestamps: Vec::new(),
        }
    }

    /// Sends 8 kHz audio from the browser, in the codec it negotiated.
    fn browser_sends(&mut self, pcm: &[i16], ts: u64) {
        let browser = &mut self.browser;
        let wanted = if browser.opus.is_some() {
            Codec::Opus
        } else {
            Codec::PCMU
        };
        let pt = browser
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == wanted)
            .unwrap()
            .pt();
        let mut sends = Vec::new();
        if let Some((encoder, _)) = &mut browser.opus {
            let mut packets = Vec::new();
            encoder.encode(pcm, ts, &mut packets).unwrap();
            for p in packets {
                sends.push((
                    MediaTime::new(p.timestamp, Frequency::FORTY_EIGHT_KHZ),
                    p.payload,
                ));
            }
        } else {
            let mut payload = vec![0; pcm.len()];
            G711::Pcmu.encode(pcm, &mut payload);
            sends.push((MediaTime::new(ts, Frequency::EIGHT_KHZ), payload));
        }
        for (time, payload) in sends {
            let writer = browser.rtc.writer(browser.mid).unwrap();
            writer.write(pt, self.now, time, payload).unwrap();
        }
    }

    /// Exchanges everything both sides want to send, then advances the clock by `step`.
    fn step(&mut self, step: Duration) {
        let mut next = self.now + step;
        loop {
            match self.browser.rtc.poll_output().unwrap() {
                Output::Transmit(t) => {
                    let input = LegInput::Datagram {
                        source: self.browser.addr,
                        contents: &t.contents,
                    };
                    let _ = self.leg.handle_input(input, self.now);
                }
                Output::Event(Event::Connected) => self.browser.connected = true,
                Output::Event(Event::MediaData(data)) => {
                    if let Some((_, decoder)) = &mut self.browser.opus {
                        assert_eq!(data.params.spec().codec, Codec::Opus);
                        decoder
                            .decode(&data.data, &mut self.browser.received)
                            .unwrap();
                        continue;
                    }
                    let codec = G711::from_payload_type(*data.pt).unwrap();
                    let mut pcm = vec![0; data.data.len()];
                    codec.decode(&data.data, &mut pcm);
                    self.browser.received.extend(pcm);
                }
                Output::Event(_) => {}
                Output::Timeout(t) => {
                    next = next.min(t.max(self.now));
                    break;
                }
            }
        }
        loop {
            match self.leg.poll_output() {
                LegOutput::Transmit(t) => {
                    let receive =
                        Receive::new(Protocol::Udp, self.leg_addr, t.destination, &t.contents)
                            .unwrap();
                    let input = Input::Receive(self.now, receive);
                    self.browser.rtc.handle_input(input).unwrap();
                }
                LegOutput::Frame(f) => {
                    let mut pcm = vec![0; f.payload.len()];
                    f.codec.decode(&f.payload, &mut pcm);
                    self.leg_audio.push((f.codec, pcm));
                    self.leg_timestamps.push(f.timestamp);
                }
                LegOutput::Event(e) => self.leg_events.push(e),
                LegOutput::Timeout(t) => {
                    next = next.min(t.max(self.now));
                    break;
                }
            }
        }
        self.now = next.max(self.now + Duration::from_millis(1));
        self.browser
            .rtc
            .handle_input(Input::Timeout(self.now))
            .unwrap();
        self.leg.handle_input(LegInput::Timeout, self.now).unwrap();
    }

    fn connect(&mut self) {
        for _ in 0..2000 {
            if self.browser.connected && self.leg.is_connected() {
                return;
            }
            self.step(Duration::from_millis(20));
        }
        panic!("never connected; leg events {:?}", self.leg_events);
    }
}

#[test]
fn g711_flows_both_ways_after_connecting() {
    let mut pair = Pair::new();
    pair.connect();
    assert_eq!(pair.leg_events, [LegEvent::Connected]);
    assert_eq!(pair.leg.send_codec_negotiated(), None);

    let browser_tone = sine(1000.0, 8000, 8000, 160 * 50);
    let leg_tone = sine(440.0, 8000, 8000, 160 * 50);
    for (i, (b, l)) in browser_tone
        .chunks(160)
        .zip(leg_tone.chunks(160))
        .enumerate()
    {
        let ts = 160 * i as u64;
        pair.browser_sends(b, ts);
        // The leg sends A-law from a source with its own timestamps; the browser gets PCMU.
        let mut alaw = vec![0; 160];
        G711::Pcma.encode(l, &mut alaw);
        let now = pair.now;
        pair.leg
            .send_frame(G711::Pcma, &alaw, 90_000 + ts as u32, now)
            .unwrap();
        pair.step(Duration::from_millis(20));
    }
    for _ in 0..20 {
        pair.step(Duration::from_millis(20));
    }

    assert_eq!(
        pair.leg.send_codec_negotiated(),
        Some(AudioCodec::G711(G711::Pcmu))
    );
    assert!(!pair.leg.transcodes_opus());
    let heard: Vec<i16> = pair.leg_audio.iter().flat_map(|(_, p)| p.clone()).collect();
    assert!(heard.len() >= 160 * 40, "leg got {} samples", heard.len());
    assert!(pair.leg_audio.iter().all(|(c, _)| *c == G711::Pcmu));
    assert_eq!(
        dominant_frequency(&heard, &CANDIDATES, 8000, 0.001),
        Some(1000.0)
    );
    let got = &pair.browser.received;
    assert!(got.len() >= 160 * 40, "browser got {} samples", got.len());
    assert_eq!(
        dominant_frequency(got, &CANDIDATES, 8000, 0.001),
        Some(440.0)
    );
}

#[test]
fn frames_before_connecting_are_refused() {
    let mut pair = Pair::new();
    let now = pair.now;
    let err = pair.leg.send_frame(G711::Pcmu, &[0xff; 160], 0, now);
    assert!(matches!(err, Err(WebRtcError::NotConnected)), "{err:?}");
}

#[test]
fn a_browser_offering_g711_and_opus_is_answered_g711_only() {
    let now = Instant::now();
    let (_, _, offer_sdp, _) = offer(true, now);
    assert!(offer_sdp.contains("opus/48000"), "{offer_sdp}");
    let (leg, answer) = answer_on_loopback(&offer_sdp, now).unwrap();
    assert!(!leg.transcodes_opus());
    assert!(answer.contains("PCMU/8000"), "{answer}");
    assert!(!answer.to_ascii_lowercase().contains("opus"), "{answer}");
}

#[test]
fn the_answer_asks_for_no_bandwidth_estimation() {
    let now = Instant::now();
    let (_, _, offer_sdp, _) = offer(true, now);
    // A browser offers transport-wide sequence numbers for audio too.
    assert!(offer_sdp.contains("transport-wide-cc"), "{offer_sdp}");
    let (_, answer) = answer_on_loopback(&offer_sdp, now).unwrap();
    assert!(!answer.contains("transport-wide-cc"), "{answer}");
    assert!(!answer.contains("abs-send-time"), "{answer}");
    assert!(
        answer.contains("urn:ietf:params:rtp-hdrext:sdes:mid"),
        "{answer}"
    );
}

#[test]
fn an_opus_only_browser_is_transcoded_both_ways() {
    let mut pair = Pair::offering(false);
    assert!(pair.leg.transcodes_opus());
    pair.connect();
    assert_eq!(pair.leg_events, [LegEvent::Connected]);

    let browser_tone = sine(1000.0, 8000, 8000, 160 * 50);
    let leg_tone = sine(440.0, 8000, 8000, 160 * 50);
    for (i, (b, l)) in browser_tone
        .chunks(160)
        .zip(leg_tone.chunks(160))
        .enumerate()
    {
        pair.browser_sends(b, 160 * i as u64);
        // The bridged trunk speaks A-law: the browser's audio comes back in A-law too.
        let mut alaw = vec![0; 160];
        G711::Pcma.encode(l, &mut alaw);
        let now = pair.now;
        pair.leg
            .send_frame(G711::Pcma, &alaw, 90_000 + 160 * i as u32, now)
            .unwrap();
        pair.step(Duration::from_millis(20));
    }
    for _ in 0..20 {
        pair.step(Duration::from_millis(20));
    }

    assert_eq!(pair.leg.send_codec_negotiated(), Some(AudioCodec::Opus));
    assert!(
        pair.leg_audio.len() >= 40,
        "leg got {} frames",
        pair.leg_audio.len()
    );
    assert!(pair
        .leg_audio
        .iter()
        .all(|(c, p)| *c == G711::Pcma && p.len() == 160));
    // 20 ms at 48 kHz is 20 ms at 8 kHz: the timestamps step by 160.
    for pair in pair.leg_timestamps.windows(2) {
        assert_eq!(pair[1].wrapping_sub(pair[0]), 160);
    }
    let heard: Vec<i16> = pair.leg_audio[5..]
        .iter()
        .flat_map(|(_, p)| p.clone())
        .collect();
    assert_eq!(
        dominant_frequency(&heard, &CANDIDATES, 8000, 0.001),
        Some(1000.0)
    );
    let got = &pair.browser.received;
    assert!(got.len() >= 160 * 40, "browser got {} samples", got.len());
    assert_eq!(
        dominant_frequency(&got[800..], &CANDIDATES, 8000, 0.001),
        Some(440.0)
    );
}

#[test]
fn an_offer_without_a_codec_we_speak_is_refused_plainly() {
    let now = Instant::now();
    let (_, _, offer_sdp, _) = offer(false, now);
    let g722 = offer_sdp
        .replace("opus/48000/2", "G722/8000")
        .replace("a=fmtp:111 minptime=10;useinbandfec=1\r\n", "");
    let err = answer_on_loopback(&g722, now).unwrap_err();
    assert!(matches!(err, WebRtcError::NoCodec), "{err:?}");
    assert!(err.to_string().contains("PCMU"));
}

#[test]
fn garbage_is_refused_without_harm() {
    let now = Instant::now();
    for bad in ["", "hello", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"] {
        assert!(answer_on_loopback(bad, now).is_err());
    }
    let mut pair = Pair::new();
    pair.connect();
    let input = LegInput::Datagram {
        source: pair.browser.addr,
        contents: &[0x42; 7],
    };
    let now = pair.now;
    assert!(pair.leg.handle_input(input, now).is_err());
    assert!(pair.leg.is_connected());
}

#[test]
fn a_silent_browser_is_reported_disconnected() {
    let mut pair = Pair::new();
    pair.connect();
    // The browser vanishes: only the leg's own timers run from here on.
    let mut events = Vec::new();
    for _ in 0..3000 {
        pair.now += Duration::from_millis(20);
        let now = pair.now;
        pair.leg.handle_input(LegInput::Timeout, now).unwrap();
        loop {
            match pair.leg.poll_output() {
                LegOutput::Event(e) => events.push(e),
                LegOutput::Timeout(_) => break,
                LegOutput::Transmit(_) | LegOutput::Frame(_) => {}
            }
        }
    }
    assert_eq!(events.first(), Some(&LegEvent::Disconnected), "{events:?}");
    assert!(!pair.leg.is_connected());
    let now = pair.now;
    let err = pair.leg.send_frame(G711::Pcmu, &[0xff; 160], 0, now);
    assert!(matches!(err, Err(WebRtcError::NotConnected)), "{err:?}");
}
