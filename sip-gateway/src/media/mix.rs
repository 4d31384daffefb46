//! Mixes both sides of a call into one stream, for a supervisor listening in,
//! and lays a supervisor's voice over a stream passing through, for coaching.
//!
//! [`Mixer`]: each side's decoded audio waits in a short queue; every 20 ms one
//! frame is taken from each (silence for a side with none), summed with
//! saturation and encoded as one RTP packet. The queues are capped, so a side
//! that sends in bursts costs a little audio rather than growing delay.
//!
//! [`Overlay`]: a supervisor's decoded voice waits in a short queue; each
//! G.711 payload on its way to the agent (whisper) or to the customer (barge)
//! takes as many samples as it carries, decoded, summed and re-encoded in
//! place. It rides the stream's own packets, so it needs no clock of its own
//! and adds no delay to what the stream carried. The two streams come from
//! different senders with their own jitter, so the voice starts (and starts
//! again after running dry) only once two frames wait: a packet of one
//! arriving a little before the other's then costs no gap in the voice.

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

/// The audio an overlay waits for before its voice is laid over a stream,
/// first and after running dry: two frames, to absorb both streams' jitter.
const OVERLAY_PRIME: usize = 2 * FRAME_SAMPLES;
/// The most audio an overlay keeps, six frames; older audio goes.
const OVERLAY_MAX: usize = 6 * FRAME_SAMPLES;

/// One voice waiting to be laid over a stream; see the module docs.
#[derive(Debug, Default)]
pub struct Overlay {
    queue: VecDeque<i16>,
    /// Whether the voice is being laid over; false until primed.
    playing: bool,
}

impl Overlay {
    /// Adds a G.711 payload of the voice, decoding it; the oldest audio goes
    /// past six frames.
    pub fn push_g711(&mut self, codec: G711, payload: &[u8]) {
        let mut pcm = [0i16; FRAME_SAMPLES];
        for chunk in payload.chunks(FRAME_SAMPLES) {
            let pcm = &mut pcm[..chunk.len()];
            codec.decode(chunk, pcm);
            self.queue.extend(pcm.iter());
        }
        let excess = self.queue.len().saturating_sub(OVERLAY_MAX);
        self.queue.drain(..excess);
    }

    /// Forgets the audio waiting.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.playing = false;
    }

    /// Returns whether no audio waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Returns whether the voice is to be laid over the next payload.
    fn ready(&mut self) -> bool {
        if self.queue.is_empty() {
            // A payload passes with nothing to lay over it: dry until primed again.
            self.playing = false;
        } else if !self.playing && self.queue.len() >= OVERLAY_PRIME {
            self.playing = true;
        }
        self.playing
    }

    /// Adds the voice's next samples to `pcm`; running dry, it waits to be primed again.
    fn add_to(&mut self, pcm: &mut [i16]) {
        if !self.ready() {
            return;
        }
        let take = self.queue.len().min(pcm.len());
        for (out, sample) in pcm.iter_mut().zip(self.queue.drain(..take)) {
            *out = out.saturating_add(sample);
        }
        if take < pcm.len() {
            self.playing = false;
        }
    }
}

/// Sums the voices `voice` picks out of `holders` into a G.711 `payload` in
/// place, one sample of each per sample of the payload; a payload none of
/// them has a voice ready for is left as it was, byte for byte.
pub fn lay_over<T>(
    codec: G711,
    payload: &mut [u8],
    holders: &mut [T],
    voice: impl Fn(&mut T) -> Option<&mut Overlay>,
) {
    for chunk in payload.chunks_mut(FRAME_SAMPLES) {
        if holders
            .iter_mut()
            .all(|h| voice(h).is_none_or(|o| !o.ready()))
        {
            return;
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        let pcm = &mut pcm[..chunk.len()];
        codec.decode(chunk, pcm);
        for overlay in holders.iter_mut().filter_map(&voice) {
            overlay.add_to(pcm);
        }
        codec.encode(pcm, chunk);
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

    fn pcmu(samples: &[i16]) -> Vec<u8> {
        let mut encoded = vec![0u8; samples.len()];
        G711::Pcmu.encode(samples, &mut encoded);
        encoded
    }

    #[test]
    fn a_voice_is_laid_over_passing_payloads_once_primed_and_used_once() {
        let customer = sine(1000.0, 8000, 8000, 480);
        let coach = sine(350.0, 8000, 8000, 320);
        let mut voices = [Overlay::default(), Overlay::default()];
        let mut encoded = [0u8; 160];
        G711::Pcma.encode(&coach[..160], &mut encoded);
        voices[1].push_g711(G711::Pcma, &encoded);
        // One frame is not enough to start: the payload passes untouched.
        let before = pcmu(&customer);
        let mut payload = before.clone();
        lay_over(G711::Pcmu, &mut payload, &mut voices, |v| Some(v));
        assert_eq!(payload, before);
        G711::Pcma.encode(&coach[160..], &mut encoded);
        voices[1].push_g711(G711::Pcma, &encoded);
        lay_over(G711::Pcmu, &mut payload, &mut voices, |v| Some(v));
        let mut heard = [0i16; 480];
        G711::Pcmu.decode(&payload, &mut heard);
        assert!(goertzel_power(&heard[..320], 350.0, 8000) > 0.01);
        assert!(goertzel_power(&heard[..320], 1000.0, 8000) > 0.01);
        // The voice had two frames: the third is passed through untouched.
        assert_eq!(payload[320..], before[320..]);
        assert!(voices.iter().all(Overlay::is_empty));
        // Dry, it waits for two frames again.
        voices[1].push_g711(G711::Pcma, &encoded);
        let mut again = before.clone();
        lay_over(G711::Pcmu, &mut again, &mut voices, |v| Some(v));
        assert_eq!(again, before, "one frame after running dry is held back");
    }

    #[test]
    fn an_overlay_keeps_at_most_six_frames() {
        let mut voice = Overlay::default();
        voice.push_g711(G711::Pcmu, &[0x7f; 8000]);
        assert_eq!(voice.queue.len(), OVERLAY_MAX);
        voice.clear();
        assert!(voice.is_empty());
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
