//! Hands out RTP sockets from the configured port range, each registered
//! with the runtime its leg will run on.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UdpSocket;
use tokio::runtime::Handle;

use super::media_threads::MediaThreads;

/// Binds RTP sockets on even ports of a range, round robin, skipping ports in use.
#[derive(Debug)]
pub(crate) struct PortPool {
    ip: IpAddr,
    range: RangeInclusive<u16>,
    cursor: AtomicU32,
    media: MediaThreads,
}

/// A leg's bound socket and the runtime whose poller it is registered with,
/// where the leg's task must run.
#[derive(Debug)]
pub(crate) struct MediaSocket {
    pub socket: UdpSocket,
    pub runtime: Handle,
}

impl MediaSocket {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl PortPool {
    /// Creates a pool on `ip`; a range of `0..=0` lets the system pick any
    /// port. Legs go to `media`'s threads in turn.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>, media: MediaThreads) -> Self {
        PortPool {
            ip,
            range,
            cursor: AtomicU32::new(0),
            media,
        }
    }

    /// Binds a socket on the next free even port, for the next media runtime.
    pub fn bind(&self) -> std::io::Result<MediaSocket> {
        let socket = self.bind_std()?;
        socket.set_nonblocking(true)?;
        let runtime = self.media.next();
        let socket = {
            let _inside = runtime.enter();
            UdpSocket::from_std(socket)?
        };
        Ok(MediaSocket { socket, runtime })
    }

    fn bind_std(&self) -> std::io::Result<std::net::UdpSocket> {
        if *self.range.end() == 0 {
            return std::net::UdpSocket::bind(SocketAddr::new(self.ip, 0));
        }
        let first = u32::from(*self.range.start() + (*self.range.start() & 1));
        let slots = (u32::from(*self.range.end()).saturating_sub(first)) / 2 + 1;
        let mut last_error = None;
        for _ in 0..slots {
            let slot = self.cursor.fetch_add(1, Ordering::Relaxed) % slots;
            let Ok(port) = u16::try_from(first + slot * 2) else {
                continue;
            };
            match std::net::UdpSocket::bind(SocketAddr::new(self.ip, port)) {
                Ok(socket) => return Ok(socket),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "empty RTP port range")
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_even_ports_inside_the_range() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let probe = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let base = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let pool = PortPool::new(ip, base..=base + 5, MediaThreads::start(0).unwrap());
        let mut held = Vec::new();
        while let Ok(socket) = pool.bind() {
            let port = socket.local_addr().unwrap().port();
            assert!(port % 2 == 0 && (base..=base + 5).contains(&port));
            held.push(socket);
        }
        assert!(held.len() <= 3);
    }

    #[tokio::test]
    async fn a_socket_is_read_on_the_media_thread_it_was_given_to() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 0..=0, MediaThreads::start(2).unwrap());
        let first = pool.bind().unwrap();
        let second = pool.bind().unwrap();
        let to = second.local_addr().unwrap();
        let reading = second.runtime.spawn(async move {
            let mut buffer = [0u8; 16];
            let (read, _) = second.socket.recv_from(&mut buffer).await.unwrap();
            let thread = std::thread::current().name().unwrap_or_default().to_owned();
            (buffer[..read].to_vec(), thread)
        });
        first.socket.send_to(b"rtp", to).await.unwrap();
        let (read, thread) = reading.await.unwrap();
        assert_eq!(read, b"rtp");
        assert_eq!(thread, "media-1");
    }
}
