//! Integer-ratio resampling between the phone rates (8 or 16 kHz) and the
//! room rate (48 kHz), mono, in streaming frames.
//!
//! Our own polyphase FIR rather than `rubato`: the ratios are the integers 6
//! and 3, so a single Kaiser-windowed sinc (48 taps per phase, β = 8, about
//! 80 dB stop band, cut-off at 0.475 × the phone rate) split into polyphase
//! branches does the job exactly, with no fractional-position bookkeeping,
//! a fixed 3 ms delay and no chunk-size latency. Each call takes any
//! whole number of phone-rate samples (a 20 ms frame is 160 or 320), keeps
//! its history in a buffer allocated once, and never allocates per frame.
//! The inner loops vectorise: the downsampler's is a contiguous dot
//! product, the upsampler's multiplies each input sample into all its
//! branches at once (a transposed table, one SIMD row per tap).

/// A phone-side sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneRate {
    /// 8 kHz: G.711.
    Hz8000,
    /// 16 kHz: G.722 and other wideband codecs.
    Hz16000,
}

impl PhoneRate {
    /// The rate in Hz.
    pub fn hz(self) -> u32 {
        match self {
            PhoneRate::Hz8000 => 8000,
            PhoneRate::Hz16000 => 16000,
        }
    }

    /// Samples in a 20 ms frame at this rate.
    pub fn frame_len(self) -> usize {
        self.hz() as usize / 50
    }

    /// 48 kHz divided by this rate.
    pub fn factor(self) -> usize {
        48_000 / self.hz() as usize
    }
}

/// Taps per polyphase branch.
const TAPS_PER_PHASE: usize = 48;
const KAISER_BETA: f64 = 8.0;

/// Kaiser-windowed sinc low-pass at 48 kHz with `len` taps and DC gain `gain`.
fn design(rate: PhoneRate, len: usize, gain: f64) -> Vec<f32> {
    let cutoff = 0.475 * f64::from(rate.hz()) / 48_000.0; // cycles per sample
    let mid = (len - 1) as f64 / 2.0;
    let i0_beta = bessel_i0(KAISER_BETA);
    let mut h: Vec<f64> = (0..len)
        .map(|n| {
            let t = n as f64 - mid;
            let sinc = if t == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f64::consts::PI * cutoff * t).sin() / (std::f64::consts::PI * t)
            };
            let r = t / mid;
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            sinc * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v *= gain / sum);
    h.into_iter().map(|v| v as f32).collect()
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64).powi(2);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Rounds half away from zero, saturating (Rust's float casts saturate, and
/// NaN becomes 0), without a call into libm's `roundf` per sample.
fn to_i16(v: f32) -> i16 {
    (v + 0.5f32.copysign(v)) as i16
}

/// Lanes of a row of the upsampler's table: at least the largest factor
/// (6), rounded up to what SIMD registers hold.
const LANES: usize = 8;

/// Phone rate → 48 kHz.
#[derive(Debug, Clone)]
pub struct Upsampler {
    factor: usize,
    /// The polyphase branches transposed: row `j` holds, in lane `p`, the
    /// tap of branch `p` that meets sample `j` of a chronological window of
    /// the input (lanes from `factor` on are zero). One pass over a window
    /// then yields all `factor` outputs of an input sample at once, with
    /// no per-output horizontal sum.
    table: Vec<[f32; LANES]>,
    /// `TAPS_PER_PHASE - 1` samples of history, then the current input.
    buf: Vec<f32>,
}

impl Upsampler {
    /// An upsampler from `rate` to 48 kHz, starting from silence.
    pub fn new(rate: PhoneRate) -> Self {
        let factor = rate.factor();
        let h = design(rate, factor * TAPS_PER_PHASE, factor as f64);
        let table = (0..TAPS_PER_PHASE)
            .map(|j| {
                let mut row = [0.0; LANES];
                for (p, lane) in row.iter_mut().enumerate().take(factor) {
                    *lane = h[p + (TAPS_PER_PHASE - 1 - j) * factor];
                }
                row
            })
            .collect();
        let mut buf = Vec::with_capacity(TAPS_PER_PHASE - 1 + 320);
        buf.resize(TAPS_PER_PHASE - 1, 0.0);
        Upsampler { factor, table, buf }
    }

    /// Output samples per input sample.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Resamples `input` into `output`, which must hold exactly
    /// `input.len() * factor()` samples.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<(), super::MediaError> {
        let expected = input.len() * self.factor;
        if output.len() != expected {
            return Err(super::MediaError::FrameSize {
                expected,
                got: output.len(),
            });
        }
        let hist = TAPS_PER_PHASE - 1;
        self.buf.truncate(hist);
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        for (i, out) in output.chunks_exact_mut(self.factor).enumerate() {
            let window = &self.buf[i..i + TAPS_PER_PHASE];
            let mut acc = [0.0f32; LANES];
            for (&x, row) in window.iter().zip(&self.table) {
                for (a, &t) in acc.iter_mut().zip(row) {
                    *a += x * t;
                }
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o = to_i16(a);
            }
        }
        let len = self.buf.len();
        self.buf.copy_within(len - hist.., 0);
        Ok(())
    }
}

/// 48 kHz → phone rate.
#[derive(Debug, Clone)]
pub struct Downsampler {
    factor: usize,
    /// The whole prototype filter, reversed.
    taps: Vec<f32>,
    /// `taps.len() - 1` samples of history, then the current input.
    buf: Vec<f32>,
}

impl Downsampler {
    /// A downsampler from 48 kHz to `rate`, starting from silence.
    pub fn new(rate: PhoneRate) -> Self {
        let factor = rate.factor();
        let mut taps = design(rate, factor * TAPS_PER_PHASE, 1.0);
        taps.reverse();
        let mut buf = Vec::with_capacity(taps.len() - 1 + 960);
        buf.resize(taps.len() - 1, 0.0);
        Downsampler { factor, taps, buf }
    }

    /// Input samples per output sample.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Resamples `input` (a multiple of `factor()` samples) into `output`,
    /// which must hold exactly `input.len() / factor()` samples.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<(), super::MediaError> {
        if output.len() * self.factor != input.len() {
            return Err(super::MediaError::FrameSize {
                expected: output.len() * self.factor,
                got: input.len(),
            });
        }
        let hist = self.taps.len() - 1;
        self.buf.truncate(hist);
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        for (m, o) in output.iter_mut().enumerate() {
            let start = m * self.factor;
            *o = to_i16(dot(&self.taps, &self.buf[start..start + self.taps.len()]));
        }
        let len = self.buf.len();
        self.buf.copy_within(len - hist.., 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn samples_round_half_away_from_zero_and_saturate() {
        for (v, want) in [
            (0.49, 0),
            (0.5, 1),
            (-0.5, -1),
            (1.49, 1),
            (-2.5, -3),
            (40000.0, 32767),
            (-40000.0, -32768),
            (f32::NAN, 0),
        ] {
            assert_eq!(to_i16(v), want, "{v}");
        }
    }

    use super::*;
    use crate::media::testutil::{dominant_freq, goertzel, sine, snr_db};

    /// Pushes `input` through up- then down-sampling in 20 ms frames.
    fn round_trip(rate: PhoneRate, input: &[i16]) -> (Vec<i16>, Vec<i16>) {
        let frame = rate.frame_len();
        let mut up = Upsampler::new(rate);
        let mut down = Downsampler::new(rate);
        let (mut wide, mut back) = (Vec::new(), Vec::new());
        let mut w = vec![0i16; frame * rate.factor()];
        let mut b = vec![0i16; frame];
        for chunk in input.chunks_exact(frame) {
            up.process(chunk, &mut w).unwrap();
            down.process(&w, &mut b).unwrap();
            wide.extend_from_slice(&w);
            back.extend_from_slice(&b);
        }
        (wide, back)
    }

    #[test]
    fn tone_440_survives_8k_48k_8k() {
        // 1.2 s of a -6 dBFS 440 Hz tone; judge the last second (whole cycles).
        let tone = sine(8000, 440.0, 16384.0, 9600);
        let (wide, back) = round_trip(PhoneRate::Hz8000, &tone);
        let tail = &back[1600..];
        assert_eq!(dominant_freq(tail, 8000), 440.0);
        let p440 = goertzel(tail, 8000, 440.0);
        for f in [300.0, 600.0, 880.0, 1320.0, 2000.0, 3000.0] {
            assert!(
                p440 > 1000.0 * goertzel(tail, 8000, f),
                "440 Hz not dominant over {f}"
            );
        }
        let snr = snr_db(tail, 8000, 440.0);
        let snr_wide = snr_db(&wide[9600..], 48000, 440.0);
        eprintln!("8k->48k SNR {snr_wide:.1} dB, 8k->48k->8k SNR {snr:.1} dB");
        assert!(snr > 30.0, "round-trip SNR {snr:.1} dB");
        assert!(snr_wide > 30.0, "upsampled SNR {snr_wide:.1} dB");
    }

    #[test]
    fn tone_440_survives_16k_48k_16k() {
        let tone = sine(16000, 440.0, 16384.0, 19200);
        let (_, back) = round_trip(PhoneRate::Hz16000, &tone);
        let snr = snr_db(&back[3200..], 16000, 440.0);
        eprintln!("16k->48k->16k SNR {snr:.1} dB");
        assert!(snr > 30.0, "round-trip SNR {snr:.1} dB");
    }

    #[test]
    fn upsampling_rejects_images() {
        // A 3 kHz tone at 8 kHz has images at 5, 11, 13 ... kHz after zero-stuffing.
        let tone = sine(8000, 3000.0, 16384.0, 8000);
        let (wide, _) = round_trip(PhoneRate::Hz8000, &tone);
        let tail = &wide[4800..];
        let signal = goertzel(tail, 48000, 3000.0);
        for image in [5000.0, 11000.0, 13000.0] {
            let ratio = 10.0 * (signal / goertzel(tail, 48000, image)).log10();
            assert!(ratio > 60.0, "image at {image} Hz only {ratio:.1} dB down");
        }
    }

    #[test]
    fn wrong_frame_size_is_an_error() {
        let mut up = Upsampler::new(PhoneRate::Hz8000);
        assert!(up.process(&[0; 160], &mut [0; 900]).is_err());
        let mut down = Downsampler::new(PhoneRate::Hz8000);
        assert!(down.process(&[0; 961], &mut [0; 160]).is_err());
    }
}
