//! Golden, negative and build-then-serialize tests for the Jitsi XMPP extensions:
//! focus, jibri, colibri stats, rayo, mute, presence and visitors.
//!
//! Every golden test parses a shared fixture, checks the concrete values,
//! serializes back, compares with the original element (structurally: attribute
//! order and whitespace-only text ignored) and re-parses to an equal value.
//! The exhaustive negative tests (exact error per attribute) live beside the code
//! in each module; `errors_through_the_public_api` repeats the main kinds here.

mod common;

use std::fmt::Debug;

use common::fixture_xml;
use minidom::{Element, Node};
use proto::colibri::{ColibriStats, Stat};
use proto::focus::{BridgeSession, ConferenceIq, Property};
use proto::jibri::{
    Action, BusyStatus, FailureReason, Health, JibriIq, JibriService, JibriStatus, RecordingMode,
    RecordingStatus, SipCallState, Status,
};
use proto::mute::{MediaKind, MuteIq};
use proto::presence::{Features, Initiator, JitsiPresence, Permission, Permissions, VisitorsIq};
use proto::rayo::{Dial, Hangup, Header, RayoIq, Ref};
use proto::{ns, Error};
use xmpp_parsers::stanza_error::DefinedCondition;

// ---------------------------------------------------------------- helpers

fn xml(s: &str) -> Element {
    proto::parse_xml(s).unwrap_or_else(|e| panic!("test XML does not parse: {e}\n{s}"))
}

/// A canonical text form: resolved namespaces, sorted attributes, no
/// whitespace-only text nodes, no prefix declarations.
fn canonical(e: &Element) -> String {
    let mut attrs: Vec<String> = e
        .attrs()
        .iter()
        .map(|((ns, name), value)| {
            let ns = ns.as_str();
            if ns.is_empty() {
                format!("{name}={value:?}")
            } else {
                format!("{{{ns}}}{name}={value:?}")
            }
        })
        .collect();
    attrs.sort();
    let mut out = format!("<{{{}}}{} {}>", e.ns(), e.name(), attrs.join(" "));
    for node in e.nodes() {
        match node {
            Node::Element(c) => out.push_str(&canonical(c)),
            Node::Text(t) if t.trim().is_empty() => {}
            Node::Text(t) => out.push_str(&format!("{t:?}")),
        }
    }
    out.push_str("</>");
    out
}

#[track_caller]
fn assert_xml_eq(actual: &Element, expected: &Element) {
    assert_eq!(canonical(actual), canonical(expected));
}

#[test]
fn canonical_form_is_structural() {
    // Attribute order, prefixes and whitespace-only text do not matter...
    assert_eq!(
        canonical(&xml("<a xmlns='urn:x' p='1' q='2'>\n  <b/>\n</a>")),
        canonical(&xml("<y:a xmlns:y='urn:x' q='2' p='1'><y:b/></y:a>"))
    );
    // ...but names, namespaces, attribute values and real text do.
    let base = canonical(&xml("<a xmlns='urn:x' p='1'><b>t</b></a>"));
    for other in [
        "<a xmlns='urn:x' p='2'><b>t</b></a>",
        "<a xmlns='urn:x' p='1' r='3'><b>t</b></a>",
        "<a xmlns='urn:y' p='1'><b>t</b></a>",
        "<a xmlns='urn:x' p='1'><b>u</b></a>",
        "<a xmlns='urn:x' p='1'><c>t</c></a>",
        "<a xmlns='urn:x' p='1'><b xmlns='urn:z'>t</b></a>",
    ] {
        assert_ne!(canonical(&xml(other)), base, "{other}");
    }
}

/// The first element child of an IQ or presence.
fn payload(stanza: &Element) -> Element {
    stanza
        .children()
        .next()
        .unwrap_or_else(|| panic!("no payload in {}", canonical(stanza)))
        .clone()
}

/// Serializes `value`, compares with `original`, re-parses to an equal value.
#[track_caller]
fn roundtrip<T>(value: &T, original: &Element)
where
    T: Clone + PartialEq + Debug + TryFrom<Element, Error = Error>,
    Element: From<T>,
{
    let out = Element::from(value.clone());
    assert_xml_eq(&out, original);
    assert_eq!(&T::try_from(out).expect("re-parse"), value);
}

fn parse<T: TryFrom<Element, Error = Error>>(s: &str) -> Result<T, Error> {
    T::try_from(xml(s))
}

// ---------------------------------------------------------------- focus

#[test]
fn conference_iq_fixture() {
    let iq = fixture_xml("jitsi-xml/conference-iq.xml");
    let elem = payload(&iq);
    let c = ConferenceIq::try_from(elem.clone()).unwrap();
    assert_eq!(
        c.room.as_ref().map(|r| r.to_string()).as_deref(),
        Some("someroom@example.com")
    );
    assert_eq!(c.ready, Some(true));
    assert_eq!(c.focus_jid, None);
    assert_eq!(
        c.properties,
        vec![
            Property::new("name1", "value1"),
            Property::new("name2", "value2")
        ]
    );
    assert_eq!(c.property("name2"), Some("value2"));
    roundtrip(&c, &elem);
}

#[test]
fn conference_iq_request_doc_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/conference-iq-request-doc.xml"));
    let c = ConferenceIq::try_from(elem.clone()).unwrap();
    // The jid crate applies nodeprep, as Prosody and Jicofo do: the local part is
    // case-folded, so the serialized room differs from the doc's spelling.
    assert_eq!(
        c.room.as_ref().unwrap().to_string(),
        "conferencename@example.com"
    );
    assert_eq!(c.ready, None);
    assert_eq!(c.property("rtcstatsEnabled"), Some("true"));
    let expected = xml(&String::from(&elem).replace("conferenceName@", "conferencename@"));
    roundtrip(&c, &expected);
}

#[test]
fn conference_iq_response_doc_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/conference-iq-response-doc.xml"));
    let c = ConferenceIq::try_from(elem.clone()).unwrap();
    assert_eq!(c.room, None);
    assert_eq!(c.ready, Some(true));
    assert_eq!(c.focus_jid.as_deref(), Some("jicofo@v1.example.com"));
    assert_eq!(c.vnode.as_deref(), Some("v1"));
    assert_eq!(
        c.properties,
        vec![Property::new("sipGatewayEnabled", "true")]
    );
    // The doc spells the attribute `focusJid`; on the wire (and in our output) it
    // is `focusjid`.
    let expected = xml(&String::from(&elem).replace("focusJid=", "focusjid="));
    roundtrip(&c, &expected);
}

#[test]
fn bridge_session_from_session_initiate_fixture() {
    let iq = fixture_xml("jitsi-xml/jingle-session-initiate-jitsi.xml");
    let jingle = iq.get_child("jingle", ns::JINGLE).expect("jingle");
    let elem = jingle
        .get_child("bridge-session", ns::FOCUS)
        .expect("bridge-session")
        .clone();
    let b = BridgeSession::try_from(elem.clone()).unwrap();
    assert_eq!(b.id, "46122_3438f0");
    assert_eq!(b.region.as_deref(), Some("us-west-2"));
    assert_eq!(b.restart, None);
    roundtrip(&b, &elem);
}

#[test]
fn conference_reply_built() {
    let mut c = ConferenceIq::request("room@conference.example.com".parse().unwrap());
    c.ready = Some(true);
    c.focus_jid = Some("focus@auth.example.com".into());
    c.set_property("sipGatewayEnabled", "true");
    let expected = xml(
        "<conference xmlns='http://jitsi.org/protocol/focus' room='room@conference.example.com' \
         ready='true' focusjid='focus@auth.example.com'>\
         <property name='sipGatewayEnabled' value='true'/></conference>",
    );
    roundtrip(&c, &expected);
}

#[test]
fn bridge_session_restart_built() {
    let mut b = BridgeSession::new("s1", None);
    b.restart = Some(true);
    roundtrip(
        &b,
        &xml("<bridge-session xmlns='http://jitsi.org/protocol/focus' id='s1' restart='true'/>"),
    );
}

// ---------------------------------------------------------------- jibri

#[test]
fn jibri_iq_start_file_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/jibri-iq-start-file.xml"));
    let j = JibriIq::try_from(elem.clone()).unwrap();
    assert_eq!(j, JibriIq::start(RecordingMode::File));
    assert_eq!(j.service(), JibriService::File);
    roundtrip(&j, &elem);
}

#[test]
fn jibri_iq_start_rtcstats_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/jibri-iq-start-rtcstats.xml"));
    let j = JibriIq::try_from(elem.clone()).unwrap();
    assert_eq!(j.action, Some(Action::Start));
    assert_eq!(j.rtcstats_enabled, Some(true));
    assert_eq!(j.recording_mode, None);
    assert_eq!(j.status, None);
    roundtrip(&j, &elem);
}

#[test]
fn jibri_iq_stop_off_error_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/jibri-iq-stop-off-error.xml"));
    let j = JibriIq::try_from(elem.clone()).unwrap();
    assert_eq!(
        j,
        JibriIq {
            action: Some(Action::Stop),
            status: Some(Status::Off),
            failure_reason: Some(FailureReason::Error),
            should_retry: Some(true),
            session_id: Some("abcd".into()),
            ..Default::default()
        }
    );
    roundtrip(&j, &elem);
}

#[test]
fn jibri_iq_start_stream_legacy_fixture() {
    let iq = fixture_xml("jitsi-xml/jibri-iq-start-stream-legacy.xml");
    assert_eq!(
        iq.attr("room"),
        Some("theconferenceroom@conference.example.net")
    );
    let elem = payload(&iq);
    let j = JibriIq::try_from(elem.clone()).unwrap();
    assert_eq!(j.action, Some(Action::Start));
    assert_eq!(j.stream_id.as_deref(), Some("1111-1111-1111-1111"));
    assert_eq!(j.room, None);
    assert_eq!(j.service(), JibriService::Stream);
    roundtrip(&j, &elem);
}

#[test]
fn jibri_status_presence_fixture() {
    let presence = fixture_xml("jitsi-xml/jibri-status-presence.xml");
    let elem = payload(&presence);
    let s = JibriStatus::try_from(elem.clone()).unwrap();
    assert_eq!(s, JibriStatus::new(BusyStatus::Idle, Health::Healthy));
    assert!(s.is_available());
    roundtrip(&s, &elem);

    // The same through the aggregate: the MUC <x> stays unknown.
    let payloads: Vec<Element> = presence.children().cloned().collect();
    let p = JitsiPresence::from_payloads(payloads.clone()).unwrap();
    assert_eq!(p.jibri_status, Some(s));
    assert_eq!(p.unknown.len(), 1);
    assert!(p.unknown[0].is("x", "http://jabber.org/protocol/muc#user"));
    assert_payloads_eq(&p.clone().into_payloads(), &payloads);
}

#[test]
fn jibri_status_presence_legacy_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/jibri-status-presence-legacy.xml"));
    let s = JibriStatus::try_from(elem.clone()).unwrap();
    assert_eq!(s.busy, Some(BusyStatus::Idle));
    assert_eq!(s.health, None);
    assert!(s.legacy);
    assert!(s.is_available());
    roundtrip(&s, &elem);
}

#[test]
fn jibri_failure_built() {
    let mut j = JibriIq::failure(FailureReason::Error, true);
    j.session_id = Some("abcd".into());
    roundtrip(
        &j,
        &xml(
            "<jibri xmlns='http://jitsi.org/protocol/jibri' status='off' failure_reason='error' \
             should_retry='true' session_id='abcd'/>",
        ),
    );
    roundtrip(
        &JibriIq::failure(FailureReason::Busy, true),
        &xml(
            "<jibri xmlns='http://jitsi.org/protocol/jibri' status='off' failure_reason='busy' \
             should_retry='true'/>",
        ),
    );
    roundtrip(
        &JibriIq::status(Status::Pending),
        &xml("<jibri xmlns='http://jitsi.org/protocol/jibri' status='pending'/>"),
    );
    roundtrip(
        &JibriIq::stop("s1"),
        &xml("<jibri xmlns='http://jitsi.org/protocol/jibri' action='stop' session_id='s1'/>"),
    );
}

#[test]
fn jibri_start_from_focus_built() {
    let j = JibriIq {
        action: Some(Action::Start),
        session_id: Some("5f0c".into()),
        room: Some("room@conference.example.com".parse().unwrap()),
        recording_mode: Some(RecordingMode::Stream),
        stream_id: Some("rtmp://live.example.com/app/key".into()),
        youtube_broadcast_id: Some("yt1".into()),
        display_name: Some("Rec".into()),
        sip_address: Some("sip:a@example.com".into()),
        app_data: Some(r#"{"file_recording_metadata":{"share":true}}"#.into()),
        rtcstats_enabled: Some(false),
        ..Default::default()
    };
    let expected = xml(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' session_id='5f0c' \
         room='room@conference.example.com' recording_mode='stream' \
         streamid='rtmp://live.example.com/app/key' you_tube_broadcast_id='yt1' displayname='Rec' \
         sipaddress='sip:a@example.com' \
         app_data='{\"file_recording_metadata\":{\"share\":true}}' rtcstats_enabled='false'/>",
    );
    roundtrip(&j, &expected);
    assert_eq!(j.service(), JibriService::Sip);
    assert_eq!(
        j.app_data_json().unwrap().unwrap()["file_recording_metadata"]["share"],
        serde_json::json!(true)
    );
}

#[test]
fn jibri_status_built() {
    roundtrip(
        &JibriStatus::new(BusyStatus::Busy, Health::Unhealthy),
        &xml("<jibri-status xmlns='http://jitsi.org/protocol/jibri'>\
             <busy-status status='busy'/>\
             <health-status xmlns='http://jitsi.org/protocol/health' status='unhealthy'/>\
             </jibri-status>"),
    );
}

#[test]
fn recording_status_built_and_parsed() {
    let mut r = RecordingStatus::new(Status::Off);
    r.session_id = Some("s1".into());
    r.recording_mode = Some(RecordingMode::File);
    r.initiator = Some("room@conference.example.com/ab12cd34".parse().unwrap());
    r.failure_reason = Some(FailureReason::Error);
    roundtrip(
        &r,
        &xml(
            "<jibri-recording-status xmlns='http://jitsi.org/protocol/jibri' status='off' \
             session_id='s1' recording_mode='file' initiator='room@conference.example.com/ab12cd34' \
             failure_reason='error'/>",
        ),
    );

    // Jicofo's attached error inherits the Jibri namespace; it is kept verbatim.
    let with_error = xml(
        "<jibri-recording-status xmlns='http://jitsi.org/protocol/jibri' status='off'>\
         <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         </error></jibri-recording-status>",
    );
    let r = RecordingStatus::try_from(with_error.clone()).unwrap();
    assert_eq!(
        r.error.as_ref().map(|e| e.attr("type")),
        Some(Some("cancel"))
    );
    roundtrip(&r, &with_error);
}

#[test]
fn sip_call_state_built() {
    let s = SipCallState {
        state: Status::On,
        sip_address: Some("sip:room@example.com".into()),
        session_id: Some("s2".into()),
        failure_reason: None,
    };
    roundtrip(
        &s,
        &xml(
            "<jibri-sip-call-state xmlns='http://jitsi.org/protocol/jibri/call_state' state='on' \
             sipaddress='sip:room@example.com' session_id='s2'/>",
        ),
    );
}

#[test]
fn errors_through_the_public_api() {
    assert_eq!(
        parse::<Dial>("<dial xmlns='urn:xmpp:rayo:1' from='a'/>"),
        Err(Error::MissingAttribute {
            element: "dial",
            attribute: "to",
        })
    );
    assert_eq!(
        parse::<JibriIq>("<jibri xmlns='http://jitsi.org/protocol/jibri' action='pause'/>"),
        Err(Error::UnknownAction {
            element: "jibri",
            action: "pause".into(),
        })
    );
    assert_eq!(
        parse::<JibriIq>("<jibri xmlns='http://jitsi.org/protocol/jibri' status='maybe'/>"),
        Err(Error::InvalidAttribute {
            element: "jibri",
            attribute: "status",
            value: "maybe".into(),
        })
    );
    assert_eq!(
        parse::<MuteIq>("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='a@b/c'>yes</mute>"),
        Err(Error::InvalidText {
            element: "mute",
            value: "yes".into(),
        })
    );
    assert_eq!(
        parse::<ConferenceIq>("<conference xmlns='urn:other' room='a@b'/>"),
        Err(Error::WrongElement {
            expected: "conference",
            expected_ns: ns::FOCUS,
            found: "conference".into(),
            found_ns: "urn:other".into(),
        })
    );
}

#[test]
fn error_conditions() {
    let unknown = parse::<JibriIq>("<jibri xmlns='http://jitsi.org/protocol/jibri' action='x'/>");
    assert_eq!(
        unknown.unwrap_err().condition(),
        DefinedCondition::FeatureNotImplemented
    );
    let bad = parse::<JibriIq>("<jibri xmlns='http://jitsi.org/protocol/jibri' status='x'/>");
    assert_eq!(bad.unwrap_err().condition(), DefinedCondition::BadRequest);
}

// ---------------------------------------------------------------- colibri stats

#[test]
fn colibri_stats_fixture() {
    let elem = fixture_xml("jitsi-xml/colibri-stats.xml");
    let s = ColibriStats::try_from(elem.clone()).unwrap();
    assert_eq!(s.stats, vec![Stat::new("key", "value")]);
    assert_eq!(s.get("key"), Some("value"));
    assert_eq!(s.stress_level(), Ok(None));
    roundtrip(&s, &elem);
}

#[test]
fn colibri_stats_built() {
    let mut s = ColibriStats::new();
    s.set_stress_level(0.35);
    s.set_region("eu-west".into());
    s.set_version("1.0".into());
    s.set_healthy(true);
    s.set_colibri2(true);
    s.set_conferences(3);
    s.set_participants(12);
    s.set_graceful_shutdown(false);
    s.set_supports_sip(true);
    let expected = xml("<stats xmlns='http://jitsi.org/protocol/colibri'>\
         <stat name='stress_level' value='0.35'/><stat name='region' value='eu-west'/>\
         <stat name='version' value='1.0'/><stat name='healthy' value='true'/>\
         <stat name='colibri2' value='true'/><stat name='conferences' value='3'/>\
         <stat name='participants' value='12'/><stat name='graceful_shutdown' value='false'/>\
         <stat name='supports_sip' value='true'/></stats>");
    roundtrip(&s, &expected);
    let back = ColibriStats::try_from(expected).unwrap();
    assert_eq!(back.stress_level(), Ok(Some(0.35)));
    assert_eq!(back.participants(), Ok(Some(12)));
    assert_eq!(back.graceful_shutdown(), Ok(Some(false)));
    assert_eq!(back.supports_transcription(), Ok(None));
    assert_eq!(back.region().unwrap().as_deref(), Some("eu-west"));
}

// ---------------------------------------------------------------- rayo

#[test]
fn rayo_dial_fixture() {
    let iq = fixture_xml("jitsi-xml/rayo-dial.xml");
    let elem = payload(&iq);
    let d = Dial::try_from(elem.clone()).unwrap();
    assert_eq!(d.from.as_deref(), Some("source"));
    assert_eq!(d.to, "dest");
    assert_eq!(
        d.headers,
        vec![Header::new("h1", "v1"), Header::new("h2", "v2")]
    );
    assert_eq!(d.header("h2"), Some("v2"));
    assert_eq!(d.room_name(), None);
    roundtrip(&d, &elem);
    assert_eq!(RayoIq::try_from(elem).unwrap(), RayoIq::Dial(d));
}

#[test]
fn rayo_built() {
    let mut d = Dial::new("+15551234", "room@conference.example.com");
    d.from = Some("Alice".into());
    d.set_header("JvbRoomPassword", "secret");
    d.set_header("X-outbound-call-initiator-user", "u1");
    assert_eq!(d.room_name(), Some("room@conference.example.com"));
    assert_eq!(d.room_password(), Some("secret"));
    assert_eq!(
        d.extra_headers().collect::<Vec<_>>(),
        vec![&Header::new("X-outbound-call-initiator-user", "u1")]
    );
    roundtrip(
        &d,
        &xml("<dial xmlns='urn:xmpp:rayo:1' from='Alice' to='+15551234'>\
             <header name='JvbRoomName' value='room@conference.example.com'/>\
             <header name='JvbRoomPassword' value='secret'/>\
             <header name='X-outbound-call-initiator-user' value='u1'/></dial>"),
    );

    let r = Ref::new("xmpp:3f2a9c1b@gateway.example.com");
    assert_eq!(r.jid(), Some("3f2a9c1b@gateway.example.com"));
    roundtrip(
        &r,
        &xml("<ref xmlns='urn:xmpp:rayo:1' uri='xmpp:3f2a9c1b@gateway.example.com'/>"),
    );

    roundtrip(&Hangup::new(), &xml("<hangup xmlns='urn:xmpp:rayo:1'/>"));
    let h = Hangup {
        headers: vec![Header::new("reason", "bye")],
    };
    assert_eq!(h.header("reason"), Some("bye"));
    roundtrip(
        &h,
        &xml("<hangup xmlns='urn:xmpp:rayo:1'><header name='reason' value='bye'/></hangup>"),
    );
    roundtrip(
        &RayoIq::Hangup(Hangup::new()),
        &xml("<hangup xmlns='urn:xmpp:rayo:1'/>"),
    );
}

// ---------------------------------------------------------------- mute

#[test]
fn mute_iq_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/mute-iq.xml"));
    let m = MuteIq::try_from(elem.clone()).unwrap();
    assert_eq!(m.kind, MediaKind::Audio);
    assert_eq!(
        m.jid.as_ref().map(|j| j.to_string()).as_deref(),
        Some("somejid")
    );
    assert_eq!(m.actor, None);
    assert!(m.mute);
    roundtrip(&m, &elem);
}

#[test]
fn mute_video_iq_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/mute-video-iq.xml"));
    let m = MuteIq::try_from(elem.clone()).unwrap();
    assert_eq!(m.kind, MediaKind::Video);
    assert_eq!(
        m.jid.as_ref().map(|j| j.to_string()).as_deref(),
        Some("somejid")
    );
    assert!(m.mute);
    roundtrip(&m, &elem);
}

#[test]
fn mute_forwarded_built() {
    let mut m = MuteIq::new(
        MediaKind::Video,
        "room@conference.example.com/ab12cd34".parse().unwrap(),
        false,
    );
    m.actor = Some("room@conference.example.com/moderator".parse().unwrap());
    roundtrip(
        &m,
        &xml(
            "<mute xmlns='http://jitsi.org/jitmeet/video' jid='room@conference.example.com/ab12cd34' \
             actor='room@conference.example.com/moderator'>false</mute>",
        ),
    );
}

// ---------------------------------------------------------------- presence

#[track_caller]
fn assert_payloads_eq(actual: &[Element], expected: &[Element]) {
    let a: Vec<String> = actual.iter().map(canonical).collect();
    let e: Vec<String> = expected.iter().map(canonical).collect();
    assert_eq!(a, e);
}

#[test]
fn muc_presence_codeclist_fixture() {
    let presence = fixture_xml("jitsi-xml/muc-presence-codeclist.xml");
    let payloads: Vec<Element> = presence.children().cloned().collect();
    let p = JitsiPresence::try_from(payloads.clone()).unwrap();
    assert_eq!(
        p.codec_list,
        Some(vec!["vp9".to_owned(), "vp8".to_owned(), "h264".to_owned()])
    );
    assert!(p.unknown.is_empty());
    let out: Vec<Element> = p.clone().into();
    assert_payloads_eq(&out, &payloads);
    assert_eq!(JitsiPresence::try_from(out).unwrap(), p);
}

#[test]
fn jigasi_presence_built() {
    let p = JitsiPresence {
        features: Some(Features::new([
            ns::feature::JIGASI,
            ns::feature::DTMF,
            ns::feature::AUDIO_MUTE,
        ])),
        nick: Some("+15551234".into()),
        region: Some("eu-west".into()),
        stats_id: Some("jigasi-1".into()),
        initiator: Some(Initiator {
            headers: vec![Header::new("X-outbound-call-initiator-user", "u1")],
        }),
        audio_muted: Some(false),
        ..Default::default()
    };
    assert!(p.has_feature(ns::feature::JIGASI));
    assert!(!p.has_feature(ns::feature::JIBRI));
    let out = p.clone().into_payloads();
    let expected = xml("<presence xmlns='jabber:client'>\
         <features><feature var='http://jitsi.org/protocol/jigasi'/>\
         <feature var='urn:xmpp:jingle:dtmf:0'/>\
         <feature var='http://jitsi.org/protocol/audio-mute'/></features>\
         <nick xmlns='http://jabber.org/protocol/nick'>+15551234</nick>\
         <stats-id>jigasi-1</stats-id>\
         <jitsi_participant_region>eu-west</jitsi_participant_region>\
         <audiomuted>false</audiomuted>\
         <initiator xmlns='http://jitsi.org/protocol/jigasi'>\
         <header xmlns='urn:xmpp:rayo:1' name='X-outbound-call-initiator-user' value='u1'/>\
         </initiator></presence>");
    let expected: Vec<Element> = expected.children().cloned().collect();
    assert_payloads_eq(&out, &expected);
    assert_eq!(JitsiPresence::from_payloads(out).unwrap(), p);
}

#[test]
fn participant_and_recorder_presence_parsed() {
    let presence = xml(
        "<presence xmlns='jabber:client' from='room@conference.example.com/ab12cd34'>\
         <stats-id>Alice-x1</stats-id>\
         <jitsi_participant_codecType>vp9</jitsi_participant_codecType>\
         <jitsi_participant_codecList>AV1, vp9 ,vp8</jitsi_participant_codecList>\
         <audiomuted> true </audiomuted><videomuted>false</videomuted>\
         <session_id>5f0c</session_id><mode>stream</mode>\
         <live-stream-view-url>https://youtu.be/x</live-stream-view-url>\
         <permissions xmlns='http://jitsi.org/jitmeet'><p name='recording' val='true'/>\
         <p name='flip' val='false'/></permissions>\
         <initiator xmlns='http://jitsi.org/protocol/jigasi'><header name='X-a' value='1'/></initiator>\
         <jibri-recording-status xmlns='http://jitsi.org/protocol/jibri' status='on' session_id='5f0c'/>\
         <jibri-sip-call-state xmlns='http://jitsi.org/protocol/jibri/call_state' state='pending'/>\
         <stats xmlns='http://jitsi.org/protocol/colibri'><stat name='version' value='2'/></stats>\
         <stats-id>second</stats-id>\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>\
         </presence>",
    );
    let p = JitsiPresence::from_payloads(presence.children().cloned().collect()).unwrap();
    assert_eq!(p.stats_id.as_deref(), Some("Alice-x1"));
    assert_eq!(p.codec_type.as_deref(), Some("vp9"));
    assert_eq!(
        p.codec_list,
        Some(vec!["av1".to_owned(), "vp9".to_owned(), "vp8".to_owned()])
    );
    assert_eq!(p.audio_muted, Some(true));
    assert_eq!(p.video_muted, Some(false));
    assert_eq!(p.session_id.as_deref(), Some("5f0c"));
    assert_eq!(p.mode, Some(RecordingMode::Stream));
    assert_eq!(
        p.live_stream_view_url.as_deref(),
        Some("https://youtu.be/x")
    );
    let perms = p.permissions.as_ref().unwrap();
    assert_eq!(
        perms.entries[1],
        Permission {
            name: "flip".into(),
            val: "false".into()
        }
    );
    assert!(perms.is_allowed("recording"));
    assert!(!perms.is_allowed("flip"));
    assert!(!perms.is_allowed("outbound-call"));
    // A header in the Jigasi namespace (inherited) is accepted too.
    assert_eq!(
        p.initiator.as_ref().unwrap().headers,
        vec![Header::new("X-a", "1")]
    );
    assert_eq!(p.recording_status.as_ref().unwrap().status, Status::On);
    assert_eq!(p.sip_call_state.as_ref().unwrap().state, Status::Pending);
    assert_eq!(
        p.stats.as_ref().unwrap().version().unwrap().as_deref(),
        Some("2")
    );
    // The second <stats-id> and the caps element are kept, in order.
    assert_eq!(p.unknown.len(), 2);
    assert_eq!(p.unknown[0].text(), "second");
    assert!(p.unknown[1].is("c", "http://jabber.org/protocol/caps"));
    // And everything survives a round trip.
    assert_eq!(
        JitsiPresence::from_payloads(p.clone().into_payloads()).unwrap(),
        p
    );
}

#[test]
fn permissions_built() {
    let p = Permissions {
        entries: vec![
            Permission {
                name: "recording".into(),
                val: "true".into(),
            },
            Permission {
                name: "outbound-call".into(),
                val: "false".into(),
            },
        ],
    };
    assert_eq!(p.get("outbound-call"), Some("false"));
    roundtrip(
        &p,
        &xml(
            "<permissions xmlns='http://jitsi.org/jitmeet'><p name='recording' val='true'/>\
             <p name='outbound-call' val='false'/></permissions>",
        ),
    );
}

// ---------------------------------------------------------------- visitors

#[test]
fn visitors_iq_fixture() {
    let elem = payload(&fixture_xml("jitsi-xml/visitors-iq.xml"));
    let v = VisitorsIq::try_from(elem.clone()).unwrap();
    assert_eq!(v.room.to_string(), "room@example.com");
    assert_eq!(v.connect_vnodes, vec!["v1".to_owned()]);
    assert_eq!(v.disconnect_vnodes, vec!["v2".to_owned()]);
    assert_eq!(v.broadcast, Some(true));
    roundtrip(&v, &elem);
}
