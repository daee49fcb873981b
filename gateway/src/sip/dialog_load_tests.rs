//! Capacity, graceful shutdown and a flood of INVITEs: the core stays bounded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::dialog_tests::{c1, established, msg, step_until, ANSWER};
use super::{drain, feed, status, to_tag, SRC};
use crate::sip::{CallId, Config, EndReason, Event, Input, Server, Transport};

/// `msg` on another Call-ID.
fn on_call(call_id: &str, method: &str, cseq: u32, branch: &str, tag: Option<&str>) -> Vec<u8> {
    String::from_utf8(msg(method, cseq, branch, tag, &[], ""))
        .expect("ascii")
        .replace("Call-ID: c1", &format!("Call-ID: {call_id}"))
        .into_bytes()
}

fn statuses(sent: &[String]) -> Vec<&str> {
    sent.iter().map(|m| status(m)).collect()
}

#[test]
fn max_calls_gives_stateless_503_with_retry_after() {
    let config = Config {
        max_calls: 2,
        ..Config::default()
    };
    let mut server = Server::new(config);
    let t0 = Instant::now();
    for call in ["a", "b"] {
        feed(&mut server, t0, &on_call(call, "INVITE", 1, call, None));
        assert_eq!(statuses(&drain(&mut server).0), ["100"]);
    }
    let third = on_call("c", "INVITE", 1, "z9hG4bKc", None);
    feed(&mut server, t0, &third);
    let (sent, events, _) = drain(&mut server);
    assert_eq!(statuses(&sent), ["503"]);
    assert!(sent[0].contains("Retry-After: 5\r\n"), "{}", sent[0]);
    assert!(events.is_empty());
    assert_eq!(server.len(), 2, "nothing kept for a refused call");
    // Its retransmission gets the very same response (same To-tag).
    feed(&mut server, t0, &third);
    assert_eq!(drain(&mut server).0, sent);
    // A rejected call waiting for its ACK does not count against max_calls.
    server
        .reject(&CallId::new("a"), 486, t0)
        .expect("proceeding");
    drain(&mut server);
    assert_eq!((server.len(), server.active_calls()), (2, 1));
    feed(
        &mut server,
        t0,
        &on_call("d", "INVITE", 1, "z9hG4bKd", None),
    );
    assert_eq!(statuses(&drain(&mut server).0), ["100"]);
}

#[test]
fn not_accepting_refuses_new_calls_and_keeps_existing_ones() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[]);
    server.set_accepting(false);
    assert!(!server.is_accepting());
    feed(
        &mut server,
        t0,
        &on_call("new", "INVITE", 1, "z9hG4bKn", None),
    );
    assert_eq!(statuses(&drain(&mut server).0), ["503"]);
    let dtmf = msg(
        "INFO",
        2,
        "z9hG4bKi",
        Some(&tag),
        &["Content-Type: application/dtmf"],
        "7",
    );
    feed(&mut server, t0, &dtmf);
    let (sent, events, _) = drain(&mut server);
    assert_eq!(statuses(&sent), ["200"]);
    assert_eq!(
        events,
        [Event::Dtmf {
            call_id: c1(),
            digit: '7'
        }]
    );
    server.set_accepting(true);
    feed(
        &mut server,
        t0,
        &on_call("later", "INVITE", 1, "z9hG4bKl", None),
    );
    assert_eq!(statuses(&drain(&mut server).0), ["100"]);
}

#[test]
fn rejected_transactions_go_after_timer_h_or_at_once_over_tcp() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    feed(
        &mut server,
        t0,
        &on_call("u", "INVITE", 1, "z9hG4bKu", None),
    );
    drain(&mut server);
    server
        .reject(&CallId::new("u"), 486, t0)
        .expect("proceeding");
    let (_, _, next) = drain(&mut server);
    let (sent, _, _) = step_until(&mut server, next, t0 + Duration::from_millis(31_999));
    assert!(sent.iter().all(|(_, m)| status(m) == "486"), "Timer G");
    assert_eq!(server.len(), 1);
    server.handle_input(Input::Timeout(t0 + Duration::from_secs(32)));
    assert_eq!(drain(&mut server).2, None);
    assert!(server.is_empty(), "Timer H");

    let source = SRC.parse().expect("literal address");
    let invite = on_call("t", "INVITE", 1, "z9hG4bKt", None);
    server.handle_input(Input::Receive {
        now: t0,
        transport: Transport::Tcp,
        source,
        data: &invite,
    });
    drain(&mut server);
    server
        .reject(&CallId::new("t"), 486, t0)
        .expect("proceeding");
    let (sent, _, next) = drain(&mut server);
    assert_eq!(statuses(&sent), ["486"]);
    assert!(server.is_empty() && next.is_none(), "nothing kept over TCP");
}

/// 200 INVITEs a second for 10 s on distinct Call-IDs, `max_calls` 50: the
/// application answers nine in ten (each call lasts 400 ms, then the caller
/// sends BYE) and rejects one in ten (its ACK is lost, so it stays for Timer
/// H). Exactly the INVITEs that find 50 calls up get 503; the core never holds
/// more than the calls up plus the rejected transactions in Timer H, and is
/// empty once those have passed.
#[test]
fn flood_of_2000_invites_stays_bounded() {
    let config = Config {
        max_calls: 50,
        ..Config::default()
    };
    let max_transactions = config.max_transactions;
    let mut server = Server::new(config);
    let wall = std::time::Instant::now();
    let t0 = Instant::now();
    let (call_time, timer_h) = (Duration::from_millis(400), Duration::from_secs(32));
    // Model: calls up (their BYE time), rejections waiting for Timer H.
    let mut up: VecDeque<(Instant, String, String)> = VecDeque::new();
    let mut rejected: VecDeque<Instant> = VecDeque::new();
    let (mut admitted, mut refused, mut most) = (0u32, 0u32, 0usize);
    let mut next = None;
    let advance = |server: &mut Server, next: &mut Option<Instant>, now: Instant| {
        let (sent, events, n) = step_until(server, *next, now);
        assert!(events.is_empty(), "{events:?}");
        assert!(sent.iter().all(|(_, m)| status(m) == "486"), "only Timer G");
        *next = n;
    };
    let hang_up = |server: &mut Server, now: Instant, (_, id, tag): (Instant, String, String)| {
        feed(
            server,
            now,
            &on_call(&id, "BYE", 2, &format!("z9hG4bKbye{id}"), Some(&tag)),
        );
        let (sent, events, _) = drain(server);
        assert_eq!(statuses(&sent), ["200"]);
        let reason = EndReason::RemoteBye;
        assert_eq!(
            events,
            [Event::CallEnded {
                call_id: CallId::new(id),
                reason
            }]
        );
    };
    for i in 0..2000u64 {
        let now = t0 + Duration::from_millis(5 * i);
        advance(&mut server, &mut next, now);
        while up.front().is_some_and(|(end, ..)| *end <= now) {
            let call = up.pop_front().expect("checked");
            hang_up(&mut server, now, call);
        }
        while rejected.front().is_some_and(|at| *at + timer_h <= now) {
            rejected.pop_front();
        }
        let id = format!("flood-{i}");
        feed(
            &mut server,
            now,
            &on_call(&id, "INVITE", 1, &format!("z9hG4bKf{i}"), None),
        );
        let (sent, events, _) = drain(&mut server);
        let full = up.len() >= 50 || up.len() + rejected.len() >= max_transactions;
        if full {
            assert_eq!(
                statuses(&sent),
                ["503"],
                "INVITE {i} with {} calls up",
                up.len()
            );
            assert!(events.is_empty());
            refused += 1;
        } else {
            assert_eq!(
                statuses(&sent),
                ["100"],
                "INVITE {i} with {} calls up",
                up.len()
            );
            assert!(matches!(events[..], [Event::IncomingCall { .. }]));
            admitted += 1;
            let call_id = CallId::new(id.as_str());
            if admitted % 10 == 0 {
                server.reject(&call_id, 486, now).expect("proceeding");
                rejected.push_back(now);
            } else {
                server.answer(&call_id, ANSWER, now).expect("proceeding");
                let tag = to_tag(&drain(&mut server).0[0]);
                feed(
                    &mut server,
                    now,
                    &on_call(&id, "ACK", 1, "z9hG4bKack", Some(&tag)),
                );
                up.push_back((now + call_time, id, tag));
            }
            let (_, events, _) = drain(&mut server);
            assert!(events.len() <= 1, "{events:?}");
        }
        next = drain(&mut server).2;
        assert_eq!(server.active_calls(), up.len());
        assert_eq!(server.len(), up.len() + rejected.len(), "calls held");
        most = most.max(server.len());
    }
    // The last calls end; Timer H lets the last rejections go.
    let last = t0 + Duration::from_secs(10);
    while let Some(call) = up.pop_front() {
        advance(&mut server, &mut next, call.0);
        hang_up(&mut server, call.0, call);
        next = drain(&mut server).2;
    }
    advance(&mut server, &mut next, last + timer_h);
    assert!(server.is_empty() && next.is_none(), "{} held", server.len());
    eprintln!(
        "flood: {admitted} admitted, {refused} refused with 503, at most {most} held, {:?}",
        wall.elapsed()
    );
    assert_eq!(admitted + refused, 2000);
    assert!(
        refused > 500 && admitted > 1000,
        "{admitted} admitted, {refused} refused"
    );
}
