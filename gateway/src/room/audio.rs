//! One room's audio on the gateway, shared by every caller in that room.
//!
//! Every caller has its own WebRTC leg. The room task subscribes one of
//! them to the room's audio (every source but this gateway's callers) and
//! the others to none, so each source normally arrives on one leg; should
//! it arrive on several (while the subscriptions change, or from an SFU
//! that ignores them), [`RoomAudio`] still decodes each source **once per
//! room**: frames for a source are taken from one leg, its *feeder*, and a
//! source whose feeder goes quiet for [`FEEDER_SWITCH`] is taken over by
//! the next leg that carries it. Callers of this gateway are not decoded
//! at all: their 48 kHz PCM is put in directly ([`RoomAudio::put_local`])
//! and their Opus, if the SFU sends it, is ignored.
//!
//! Per 20 ms tick ([`RoomAudio::tick`]) every remote source plays one frame
//! from its jitter buffer (decoded, FEC-recovered or concealed), then
//! [`RoomAudio::mix_for`] gives each caller everyone but themselves.
//!
//! The mix is made at 48 kHz, or, when every caller's phone has the same
//! rate (G.711's 8 kHz, G.722's 16 kHz), at that rate
//! ([`RoomAudio::set_bus`]): the remote sources' sum is then downsampled
//! once per room, and no caller's audio is resampled at all.
//! Sans-IO: time is an argument, no sockets, no tasks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::super::media::jitter::{JitterBuffer, Playout};
use super::super::media::mixer::Mixer;
use super::super::media::opus::{Layout, OpusDecoder};
use super::super::media::resample::{Downsampler, PhoneRate};
use super::super::media::FRAME_48K;

/// How long a source's feeder may be silent before another leg takes over.
pub const FEEDER_SWITCH: Duration = Duration::from_millis(200);
/// A remote source silent this long is forgotten (its decoder freed).
const SOURCE_IDLE: Duration = Duration::from_secs(5);
/// Jitter buffer delay and depth (frames) for the room's streams. A frame
/// plays at the first tick after it arrived; each frame that misses its
/// tick makes the buffer one frame deeper.
const JITTER_DELAY: Duration = Duration::ZERO;
const JITTER_FRAMES: usize = 16;
/// Concealed frames after which a source without packets is left out of the
/// mix instead of fading on.
const MAX_CONCEALED: u32 = 5;

/// Which leg (caller) a frame came on.
pub type LegId = u64;

struct Remote {
    id: u32,
    feeder: LegId,
    last: Instant,
    jitter: JitterBuffer<Vec<u8>>,
    decoder: OpusDecoder,
    concealed: u32,
}

/// Counters for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AudioStats {
    /// Frames decoded (once per room and source, not per caller).
    pub decoded: u64,
    /// Frames concealed (PLC or FEC).
    pub concealed: u64,
    /// Frames dropped because another leg feeds their source.
    pub duplicates: u64,
}

/// The mix at a phone rate: the remote sources' sum, downsampled, and the
/// callers at their own rate.
struct Narrow {
    rate: PhoneRate,
    mixer: Mixer<u32>,
    down: Downsampler,
    remote48: Vec<i16>,
}

/// The narrow mixer's id for the remote sources' sum (caller ids start at 1).
const REMOTE_SUM: u32 = 0;

/// The room's sources and the everyone-but-me mixer.
pub struct RoomAudio {
    remotes: HashMap<String, Remote>,
    locals: HashMap<String, u32>,
    next_id: u32,
    /// The remote sources, and the callers when there is no `narrow` mix.
    mixer: Mixer<u32>,
    narrow: Option<Narrow>,
    stats: AudioStats,
}

impl Default for RoomAudio {
    fn default() -> Self {
        Self::new()
    }
}

impl RoomAudio {
    pub fn new() -> Self {
        RoomAudio {
            remotes: HashMap::new(),
            locals: HashMap::new(),
            next_id: 0,
            mixer: Mixer::new(FRAME_48K),
            narrow: None,
            stats: AudioStats::default(),
        }
    }

    pub fn stats(&self) -> AudioStats {
        self.stats
    }

    /// Remote sources currently decoded.
    pub fn remote_sources(&self) -> usize {
        self.remotes.len()
    }

    /// Mixes at `rate` from the next tick on (`None`: 48 kHz). Set it to
    /// the callers' phone rate when they all share one.
    pub fn set_bus(&mut self, rate: Option<PhoneRate>) {
        if self.bus() == rate {
            return;
        }
        self.narrow = rate.map(|rate| Narrow {
            rate,
            mixer: Mixer::new(rate.frame_len()),
            down: Downsampler::new(rate),
            remote48: vec![0; FRAME_48K],
        });
    }

    /// The rate [`put_local`](Self::put_local) takes and
    /// [`mix_for`](Self::mix_for) gives (`None`: 48 kHz).
    pub fn bus(&self) -> Option<PhoneRate> {
        self.narrow.as_ref().map(|n| n.rate)
    }

    /// Samples in one 20 ms frame at [`bus`](Self::bus).
    pub fn frame_len(&self) -> usize {
        self.bus().map_or(FRAME_48K, PhoneRate::frame_len)
    }

    fn new_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// A caller of this gateway, known to the room by `nick`: its audio is
    /// put in directly and its echoes from the SFU are ignored.
    pub fn add_local(&mut self, nick: &str) {
        if let Some(r) = self.remotes.remove(nick) {
            self.mixer.remove(r.id);
        }
        if !self.locals.contains_key(nick) {
            let id = self.new_id();
            self.locals.insert(nick.to_owned(), id);
        }
    }

    pub fn remove_local(&mut self, nick: &str) {
        if let Some(id) = self.locals.remove(nick) {
            self.mixer.remove(id);
            if let Some(n) = &mut self.narrow {
                n.mixer.remove(id);
            }
        }
    }

    /// An Opus frame of `owner`'s audio that arrived on `leg`.
    pub fn push(&mut self, leg: LegId, owner: &str, rtp_time: u64, opus: &[u8], now: Instant) {
        if self.locals.contains_key(owner) {
            return;
        }
        if !self.remotes.contains_key(owner) {
            let Ok(decoder) = OpusDecoder::new(Layout::Mono) else {
                return;
            };
            let id = self.new_id();
            self.remotes.insert(
                owner.to_owned(),
                Remote {
                    id,
                    feeder: leg,
                    last: now,
                    jitter: JitterBuffer::new(FRAME_48K as u32, JITTER_DELAY, JITTER_FRAMES),
                    decoder,
                    concealed: 0,
                },
            );
        }
        let Some(r) = self.remotes.get_mut(owner) else {
            return;
        };
        if r.feeder != leg {
            if now.duration_since(r.last) < FEEDER_SWITCH {
                self.stats.duplicates += 1;
                return;
            }
            // The feeder went quiet (its caller left, or the SFU moved the
            // source): this leg's timeline replaces it.
            r.feeder = leg;
            r.jitter = JitterBuffer::new(FRAME_48K as u32, JITTER_DELAY, JITTER_FRAMES);
        }
        r.last = now;
        let ts = rtp_time as u32;
        let seq = (rtp_time / FRAME_48K as u64) as u16;
        r.jitter.push(now, seq, ts, opus.to_vec());
    }

    /// Starts a tick: every remote source plays its next frame.
    pub fn tick(&mut self, now: Instant) {
        self.mixer.start_tick();
        if let Some(n) = &mut self.narrow {
            n.mixer.start_tick();
        }
        let mut gone = Vec::new();
        for (owner, r) in self.remotes.iter_mut() {
            if now.duration_since(r.last) > SOURCE_IDLE {
                gone.push(owner.clone());
                continue;
            }
            let out = self.mixer.frame_mut(r.id);
            let played = match r.jitter.pop(now) {
                Playout::Waiting => None,
                Playout::Frame(packet) => match r.decoder.decode(&packet, out) {
                    Ok(_) => {
                        self.stats.decoded += 1;
                        r.concealed = 0;
                        Some(())
                    }
                    // A corrupt packet: conceal it like a lost one.
                    Err(_) => conceal(r, out, &mut self.stats),
                },
                Playout::Lost => match r.jitter.peek_next().cloned() {
                    Some(next) if r.concealed == 0 => match r.decoder.recover(&next, out) {
                        Ok(_) => {
                            self.stats.concealed += 1;
                            r.concealed += 1;
                            Some(())
                        }
                        Err(_) => conceal(r, out, &mut self.stats),
                    },
                    _ => conceal(r, out, &mut self.stats),
                },
            };
            if played.is_none() {
                out.fill(0);
            }
        }
        for owner in gone {
            if let Some(r) = self.remotes.remove(&owner) {
                self.mixer.remove(r.id);
            }
        }
        // At a phone rate, the remote sources (all the 48 kHz mixer holds
        // then) enter the mix as one downsampled stream.
        if let Some(n) = &mut self.narrow {
            self.mixer.mix_for(None, &mut n.remote48);
            let out = n.mixer.frame_mut(REMOTE_SUM);
            if n.down.process(&n.remote48, out).is_err() {
                out.fill(0);
            }
        }
    }

    /// A local caller's frame for this tick (after [`tick`](Self::tick)),
    /// at [`bus`](Self::bus).
    pub fn put_local(&mut self, nick: &str, pcm: &[i16]) {
        let Some(&id) = self.locals.get(nick) else {
            return;
        };
        let mixer = match &mut self.narrow {
            Some(n) => &mut n.mixer,
            None => &mut self.mixer,
        };
        let out = mixer.frame_mut(id);
        let n = out.len().min(pcm.len());
        out[..n].copy_from_slice(&pcm[..n]);
    }

    /// Everyone but `nick` (a local caller), for this tick, at
    /// [`bus`](Self::bus) (`out` holds [`frame_len`](Self::frame_len)).
    pub fn mix_for(&mut self, nick: Option<&str>, out: &mut [i16]) {
        let own = nick.and_then(|n| self.locals.get(n).copied());
        match &mut self.narrow {
            Some(n) => n.mixer.mix_for(own, out),
            None => self.mixer.mix_for(own, out),
        }
    }
}

fn conceal(r: &mut Remote, out: &mut [i16], stats: &mut AudioStats) -> Option<()> {
    if r.concealed >= MAX_CONCEALED {
        return None;
    }
    r.concealed += 1;
    stats.concealed += 1;
    r.decoder.conceal(out).ok().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::{OpusEncoder, MAX_PACKET};
    use crate::media::testutil::{goertzel, sine};

    /// Opus packets of a tone, 20 ms each.
    fn tone_packets(freq: f64, frames: usize) -> Vec<Vec<u8>> {
        let pcm = sine(48_000, freq, 8000.0, frames * FRAME_48K);
        let mut enc = OpusEncoder::new(Layout::Mono, 32_000).unwrap();
        pcm.chunks_exact(FRAME_48K)
            .map(|f| {
                let mut out = [0u8; MAX_PACKET];
                let n = enc.encode(f, &mut out).unwrap();
                out[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn each_source_is_decoded_once_and_everyone_hears_everyone_but_themselves() {
        let mut room = RoomAudio::new();
        room.add_local("phone-a");
        room.add_local("phone-b");
        let web = tone_packets(440.0, 50);
        let a_voice = sine(48_000, 880.0, 8000.0, 50 * FRAME_48K);
        let b_voice = sine(48_000, 660.0, 8000.0, 50 * FRAME_48K);
        let t0 = Instant::now();
        let (mut heard_a, mut heard_b) = (Vec::new(), Vec::new());
        for (i, packet) in web.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * i as u64);
            let ts = (i * FRAME_48K) as u64;
            // The web participant reaches both legs; each caller's own voice
            // is echoed to the other caller's leg by the SFU.
            room.push(1, "web", ts, packet, now);
            room.push(2, "web", ts, packet, now);
            room.push(2, "phone-a", ts, packet, now);
            room.tick(now);
            let f = i * FRAME_48K..(i + 1) * FRAME_48K;
            room.put_local("phone-a", &a_voice[f.clone()]);
            room.put_local("phone-b", &b_voice[f]);
            let mut out = vec![0i16; FRAME_48K];
            room.mix_for(Some("phone-a"), &mut out);
            heard_a.extend_from_slice(&out);
            room.mix_for(Some("phone-b"), &mut out);
            heard_b.extend_from_slice(&out);
        }
        let s = room.stats();
        assert!(s.decoded >= 45 && s.decoded <= 50, "{s:?}");
        assert_eq!(s.duplicates, 50, "the second leg's copies are dropped");
        assert_eq!(room.remote_sources(), 1, "phone-a's echo is not a source");
        // A hears the web tone and B, not itself.
        let tail = 20 * FRAME_48K..;
        let spectrum = |pcm: &[i16], f: f64| goertzel(pcm, 48_000, f);
        assert!(
            spectrum(&heard_a[tail.clone()], 440.0)
                > 10.0 * spectrum(&heard_a[tail.clone()], 880.0)
        );
        assert!(
            spectrum(&heard_a[tail.clone()], 660.0)
                > 10.0 * spectrum(&heard_a[tail.clone()], 880.0)
        );
        assert!(
            spectrum(&heard_b[tail.clone()], 880.0)
                > 10.0 * spectrum(&heard_b[tail.clone()], 660.0)
        );
    }

    #[test]
    fn at_the_callers_rate_everyone_still_hears_everyone_but_themselves() {
        let mut room = RoomAudio::new();
        room.add_local("phone-a");
        room.add_local("phone-b");
        room.set_bus(Some(PhoneRate::Hz8000));
        assert_eq!(room.frame_len(), 160);
        let web = tone_packets(440.0, 50);
        let a_voice = sine(8_000, 880.0, 8000.0, 50 * 160);
        let b_voice = sine(8_000, 660.0, 8000.0, 50 * 160);
        let t0 = Instant::now();
        let (mut heard_a, mut heard_b) = (Vec::new(), Vec::new());
        for (i, packet) in web.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * i as u64);
            room.push(1, "web", (i * FRAME_48K) as u64, packet, now);
            room.tick(now);
            let f = i * 160..(i + 1) * 160;
            room.put_local("phone-a", &a_voice[f.clone()]);
            room.put_local("phone-b", &b_voice[f]);
            let mut out = vec![0i16; 160];
            room.mix_for(Some("phone-a"), &mut out);
            heard_a.extend_from_slice(&out);
            room.mix_for(Some("phone-b"), &mut out);
            heard_b.extend_from_slice(&out);
        }
        let tail = 20 * 160..;
        let level = |pcm: &[i16], f: f64| goertzel(&pcm[tail.clone()], 8_000, f);
        // Each hears the web participant (downsampled once) and the other
        // caller, at similar strength, and not itself.
        for (heard, other, own) in [(&heard_a, 660.0, 880.0), (&heard_b, 880.0, 660.0)] {
            let (web, other, own) = (level(heard, 440.0), level(heard, other), level(heard, own));
            assert!(web > 0.2 * other && other > 0.2 * web, "{web} {other}");
            assert!(own * 1000.0 < other, "{own} {other}");
        }
        // Back to 48 kHz (a caller of another rate joined): 960 samples.
        room.set_bus(None);
        assert_eq!(room.frame_len(), FRAME_48K);
        room.tick(t0 + Duration::from_secs(1));
        room.put_local("phone-a", &sine(48_000, 880.0, 8000.0, FRAME_48K));
        let mut out = vec![0i16; FRAME_48K];
        room.mix_for(Some("phone-b"), &mut out);
        assert!(goertzel(&out, 48_000, 880.0) > 0.0);
    }

    #[test]
    fn a_quiet_feeder_is_replaced_and_idle_sources_are_forgotten() {
        let mut room = RoomAudio::new();
        let web = tone_packets(440.0, 40);
        let t0 = Instant::now();
        for (i, packet) in web.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * i as u64);
            // Leg 1 feeds for 10 frames, then only leg 2 carries the source.
            if i < 10 {
                room.push(1, "web", (i * FRAME_48K) as u64, packet, now);
            }
            room.push(2, "web", (i * FRAME_48K) as u64, packet, now);
            room.tick(now);
        }
        let s = room.stats();
        assert!(s.decoded >= 25, "leg 2 took over: {s:?}");
        room.tick(t0 + Duration::from_secs(10));
        assert_eq!(room.remote_sources(), 0);
        // Garbage frames are concealed, never a panic.
        room.push(3, "junk", 0, &[0xff; 7], t0 + Duration::from_secs(11));
        for k in 0..10 {
            room.tick(t0 + Duration::from_secs(11) + Duration::from_millis(20 * k));
        }
    }
}
