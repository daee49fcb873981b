//! ITU-T G.711 µ-law (PCMU, RTP payload type 0) and A-law (PCMA, type 8).
//!
//! Written here rather than taken from a crate: each law is a sign bit, a
//! 3-bit segment (exponent) and a 4-bit mantissa. Decoding goes through
//! 256-entry tables built at compile time; encoding is the formula (a few
//! integer operations per sample). Decoded values are the middle of each
//! quantisation interval, so the error is at most half a step.

/// Which G.711 law a call negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP payload type 0 (North America, Japan).
    Pcmu,
    /// A-law, RTP payload type 8 (the rest of the world).
    Pcma,
}

impl Law {
    /// The static RTP payload type of this law.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Pcmu => 0,
            Law::Pcma => 8,
        }
    }

    /// Encodes `pcm` into `out` (one byte per sample, up to the shorter length).
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) {
        match self {
            Law::Pcmu => pcm.iter().zip(out).for_each(|(&s, o)| *o = ulaw_encode(s)),
            Law::Pcma => pcm.iter().zip(out).for_each(|(&s, o)| *o = alaw_encode(s)),
        }
    }

    /// Decodes `g711` into `out` (one sample per byte, up to the shorter length).
    pub fn decode(self, g711: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::Pcmu => &ULAW_DECODE,
            Law::Pcma => &ALAW_DECODE,
        };
        g711.iter()
            .zip(out)
            .for_each(|(&c, o)| *o = table[c as usize]);
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one sample to µ-law.
pub fn ulaw_encode(pcm: i16) -> u8 {
    let x = i32::from(pcm);
    let sign = if x < 0 { 0x80 } else { 0 };
    // The bias puts the top bit of every magnitude in bits 7..=14.
    let mag = x.abs().min(ULAW_CLIP) + ULAW_BIAS;
    let exp = (31 - mag.leading_zeros() as i32) - 7;
    let mant = (mag >> (exp + 3)) & 0x0F;
    !(sign | (exp << 4) | mant) as u8
}

/// Decodes one µ-law byte.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

const fn ulaw_decode_slow(code: u8) -> i16 {
    let c = !code as i32;
    let exp = (c >> 4) & 0x07;
    let mant = c & 0x0F;
    let mag = (((mant << 3) + ULAW_BIAS) << exp) - ULAW_BIAS;
    (if c & 0x80 != 0 { -mag } else { mag }) as i16
}

/// Encodes one sample to A-law.
pub fn alaw_encode(pcm: i16) -> u8 {
    // A-law works on 13 bits; negative values are folded onto 0.. by -x-1.
    let x = i32::from(pcm) >> 3;
    let (mask, mag) = if x >= 0 { (0xD5, x) } else { (0x55, -x - 1) };
    let code = if mag < 32 {
        mag >> 1
    } else {
        // Segment s >= 1 holds magnitudes with the top bit at 4 + s.
        let seg = (31 - mag.leading_zeros() as i32) - 4;
        if seg > 7 {
            0x7F
        } else {
            (seg << 4) | ((mag >> seg) & 0x0F)
        }
    };
    (code ^ mask) as u8
}

/// Decodes one A-law byte.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

const fn alaw_decode_slow(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let seg = (a & 0x70) >> 4;
    let mut t = (a & 0x0F) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode_slow(i as u8)
        } else {
            ulaw_decode_slow(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_DECODE: [i16; 256] = table(false);
static ALAW_DECODE: [i16; 256] = table(true);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::testutil::{sine, snr_db};

    fn round_trip(law: Law, tone: &[i16]) -> Vec<i16> {
        let mut coded = vec![0u8; tone.len()];
        let mut back = vec![0i16; tone.len()];
        law.encode(tone, &mut coded);
        law.decode(&coded, &mut back);
        back
    }

    #[test]
    fn sine_1khz_round_trip_within_half_a_step() {
        // -6 dBFS 1 kHz tone, one second at 8 kHz.
        let tone = sine(8000, 1000.0, 16384.0, 8000);
        for law in [Law::Pcmu, Law::Pcma] {
            let back = round_trip(law, &tone);
            for (&x, &y) in tone.iter().zip(&back) {
                let err = (i32::from(x) - i32::from(y)).abs();
                // Half a step: 1/32 of the magnitude (plus the small linear
                // segment near zero).
                let bound = (i32::from(x).abs() + 132) / 32 + 8;
                assert!(err <= bound, "{law:?}: {x} -> {y}, error {err} > {bound}");
            }
            let snr = snr_db(&back, 8000, 1000.0);
            eprintln!("{law:?} 1 kHz -6 dBFS SNR {snr:.1} dB");
            // A 1 kHz tone at 8 kHz hits only 8 phases, so the error is
            // periodic rather than noise-like: ~34 dB here (G.712 asks ~35 dB
            // at 1020 Hz, a frequency chosen to avoid exactly this).
            assert!(snr > 33.0, "{law:?} SNR {snr:.1} dB");
        }
    }

    #[test]
    fn every_code_decodes_and_reencodes_to_itself() {
        for c in 0..=255u8 {
            // 0x7F is µ-law's "negative zero"; it decodes to 0, which encodes as 0xFF.
            if c != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(c)), c, "µ-law {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#04x}");
        }
    }

    #[test]
    fn silence_and_extremes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(ulaw_encode(i16::MAX)), 32124);
        assert_eq!(ulaw_decode(ulaw_encode(i16::MIN)), -32124);
        assert_eq!(alaw_decode(alaw_encode(i16::MAX)), 32256);
        assert_eq!(alaw_decode(alaw_encode(i16::MIN)), -32256);
    }
}
