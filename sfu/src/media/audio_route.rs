//! Whose audio goes into a receiver's audio slots when the conference has
//! more publishers than the receiver has slots: the loudest of those it
//! subscribes to.
//!
//! Contract:
//! - [`Loudness`] keeps, per publisher, a score in dB above digital silence
//!   (0 to 127) from the RFC 6464 level of each of its packets: it rises
//!   half-way to a louder packet's level at once (a talker is loud after one
//!   or two packets) and falls by [`DECAY_DB_PER_SEC`] while the publisher is
//!   quieter or sends nothing (Opus DTX sends almost nothing in silence).
//! - [`take_slot`] answers, for a publisher without a slot at a receiver,
//!   which slot it gets: a free one, else the one whose holder is quietest,
//!   when the publisher is louder than that holder by [`HYSTERESIS_DB`]
//!   (so two similar talkers do not swap slots on every packet).
//! - [`AudioSubscription`] is what a receiver asked for with
//!   `ReceiverAudioSubscription` (default: everyone). Its entries name a
//!   publisher by source name (`<nick>-a0`), nick or endpoint key; an
//!   excluded publisher is never received, whatever else the lists say.
//! - Per packet: [`Loudness::on_level`], [`Loudness::score`],
//!   [`AudioSubscription::wants`] and [`take_slot`] do not allocate (the
//!   first packet of a publisher adds its entry).

use std::collections::HashMap;
use std::time::Instant;

use super::EndpointId;

/// How much louder than a slot's holder a publisher must be to take it.
pub const HYSTERESIS_DB: f32 = 6.0;
/// How fast a score falls while its publisher is quieter or silent.
pub const DECAY_DB_PER_SEC: f32 = 40.0;

#[derive(Debug, Clone, Copy)]
struct Score {
    db: f32,
    at: Instant,
}

impl Score {
    fn at(&self, now: Instant) -> f32 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f32();
        (self.db - elapsed * DECAY_DB_PER_SEC).max(0.0)
    }
}

/// The recent loudness of each publisher of one conference.
#[derive(Debug, Default)]
pub struct Loudness {
    scores: HashMap<EndpointId, Score>,
}

impl Loudness {
    /// One packet's RFC 6464 level (0 = loudest, 127 = silence, in -dBov);
    /// returns the publisher's new score.
    pub fn on_level(&mut self, publisher: &str, level: u8, now: Instant) -> f32 {
        let heard = f32::from(127 - level.min(127));
        let score = match self.scores.get_mut(publisher) {
            Some(s) => s,
            None => self
                .scores
                .entry(EndpointId::from(publisher))
                .or_insert(Score { db: 0.0, at: now }),
        };
        let before = score.at(now);
        let db = if heard > before {
            before + (heard - before) / 2.0
        } else {
            before
        };
        *score = Score { db, at: now };
        db
    }

    /// `publisher`'s score now (0 when never heard).
    pub fn score(&self, publisher: &str, now: Instant) -> f32 {
        self.scores.get(publisher).map_or(0.0, |s| s.at(now))
    }

    /// Forgets a publisher that left.
    pub fn remove(&mut self, publisher: &str) {
        self.scores.remove(publisher);
    }
}

/// The slot a publisher with `score` and no slot takes, given each slot's
/// holder score (`None`: free): the first free slot, else the quietest
/// holder's if the publisher beats it by [`HYSTERESIS_DB`].
pub fn take_slot(holders: impl IntoIterator<Item = Option<f32>>, score: f32) -> Option<usize> {
    let mut quietest: Option<(usize, f32)> = None;
    for (i, holder) in holders.into_iter().enumerate() {
        let Some(h) = holder else {
            return Some(i);
        };
        if quietest.is_none_or(|(_, q)| h < q) {
            quietest = Some((i, h));
        }
    }
    quietest
        .filter(|(_, q)| score > q + HYSTERESIS_DB)
        .map(|(i, _)| i)
}

/// The audio a receiver subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSubscription {
    all: bool,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Default for AudioSubscription {
    /// Everyone's audio (what a receiver gets until it asks otherwise).
    fn default() -> Self {
        AudioSubscription::new(true, Vec::new(), Vec::new())
    }
}

impl AudioSubscription {
    /// Everyone not in `exclude` when `all`, else only `include` minus
    /// `exclude`.
    pub fn new(all: bool, include: Vec<String>, exclude: Vec<String>) -> Self {
        AudioSubscription {
            all,
            include,
            exclude,
        }
    }

    /// Whether the receiver wants the audio of the publisher whose endpoint
    /// key is `key` (`room@conference.domain/nick`, or a bare id).
    pub fn wants(&self, key: &str) -> bool {
        let nick = key.rsplit_once('/').map_or(key, |(_, n)| n);
        let names =
            |e: &String| e == key || e == nick || e.strip_suffix("-a0").is_some_and(|n| n == nick);
        if self.exclude.iter().any(names) {
            return false;
        }
        self.all || self.include.iter().any(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const KEY: &str = "room@conference.example/alice";

    #[test]
    fn a_talker_is_loud_after_two_packets_and_fades_in_silence() {
        let t0 = Instant::now();
        let mut l = Loudness::default();
        assert_eq!(l.score(KEY, t0), 0.0, "never heard");
        // -27 dBov speech: 100 dB above silence.
        let first = l.on_level(KEY, 27, t0);
        let second = l.on_level(KEY, 27, t0 + Duration::from_millis(20));
        assert!((49.0..=51.0).contains(&first), "{first}");
        assert!(second > 70.0, "{second}");
        // A second of silence (no packets): 40 dB lower.
        let later = l.score(KEY, t0 + Duration::from_millis(1020));
        assert!((second - later - 40.0).abs() < 0.5, "{second} -> {later}");
        // Quieter packets do not pull it down faster than the decay.
        let quiet = l.on_level(KEY, 127, t0 + Duration::from_millis(1040));
        assert!((later - quiet - 0.8).abs() < 0.1, "{later} -> {quiet}");
        assert_eq!(l.score(KEY, t0 + Duration::from_secs(10)), 0.0);
        l.remove(KEY);
        assert_eq!(l.score(KEY, t0 + Duration::from_millis(1040)), 0.0);
    }

    #[test]
    fn a_free_slot_is_taken_first() {
        assert_eq!(take_slot([Some(90.0), None, None], 0.0), Some(1));
    }

    #[test]
    fn the_quietest_holder_yields_only_to_a_clearly_louder_publisher() {
        let holders = [Some(80.0), Some(30.0), Some(60.0)];
        assert_eq!(take_slot(holders, 50.0), Some(1));
        assert_eq!(take_slot(holders, 36.0), None, "within the hysteresis");
        assert_eq!(take_slot(holders, 36.5), Some(1));
        assert_eq!(take_slot([], 120.0), None, "no slots at all");
    }

    #[test]
    fn everyone_is_wanted_by_default() {
        assert!(AudioSubscription::default().wants(KEY));
        assert!(AudioSubscription::default().wants("bare"));
    }

    #[test]
    fn exclude_names_a_publisher_by_source_nick_or_key_and_wins() {
        for name in ["alice-a0", "alice", KEY] {
            let s = AudioSubscription::new(true, vec![name.into()], vec![name.into()]);
            assert!(!s.wants(KEY), "{name}");
            assert!(s.wants("room@conference.example/bob"), "{name}");
        }
        // A video source name or another nick's prefix is not alice's audio.
        let s = AudioSubscription::new(true, vec![], vec!["alice-v0".into(), "ali".into()]);
        assert!(s.wants(KEY));
    }

    #[test]
    fn without_all_only_the_included_are_wanted() {
        let none = AudioSubscription::new(false, vec![], vec![]);
        assert!(!none.wants(KEY));
        let some = AudioSubscription::new(false, vec!["alice-a0".into()], vec![]);
        assert!(some.wants(KEY));
        assert!(!some.wants("room@conference.example/bob"));
    }
}
