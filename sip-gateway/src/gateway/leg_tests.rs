//! Two real RTP legs on loopback, bridged: what the far end of one hears of the other,
//! whether a packet goes straight out or through the leg's inbox.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::*;
use crate::gateway::media_threads::MediaThreads;
use crate::gateway::ports::PortPool;
use crate::media::rtp::{RtpBuilder, RtpHeader};

const WAIT: Duration = Duration::from_secs(2);

/// A bridged pair: `a` is relayed to the far end behind `b_far`.
struct Pair {
    a: LegHandle,
    b: LegHandle,
    a_far: UdpSocket,
    b_far: UdpSocket,
    _events: mpsc::UnboundedReceiver<LegEvent>,
    /// Holds the media threads the legs may run on.
    _ports: PortPool,
}

async fn bound() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("bind")
}

fn media(remote: SocketAddr, codec: Codec) -> NegotiatedMedia {
    NegotiatedMedia {
        remote_rtp: remote,
        codec,
        telephone_event: Some(101),
        remote_direction: Direction::SendRecv,
        srtp: None,
    }
}

async fn pair(codec_a: Codec, codec_b: Codec) -> Pair {
    pair_on(codec_a, codec_b, 0).await
}

/// A bridged pair whose legs take `media_threads` in turn (none: the test's runtime).
async fn pair_on(codec_a: Codec, codec_b: Codec, media_threads: usize) -> Pair {
    let (events, events_rx) = mpsc::unbounded_channel();
    let threads = MediaThreads::start(media_threads).expect("media threads");
    let ports = PortPool::new("127.0.0.1".parse().unwrap(), 0..=0, threads);
    let (a_sock, b_sock) = (ports.bind().expect("bind"), ports.bind().expect("bind"));
    let (a_far, b_far) = (bound().await, bound().await);
    let (a_addr, b_addr) = (a_sock.local_addr().unwrap(), b_sock.local_addr().unwrap());
    let timeout = Duration::from_secs(30);
    let a = spawn(
        CallRef::random(),
        1,
        a_sock,
        a_addr,
        timeout,
        events.clone(),
    );
    let b = spawn(CallRef::random(), 2, b_sock, b_addr, timeout, events);
    for (leg, far, codec) in [(&a, &a_far, codec_a), (&b, &b_far, codec_b)] {
        leg.send(LegCommand::Media {
            media: media(far.local_addr().unwrap(), codec),
            answered: true,
        });
    }
    a.send(LegCommand::Bridge {
        peer: b.inbox.clone(),
        source: b.source,
        outbound: b.outbound.clone(),
    });
    b.send(LegCommand::Bridge {
        peer: a.inbox.clone(),
        source: a.source,
        outbound: a.outbound.clone(),
    });
    // Each leg takes its commands in its own time, on its own thread when it
    // has one: wait until both send straight out to each other, as bridged
    // legs do, before any audio is sent.
    let bridged = async {
        while direct(&a) != Some(b.source) || direct(&b) != Some(a.source) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(WAIT, bridged)
        .await
        .expect("both legs bridged in time");
    Pair {
        a,
        b,
        a_far,
        b_far,
        _events: events_rx,
        _ports: ports,
    }
}

fn packet(pt: u8, sequence: u16, payload: &[u8]) -> Vec<u8> {
    RtpBuilder {
        header: RtpHeader {
            marker: false,
            payload_type: pt,
            sequence,
            timestamp: u32::from(sequence) * 160,
            ssrc: 0x5151,
        },
        payload,
        ..Default::default()
    }
    .to_vec()
}

/// Receives the next packet at `far`, or fails after [`WAIT`].
async fn next(far: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(WAIT, far.recv_from(&mut buf))
        .await
        .expect("a packet in time")
        .expect("receive");
    buf[..n].to_vec()
}

/// Sends packets `from..to` into leg `a` and returns what `b`'s far end got for them
/// (payload byte 0 carries the low byte of the sequence sent).
async fn relay_run(p: &Pair, pt: u8, from: u16, to: u16) -> Vec<Vec<u8>> {
    let a_local = p.a.local;
    let mut got = Vec::new();
    for seq in from..to {
        let payload = [seq as u8; 160];
        p.a_far
            .send_to(&packet(pt, seq, &payload), a_local)
            .await
            .unwrap();
        got.push(next(&p.b_far).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

/// Fails if anything reaches `far` within 300 ms.
async fn assert_hears_nothing(far: &UdpSocket, when: &str) {
    let mut buf = [0u8; 2048];
    let heard = tokio::time::timeout(Duration::from_millis(300), far.recv_from(&mut buf)).await;
    assert!(heard.is_err(), "a packet was relayed {when}");
}

/// The source a leg sends straight out, if any.
fn direct(leg: &LegHandle) -> Option<SourceId> {
    let out = leg.outbound.as_deref().expect("an RTP leg");
    lock(out).direct.map(|(source, _)| source)
}

fn header(bytes: &[u8]) -> RtpHeader {
    RtpPacket::parse(bytes).expect("RTP").header()
}

#[tokio::test]
async fn a_bridged_legs_audio_reaches_the_far_end_rewritten_and_continuous() {
    for media_threads in [0, 2] {
        let p = pair_on(Codec::Pcmu, Codec::Pcmu, media_threads).await;
        assert_rewritten_and_continuous(&p).await;
    }
}

/// Relays 20 packets from `a`'s far end and checks what `b`'s far end hears.
async fn assert_rewritten_and_continuous(p: &Pair) {
    let got = relay_run(p, 0, 1000, 1020).await;
    assert_eq!(
        direct(&p.b),
        Some(p.a.source),
        "b's far end gets a's packets straight from a's task"
    );
    let first = header(&got[0]);
    for (i, bytes) in got.iter().enumerate() {
        let h = header(bytes);
        assert_eq!(h.ssrc, first.ssrc, "one outgoing stream");
        assert_ne!(h.ssrc, 0x5151, "the SSRC is the leg's own");
        assert_eq!(h.sequence, first.sequence.wrapping_add(i as u16));
        assert_eq!(h.timestamp, first.timestamp.wrapping_add(160 * i as u32));
        let payload = RtpPacket::parse(bytes).unwrap().payload().to_vec();
        assert_eq!(
            payload,
            vec![(1000 + i as u16) as u8; 160],
            "audio unchanged"
        );
    }
}

#[tokio::test]
async fn the_far_end_hears_its_own_law_and_payload_types() {
    let p = pair(Codec::Pcma, Codec::Pcmu).await;
    let got = relay_run(&p, 8, 7, 9).await;
    for (bytes, sent) in got.iter().zip(7u8..) {
        let view = RtpPacket::parse(bytes).unwrap();
        assert_eq!(view.payload_type(), 0, "A-law in, μ-law out");
        let mut expected = [sent; 160];
        G711::Pcma.transcode_in_place(G711::Pcmu, &mut expected);
        assert_ne!(
            expected, [sent; 160],
            "the test's bytes differ in the two laws"
        );
        assert_eq!(view.payload(), expected, "the payload was converted");
    }
    let events = relay_run(&p, 101, 20, 21).await;
    assert_eq!(
        header(&events[0]).payload_type,
        101,
        "telephone events mapped"
    );
}

#[tokio::test]
async fn the_stream_stays_one_across_hold_and_back() {
    let p = pair(Codec::Pcmu, Codec::Pcmu).await;
    let before = relay_run(&p, 0, 1, 4).await;
    p.b.send(LegCommand::Hold(true));
    // While held, the far end hears the hold tone and not the other side.
    let held_from = tokio::time::Instant::now();
    let mut tone = Vec::new();
    while held_from.elapsed() < Duration::from_millis(300) {
        let seq = 100 + tone.len() as u16;
        p.a_far
            .send_to(&packet(0, seq, &[0x42; 160]), p.a.local)
            .await
            .unwrap();
        tone.push(next(&p.b_far).await);
    }
    assert_eq!(direct(&p.b), None, "nothing goes straight out while held");
    assert!(
        tone.iter()
            .skip(2)
            .all(|b| RtpPacket::parse(b).unwrap().payload() != [0x42; 160]),
        "the held side hears the tone, not the other side"
    );
    p.b.send(LegCommand::Hold(false));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Drain what the tone sent last.
    let mut buf = [0u8; 2048];
    while p.b_far.try_recv_from(&mut buf).is_ok() {}
    let after = relay_run(&p, 0, 200, 203).await;
    assert_eq!(
        direct(&p.b),
        Some(p.a.source),
        "straight out again after hold"
    );
    let all: Vec<RtpHeader> = before
        .iter()
        .chain(&tone)
        .chain(&after)
        .map(|b| header(b))
        .collect();
    let ssrc = all[0].ssrc;
    assert!(all.iter().all(|h| h.ssrc == ssrc), "one SSRC throughout");
    for w in all.windows(2) {
        let step = w[1].sequence.wrapping_sub(w[0].sequence);
        assert!(
            (1..=100).contains(&step),
            "sequence moves forward across hold: {w:?}"
        );
    }
    assert_eq!(
        RtpPacket::parse(after.last().unwrap()).unwrap().payload(),
        [202u8; 160],
        "the other side is heard again after hold"
    );
}

#[tokio::test]
async fn an_unbridged_leg_relays_nothing() {
    let p = pair(Codec::Pcmu, Codec::Pcmu).await;
    relay_run(&p, 0, 1, 3).await;
    p.a.send(LegCommand::Unbridge);
    p.b.send(LegCommand::Unbridge);
    tokio::time::sleep(Duration::from_millis(50)).await;
    p.a_far
        .send_to(&packet(0, 3, &[3; 160]), p.a.local)
        .await
        .unwrap();
    assert_hears_nothing(&p.b_far, "after unbridging").await;
}

#[tokio::test]
async fn a_closed_leg_is_not_sent_to_and_frees_its_port() {
    let p = pair(Codec::Pcmu, Codec::Pcmu).await;
    relay_run(&p, 0, 1, 3).await;
    p.b.send(LegCommand::Close);
    let b_port = p.b.local;
    let freed = async {
        while UdpSocket::bind(b_port).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, freed)
        .await
        .expect("the closed leg's port is free again");
    assert_eq!(
        direct(&p.b),
        None,
        "a closed leg takes nothing straight out"
    );
    p.a_far
        .send_to(&packet(0, 3, &[3; 160]), p.a.local)
        .await
        .unwrap();
    assert_hears_nothing(&p.b_far, "once the leg has closed").await;
}
