//! `dialcrm dial` through sipp playing a provider that challenges with
//! digest auth and echoes our audio: the operator's trunk test, end to end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sip_gateway::media::tone::{dominant_frequency, sine};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dialcrm");
const CANDIDATES: [f64; 4] = [350.0, 440.0, 1000.0, 1400.0];

#[tokio::test]
async fn dial_through_sipp_with_digest_auth_records_audio_both_ways() {
    if Command::new("sipp").arg("-v").output().await.is_err() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "sipp (Debian sip-tester) must be installed in CI"
        );
        eprintln!("!!! SKIPPING dial test: sipp is not installed (apt-get install sip-tester) !!!");
        return;
    }
    let dir = std::env::temp_dir().join(format!("dialcrm-dial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sip_port = free_port();
    let media_port = free_port();
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/auth_401.xml");
    let mut sipp = Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
        .args(["-mp", &media_port.to_string(), "-rtp_echo"])
        .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir(&dir)
        .kill_on_drop(true)
        .spawn()
        .expect("sipp starts");

    let config = dir.join("dialcrm.toml");
    std::fs::write(
        &config,
        format!(
            "caller_id = \"+441632960000\"\n\
             [gateway]\nsip_udp = \"127.0.0.1:0\"\nrtp_port_min = 0\nrtp_port_max = 0\nt1 = \"100ms\"\n\
             [[trunks]]\nname = \"provider\"\nhost = \"127.0.0.1\"\nport = {sip_port}\n\
             username = \"acct\"\npassword = \"s3cret\"\n"
        ),
    )
    .expect("config written");
    let tone = dir.join("tone.wav");
    write_wav(&tone, &sine(440.0, 8000, 8000, 8000 * 2));
    let recording = dir.join("call.wav");

    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["dial", "--trunk", "provider", "--to", "+441632960123"])
            .arg("--play")
            .arg(&tone)
            .arg("--record")
            .arg(&recording)
            .args(["--max-seconds", "3"])
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the call finishes")
    .expect("dialcrm runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dial failed: {stdout}\n{stderr}");
    assert!(stdout.contains("Ringing"), "{stdout}");
    assert!(stdout.contains("answered"), "{stdout}");
    assert!(stdout.contains("outcome: LocalHangup"), "{stdout}");

    let (left, right) = channels(&recording);
    assert!(
        left.len() >= 8000 * 2,
        "about 3 s recorded, got {}",
        left.len()
    );
    assert_eq!(dominant(&left[..8000]), Some(440.0), "our tone, left");
    assert_eq!(
        dominant(&right[4000..12000]),
        Some(440.0),
        "sipp's echo of our tone, right"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), sipp.wait())
        .await
        .expect("sipp finishes")
        .expect("sipp exit status");
    assert!(status.success(), "sipp's scenario (with verifyauth) passed");
    let _ = std::fs::remove_dir_all(&dir);
}

fn dominant(samples: &[i16]) -> Option<f64> {
    dominant_frequency(samples, &CANDIDATES, 8000, 1e-4)
}

fn free_port() -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if port > 1024
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}

pub(crate) fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for s in samples {
        w.write_sample(*s).expect("write");
    }
    w.finalize().expect("finalize");
}

fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("a valid WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}
