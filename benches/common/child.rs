//! Child processes of the service's benchmarks (this binary again, in
//! another role), talked to over stdin and stdout. Included with `#[path]`
//! by `gateway_load.rs`, `sip_flood.rs` and `nodes_fanout.rs`; the
//! simulated carrier that runs in one is `carrier.rs`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
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

    /// Sends a command that answers `ok`, such as `mute` or `unmute`.
    #[allow(dead_code)] // Not every benchmark that includes this sends one.
    pub async fn command(&mut self, command: &str) -> Result<()> {
        let line = self.ask(command).await?;
        if line != "ok" {
            bail!("the child refused {command:?}: {line:?}");
        }
        Ok(())
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

/// The single-threaded runtime each process of a benchmark runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}
