//! sipp as a benchmark's peer (included with `#[path]` by `inbound_load.rs`): starting it with
//! the scenarios of `tests/sipp` in a working directory of the run's, and reading what it
//! leaves there — its statistics file and its message trace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::NaiveDateTime;
use tokio::process::{Child, Command};

/// A running sipp.
pub struct Sipp {
    child: Child,
    /// The command line it was started with, to print.
    pub command_line: String,
    /// Its process id, for `/proc/<pid>/stat`.
    pub pid: String,
}

impl Sipp {
    /// Starts sipp with `args` in `dir`, where it writes its files; stdout and stderr are
    /// discarded (`-trace_*` options keep what is wanted).
    pub fn spawn(args: &[String], dir: &Path) -> Result<Sipp> {
        let child = Command::new("sipp")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting sipp (Debian package sip-tester)")?;
        let pid = child.id().context("sipp's process id")?.to_string();
        Ok(Sipp {
            child,
            command_line: format!("sipp {}", args.join(" ")),
            pid,
        })
    }

    /// Waits at most `limit` for sipp to end by itself.
    pub async fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .with_context(|| format!("sipp still running after {limit:?}"))?
            .context("waiting for sipp")
    }

    /// Ends sipp now (its scenario may still be pausing).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Returns whether sipp can be run at all.
pub async fn installed() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok()
}

/// Returns the path of a scenario in `tests/sipp`.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// sipp's own count of its calls, from the last line of its `-trace_stat` file.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Calls the scenario started.
    pub created: u64,
    /// Calls that ran the scenario to its end.
    pub successful: u64,
    /// Calls that did not.
    pub failed: u64,
}

/// Reads the cumulative counts of a `-trace_stat` file (written with `-stf`).
pub fn totals(stat_file: &Path) -> Result<Totals> {
    let text = std::fs::read_to_string(stat_file)
        .with_context(|| format!("reading {}", stat_file.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .context("an empty stat file")?
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .context("no statistics line")?
        .split(';')
        .collect();
    let column = |name: &str| -> Result<u64> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("no {name} column"))?;
        let value = last.get(i).with_context(|| format!("no {name} value"))?;
        value
            .trim()
            .parse()
            .with_context(|| format!("{name} = {value:?}"))
    };
    Ok(Totals {
        created: column("TotalCallCreated")?,
        successful: column("SuccessfulCall(C)")?,
        failed: column("FailedCall(C)")?,
    })
}

/// The INVITE → 200 OK times a caller saw, from its `-trace_msg` file.
#[derive(Debug, Default)]
pub struct SetupTimes {
    /// Calls whose INVITE went out.
    pub invited: usize,
    /// Of those, calls whose INVITE got a 200 OK.
    pub answered: usize,
    /// Calls whose INVITE got a final answer other than 200, by status.
    pub refused: HashMap<u16, usize>,
    /// From the first sending of each INVITE to the first 200 OK for it, sorted.
    pub times: Vec<Duration>,
}

/// Reads a message trace (`-trace_msg`, written with `-message_file`): for each Call-ID, the
/// time the INVITE was first sent and the time the first 200 OK to it was received, as sipp
/// stamped them (microseconds, its own clock).
pub fn setup_times(message_file: &Path) -> Result<SetupTimes> {
    let text = std::fs::read_to_string(message_file)
        .with_context(|| format!("reading {}", message_file.display()))?;
    let mut sent: HashMap<&str, NaiveDateTime> = HashMap::new();
    let mut answered: HashMap<&str, NaiveDateTime> = HashMap::new();
    let mut refused: HashMap<&str, u16> = HashMap::new();
    for block in text
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = block.lines();
        let stamp = lines.next().unwrap_or_default().trim();
        let Ok(at) = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.f") else {
            bail!("an unreadable time in the message trace: {stamp:?}");
        };
        let outgoing = lines.next().unwrap_or_default().contains("sent");
        let mut lines = lines.skip_while(|l| l.trim().is_empty());
        let start = lines.next().unwrap_or_default();
        let mut call_id = None;
        let mut invite = false;
        for line in lines.by_ref().take_while(|l| !l.trim().is_empty()) {
            if let Some(value) = header(line, "Call-ID") {
                call_id = Some(value);
            } else if let Some(value) = header(line, "CSeq") {
                invite = value.ends_with("INVITE");
            }
        }
        let (Some(call_id), true) = (call_id, invite) else {
            continue;
        };
        if outgoing && start.starts_with("INVITE ") {
            sent.entry(call_id).or_insert(at);
        } else if !outgoing && start.starts_with("SIP/2.0 ") {
            let status: u16 = start
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match status {
                200 => {
                    answered.entry(call_id).or_insert(at);
                }
                300.. => {
                    refused.entry(call_id).or_insert(status);
                }
                _ => {}
            }
        }
    }
    let mut result = SetupTimes {
        invited: sent.len(),
        ..SetupTimes::default()
    };
    for (call_id, at) in &answered {
        if let Some(from) = sent.get(call_id) {
            result.answered += 1;
            result
                .times
                .push((*at - *from).to_std().unwrap_or(Duration::ZERO));
        }
    }
    for status in refused.values() {
        *result.refused.entry(*status).or_default() += 1;
    }
    result.times.sort();
    Ok(result)
}

/// The value of a header line named `name` (case-insensitive), if it is one.
fn header<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (n, value) = line.split_once(':')?;
    n.trim().eq_ignore_ascii_case(name).then(|| value.trim())
}
