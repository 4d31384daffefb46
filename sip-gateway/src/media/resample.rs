//! Conversion between telephone audio (8 kHz) and Opus's 48 kHz, by a factor of six.
//!
//! Both directions share one linear-phase low-pass FIR: a Kaiser-windowed sinc
//! with its −6 dB point at 4 kHz, flat to 3.4 kHz and at least 60 dB down from
//! 4.6 kHz, so nothing the decimator keeps can alias into the telephone band
//! (300–3400 Hz), and the interpolator's images of the 8 kHz spectrum are gone
//! before Opus sees them. 145 taps delay each direction by 1.5 ms: 72 samples
//! at 48 kHz, exactly 12 at 8 kHz.

use std::sync::OnceLock;

/// The conversion factor between 8 kHz and 48 kHz.
pub const FACTOR: usize = 6;

/// Taps of the designed filter; odd, so the delay is a whole number of samples.
const DESIGNED_TAPS: usize = 145;
/// Taps as stored: padded with zeros to a multiple of the factor, for the polyphase interpolator.
const TAPS: usize = DESIGNED_TAPS.div_ceil(FACTOR) * FACTOR;
/// Taps each phase of the interpolator uses.
const PHASE_TAPS: usize = TAPS / FACTOR;
/// The −6 dB point, as a fraction of 48 kHz.
const CUTOFF: f64 = 4000.0 / 48_000.0;
/// Kaiser's β for about 60 dB of stop-band attenuation.
const KAISER_BETA: f64 = 5.65;

/// Decimates 48 kHz audio to 8 kHz through the anti-aliasing filter.
#[derive(Debug, Clone)]
pub struct Decimator {
    /// The last `DESIGNED_TAPS - 1` inputs, oldest first, then the block being filtered.
    window: Vec<f32>,
    /// How many inputs to skip before the next output sample is due.
    skip: usize,
}

/// Interpolates 8 kHz audio to 48 kHz through the same filter.
#[derive(Debug, Clone)]
pub struct Interpolator {
    /// The last `PHASE_TAPS - 1` inputs, oldest first, then the block being filtered.
    window: Vec<f32>,
}

impl Decimator {
    /// Creates a decimator whose history is silence.
    pub fn new() -> Self {
        Decimator {
            window: vec![0.0; DESIGNED_TAPS - 1],
            skip: 0,
        }
    }

    /// Appends the 8 kHz samples that `input` (at 48 kHz) yields to `out`.
    ///
    /// Blocks of any length may follow each other; the output stays on one
    /// sample grid, one sample per six inputs.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        // The padding is for the interpolator's phases; here it would only add delay.
        let taps = &filter()[..DESIGNED_TAPS];
        let history = DESIGNED_TAPS - 1;
        self.window.extend(input.iter().map(|&s| f32::from(s)));
        let mut newest = self.skip;
        while newest < input.len() {
            let end = history + newest + 1;
            // The filter is symmetric, so it needs no reversing.
            out.push(saturate(dot(&self.window[end - DESIGNED_TAPS..end], taps)));
            newest += FACTOR;
        }
        self.skip = newest - input.len();
        self.window.drain(..input.len());
    }
}

impl Default for Decimator {
    fn default() -> Self {
        Self::new()
    }
}

impl Interpolator {
    /// Creates an interpolator whose history is silence.
    pub fn new() -> Self {
        Interpolator {
            window: vec![0.0; PHASE_TAPS - 1],
        }
    }

    /// Appends the 48 kHz samples for `input` (at 8 kHz) to `out`: six for each.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let phases = phases();
        let history = PHASE_TAPS - 1;
        self.window.extend(input.iter().map(|&s| f32::from(s)));
        out.reserve(input.len() * FACTOR);
        for n in 0..input.len() {
            // Oldest first, ending with input n.
            let recent = &self.window[n..n + history + 1];
            for phase in phases {
                out.push(saturate(dot(recent, phase)));
            }
        }
        self.window.drain(..input.len());
    }
}

impl Default for Interpolator {
    fn default() -> Self {
        Self::new()
    }
}

/// Returns the dot product of two slices of equal length.
///
/// Eight running sums rather than one let the compiler use vector registers,
/// which it may not do for a single sum of floats (that would reorder it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_main, a_rest) = a.split_at(a.len() - a.len() % LANES);
    let (b_main, b_rest) = b.split_at(a_main.len());
    for (x, h) in a_main.chunks_exact(LANES).zip(b_main.chunks_exact(LANES)) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * h[lane];
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, h)| x * h).sum();
    sums.iter().sum::<f32>() + rest
}

fn saturate(x: f32) -> i16 {
    // `as` saturates at the i16 range; rounding keeps silence silent.
    x.round() as i16
}

/// Returns the low-pass filter's taps, unit gain at 0 Hz.
fn filter() -> &'static [f32; TAPS] {
    static TAPS_48K: OnceLock<[f32; TAPS]> = OnceLock::new();
    TAPS_48K.get_or_init(design)
}

/// Returns the interpolator's polyphase filters: per output phase, its taps oldest input first.
///
/// Output `6n + p` is `6 × Σ h[6j + p] · x[n − j]`: zero-stuffing costs a gain
/// of six, which the taps make up.
fn phases() -> &'static [[f32; PHASE_TAPS]; FACTOR] {
    static PHASES: OnceLock<[[f32; PHASE_TAPS]; FACTOR]> = OnceLock::new();
    PHASES.get_or_init(|| {
        let h = filter();
        let mut phases = [[0.0; PHASE_TAPS]; FACTOR];
        for (p, phase) in phases.iter_mut().enumerate() {
            for (i, tap) in phase.iter_mut().enumerate() {
                // Position i in the window holds x[n − (PHASE_TAPS − 1 − i)].
                let j = PHASE_TAPS - 1 - i;
                *tap = h[FACTOR * j + p] * FACTOR as f32;
            }
        }
        phases
    })
}

fn design() -> [f32; TAPS] {
    let mut h = [0.0f64; TAPS];
    let middle = (DESIGNED_TAPS - 1) as f64 / 2.0;
    for (i, tap) in h.iter_mut().take(DESIGNED_TAPS).enumerate() {
        let t = i as f64 - middle;
        let sinc = if t == 0.0 {
            2.0 * CUTOFF
        } else {
            (2.0 * std::f64::consts::PI * CUTOFF * t).sin() / (std::f64::consts::PI * t)
        };
        let ratio = t / middle;
        let window = bessel_i0(KAISER_BETA * (1.0 - ratio * ratio).sqrt()) / bessel_i0(KAISER_BETA);
        *tap = sinc * window;
    }
    let sum: f64 = h.iter().sum();
    h.map(|tap| (tap / sum) as f32)
}

/// The modified Bessel function of the first kind, order zero, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let quarter_x2 = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..50 {
        term *= quarter_x2 / (k * k) as f64;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::sine;

    /// Round trip delay at 8 kHz: 12 samples each way.
    const ROUND_TRIP_DELAY: usize = 24;

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len() as f64).sqrt()
    }

    #[test]
    fn a_tone_survives_the_round_trip_through_48_khz() {
        let tone = sine(1000.0, 10_000, 8000, 8000);
        let mut up = Interpolator::new();
        let mut down = Decimator::new();
        let mut wide = Vec::new();
        let mut back = Vec::new();
        // In 20 ms frames, as the agent leg feeds them.
        for frame in tone.chunks(160) {
            wide.clear();
            up.process(frame, &mut wide);
            assert_eq!(wide.len(), frame.len() * FACTOR);
            down.process(&wide, &mut back);
        }
        assert_eq!(back.len(), tone.len());
        let settled = 2 * TAPS;
        let error: Vec<i16> = back[settled..]
            .iter()
            .zip(&tone[settled - ROUND_TRIP_DELAY..])
            .map(|(b, t)| b - t)
            .collect();
        let worst = error.iter().map(|e| e.unsigned_abs()).max().unwrap_or(0);
        assert!(
            rms(&error) < 0.002 * rms(&tone),
            "error {} of {}",
            rms(&error),
            rms(&tone)
        );
        assert!(worst < 50, "worst error {worst}");
    }

    #[test]
    fn the_48_khz_side_holds_the_tone_at_its_own_frequency() {
        let tone = sine(1000.0, 10_000, 8000, 1600);
        let mut wide = Vec::new();
        Interpolator::new().process(&tone, &mut wide);
        let direct = sine(1000.0, 10_000, 48_000, 9600);
        // Interpolated and directly generated 48 kHz tones agree after the filter's delay.
        let error: Vec<i16> = wide[2 * TAPS..]
            .iter()
            .zip(&direct[2 * TAPS - 72..])
            .map(|(w, d)| w - d)
            .collect();
        assert!(rms(&error) < 0.002 * rms(&direct), "error {}", rms(&error));
    }

    #[test]
    fn the_decimator_stops_what_would_alias() {
        // 6 kHz at 48 kHz would fold onto 2 kHz at 8 kHz if samples were only dropped.
        let above = sine(6000.0, 10_000, 48_000, 48_000);
        let mut down = Decimator::new();
        let mut out = Vec::new();
        for frame in above.chunks(960) {
            down.process(frame, &mut out);
        }
        assert_eq!(out.len(), 8000);
        let naive: Vec<i16> = above.iter().step_by(FACTOR).copied().collect();
        let kept = rms(&out[TAPS..]);
        let attenuation_db = 20.0 * (rms(&naive) / kept.max(1e-9)).log10();
        assert!(
            attenuation_db > 55.0,
            "6 kHz only {attenuation_db:.1} dB down ({kept} rms left)"
        );
        // The pass band is untouched: 3 kHz keeps its level.
        let inside = sine(3000.0, 10_000, 48_000, 48_000);
        let mut out = Vec::new();
        Decimator::new().process(&inside, &mut out);
        let ratio = rms(&out[TAPS..]) / rms(&inside);
        assert!((ratio - 1.0).abs() < 0.01, "3 kHz gain {ratio}");
    }

    #[test]
    fn odd_block_lengths_keep_one_sample_grid() {
        let tone = sine(440.0, 8000, 48_000, 4800);
        let mut whole = Vec::new();
        Decimator::new().process(&tone, &mut whole);
        let mut pieces = Vec::new();
        let mut down = Decimator::new();
        for block in tone.chunks(7) {
            down.process(block, &mut pieces);
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn the_filter_has_unit_gain_and_is_symmetric() {
        let h = filter();
        let sum: f32 = h.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        for i in 0..DESIGNED_TAPS {
            assert!((h[i] - h[DESIGNED_TAPS - 1 - i]).abs() < 1e-7);
        }
        assert!(h[DESIGNED_TAPS..].iter().all(|&t| t == 0.0));
    }
}
