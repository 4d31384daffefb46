//! Interop against sipp playing the provider, with the scenarios in `tests/sipp/`.
//!
//! sipp (Debian package `sip-tester`) must be installed: under `CI=true` a missing sipp fails
//! these tests; elsewhere they are skipped with a loud message.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{channels, dominant, request, temp_wav, wait_for};
use sip_gateway::carrier::pcap::pcmu_capture;
use sip_gateway::gateway::{
    Audio, CallEventKind, EndCause, Gateway, GatewayConfig, Secret, TrunkConfig,
};
use sip_gateway::media::amd::{voiced_words, AmdVerdict};
use sip_gateway::media::greeting::GreetingEnded;
use sip_gateway::media::tone::sine;
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(10);

/// A sipp process playing one provider call; killed if the test ends early.
struct Sipp {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sipp {
    /// Starts sipp as a UAS running `scenario`, or returns `None` when sipp is absent outside CI.
    async fn start(scenario: &str) -> Option<Sipp> {
        Sipp::start_with(scenario, &[]).await
    }

    /// Starts sipp as [`Sipp::start`] does, with extra arguments such as a transport.
    async fn start_with(scenario: &str, extra: &[&str]) -> Option<Sipp> {
        if !sipp_installed().await {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "sipp is not installed (Debian package sip-tester) and CI=true"
            );
            eprintln!("!!! SKIPPING sipp interop test {scenario}: sipp is not installed (apt-get install sip-tester) !!!");
            return None;
        }
        let tcp = extra.contains(&"t1");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/sipp")
            .join(scenario);
        // A scenario written for the test is named by its whole path.
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let log = temp_wav(&format!("sipp-{name}")).with_extension("log");
        // A port found free may be taken before sipp binds it (another
        // test, a client socket): sipp then exits, and is started again on
        // another port.
        for attempt in 1..=3 {
            let port = free_port(1, tcp);
            let media = free_port(2, false);
            let mut child = Command::new("sipp")
                .arg("-sf")
                .arg(&path)
                .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                .args(["-mp", &media.to_string(), "-rtp_echo"])
                .args(["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"])
                .args(extra)
                .arg("-trace_err")
                .arg("-error_file")
                .arg(&log)
                .arg("-trace_msg")
                .arg("-message_file")
                .arg(log.with_extension("msg"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("sipp starts");
            if !tcp {
                return Some(Sipp { child, port, log });
            }
            // TCP has no retransmission to cover sipp's start-up, so wait
            // for its listener, or for it to give up.
            let deadline = tokio::time::Instant::now() + LIMIT;
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Some(Sipp { child, port, log });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let output = child.wait_with_output().await.expect("sipp's output");
                    eprintln!(
                        "sipp exited ({status}) before listening on TCP port {port}, \
                         attempt {attempt}: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "sipp listens on TCP port {port} within {LIMIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("sipp could not listen on TCP in three attempts (see above)");
    }

    /// Returns the trunk sipp plays, with the credentials its scenarios check.
    fn trunk(&self) -> TrunkConfig {
        let mut trunk =
            TrunkConfig::new("sipp", format!("127.0.0.1:{}", self.port).parse().unwrap());
        trunk.username = Some("acct".into());
        trunk.password = Secret::new("s3cret");
        trunk
    }

    /// Returns every message sipp logged, sent and received.
    fn messages(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("msg")).unwrap_or_default()
    }

    /// Waits for sipp to finish its one call and asserts that the scenario passed.
    async fn passed(mut self) {
        let status = tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("sipp finishes its scenario")
            .unwrap();
        let errors = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            status.success(),
            "sipp scenario failed ({status}): {errors}"
        );
    }
}

async fn sipp_installed() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok()
}

/// Returns a free UDP port on loopback whose next `span - 1` even
/// neighbours are free too, and with `tcp` free on TCP as well.
fn free_port(span: u16, tcp: bool) -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port() & !1;
        let all_free = (0..span).all(|i| {
            port.checked_add(i * 2)
                .is_some_and(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
        });
        let tcp_free = !tcp || std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if port > 1024 && all_free && tcp_free {
            return port;
        }
    }
}

async fn gateway(sipp: &Sipp) -> Gateway {
    let config = GatewayConfig {
        t1: Duration::from_millis(100),
        media_timeout: Duration::from_millis(800),
        ..GatewayConfig::loopback()
    };
    Gateway::start(config, vec![sipp.trunk()]).await.unwrap()
}

fn ended(kind: &CallEventKind) -> bool {
    matches!(kind, CallEventKind::Ended { .. })
}

/// Places a call through a challenging sipp, plays a tone and checks that its echo was recorded.
async fn challenged_call_echoes_audio(scenario: &str) {
    let Some(sipp) = Sipp::start(scenario).await else {
        return;
    };
    let gw = gateway(&sipp).await;
    let mut events = gw.events();
    let call = gw.dial(request("sipp", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");
    let tone = sine(440.0, 8000, 8000, 8000);
    let (left, right) =
        common::play_record_hang_up(&gw, &mut events, call, scenario, tone, LIMIT).await;
    assert_eq!(dominant(&left), Some(440.0), "the tone we sent");
    let echoed = &right[right.len() / 4..];
    assert_eq!(dominant(echoed), Some(440.0), "the tone sipp echoed back");
    if scenario == "auth_407.xml" {
        assert_proxy_digest_is_right(&sipp.messages());
    }
    sipp.passed().await;
}

/// Recomputes the RFC 2617 digest of the Proxy-Authorization sipp received, independently.
fn assert_proxy_digest_is_right(messages: &str) {
    use md5::{Digest, Md5};
    let line = messages
        .lines()
        .find(|l| l.starts_with("Proxy-Authorization:"))
        .expect("sipp received a Proxy-Authorization");
    let field = |name: &str| {
        let start = line
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("{name} in {line}"));
        let value = &line[start + name.len() + 1..];
        let value = value.split(',').next().unwrap().trim();
        value.trim_matches('"').to_string()
    };
    let hex = |text: String| hex::encode(Md5::digest(text.as_bytes()));
    let ha1 = hex(format!("acct:{}:s3cret", field("realm")));
    let ha2 = hex(format!("INVITE:{}", field("uri")));
    let expected = hex(format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        field("nonce"),
        field("nc"),
        field("cnonce")
    ));
    assert_eq!(field("response"), expected, "digest in {line}");
    let request_line = format!("INVITE {} SIP/2.0", field("uri"));
    assert!(
        messages.contains(&request_line),
        "digest uri is the Request-URI as sent"
    );
}

#[tokio::test]
async fn www_authenticate_challenge_then_answer_with_echoed_audio() {
    challenged_call_echoes_audio("auth_401.xml").await;
}

#[tokio::test]
async fn proxy_authenticate_challenge_then_answer_with_echoed_audio() {
    challenged_call_echoes_audio("auth_407.xml").await;
}

/// Dials sipp running `scenario` and returns every event of the call up to its end.
async fn call_until_ended(
    scenario: &str,
    ring_timeout: Duration,
) -> Option<(Vec<CallEventKind>, Sipp)> {
    let sipp = Sipp::start(scenario).await?;
    let gw = gateway(&sipp).await;
    let mut events = gw.events();
    let call = gw.dial(request("sipp", ring_timeout)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    Some((seen, sipp))
}

#[tokio::test]
async fn early_media_then_answer() {
    let Some(sipp) = Sipp::start("early_media.xml").await else {
        return;
    };
    let gw = gateway(&sipp).await;
    let mut events = gw.events();
    let call = gw.dial(request("sipp", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert_eq!(
        seen,
        [
            CallEventKind::Trying,
            CallEventKind::Ringing,
            CallEventKind::EarlyMedia,
            CallEventKind::Answered
        ]
    );
    gw.hangup(call).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::LocalHangup
        })
    );
    sipp.passed().await;
}

#[tokio::test]
async fn busy_ends_with_cause_busy() {
    let Some((seen, sipp)) = call_until_ended("busy.xml", LIMIT).await else {
        return;
    };
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::Busy
        })
    );
    sipp.passed().await;
}

#[tokio::test]
async fn ring_timeout_cancels_and_ends_with_no_answer() {
    let Some((seen, sipp)) = call_until_ended("no_answer.xml", Duration::from_millis(800)).await
    else {
        return;
    };
    assert!(seen.contains(&CallEventKind::Ringing), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::NoAnswer
        })
    );
    sipp.passed().await;
}

#[tokio::test]
async fn bye_from_the_far_end_ends_with_remote_hangup() {
    let Some((seen, sipp)) = call_until_ended("remote_bye.xml", LIMIT).await else {
        return;
    };
    assert!(seen.contains(&CallEventKind::Answered), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::RemoteHangup
        })
    );
    sipp.passed().await;
}

/// An answering machine's recorded greeting as sipp plays it: eight words
/// (the last ends at 3.45 s), a 1000 Hz beep from 3.8 s to 4.3 s, then
/// quiet while it records, eight seconds in all.
fn recorded_greeting() -> Vec<i16> {
    let (word, gap) = (Duration::from_millis(300), Duration::from_millis(150));
    let mut greeting = voiced_words(8, word, gap, 8 * 450 * 8 + 8 * 200);
    greeting.extend(sine(1000.0, 9000, 8000, 4000));
    greeting.resize(8000 * 8, 0);
    greeting
}

#[tokio::test]
async fn a_message_is_left_on_sipp_playing_a_recorded_greeting_after_its_beep() {
    let scratch = temp_wav("machine").with_extension("");
    std::fs::create_dir_all(&scratch).unwrap();
    let pcap = scratch.join("greeting.pcap");
    std::fs::write(&pcap, pcmu_capture(&recorded_greeting())).unwrap();
    let template =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sipp/machine_greeting.xml");
    let scenario = std::fs::read_to_string(template)
        .unwrap()
        .replace("GREETING_PCAP", &pcap.to_string_lossy());
    let path = scratch.join("machine_greeting.xml");
    std::fs::write(&path, scenario).unwrap();
    let Some(sipp) = Sipp::start(&path.to_string_lossy()).await else {
        return;
    };
    let gw = gateway(&sipp).await;
    let mut events = gw.events();
    let mut screened = request("sipp", LIMIT);
    screened.detect_machine = true;
    let call = gw.dial(screened).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    let answered = std::time::Instant::now();
    let wav = scratch.join("call.wav");
    gw.record(call, &wav).await.unwrap();
    let verdict = wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::AnsweredBy { .. })
    })
    .await;
    assert_eq!(
        verdict.last(),
        Some(&CallEventKind::AnsweredBy {
            verdict: AmdVerdict::Machine
        })
    );
    let message: std::sync::Arc<[i16]> = sine(697.0, 8000, 8000, 8000).into();
    gw.leave_message(call, Audio::Samples(message))
        .await
        .unwrap();
    let seen = wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::GreetingEnded { .. })
    })
    .await;
    let waited = answered.elapsed().as_secs_f64();
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::GreetingEnded {
            ended: GreetingEnded::Beep
        })
    );
    // The beep ends 4.3 s into the greeting; a message begun before it
    // would be cut off on the recording.
    assert!(
        (4.25..5.5).contains(&waited),
        "the greeting's end heard {waited:.2} s after the answer"
    );
    wait_for(&mut events, call, LIMIT, |k| {
        *k == CallEventKind::PlaybackFinished
    })
    .await;
    gw.hangup(call).await.unwrap();
    wait_for(&mut events, call, LIMIT, ended).await;
    sipp.passed().await;
    // What went to the machine: the message, only once its beep was over
    // (the recording starts at the answer, give or take a packet).
    let (sent, _) = channels(&wav);
    let message: Vec<usize> = sent
        .chunks(800)
        .enumerate()
        .filter(|(_, c)| dominant(c) == Some(697.0))
        .map(|(i, _)| i)
        .collect();
    assert!(
        message.len() >= 9,
        "{} chunks of the message went out",
        message.len()
    );
    let started = message[0] as f64 * 0.1;
    assert!(
        started >= 4.2,
        "the message began {started:.1} s into the greeting"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test]
async fn hold_by_reinvite_keeps_the_call_up() {
    let Some(sipp) = Sipp::start("reinvite_hold.xml").await else {
        return;
    };
    let gw = gateway(&sipp).await;
    let mut events = gw.events();
    let call = gw.dial(request("sipp", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    // RTP flows (echoed) until the hold; held, none flows for longer than the media timeout.
    let tone = sine(440.0, 8000, 8000, 8000);
    gw.play(call, Audio::Samples(tone.into())).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::RemoteHangup
        }),
        "the held call lasted until the provider's BYE: {seen:?}"
    );
    sipp.passed().await;
}

#[tokio::test]
async fn busy_over_tcp() {
    let Some(sipp) = Sipp::start_with("busy.xml", &["-t", "t1"]).await else {
        return;
    };
    let mut trunk = sipp.trunk();
    trunk.transport = sip_gateway::gateway::TrunkTransport::Tcp;
    let config = GatewayConfig {
        t1: Duration::from_millis(100),
        ..GatewayConfig::loopback()
    };
    let gw = Gateway::start(config, vec![trunk]).await.unwrap();
    let mut events = gw.events();
    let call = gw.dial(request("sipp", LIMIT)).await.unwrap();
    let seen = wait_for(&mut events, call, LIMIT, ended).await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Ended {
            cause: EndCause::Busy
        }),
        "{seen:?}"
    );
    sipp.passed().await;
}

#[tokio::test]
async fn digits_pressed_at_the_far_end_arrive_as_dtmf_events() {
    let Some(sipp) = Sipp::start("dtmf.xml").await else {
        return;
    };
    let gw = gateway(&sipp).await;
    let mut events = gw.events();
    let call = gw.dial(request("sipp", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    let seen = wait_for(&mut events, call, LIMIT, |k| {
        matches!(k, CallEventKind::Dtmf { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&CallEventKind::Dtmf { digit: '1' }),
        "sipp sent the digit 1"
    );
    gw.hangup(call).await.unwrap();
    wait_for(&mut events, call, LIMIT, ended).await;
    sipp.passed().await;
}

/// Runs sipp answering OPTIONS pings on `port`, for as many pings as come.
fn answering_options(port: u16) -> Child {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sipp/options.xml");
    Command::new("sipp")
        .arg("-sf")
        .arg(&path)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp starts")
}

/// Trunk health against sipp playing the provider: while it answers the
/// OPTIONS pings the trunk is up; killed, the trunk goes down and calls
/// for it go to the next trunk; started again, the trunk comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_stops_answering_options_goes_down_and_comes_back() {
    use sip_gateway::carrier::Outcome;
    if !sipp_installed().await {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "sipp is not installed (Debian package sip-tester) and CI=true"
        );
        eprintln!("!!! SKIPPING the sipp trunk health test: sipp is not installed !!!");
        return;
    }
    let port = free_port(1, false);
    let mut sipp = answering_options(port);
    let backup = common::carrier(Outcome::Answer, None).await;
    let mut primary = TrunkConfig::new("primary", format!("127.0.0.1:{port}").parse().unwrap());
    primary.options_interval = Some(Duration::from_millis(200));
    primary.down_after = 2;
    primary.up_after = 2;
    let config = GatewayConfig {
        t1: Duration::from_millis(50),
        ..GatewayConfig::loopback()
    };
    let gw = Gateway::start(
        config,
        vec![primary, TrunkConfig::new("backup", backup.sip_addr())],
    )
    .await
    .unwrap();
    let mut health = gw.trunk_events();
    // sipp answers: a second of pings changes nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(health.try_recv().is_err(), "no change while sipp answers");
    let up = |name: &str, trunks: &[sip_gateway::gateway::TrunkStatus]| {
        trunks.iter().any(|t| t.name == name && t.up)
    };
    assert!(up("primary", &gw.trunks().await.unwrap()));

    // sipp stops: after two unanswered pings the trunk is down.
    sipp.kill().await.unwrap();
    let down = tokio::time::timeout(LIMIT, health.recv())
        .await
        .expect("the trunk goes down")
        .unwrap();
    assert!(!down.up && down.name == "primary", "{down:?}");
    // A call for it goes to the backup.
    let mut events = gw.events();
    let call = gw.dial(request("primary", LIMIT)).await.unwrap();
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    assert_eq!(backup.stats().calls, 1, "the backup took the call");
    gw.hangup(call).await.unwrap();

    // sipp answers again on the same port: after two answers it is back.
    let _sipp = answering_options(port);
    let back = tokio::time::timeout(LIMIT, health.recv())
        .await
        .expect("the trunk comes back")
        .unwrap();
    assert!(back.up && back.name == "primary", "{back:?}");
    assert!(up("primary", &gw.trunks().await.unwrap()));
}
