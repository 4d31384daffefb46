//! G.711 µ-law (PCMU) and A-law (PCMA) companding of 16-bit linear PCM.

/// One of the two G.711 codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// µ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl G711 {
    /// Returns the static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    /// Returns the codec for a static payload type.
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(G711::Pcmu),
            8 => Some(G711::Pcma),
            _ => None,
        }
    }

    /// Returns the byte that encodes silence.
    pub fn silence(self) -> u8 {
        self.encode_sample(0)
    }

    /// Encodes one linear sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            G711::Pcmu => linear_to_ulaw(sample),
            G711::Pcma => linear_to_alaw(sample),
        }
    }

    /// Decodes one companded byte.
    pub fn decode_sample(self, byte: u8) -> i16 {
        match self {
            G711::Pcmu => ULAW_TO_LINEAR[usize::from(byte)],
            G711::Pcma => ALAW_TO_LINEAR[usize::from(byte)],
        }
    }

    /// Encodes `pcm` into `out`, as many samples as both hold.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) {
        for (o, &s) in out.iter_mut().zip(pcm) {
            *o = self.encode_sample(s);
        }
    }

    /// Decodes `bytes` into `out`, as many samples as both hold.
    pub fn decode(self, bytes: &[u8], out: &mut [i16]) {
        for (o, &b) in out.iter_mut().zip(bytes) {
            *o = self.decode_sample(b);
        }
    }

    /// Transcodes a payload in place from this codec to `to`.
    pub fn transcode_in_place(self, to: G711, payload: &mut [u8]) {
        let table = match (self, to) {
            (G711::Pcmu, G711::Pcma) => &ULAW_TO_ALAW,
            (G711::Pcma, G711::Pcmu) => &ALAW_TO_ULAW,
            _ => return,
        };
        for b in payload {
            *b = table[usize::from(*b)];
        }
    }
}

/// Encodes a linear sample as µ-law.
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut pcm = sample as i32;
    let sign = if pcm < 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm;
    }
    if pcm > CLIP {
        pcm = CLIP;
    }
    pcm += BIAS;
    // pcm is in 0x84..=0x7fff, so its top bit is bit 7..=14: exponent 0..=7.
    let exponent = 24 - (pcm as u32).leading_zeros() as i32;
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Decodes a µ-law byte to a linear sample.
pub const fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes a linear sample as A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13 bits; the low three bits of the input are dropped.
    let mut pcm = (sample as i32) >> 3;
    let mask = if pcm >= 0 { 0xd5 } else { 0x55 };
    if pcm < 0 {
        pcm = -pcm - 1;
    }
    let mut segment = 0;
    while segment < 8 && pcm >= (0x20 << segment) {
        segment += 1;
    }
    if segment >= 8 {
        return 0x7f ^ mask;
    }
    let shift = if segment < 2 { 1 } else { segment };
    let value = (segment << 4) | ((pcm >> shift) & 0x0f);
    (value as u8) ^ mask
}

/// Decodes an A-law byte to a linear sample.
pub const fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let segment = ((a & 0x70) >> 4) as i32;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (segment - 1),
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// Converts a µ-law byte to the A-law byte of the nearest level.
pub fn ulaw_to_alaw(byte: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(byte)]
}

/// Converts an A-law byte to the µ-law byte of the nearest level.
pub fn alaw_to_ulaw(byte: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(byte)]
}

static ULAW_TO_LINEAR: [i16; 256] = decode_table(G711::Pcmu);
static ALAW_TO_LINEAR: [i16; 256] = decode_table(G711::Pcma);
static ULAW_TO_ALAW: [u8; 256] = transcode_table(G711::Pcmu);
static ALAW_TO_ULAW: [u8; 256] = transcode_table(G711::Pcma);

const fn decode_table(codec: G711) -> [i16; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match codec {
            G711::Pcmu => ulaw_to_linear(i as u8),
            G711::Pcma => alaw_to_linear(i as u8),
        };
        i += 1;
    }
    table
}

const fn transcode_table(from: G711) -> [u8; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match from {
            G711::Pcmu => linear_to_alaw(ulaw_to_linear(i as u8)),
            G711::Pcma => linear_to_ulaw(alaw_to_linear(i as u8)),
        };
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
        assert_eq!(G711::Pcmu.silence(), 0xff);
        assert_eq!(G711::Pcma.silence(), 0xd5);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#x}");
            // 0x7f is µ-law's negative zero, which encodes back as positive zero.
            let expected = if b == 0x7f { 0xff } else { b };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), expected, "µ-law {b:#x}");
        }
    }

    #[test]
    fn decoded_levels_are_monotonic() {
        let mut ulaw: Vec<i16> = (0..=255).map(ulaw_to_linear).collect();
        let mut alaw: Vec<i16> = (0..=255).map(alaw_to_linear).collect();
        ulaw.sort();
        alaw.sort();
        ulaw.dedup();
        alaw.dedup();
        assert_eq!(ulaw.len(), 255);
        assert_eq!(alaw.len(), 256);
    }

    #[test]
    fn transcoding_keeps_the_level_close() {
        for b in 0..=255u8 {
            let u = ulaw_to_linear(b);
            let a = alaw_to_linear(ulaw_to_alaw(b));
            assert!(
                (i32::from(u) - i32::from(a)).abs() <= i32::from(u).abs() / 16 + 16,
                "{b:#x}"
            );
            let a = alaw_to_linear(b);
            let u = ulaw_to_linear(alaw_to_ulaw(b));
            assert!(
                (i32::from(u) - i32::from(a)).abs() <= i32::from(a).abs() / 16 + 16,
                "{b:#x}"
            );
        }
    }

    #[test]
    fn slice_helpers_and_in_place_transcoding() {
        let pcm = [0i16, 1000, -1000, 30000];
        let mut ulaw = [0u8; 4];
        G711::Pcmu.encode(&pcm, &mut ulaw);
        let mut alaw = ulaw;
        G711::Pcmu.transcode_in_place(G711::Pcma, &mut alaw);
        let mut back = [0i16; 4];
        G711::Pcma.decode(&alaw, &mut back);
        for (x, y) in pcm.iter().zip(back) {
            assert!((i32::from(*x) - i32::from(y)).abs() <= i32::from(*x).abs() / 8 + 32);
        }
    }

    proptest! {
        #[test]
        fn quantisation_error_is_bounded(x: i16) {
            let bound = i32::from(x).abs() / 16 + 16;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
            prop_assert!((u - i32::from(x)).abs() <= bound, "µ-law {} -> {}", x, u);
            prop_assert!((a - i32::from(x)).abs() <= bound, "A-law {} -> {}", x, a);
        }
    }
}
