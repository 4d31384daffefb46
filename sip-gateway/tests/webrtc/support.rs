//! Setup shared by the tests that drive headless Chromium: the binary, the fake microphone, a scratch directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::Value;
use sip_gateway::media::tone::sine;

use super::cdp;

/// Returns the Chromium to drive; without one, fails under `CI=true` and skips loudly elsewhere.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = cdp::find_chromium();
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium is not installed; scripts/install-deps installs it");
        }
        eprintln!("SKIPPED {test}: chromium is not installed");
    }
    found
}

/// Writes three seconds of a sine at 48 kHz, 16-bit mono; Chromium loops it.
pub fn write_tone(path: &Path, frequency: f64) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec)?;
    for s in sine(frequency, 12_000, 48_000, 48_000 * 3) {
        wav.write_sample(s)?;
    }
    wav.finalize()?;
    Ok(())
}

/// Returns a fresh directory for one test's files.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcrm-webrtc-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the test's scratch directory");
    dir
}

/// Fails unless most of the analyser's peaks in a `listen.js` report are at `hz`.
pub fn assert_heard(report: &Value, hz: f64) -> Result<()> {
    let Some(peaks) = report["peaks"].as_array() else {
        bail!("no peaks in {report}");
    };
    let at_hz = peaks
        .iter()
        .filter(|p| {
            let peak = p["hz"].as_f64().unwrap_or(0.0);
            let db = p["db"].as_f64().unwrap_or(f64::NEG_INFINITY);
            (peak - hz).abs() < 25.0 && db > -60.0
        })
        .count();
    if at_hz < peaks.len() / 2 {
        bail!("the browser did not hear {hz} Hz: {peaks:?}");
    }
    Ok(())
}

/// Checks a `watch.js` log for a short tone at `zip` Hz, heard for at least
/// 60 ms and gone within half a second, with `call` Hz heard after it.
pub fn assert_zip_then(log: &Value, zip: f64, call: f64) -> Result<()> {
    let Some(log) = log.as_array() else {
        bail!("no peak log: {log}");
    };
    let at = |p: &Value, hz: f64| {
        let peak = p["hz"].as_f64().unwrap_or(0.0);
        let db = p["db"].as_f64().unwrap_or(f64::NEG_INFINITY);
        (peak - hz).abs() < 50.0 && db > -60.0
    };
    let ms = |p: &Value| p["ms"].as_f64().unwrap_or(0.0);
    let zips: Vec<f64> = log.iter().filter(|p| at(p, zip)).map(ms).collect();
    let (Some(&first), Some(&last)) = (zips.first(), zips.last()) else {
        bail!("the browser never heard {zip} Hz: {log:?}");
    };
    if zips.len() < 3 || last - first > 500.0 {
        bail!("{zip} Hz heard at {zips:?}, not as a short tone: {log:?}");
    }
    if !log.iter().any(|p| ms(p) > last && at(p, call)) {
        bail!("the call's {call} Hz did not come back after the tone: {log:?}");
    }
    Ok(())
}
