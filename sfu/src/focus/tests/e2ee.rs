//! End-to-end encryption: while an occupant's presence says it encrypts,
//! recording, streaming and dial-out starts are refused with `not-allowed`
//! and a reason a user understands; guests are refused as guests first;
//! stops still go through, and a recording already running is left alone.

use super::*;

const START_STREAM: &str = "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' streamid='abcd-1234'/>";
const STOP: &str = "<jibri xmlns='http://jitsi.org/protocol/jibri' action='stop'/>";
const NO_RECORDING: &str =
    "end-to-end encryption is on in this meeting; recording needs the media unencrypted";
const NO_STREAMING: &str =
    "end-to-end encryption is on in this meeting; live streaming needs the media unencrypted";
const NO_DIAL_OUT: &str =
    "end-to-end encryption is on in this meeting; dial-out needs the media unencrypted";

fn dial() -> String {
    format!("<dial xmlns='urn:xmpp:rayo:1' to='+15551234'><header name='JvbRoomName' value='{ROOM}'/></dial>")
}

/// The presence element as lib-jitsi-meet writes it (no namespace of its
/// own: `jabber:client`).
fn e2ee_flag(text: &str) -> Element {
    proto::parse_xml(&format!(
        "<jitsi_participant_e2ee.enabled xmlns='jabber:client'>{text}</jitsi_participant_e2ee.enabled>"
    ))
    .unwrap()
}

/// `bob` (a guest) sends a presence update with the flag on or off.
fn bob_encrypts(f: &mut Focus, on: bool, t: Instant) {
    let flag = e2ee_flag(if on { "true" } else { "false" });
    let bob = occupant(
        ROOM,
        "bob",
        "bob@meet.test/x",
        Affiliation::None,
        vec![flag],
    );
    f.handle_event(
        Event::OccupantChanged {
            room: room(),
            occupant: bob,
        },
        t,
    );
    let a = actions(f);
    assert!(a.is_empty(), "a presence change alone does nothing: {a:?}");
}

/// A meeting with an idle recorder and a gateway in the pools.
fn meeting_with_pools(f: &mut Focus, t: Instant) {
    meeting(f, t);
    f.handle_event(recorder("rec1", BusyStatus::Idle, Health::Healthy), t);
    f.handle_event(recorder("rec2", BusyStatus::Idle, Health::Healthy), t);
    f.handle_event(gateway("gw1", 0, false), t);
    assert!(actions(f).is_empty());
}

/// The only action must be a refusal; its condition and text.
fn refusal(a: &[Action]) -> (DefinedCondition, String) {
    match a {
        [Action::Reply { result: Err(e), .. }] => (
            e.defined_condition.clone(),
            e.texts.values().next().cloned().unwrap_or_default(),
        ),
        other => panic!("expected one refusal, got {other:?}"),
    }
}

fn not_allowed(text: &str) -> (DefinedCondition, String) {
    (DefinedCondition::NotAllowed, text.to_owned())
}

#[test]
fn recording_streaming_and_dial_out_are_refused_while_someone_encrypts() {
    let mut f = focus();
    let t = Instant::now();
    meeting_with_pools(&mut f, t);
    bob_encrypts(&mut f, true, t);
    let alice = format!("{ROOM}/alice");
    for (xml, want) in [
        (START_FILE.to_owned(), NO_RECORDING),
        (START_STREAM.to_owned(), NO_STREAMING),
        (dial(), NO_DIAL_OUT),
    ] {
        f.handle_event(req(&alice, &xml), t);
        assert_eq!(refusal(&actions(&mut f)), not_allowed(want), "{xml}");
    }
    assert_eq!(f.refused_total(), 3);
    // Nothing was running, so there is nothing to stop.
    f.handle_event(req(&alice, STOP), t);
    assert_eq!(refusal(&actions(&mut f)).0, DefinedCondition::ItemNotFound);
}

#[test]
fn turning_encryption_off_allows_starting_again() {
    let mut f = focus();
    let t = Instant::now();
    meeting_with_pools(&mut f, t);
    let alice = format!("{ROOM}/alice");
    bob_encrypts(&mut f, true, t);
    f.handle_event(req(&alice, START_FILE), t);
    assert_eq!(refusal(&actions(&mut f)), not_allowed(NO_RECORDING));

    bob_encrypts(&mut f, false, t);
    f.handle_event(req(&alice, START_FILE), t);
    let a = actions(&mut f);
    assert!(
        matches!(
            &a[..],
            [
                Action::Reply {
                    result: Ok(Some(_)),
                    ..
                },
                Action::Iq { .. },
                Action::Presence { .. }
            ]
        ),
        "{a:?}"
    );
    f.handle_event(req(&alice, &dial()), t);
    let a = actions(&mut f);
    assert!(matches!(&a[..], [Action::Iq { .. }]), "{a:?}");
}

#[test]
fn the_encrypting_participant_leaving_allows_starting_again() {
    let mut f = focus();
    let t = Instant::now();
    meeting_with_pools(&mut f, t);
    let alice = format!("{ROOM}/alice");
    bob_encrypts(&mut f, true, t);
    f.handle_event(req(&alice, &dial()), t);
    assert_eq!(refusal(&actions(&mut f)), not_allowed(NO_DIAL_OUT));
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: guest("bob", Affiliation::None),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    actions(&mut f);
    f.handle_event(req(&alice, &dial()), t);
    let a = actions(&mut f);
    assert!(matches!(&a[..], [Action::Iq { .. }]), "{a:?}");
}

#[test]
fn a_guest_is_forbidden_not_told_about_encryption() {
    let mut f = focus();
    let t = Instant::now();
    meeting_with_pools(&mut f, t);
    bob_encrypts(&mut f, true, t);
    let bob = format!("{ROOM}/bob");
    for xml in [START_FILE.to_owned(), START_STREAM.to_owned(), dial()] {
        f.handle_event(req(&bob, &xml), t);
        assert_eq!(
            refusal(&actions(&mut f)),
            (
                DefinedCondition::Forbidden,
                "only moderators may ask for this".to_owned()
            ),
            "{xml}"
        );
    }
}

#[test]
fn a_running_recording_is_left_running_and_may_be_stopped() {
    let mut f = focus();
    let t = Instant::now();
    meeting_with_pools(&mut f, t);
    let alice = format!("{ROOM}/alice");
    f.handle_event(req(&alice, START_FILE), t);
    let a = actions(&mut f);
    let [Action::Reply {
        result: Ok(Some(answer)),
        ..
    }, Action::Iq { .. }, Action::Presence { .. }] = &a[..]
    else {
        panic!("{a:?}")
    };
    let session = JibriIq::try_from(answer).unwrap().session_id.unwrap();

    // Encryption turns on: no stop is sent, the status is not touched.
    bob_encrypts(&mut f, true, t);

    // The moderator may still stop it; the recorder gets the stop.
    f.handle_event(req(&alice, STOP), t);
    let a = actions(&mut f);
    let [Action::Reply { result: Ok(_), .. }, Action::Iq { payload, tag, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        JibriIq::try_from(payload).unwrap().session_id,
        Some(session)
    );
    f.handle_iq_result(*tag, Ok(None), t);
    actions(&mut f);
    // A new start is refused while encryption stays on.
    f.handle_event(req(&alice, START_FILE), t);
    assert_eq!(refusal(&actions(&mut f)), not_allowed(NO_RECORDING));
}

#[test]
fn only_true_in_jabber_client_turns_encryption_on() {
    use crate::focus::e2ee::enabled;
    for (text, want) in [
        ("true", true),
        (" true\n", true),
        ("false", false),
        ("", false),
        ("yes", false),
    ] {
        assert_eq!(enabled(&[e2ee_flag(text)]), want, "{text:?}");
    }
    assert!(!enabled(&[]), "absent: off");
    let elsewhere = proto::parse_xml(
        "<jitsi_participant_e2ee.enabled xmlns='urn:example'>true</jitsi_participant_e2ee.enabled>",
    )
    .unwrap();
    assert!(!enabled(&[elsewhere]), "another namespace: off");
    // Among a real participant's other presence payloads.
    let features: Element = proto::presence::Features::new(["urn:xmpp:jingle:1"]).into();
    assert!(enabled(&[features, e2ee_flag("true")]));
}
