//! Behaviour of the sans-IO core, stepped by hand with a fake clock.

use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::*;

const FOCUS_NS: &str = "http://jitsi.org/protocol/focus";

fn session() -> Session {
    let mut cfg = SessionConfig::default();
    cfg.iq_namespaces.insert(FOCUS_NS.into());
    cfg.features
        .insert("http://jitsi.org/protocol/jibri".into());
    Session::new(cfg)
}

fn me() -> FullJid {
    FullJid::new("focus@auth.meet.test/r1").unwrap()
}

fn drain(s: &mut Session) -> (Vec<Stanza>, Vec<Event>) {
    let mut sent = vec![];
    let mut events = vec![];
    while let Some(o) = s.poll_output() {
        match o {
            Output::Send(st) => sent.push(st),
            Output::Event(e) => events.push(e),
        }
    }
    (sent, events)
}

fn room() -> BareJid {
    BareJid::new("r1@conference.meet.test").unwrap()
}

fn muc_presence(from: &str, self_: bool, type_: xmpp_parsers::presence::Type) -> Presence {
    let mut x = Element::builder("x", xmpp_parsers::ns::MUC_USER)
        .append(
            Element::builder("item", xmpp_parsers::ns::MUC_USER)
                .attr(
                    minidom::rxml::NcName::try_from("affiliation").unwrap(),
                    "owner",
                )
                .attr(
                    minidom::rxml::NcName::try_from("role").unwrap(),
                    "moderator",
                )
                .build(),
        )
        .build();
    if self_ {
        x.append_child(
            Element::builder("status", xmpp_parsers::ns::MUC_USER)
                .attr(minidom::rxml::NcName::try_from("code").unwrap(), "110")
                .build(),
        );
    }
    let mut p = Presence::new(type_).with_from(Jid::new(from).unwrap());
    p.payloads.push(x);
    p
}

#[test]
fn joins_rooms_on_online_and_rejoins_after_reconnect() {
    let mut s = session();
    let t0 = Instant::now();
    s.join_room(
        room(),
        "focus".into(),
        vec![Element::bare("features", "jabber:client")],
    );
    // Offline: nothing sent yet.
    assert!(drain(&mut s).0.is_empty());

    s.handle_online(me(), t0);
    let (sent, _) = drain(&mut s);
    assert_eq!(sent.len(), 1);
    let Stanza::Presence(p) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        p.to.as_ref().unwrap().to_string(),
        "r1@conference.meet.test/focus"
    );
    assert!(p.payloads.iter().any(|e| e.is("x", xmpp_parsers::ns::MUC)));
    assert!(p.payloads.iter().any(|e| e.is("features", "jabber:client")));

    s.handle_stanza(
        Stanza::Presence(muc_presence(
            "r1@conference.meet.test/focus",
            true,
            Default::default(),
        )),
        t0,
    );
    let (_, ev) = drain(&mut s);
    assert!(matches!(&ev[..], [Event::RoomJoined { .. }]), "{ev:?}");
    assert!(s.is_joined(&room()));

    // Connection drops; after the next login the room is joined again.
    s.handle_offline(t0);
    assert!(!s.is_joined(&room()));
    let (_, ev) = drain(&mut s);
    assert!(matches!(&ev[..], [Event::Offline]), "{ev:?}");
    s.handle_online(me(), t0);
    let (sent, _) = drain(&mut s);
    assert!(matches!(&sent[..], [Stanza::Presence(_)]), "{sent:?}");
}

#[test]
fn tracks_occupants_and_leaves() {
    let mut s = session();
    let t0 = Instant::now();
    s.handle_online(me(), t0);
    s.join_room(room(), "focus".into(), vec![]);
    s.handle_stanza(
        Stanza::Presence(muc_presence(
            "r1@conference.meet.test/focus",
            true,
            Default::default(),
        )),
        t0,
    );
    s.handle_stanza(
        Stanza::Presence(muc_presence(
            "r1@conference.meet.test/abcd",
            false,
            Default::default(),
        )),
        t0,
    );
    let (_, ev) = drain(&mut s);
    assert!(
        matches!(&ev[2], Event::OccupantJoined { occupant, .. } if occupant.nick == "abcd"),
        "{ev:?}"
    );
    assert_eq!(s.occupants(&room()).count(), 1);
    s.handle_stanza(
        Stanza::Presence(muc_presence(
            "r1@conference.meet.test/abcd",
            false,
            xmpp_parsers::presence::Type::Unavailable,
        )),
        t0,
    );
    let (_, ev) = drain(&mut s);
    assert!(matches!(&ev[..], [Event::OccupantLeft { .. }]), "{ev:?}");
    s.leave_room(&room());
    let (sent, _) = drain(&mut s);
    let Stanza::Presence(p) = &sent[0] else {
        panic!()
    };
    assert_eq!(p.type_, xmpp_parsers::presence::Type::Unavailable);
}

#[test]
fn iq_response_is_matched_by_id_and_sender() {
    let mut s = session();
    let t0 = Instant::now();
    s.handle_online(me(), t0);
    let to = Jid::new("r1@conference.meet.test/focus").unwrap();
    let id = s.send_iq(
        Some(to.clone()),
        IqKind::Set,
        Element::bare("conference", FOCUS_NS),
        None,
        t0,
    );
    let (sent, _) = drain(&mut s);
    let Stanza::Iq(Iq::Set { id: wire, .. }) = &sent[0] else {
        panic!()
    };
    // A reply with the right id from someone else is ignored.
    s.handle_stanza(
        Stanza::Iq(Iq::Result {
            from: Some(Jid::new("evil@meet.test/x").unwrap()),
            to: None,
            id: wire.clone(),
            payload: None,
        }),
        t0,
    );
    assert!(drain(&mut s).1.is_empty());
    s.handle_stanza(
        Stanza::Iq(Iq::Result {
            from: Some(to),
            to: None,
            id: wire.clone(),
            payload: None,
        }),
        t0,
    );
    let (_, ev) = drain(&mut s);
    assert!(
        matches!(&ev[..], [Event::IqResponse { id: got, result: Ok(None) }] if *got == id),
        "{ev:?}"
    );
}

#[test]
fn iq_times_out_at_its_deadline() {
    let mut s = session();
    let t0 = Instant::now();
    s.handle_online(me(), t0);
    let id = s.send_iq(
        None,
        IqKind::Get,
        Element::bare("ping", xmpp_parsers::ns::PING),
        Some(Duration::from_secs(2)),
        t0,
    );
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert!(drain(&mut s).1.is_empty());
    s.handle_timeout(t0 + Duration::from_secs(2));
    let (_, ev) = drain(&mut s);
    assert!(
        matches!(&ev[..], [Event::IqResponse { id: got, result: Err(IqError::Timeout) }] if *got == id),
        "{ev:?}"
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn pending_iqs_fail_when_the_connection_drops() {
    let mut s = session();
    let t0 = Instant::now();
    s.handle_online(me(), t0);
    s.send_iq(
        None,
        IqKind::Get,
        Element::bare("ping", xmpp_parsers::ns::PING),
        None,
        t0,
    );
    drain(&mut s);
    s.handle_offline(t0);
    let (_, ev) = drain(&mut s);
    assert!(
        matches!(
            &ev[0],
            Event::IqResponse {
                result: Err(IqError::Disconnected),
                ..
            }
        ),
        "{ev:?}"
    );
    // Offline requests fail at once.
    s.send_iq(
        None,
        IqKind::Get,
        Element::bare("ping", xmpp_parsers::ns::PING),
        None,
        t0,
    );
    let (sent, ev) = drain(&mut s);
    assert!(sent.is_empty());
    assert!(matches!(
        &ev[0],
        Event::IqResponse {
            result: Err(IqError::Disconnected),
            ..
        }
    ));
}

fn request(payload: Element) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: Some(Jid::new("guest@meet.test/x").unwrap()),
        to: None,
        id: "q1".into(),
        payload,
    })
}

fn error_condition(st: &Stanza) -> DefinedCondition {
    match st {
        Stanza::Iq(Iq::Error { error, id, .. }) => {
            assert_eq!(id, "q1");
            error.defined_condition.clone()
        }
        other => panic!("expected an error iq, got {other:?}"),
    }
}

#[test]
fn unknown_namespace_is_service_unavailable_and_known_goes_to_app() {
    let mut s = session();
    let t0 = Instant::now();
    s.handle_online(me(), t0);
    drain(&mut s);
    s.handle_stanza(request(Element::bare("query", "urn:example:nothing")), t0);
    let (sent, ev) = drain(&mut s);
    assert_eq!(
        error_condition(&sent[0]),
        DefinedCondition::ServiceUnavailable
    );
    assert!(ev.is_empty());

    s.handle_stanza(request(Element::bare("conference", FOCUS_NS)), t0);
    let (sent, ev) = drain(&mut s);
    assert!(sent.is_empty());
    let [Event::IqRequest(req)] = &ev[..] else {
        panic!("{ev:?}")
    };
    s.reply_error(req, DefinedCondition::BadRequest, "missing room");
    let (sent, _) = drain(&mut s);
    assert_eq!(error_condition(&sent[0]), DefinedCondition::BadRequest);
}

#[test]
fn malformed_iq_request_is_answered_bad_request() {
    let mut s = session();
    s.handle_online(me(), Instant::now());
    s.handle_malformed(
        "iq",
        Some("guest@meet.test/x".into()),
        Some("set".into()),
        Some("q1".into()),
        "no payload",
    );
    let (sent, _) = drain(&mut s);
    assert_eq!(error_condition(&sent[0]), DefinedCondition::BadRequest);
    // A malformed result cannot be answered: nothing is sent.
    s.handle_malformed("iq", None, Some("result".into()), Some("q2".into()), "x");
    assert!(drain(&mut s).0.is_empty());
}

#[test]
fn answers_disco_info_with_features() {
    let mut s = session();
    let t0 = Instant::now();
    s.handle_online(me(), t0);
    let q = Element::builder("query", xmpp_parsers::ns::DISCO_INFO).build();
    s.handle_stanza(
        Stanza::Iq(Iq::Get {
            from: Some(Jid::new("guest@meet.test/x").unwrap()),
            to: None,
            id: "d1".into(),
            payload: q,
        }),
        t0,
    );
    let (sent, _) = drain(&mut s);
    let Stanza::Iq(Iq::Result {
        payload: Some(p), ..
    }) = &sent[0]
    else {
        panic!("{sent:?}")
    };
    let vars: Vec<_> = p.children().filter_map(|c| c.attr("var")).collect();
    assert!(
        vars.contains(&"http://jitsi.org/protocol/jibri"),
        "{vars:?}"
    );
    assert!(vars.contains(&xmpp_parsers::ns::DISCO_INFO), "{vars:?}");
}
