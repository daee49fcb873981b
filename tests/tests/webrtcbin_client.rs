//! The webrtcbin test participant against itself, without the SFU: two
//! pipelines negotiate in process and each decodes the other's video at the
//! size it was sent and hears the other's tone; then the same offer goes
//! through `proto`'s Jingle session-initiate and back to SDP, and webrtcbin
//! still answers it and media still flows; finally a [`WebrtcParticipant`]
//! joins through a real Prosody and a stand-in focus (a webrtcbin offerer
//! speaking Jingle), as it will with the real focus and SFU.

use std::sync::Arc;
use std::time::Duration;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use proto::focus::ConferenceIq;
use proto::jingle::{Action, Jingle};
use proto::sdp::{sdp_to_jingle, Sdp};
use tests::webrtc::{
    answer_sdp, offer_sdp, session_accept, MediaConfig, StreamKind, StreamStats, WebrtcParticipant,
    WebrtcPeer,
};
use tests::{Prosody, ProsodyOptions};
use tokio::sync::mpsc::UnboundedReceiver;
use xmpp_session::{Event, IncomingIq, IqKind, Security, SessionConfig, XmppConfig};

const MEDIA_TIMEOUT: Duration = Duration::from_secs(12);

fn media(pattern: u32, width: u32, height: u32, tone_hz: f64) -> MediaConfig {
    MediaConfig {
        video_pattern: pattern,
        width,
        height,
        tone_hz,
    }
}

/// True once `stats` hold a video stream of `w`x`h` with a few frames and an
/// audio stream whose tone is within 3 Hz of `hz`.
fn sees(stats: &[StreamStats], w: u32, h: u32, hz: f64) -> bool {
    let video = stats
        .iter()
        .any(|s| s.kind == StreamKind::Video && s.frames >= 10 && s.width == w && s.height == h);
    let audio = stats.iter().any(|s| {
        s.kind == StreamKind::Audio && s.rms > 0.05 && (f64::from(s.dominant_hz) - hz).abs() < 3.0
    });
    video && audio
}

fn expect_media(peer: &WebrtcPeer, from: &MediaConfig) -> Vec<StreamStats> {
    let stats = peer
        .wait_for(MEDIA_TIMEOUT, |s| {
            sees(s, from.width, from.height, from.tone_hz)
        })
        .unwrap();
    eprintln!("{peer:?} received {stats:#?}");
    stats
}

#[test]
fn two_webrtcbins_decode_each_others_video_and_tone() {
    tests::init_logs();
    let (ma, mb) = (media(0, 320, 240, 440.0), media(18, 640, 360, 880.0));
    let a = WebrtcPeer::new("direct-a", ma.clone()).unwrap();
    let b = WebrtcPeer::new("direct-b", mb.clone()).unwrap();

    let offer = a.offer().unwrap();
    assert!(
        offer.contains("a=candidate:"),
        "offer has candidates:\n{offer}"
    );
    let answer = b.answer(&offer).unwrap();
    assert!(
        answer.contains("a=candidate:"),
        "answer has candidates:\n{answer}"
    );
    a.accept_answer(&answer).unwrap();

    expect_media(&a, &mb);
    expect_media(&b, &ma);
    assert!(a.errors().is_empty() && b.errors().is_empty());
}

/// Serializes and parses a Jingle, as the wire would.
fn over_the_wire(j: Jingle) -> Jingle {
    let xml = String::from(&Element::from(j.clone()));
    let back = Jingle::try_from(&xml.parse::<Element>().unwrap()).unwrap();
    assert_eq!(back, j, "Jingle survives XML");
    back
}

#[test]
fn webrtcbin_answers_an_offer_that_went_through_jingle() {
    tests::init_logs();
    let (ma, mb) = (media(0, 640, 360, 660.0), media(18, 320, 240, 1000.0));
    let focus = WebrtcPeer::new("jingle-offerer", ma.clone()).unwrap();
    let guest = WebrtcPeer::new("jingle-answerer", mb.clone()).unwrap();

    // The offerer's SDP becomes a session-initiate...
    let offer = Sdp::parse(&focus.offer().unwrap()).unwrap();
    let (contents, groups) = sdp_to_jingle(&offer).unwrap();
    let mut initiate = Jingle::new(Action::SessionInitiate, "s1");
    initiate.initiator = Some("focus@auth.meet.test/focus".into());
    initiate.contents = contents;
    initiate.groups = groups;
    let initiate = over_the_wire(initiate);
    assert!(initiate.bundle().is_some(), "BUNDLE group carried");

    // ...which the guest turns back into SDP and answers...
    let answer = guest.answer(&offer_sdp(&initiate)).unwrap();
    let accept = over_the_wire(session_accept(&initiate, &answer, "guest@meet.test/x").unwrap());
    assert_eq!(accept.sid, "s1");
    assert_eq!(accept.responder.as_deref(), Some("guest@meet.test/x"));

    // ...and the session-accept, back in SDP, completes the offerer's side.
    focus.accept_answer(&answer_sdp(&accept)).unwrap();

    expect_media(&focus, &mb);
    expect_media(&guest, &ma);
}

const XMPP_WAIT: Duration = Duration::from_secs(10);

/// The next IQ request the stand-in focus receives.
async fn next_request(events: &mut UnboundedReceiver<Event>) -> IncomingIq {
    let deadline = tokio::time::Instant::now() + XMPP_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::IqRequest(req))) => return req,
            Ok(Some(_)) => continue,
            other => panic!("no IQ request for the focus: {other:?}"),
        }
    }
}

async fn online(events: &mut UnboundedReceiver<Event>) -> FullJid {
    let deadline = tokio::time::Instant::now() + XMPP_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Online { jid })) => return jid,
            Ok(Some(_)) => continue,
            other => panic!("never came online: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_joins_through_prosody_and_a_stand_in_focus() {
    tests::init_logs();
    let prosody = Prosody::start(ProsodyOptions::default()).expect("prosody starts");
    let account = prosody.register_service("focus").unwrap();
    let xmpp = |jid: String, password: String, resource: &str| XmppConfig {
        server: prosody.c2s_addr().to_string(),
        domain: prosody.domain().to_owned(),
        jid,
        password,
        resource: resource.into(),
        security: Security::Plaintext,
        ..XmppConfig::default()
    };
    let session = SessionConfig {
        iq_namespaces: [proto::ns::FOCUS, proto::ns::JINGLE]
            .map(str::to_owned)
            .into_iter()
            .collect(),
        ..SessionConfig::default()
    };
    let (focus, mut events, _focus_task) = xmpp_session::spawn(
        xmpp(account.jid(), account.password.clone(), "focus"),
        session,
    )
    .unwrap();
    let focus_jid = online(&mut events).await;
    let room = BareJid::new(&format!("standup@{}", prosody.conference_domain())).unwrap();

    let (mf, mg) = (media(0, 320, 240, 500.0), media(18, 640, 360, 750.0));
    let joining = tokio::spawn(WebrtcParticipant::join(
        xmpp(String::new(), String::new(), ""),
        Jid::from(focus_jid.clone()),
        room.clone(),
        "webrtcbin-guest",
        mg.clone(),
    ));

    // The conference request.
    let req = next_request(&mut events).await;
    let asked = ConferenceIq::try_from(&req.payload).unwrap();
    assert_eq!(asked.room.as_ref(), Some(&room));
    let guest = req.from.clone().expect("request has a sender");
    let ready = ConferenceIq {
        ready: Some(true),
        focus_jid: Some(focus_jid.to_string()),
        ..ConferenceIq::request(room.clone())
    };
    focus.reply(req, Ok(Some(ready.into())));

    // session-initiate from a webrtcbin offer.
    let media_side = Arc::new(WebrtcPeer::new("stand-in-focus", mf.clone()).unwrap());
    let offerer = media_side.clone();
    let offer = tokio::task::spawn_blocking(move || offerer.offer())
        .await
        .unwrap()
        .unwrap();
    let (contents, groups) = sdp_to_jingle(&Sdp::parse(&offer).unwrap()).unwrap();
    let mut initiate = Jingle::new(Action::SessionInitiate, "xmpp-s1");
    initiate.initiator = Some(focus_jid.to_string());
    initiate.contents = contents;
    initiate.groups = groups;
    focus
        .iq(Some(guest.clone()), IqKind::Set, initiate.into(), None)
        .await
        .expect("session-initiate acked");

    // session-accept comes back; the stand-in applies it.
    let req = next_request(&mut events).await;
    let accept = Jingle::try_from(&req.payload).unwrap();
    assert_eq!(accept.action, Action::SessionAccept);
    assert_eq!(accept.sid, "xmpp-s1");
    assert_eq!(
        accept.responder.as_deref(),
        Some(guest.to_string().as_str())
    );
    focus.reply(req, Ok(None));
    media_side.accept_answer(&answer_sdp(&accept)).unwrap();
    let participant = tokio::time::timeout(XMPP_WAIT, joining)
        .await
        .expect("join returns")
        .unwrap()
        .unwrap();
    assert_eq!(Jid::from(participant.jid().clone()), guest);

    tokio::task::block_in_place(|| {
        expect_media(&media_side, &mg);
        expect_media(participant.peer(), &mf);
    });

    // source-remove and session-terminate are acked and recorded.
    for action in [Action::SourceRemove, Action::SessionTerminate] {
        focus
            .iq(
                Some(guest.clone()),
                IqKind::Set,
                Jingle::new(action, "xmpp-s1").into(),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{} acked: {e:?}", action.as_str()));
        participant
            .wait_for_jingle(action, XMPP_WAIT)
            .await
            .unwrap();
    }
    let actions: Vec<Action> = participant
        .jingle_log()
        .iter()
        .map(|r| r.jingle.action)
        .collect();
    assert_eq!(
        actions,
        [
            Action::SessionInitiate,
            Action::SourceRemove,
            Action::SessionTerminate
        ]
    );
    participant.leave().await;
    focus.shutdown().await;
}

/// A Jingle fixture from `<repo>/../shared/fixtures/jitsi-xml` (or
/// `$SHARED_FIXTURES/jitsi-xml`): the `<jingle>` inside the IQ.
fn jingle_fixture(name: &str) -> Jingle {
    let dir = std::env::var("SHARED_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tests::workspace_root().join("../shared/fixtures"));
    let path = dir.join("jitsi-xml").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let iq = proto::parse_xml(&text).unwrap();
    let jingle = iq
        .get_child("jingle", proto::ns::JINGLE)
        .expect("fixture has a <jingle>");
    Jingle::try_from(jingle).unwrap()
}

/// Jicofo's real session-initiate (Plan B, every participant's sources in
/// one content per media, RTX/RED/FEC payload types, header extensions, the
/// bridge's candidates), through `proto` into SDP: webrtcbin takes it as the
/// remote offer and answers VP8 + Opus, sending on both. No media: the
/// bridge it names is not there.
#[test]
fn webrtcbin_answers_jicofos_session_initiate() {
    tests::init_logs();
    let initiate = jingle_fixture("jingle-session-initiate-jitsi.xml");
    let offer = offer_sdp(&initiate);
    let guest = WebrtcPeer::new("jicofo-answerer", media(0, 320, 240, 440.0)).unwrap();
    let answer = guest
        .answer(&offer)
        .unwrap_or_else(|e| panic!("{e:#}\noffer:\n{offer}"));
    eprintln!("{answer}");
    let accept = session_accept(&initiate, &answer, "guest@meet.test/x").unwrap();
    for media in ["audio", "video"] {
        let content = accept
            .contents
            .iter()
            .find(|c| {
                c.description
                    .as_ref()
                    .is_some_and(|d| d.media.as_str() == media)
            })
            .unwrap_or_else(|| panic!("no {media} content in {accept:?}"));
        assert_eq!(
            content.senders,
            Some(proto::jingle::Senders::Both),
            "{media}"
        );
    }
}
