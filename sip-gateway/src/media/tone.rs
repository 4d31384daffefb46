//! Sine tones and frequency measurement, for checking that audio got through.

use std::f64::consts::TAU;

/// A phase-continuous sine generator, so consecutive frames join cleanly.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    phase: f64,
    step: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// Creates a generator of `frequency` Hz at `sample_rate`, with a peak of `amplitude`.
    pub fn new(frequency: f64, amplitude: i16, sample_rate: u32) -> Self {
        Self {
            phase: 0.0,
            step: TAU * frequency / f64::from(sample_rate),
            amplitude: f64::from(amplitude),
        }
    }

    /// Fills `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            // The amplitude came from an i16, so the product stays in range.
            *s = (self.phase.sin() * self.amplitude).round() as i16;
            self.phase = (self.phase + self.step) % TAU;
        }
    }
}

/// Returns `len` samples of a sine tone.
pub fn sine(frequency: f64, amplitude: i16, sample_rate: u32, len: usize) -> Vec<i16> {
    let mut out = vec![0; len];
    ToneGenerator::new(frequency, amplitude, sample_rate).fill(&mut out);
    out
}

/// Returns the power of `frequency` in `samples` by the Goertzel algorithm,
/// normalised so that a full-scale sine gives about 0.25.
pub fn goertzel_power(samples: &[i16], frequency: f64, sample_rate: u32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (TAU * frequency / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power / (n * n)
}

/// Returns the candidate frequency with the most power in `samples`, or
/// `None` when none of them rises above `min_power` (silence or noise).
pub fn dominant_frequency(
    samples: &[i16],
    candidates: &[f64],
    sample_rate: u32,
    min_power: f64,
) -> Option<f64> {
    candidates
        .iter()
        .map(|&f| (f, goertzel_power(samples, f, sample_rate)))
        .filter(|&(_, p)| p >= min_power)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(f, _)| f)
}

/// Estimates the frequency of a single tone from its zero crossings.
pub fn zero_crossing_frequency(samples: &[i16], sample_rate: u32) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    let seconds = samples.len() as f64 / f64::from(sample_rate);
    crossings as f64 / (2.0 * seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANDIDATES: [f64; 6] = [300.0, 440.0, 697.0, 1000.0, 1209.0, 2000.0];

    #[test]
    fn finds_the_tone_that_was_generated() {
        for &f in &CANDIDATES {
            let pcm = sine(f, 8000, 8000, 1600);
            assert_eq!(dominant_frequency(&pcm, &CANDIDATES, 8000, 0.001), Some(f));
            assert!((zero_crossing_frequency(&pcm, 8000) - f).abs() < f * 0.02 + 5.0);
        }
    }

    #[test]
    fn silence_has_no_dominant_frequency() {
        assert_eq!(
            dominant_frequency(&[0; 800], &CANDIDATES, 8000, 0.001),
            None
        );
        assert_eq!(dominant_frequency(&[], &CANDIDATES, 8000, 0.001), None);
    }

    #[test]
    fn full_scale_power_is_about_a_quarter() {
        let pcm = sine(1000.0, i16::MAX, 8000, 8000);
        let p = goertzel_power(&pcm, 1000.0, 8000);
        assert!((p - 0.25).abs() < 0.01, "{p}");
    }

    #[test]
    fn generator_is_phase_continuous_across_frames() {
        let whole = sine(440.0, 1000, 8000, 320);
        let mut gen = ToneGenerator::new(440.0, 1000, 8000);
        let mut a = [0; 160];
        let mut b = [0; 160];
        gen.fill(&mut a);
        gen.fill(&mut b);
        assert_eq!(&whole[..160], &a);
        for (x, y) in whole[160..].iter().zip(b) {
            assert!((x - y).abs() <= 1);
        }
    }
}
