//! G.711 (ITU-T): µ-law and A-law companding between 16-bit linear PCM and
//! 8-bit codes, as carried by RTP payload types 0 (PCMU) and 8 (PCMA).
//!
//! Contract: [`Law::encode`] and [`Law::decode`] are total (every input has an
//! output) and `decode(encode(x))` is within half a quantisation step of `x`
//! (after clipping to the law's range). Written from the standard's segment
//! description: a sign bit, a 3-bit segment (exponent) and a 4-bit step.

/// The two G.711 laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP payload type 0.
    Pcmu,
    /// A-law, RTP payload type 8.
    Pcma,
}

/// µ-law adds this bias so that every segment starts at a power of two.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law represents (before the bias).
const ULAW_CLIP: i32 = 32_635;

impl Law {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Pcmu => 0,
            Law::Pcma => 8,
        }
    }

    /// The law a static RTP payload type carries, if G.711.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Pcmu),
            8 => Some(Law::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`a=rtpmap:PT NAME/8000`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Law::Pcmu => "PCMU",
            Law::Pcma => "PCMA",
        }
    }

    /// One linear sample to its 8-bit code.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Pcmu => ulaw_encode(sample),
            Law::Pcma => alaw_encode(sample),
        }
    }

    /// One 8-bit code to its linear sample (the middle of its step).
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Pcmu => ulaw_decode(code),
            Law::Pcma => alaw_decode(code),
        }
    }
}

/// Index of the highest set bit of a positive `x`.
fn top_bit(x: i32) -> u32 {
    31 - (x as u32).leading_zeros()
}

fn ulaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    let sign = if value < 0 { 0x80 } else { 0 };
    // Biased magnitude in 0x84..=0x7FFF: its top bit is 7..=14.
    let biased = value.abs().min(ULAW_CLIP) + ULAW_BIAS;
    let segment = top_bit(biased) - 7;
    let step = (biased >> (segment + 3)) & 0x0F;
    // µ-law transmits the ones' complement of the code.
    !(sign | (segment << 4) as i32 | step) as u8
}

fn ulaw_decode(code: u8) -> i16 {
    let code = i32::from(!code);
    let segment = (code >> 4) & 0x07;
    let step = code & 0x0F;
    let magnitude = (((step << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    // At most (0x78 + 0x84) << 7 - 0x84 = 32124: always fits.
    (if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }) as i16
}

fn alaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    // A-law: sign bit set for positive values; negatives use the ones'
    // complement so that -32768 stays in range.
    let (sign, magnitude) = if value >= 0 {
        (0x80, value)
    } else {
        (0x00, -value - 1)
    };
    let code = if magnitude < 256 {
        magnitude >> 4
    } else {
        // Magnitude in 256..=32767: top bit 8..=14, segment 1..=7.
        let segment = top_bit(magnitude) - 7;
        ((segment << 4) as i32) | ((magnitude >> (segment + 3)) & 0x0F)
    };
    // Even bits are inverted on the line.
    ((sign | code) ^ 0x55) as u8
}

fn alaw_decode(code: u8) -> i16 {
    let code = i32::from(code ^ 0x55);
    let segment = (code >> 4) & 0x07;
    let step = code & 0x0F;
    let magnitude = if segment == 0 {
        (step << 4) + 8
    } else {
        ((step << 4) + 0x108) << (segment - 1)
    };
    // At most (0xF0 + 0x108) << 6 = 32256: always fits.
    (if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_has_the_well_known_codes() {
        assert_eq!(Law::Pcmu.encode(0), 0xFF);
        assert_eq!(Law::Pcma.encode(0), 0xD5);
        assert_eq!(Law::Pcmu.decode(0xFF), 0);
        assert_eq!(Law::Pcmu.decode(0x7F), 0);
        assert_eq!(Law::Pcma.decode(0xD5), 8);
        assert_eq!(Law::Pcma.decode(0x55), -8);
    }

    #[test]
    fn full_scale_maps_to_the_extreme_codes() {
        assert_eq!(Law::Pcmu.encode(i16::MAX), 0x80);
        assert_eq!(Law::Pcmu.encode(i16::MIN), 0x00);
        assert_eq!(Law::Pcmu.decode(0x80), 32_124);
        assert_eq!(Law::Pcma.encode(i16::MAX), 0xAA);
        assert_eq!(Law::Pcma.encode(i16::MIN), 0x2A);
        assert_eq!(Law::Pcma.decode(0xAA), 32_256);
    }

    /// decode(encode(x)) stays within half a step of x, whose size grows
    /// with the segment: 1/16 of the segment's start, at least 8 (A-law's
    /// first segments) or 4 (µ-law's first).
    #[test]
    fn round_trip_error_is_within_half_a_step() {
        for law in [Law::Pcmu, Law::Pcma] {
            for x in (-32_000i32..=32_000).step_by(7) {
                let back = i32::from(law.decode(law.encode(x as i16)));
                let half_step = (x.abs() / 32).max(8) + 8;
                assert!(
                    (back - x).abs() <= half_step,
                    "{law:?}: {x} came back as {back}"
                );
            }
        }
    }

    #[test]
    fn every_code_decodes_to_a_value_that_encodes_back_to_it() {
        for law in [Law::Pcmu, Law::Pcma] {
            for code in 0..=255u8 {
                let value = law.decode(code);
                // µ-law has two zeros (0x7F, 0xFF); both decode to 0.
                if law == Law::Pcmu && value == 0 {
                    continue;
                }
                assert_eq!(law.encode(value), code, "{law:?} code {code:#04x}");
            }
        }
    }

    #[test]
    fn payload_types_round_trip() {
        for law in [Law::Pcmu, Law::Pcma] {
            assert_eq!(Law::from_payload_type(law.payload_type()), Some(law));
        }
        assert_eq!(Law::from_payload_type(101), None);
    }
}
