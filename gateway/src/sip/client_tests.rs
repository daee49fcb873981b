//! The dial-out client stepped in time against a scripted callee: INVITE flow
//! and its ACK, Timer A/B, non-2xx ACK, digest, CANCEL, BYE both ways, DTMF
//! INFO, re-INVITE and mutated input.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::client::{ClientEndReason, ClientError, ClientOutput, Input, InviteError};
use super::inbound::{parse, Message, Start};
use super::{CallId, Client, ClientConfig, ClientEvent, Credentials, Transmit, Transport};

pub(super) const CALLEE: &str = "198.51.100.7:5080";
const OFFER: &str = "v=0\r\no=gw 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=bob 7 7 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

fn config() -> ClientConfig {
    ClientConfig {
        contact: "sip:gw@192.0.2.1:5060".into(),
        from_uri: "sip:gw@example.com".into(),
        from_display: Some("Meeting \"Gateway\"".into()),
        seed: 7,
        ..ClientConfig::default()
    }
}

/// Drains outputs: (sent, events, next timeout).
pub(super) fn drain<E>(
    mut poll: impl FnMut() -> super::uac::Output<E>,
) -> (Vec<Transmit>, Vec<E>, Option<Instant>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    loop {
        match poll() {
            super::uac::Output::Transmit(t) => sent.push(t),
            super::uac::Output::Event(e) => events.push(e),
            super::uac::Output::Timeout(t) => return (sent, events, t),
        }
    }
}

pub(super) fn parsed(t: &Transmit) -> Message {
    parse(&t.contents).expect("we send well-formed SIP")
}

pub(super) fn method(msg: &Message) -> &str {
    match &msg.start {
        Start::Request { method, .. } => method,
        Start::Response { .. } => "response",
    }
}

pub(super) fn request_uri(msg: &Message) -> &str {
    match &msg.start {
        Start::Request { uri, .. } => uri,
        Start::Response { .. } => "",
    }
}

/// A response to `req` as a UAS would build it: Via, From, Call-ID, CSeq
/// echoed, To with `to_tag`, then `extra` header lines and `body`.
pub(super) fn reply(
    req: &Message,
    status: u16,
    to_tag: &str,
    extra: &[&str],
    body: &str,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} Reason {status}\r\n");
    for via in req.values("via") {
        out.push_str(&format!("Via: {via};received=192.0.2.1\r\n"));
    }
    let to = req.one("to").unwrap_or_default();
    let tag = if to_tag.is_empty() || to.contains("tag=") {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}{tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        req.one("from").unwrap_or_default(),
        req.call_id(),
        req.one("cseq").unwrap_or_default()
    ));
    for line in extra {
        out.push_str(&format!("{line}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

pub(super) fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The RFC 2617 qop=auth response, written out in the test independently of
/// the core's digest module.
pub(super) fn expected_response(
    (user, password, realm): (&str, &str, &str),
    (nonce, nc, cnonce): (&str, &str, &str),
    (method, uri): (&str, &str),
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

/// `name="value"` or `name=value` out of a Digest header value.
pub(super) fn digest_param(header: &str, name: &str) -> String {
    let rest = header.trim_start_matches("Digest ");
    super::message::split_outside(rest, ',')
        .find_map(|p| {
            let (n, v) = p.split_once('=')?;
            (n.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_default()
}

struct Test {
    client: Client,
    now: Instant,
    start: Instant,
}

impl Test {
    fn new(config: ClientConfig) -> Self {
        let now = Instant::now();
        let client = Client::new(config).expect("valid config");
        Self {
            client,
            now,
            start: now,
        }
    }

    fn drain(&mut self) -> (Vec<Transmit>, Vec<ClientEvent>, Option<Instant>) {
        let client = &mut self.client;
        drain(|| -> ClientOutput { client.poll_output() })
    }

    fn feed(&mut self, data: &[u8]) -> (Vec<Transmit>, Vec<ClientEvent>, Option<Instant>) {
        self.feed_from(CALLEE, data)
    }

    fn feed_from(
        &mut self,
        source: &str,
        data: &[u8],
    ) -> (Vec<Transmit>, Vec<ClientEvent>, Option<Instant>) {
        self.client.handle_input(Input::Receive {
            now: self.now,
            transport: Transport::Udp,
            source: addr(source),
            data,
        });
        self.drain()
    }

    /// Steps to the next timeout (it must exist) and fires it.
    fn tick(&mut self) -> (Vec<Transmit>, Vec<ClientEvent>, Option<Instant>) {
        let (_, _, next) = self.drain();
        self.now = next.expect("a timer is armed");
        self.client.handle_input(Input::Timeout(self.now));
        let step = self.drain();
        // Every timer due now was served: no busy loop.
        assert!(
            step.2.is_none_or(|next| next > self.now),
            "timer left in the past"
        );
        step
    }

    fn elapsed_ms(&self) -> u128 {
        (self.now - self.start).as_millis()
    }

    /// Dials: returns the call and the INVITE sent.
    fn dial(&mut self, extra: &[(String, String)]) -> (CallId, Message) {
        let call = self
            .client
            .invite(
                "sip:bob@example.com",
                addr(CALLEE),
                Transport::Udp,
                OFFER,
                extra,
                self.now,
            )
            .expect("valid INVITE");
        let (sent, events, _) = self.drain();
        assert!(events.is_empty());
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].destination, addr(CALLEE));
        (call, parsed(&sent[0]))
    }

    /// Dials and gets a 200 with a route set; returns the call, INVITE and ACK.
    fn answered(&mut self) -> (CallId, Message, Message) {
        let (call, invite) = self.dial(&[]);
        let ok = reply(
            &invite,
            200,
            "callee1",
            &[
                "Record-Route: <sip:p2.example.com;lr>, <sip:192.0.2.60:5070;lr>",
                "Contact: <sip:bob@198.51.100.9:5090;transport=udp>",
                "Content-Type: application/sdp",
            ],
            ANSWER,
        );
        let (sent, events, _) = self.feed(&ok);
        assert_eq!(
            events,
            [ClientEvent::Answered {
                call_id: call.clone(),
                sdp: Some(ANSWER.into())
            }]
        );
        assert_eq!(sent.len(), 1);
        (call, invite, parsed(&sent[0]))
    }
}

/// A request from the callee inside the dialog of `invite`.
pub(super) fn callee_request(
    invite: &Message,
    method: &str,
    cseq: u32,
    extra: &[&str],
    body: &str,
) -> Vec<u8> {
    let mut out = format!(
        "{method} sip:gw@192.0.2.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5080;rport;branch=z9hG4bKcallee{cseq}{method}\r\n\
         From: <sip:bob@example.com>;tag=callee1\r\n\
         To: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:bob@198.51.100.9:5090>\r\n",
        invite.one("from").unwrap_or_default(),
        invite.call_id()
    );
    for line in extra {
        out.push_str(&format!("{line}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

mod dialog;

fn status(t: &Transmit) -> u16 {
    parsed(t).status()
}

#[test]
fn invite_is_well_formed() {
    let mut test = Test::new(config());
    let extra = [(
        "X-Room".to_owned(),
        "standup@conference.example.com".to_owned(),
    )];
    let (call, invite) = test.dial(&extra);
    assert_eq!(method(&invite), "INVITE");
    assert_eq!(request_uri(&invite), "sip:bob@example.com");
    let via = invite.one("via").expect("Via");
    assert!(
        via.starts_with("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK"),
        "{via}"
    );
    assert_eq!(invite.one("max-forwards"), Some("70"));
    assert!(invite
        .one("from")
        .expect("From")
        .starts_with("\"Meeting \\\"Gateway\\\"\" <sip:gw@example.com>;tag="));
    assert!(invite.tag("from").is_some_and(|t| !t.is_empty()));
    assert_eq!(invite.one("to"), Some("<sip:bob@example.com>"));
    assert_eq!(invite.call_id(), call.as_str());
    assert!(call.as_str().ends_with("@192.0.2.1"));
    assert_eq!(invite.cseq(), (1, "INVITE"));
    assert_eq!(invite.one("contact"), Some("<sip:gw@192.0.2.1:5060>"));
    assert_eq!(invite.one("content-type"), Some("application/sdp"));
    assert_eq!(invite.one("x-room"), Some("standup@conference.example.com"));
    assert_eq!(invite.body, OFFER.as_bytes());
    assert!(test.client.owns(call.as_str()));
}

#[test]
fn ringing_then_answer_is_acked_to_the_contact_through_the_route_set() {
    let mut test = Test::new(config());
    let (call, invite) = test.dial(&[]);
    let (sent, events, next) = test.feed(&reply(&invite, 100, "", &[], ""));
    assert!(sent.is_empty() && events.is_empty());
    // Proceeding: no more retransmissions, only the ring timeout (180 s).
    assert_eq!(next, Some(test.now + Duration::from_secs(180)));
    let (_, events, _) = test.feed(&reply(&invite, 180, "callee1", &[], ""));
    assert_eq!(
        events,
        [ClientEvent::Ringing {
            call_id: call.clone(),
            status: 180,
            sdp: None
        }]
    );
    let ok = reply(
        &invite,
        200,
        "callee1",
        &[
            "Record-Route: <sip:p2.example.com;lr>, <sip:192.0.2.60:5070;lr>",
            "Contact: <sip:bob@198.51.100.9:5090>",
            "Content-Type: application/sdp",
        ],
        ANSWER,
    );
    let (sent, events, next) = test.feed(&ok);
    assert_eq!(
        events,
        [ClientEvent::Answered {
            call_id: call.clone(),
            sdp: Some(ANSWER.into())
        }]
    );
    assert_eq!(next, None);
    assert_eq!(sent.len(), 1);
    // The route set is Record-Route reversed; its first hop is an IP literal.
    assert_eq!(sent[0].destination, addr("192.0.2.60:5070"));
    let ack = parsed(&sent[0]);
    assert_eq!(method(&ack), "ACK");
    assert_eq!(request_uri(&ack), "sip:bob@198.51.100.9:5090");
    let routes: Vec<&str> = ack.lines("route").collect();
    assert_eq!(
        routes,
        ["<sip:192.0.2.60:5070;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(ack.cseq(), (1, "ACK"));
    assert_eq!(ack.tag("to"), Some("callee1"));
    assert_eq!(ack.one("from"), invite.one("from"));
    assert_eq!(ack.call_id(), invite.call_id());
    assert_ne!(
        ack.branch(),
        invite.branch(),
        "ACK for 2xx is its own transaction"
    );
    assert!(ack.body.is_empty());
    // A retransmitted 2xx is ACKed again, without a second event.
    let (again, events, _) = test.feed(&ok);
    assert!(events.is_empty());
    assert_eq!(again, sent);
}

#[test]
fn timer_a_retransmits_the_invite_until_timer_b() {
    let mut test = Test::new(config());
    let call = test
        .client
        .invite(
            "sip:bob@example.com",
            addr(CALLEE),
            Transport::Udp,
            OFFER,
            &[],
            test.now,
        )
        .expect("valid INVITE");
    let first = test.drain().0;
    let mut resent = Vec::new();
    loop {
        let (sent, events, _) = test.tick();
        if !events.is_empty() {
            assert!(sent.is_empty());
            assert_eq!(
                events,
                [ClientEvent::Failed {
                    call_id: call.clone(),
                    status: 408,
                    reason: "Request Timeout".into()
                }]
            );
            break;
        }
        assert_eq!(sent.len(), 1);
        assert_eq!(sent, first, "retransmissions are byte-identical");
        resent.push(test.elapsed_ms());
    }
    assert_eq!(resent, [500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(test.elapsed_ms(), 32_000);
    assert!(!test.client.owns(call.as_str()));
    assert_eq!(test.drain().2, None);
}

#[test]
fn over_tcp_nothing_is_retransmitted() {
    let mut test = Test::new(config());
    let call = test
        .client
        .invite(
            "sip:bob@example.com",
            addr(CALLEE),
            Transport::Tcp,
            OFFER,
            &[],
            test.now,
        )
        .expect("valid INVITE");
    let (sent, _, next) = test.drain();
    assert_eq!(sent[0].transport, Transport::Tcp);
    assert!(parsed(&sent[0])
        .one("via")
        .is_some_and(|v| v.starts_with("SIP/2.0/TCP ")));
    assert_eq!(next, Some(test.now + Duration::from_secs(32)));
    let (sent, events, _) = test.tick();
    assert!(sent.is_empty());
    assert!(
        matches!(&events[..], [ClientEvent::Failed { status: 408, call_id, .. }] if *call_id == call)
    );
}

#[test]
fn busy_is_acked_in_the_transaction_and_fails_the_call() {
    let mut test = Test::new(config());
    let (call, invite) = test.dial(&[]);
    test.feed(&reply(&invite, 180, "callee1", &[], ""));
    let busy = reply(&invite, 486, "callee1", &[], "");
    let (sent, events, _) = test.feed(&busy);
    assert_eq!(
        events,
        [ClientEvent::Failed {
            call_id: call.clone(),
            status: 486,
            reason: "Reason 486".into()
        }]
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].destination, addr(CALLEE));
    let ack = parsed(&sent[0]);
    assert_eq!(method(&ack), "ACK");
    assert_eq!(request_uri(&ack), request_uri(&invite));
    assert_eq!(ack.branch(), invite.branch(), "non-2xx ACK: same branch");
    assert_eq!(ack.cseq(), (1, "ACK"));
    assert_eq!(ack.tag("to"), Some("callee1"));
    // A retransmitted 486 gets the same ACK and no event (Timer D, 32 s).
    let (again, events, next) = test.feed(&busy);
    assert!(events.is_empty());
    assert_eq!(again, sent);
    assert_eq!(next, Some(test.now + Duration::from_secs(32)));
    test.tick();
    assert!(!test.client.owns(call.as_str()));
}

#[test]
fn proxy_challenge_is_answered_once_with_a_correct_digest() {
    // The test's own digest formula reproduces RFC 2617 §3.5 first.
    assert_eq!(
        expected_response(
            ("Mufasa", "Circle Of Life", "testrealm@host.com"),
            ("dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b"),
            ("GET", "/dir/index.html"),
        ),
        "6629fae49393a05397450978507c4ef1"
    );
    let mut test = Test::new(ClientConfig {
        credentials: Some(Credentials::new("Mufasa", "Circle Of Life")),
        ..config()
    });
    let (call, invite) = test.dial(&[]);
    let challenge = reply(
        &invite,
        407,
        "proxy1",
        &["Proxy-Authenticate: Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
           nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""],
        "",
    );
    let (sent, events, _) = test.feed(&challenge);
    assert!(events.is_empty());
    assert_eq!(sent.len(), 2, "ACK for the 407, then the new INVITE");
    let (ack, again) = (parsed(&sent[0]), parsed(&sent[1]));
    assert_eq!(method(&ack), "ACK");
    assert_eq!(ack.branch(), invite.branch());
    assert_eq!(method(&again), "INVITE");
    assert_eq!(again.cseq(), (2, "INVITE"));
    assert_ne!(again.branch(), invite.branch());
    assert_eq!(again.call_id(), invite.call_id());
    assert_eq!(again.one("from"), invite.one("from"));
    assert_eq!(again.one("to"), invite.one("to"));
    let auth = again
        .one("proxy-authorization")
        .expect("Proxy-Authorization");
    assert_eq!(digest_param(auth, "username"), "Mufasa");
    assert_eq!(digest_param(auth, "uri"), "sip:bob@example.com");
    assert_eq!(digest_param(auth, "qop"), "auth");
    assert_eq!(digest_param(auth, "nc"), "00000001");
    assert_eq!(
        digest_param(auth, "opaque"),
        "5ccc069c403ebaf9f0171e9517f40e41"
    );
    let cnonce = digest_param(auth, "cnonce");
    assert!(!cnonce.is_empty());
    let want = expected_response(
        ("Mufasa", "Circle Of Life", "testrealm@host.com"),
        ("dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", &cnonce),
        ("INVITE", "sip:bob@example.com"),
    );
    assert_eq!(digest_param(auth, "response"), want);
    // The first 407 retransmitted: its ACK again, nothing else.
    let (resent, events, _) = test.feed(&challenge);
    assert!(events.is_empty());
    assert_eq!(resent, sent[..1]);
    // A second challenge fails the call (after its ACK).
    let (sent, events, _) = test.feed(&reply(
        &again,
        407,
        "proxy1",
        &["Proxy-Authenticate: Digest realm=\"testrealm@host.com\", nonce=\"fresh\""],
        "",
    ));
    assert_eq!(sent.len(), 1);
    assert_eq!(parsed(&sent[0]).cseq(), (2, "ACK"));
    assert!(
        matches!(&events[..], [ClientEvent::Failed { status: 407, call_id, .. }] if *call_id == call)
    );
}

#[test]
fn challenge_without_credentials_fails_the_call() {
    let mut test = Test::new(config());
    let (call, invite) = test.dial(&[]);
    let challenge = reply(
        &invite,
        401,
        "r",
        &["WWW-Authenticate: Digest realm=\"r\", nonce=\"n\""],
        "",
    );
    let (sent, events, _) = test.feed(&challenge);
    assert_eq!(sent.len(), 1);
    assert_eq!(method(&parsed(&sent[0])), "ACK");
    assert!(
        matches!(&events[..], [ClientEvent::Failed { status: 401, call_id, .. }] if *call_id == call)
    );
}

#[test]
fn cancel_after_ringing_ends_with_cancelled() {
    let mut test = Test::new(config());
    let (call, invite) = test.dial(&[]);
    test.feed(&reply(&invite, 180, "callee1", &[], ""));
    test.client.cancel(&call, test.now).expect("ringing call");
    let (sent, _, _) = test.drain();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].destination, addr(CALLEE));
    let cancel = parsed(&sent[0]);
    assert_eq!(method(&cancel), "CANCEL");
    assert_eq!(request_uri(&cancel), request_uri(&invite));
    assert_eq!(cancel.branch(), invite.branch());
    assert_eq!(cancel.cseq(), (1, "CANCEL"));
    assert_eq!(cancel.one("to"), invite.one("to"), "CANCEL's To has no tag");
    assert_eq!(cancel.one("from"), invite.one("from"));
    // Timer E retransmits the CANCEL until it is answered.
    let (resent, _, _) = test.tick();
    assert_eq!(resent, sent);
    assert_eq!(test.elapsed_ms(), 500);
    let (sent, events, _) = test.feed(&reply(&cancel, 200, "callee1", &[], ""));
    assert!(sent.is_empty() && events.is_empty());
    let (sent, events, next) = test.feed(&reply(&invite, 487, "callee1", &[], ""));
    assert_eq!(
        events,
        [ClientEvent::Cancelled {
            call_id: call.clone()
        }]
    );
    assert_eq!(method(&parsed(&sent[0])), "ACK");
    // Only Timer D is left (no stale CANCEL timer).
    assert_eq!(next, Some(test.now + Duration::from_secs(32)));
    assert_eq!(test.client.cancel(&call, test.now), Err(ClientError::Ended));
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut test = Test::new(config());
    let (call, invite) = test.dial(&[]);
    test.client
        .hangup(&call, test.now)
        .expect("hangup cancels a call not answered");
    let (sent, _, _) = test.drain();
    assert!(
        sent.is_empty(),
        "no CANCEL before a provisional (RFC 3261 §9.1)"
    );
    let (sent, events, _) = test.feed(&reply(&invite, 100, "", &[], ""));
    assert!(events.is_empty());
    assert_eq!(method(&parsed(&sent[0])), "CANCEL");
    // No 487 ever: the call ends 64·T1 after the CANCEL.
    let mut events = Vec::new();
    while events.is_empty() {
        events = test.tick().1;
    }
    assert_eq!(
        events,
        [ClientEvent::Cancelled {
            call_id: call.clone()
        }]
    );
    assert_eq!(test.elapsed_ms(), 32_000);
    assert!(test.client.is_empty());
}

#[test]
fn answer_racing_a_cancel_is_acked_and_ended_with_bye() {
    let mut test = Test::new(config());
    let (call, invite) = test.dial(&[]);
    test.feed(&reply(&invite, 180, "callee1", &[], ""));
    test.client.cancel(&call, test.now).expect("ringing");
    test.drain();
    let ok = reply(
        &invite,
        200,
        "callee1",
        &["Contact: <sip:bob@198.51.100.9:5090>"],
        ANSWER,
    );
    let (sent, events, next) = test.feed(&ok);
    assert_eq!(
        events,
        [ClientEvent::Cancelled {
            call_id: call.clone()
        }]
    );
    // The BYE's Timer E, not the CANCEL's give-up time.
    assert_eq!(next, Some(test.now + Duration::from_millis(500)));
    let methods: Vec<String> = sent.iter().map(|t| method(&parsed(t)).to_owned()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    let (_, events, _) = test.feed(&reply(&parsed(&sent[1]), 200, "", &[], ""));
    assert!(events.is_empty(), "the call was already reported");
    assert!(test.client.is_empty());
}

#[test]
fn ring_timeout_cancels_and_fails_with_408() {
    let mut test = Test::new(ClientConfig {
        ring_timeout: Duration::from_secs(30),
        ..config()
    });
    let (call, invite) = test.dial(&[]);
    test.feed(&reply(&invite, 180, "callee1", &[], ""));
    let (sent, _, _) = test.tick();
    assert_eq!(test.elapsed_ms(), 30_000);
    assert_eq!(method(&parsed(&sent[0])), "CANCEL");
    let (_, events, _) = test.feed(&reply(&invite, 487, "callee1", &[], ""));
    assert!(
        matches!(&events[..], [ClientEvent::Failed { status: 408, call_id, .. }] if *call_id == call)
    );
}

#[test]
fn outbound_proxy_receives_every_request() {
    let mut test = Test::new(ClientConfig {
        outbound_proxy: Some(addr("203.0.113.1:5060")),
        ..config()
    });
    let call = test
        .client
        .invite(
            "sip:+15551234@trunk.example.com",
            addr(CALLEE),
            Transport::Udp,
            OFFER,
            &[],
            test.now,
        )
        .expect("valid INVITE");
    let (sent, _, _) = test.drain();
    assert_eq!(sent[0].destination, addr("203.0.113.1:5060"));
    let invite = parsed(&sent[0]);
    assert_eq!(request_uri(&invite), "sip:+15551234@trunk.example.com");
    let ok = reply(
        &invite,
        200,
        "t",
        &["Contact: <sip:x@198.51.100.50>"],
        ANSWER,
    );
    let (sent, _, _) = test.feed(&ok);
    assert_eq!(sent[0].destination, addr("203.0.113.1:5060"));
    test.client.hangup(&call, test.now).expect("answered");
    assert_eq!(test.drain().0[0].destination, addr("203.0.113.1:5060"));
}

#[test]
fn invalid_invites_are_refused() {
    let mut test = Test::new(config());
    let now = test.now;
    let dial = |client: &mut Client, target: &str, extra: &[(String, String)]| {
        client.invite(target, addr(CALLEE), Transport::Udp, OFFER, extra, now)
    };
    for target in [
        "bob@example.com",
        "sip:bob@example.com\r\nX: y",
        "tel:+1555",
        "sip:a b@c",
    ] {
        assert_eq!(
            dial(&mut test.client, target, &[]),
            Err(InviteError::InvalidTarget),
            "{target}"
        );
    }
    for name in ["Via", "call-id", "Bad Name", ""] {
        let extra = [(name.to_owned(), "v".to_owned())];
        let want = Err(InviteError::InvalidHeader(name.to_owned()));
        assert_eq!(dial(&mut test.client, "sip:bob@example.com", &extra), want);
    }
    let injected = [("X-Ok".to_owned(), "a\r\nVia: evil".to_owned())];
    assert!(dial(&mut test.client, "sip:bob@example.com", &injected).is_err());
    let mut full = Test::new(ClientConfig {
        max_calls: 1,
        ..config()
    });
    full.dial(&[]);
    assert_eq!(
        dial(&mut full.client, "sip:bob@example.com", &[]),
        Err(InviteError::TooManyCalls)
    );
    assert!(test.client.is_empty());
    assert!(Client::new(ClientConfig {
        contact: "gw@192.0.2.1".into(),
        ..config()
    })
    .is_err_and(|e| e.key == "contact"));
}

/// Seeded mutations of the responses and requests a call sees never panic the
/// core, whatever state the call is in.
#[test]
fn mutated_input_never_panics() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut test = Test::new(ClientConfig {
            credentials: Some(Credentials::new("u", "p")),
            ..config()
        });
        let (_, invite) = test.dial(&[]);
        let samples = [
            reply(&invite, 180, "t", &[], ""),
            reply(
                &invite,
                407,
                "t",
                &["Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=auth"],
                "",
            ),
            reply(
                &invite,
                200,
                "t",
                &[
                    "Record-Route: <sip:192.0.2.60;lr>",
                    "Contact: <sip:b@198.51.100.9>",
                ],
                ANSWER,
            ),
            callee_request(
                &invite,
                "INFO",
                3,
                &["Content-Type: application/dtmf-relay"],
                "Signal=5",
            ),
            callee_request(&invite, "BYE", 4, &[], ""),
        ];
        for sample in samples.iter().cycle().skip(round % 5).take(8) {
            let mut bytes = sample.clone();
            for _ in 0..(next() % 3) {
                let at = (next() as usize) % (bytes.len() + 1);
                match next() % 3 {
                    0 if at < bytes.len() => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b";:<>\",= \r\n"[(next() % 10) as usize]),
                }
            }
            test.feed(&bytes);
            if let (true, (_, _, Some(_))) = (next() % 4 == 0, test.drain()) {
                test.tick();
            }
        }
    }
}
