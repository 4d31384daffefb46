//! Gateway and trunk settings, read from the `[gateway]` and `[[trunks]]` tables of the TOML config.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::sip::transaction::TimerConfig;
use crate::sip::Transport;

/// Settings of the gateway process as a whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the SIP UDP socket binds to (port 0 picks a free one).
    pub sip_udp: SocketAddr,
    /// Address the SIP TCP listener binds to; `None` disables TCP.
    pub sip_tcp: Option<SocketAddr>,
    /// Address trunks should reach us at, when it differs from the bound one (NAT).
    pub advertised_ip: Option<std::net::IpAddr>,
    /// First RTP port of the range legs take sockets from.
    pub rtp_port_min: u16,
    /// Last RTP port of the range.
    pub rtp_port_max: u16,
    /// SIP timer T1 (round-trip estimate).
    #[serde(deserialize_with = "duration")]
    pub t1: Duration,
    /// SIP timer T2 (longest retransmission interval).
    #[serde(deserialize_with = "duration")]
    pub t2: Duration,
    /// How long a call may go without RTP before it is ended.
    #[serde(deserialize_with = "duration")]
    pub media_timeout: Duration,
    /// Threads of their own that call and agent legs are spread over, each
    /// running its legs' media alone; 0 runs legs on the gateway's runtime.
    pub media_threads: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            sip_udp: "0.0.0.0:5060".parse().expect("a valid literal"),
            sip_tcp: None,
            advertised_ip: None,
            rtp_port_min: 20000,
            rtp_port_max: 30000,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            media_timeout: Duration::from_secs(30),
            media_threads: 0,
        }
    }
}

impl GatewayConfig {
    /// Returns a configuration for tests and the demo: loopback, any free ports.
    pub fn loopback() -> Self {
        GatewayConfig {
            sip_udp: "127.0.0.1:0".parse().expect("a valid literal"),
            sip_tcp: Some("127.0.0.1:0".parse().expect("a valid literal")),
            rtp_port_min: 0,
            rtp_port_max: 0,
            ..GatewayConfig::default()
        }
    }

    /// Returns the SIP timer values for the transaction layer.
    pub fn timers(&self) -> TimerConfig {
        TimerConfig {
            t1: self.t1,
            t2: self.t2,
            ..TimerConfig::default()
        }
    }

    /// Returns the RTP port range; `0..=0` means any free port.
    pub fn rtp_ports(&self) -> RangeInclusive<u16> {
        self.rtp_port_min..=self.rtp_port_max
    }
}

/// Transport a trunk is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrunkTransport {
    /// SIP over UDP.
    #[default]
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS (port 5061 by default); the trunk's certificate is verified.
    Tls,
}

impl TrunkTransport {
    /// Returns the port a trunk listens on when none is written: 5061 for TLS, else 5060.
    pub fn default_port(self) -> u16 {
        match self {
            TrunkTransport::Udp | TrunkTransport::Tcp => 5060,
            TrunkTransport::Tls => 5061,
        }
    }
}

impl From<TrunkTransport> for Transport {
    fn from(value: TrunkTransport) -> Self {
        match value {
            TrunkTransport::Udp => Transport::Udp,
            TrunkTransport::Tcp => Transport::Tcp,
            TrunkTransport::Tls => Transport::Tls,
        }
    }
}

/// A password or other secret; `Debug` never prints it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Returns the secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One SIP trunk of a VoIP provider; the list order is the failover order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Name the dialler and the CLI refer to the trunk by.
    pub name: String,
    /// Host name or IP address of the trunk.
    pub host: String,
    /// SIP port of the trunk; 5060, or 5061 over TLS, when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport to the trunk.
    #[serde(default)]
    pub transport: TrunkTransport,
    /// PEM file of the CA certificates a TLS trunk's certificate must chain
    /// to; the system's roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name the TLS trunk's certificate must carry, also sent as SNI; the
    /// host when absent (set it when `host` is an IP address).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// Whether the trunk's media is SRTP with SDES keys (RFC 4568, RFC
    /// 3711): AES_CM_128_HMAC_SHA1_80, and no call falls back to clear RTP.
    /// Needs `transport = "tls"`, since the keys travel in the signalling.
    #[serde(default)]
    pub srtp: bool,
    /// Digest username, if the trunk challenges.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password.
    #[serde(default)]
    pub password: Secret,
    /// Domain of our From URI; the trunk host when absent.
    #[serde(default)]
    pub from_domain: Option<String>,
    /// Most calls up at once through this trunk.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Most new calls per second through this trunk.
    #[serde(default = "default_max_cps")]
    pub max_cps: u32,
    /// Interval of OPTIONS keepalives; none when absent.
    #[serde(default, deserialize_with = "optional_duration")]
    pub options_interval: Option<Duration>,
    /// Whether to REGISTER with the trunk at start and keep the binding fresh.
    #[serde(default)]
    pub register: bool,
    /// Expiry asked for in REGISTER.
    #[serde(default = "default_register_expires", deserialize_with = "duration")]
    pub register_expires: Duration,
    /// OPTIONS pings or registrations failed in a row that mark the trunk
    /// down: it takes no new call until it is up again.
    #[serde(default = "default_down_after")]
    pub down_after: u32,
    /// Answers in a row that mark a down trunk up again.
    #[serde(default = "default_up_after")]
    pub up_after: u32,
    /// Whether the trunk leads to another node of the service rather than
    /// to a provider: inbound calls are handed over through it, and no
    /// outbound call fails over to it.
    #[serde(default)]
    pub peer: bool,
}

impl TrunkConfig {
    /// Returns a trunk at `address` with defaults for everything else.
    pub fn new(name: impl Into<String>, address: SocketAddr) -> Self {
        TrunkConfig {
            name: name.into(),
            host: address.ip().to_string(),
            port: Some(address.port()),
            transport: TrunkTransport::Udp,
            ca_file: None,
            tls_name: None,
            srtp: false,
            username: None,
            password: Secret::default(),
            from_domain: None,
            max_concurrent: default_max_concurrent(),
            max_cps: default_max_cps(),
            options_interval: None,
            register: false,
            register_expires: default_register_expires(),
            down_after: default_down_after(),
            up_after: default_up_after(),
            peer: false,
        }
    }

    /// Refuses settings that contradict each other, with a message naming the fix.
    pub fn check(&self) -> Result<(), String> {
        let tls = self.transport == TrunkTransport::Tls;
        if self.srtp && !tls {
            return Err(
                "srtp = true needs transport = \"tls\": the SDES keys travel in the SIP \
                 messages and would cross the network in clear"
                    .into(),
            );
        }
        if !tls && (self.ca_file.is_some() || self.tls_name.is_some()) {
            return Err("ca_file and tls_name apply only with transport = \"tls\"".into());
        }
        if let Some(name) = &self.tls_name {
            rustls::pki_types::ServerName::try_from(name.as_str())
                .map_err(|_| format!("tls_name {name:?} is not a host name or IP address"))?;
        }
        self.host_and_port().map(|_| ())
    }

    /// Returns the name the trunk's TLS certificate must carry: `tls_name`, else the host.
    pub fn tls_name(&self) -> Result<String, String> {
        match &self.tls_name {
            Some(name) => Ok(name.clone()),
            None => self.host_and_port().map(|(host, _)| host),
        }
    }

    /// Returns the host and port to reach, accepting the port written in
    /// `host` as well (`sip.example.net:5070`, `[2001:db8::1]:5070`), as
    /// operators copy it from a provider's sheet.
    pub fn host_and_port(&self) -> Result<(String, u16), String> {
        let host = self.host.trim();
        let (name, written) = if let Some(rest) = host.strip_prefix('[') {
            let (v6, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("host {host:?} opens a [ but does not close it"))?;
            match after {
                "" => (v6, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (v6, Some(port)),
                    None => return Err(format!("host {host:?}: expected :PORT after ]")),
                },
            }
        } else {
            match host.split_once(':') {
                // Two or more colons: a bare IPv6 address, no port.
                Some((_, rest)) if rest.contains(':') => (host, None),
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            }
        };
        if name.is_empty() {
            return Err("the host is empty".into());
        }
        let port = match written {
            None => self.port.unwrap_or(self.transport.default_port()),
            Some(text) => {
                let port: u16 = text.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    format!("host {host:?} has no valid port after the colon; set `port = N`")
                })?;
                // The default written out is taken as no port at all, as before TLS.
                let default = self.transport.default_port();
                if let Some(other) = self.port.filter(|p| *p != port && *p != default) {
                    return Err(format!(
                        "host {host:?} says port {port} but `port` says {other}"
                    ));
                }
                port
            }
        };
        Ok((name.to_owned(), port))
    }
}

fn default_max_concurrent() -> usize {
    100
}

fn default_max_cps() -> u32 {
    10
}

fn default_register_expires() -> Duration {
    Duration::from_secs(600)
}

fn default_down_after() -> u32 {
    3
}

fn default_up_after() -> u32 {
    2
}

/// Parses `"500ms"`, `"30s"`, `"5m"` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(u64),
    Text(String),
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    match RawDuration::deserialize(deserializer)? {
        RawDuration::Seconds(s) => Ok(Duration::from_secs(s)),
        RawDuration::Text(t) => parse_duration(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {t:?}"))),
    }
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

#[cfg(test)]
mod host_tests {
    use super::*;

    fn trunk(host: &str, port: u16) -> TrunkConfig {
        TrunkConfig {
            host: host.into(),
            port: Some(port),
            ..TrunkConfig::new("main", "127.0.0.1:5060".parse().expect("addr"))
        }
    }

    #[test]
    fn a_port_written_in_the_host_is_taken() {
        let ok = |host: &str, port, want: (&str, u16)| {
            assert_eq!(
                trunk(host, port).host_and_port(),
                Ok((want.0.to_owned(), want.1)),
                "{host}"
            );
        };
        ok("sip.example.net", 5060, ("sip.example.net", 5060));
        ok("sip.example.net", 5080, ("sip.example.net", 5080));
        ok("sip.example.net:5070", 5060, ("sip.example.net", 5070));
        ok("sip.example.net:5070", 5070, ("sip.example.net", 5070));
        ok("[2001:db8::1]:5070", 5060, ("2001:db8::1", 5070));
        ok("[2001:db8::1]", 5062, ("2001:db8::1", 5062));
        ok("2001:db8::1", 5062, ("2001:db8::1", 5062));
        ok(" 192.0.2.7:5061 ", 5060, ("192.0.2.7", 5061));
    }

    #[test]
    fn a_bad_or_conflicting_port_is_named() {
        for (host, port, says) in [
            ("sip.example.net:x", 5060, "no valid port"),
            ("sip.example.net:0", 5060, "no valid port"),
            ("sip.example.net:5070", 5080, "`port` says 5080"),
            ("[2001:db8::1:5070", 5060, "does not close"),
            ("[2001:db8::1]5070", 5060, "expected :PORT"),
            (":5070", 5060, "empty"),
        ] {
            let e = trunk(host, port).host_and_port().expect_err(host);
            assert!(e.contains(says), "{host}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        gateway: GatewayConfig,
        trunks: Vec<TrunkConfig>,
    }

    #[test]
    fn reads_trunks_from_toml() {
        let file: File = toml::from_str(
            r#"
            [gateway]
            sip_udp = "0.0.0.0:5070"
            t1 = "250ms"
            media_timeout = 20

            [[trunks]]
            name = "main"
            host = "sip.example.net"
            transport = "tcp"
            username = "acct"
            password = "hunter2"
            max_cps = 5
            options_interval = "30s"
            register = true
            "#,
        )
        .unwrap();
        assert_eq!(file.gateway.t1, Duration::from_millis(250));
        assert_eq!(file.gateway.media_timeout, Duration::from_secs(20));
        let trunk = &file.trunks[0];
        assert_eq!(trunk.port, None);
        assert_eq!(trunk.host_and_port(), Ok(("sip.example.net".into(), 5060)));
        assert_eq!(trunk.transport, TrunkTransport::Tcp);
        assert_eq!(trunk.options_interval, Some(Duration::from_secs(30)));
        assert_eq!(trunk.password.expose(), "hunter2");
        assert!(!format!("{trunk:?}").contains("hunter2"));
    }

    #[test]
    fn a_tls_trunk_defaults_to_5061_and_its_host_name() {
        let file: File = toml::from_str(
            r#"
            [gateway]
            [[trunks]]
            name = "secure"
            host = "sip.example.net"
            transport = "tls"
            srtp = true

            [[trunks]]
            name = "by-address"
            host = "192.0.2.7"
            transport = "tls"
            tls_name = "sbc.example.net"
            ca_file = "/etc/dialcrm/provider-ca.pem"
            "#,
        )
        .unwrap();
        let secure = &file.trunks[0];
        assert_eq!(secure.transport, TrunkTransport::Tls);
        assert_eq!(secure.host_and_port(), Ok(("sip.example.net".into(), 5061)));
        assert_eq!(secure.tls_name(), Ok("sip.example.net".into()));
        assert!(secure.srtp);
        assert_eq!(secure.check(), Ok(()));
        let by_address = &file.trunks[1];
        assert_eq!(by_address.tls_name(), Ok("sbc.example.net".into()));
        assert_eq!(
            by_address.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/dialcrm/provider-ca.pem"))
        );
        assert!(!by_address.srtp);
        assert_eq!(by_address.check(), Ok(()));
    }

    #[test]
    fn srtp_keys_never_travel_over_clear_signalling() {
        for transport in [TrunkTransport::Udp, TrunkTransport::Tcp] {
            let trunk = TrunkConfig {
                transport,
                srtp: true,
                ..TrunkConfig::new("main", "192.0.2.7:5060".parse().unwrap())
            };
            let error = trunk.check().expect_err("SDES over clear SIP");
            assert!(error.contains("transport = \"tls\""), "{error}");
            assert!(error.contains("in clear"), "{error}");
        }
        let stray = TrunkConfig {
            tls_name: Some("sbc.example.net".into()),
            ..TrunkConfig::new("main", "192.0.2.7:5060".parse().unwrap())
        };
        assert!(stray.check().unwrap_err().contains("only with"));
        let bad_name = TrunkConfig {
            transport: TrunkTransport::Tls,
            tls_name: Some("not a name".into()),
            ..TrunkConfig::new("main", "192.0.2.7:5061".parse().unwrap())
        };
        assert!(bad_name.check().unwrap_err().contains("not a host name"));
    }

    #[test]
    fn durations_parse_units() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
    }
}
