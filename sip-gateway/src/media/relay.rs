//! Header rewriting for relaying into one outgoing leg, so that the far end
//! sees one continuous stream across bridges, re-bridges and playback.
//!
//! Each source (a bridged leg, a player) keeps its own sequence and timestamp
//! offsets; a source change picks new offsets that continue the outgoing
//! stream. Losses inside a source stay visible as sequence gaps, because the
//! receiver's jitter buffer needs them to conceal the loss.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::rtp::{RtpError, RtpHeader, RtpPacket};

/// A forward sequence jump larger than this is a restart, not a loss (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
/// A backward sequence step up to this is a reordered packet (RFC 3550 A.1).
const MAX_MISORDER: u16 = 100;

/// Names a source of packets for one outgoing leg, as the shell assigns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u64);

/// Reasons a packet is not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RelayError {
    /// The packet is not valid RTP.
    #[error("malformed RTP: {0}")]
    Malformed(#[from] RtpError),
    /// The packet is a duplicate, or older than its source's current mapping.
    #[error("stale or duplicate packet")]
    Stale,
}

/// Settings of one outgoing stream.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// SSRC of the outgoing stream.
    pub ssrc: u32,
    /// Sequence number of the first packet sent.
    pub initial_sequence: u16,
    /// Timestamp of the first packet sent.
    pub initial_timestamp: u32,
    /// RTP clock rate of the stream.
    pub clock_rate: u32,
    /// Packet duration in clock units assumed until one is measured.
    pub default_frame: u32,
}

impl RelayConfig {
    /// Returns settings for an 8 kHz stream of 20 ms packets.
    pub fn narrowband(ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> Self {
        Self {
            ssrc,
            initial_sequence,
            initial_timestamp,
            clock_rate: 8000,
            default_frame: 160,
        }
    }
}

/// Payload-type rewriting for packets from one source; unmapped types pass unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadTypeMap {
    to: [u8; 128],
}

impl Default for PayloadTypeMap {
    fn default() -> Self {
        // Identity: each type maps to itself; indices are below 128.
        Self {
            to: std::array::from_fn(|i| i as u8),
        }
    }
}

impl PayloadTypeMap {
    /// Maps incoming payload type `from` to outgoing `to`.
    pub fn insert(&mut self, from: u8, to: u8) {
        self.to[usize::from(from & 0x7f)] = to & 0x7f;
    }

    /// Returns the outgoing payload type for `pt`.
    pub fn map(&self, pt: u8) -> u8 {
        self.to[usize::from(pt & 0x7f)]
    }
}

/// Counters of what the relay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Packets rewritten and forwarded.
    pub forwarded: u64,
    /// Packets dropped as duplicate or stale.
    pub stale: u64,
    /// Packets dropped as malformed.
    pub malformed: u64,
    /// Times a new source (or a restarted one) took over the stream.
    pub source_changes: u64,
}

/// Rewrites packets from any source into one continuous outgoing stream.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    next_sequence: u16,
    last_sent: Option<LastSent>,
    source: Option<SourceState>,
    maps: BTreeMap<SourceId, PayloadTypeMap>,
    stats: RelayStats,
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    timestamp: u32,
    at: Instant,
    frame: u32,
}

#[derive(Debug, Clone, Copy)]
struct SourceState {
    id: SourceId,
    ssrc: u32,
    first_sequence: u16,
    highest_sequence: u16,
    highest_timestamp: u32,
    sequence_offset: u16,
    timestamp_offset: u32,
}

impl Relay {
    /// Creates the relay for one outgoing leg.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            config,
            next_sequence: config.initial_sequence,
            last_sent: None,
            source: None,
            maps: BTreeMap::new(),
            stats: RelayStats::default(),
        }
    }

    /// Sets the payload-type rewriting for packets from `source`.
    pub fn set_payload_map(&mut self, source: SourceId, map: PayloadTypeMap) {
        self.maps.insert(source, map);
    }

    /// Forgets the payload-type rewriting of a source that has gone.
    pub fn remove_source(&mut self, source: SourceId) {
        self.maps.remove(&source);
    }

    /// Returns the counters.
    pub fn stats(&self) -> RelayStats {
        self.stats
    }

    /// Returns the SSRC of the outgoing stream.
    pub fn ssrc(&self) -> u32 {
        self.config.ssrc
    }

    /// Rewrites `packet` in place for the outgoing leg and returns its new header.
    pub fn relay(
        &mut self,
        source: SourceId,
        packet: &mut [u8],
        now: Instant,
    ) -> Result<RtpHeader, RelayError> {
        let input = match RtpPacket::parse(packet) {
            Ok(p) => p.header(),
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e.into());
            }
        };
        let (state, newest, changed) = match self.source {
            Some(s) if s.id == source && s.ssrc == input.ssrc => {
                match classify(&s, input.sequence) {
                    Step::Forward => (s, true, false),
                    Step::Late => (s, false, false),
                    Step::Stale => {
                        self.stats.stale += 1;
                        return Err(RelayError::Stale);
                    }
                    Step::Restart => (self.remap(source, &input, now), true, true),
                }
            }
            _ => (self.remap(source, &input, now), true, true),
        };
        let out = RtpHeader {
            marker: input.marker || changed,
            payload_type: self
                .maps
                .get(&source)
                .map_or(input.payload_type, |m| m.map(input.payload_type)),
            sequence: input.sequence.wrapping_add(state.sequence_offset),
            timestamp: input.timestamp.wrapping_add(state.timestamp_offset),
            ssrc: self.config.ssrc,
        };
        if newest {
            self.advance(state, &input, &out, now);
        }
        out.write_in_place(packet)?;
        self.stats.forwarded += 1;
        Ok(out)
    }

    /// Starts a new mapping that continues the outgoing stream from `input`.
    fn remap(&mut self, id: SourceId, input: &RtpHeader, now: Instant) -> SourceState {
        self.stats.source_changes += 1;
        let timestamp = match self.last_sent {
            None => self.config.initial_timestamp,
            Some(last) => {
                let elapsed = self.clock_units(now.saturating_duration_since(last.at));
                last.timestamp.wrapping_add(elapsed.max(last.frame))
            }
        };
        let state = SourceState {
            id,
            ssrc: input.ssrc,
            first_sequence: input.sequence,
            highest_sequence: input.sequence,
            highest_timestamp: input.timestamp,
            sequence_offset: self.next_sequence.wrapping_sub(input.sequence),
            timestamp_offset: timestamp.wrapping_sub(input.timestamp),
        };
        self.source = Some(state);
        state
    }

    /// Records the newest packet of the current source as sent.
    fn advance(
        &mut self,
        mut state: SourceState,
        input: &RtpHeader,
        out: &RtpHeader,
        now: Instant,
    ) {
        let seq_step = input.sequence.wrapping_sub(state.highest_sequence);
        let ts_step = input.timestamp.wrapping_sub(state.highest_timestamp);
        let mut frame = self
            .last_sent
            .map_or(self.config.default_frame, |l| l.frame);
        // Only back-to-back packets with a plausible step tell the packet length.
        if seq_step == 1 && ts_step > 0 && ts_step <= self.config.clock_rate {
            frame = ts_step;
        }
        state.highest_sequence = input.sequence;
        state.highest_timestamp = input.timestamp;
        self.source = Some(state);
        self.next_sequence = out.sequence.wrapping_add(1);
        match &mut self.last_sent {
            // Telephone-event packets repeat their start timestamp; keeping
            // the start's arrival time lets a source change skip the event.
            Some(last) if last.timestamp == out.timestamp => last.frame = frame,
            last => {
                *last = Some(LastSent {
                    timestamp: out.timestamp,
                    at: now,
                    frame,
                })
            }
        }
    }

    fn clock_units(&self, d: Duration) -> u32 {
        let units = d.as_micros() * u128::from(self.config.clock_rate) / 1_000_000;
        u32::try_from(units).unwrap_or(u32::MAX / 2)
    }
}

enum Step {
    Forward,
    Late,
    Stale,
    Restart,
}

fn classify(state: &SourceState, sequence: u16) -> Step {
    let ahead = sequence.wrapping_sub(state.highest_sequence);
    let behind = state.highest_sequence.wrapping_sub(sequence);
    if ahead == 0 {
        Step::Stale
    } else if ahead < MAX_DROPOUT {
        Step::Forward
    } else if behind <= MAX_MISORDER {
        // Older than the first packet of this mapping would reuse sequence
        // numbers that belonged to the previous source.
        if sequence.wrapping_sub(state.first_sequence)
            > state.highest_sequence.wrapping_sub(state.first_sequence)
        {
            Step::Stale
        } else {
            Step::Late
        }
    } else {
        Step::Restart
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
