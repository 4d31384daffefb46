//! RTP packets (RFC 3550): a zero-copy view for parsing, in-place header
//! rewriting for relaying, and a builder for serialising.

use thiserror::Error;

/// The only RTP version in use.
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed RTP header in bytes.
pub const FIXED_HEADER_LEN: usize = 12;

/// Reasons a datagram is not a well-formed RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// The datagram is shorter than the fixed header.
    #[error("packet of {0} bytes is shorter than the RTP header")]
    TooShort(usize),
    /// The version field is not 2.
    #[error("RTP version {0} is not supported")]
    BadVersion(u8),
    /// The CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header runs past the end of the packet")]
    Truncated,
    /// The padding count is zero or larger than the space after the header.
    #[error("RTP padding count {0} is invalid")]
    BadPadding(u8),
    /// The payload type collides with RTCP packet types (RFC 5761 section 4).
    #[error("payload type {0} is reserved for RTCP demultiplexing")]
    RtcpPayloadType(u8),
    /// The output buffer cannot hold the packet.
    #[error("buffer of {have} bytes cannot hold {need} bytes")]
    BufferTooSmall {
        /// Bytes the packet needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
}

/// The fields of the fixed header that relaying reads and rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Marker bit; for audio it flags the start of a talkspurt.
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Overwrites marker, payload type, sequence, timestamp and SSRC of the
    /// packet in `buf`, keeping version, padding, extension and CSRC count.
    pub fn write_in_place(&self, buf: &mut [u8]) -> Result<(), RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        buf[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        buf[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(())
    }
}

/// A validated, borrowed view of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    payload_start: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates `buf` without copying it.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        let version = buf[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let payload_type = buf[1] & 0x7f;
        if (72..=76).contains(&payload_type) {
            return Err(RtpError::RtcpPayloadType(payload_type));
        }
        let csrc_count = usize::from(buf[0] & 0x0f);
        let mut start = FIXED_HEADER_LEN + 4 * csrc_count;
        if buf[0] & 0x10 != 0 {
            let ext = buf.get(start..start + 4).ok_or(RtpError::Truncated)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
        }
        if start > buf.len() {
            return Err(RtpError::Truncated);
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let count = buf[buf.len() - 1];
            if count == 0 || usize::from(count) > end - start {
                return Err(RtpError::BadPadding(count));
            }
            end -= usize::from(count);
        }
        Ok(Self {
            buf,
            payload_start: start,
            payload_end: end,
        })
    }

    /// Returns the fixed-header fields that relaying works with.
    pub fn header(&self) -> RtpHeader {
        RtpHeader {
            marker: self.marker(),
            payload_type: self.payload_type(),
            sequence: self.sequence(),
            timestamp: self.timestamp(),
            ssrc: self.ssrc(),
        }
    }

    /// Returns the version field (always 2 after parsing).
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }

    /// Tells whether the packet carries padding.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Tells whether the packet carries a header extension.
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }

    /// Returns the number of CSRC entries.
    pub fn csrc_count(&self) -> u8 {
        self.buf[0] & 0x0f
    }

    /// Returns the marker bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// Returns the payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// Returns the sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// Returns the timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// Returns the synchronisation source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }

    /// Iterates over the contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let end = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        self.buf[FIXED_HEADER_LEN..end]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Returns the extension profile and its data, if present.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if !self.has_extension() {
            return None;
        }
        let at = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        let profile = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]);
        Some((profile, &self.buf[at + 4..self.payload_start]))
    }

    /// Returns the payload, without padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }

    /// Returns the whole packet as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// The parts of an RTP packet to serialise.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpBuilder<'a> {
    /// Fixed-header fields.
    pub header: RtpHeader,
    /// Contributing sources, at most 15.
    pub csrcs: &'a [u32],
    /// Extension profile and data; the data length must be a multiple of 4.
    pub extension: Option<(u16, &'a [u8])>,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// Padding bytes to append, including the count byte; 0 for none.
    pub padding: u8,
}

impl RtpBuilder<'_> {
    /// Returns the serialised length in bytes.
    pub fn len(&self) -> usize {
        FIXED_HEADER_LEN
            + 4 * self.csrcs.len().min(15)
            + self
                .extension
                .map_or(0, |(_, d)| 4 + d.len().div_ceil(4) * 4)
            + self.payload.len()
            + usize::from(self.padding)
    }

    /// Tells whether the packet would be empty, which it never is.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Serialises into `out` and returns the number of bytes written.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtpError> {
        let need = self.len();
        if out.len() < need {
            return Err(RtpError::BufferTooSmall {
                need,
                have: out.len(),
            });
        }
        let csrcs = &self.csrcs[..self.csrcs.len().min(15)];
        // CSRC count is at most 15 after the `min` above, so it fits 4 bits.
        out[0] = (RTP_VERSION << 6)
            | (u8::from(self.padding > 0) << 5)
            | (u8::from(self.extension.is_some()) << 4)
            | csrcs.len() as u8;
        self.header.write_in_place(out)?;
        let mut at = FIXED_HEADER_LEN;
        for csrc in csrcs {
            out[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some((profile, data)) = self.extension {
            let words = data.len().div_ceil(4);
            let words16 = u16::try_from(words).unwrap_or(u16::MAX);
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&words16.to_be_bytes());
            at += 4;
            out[at..at + data.len()].copy_from_slice(data);
            out[at + data.len()..at + words * 4].fill(0);
            at += words * 4;
        }
        out[at..at + self.payload.len()].copy_from_slice(self.payload);
        at += self.payload.len();
        if self.padding > 0 {
            let pad = usize::from(self.padding);
            out[at..at + pad - 1].fill(0);
            out[at + pad - 1] = self.padding;
            at += pad;
        }
        Ok(at)
    }

    /// Serialises into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        // The buffer was sized by `len()`, so writing cannot fail.
        let n = self.write(&mut out).unwrap_or(0);
        out.truncate(n);
        out
    }
}

/// Tells whether the datagram looks like RTCP rather than RTP (RFC 5761).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == RTP_VERSION && (200..=206).contains(&buf[1])
}

#[cfg(test)]
#[path = "rtp_tests.rs"]
mod tests;
