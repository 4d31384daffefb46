//! A hand-driven desk phone over UDP or TCP, and an in-memory phone directory, for the
//! registrar's shell tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sip_gateway::gateway::{DirectoryError, Lookup, PhoneDirectory};
use sip_gateway::sip::digest::{Challenge, Credentials};
use sip_gateway::sip::digest_server::StoredCredentials;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// The realm the tests' credentials are for.
pub const REALM: &str = "phones.dialcrm.test";

const LIMIT: Duration = Duration::from_secs(5);

/// Desk phones' credentials in memory, counting what the gateway asks of it.
#[derive(Default)]
pub struct Directory {
    users: HashMap<String, StoredCredentials>,
    errors: HashMap<String, DirectoryError>,
    /// When set, each lookup waits for a permit, so lookups can be held under way.
    gate: Option<Arc<Semaphore>>,
    lookups: AtomicUsize,
    failures: AtomicUsize,
}

impl Directory {
    /// Returns a directory knowing `users` as (username, password).
    pub fn with(users: &[(&str, &str)]) -> Directory {
        Directory {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), StoredCredentials::from_password(u, REALM, p)))
                .collect(),
            ..Directory::default()
        }
    }

    /// Makes lookups of `username` fail with `error`.
    pub fn failing(mut self, username: &str, error: DirectoryError) -> Directory {
        self.errors.insert(username.to_string(), error);
        self
    }

    /// Makes every lookup wait for a permit of `gate`.
    pub fn gated(mut self, gate: Arc<Semaphore>) -> Directory {
        self.gate = Some(gate);
        self
    }

    /// Returns how many lookups the gateway started.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Returns how many failed authentications the gateway reported.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }
}

impl PhoneDirectory for Directory {
    fn credentials(&self, sip_username: &str, _source: IpAddr) -> Lookup {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = match self.errors.get(sip_username) {
            Some(error) => Err(*error),
            None => Ok(self.users.get(sip_username).cloned()),
        };
        let gate = self.gate.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
            }
            answer
        })
    }

    fn failed(&self, _sip_username: &str, _source: IpAddr) {
        self.failures.fetch_add(1, Ordering::SeqCst);
    }
}

/// A SIP response as text.
pub struct Response(pub String);

impl Response {
    /// Returns the status code.
    pub fn status(&self) -> u16 {
        self.0
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line")
    }

    /// Returns every value of a header, by its full name.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.0
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// Returns the names of the headers, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.0
            .lines()
            .skip(1)
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.split_once(':'))
            .map(|(n, _)| n.trim().to_ascii_lowercase())
            .collect()
    }
}

enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

/// A desk phone written by hand, to send exactly what a test needs.
pub struct RawPhone {
    pub user: String,
    pub password: String,
    pub call_id: String,
    pub cseq: u32,
    link: Link,
    gateway: SocketAddr,
    local: SocketAddr,
    branch: u32,
}

impl RawPhone {
    /// Opens a phone on a UDP socket of its own at `ip`.
    pub async fn udp(ip: &str, gateway: SocketAddr, user: &str, password: &str) -> RawPhone {
        let socket = UdpSocket::bind((ip, 0)).await.unwrap();
        let local = socket.local_addr().unwrap();
        RawPhone::new(Link::Udp(socket), local, gateway, user, password)
    }

    /// Opens a phone with a TCP connection to the gateway from `ip`.
    pub async fn tcp_from(ip: &str, gateway: SocketAddr, user: &str, password: &str) -> RawPhone {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(ip.parse().unwrap(), 0))
            .unwrap();
        let stream = socket.connect(gateway).await.unwrap();
        let local = stream.local_addr().unwrap();
        RawPhone::new(
            Link::Tcp(stream, Vec::new()),
            local,
            gateway,
            user,
            password,
        )
    }

    fn new(
        link: Link,
        local: SocketAddr,
        gateway: SocketAddr,
        user: &str,
        password: &str,
    ) -> RawPhone {
        RawPhone {
            user: user.into(),
            password: password.into(),
            call_id: format!("{}-{user}", local.port()),
            cseq: 0,
            link,
            gateway,
            local,
            branch: 0,
        }
    }

    /// Returns the address the phone sends from.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Returns the Request-URI the phone registers with.
    pub fn uri(&self) -> String {
        format!("sip:{REALM}")
    }

    /// Builds a REGISTER for `to_user` with a fresh branch and CSeq.
    pub fn register(&mut self, to_user: &str, expires: u32, auth: Option<&str>) -> String {
        self.cseq += 1;
        self.branch += 1;
        let transport = match self.link {
            Link::Udp(_) => "UDP",
            Link::Tcp(..) => "TCP",
        };
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};rport;branch=z9hG4bK{port}x{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{to_user}@{REALM}>;tag={port}\r\n\
             To: <sip:{to_user}@{REALM}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{to_user}@{local};transport={lower}>\r\n\
             Expires: {expires}\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            uri = self.uri(),
            local = self.local,
            port = self.local.port(),
            branch = self.branch,
            call_id = self.call_id,
            cseq = self.cseq,
            lower = transport.to_ascii_lowercase(),
        )
    }

    /// Answers the SHA-256 challenge of a 401 with the phone's password, nonce count `nc`.
    pub fn answer(&self, challenge: &Response, nc: u32) -> String {
        let value = challenge
            .headers("WWW-Authenticate")
            .into_iter()
            .find(|v| v.contains("algorithm=SHA-256"))
            .expect("a SHA-256 challenge");
        let credentials = Credentials {
            username: self.user.clone(),
            password: self.password.clone(),
        };
        Challenge::parse(&value).unwrap().respond(
            &credentials,
            "REGISTER",
            &self.uri(),
            b"",
            "0a4f113b",
            nc,
        )
    }

    /// Sends raw text to the gateway.
    pub async fn send(&mut self, text: &str) {
        match &mut self.link {
            Link::Udp(socket) => {
                socket.send_to(text.as_bytes(), self.gateway).await.unwrap();
            }
            Link::Tcp(stream, _) => stream.write_all(text.as_bytes()).await.unwrap(),
        }
    }

    /// Waits for the next response, failing the test after a few seconds.
    pub async fn recv(&mut self) -> Response {
        self.try_recv(LIMIT).await.expect("the gateway answers")
    }

    /// Waits up to `limit` for the next response.
    pub async fn try_recv(&mut self, limit: Duration) -> Option<Response> {
        match &mut self.link {
            Link::Udp(socket) => {
                let mut buf = vec![0u8; 65536];
                let (n, _) = tokio::time::timeout(limit, socket.recv_from(&mut buf))
                    .await
                    .ok()?
                    .unwrap();
                Some(Response(String::from_utf8_lossy(&buf[..n]).into_owned()))
            }
            Link::Tcp(stream, buffer) => loop {
                // The gateway's answers to REGISTER carry no body.
                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let message: Vec<u8> = buffer.drain(..end + 4).collect();
                    return Some(Response(String::from_utf8_lossy(&message).into_owned()));
                }
                let mut chunk = vec![0u8; 65536];
                let n = tokio::time::timeout(limit, stream.read(&mut chunk))
                    .await
                    .ok()?
                    .unwrap();
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            },
        }
    }

    /// Registers for `expires` seconds: REGISTER, 401, REGISTER with the answer; returns the
    /// final response.
    pub async fn register_fully(&mut self, expires: u32) -> Response {
        let user = self.user.clone();
        let first = self.register(&user, expires, None);
        self.send(&first).await;
        let challenge = self.recv().await;
        assert_eq!(challenge.status(), 401, "{}", challenge.0);
        let answer = self.answer(&challenge, 1);
        let second = self.register(&user, expires, Some(&answer));
        self.send(&second).await;
        self.recv().await
    }
}
