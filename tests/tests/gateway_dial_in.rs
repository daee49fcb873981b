//! Dial-in through the real gateway: a private Prosody, the sfu in process
//! (focus, media plane, conference mapper), the gateway in process, a
//! webrtcbin participant in the room, and sipp as the phone (playing a
//! G.711 tone it reads from a pcap, sending its RTP; the gateway's RTP goes
//! to an [`RtpSink`] the SDP names, which decodes it).
//!
//! - With the room header the caller is in the room: the web participant
//!   hears the phone's tone, the phone hears the web participant's tone.
//! - Without it the caller hears the PIN prompt, types the room's PIN as
//!   RFC 4733 digits and is in the room; three wrong PINs end the call
//!   with the gateway's BYE.
//! - A moderator's mute of the phone participant silences it in the room
//!   and its presence says muted; removing it ends the call with BYE.
//! - A caller that vanishes without BYE leaves the room within the RTP
//!   inactivity timeout.

use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tests::gateway::{Stack, PHONE_HZ, WEB_HZ};
use tests::meeting::{has_tone, owners};
use tests::phone::{dial_in, DialIn, Media, RtpSink, Step};
use tests::webrtc::StreamKind;

fn web_hears(s: &[tests::webrtc::StreamStats], hz: f64) -> bool {
    has_tone(s, hz as f32)
}

fn web_audio_rms(s: &[tests::webrtc::StreamStats]) -> f32 {
    s.iter()
        .filter(|s| s.kind == StreamKind::Audio)
        .map(|s| s.rms)
        .fold(0.0, f32::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_with_the_room_header_hears_and_is_heard() {
    let stack = Stack::start(|_| {}).await;
    let sink = RtpSink::bind().await.unwrap();
    let sipp = stack.call(dial_in(&DialIn {
        caller_name: String::new(),
        caller_user: "+442079460958".into(),
        ..stack.board_caller(
            &sink,
            vec![Step::Pause(Duration::from_secs(10)), Step::SendBye],
        )
    }));
    // The room hears the phone.
    let heard = tests::meeting::until(&stack.web, "the web participant hears the phone", 15, |s| {
        web_hears(s, PHONE_HZ)
    })
    .await;
    tracing::info!(?heard, "web participant");
    // The phone hears the room: the gateway's RTP to the caller carries
    // the web participant's tone.
    assert!(
        sink.wait_until(Duration::from_secs(10), |s| s
            .dominant_hz(Duration::from_secs(1))
            .is_some_and(|hz| (hz - WEB_HZ).abs() < 15.0))
            .await,
        "the caller should hear {WEB_HZ} Hz; got {:?} Hz in {} packets (types {:?})",
        sink.dominant_hz(Duration::from_secs(1)),
        sink.packets(),
        sink.payload_types()
    );
    assert_eq!(
        sink.payload_types(),
        vec![0],
        "PCMU, the first codec offered"
    );
    assert_eq!(stack.metric("gateway_calls_active").await, 1.0);
    assert_eq!(stack.metric("gateway_rooms_active").await, 1.0);
    let outcome = sipp.await.unwrap();
    assert!(outcome.success(), "{}", outcome.report());
    // After the caller's BYE, the call, its participant and its room's
    // task are gone.
    stack.until_metric("gateway_calls_active", 0.0, 5).await;
    stack.until_metric("gateway_rooms_active", 0.0, 5).await;
    assert_eq!(stack.metric("gateway_connected_total").await, 1.0);
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_types_the_pin_and_joins() {
    let stack = Stack::start(|_| {}).await;
    let mapping = tests::http::get(
        stack.sfu.http,
        &format!("/conference-mapper?conference={}", stack.room),
    )
    .await
    .unwrap()
    .json()
    .unwrap();
    let pin = mapping["id"].to_string();
    let sink = RtpSink::bind().await.unwrap();
    let sipp = stack.call(dial_in(&DialIn {
        room: None,
        media: Media::At(sink.addr()),
        steps: vec![
            // The welcome prompt plays first.
            Step::Pause(Duration::from_secs(2)),
            Step::Dtmf(format!("{pin}#")),
            // "Joining", then the caller is in the room.
            Step::Pause(Duration::from_secs(3)),
            Step::PlayPcap(stack.tone()),
            Step::Pause(Duration::from_secs(8)),
            Step::SendBye,
        ],
        ..DialIn::default()
    }));
    // The prompt is real audio, not silence.
    assert!(
        sink.wait_until(Duration::from_secs(5), |s| s.rms(Duration::from_secs(1))
            > 500.0)
            .await,
        "the caller should hear the prompt (rms {})",
        sink.rms(Duration::from_secs(1))
    );
    tests::meeting::until(
        &stack.web,
        "the web participant hears the PIN caller",
        25,
        |s| web_hears(s, PHONE_HZ),
    )
    .await;
    let outcome = sipp.await.unwrap();
    assert!(outcome.success(), "{}", outcome.report());
    assert!(stack.metric("gateway_dtmf_digits_total").await >= pin.len() as f64);
    assert_eq!(stack.metric("gateway_connected_total").await, 1.0);
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_wrong_pins_end_the_call_with_bye() {
    let stack = Stack::start(|_| {}).await;
    let sink = RtpSink::bind().await.unwrap();
    let mut steps = Vec::new();
    for wrong in ["1111", "2222", "3333"] {
        steps.push(Step::Pause(Duration::from_secs(1)));
        steps.push(Step::Dtmf(format!("{wrong}#")));
        // The "not recognised" prompt plays before the next try.
        steps.push(Step::Pause(Duration::from_secs(4)));
    }
    steps.pop();
    steps.push(Step::ExpectBye(Duration::from_secs(20)));
    let sipp = stack.call(dial_in(&DialIn {
        media: Media::At(sink.addr()),
        steps,
        ..DialIn::default()
    }));
    let outcome = sipp.await.unwrap();
    assert!(
        outcome.success(),
        "the gateway should end the call with BYE: {}",
        outcome.report()
    );
    assert_eq!(stack.metric("gateway_rejected_no_room_total").await, 1.0);
    assert_eq!(stack.metric("gateway_connected_total").await, 0.0);
    stack.until_metric("gateway_calls_active", 0.0, 5).await;
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moderator_mutes_then_removes_the_phone() {
    let stack = Stack::start(|_| {}).await;
    let sink = RtpSink::bind().await.unwrap();
    let sipp = stack.call(dial_in(&stack.board_caller(
        &sink,
        vec![
            // Removed from the room, the call ends with the gateway's BYE.
            Step::ExpectBye(Duration::from_secs(30)),
        ],
    )));
    let heard = tests::meeting::until(&stack.web, "the phone is heard before the mute", 15, |s| {
        web_hears(s, PHONE_HZ)
    })
    .await;
    let phone_mid = heard
        .iter()
        .find(|s| s.kind == StreamKind::Audio && (s.dominant_hz - PHONE_HZ as f32).abs() < 15.0)
        .and_then(|s| s.mid.clone());
    let phone = stack.phone_nick().await;
    // An observer in the room reads the phone participant's presence.
    let mut observer =
        tests::RawXmpp::login_anonymous(stack.prosody.c2s_addr(), stack.prosody.domain())
            .await
            .unwrap();
    observer
        .send(&format!(
            "<presence to='{}/observer'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
            stack.room
        ))
        .await
        .unwrap();
    let seen = observer
        .read_until(
            &format!("from='{}/{phone}'", stack.room),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let _ = seen;
    let presence = observer
        .read_until("</presence>", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        presence.contains("http://jitsi.org/protocol/jigasi")
            && presence.contains(">false</audiomuted>"),
        "the phone participant announces the jigasi feature, unmuted: {presence}"
    );
    // The web participant joined first: it is the moderator.
    let mute = proto::mute::MuteIq::new(
        proto::mute::MediaKind::Audio,
        Jid::new(&format!("{}/{phone}", stack.room)).unwrap(),
        true,
    );
    let focus = Jid::new(&format!("{}/focus", stack.room)).unwrap();
    stack
        .web
        .xmpp()
        .iq(
            Some(focus),
            xmpp_session::IqKind::Set,
            minidom::Element::from(mute),
            None,
        )
        .await
        .expect("the focus accepts the moderator's mute");
    // The phone's stream stops: no more audio decoded on its line (or only
    // silence), while the call goes on.
    let phone_frames = |s: &[tests::webrtc::StreamStats]| -> u64 {
        s.iter()
            .filter(|s| s.kind == StreamKind::Audio && s.mid == phone_mid)
            .map(|s| s.frames)
            .sum()
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = stack.web.received();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = stack.web.received();
    let grew = phone_frames(&after) - phone_frames(&before);
    assert!(
        grew <= 5 || web_audio_rms(&after) < 0.001,
        "the muted phone still reaches the room: {grew} audio frames in 2 s: {after:#?}"
    );
    assert_eq!(
        stack.metric("gateway_calls_active").await,
        1.0,
        "the call goes on"
    );
    // The gateway shows the phone muted.
    observer
        .read_until(">true</audiomuted>", Duration::from_secs(5))
        .await
        .expect("the phone participant's presence says muted");
    // The moderator removes the phone participant: the call ends.
    let kick: Element = format!(
        "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='{phone}' role='none'/></query>"
    )
    .parse()
    .unwrap();
    stack
        .web
        .xmpp()
        .iq(
            Some(Jid::from(stack.room.clone())),
            xmpp_session::IqKind::Set,
            kick,
            None,
        )
        .await
        .expect("the room accepts the moderator's kick");
    let outcome = sipp.await.unwrap();
    assert!(
        outcome.success(),
        "the removed caller should get BYE: {}",
        outcome.report()
    );
    assert_eq!(stack.metric("gateway_kicked_total").await, 1.0);
    stack.until_metric("gateway_calls_active", 0.0, 5).await;
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_that_vanishes_leaves_within_the_inactivity_timeout() {
    let stack = Stack::start(|c| c.sip.inactivity_timeout_s = 3).await;
    let sink = RtpSink::bind().await.unwrap();
    let sipp = stack.call(dial_in(&stack.board_caller(
        &sink,
        vec![Step::Pause(Duration::from_secs(3)), Step::HangUpSilently],
    )));
    tests::meeting::until(&stack.web, "the phone is heard", 15, |s| {
        web_hears(s, PHONE_HZ)
    })
    .await;
    let phone = stack.phone_nick().await;
    let outcome = sipp.await.unwrap();
    assert!(outcome.success(), "{}", outcome.report());
    let gone = std::time::Instant::now();
    stack.until_metric("gateway_calls_active", 0.0, 8).await;
    let took = gone.elapsed();
    assert_eq!(stack.metric("gateway_inactivity_ends_total").await, 1.0);
    assert!(
        took <= Duration::from_secs(5),
        "removed {took:?} after the phone fell silent (timeout 3 s)"
    );
    // The room saw the participant leave: the focus removed its sources.
    let removed = stack
        .web
        .wait_for_jingle(proto::jingle::Action::SourceRemove, Duration::from_secs(5))
        .await;
    let log: Vec<_> = stack
        .web
        .jingle_log()
        .iter()
        .map(|r| r.jingle.action)
        .collect();
    assert!(
        removed.is_ok_and(|j| owners(&j).contains(&phone)),
        "the focus should remove the phone's sources: {log:?}"
    );
    stack.end().await;
}

/// Two callers in one room with the web participant: each caller hears the
/// other caller and the web participant but not itself (everyone but me,
/// each room stream decoded once on the gateway); once a moderator mutes
/// caller A, caller B no longer hears A either (callers on one gateway are
/// mixed without the sfu, so the mute must hold there too).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_callers_in_one_room_hear_everyone_but_themselves() {
    use tests::phone::analysis::tone_level;
    const OTHER_HZ: f64 = 600.0;
    let stack = Stack::start(|_| {}).await;
    let other = stack.pcap.path().join("other.pcap");
    tests::phone::write_tone_pcap(&other, OTHER_HZ, 20.0, tests::phone::Law::Pcmu, 0.5).unwrap();
    let (sink_a, sink_b) = (
        RtpSink::bind().await.unwrap(),
        RtpSink::bind().await.unwrap(),
    );
    let caller = |sink: &RtpSink, pcap: std::path::PathBuf, user: &str| {
        let mut d = stack.board_caller(
            sink,
            vec![Step::Pause(Duration::from_secs(16)), Step::SendBye],
        );
        d.steps[0] = Step::PlayPcap(pcap);
        d.caller_user = user.into();
        d
    };
    let a = stack.call(dial_in(&caller(&sink_a, stack.tone(), "+15550001")));
    // A's nick, while A is the only phone in the room.
    let a_nick = stack.phone_nick().await;
    let b = stack.call(dial_in(&caller(&sink_b, other, "+15550002")));
    // The web participant hears both phones.
    tests::meeting::until(
        &stack.web,
        "the web participant hears both callers",
        15,
        |s| has_tone(s, PHONE_HZ as f32) && has_tone(s, OTHER_HZ as f32),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window = Duration::from_secs(2);
    let levels = |sink: &RtpSink| {
        let pcm = sink.pcm_tail(window);
        (
            tone_level(&pcm, WEB_HZ),
            tone_level(&pcm, PHONE_HZ),
            tone_level(&pcm, OTHER_HZ),
        )
    };
    let (a_web, a_self, a_other) = levels(&sink_a);
    let (b_web, b_other, b_self) = levels(&sink_b);
    tracing::info!(
        a_web,
        a_self,
        a_other,
        b_web,
        b_other,
        b_self,
        "tone levels the callers hear"
    );
    assert!(
        a_web > 300.0 && a_other > 300.0 && a_self < a_other / 10.0,
        "caller A hears the web ({a_web:.0}) and B ({a_other:.0}), not itself ({a_self:.0})"
    );
    assert!(
        b_web > 300.0 && b_other > 300.0 && b_self < b_other / 10.0,
        "caller B hears the web ({b_web:.0}) and A ({b_other:.0}), not itself ({b_self:.0})"
    );
    assert_eq!(
        stack.metric("gateway_rooms_active").await,
        1.0,
        "one room task for both"
    );
    // The web participant (the moderator) mutes A.
    let mute = proto::mute::MuteIq::new(
        proto::mute::MediaKind::Audio,
        Jid::new(&format!("{}/{a_nick}", stack.room)).unwrap(),
        true,
    );
    stack
        .web
        .xmpp()
        .iq(
            Some(Jid::new(&format!("{}/focus", stack.room)).unwrap()),
            xmpp_session::IqKind::Set,
            minidom::Element::from(mute),
            None,
        )
        .await
        .expect("the focus accepts the moderator's mute");
    // (The tail then holds no audio from before the mute.)
    tokio::time::sleep(window + Duration::from_millis(500)).await;
    let (b_web, b_a, _) = levels(&sink_b);
    tracing::info!(b_web, b_a, "tone levels B hears with A muted");
    assert!(
        b_web > 300.0 && b_a < b_web / 10.0,
        "with A muted, B hears the web ({b_web:.0}) but not A ({b_a:.0})"
    );
    for call in [a, b] {
        let outcome = call.await.unwrap();
        assert!(outcome.success(), "{}", outcome.report());
    }
    stack.end().await;
}
