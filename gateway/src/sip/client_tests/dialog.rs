//! Calls once answered: BYE both ways, DTMF INFO, re-INVITE, OPTIONS, other
//! methods, and a second fork answering.

use super::*;

#[test]
fn local_hangup_sends_bye_in_the_dialog() {
    let mut test = Test::new(config());
    let (call, invite, ack) = test.answered();
    assert_eq!(
        test.client.cancel(&call, test.now),
        Err(ClientError::AlreadyAnswered)
    );
    test.client.hangup(&call, test.now).expect("answered call");
    let (sent, events, _) = test.drain();
    assert!(events.is_empty());
    assert_eq!(sent[0].destination, addr("192.0.2.60:5070"));
    let bye = parsed(&sent[0]);
    assert_eq!(method(&bye), "BYE");
    assert_eq!(request_uri(&bye), "sip:bob@198.51.100.9:5090;transport=udp");
    assert_eq!(
        bye.lines("route").collect::<Vec<_>>(),
        ack.lines("route").collect::<Vec<_>>()
    );
    assert_eq!(bye.cseq(), (2, "BYE"));
    assert_eq!(bye.tag("to"), Some("callee1"));
    assert_eq!(bye.one("from"), invite.one("from"));
    // Timer E: T1, then doubling.
    let (resent, _, _) = test.tick();
    assert_eq!((resent.len(), test.elapsed_ms()), (1, 500));
    let (resent, _, _) = test.tick();
    assert_eq!((resent.len(), test.elapsed_ms()), (1, 1500));
    let (_, events, next) = test.feed(&reply(&bye, 200, "", &[], ""));
    assert_eq!(
        events,
        [ClientEvent::Ended {
            call_id: call.clone(),
            reason: ClientEndReason::LocalHangup
        }]
    );
    assert_eq!(next, None);
    assert!(!test.client.owns(call.as_str()));
}

#[test]
fn unanswered_bye_still_ends_the_call_at_timer_f() {
    let mut test = Test::new(config());
    let (call, _, _) = test.answered();
    test.client.hangup(&call, test.now).expect("answered call");
    let mut events = Vec::new();
    while events.is_empty() {
        events = test.tick().1;
    }
    assert_eq!(test.elapsed_ms(), 32_000);
    assert_eq!(
        events,
        [ClientEvent::Ended {
            call_id: call,
            reason: ClientEndReason::LocalHangup
        }]
    );
}

#[test]
fn remote_bye_is_answered_and_ends_the_call() {
    let mut test = Test::new(config());
    let (call, invite, _) = test.answered();
    let stranger = callee_request(&invite, "BYE", 1, &[], "");
    let wrong_tag = String::from_utf8(stranger)
        .expect("UTF-8")
        .replace("tag=callee1", "tag=someone-else");
    let (sent, events, _) = test.feed(wrong_tag.as_bytes());
    assert!(events.is_empty());
    assert_eq!(status(&sent[0]), 481);
    let bye = callee_request(&invite, "BYE", 1, &[], "");
    let (sent, events, _) = test.feed_from("198.51.100.8:6000", &bye);
    assert_eq!(
        events,
        [ClientEvent::Ended {
            call_id: call.clone(),
            reason: ClientEndReason::RemoteBye
        }]
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].destination, addr("198.51.100.8:6000"));
    let ok = parsed(&sent[0]);
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.cseq(), (1, "BYE"));
    assert!(ok
        .one("via")
        .is_some_and(|v| v.contains("rport=6000") && v.contains("received=198.51.100.8")));
    assert_eq!(ok.tag("to"), invite.tag("from"));
    // Retransmitted BYE: the same 200, no second event.
    let (again, events, _) = test.feed_from("198.51.100.8:6000", &bye);
    assert!(events.is_empty());
    assert_eq!(again, sent);
    assert_eq!(test.client.hangup(&call, test.now), Err(ClientError::Ended));
    test.tick();
    assert!(test.client.is_empty());
}

#[test]
fn info_dtmf_gives_digits() {
    let mut test = Test::new(config());
    let (call, invite, _) = test.answered();
    let cases: [(u32, &str, &str, u16, Option<char>); 4] = [
        (
            1,
            "application/dtmf-relay",
            "Signal=5\r\nDuration=160\r\n",
            200,
            Some('5'),
        ),
        (2, "application/dtmf", "#", 200, Some('#')),
        (3, "text/plain", "hello", 415, None),
        (4, "application/dtmf-relay", "Signal=11\r\n", 200, Some('#')),
    ];
    for (cseq, content_type, body, want_status, digit) in cases {
        let ct = format!("Content-Type: {content_type}");
        let info = callee_request(&invite, "INFO", cseq, &[&ct], body);
        let (sent, events, _) = test.feed(&info);
        assert_eq!(status(&sent[0]), want_status, "{content_type}");
        let want: Vec<ClientEvent> = digit
            .map(|digit| ClientEvent::Dtmf {
                call_id: call.clone(),
                digit,
            })
            .into_iter()
            .collect();
        assert_eq!(events, want);
    }
    // A stale CSeq is refused (RFC 3261 §12.2.2).
    let old = callee_request(&invite, "INFO", 2, &["Content-Type: application/dtmf"], "1");
    let (sent, events, _) = test.feed(&old);
    assert!(events.is_empty());
    assert_eq!(status(&sent[0]), 500);
}

#[test]
fn reinvite_gets_our_last_sdp_until_acked_and_other_methods() {
    let mut test = Test::new(config());
    let (call, invite, _) = test.answered();
    let hold = ANSWER.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendonly\r\n");
    let reinvite = callee_request(
        &invite,
        "INVITE",
        5,
        &["Content-Type: application/sdp"],
        &hold,
    );
    let (sent, events, _) = test.feed(&reinvite);
    assert_eq!(
        events,
        [ClientEvent::Reoffered {
            call_id: call.clone(),
            sdp: Some(hold.clone())
        }]
    );
    let ok = parsed(&sent[0]);
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.body, OFFER.as_bytes());
    assert_eq!(ok.one("content-type"), Some("application/sdp"));
    assert_eq!(ok.one("contact"), Some("<sip:gw@192.0.2.1:5060>"));
    // Retransmitted over UDP until the ACK.
    let (again, _, _) = test.tick();
    assert_eq!((again, test.elapsed_ms()), (sent.clone(), 500));
    let ack = callee_request(&invite, "ACK", 5, &[], "");
    let (sent, _, next) = test.feed(&ack);
    assert!(sent.is_empty());
    assert_eq!(next, None);
    let options = callee_request(&invite, "OPTIONS", 6, &[], "");
    assert_eq!(status(&test.feed(&options).0[0]), 200);
    let message = callee_request(&invite, "MESSAGE", 7, &[], "");
    let (sent, _, _) = test.feed(&message);
    assert_eq!(status(&sent[0]), 501);
    assert!(parsed(&sent[0])
        .one("allow")
        .is_some_and(|a| a.contains("INFO")));
}

#[test]
fn second_fork_answering_is_acked_and_ended() {
    let mut test = Test::new(config());
    let (call, invite, _) = test.answered();
    let other = reply(
        &invite,
        200,
        "fork2",
        &["Contact: <sip:carol@203.0.113.5>"],
        ANSWER,
    );
    let (sent, events, _) = test.feed(&other);
    assert!(events.is_empty());
    let methods: Vec<String> = sent.iter().map(|t| method(&parsed(t)).to_owned()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert!(sent
        .iter()
        .all(|t| t.destination == addr("203.0.113.5:5060")));
    assert!(sent.iter().all(|t| parsed(t).tag("to") == Some("fork2")));
    assert!(test.client.owns(call.as_str()));
}
