//! Signal measurements for received media: RMS energy and the dominant
//! frequency of a tone, from mono `f32` samples.
//!
//! Contract: pure functions, no allocation beyond the call, never panic (an
//! empty or too short input measures as 0).

/// Root mean square of `samples` (0 for an empty slice).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

/// `samples` under a Hann window, as f64.
fn hann(samples: &[f32]) -> Vec<f64> {
    let step = 2.0 * std::f64::consts::PI / samples.len() as f64;
    samples
        .iter()
        .enumerate()
        .map(|(i, &x)| f64::from(x) * (0.5 - 0.5 * (step * i as f64).cos()))
        .collect()
}

/// Power of (windowed) `samples` at `hz` (Goertzel), normalised by length.
fn goertzel(samples: &[f64], rate: f64, hz: f64) -> f64 {
    let n = samples.len() as f64;
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

/// The frequency in `lo..=hi` Hz with the most power, scanned in `step` Hz.
fn peak(samples: &[f32], rate: f64, lo: f64, hi: f64, step: f64) -> f64 {
    let windowed = hann(samples);
    let mut best = (lo, f64::MIN);
    let mut hz = lo;
    while hz <= hi {
        let p = goertzel(&windowed, rate, hz);
        if p > best.1 {
            best = (hz, p);
        }
        hz += step;
    }
    best.0
}

/// The dominant frequency of `samples` taken at `rate` Hz, between 20 Hz
/// and 8 kHz: a coarse scan on the last 50 ms (10 Hz steps), then a fine
/// scan (0.25 Hz steps, +-20 Hz) on the whole input. Built for a test tone;
/// returns 0 for less than 50 ms of input.
pub fn dominant_hz(samples: &[f32], rate: u32) -> f32 {
    let rate = f64::from(rate);
    let short = (rate * 0.05) as usize;
    if rate <= 0.0 || samples.len() < short || short == 0 {
        return 0.0;
    }
    let top = (rate / 2.0 - 20.0).min(8000.0);
    let coarse = peak(&samples[samples.len() - short..], rate, 20.0, top, 10.0);
    let fine = peak(
        samples,
        rate,
        (coarse - 20.0).max(1.0),
        (coarse + 20.0).min(top),
        0.25,
    );
    fine as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amp: f32, secs: f32) -> Vec<f32> {
        let n = (48_000.0 * secs) as usize;
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * hz * i as f32 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn finds_a_pure_tone() {
        for hz in [440.0, 880.0, 1234.5] {
            let got = dominant_hz(&tone(hz, 0.5, 0.5), 48_000);
            assert!((got - hz).abs() < 1.0, "{hz}: {got}");
        }
    }

    #[test]
    fn rms_of_a_sine_is_amp_over_root_two() {
        let r = rms(&tone(440.0, 0.8, 0.5));
        assert!((r - 0.8 / 2f32.sqrt()).abs() < 0.01, "{r}");
    }

    #[test]
    fn silence_and_short_input_measure_zero() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(dominant_hz(&[0.0; 100], 48_000), 0.0);
    }
}
