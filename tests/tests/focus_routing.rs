//! The focus routes moderator requests to pool members, against a real
//! Prosody: stand-in recorders and a stand-in gateway sit in their
//! breweries (xmpp-session clients that answer like the real ones will);
//! a moderator starts a recording (one recorder refuses, the other takes
//! it), every participant sees the status in the focus's presence; a guest
//! is refused; a dial-out reaches the gateway and its reference comes back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jid::{BareJid, Jid};
use minidom::Element;
use proto::jibri::{JibriIq, RecordingStatus, Status};
use tests::{Account, Prosody, ProsodyOptions};
use tokio::sync::mpsc::UnboundedReceiver;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, IqKind, XmppConfig};

const WAIT: Duration = Duration::from_secs(10);

fn config(prosody: &Prosody, account: Option<&Account>) -> XmppConfig {
    tests::meeting::xmpp_as(prosody, account)
}

use tests::standins::{client, stand_in_gateway, stand_in_recorder};

async fn wait_for<T>(
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
            other => panic!("waiting for {what}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_and_dial_out_are_routed_to_pool_members() {
    tests::init_logs();
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let focus_account = prosody.register_service("focus").unwrap();
    let mut sfu_config = sfu::Config {
        xmpp: config(&prosody, Some(&focus_account)),
        ..sfu::Config::default()
    };
    sfu_config.media.bind = "127.0.0.1:0".into();
    sfu_config.apply_env();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sfu = tokio::spawn(sfu::run_with_listener(sfu_config, listener, async move {
        let _ = stopped.await;
    }));
    // rec0 refuses every start; rec1 takes it. Which one the focus picks
    // first is its choice; the recording must happen either way.
    let refusing = stand_in_recorder(&prosody, "rec0", true);
    let working = stand_in_recorder(&prosody, "rec1", false);
    stand_in_gateway(&prosody);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let focus = Jid::new(&format!("focus@auth.{}/focus", prosody.domain())).unwrap();
    let room = BareJid::new(&format!("weekly@{}", prosody.conference_domain())).unwrap();
    let in_room = Jid::new(&format!("{room}/focus")).unwrap();
    let (alice, mut alice_events) = client(&prosody, None, &[]);
    let (bob, mut bob_events) = client(&prosody, None, &[]);
    for (h, e) in [(&alice, &mut alice_events), (&bob, &mut bob_events)] {
        wait_for(e, "online", |ev| {
            matches!(ev, Event::Online { .. }).then_some(())
        })
        .await;
        let ready = h
            .iq(
                Some(focus.clone()),
                IqKind::Set,
                proto::focus::ConferenceIq::request(room.clone()).into(),
                None,
            )
            .await;
        assert!(ready.is_ok(), "{ready:?}");
    }
    alice.join_room(room.clone(), "alice", vec![]);
    wait_for(&mut alice_events, "alice in", |ev| {
        matches!(ev, Event::RoomJoined { .. }).then_some(())
    })
    .await;
    // Alice came first: the focus makes her the room's owner.
    bob.join_room(room.clone(), "bob", vec![]);
    wait_for(&mut bob_events, "bob in", |ev| {
        matches!(ev, Event::RoomJoined { .. }).then_some(())
    })
    .await;

    // Bob is a guest: refused.
    let start: Element = JibriIq::start(proto::jibri::RecordingMode::File).into();
    let err = bob
        .iq(Some(in_room.clone()), IqKind::Set, start.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(err.condition(), Some(&DefinedCondition::Forbidden), "{err}");

    // Alice starts: pending with a session id.
    let answer = alice
        .iq(Some(in_room.clone()), IqKind::Set, start, None)
        .await
        .expect("start accepted")
        .unwrap();
    let answer = JibriIq::try_from(&answer).unwrap();
    assert_eq!(answer.status, Some(Status::Pending));
    let session = answer.session_id.unwrap();

    // Bob sees the focus publish "on" for that session.
    let status = wait_for(&mut bob_events, "recording on", |ev| match ev {
        Event::OccupantJoined { occupant, .. } | Event::OccupantChanged { occupant, .. }
            if occupant.nick == "focus" =>
        {
            occupant
                .payloads
                .iter()
                .find_map(|p| RecordingStatus::try_from(p).ok())
                .filter(|s| s.status == Status::On)
        }
        _ => None,
    })
    .await;
    assert_eq!(status.session_id.as_deref(), Some(session.as_str()));
    let (a, b) = (
        refusing.load(Ordering::SeqCst),
        working.load(Ordering::SeqCst),
    );
    assert_eq!(b, 1, "the working recorder got the start once");
    assert!(a <= 1, "the refusing recorder is not asked twice");
    eprintln!("starts: refusing recorder {a}, working recorder {b}");

    // Dial-out through the gateway.
    let dial = proto::rayo::Dial::new("+15551234", room.to_string());
    let reference = alice
        .iq(Some(in_room.clone()), IqKind::Set, dial.into(), None)
        .await
        .expect("dial routed")
        .unwrap();
    assert_eq!(
        proto::rayo::Ref::try_from(&reference).unwrap().uri,
        "xmpp:0a1b2c3d@gw.meet.test"
    );

    let _ = stop.send(());
    tokio::time::timeout(WAIT, sfu)
        .await
        .expect("sfu stops")
        .unwrap()
        .unwrap();
}
