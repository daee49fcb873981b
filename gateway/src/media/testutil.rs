//! Signal helpers for the tests: tones, Goertzel, SNR of a tone.

use std::f64::consts::PI;

/// `len` samples of a sine of `freq` Hz and `amp` peak at `rate` Hz.
pub fn sine(rate: u32, freq: f64, amp: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| (amp * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// Goertzel power of `x` at `freq` (normalised by length²).
pub fn goertzel(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    p / (x.len() as f64).powi(2)
}

/// The strongest of 10 Hz steps from 100 Hz up to 4 kHz (or 0.45 × `rate`).
pub fn dominant_freq(x: &[i16], rate: u32) -> f64 {
    let top = (0.45 * f64::from(rate)).min(4000.0) as u32 / 10;
    (10..=top)
        .map(|k| f64::from(k) * 10.0)
        .max_by(|a, b| goertzel(x, rate, *a).total_cmp(&goertzel(x, rate, *b)))
        .expect("the range is not empty")
}

/// Ratio in dB of the power of the best-fitting `freq` sinusoid in `x` to
/// the power of everything else (noise, distortion, other tones). `x`
/// should hold a whole number of cycles for the fit to be exact.
pub fn snr_db(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / f64::from(rate);
    let n = x.len() as f64;
    let (mut c, mut s) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        c += f64::from(v) * (w * i as f64).cos();
        s += f64::from(v) * (w * i as f64).sin();
    }
    let (a, b) = (2.0 * c / n, 2.0 * s / n);
    let mut tone = 0.0;
    let mut rest = 0.0;
    for (i, &v) in x.iter().enumerate() {
        let fit = a * (w * i as f64).cos() + b * (w * i as f64).sin();
        tone += fit * fit;
        rest += (f64::from(v) - fit).powi(2);
    }
    10.0 * (tone / rest.max(1e-9)).log10()
}
