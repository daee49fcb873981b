//! "Everyone but me" mixing for one 20 ms tick.
//!
//! Per tick: [`Mixer::start_tick`], then for each room stream decode its
//! frame once, straight into [`Mixer::frame_mut`]; then [`Mixer::mix_for`]
//! for each caller. The mixer sums all streams once (i32, no overflow) and
//! gives each caller the sum minus that caller's own stream, so a tick costs
//! O(streams + callers) frame operations rather than O(streams × callers).
//! Sums beyond full scale go through a soft limiter (linear up to -3 dBFS,
//! then a tanh knee into full scale) instead of wrapping or hard clipping.

/// Samples above this magnitude are compressed (-3 dBFS).
const KNEE: f32 = 23170.0;
const FULL: f32 = 32767.0;

struct Slot<K> {
    id: K,
    live: bool,
    pcm: Vec<i16>,
}

/// Mixes the decoded frames of the room's streams for each caller.
pub struct Mixer<K> {
    frame_len: usize,
    slots: Vec<Slot<K>>,
    sum: Vec<i32>,
    summed: bool,
}

impl<K: Copy + Eq> Mixer<K> {
    /// A mixer for frames of `frame_len` samples (960 for 20 ms mono at 48 kHz).
    pub fn new(frame_len: usize) -> Self {
        Mixer {
            frame_len,
            slots: Vec::new(),
            sum: vec![0; frame_len],
            summed: false,
        }
    }

    /// Starts a tick: last tick's frames are forgotten (their buffers kept).
    pub fn start_tick(&mut self) {
        self.slots.iter_mut().for_each(|s| s.live = false);
        self.summed = false;
    }

    /// A zeroed frame buffer for stream `id` in this tick, to decode into.
    /// A stream with nothing this tick simply gets no frame.
    pub fn frame_mut(&mut self, id: K) -> &mut [i16] {
        self.summed = false;
        let index = match self.slots.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    id,
                    live: false,
                    pcm: vec![0; self.frame_len],
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.live = true;
        slot.pcm.fill(0);
        &mut slot.pcm
    }

    /// Drops the buffer of a stream that left the room.
    pub fn remove(&mut self, id: K) {
        self.slots.retain(|s| s.id != id);
        self.summed = false;
    }

    /// Streams with a frame in this tick.
    pub fn live_streams(&self) -> usize {
        self.slots.iter().filter(|s| s.live).count()
    }

    /// Writes into `out` the mix of every stream of this tick except `own`
    /// (pass an id with no stream, or `None`, to hear everyone).
    pub fn mix_for(&mut self, own: Option<K>, out: &mut [i16]) {
        if !self.summed {
            self.sum.fill(0);
            for slot in self.slots.iter().filter(|s| s.live) {
                for (acc, &s) in self.sum.iter_mut().zip(&slot.pcm) {
                    *acc += i32::from(s);
                }
            }
            self.summed = true;
        }
        let mine = own.and_then(|id| self.slots.iter().find(|s| s.live && s.id == id));
        match mine {
            Some(slot) => {
                for ((o, &acc), &s) in out.iter_mut().zip(&self.sum).zip(&slot.pcm) {
                    *o = limit(acc - i32::from(s));
                }
            }
            None => {
                for (o, &acc) in out.iter_mut().zip(&self.sum) {
                    *o = limit(acc);
                }
            }
        }
    }
}

/// Soft limiter: identity below the knee, tanh into full scale above it.
fn limit(x: i32) -> i16 {
    let mag = x.unsigned_abs() as f32;
    if mag <= KNEE {
        return x as i16; // |x| <= KNEE < i16::MAX
    }
    let room = FULL - KNEE;
    let y = KNEE + room * ((mag - KNEE) / room).tanh();
    (y.min(FULL) as i16) * x.signum() as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::testutil::{goertzel, sine};

    #[test]
    fn own_voice_is_left_out() {
        // Whole cycles in 20 ms (multiples of 50 Hz), so Goertzel does not leak.
        let a = sine(48000, 400.0, 8000.0, 960);
        let b = sine(48000, 1000.0, 8000.0, 960);
        let c = sine(48000, 2000.0, 8000.0, 960);
        let mut mixer = Mixer::new(960);
        mixer.start_tick();
        for (id, tone) in [('a', &a), ('b', &b), ('c', &c)] {
            mixer.frame_mut(id).copy_from_slice(tone);
        }
        let mut for_a = [0i16; 960];
        let mut for_b = [0i16; 960];
        mixer.mix_for(Some('a'), &mut for_a);
        mixer.mix_for(Some('b'), &mut for_b);
        let power = |x: &[i16], f| goertzel(x, 48000, f);
        let present = power(&a, 400.0) / 2.0;
        assert!(power(&for_a, 400.0) < present * 1e-6, "A hears itself");
        assert!(power(&for_a, 1000.0) > present && power(&for_a, 2000.0) > present);
        assert!(power(&for_b, 400.0) > present, "B does not hear A");
        assert!(power(&for_b, 1000.0) < present * 1e-6, "B hears itself");
        // Exactly the sum of the others (no limiting at this level).
        for i in 0..960 {
            assert_eq!(for_a[i], b[i] + c[i]);
        }
    }

    #[test]
    fn a_stream_silent_this_tick_drops_out() {
        let mut mixer = Mixer::new(4);
        mixer.start_tick();
        mixer.frame_mut(1).copy_from_slice(&[100; 4]);
        mixer.frame_mut(2).copy_from_slice(&[10; 4]);
        mixer.start_tick();
        mixer.frame_mut(2).copy_from_slice(&[10; 4]);
        let mut out = [0i16; 4];
        mixer.mix_for(None, &mut out);
        assert_eq!(out, [10; 4]);
        assert_eq!(mixer.live_streams(), 1);
    }

    #[test]
    fn loud_sums_are_limited_not_wrapped() {
        let mut mixer = Mixer::new(3);
        mixer.start_tick();
        for id in 0..4 {
            mixer.frame_mut(id).copy_from_slice(&[30000, -30000, 1000]);
        }
        let mut out = [0i16; 3];
        mixer.mix_for(None, &mut out);
        assert!(out[0] > 30000, "{out:?}");
        assert!(out[1] < -30000 && out[1] >= -32767, "{out:?}");
        assert_eq!(out[2], 4000);
        // The limiter is monotonic.
        let mut last = 0;
        for x in (0..200_000).step_by(997) {
            let y = limit(x);
            assert!(y >= last);
            last = y;
        }
    }
}
