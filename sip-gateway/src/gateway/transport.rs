//! SIP over UDP and TCP: the socket tasks feeding the engine, and sending its transmits.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::sip::parse::{frame_length, MAX_MESSAGE_SIZE};
use crate::sip::{Transmit, Transport};

/// Something the network delivered to the engine.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One SIP message (a datagram, or a framed TCP message).
    Message {
        bytes: Vec<u8>,
        source: SocketAddr,
        transport: Transport,
    },
    /// A TCP connection with a peer is open, and this sends on it.
    Connected {
        peer: SocketAddr,
        writer: mpsc::UnboundedSender<Vec<u8>>,
    },
    /// A TCP connection failed or closed.
    Disconnected { peer: SocketAddr },
}

/// The engine's side of the SIP sockets.
#[derive(Debug)]
pub(crate) struct SipTransport {
    udp: Arc<UdpSocket>,
    tcp: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    inbound: mpsc::Sender<Inbound>,
}

impl SipTransport {
    /// Starts the receive tasks of the UDP socket and the optional TCP listener.
    ///
    /// Datagrams from `trunks` (the providers' addresses) always reach the
    /// engine; those from anyone else pass only within [`STRANGERS_PER_SECOND`]
    /// and while the engine keeps up, so a flood of junk can neither crowd
    /// out a provider's messages nor turn the gateway into an amplifier.
    pub fn start(
        udp: UdpSocket,
        tcp: Option<TcpListener>,
        inbound: mpsc::Sender<Inbound>,
        trunks: Vec<IpAddr>,
    ) -> SipTransport {
        let udp = Arc::new(udp);
        tokio::spawn(receive_udp(udp.clone(), inbound.clone(), trunks));
        if let Some(listener) = tcp {
            tokio::spawn(accept_tcp(listener, inbound.clone()));
        }
        SipTransport {
            udp,
            tcp: HashMap::new(),
            inbound,
        }
    }

    /// Notes a TCP connection opened by either side.
    pub fn connected(&mut self, peer: SocketAddr, writer: mpsc::UnboundedSender<Vec<u8>>) {
        self.tcp.insert(peer, writer);
    }

    /// Forgets a closed TCP connection.
    pub fn disconnected(&mut self, peer: SocketAddr) {
        self.tcp.remove(&peer);
    }

    /// Sends one message, opening a TCP connection when there is none.
    pub fn send(&mut self, transmit: Transmit) {
        match transmit.transport {
            Transport::Udp => {
                if let Err(error) = self
                    .udp
                    .try_send_to(&transmit.payload, transmit.destination)
                {
                    // A lost datagram is recovered by retransmission, as on the network.
                    tracing::debug!(%error, "sip send failed");
                }
            }
            Transport::Tcp => {
                let writer = self.tcp.entry(transmit.destination).or_insert_with(|| {
                    let (writer, queue) = mpsc::unbounded_channel();
                    tokio::spawn(connect_tcp(
                        transmit.destination,
                        queue,
                        self.inbound.clone(),
                    ));
                    writer
                });
                if writer.send(transmit.payload).is_err() {
                    self.tcp.remove(&transmit.destination);
                }
            }
        }
    }
}

/// How many datagrams a second from addresses that are not trunks reach
/// the engine (which answers a request among them with 403); the rest are
/// dropped unread.
pub(crate) const STRANGERS_PER_SECOND: u32 = 50;

/// A token bucket: `rate` a second, as many at once.
struct Budget {
    rate: u32,
    left: u32,
    refilled: Instant,
}

impl Budget {
    fn new(rate: u32) -> Self {
        Budget {
            rate,
            left: rate,
            refilled: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if now.duration_since(self.refilled) >= Duration::from_secs(1) {
            self.left = self.rate;
            self.refilled = now;
        }
        let granted = self.left > 0;
        self.left = self.left.saturating_sub(1);
        granted
    }
}

async fn receive_udp(socket: Arc<UdpSocket>, inbound: mpsc::Sender<Inbound>, trunks: Vec<IpAddr>) {
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
    let mut strangers = Budget::new(STRANGERS_PER_SECOND);
    let mut dropped: u64 = 0;
    loop {
        let (n, source) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors surface here on some systems; the socket stays usable.
                tracing::trace!(%error, "sip receive failed");
                continue;
            }
        };
        let trusted = trunks.contains(&source.ip());
        if !trusted && !strangers.take(Instant::now()) {
            dropped += 1;
            if dropped.is_power_of_two() {
                tracing::debug!(dropped, "SIP from strangers over budget, dropped");
            }
            continue;
        }
        let message = Inbound::Message {
            bytes: buf[..n].to_vec(),
            source,
            transport: Transport::Udp,
        };
        let sent = if trusted {
            inbound.send(message).await.map_err(|_| ())
        } else {
            // A busy engine is no reason to hold up the socket for a stranger.
            match inbound.try_send(message) {
                Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
                _ => Ok(()),
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

async fn accept_tcp(listener: TcpListener, inbound: mpsc::Sender<Inbound>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (writer, queue) = mpsc::unbounded_channel();
                let announce = Inbound::Connected { peer, writer };
                if inbound.send(announce).await.is_err() {
                    return;
                }
                tokio::spawn(serve_tcp(stream, peer, queue, inbound.clone()));
            }
            Err(error) => tracing::debug!(%error, "tcp accept failed"),
        }
    }
}

async fn connect_tcp(
    peer: SocketAddr,
    queue: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
) {
    match TcpStream::connect(peer).await {
        Ok(stream) => serve_tcp(stream, peer, queue, inbound).await,
        Err(error) => {
            tracing::debug!(%error, %peer, "tcp connect failed");
            let _ = inbound.send(Inbound::Disconnected { peer }).await;
        }
    }
}

async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
) {
    // Each write is a whole SIP message; a response sent right after another
    // (100 then 180, say) must not wait for the peer's delayed ACK.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, %peer, "could not set TCP_NODELAY");
    }
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        while let Some(bytes) = queue.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let inbound_read = inbound.clone();
    let read = async move {
        let mut buffer = Vec::new();
        let mut chunk = vec![0u8; 8192];
        loop {
            loop {
                // Keep-alive CRLFs between messages (RFC 5626) are skipped.
                let skip = buffer
                    .iter()
                    .take_while(|b| **b == b'\r' || **b == b'\n')
                    .count();
                buffer.drain(..skip);
                match frame_length(&buffer) {
                    Ok(Some(length)) => {
                        let bytes: Vec<u8> = buffer.drain(..length).collect();
                        let message = Inbound::Message {
                            bytes,
                            source: peer,
                            transport: Transport::Tcp,
                        };
                        if inbound_read.send(message).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        // A stream that cannot be framed cannot be resynchronised.
                        tracing::debug!(%error, %peer, "closing unframeable tcp stream");
                        return;
                    }
                }
            }
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::select! {
        _ = write => {}
        _ = read => {}
    }
    let _ = inbound.send(Inbound::Disconnected { peer }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_grants_its_rate_each_second() {
        let mut budget = Budget::new(3);
        let t0 = budget.refilled;
        let granted = (0..10).filter(|_| budget.take(t0)).count();
        assert_eq!(granted, 3);
        assert!(!budget.take(t0 + Duration::from_millis(999)));
        assert!(budget.take(t0 + Duration::from_secs(1)));
    }
}
