//! Debian's baresip (1.0) as an agent's desk phone, registering with the gateway over UDP
//! and, when asked, answering the gateway's calls.
//!
//! An answering baresip sends a tone from a WAV (its `aufile` source) and dumps what it
//! hears to `snd/` (its `sndfile` filter: baresip 1.0's `aufile` is a source only, with no
//! player that could write what it hears to a WAV). It takes commands and reports its calls'
//! progress over `ctrl_tcp`, as netstring-framed JSON.
#![allow(dead_code)]

#[path = "../baresip/audio.rs"]
mod audio;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use sip_gateway::gateway::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::phone::REALM;

/// How long baresip has to start listening, answer a command or report an event.
const LIMIT: Duration = Duration::from_secs(10);

/// What a desk baresip does besides registering.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeskOptions {
    /// The loopback address it takes SIP at; 127.0.0.1 when `None`.
    pub ip: Option<Ipv4Addr>,
    /// Answers every call at once, sending a sine of this frequency (Hz), when set.
    pub answer_with: Option<f64>,
}

/// A running baresip with one account; killed when dropped.
pub struct DeskBaresip {
    child: Child,
    /// Where it sends and receives SIP.
    pub sip: SocketAddr,
    dir: PathBuf,
    /// Its ctrl_tcp connection, when it answers calls.
    control: Option<Control>,
}

impl DeskBaresip {
    /// Starts baresip registering as `user` with `password` through the gateway, in `dir`;
    /// `None` when baresip is missing outside CI.
    pub async fn start(dir: &Path, gw: &Gateway, credentials: (&str, &str)) -> Option<DeskBaresip> {
        DeskBaresip::start_with(dir, gw, credentials, DeskOptions::default()).await
    }

    /// Starts baresip as [`DeskBaresip::start`] does, doing what `options` say too.
    pub async fn start_with(
        dir: &Path,
        gw: &Gateway,
        (user, password): (&str, &str),
        options: DeskOptions,
    ) -> Option<DeskBaresip> {
        let installed = Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok();
        if !installed {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "baresip is not installed and CI=true");
            eprintln!(
                "!!! SKIPPING baresip desk phone test: baresip is not installed \
                 (apt-get install baresip) !!!"
            );
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let ip = options.ip.unwrap_or(Ipv4Addr::LOCALHOST);
        let sip = SocketAddr::from((ip, free_port(ip)));
        // Media at the SIP address too, whatever other interfaces the machine has (baresip
        // 1.0 finds no address on `lo` by name, so the address names it).
        let mut config = format!(
            "poll_method epoll\n\
             sip_listen {sip}\n\
             net_interface {ip}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module_app account.so\n"
        );
        let control = loop {
            let port = free_port(ip);
            if port != sip.port() {
                break SocketAddr::from((ip, port));
            }
        };
        let mut answer = "";
        if let Some(tone) = options.answer_with {
            config.push_str(&audio::tone_out_dump_in(dir, tone));
            // menu has the commands ctrl_tcp runs.
            config.push_str(&format!(
                "module_app menu.so\n\
                 module_app ctrl_tcp.so\n\
                 ctrl_tcp_listen {control}\n"
            ));
            answer = ";answermode=auto";
        }
        std::fs::write(dir.join("config"), config).unwrap();
        // The AOR names the realm's domain; requests go to the gateway as outbound proxy.
        let account = format!(
            "<sip:{user}@{REALM}>;auth_pass=\"{password}\";\
             outbound=\"sip:{};transport=udp\";regint=600{answer}\n",
            gw.sip_udp_addr()
        );
        std::fs::write(dir.join("accounts"), account).unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip starts");
        let mut baresip = DeskBaresip {
            child,
            sip,
            dir: dir.to_path_buf(),
            control: None,
        };
        if options.answer_with.is_some() {
            let connected = tokio::select! {
                connected = Control::connect(control) => connected,
                status = baresip.child.wait() => panic!(
                    "baresip exited ({status:?}); its log:\n{}",
                    baresip.log()
                ),
            };
            baresip.control =
                Some(connected.unwrap_or_else(|| {
                    panic!("baresip takes commands; its log:\n{}", baresip.log())
                }));
        }
        Some(baresip)
    }

    /// Asks baresip to quit, as SIGTERM does: it unregisters first.
    pub async fn quit(&self) {
        let pid = self.child.id().expect("baresip is running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Runs one of baresip's menu commands (`sndcode`, `hangup`…) with `params` and asserts
    /// it succeeded; only for a baresip that answers calls.
    pub async fn command(&mut self, command: &str, params: &str) {
        let request = json!({ "command": command, "params": params, "token": command });
        let reply = match self.control.as_mut() {
            Some(control) => control.ask(&request).await,
            None => panic!("baresip takes no commands unless it answers calls"),
        };
        let ok = reply.as_ref().and_then(|r| r["ok"].as_bool());
        assert_eq!(
            ok,
            Some(true),
            "baresip runs {command}: {reply:?}; its log:\n{}",
            self.log()
        );
    }

    /// Waits for baresip to report a call event of type `kind` (`CALL_ESTABLISHED`,
    /// `CALL_CLOSED`…) and returns it; only for a baresip that answers calls.
    pub async fn call_event(&mut self, kind: &str) -> Value {
        let event = match self.control.as_mut() {
            Some(control) => control.event(kind).await,
            None => panic!("baresip reports no events unless it answers calls"),
        };
        event.unwrap_or_else(|| panic!("baresip reports {kind}; its log:\n{}", self.log()))
    }

    /// Returns what baresip heard in its call, once the call is over; only for a baresip
    /// that answers calls.
    pub async fn heard(&self) -> Vec<i16> {
        audio::heard(&self.dir.join("snd"))
            .await
            .unwrap_or_else(|| panic!("baresip wrote no decoded audio; its log:\n{}", self.log()))
    }

    /// Returns what baresip logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }
}

/// A connection to baresip's ctrl_tcp: JSON messages framed as netstrings both ways.
struct Control {
    stream: TcpStream,
    /// Bytes read and not yet framed.
    buffer: Vec<u8>,
    /// Events that came while waiting for something else.
    events: VecDeque<Value>,
}

impl Control {
    /// Connects to ctrl_tcp at `addr` once baresip listens; `None` if it does not in time.
    async fn connect(addr: SocketAddr) -> Option<Control> {
        let connect = async {
            loop {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return stream,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        };
        let stream = tokio::time::timeout(LIMIT, connect).await.ok()?;
        Some(Control {
            stream,
            buffer: Vec::new(),
            events: VecDeque::new(),
        })
    }

    /// Sends a command and returns the response carrying its token, keeping events that
    /// come first; `None` if none comes in time.
    async fn ask(&mut self, request: &Value) -> Option<Value> {
        let body = request.to_string();
        let frame = format!("{}:{body},", body.len());
        self.stream.write_all(frame.as_bytes()).await.ok()?;
        let token = &request["token"];
        let wait = async {
            loop {
                let message = self.next().await?;
                if message["response"] == json!(true) && message["token"] == *token {
                    return Some(message);
                }
                if message["event"] == json!(true) {
                    self.events.push_back(message);
                }
            }
        };
        tokio::time::timeout(LIMIT, wait).await.ok().flatten()
    }

    /// Returns the first event of type `kind`, dropping the events before it; `None` if
    /// none comes in time.
    async fn event(&mut self, kind: &str) -> Option<Value> {
        while let Some(event) = self.events.pop_front() {
            if event["type"] == kind {
                return Some(event);
            }
        }
        let wait = async {
            loop {
                let message = self.next().await?;
                if message["event"] == json!(true) && message["type"] == kind {
                    return Some(message);
                }
            }
        };
        tokio::time::timeout(LIMIT, wait).await.ok().flatten()
    }

    /// Reads the next message; `None` when the connection closes or a frame is malformed.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(colon) = self.buffer.iter().position(|&b| b == b':') {
                let length: usize = std::str::from_utf8(&self.buffer[..colon])
                    .ok()?
                    .parse()
                    .ok()?;
                let end = colon + 1 + length;
                if self.buffer.len() > end {
                    if self.buffer[end] != b',' {
                        return None;
                    }
                    let message = serde_json::from_slice(&self.buffer[colon + 1..end]).ok();
                    self.buffer.drain(..=end);
                    return message;
                }
            }
            let mut chunk = [0; 4096];
            let read = self.stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// Returns a port free for both UDP and TCP at `ip`.
fn free_port(ip: Ipv4Addr) -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}
