//! Mixes both sides of a call into one stream, for a supervisor listening in.
//!
//! Each side's decoded audio waits in a short queue; every 20 ms one frame is
//! taken from each (silence for a side with none), summed with saturation and
//! encoded as one RTP packet. The queues are capped, so a side that sends in
//! bursts costs a little audio rather than growing delay.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::align::Side;
use super::rtp::{RtpBuilder, RtpHeader};
use super::G711;

const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: usize = 160;
/// The most audio a side may queue: three frames. Older samples are dropped.
const MAX_QUEUED: usize = 3 * FRAME_SAMPLES;

/// Produces the mixed RTP stream of one call.
#[derive(Debug)]
pub struct Mixer {
    codec: G711,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    queues: [VecDeque<i16>; 2],
    next_at: Instant,
    out: VecDeque<Vec<u8>>,
}

impl Mixer {
    /// Creates a mixer that encodes with `codec`; its first frame is due at `now`.
    pub fn new(codec: G711, ssrc: u32, sequence: u16, timestamp: u32, now: Instant) -> Self {
        Self {
            codec,
            ssrc,
            sequence,
            timestamp,
            queues: [VecDeque::new(), VecDeque::new()],
            next_at: now,
            out: VecDeque::new(),
        }
    }

    /// Adds decoded audio of one side.
    pub fn push(&mut self, side: Side, samples: &[i16]) {
        let queue = &mut self.queues[index(side)];
        queue.extend(samples);
        let excess = queue.len().saturating_sub(MAX_QUEUED);
        queue.drain(..excess);
    }

    /// Adds one side's G.711 payload, decoding it.
    pub fn push_g711(&mut self, side: Side, codec: G711, payload: &[u8]) {
        let mut pcm = [0i16; FRAME_SAMPLES];
        for chunk in payload.chunks(FRAME_SAMPLES) {
            let pcm = &mut pcm[..chunk.len()];
            codec.decode(chunk, pcm);
            self.push(side, pcm);
        }
    }

    /// Mixes the frames due by `now`; when neither side had audio, nothing is sent.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.next_at <= now {
            self.next_at += FRAME;
            let mut mixed = [0i16; FRAME_SAMPLES];
            let mut heard = false;
            for queue in &mut self.queues {
                let take = queue.len().min(FRAME_SAMPLES);
                heard |= take > 0;
                for (out, sample) in mixed.iter_mut().zip(queue.drain(..take)) {
                    *out = out.saturating_add(sample);
                }
            }
            let timestamp = self.timestamp;
            self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
            if !heard {
                continue;
            }
            let mut payload = [0u8; FRAME_SAMPLES];
            self.codec.encode(&mixed, &mut payload);
            let packet = RtpBuilder {
                header: RtpHeader {
                    marker: false,
                    payload_type: self.codec.payload_type(),
                    sequence: self.sequence,
                    timestamp,
                    ssrc: self.ssrc,
                },
                payload: &payload,
                ..RtpBuilder::default()
            }
            .to_vec();
            self.sequence = self.sequence.wrapping_add(1);
            self.out.push_back(packet);
        }
    }

    /// Returns the next mixed packet.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Returns when the next frame is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_at
    }

    /// Returns the codec of the mixed stream.
    pub fn codec(&self) -> G711 {
        self.codec
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::Agent => 0,
        Side::Customer => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;
    use crate::media::tone::{goertzel_power, sine};

    fn decode(packet: &[u8]) -> Vec<i16> {
        let view = RtpPacket::parse(packet).unwrap();
        let mut pcm = vec![0; view.payload().len()];
        G711::Pcmu.decode(view.payload(), &mut pcm);
        pcm
    }

    #[test]
    fn both_sides_are_heard_in_the_mix() {
        let t0 = Instant::now();
        let mut mixer = Mixer::new(G711::Pcmu, 1, 0, 0, t0);
        let agent = sine(440.0, 8000, 8000, 1600);
        let customer = sine(1000.0, 8000, 8000, 1600);
        let mut heard = Vec::new();
        for i in 0..10 {
            let frame = i * 160..(i + 1) * 160;
            let mut encoded = [0u8; 160];
            G711::Pcma.encode(&customer[frame.clone()], &mut encoded);
            mixer.push(Side::Agent, &agent[frame]);
            mixer.push_g711(Side::Customer, G711::Pcma, &encoded);
            mixer.handle_timeout(t0 + FRAME * i as u32);
            while let Some(p) = mixer.poll_transmit() {
                heard.extend(decode(&p));
            }
        }
        assert_eq!(heard.len(), 1600);
        assert!(goertzel_power(&heard, 440.0, 8000) > 0.01);
        assert!(goertzel_power(&heard, 1000.0, 8000) > 0.01);
    }

    #[test]
    fn loud_sides_saturate_instead_of_wrapping() {
        let t0 = Instant::now();
        let mut mixer = Mixer::new(G711::Pcmu, 1, 0, 0, t0);
        mixer.push(Side::Agent, &[30_000; 160]);
        mixer.push(Side::Customer, &[30_000; 160]);
        mixer.handle_timeout(t0);
        let pcm = decode(&mixer.poll_transmit().unwrap());
        assert!(pcm.iter().all(|&s| s > 30_000), "{:?}", &pcm[..4]);
    }

    #[test]
    fn silence_sends_nothing_and_queues_stay_short() {
        let t0 = Instant::now();
        let mut mixer = Mixer::new(G711::Pcmu, 1, 100, 0, t0);
        mixer.handle_timeout(t0 + Duration::from_millis(100));
        assert_eq!(mixer.poll_transmit(), None);
        assert_eq!(mixer.poll_timeout(), t0 + Duration::from_millis(120));
        // A burst of a second of audio leaves at most three frames to play.
        mixer.push(Side::Customer, &[1000; 8000]);
        mixer.handle_timeout(t0 + Duration::from_millis(200));
        let packets: Vec<_> = std::iter::from_fn(|| mixer.poll_transmit()).collect();
        assert_eq!(packets.len(), 3);
        let seqs: Vec<u16> = packets
            .iter()
            .map(|p| RtpPacket::parse(p).unwrap().sequence())
            .collect();
        assert_eq!(seqs, [100, 101, 102]);
    }
}
