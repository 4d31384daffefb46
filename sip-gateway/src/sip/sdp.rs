//! SDP offer/answer (RFC 3264, RFC 4566) for one G.711 audio stream with telephone-event.

use std::net::{IpAddr, SocketAddr};

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
}

/// Builds our offer: PCMU, PCMA and telephone-event 101.
pub fn offer(local: &LocalMedia, version: u64) -> String {
    body(local, version, &[0, 8], Some(101), Direction::SendRecv)
}

/// Parses a peer's SDP and picks the codec from its answer or offer.
///
/// For an answer, the first codec the peer lists is used; the same holds for an offer, which
/// makes our answer follow the offerer's preference.
pub fn negotiate(sdp: &[u8]) -> Result<NegotiatedMedia, SdpError> {
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
                let _proto = parts.next();
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
    Ok(NegotiatedMedia {
        remote_rtp: SocketAddr::new(addr, audio.port),
        codec,
        telephone_event,
        remote_direction: direction,
    })
}

/// Builds our answer to a peer's offer, returning it with what was agreed.
pub fn answer(
    local: &LocalMedia,
    version: u64,
    offer: &[u8],
) -> Result<(String, NegotiatedMedia), SdpError> {
    let media = negotiate(offer)?;
    let formats = [media.codec.payload_type()];
    let direction = media.remote_direction.answer();
    let text = body(local, version, &formats, media.telephone_event, direction);
    Ok((text, media))
}

struct Audio {
    port: u16,
    formats: Vec<u8>,
    addr: Option<IpAddr>,
    direction: Option<Direction>,
    telephone_event: Option<u8>,
}

fn body(
    local: &LocalMedia,
    version: u64,
    formats: &[u8],
    event: Option<u8>,
    dir: Direction,
) -> String {
    let ip = local.rtp.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut list: Vec<String> = formats.iter().map(u8::to_string).collect();
    list.extend(event.map(|e| e.to_string()));
    let mut out = format!(
        "v=0\r\no=- {} {version} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {}\r\n",
        local.session_id,
        local.rtp.port(),
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

    proptest! {
        #[test]
        fn negotiation_never_panics(text in "([a-z]=[ -~]{0,40}\r\n){0,12}") {
            let _ = negotiate(text.as_bytes());
            let _ = answer(&local(), 1, text.as_bytes());
        }
    }
}
