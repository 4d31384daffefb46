//! Child processes of the service's SIP benchmarks (this binary again, in
//! another role), talked to over stdin and stdout, and the simulated
//! carrier that runs in one. Included with `#[path]` by `gateway_load.rs`
//! and `sip_flood.rs`.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, CarrierStats, Mix, Outcome};
use sip_gateway::gateway::{CallRef, DialRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A child process of this binary in another role.
pub struct ChildProcess {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    /// The first line the child printed.
    pub greeting: String,
    /// Its process id, for `/proc/<pid>/stat`.
    #[allow(dead_code)] // Not every benchmark that includes this reads it.
    pub pid: String,
}

impl ChildProcess {
    /// Starts this binary with `role_var=role` and `env`, on `cpu` alone when given.
    pub async fn spawn(
        role_var: &str,
        role: &str,
        env: &[(&str, &str)],
        cpu: Option<usize>,
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the benchmark binary")?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let mut child = command
            .env(role_var, role)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {role} process"))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let pid = child.id().context("child pid")?.to_string();
        let mut lines = BufReader::new(stdout).lines();
        let greeting = lines
            .next_line()
            .await?
            .with_context(|| format!("the {role} exited before greeting"))?;
        Ok(ChildProcess {
            child,
            stdin,
            lines,
            greeting,
            pid,
        })
    }

    /// The SIP address a carrier child greeted with (`sip ADDR`).
    pub fn sip_addr(&self) -> Result<SocketAddr> {
        self.greeting
            .strip_prefix("sip ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected carrier greeting {:?}", self.greeting))
    }

    /// Sends a command that answers `ok`, such as `mute` or `unmute`.
    pub async fn command(&mut self, command: &str) -> Result<()> {
        let line = self.ask(command).await?;
        if line != "ok" {
            bail!("the child refused {command:?}: {line:?}");
        }
        Ok(())
    }

    /// Asks a carrier child for its counters.
    pub async fn stats(&mut self) -> Result<CarrierStats> {
        let line = self.ask("stats").await?;
        let numbers: Vec<u64> = line
            .strip_prefix("stats ")
            .context("unexpected carrier reply")?
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [calls, answered, rtp_sent, rtp_received] = numbers[..] else {
            bail!("unexpected carrier reply {line:?}");
        };
        Ok(CarrierStats {
            calls,
            answered,
            rtp_sent,
            rtp_received,
            ..CarrierStats::default()
        })
    }

    /// Sends one line and returns the reply line.
    pub async fn ask(&mut self, command: &str) -> Result<String> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.lines.next_line().await?.context("the child exited")
    }

    /// Closes stdin, waits for the child to end and returns its last line.
    pub async fn stop(mut self) -> Result<Option<String>> {
        drop(self.stdin);
        let mut last = None;
        let read = async {
            while let Some(line) = self.lines.next_line().await? {
                last = Some(line);
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .context("the child did not exit")??;
        let _ = self.child.wait().await;
        Ok(last)
    }
}

/// Runs the carrier: prints its SIP address, answers `stats` and
/// `mute`/`unmute` lines, and exits when stdin closes.
pub async fn carrier_process() -> Result<()> {
    let carrier = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse()?,
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::ZERO,
        answer_delay: Duration::ZERO,
        audio: CarrierAudio::Tone(440.0),
        ..CarrierConfig::default()
    })
    .await
    .context("starting the carrier")?;
    println!("sip {}", carrier.sip_addr());
    let carrier = std::sync::Arc::new(carrier);
    let shared = carrier.clone();
    // Reading stdin blocks, so it gets a thread; the runtime keeps serving calls meanwhile.
    let reader = std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "stats" => {
                    let s = shared.stats();
                    println!(
                        "stats {} {} {} {}",
                        s.calls, s.answered, s.rtp_sent, s.rtp_received
                    );
                }
                "mute" | "unmute" => {
                    shared.set_muted(line.trim() == "mute");
                    println!("ok");
                }
                other => println!("unknown command {other:?}"),
            }
        }
    });
    tokio::task::spawn_blocking(move || reader.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the stdin reader panicked"))?;
    drop(carrier);
    Ok(())
}

/// A call to the carrier's trunk.
pub fn request(call_ref: CallRef) -> DialRequest {
    DialRequest {
        number: "+441632960123".into(),
        caller_id: "+442079460000".into(),
        trunk: "sim".into(),
        ring_timeout: Duration::from_secs(20),
        call_ref,
        detect_machine: false,
    }
}

/// The single-threaded runtime each process of a benchmark runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}
