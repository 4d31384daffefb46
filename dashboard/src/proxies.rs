//! Who a request came from when the service sits behind a reverse proxy:
//! the peer's address, unless the peer is a proxy the operator trusts, in
//! which case the address it forwarded (`X-Forwarded-For`).
//!
//! The header is read from the right, as each proxy appends the address it
//! received from: the first address that is not a trusted proxy is the
//! client. Addresses to its left were written by the client itself and are
//! never believed.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses addresses and networks (`10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| parse_network(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Returns whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|&(net, bits)| within(ip, net, bits))
    }

    /// Returns the client's address for a request `peer` sent with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| IpAddr::from_str(a.trim()).ok())
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.contains(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }
}

fn parse_network(entry: &str) -> Result<(IpAddr, u8), String> {
    let entry = entry.trim();
    let (address, bits) = match entry.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (entry, None),
    };
    let ip = IpAddr::from_str(address)
        .map_err(|_| format!("trusted_proxies: {entry:?} is not an address or network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("trusted_proxies: {entry:?} has a bad prefix length"))?,
    };
    Ok((ip, bits))
}

fn within(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        (IpAddr::V6(a), IpAddr::V4(n)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
    };
    let shift = width - u32::from(bits.min(width as u8));
    if shift >= 128 {
        return true;
    }
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn a_trusted_proxys_forwarded_client_is_believed() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).expect("parses");
        let h = headers(&["203.0.113.7"]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        assert_eq!(proxies.client(ip("::1"), &h), ip("203.0.113.7"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("parses");
        let h = headers(&["198.51.100.1"]);
        assert_eq!(proxies.client(ip("192.0.2.9"), &h), ip("192.0.2.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn what_the_client_wrote_left_of_the_proxies_is_not_believed() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("parses");
        // The client forged 1.1.1.1; the edge proxy appended the real address,
        // and an inner proxy appended the edge's.
        let h = headers(&["1.1.1.1, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(proxies.client(ip("10.0.0.6"), &h), ip("203.0.113.7"));
    }

    #[test]
    fn no_usable_header_leaves_the_peer() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).expect("parses");
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&[])),
            ip("127.0.0.1")
        );
        let junk = headers(&["not an address"]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &junk), ip("127.0.0.1"));
    }

    #[test]
    fn networks_match_by_prefix_and_bad_entries_are_named() {
        let p =
            TrustedProxies::parse(&["192.168.0.0/16", "fd00::/8", "0.0.0.0/0"]).expect("parses");
        assert!(p.contains(ip("192.168.44.1")));
        assert!(p.contains(ip("fd12::1")));
        assert!(p.contains(ip("8.8.8.8")), "/0 is everything");
        let only = TrustedProxies::parse(&["192.168.0.0/16"]).expect("parses");
        assert!(!only.contains(ip("192.169.0.1")));
        assert!(
            only.contains(ip("::ffff:192.168.1.1")),
            "a mapped IPv4 address"
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            let e = TrustedProxies::parse(&[bad]).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }
}
