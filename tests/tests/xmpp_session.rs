//! The XMPP session layer against a real Prosody: login (service account and
//! guest), the conference request, MUC presence extensions in both
//! directions, and recovery after the server restarts.

use std::time::{Duration, Instant};

use jid::{BareJid, Jid};
use proto::focus::ConferenceIq;
use proto::presence::{Features, JitsiPresence};
use tests::{Account, Prosody, ProsodyOptions};
use tokio::sync::mpsc::UnboundedReceiver;
use xmpp_session::{Event, Handle, IqKind, SessionConfig, XmppConfig};

const WAIT: Duration = Duration::from_secs(10);

fn xmpp_config(prosody: &Prosody, account: Option<&Account>, resource: &str) -> XmppConfig {
    XmppConfig {
        resource: resource.into(),
        reconnect_min_ms: 200,
        reconnect_max_ms: 2000,
        ..tests::meeting::xmpp_as(prosody, account)
    }
}

/// Waits for the first event `f` accepts, failing after `WAIT`.
async fn expect<T>(
    events: &mut UnboundedReceiver<Event>,
    what: &str,
    mut f: impl FnMut(Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) => {
                if let Some(t) = f(ev) {
                    return t;
                }
            }
            Ok(None) => panic!("session ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

fn guest_presence() -> JitsiPresence {
    JitsiPresence {
        nick: Some("Alice Example".into()),
        audio_muted: Some(false),
        video_muted: Some(true),
        stats_id: Some("Alice-x1".into()),
        codec_list: Some(vec!["vp8".into(), "h264".into()]),
        features: Some(Features::new([
            proto::ns::feature::SOURCE_NAME,
            proto::ns::feature::JSON_SOURCES,
        ])),
        ..JitsiPresence::default()
    }
}

fn focus_presence() -> JitsiPresence {
    JitsiPresence {
        features: Some(Features::new([proto::ns::feature::JSON_SOURCES])),
        region: Some("eu-test-1".into()),
        ..JitsiPresence::default()
    }
}

/// The known extensions of a presence, without what the server adds
/// (XEP-0421 occupant-id).
fn extensions(payloads: Vec<minidom::Element>) -> JitsiPresence {
    let mut p = JitsiPresence::from_payloads(payloads).expect("presence extensions parse");
    p.unknown
        .retain(|e| !e.is("occupant-id", "urn:xmpp:occupant-id:0"));
    p
}

struct Client {
    handle: Handle,
    events: UnboundedReceiver<Event>,
}

fn start(config: XmppConfig, namespaces: &[&str]) -> Client {
    let session = SessionConfig {
        iq_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..SessionConfig::default()
    };
    let (handle, events, _task) = xmpp_session::spawn(config, session).expect("valid config");
    Client { handle, events }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conference_request_room_presence_and_restart_recovery() {
    tests::init_logs();
    let mut prosody = Prosody::start(ProsodyOptions::default()).expect("prosody starts");
    let focus_account = prosody.register_service("focus").expect("register focus");
    let room = BareJid::new(&format!("r1@{}", prosody.conference_domain())).unwrap();

    // The focus logs in with its service account; the guest anonymously.
    let mut focus = start(
        xmpp_config(&prosody, Some(&focus_account), "focus"),
        &[proto::ns::FOCUS],
    );
    let focus_jid = expect(&mut focus.events, "focus online", |e| match e {
        Event::Online { jid } => Some(jid),
        _ => None,
    })
    .await;
    assert_eq!(
        focus_jid.to_string(),
        format!("focus@auth.{}/focus", prosody.domain())
    );
    let mut guest = start(xmpp_config(&prosody, None, ""), &[]);
    let guest_jid = expect(&mut guest.events, "guest online", |e| match e {
        Event::Online { jid } => Some(jid),
        _ => None,
    })
    .await;
    assert_eq!(
        guest_jid.domain().as_str(),
        prosody.domain(),
        "anonymous login gets a JID on the guests' host"
    );

    // The guest asks the focus for the conference; the focus joins the room
    // (with its presence extensions) and answers ready.
    let request: minidom::Element = ConferenceIq::request(room.clone()).into();
    let guest_handle = guest.handle.clone();
    let to = Jid::from(focus_jid.clone());
    let reply =
        tokio::spawn(async move { guest_handle.iq(Some(to), IqKind::Set, request, None).await });
    let req = expect(&mut focus.events, "conference request", |e| match e {
        Event::IqRequest(r) => Some(r),
        _ => None,
    })
    .await;
    let asked = ConferenceIq::try_from(&req.payload).expect("request parses");
    assert_eq!(asked.room.as_ref(), Some(&room));
    focus
        .handle
        .join_room(room.clone(), "focus", focus_presence().into_payloads());
    expect(&mut focus.events, "focus in room", |e| {
        matches!(e, Event::RoomJoined { .. }).then_some(())
    })
    .await;
    let mut answer = ConferenceIq::request(room.clone());
    answer.ready = Some(true);
    focus.handle.reply(req, Ok(Some(answer.into())));
    let reply = reply.await.unwrap().expect("conference request answered");
    let reply = ConferenceIq::try_from(&reply.expect("payload")).expect("reply parses");
    assert_eq!(reply.ready, Some(true));

    // The guest joins with its extensions; each side sees the other's intact.
    guest
        .handle
        .join_room(room.clone(), "abcd1234", guest_presence().into_payloads());
    let seen_focus = expect(&mut guest.events, "focus seen by guest", |e| match e {
        Event::OccupantJoined { occupant, .. } if occupant.nick == "focus" => Some(occupant),
        _ => None,
    })
    .await;
    assert_eq!(extensions(seen_focus.payloads.clone()), focus_presence());
    assert_eq!(
        seen_focus.affiliation,
        xmpp_parsers::muc::user::Affiliation::Owner,
        "the focus owns the room"
    );
    let seen_guest = expect(&mut focus.events, "guest seen by focus", |e| match e {
        Event::OccupantJoined { occupant, .. } => Some(occupant),
        _ => None,
    })
    .await;
    assert_eq!(seen_guest.nick, "abcd1234");
    assert_eq!(extensions(seen_guest.payloads.clone()), guest_presence());
    assert_eq!(
        seen_guest.real_jid.as_ref(),
        Some(&guest_jid),
        "the focus sees real JIDs"
    );

    // Prosody goes away and comes back: both sessions return to the room
    // without any action from here.
    prosody.stop().expect("prosody stops");
    expect(&mut focus.events, "focus offline", |e| {
        matches!(e, Event::Offline).then_some(())
    })
    .await;
    let restarted = Instant::now();
    prosody.start_again().expect("prosody restarts");
    let focus_back = async {
        expect(&mut focus.events, "focus back in room", |e| match e {
            Event::RoomJoined { room: r, .. } if r == room => Some(Instant::now()),
            _ => None,
        })
        .await
    };
    let guest_back = async {
        expect(&mut guest.events, "guest back in room", |e| match e {
            Event::RoomJoined { room: r, .. } if r == room => Some(Instant::now()),
            _ => None,
        })
        .await
    };
    let (f, g) = tokio::join!(focus_back, guest_back);
    let recovery = f.max(g) - restarted;
    eprintln!("both sessions back in the room {recovery:?} after Prosody was started again");
    assert!(recovery < Duration::from_secs(10), "{recovery:?}");
    // And they see each other again, extensions intact.
    let again = expect(&mut guest.events, "focus seen again", |e| match e {
        Event::OccupantJoined { occupant, .. } if occupant.nick == "focus" => Some(occupant),
        _ => None,
    })
    .await;
    assert_eq!(extensions(again.payloads), focus_presence());

    guest.handle.shutdown().await;
    focus.handle.shutdown().await;
}
