//! The PIN prompt for callers without a room header: an IVR that asks for
//! the meeting PIN on the keypad (DTMF, RFC 4733 or SIP INFO, decoded
//! elsewhere) and resolves it through a conference mapper.
//!
//! Contract: [`PinIvr`] is sans-IO. The call's driver, every 20 ms, sends
//! the caller [`PinIvr::next_frame`] (48 kHz mono, `media::FRAME_48K`
//! samples) and then drains [`PinIvr::poll`]; it hands every key pressed to
//! [`PinIvr::on_digit`]. On [`IvrAction::Lookup`] it asks the mapper
//! ([`crate::mapper::Mapper::resolve`]) and gives the outcome to
//! [`PinIvr::lookup_result`]; on [`IvrAction::Join`] it joins the room, on
//! [`IvrAction::Hangup`] it ends the call. Time is always an argument.
//!
//! The dialogue:
//! - The "enter PIN" prompt plays. Digits are collected; a digit cuts the
//!   prompt playing short. `#` submits, `*` clears and replays the prompt,
//!   other keys are ignored. Reaching `pin_digits.max` submits at once.
//! - `digit_timeout` after the last digit the PIN is submitted as if `#`
//!   was pressed. `first_digit_timeout` after a prompt ended with nothing
//!   typed, the prompt is asked again and it counts as a failed attempt.
//! - A submitted PIN shorter than `pin_digits.min`, or one the mapper does
//!   not know, is a failed attempt: "wrong PIN" plays and the caller types
//!   again. After `max_attempts` failed attempts "goodbye" plays, then
//!   `Hangup`.
//! - A PIN found: "joining" plays, then `Join(room)`. A mapper that is not
//!   available: "unavailable" plays, then `Hangup` (no retry: the caller
//!   can call again).
//! - `Join` and `Hangup` come once the caller has heard the whole prompt
//!   (the frame carrying its last samples sent, and their duration
//!   passed); after them the IVR is done and ignores everything.
//! - While the mapper looks the PIN up the caller hears silence.
//!
//! The PIN is never logged, only its length.

mod player;
pub mod prompts;
pub mod wav;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::mapper::{MapperError, Pin, RoomAddress, MAX_PIN_DIGITS};
use player::Player;
pub use prompts::{Prompt, PromptError, Prompts};

/// How many digits a PIN may have, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinDigits {
    pub min: usize,
    pub max: usize,
}

/// The IVR's settings (the `[ivr]` table of a config file; durations in
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrConfig {
    pub pin_digits: PinDigits,
    /// Failed attempts before "goodbye".
    pub max_attempts: u32,
    /// Silence after the last digit that submits the PIN.
    #[serde(with = "seconds")]
    pub digit_timeout: Duration,
    /// Silence after a prompt, with nothing typed, that asks again.
    #[serde(with = "seconds")]
    pub first_digit_timeout: Duration,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            pin_digits: PinDigits { min: 4, max: 10 },
            max_attempts: 3,
            digit_timeout: Duration::from_secs(5),
            first_digit_timeout: Duration::from_secs(15),
        }
    }
}

/// The longest timeout accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The most attempts accepted.
const MAX_ATTEMPTS: u32 = 10;

/// An IVR setting that fails validation; `key` is relative to the IVR's
/// table (`pin_digits.min`, `max_attempts`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct IvrConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl IvrConfig {
    /// Checks every key; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), IvrConfigError> {
        let err = |key, reason: String| Err(IvrConfigError { key, reason });
        let PinDigits { min, max } = self.pin_digits;
        if !(1..=MAX_PIN_DIGITS).contains(&min) {
            return err(
                "pin_digits.min",
                format!("expected 1 to {MAX_PIN_DIGITS}, got {min}"),
            );
        }
        if !(min..=MAX_PIN_DIGITS).contains(&max) {
            return err(
                "pin_digits.max",
                format!("expected {min} (pin_digits.min) to {MAX_PIN_DIGITS}, got {max}"),
            );
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return err(
                "max_attempts",
                format!("expected 1 to {MAX_ATTEMPTS}, got {}", self.max_attempts),
            );
        }
        for (key, value) in [
            ("digit_timeout", self.digit_timeout),
            ("first_digit_timeout", self.first_digit_timeout),
        ] {
            if value.is_zero() || value > MAX_TIMEOUT {
                return err(
                    key,
                    format!(
                        "expected more than 0 and at most {} seconds, got {}",
                        MAX_TIMEOUT.as_secs(),
                        value.as_secs_f64()
                    ),
                );
            }
        }
        Ok(())
    }

    /// The same with every value brought into its valid range (what
    /// [`PinIvr::new`] runs on, so an unvalidated config cannot make it
    /// misbehave).
    fn clamped(mut self) -> IvrConfig {
        let d = &mut self.pin_digits;
        d.min = d.min.clamp(1, MAX_PIN_DIGITS);
        d.max = d.max.clamp(d.min, MAX_PIN_DIGITS);
        self.max_attempts = self.max_attempts.clamp(1, MAX_ATTEMPTS);
        for t in [&mut self.digit_timeout, &mut self.first_digit_timeout] {
            *t = (*t).clamp(Duration::from_millis(1), MAX_TIMEOUT);
        }
        self
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IvrAction {
    /// Resolve this PIN, then call [`PinIvr::lookup_result`].
    Lookup(Pin),
    /// Join this room: the IVR is done.
    Join(RoomAddress),
    /// End the call: the IVR is done.
    Hangup,
}

enum State {
    /// Taking digits; `last_digit` is when the last one came.
    Collecting {
        digits: String,
        last_digit: Option<Instant>,
    },
    /// A PIN was submitted; `asked` once `poll` handed it out.
    Lookup { pin: Pin, asked: bool },
    /// "joining" plays; then `Join`.
    Joining(RoomAddress),
    /// "goodbye" or "unavailable" plays; then `Hangup`.
    Ending,
    /// `Join` or `Hangup` was handed out.
    Done,
}

/// The PIN dialogue of one call (see the module's contract).
pub struct PinIvr {
    config: IvrConfig,
    prompts: Prompts,
    player: Player,
    state: State,
    failures: u32,
}

impl PinIvr {
    /// Starts the dialogue at `now`: the "enter PIN" prompt plays.
    pub fn new(config: IvrConfig, prompts: Prompts, now: Instant) -> PinIvr {
        let mut ivr = PinIvr {
            config: config.clamped(),
            prompts,
            player: Player::new(now),
            state: State::Done,
            failures: 0,
        };
        ivr.ask(Prompt::EnterPin);
        ivr
    }

    /// The next 20 ms for the caller, starting at `now`: the prompt's
    /// samples, or silence once it ended.
    pub fn next_frame(&mut self, now: Instant) -> &[i16] {
        self.player.next_frame(now)
    }

    /// A key pressed on the phone: `0`–`9`, `#`, `*` (others are ignored,
    /// and so is every key once the PIN was submitted).
    pub fn on_digit(&mut self, key: char, now: Instant) {
        let State::Collecting { digits, last_digit } = &mut self.state else {
            tracing::trace!(%key, "key ignored: no PIN being typed");
            return;
        };
        match key {
            '0'..='9' => {
                self.player.stop(now);
                digits.push(key);
                *last_digit = Some(now);
                if digits.len() >= self.config.pin_digits.max {
                    self.submit(now);
                }
            }
            '#' if digits.is_empty() => self.ask(Prompt::EnterPin),
            '#' => self.submit(now),
            '*' => {
                tracing::debug!("PIN cleared");
                self.ask(Prompt::EnterPin);
            }
            _ => tracing::trace!(%key, "key ignored"),
        }
    }

    /// What the driver does next, if anything; `None` until something
    /// happens (call it after every frame and every key).
    pub fn poll(&mut self, now: Instant) -> Option<IvrAction> {
        self.handle_timeouts(now);
        match &mut self.state {
            State::Lookup { pin, asked } if !*asked => {
                *asked = true;
                Some(IvrAction::Lookup(pin.clone()))
            }
            State::Joining(_) if self.player.done(now) => {
                match std::mem::replace(&mut self.state, State::Done) {
                    State::Joining(room) => Some(IvrAction::Join(room)),
                    _ => None, // matched Joining just above
                }
            }
            State::Ending if self.player.done(now) => {
                self.state = State::Done;
                Some(IvrAction::Hangup)
            }
            _ => None,
        }
    }

    /// The mapper's answer to the last [`IvrAction::Lookup`]. An answer
    /// when no lookup is pending is ignored.
    pub fn lookup_result(&mut self, result: Result<RoomAddress, MapperError>, _now: Instant) {
        if !matches!(self.state, State::Lookup { .. }) {
            tracing::debug!("lookup result ignored: no lookup pending");
            return;
        }
        match result {
            Ok(room) => {
                tracing::info!(%room, "PIN accepted");
                self.play(Prompt::Joining);
                self.state = State::Joining(room);
            }
            Err(MapperError::NotFound) => self.fail(Prompt::WrongPin),
            Err(MapperError::Unavailable(why)) => {
                tracing::warn!(%why, "conference mapper unavailable");
                self.play(Prompt::Unavailable);
                self.state = State::Ending;
            }
        }
    }

    /// The prompt playing now, if any.
    pub fn playing(&self) -> Option<Prompt> {
        self.player.playing()
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether `Join` or `Hangup` was handed out.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn handle_timeouts(&mut self, now: Instant) {
        let State::Collecting { digits, last_digit } = &self.state else {
            return;
        };
        let after =
            |start: Instant, wait: Duration| start.checked_add(wait).is_some_and(|t| now >= t);
        match last_digit {
            Some(at) if after(*at, self.config.digit_timeout) => {
                tracing::debug!(digits = digits.len(), "PIN submitted by timeout");
                self.submit(now);
            }
            None => {
                let waited = self
                    .player
                    .ended_at()
                    .is_some_and(|end| after(end, self.config.first_digit_timeout));
                if waited {
                    tracing::debug!("no digit typed");
                    self.fail(Prompt::EnterPin);
                }
            }
            Some(_) => {}
        }
    }

    /// Takes the digits typed as the PIN.
    fn submit(&mut self, now: Instant) {
        let State::Collecting { digits, .. } = &self.state else {
            return;
        };
        let pin = (digits.len() >= self.config.pin_digits.min)
            .then(|| Pin::new(digits))
            .flatten();
        match pin {
            Some(pin) => {
                tracing::debug!(digits = pin.as_str().len(), "PIN submitted");
                self.player.stop(now);
                self.state = State::Lookup { pin, asked: false };
            }
            None => {
                tracing::debug!(digits = digits.len(), "PIN too short");
                self.fail(Prompt::WrongPin);
            }
        }
    }

    /// One more failed attempt: ask again with `retry`, or say goodbye.
    fn fail(&mut self, retry: Prompt) {
        self.failures += 1;
        tracing::info!(
            attempt = self.failures,
            of = self.config.max_attempts,
            "PIN attempt failed"
        );
        if self.failures >= self.config.max_attempts {
            self.play(Prompt::Goodbye);
            self.state = State::Ending;
        } else {
            self.ask(retry);
        }
    }

    /// Plays `prompt` and collects digits from scratch.
    fn ask(&mut self, prompt: Prompt) {
        self.play(prompt);
        self.state = State::Collecting {
            digits: String::new(),
            last_digit: None,
        };
    }

    fn play(&mut self, prompt: Prompt) {
        self.player.play(prompt, self.prompts.clip(prompt));
    }
}

impl std::fmt::Debug for PinIvr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Collecting { digits, .. } => format!("collecting {} digits", digits.len()),
            State::Lookup { asked, .. } => format!("lookup (asked: {asked})"),
            State::Joining(room) => format!("joining {room}"),
            State::Ending => "ending".into(),
            State::Done => "done".into(),
        };
        f.debug_struct("PinIvr")
            .field("state", &state)
            .field("playing", &self.playing())
            .field("failures", &self.failures)
            .finish()
    }
}

/// Durations as seconds (a number, fractions allowed) in config files.
mod seconds {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| D::Error::custom(format!("expected seconds, at least 0: got {secs}")))
    }
}
