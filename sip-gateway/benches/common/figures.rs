//! Settings from the environment and figures for reports, shared by the
//! benchmarks of the gateway and of the service (included with `#[path]`).

use std::time::Duration;

use anyhow::Result;

/// Reads a number from the environment, or `default` when it is not set.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}")),
        Err(_) => Ok(default),
    }
}

/// The `q` quantile (0 to 1) of sorted durations, by the nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
