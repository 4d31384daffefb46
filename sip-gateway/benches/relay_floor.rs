//! The floor under a relayed RTP packet's CPU on this machine, and what batching the socket
//! calls can take off it.
//!
//! `cargo bench -p sip-gateway --bench relay_floor` relays packets between `RELAY_FLOOR_CALLS`
//! bridged calls (default 1,000, so 2,000 legs) with nothing but the socket calls: no
//! runtime, no readiness events, no wake-ups, no RTP rewrite. Each call is four loopback UDP
//! sockets: the two legs' sockets on the relay's side and the two far ends'. One thread plays
//! both parts in lockstep. In each round the far ends send `k` packets into every leg
//! (uncounted), then the relay takes every leg's packets and sends each out of its peer
//! leg's socket to the peer's far end (counted: the thread's own CPU time, from
//! `/proc/thread-self/schedstat`), then the far ends read everything back and check each
//! packet's call, side and sequence number (uncounted). On loopback a datagram is in the
//! receiving socket's queue when `sendto` returns, and the receiving side's work is done in
//! the sender's system call, so the relay's figure holds the whole kernel path of its own
//! packets, as the gateway's figure in `benches/gateway_load.rs` does.
//!
//! Ways of relaying, each measured `RELAY_FLOOR_REPEATS` times (default 5, interleaved)
//! over `RELAY_FLOOR_ROUNDS` rounds (default 300):
//!
//! - `recvfrom`: one `recvfrom` and one `sendto` per packet, as the gateway's legs do.
//! - `recvmmsg`: the same packets read with `recvmmsg` (up to 32 a call) and sent with
//!   `sendmsg`, through `quinn-udp`'s safe interface.
//! - `empty`: one `recvfrom` on every leg's socket with nothing queued: the cost of a socket
//!   system call that moves no packet, which is all a batching interface saves per packet.
//! - `burst recvfrom` and `burst recvmmsg + GSO`: `RELAY_FLOOR_BURST` packets (default 8) per
//!   leg per round, as a leg would hold if it were read every `8 × 20` ms; the second reads
//!   each leg's packets with one `recvmmsg` and sends them with one GSO `sendmsg`
//!   (`UDP_SEGMENT`). This is where batching helps; a leg with 20 ms packets read as they
//!   come never has more than one.
//!
//! The run exits non-zero if any packet is lost, duplicated or misdelivered.

use std::io::{ErrorKind, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState, BATCH_SIZE};

#[allow(dead_code)] // Of the shared figures, only the settings are read here.
#[path = "common/figures.rs"]
mod figures;
#[path = "common/proc_stat.rs"]
mod proc_stat;

use figures::env_number;
use proc_stat::thread_cpu;

/// An RTP packet of 20 ms of G.711: 12 bytes of header and 160 of audio.
const PACKET: usize = 172;

/// One bridged call: the relay's two legs and their far ends.
struct Call {
    legs: [UdpSocket; 2],
    leg_states: [UdpSocketState; 2],
    far: [UdpSocket; 2],
    far_addrs: [SocketAddr; 2],
    leg_addrs: [SocketAddr; 2],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    RecvFrom,
    RecvMmsg,
    Empty,
    BurstRecvFrom,
    BurstGso,
}

impl Way {
    const ALL: [Way; 5] = [
        Way::RecvFrom,
        Way::RecvMmsg,
        Way::Empty,
        Way::BurstRecvFrom,
        Way::BurstGso,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::RecvFrom => "recvfrom + sendto, 1 packet a leg",
            Way::RecvMmsg => "recvmmsg + sendmsg (quinn-udp), 1 a leg",
            Way::Empty => "recvfrom on an empty socket",
            Way::BurstRecvFrom => "burst: recvfrom + sendto each",
            Way::BurstGso => "burst: one recvmmsg + one GSO sendmsg",
        }
    }

    fn burst(self, burst: usize) -> usize {
        match self {
            Way::RecvFrom | Way::RecvMmsg => 1,
            Way::Empty => 0,
            Way::BurstRecvFrom | Way::BurstGso => burst,
        }
    }
}

/// What one measured stretch of rounds cost.
#[derive(Default, Clone, Copy)]
struct Tally {
    cpu: Duration,
    packets: u64,
    calls: u64,
}

fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(()); // `cargo test` runs benchmark targets too; this one is only for `cargo bench`.
    }
    let calls: usize = env_number("RELAY_FLOOR_CALLS", 1000)?;
    let rounds: usize = env_number("RELAY_FLOOR_ROUNDS", 300)?;
    let repeats: usize = env_number("RELAY_FLOOR_REPEATS", 5)?;
    let burst: usize = env_number("RELAY_FLOOR_BURST", 8)?;
    ensure!(
        calls > 0 && rounds > 0 && repeats > 0,
        "calls, rounds and repeats must be positive"
    );
    ensure!(
        (1..=BATCH_SIZE).contains(&burst),
        "RELAY_FLOOR_BURST must be 1 to {BATCH_SIZE}"
    );

    let calls = open_calls(calls)?;
    let gso = calls[0].leg_states[0].max_gso_segments();
    let started = Instant::now();
    let mut tallies = vec![Vec::new(); Way::ALL.len()];
    for _ in 0..repeats {
        for (n, way) in Way::ALL.into_iter().enumerate() {
            tallies[n].push(run(&calls, way, rounds, burst)?);
        }
    }

    println!();
    println!(
        "relay_floor  {} bridged calls ({} legs), {rounds} rounds x {repeats} repeats, burst {burst}, GSO segments {gso}, {:.1} s",
        calls.len(),
        2 * calls.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", "-".repeat(100));
    println!(
        "{:<42} {:>20} {:>20} {:>14}",
        "way", "CPU per packet", "(min-max of repeats)", "socket calls"
    );
    println!("{}", "-".repeat(100));
    for (n, way) in Way::ALL.into_iter().enumerate() {
        let per = |t: &Tally| {
            let count = if way == Way::Empty {
                t.calls
            } else {
                t.packets
            };
            t.cpu.as_secs_f64() * 1e6 / count.max(1) as f64
        };
        let mut figures: Vec<f64> = tallies[n].iter().map(per).collect();
        figures.sort_by(f64::total_cmp);
        let median = figures[figures.len() / 2];
        let unit = if way == Way::Empty {
            "µs a call"
        } else {
            "µs"
        };
        let total = tallies[n].iter().fold(Tally::default(), |a, t| Tally {
            cpu: a.cpu + t.cpu,
            packets: a.packets + t.packets,
            calls: a.calls + t.calls,
        });
        let calls_per_packet = if way == Way::Empty {
            "-".to_string()
        } else {
            format!(
                "{:.2} a packet",
                total.calls as f64 / total.packets.max(1) as f64
            )
        };
        println!(
            "{:<42} {:>10.2} {:<9} {:>9.2}-{:<9.2} {:>14}",
            way.name(),
            median,
            unit,
            figures[0],
            figures[figures.len() - 1],
            calls_per_packet
        );
    }
    println!("{}", "-".repeat(100));
    println!("every packet arrived once, at its call's other far end, in order");
    Ok(())
}

/// Binds the sockets of `n` calls on loopback.
fn open_calls(n: usize) -> Result<Vec<Call>> {
    let bind = || -> Result<(UdpSocket, SocketAddr)> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a loopback socket")?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        Ok((socket, addr))
    };
    (0..n)
        .map(|_| {
            let (leg0, leg0_addr) = bind()?;
            let (leg1, leg1_addr) = bind()?;
            let (far0, far0_addr) = bind()?;
            let (far1, far1_addr) = bind()?;
            let leg_states = [
                UdpSocketState::new(UdpSockRef::from(&leg0))?,
                UdpSocketState::new(UdpSockRef::from(&leg1))?,
            ];
            Ok(Call {
                legs: [leg0, leg1],
                leg_states,
                far: [far0, far1],
                far_addrs: [far0_addr, far1_addr],
                leg_addrs: [leg0_addr, leg1_addr],
            })
        })
        .collect()
}

/// Relays `rounds` rounds one way and returns what the relay's part cost.
fn run(calls: &[Call], way: Way, rounds: usize, burst: usize) -> Result<Tally> {
    let k = way.burst(burst);
    let mut tally = Tally::default();
    let mut buf = vec![0u8; PACKET * BATCH_SIZE];
    let mut seq: u32 = 0;
    for _ in 0..rounds {
        // The far ends send (not counted).
        for (c, call) in calls.iter().enumerate() {
            for side in 0..2 {
                for j in 0..k {
                    let packet = stamp(c, side, seq + j as u32);
                    call.far[side]
                        .send_to(&packet, call.leg_addrs[side])
                        .context("far end sending")?;
                }
            }
        }
        // The relay (counted).
        let before = thread_cpu()?;
        let socket_calls = relay(calls, way, k, &mut buf)?;
        tally.cpu += thread_cpu()? - before;
        tally.calls += socket_calls;
        tally.packets += (2 * calls.len() * k) as u64;
        // The far ends read everything back and check it (not counted).
        for (c, call) in calls.iter().enumerate() {
            for side in 0..2 {
                for j in 0..k {
                    let n = receive(&call.far[1 - side], &mut buf)?;
                    check(&buf[..n], c, side, seq + j as u32)?;
                }
            }
        }
        seq = seq.wrapping_add(k as u32);
    }
    for call in calls {
        for far in &call.far {
            if let Ok((n, _)) = far.recv_from(&mut buf) {
                bail!("{:?}: an extra packet of {n} bytes arrived", way);
            }
        }
    }
    Ok(tally)
}

/// The relay's part of a round: every leg's `k` packets out of its peer leg. Returns the
/// socket calls made.
fn relay(calls: &[Call], way: Way, k: usize, buf: &mut [u8]) -> Result<u64> {
    let mut socket_calls = 0u64;
    let mut meta = [RecvMeta::default(); BATCH_SIZE];
    for call in calls {
        for side in 0..2 {
            let (from, to) = (&call.legs[side], &call.legs[1 - side]);
            let peer = call.far_addrs[1 - side];
            match way {
                Way::Empty => {
                    socket_calls += 1;
                    match from.recv_from(buf) {
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Ok(_) => bail!("a packet where none was sent"),
                        Err(e) => return Err(e.into()),
                    }
                }
                Way::RecvFrom | Way::BurstRecvFrom => {
                    for _ in 0..k {
                        let n = receive(from, buf)?;
                        to.send_to(&buf[..n], peer)?;
                        socket_calls += 2;
                    }
                }
                Way::RecvMmsg | Way::BurstGso => {
                    let state = &call.leg_states[side];
                    let mut got = 0;
                    while got < k {
                        let mut slices: Vec<IoSliceMut<'_>> = buf[got * PACKET..]
                            .chunks_mut(PACKET)
                            .take(k - got)
                            .map(IoSliceMut::new)
                            .collect();
                        socket_calls += 1;
                        match state.recv(UdpSockRef::from(from), &mut slices, &mut meta) {
                            Ok(n) => {
                                for m in &meta[..n] {
                                    ensure!(m.len == PACKET, "a packet of {} bytes", m.len);
                                }
                                got += n;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                            Err(e) => return Err(e.into()),
                        }
                    }
                    let out = &call.leg_states[1 - side];
                    let send = |contents: &[u8], segment_size: Option<usize>| {
                        let transmit = Transmit {
                            destination: peer,
                            ecn: None,
                            contents,
                            segment_size,
                            src_ip: None,
                        };
                        out.try_send(UdpSockRef::from(to), &transmit)
                    };
                    if way == Way::BurstGso && k > 1 {
                        socket_calls += 1;
                        send(&buf[..k * PACKET], Some(PACKET))?;
                    } else {
                        for j in 0..k {
                            socket_calls += 1;
                            send(&buf[j * PACKET..(j + 1) * PACKET], None)?;
                        }
                    }
                }
            }
        }
    }
    Ok(socket_calls)
}

/// Reads one datagram, waiting (by yielding) if the kernel has not queued it yet.
fn receive(socket: &UdpSocket, buf: &mut [u8]) -> Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match socket.recv_from(buf) {
            Ok((n, _)) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::yield_now()
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => bail!("a packet was lost"),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A packet that names its call, its side and its sequence number, padded to [`PACKET`].
fn stamp(call: usize, side: usize, seq: u32) -> [u8; PACKET] {
    let mut packet = [0u8; PACKET];
    packet[0] = 0x80; // RTP version 2
    packet[4..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..12].copy_from_slice(&((call as u32) << 1 | side as u32).to_be_bytes());
    packet
}

/// Checks that a packet the far end of `side`'s peer received is the one `side` was sent.
fn check(packet: &[u8], call: usize, side: usize, seq: u32) -> Result<()> {
    ensure!(packet.len() == PACKET, "a packet of {} bytes", packet.len());
    let expected = stamp(call, side, seq);
    ensure!(
        packet[4..12] == expected[4..12],
        "call {call} side {side}: expected sequence {seq}, got another packet"
    );
    Ok(())
}
