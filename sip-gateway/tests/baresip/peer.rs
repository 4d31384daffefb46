//! Debian's baresip playing a provider that speaks SIP over TLS, and the test PKI it uses.
//!
//! baresip listens for TLS on its `sip_listen` port plus one, answers every call at once,
//! sends a 1000 Hz tone from a WAV, and writes what it hears to `snd/` (the sndfile module).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

#[path = "audio.rs"]
mod audio;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sip_gateway::gateway::{TrunkConfig, TrunkTransport};
use tokio::process::{Child, Command};

/// The name baresip's certificate carries.
pub const TRUNK_NAME: &str = "trunk.dialcrm.test";
/// The number the tests dial, baresip's account.
pub const NUMBER: &str = "+441632960123";
/// The tone baresip sends.
pub const BARESIP_TONE: f64 = 1000.0;

/// A test CA and a server certificate it signed for [`TRUNK_NAME`], as PEM files.
pub struct Pki {
    /// The CA certificate, for the trunk's `ca_file`.
    pub ca: PathBuf,
    /// The server certificate followed by its key, as baresip's `sip_certificate` wants.
    pub server: PathBuf,
}

impl Pki {
    /// Makes a CA named `ca_name` and a certificate it signed for `name`, in `dir`.
    pub fn new(dir: &Path, ca_name: &str, name: &str) -> Pki {
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec![name.to_string()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, name);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let ca_path = dir.join(format!("{ca_name}.pem"));
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let server = dir.join(format!("{name}-by-{ca_name}.pem"));
        let pem = format!("{}{}", leaf_cert.pem(), leaf_key.serialize_pem());
        std::fs::write(&server, pem).unwrap();
        Pki {
            ca: ca_path,
            server,
        }
    }
}

/// A running baresip; killed when dropped.
pub struct Baresip {
    child: Child,
    /// Its TLS port.
    pub tls_port: u16,
    /// The first and last port its RTP may use.
    pub rtp_ports: (u16, u16),
    /// Its configuration directory, where its log is too.
    pub dir: PathBuf,
}

impl Baresip {
    /// Starts baresip with `pki`'s server certificate, requiring SRTP when `srtp`;
    /// `None` when baresip is missing outside CI.
    pub async fn start(dir: &Path, pki: &Pki, srtp: bool) -> Option<Baresip> {
        if !installed().await {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "baresip is not installed and CI=true");
            eprintln!(
                "!!! SKIPPING baresip interop test: baresip is not installed \
                 (apt-get install baresip) !!!"
            );
            return None;
        }
        let dir = dir.join("baresip");
        std::fs::create_dir_all(&dir).unwrap();
        let sound = audio::tone_out_dump_in(&dir, BARESIP_TONE);
        let sip = free_tls_pair();
        let rtp = free_udp_range(10);
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip}\n\
             sip_certificate {cert}\n\
             rtp_ports {rtp_lo}-{rtp_hi}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module srtp.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             {sound}",
            cert = pki.server.display(),
            rtp_lo = rtp,
            rtp_hi = rtp + 9,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let media = if srtp { ";mediaenc=srtp-mand" } else { "" };
        // baresip answers calls to its account's user only: the number the tests dial.
        let account =
            format!("<sip:{NUMBER}@127.0.0.1;transport=tls>;regint=0;answermode=auto{media}\n");
        std::fs::write(dir.join("accounts"), account).unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip starts");
        let tls_port = sip + 1;
        let ready = async {
            while tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), ready)
            .await
            .expect("baresip listens for TLS");
        Some(Baresip {
            child,
            tls_port,
            rtp_ports: (rtp, rtp + 9),
            dir,
        })
    }

    /// Returns a TLS trunk to this baresip, reached by address and checked by `name` against `ca`.
    pub fn trunk(&self, name: &str, ca: &Path, srtp: bool) -> TrunkConfig {
        let mut trunk = TrunkConfig::new(
            "baresip",
            format!("127.0.0.1:{}", self.tls_port).parse().unwrap(),
        );
        trunk.transport = TrunkTransport::Tls;
        trunk.tls_name = Some(name.into());
        trunk.ca_file = Some(ca.to_path_buf());
        trunk.srtp = srtp;
        trunk
    }

    /// Asks baresip to quit, as SIGTERM does: it hangs up its calls with BYE first.
    pub async fn quit(&self) {
        let pid = self.child.id().expect("baresip is running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Returns what baresip logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// Returns the samples baresip decoded from the call (what it heard), once the call is over.
    pub async fn heard(&self) -> Vec<i16> {
        audio::heard(&self.dir.join("snd"))
            .await
            .unwrap_or_else(|| panic!("baresip wrote no decoded audio; its log:\n{}", self.log()))
    }
}

async fn installed() -> bool {
    Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok()
}

/// Returns a port whose TCP and UDP, and TCP one above, are free on loopback.
fn free_tls_pair() -> u16 {
    loop {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        let next_free = port
            .checked_add(1)
            .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        let udp_free = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if next_free && udp_free {
            return port;
        }
    }
}

/// Returns the first of `span` consecutive free UDP ports on loopback.
pub fn free_udp_range(span: u16) -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let all_free = (0..span).all(|i| {
            port.checked_add(i)
                .is_some_and(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
        });
        if port > 1024 && all_free {
            return port;
        }
    }
}
