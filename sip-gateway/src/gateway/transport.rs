//! SIP over UDP, TCP and TLS: the socket tasks feeding the engine, and sending its transmits.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::tls::TlsTarget;
use crate::sip::parse::{frame_length, MAX_MESSAGE_SIZE};
use crate::sip::{Transmit, Transport};

/// Something the network delivered to the engine.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One SIP message (a datagram, or a framed TCP or TLS message).
    Message {
        bytes: Vec<u8>,
        source: SocketAddr,
        transport: Transport,
    },
    /// A TCP or TLS connection with a peer is open, and this sends on it.
    Connected {
        peer: SocketAddr,
        writer: mpsc::UnboundedSender<Vec<u8>>,
    },
    /// A TCP or TLS connection failed or closed.
    Disconnected { peer: SocketAddr },
}

/// The engine's side of the SIP sockets.
#[derive(Debug)]
pub(crate) struct SipTransport {
    udp: Arc<UdpSocket>,
    /// Open TCP and TLS connections by peer; a trunk has one transport, so its address is enough.
    streams: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    tls: TlsLinks,
    inbound: mpsc::Sender<Inbound>,
}

/// Where our TLS connections to trunks start from, and how to open each.
///
/// Every TLS connection is bound to one local port, reserved at start, so
/// the Contact we send names an address the trunk already has a connection
/// from: a trunk that routes its requests (a BYE) by our Contact, as baresip
/// does, finds that connection rather than trying to open one to us.
#[derive(Debug, Default)]
pub(crate) struct TlsLinks {
    /// Holds the local port while the gateway runs; never listens.
    _reservation: Option<TcpSocket>,
    local: Option<SocketAddr>,
    targets: HashMap<SocketAddr, TlsTarget>,
}

impl TlsLinks {
    /// Reserves a local port on `ip` for connections to the trunks at `targets`' addresses.
    pub fn reserve(ip: IpAddr, targets: HashMap<SocketAddr, TlsTarget>) -> std::io::Result<Self> {
        if targets.is_empty() {
            return Ok(TlsLinks::default());
        }
        let socket = reusable_socket(ip)?;
        socket.bind(SocketAddr::new(ip, 0))?;
        let local = socket.local_addr()?;
        Ok(TlsLinks {
            _reservation: Some(socket),
            local: Some(local),
            targets,
        })
    }

    /// Returns the local port every TLS connection starts from, if any trunk uses TLS.
    pub fn local_port(&self) -> Option<u16> {
        self.local.map(|a| a.port())
    }
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
        tls: TlsLinks,
        inbound: mpsc::Sender<Inbound>,
        trunks: Vec<IpAddr>,
        phones: KnownPhones,
    ) -> SipTransport {
        let udp = Arc::new(udp);
        tokio::spawn(receive_udp(udp.clone(), inbound.clone(), trunks, phones));
        if let Some(listener) = tcp {
            tokio::spawn(accept_tcp(listener, inbound.clone()));
        }
        SipTransport {
            udp,
            streams: HashMap::new(),
            tls,
            inbound,
        }
    }

    /// Notes a TCP connection opened by either side.
    pub fn connected(&mut self, peer: SocketAddr, writer: mpsc::UnboundedSender<Vec<u8>>) {
        self.streams.insert(peer, writer);
    }

    /// Forgets a closed TCP or TLS connection.
    pub fn disconnected(&mut self, peer: SocketAddr) {
        self.streams.remove(&peer);
    }

    /// Sends one message, opening a TCP or TLS connection when there is none.
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
            Transport::Tcp | Transport::Tls => {
                let peer = transmit.destination;
                let writer = match self.streams.get(&peer) {
                    Some(writer) => writer,
                    None => {
                        let (writer, queue) = mpsc::unbounded_channel();
                        let inbound = self.inbound.clone();
                        if transmit.transport == Transport::Tcp {
                            tokio::spawn(connect_tcp(peer, queue, inbound));
                        } else if let Some(target) = self.tls.targets.get(&peer) {
                            let bind = self.tls.local;
                            tokio::spawn(connect_tls(peer, bind, target.clone(), queue, inbound));
                        } else {
                            // Only trunks are spoken to over TLS, and each has a target.
                            tracing::debug!(%peer, "no TLS settings for this peer; not sent");
                            return;
                        }
                        self.streams.entry(peer).or_insert(writer)
                    }
                };
                if writer.send(transmit.payload).is_err() {
                    self.streams.remove(&peer);
                }
            }
        }
    }
}

/// How many datagrams a second from addresses that are not trunks reach
/// the engine (which answers a request among them with 403); the rest are
/// dropped unread.
pub(crate) const STRANGERS_PER_SECOND: u32 = 50;

/// How many datagrams a second from registered desk phones reach the
/// engine: their refreshes, and their answers to our calls, kept apart
/// from strangers' budget so that a flood of junk cannot cut them off (nor
/// hundreds of phones crowd out each other's answers).
pub(crate) const PHONES_PER_SECOND: u32 = 2000;

/// The addresses desk phones registered from over UDP, each until its
/// binding lapses: their datagrams pass within [`PHONES_PER_SECOND`].
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownPhones(Arc<std::sync::Mutex<HashMap<SocketAddr, Instant>>>);

impl KnownPhones {
    /// Notes a binding to `address`, good until `until`.
    pub(crate) fn bound(&self, address: SocketAddr, until: Instant) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Lapsed entries go as new ones come, so the map stays as large as
        // the phones registered.
        if known.len() > 64 && known.len().is_power_of_two() {
            let now = Instant::now();
            known.retain(|_, t| *t > now);
        }
        known.insert(address, until);
    }

    /// Whether a phone registered from `address` and has not lapsed.
    fn contains(&self, address: SocketAddr, now: Instant) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&address)
            .is_some_and(|t| *t > now)
    }
}

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

async fn receive_udp(
    socket: Arc<UdpSocket>,
    inbound: mpsc::Sender<Inbound>,
    trunks: Vec<IpAddr>,
    phones: KnownPhones,
) {
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
    let mut strangers = Budget::new(STRANGERS_PER_SECOND);
    let mut phone_budget = Budget::new(PHONES_PER_SECOND);
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
        let now = Instant::now();
        let passes = trusted
            || if phones.contains(source, now) {
                phone_budget.take(now)
            } else {
                strangers.take(now)
            };
        if !passes {
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

/// Opens TLS to a trunk from the reserved local port (or, failing that, any
/// port), verifying its certificate; a failed handshake is logged with why.
async fn connect_tls(
    peer: SocketAddr,
    bind: Option<SocketAddr>,
    target: TlsTarget,
    queue: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
) {
    let trunk = &target.trunk;
    let stream = match connect_from(peer, bind).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(%trunk, %peer, %error, "could not connect to the trunk for TLS");
            let _ = inbound.send(Inbound::Disconnected { peer }).await;
            return;
        }
    };
    set_nodelay(&stream, peer);
    match target.connector.connect(target.name.clone(), stream).await {
        Ok(tls) => {
            tracing::debug!(%trunk, %peer, "TLS connection to the trunk up");
            serve_stream(tls, peer, Transport::Tls, queue, inbound).await;
        }
        Err(error) => {
            // Names the cause: an unknown CA, or a certificate for another name.
            tracing::warn!(%trunk, %peer, %error, "TLS handshake with the trunk failed");
            let _ = inbound.send(Inbound::Disconnected { peer }).await;
        }
    }
}

/// Connects from `bind` when it is free for this peer, else from any port.
async fn connect_from(peer: SocketAddr, bind: Option<SocketAddr>) -> std::io::Result<TcpStream> {
    if let Some(local) = bind.filter(|b| b.is_ipv4() == peer.is_ipv4()) {
        let bound = reusable_socket(local.ip()).and_then(|s| s.bind(local).map(|()| s));
        let attempt = match bound {
            Ok(socket) => socket.connect(peer).await,
            Err(error) => Err(error),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            // A connection just closed to the same peer leaves its pair of
            // addresses in TIME_WAIT for a minute; a new one needs another port.
            Err(error) => tracing::debug!(%error, %peer, "connecting from the SIP TLS port failed"),
        }
    }
    TcpStream::connect(peer).await
}

/// Returns a TCP socket that may share its local port with our other outgoing connections.
fn reusable_socket(ip: IpAddr) -> std::io::Result<TcpSocket> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

fn set_nodelay(stream: &TcpStream, peer: SocketAddr) {
    // Each write is a whole SIP message; a response sent right after another
    // (100 then 180, say) must not wait for the peer's delayed ACK.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, %peer, "could not set TCP_NODELAY");
    }
}

async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    queue: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
) {
    set_nodelay(&stream, peer);
    serve_stream(stream, peer, Transport::Tcp, queue, inbound).await;
}

/// Writes queued messages to a connection and frames what it reads, until either side stops.
async fn serve_stream<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async move {
        while let Some(bytes) = queue.recv().await {
            // TLS buffers records; flushing puts each message on the wire now.
            if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
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
                            transport,
                        };
                        if inbound_read.send(message).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        // A stream that cannot be framed cannot be resynchronised.
                        tracing::debug!(%error, %peer, "closing unframeable stream");
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
