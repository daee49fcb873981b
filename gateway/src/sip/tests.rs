//! INVITE flow, CANCEL, BYE, OPTIONS and the transaction cap, stepped in time.
//! The helpers here are shared with the dialog tests (children of this module).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{CallId, Config, EndReason, Event, Input, Output, Server, Transport};

#[path = "dialog_load_tests.rs"]
mod dialog_load_tests;
#[path = "dialog_tests.rs"]
mod dialog_tests;
#[path = "dialog_timer_tests.rs"]
mod dialog_timer_tests;

pub(super) const SRC: &str = "192.0.2.7:5062";

pub(super) fn request(
    method: &str,
    cseq_method: &str,
    branch: &str,
    call_id: &str,
    to_tag: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{method} sip:room@gw.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice \\\"A\\\"\" <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:room@gw.example.com>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {cseq_method}\r\n\
         Jitsi-Conference-Room: room1@conference.example.com\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn feed(server: &mut Server, now: Instant, data: &[u8]) {
    let source: SocketAddr = SRC.parse().expect("literal address");
    server.handle_input(Input::Receive {
        now,
        transport: Transport::Udp,
        source,
        data,
    });
}

/// Drains outputs: (statuses sent, events, next timeout).
pub(super) fn drain(server: &mut Server) -> (Vec<String>, Vec<Event>, Option<Instant>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    loop {
        match server.poll_output() {
            Output::Transmit(t) => {
                assert_eq!(t.destination, SRC.parse().expect("literal address"));
                sent.push(String::from_utf8(t.contents).expect("we send UTF-8"));
            }
            Output::Event(e) => events.push(e),
            Output::Timeout(t) => return (sent, events, t),
        }
    }
}

pub(super) fn status(msg: &str) -> &str {
    &msg[8..11]
}

pub(super) fn to_tag(msg: &str) -> String {
    let to = msg
        .lines()
        .find(|l| l.starts_with("To:"))
        .expect("To header");
    to.split(";tag=").nth(1).expect("To-tag").to_owned()
}

pub(super) fn invite(server: &mut Server, now: Instant) -> CallId {
    feed(
        server,
        now,
        &request("INVITE", "INVITE", "z9hG4bK1", "c1", "", "v=0\r\n"),
    );
    let (sent, events, _) = drain(server);
    assert_eq!(sent.iter().map(|m| status(m)).collect::<Vec<_>>(), ["100"]);
    match &events[..] {
        [Event::IncomingCall {
            call_id,
            from_display,
            from_uri,
            room_header,
            sdp_offer,
        }] => {
            assert_eq!(from_display.as_deref(), Some("Alice \"A\""));
            assert_eq!(from_uri, "sip:alice@example.com");
            assert_eq!(room_header.as_deref(), Some("room1@conference.example.com"));
            assert_eq!(sdp_offer.as_deref(), Some("v=0\r\n"));
            call_id.clone()
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn answer_retransmits_200_with_doubling_until_ack() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let id = invite(&mut server, t0);
    server
        .answer(&id, "v=0 answer\r\n", t0)
        .expect("call is proceeding");
    let (sent, _, next) = drain(&mut server);
    assert_eq!(status(&sent[0]), "200");
    assert!(sent[0].contains("Contact: <sip:gateway@127.0.0.1>"));
    assert!(sent[0].contains("rport=5062;received=192.0.2.7"));
    let tag = to_tag(&sent[0]);
    let mut at = next.expect("T1 timer");
    let mut gaps = Vec::new();
    let mut last = t0;
    for _ in 0..5 {
        server.handle_input(Input::Timeout(at));
        let (resent, _, next) = drain(&mut server);
        assert_eq!(resent, sent, "same 200 retransmitted");
        gaps.push((at - last).as_millis());
        last = at;
        at = next.expect("next retransmission");
    }
    assert_eq!(gaps, [500, 1000, 2000, 4000, 4000]);
    // A retransmitted INVITE gets the 200 again.
    feed(
        &mut server,
        last,
        &request("INVITE", "INVITE", "z9hG4bK1", "c1", "", "v=0\r\n"),
    );
    assert_eq!(drain(&mut server).0, sent);
    let ack = request("ACK", "ACK", "z9hG4bK2", "c1", &format!(";tag={tag}"), "");
    feed(&mut server, last, &ack);
    let (none, events, next) = drain(&mut server);
    assert!(none.is_empty());
    assert_eq!(
        events,
        [Event::CallEstablished {
            call_id: id.clone()
        }]
    );
    assert_eq!(next, None, "no timers once confirmed");
    let bye = request("BYE", "BYE", "z9hG4bK3", "c1", &format!(";tag={tag}"), "");
    feed(&mut server, last, &bye);
    let (sent, events, _) = drain(&mut server);
    assert_eq!(status(&sent[0]), "200");
    assert_eq!(
        events,
        [Event::CallEnded {
            call_id: id,
            reason: EndReason::RemoteBye
        }]
    );
    assert!(server.is_empty());
}

#[test]
fn retransmitted_invite_gets_last_response() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    invite(&mut server, t0);
    feed(
        &mut server,
        t0,
        &request("INVITE", "INVITE", "z9hG4bK1", "c1", "", "v=0\r\n"),
    );
    let (sent, events, _) = drain(&mut server);
    assert_eq!(sent.iter().map(|m| status(m)).collect::<Vec<_>>(), ["100"]);
    assert!(events.is_empty());
}

#[test]
fn cancel_before_answer_gives_200_and_487() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let id = invite(&mut server, t0);
    feed(
        &mut server,
        t0,
        &request("CANCEL", "CANCEL", "z9hG4bK1", "c1", "", ""),
    );
    let (sent, events, _) = drain(&mut server);
    assert_eq!(
        sent.iter().map(|m| status(m)).collect::<Vec<_>>(),
        ["200", "487"]
    );
    assert!(sent[1].contains("CSeq: 1 INVITE"));
    assert_eq!(
        events,
        [Event::CallEnded {
            call_id: id.clone(),
            reason: EndReason::Cancelled
        }]
    );
    assert_eq!(
        server.answer(&id, "", t0),
        Err(super::CallError::AlreadyAnswered)
    );
    // The ACK for the 487 ends the transaction.
    feed(
        &mut server,
        t0,
        &request("ACK", "ACK", "z9hG4bK1", "c1", ";tag=x", ""),
    );
    assert!(server.is_empty());
}

#[test]
fn reject_and_unknown_dialogs() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let id = invite(&mut server, t0);
    server.reject(&id, 486, t0).expect("proceeding");
    assert_eq!(status(&drain(&mut server).0[0]), "486");
    server.handle_input(Input::Timeout(t0 + Duration::from_secs(32)));
    drain(&mut server);
    assert!(server.is_empty(), "Timer H ends the transaction");
    feed(
        &mut server,
        t0,
        &request("BYE", "BYE", "z9hG4bK9", "nope", ";tag=zz", ""),
    );
    assert_eq!(status(&drain(&mut server).0[0]), "481");
}

#[test]
fn options_and_checks() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    feed(
        &mut server,
        t0,
        &request("OPTIONS", "OPTIONS", "z9hG4bK5", "o1", "", ""),
    );
    let sent = drain(&mut server).0;
    assert_eq!(status(&sent[0]), "200");
    assert!(sent[0].contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"));
    assert!(sent[0].contains("Supported: timer"));
    assert!(sent[0].contains("Accept: application/sdp"));
    let zero_mf = String::from_utf8(request("INVITE", "INVITE", "z9hG4bK6", "m1", "", ""))
        .expect("ascii")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    feed(&mut server, t0, zero_mf.as_bytes());
    assert_eq!(status(&drain(&mut server).0[0]), "483");
    feed(
        &mut server,
        t0,
        &request("OPTIONS", "INVITE", "z9hG4bK7", "o2", "", ""),
    );
    assert_eq!(status(&drain(&mut server).0[0]), "400");
}

#[test]
fn transaction_cap_gives_503() {
    let config = Config {
        max_transactions: 1,
        ..Config::default()
    };
    let mut server = Server::new(config);
    let t0 = Instant::now();
    invite(&mut server, t0);
    feed(
        &mut server,
        t0,
        &request("INVITE", "INVITE", "z9hG4bK8", "c2", "", ""),
    );
    let sent = drain(&mut server).0;
    assert_eq!(status(&sent[0]), "503");
    assert!(sent[0].contains("Retry-After: 5"));
}

#[test]
fn unanswered_call_times_out_with_480() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let id = invite(&mut server, t0);
    server.handle_input(Input::Timeout(t0 + Duration::from_secs(60)));
    let (sent, events, _) = drain(&mut server);
    assert_eq!(status(&sent[0]), "480");
    assert_eq!(
        events,
        [Event::CallEnded {
            call_id: id,
            reason: EndReason::AnswerTimeout
        }]
    );
}
