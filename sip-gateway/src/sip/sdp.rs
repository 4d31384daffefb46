//! SDP offer/answer (RFC 3264, RFC 4566) for one G.711 audio stream with telephone-event,
//! as RTP or, for a trunk that asks for it, SRTP keyed by SDES ([`super::sdes`]).

use std::net::{IpAddr, SocketAddr};

use super::sdes::Crypto;
use crate::media::srtp::MasterKey;

/// Audio codec we can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// Returns the static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// The describing side only sends.
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// Neither side sends (hold).
    Inactive,
}

impl Direction {
    /// Returns the direction an answer takes for this offered direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// Our side of the media: where we receive RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address and port we receive RTP on.
    pub rtp: SocketAddr,
    /// Session id for the o= line.
    pub session_id: u64,
    /// Our SRTP master key when the media must be SRTP (`RTP/SAVP`); `None` for plain RTP.
    pub srtp: Option<MasterKey>,
}

/// The SRTP keys of a call: ours protects what we send, the peer's unprotects what arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// Our master key, as we offered or answered it.
    pub local: MasterKey,
    /// The peer's master key, from its `a=crypto` line.
    pub remote: MasterKey,
}

/// What was agreed with the peer for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Where the peer receives RTP.
    pub remote_rtp: SocketAddr,
    /// Chosen codec.
    pub codec: Codec,
    /// Payload type the peer uses for RFC 4733 telephone-event, if any.
    pub telephone_event: Option<u8>,
    /// Direction as the peer described it.
    pub remote_direction: Direction,
    /// The keys, when the media is SRTP.
    pub srtp: Option<SrtpKeys>,
}

/// Why an SDP body was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP is not text")]
    NotText,
    /// There is no usable audio m= line.
    #[error("no audio stream")]
    NoAudio,
    /// There is no usable c= line for the audio stream.
    #[error("no connection address")]
    NoConnection,
    /// None of the offered codecs is PCMU or PCMA.
    #[error("no common codec")]
    NoCommonCodec,
    /// SRTP is required and the peer's audio is not `RTP/SAVP` with a crypto line we
    /// offered or can take (AES_CM_128_HMAC_SHA1_80, one inline key).
    #[error("SRTP is required and the peer sent no usable SDES crypto line")]
    NoCrypto,
}

/// Builds our offer: PCMU, PCMA and telephone-event 101, with our key as crypto tag 1 for SRTP.
pub fn offer(local: &LocalMedia, version: u64) -> String {
    let crypto = local.srtp.map(|key| Crypto {
        tag: OFFER_TAG,
        key,
    });
    body(
        local,
        version,
        &[0, 8],
        Some(101),
        Direction::SendRecv,
        crypto,
    )
}

/// Parses the peer's answer to our [`offer`]: for SRTP it must take our crypto line.
pub fn negotiate_answer(local: &LocalMedia, sdp: &[u8]) -> Result<NegotiatedMedia, SdpError> {
    let (mut media, audio) = parse(sdp)?;
    if let Some(ours) = local.srtp {
        let theirs = audio
            .cryptos
            .iter()
            .find(|c| c.tag == OFFER_TAG)
            .filter(|_| audio.secure)
            .ok_or(SdpError::NoCrypto)?;
        media.srtp = Some(SrtpKeys {
            local: ours,
            remote: theirs.key,
        });
    }
    Ok(media)
}

/// Parses a peer's SDP and picks the codec from its answer or offer.
///
/// For an answer, the first codec the peer lists is used; the same holds for an offer, which
/// makes our answer follow the offerer's preference.
pub fn negotiate(sdp: &[u8]) -> Result<NegotiatedMedia, SdpError> {
    parse(sdp).map(|(media, _)| media)
}

/// The crypto tag of our offer's one line.
const OFFER_TAG: u32 = 1;

fn parse(sdp: &[u8]) -> Result<(NegotiatedMedia, Audio), SdpError> {
    let text = std::str::from_utf8(sdp).map_err(|_| SdpError::NotText)?;
    let mut session_addr: Option<IpAddr> = None;
    let mut audio: Option<Audio> = None;
    let mut in_audio = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                if audio.is_some() {
                    // Only the first audio stream is used; later m= lines are not ours.
                    in_audio = false;
                    continue;
                }
                in_audio = false;
                let mut parts = value.split_whitespace();
                let media = parts.next().unwrap_or("");
                let port = parts.next().and_then(|p| p.split('/').next()?.parse().ok());
                let proto = parts.next().unwrap_or("");
                let formats: Vec<u8> = parts.filter_map(|p| p.parse().ok()).collect();
                if media == "audio" {
                    if let Some(port) = port {
                        in_audio = true;
                        audio = Some(Audio {
                            port,
                            formats,
                            addr: None,
                            direction: None,
                            telephone_event: None,
                            secure: proto == "RTP/SAVP",
                            cryptos: Vec::new(),
                        });
                    }
                }
            }
            "c" => {
                let addr = value
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next()?.parse().ok());
                match (&mut audio, in_audio) {
                    (Some(a), true) => a.addr = addr,
                    (None, false) => session_addr = addr,
                    _ => {}
                }
            }
            "a" => {
                let direction = match value {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                let event = value
                    .strip_prefix("rtpmap:")
                    .and_then(|m| m.split_once(' '))
                    .filter(|(_, enc)| enc.to_ascii_lowercase().starts_with("telephone-event/8000"))
                    .and_then(|(pt, _)| pt.trim().parse::<u8>().ok());
                // Session-level direction is rare from trunks and is not tracked.
                if let (Some(a), true) = (&mut audio, in_audio) {
                    a.direction = direction.or(a.direction);
                    a.telephone_event = event.or(a.telephone_event);
                    let crypto = value.strip_prefix("crypto:").and_then(Crypto::parse);
                    a.cryptos.extend(crypto);
                }
            }
            _ => {}
        }
    }
    let audio = audio.ok_or(SdpError::NoAudio)?;
    let addr = audio.addr.or(session_addr).ok_or(SdpError::NoConnection)?;
    let codec = audio
        .formats
        .iter()
        .find_map(|pt| match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let telephone_event = audio
        .telephone_event
        .filter(|pt| audio.formats.contains(pt));
    let held = addr.is_unspecified() || audio.port == 0;
    let direction = match (audio.direction, held) {
        (_, true) => Direction::Inactive,
        (Some(d), false) => d,
        (None, false) => Direction::SendRecv,
    };
    let media = NegotiatedMedia {
        remote_rtp: SocketAddr::new(addr, audio.port),
        codec,
        telephone_event,
        remote_direction: direction,
        srtp: None,
    };
    Ok((media, audio))
}

/// Builds our answer to a peer's offer, returning it with what was agreed.
///
/// For SRTP the offer must be `RTP/SAVP` with a crypto line we can take; the
/// answer echoes its tag with our key.
pub fn answer(
    local: &LocalMedia,
    version: u64,
    offer: &[u8],
) -> Result<(String, NegotiatedMedia), SdpError> {
    let (mut media, audio) = parse(offer)?;
    let crypto = match local.srtp {
        Some(ours) => {
            let theirs = audio
                .cryptos
                .first()
                .filter(|_| audio.secure)
                .ok_or(SdpError::NoCrypto)?;
            media.srtp = Some(SrtpKeys {
                local: ours,
                remote: theirs.key,
            });
            Some(Crypto {
                tag: theirs.tag,
                key: ours,
            })
        }
        None => None,
    };
    let formats = [media.codec.payload_type()];
    let direction = media.remote_direction.answer();
    let event = media.telephone_event;
    let text = body(local, version, &formats, event, direction, crypto);
    Ok((text, media))
}

struct Audio {
    port: u16,
    formats: Vec<u8>,
    addr: Option<IpAddr>,
    direction: Option<Direction>,
    telephone_event: Option<u8>,
    /// Whether the profile is `RTP/SAVP`.
    secure: bool,
    /// The usable crypto lines, in the order given.
    cryptos: Vec<Crypto>,
}

fn body(
    local: &LocalMedia,
    version: u64,
    formats: &[u8],
    event: Option<u8>,
    dir: Direction,
    crypto: Option<Crypto>,
) -> String {
    let ip = local.rtp.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut list: Vec<String> = formats.iter().map(u8::to_string).collect();
    list.extend(event.map(|e| e.to_string()));
    let mut out = format!(
        "v=0\r\no=- {} {version} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {} {} {}\r\n",
        local.session_id,
        local.rtp.port(),
        if crypto.is_some() {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        },
        list.join(" ")
    );
    for pt in formats {
        let name = if *pt == 0 { "PCMU" } else { "PCMA" };
        out.push_str(&format!("a=rtpmap:{pt} {name}/8000\r\n"));
    }
    if let Some(event) = event {
        out.push_str(&format!(
            "a=rtpmap:{event} telephone-event/8000\r\na=fmtp:{event} 0-16\r\n"
        ));
    }
    out.push_str(&format!("a=ptime:20\r\na={}\r\n", dir.attribute()));
    if let Some(crypto) = crypto {
        out.push_str(&crypto.line());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn local() -> LocalMedia {
        LocalMedia {
            rtp: "192.0.2.10:40000".parse().unwrap(),
            session_id: 42,
            srtp: None,
        }
    }

    #[test]
    fn offer_lists_g711_and_events() {
        let sdp = offer(&local(), 1);
        assert!(sdp.contains("c=IN IP4 192.0.2.10\r\n"));
        assert!(sdp.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"));
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(sdp.contains("a=ptime:20\r\na=sendrecv\r\n"));
        let back = negotiate(sdp.as_bytes()).unwrap();
        assert_eq!(back.codec, Codec::Pcmu);
        assert_eq!(back.telephone_event, Some(101));
    }

    #[test]
    fn parses_an_answer() {
        let answer = "v=0\r\no=x 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
            m=audio 30000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n\
            a=sendrecv\r\nm=video 0 RTP/AVP 31\r\n";
        let media = negotiate(answer.as_bytes()).unwrap();
        assert_eq!(media.remote_rtp, "203.0.113.5:30000".parse().unwrap());
        assert_eq!(media.codec, Codec::Pcma);
        assert_eq!(media.telephone_event, Some(96));
        assert_eq!(media.remote_direction, Direction::SendRecv);
    }

    #[test]
    fn answers_a_hold_offer() {
        let hold = "v=0\r\no=x 1 2 IN IP4 203.0.113.5\r\ns=-\r\nt=0 0\r\n\
            m=audio 30000 RTP/AVP 0\r\nc=IN IP4 203.0.113.5\r\na=sendonly\r\n";
        let (text, media) = answer(&local(), 2, hold.as_bytes()).unwrap();
        assert_eq!(media.remote_direction, Direction::SendOnly);
        assert!(text.contains("a=recvonly\r\n"));
        assert!(text.contains("m=audio 40000 RTP/AVP 0\r\n"));
        assert!(!text.contains("telephone-event"));
        let old_hold = hold.replace("c=IN IP4 203.0.113.5", "c=IN IP4 0.0.0.0");
        let media = negotiate(old_hold.as_bytes()).unwrap();
        assert_eq!(media.remote_direction, Direction::Inactive);
    }

    #[test]
    fn rejects_unusable_sdp() {
        let g729 = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 18\r\n";
        assert_eq!(negotiate(g729.as_bytes()), Err(SdpError::NoCommonCodec));
        assert_eq!(negotiate(b"v=0\r\n"), Err(SdpError::NoAudio));
        let no_c = "v=0\r\nm=audio 1 RTP/AVP 0\r\n";
        assert_eq!(negotiate(no_c.as_bytes()), Err(SdpError::NoConnection));
        assert_eq!(negotiate(&[0xff, 0xfe]), Err(SdpError::NotText));
    }

    fn secure() -> LocalMedia {
        LocalMedia {
            srtp: Some(MasterKey::from_bytes([7; 30])),
            ..local()
        }
    }

    fn peer_key() -> MasterKey {
        MasterKey::from_bytes([9; 30])
    }

    fn peer_sdp(proto: &str, crypto_tag: Option<u32>) -> String {
        let mut sdp = format!(
            "v=0\r\no=x 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
             m=audio 30000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        );
        if let Some(tag) = crypto_tag {
            sdp.push_str(
                &Crypto {
                    tag,
                    key: peer_key(),
                }
                .line(),
            );
        }
        sdp
    }

    #[test]
    fn an_srtp_offer_carries_our_key_and_takes_the_answers() {
        let sdp = offer(&secure(), 1);
        assert!(sdp.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"));
        let line = Crypto {
            tag: 1,
            key: MasterKey::from_bytes([7; 30]),
        }
        .line();
        assert!(sdp.contains(&line), "{sdp}");
        let media = negotiate_answer(&secure(), peer_sdp("RTP/SAVP", Some(1)).as_bytes()).unwrap();
        assert_eq!(
            media.srtp,
            Some(SrtpKeys {
                local: MasterKey::from_bytes([7; 30]),
                remote: peer_key()
            })
        );
        // A plain trunk neither offers nor takes keys.
        assert!(offer(&local(), 1).contains("RTP/AVP 0 8 101"));
        let plain = negotiate_answer(&local(), peer_sdp("RTP/AVP", None).as_bytes()).unwrap();
        assert_eq!(plain.srtp, None);
    }

    #[test]
    fn an_answer_without_usable_keys_is_refused_when_srtp_is_required() {
        for (proto, tag) in [
            ("RTP/AVP", None),
            ("RTP/AVP", Some(1)),
            ("RTP/SAVP", None),
            ("RTP/SAVP", Some(2)),
        ] {
            let sdp = peer_sdp(proto, tag);
            assert_eq!(
                negotiate_answer(&secure(), sdp.as_bytes()),
                Err(SdpError::NoCrypto),
                "{proto} {tag:?}"
            );
        }
    }

    #[test]
    fn an_srtp_offer_is_answered_with_its_tag_and_our_key() {
        let (text, media) = answer(&secure(), 2, peer_sdp("RTP/SAVP", Some(3)).as_bytes()).unwrap();
        assert!(text.contains("m=audio 40000 RTP/SAVP 0 101\r\n"), "{text}");
        let ours = Crypto {
            tag: 3,
            key: MasterKey::from_bytes([7; 30]),
        }
        .line();
        assert!(text.contains(&ours), "{text}");
        assert_eq!(media.srtp.map(|k| k.remote), Some(peer_key()));
        let clear = answer(&secure(), 2, peer_sdp("RTP/AVP", None).as_bytes());
        assert_eq!(clear, Err(SdpError::NoCrypto));
    }

    proptest! {
        #[test]
        fn negotiation_never_panics(text in "([a-z]=[ -~]{0,40}\r\n){0,12}") {
            let _ = negotiate(text.as_bytes());
            let _ = answer(&local(), 1, text.as_bytes());
            let _ = answer(&secure(), 1, text.as_bytes());
            let _ = negotiate_answer(&secure(), text.as_bytes());
        }
    }
}
