//! Figures of this machine and its processes from `/proc`, for the service's
//! stream benchmarks (included with `#[path]`); a process's CPU time is
//! `proc_stat::cpu_time`.

use anyhow::{bail, Context, Result};

/// Returns a process's resident memory (`pid` may be `self`).
pub fn rss_bytes(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .with_context(|| format!("no VmRSS in {path}"))
}

/// Returns the CPU seconds all cores have spent running programs and the kernel.
pub fn machine_busy_seconds(ticks_per_second: f64) -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .collect();
    // The fields are user nice system idle iowait irq softirq steal …; guest time is
    // already counted in user, and steal is time the hypervisor kept from this machine.
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum();
    Ok(busy as f64 / ticks_per_second)
}

/// Returns the number of cores this machine has.
#[allow(dead_code)] // Not every benchmark that includes this reports it.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Returns the load average over the last minute, as `/proc/loadavg` gives it.
#[allow(dead_code)] // Not every benchmark that includes this reports it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Stops early when this process cannot hold `sockets` sockets at once.
pub fn check_open_files(sockets: usize) -> Result<()> {
    let limits =
        std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < sockets + 256 => bail!(
            "the open-files limit is {soft}; {sockets} sockets need more: run `ulimit -n {}` first",
            (sockets + 256).max(20_000)
        ),
        _ => Ok(()),
    }
}

/// Returns the id of a child of this process whose command is `name`.
#[allow(dead_code)] // Not every benchmark that includes this starts a program of its own.
pub fn child_named(name: &str) -> Option<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid = entry.ok()?.file_name().into_string().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`; the command may hold spaces and parentheses.
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1;
        let ppid = rest.split_whitespace().nth(1)?;
        (comm == name && ppid == me).then_some(pid)
    })
}
