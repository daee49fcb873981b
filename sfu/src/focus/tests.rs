//! The focus core stepped by hand: conference requests, room lifecycle and
//! the error conditions malformed requests get.

use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::muc::user::{Affiliation, Role};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, IncomingIq, IqKind, Occupant, RoomLeftReason};

use super::*;

fn focus() -> Focus {
    Focus::new(FocusSettings {
        muc_service: "conference.meet.test".into(),
        nick: "focus".into(),
        empty_room_timeout: Duration::from_secs(30),
    })
}

fn room() -> BareJid {
    BareJid::new("r1@conference.meet.test").unwrap()
}

fn req(from: &str, xml: &str) -> Event {
    Event::IqRequest(IncomingIq {
        from: Some(Jid::new(from).unwrap()),
        to: None,
        id: "q1".into(),
        kind: IqKind::Set,
        payload: proto::parse_xml(xml).unwrap(),
    })
}

fn occupant(nick: &str) -> Occupant {
    Occupant {
        occupant_jid: FullJid::new(&format!("r1@conference.meet.test/{nick}")).unwrap(),
        nick: nick.into(),
        real_jid: None,
        affiliation: Affiliation::None,
        role: Role::Participant,
        payloads: vec![],
        status: None,
    }
}

fn actions(f: &mut Focus) -> Vec<Action> {
    std::iter::from_fn(|| f.poll_action()).collect()
}

fn refused(a: &Action) -> DefinedCondition {
    match a {
        Action::Reply { result: Err(e), .. } => e.defined_condition.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn joined(f: &mut Focus, t: Instant) {
    f.handle_event(
        req(
            "guest@meet.test/a",
            "<conference xmlns='http://jitsi.org/protocol/focus' room='r1@conference.meet.test'/>",
        ),
        t,
    );
    actions(f);
    f.handle_event(
        Event::RoomJoined {
            room: room(),
            me: occupant("focus"),
        },
        t,
    );
    actions(f);
}

#[test]
fn conference_request_joins_the_room_then_answers_ready() {
    let mut f = focus();
    let t = Instant::now();
    f.handle_event(
        req(
            "guest@meet.test/a",
            "<conference xmlns='http://jitsi.org/protocol/focus' room='r1@conference.meet.test'/>",
        ),
        t,
    );
    let a = actions(&mut f);
    assert!(
        matches!(&a[..], [Action::Join { room: r, nick, .. }] if *r == room() && nick == "focus"),
        "{a:?}"
    );
    f.handle_event(
        Event::RoomJoined {
            room: room(),
            me: occupant("focus"),
        },
        t,
    );
    let a = actions(&mut f);
    let [Action::Reply {
        result: Ok(Some(el)),
        ..
    }] = &a[..]
    else {
        panic!("{a:?}")
    };
    let c = proto::focus::ConferenceIq::try_from(el).unwrap();
    assert_eq!(c.ready, Some(true));
    assert_eq!(c.room, Some(room()));
    // A second request is answered at once.
    f.handle_event(
        req(
            "guest@meet.test/b",
            "<conference xmlns='http://jitsi.org/protocol/focus' room='r1@conference.meet.test'/>",
        ),
        t,
    );
    assert!(matches!(
        &actions(&mut f)[..],
        [Action::Reply {
            result: Ok(Some(_)),
            ..
        }]
    ));
}

#[test]
fn leaves_when_the_last_participant_leaves() {
    let mut f = focus();
    let t = Instant::now();
    joined(&mut f, t);
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: occupant("a"),
        },
        t,
    );
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: occupant("b"),
        },
        t,
    );
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: occupant("a"),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    assert!(actions(&mut f).is_empty());
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: occupant("b"),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    assert!(matches!(&actions(&mut f)[..], [Action::Leave { .. }]));
    assert_eq!(f.rooms().count(), 0);
}

#[test]
fn leaves_a_room_nobody_entered() {
    let mut f = focus();
    let t = Instant::now();
    joined(&mut f, t);
    assert_eq!(f.poll_timeout(), Some(t + Duration::from_secs(30)));
    f.handle_timeout(t + Duration::from_secs(29));
    assert!(actions(&mut f).is_empty());
    f.handle_timeout(t + Duration::from_secs(30));
    assert!(matches!(&actions(&mut f)[..], [Action::Leave { .. }]));
}

#[test]
fn malformed_requests_get_the_right_condition() {
    let mut f = focus();
    let t = Instant::now();
    joined(&mut f, t);
    let cases = [
        // missing attribute
        ("<conference xmlns='http://jitsi.org/protocol/focus'/>", DefinedCondition::BadRequest),
        // wrong MUC service
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='r1@elsewhere.test'/>", DefinedCondition::BadRequest),
        // invalid attribute
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='not a jid@@'/>", DefinedCondition::BadRequest),
        // unknown action
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='dance'/>", DefinedCondition::FeatureNotImplemented),
        // bad attribute value
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='vinyl'/>", DefinedCondition::BadRequest),
        // garbage inside a mute request
        ("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='r1@conference.meet.test/a'>maybe</mute>", DefinedCondition::BadRequest),
        ("<dial xmlns='urn:xmpp:rayo:1' from='x'/>", DefinedCondition::BadRequest),
    ];
    for (xml, want) in cases {
        f.handle_event(req("r1@conference.meet.test/a", xml), t);
        let a = actions(&mut f);
        assert_eq!(a.len(), 1, "{xml}");
        assert_eq!(refused(&a[0]), want, "{xml}");
    }
}

#[test]
fn well_formed_requests_for_absent_services() {
    let mut f = focus();
    let t = Instant::now();
    joined(&mut f, t);
    // From inside the room: no recorder pool yet.
    f.handle_event(
        req(
            "r1@conference.meet.test/a",
            "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file'/>",
        ),
        t,
    );
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::ServiceUnavailable
    );
    // From outside any hosted room: forbidden.
    f.handle_event(
        req(
            "guest@meet.test/a",
            "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file'/>",
        ),
        t,
    );
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::Forbidden);
}

#[test]
fn failed_join_answers_waiting_requests() {
    let mut f = focus();
    let t = Instant::now();
    f.handle_event(
        req(
            "guest@meet.test/a",
            "<conference xmlns='http://jitsi.org/protocol/focus' room='r1@conference.meet.test'/>",
        ),
        t,
    );
    actions(&mut f);
    let error = xmpp_session::core::stanza_error(DefinedCondition::Forbidden, "");
    f.handle_event(
        Event::RoomJoinFailed {
            room: room(),
            error,
        },
        t,
    );
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::ServiceUnavailable
    );
    let _ = Element::bare("x", "y");
}
