//! One-off checks of a trunk for `dialcrm doctor`: does its host resolve,
//! does it answer OPTIONS, and, where registration is configured, does it
//! accept our credentials. The REGISTER sent is a query (no Contact), so it
//! changes no binding the running service holds.

use std::net::SocketAddr;
use std::time::Duration;

use rsip::SipMessage;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::config::{TrunkConfig, TrunkTransport};
use super::{local_ip, resolve, GatewayConfig};
use crate::sip::digest::{Challenge, ChallengeKind, Credentials};
use crate::sip::message::{header_value, OutgoingRequest};
use crate::sip::outbound::{self, IdGenerator, Trunk};

/// What a probe of a trunk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkProbe {
    /// The address the host resolved to.
    pub address: SocketAddr,
    /// The status the trunk answered OPTIONS with.
    pub options: u16,
    /// The final status of a REGISTER query, where registration is on.
    pub register: Option<u16>,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The host does not resolve, or its port is malformed.
    #[error("{0}")]
    Resolve(String),
    /// TLS to the trunk could not be set up or was refused: a bad `ca_file`, an
    /// unknown CA, or a certificate for another name.
    #[error("TLS: {0}")]
    Tls(String),
    /// No answer came in time.
    #[error("no answer to {0} within {1:?}")]
    Silent(&'static str, Duration),
    /// The network refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Probes one trunk, waiting at most `limit` for each answer.
pub async fn probe_trunk(
    gateway: &GatewayConfig,
    config: &TrunkConfig,
    limit: Duration,
) -> Result<TrunkProbe, ProbeError> {
    config
        .check()
        .map_err(|e| ProbeError::Resolve(format!("trunk {:?}: {e}", config.name)))?;
    let trunk = resolve(config)
        .await
        .map_err(|e| ProbeError::Resolve(e.to_string()))?;
    let tls = match config.transport {
        TrunkTransport::Tls => Some(
            super::tls::target(config, &mut super::tls::SystemRoots::default())
                .map_err(ProbeError::Tls)?,
        ),
        _ => None,
    };
    let mut link = Link::open(gateway, &trunk, tls).await?;
    let mut ids = IdGenerator::from_entropy();
    let options = outbound::options(&trunk, link.local, &mut ids);
    let options = link
        .ask(&options, limit)
        .await?
        .ok_or(ProbeError::Silent("OPTIONS", limit))?;
    let register = match (&config.username, config.register) {
        (Some(username), true) => {
            Some(register_query(&mut link, &trunk, config, username, &mut ids, limit).await?)
        }
        _ => None,
    };
    Ok(TrunkProbe {
        address: trunk.address,
        options: options.status_code.code(),
        register,
    })
}

async fn register_query(
    link: &mut Link,
    trunk: &Trunk,
    config: &TrunkConfig,
    username: &str,
    ids: &mut IdGenerator,
    limit: Duration,
) -> Result<u16, ProbeError> {
    let call_id = ids.call_id();
    let query = |cseq: u32, ids: &mut IdGenerator, local| {
        let mut request = outbound::register(trunk, username, local, 0, &call_id, cseq, ids);
        // No Contact and no Expires: ask for the bindings, change none.
        request.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("Contact") && !n.eq_ignore_ascii_case("Expires")
        });
        request
    };
    let first = query(1, ids, link.local);
    let answer = link
        .ask(&first, limit)
        .await?
        .ok_or(ProbeError::Silent("REGISTER", limit))?;
    let status = answer.status_code.code();
    let (header, kind) = match status {
        401 => ("WWW-Authenticate", ChallengeKind::Www),
        407 => ("Proxy-Authenticate", ChallengeKind::Proxy),
        _ => return Ok(status),
    };
    let Some(Ok(challenge)) = header_value(&answer.headers, header).map(|v| Challenge::parse(&v))
    else {
        return Ok(status);
    };
    let credentials = Credentials {
        username: username.to_owned(),
        password: config.password.expose().to_string(),
    };
    let mut second = query(2, ids, link.local);
    let value = challenge.respond(
        &credentials,
        "REGISTER",
        &second.uri,
        &second.body,
        &ids.hex(8),
        1,
    );
    second.set_header(kind.answer_header(), value);
    let answer = link
        .ask(&second, limit)
        .await?
        .ok_or(ProbeError::Silent("REGISTER", limit))?;
    Ok(answer.status_code.code())
}

/// A socket to the trunk, over its transport.
struct Link {
    local: SocketAddr,
    to: SocketAddr,
    channel: Channel,
}

enum Channel {
    Udp(UdpSocket),
    /// TCP, or TLS over it.
    Stream(Box<dyn ByteStream>),
}

trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for S {}

impl Link {
    async fn open(
        gateway: &GatewayConfig,
        trunk: &Trunk,
        tls: Option<super::tls::TlsTarget>,
    ) -> Result<Link, ProbeError> {
        let unspecified: SocketAddr = if trunk.address.is_ipv4() {
            "0.0.0.0:0".parse().expect("a valid literal")
        } else {
            "[::]:0".parse().expect("a valid literal")
        };
        match trunk.transport {
            crate::sip::Transport::Tcp | crate::sip::Transport::Tls => {
                let stream = TcpStream::connect(trunk.address).await?;
                let local = stream.local_addr()?;
                let ip = local_ip(gateway, local.ip(), trunk.address);
                let channel: Box<dyn ByteStream> = match tls {
                    Some(target) => Box::new(
                        target
                            .connector
                            .connect(target.name.clone(), stream)
                            .await
                            .map_err(|e| ProbeError::Tls(e.to_string()))?,
                    ),
                    None => Box::new(stream),
                };
                Ok(Link {
                    local: SocketAddr::new(ip, local.port()),
                    to: trunk.address,
                    channel: Channel::Stream(channel),
                })
            }
            _ => {
                let socket = UdpSocket::bind(unspecified).await?;
                let port = socket.local_addr()?.port();
                let ip = local_ip(gateway, unspecified.ip(), trunk.address);
                Ok(Link {
                    local: SocketAddr::new(ip, port),
                    to: trunk.address,
                    channel: Channel::Udp(socket),
                })
            }
        }
    }

    /// Sends a request and returns its final response, retransmitting over
    /// UDP as RFC 3261's timer E would; `None` when nothing final came.
    async fn ask(
        &mut self,
        request: &OutgoingRequest,
        limit: Duration,
    ) -> Result<Option<rsip::Response>, ProbeError> {
        let call_id = request.header("Call-ID").unwrap_or_default().to_owned();
        let bytes = request.to_bytes();
        let deadline = tokio::time::Instant::now() + limit;
        let mut resend = Duration::from_millis(500);
        let mut next = tokio::time::Instant::now();
        let mut buf = vec![0u8; 65_535];
        let mut pending = Vec::new();
        let mut written = false;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if now >= next {
                match &mut self.channel {
                    Channel::Udp(s) => {
                        s.send_to(&bytes, self.to).await?;
                    }
                    // A reliable transport carries the request once.
                    Channel::Stream(s) if !written => {
                        s.write_all(&bytes).await?;
                        s.flush().await?;
                        written = true;
                    }
                    Channel::Stream(_) => {}
                }
                next = now + resend;
                resend = (resend * 2).min(Duration::from_secs(4));
            }
            let wait = next.min(deadline);
            let read = match &mut self.channel {
                Channel::Udp(s) => tokio::time::timeout_at(wait, s.recv_from(&mut buf))
                    .await
                    .ok()
                    .transpose()?
                    .map(|(n, _)| buf[..n].to_vec()),
                Channel::Stream(s) => match tokio::time::timeout_at(wait, s.read(&mut buf)).await {
                    Ok(Ok(0)) => return Ok(None),
                    Ok(Ok(n)) => {
                        pending.extend_from_slice(&buf[..n]);
                        take_message(&mut pending)
                    }
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => None,
                },
            };
            let Some(message) = read else {
                continue;
            };
            if let Ok(SipMessage::Response(response)) = SipMessage::try_from(message.as_slice()) {
                let same = header_value(&response.headers, "Call-ID").as_deref() == Some(&call_id);
                if same && response.status_code.code() >= 200 {
                    return Ok(Some(response));
                }
            }
        }
    }
}

/// Splits one whole message off the front of a TCP stream's bytes.
fn take_message(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = pending.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .or_else(|| l.strip_prefix("l:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(0);
    if pending.len() < end + length {
        return None;
    }
    Some(pending.drain(..end + length).collect())
}
