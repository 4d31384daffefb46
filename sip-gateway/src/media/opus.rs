//! Opus at the edge of an agent leg, for browsers that offer no G.711.
//!
//! [`OpusDecoder`] turns the browser's packets into 8 kHz PCM and
//! [`OpusEncoder`] turns 8 kHz PCM into 20 ms packets for the browser, both
//! through [`resample`](super::resample), so the rest of the gateway only ever
//! handles telephone audio. libopus does the coding (see
//! `docs/decisions/0004-opus.md`); it is linked from the system.

use std::fmt;

use opusic_c::{Application, Bandwidth, Bitrate, Channels, Decoder, Encoder, SampleRate};
use thiserror::Error;

use super::resample::{Decimator, Interpolator, FACTOR};

/// Opus's RTP clock rate in WebRTC, whatever the audio's bandwidth (RFC 7587).
pub const CLOCK_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at 48 kHz, the only frame length the encoder sends.
pub const FRAME: usize = 960;
/// The encoder's target rate: ample for telephone-band speech, a third of G.711's.
pub const BITRATE: u32 = 24_000;

/// The encoder's complexity: about half the CPU of libopus's default 10 (see docs/benchmarks.md);
/// the audio has already been through G.711, so there is little quality to keep.
pub const COMPLEXITY: u8 = 5;

/// The longest packet Opus allows: 120 ms at 48 kHz.
const MAX_DECODED: usize = 5760;
/// Large enough for any 20 ms packet at our bitrate, with room to spare.
const MAX_PACKET: usize = 1500;

/// Reasons Opus coding fails.
#[derive(Debug, Error)]
pub enum OpusError {
    /// libopus could not set up an encoder or a decoder.
    #[error("Opus codec could not be set up: {0}")]
    Setup(&'static str),
    /// A packet from the browser could not be decoded.
    #[error("Opus packet could not be decoded: {0}")]
    Decode(&'static str),
    /// The encoder refused a frame.
    #[error("Opus frame could not be encoded: {0}")]
    Encode(&'static str),
}

/// Decodes a browser's Opus packets to 8 kHz mono PCM.
pub struct OpusDecoder {
    decoder: Decoder,
    decimator: Decimator,
    wide: Vec<u16>,
    pcm: Vec<i16>,
}

/// Encodes 8 kHz PCM as 20 ms Opus packets, mono, constant frame length, no DTX.
pub struct OpusEncoder {
    encoder: Encoder,
    interpolator: Interpolator,
    /// 48 kHz audio not yet encoded: less than a frame between calls.
    pending: Vec<i16>,
    /// The 48 kHz timestamp of `pending[0]`.
    pending_start: u64,
    frame: Vec<u16>,
}

/// One encoded packet and where it sits on the 48 kHz RTP clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// The RTP timestamp, in 48 kHz samples.
    pub timestamp: u64,
    /// The Opus payload.
    pub payload: Vec<u8>,
}

impl OpusDecoder {
    /// Creates a decoder; stereo packets are mixed down to mono by libopus.
    pub fn new() -> Result<Self, OpusError> {
        let decoder = Decoder::new(Channels::Mono, SampleRate::Hz48000)
            .map_err(|e| OpusError::Setup(e.message()))?;
        Ok(OpusDecoder {
            decoder,
            decimator: Decimator::new(),
            wide: vec![0; MAX_DECODED],
            pcm: Vec::with_capacity(MAX_DECODED),
        })
    }

    /// Decodes one packet and appends its audio, at 8 kHz, to `out`; returns how many samples.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, OpusError> {
        if packet.is_empty() {
            // An empty payload would ask libopus to conceal a loss of unknown length.
            return Err(OpusError::Decode("empty packet"));
        }
        let samples = self
            .decoder
            .decode_to_slice(packet, &mut self.wide, false)
            .map_err(|e| OpusError::Decode(e.message()))?;
        let decoded = self.wide.get(..samples).unwrap_or(&[]);
        self.pcm.clear();
        // opusic-c passes 16-bit samples as u16; the bits are libopus's i16.
        self.pcm.extend(decoded.iter().map(|&s| s as i16));
        let before = out.len();
        self.decimator.process(&self.pcm, out);
        Ok(out.len() - before)
    }
}

impl OpusEncoder {
    /// Creates an encoder for VoIP at [`BITRATE`] and [`COMPLEXITY`], narrowband: the source is telephone audio.
    pub fn new() -> Result<Self, OpusError> {
        let setup = |e: opusic_c::ErrorCode| OpusError::Setup(e.message());
        let mut encoder =
            Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip).map_err(setup)?;
        encoder
            .set_bitrate(Bitrate::Value(BITRATE))
            .map_err(setup)?;
        // Nothing above 4 kHz survives G.711; coding it would spend bits on silence.
        encoder
            .set_max_bandwidth(Bandwidth::Narrow)
            .map_err(setup)?;
        // A packet every 20 ms, silence included: the browser's jitter buffer
        // and the leg's continuous timeline both expect one.
        encoder.set_dtx(false).map_err(setup)?;
        encoder.set_complexity(COMPLEXITY).map_err(setup)?;
        Ok(OpusEncoder {
            encoder,
            interpolator: Interpolator::new(),
            pending: Vec::with_capacity(2 * FRAME),
            pending_start: 0,
            frame: vec![0; FRAME],
        })
    }

    /// Sets how hard the encoder works, 0 (cheapest) to 10, in place of [`COMPLEXITY`].
    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), OpusError> {
        self.encoder
            .set_complexity(complexity.min(10))
            .map_err(|e| OpusError::Setup(e.message()))
    }

    /// Takes 8 kHz audio that starts at `timestamp` (8 kHz samples) and appends every completed 20 ms packet to `packets`.
    ///
    /// Audio that does not follow on from the last call starts a new frame;
    /// the unfinished one before it (under 20 ms) is dropped.
    pub fn encode(
        &mut self,
        pcm: &[i16],
        timestamp: u64,
        packets: &mut Vec<OpusPacket>,
    ) -> Result<(), OpusError> {
        let start = timestamp * FACTOR as u64;
        if self.pending_start + self.pending.len() as u64 != start {
            self.pending.clear();
            self.pending_start = start;
        }
        self.interpolator.process(pcm, &mut self.pending);
        while self.pending.len() >= FRAME {
            // opusic-c takes 16-bit samples as u16; the bits are libopus's i16.
            for (to, &from) in self.frame.iter_mut().zip(&self.pending[..FRAME]) {
                *to = from as u16;
            }
            let mut payload = vec![0; MAX_PACKET];
            let len = self
                .encoder
                .encode_to_slice(&self.frame, &mut payload)
                .map_err(|e| OpusError::Encode(e.message()))?;
            payload.truncate(len);
            packets.push(OpusPacket {
                timestamp: self.pending_start,
                payload,
            });
            self.pending.drain(..FRAME);
            self.pending_start += FRAME as u64;
        }
        Ok(())
    }
}

impl fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("pending", &self.pending.len())
            .field("pending_start", &self.pending_start)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{dominant_frequency, sine};

    const CANDIDATES: [f64; 5] = [300.0, 440.0, 697.0, 1000.0, 2000.0];

    #[test]
    fn a_tone_survives_opus_both_ways() {
        let tone = sine(1000.0, 10_000, 8000, 8000);
        let mut encoder = OpusEncoder::new().unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut packets = Vec::new();
        for (n, frame) in tone.chunks(160).enumerate() {
            encoder.encode(frame, 160 * n as u64, &mut packets).unwrap();
        }
        assert_eq!(packets.len(), 50);
        for (n, p) in packets.iter().enumerate() {
            assert_eq!(p.timestamp, (FRAME * n) as u64);
        }
        // Once settled, the rate stays under the target (narrowband needs less) but is real audio.
        let sizes: Vec<usize> = packets[5..].iter().map(|p| p.payload.len()).collect();
        let bits_per_second =
            sizes.iter().sum::<usize>() as f64 * 8.0 / (sizes.len() as f64 * 0.02);
        assert!(
            (6_000.0..=f64::from(BITRATE) * 1.2).contains(&bits_per_second),
            "{bits_per_second} bit/s from packet sizes {sizes:?}"
        );
        let mut back = Vec::new();
        for p in &packets {
            assert_eq!(decoder.decode(&p.payload, &mut back).unwrap(), 160);
        }
        let settled = &back[1600..];
        assert_eq!(
            dominant_frequency(settled, &CANDIDATES, 8000, 0.001),
            Some(1000.0)
        );
        let level = |s: &[i16]| {
            (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
        };
        let ratio = level(settled) / level(&tone);
        assert!((0.7..1.3).contains(&ratio), "level ratio {ratio}");
    }

    #[test]
    fn odd_frames_are_gathered_and_jumps_start_afresh() {
        let mut encoder = OpusEncoder::new().unwrap();
        let mut packets = Vec::new();
        let pcm = sine(440.0, 8000, 8000, 240);
        // 30 ms, then 30 ms more: one packet, then a second.
        encoder.encode(&pcm, 1000, &mut packets).unwrap();
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].timestamp, 6000);
        encoder.encode(&pcm, 1240, &mut packets).unwrap();
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[2].timestamp, 6000 + 2 * FRAME as u64);
        // A new source somewhere else on the timeline: the 10 ms left over is dropped.
        packets.clear();
        encoder.encode(&pcm[..160], 9000, &mut packets).unwrap();
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].timestamp, 54_000);
    }

    #[test]
    fn garbage_and_stereo_are_handled() {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        assert!(decoder.decode(&[], &mut out).is_err());
        // A code-3 packet that claims more frames than its length allows.
        assert!(decoder.decode(&[0xfb, 0xff], &mut out).is_err());
        assert!(out.is_empty());

        // A stereo packet from a browser that negotiated stereo decodes to mono.
        let mut stereo = Encoder::new(Channels::Stereo, SampleRate::Hz48000, Application::Voip)
            .expect("stereo encoder");
        let left = sine(697.0, 8000, 48_000, FRAME * 10);
        let mut decoded = Vec::new();
        for chunk in left.chunks(FRAME) {
            let interleaved: Vec<u16> = chunk.iter().flat_map(|&s| [s as u16, s as u16]).collect();
            let mut packet = vec![0; MAX_PACKET];
            let len = stereo.encode_to_slice(&interleaved, &mut packet).unwrap();
            assert_eq!(decoder.decode(&packet[..len], &mut decoded).unwrap(), 160);
        }
        assert_eq!(
            dominant_frequency(&decoded[400..], &CANDIDATES, 8000, 0.001),
            Some(697.0)
        );
    }
}
