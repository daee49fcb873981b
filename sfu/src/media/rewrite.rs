//! RTP sequence-number and timestamp rewriting for one forwarded stream
//! (RFC 3550 §5.1 fields; RFC 4585 NACK translation; RFC 3550 App. A.1 limits).
//!
//! Contract of [`SeqTsRewriter`] (one per forwarded stream per receiver):
//! - The receiver sees ONE stream: the caller sends every accepted packet under
//!   its own output SSRC, with the sequence number and timestamp returned here.
//! - The input is cut into *segments*: a segment starts at a **switch point**
//!   (the caller says so: the first packet of a keyframe of the layer it now
//!   wants, or any packet for audio) and lasts while packets come from the same
//!   SSRC. A segment's first packet is numbered `last_out_seq + 1` and stamped
//!   `last_out_ts + elapsed` (wall-clock time since the newest output timestamp
//!   was first sent, at the configured clock rate, at least +1).
//! - Inside a segment the mapping is a fixed offset on unwrapped (64-bit)
//!   counters: reordered packets get the number they would have had, a gap in
//!   the input stays a gap in the output (so the receiver's NACKs make sense),
//!   and 16/32-bit wraparound is transparent.
//! - Dropped (`None`): packets of any other SSRC than the current segment's
//!   (e.g. the old layer after a switch), packets of the current SSRC older than
//!   the segment's first packet, everything before the first switch point or
//!   after [`SeqTsRewriter::pause`] until the next switch point, and packets that
//!   jump more than 3000 ahead or 100 behind (RFC 3550's MAX_DROPOUT and
//!   MAX_MISORDER) unless they are a switch point, which then starts a segment.
//! - [`SeqTsRewriter::original_seq`] maps an output sequence number back to the
//!   source `(ssrc, seq)`, exactly, over the last 16 segments and the last
//!   [`NACK_HISTORY`] output numbers; [`SeqTsRewriter::retransmit`] maps a
//!   source packet forward again without changing any state.
//! - The first segment passes numbers through unchanged (out = in).
//! - The caller must only flag a switch point for the SSRC it wants to forward:
//!   a flagged packet of any other SSRC switches to it.
//!
//! Cost: no allocation per packet; the segment list (16 entries) is allocated
//! once, at the first switch.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Ssrc;

/// The RTP clock rate of every video codec.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Opus' RTP clock rate (RFC 7587).
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// How far back (in output sequence numbers) NACKs are translated.
pub const NACK_HISTORY: u16 = 1 << 14;

/// RFC 3550 A.1: a larger jump ahead is a restart of the sender's numbering.
const MAX_DROPOUT: i64 = 3000;
/// RFC 3550 A.1: a packet further behind is a restart, not a late packet.
const MAX_MISORDER: i64 = 100;
/// Segments remembered for the reverse mapping.
const MAX_SEGMENTS: usize = 16;
/// The largest timestamp advance on a switch (keeps it unambiguous, < 2^31).
const MAX_TS_ADVANCE: i64 = 1 << 30;

/// One run of packets from one source SSRC, with its fixed offsets.
#[derive(Debug, Clone, Copy)]
struct Segment {
    ssrc: Ssrc,
    /// Unwrapped input seq of the segment's first packet.
    in_start: i64,
    /// Highest unwrapped input seq and timestamp seen in the segment.
    in_max_seq: i64,
    in_max_ts: i64,
    /// The output seq of the segment's first packet.
    out_start: i64,
    /// out = in + offset (unwrapped).
    seq_offset: i64,
    ts_offset: i64,
}

impl Segment {
    fn unwrap_seq(&self, seq: u16) -> (i64, i64) {
        let diff = i64::from(seq.wrapping_sub(self.in_max_seq as u16) as i16);
        (self.in_max_seq + diff, diff)
    }

    fn unwrap_ts(&self, ts: u32) -> (i64, i64) {
        let diff = i64::from(ts.wrapping_sub(self.in_max_ts as u32) as i32);
        (self.in_max_ts + diff, diff)
    }
}

/// Rewrites one forwarded stream's sequence numbers and timestamps so that a
/// receiver sees one continuous stream across layer switches and pauses.
#[derive(Debug, Clone)]
pub struct SeqTsRewriter {
    clock_rate: u32,
    segments: VecDeque<Segment>,
    /// Highest output seq and timestamp (unwrapped), and when that timestamp
    /// was first sent.
    max_out_seq: i64,
    max_out_ts: i64,
    max_out_ts_at: Option<Instant>,
    paused: bool,
    discontinuity: bool,
}

impl SeqTsRewriter {
    /// A rewriter for a stream with this RTP clock rate (Hz, at least 1).
    pub fn new(clock_rate: u32) -> Self {
        SeqTsRewriter {
            clock_rate: clock_rate.max(1),
            segments: VecDeque::new(),
            max_out_seq: 0,
            max_out_ts: 0,
            max_out_ts_at: None,
            paused: false,
            discontinuity: false,
        }
    }

    /// A rewriter for video (90 kHz).
    pub fn video() -> Self {
        Self::new(VIDEO_CLOCK_RATE)
    }

    /// A rewriter for Opus audio (48 kHz).
    pub fn audio() -> Self {
        Self::new(OPUS_CLOCK_RATE)
    }

    /// Maps one packet of `src_ssrc`; `None` means drop it (see the module docs).
    /// `is_switch_point`: the caller wants this SSRC from now on and the packet
    /// can start a stream (first packet of a keyframe; any audio packet).
    pub fn rewrite(
        &mut self,
        src_ssrc: Ssrc,
        seq: u16,
        ts: u32,
        is_switch_point: bool,
        now: Instant,
    ) -> Option<(u16, u32)> {
        if !self.paused {
            if let Some(seg) = self.segments.back_mut() {
                if seg.ssrc == src_ssrc {
                    let (in_seq, diff) = seg.unwrap_seq(seq);
                    if (-MAX_MISORDER..=MAX_DROPOUT).contains(&diff) {
                        if in_seq < seg.in_start {
                            return None;
                        }
                        let (in_ts, ts_diff) = seg.unwrap_ts(ts);
                        if diff > 0 {
                            seg.in_max_seq = in_seq;
                        }
                        if ts_diff > 0 {
                            seg.in_max_ts = in_ts;
                        }
                        let out_seq = in_seq + seg.seq_offset;
                        let out_ts = in_ts + seg.ts_offset;
                        self.note_output(out_seq, out_ts, now);
                        return Some((out_seq as u16, out_ts as u32));
                    }
                    if !is_switch_point {
                        self.discontinuity = true;
                        return None;
                    }
                }
            }
        }
        if !is_switch_point {
            return None;
        }
        Some(self.start_segment(src_ssrc, seq, ts, now))
    }

    /// Stops forwarding until the next switch point, which then starts a new
    /// segment even on the same SSRC (use when a source was not forwarded for a
    /// while, so the receiver sees no huge gap).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Whether only a switch point would be forwarded now: nothing forwarded
    /// yet, paused, or the current SSRC jumped (the caller may ask for a keyframe).
    pub fn awaiting_switch_point(&self) -> bool {
        self.segments.is_empty() || self.paused || self.discontinuity
    }

    /// The SSRC now forwarded, if any.
    pub fn current_ssrc(&self) -> Option<Ssrc> {
        match self.segments.back() {
            Some(seg) if !self.paused => Some(seg.ssrc),
            _ => None,
        }
    }

    /// The source `(ssrc, seq)` an output sequence number stands for, to
    /// translate a receiver's NACK. `None` if it was never output or is older
    /// than the remembered history.
    pub fn original_seq(&self, out_seq: u16) -> Option<(Ssrc, u16)> {
        self.segments.back()?;
        let diff = i64::from(out_seq.wrapping_sub(self.max_out_seq as u16) as i16);
        if diff > 0 || -diff >= i64::from(NACK_HISTORY) {
            return None;
        }
        let out = self.max_out_seq + diff;
        let seg = self.segments.iter().rev().find(|s| s.out_start <= out)?;
        Some((seg.ssrc, (out - seg.seq_offset) as u16))
    }

    /// The output `(seq, ts)` of an already forwarded (or lost, inside a
    /// forwarded range) source packet, for a retransmission; changes nothing.
    pub fn retransmit(&self, src_ssrc: Ssrc, seq: u16, ts: u32) -> Option<(u16, u32)> {
        for seg in self.segments.iter().rev().filter(|s| s.ssrc == src_ssrc) {
            let (in_seq, diff) = seg.unwrap_seq(seq);
            if diff > 0 {
                return None;
            }
            if in_seq < seg.in_start {
                continue;
            }
            let out_seq = in_seq + seg.seq_offset;
            if self.max_out_seq - out_seq >= i64::from(NACK_HISTORY) {
                return None;
            }
            let (in_ts, _) = seg.unwrap_ts(ts);
            return Some((out_seq as u16, (in_ts + seg.ts_offset) as u32));
        }
        None
    }

    fn start_segment(&mut self, ssrc: Ssrc, seq: u16, ts: u32, now: Instant) -> (u16, u32) {
        let in_seq = i64::from(seq);
        let in_ts = i64::from(ts);
        let (out_seq, out_ts) = if self.segments.is_empty() {
            (in_seq, in_ts)
        } else {
            let elapsed = self
                .max_out_ts_at
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
            let advance = self.ticks(elapsed).max(1);
            (self.max_out_seq + 1, self.max_out_ts + advance)
        };
        if self.segments.len() == MAX_SEGMENTS {
            self.segments.pop_front();
        }
        if self.segments.capacity() < MAX_SEGMENTS {
            self.segments.reserve_exact(MAX_SEGMENTS);
        }
        self.segments.push_back(Segment {
            ssrc,
            in_start: in_seq,
            in_max_seq: in_seq,
            in_max_ts: in_ts,
            out_start: out_seq,
            seq_offset: out_seq - in_seq,
            ts_offset: out_ts - in_ts,
        });
        self.paused = false;
        self.discontinuity = false;
        self.max_out_seq = out_seq;
        self.max_out_ts = out_ts;
        self.max_out_ts_at = Some(now);
        (out_seq as u16, out_ts as u32)
    }

    fn note_output(&mut self, out_seq: i64, out_ts: i64, now: Instant) {
        if out_seq > self.max_out_seq {
            self.max_out_seq = out_seq;
        }
        if out_ts > self.max_out_ts {
            self.max_out_ts = out_ts;
            self.max_out_ts_at = Some(now);
        }
    }

    /// `elapsed` in RTP clock ticks, capped at [`MAX_TS_ADVANCE`].
    fn ticks(&self, elapsed: Duration) -> i64 {
        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        i64::try_from(ticks).map_or(MAX_TS_ADVANCE, |t| t.min(MAX_TS_ADVANCE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One input packet and the expected output.
    struct Step {
        ssrc: u32,
        seq: u16,
        ts: u32,
        switch: bool,
        at_ms: u64,
        want: Option<(u16, u32)>,
    }

    fn p(ssrc: u32, seq: u16, ts: u32, switch: bool, at_ms: u64, want: Option<(u16, u32)>) -> Step {
        Step {
            ssrc,
            seq,
            ts,
            switch,
            at_ms,
            want,
        }
    }

    fn run(name: &str, rw: &mut SeqTsRewriter, t0: Instant, steps: &[Step]) {
        for (i, s) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(s.at_ms);
            let got = rw.rewrite(Ssrc(s.ssrc), s.seq, s.ts, s.switch, now);
            assert_eq!(
                got, s.want,
                "{name}: step {i} (ssrc {} seq {})",
                s.ssrc, s.seq
            );
        }
    }

    #[test]
    fn video_table() {
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "passes the first segment through",
                vec![
                    p(1, 100, 1000, true, 0, Some((100, 1000))),
                    p(1, 101, 1000, false, 0, Some((101, 1000))),
                    p(1, 102, 4000, false, 33, Some((102, 4000))),
                ],
            ),
            (
                "drops everything before the first switch point",
                vec![
                    p(1, 99, 1000, false, 0, None),
                    p(1, 100, 4000, true, 33, Some((100, 4000))),
                    p(1, 99, 1000, false, 34, None),
                ],
            ),
            (
                "sequence wraparound",
                vec![
                    p(1, 65534, 10, true, 0, Some((65534, 10))),
                    p(1, 65535, 10, false, 0, Some((65535, 10))),
                    p(1, 0, 3010, false, 33, Some((0, 3010))),
                    p(1, 1, 3010, false, 33, Some((1, 3010))),
                ],
            ),
            (
                "timestamp wraparound",
                vec![
                    p(1, 7, 0xFFFF_F000, true, 0, Some((7, 0xFFFF_F000))),
                    p(1, 8, 0x0000_0BB8, false, 33, Some((8, 0x0000_0BB8))),
                    p(1, 9, 0x0000_1770, false, 66, Some((9, 0x0000_1770))),
                ],
            ),
            (
                "reordering and gaps are preserved",
                vec![
                    p(1, 10, 0, true, 0, Some((10, 0))),
                    p(1, 12, 3000, false, 33, Some((12, 3000))),
                    p(1, 11, 0, false, 34, Some((11, 0))),
                    p(1, 16, 6000, false, 66, Some((16, 6000))),
                    p(1, 14, 3000, false, 67, Some((14, 3000))),
                ],
            ),
            (
                "layer switch at a keyframe, old layer dropped afterwards",
                vec![
                    p(1, 100, 1000, true, 0, Some((100, 1000))),
                    p(1, 101, 1000, false, 0, Some((101, 1000))),
                    p(1, 102, 4000, false, 33, Some((102, 4000))),
                    // New layer, not yet a keyframe: dropped.
                    p(2, 4999, 777_000, false, 100, None),
                    // Keyframe of layer 2, 100 ms after ts 4000 was sent: +9000.
                    p(2, 5000, 777_777, true, 133, Some((103, 13_000))),
                    p(2, 5001, 777_777, false, 133, Some((104, 13_000))),
                    // The old layer goes on: dropped, keyframe or not.
                    p(1, 103, 7000, false, 134, None),
                    // Reordered packet of the new layer from before the keyframe.
                    p(2, 4999, 774_777, false, 135, None),
                    p(2, 5003, 780_777, false, 166, Some((106, 16_000))),
                    p(2, 5002, 777_777, false, 167, Some((105, 13_000))),
                ],
            ),
            (
                "switch with no elapsed time advances the timestamp by one",
                vec![
                    p(1, 1, 500, true, 0, Some((1, 500))),
                    p(2, 9000, 42, true, 0, Some((2, 501))),
                    p(1, 2, 3500, true, 0, Some((3, 502))),
                ],
            ),
            (
                "switch wraps the output numbers",
                vec![
                    p(1, 65535, 0xFFFF_FFFF, true, 0, Some((65535, 0xFFFF_FFFF))),
                    p(2, 300, 5, true, 10, Some((0, 899))),
                    p(2, 301, 3005, false, 43, Some((1, 3899))),
                ],
            ),
            (
                "a jump beyond MAX_DROPOUT needs a switch point",
                vec![
                    p(1, 10, 0, true, 0, Some((10, 0))),
                    p(1, 20_000, 3000, false, 33, None),
                    p(1, 20_001, 6000, true, 66, Some((11, 5940))),
                    p(1, 20_002, 9000, false, 99, Some((12, 8940))),
                ],
            ),
        ];
        for (name, steps) in cases {
            run(name, &mut SeqTsRewriter::video(), Instant::now(), &steps);
        }
    }

    #[test]
    fn audio_restart_after_pause() {
        let t0 = Instant::now();
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "new SSRC after 5 s of silence",
                vec![
                    p(10, 1, 960, true, 0, Some((1, 960))),
                    p(10, 2, 1920, true, 20, Some((2, 1920))),
                    p(10, 3, 2880, true, 40, Some((3, 2880))),
                    p(11, 40_000, 123, true, 5040, Some((4, 2880 + 240_000))),
                    p(11, 40_001, 1083, true, 5060, Some((5, 2880 + 240_960))),
                    // A late packet of the old SSRC is not what the caller wants,
                    // so it is not flagged: dropped.
                    p(10, 4, 3840, false, 5061, None),
                ],
            ),
            (
                "DTX on the same SSRC keeps the timestamp jump",
                vec![
                    p(10, 1, 960, true, 0, Some((1, 960))),
                    p(10, 2, 96_960, true, 2000, Some((2, 96_960))),
                ],
            ),
        ];
        for (name, steps) in cases {
            run(name, &mut SeqTsRewriter::audio(), t0, &steps);
        }
    }

    #[test]
    fn pause_rebases_the_same_ssrc() {
        let t0 = Instant::now();
        let mut rw = SeqTsRewriter::audio();
        run(
            "before",
            &mut rw,
            t0,
            &[
                p(10, 1, 960, true, 0, Some((1, 960))),
                p(10, 2, 1920, true, 20, Some((2, 1920))),
            ],
        );
        rw.pause();
        assert!(rw.awaiting_switch_point());
        assert_eq!(rw.current_ssrc(), None);
        run(
            "after",
            &mut rw,
            t0,
            &[
                p(10, 500, 480_000, false, 10_020, None),
                p(10, 501, 480_960, true, 10_040, Some((3, 1920 + 480_960))),
                p(10, 502, 481_920, false, 10_060, Some((4, 1920 + 481_920))),
            ],
        );
        assert!(!rw.awaiting_switch_point());
        assert_eq!(rw.current_ssrc(), Some(Ssrc(10)));
    }

    #[test]
    fn nack_translation() {
        let t0 = Instant::now();
        let mut rw = SeqTsRewriter::video();
        run(
            "setup",
            &mut rw,
            t0,
            &[
                p(1, 65534, 0, true, 0, Some((65534, 0))),
                // 65535 lost upstream: a gap in the output too.
                p(1, 0, 3000, false, 33, Some((0, 3000))),
                p(2, 700, 90_000, true, 66, Some((1, 5970))),
                p(2, 702, 93_000, false, 99, Some((3, 8970))),
                p(1, 7, 0, true, 132, Some((4, 11_940))),
            ],
        );
        let table: [(u16, Option<(u32, u16)>); 8] = [
            (65534, Some((1, 65534))),
            (65535, Some((1, 65535))),
            (0, Some((1, 0))),
            (1, Some((2, 700))),
            (2, Some((2, 701))),
            (3, Some((2, 702))),
            (4, Some((1, 7))),
            // Not sent yet.
            (5, None),
        ];
        for (out, want) in table {
            let got = rw.original_seq(out).map(|(s, q)| (s.0, q));
            assert_eq!(got, want, "out seq {out}");
        }
        // Before the first segment, and older than the history.
        assert_eq!(rw.original_seq(65533), None);
        assert_eq!(rw.original_seq(4u16.wrapping_sub(NACK_HISTORY)), None);

        // The forward mapping for retransmissions, without changing state.
        assert_eq!(rw.retransmit(Ssrc(2), 701, 90_000), Some((2, 5970)));
        assert_eq!(rw.retransmit(Ssrc(1), 65535, 0), Some((65535, 0)));
        assert_eq!(rw.retransmit(Ssrc(1), 7, 0), Some((4, 11_940)));
        // Newer than anything forwarded on that SSRC's segment.
        assert_eq!(rw.retransmit(Ssrc(2), 703, 93_000), None);
        assert_eq!(rw.retransmit(Ssrc(3), 1, 0), None);
        assert_eq!(
            rw.rewrite(Ssrc(1), 8, 0, false, t0 + Duration::from_millis(140)),
            Some((5, 11_940))
        );
    }

    #[test]
    fn history_is_bounded() {
        let t0 = Instant::now();
        let mut rw = SeqTsRewriter::video();
        for i in 0..40u32 {
            let got = rw.rewrite(
                Ssrc(i % 3),
                10,
                0,
                true,
                t0 + Duration::from_millis(i.into()),
            );
            assert_eq!(got.map(|g| g.0), Some(10 + i as u16));
        }
        assert_eq!(rw.segments.len(), MAX_SEGMENTS);
        assert_eq!(rw.original_seq(49), Some((Ssrc(39 % 3), 10)));
        assert_eq!(
            rw.original_seq(10 + 40 - MAX_SEGMENTS as u16),
            Some((Ssrc(0), 10))
        );
        assert_eq!(rw.original_seq(10 + 40 - MAX_SEGMENTS as u16 - 1), None);
    }

    #[test]
    fn long_pause_caps_the_timestamp_advance() {
        let t0 = Instant::now();
        let mut rw = SeqTsRewriter::video();
        assert_eq!(rw.rewrite(Ssrc(1), 1, 0, true, t0), Some((1, 0)));
        let later = t0 + Duration::from_secs(365 * 24 * 3600);
        assert_eq!(
            rw.rewrite(Ssrc(2), 1, 0, true, later),
            Some((2, MAX_TS_ADVANCE as u32))
        );
        // A clock going backwards is treated as no elapsed time.
        assert_eq!(
            rw.rewrite(Ssrc(1), 2, 0, true, t0),
            Some((3, MAX_TS_ADVANCE as u32 + 1))
        );
    }
}
