//! Audio frames that name themselves: the carrier's leg number and the frame's index,
//! written into a 20 ms G.711 payload so that they can be read back from a recording.
//!
//! G.711 decoding is a fixed table, so a payload of known bytes decodes to known samples.
//! Every byte used here decodes to a value no other byte does (µ-law's two zeros are
//! avoided), and [`FrameStamp::read`] accepts 160 samples only if all of them are exactly
//! what the stamp's bytes decode to: a frame cut short, padded or overwritten is not read.

use crate::media::G711;

/// Samples, and payload bytes, in one stamped frame: 20 ms at 8 kHz.
pub const STAMP_SAMPLES: usize = 160;

/// Bytes that open every stamped frame.
const MAGIC: [u8; 4] = [0x13, 0x9c, 0x35, 0xc6];
/// The bytes that carry one hexadecimal digit each.
const DIGITS: [u8; 16] = [
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
];
/// Magic, then eight digits of the leg and eight of the index.
const HEADER: usize = MAGIC.len() + 16;

/// Which call leg sent a frame, and its place in what that leg sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameStamp {
    /// The carrier's number for the call leg.
    pub leg: u32,
    /// Frames the leg had produced before this one.
    pub index: u32,
}

impl FrameStamp {
    /// Returns the payload bytes of this frame.
    pub fn payload(self) -> [u8; STAMP_SAMPLES] {
        let mut bytes = [0u8; STAMP_SAMPLES];
        bytes[..MAGIC.len()].copy_from_slice(&MAGIC);
        let digits = bytes[MAGIC.len()..HEADER].iter_mut();
        let nibbles = nibbles(self.leg).chain(nibbles(self.index));
        for (byte, nibble) in digits.zip(nibbles) {
            *byte = DIGITS[usize::from(nibble)];
        }
        // The rest is never silence, so a frame with its tail padded out does not match.
        for (k, byte) in bytes[HEADER..].iter_mut().enumerate() {
            *byte = DIGITS[(k + self.index as usize) % DIGITS.len()];
        }
        bytes
    }

    /// Writes this frame over a payload of [`STAMP_SAMPLES`] bytes (or the first that many).
    pub fn write(self, payload: &mut [u8]) {
        let bytes = self.payload();
        let n = payload.len().min(STAMP_SAMPLES);
        payload[..n].copy_from_slice(&bytes[..n]);
    }

    /// Reads the stamp of the frame that `samples` (decoded with `codec`) start with, if
    /// its first [`STAMP_SAMPLES`] samples are exactly a stamped frame.
    pub fn read(codec: G711, samples: &[i16]) -> Option<FrameStamp> {
        let frame = samples.get(..STAMP_SAMPLES)?;
        let magic = frame.iter().zip(MAGIC);
        if !magic.into_iter().all(|(&s, b)| s == codec.decode_sample(b)) {
            return None;
        }
        let mut value = 0u64;
        for &sample in &frame[MAGIC.len()..HEADER] {
            let digit = DIGITS
                .iter()
                .position(|&b| codec.decode_sample(b) == sample)?;
            value = value << 4 | digit as u64;
        }
        let stamp = FrameStamp {
            leg: (value >> 32) as u32,
            index: value as u32,
        };
        let expected = stamp.payload();
        let exact = frame
            .iter()
            .zip(expected)
            .all(|(&s, b)| s == codec.decode_sample(b));
        exact.then_some(stamp)
    }
}

/// The eight hexadecimal digits of `value`, most significant first.
fn nibbles(value: u32) -> impl Iterator<Item = u8> {
    (0..8).rev().map(move |k| ((value >> (4 * k)) & 0xf) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(codec: G711, payload: &[u8]) -> Vec<i16> {
        let mut samples = vec![0; payload.len()];
        codec.decode(payload, &mut samples);
        samples
    }

    #[test]
    fn a_stamp_survives_decoding_with_either_codec() {
        for codec in [G711::Pcmu, G711::Pcma] {
            for stamp in [
                FrameStamp { leg: 0, index: 0 },
                FrameStamp {
                    leg: 17,
                    index: 1_234_567,
                },
                FrameStamp {
                    leg: u32::MAX,
                    index: u32::MAX,
                },
            ] {
                let samples = decoded(codec, &stamp.payload());
                assert_eq!(FrameStamp::read(codec, &samples), Some(stamp), "{codec:?}");
            }
        }
    }

    #[test]
    fn every_byte_used_decodes_to_a_value_of_its_own() {
        for codec in [G711::Pcmu, G711::Pcma] {
            let mut values: Vec<i16> = MAGIC
                .iter()
                .chain(&DIGITS)
                .map(|&b| codec.decode_sample(b))
                .collect();
            values.sort_unstable();
            values.dedup();
            assert_eq!(values.len(), MAGIC.len() + DIGITS.len(), "{codec:?}");
        }
    }

    #[test]
    fn damaged_or_shifted_frames_are_not_read() {
        let codec = G711::Pcmu;
        let stamp = FrameStamp { leg: 3, index: 41 };
        let samples = decoded(codec, &stamp.payload());
        assert_eq!(FrameStamp::read(codec, &samples[..STAMP_SAMPLES - 1]), None);
        let mut padded = samples.clone();
        padded[150..].fill(0);
        assert_eq!(FrameStamp::read(codec, &padded), None);
        let mut changed = samples.clone();
        changed[90] = changed[91];
        assert_eq!(FrameStamp::read(codec, &changed), None);
        let mut shifted = vec![0; 1];
        shifted.extend(&samples);
        assert_eq!(FrameStamp::read(codec, &shifted), None);
        assert_eq!(FrameStamp::read(codec, &shifted[1..]), Some(stamp));
        // Read with the other codec's table, the bytes mean nothing.
        assert_eq!(FrameStamp::read(G711::Pcma, &samples), None);
    }

    #[test]
    fn write_replaces_a_payload() {
        let stamp = FrameStamp { leg: 9, index: 2 };
        let mut payload = [0xffu8; STAMP_SAMPLES];
        stamp.write(&mut payload);
        assert_eq!(payload, stamp.payload());
    }
}
