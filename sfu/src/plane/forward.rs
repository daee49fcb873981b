//! One receive slot's outgoing stream: which packets of its publisher go
//! out, under which sequence number and timestamp (`media::rewrite`), with
//! VP8 picture ids kept continuous (`media::vp8`). Pure: the driver feeds it
//! the publisher's packets and writes what it returns on the slot's SSRC.
//!
//! Contract of [`Forwarder::forward`]:
//! - **Audio**: every packet is a switch point, so a new publisher in the slot
//!   (or the first packet after a pause) simply continues the slot's stream.
//! - **Video**: the allocation sets [`Forwarder::target`] (a simulcast layer
//!   index, `None` for nothing). Packets of the layer being forwarded go out
//!   until the target's layer sends the first packet of a keyframe; from
//!   there the target is forwarded. Packets of other layers are dropped.
//!   [`Forwarded::wants_keyframe`] says the target is not reached yet (the
//!   driver then asks the publisher for a keyframe on that layer).
//! - Sequence numbers come back extended to 64 bits (str0m wants them so for
//!   SRTP's rollover counter), starting below 65536.

use std::time::Instant;

use crate::media::rewrite::SeqTsRewriter;
use crate::media::vp8::Vp8Rewriter;
use crate::media::{h264, vp8, Ssrc};

/// The codec of a forwarded packet, as far as forwarding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Audio,
    Vp8,
    H264,
    /// Video of another codec: forwarded, never a switch point.
    OtherVideo,
}

impl Codec {
    /// Whether `payload` starts a keyframe (reads only clear header bytes).
    pub fn is_keyframe_start(self, payload: &[u8]) -> bool {
        match self {
            Codec::Vp8 => vp8::is_keyframe(payload),
            Codec::H264 => h264::is_keyframe(payload),
            Codec::Audio | Codec::OtherVideo => false,
        }
    }
}

/// One incoming packet, as read once for every receiver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    /// Simulcast layer index (0 without simulcast).
    pub layer: usize,
    pub codec: Codec,
    pub keyframe_start: bool,
    pub payload: &'a [u8],
}

/// What to send for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forwarded {
    /// `(extended seq, timestamp)` to send the packet with; `None`: drop it.
    pub out: Option<(u64, u32)>,
    /// The payload with its VP8 descriptor rewritten, when it differs.
    pub payload: Option<Vec<u8>>,
    /// The target layer is not being forwarded yet.
    pub wants_keyframe: bool,
}

/// The state of one slot's outgoing stream.
#[derive(Debug)]
pub(crate) struct Forwarder {
    rewriter: SeqTsRewriter,
    vp8: Vp8Rewriter,
    /// The layer to forward; `None`: forward nothing (video only).
    pub target: Option<usize>,
    /// The layer whose packets went out last.
    pub current: Option<usize>,
    last_seq: Option<u64>,
}

impl Forwarder {
    pub fn new(audio: bool) -> Self {
        Forwarder {
            rewriter: if audio {
                SeqTsRewriter::audio()
            } else {
                SeqTsRewriter::video()
            },
            vp8: Vp8Rewriter::new(),
            target: audio.then_some(0),
            current: None,
            last_seq: None,
        }
    }

    /// Stops the stream; it resumes at the next switch point after a target
    /// is set again.
    pub fn pause(&mut self) {
        self.rewriter.pause();
        self.current = None;
    }

    /// Maps one packet of the slot's publisher.
    pub fn forward(&mut self, p: &Incoming<'_>, now: Instant) -> Forwarded {
        let audio = p.codec == Codec::Audio;
        let Some(target) = self.target else {
            if self.current.is_some() {
                self.pause();
            }
            return Forwarded {
                out: None,
                payload: None,
                wants_keyframe: false,
            };
        };
        let switch = audio || (p.layer == target && p.keyframe_start);
        let before = self.rewriter.current_ssrc();
        let awaiting = self.rewriter.awaiting_switch_point();
        let mapped = self
            .rewriter
            .rewrite(Ssrc(p.ssrc), p.seq, p.ts, switch, now);
        let mut payload = None;
        let out = mapped.map(|(seq, ts)| {
            let new_segment = awaiting || before != Some(Ssrc(p.ssrc));
            self.current = Some(p.layer);
            if p.codec == Codec::Vp8 {
                let mut copy = p.payload.to_vec();
                // A descriptor that does not parse goes out unchanged.
                if self.vp8.rewrite(&mut copy, new_segment).is_ok() && copy != p.payload {
                    payload = Some(copy);
                }
            }
            let ext = extend(self.last_seq, seq);
            if self.last_seq.is_none_or(|l| ext > l) {
                self.last_seq = Some(ext);
            }
            (ext, ts)
        });
        Forwarded {
            out,
            payload,
            wants_keyframe: !audio && self.current != Some(target),
        }
    }
}

/// Extends a 16-bit sequence number to the 64-bit value nearest `last`.
fn extend(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else {
        return u64::from(seq);
    };
    let base = last & !0xffff;
    let candidate = base | u64::from(seq);
    let half = 1u64 << 15;
    if candidate > last + half && candidate >= 1 << 16 {
        candidate - (1 << 16)
    } else if candidate + half < last {
        candidate + (1 << 16)
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 packet: descriptor with a 15-bit picture id, then the payload
    /// header (keyframe when `key`).
    fn vp8(pid: u16, start: bool, key: bool) -> Vec<u8> {
        let s = if start { 0x10 } else { 0 };
        vec![
            0x80 | s,
            0x80,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            if key { 0x00 } else { 0x01 },
            0,
            0,
        ]
    }

    fn packet(ssrc: u32, seq: u16, layer: usize, payload: &[u8]) -> Incoming<'_> {
        Incoming {
            ssrc,
            seq,
            ts: u32::from(seq) * 3000,
            layer,
            codec: Codec::Vp8,
            keyframe_start: Codec::Vp8.is_keyframe_start(payload),
            payload,
        }
    }

    #[test]
    fn switches_layers_on_the_targets_keyframe_only() {
        let now = Instant::now();
        let mut f = Forwarder::new(false);
        assert_eq!(
            f.forward(&packet(1, 10, 0, &vp8(5, true, true)), now).out,
            None
        );
        f.target = Some(0);
        let delta = vp8(6, true, false);
        let r = f.forward(&packet(1, 11, 0, &delta), now);
        assert_eq!(r.out, None, "no keyframe yet");
        assert!(r.wants_keyframe);
        let r = f.forward(&packet(1, 12, 0, &vp8(7, true, true)), now);
        let (s0, _) = r.out.expect("keyframe starts the stream");
        assert!(!r.wants_keyframe);
        f.target = Some(2);
        let r = f.forward(&packet(1, 13, 0, &vp8(8, true, false)), now);
        assert_eq!(r.out.unwrap().0, s0 + 1, "old layer until the switch");
        assert!(r.wants_keyframe);
        let r = f.forward(&packet(3, 500, 2, &vp8(900, true, false)), now);
        assert_eq!(r.out, None, "target layer's delta frame");
        assert_eq!(
            f.forward(&packet(2, 14, 1, &vp8(9, true, true)), now).out,
            None
        );
        let r = f.forward(&packet(3, 501, 2, &vp8(901, true, true)), now);
        assert_eq!(r.out.unwrap().0, s0 + 2, "continuous across the switch");
        let p = r.payload.expect("picture id rewritten");
        assert_eq!(u16::from(p[2] & 0x7f) << 8 | u16::from(p[3]), 9, "last + 1");
        assert!(!r.wants_keyframe);
        assert_eq!(
            f.forward(&packet(1, 15, 0, &vp8(10, true, false)), now).out,
            None
        );
        f.target = None;
        assert_eq!(
            f.forward(&packet(3, 502, 2, &vp8(902, true, false)), now)
                .out,
            None
        );
    }

    #[test]
    fn audio_follows_any_publisher_and_garbage_never_panics() {
        let now = Instant::now();
        let mut f = Forwarder::new(true);
        let a = |ssrc, seq| Incoming {
            ssrc,
            seq,
            ts: u32::from(seq) * 960,
            layer: 0,
            codec: Codec::Audio,
            keyframe_start: false,
            payload: &[1, 2, 3],
        };
        let (s, _) = f.forward(&a(7, 65535), now).out.unwrap();
        assert_eq!(
            f.forward(&a(7, 0), now).out.unwrap().0,
            s + 1,
            "wraps upward"
        );
        assert_eq!(
            f.forward(&a(9, 4), now).out.unwrap().0,
            s + 2,
            "new publisher"
        );
        let mut v = Forwarder::new(false);
        v.target = Some(0);
        for payload in [&[][..], &[0x80], &[0x90, 0x80, 0x80]] {
            let mut p = packet(1, 1, 0, payload);
            p.keyframe_start = true;
            let _ = v.forward(&p, now);
        }
    }

    #[test]
    fn extension_is_nearest_to_the_last_value() {
        assert_eq!(extend(None, 5), 5);
        assert_eq!(extend(Some(65535), 0), 65536);
        assert_eq!(extend(Some(65536), 65535), 65535);
        assert_eq!(extend(Some(10), 65530), 65530, "no negative numbers");
        assert_eq!(
            extend(Some(200_000), 3392),
            200_000 - 200_000 % 65536 + 3392
        );
    }
}
