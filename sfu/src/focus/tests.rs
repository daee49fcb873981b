//! The focus core stepped by hand: conference requests, room lifecycle,
//! roles, and the routing of recording, dial-out and mute requests to
//! stand-in pool members.

use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use proto::colibri::ColibriStats;
use proto::jibri::{BusyStatus, Health, JibriIq, JibriStatus, RecordingStatus, Status};
use xmpp_parsers::muc::user::{Affiliation, Role};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, IncomingIq, IqError, IqKind, Occupant, RoomLeftReason};

use super::*;

mod e2ee;
mod tokens;

const ROOM: &str = "r1@conference.meet.test";
const RECORDERS: &str = "recorders@internal.meet.test";
const GATEWAYS: &str = "gateways@internal.meet.test";

fn focus() -> Focus {
    focus_with(false)
}

fn focus_with(media: bool) -> Focus {
    let mut f = Focus::new(settings(media));
    let joins = actions(&mut f);
    assert_eq!(joins.len(), 2, "joins both breweries: {joins:?}");
    f
}

fn settings(media: bool) -> FocusSettings {
    FocusSettings {
        muc_service: "conference.meet.test".into(),
        nick: "focus".into(),
        empty_room_timeout: Duration::from_secs(30),
        recorders: Some(BareJid::new(RECORDERS).unwrap()),
        gateways: Some(BareJid::new(GATEWAYS).unwrap()),
        trusted_domains: vec!["auth.meet.test".into(), "recorder.meet.test".into()],
        auto_owner: true,
        seed: 42,
        media,
        focus_jid: Some("focus@auth.meet.test/focus".into()),
        channel: Some(("ws://127.0.0.1:8080".into(), "sfu-1".into())),
        bridges: None,
        capacity: 100,
    }
}

fn room() -> BareJid {
    BareJid::new(ROOM).unwrap()
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

fn occupant(
    room: &str,
    nick: &str,
    real: &str,
    aff: Affiliation,
    payloads: Vec<Element>,
) -> Occupant {
    Occupant {
        occupant_jid: FullJid::new(&format!("{room}/{nick}")).unwrap(),
        nick: nick.into(),
        real_jid: Some(FullJid::new(real).unwrap()),
        affiliation: aff,
        role: Role::Participant,
        payloads,
        status: None,
    }
}

fn guest(nick: &str, aff: Affiliation) -> Occupant {
    occupant(ROOM, nick, &format!("{nick}@meet.test/x"), aff, vec![])
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

fn conference(f: &mut Focus, t: Instant) {
    f.handle_event(
        req(
            "guest@meet.test/a",
            &format!("<conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}'/>"),
        ),
        t,
    );
    actions(f);
    f.handle_event(
        Event::RoomJoined {
            room: room(),
            me: guest("focus", Affiliation::Owner),
        },
        t,
    );
    actions(f);
}

/// A room with `alice` (moderator) and `bob` (guest).
fn meeting(f: &mut Focus, t: Instant) {
    conference(f, t);
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: guest("alice", Affiliation::Owner),
        },
        t,
    );
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: guest("bob", Affiliation::None),
        },
        t,
    );
    assert!(actions(f).is_empty());
}

fn recorder(nick: &str, busy: BusyStatus, health: Health) -> Event {
    let status = JibriStatus::new(busy, health);
    Event::OccupantJoined {
        room: BareJid::new(RECORDERS).unwrap(),
        occupant: occupant(
            RECORDERS,
            nick,
            &format!("{nick}@auth.meet.test/r"),
            Affiliation::None,
            vec![status.into()],
        ),
    }
}

fn gateway(nick: &str, participants: u64, shutting_down: bool) -> Event {
    let mut stats = ColibriStats::new();
    stats.set_participants(participants);
    stats.set_graceful_shutdown(shutting_down);
    stats.set_supports_sip(true);
    Event::OccupantJoined {
        room: BareJid::new(GATEWAYS).unwrap(),
        occupant: occupant(
            GATEWAYS,
            nick,
            &format!("{nick}@auth.meet.test/g"),
            Affiliation::None,
            vec![stats.into()],
        ),
    }
}

const START_FILE: &str =
    "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file'/>";

#[test]
fn conference_request_joins_the_room_then_answers_ready() {
    let mut f = focus();
    let t = Instant::now();
    f.handle_event(
        req(
            "guest@meet.test/a",
            &format!("<conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}'/>"),
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
            me: guest("focus", Affiliation::Owner),
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
    assert_eq!((c.ready, c.room), (Some(true), Some(room())));
}

#[test]
fn a_phone_caller_is_a_person_but_never_elected_moderator() {
    let mut f = focus();
    let t = Instant::now();
    conference(&mut f, t);
    let features: Element = proto::presence::Features::new([proto::ns::feature::JIGASI]).into();
    let phone = occupant(
        ROOM,
        "phone",
        "gateway@auth.meet.test/call1",
        Affiliation::None,
        vec![features],
    );
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: phone,
        },
        t,
    );
    // Not elected, and the focus stays: the caller is someone to serve.
    let a = actions(&mut f);
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Iq { .. } | Action::Leave { .. })),
        "{a:?}"
    );
    f.handle_timeout(t + Duration::from_secs(600));
    let a = actions(&mut f);
    assert!(
        !a.iter().any(|x| matches!(x, Action::Leave { .. })),
        "the room with only a caller is not empty: {a:?}"
    );
    // The first web participant becomes moderator.
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: guest("ada", Affiliation::None),
        },
        t,
    );
    let a = actions(&mut f);
    assert!(
        matches!(&a[..], [Action::Iq { payload, .. }] if payload.children().next().unwrap().attr("jid") == Some("ada@meet.test")),
        "{a:?}"
    );
}

#[test]
fn first_participant_becomes_moderator_service_participants_never() {
    let mut f = focus();
    let t = Instant::now();
    conference(&mut f, t);
    // A recorder (jibri feature, trusted domain) joins first: not elected.
    let features: Element = proto::presence::Features::new([proto::ns::feature::JIBRI]).into();
    let rec = occupant(
        ROOM,
        "rec",
        "rec1@recorder.meet.test/r",
        Affiliation::None,
        vec![features.clone()],
    );
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: rec,
        },
        t,
    );
    assert!(actions(&mut f).is_empty());
    // The same feature from an untrusted domain is just a participant.
    let fake = occupant(
        ROOM,
        "fake",
        "fake@meet.test/x",
        Affiliation::None,
        vec![features],
    );
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: fake,
        },
        t,
    );
    let a = actions(&mut f);
    let [Action::Iq { to, payload, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(to.to_string(), ROOM);
    let item = payload.children().next().unwrap();
    assert_eq!(
        (item.attr("affiliation"), item.attr("jid")),
        (Some("owner"), Some("fake@meet.test"))
    );
    // Nobody else is elected while a moderator is present.
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: guest("carol", Affiliation::None),
        },
        t,
    );
    assert!(actions(&mut f).is_empty());
    // The moderator leaves: the next one is elected.
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: guest("fake", Affiliation::None),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    let a = actions(&mut f);
    assert!(
        matches!(&a[..], [Action::Iq { payload, .. }] if payload.children().next().unwrap().attr("jid") == Some("carol@meet.test")),
        "{a:?}"
    );
}

#[test]
fn leaves_when_the_last_participant_leaves_and_empty_rooms_time_out() {
    let mut f = focus();
    let t = Instant::now();
    meeting(&mut f, t);
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: guest("alice", Affiliation::Owner),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    actions(&mut f);
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: guest("bob", Affiliation::None),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    assert!(matches!(&actions(&mut f)[..], [Action::Leave { .. }]));

    conference(&mut f, t);
    assert_eq!(f.poll_timeout(), Some(t + Duration::from_secs(30)));
    f.handle_timeout(t + Duration::from_secs(30));
    assert!(matches!(&actions(&mut f)[..], [Action::Leave { .. }]));
}

#[test]
fn malformed_requests_get_the_right_condition() {
    let mut f = focus();
    let t = Instant::now();
    meeting(&mut f, t);
    let alice = format!("{ROOM}/alice");
    let cases = [
        ("<conference xmlns='http://jitsi.org/protocol/focus'/>", DefinedCondition::BadRequest),
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='r1@elsewhere.test'/>", DefinedCondition::BadRequest),
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='not a jid@@'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='dance'/>", DefinedCondition::FeatureNotImplemented),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='vinyl'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file' streamid='x'/>", DefinedCondition::BadRequest),
        ("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='r1@conference.meet.test/bob'>maybe</mute>", DefinedCondition::BadRequest),
        ("<dial xmlns='urn:xmpp:rayo:1' from='x'/>", DefinedCondition::BadRequest),
    ];
    for (xml, want) in cases {
        f.handle_event(req(&alice, xml), t);
        let a = actions(&mut f);
        assert_eq!(a.len(), 1, "{xml}");
        assert_eq!(refused(&a[0]), want, "{xml}");
    }
}

#[test]
fn guests_are_refused_moderator_requests() {
    let mut f = focus();
    let t = Instant::now();
    meeting(&mut f, t);
    f.handle_event(recorder("rec1", BusyStatus::Idle, Health::Healthy), t);
    let bob = format!("{ROOM}/bob");
    for xml in [
        START_FILE.to_owned(),
        format!("<dial xmlns='urn:xmpp:rayo:1' to='+15551234'><header name='JvbRoomName' value='{ROOM}'/></dial>"),
        format!("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='{ROOM}/alice'>true</mute>"),
    ] {
        f.handle_event(req(&bob, &xml), t);
        assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::Forbidden, "{xml}");
    }
    // Not from a hosted room at all.
    f.handle_event(req("guest@meet.test/a", START_FILE), t);
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::Forbidden);
    // A guest may mute and unmute itself (lifting a moderator's mute); the
    // request is not echoed back to it.
    for (text, muted) in [("true", true), ("false", false)] {
        f.handle_event(
            req(
                &bob,
                &format!("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='{bob}'>{text}</mute>"),
            ),
            t,
        );
        let a = actions(&mut f);
        assert!(
            matches!(
                &a[..],
                [
                    Action::Reply {
                        result: Ok(None),
                        ..
                    },
                    Action::ForceMute { muted: m, .. },
                ] if *m == muted
            ),
            "{a:?}"
        );
    }
}

#[test]
fn recording_is_routed_retried_and_published() {
    let mut f = focus();
    let t = Instant::now();
    meeting(&mut f, t);
    let alice = format!("{ROOM}/alice");
    // No recorder at all.
    f.handle_event(req(&alice, START_FILE), t);
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::ServiceUnavailable
    );
    // Only busy or unhealthy ones.
    f.handle_event(recorder("rec1", BusyStatus::Busy, Health::Healthy), t);
    f.handle_event(recorder("rec2", BusyStatus::Idle, Health::Unhealthy), t);
    f.handle_event(req(&alice, START_FILE), t);
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::ResourceConstraint
    );
    // Two idle ones: the start goes to one, answered pending with a session id.
    f.handle_event(recorder("rec3", BusyStatus::Idle, Health::Healthy), t);
    f.handle_event(recorder("rec4", BusyStatus::Idle, Health::Healthy), t);
    f.handle_event(req(&alice, START_FILE), t);
    let a = actions(&mut f);
    let [Action::Reply {
        result: Ok(Some(answer)),
        ..
    }, Action::Iq { to, payload, tag }, Action::Presence { payloads, .. }] = &a[..]
    else {
        panic!("{a:?}")
    };
    let answer = JibriIq::try_from(answer).unwrap();
    assert_eq!(answer.status, Some(Status::Pending));
    let session = answer.session_id.clone().unwrap();
    let start = JibriIq::try_from(payload).unwrap();
    assert_eq!(
        (start.room.clone(), start.session_id.clone()),
        (Some(room()), Some(session.clone()))
    );
    let first = to.resource().unwrap().to_string();
    assert!(first == "rec3" || first == "rec4");
    let published = payloads
        .iter()
        .find_map(|p| RecordingStatus::try_from(p).ok())
        .unwrap();
    assert_eq!(published.status, Status::Pending);
    // A second start while one is active.
    f.handle_event(req(&alice, START_FILE), t);
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::UnexpectedRequest
    );
    // The chosen recorder fails: the focus retries on the other one.
    f.handle_iq_result(*tag, Err(IqError::Timeout), t);
    let a = actions(&mut f);
    let [Action::Iq { to: to2, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_ne!(to2.resource().unwrap().as_str(), first);
    let second = to2.resource().unwrap().to_string();
    // The recorder reports "on": published.
    let report = format!(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' status='on' session_id='{session}'/>"
    );
    f.handle_event(req(&format!("{RECORDERS}/{second}"), &report), t);
    let a = actions(&mut f);
    let [Action::Reply {
        result: Ok(None), ..
    }, Action::Presence { payloads, .. }] = &a[..]
    else {
        panic!("{a:?}")
    };
    assert_eq!(
        payloads
            .iter()
            .find_map(|p| RecordingStatus::try_from(p).ok())
            .unwrap()
            .status,
        Status::On
    );
    // Stop: sent to the recorder; the answer ends it.
    f.handle_event(
        req(
            &alice,
            "<jibri xmlns='http://jitsi.org/protocol/jibri' action='stop'/>",
        ),
        t,
    );
    let a = actions(&mut f);
    let [Action::Reply { result: Ok(_), .. }, Action::Iq { payload, tag, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        JibriIq::try_from(payload).unwrap().session_id,
        Some(session)
    );
    f.handle_iq_result(*tag, Ok(None), t);
    let a = actions(&mut f);
    let [Action::Presence { payloads, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        payloads
            .iter()
            .find_map(|p| RecordingStatus::try_from(p).ok())
            .unwrap()
            .status,
        Status::Off
    );
}

#[test]
fn dial_goes_to_the_least_loaded_gateway_and_retries() {
    let mut f = focus();
    let t = Instant::now();
    meeting(&mut f, t);
    let alice = format!("{ROOM}/alice");
    let dial = format!("<dial xmlns='urn:xmpp:rayo:1' to='+15551234'><header name='JvbRoomName' value='{ROOM}'/></dial>");
    f.handle_event(req(&alice, &dial), t);
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::ServiceUnavailable
    );
    f.handle_event(gateway("gw1", 12, false), t);
    f.handle_event(gateway("gw2", 3, false), t);
    f.handle_event(gateway("gw3", 0, true), t);
    // The room header must name this room.
    let other = "<dial xmlns='urn:xmpp:rayo:1' to='+1'><header name='JvbRoomName' value='x@conference.meet.test'/></dial>";
    f.handle_event(req(&alice, other), t);
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::Forbidden);
    f.handle_event(req(&alice, &dial), t);
    let a = actions(&mut f);
    let [Action::Iq { to, tag, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        to.resource().unwrap().as_str(),
        "gw2",
        "fewest participants, not shutting down"
    );
    let busy = xmpp_session::core::stanza_error(DefinedCondition::InternalServerError, "");
    f.handle_iq_result(*tag, Err(IqError::Error(Box::new(busy))), t);
    let a = actions(&mut f);
    let [Action::Iq { to, tag, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(to.resource().unwrap().as_str(), "gw1");
    let reference: Element = proto::rayo::Ref {
        uri: "xmpp:abcd1234@gw.meet.test".into(),
    }
    .into();
    f.handle_iq_result(*tag, Ok(Some(reference)), t);
    assert!(matches!(
        &actions(&mut f)[..],
        [Action::Reply {
            result: Ok(Some(_)),
            ..
        }]
    ));
}

#[test]
fn a_moderator_mute_is_forwarded_with_the_actor() {
    let mut f = focus();
    let t = Instant::now();
    meeting(&mut f, t);
    let alice = format!("{ROOM}/alice");
    f.handle_event(
        req(
            &alice,
            &format!("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='{ROOM}/bob'>true</mute>"),
        ),
        t,
    );
    let a = actions(&mut f);
    let [Action::Reply {
        result: Ok(None), ..
    }, Action::ForceMute {
        endpoint,
        audio: true,
        muted: true,
    }, Action::Iq { to, payload, .. }] = &a[..]
    else {
        panic!("{a:?}")
    };
    assert_eq!(
        endpoint,
        &format!("{ROOM}/bob"),
        "the media plane drops bob's audio"
    );
    assert_eq!(to.to_string(), format!("{ROOM}/bob"));
    let m = proto::mute::MuteIq::try_from(payload).unwrap();
    assert_eq!(
        (m.mute, m.actor.map(|a| a.to_string())),
        (true, Some(alice.clone()))
    );
    f.handle_event(
        req(
            &alice,
            &format!(
                "<mute xmlns='http://jitsi.org/jitmeet/audio' jid='{ROOM}/nobody'>true</mute>"
            ),
        ),
        t,
    );
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::ItemNotFound);
}

fn sdp_fixture(name: &str) -> String {
    let path = format!(
        "{}/../proto/tests/fixtures/sdp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn jingle_of(a: &Action) -> (Jid, proto::jingle::Jingle, u64) {
    match a {
        Action::Iq { to, payload, tag } => (
            to.clone(),
            proto::jingle::Jingle::try_from(payload).unwrap(),
            *tag,
        ),
        other => panic!("expected a Jingle IQ, got {other:?}"),
    }
}

/// Invites `nick` and answers the plane's offer; returns the session-initiate.
fn start_session(f: &mut Focus, nick: &str, t: Instant) -> proto::jingle::Jingle {
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: guest(nick, Affiliation::None),
        },
        t,
    );
    let a = actions(f);
    let create = a
        .iter()
        .find(|a| matches!(a, Action::CreateEndpoint { .. }))
        .expect("an endpoint is created");
    let Action::CreateEndpoint {
        conference,
        endpoint,
    } = create
    else {
        unreachable!()
    };
    assert_eq!(
        (conference.as_str(), endpoint.as_str()),
        (ROOM, format!("{ROOM}/{nick}").as_str())
    );
    f.handle_offer(
        &room(),
        nick,
        Ok(sdp_fixture("chromium-offer-audio-video.sdp")),
    );
    let a = actions(f);
    let Action::ExpectChannel {
        endpoint, token, ..
    } = &a[0]
    else {
        panic!("{a:?}")
    };
    assert_eq!(endpoint, &format!("{ROOM}/{nick}"));
    let (to, initiate, _) = jingle_of(&a[1]);
    assert_eq!(to.to_string(), format!("{ROOM}/{nick}"));
    // Every transport names the bridge channel, with this endpoint's token.
    for c in &initiate.contents {
        let ws = &c.transport.as_ref().unwrap().web_sockets;
        assert_eq!(ws.len(), 1);
        assert!(
            ws[0].starts_with("ws://127.0.0.1:8080/colibri-ws/sfu-1/"),
            "{ws:?}"
        );
        assert!(ws[0].ends_with(&format!("?pwd={token}")), "{ws:?}");
    }
    initiate
}

fn accept(f: &mut Focus, nick: &str, sid: &str, t: Instant) -> Vec<Action> {
    let answer = proto::sdp::Sdp::parse(&sdp_fixture("chromium-answer.sdp")).unwrap();
    let (contents, groups) =
        proto::sdp::sdp_to_jingle_as(&answer, proto::jingle::Role::Responder).unwrap();
    let mut j = proto::jingle::Jingle::new(proto::jingle::Action::SessionAccept, sid);
    j.contents = contents;
    j.groups = groups;
    let from = format!("{ROOM}/{nick}");
    f.handle_event(
        Event::IqRequest(IncomingIq {
            from: Some(Jid::new(&from).unwrap()),
            to: None,
            id: "j1".into(),
            kind: IqKind::Set,
            payload: j.into(),
        }),
        t,
    );
    actions(f)
}

#[test]
fn jingle_sessions_exchange_offers_answers_and_sources() {
    let mut f = focus_with(true);
    let t = Instant::now();
    conference(&mut f, t);
    let alice = start_session(&mut f, "alice", t);
    assert_eq!(alice.action, proto::jingle::Action::SessionInitiate);
    assert_eq!(
        alice.initiator.as_deref(),
        Some("focus@auth.meet.test/focus")
    );
    assert_eq!(
        alice.contents.len(),
        2,
        "the plane's m-lines became contents"
    );
    assert!(alice.bundle().is_some());
    assert_eq!(
        alice.json_message.as_ref().unwrap().owners.len(),
        0,
        "nobody else publishes yet"
    );

    // Alice accepts: her answer goes to the plane, nobody else to tell yet.
    let a = accept(&mut f, "alice", &alice.sid, t);
    assert!(
        matches!(
            &a[0],
            Action::Reply {
                result: Ok(None),
                ..
            }
        ),
        "{a:?}"
    );
    let Action::AcceptAnswer { endpoint, sdp } = &a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(endpoint, &format!("{ROOM}/alice"));
    assert!(
        sdp.contains("a=setup:active") || sdp.contains("a=setup:passive"),
        "{sdp}"
    );
    assert_eq!(a.len(), 2, "{a:?}");

    // Bob's session-initiate carries Alice's sources.
    let bob = start_session(&mut f, "bob", t);
    let owners = &bob.json_message.as_ref().unwrap().owners;
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].owner, "alice");
    assert!(
        !owners[0].audio.is_empty() && !owners[0].video.is_empty(),
        "{owners:?}"
    );

    // Bob accepts: Alice gets a source-add with Bob's sources.
    let a = accept(&mut f, "bob", &bob.sid, t);
    let (to, add, _) = jingle_of(&a[2]);
    assert_eq!(to.to_string(), format!("{ROOM}/alice"));
    assert_eq!(
        (add.action, add.sid.as_str()),
        (proto::jingle::Action::SourceAdd, alice.sid.as_str())
    );
    let owners: Vec<_> = add
        .contents
        .iter()
        .flat_map(|c| c.description.iter().flat_map(|d| d.sources.iter()))
        .map(|s| s.owner.clone().unwrap())
        .collect();
    assert!(
        !owners.is_empty() && owners.iter().all(|o| o == "bob"),
        "{owners:?}"
    );

    // A Jingle request for an unknown session, and a garbage one.
    let bad = "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='nope'/>";
    f.handle_event(req(&format!("{ROOM}/bob"), bad), t);
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::ItemNotFound);
    f.handle_event(
        req(
            &format!("{ROOM}/bob"),
            "<jingle xmlns='urn:xmpp:jingle:1' action='juggle' sid='x'/>",
        ),
        t,
    );
    assert_eq!(
        refused(&actions(&mut f)[0]),
        DefinedCondition::FeatureNotImplemented
    );

    // Bob is kicked: his endpoint goes, Alice gets source-remove, Bob a
    // session-terminate.
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: guest("bob", Affiliation::None),
            reason: RoomLeftReason::Kicked,
        },
        t,
    );
    let a = actions(&mut f);
    assert!(
        matches!(&a[0], Action::RemoveEndpoint { endpoint } if endpoint == &format!("{ROOM}/bob")),
        "{a:?}"
    );
    let (to, remove, _) = jingle_of(&a[1]);
    assert_eq!(
        (to.to_string(), remove.action),
        (format!("{ROOM}/alice"), proto::jingle::Action::SourceRemove)
    );
    let (to, terminate, _) = jingle_of(&a[2]);
    assert_eq!(
        (to.to_string(), terminate.action),
        (
            "bob@meet.test/x".to_owned(),
            proto::jingle::Action::SessionTerminate
        ),
        "a kicked participant is reached at its real JID"
    );
}

#[test]
fn load_is_published_in_the_bridges_brewery() {
    let bridges = BareJid::new("bridges@internal.meet.test").unwrap();
    let mut f = Focus::new(FocusSettings {
        muc_service: "conference.meet.test".into(),
        nick: "focus".into(),
        empty_room_timeout: Duration::from_secs(30),
        recorders: None,
        gateways: None,
        trusted_domains: vec![],
        auto_owner: false,
        seed: 1,
        media: false,
        focus_jid: None,
        channel: None,
        bridges: Some(bridges.clone()),
        capacity: 4,
    });
    let a = actions(&mut f);
    let [Action::Join {
        room: joined,
        payloads,
        ..
    }] = &a[..]
    else {
        panic!("{a:?}")
    };
    assert_eq!(joined, &bridges);
    let stats = proto::colibri::ColibriStats::try_from(&payloads[0]).unwrap();
    assert_eq!(stats.stress_level().unwrap(), Some(0.0));
    let t = Instant::now();
    conference(&mut f, t);
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant: guest("alice", Affiliation::None),
        },
        t,
    );
    let a = actions(&mut f);
    let stats = a
        .iter()
        .find_map(|a| match a {
            Action::Presence { room: r, payloads } if r == &bridges => {
                proto::colibri::ColibriStats::try_from(&payloads[0]).ok()
            }
            _ => None,
        })
        .expect("load republished");
    assert_eq!(
        (stats.conferences().unwrap(), stats.participants().unwrap()),
        (Some(1), Some(1))
    );
    assert_eq!(stats.stress_level().unwrap(), Some(0.25));
}
