//! SRTP (RFC 3711) with AES_CM_128_HMAC_SHA1_80: the master key a call's SDES line
//! carries, the session keys derived from it, and protecting and unprotecting RTP.
//!
//! One [`Srtp`] serves one direction of a call: ours protects what we send with our
//! master key, the far end's unprotects what arrives with its key. Each SSRC in it keeps
//! its own rollover counter (ROC), and a receiver a 64-packet replay window. A packet is
//! decrypted, and counts for the window and ROC, only once its tag is verified. The leg
//! neither sends nor reads RTCP, so SRTCP is not implemented.

use std::collections::BTreeMap;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::RngCore;

type AesCm = ctr::Ctr128BE<aes::Aes128>;
type HmacSha1 = Hmac<sha1::Sha1>;

/// Bytes of the master key.
pub const KEY_LEN: usize = 16;
/// Bytes of the master salt.
pub const SALT_LEN: usize = 14;
/// Bytes of the authentication tag each SRTP packet carries (HMAC-SHA1 truncated to 80 bits).
pub const TAG_LEN: usize = 10;
/// Most SSRCs one context keeps state for; a far end uses one or two.
const MAX_STREAMS: usize = 16;
/// Packets behind the newest that may still arrive (RFC 3711 §3.3.2 asks for at least 64).
const WINDOW: u64 = 64;

/// A master key and salt (RFC 3711 §8.2); `Debug` never prints them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey([u8; KEY_LEN + SALT_LEN]);

impl MasterKey {
    /// Wraps the 30 bytes of an SDES `inline:` key: the key, then the salt.
    pub fn from_bytes(bytes: [u8; KEY_LEN + SALT_LEN]) -> Self {
        MasterKey(bytes)
    }

    /// Returns a fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN + SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        MasterKey(bytes)
    }

    /// Returns the 30 bytes, for the one place that writes them into SDP.
    pub fn expose(&self) -> &[u8; KEY_LEN + SALT_LEN] {
        &self.0
    }

    fn key(&self) -> &[u8] {
        &self.0[..KEY_LEN]
    }

    fn salt(&self) -> &[u8] {
        &self.0[KEY_LEN..]
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Why a packet was not protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The packet is shorter than its RTP header (and tag) say.
    #[error("packet too short for SRTP")]
    TooShort,
    /// The packet is not RTP version 2.
    #[error("not an RTP packet")]
    NotRtp,
    /// The tag does not match: the packet is forged, damaged, or under another key.
    #[error("SRTP authentication failed")]
    Forged,
    /// The packet was already received, or is too old to tell.
    #[error("SRTP replay")]
    Replayed,
    /// Too many SSRCs for one context.
    #[error("too many SRTP streams")]
    TooManyStreams,
}

/// One direction of SRTP for a call: the session keys and each SSRC's place in its stream.
pub struct Srtp {
    keys: SessionKeys,
    streams: BTreeMap<u32, Stream>,
}

impl std::fmt::Debug for Srtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srtp")
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl Srtp {
    /// Derives the session keys of `master` (key derivation rate 0).
    pub fn new(master: &MasterKey) -> Self {
        Srtp {
            keys: SessionKeys::derive(master),
            streams: BTreeMap::new(),
        }
    }

    /// Encrypts an RTP packet's payload in place and appends its tag.
    pub fn protect(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header = header_len(packet)?;
        let (ssrc, seq) = ids(packet);
        let full = self.streams.len() >= MAX_STREAMS;
        let stream = match self.streams.get_mut(&ssrc) {
            Some(stream) => stream,
            None if full => return Err(SrtpError::TooManyStreams),
            None => self.streams.entry(ssrc).or_insert(Stream::first(seq)),
        };
        let index = stream.index_of(seq);
        stream.accept(index);
        self.keys.crypt(ssrc, index, &mut packet[header..]);
        let tag = self.keys.tag(packet, roc(index));
        packet.extend_from_slice(&tag);
        Ok(())
    }

    /// Checks an SRTP packet's tag and replay, then strips the tag and decrypts in place.
    pub fn unprotect(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < TAG_LEN {
            return Err(SrtpError::TooShort);
        }
        let body = packet.len() - TAG_LEN;
        let header = header_len(&packet[..body])?;
        let (ssrc, seq) = ids(packet);
        let known = self.streams.get(&ssrc);
        if known.is_none() && self.streams.len() >= MAX_STREAMS {
            return Err(SrtpError::TooManyStreams);
        }
        let fresh = Stream::first(seq);
        let stream = known.unwrap_or(&fresh);
        let index = stream.index_of(seq);
        if known.is_some() && !stream.is_new(index) {
            return Err(SrtpError::Replayed);
        }
        if !self
            .keys
            .verify(&packet[..body], roc(index), &packet[body..])
        {
            return Err(SrtpError::Forged);
        }
        packet.truncate(body);
        self.keys.crypt(ssrc, index, &mut packet[header..]);
        self.streams.entry(ssrc).or_insert(fresh).accept(index);
        Ok(())
    }
}

/// The session keys of one direction (RFC 3711 §4.3).
struct SessionKeys {
    cipher: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
    /// HMAC-SHA1 keyed once with the session auth key; cloned per packet.
    auth: HmacSha1,
}

/// Key derivation labels (RFC 3711 §4.3.2), for SRTP.
const LABEL_CIPHER: u8 = 0x00;
const LABEL_AUTH: u8 = 0x01;
const LABEL_SALT: u8 = 0x02;

impl SessionKeys {
    fn derive(master: &MasterKey) -> Self {
        let mut cipher = [0u8; KEY_LEN];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; SALT_LEN];
        derive(master, LABEL_CIPHER, &mut cipher);
        derive(master, LABEL_AUTH, &mut auth);
        derive(master, LABEL_SALT, &mut salt);
        SessionKeys {
            cipher,
            salt,
            auth: HmacSha1::new_from_slice(&auth).expect("HMAC takes a key of any length"),
        }
    }

    /// Applies the AES-CM keystream of packet `index` of `ssrc` (RFC 3711 §4.1.1).
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (at, byte) in ssrc.to_be_bytes().into_iter().enumerate() {
            iv[4 + at] ^= byte;
        }
        for (at, byte) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + at] ^= byte;
        }
        AesCm::new(&self.cipher.into(), &iv.into()).apply_keystream(data);
    }

    fn tag(&self, authenticated: &[u8], roc: u32) -> [u8; TAG_LEN] {
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Compares in constant time.
    fn verify(&self, authenticated: &[u8], roc: u32, tag: &[u8]) -> bool {
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// Fills `out` with the AES-CM keystream for `label` (RFC 3711 §4.3.1, key derivation rate 0).
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(master.salt());
    iv[7] ^= label;
    let key: [u8; KEY_LEN] = master.key().try_into().expect("the key part is 16 bytes");
    out.fill(0);
    AesCm::new(&key.into(), &iv.into()).apply_keystream(out);
}

/// Where one SSRC's stream is: the highest packet index (ROC and sequence) accepted, and
/// which of the [`WINDOW`] before it arrived.
#[derive(Debug, Clone, Copy)]
struct Stream {
    highest: u64,
    seen: u64,
}

impl Stream {
    /// A stream whose first packet has sequence `seq` and ROC 0, as SDES starts them.
    fn first(seq: u16) -> Self {
        Stream {
            highest: u64::from(seq),
            seen: 0,
        }
    }

    /// Guesses the full index of sequence number `seq` (RFC 3711 §3.3.1 and Appendix A).
    fn index_of(&self, seq: u16) -> u64 {
        let roc = self.highest >> 16;
        let s_l = (self.highest & 0xffff) as u16;
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                roc.wrapping_sub(1)
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc + 1
        } else {
            roc
        };
        (v << 16 | u64::from(seq)) & 0xffff_ffff_ffff
    }

    /// Tells whether `index` has not been accepted before and is not too old to tell.
    fn is_new(&self, index: u64) -> bool {
        if index > self.highest {
            return true;
        }
        let behind = self.highest - index;
        behind < WINDOW && self.seen & (1 << behind) == 0
    }

    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < WINDOW {
                self.seen |= 1 << behind;
            }
        }
    }
}

fn roc(index: u64) -> u32 {
    (index >> 16) as u32
}

fn ids(packet: &[u8]) -> (u32, u16) {
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    (ssrc, seq)
}

/// Returns the length of the RTP header, CSRCs and extension: what SRTP leaves in clear.
fn header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < 12 {
        return Err(SrtpError::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(len..len + 4).ok_or(SrtpError::TooShort)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if len > packet.len() {
        return Err(SrtpError::TooShort);
    }
    Ok(len)
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
