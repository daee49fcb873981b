//! In-dialog behaviour stepped in time: our BYE (Timer E/F), responses,
//! re-INVITE, INFO DTMF, OPTIONS, UPDATE, route sets and unknown dialogs.

use std::time::{Duration, Instant};

use super::{drain, feed, status, to_tag, SRC};
use crate::sip::dialog::{dtmf, Info};
use crate::sip::{CallError, CallId, Config, EndReason, Event, Input, Server, Transport};

pub(super) const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.7\r\ns=-\r\n";
pub(super) const ANSWER: &str = "v=0\r\no=gateway 1 1 IN IP4 192.0.2.1\r\ns=-\r\n";

/// A request from the caller (alice, tag `a1`) on call `c1`.
pub(super) fn msg(
    method: &str,
    cseq: u32,
    branch: &str,
    to_tag: Option<&str>,
    headers: &[&str],
    body: &str,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    format!(
        "{method} sip:room@gw.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:room@gw.example.com>{to_tag}\r\n\
         Call-ID: c1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@192.0.2.7:5062>\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The value of the first header `name` in a message we sent.
pub(super) fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

/// A response of the caller to a request we sent, echoing its Via, From, To,
/// Call-ID and CSeq.
pub(super) fn reply_to(req: &str, status: u16) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} Whatever\r\n");
    for line in req.lines() {
        if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

pub(super) fn c1() -> CallId {
    CallId::new("c1")
}

/// INVITE (with `headers`), answer, ACK: returns our To-tag and our 200.
pub(super) fn established(server: &mut Server, now: Instant, headers: &[&str]) -> (String, String) {
    let mut headers = headers.to_vec();
    headers.push("Content-Type: application/sdp");
    feed(
        server,
        now,
        &msg("INVITE", 1, "z9hG4bKinv", None, &headers, OFFER),
    );
    let (sent, events, _) = drain(server);
    assert_eq!(status(&sent[0]), "100", "{sent:?}");
    assert!(
        matches!(events[..], [Event::IncomingCall { .. }]),
        "{events:?}"
    );
    server.answer(&c1(), ANSWER, now).expect("proceeding");
    let (sent, _, _) = drain(server);
    let ok = sent[0].clone();
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    feed(
        server,
        now,
        &msg("ACK", 1, "z9hG4bKack", Some(&tag), &[], ""),
    );
    let (sent, events, _) = drain(server);
    assert!(sent.is_empty());
    assert_eq!(events, [Event::CallEstablished { call_id: c1() }]);
    (tag, ok)
}

/// Steps timers until `until`, collecting (time, message) of what was sent.
pub(super) fn step_until(
    server: &mut Server,
    mut next: Option<Instant>,
    until: Instant,
) -> (Vec<(Instant, String)>, Vec<Event>, Option<Instant>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(at) = next.filter(|&at| at <= until) {
        server.handle_input(Input::Timeout(at));
        let (out, evs, n) = drain(server);
        sent.extend(out.into_iter().map(|m| (at, m)));
        events.extend(evs);
        next = n;
    }
    (sent, events, next)
}

fn gaps(start: Instant, sent: &[(Instant, String)]) -> Vec<u128> {
    let mut last = start;
    sent.iter()
        .map(|(at, _)| {
            let gap = (*at - last).as_millis();
            last = *at;
            gap
        })
        .collect()
}

#[test]
fn hangup_sends_bye_retransmitted_until_200() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    server.hangup(&c1(), t0).expect("confirmed call");
    let (sent, events, next) = drain(&mut server);
    assert!(events.is_empty(), "the call ends when the BYE completes");
    let bye = sent[0].clone();
    assert!(
        bye.starts_with("BYE sip:alice@192.0.2.7:5062 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(
        header(&bye, "From"),
        format!("<sip:room@gw.example.com>;tag={tag}")
    );
    assert_eq!(header(&bye, "To"), "<sip:alice@example.com>;tag=a1");
    assert_eq!(header(&bye, "Call-ID"), "c1");
    assert_eq!(header(&bye, "CSeq"), "1 BYE");
    assert_eq!(header(&bye, "Max-Forwards"), "70");
    let via = header(&bye, "Via");
    assert!(
        via.starts_with("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK"),
        "{via}"
    );
    assert_eq!(server.hangup(&c1(), t0), Err(CallError::AlreadyAnswered));

    let until = t0 + Duration::from_millis(11_500);
    let (resent, events, _) = step_until(&mut server, next, until);
    assert!(events.is_empty());
    assert_eq!(gaps(t0, &resent), [500, 1000, 2000, 4000, 4000], "Timer E");
    assert!(
        resent.iter().all(|(_, m)| *m == bye),
        "same BYE retransmitted"
    );

    feed(&mut server, until, &reply_to(&bye, 200));
    let (sent, events, next) = drain(&mut server);
    assert!(sent.is_empty());
    let reason = EndReason::LocalHangup;
    assert_eq!(
        events,
        [Event::CallEnded {
            call_id: c1(),
            reason
        }]
    );
    assert!(server.is_empty());
    // Timer K absorbs a retransmitted 200, then the transaction goes.
    feed(&mut server, until, &reply_to(&bye, 200));
    assert_eq!(drain(&mut server).1, []);
    assert_eq!(next, Some(until + Duration::from_secs(5)), "Timer K = T4");
    let (sent, _, next) = step_until(&mut server, next, until + Duration::from_secs(5));
    assert!(sent.is_empty());
    assert_eq!(next, None);
    assert_eq!(server.hangup(&c1(), until), Err(CallError::UnknownCall));
}

#[test]
fn unanswered_bye_ends_the_call_at_timer_f() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    established(&mut server, t0, &[]);
    server.hangup(&c1(), t0).expect("confirmed call");
    let (_, _, next) = drain(&mut server);
    let (resent, events, next) = step_until(&mut server, next, t0 + Duration::from_secs(40));
    let times: Vec<u128> = resent
        .iter()
        .map(|(at, _)| (*at - t0).as_millis())
        .collect();
    assert_eq!(
        times,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let reason = EndReason::LocalHangup;
    assert_eq!(
        events,
        [Event::CallEnded {
            call_id: c1(),
            reason
        }]
    );
    assert_eq!(next, None, "nothing left after Timer F (64·T1)");
    assert!(server.is_empty());
}

#[test]
fn hangup_needs_an_answer_and_waits_for_the_ack() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    assert_eq!(server.hangup(&c1(), t0), Err(CallError::UnknownCall));
    feed(
        &mut server,
        t0,
        &msg("INVITE", 1, "z9hG4bKinv", None, &[], ""),
    );
    drain(&mut server);
    assert_eq!(server.hangup(&c1(), t0), Err(CallError::NotAnswered));
    server.answer(&c1(), ANSWER, t0).expect("proceeding");
    let tag = to_tag(&drain(&mut server).0[0]);
    server.hangup(&c1(), t0).expect("answered");
    assert!(drain(&mut server).0.is_empty(), "no BYE before the ACK");
    feed(
        &mut server,
        t0,
        &msg("ACK", 1, "z9hG4bKack", Some(&tag), &[], ""),
    );
    let (sent, events, _) = drain(&mut server);
    assert!(events.is_empty(), "no CallEstablished for a call hung up");
    assert!(sent[0].starts_with("BYE "), "{sent:?}");
    feed(&mut server, t0, &reply_to(&sent[0], 481));
    let reason = EndReason::LocalHangup;
    assert_eq!(
        drain(&mut server).1,
        [Event::CallEnded {
            call_id: c1(),
            reason
        }]
    );
}

#[test]
fn provisional_response_slows_bye_retransmissions_to_t2() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    established(&mut server, t0, &[]);
    server.hangup(&c1(), t0).expect("confirmed call");
    let (sent, _, next) = drain(&mut server);
    feed(
        &mut server,
        t0 + Duration::from_millis(100),
        &reply_to(&sent[0], 100),
    );
    assert_eq!(drain(&mut server).1, [], "provisional: nothing to report");
    let (resent, _, _) = step_until(&mut server, next, t0 + Duration::from_millis(8_500));
    assert_eq!(gaps(t0, &resent), [500, 4000, 4000]);
}

#[test]
fn requests_follow_the_route_set_and_the_refreshed_target() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let rr = "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>";
    let (tag, ok) = established(&mut server, t0, &[rr]);
    assert!(ok.contains(&format!("{rr}\r\n")), "{ok}");
    // UPDATE with a new Contact refreshes the remote target.
    let mut update =
        String::from_utf8(msg("UPDATE", 2, "z9hG4bKu1", Some(&tag), &[], "")).expect("ascii");
    update = update.replace("sip:alice@192.0.2.7:5062>", "sip:alice@198.51.100.9:5070>");
    feed(&mut server, t0, update.as_bytes());
    let sent = drain(&mut server).0;
    assert_eq!(status(&sent[0]), "200");
    assert_eq!(header(&sent[0], "Contact"), "<sip:gateway@127.0.0.1>");
    server.hangup(&c1(), t0).expect("confirmed call");
    let bye = drain(&mut server).0.remove(0);
    assert!(
        bye.starts_with("BYE sip:alice@198.51.100.9:5070 SIP/2.0\r\n"),
        "{bye}"
    );
    let routes: Vec<&str> = bye.lines().filter(|l| l.starts_with("Route:")).collect();
    assert_eq!(
        routes,
        [
            "Route: <sip:p2.example.com;lr>",
            "Route: <sip:p1.example.com;lr>"
        ]
    );

    // A strict router becomes the Request-URI; the target the last route.
    let mut server = Server::new(Config::default());
    established(&mut server, t0, &["Record-Route: <sip:strict.example.com>"]);
    server.hangup(&c1(), t0).expect("confirmed call");
    let bye = drain(&mut server).0.remove(0);
    assert!(
        bye.starts_with("BYE sip:strict.example.com SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header(&bye, "Route"), "<sip:alice@192.0.2.7:5062>");
}

#[test]
fn responses_we_do_not_own_go_to_the_application() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let theirs = "SIP/2.0 180 Ringing\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKdialout1\r\n\
        From: <sip:gw@192.0.2.1>;tag=g1\r\n\
        To: <sip:bob@example.com>;tag=b1\r\n\
        Call-ID: out1\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";
    feed(&mut server, t0, theirs.as_bytes());
    let (sent, events, _) = drain(&mut server);
    assert!(sent.is_empty());
    let expected = Event::Response {
        transport: Transport::Udp,
        source: SRC.parse().expect("literal address"),
        data: theirs.as_bytes().to_vec(),
    };
    assert_eq!(events, [expected]);

    // Our BYE's branch with another method is not ours either.
    established(&mut server, t0, &[]);
    server.hangup(&c1(), t0).expect("confirmed call");
    let bye = drain(&mut server).0.remove(0);
    let wrong = String::from_utf8(reply_to(&bye, 200))
        .expect("ascii")
        .replace("1 BYE", "1 INVITE");
    feed(&mut server, t0, wrong.as_bytes());
    assert!(matches!(drain(&mut server).1[..], [Event::Response { .. }]));

    // Malformed responses are dropped: no event, nothing sent, no panic.
    let malformed = [
        theirs.replace("180 Ringing", "4294967301 Big"),
        theirs.replace("180 Ringing", "18 Short"),
        theirs.replace("180 Ringing", "099 Low"),
        theirs.replace("CSeq: 1 INVITE\r\n", ""),
        theirs.replace("CSeq: 1 INVITE", "CSeq: 99999999999999 INVITE"),
        theirs.replace("Content-Length: 0", "Content-Length: 10"),
        theirs.replace("Via: SIP/2.0/UDP", "Via: SIP/3.0/UDP"),
        theirs.replace("SIP/2.0 180", "SIP/2.1 180"),
        "SIP/2.0 200 OK\r\n\r\n".to_owned(),
        "SIP/".to_owned(),
    ];
    for bad in malformed {
        feed(&mut server, t0, bad.as_bytes());
        let (sent, events, _) = drain(&mut server);
        assert!(sent.is_empty() && events.is_empty(), "{bad:?}: {events:?}");
    }
}

#[test]
fn reinvite_gives_reoffer_answered_until_ack() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    let offer = "v=0\r\no=alice 1 2 IN IP4 192.0.2.7\r\ns=-\r\n";
    let reinvite = msg("INVITE", 2, "z9hG4bKre1", Some(&tag), &[], offer);
    feed(&mut server, t0, &reinvite);
    let (sent, events, _) = drain(&mut server);
    assert_eq!(sent.iter().map(|m| status(m)).collect::<Vec<_>>(), ["100"]);
    let sdp = Some(offer.to_owned());
    assert_eq!(events, [Event::Reoffer { call_id: c1(), sdp }]);
    // A retransmission gets the 100 again; an overlapping re-INVITE 491.
    feed(&mut server, t0, &reinvite);
    let (sent, events, _) = drain(&mut server);
    assert_eq!((status(&sent[0]), events.len()), ("100", 0));
    feed(
        &mut server,
        t0,
        &msg("INVITE", 3, "z9hG4bKre2", Some(&tag), &[], offer),
    );
    assert_eq!(status(&drain(&mut server).0[0]), "491");

    let new_answer = "v=0\r\no=gateway 1 2 IN IP4 192.0.2.1\r\ns=-\r\n";
    server
        .answer_reoffer(&c1(), new_answer, t0)
        .expect("pending");
    let (sent, _, next) = drain(&mut server);
    let ok = sent[0].clone();
    assert_eq!(status(&ok), "200");
    assert_eq!(header(&ok, "CSeq"), "2 INVITE");
    assert_eq!(header(&ok, "Contact"), "<sip:gateway@127.0.0.1>");
    assert!(ok.ends_with(new_answer), "{ok}");
    let (resent, _, next) = step_until(&mut server, next, t0 + Duration::from_millis(1_500));
    assert_eq!(gaps(t0, &resent), [500, 1000]);
    assert!(resent.iter().all(|(_, m)| *m == ok));
    feed(&mut server, t0, &reinvite);
    assert_eq!(
        drain(&mut server).0,
        std::slice::from_ref(&ok),
        "retransmitted re-INVITE"
    );
    let at = next.expect("retransmitting");
    feed(
        &mut server,
        at,
        &msg("ACK", 2, "z9hG4bKack2", Some(&tag), &[], ""),
    );
    let (sent, events, next) = drain(&mut server);
    assert!(sent.is_empty() && events.is_empty());
    assert_eq!(next, None, "ACK ends the re-INVITE transaction");
    assert_eq!(
        server.answer_reoffer(&c1(), ANSWER, at),
        Err(CallError::NoReoffer)
    );
    let unknown = CallId::new("nope");
    assert_eq!(
        server.answer_reoffer(&unknown, ANSWER, at),
        Err(CallError::UnknownCall)
    );
}

#[test]
fn unanswered_reoffer_gets_500_with_retry_after() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    let offer = "v=0\r\no=alice 1 2 IN IP4 192.0.2.7\r\n";
    feed(
        &mut server,
        t0,
        &msg("INVITE", 2, "z9hG4bKre1", Some(&tag), &[], offer),
    );
    let (_, _, next) = drain(&mut server);
    assert_eq!(next, Some(t0 + Duration::from_secs(60)), "answer timeout");
    let (sent, events, next) = step_until(&mut server, next, t0 + Duration::from_secs(60));
    assert!(events.is_empty(), "the call goes on");
    assert_eq!(status(&sent[0].1), "500");
    assert_eq!(header(&sent[0].1, "Retry-After"), "5");
    assert_eq!(
        server.answer_reoffer(&c1(), ANSWER, t0),
        Err(CallError::NoReoffer)
    );
    let at = next.expect("Timer G");
    feed(
        &mut server,
        at,
        &msg("ACK", 2, "z9hG4bKre1", Some(&tag), &[], ""),
    );
    assert_eq!(drain(&mut server).2, None, "ACK ends the transaction");
    // The dialog is still up: a new re-INVITE is taken, and can be refused.
    feed(
        &mut server,
        at,
        &msg("INVITE", 3, "z9hG4bKre3", Some(&tag), &[], offer),
    );
    assert_eq!(drain(&mut server).1.len(), 1);
    assert_eq!(
        server.reject_reoffer(&c1(), 200, at),
        Err(CallError::InvalidStatus(200))
    );
    server.reject_reoffer(&c1(), 488, at).expect("pending");
    assert_eq!(status(&drain(&mut server).0[0]), "488");
}

#[test]
fn unchanged_offer_is_answered_by_the_core() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    feed(
        &mut server,
        t0,
        &msg("INVITE", 2, "z9hG4bKre1", Some(&tag), &[], OFFER),
    );
    let (sent, events, _) = drain(&mut server);
    assert!(events.is_empty(), "a session refresh: {events:?}");
    assert_eq!(
        sent.iter().map(|m| status(m)).collect::<Vec<_>>(),
        ["100", "200"]
    );
    assert!(sent[1].ends_with(ANSWER));
    feed(
        &mut server,
        t0,
        &msg("ACK", 2, "z9hG4bKa2", Some(&tag), &[], ""),
    );
    assert_eq!(drain(&mut server).2, None);
}

#[test]
fn offerless_reinvite_gets_its_answer_from_the_ack() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    feed(
        &mut server,
        t0,
        &msg("INVITE", 2, "z9hG4bKre1", Some(&tag), &[], ""),
    );
    let events = drain(&mut server).1;
    assert_eq!(
        events,
        [Event::Reoffer {
            call_id: c1(),
            sdp: None
        }]
    );
    server.answer_reoffer(&c1(), ANSWER, t0).expect("pending");
    assert!(drain(&mut server).0[0].ends_with(ANSWER));
    let their_answer = "v=0\r\no=alice 1 5 IN IP4 192.0.2.7\r\n";
    let ack = msg(
        "ACK",
        2,
        "z9hG4bKa2",
        Some(&tag),
        &["Content-Type: application/sdp"],
        their_answer,
    );
    feed(&mut server, t0, &ack);
    let sdp = Some(their_answer.to_owned());
    assert_eq!(
        drain(&mut server).1,
        [Event::ReofferAcked { call_id: c1(), sdp }]
    );
}

#[test]
fn info_dtmf_gives_events() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    let cases: [(&str, &str, &str, Option<char>); 5] = [
        (
            "application/dtmf-relay",
            "Signal=5\r\nDuration=160\r\n",
            "200",
            Some('5'),
        ),
        ("application/dtmf", "#", "200", Some('#')),
        (
            "application/dtmf-relay",
            "Signal= b\r\nDuration=100\r\n",
            "200",
            Some('B'),
        ),
        (
            "application/dtmf-relay",
            "Signal=x\r\nDuration=160\r\n",
            "200",
            None,
        ),
        ("text/plain", "5", "415", None),
    ];
    for (i, (media, body, expected, digit)) in cases.into_iter().enumerate() {
        let cseq = 2 + i as u32;
        let content_type = format!("Content-Type: {media}");
        let info = msg(
            "INFO",
            cseq,
            &format!("z9hG4bKi{i}"),
            Some(&tag),
            &[&content_type],
            body,
        );
        feed(&mut server, t0, &info);
        let (sent, events, _) = drain(&mut server);
        assert_eq!(status(&sent[0]), expected, "{media} {body:?}");
        let dtmf: Vec<Event> = digit
            .map(|digit| Event::Dtmf {
                call_id: c1(),
                digit,
            })
            .into_iter()
            .collect();
        assert_eq!(events, dtmf, "{media} {body:?}");
    }
    // The last few requests' retransmissions get their response, not a second event.
    let info = msg(
        "INFO",
        3,
        "z9hG4bKi1",
        Some(&tag),
        &["Content-Type: application/dtmf"],
        "#",
    );
    feed(&mut server, t0, &info);
    let (sent, events, _) = drain(&mut server);
    assert_eq!((status(&sent[0]), events.len()), ("200", 0));
}

#[test]
fn dtmf_bodies() {
    let relay = Some("application/dtmf-relay");
    let cases: [(Option<&str>, &str, Info); 10] = [
        (relay, "Signal=5\r\nDuration=160", Info::Digit('5')),
        (relay, "Duration=160\nsignal = *", Info::Digit('*')),
        (relay, "Signal=10\r\n", Info::Digit('*')),
        (relay, "Signal=11\r\n", Info::Digit('#')),
        (relay, "Signal=15\r\n", Info::Digit('D')),
        (relay, "Signal=16\r\n", Info::Nothing),
        (
            Some("Application/DTMF; charset=x"),
            " 9 \r\n",
            Info::Digit('9'),
        ),
        (Some("application/dtmf"), "", Info::Nothing),
        (None, "5", Info::Unsupported),
        (Some("application/sdp"), "v=0", Info::Unsupported),
    ];
    for (media, body, expected) in cases {
        assert_eq!(dtmf(media, body.as_bytes()), expected, "{media:?} {body:?}");
    }
}

#[test]
fn in_dialog_options_update_and_unknown_dialogs() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    feed(
        &mut server,
        t0,
        &msg("OPTIONS", 2, "z9hG4bKo1", Some(&tag), &[], ""),
    );
    let sent = drain(&mut server).0;
    assert_eq!(status(&sent[0]), "200");
    assert!(header(&sent[0], "Allow").contains("INFO, UPDATE"));
    feed(
        &mut server,
        t0,
        &msg("UPDATE", 3, "z9hG4bKu1", Some(&tag), &[], ""),
    );
    assert_eq!(status(&drain(&mut server).0[0]), "200");
    // An UPDATE that changes the media is refused (re-INVITE needed).
    let changed = "v=0\r\no=alice 1 9 IN IP4 192.0.2.7\r\n";
    let sdp = ["Content-Type: application/sdp"];
    feed(
        &mut server,
        t0,
        &msg("UPDATE", 4, "z9hG4bKu2", Some(&tag), &sdp, changed),
    );
    assert_eq!(status(&drain(&mut server).0[0]), "488");
    // Out of order.
    feed(
        &mut server,
        t0,
        &msg("INFO", 2, "z9hG4bKlow", Some(&tag), &[], ""),
    );
    assert_eq!(status(&drain(&mut server).0[0]), "500");
    // Other dialogs: wrong To-tag, wrong From-tag, unknown Call-ID.
    let wrong_from = String::from_utf8(msg("INFO", 9, "z9hG4bKf", Some(&tag), &[], ""))
        .expect("ascii")
        .replace("tag=a1", "tag=zz");
    let unknown_call = String::from_utf8(msg("BYE", 9, "z9hG4bKc", Some(&tag), &[], ""))
        .expect("ascii")
        .replace("Call-ID: c1", "Call-ID: c2");
    let requests = [
        msg("BYE", 9, "z9hG4bKb", Some("other"), &[], ""),
        msg("INVITE", 9, "z9hG4bKr", Some("other"), &[], ""),
        msg("UPDATE", 9, "z9hG4bKu", Some("other"), &[], ""),
        wrong_from.into_bytes(),
        unknown_call.into_bytes(),
    ];
    for request in requests {
        feed(&mut server, t0, &request);
        let (sent, events, _) = drain(&mut server);
        assert_eq!(
            status(&sent[0]),
            "481",
            "{}",
            String::from_utf8_lossy(&request)
        );
        assert!(events.is_empty());
    }
    assert_eq!(server.len(), 1, "the dialog is untouched");
}

#[test]
fn remote_bye_and_cancel_end_a_pending_reinvite_with_487() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    let offer = "v=0\r\no=alice 1 2 IN IP4 192.0.2.7\r\n";
    feed(
        &mut server,
        t0,
        &msg("INVITE", 2, "z9hG4bKre1", Some(&tag), &[], offer),
    );
    drain(&mut server);
    feed(
        &mut server,
        t0,
        &msg("CANCEL", 2, "z9hG4bKre1", Some(&tag), &[], ""),
    );
    let sent = drain(&mut server).0;
    assert_eq!(
        sent.iter().map(|m| status(m)).collect::<Vec<_>>(),
        ["200", "487"]
    );
    assert_eq!(header(&sent[1], "CSeq"), "2 INVITE");
    assert_eq!(
        server.answer_reoffer(&c1(), ANSWER, t0),
        Err(CallError::NoReoffer)
    );

    feed(
        &mut server,
        t0,
        &msg("INVITE", 3, "z9hG4bKre3", Some(&tag), &[], offer),
    );
    drain(&mut server);
    feed(
        &mut server,
        t0,
        &msg("BYE", 4, "z9hG4bKbye", Some(&tag), &[], ""),
    );
    let (sent, events, next) = drain(&mut server);
    assert_eq!(
        sent.iter().map(|m| status(m)).collect::<Vec<_>>(),
        ["200", "487"]
    );
    assert_eq!(header(&sent[1], "CSeq"), "3 INVITE");
    let reason = EndReason::RemoteBye;
    assert_eq!(
        events,
        [Event::CallEnded {
            call_id: c1(),
            reason
        }]
    );
    assert_eq!((server.len(), next), (0, None));
}
