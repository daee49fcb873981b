//! VP8 RTP payload descriptor (RFC 7741 §4.2), keyframe detection (RFC 7741
//! §4.3, RFC 6386 §9.1) and picture-id rewriting across simulcast switches.
//!
//! Contract:
//! - [`Vp8Descriptor::parse`] reads X/N/S/PID and the optional PictureID (7 or
//!   15 bit), TL0PICIDX, TID/Y and KEYIDX; a truncated descriptor is an error,
//!   never a panic. Reserved bits are ignored.
//! - [`is_keyframe`] is true for the first packet of a keyframe: S=1, PID=0 and
//!   the P bit of the VP8 payload header is 0. It reads the descriptor and only
//!   the first byte of the payload header (and requires its 3 bytes to be
//!   present), because end-to-end-encrypted streams (Jitsi's insertable-streams
//!   scheme) leave only the payload header in clear: 10 bytes of a keyframe, 3
//!   of a delta frame.
//! - [`Vp8Rewriter`] rewrites PictureID and TL0PICIDX in place so a receiver sees
//!   them continue across layer switches: at the start of each segment (see
//!   [`super::rewrite`]) the next value is `last + 1`, inside a segment a fixed
//!   offset applies. Widths: the output counter is 15-bit; every packet is
//!   written back in the width it came in (a 7-bit field gets the low 7 bits,
//!   which stays continuous modulo 128), so the payload never changes size.
//!   "Last" is the newest value in the input's width (modular comparison).

use thiserror::Error;

/// Why a VP8 payload descriptor could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Vp8Error {
    /// The payload has no byte at all.
    #[error("empty VP8 RTP payload")]
    Empty,
    /// A flag announces a field past the end of the payload.
    #[error("truncated VP8 payload descriptor")]
    Truncated,
}

/// A PictureID, in the width it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureId {
    /// M=0: 7 bits.
    Short(u8),
    /// M=1: 15 bits.
    Long(u16),
}

impl PictureId {
    pub fn value(self) -> u16 {
        match self {
            PictureId::Short(v) => u16::from(v),
            PictureId::Long(v) => v,
        }
    }

    /// The mask of the field's width (0x7f or 0x7fff).
    pub fn mask(self) -> u16 {
        match self {
            PictureId::Short(_) => 0x7f,
            PictureId::Long(_) => 0x7fff,
        }
    }

    /// Bytes the field takes in the descriptor.
    pub fn encoded_len(self) -> usize {
        match self {
            PictureId::Short(_) => 1,
            PictureId::Long(_) => 2,
        }
    }
}

/// The VP8 payload descriptor of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// N: the frame is not used as a reference.
    pub non_reference: bool,
    /// S: the packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index.
    pub partition_index: u8,
    pub picture_id: Option<PictureId>,
    pub tl0_pic_idx: Option<u8>,
    /// TID (present when T=1).
    pub tid: Option<u8>,
    /// Y: layer sync (meaningful when T=1).
    pub layer_sync: bool,
    /// KEYIDX (present when K=1).
    pub key_idx: Option<u8>,
    /// Length of the descriptor; the VP8 payload starts here.
    pub len: usize,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of an RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Self, Vp8Error> {
        let b0 = *payload.first().ok_or(Vp8Error::Empty)?;
        let byte = |i: usize| payload.get(i).copied().ok_or(Vp8Error::Truncated);
        let mut d = Vp8Descriptor {
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_index: b0 & 0x07,
            picture_id: None,
            tl0_pic_idx: None,
            tid: None,
            layer_sync: false,
            key_idx: None,
            len: 1,
        };
        if b0 & 0x80 == 0 {
            return Ok(d);
        }
        let x = byte(1)?;
        let mut i = 2;
        if x & 0x80 != 0 {
            let p = byte(i)?;
            if p & 0x80 != 0 {
                let lo = byte(i + 1)?;
                d.picture_id = Some(PictureId::Long(u16::from(p & 0x7f) << 8 | u16::from(lo)));
                i += 2;
            } else {
                d.picture_id = Some(PictureId::Short(p & 0x7f));
                i += 1;
            }
        }
        if x & 0x40 != 0 {
            d.tl0_pic_idx = Some(byte(i)?);
            i += 1;
        }
        let (t, k) = (x & 0x20 != 0, x & 0x10 != 0);
        if t || k {
            let b = byte(i)?;
            i += 1;
            if t {
                d.tid = Some(b >> 6);
                d.layer_sync = b & 0x20 != 0;
            }
            if k {
                d.key_idx = Some(b & 0x1f);
            }
        }
        d.len = i;
        Ok(d)
    }

    /// S=1 and PID=0: the packet starts a frame (and its payload header follows).
    pub fn is_start_of_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }

    /// Where the PictureID starts (after the X byte), when present.
    fn picture_id_at(&self) -> usize {
        2
    }

    /// Where TL0PICIDX is, when present.
    fn tl0_at(&self) -> usize {
        2 + self.picture_id.map_or(0, PictureId::encoded_len)
    }
}

/// Whether this RTP payload starts a VP8 keyframe. Reads the descriptor and the
/// first byte of the VP8 payload header only (E2EE-safe); false on garbage.
pub fn is_keyframe(payload: &[u8]) -> bool {
    let Ok(d) = Vp8Descriptor::parse(payload) else {
        return false;
    };
    if !d.is_start_of_frame() || payload.len() < d.len + 3 {
        return false;
    }
    // RFC 6386 §9.1: bit 0 of the frame tag is the inverse key-frame flag.
    payload[d.len] & 0x01 == 0
}

/// The frame size a keyframe's RTP payload announces (RFC 6386 §9.1: after
/// the 3-byte frame tag, the start code `9d 01 2a`, then 14-bit width and
/// height, little-endian, under 2-bit scale fields). These 10 bytes are the
/// ones end-to-end encryption leaves in clear. `None` for anything else.
pub fn keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    if !is_keyframe(payload) {
        return None;
    }
    let d = Vp8Descriptor::parse(payload).ok()?;
    let h = payload.get(d.len..d.len + 10)?;
    if h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([h[6], h[7]]) & 0x3fff;
    let height = u16::from_le_bytes([h[8], h[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

/// Rewrites PictureID and TL0PICIDX of one forwarded VP8 stream (one per
/// forwarded stream per receiver, beside its [`super::rewrite::SeqTsRewriter`]).
#[derive(Debug, Clone, Default)]
pub struct Vp8Rewriter {
    pid_offset: u16,
    /// Newest output PictureID (15-bit counter).
    last_pid: Option<u16>,
    pid_rebase: bool,
    tl0_offset: u8,
    last_tl0: Option<u8>,
    tl0_rebase: bool,
}

impl Vp8Rewriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rewrites the descriptor of one packet the sequence rewriter accepted, in
    /// place. `new_segment`: this packet starts a segment (a layer switch or a
    /// resume); the offsets are then recomputed at the first packet of the
    /// segment that carries each field. Returns the rewritten descriptor; on
    /// error nothing is changed (neither the payload nor the state).
    pub fn rewrite(
        &mut self,
        payload: &mut [u8],
        new_segment: bool,
    ) -> Result<Vp8Descriptor, Vp8Error> {
        let mut d = Vp8Descriptor::parse(payload)?;
        if new_segment {
            self.pid_rebase = true;
            self.tl0_rebase = true;
        }
        if let Some(pid) = d.picture_id {
            let (value, mask) = (pid.value(), pid.mask());
            if self.pid_rebase {
                let next = self.last_pid.map_or(value, |l| l.wrapping_add(1));
                self.pid_offset = next.wrapping_sub(value) & 0x7fff;
                self.pid_rebase = false;
            }
            let out = value.wrapping_add(self.pid_offset) & 0x7fff;
            if self.last_pid.is_none_or(|l| is_newer(out, l, mask)) {
                self.last_pid = Some(out);
            }
            let at = d.picture_id_at();
            d.picture_id = Some(match pid {
                PictureId::Short(_) => {
                    let v = (out & 0x7f) as u8;
                    payload[at] = v;
                    PictureId::Short(v)
                }
                PictureId::Long(_) => {
                    payload[at] = 0x80 | (out >> 8) as u8;
                    payload[at + 1] = out as u8;
                    PictureId::Long(out)
                }
            });
        }
        if let Some(tl0) = d.tl0_pic_idx {
            if self.tl0_rebase {
                let next = self.last_tl0.map_or(tl0, |l| l.wrapping_add(1));
                self.tl0_offset = next.wrapping_sub(tl0);
                self.tl0_rebase = false;
            }
            let out = tl0.wrapping_add(self.tl0_offset);
            if self
                .last_tl0
                .is_none_or(|l| is_newer(u16::from(out), u16::from(l), 0xff))
            {
                self.last_tl0 = Some(out);
            }
            payload[d.tl0_at()] = out;
            d.tl0_pic_idx = Some(out);
        }
        Ok(d)
    }
}

/// `a` is after `b` in a counter of width `mask` (modular, half range).
fn is_newer(a: u16, b: u16, mask: u16) -> bool {
    let d = a.wrapping_sub(b) & mask;
    d != 0 && d <= mask / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(len: usize) -> Vp8Descriptor {
        Vp8Descriptor {
            non_reference: false,
            start_of_partition: false,
            partition_index: 0,
            picture_id: None,
            tl0_pic_idx: None,
            tid: None,
            layer_sync: false,
            key_idx: None,
            len,
        }
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Vec<u8>, Result<Vp8Descriptor, Vp8Error>)> = vec![
            (
                "minimal, start of frame",
                vec![0x10, 0x50],
                Ok(Vp8Descriptor {
                    start_of_partition: true,
                    ..desc(1)
                }),
            ),
            (
                "N and PID",
                vec![0x23, 0x00],
                Ok(Vp8Descriptor {
                    non_reference: true,
                    partition_index: 3,
                    ..desc(1)
                }),
            ),
            (
                "7-bit picture id",
                vec![0x90, 0x80, 0x05, 0x00],
                Ok(Vp8Descriptor {
                    start_of_partition: true,
                    picture_id: Some(PictureId::Short(5)),
                    ..desc(3)
                }),
            ),
            (
                "15-bit picture id",
                vec![0x80, 0x80, 0x81, 0x23],
                Ok(Vp8Descriptor {
                    picture_id: Some(PictureId::Long(0x123)),
                    ..desc(4)
                }),
            ),
            (
                "every extension",
                vec![0x90, 0xF0, 0xFF, 0xFF, 0x42, 0b1010_0011, 0x10],
                Ok(Vp8Descriptor {
                    start_of_partition: true,
                    picture_id: Some(PictureId::Long(0x7fff)),
                    tl0_pic_idx: Some(0x42),
                    tid: Some(2),
                    layer_sync: true,
                    key_idx: Some(3),
                    ..desc(6)
                }),
            ),
            (
                "K without T",
                vec![0x80, 0x10, 0xE5],
                Ok(Vp8Descriptor {
                    key_idx: Some(5),
                    ..desc(3)
                }),
            ),
            ("empty", vec![], Err(Vp8Error::Empty)),
            ("X byte missing", vec![0x80], Err(Vp8Error::Truncated)),
            (
                "picture id missing",
                vec![0x80, 0x80],
                Err(Vp8Error::Truncated),
            ),
            (
                "second picture id byte missing",
                vec![0x80, 0x80, 0x80],
                Err(Vp8Error::Truncated),
            ),
            (
                "TL0PICIDX missing",
                vec![0x80, 0x40],
                Err(Vp8Error::Truncated),
            ),
            (
                "TID byte missing",
                vec![0x80, 0x20],
                Err(Vp8Error::Truncated),
            ),
            (
                "TID byte missing after the rest",
                vec![0x80, 0xE0, 0x01, 0x02],
                Err(Vp8Error::Truncated),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(Vp8Descriptor::parse(&bytes), want, "{name}");
        }
    }

    #[test]
    fn keyframe_table() {
        let cases: &[(&str, &[u8], bool)] = &[
            (
                "keyframe, minimal descriptor",
                &[0x10, 0x50, 0x23, 0x01],
                true,
            ),
            (
                "keyframe with extensions",
                &[0x90, 0xE0, 0x80, 0x01, 0x07, 0x00, 0x10, 0x02, 0x00],
                true,
            ),
            ("delta frame (P=1)", &[0x10, 0x51, 0x23, 0x01], false),
            ("not start of partition", &[0x00, 0x50, 0x23, 0x01], false),
            ("partition 1", &[0x11, 0x50, 0x23, 0x01], false),
            ("payload header cut short", &[0x10, 0x50, 0x23], false),
            ("descriptor only", &[0x90, 0x80, 0x05], false),
            ("truncated descriptor", &[0x90, 0x80], false),
            ("empty", &[], false),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(is_keyframe(bytes), *want, "{name}");
        }
    }

    #[test]
    fn keyframe_detection_ignores_encrypted_bytes() {
        // Descriptor, 10 clear bytes of keyframe header, then "ciphertext": the
        // answer must not depend on anything after the first 3 header bytes.
        let mut pkt = vec![0x90, 0x80, 0x81, 0x00, 0x50, 0x23, 0x01];
        pkt.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
        for garbage in [0x00u8, 0x5a, 0xff] {
            let mut p = pkt.clone();
            for b in &mut p[7..] {
                *b = garbage;
            }
            p.extend_from_slice(&[garbage; 32]);
            assert!(is_keyframe(&p), "garbage {garbage:#x}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = is_keyframe(&[a, b]);
                let _ = Vp8Descriptor::parse(&[a, b]);
                let mut p = [a, b];
                let _ = Vp8Rewriter::new().rewrite(&mut p, true);
            }
        }
        let mut x: u32 = 0x1234_5678;
        let mut rw = Vp8Rewriter::new();
        for i in 0..50_000usize {
            let mut buf = [0u8; 8];
            for b in &mut buf {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (x >> 24) as u8;
            }
            let len = 1 + i % 8;
            let p = &mut buf[..len];
            if let Ok(d) = Vp8Descriptor::parse(p) {
                assert!(d.len <= len);
            }
            let _ = is_keyframe(p);
            let _ = rw.rewrite(p, i % 7 == 0);
        }
    }

    /// A packet with a 15-bit picture id and a TL0PICIDX.
    fn long(pid: u16, tl0: u8) -> Vec<u8> {
        vec![
            0x90,
            0xE0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            tl0,
            0x00,
            0x00,
        ]
    }

    /// A packet with a 7-bit picture id and a TL0PICIDX.
    fn short(pid: u8, tl0: u8) -> Vec<u8> {
        vec![0x90, 0xE0, pid & 0x7f, tl0, 0x00, 0x00]
    }

    fn out(d: &Vp8Descriptor) -> (u16, u8) {
        (
            d.picture_id.map_or(0xffff, PictureId::value),
            d.tl0_pic_idx.unwrap_or(0),
        )
    }

    #[test]
    fn rewriter_table() {
        // (input packet, new_segment, expected (picture id, tl0picidx)).
        type Case = (&'static str, Vec<(Vec<u8>, bool, (u16, u8))>);
        let cases: Vec<Case> = vec![
            (
                "first segment passes through",
                vec![
                    (long(100, 7), true, (100, 7)),
                    (long(101, 7), false, (101, 7)),
                ],
            ),
            (
                "switch continues from last + 1, reordering maps consistently",
                vec![
                    (long(100, 7), true, (100, 7)),
                    (long(101, 8), false, (101, 8)),
                    (long(5000, 200), true, (102, 9)),
                    (long(5002, 201), false, (104, 10)),
                    (long(5001, 200), false, (103, 9)),
                    (long(102, 9), true, (105, 11)),
                ],
            ),
            (
                "15-bit and 8-bit wraparound",
                vec![
                    (long(0x7ffe, 254), true, (0x7ffe, 254)),
                    (long(0x7fff, 255), false, (0x7fff, 255)),
                    (long(10, 50), true, (0, 0)),
                    (long(11, 51), false, (1, 1)),
                ],
            ),
            (
                "7-bit ids stay 7-bit and continuous modulo 128",
                vec![
                    (short(126, 1), true, (126, 1)),
                    (short(127, 1), false, (127, 1)),
                    (short(0, 2), false, (0, 2)),
                    (short(40, 90), true, (1, 3)),
                    (short(41, 90), false, (2, 3)),
                ],
            ),
            (
                "a segment starting without a picture id rebases at the next one",
                vec![
                    (long(300, 30), true, (300, 30)),
                    (vec![0x10, 0x50, 0x00, 0x00], true, (0xffff, 0)),
                    (long(9000, 90), false, (301, 31)),
                    (long(9001, 90), false, (302, 31)),
                ],
            ),
        ];
        for (name, steps) in cases {
            let mut rw = Vp8Rewriter::new();
            for (i, (mut pkt, new_segment, want)) in steps.into_iter().enumerate() {
                let before = Vp8Descriptor::parse(&pkt).unwrap();
                let d = rw.rewrite(&mut pkt, new_segment).unwrap();
                assert_eq!(out(&d), want, "{name}: step {i}");
                // Written in place, in the input's width.
                let reparsed = Vp8Descriptor::parse(&pkt).unwrap();
                assert_eq!(reparsed, d, "{name}: step {i}");
                assert_eq!(reparsed.len, before.len, "{name}: step {i}");
            }
        }
    }

    #[test]
    fn rewriter_leaves_bad_payloads_alone() {
        let mut rw = Vp8Rewriter::new();
        let mut pkt = long(10, 1);
        rw.rewrite(&mut pkt, true).unwrap();
        let mut bad = vec![0x90, 0xE0, 0x85];
        assert_eq!(rw.rewrite(&mut bad, true), Err(Vp8Error::Truncated));
        assert_eq!(bad, vec![0x90, 0xE0, 0x85]);
        let mut next = long(11, 1);
        assert_eq!(out(&rw.rewrite(&mut next, false).unwrap()), (11, 1));
    }

    #[test]
    fn keyframe_size_reads_the_clear_header_only() {
        // Descriptor (S=1, no extensions), frame tag of a keyframe, start
        // code, 640x360 with scale bits set (they are not part of the size).
        let key = [
            0x10, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0xc1,
        ];
        assert_eq!(keyframe_size(&key), Some((640, 360)));
        let mut delta = key;
        delta[1] |= 0x01;
        assert_eq!(keyframe_size(&delta), None, "delta frame");
        assert_eq!(keyframe_size(&key[..8]), None, "truncated");
        let mut bad = key;
        bad[5] = 0;
        assert_eq!(keyframe_size(&bad), None, "no start code");
        assert_eq!(keyframe_size(&[]), None);
    }
}
