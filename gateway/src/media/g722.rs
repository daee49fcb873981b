//! ITU-T G.722 (7 kHz audio coding within 64 kbit/s), mode 1: 16 kHz
//! PCM ↔ one byte per two samples. RTP payload type 9 (RFC 3551: its RTP
//! clock is 8000 Hz although the audio is sampled at 16 kHz).
//!
//! Written here from the Recommendation rather than taken from a crate. The
//! only candidate on crates.io, `ezk-g722` 0.1.2, is a translation of the C
//! `libg722` wrapped in the `ezk` media framework (it pulls in `ezk`,
//! `ezk-rtp` and `bytes`), has no tests and one maintainer. The algorithm
//! itself is short and fully specified:
//!
//! - a 24-tap quadrature mirror filter splits the 16 kHz input into a lower
//!   and an upper 8 kHz sub-band ([`G722Encoder`]) and joins them again on
//!   the way back ([`G722Decoder`]);
//! - each sub-band is coded by ADPCM with a backward-adaptive scale factor
//!   and a predictor of two poles and six zeros, all in 16-bit fixed point:
//!   6 bits per sample in the lower band (only the 4 most significant of
//!   them drive the adaptation, so the stream stays decodable at 48 and 56
//!   kbit/s), 2 bits in the upper band.
//!
//! The arithmetic follows the Recommendation's blocks (QUANTL, INVQAL,
//! LOGSCL, SCALEL, UPPOL1/2, UPZERO, FILTEP, FILTEZ and their upper-band
//! twins) with its saturation rules, because a G.722 decoder tracks the
//! encoder's predictor from the codes alone: an encoder that rounds
//! differently from the phone's decoder is heard as distortion, so this is
//! not a place for "close enough". Only the 64 kbit/s mode is implemented
//! (the one RTP uses); the tables are the Recommendation's, restated as
//! per-interval magnitudes with the code assignment as formulas. Checked
//! against an independent implementation (libspandsp, through Python's
//! ctypes): the encoder's codes are identical on 4 s of chirp, tone and
//! noise including clipping, and so is the decoder's output except where it
//! overflows 16 bits (spandsp wraps, we saturate); a hash of that comparison
//! is kept as a test.
//!
//! Decoding is infallible and total: every byte is a valid code pair (the
//! four lower-band codes the encoder never emits decode as the Recommendation
//! says), so random bytes from the network produce noise, never a panic.

use super::MediaError;

/// QMF coefficients h(0)..h(23) (the Recommendation's Table, ×2^13).
const QMF: [i32; 24] = [
    3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32,
    -156, 12, 53, -11, -11, 3,
];

/// Lower band: boundaries between the 30 magnitude intervals of the 6-bit
/// quantizer, in units of the scale factor / 4096 (QUANTL).
const LOW_BOUNDS: [i32; 29] = [
    35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023,
    1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
];

/// Lower band: reconstruction magnitude of each 6-bit interval 1..=30, in
/// units of the scale factor / 32768 (INVQBL, 64 kbit/s).
const LOW_LEVELS: [i32; 30] = [
    136, 432, 728, 1040, 1360, 1688, 2032, 2400, 2776, 3168, 3576, 4008, 4464, 4944, 5456, 6000,
    6576, 7192, 7856, 8576, 9360, 10232, 11192, 12280, 13512, 14984, 16704, 19008, 21904, 24808,
];

/// Lower band, 4-bit view (the 6-bit code without its two least significant
/// bits): reconstruction magnitude of group 0..=7 (INVQAL). Group g > 0
/// spans 6-bit intervals 4g-1..=4g+2 and sits on the bound between its
/// second and third, `8 × LOW_BOUNDS[4g - 1]` (checked in the tests).
const LOW_GROUP_LEVELS: [i32; 8] = [0, 1200, 2584, 4240, 6288, 8968, 12896, 20456];

/// Lower band: log scale factor increment for each 4-bit group (LOGSCL).
const LOW_GROUP_WEIGHTS: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];

/// Upper band: the one decision bound (×scale/4096), the two magnitudes
/// (×scale/32768) and their log scale factor increments (QUANTH, INVQAH, LOGSCH).
const HIGH_BOUND: i32 = 564;
const HIGH_LEVELS: [i32; 2] = [1616, 7408];
const HIGH_WEIGHTS: [i32; 2] = [-214, 798];

/// 2^(i/32) × 2048, rounded: the log-to-linear table of SCALEL/SCALEH.
const ANTILOG: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

/// Saturates to the 16-bit range the Recommendation computes in.
fn sat(v: i32) -> i32 {
    v.clamp(-32768, 32767)
}

/// The 6-bit lower-band code of interval `m` (1..=30) with the given sign.
fn low_code(negative: bool, m: usize) -> u8 {
    debug_assert!((1..=30).contains(&m));
    let m = m as u8;
    match (negative, m) {
        (false, _) => 62 - m,
        (true, 1) => 63,
        (true, 2) => 62,
        (true, _) => 34 - m,
    }
}

/// The signed 6-bit reconstruction level of `code` (×scale/32768).
fn low_level6(code: u8) -> i32 {
    match code & 0x3F {
        // Never sent by an encoder; the Recommendation decodes them as -136.
        0..=3 => -LOW_LEVELS[0],
        c @ 4..=31 => -LOW_LEVELS[(34 - c) as usize - 1],
        c @ 32..=61 => LOW_LEVELS[(62 - c) as usize - 1],
        62 => -LOW_LEVELS[1],
        _ => -LOW_LEVELS[0],
    }
}

/// The 4-bit group (0..=7) and signed level (×scale/32768) of a 6-bit code.
fn low_group(code: u8) -> (usize, i32) {
    match (code & 0x3F) >> 2 {
        c @ 1..=7 => {
            let g = 8 - c as usize;
            (g, -LOW_GROUP_LEVELS[g])
        }
        c @ 8..=14 => {
            let g = 15 - c as usize;
            (g, LOW_GROUP_LEVELS[g])
        }
        _ => (0, 0),
    }
}

/// The 2-bit upper-band code: bit 1 set for a non-negative difference, bit 0
/// set for the small magnitude.
fn high_code(negative: bool, large: bool) -> u8 {
    (u8::from(!negative) << 1) | u8::from(!large)
}

/// Magnitude index (0 small, 1 large) and signed level of an upper-band code.
fn high_level(code: u8) -> (usize, i32) {
    let large = usize::from(code & 1 == 0);
    let level = HIGH_LEVELS[large];
    (large, if code & 2 == 0 { -level } else { level })
}

/// Which sub-band an ADPCM state codes: they differ only in their scale
/// factor range.
#[derive(Debug, Clone, Copy)]
enum Sub {
    Low,
    High,
}

impl Sub {
    /// Upper limit of the log scale factor.
    fn max_log(self) -> i32 {
        match self {
            Sub::Low => 18432,
            Sub::High => 22528,
        }
    }

    /// Base shift of the log-to-linear conversion.
    fn shift(self) -> i32 {
        match self {
            Sub::Low => 8,
            Sub::High => 10,
        }
    }
}

/// The ADPCM state of one sub-band, shared by encoder and decoder.
#[derive(Debug, Clone)]
struct Band {
    sub: Sub,
    /// Log-domain scale factor (NBL / NBH).
    log_scale: i32,
    /// Linear scale factor (DETL / DETH).
    scale: i32,
    /// Pole coefficients a1, a2 (Q14).
    poles: [i32; 2],
    /// Zero coefficients b1..b6 (Q14).
    zeros: [i32; 6],
    /// Quantized differences d(n-1)..d(n-6).
    diffs: [i32; 6],
    /// Reconstructed signal r(n-1), r(n-2).
    recon: [i32; 2],
    /// Partially reconstructed signal p(n-1), p(n-2).
    partial: [i32; 2],
    /// Output of the zero section for the next sample.
    zero_part: i32,
    /// Prediction of the next sample.
    estimate: i32,
}

impl Band {
    fn new(sub: Sub) -> Self {
        Band {
            sub,
            log_scale: 0,
            scale: match sub {
                Sub::Low => 32,
                Sub::High => 8,
            },
            poles: [0; 2],
            zeros: [0; 6],
            diffs: [0; 6],
            recon: [0; 2],
            partial: [0; 2],
            zero_part: 0,
            estimate: 0,
        }
    }

    /// LOGSCL/LOGSCH then SCALEL/SCALEH: leak the log scale factor, add the
    /// code's weight, limit, and convert to the linear scale factor.
    fn adapt_scale(&mut self, weight: i32) {
        let log = ((self.log_scale * 127) >> 7) + weight;
        self.log_scale = log.clamp(0, self.sub.max_log());
        let mantissa = ANTILOG[((self.log_scale >> 6) & 31) as usize];
        let shift = self.sub.shift() - (self.log_scale >> 11);
        let linear = if shift < 0 {
            mantissa << -shift
        } else {
            mantissa >> shift
        };
        self.scale = linear << 2;
    }

    /// The predictor's step for quantized difference `d`: reconstruct, adapt
    /// poles and zeros, shift the delay lines, predict the next sample.
    fn predict(&mut self, d: i32) {
        let r = sat(self.estimate + d);
        let p = sat(self.zero_part + d);
        // The Recommendation's sign is the top bit: zero counts as positive.
        let (s0, s1, s2) = (p < 0, self.partial[0] < 0, self.partial[1] < 0);

        // UPPOL2.
        let a1x4 = sat(self.poles[0] << 2);
        let pull = if s0 == s1 { -a1x4 } else { a1x4 }.min(32767);
        let a2 =
            ((pull >> 7) + if s0 == s2 { 128 } else { -128 } + ((self.poles[1] * 32512) >> 15))
                .clamp(-12288, 12288);
        // UPPOL1.
        let limit = 15360 - a2;
        let a1 = sat(if s0 == s1 { 192 } else { -192 } + ((self.poles[0] * 32640) >> 15))
            .clamp(-limit, limit);
        // UPZERO.
        let step = if d == 0 { 0 } else { 128 };
        for (b, &old) in self.zeros.iter_mut().zip(&self.diffs) {
            let nudge = if (old < 0) == (d < 0) { step } else { -step };
            *b = sat(nudge + ((*b * 32640) >> 15));
        }

        // DELAYA.
        self.diffs.copy_within(0..5, 1);
        self.diffs[0] = d;
        self.recon = [r, self.recon[0]];
        self.partial = [p, self.partial[0]];
        self.poles = [a1, a2];

        // FILTEP, FILTEZ, PREDIC.
        let poles: i32 = self
            .poles
            .iter()
            .zip(&self.recon)
            .map(|(&a, &r)| (a * sat(r + r)) >> 15)
            .sum();
        let zeros: i32 = self
            .zeros
            .iter()
            .zip(&self.diffs)
            .map(|(&b, &d)| (b * sat(d + d)) >> 15)
            .sum();
        self.zero_part = sat(zeros);
        self.estimate = sat(sat(poles) + self.zero_part);
    }

    /// Lower band, encoder side: quantize `x`, adapt; returns the 6-bit code.
    fn encode_low(&mut self, x: i32) -> u8 {
        let e = sat(x - self.estimate);
        // One's-complement magnitude, as the Recommendation has it.
        let mag = if e >= 0 { e } else { !e };
        let m = 1 + LOW_BOUNDS
            .iter()
            .take_while(|&&b| mag >= (b * self.scale) >> 12)
            .count();
        let code = low_code(e < 0, m);
        self.adapt_low(code);
        code
    }

    /// Lower band, decoder side: the reconstructed sample of `code`, then adapt.
    fn decode_low(&mut self, code: u8) -> i32 {
        let d6 = (self.scale * low_level6(code)) >> 15;
        let out = (self.estimate + d6).clamp(-16384, 16383);
        self.adapt_low(code);
        out
    }

    /// INVQAL, LOGSCL, SCALEL and the predictor, from the 4-bit view of `code`.
    fn adapt_low(&mut self, code: u8) {
        let (group, level) = low_group(code);
        let d = (self.scale * level) >> 15;
        self.adapt_scale(LOW_GROUP_WEIGHTS[group]);
        self.predict(d);
    }

    /// Upper band, encoder side: quantize `x`, adapt; returns the 2-bit code.
    fn encode_high(&mut self, x: i32) -> u8 {
        let e = sat(x - self.estimate);
        let mag = if e >= 0 { e } else { !e };
        let code = high_code(e < 0, mag >= (HIGH_BOUND * self.scale) >> 12);
        self.adapt_high(code);
        code
    }

    /// Upper band, decoder side: the reconstructed sample, then adapt.
    fn decode_high(&mut self, code: u8) -> i32 {
        let (_, level) = high_level(code);
        let out = (self.estimate + ((self.scale * level) >> 15)).clamp(-16384, 16383);
        self.adapt_high(code);
        out
    }

    /// INVQAH, LOGSCH, SCALEH and the predictor.
    fn adapt_high(&mut self, code: u8) {
        let (large, level) = high_level(code);
        let d = (self.scale * level) >> 15;
        self.adapt_scale(HIGH_WEIGHTS[large]);
        self.predict(d);
    }
}

/// G.722 encoder: 16 kHz PCM in, one byte per sample pair out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    /// Input history, newest first: `history[k]` is x(n - k).
    history: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// An encoder in the Recommendation's reset state.
    pub fn new() -> Self {
        G722Encoder {
            history: [0; 24],
            low: Band::new(Sub::Low),
            high: Band::new(Sub::High),
        }
    }

    /// Encodes `pcm` (an even number of 16 kHz samples) into `out`, which
    /// must hold at least `pcm.len() / 2` bytes; returns the bytes written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        let bytes = pcm.len() / 2;
        if !pcm.len().is_multiple_of(2) {
            return Err(MediaError::FrameSize {
                expected: 2 * bytes,
                got: pcm.len(),
            });
        }
        if out.len() < bytes {
            return Err(MediaError::FrameSize {
                expected: bytes,
                got: out.len(),
            });
        }
        for (pair, o) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            self.history.copy_within(0..22, 2);
            self.history[1] = i32::from(pair[0]);
            self.history[0] = i32::from(pair[1]);
            // Even taps on even ages (xA), odd taps on odd ages (xB).
            let (mut even, mut odd) = (0i32, 0i32);
            for (k, (&h, &x)) in QMF.iter().zip(&self.history).enumerate() {
                if k % 2 == 0 {
                    even += h * x;
                } else {
                    odd += h * x;
                }
            }
            // ×2^-13 for the filter gain, ×1/2 for 15-bit sub-bands.
            let low = self.low.encode_low((even + odd) >> 14);
            let high = self.high.encode_high((even - odd) >> 14);
            *o = (high << 6) | low;
        }
        Ok(bytes)
    }
}

/// G.722 decoder: one byte per sample pair in, 16 kHz PCM out.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    /// Sub-band history, newest first: (low - high, low + high).
    history: [(i32, i32); 12],
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A decoder in the Recommendation's reset state.
    pub fn new() -> Self {
        G722Decoder {
            history: [(0, 0); 12],
            low: Band::new(Sub::Low),
            high: Band::new(Sub::High),
        }
    }

    /// Decodes `g722` into `out`, which must hold at least `2 × g722.len()`
    /// samples; returns the samples written. Any byte sequence is valid.
    pub fn decode(&mut self, g722: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        let samples = 2 * g722.len();
        if out.len() < samples {
            return Err(MediaError::FrameSize {
                expected: samples,
                got: out.len(),
            });
        }
        for (&code, pair) in g722.iter().zip(out.chunks_exact_mut(2)) {
            let low = self.low.decode_low(code & 0x3F);
            let high = self.high.decode_high(code >> 6);
            self.history.copy_within(0..11, 1);
            self.history[0] = (low - high, low + high);
            let (mut first, mut second) = (0i32, 0i32);
            for (k, &(diff, sum)) in self.history.iter().enumerate() {
                first += QMF[2 * k] * diff;
                second += QMF[2 * k + 1] * sum;
            }
            // ×2^-12 for the filter gain (its even or odd half), ×2 for the
            // 15-bit sub-bands.
            pair[0] = sat(first >> 11) as i16;
            pair[1] = sat(second >> 11) as i16;
        }
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::testutil::{dominant_freq, goertzel, sine, snr_db};

    /// The codec's delay in samples: two 24-tap linear-phase filters (23),
    /// less one because a pair's sub-band sample is computed at the pair's
    /// second input sample and rebuilt from its first output sample.
    const DELAY: usize = 22;

    fn round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut out = Vec::with_capacity(pcm.len());
        let (mut bytes, mut frame) = ([0u8; 160], [0i16; 320]);
        for chunk in pcm.chunks_exact(320) {
            assert_eq!(enc.encode(chunk, &mut bytes).unwrap(), 160);
            assert_eq!(dec.decode(&bytes, &mut frame).unwrap(), 320);
            out.extend_from_slice(&frame);
        }
        out
    }

    /// The codec's delay in samples: where `out` best matches `input`.
    fn delay(input: &[i16], out: &[i16]) -> usize {
        (0..64)
            .max_by_key(|&lag| {
                input
                    .iter()
                    .zip(&out[lag..])
                    .map(|(&a, &b)| i64::from(a) * i64::from(b))
                    .sum::<i64>()
            })
            .expect("the range is not empty")
    }

    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// A triangle wave plus xorshift noise: integers only, the same on
    /// every platform (and easy to regenerate in other tools).
    fn golden_input() -> Vec<i16> {
        let mut s = 0x0123_4567u32;
        (0..16000i32)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let triangle = ((i * 37) % 400 - 200).abs() * 120 - 12000;
                (triangle + (s >> 20) as i32 - 2048) as i16
            })
            .collect()
    }

    #[test]
    fn bit_exact_with_an_independent_implementation() {
        // Hashes of libspandsp 0.0.6's `g722_encode`/`g722_decode` (64 kbit/s,
        // no options) on the same input, taken once through Python's ctypes.
        // Our encoder and decoder match it bit for bit; they differ only when
        // the decoder's output overflows, where spandsp wraps and we saturate.
        let input = golden_input();
        let mut code = vec![0u8; 8000];
        G722Encoder::new().encode(&input, &mut code).unwrap();
        assert_eq!(&code[..8], &[144, 32, 132, 32, 132, 32, 162, 23]);
        assert_eq!(fnv1a(code.iter().copied()), 0xa6eb_3769_bd1d_f5d0);
        let mut pcm = vec![0i16; 16000];
        G722Decoder::new().decode(&code, &mut pcm).unwrap();
        let bytes = pcm.iter().flat_map(|s| s.to_le_bytes());
        assert_eq!(fnv1a(bytes), 0xb4a4_7fc6_bd14_ea38);
    }

    #[test]
    fn the_delay_is_the_two_qmfs() {
        // A chirp from 200 Hz to 6 kHz: no periodicity to fool the search.
        let chirp: Vec<i16> = (0..16000)
            .map(|n| {
                let t = f64::from(n) / 16000.0;
                let phase = 2.0 * std::f64::consts::PI * (200.0 * t + 2900.0 * t * t);
                (8000.0 * phase.sin()) as i16
            })
            .collect();
        let back = round_trip(&chirp);
        let lag = delay(&chirp[3200..9600], &back[3200..]);
        eprintln!("G.722 codec delay: {lag} samples");
        assert_eq!(lag, DELAY);
    }

    #[test]
    fn sine_1khz_keeps_its_frequency_and_snr() {
        // -6 dBFS, one second; judge 0.75 s after the start-up (whole cycles).
        let tone = sine(16000, 1000.0, 16384.0, 16000);
        let back = round_trip(&tone);
        let tail = &back[3200..];
        assert_eq!(dominant_freq(tail, 16000), 1000.0);
        let snr = snr_db(&back[3200 + DELAY..3200 + DELAY + 12000], 16000, 1000.0);
        eprintln!("G.722 1 kHz -6 dBFS SNR {snr:.1} dB");
        assert!(snr > 20.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn the_upper_band_carries_6khz() {
        let tone = sine(16000, 6000.0, 8000.0, 16000);
        let back = round_trip(&tone);
        let tail = &back[3200..];
        let p6 = goertzel(tail, 16000, 6000.0);
        // The QMF's alias of 6 kHz lands at 2 kHz: it must stay well down.
        let alias = goertzel(tail, 16000, 2000.0);
        let db = 10.0 * (p6 / alias.max(1e-9)).log10();
        eprintln!("G.722 6 kHz: alias at 2 kHz {db:.1} dB down");
        assert!(db > 30.0, "alias only {db:.1} dB down");
        let snr = snr_db(&back[3200 + DELAY..3200 + DELAY + 12000], 16000, 6000.0);
        eprintln!("G.722 6 kHz -12 dBFS SNR {snr:.1} dB");
        assert!(snr > 10.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn silence_stays_nearly_silent() {
        // Zero input still lands in a small interval (the bounds round to
        // zero at the smallest scale), so the idle channel carries a few LSB.
        let back = round_trip(&[0; 3200]);
        assert!(back.iter().all(|&s| s.abs() <= 4), "{:?}", &back[..40]);
    }

    #[test]
    fn random_bytes_decode_without_panic() {
        let mut dec = G722Decoder::new();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut bytes = [0u8; 160];
        let mut out = [0i16; 320];
        for _ in 0..500 {
            for b in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            assert_eq!(dec.decode(&bytes, &mut out).unwrap(), 320);
        }
        // All 256 codes, repeatedly, including the four unused ones.
        let all: Vec<u8> = (0..=255).collect();
        let mut out = [0i16; 512];
        for _ in 0..50 {
            dec.decode(&all, &mut out).unwrap();
        }
        // Full-scale square waves drive every limiter.
        let square: Vec<i16> = (0..3200)
            .map(|n| if n / 7 % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let back = round_trip(&square);
        assert_eq!(back.len(), square.len());
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut enc = G722Encoder::new();
        assert!(enc.encode(&[0; 3], &mut [0; 4]).is_err());
        assert!(enc.encode(&[0; 320], &mut [0; 159]).is_err());
        let mut dec = G722Decoder::new();
        assert!(dec.decode(&[0; 160], &mut [0; 319]).is_err());
    }

    #[test]
    fn tables_agree_with_their_definitions() {
        for (i, &v) in ANTILOG.iter().enumerate() {
            let exact = 2048.0 * 2f64.powf(i as f64 / 32.0);
            assert_eq!(v, exact.round() as i32, "ANTILOG[{i}]");
        }
        for g in 1..8 {
            assert_eq!(LOW_GROUP_LEVELS[g], 8 * LOW_BOUNDS[4 * g - 1]);
        }
        // Every interval's level lies inside it; codes and levels agree.
        for m in 1..=30 {
            let lo = if m == 1 { 0 } else { 8 * LOW_BOUNDS[m - 2] };
            let hi = LOW_BOUNDS.get(m - 1).map_or(i32::MAX, |b| 8 * b);
            assert!((lo..hi).contains(&LOW_LEVELS[m - 1]), "interval {m}");
            for negative in [false, true] {
                let code = low_code(negative, m);
                let level = low_level6(code);
                assert_eq!(level, if negative { -1 } else { 1 } * LOW_LEVELS[m - 1]);
                let (group, l4) = low_group(code);
                assert_eq!(group, (m + 1) / 4, "interval {m}");
                assert!(l4 == 0 || l4.signum() == level.signum(), "interval {m}");
            }
        }
        for (negative, large, code) in [
            (true, true, 0),
            (true, false, 1),
            (false, true, 2),
            (false, false, 3),
        ] {
            assert_eq!(high_code(negative, large), code);
            let (l, level) = high_level(code);
            assert_eq!((l == 1, level < 0), (large, negative));
        }
    }
}
