//! H.264 keyframe detection on RTP payloads (RFC 6184 §5.6–5.8).
//!
//! Contract: [`is_keyframe`] is true when the payload starts an IDR picture or
//! carries a sequence parameter set (senders put SPS/PPS right before an IDR):
//! - a single NAL unit packet (types 1–23) of type 5 (IDR slice) or 7 (SPS);
//! - a STAP-A (24) or STAP-B (25) aggregate holding such a NAL unit;
//! - the first fragment (S bit) of an FU-A (28) or FU-B (29) of such a NAL unit.
//!
//! MTAPs (26, 27) and reserved types answer false. Only NAL unit headers (and
//! aggregation sizes) are read, never slice data, so the answer holds for
//! streams whose NAL payloads are end-to-end encrypted. Garbage and truncated
//! input answer false; nothing here panics or allocates.

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const STAP_A: u8 = 24;
const STAP_B: u8 = 25;
const FU_A: u8 = 28;
const FU_B: u8 = 29;

fn starts_keyframe(nal_type: u8) -> bool {
    nal_type == NAL_IDR || nal_type == NAL_SPS
}

/// Whether this RTP payload starts an H.264 keyframe (see the module docs).
pub fn is_keyframe(payload: &[u8]) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1f {
        t @ 1..=23 => starts_keyframe(t),
        STAP_A => aggregate_has_keyframe(&payload[1..]),
        // STAP-B: a 16-bit decoding order number precedes the units.
        STAP_B => payload.get(3..).is_some_and(aggregate_has_keyframe),
        FU_A | FU_B => payload
            .get(1)
            .is_some_and(|&fu| fu & 0x80 != 0 && starts_keyframe(fu & 0x1f)),
        _ => false,
    }
}

/// Walks `size (16 bit) | NAL unit` entries; stops at the first malformed one.
fn aggregate_has_keyframe(mut units: &[u8]) -> bool {
    while let [hi, lo, rest @ ..] = units {
        let size = usize::from(u16::from_be_bytes([*hi, *lo]));
        if size == 0 || size > rest.len() {
            return false;
        }
        if starts_keyframe(rest[0] & 0x1f) {
            return true;
        }
        units = &rest[size..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_table() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("IDR slice", &[0x65, 0x88, 0x84], true),
            ("SPS", &[0x67, 0x42, 0xc0, 0x1f], true),
            ("PPS alone", &[0x68, 0xce, 0x3c, 0x80], false),
            ("non-IDR slice", &[0x41, 0x9a, 0x02], false),
            ("SEI", &[0x06, 0x05], false),
            ("header only IDR", &[0x65], true),
            (
                "STAP-A with SPS, PPS",
                &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce],
                true,
            ),
            (
                "STAP-A with IDR second",
                &[0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x01, 0x65],
                true,
            ),
            (
                "STAP-A without keyframe",
                &[0x78, 0x00, 0x02, 0x41, 0x9a, 0x00, 0x01, 0x06],
                false,
            ),
            (
                "STAP-A size past the end",
                &[0x78, 0x00, 0x09, 0x67, 0x42],
                false,
            ),
            (
                "STAP-A zero size",
                &[0x78, 0x00, 0x00, 0x00, 0x01, 0x65],
                false,
            ),
            ("STAP-A empty", &[0x78], false),
            ("STAP-A lone size byte", &[0x78, 0x00], false),
            (
                "STAP-B with SPS",
                &[0x79, 0x12, 0x34, 0x00, 0x02, 0x67, 0x42],
                true,
            ),
            ("STAP-B cut in the DON", &[0x79, 0x12], false),
            ("FU-A start of IDR", &[0x7c, 0x85, 0x88], true),
            ("FU-A middle of IDR", &[0x7c, 0x05, 0x88], false),
            ("FU-A end of IDR", &[0x7c, 0x45, 0x88], false),
            ("FU-A start of non-IDR", &[0x7c, 0x81, 0x9a], false),
            ("FU-A header missing", &[0x7c], false),
            ("FU-B start of IDR", &[0x7d, 0x85, 0x00, 0x01], true),
            ("MTAP16", &[0x7a, 0x00, 0x00, 0x00, 0x02, 0x65], false),
            ("type 0", &[0x00, 0x65], false),
            ("type 30", &[0x1e, 0x65], false),
            ("empty", &[], false),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(is_keyframe(bytes), *want, "{name}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = is_keyframe(&[a, b]);
                let _ = is_keyframe(&[a, 0, b]);
                let _ = is_keyframe(&[a, b, 0, 1]);
            }
        }
        let mut x: u32 = 0x9e37_79b9;
        for i in 0..50_000usize {
            let mut buf = [0u8; 16];
            for b in &mut buf {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (x >> 24) as u8;
            }
            let _ = is_keyframe(&buf[..i % 17]);
        }
    }
}
