//! Dial-out through the real gateway: the moderator (a webrtcbin
//! participant) sends the Rayo `dial` to the focus, the focus routes it to
//! the gateway in its brewery, and the gateway calls sipp, which plays the
//! trunk and the callee.
//!
//! - The callee rings and answers: its tone is heard in the room, the
//!   room's tone reaches the callee's RTP; a Rayo `hangup` to the call's
//!   `ref` ends the call with BYE.
//! - A busy callee (486) is reported back: the phone participant's
//!   presence status says `busy` before it leaves.
//! - With `[sip.register]` the gateway registers with its trunk (a sipp
//!   registrar that challenges) and un-registers when it stops.

use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tests::gateway::{Stack, PHONE_HZ, WEB_HZ};
use tests::meeting::has_tone;
use tests::phone::uas::{callee, start_callee, Answer};
use tests::phone::RtpSink;
use xmpp_session::IqKind;

/// The moderator's dial, sent to the focus in the room.
async fn dial(stack: &Stack, number: &str) -> Result<Option<Element>, xmpp_session::IqError> {
    let mut dial = proto::rayo::Dial::new(number, stack.room.to_string());
    dial.from = Some("fromnumber".into());
    let focus = Jid::new(&format!("{}/focus", stack.room)).unwrap();
    stack
        .web
        .xmpp()
        .iq(Some(focus), IqKind::Set, Element::from(dial), None)
        .await
}

/// An observer in the room, to read presences.
async fn observer(stack: &Stack) -> tests::RawXmpp {
    let mut o = tests::RawXmpp::login_anonymous(stack.prosody.c2s_addr(), stack.prosody.domain())
        .await
        .unwrap();
    o.send(&format!(
        "<presence to='{}/observer'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        stack.room
    ))
    .await
    .unwrap();
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dialled_callee_answers_is_heard_and_hung_up_from_the_room() {
    let sink = RtpSink::bind().await.unwrap();
    let pcap = tempfile::tempdir().unwrap();
    let tone = pcap.path().join("callee.pcap");
    tests::phone::write_tone_pcap(&tone, PHONE_HZ, 20.0, tests::phone::Law::Pcmu, 0.5).unwrap();
    let (trunk, sipp) = start_callee(
        callee(&Answer::Accept {
            media: sink.addr(),
            pcap: tone,
            wait_bye: Duration::from_secs(40),
        }),
        Duration::from_secs(50),
    )
    .await
    .unwrap();
    let stack = Stack::start(|c| c.sip.trunk = trunk.to_string()).await;
    let mut watch = observer(&stack).await;
    let reply = dial(&stack, "+1 555 0100")
        .await
        .expect("the dial is accepted");
    let reference = reply
        .as_ref()
        .and_then(|e| proto::rayo::Ref::try_from(e).ok())
        .expect("a ref to the call");
    tracing::info!(uri = %reference.uri, "dial answered");
    // The phone participant shows progress, then is connected.
    watch
        .read_until("<status>ringing</status>", Duration::from_secs(10))
        .await
        .expect("the call rings");
    watch
        .read_until("<status>connected</status>", Duration::from_secs(10))
        .await
        .expect("the call is answered");
    // Audio both ways.
    tests::meeting::until(&stack.web, "the room hears the callee", 15, |s| {
        has_tone(s, PHONE_HZ as f32)
    })
    .await;
    assert!(
        sink.wait_until(Duration::from_secs(10), |s| s
            .dominant_hz(Duration::from_secs(1))
            .is_some_and(|hz| (hz - WEB_HZ).abs() < 15.0))
            .await,
        "the callee should hear {WEB_HZ} Hz; got {:?} in {} packets",
        sink.dominant_hz(Duration::from_secs(1)),
        sink.packets()
    );
    assert_eq!(stack.metric("gateway_dial_out_total").await, 1.0);
    assert_eq!(stack.metric("gateway_calls_active").await, 1.0);
    // The moderator hangs up: Rayo hangup to the call's ref.
    let call = Jid::new(reference.uri.trim_start_matches("xmpp:")).unwrap();
    stack
        .web
        .xmpp()
        .iq(
            Some(call),
            IqKind::Set,
            Element::from(proto::rayo::Hangup::new()),
            None,
        )
        .await
        .expect("the call's participant accepts the hangup");
    let outcome = sipp.await.unwrap().unwrap();
    assert!(
        outcome.success(),
        "the callee should get our BYE: {}",
        outcome.report()
    );
    stack.until_metric("gateway_calls_active", 0.0, 5).await;
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_callee_is_reported_to_the_room() {
    let (trunk, sipp) = start_callee(callee(&Answer::Refuse(486)), Duration::from_secs(30))
        .await
        .unwrap();
    let stack = Stack::start(|c| c.sip.trunk = trunk.to_string()).await;
    let mut watch = observer(&stack).await;
    dial(&stack, "+15550100")
        .await
        .expect("the dial is accepted");
    let seen = watch
        .read_until("<status>busy</status>", Duration::from_secs(15))
        .await
        .expect("the phone participant says busy");
    assert!(
        seen.contains("http://jitsi.org/protocol/jigasi"),
        "a phone participant: {seen}"
    );
    let outcome = sipp.await.unwrap().unwrap();
    assert!(outcome.success(), "{}", outcome.report());
    // It leaves the room after showing why, and the call is over.
    watch
        .read_until("type='unavailable'", Duration::from_secs(10))
        .await
        .expect("the phone participant leaves");
    stack.until_metric("gateway_calls_active", 0.0, 5).await;
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_registers_with_its_trunk_from_its_config() {
    // A registrar that challenges, grants 120 s, and checks the
    // un-REGISTER the gateway sends when it shuts down.
    let password = "trunk secret";
    let (registrar, sipp) = start_callee(
        tests::phone::uas::registrar("gw-trunk", "5e1f00d", password, 120, true),
        Duration::from_secs(40),
    )
    .await
    .unwrap();
    let stack = Stack::start(|c| {
        c.sip.trunk = registrar.to_string();
        c.sip.register.user = "gw-trunk".into();
        c.sip.register.password = password.into();
        c.sip.register.domain = "sipp.example.com".into();
    })
    .await;
    stack.until_metric("gateway_sip_registered", 1.0, 10).await;
    let health = tests::http::get(stack.gateway.http, "/health")
        .await
        .unwrap();
    assert_eq!(health.status, 200, "registered and in XMPP: healthy");
    stack.end().await;
    let outcome = sipp.await.unwrap().unwrap();
    assert!(
        outcome.success(),
        "the registrar should see the challenge answered and the un-REGISTER: {}",
        outcome.report()
    );
}
