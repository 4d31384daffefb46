//! CPU time of a process, and the host's UDP buffer drops, from `/proc`, shared by the benchmarks of the
//! gateway and of the service (included with `#[path]`).

use std::time::Duration;

use anyhow::{Context, Result};

/// Returns user plus system CPU time of a process, from `/proc/<pid>/stat`.
#[allow(dead_code)] // The benchmarks that time one thread do not read it.
pub fn cpu_time(pid: &str, ticks_per_second: f64) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks: u64 = fields
        .get(11..13)
        .context("short stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second))
}

/// Returns the time the calling thread has spent on a CPU, in nanoseconds' resolution
/// (`/proc/thread-self/schedstat`).
#[allow(dead_code)] // Only the benchmarks that time one thread's work read it.
pub fn thread_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat (Linux only)")?;
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("schedstat does not start with nanoseconds on CPU")?;
    Ok(Duration::from_nanos(nanos))
}

/// Returns the kernel's clock ticks per second (`getconf CLK_TCK`), 100 if unknown.
#[allow(dead_code)] // As `cpu_time`.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Returns the host's count of UDP datagrams dropped for a full socket buffer (`/proc/net/snmp`).
#[allow(dead_code)] // Only the benchmarks that relay media read it.
pub fn udp_receive_buffer_drops() -> Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").context("reading /proc/net/snmp")?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = udp.next().zip(udp.next()).context("no Udp lines")?;
    let column = names
        .split_whitespace()
        .position(|n| n == "RcvbufErrors")
        .context("no RcvbufErrors column")?;
    let value = values
        .split_whitespace()
        .nth(column)
        .context("short Udp line")?;
    Ok(value.parse()?)
}
