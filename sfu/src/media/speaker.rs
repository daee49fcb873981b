//! Dominant-speaker identification from the audio levels clients send in the
//! RFC 6464 header extension (0 = loudest .. 127 = silence, in -dBov).
//!
//! Contract of [`SpeakerDetector`] (one per conference, sans-IO):
//! - Feed every audio packet's level with [`SpeakerDetector::on_audio_level`]
//!   and call [`SpeakerDetector::handle_timeout`] at
//!   [`SpeakerDetector::poll_timeout`]; both return a [`SpeakerChange`] when the
//!   dominant speaker or the silence flag changed. Time is an argument.
//! - Time is cut into ticks (100 ms). Per participant and tick, the loudest
//!   packet's *activity* is `silence_level - level` (levels at or above
//!   `silence_level` count as nothing), minus the participant's noise floor (the
//!   quietest packet of the last 3 s), so a steady noise does not count once
//!   learnt (one that starts abruptly counts until then). A tick
//!   is *voiced* when that is at least `voiced_min`. Muted participants count as
//!   silent; ticks without packets are silent too.
//! - Scores are the sum over the last 10 ticks (1 s). A challenger replaces the
//!   dominant speaker when, on `sustain_ticks` consecutive ticks, it is the
//!   loudest non-dominant participant, had at least `min_voiced_ticks` voiced
//!   ticks in the window, and its score exceeds the dominant's by
//!   `ratio_percent` plus `margin`. So bursts up to 300 ms never switch,
//!   a clearly louder speaker wins in about a second, equal ones do not flap.
//! - Silence keeps the last speaker. After `silence_after` without a voiced tick
//!   anywhere, one change with `silence: true` is reported; the next voiced tick
//!   of the dominant speaker (or a switch) reports `silence: false`.
//! - Participants are kept in speech order: the dominant first, then former
//!   dominant speakers by recency, then the others in joining order
//!   ([`SpeakerDetector::ranking`], the order the allocation wants).
//!   `previous` is the former dominant speakers, most recent first, at most
//!   `max_previous`.
//! - Per packet: a linear search over the participants (no hashing, no
//!   allocation); per tick: O(participants).

use std::time::{Duration, Instant};

use proto::bridge_channel::DominantSpeakerEndpointChangeEvent;

use super::EndpointId;

/// Ticks in the score window.
const WINDOW: usize = 10;
/// Ticks in the noise-floor window.
const FLOOR_WINDOW: usize = 30;
/// A noise-floor slot without a packet.
const UNKNOWN: u8 = u8::MAX;

/// Tuning of [`SpeakerDetector`] (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerSettings {
    pub tick: Duration,
    /// Levels (-dBov) at or above this are silence.
    pub silence_level: u8,
    /// Activity above the noise floor that makes a tick voiced.
    pub voiced_min: u8,
    /// Voiced ticks (of the 10 in the window) a challenger needs.
    pub min_voiced_ticks: usize,
    /// A challenger's score must exceed the dominant's times this / 100 ...
    pub ratio_percent: u32,
    /// ... plus this (activity units summed over the window).
    pub margin: u32,
    /// Consecutive ticks the challenger must win.
    pub sustain_ticks: u32,
    /// No voiced tick anywhere for this long reports silence.
    pub silence_after: Duration,
    /// Bound on [`SpeakerChange::previous`].
    pub max_previous: usize,
}

impl Default for SpeakerSettings {
    fn default() -> Self {
        SpeakerSettings {
            tick: Duration::from_millis(100),
            silence_level: 70,
            voiced_min: 10,
            min_voiced_ticks: 5,
            ratio_percent: 130,
            margin: 20,
            sustain_ticks: 2,
            silence_after: Duration::from_secs(3),
            max_previous: 10,
        }
    }
}

/// A change of the dominant speaker or of the silence flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpeakerChange {
    pub dominant: EndpointId,
    /// Former dominant speakers, most recent first, bounded.
    pub previous: Vec<EndpointId>,
    /// Nobody has spoken for a while (the dominant speaker is kept).
    pub silence: bool,
}

impl From<SpeakerChange> for DominantSpeakerEndpointChangeEvent {
    fn from(c: SpeakerChange) -> Self {
        DominantSpeakerEndpointChangeEvent {
            dominant_speaker_endpoint: c.dominant.into(),
            previous_speakers: Some(c.previous.into_iter().map(String::from).collect()),
            silence: Some(c.silence),
        }
    }
}

#[derive(Debug, Clone)]
struct Participant {
    id: EndpointId,
    muted: bool,
    /// Has been the dominant speaker.
    spoke: bool,
    /// The tick being filled: loudest and quietest activity, any packet.
    cur_max: u8,
    cur_min: u8,
    cur_any: bool,
    /// Activity above the floor per tick (ring indexed by tick).
    scores: [u8; WINDOW],
    /// Quietest activity per tick (ring), [`UNKNOWN`] without packets.
    mins: [u8; FLOOR_WINDOW],
}

impl Participant {
    fn new(id: EndpointId) -> Self {
        Participant {
            id,
            muted: false,
            spoke: false,
            cur_max: 0,
            cur_min: UNKNOWN,
            cur_any: false,
            scores: [0; WINDOW],
            mins: [UNKNOWN; FLOOR_WINDOW],
        }
    }

    /// Closes tick `t`.
    fn close(&mut self, t: u64) {
        let heard = self.cur_any && !self.muted;
        self.mins[(t % FLOOR_WINDOW as u64) as usize] = if heard { self.cur_min } else { UNKNOWN };
        let floor = self.mins.iter().copied().min().filter(|&m| m != UNKNOWN);
        let score = if heard {
            self.cur_max.saturating_sub(floor.unwrap_or(0))
        } else {
            0
        };
        self.scores[(t % WINDOW as u64) as usize] = score;
        self.cur_max = 0;
        self.cur_min = UNKNOWN;
        self.cur_any = false;
    }

    fn sum(&self) -> u32 {
        self.scores.iter().map(|&s| u32::from(s)).sum()
    }

    fn voiced(&self, min: u8) -> usize {
        self.scores.iter().filter(|&&s| s >= min).count()
    }

    fn voiced_at(&self, t: u64, min: u8) -> bool {
        self.scores[(t % WINDOW as u64) as usize] >= min
    }
}

/// Dominant-speaker identification for one conference.
#[derive(Debug, Clone)]
pub struct SpeakerDetector {
    settings: SpeakerSettings,
    /// In speech order; the dominant speaker (if any) first.
    participants: Vec<Participant>,
    has_dominant: bool,
    silent: bool,
    epoch: Option<Instant>,
    /// The tick being filled.
    tick: u64,
    last_voiced_tick: u64,
    /// Index of the current challenger and how many ticks it has won.
    challenger: Option<(usize, u32)>,
}

impl Default for SpeakerDetector {
    fn default() -> Self {
        Self::new(SpeakerSettings::default())
    }
}

impl SpeakerDetector {
    pub fn new(settings: SpeakerSettings) -> Self {
        SpeakerDetector {
            settings: SpeakerSettings {
                tick: settings.tick.max(Duration::from_millis(1)),
                ..settings
            },
            participants: Vec::new(),
            has_dominant: false,
            silent: false,
            epoch: None,
            tick: 0,
            last_voiced_tick: 0,
            challenger: None,
        }
    }

    /// Adds a participant (last in speech order); no-op if present.
    pub fn add(&mut self, endpoint: EndpointId) {
        if self.position(endpoint.as_str()).is_none() {
            self.participants.push(Participant::new(endpoint));
        }
    }

    /// Removes a participant. If it was the dominant speaker, the most recent
    /// former one (if any) takes over, and that is reported.
    pub fn remove(&mut self, endpoint: &str) -> Option<SpeakerChange> {
        let i = self.position(endpoint)?;
        self.participants.remove(i);
        self.challenger = None;
        if i != 0 || !self.has_dominant {
            return None;
        }
        self.has_dominant = self.participants.first().is_some_and(|p| p.spoke);
        if !self.has_dominant {
            self.silent = false;
        }
        self.has_dominant.then(|| self.change())
    }

    /// Muted participants count as silent until unmuted.
    pub fn set_muted(&mut self, endpoint: &str, muted: bool) {
        if let Some(i) = self.position(endpoint) {
            self.participants[i].muted = muted;
        }
    }

    /// The current dominant speaker.
    pub fn dominant(&self) -> Option<&EndpointId> {
        self.participants
            .first()
            .filter(|_| self.has_dominant)
            .map(|p| &p.id)
    }

    /// Every participant in speech order (dominant, former dominant speakers by
    /// recency, then the rest by joining order).
    pub fn ranking(&self) -> impl Iterator<Item = &EndpointId> {
        self.participants.iter().map(|p| &p.id)
    }

    /// One audio packet's RFC 6464 level (values above 127 are read as 127).
    /// Unknown endpoints are ignored.
    pub fn on_audio_level(
        &mut self,
        endpoint: &str,
        level: u8,
        now: Instant,
    ) -> Option<SpeakerChange> {
        let change = self.advance(now);
        if let Some(i) = self.position(endpoint) {
            let activity = self.settings.silence_level.saturating_sub(level.min(127));
            let p = &mut self.participants[i];
            p.cur_max = p.cur_max.max(activity);
            p.cur_min = p.cur_min.min(activity);
            p.cur_any = true;
        }
        change
    }

    /// When [`SpeakerDetector::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let epoch = self.epoch?;
        Some(epoch + self.settings.tick * u32::try_from(self.tick + 1).ok()?)
    }

    /// Runs the ticks that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<SpeakerChange> {
        self.advance(now)
    }

    fn position(&self, endpoint: &str) -> Option<usize> {
        self.participants
            .iter()
            .position(|p| p.id.as_str() == endpoint)
    }

    /// Closes every tick that ended by `now`; returns the last change.
    fn advance(&mut self, now: Instant) -> Option<SpeakerChange> {
        let epoch = *self.epoch.get_or_insert(now);
        let since = now.saturating_duration_since(epoch).as_nanos();
        let target = u64::try_from(since / self.settings.tick.as_nanos()).unwrap_or(u64::MAX);
        // After this many empty ticks nothing changes any more: skip the rest.
        let settle = (FLOOR_WINDOW + WINDOW) as u64 + self.silence_ticks() + 1;
        let mut change = None;
        let mut run = 0;
        while self.tick < target {
            if run == settle {
                self.tick = target;
                break;
            }
            if let Some(c) = self.evaluate() {
                change = Some(c);
            }
            self.tick += 1;
            run += 1;
        }
        change
    }

    fn silence_ticks(&self) -> u64 {
        let ticks = self.settings.silence_after.as_nanos() / self.settings.tick.as_nanos();
        u64::try_from(ticks).unwrap_or(u64::MAX / 4)
    }

    /// Closes the current tick and decides.
    fn evaluate(&mut self) -> Option<SpeakerChange> {
        let t = self.tick;
        let s = self.settings;
        for p in &mut self.participants {
            p.close(t);
        }
        if self
            .participants
            .iter()
            .any(|p| p.voiced_at(t, s.voiced_min))
        {
            self.last_voiced_tick = t;
        }

        let dominant_sum = if self.has_dominant {
            self.participants[0].sum()
        } else {
            0
        };
        let first = usize::from(self.has_dominant);
        let mut best: Option<(usize, u32)> = None;
        for (i, p) in self.participants.iter().enumerate().skip(first) {
            let sum = p.sum();
            if p.voiced(s.voiced_min) >= s.min_voiced_ticks && best.is_none_or(|(_, b)| sum > b) {
                best = Some((i, sum));
            }
        }
        let threshold =
            u64::from(dominant_sum) * u64::from(s.ratio_percent) + u64::from(s.margin) * 100;
        let winner = best
            .filter(|&(_, sum)| u64::from(sum) * 100 > threshold)
            .map(|(i, _)| i);
        self.challenger = winner.map(|i| match self.challenger {
            Some((c, n)) if c == i => (i, n + 1),
            _ => (i, 1),
        });
        if let Some((i, n)) = self.challenger {
            if n >= s.sustain_ticks {
                return Some(self.switch_to(i));
            }
        }

        if self.has_dominant {
            let quiet_for = t.saturating_sub(self.last_voiced_tick);
            if !self.silent && quiet_for >= self.silence_ticks() {
                self.silent = true;
                return Some(self.change());
            }
            if self.silent && self.participants[0].voiced_at(t, s.voiced_min) {
                self.silent = false;
                return Some(self.change());
            }
        }
        None
    }

    fn switch_to(&mut self, i: usize) -> SpeakerChange {
        self.participants[..=i].rotate_right(1);
        self.participants[0].spoke = true;
        self.has_dominant = true;
        self.silent = false;
        self.challenger = None;
        self.change()
    }

    fn change(&self) -> SpeakerChange {
        SpeakerChange {
            dominant: self.participants[0].id.clone(),
            previous: self.participants[1..]
                .iter()
                .take_while(|p| p.spoke)
                .take(self.settings.max_previous)
                .map(|p| p.id.clone())
                .collect(),
            silence: self.silent,
        }
    }
}

#[cfg(test)]
#[path = "tests/speaker.rs"]
mod tests;
