//! Golden tests for the Jitsi-dialect Jingle types on the shared fixtures
//! (`/work/shared/fixtures/jitsi-xml`), and negative tests that assert the
//! exact error.
//!
//! "Structurally equal" below means: same name, namespace, attributes (in
//! any order) and non-whitespace text, and the same children where siblings
//! of the same (namespace, name) keep their order; siblings of different
//! kinds may be reordered, since serialization writes them in a canonical
//! order (e.g. `<ssrc-info>` before a source's parameters).

mod common;

use std::collections::BTreeMap;

use minidom::Element;
use proto::jingle::*;
use proto::Error;

#[derive(Debug, PartialEq)]
struct Canon {
    name: String,
    ns: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<Canon>,
}

fn canon(e: &Element) -> Canon {
    let mut children: Vec<Canon> = e.children().map(canon).collect();
    children.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
    Canon {
        name: e.name().to_owned(),
        ns: e.ns(),
        attrs: e
            .attrs()
            .iter()
            .map(|((ns, k), v)| (format!("{ns:?}:{}", k.as_str()), v.clone()))
            .collect(),
        text: e.texts().filter(|t| !t.trim().is_empty()).collect(),
        children,
    }
}

/// Parses `elem` as `T`, serializes it, and checks the XML is structurally
/// equal and re-parses to an equal value.
fn round_trip<T>(elem: &Element) -> T
where
    T: for<'a> TryFrom<&'a Element, Error = Error>
        + Into<Element>
        + Clone
        + PartialEq
        + std::fmt::Debug,
{
    let parsed = T::try_from(elem).unwrap_or_else(|e| panic!("parse failed: {e}"));
    let out: Element = parsed.clone().into();
    assert_eq!(canon(&out), canon(elem), "XML -> type -> XML differs");
    // And through text, as it goes on the wire.
    let text = String::from(&out);
    let reparsed =
        T::try_from(&proto::parse_xml(&text).expect("own output is XML")).expect("re-parse");
    assert_eq!(reparsed, parsed, "type -> XML -> type differs");
    parsed
}

fn jingle_child(iq: &Element) -> &Element {
    iq.get_child("jingle", "urn:xmpp:jingle:1")
        .expect("fixture has a <jingle> child")
}

fn fixture(rel: &str) -> Element {
    common::fixture_xml(&format!("jitsi-xml/{rel}"))
}

fn set(e: &mut Element, name: &str, value: &str) {
    let name = minidom::rxml::NcName::try_from(name).expect("valid attribute name");
    e.set_attr(minidom::rxml::Namespace::NONE, name, value);
}

fn parse_str<T: for<'a> TryFrom<&'a Element, Error = Error>>(xml: &str) -> Result<T, Error> {
    T::try_from(&proto::parse_xml(xml).expect("test XML is well-formed"))
}

#[test]
fn session_initiate_jitsi_220k() {
    let iq = fixture("jingle-session-initiate-jitsi.xml");
    let j: Jingle = round_trip(jingle_child(&iq));

    assert_eq!(j.action, Action::SessionInitiate);
    assert_eq!(j.sid, "4u19jj866r22g");
    assert_eq!(j.initiator.as_deref(), Some("focus@auth.example.com/focus"));
    assert_eq!(j.contents.len(), 2);

    let audio = j.content("audio").expect("audio content");
    assert_eq!(audio.creator, Some(Creator::Initiator));
    assert_eq!(audio.senders, Some(Senders::Both));
    let ad = audio.description.as_ref().expect("audio description");
    assert_eq!(ad.media, Media::Audio);
    assert_eq!(ad.maxptime, Some(60));
    let ids: Vec<u8> = ad.payload_types.iter().map(|p| p.id).collect();
    assert_eq!(ids, [111, 103, 104, 126]);
    let opus = &ad.payload_types[0];
    assert_eq!(
        (opus.name.as_deref(), opus.clockrate, opus.channels),
        (Some("opus"), Some(48000), Some(2))
    );
    assert_eq!(opus.parameter("useinbandfec"), Some("1"));
    assert_eq!(opus.rtcp_fbs, [RtcpFb::new("transport-cc", None)]);
    assert_eq!(
        ad.hdrexts[0],
        RtpHdrext::new(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
    );
    assert!(ad.rtcp_mux && !ad.extmap_allow_mixed);
    assert_eq!(ad.sources.len(), 1);
    let jvb_audio = &ad.sources[0];
    assert_eq!(jvb_audio.ssrc, 2650722827);
    assert_eq!(jvb_audio.owner.as_deref(), Some("jvb"));
    assert_eq!(
        jvb_audio.parameter("msid"),
        Some("mixedmslabel mixedlabelaudio0")
    );
    assert_eq!(jvb_audio.parameters.len(), 4);

    let video = j.content("video").expect("video content");
    let vd = video.description.as_ref().expect("video description");
    assert_eq!(vd.payload_types.len(), 2);
    assert_eq!(
        vd.payload_types[0].parameter("x-google-start-bitrate"),
        Some("800")
    );
    assert_eq!(vd.payload_types[0].rtcp_fbs.len(), 4);
    assert_eq!(vd.payload_types[1].parameter("apt"), Some("100"));
    assert_eq!(vd.sources.len(), 517);
    assert_eq!(ad.sources.len() + vd.sources.len(), 518);
    assert_eq!(vd.ssrc_groups.len(), 258);
    assert!(vd
        .ssrc_groups
        .iter()
        .all(|g| g.semantics == Semantics::Fid && g.ssrcs.len() == 2));
    // Every grouped SSRC is a signalled source.
    let ssrcs: std::collections::HashSet<u32> = vd.sources.iter().map(|s| s.ssrc).collect();
    assert!(vd
        .ssrc_groups
        .iter()
        .flat_map(|g| &g.ssrcs)
        .all(|s| ssrcs.contains(s)));
    let owners: std::collections::HashSet<&str> = vd
        .sources
        .iter()
        .filter_map(|s| s.owner.as_deref())
        .collect();
    assert_eq!(owners.len(), 259, "258 participants and jvb");
    // ssrc-info before the parameters, and a msid wrapped at its space in the file.
    let s = vd
        .sources
        .iter()
        .find(|s| s.ssrc == 3061637266)
        .expect("source 3061637266");
    assert_eq!(
        s.owner.as_deref(),
        Some("loadtest0@conference.example.com/2b13ffef")
    );
    assert_eq!(s.owner_endpoint(), Some("2b13ffef"));
    assert_eq!(s.owner_form, OwnerForm::SsrcInfo);
    assert_eq!(
        s.parameter("msid"),
        Some("2b13ffef-video-1 2779da2b-d39c-4aa9-a141-0e36a35b4134-1")
    );
    assert_eq!(s.parameter("cname"), Some("eFOouIjXUtw0IzOV-1"));

    let t = video.transport.as_ref().expect("transport");
    assert_eq!(t.ufrag.as_deref(), Some("210bltna1fdanrtsu"));
    assert_eq!(t.pwd.as_deref(), Some("f667da89d0froosolnkd29rfr"));
    assert_eq!(t.web_sockets.len(), 1);
    assert!(t.web_sockets[0].starts_with(
        "wss://example-com-us-west-2b-s7-jvb-74-72-210.example.com:443/colibri-ws/default-id/"
    ));
    assert!(t.rtcp_mux);
    assert_eq!(t.fingerprints.len(), 1);
    let fp = &t.fingerprints[0];
    assert_eq!(
        (fp.hash.as_str(), fp.setup, fp.required),
        ("sha-256", Some(Setup::Actpass), Some(false))
    );
    assert!(fp.value.starts_with("AE:D4:A8:99"));
    assert_eq!(t.candidates.len(), 2);
    let srflx = &t.candidates[1];
    assert_eq!(srflx.kind, CandidateType::Srflx);
    assert_eq!(
        (srflx.ip.as_str(), srflx.port, srflx.priority),
        ("129.146.200.79", 10000, 1694498815)
    );
    assert_eq!(
        (srflx.rel_addr.as_deref(), srflx.rel_port),
        (Some("10.74.72.210"), Some(10000))
    );
    assert_eq!((srflx.generation, srflx.network), (Some(0), Some(0)));
    assert_eq!(
        srflx.id.as_deref(),
        Some("2057cc035a5117d90ffffffff9be9a78b")
    );

    assert_eq!(
        j.bundle().map(|g| g.contents.clone()),
        Some(vec!["audio".to_owned(), "video".to_owned()])
    );
    assert_eq!(
        j.start_muted,
        Some(StartMuted {
            audio: Some(true),
            video: Some(false)
        })
    );
    let bs = j.bridge_session.as_ref().expect("bridge-session");
    assert_eq!(
        (bs.id.as_str(), bs.region.as_deref()),
        ("46122_3438f0", Some("us-west-2"))
    );
    assert!(j.json_message.is_none() && j.reason.is_none() && j.other.is_empty());
}

#[test]
fn session_initiate_ljm() {
    let iq = fixture("jingle-session-initiate-ljm.xml");
    let j: Jingle = round_trip(jingle_child(&iq));
    assert_eq!(
        (j.action, j.sid.as_str(), j.initiator.as_deref()),
        (Action::SessionInitiate, "123", Some("focus"))
    );
    let ad = j.contents[0]
        .description
        .as_ref()
        .expect("audio description");
    assert!(ad.extmap_allow_mixed && ad.rtcp_mux);
    let dtmf = ad
        .payload_types
        .iter()
        .find(|p| p.id == 126)
        .expect("telephone-event");
    assert_eq!(dtmf.parameters, [Parameter::new("", "0-15")]);
    assert_eq!(ad.sources[0].ssrc, 4039389863);
    assert_eq!(ad.sources[0].owner, None);
    let vd = j.contents[1]
        .description
        .as_ref()
        .expect("video description");
    let rtx = &vd.payload_types[1];
    assert_eq!(
        (
            rtx.name.as_deref(),
            rtx.parameter("apt"),
            rtx.rtcp_fbs.len()
        ),
        (Some("rtx"), Some("100"), 3)
    );
    assert_eq!(
        vd.payload_types[0].rtcp_fbs[0],
        RtcpFb::new("ccm", Some("fir"))
    );
    let t = j.contents[1].transport.as_ref().expect("transport");
    assert_eq!(
        (t.ufrag.as_deref(), t.pwd.as_deref()),
        (Some("someufrag"), Some("somepwd"))
    );
    assert_eq!(
        t.candidates[0].id.as_deref(),
        Some("3cbe5aea5bde0c1401a60bbc2")
    );
    assert!(t.web_sockets.is_empty() && !t.rtcp_mux);
    assert_eq!(j.groups.len(), 1);
}

#[test]
fn session_initiate_with_json_sources() {
    let iq = fixture("jingle-session-initiate-json-sources.xml");
    let j: Jingle = round_trip(jingle_child(&iq));
    assert!(j
        .contents
        .iter()
        .all(|c| c.description.as_ref().is_some_and(|d| d.sources.is_empty())));
    let js = j.json_message.as_ref().expect("json-message");
    let owners: Vec<&str> = js.owners.iter().map(|o| o.owner.as_str()).collect();
    assert_eq!(owners, ["831de82b", "07af8d49", "95edea8d", "jvb"]);
    assert_eq!(js.source_count(), 8);
    // The serialized text is Jicofo's, byte for byte.
    let text = jingle_child(&iq)
        .get_child("json-message", "http://jitsi.org/jitmeet")
        .expect("json-message element")
        .text();
    assert_eq!(js.to_json(), text);
}

#[test]
fn json_sources_message() {
    let elem = fixture("json-sources-message.xml");
    let js: JsonSources = round_trip(&elem);
    assert_eq!(js.to_json(), elem.text());
    let first = &js.owners[0];
    assert_eq!(first.owner, "831de82b");
    assert_eq!(first.video.len(), 2);
    assert_eq!(
        first.video[0],
        JsonSource {
            ssrc: 257838819,
            msid: Some("831de82b-video-1 9bb949d4-5abd-4498-98e9-2be1222b8d3e-1".into()),
            ..JsonSource::default()
        }
    );
    assert_eq!(
        first.video_groups,
        [SsrcGroup {
            semantics: Semantics::Fid,
            ssrcs: vec![257838819, 865670341]
        }]
    );
    assert!(first.audio.is_empty() && first.audio_groups.is_empty());
    let jvb = &js.owners[3];
    assert_eq!(jvb.owner, "jvb");
    assert_eq!(jvb.video[0].cname.as_deref(), Some("mixed"));
    assert_eq!(jvb.audio[0].ssrc, 3659539811);

    // To XEP-0339 sources with the owner set, and back.
    let sources = jvb.audio_sources();
    assert_eq!(sources[0].owner.as_deref(), Some("jvb"));
    assert_eq!(
        sources[0].parameter("msid"),
        Some("mixedmslabel mixedlabelaudio0")
    );
    assert_eq!(sources[0].parameter("cname"), Some("mixed"));
    for o in &js.owners {
        let back = OwnerSources::from_sources(
            o.owner.clone(),
            &o.video_sources(),
            &o.video_groups,
            &o.audio_sources(),
            &o.audio_groups,
        );
        assert_eq!(&back, o);
    }
}

#[test]
fn json_sources_desktop_names_and_audio_groups() {
    let text = r#"{"sources":{"ab":[[{"s":1,"n":"ab-v0","m":"x y","v":"d"},{"s":2}],[["s",1,2],["f",1,3]],[{"s":4,"n":"ab-a0"}],[["f",4,5]]]}}"#;
    let js = JsonSources::parse_json(text).expect("valid");
    assert_eq!(js.to_json(), text);
    let v = js.owners[0].video_sources();
    assert_eq!(v[0].video_type.as_deref(), Some("desktop"));
    assert_eq!(v[0].name.as_deref(), Some("ab-v0"));
    assert_eq!(js.owners[0].video_groups[0].semantics, Semantics::Sim);
    assert_eq!(js.owners[0].audio_groups.len(), 1);
    // Owners are kept in document order, not sorted.
    let js = JsonSources::parse_json(r#"{"sources":{"zz":[],"aa":[[{"s":"7"}]]}}"#).expect("valid");
    assert_eq!(js.owners[0].owner, "zz");
    assert_eq!(js.owners[1].video[0].ssrc, 7);
}

#[test]
fn source_add_body_without_action_or_sid() {
    // The fixture is lib-jitsi-meet's bare <jingle> body; a real source-add
    // carries action and sid, which the test adds before parsing.
    let mut elem = fixture("jingle-source-add.xml");
    assert_eq!(
        Jingle::try_from(&elem),
        Err(Error::MissingAttribute {
            element: "jingle",
            attribute: "action"
        })
    );
    // Its contents parse on their own.
    let contents: Vec<Content> = elem
        .children()
        .map(Content::try_from)
        .collect::<Result<_, _>>()
        .expect("contents parse");
    assert_eq!(contents.len(), 2);

    set(&mut elem, "action", "source-add");
    set(&mut elem, "sid", "sid1");
    let j: Jingle = round_trip(&elem);
    assert!(j.action.is_source_add());
    assert_eq!(j.contents, contents);
    let audio = &j.contents[0];
    assert_eq!((audio.creator, audio.senders), (None, None));
    assert_eq!(
        audio.description.as_ref().map(|d| d.payload_types.len()),
        Some(0)
    );
    let vd = j.contents[1]
        .description
        .as_ref()
        .expect("video description");
    let names: Vec<(u32, &str)> = vd
        .sources
        .iter()
        .map(|s| (s.ssrc, s.name.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        names,
        [
            (1234, "source1"),
            (5678, "source1"),
            (4321, "source2"),
            (8765, "source2")
        ]
    );
    assert!(vd
        .sources
        .iter()
        .all(|s| s.owner.as_deref() == Some("peer") && s.owner_form == OwnerForm::Attribute));
    assert_eq!(
        vd.sources[2].parameters,
        [SourceParameter::new("msid", "stream2")]
    );
    assert_eq!(
        vd.ssrc_groups[1],
        SsrcGroup {
            semantics: Semantics::Fid,
            ssrcs: vec![4321, 8765]
        }
    );
}

#[test]
fn content_modify_source_frame_height() {
    let iq = fixture("jingle-content-modify-source-frame-height.xml");
    let j: Jingle = round_trip(jingle_child(&iq));
    assert_eq!(
        (j.action, j.sid.as_str(), j.initiator.as_deref()),
        (Action::ContentModify, "sid12345", Some("peer2"))
    );
    let c = &j.contents[0];
    assert_eq!(
        (c.name.as_str(), c.senders, c.description.is_none()),
        ("video", Some(Senders::Both), true)
    );
    assert_eq!(
        c.source_frame_heights,
        [
            SourceFrameHeight {
                max_height: 180,
                source_name: "8d519815-v0".into()
            },
            SourceFrameHeight {
                max_height: 2160,
                source_name: "8d519815-v1".into()
            },
        ]
    );
}

#[test]
fn ice_udp_transport_jitsi() {
    let t: IceUdpTransport = round_trip(&fixture("jingle-ice-udp-transport-jitsi.xml"));
    assert_eq!(t.ufrag.as_deref(), Some("2acq51d4p07v2m"));
    assert_eq!(t.pwd.as_deref(), Some("7lk9uul39gckit6t02oavv2r9j"));
    assert_eq!(t.fingerprints[0].hash, "sha-1");
    assert_eq!(
        t.fingerprints[0].value,
        "97:F2:B5:BE:DB:A6:00:B1:3E:40:B2:41:3C:0D:FC:E0:BD:B2:A0:E8"
    );
    assert_eq!(t.fingerprints[0].required, None);
    assert_eq!(t.candidates.len(), 3);
    assert_eq!(t.candidates[0].ip, "2a05:d014:fc7:54a1:8bfc:7248:3d1c:51a4");
    assert_eq!(t.candidates[2].rel_addr.as_deref(), Some("10.15.1.120"));
    assert_eq!(t.candidates[2].priority, 1677724415);
}

#[test]
fn colibri_web_socket_in_transport() {
    let ws = fixture("colibri-web-socket-element.xml");
    let url = ws.attr("url").expect("url").to_owned();
    let mut transport =
        Element::builder("transport", "urn:xmpp:jingle:transports:ice-udp:1").build();
    transport.append_child(ws.clone());
    transport.append_child(ws);
    let t: IceUdpTransport = round_trip(&transport);
    assert_eq!(t.web_sockets, [url.clone(), url]);
    assert!(t.web_sockets[0].ends_with("/c814b6a6?pwd=23btmrjol5i83thk1t9s78bnkk"));
}

#[test]
fn startmuted_element() {
    let s: StartMuted = round_trip(&fixture("startmuted-element.xml"));
    assert_eq!(
        s,
        StartMuted {
            audio: Some(true),
            video: Some(false)
        }
    );
}

#[test]
fn session_terminate_with_reason_and_bridge_session() {
    let xml = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'>\
        <reason><success/><text>bye</text></reason>\
        <bridge-session xmlns='http://jitsi.org/protocol/focus' id='b1' restart='true'/></jingle>";
    let j: Jingle = round_trip(&proto::parse_xml(xml).expect("xml"));
    assert_eq!(
        j.reason,
        Some(Reason {
            condition: ReasonCondition::Success,
            text: Some("bye".into())
        })
    );
    assert_eq!(
        j.bridge_session.as_ref().and_then(|b| b.restart),
        Some(true)
    );
    let alt = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'>\
        <reason><alternative-session><sid>s2</sid></alternative-session></reason></jingle>";
    let j: Jingle = round_trip(&proto::parse_xml(alt).expect("xml"));
    assert_eq!(
        j.reason.map(|r| r.condition),
        Some(ReasonCondition::AlternativeSession(Some("s2".into())))
    );
}

#[test]
fn every_action_parses_and_unknown_children_are_kept() {
    for a in Action::ALL {
        let xml = format!("<jingle xmlns='urn:xmpp:jingle:1' action='{a}' sid='x'><foo xmlns='urn:example' n='1'/></jingle>");
        let j: Jingle = round_trip(&proto::parse_xml(&xml).expect("xml"));
        assert_eq!(j.action, *a);
        assert_eq!(j.other.len(), 1);
    }
    assert!(Action::AddSource.is_source_add() && Action::RemoveSource.is_source_remove());
}

#[test]
fn rid_simulcast_in_lib_jitsi_meet_form() {
    let xml = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
        <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' rid='q'/>\
        <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' rid='h'/>\
        <rid-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'><source rid='q'/><source rid='h'/></rid-group>\
        </description>";
    let d: RtpDescription = round_trip(&proto::parse_xml(xml).expect("xml"));
    assert_eq!(
        d.rids.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["q", "h"]
    );
    assert_eq!(d.simulcast.as_deref(), Some("send q;h"));
    // A value the rid-group cannot hold goes to our element and survives.
    let mut d2 = d.clone();
    d2.simulcast = Some("send q;~h recv r".into());
    let back = RtpDescription::try_from(&Element::from(d2.clone())).expect("parse");
    assert_eq!(back, d2);
}

#[test]
fn unknown_action_is_feature_not_implemented() {
    let err =
        parse_str::<Jingle>("<jingle xmlns='urn:xmpp:jingle:1' action='session-explode' sid='1'/>")
            .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownAction {
            element: "jingle",
            action: "session-explode".into()
        }
    );
    assert_eq!(
        err.condition(),
        xmpp_parsers::stanza_error::DefinedCondition::FeatureNotImplemented
    );
}

#[test]
fn missing_sid() {
    let err = parse_str::<Jingle>("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'/>")
        .unwrap_err();
    assert_eq!(
        err,
        Error::MissingAttribute {
            element: "jingle",
            attribute: "sid"
        }
    );
    assert_eq!(
        err.condition(),
        xmpp_parsers::stanza_error::DefinedCondition::BadRequest
    );
}

#[test]
fn bad_ssrc() {
    for bad in ["abc", "-1", "4294967296"] {
        let xml = format!("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{bad}'/>");
        assert_eq!(
            parse_str::<Source>(&xml),
            Err(Error::InvalidAttribute {
                element: "source",
                attribute: "ssrc",
                value: bad.into()
            })
        );
    }
    let group = "<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='1'/><source ssrc='x'/></ssrc-group>";
    assert_eq!(
        parse_str::<SsrcGroup>(group),
        Err(Error::InvalidAttribute {
            element: "source",
            attribute: "ssrc",
            value: "x".into()
        })
    );
}

#[test]
fn bad_candidates() {
    let cand = |attrs: &str| {
        format!("<candidate xmlns='urn:xmpp:jingle:transports:ice-udp:1' component='1' foundation='1' ip='10.0.0.1' priority='1' protocol='udp' {attrs}/>")
    };
    assert_eq!(
        parse_str::<Candidate>(&cand("port='70000' type='host'")),
        Err(Error::InvalidAttribute {
            element: "candidate",
            attribute: "port",
            value: "70000".into()
        })
    );
    assert_eq!(
        parse_str::<Candidate>(&cand("port='1' type='bogus'")),
        Err(Error::InvalidAttribute {
            element: "candidate",
            attribute: "type",
            value: "bogus".into()
        })
    );
    assert_eq!(
        parse_str::<Candidate>(&cand("type='host'")),
        Err(Error::MissingAttribute {
            element: "candidate",
            attribute: "port"
        })
    );
}

#[test]
fn other_errors() {
    assert_eq!(
        parse_str::<Jingle>(
            "<jingle xmlns='urn:xmpp:jingle:0' action='session-initiate' sid='1'/>"
        ),
        Err(Error::WrongElement {
            expected: "jingle",
            expected_ns: "urn:xmpp:jingle:1",
            found: "jingle".into(),
            found_ns: "urn:xmpp:jingle:0".into(),
        })
    );
    assert!(matches!(
        parse_str::<JsonSources>(
            "<json-message xmlns='http://jitsi.org/jitmeet'>{\"sources\":</json-message>"
        ),
        Err(Error::Json {
            what: "json-message sources",
            ..
        })
    ));
    assert!(matches!(
        parse_str::<JsonSources>("<json-message xmlns='http://jitsi.org/jitmeet'>{\"sources\":{\"a\":[[{\"s\":-5}]]}}</json-message>"),
        Err(Error::Json { .. })
    ));
    // JSON escapes must not smuggle characters XML cannot carry.
    for bad in [
        r#"{"sources":{"a\u0001":[]}}"#,
        r#"{"sources":{"a":[[{"s":1,"m":"x\u0001"}]]}}"#,
        r#"{"sources":{"a":[[],[["\u0001",1]]]}}"#,
    ] {
        assert!(
            matches!(JsonSources::parse_json(bad), Err(Error::Json { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        parse_str::<Jingle>("<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='1'><reason><text>x</text></reason></jingle>"),
        Err(Error::MissingChild { element: "reason", child: "condition" })
    );
    assert_eq!(
        parse_str::<Jingle>("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='1'><content name='a' senders='everyone'/></jingle>"),
        Err(Error::InvalidAttribute { element: "content", attribute: "senders", value: "everyone".into() })
    );
    assert_eq!(
        parse_str::<Jingle>("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='1'><content name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='300'/></description></content></jingle>"),
        Err(Error::InvalidAttribute { element: "payload-type", attribute: "id", value: "300".into() })
    );
    assert_eq!(
        parse_str::<StartMuted>(
            "<startmuted xmlns='http://jitsi.org/jitmeet/start-muted' audio='yes'/>"
        ),
        Err(Error::InvalidAttribute {
            element: "startmuted",
            attribute: "audio",
            value: "yes".into()
        })
    );
}

#[test]
fn structural_comparison_detects_differences() {
    let x = |s: &str| proto::parse_xml(s).expect("xml");
    let base = canon(&x("<a xmlns='n' k='1'><b/><c>t</c><b i='2'/></a>"));
    // Attribute order and whitespace-only text do not matter...
    assert_eq!(
        base,
        canon(&x("<a k='1' xmlns='n'>\n <b/> <c>t</c>\n<b i='2'/></a>"))
    );
    // ...nor the order of siblings of different kinds.
    assert_eq!(
        base,
        canon(&x("<a xmlns='n' k='1'><c>t</c><b/><b i='2'/></a>"))
    );
    // Everything else does.
    for other in [
        "<a xmlns='n' k='2'><b/><c>t</c><b i='2'/></a>",
        "<a xmlns='n' k='1'><b i='2'/><c>t</c><b/></a>",
        "<a xmlns='n' k='1'><b/><c>u</c><b i='2'/></a>",
        "<a xmlns='m' k='1'><b/><c>t</c><b i='2'/></a>",
        "<a xmlns='n' k='1'><b/><c>t</c></a>",
    ] {
        assert_ne!(base, canon(&x(other)), "{other}");
    }
}
