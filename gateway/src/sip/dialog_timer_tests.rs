//! RFC 4028 session timers stepped in time: negotiation, 422, refreshes by
//! re-INVITE and UPDATE, our own refreshing UPDATE, BYE on expiry.

use std::time::{Duration, Instant};

use super::dialog_tests::{c1, established, header, msg, reply_to, step_until, OFFER};
use super::{drain, feed, status};
use crate::sip::{Config, EndReason, Event, Server};

const SUPPORTED: &str = "Supported: timer";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn requested_session_expires_is_answered_with_require_timer() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (_, ok) = established(&mut server, t0, &[SUPPORTED, "x: 1800;refresher=uac"]);
    assert_eq!(header(&ok, "Session-Expires"), "1800;refresher=uac");
    assert_eq!(header(&ok, "Require"), "timer");
    assert_eq!(header(&ok, "Supported"), "timer");
}

#[test]
fn supported_timer_without_request_gets_the_default_or_their_min_se() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (_, ok) = established(&mut server, t0, &[SUPPORTED]);
    assert_eq!(header(&ok, "Session-Expires"), "1800;refresher=uac");
    let mut server = Server::new(Config::default());
    let (_, ok) = established(&mut server, t0, &[SUPPORTED, "Min-SE: 3600"]);
    assert_eq!(header(&ok, "Session-Expires"), "3600;refresher=uac");
}

#[test]
fn no_timer_without_support() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (_, ok) = established(&mut server, t0, &[]);
    assert!(
        !ok.contains("Session-Expires") && !ok.contains("Require"),
        "{ok}"
    );
    // A proxy's Session-Expires for a caller without support: we would have
    // to refresh, which needs UPDATE; without it, no timer.
    let mut server = Server::new(Config::default());
    let (_, ok) = established(&mut server, t0, &["Session-Expires: 600"]);
    assert!(!ok.contains("Session-Expires"), "{ok}");
    let mut server = Server::new(Config::default());
    let allow = "Allow: INVITE, ACK, BYE, CANCEL, UPDATE";
    let (_, ok) = established(&mut server, t0, &["Session-Expires: 60", allow]);
    assert_eq!(
        header(&ok, "Session-Expires"),
        "90;refresher=uas",
        "raised to Min-SE"
    );
    assert!(!ok.contains("Require:"), "{ok}");
}

#[test]
fn small_or_invalid_session_expires_is_refused() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let invite = msg(
        "INVITE",
        1,
        "z9hG4bK1",
        None,
        &[SUPPORTED, "Session-Expires: 60"],
        "",
    );
    feed(&mut server, t0, &invite);
    let (sent, events, _) = drain(&mut server);
    assert_eq!(status(&sent[0]), "422");
    assert_eq!(header(&sent[0], "Min-SE"), "90");
    assert!(events.is_empty() && server.is_empty());
    let invite = msg(
        "INVITE",
        1,
        "z9hG4bK2",
        None,
        &["Session-Expires: soon"],
        "",
    );
    feed(&mut server, t0, &invite);
    assert_eq!(status(&drain(&mut server).0[0]), "400");
    // In a dialog too: an UPDATE asking for less than Min-SE gets 422.
    let (tag, _) = established(&mut server, t0, &[SUPPORTED]);
    let update = msg(
        "UPDATE",
        2,
        "z9hG4bKu",
        Some(&tag),
        &[SUPPORTED, "Session-Expires: 30"],
        "",
    );
    feed(&mut server, t0, &update);
    assert_eq!(status(&drain(&mut server).0[0]), "422");
}

#[test]
fn unrefreshed_session_ends_with_bye() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    established(&mut server, t0, &[SUPPORTED, "Session-Expires: 90"]);
    let next = drain(&mut server).2;
    // BYE at expiry minus min(32 s, 90/3 s) = 60 s.
    assert_eq!(next, Some(t0 + secs(60)));
    let (sent, events, _) = step_until(&mut server, next, t0 + secs(60));
    assert!(events.is_empty());
    let bye = &sent[0].1;
    assert!(bye.starts_with("BYE "), "{bye}");
    assert_eq!(header(bye, "CSeq"), "1 BYE");
    feed(&mut server, t0 + secs(61), &reply_to(bye, 200));
    let reason = EndReason::SessionExpired;
    assert_eq!(
        drain(&mut server).1,
        [Event::CallEnded {
            call_id: c1(),
            reason
        }]
    );
    assert!(server.is_empty());
}

#[test]
fn update_and_reinvite_refresh_the_session() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let (tag, _) = established(&mut server, t0, &[SUPPORTED, "Session-Expires: 90"]);
    let update = msg("UPDATE", 2, "z9hG4bKu1", Some(&tag), &[SUPPORTED], "");
    feed(&mut server, t0 + secs(50), &update);
    let (sent, _, next) = drain(&mut server);
    assert_eq!(status(&sent[0]), "200");
    assert_eq!(header(&sent[0], "Session-Expires"), "90;refresher=uac");
    assert_eq!(next, Some(t0 + secs(110)));
    // A re-INVITE with the same offer, answered by the core, refreshes too
    // (and may change the interval).
    let reinvite = msg(
        "INVITE",
        3,
        "z9hG4bKr1",
        Some(&tag),
        &[SUPPORTED, "x: 120"],
        OFFER,
    );
    feed(&mut server, t0 + secs(100), &reinvite);
    let sent = drain(&mut server).0;
    assert_eq!(status(&sent[1]), "200");
    assert_eq!(header(&sent[1], "Session-Expires"), "120;refresher=uac");
    let ack = msg("ACK", 3, "z9hG4bKa3", Some(&tag), &[], "");
    feed(&mut server, t0 + secs(100), &ack);
    assert_eq!(drain(&mut server).2, Some(t0 + secs(100 + 120 - 32)));
}

#[test]
fn we_refresh_with_update_when_asked_to() {
    let mut server = Server::new(Config::default());
    let t0 = Instant::now();
    let headers = [
        SUPPORTED,
        "Session-Expires: 120;refresher=uas",
        "Allow: INVITE, ACK, BYE, CANCEL, UPDATE",
    ];
    let (_, ok) = established(&mut server, t0, &headers);
    assert_eq!(header(&ok, "Session-Expires"), "120;refresher=uas");
    let next = drain(&mut server).2;
    assert_eq!(next, Some(t0 + secs(60)), "refresh at half the interval");
    let (sent, _, _) = step_until(&mut server, next, t0 + secs(60));
    let update = &sent[0].1;
    assert!(
        update.starts_with("UPDATE sip:alice@192.0.2.7:5062 SIP/2.0"),
        "{update}"
    );
    assert_eq!(header(update, "Session-Expires"), "120;refresher=uac");
    assert_eq!(header(update, "CSeq"), "1 UPDATE");
    feed(&mut server, t0 + secs(61), &reply_to(update, 200));
    let (_, events, next) = drain(&mut server);
    assert!(events.is_empty());
    let before = t0 + secs(121) - Duration::from_millis(1);
    let (sent, _, next) = step_until(&mut server, next, before);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(next, Some(t0 + secs(121)), "refreshed at 61 s");
    // The next refresh finds the dialog gone at the peer: BYE.
    let (sent, _, _) = step_until(&mut server, next, t0 + secs(121));
    let update = &sent[0].1;
    assert_eq!(header(update, "CSeq"), "2 UPDATE");
    feed(&mut server, t0 + secs(122), &reply_to(update, 481));
    let bye = drain(&mut server).0.remove(0);
    assert_eq!(header(&bye, "CSeq"), "3 BYE");
    feed(&mut server, t0 + secs(122), &reply_to(&bye, 200));
    let reason = EndReason::SessionExpired;
    assert_eq!(
        drain(&mut server).1,
        [Event::CallEnded {
            call_id: c1(),
            reason
        }]
    );
}
