//! SDES (RFC 4568): the `a=crypto` attribute that carries an SRTP master key in SDP.
//!
//! Only `AES_CM_128_HMAC_SHA1_80` with one inline key, no MKI and no session parameters
//! is accepted: what trunks and baresip offer, and what [`crate::media::srtp`] implements.
//! A line asking for anything else is passed over, as RFC 4568 §7.1.2 lets an answerer do.

use crate::media::srtp::MasterKey;

/// The one crypto suite we offer and accept.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// One usable `a=crypto` line: its tag and the key it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crypto {
    /// The tag an answer echoes to say which offered line it took.
    pub tag: u32,
    /// The sender's master key and salt.
    pub key: MasterKey,
}

impl Crypto {
    /// Parses the value of a `crypto:` attribute; `None` when it is malformed or not usable.
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut fields = value.split_whitespace();
        let tag: u32 = fields.next()?.parse().ok().filter(|t| *t < 1_000_000_000)?;
        if fields.next()? != SUITE {
            return None;
        }
        let key_params = fields.next()?;
        // Session parameters (UNENCRYPTED_SRTP, KDR=…) change the transform: not ours.
        if fields.next().is_some() || key_params.contains(';') {
            return None;
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut parts = inline.split('|');
        let key = decode_key(parts.next()?)?;
        let lifetime = parts.next();
        // An MKI would have to be carried in every packet; we send and expect none.
        if parts.next().is_some() || lifetime.is_some_and(|l| l.contains(':')) {
            return None;
        }
        Some(Crypto { tag, key })
    }

    /// Returns the attribute line, CRLF included.
    pub fn line(&self) -> String {
        format!(
            "a=crypto:{} {SUITE} inline:{}\r\n",
            self.tag,
            encode(self.key.expose())
        )
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes bytes as standard base64 with padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes a 30-byte key and salt from base64 (40 characters, no padding needed).
fn decode_key(text: &str) -> Option<MasterKey> {
    let text = text.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(30);
    let mut bits = 0u32;
    let mut count = 0;
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = bits << 6 | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(MasterKey::from_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4568 §6's example key.
    const EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn a_line_round_trips() {
        let crypto = Crypto {
            tag: 1,
            key: MasterKey::from_bytes(std::array::from_fn(|i| i as u8 * 7)),
        };
        let line = crypto.line();
        assert!(line.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert_eq!(
            line.len(),
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:".len() + 40 + 2
        );
        let value = line.trim_end().strip_prefix("a=crypto:").unwrap();
        assert_eq!(Crypto::parse(value), Some(crypto));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(encode(b"Man"), "TWFu");
        assert_eq!(encode(b"Ma"), "TWE=");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
        let key = decode_key("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR").unwrap();
        assert_eq!(&key.expose()[..4], &[0x3d, 0x2d, 0x6e, 0x40]);
        assert_eq!(
            encode(key.expose()),
            "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        );
    }

    #[test]
    fn a_lifetime_is_taken_and_anything_we_cannot_honour_is_not() {
        let plain = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert!(Crypto::parse(plain).is_some());
        assert!(Crypto::parse(&format!("{plain}|2^31")).is_some());
        for refused in [
            EXAMPLE,
            &format!("{plain} UNENCRYPTED_SRTP"),
            &plain.replace("_80", "_32"),
            &plain.replace("AES_CM_128", "F8_128"),
            &plain.replace("PS1u", "PS1"),
            &plain.replace("PS1u", "PS1uQCVe"),
            &plain.replace("PS1u", "P*1u"),
            &plain.replace("inline:", "file:"),
            "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "",
        ] {
            assert_eq!(Crypto::parse(refused), None, "{refused}");
        }
    }
}
