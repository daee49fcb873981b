//! The PIN dialogue stepped frame by frame on a simulated clock.

use std::time::{Duration, Instant};

use super::*;
use crate::media::FRAME_48K;

const FRAME: Duration = Duration::from_millis(20);
const ROOM: &str = "standup@conference.meet.test";

/// A caller on the line: the IVR, the clock, and everything heard.
struct Call {
    ivr: PinIvr,
    prompts: Prompts,
    now: Instant,
    heard: Vec<i16>,
    actions: Vec<IvrAction>,
}

impl Call {
    fn new() -> Call {
        Call::with(IvrConfig::default())
    }

    fn with(config: IvrConfig) -> Call {
        let now = Instant::now();
        let prompts = Prompts::synthetic();
        Call {
            ivr: PinIvr::new(config, prompts.clone(), now),
            prompts,
            now,
            heard: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// One 20 ms tick: a frame out, the clock on, the IVR polled.
    fn tick(&mut self) {
        let frame = self.ivr.next_frame(self.now);
        assert_eq!(frame.len(), FRAME_48K);
        self.heard.extend_from_slice(frame);
        self.now += FRAME;
        while let Some(action) = self.ivr.poll(self.now) {
            self.actions.push(action);
        }
    }

    /// Ticks for `d`; the actions that came.
    fn run(&mut self, d: Duration) -> Vec<IvrAction> {
        let end = self.now + d;
        while self.now < end {
            self.tick();
        }
        std::mem::take(&mut self.actions)
    }

    /// Ticks until an action comes (at most a minute).
    fn until_action(&mut self) -> IvrAction {
        for _ in 0..3000 {
            self.tick();
            if !self.actions.is_empty() {
                return self.actions.remove(0);
            }
        }
        panic!("no action within a minute: {:?}", self.ivr);
    }

    /// Ticks until the prompt playing has been heard in full.
    fn hear_prompt(&mut self) {
        while self.ivr.playing().is_some() {
            self.tick();
        }
    }

    fn keys(&mut self, keys: &str) {
        for key in keys.chars() {
            self.ivr.on_digit(key, self.now);
            while let Some(action) = self.ivr.poll(self.now) {
                self.actions.push(action);
            }
            self.tick();
        }
    }

    fn samples(&self, p: Prompt) -> Vec<i16> {
        self.prompts.samples(p).to_vec()
    }
}

fn lookup(pin: &str) -> IvrAction {
    IvrAction::Lookup(Pin::new(pin).unwrap())
}

fn room() -> RoomAddress {
    RoomAddress::parse(ROOM).unwrap()
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[i16], needle: &[i16]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn frames(n: usize) -> usize {
    n.div_ceil(FRAME_48K)
}

#[test]
fn a_correct_pin_joins_after_the_joining_prompt() {
    let mut call = Call::new();
    call.hear_prompt();
    call.keys("123456#");
    assert_eq!(std::mem::take(&mut call.actions), vec![lookup("123456")]);
    assert_eq!(call.run(Duration::from_secs(1)), vec![], "one lookup only");

    call.ivr.lookup_result(Ok(room()), call.now);
    assert_eq!(call.ivr.playing(), Some(Prompt::Joining));
    let joining = call.samples(Prompt::Joining);
    call.heard.clear();
    let action = call.until_action();
    assert_eq!(action, IvrAction::Join(room()));
    // Join came the tick after the prompt's last frame went out.
    assert_eq!(call.heard.len(), frames(joining.len()) * FRAME_48K);
    assert_eq!(&call.heard[..joining.len()], joining.as_slice());
    assert!(call.ivr.is_done());

    // Done: keys, results and time change nothing.
    call.keys("1#*");
    call.ivr.lookup_result(Err(MapperError::NotFound), call.now);
    assert_eq!(call.run(Duration::from_secs(30)), vec![]);
    assert_eq!(call.ivr.failures(), 0);
}

#[test]
fn a_wrong_pin_thrice_says_goodbye_then_hangs_up() {
    let mut call = Call::new();
    for attempt in 1..=3 {
        call.keys("4321#");
        assert_eq!(call.until_action(), lookup("4321"), "attempt {attempt}");
        call.ivr.lookup_result(Err(MapperError::NotFound), call.now);
        assert_eq!(call.ivr.failures(), attempt);
        let next = if attempt < 3 {
            Prompt::WrongPin
        } else {
            Prompt::Goodbye
        };
        assert_eq!(call.ivr.playing(), Some(next), "attempt {attempt}");
        if attempt < 3 {
            call.hear_prompt();
        }
    }
    call.heard.clear();
    assert_eq!(call.until_action(), IvrAction::Hangup);
    let goodbye = call.samples(Prompt::Goodbye);
    assert_eq!(&call.heard[..goodbye.len()], goodbye.as_slice());
    assert_eq!(call.heard.len(), frames(goodbye.len()) * FRAME_48K);
    assert_eq!(call.run(Duration::from_secs(30)), vec![]);
}

#[test]
fn the_wrong_pin_prompt_is_heard_between_attempts() {
    let mut call = Call::new();
    call.keys("1111#");
    call.until_action();
    call.heard.clear();
    call.ivr.lookup_result(Err(MapperError::NotFound), call.now);
    call.hear_prompt();
    assert!(contains(&call.heard, &call.samples(Prompt::WrongPin)));
    // Then a right PIN still gets in.
    call.keys("2222#");
    assert_eq!(call.until_action(), lookup("2222"));
    call.ivr.lookup_result(Ok(room()), call.now);
    assert_eq!(call.until_action(), IvrAction::Join(room()));
}

#[test]
fn star_clears_the_digits_and_replays_the_prompt() {
    let mut call = Call::new();
    call.hear_prompt();
    call.keys("999");
    call.heard.clear();
    call.keys("*");
    assert_eq!(call.ivr.playing(), Some(Prompt::EnterPin));
    let enter = call.samples(Prompt::EnterPin);
    assert_eq!(&call.heard[..], &enter[..FRAME_48K], "from its start");
    // The digit timeout of the cleared digits does not fire.
    assert_eq!(call.run(Duration::from_secs(6)), vec![]);
    call.keys("1234#");
    assert_eq!(std::mem::take(&mut call.actions), vec![lookup("1234")]);
    assert_eq!(call.ivr.failures(), 0, "clearing is not a failed attempt");
}

#[test]
fn digits_typed_during_a_prompt_cut_it_short() {
    let mut call = Call::new();
    call.run(FRAME * 3);
    assert_eq!(call.ivr.playing(), Some(Prompt::EnterPin));
    call.heard.clear();
    call.keys("5");
    assert_eq!(call.ivr.playing(), None);
    assert!(call.heard.iter().all(|s| *s == 0), "silence at once");
}

#[test]
fn the_pin_is_submitted_by_timeout_after_the_last_digit() {
    let mut call = Call::new();
    call.hear_prompt();
    call.keys("8765");
    let typed = call.now - FRAME;
    let actions = call.run(Duration::from_millis(4900));
    assert_eq!(actions, vec![], "not before the digit timeout");
    assert_eq!(call.until_action(), lookup("8765"));
    assert!(call.now - typed >= Duration::from_secs(5));
    assert!(call.now - typed <= Duration::from_secs(5) + FRAME);
}

#[test]
fn too_few_digits_by_timeout_or_pound_are_a_failed_attempt() {
    let mut call = Call::new();
    call.hear_prompt();
    call.keys("12");
    call.run(Duration::from_secs(5) + FRAME);
    assert_eq!(call.ivr.failures(), 1);
    assert_eq!(call.ivr.playing(), Some(Prompt::WrongPin));
    call.keys("123#");
    assert_eq!(call.ivr.failures(), 2);
    assert_eq!(call.ivr.playing(), Some(Prompt::WrongPin));
    assert_eq!(call.actions, vec![], "no lookup for a short PIN");
}

#[test]
fn pound_alone_replays_the_prompt() {
    let mut call = Call::new();
    call.hear_prompt();
    call.keys("#");
    assert_eq!(call.ivr.playing(), Some(Prompt::EnterPin));
    assert_eq!(call.ivr.failures(), 0);
}

#[test]
fn the_longest_pin_is_submitted_without_pound() {
    let mut call = Call::with(IvrConfig {
        pin_digits: PinDigits { min: 4, max: 6 },
        ..IvrConfig::default()
    });
    call.keys("123456");
    assert_eq!(std::mem::take(&mut call.actions), vec![lookup("123456")]);
    // Keys during the lookup are ignored.
    call.keys("78#");
    assert_eq!(call.run(Duration::from_secs(20)), vec![]);
    call.ivr.lookup_result(Ok(room()), call.now);
    assert_eq!(call.until_action(), IvrAction::Join(room()));
}

#[test]
fn silence_asks_again_then_says_goodbye() {
    let mut call = Call::new();
    call.hear_prompt();
    let ended = call.now;
    assert_eq!(call.run(Duration::from_millis(14_980)), vec![]);
    assert_eq!(call.ivr.failures(), 0);
    call.tick();
    assert_eq!(call.ivr.failures(), 1);
    assert_eq!(call.ivr.playing(), Some(Prompt::EnterPin));
    assert!(call.now - ended >= Duration::from_secs(15));
    call.hear_prompt();
    call.run(Duration::from_secs(15));
    assert_eq!(call.ivr.failures(), 2);
    call.hear_prompt();
    call.run(Duration::from_secs(15));
    assert_eq!(call.ivr.failures(), 3);
    assert_eq!(call.ivr.playing(), Some(Prompt::Goodbye));
    assert_eq!(call.until_action(), IvrAction::Hangup);
}

#[test]
fn the_first_digit_timeout_waits_for_the_prompt_to_end() {
    let config = IvrConfig {
        first_digit_timeout: Duration::from_millis(100),
        ..IvrConfig::default()
    };
    let mut call = Call::with(config);
    let prompt = call.prompts.duration(Prompt::EnterPin);
    call.run(prompt - FRAME);
    assert_eq!(call.ivr.failures(), 0, "the prompt still plays");
    call.run(FRAME * 8);
    assert_eq!(call.ivr.failures(), 1);
}

#[test]
fn an_unavailable_mapper_apologises_then_hangs_up() {
    let mut call = Call::new();
    call.keys("123456#");
    assert_eq!(call.until_action(), lookup("123456"));
    call.ivr.lookup_result(
        Err(MapperError::Unavailable("connection refused".into())),
        call.now,
    );
    assert_eq!(call.ivr.playing(), Some(Prompt::Unavailable));
    call.keys("1#");
    call.heard.clear();
    assert_eq!(call.until_action(), IvrAction::Hangup);
    assert_eq!(call.ivr.failures(), 0, "not the caller's fault");
    let unavailable = call.samples(Prompt::Unavailable);
    assert!(contains(
        &call.heard,
        &unavailable[unavailable.len() - 500..]
    ));
}

#[test]
fn frames_are_the_prompt_s_samples_then_silence() {
    let mut call = Call::new();
    let enter = call.samples(Prompt::EnterPin);
    let n = frames(enter.len());
    call.run(FRAME * (n as u32 + 5));
    assert_eq!(&call.heard[..enter.len()], enter.as_slice());
    assert!(call.heard[enter.len()..].iter().all(|s| *s == 0));
    assert_eq!(call.heard.len(), (n + 5) * FRAME_48K);
}

#[test]
fn a_new_prompt_interrupts_the_one_playing() {
    let mut call = Call::new();
    call.run(FRAME * 2);
    call.heard.clear();
    call.keys("*");
    call.hear_prompt();
    let enter = call.samples(Prompt::EnterPin);
    assert_eq!(
        &call.heard[..enter.len()],
        enter.as_slice(),
        "whole, from the start"
    );
}

#[test]
fn a_stale_lookup_result_is_ignored() {
    let mut call = Call::new();
    call.ivr.lookup_result(Ok(room()), call.now);
    assert_eq!(call.ivr.playing(), Some(Prompt::EnterPin));
    assert_eq!(call.run(Duration::from_secs(1)), vec![]);
}

#[test]
fn other_keys_are_ignored() {
    let mut call = Call::new();
    call.hear_prompt();
    call.keys("1A2bD3!4#");
    assert_eq!(std::mem::take(&mut call.actions), vec![lookup("1234")]);
}

#[test]
fn the_config_defaults_validate_and_parse() {
    let d = IvrConfig::default();
    assert_eq!(d.pin_digits, PinDigits { min: 4, max: 10 });
    assert_eq!(d.max_attempts, 3);
    assert_eq!(d.digit_timeout, Duration::from_secs(5));
    assert_eq!(d.first_digit_timeout, Duration::from_secs(15));
    assert!(d.validate().is_ok());

    let parsed: IvrConfig = serde_json::from_str(
        r#"{"pin_digits":{"min":6,"max":6},"digit_timeout":2.5,"max_attempts":5}"#,
    )
    .unwrap();
    assert_eq!(parsed.pin_digits, PinDigits { min: 6, max: 6 });
    assert_eq!(parsed.digit_timeout, Duration::from_millis(2500));
    assert_eq!(parsed.first_digit_timeout, Duration::from_secs(15));
    assert_eq!(parsed.max_attempts, 5);
    let back: IvrConfig = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
    assert_eq!(back, parsed);
    assert!(serde_json::from_str::<IvrConfig>(r#"{"pin_length":6}"#).is_err());
    assert!(serde_json::from_str::<IvrConfig>(r#"{"digit_timeout":-1}"#).is_err());
}

#[test]
fn a_bad_config_names_its_key() {
    let with = |f: fn(&mut IvrConfig)| {
        let mut c = IvrConfig::default();
        f(&mut c);
        c
    };
    let cases: [(IvrConfig, &str); 6] = [
        (with(|c| c.pin_digits.min = 0), "pin_digits.min"),
        (with(|c| c.pin_digits.max = 3), "pin_digits.max"),
        (with(|c| c.pin_digits.max = 21), "pin_digits.max"),
        (with(|c| c.max_attempts = 0), "max_attempts"),
        (with(|c| c.digit_timeout = Duration::ZERO), "digit_timeout"),
        (
            with(|c| c.first_digit_timeout = Duration::from_secs(3600)),
            "first_digit_timeout",
        ),
    ];
    for (config, key) in cases {
        let e = config.validate().unwrap_err();
        assert_eq!(e.key, key);
        assert!(
            e.to_string().starts_with(&format!("{key}: expected")),
            "{e}"
        );
        // Unvalidated, it still runs without panicking.
        let mut call = Call::with(config);
        call.keys("1234567890123456789012345#");
        call.run(Duration::from_secs(20));
    }
}
