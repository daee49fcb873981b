//! Measurements on 8 kHz telephone audio (16-bit PCM): RMS and the dominant
//! frequency of a tone.
//!
//! Contract: pure functions, never panic. [`dominant_hz`] scans
//! [`SCAN_LOW_HZ`]..=[`SCAN_HIGH_HZ`] in [`SCAN_STEP_HZ`] steps with the
//! Goertzel algorithm on 100 ms Hann-windowed blocks and adds the blocks'
//! powers, so phase jumps between blocks (packet loss, streams joined end to
//! end) do not smear the peak; the peak is then refined between its
//! neighbours by a parabola through their log powers, to within a few Hz
//! for a pure tone. Input shorter than 20 ms, or quieter than
//! [`SILENCE_RMS`], has no dominant frequency.
//!
//! (`webrtc::analysis` measures 48 kHz float audio over the whole band; this
//! one is for the narrow band a G.711 call carries.)

use std::f64::consts::PI;

use super::pcap::SAMPLE_RATE;

/// The scan's range and resolution, in Hz.
pub const SCAN_LOW_HZ: f64 = 100.0;
pub const SCAN_HIGH_HZ: f64 = 3500.0;
pub const SCAN_STEP_HZ: f64 = 10.0;
/// Below this RMS (in 16-bit sample units, about -60 dBFS) audio counts as
/// silence.
pub const SILENCE_RMS: f64 = 32.0;
/// Samples per analysis block (100 ms at 8 kHz).
const BLOCK: usize = 800;
/// The shortest input measured (20 ms at 8 kHz).
const SHORTEST: usize = 160;

/// Root mean square of `pcm`, in sample units (0 for no input).
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / pcm.len() as f64).sqrt()
}

/// The strongest frequency of 8 kHz `pcm` (see the module contract).
pub fn dominant_hz(pcm: &[i16]) -> Option<f64> {
    if pcm.len() < SHORTEST || rms(pcm) < SILENCE_RMS {
        return None;
    }
    let block = BLOCK.min(pcm.len());
    let window: Vec<f64> = (0..block)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / block as f64).cos())
        .collect();
    let steps = ((SCAN_HIGH_HZ - SCAN_LOW_HZ) / SCAN_STEP_HZ).round() as usize;
    let freqs: Vec<f64> = (0..=steps)
        .map(|i| SCAN_LOW_HZ + SCAN_STEP_HZ * i as f64)
        .collect();
    let mut power = vec![0.0f64; freqs.len()];
    let mut windowed = vec![0.0f64; block];
    // Whole blocks only; the remainder at the front is left out.
    for chunk in pcm[pcm.len() % block..].chunks_exact(block) {
        let mean = chunk.iter().map(|&s| f64::from(s)).sum::<f64>() / block as f64;
        for ((w, &s), &h) in windowed.iter_mut().zip(chunk).zip(&window) {
            *w = (f64::from(s) - mean) * h;
        }
        for (p, &hz) in power.iter_mut().zip(&freqs) {
            *p += goertzel(&windowed, hz);
        }
    }
    let (peak, _) = power.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let mut hz = freqs[peak];
    if peak > 0 && peak + 1 < power.len() {
        // A Hann main lobe is close to a parabola in log power.
        let (l, c, r) = (
            power[peak - 1].max(f64::MIN_POSITIVE).ln(),
            power[peak].max(f64::MIN_POSITIVE).ln(),
            power[peak + 1].max(f64::MIN_POSITIVE).ln(),
        );
        let curvature = l - 2.0 * c + r;
        if curvature < 0.0 {
            hz += SCAN_STEP_HZ * (0.5 * (l - r) / curvature).clamp(-0.5, 0.5);
        }
    }
    Some(hz)
}

/// The RMS amplitude of the `hz` component of `pcm` (in sample units: a
/// pure tone of peak A gives about A/√2), for telling several tones apart.
pub fn tone_level(pcm: &[i16], hz: f64) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let samples: Vec<f64> = pcm.iter().map(|&s| f64::from(s)).collect();
    let n = samples.len() as f64;
    (2.0 * goertzel(&samples, hz)).sqrt() / n
}

/// Power of `samples` at `hz` (Goertzel; any frequency, not only bin centres).
fn goertzel(samples: &[f64], hz: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * hz / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `secs` of a sine at `hz` with `peak` amplitude, starting at `phase`.
    fn tone(hz: f64, peak: f64, secs: f64, phase: f64) -> Vec<i16> {
        let n = (secs * f64::from(SAMPLE_RATE)) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                (peak * (2.0 * PI * hz * t + phase).sin()).round() as i16
            })
            .collect()
    }

    #[test]
    fn finds_tones_across_the_band_to_within_a_few_hz() {
        for hz in [150.0, 440.0, 1000.0, 1004.0, 2222.0, 3400.0] {
            let got = dominant_hz(&tone(hz, 8000.0, 0.5, 0.3)).unwrap();
            assert!((got - hz).abs() <= 3.0, "{hz} Hz measured as {got}");
        }
    }

    #[test]
    fn finds_the_louder_of_two_tones_under_noise() {
        let loud = tone(697.0, 6000.0, 1.0, 0.0);
        let quiet = tone(1633.0, 2000.0, 1.0, 1.0);
        // Deterministic pseudo-noise, +-1500.
        let mut seed = 1u32;
        let mixed: Vec<i16> = loud
            .iter()
            .zip(&quiet)
            .map(|(&a, &b)| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let noise = i32::from((seed >> 16) as u16 % 3001) - 1500;
                (i32::from(a) + i32::from(b) + noise) as i16
            })
            .collect();
        let got = dominant_hz(&mixed).unwrap();
        assert!((got - 697.0).abs() <= 5.0, "{got}");
    }

    #[test]
    fn phase_jumps_between_joined_streams_do_not_move_the_peak() {
        let mut joined = Vec::new();
        for (i, secs) in [0.23, 0.31, 0.17, 0.4].into_iter().enumerate() {
            joined.extend(tone(1200.0, 5000.0, secs, i as f64 * 2.1));
        }
        let got = dominant_hz(&joined).unwrap();
        assert!((got - 1200.0).abs() <= 5.0, "{got}");
    }

    #[test]
    fn short_or_silent_input_has_no_frequency() {
        assert_eq!(dominant_hz(&[]), None);
        assert_eq!(dominant_hz(&tone(440.0, 8000.0, 0.015, 0.0)), None);
        assert_eq!(dominant_hz(&[3; 8000]), None);
        assert_eq!(dominant_hz(&tone(440.0, 20.0, 1.0, 0.0)), None);
        // 20 ms is enough, if coarse.
        let got = dominant_hz(&tone(440.0, 8000.0, 0.02, 0.0)).unwrap();
        assert!((got - 440.0).abs() <= 60.0, "{got}");
    }

    #[test]
    fn tone_levels_tell_two_tones_apart() {
        let a = tone(600.0, 8000.0, 1.0, 0.0);
        let b = tone(1000.0, 4000.0, 1.0, 0.3);
        let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let (l600, l1000, l440) = (
            tone_level(&mix, 600.0),
            tone_level(&mix, 1000.0),
            tone_level(&mix, 440.0),
        );
        assert!((l600 - 8000.0 / 2f64.sqrt()).abs() < 300.0, "{l600}");
        assert!((l1000 - 4000.0 / 2f64.sqrt()).abs() < 300.0, "{l1000}");
        assert!(l440 < 100.0, "{l440}");
    }

    #[test]
    fn rms_of_a_sine_is_its_peak_over_root_two() {
        let got = rms(&tone(300.0, 10_000.0, 1.0, 0.0));
        assert!((got - 10_000.0 / 2f64.sqrt()).abs() < 10.0, "{got}");
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms(&[-5, 5, -5, 5]), 5.0);
    }
}
