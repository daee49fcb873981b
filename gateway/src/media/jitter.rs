//! A jitter buffer for incoming RTP audio (RFC 3550 fields) whose delay
//! starts small and grows when packets come late.
//!
//! Packets are placed by RTP timestamp, one slot per frame (the frame length
//! in timestamp units is fixed at construction: 160 for 20 ms G.711, 960 for
//! 20 ms Opus). Playout starts `delay` after the first packet arrives and then
//! advances one frame per [`JitterBuffer::pop`], which the caller makes on its
//! 20 ms tick; the buffer never reads a clock, `now` is an argument. A frame
//! whose slot is empty when its turn comes is reported [`Playout::Lost`] (run
//! PLC, or FEC from the next packet: [`JitterBuffer::peek_next`]); a packet
//! arriving after its turn is dropped as late. A jump beyond the buffer's
//! capacity (a new talk spurt after a long pause, a restarted sender) resets
//! it, and so does a long run of nothing.
//!
//! The delay adapts upwards: a packet that comes after its turn makes the
//! next tick play a concealed frame instead of advancing, so everything
//! after it plays one slot later (at most a quarter of the capacity in all).
//! A restart (a new talk spurt, or a [`JitterBuffer::clear`]) goes back to
//! the starting delay. It never shrinks while a stream runs, and there is
//! no drift compensation.

use std::time::{Duration, Instant};

/// What one playout tick yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout<P> {
    /// Still buffering (before the first packet, or within the delay).
    Waiting,
    /// The frame due now.
    Frame(P),
    /// The frame due now never arrived: conceal it.
    Lost,
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arrival {
    /// Stored for playout.
    Accepted,
    /// Its turn has passed: dropped.
    Late,
    /// A frame with that timestamp is already stored: dropped.
    Duplicate,
    /// Too far from the playout position: the buffer restarted from it.
    Reset,
}

/// Counters since the buffer was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub late: u64,
    pub duplicate: u64,
    pub resets: u64,
    pub played: u64,
    pub lost: u64,
    /// Slots the delay grew by, after late packets.
    pub stretched: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Empty,
    Priming { since: Instant },
    Playing { idle: usize },
}

/// The jitter buffer; `P` is the payload (for instance the RTP payload bytes).
pub struct JitterBuffer<P> {
    frame_ts: u32,
    delay: Duration,
    slots: Vec<Option<(u16, P)>>,
    /// Slot of the next frame to play, whose timestamp is `next_ts`.
    head: usize,
    next_ts: u32,
    state: State,
    stats: Stats,
    /// A late packet asked for one slot more of delay.
    stretch: bool,
    /// Slots of delay added since the last restart.
    grown: usize,
}

impl<P> JitterBuffer<P> {
    /// A buffer of `capacity` frames of `frame_ts` timestamp units each,
    /// playing at least `delay` behind the first arrival (0 when arrivals
    /// are only stamped at the playout ticks).
    pub fn new(frame_ts: u32, delay: Duration, capacity: usize) -> Self {
        let capacity = capacity.max(2);
        JitterBuffer {
            frame_ts: frame_ts.max(1),
            delay,
            slots: (0..capacity).map(|_| None).collect(),
            head: 0,
            next_ts: 0,
            state: State::Empty,
            stats: Stats::default(),
            stretch: false,
            grown: 0,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Frames stored and not yet played.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload stored for the frame after the one due next, if any (for
    /// Opus FEC when the next [`pop`](Self::pop) reports a loss).
    pub fn peek_next(&self) -> Option<&P> {
        let i = (self.head + 1) % self.slots.len();
        self.slots[i].as_ref().map(|(_, p)| p)
    }

    /// Forgets everything stored: the next packet starts playout afresh,
    /// with the starting delay (for a stream whose earlier packets were not
    /// played, as a call's audio during its voice menu).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.state = State::Empty;
        self.stretch = false;
        self.grown = 0;
    }

    fn restart(&mut self, now: Instant, seq: u16, ts: u32, payload: P) {
        self.clear();
        self.head = 0;
        self.next_ts = ts;
        self.slots[0] = Some((seq, payload));
        self.state = State::Priming { since: now };
    }

    /// Offers a received packet.
    pub fn push(&mut self, now: Instant, seq: u16, ts: u32, payload: P) -> Arrival {
        let cap = self.slots.len();
        if let State::Empty = self.state {
            self.restart(now, seq, ts, payload);
            self.stats.accepted += 1;
            return Arrival::Accepted;
        }
        let diff = ts.wrapping_sub(self.next_ts) as i32;
        let frames = diff.div_euclid(self.frame_ts as i32);
        if frames < 0 {
            let back = frames.unsigned_abs() as usize;
            // While priming, an earlier packet may still move the start back
            // if the slots it needs are free.
            let fits =
                back < cap && (1..=back).all(|k| self.slots[(self.head + cap - k) % cap].is_none());
            if let (State::Priming { .. }, true) = (self.state, fits) {
                self.head = (self.head + cap - back) % cap;
                self.next_ts = self.next_ts.wrapping_sub(back as u32 * self.frame_ts);
                self.slots[self.head] = Some((seq, payload));
                self.stats.accepted += 1;
                return Arrival::Accepted;
            }
            if back <= 2 * cap {
                self.stats.late += 1;
                if matches!(self.state, State::Playing { .. }) && self.grown < cap / 4 {
                    self.stretch = true;
                }
                return Arrival::Late;
            }
        } else if (frames as usize) < cap {
            let slot = &mut self.slots[(self.head + frames as usize) % cap];
            if slot.is_some() {
                self.stats.duplicate += 1;
                return Arrival::Duplicate;
            }
            *slot = Some((seq, payload));
            self.stats.accepted += 1;
            return Arrival::Accepted;
        }
        self.restart(now, seq, ts, payload);
        self.stats.resets += 1;
        Arrival::Reset
    }

    /// Yields the frame due at this tick (call once every frame duration).
    pub fn pop(&mut self, now: Instant) -> Playout<P> {
        match self.state {
            State::Empty => return Playout::Waiting,
            State::Priming { since } if now < since + self.delay => return Playout::Waiting,
            State::Priming { .. } => self.state = State::Playing { idle: 0 },
            State::Playing { .. } if self.stretch => {
                // One slot more of delay: conceal instead of advancing.
                self.stretch = false;
                self.grown += 1;
                self.stats.stretched += 1;
                return Playout::Lost;
            }
            State::Playing { .. } => {}
        }
        let cap = self.slots.len();
        let taken = self.slots[self.head].take();
        self.head = (self.head + 1) % cap;
        self.next_ts = self.next_ts.wrapping_add(self.frame_ts);
        match taken {
            Some((_, payload)) => {
                self.state = State::Playing { idle: 0 };
                self.stats.played += 1;
                Playout::Frame(payload)
            }
            None => {
                let idle = match self.state {
                    State::Playing { idle } => idle + 1,
                    _ => 1,
                };
                if idle >= cap && self.is_empty() {
                    // The sender went quiet (DTX, hold): start afresh.
                    self.state = State::Empty;
                    return Playout::Waiting;
                }
                self.state = State::Playing { idle };
                self.stats.lost += 1;
                Playout::Lost
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Frames 0..n at 20 ms, as (seq, ts).
    fn packet(i: u16) -> (u16, u32) {
        (
            1000u16.wrapping_add(i),
            4_294_967_000u32.wrapping_add(160 * u32::from(i)),
        )
    }

    fn drain(
        jb: &mut JitterBuffer<u16>,
        t0: Instant,
        ticks: std::ops::Range<u32>,
    ) -> Vec<Playout<u16>> {
        ticks.map(|k| jb.pop(t0 + 20 * k * MS)).collect()
    }

    #[test]
    fn reorders_and_reports_loss() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(160, 60 * MS, 16);
        // Arrival order 0 2 1 3 4 6 (5 never comes), at 20 ms steps, with
        // timestamps wrapping past 2^32 on the way.
        for (k, i) in [0u16, 2, 1, 3, 4, 6].into_iter().enumerate() {
            let (seq, ts) = packet(i);
            assert_eq!(
                jb.push(t0 + 20 * k as u32 * MS, seq, ts, i),
                Arrival::Accepted
            );
        }
        let out = drain(&mut jb, t0, 0..10);
        use Playout::*;
        assert_eq!(
            out,
            [
                Waiting,
                Waiting,
                Waiting,
                Frame(0),
                Frame(1),
                Frame(2),
                Frame(3),
                Frame(4),
                Lost,
                Frame(6)
            ]
        );
        // Packet 5 turns up after its turn: dropped as late.
        let (seq, ts) = packet(5);
        assert_eq!(jb.push(t0 + 200 * MS, seq, ts, 5), Arrival::Late);
        let (seq, ts) = packet(6);
        assert_eq!(jb.push(t0 + 200 * MS, seq, ts, 6), Arrival::Late);
        let s = jb.stats();
        assert_eq!((s.accepted, s.played, s.lost, s.late), (6, 6, 1, 2));
    }

    #[test]
    fn an_earlier_packet_while_priming_moves_the_start_back() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(160, 60 * MS, 8);
        let (s1, t1) = packet(1);
        let (s0, ts0) = packet(0);
        assert_eq!(jb.push(t0, s1, t1, 1), Arrival::Accepted);
        assert_eq!(jb.push(t0 + 5 * MS, s0, ts0, 0), Arrival::Accepted);
        assert_eq!(jb.push(t0 + 6 * MS, s0, ts0, 0), Arrival::Duplicate);
        let out = drain(&mut jb, t0, 3..5);
        assert_eq!(out, [Playout::Frame(0), Playout::Frame(1)]);
    }

    #[test]
    fn a_far_jump_resets_and_silence_empties() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(160, 40 * MS, 4);
        jb.push(t0, 1, 0, 1);
        assert_eq!(jb.pop(t0 + 40 * MS), Playout::Frame(1));
        // A new talk spurt far ahead restarts priming.
        assert_eq!(jb.push(t0 + 60 * MS, 2, 160 * 100, 2), Arrival::Reset);
        assert_eq!(jb.pop(t0 + 60 * MS), Playout::Waiting);
        assert_eq!(jb.pop(t0 + 100 * MS), Playout::Frame(2));
        // Nothing more: a few losses, then the buffer goes back to waiting.
        let out = drain(&mut jb, t0, 6..12);
        assert_eq!(out.iter().filter(|p| **p == Playout::Lost).count(), 3);
        assert_eq!(out.last(), Some(&Playout::Waiting));
    }

    #[test]
    fn a_late_packet_adds_one_slot_of_delay() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(160, Duration::ZERO, 16);
        // Packets arrive at 20 ms steps and play at the tick they arrive.
        for i in 0..3u16 {
            let (seq, ts) = packet(i);
            let now = t0 + 20 * u32::from(i) * MS;
            jb.push(now, seq, ts, i);
            assert_eq!(jb.pop(now), Playout::Frame(i));
        }
        // Packet 3 misses its tick and comes with packet 4.
        assert_eq!(jb.pop(t0 + 60 * MS), Playout::Lost);
        let (seq, ts) = packet(3);
        assert_eq!(jb.push(t0 + 80 * MS, seq, ts, 3), Arrival::Late);
        let (seq, ts) = packet(4);
        assert_eq!(jb.push(t0 + 80 * MS, seq, ts, 4), Arrival::Accepted);
        // The buffer waits one slot, then plays one slot behind: packet 5,
        // arriving as late as packet 3 did, is in time.
        assert_eq!(jb.pop(t0 + 80 * MS), Playout::Lost);
        assert_eq!(jb.pop(t0 + 100 * MS), Playout::Frame(4));
        let (seq, ts) = packet(5);
        assert_eq!(jb.push(t0 + 120 * MS, seq, ts, 5), Arrival::Accepted);
        assert_eq!(jb.pop(t0 + 120 * MS), Playout::Frame(5));
        let s = jb.stats();
        assert_eq!((s.late, s.stretched, s.lost), (1, 1, 1));
        // Clearing goes back to the starting delay.
        jb.clear();
        assert!(jb.is_empty());
        let (seq, ts) = packet(9);
        jb.push(t0 + 200 * MS, seq, ts, 9);
        assert_eq!(jb.pop(t0 + 200 * MS), Playout::Frame(9));
    }

    #[test]
    fn under_steady_jitter_the_delay_settles_and_losses_stop() {
        // Packet i is sent at 20·i ms and delayed by 0-35 ms (a fixed
        // pseudo-random sequence); the phone leg reads it at the first
        // 20 ms tick after it arrived, then pops.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(160, Duration::ZERO, 50);
        let mut seed = 0x2545_f491_u32;
        let mut delays = Vec::new();
        for _ in 0..500 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            delays.push(seed % 36);
        }
        // The first packet is on time: the buffer starts at no delay.
        delays[0] = 0;
        let arrival_tick = |i: usize| (20 * i as u32 + delays[i]).div_ceil(20);
        let mut next = 0;
        let mut lost_late = 0;
        for tick in 0..500u32 {
            let now = t0 + 20 * tick * MS;
            while next < 500 && arrival_tick(next) <= tick {
                let (seq, ts) = packet(next as u16);
                jb.push(now, seq, ts, next);
                next += 1;
            }
            if jb.pop(now) == Playout::Lost && tick >= 250 {
                lost_late += 1;
            }
        }
        let s = jb.stats();
        // 35 ms of jitter needs two slots: the buffer grew by about that,
        // losing two frames per step, and nothing in the second half.
        assert!((1..=3).contains(&s.stretched), "{s:?}");
        assert!(s.late <= s.stretched + 1, "{s:?}");
        assert_eq!(lost_late, 0, "{s:?}");
        assert!(s.played >= 490, "{s:?}");
    }

    #[test]
    fn the_delay_grows_at_most_a_quarter_of_the_capacity() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(160, Duration::ZERO, 8);
        let (seq, ts) = packet(0);
        jb.push(t0, seq, ts, 0);
        assert_eq!(jb.pop(t0), Playout::Frame(0));
        // A sender at half speed: packet j comes at tick 2j, later and later.
        // The delay grows by one slot per late packet, up to 2 slots.
        for k in 1..13u16 {
            let now = t0 + 20 * u32::from(k) * MS;
            let _ = jb.pop(now);
            if k % 2 == 0 {
                let (seq, ts) = packet(k / 2);
                jb.push(now, seq, ts, k / 2);
            }
        }
        let s = jb.stats();
        assert_eq!(s.stretched, 2);
        assert!(s.late >= 3, "{s:?}");
        assert_eq!(s.resets, 0);
    }
}
