//! A packet capture on loopback with tcpdump, read back from its pcap file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One UDP datagram seen on the wire.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub source_port: u16,
    pub destination_port: u16,
    pub payload: Vec<u8>,
}

/// A running tcpdump writing UDP on loopback within a port range to a file.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing UDP to or from `ports`; `None` when tcpdump is missing outside CI.
    pub async fn start(dir: &Path, ports: (u16, u16)) -> Option<Capture> {
        if Command::new("tcpdump")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_err()
        {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "tcpdump is not installed and CI=true");
            eprintln!(
                "!!! SKIPPING capture test: tcpdump is not installed (apt-get install tcpdump) !!!"
            );
            return None;
        }
        let file = dir.join("rtp.pcap");
        let filter = format!("udp and portrange {}-{}", ports.0, ports.1);
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-Z", "root", "-w"])
            .arg(&file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("tcpdump starts");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let listening = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("listening on") {
                    return;
                }
                eprintln!("tcpdump: {line}");
            }
            panic!("tcpdump exited before listening (capturing needs root)");
        };
        tokio::time::timeout(Duration::from_secs(10), listening)
            .await
            .expect("tcpdump starts listening");
        // Keep draining its stderr so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Capture { child, file })
    }

    /// Stops the capture and returns every UDP datagram it saw.
    pub async fn stop(mut self) -> Vec<Datagram> {
        let pid = self.child.id().expect("tcpdump is running");
        Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("tcpdump stops")
            .unwrap();
        read_pcap(&std::fs::read(&self.file).expect("the capture file"))
    }
}

/// Reads the UDP datagrams over IPv4 of a classic pcap file (Ethernet or Linux cooked framing).
fn read_pcap(bytes: &[u8]) -> Vec<Datagram> {
    assert!(bytes.len() >= 24, "a pcap file has a 24-byte header");
    let le = match bytes[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a pcap file"),
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let link_header = match u32_at(20) {
        1 => 14,   // Ethernet, as Linux frames loopback
        113 => 16, // Linux cooked capture
        276 => 20, // Linux cooked capture v2
        other => panic!("unexpected link type {other}"),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let length = u32_at(at + 8) as usize;
        let frame = &bytes[at + 16..(at + 16 + length).min(bytes.len())];
        at += 16 + length;
        let Some(ip) = frame.get(link_header..) else {
            continue;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let udp = &ip[usize::from(ip[0] & 0x0f) * 4..];
        if udp.len() < 8 {
            continue;
        }
        out.push(Datagram {
            source_port: u16::from_be_bytes([udp[0], udp[1]]),
            destination_port: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..].to_vec(),
        });
    }
    out
}
