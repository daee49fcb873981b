//! Registration stepped in time against a scripted registrar: challenge,
//! granted expiry, refresh timing with nonce reuse, backoff, registrar restart,
//! wrong password, 423 and un-registration.

use std::time::{Duration, Instant};

use super::client_tests::{addr, digest_param, drain, expected_response, method, parsed, reply};
use super::inbound::Message;
use super::register::{Input, RegisterOutput};
use super::{Credentials, RegisterConfig, RegisterEvent, Registration, Transmit, Transport};

const REGISTRAR: &str = "203.0.113.10:5060";
const CHALLENGE: &str = "WWW-Authenticate: Digest realm=\"sip.example.com\", \
    nonce=\"n1\", qop=\"auth\", algorithm=MD5";

fn config() -> RegisterConfig {
    RegisterConfig {
        registrar: addr(REGISTRAR),
        transport: Transport::Udp,
        aor: "sip:gw@sip.example.com".into(),
        registrar_uri: "sip:sip.example.com".into(),
        contact: "sip:gw@192.0.2.1:5060".into(),
        credentials: Credentials::new("gw", "s3cret"),
        seed: 11,
        ..RegisterConfig::default()
    }
}

struct Test {
    reg: Registration,
    now: Instant,
    start: Instant,
}

type Step = (Vec<Transmit>, Vec<RegisterEvent>, Option<Instant>);

impl Test {
    fn new(config: RegisterConfig) -> Self {
        let now = Instant::now();
        let reg = Registration::new(config).expect("valid config");
        Self {
            reg,
            now,
            start: now,
        }
    }

    fn drain(&mut self) -> Step {
        let reg = &mut self.reg;
        drain(|| -> RegisterOutput { reg.poll_output() })
    }

    fn feed(&mut self, data: &[u8]) -> Step {
        self.reg.handle_input(Input::Receive {
            now: self.now,
            transport: Transport::Udp,
            source: addr(REGISTRAR),
            data,
        });
        self.drain()
    }

    fn tick(&mut self) -> Step {
        let (_, _, next) = self.drain();
        self.now = next.expect("a timer is armed");
        self.reg.handle_input(Input::Timeout(self.now));
        let step = self.drain();
        // Every timer due now was served: no busy loop.
        assert!(
            step.2.is_none_or(|next| next > self.now),
            "timer left in the past"
        );
        step
    }

    fn secs(&self) -> f64 {
        (self.now - self.start).as_secs_f64()
    }

    /// Starts and expects one REGISTER.
    fn start(&mut self) -> Message {
        self.reg.register(self.now);
        let (sent, events, _) = self.drain();
        assert!(events.is_empty());
        one_register(&sent)
    }

    /// REGISTER → 401 → REGISTER with credentials → 200; returns the last REGISTER.
    fn registered(&mut self, granted: &str) -> Message {
        let first = self.start();
        let (sent, _, _) = self.feed(&reply(&first, 401, "r", &[CHALLENGE], ""));
        let second = one_register(&sent);
        let contact = format!("Contact: <sip:gw@192.0.2.1:5060>;expires={granted}");
        let (_, events, _) = self.feed(&reply(&second, 200, "r", &[&contact], ""));
        let expires = granted.parse().expect("number");
        assert_eq!(events, [RegisterEvent::Registered { expires }]);
        second
    }
}

fn one_register(sent: &[Transmit]) -> Message {
    assert_eq!(sent.len(), 1, "one REGISTER");
    assert_eq!(sent[0].destination, addr(REGISTRAR));
    let msg = parsed(&sent[0]);
    assert_eq!(method(&msg), "REGISTER");
    msg
}

fn check_digest(register: &Message, nonce: &str, nc: &str) {
    let auth = register.one("authorization").expect("Authorization");
    assert_eq!(digest_param(auth, "nonce"), nonce);
    assert_eq!(digest_param(auth, "nc"), nc);
    assert_eq!(digest_param(auth, "uri"), "sip:sip.example.com");
    assert_eq!(digest_param(auth, "username"), "gw");
    let cnonce = digest_param(auth, "cnonce");
    let want = expected_response(
        ("gw", "s3cret", "sip.example.com"),
        (nonce, nc, &cnonce),
        ("REGISTER", "sip:sip.example.com"),
    );
    assert_eq!(digest_param(auth, "response"), want);
}

#[test]
fn register_answers_the_challenge_and_uses_the_granted_expiry() {
    let mut test = Test::new(config());
    let first = test.start();
    assert_eq!(first.one("to"), Some("<sip:gw@sip.example.com>"));
    assert!(first
        .one("from")
        .is_some_and(|f| f.starts_with("<sip:gw@sip.example.com>;tag=")));
    assert_eq!(first.one("contact"), Some("<sip:gw@192.0.2.1:5060>"));
    assert_eq!(first.one("expires"), Some("300"));
    assert_eq!(first.cseq(), (1, "REGISTER"));
    assert!(first.one("authorization").is_none());
    assert!(test.reg.owns(first.call_id()));
    let (sent, events, _) = test.feed(&reply(&first, 401, "r", &[CHALLENGE], ""));
    assert!(events.is_empty());
    let second = one_register(&sent);
    assert_eq!(second.cseq(), (2, "REGISTER"));
    assert_eq!(second.call_id(), first.call_id());
    assert_eq!(second.one("from"), first.one("from"));
    assert_ne!(second.branch(), first.branch());
    check_digest(&second, "n1", "00000001");
    assert!(!test.reg.is_registered());
    let contact =
        "Contact: <sip:other@198.51.100.1>;expires=3600, <sip:gw@192.0.2.1:5060>;expires=120";
    let (_, events, next) = test.feed(&reply(&second, 200, "r", &[contact, "Expires: 999"], ""));
    assert_eq!(events, [RegisterEvent::Registered { expires: 120 }]);
    assert!(test.reg.is_registered());
    // Refresh at 120 − min(60, 60) = 60 s.
    assert_eq!(next, Some(test.now + Duration::from_secs(60)));
}

#[test]
fn expires_header_is_used_without_a_contact_parameter() {
    let mut test = Test::new(config());
    let first = test.start();
    let (_, events, next) = test.feed(&reply(&first, 200, "r", &["Expires: 3600"], ""));
    assert_eq!(events, [RegisterEvent::Registered { expires: 3600 }]);
    assert_eq!(next, Some(test.now + Duration::from_secs(3540)));
}

#[test]
fn refresh_timing_and_nonce_reuse() {
    for (granted, refresh_after) in [(300, 240), (60, 30), (90, 45), (3600, 3540)] {
        let mut test = Test::new(config());
        test.registered(&granted.to_string());
        let t0 = test.secs();
        let (sent, _, _) = test.tick();
        assert_eq!(
            test.secs() - t0,
            f64::from(refresh_after),
            "granted {granted}"
        );
        let refresh = one_register(&sent);
        assert_eq!(refresh.cseq(), (3, "REGISTER"));
        // The nonce is reused with the next nonce count: no new challenge needed.
        check_digest(&refresh, "n1", "00000002");
        let contact = format!("Contact: <sip:gw@192.0.2.1:5060>;expires={granted}");
        let (_, events, _) = test.feed(&reply(&refresh, 200, "r", &[&contact], ""));
        assert_eq!(events, [RegisterEvent::Registered { expires: granted }]);
    }
}

#[test]
fn failures_back_off_exponentially_up_to_a_minute() {
    let mut test = Test::new(config());
    let mut register = test.start();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let t0 = test.secs();
        let (_, events, _) = test.feed(&reply(&register, 503, "r", &[], ""));
        let [RegisterEvent::RegistrationFailed { status, retry_in }] = events[..] else {
            panic!("expected one failure, got {events:?}");
        };
        assert_eq!(status, 503);
        seen.push(retry_in.as_secs());
        let (sent, _, _) = test.tick();
        assert_eq!(test.secs() - t0, retry_in.as_secs_f64());
        register = one_register(&sent);
    }
    assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60]);
    // A success resets the backoff.
    test.feed(&reply(&register, 200, "r", &[], ""));
    assert!(test.reg.is_registered());
}

#[test]
fn no_response_is_a_408_after_timer_f() {
    let mut test = Test::new(config());
    let first = test.start();
    let mut resends = 0;
    let events = loop {
        let (sent, events, _) = test.tick();
        if !events.is_empty() {
            break events;
        }
        assert_eq!(one_register(&sent).branch(), first.branch());
        resends += 1;
    };
    assert_eq!(resends, 10, "Timer E: 0.5, 1.5, 3.5, 7.5, then every 4 s");
    assert_eq!(test.secs(), 32.0);
    assert_eq!(
        events,
        [RegisterEvent::RegistrationFailed {
            status: 408,
            retry_in: Duration::from_secs(1)
        }]
    );
    let (sent, _, _) = test.tick();
    assert_eq!(one_register(&sent).cseq(), (2, "REGISTER"));
}

#[test]
fn registrar_restart_is_reauthenticated() {
    let mut test = Test::new(config());
    test.registered("300");
    let (sent, _, _) = test.tick();
    let refresh = one_register(&sent);
    check_digest(&refresh, "n1", "00000002");
    // The restarted registrar no longer knows nonce n1.
    let fresh = "WWW-Authenticate: Digest realm=\"sip.example.com\", nonce=\"n2\", qop=\"auth\"";
    let (sent, events, _) = test.feed(&reply(&refresh, 401, "r", &[fresh], ""));
    assert!(events.is_empty());
    let reauth = one_register(&sent);
    check_digest(&reauth, "n2", "00000001");
    let contact = "Contact: <sip:gw@192.0.2.1:5060>;expires=300";
    let (_, events, _) = test.feed(&reply(&reauth, 200, "r", &[contact], ""));
    assert_eq!(events, [RegisterEvent::Registered { expires: 300 }]);
    assert!(test.reg.is_registered());
}

#[test]
fn wrong_password_and_forbidden_back_off() {
    let mut test = Test::new(config());
    let first = test.start();
    let (sent, _, _) = test.feed(&reply(&first, 401, "r", &[CHALLENGE], ""));
    let second = one_register(&sent);
    // Challenged again although we answered: the password is wrong.
    let again = "WWW-Authenticate: Digest realm=\"sip.example.com\", nonce=\"n9\", qop=\"auth\"";
    let (sent, events, _) = test.feed(&reply(&second, 401, "r", &[again], ""));
    assert!(sent.is_empty());
    assert_eq!(
        events,
        [RegisterEvent::RegistrationFailed {
            status: 401,
            retry_in: Duration::from_secs(1)
        }]
    );
    // The retry starts over: challenged, answered, then 403.
    let (sent, _, _) = test.tick();
    let third = one_register(&sent);
    assert!(
        third.one("authorization").is_none(),
        "refused credentials are dropped"
    );
    let (sent, _, _) = test.feed(&reply(&third, 401, "r", &[CHALLENGE], ""));
    let fourth = one_register(&sent);
    let (_, events, _) = test.feed(&reply(&fourth, 403, "r", &[], ""));
    assert_eq!(
        events,
        [RegisterEvent::RegistrationFailed {
            status: 403,
            retry_in: Duration::from_secs(2)
        }]
    );
    assert!(!test.reg.is_registered());
}

#[test]
fn stale_nonce_is_answered_again() {
    let mut test = Test::new(config());
    let first = test.start();
    let (sent, _, _) = test.feed(&reply(&first, 401, "r", &[CHALLENGE], ""));
    let second = one_register(&sent);
    let stale = "WWW-Authenticate: Digest realm=\"sip.example.com\", nonce=\"n3\", qop=\"auth\", stale=true";
    let (sent, events, _) = test.feed(&reply(&second, 401, "r", &[stale], ""));
    assert!(events.is_empty());
    let third = one_register(&sent);
    check_digest(&third, "n3", "00000001");
}

#[test]
fn interval_too_brief_is_raised_to_min_expires() {
    let mut test = Test::new(config());
    let first = test.start();
    let (sent, _, _) = test.feed(&reply(&first, 423, "r", &["Min-Expires: 600"], ""));
    let second = one_register(&sent);
    assert_eq!(second.one("expires"), Some("600"));
    let (_, events, _) = test.feed(&reply(&second, 423, "r", &["Min-Expires: 900"], ""));
    assert!(matches!(
        events[..],
        [RegisterEvent::RegistrationFailed { status: 423, .. }]
    ));
}

#[test]
fn binding_expires_when_refreshes_keep_failing() {
    let mut test = Test::new(config());
    test.registered("60");
    assert!(test.reg.is_registered());
    let expiry = test.secs() + 60.0;
    while test.secs() < expiry {
        let (sent, _, _) = test.tick();
        if let Some(t) = sent.first() {
            test.feed(&reply(&parsed(t), 500, "r", &[], ""));
        }
        assert_eq!(
            test.reg.is_registered(),
            test.secs() < expiry,
            "at {}",
            test.secs()
        );
    }
    assert!(!test.reg.is_registered());
}

#[test]
fn unregister_sends_expires_zero_and_stops() {
    let mut test = Test::new(config());
    test.registered("300");
    test.reg.unregister(test.now);
    let (sent, _, _) = test.drain();
    let bye = one_register(&sent);
    assert_eq!(bye.one("expires"), Some("0"));
    assert_eq!(bye.one("contact"), Some("<sip:gw@192.0.2.1:5060>"));
    check_digest(&bye, "n1", "00000002");
    let (_, events, next) = test.feed(&reply(&bye, 200, "r", &[], ""));
    assert_eq!(events, [RegisterEvent::Unregistered]);
    assert_eq!(next, None);
    assert!(!test.reg.is_registered());
    // Responses after the end change nothing.
    let (sent, events, _) = test.feed(&reply(&bye, 200, "r", &[], ""));
    assert!(sent.is_empty() && events.is_empty());
}

#[test]
fn unrelated_or_malformed_input_is_ignored() {
    let mut test = Test::new(config());
    let first = test.start();
    let other = String::from_utf8(reply(&first, 200, "r", &[], ""))
        .expect("UTF-8")
        .replace(first.call_id(), "someone-else");
    let (sent, events, _) = test.feed(other.as_bytes());
    assert!(sent.is_empty() && events.is_empty());
    let (sent, events, _) = test.feed(b"SIP/2.0 200 OK\r\n\r\n");
    assert!(sent.is_empty() && events.is_empty());
    let mut wrong_branch = reply(&first, 200, "r", &[], "");
    let text = String::from_utf8_lossy(&wrong_branch).replace("branch=z9hG4bK", "branch=z9hG4bKx");
    wrong_branch = text.into_bytes();
    let (_, events, _) = test.feed(&wrong_branch);
    assert!(events.is_empty());
    assert!(Registration::new(RegisterConfig {
        aor: "gw@sip.example.com".into(),
        ..config()
    })
    .is_err_and(|e| e.key == "aor"));
}
