//! Hands out RTP sockets from the configured port range.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UdpSocket;

/// Binds RTP sockets on even ports of a range, round robin, skipping ports in use.
#[derive(Debug)]
pub(crate) struct PortPool {
    ip: IpAddr,
    range: RangeInclusive<u16>,
    cursor: AtomicU32,
}

impl PortPool {
    /// Creates a pool on `ip`; a range of `0..=0` lets the system pick any port.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Self {
        PortPool {
            ip,
            range,
            cursor: AtomicU32::new(0),
        }
    }

    /// Binds a socket on the next free even port.
    pub async fn bind(&self) -> std::io::Result<UdpSocket> {
        if *self.range.end() == 0 {
            return UdpSocket::bind(SocketAddr::new(self.ip, 0)).await;
        }
        let first = u32::from(*self.range.start() + (*self.range.start() & 1));
        let slots = (u32::from(*self.range.end()).saturating_sub(first)) / 2 + 1;
        let mut last_error = None;
        for _ in 0..slots {
            let slot = self.cursor.fetch_add(1, Ordering::Relaxed) % slots;
            let Ok(port) = u16::try_from(first + slot * 2) else {
                continue;
            };
            match UdpSocket::bind(SocketAddr::new(self.ip, port)).await {
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
        let pool = PortPool::new(ip, base..=base + 5);
        let mut held = Vec::new();
        while let Ok(socket) = pool.bind().await {
            let port = socket.local_addr().unwrap().port();
            assert!(port % 2 == 0 && (base..=base + 5).contains(&port));
            held.push(socket);
        }
        assert!(held.len() <= 3);
    }
}
