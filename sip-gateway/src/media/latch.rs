//! Symmetric RTP latching: send media back to where it really comes from,
//! since NAT often makes the SDP address wrong, and end calls whose media
//! has stopped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::rtp::RtpPacket;

/// Settings of one leg's latch.
#[derive(Debug, Clone)]
pub struct LatchConfig {
    /// Address the peer's SDP announced, used until a packet latches.
    pub sdp_addr: Option<SocketAddr>,
    /// Re-latch once onto the SDP address if media later arrives from it.
    pub prefer_sdp: bool,
    /// Payload types negotiated for the leg; others do not latch.
    pub payload_types: Vec<u8>,
    /// How long the leg may go without accepted RTP before it times out.
    pub media_timeout: Duration,
}

/// What happened to one incoming datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet is from the latched source and should be processed.
    Accepted,
    /// The packet came from another address and was ignored.
    WrongSource,
    /// The packet was not RTP, or carried a payload type not negotiated.
    Invalid,
}

/// Something the shell must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchEvent {
    /// Media now goes to this address.
    Latched(SocketAddr),
    /// No accepted RTP for the configured timeout: the call should end.
    MediaTimeout,
}

/// Counters of what the latch saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatchStats {
    /// Packets accepted.
    pub accepted: u64,
    /// Packets ignored because they came from another address.
    pub wrong_source: u64,
    /// Packets ignored as invalid or with an unexpected payload type.
    pub invalid: u64,
}

/// Latches the remote media address of one leg and watches for silence.
#[derive(Debug)]
pub struct Latch {
    config: LatchConfig,
    latched: Option<SocketAddr>,
    settled: bool,
    last_activity: Instant,
    watching: bool,
    timed_out: bool,
    stats: LatchStats,
    events: VecDeque<LatchEvent>,
}

impl Latch {
    /// Creates a latch; the media timeout runs from `now`.
    pub fn new(config: LatchConfig, now: Instant) -> Self {
        Self {
            config,
            latched: None,
            settled: false,
            last_activity: now,
            watching: true,
            timed_out: false,
            stats: LatchStats::default(),
            events: VecDeque::new(),
        }
    }

    /// Judges one datagram received from `from`.
    pub fn handle_packet(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) -> Verdict {
        let valid = RtpPacket::parse(datagram)
            .is_ok_and(|p| self.config.payload_types.contains(&p.payload_type()));
        if !valid {
            self.stats.invalid += 1;
            return Verdict::Invalid;
        }
        match self.latched {
            Some(addr) if addr == from => {}
            Some(_) if !self.settled && self.config.sdp_addr == Some(from) => {
                self.latch(from, true);
            }
            Some(_) => {
                self.stats.wrong_source += 1;
                return Verdict::WrongSource;
            }
            None => {
                let settled = !self.config.prefer_sdp || self.config.sdp_addr == Some(from);
                self.latch(from, settled);
            }
        }
        self.stats.accepted += 1;
        self.last_activity = now;
        Verdict::Accepted
    }

    /// Returns where to send media: the latched address, else the SDP one.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.latched.or(self.config.sdp_addr)
    }

    /// Tells whether a packet has latched the remote address.
    pub fn is_latched(&self) -> bool {
        self.latched.is_some()
    }

    /// Turns the media timeout off (e.g. while the peer holds) or back on from `now`.
    pub fn set_watching(&mut self, watching: bool, now: Instant) {
        if watching && !self.watching {
            self.last_activity = now;
        }
        self.watching = watching;
    }

    /// Fires the media timeout if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.timed_out = true;
            self.events.push_back(LatchEvent::MediaTimeout);
        }
    }

    /// Returns when the media timeout will fire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.watching && !self.timed_out).then(|| self.last_activity + self.config.media_timeout)
    }

    /// Returns the next event for the shell.
    pub fn poll_event(&mut self) -> Option<LatchEvent> {
        self.events.pop_front()
    }

    /// Returns the counters.
    pub fn stats(&self) -> LatchStats {
        self.stats
    }

    fn latch(&mut self, addr: SocketAddr, settled: bool) {
        self.latched = Some(addr);
        self.settled = settled;
        tracing::debug!(%addr, settled, "rtp latched");
        self.events.push_back(LatchEvent::Latched(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{RtpBuilder, RtpHeader};

    const SDP: &str = "192.0.2.10:4000";
    const NAT: &str = "198.51.100.7:31000";
    const OTHER: &str = "203.0.113.5:5000";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rtp(pt: u8) -> Vec<u8> {
        RtpBuilder {
            header: RtpHeader {
                payload_type: pt,
                ..Default::default()
            },
            payload: &[0; 160],
            ..Default::default()
        }
        .to_vec()
    }

    fn latch(prefer_sdp: bool, now: Instant) -> Latch {
        Latch::new(
            LatchConfig {
                sdp_addr: Some(addr(SDP)),
                prefer_sdp,
                payload_types: vec![0, 101],
                media_timeout: Duration::from_secs(30),
            },
            now,
        )
    }

    #[test]
    fn first_valid_packet_latches_and_others_are_ignored() {
        let t0 = Instant::now();
        let mut l = latch(false, t0);
        assert_eq!(l.remote(), Some(addr(SDP)));
        assert_eq!(
            l.handle_packet(addr(OTHER), b"not rtp at all", t0),
            Verdict::Invalid
        );
        assert_eq!(l.handle_packet(addr(OTHER), &rtp(8), t0), Verdict::Invalid);
        assert!(!l.is_latched());
        assert_eq!(l.handle_packet(addr(NAT), &rtp(0), t0), Verdict::Accepted);
        assert_eq!(l.poll_event(), Some(LatchEvent::Latched(addr(NAT))));
        assert_eq!(l.remote(), Some(addr(NAT)));
        assert_eq!(
            l.handle_packet(addr(SDP), &rtp(0), t0),
            Verdict::WrongSource
        );
        assert_eq!(l.handle_packet(addr(NAT), &rtp(101), t0), Verdict::Accepted);
        assert_eq!(l.remote(), Some(addr(NAT)));
        assert_eq!(
            l.stats(),
            LatchStats {
                accepted: 2,
                wrong_source: 1,
                invalid: 2
            }
        );
        assert_eq!(l.poll_event(), None);
    }

    #[test]
    fn preferring_sdp_relatches_once_onto_the_sdp_address() {
        let t0 = Instant::now();
        let mut l = latch(true, t0);
        assert_eq!(l.handle_packet(addr(NAT), &rtp(0), t0), Verdict::Accepted);
        assert_eq!(l.handle_packet(addr(SDP), &rtp(0), t0), Verdict::Accepted);
        assert_eq!(l.remote(), Some(addr(SDP)));
        assert_eq!(
            l.handle_packet(addr(NAT), &rtp(0), t0),
            Verdict::WrongSource
        );
        assert_eq!(
            l.handle_packet(addr(OTHER), &rtp(0), t0),
            Verdict::WrongSource
        );
        let events: Vec<_> = std::iter::from_fn(|| l.poll_event()).collect();
        assert_eq!(
            events,
            vec![
                LatchEvent::Latched(addr(NAT)),
                LatchEvent::Latched(addr(SDP))
            ]
        );
    }

    #[test]
    fn media_timeout_is_reset_by_accepted_packets_only() {
        let t0 = Instant::now();
        let mut l = latch(false, t0);
        let secs = Duration::from_secs;
        assert_eq!(l.poll_timeout(), Some(t0 + secs(30)));
        l.handle_packet(addr(NAT), &rtp(0), t0 + secs(10));
        l.handle_packet(addr(OTHER), &rtp(0), t0 + secs(20));
        assert_eq!(l.poll_timeout(), Some(t0 + secs(40)));
        l.handle_timeout(t0 + secs(39));
        l.poll_event();
        assert_eq!(l.poll_event(), None);
        l.handle_timeout(t0 + secs(40));
        assert_eq!(l.poll_event(), Some(LatchEvent::MediaTimeout));
        assert_eq!(l.poll_timeout(), None);
        l.handle_timeout(t0 + secs(50));
        assert_eq!(l.poll_event(), None);
    }

    #[test]
    fn hold_suspends_the_media_timeout() {
        let t0 = Instant::now();
        let mut l = latch(false, t0);
        let secs = Duration::from_secs;
        l.set_watching(false, t0 + secs(5));
        assert_eq!(l.poll_timeout(), None);
        l.handle_timeout(t0 + secs(100));
        assert_eq!(l.poll_event(), None);
        l.set_watching(true, t0 + secs(100));
        assert_eq!(l.poll_timeout(), Some(t0 + secs(130)));
    }
}
