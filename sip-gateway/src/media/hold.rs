//! The music-on-hold tone: a soft two-note chime that repeats, so a held customer
//! knows the line is alive.
//!
//! Each cycle is a falling major third (E5 then C5) with smooth attack and decay,
//! then a pause. Quiet (peaks at -18 dBFS) and unlike any call-progress or DTMF tone,
//! so it is neither mistaken for a busy signal nor decoded as a digit.

use std::f64::consts::TAU;
use std::sync::{Arc, OnceLock};

/// The chime's notes in Hz, first then second.
pub const HOLD_NOTES: [f64; 2] = [659.25, 523.25];
/// Length of one cycle of the hold tone.
pub const HOLD_CYCLE: std::time::Duration = std::time::Duration::from_millis(1600);

/// Peak amplitude of a note, about -18 dBFS.
const PEAK: f64 = 4000.0;
const RATE: f64 = 8000.0;
/// Where each note starts and how long it lasts, in milliseconds within the cycle.
const NOTES_MS: [(f64, f64); 2] = [(0.0, 350.0), (400.0, 550.0)];
/// Attack and release of each note, in milliseconds.
const RAMP_MS: f64 = 25.0;

/// Returns one cycle of the hold tone at 8 kHz, worked out once for the
/// process and shared by every call on hold; play it in a loop.
pub fn shared_hold_tone() -> Arc<[i16]> {
    static TONE: OnceLock<Arc<[i16]>> = OnceLock::new();
    TONE.get_or_init(|| hold_tone().into()).clone()
}

/// Returns one cycle of the hold tone at 8 kHz; play it in a loop.
pub fn hold_tone() -> Vec<i16> {
    let len = (HOLD_CYCLE.as_secs_f64() * RATE) as usize;
    let mut out = vec![0i16; len];
    for (&frequency, &(start_ms, length_ms)) in HOLD_NOTES.iter().zip(&NOTES_MS) {
        let start = (start_ms * RATE / 1000.0) as usize;
        let count = (length_ms * RATE / 1000.0) as usize;
        for n in 0..count {
            let t = n as f64 / RATE;
            let value = PEAK * envelope(t * 1000.0, length_ms) * (TAU * frequency * t).sin();
            if let Some(sample) = out.get_mut(start + n) {
                // The envelope is at most one, so the value stays well inside i16.
                *sample = value.round() as i16;
            }
        }
    }
    out
}

/// Raised-cosine attack, a gentle decay to half, and a raised-cosine release.
fn envelope(ms: f64, length_ms: f64) -> f64 {
    let attack = if ms < RAMP_MS {
        0.5 - 0.5 * (std::f64::consts::PI * ms / RAMP_MS).cos()
    } else {
        1.0
    };
    let left = length_ms - ms;
    let release = if left < RAMP_MS {
        0.5 - 0.5 * (std::f64::consts::PI * left.max(0.0) / RAMP_MS).cos()
    } else {
        1.0
    };
    let decay = 1.0 - 0.5 * (ms / length_ms).clamp(0.0, 1.0);
    attack * release * decay
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::goertzel_power;

    #[test]
    fn each_note_sounds_in_its_slot_and_the_rest_is_quiet() {
        let tone = hold_tone();
        assert_eq!(tone.len(), 12_800);
        let first = &tone[400..2400];
        let second = &tone[3400..6400];
        let pause = &tone[7600..12_800];
        assert!(goertzel_power(first, HOLD_NOTES[0], 8000) > 0.001);
        assert!(goertzel_power(first, HOLD_NOTES[1], 8000) < 0.0001);
        assert!(goertzel_power(second, HOLD_NOTES[1], 8000) > 0.001);
        assert!(goertzel_power(second, HOLD_NOTES[0], 8000) < 0.0001);
        assert!(pause.iter().all(|&s| s == 0));
        assert!(tone.iter().all(|s| s.unsigned_abs() <= 4000));
    }

    #[test]
    fn the_shared_tone_is_the_tone_worked_out_once() {
        let (a, b) = (shared_hold_tone(), shared_hold_tone());
        assert!(Arc::ptr_eq(&a, &b), "one copy for every call on hold");
        assert_eq!(&a[..], &hold_tone()[..]);
    }

    #[test]
    fn notes_start_and_end_without_a_click() {
        let tone = hold_tone();
        let jumps = tone.windows(2).map(|w| (w[1] - w[0]).unsigned_abs());
        // A sine of 4000 at 659 Hz moves at most ~2070 per sample; a click would be more.
        assert!(jumps.max().unwrap_or(0) < 2100);
        assert!(tone[0].unsigned_abs() < 50 && tone[2799].unsigned_abs() < 50);
    }
}
