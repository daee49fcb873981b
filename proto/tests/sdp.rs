//! SDP parser/writer and Jingle <-> SDP mapping.
//!
//! - Chromium's SDPs (captured, `tests/fixtures/sdp/`) parse and print back
//!   byte for byte, and SDP -> Jingle -> XML -> Jingle -> SDP reproduces them
//!   exactly once the caller-owned `o=` line is put back.
//! - Every Jingle fixture with contents survives Jingle -> SDP -> Jingle
//!   (equal types), also through the SDP text.
//! - Malformed input gives `Error::Sdp` with the line number.

mod common;

use std::collections::{BTreeMap, HashSet};

use minidom::Element;
use proto::jingle::*;
use proto::sdp::{contents_to_sdp, jingle_to_sdp, sdp_to_jingle, sdp_to_jingle_as, Sdp};
use proto::Error;

fn chromium(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if text.contains("\r\n") {
        text
    } else {
        text.replace('\n', "\r\n")
    }
}

const CHROMIUM: [&str; 4] = [
    "chromium-offer-audio-video.sdp",
    "chromium-offer-simulcast.sdp",
    "chromium-answer.sdp",
    "chromium-offer-datachannel.sdp",
];

/// SDP -> contents -> `<jingle>` XML text -> Jingle -> SDP.
fn through_jingle(sdp: &Sdp) -> (Jingle, Sdp) {
    let (contents, groups) = sdp_to_jingle(sdp).expect("Chromium SDP maps to Jingle");
    let mut j = Jingle::new(Action::SessionAccept, "s1");
    j.contents = contents;
    j.groups = groups;
    let xml = String::from(&Element::from(j.clone()));
    let back = Jingle::try_from(&proto::parse_xml(&xml).expect("own XML")).expect("own Jingle");
    assert_eq!(back, j, "Jingle -> XML -> Jingle");
    let mut out = jingle_to_sdp(&back);
    out.origin = sdp.origin.clone();
    (back, out)
}

/// Lines of an SDP grouped by kind (`m`, `a=rtpmap`...), for a readable diff.
fn kinds(text: &str) -> BTreeMap<String, Vec<&str>> {
    let mut map: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let kind = match line.strip_prefix("a=") {
            Some(a) => format!("a={}", a.split([':', ' ']).next().unwrap_or("")),
            None => line[..1].to_owned(),
        };
        map.entry(kind).or_default().push(line);
    }
    map
}

#[test]
fn chromium_sdp_parses_and_prints_back_exactly() {
    for name in CHROMIUM {
        let text = chromium(name);
        let sdp = Sdp::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sdp.to_string(), text, "{name}");
    }
}

#[test]
fn chromium_sdp_survives_jingle_exactly() {
    for name in CHROMIUM {
        let text = chromium(name);
        let sdp = Sdp::parse(&text).expect("parse");
        let (_, out) = through_jingle(&sdp);
        let out = out.to_string();
        // Every m-line, codec, feedback, extension, ssrc, group, fingerprint
        // and candidate, kind by kind...
        let (want, got) = (kinds(&text), kinds(&out));
        for kind in [
            "m",
            "c",
            "a=rtpmap",
            "a=fmtp",
            "a=rtcp-fb",
            "a=extmap",
            "a=ssrc",
            "a=ssrc-group",
            "a=fingerprint",
            "a=candidate",
            "a=rid",
            "a=simulcast",
            "a=msid",
            "a=group",
        ] {
            assert_eq!(got.get(kind), want.get(kind), "{name}: {kind}");
        }
        assert_eq!(got, want, "{name}: line sets");
        // ...and the very same text.
        assert_eq!(out, text, "{name}");
    }
}

#[test]
fn chromium_offer_in_jingle_terms() {
    let sdp = Sdp::parse(&chromium("chromium-offer-audio-video.sdp")).expect("parse");
    let (contents, groups) = sdp_to_jingle(&sdp).expect("map");
    assert_eq!(
        groups,
        [Group {
            semantics: "BUNDLE".into(),
            contents: vec!["0".into(), "1".into()]
        }]
    );
    let names: Vec<&str> = contents.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["0", "1"]);
    let audio = contents[0].description.as_ref().expect("audio");
    assert_eq!(audio.payload_types.len(), 8);
    assert_eq!(
        audio.payload_types[1].parameters,
        [Parameter::new("", "111/111")]
    );
    assert!(audio.extmap_allow_mixed && audio.rtcp_mux && audio.rtcp_rsize);
    assert_eq!(
        audio.sources[0].parameter("cname"),
        Some("1MZpT5fFvBtMHdXA")
    );
    assert_eq!(contents[0].senders, Some(Senders::Both));
    assert_eq!(
        contents[0].sdp_attributes,
        [SdpAttribute::new("rtcp-xr", Some("rcvr-rtt=all"))]
    );
    let video = contents[1].description.as_ref().expect("video");
    assert_eq!(video.payload_types.len(), 23);
    assert_eq!(video.payload_types[0].rtcp_fbs.len(), 5);
    assert_eq!(
        video.ssrc_groups,
        [SsrcGroup {
            semantics: Semantics::Fid,
            ssrcs: vec![1696165911, 2251078133]
        }]
    );
    assert_eq!(
        video.msid.as_deref(),
        Some("71477573-373f-4971-891b-b579307d4ef5 86a36a4d-ed68-4a74-b659-00a6c5d3e37e")
    );
    let t = contents[1].transport.as_ref().expect("transport");
    assert_eq!(t.ice_options, ["trickle"]);
    assert_eq!(t.candidates.len(), 4);
    assert_eq!(t.candidates[2].tcptype.as_deref(), Some("active"));
    assert_eq!(t.candidates[1].network, Some(2));
    assert_eq!(t.fingerprints[0].setup, Some(Setup::Actpass));
}

#[test]
fn chromium_simulcast_answer_and_datachannel() {
    let sdp = Sdp::parse(&chromium("chromium-offer-simulcast.sdp")).expect("parse");
    let (j, _) = through_jingle(&sdp);
    let video = j.contents[1].description.as_ref().expect("video");
    let rids: Vec<(&str, &str)> = video
        .rids
        .iter()
        .map(|r| (r.id.as_str(), r.direction.as_str()))
        .collect();
    assert_eq!(rids, [("q", "send"), ("h", "send"), ("f", "send")]);
    assert_eq!(video.simulcast.as_deref(), Some("send q;h;f"));
    // In Jingle it is lib-jitsi-meet's rid-group.
    let xml = String::from(&Element::from(j.contents[1].clone()));
    assert!(xml.contains("<rid-group"), "{xml}");

    let sdp = Sdp::parse(&chromium("chromium-answer.sdp")).expect("parse");
    let (contents, _) = sdp_to_jingle(&sdp).expect("map");
    let t = contents[1].transport.as_ref().expect("transport");
    assert_eq!(t.fingerprints[0].setup, Some(Setup::Active));
    assert!(t.candidates.is_empty());
    assert_eq!(sdp.media[1].port, 9);

    let sdp = Sdp::parse(&chromium("chromium-offer-datachannel.sdp")).expect("parse");
    let (contents, groups) = sdp_to_jingle(&sdp).expect("map");
    assert_eq!(groups[0].contents, ["0", "1", "2"]);
    let data = &contents[2];
    assert!(data.description.is_none());
    let sctp = data
        .transport
        .as_ref()
        .and_then(|t| t.sctp.as_ref())
        .expect("sctp");
    assert_eq!(
        (sctp.number, sctp.protocol.as_str()),
        (5000, "webrtc-datachannel")
    );
    assert_eq!(
        data.sdp_attributes,
        [SdpAttribute::new("max-message-size", Some("262144"))]
    );
}

fn jingle_fixture(rel: &str) -> Jingle {
    let root = common::fixture_xml(&format!("jitsi-xml/{rel}"));
    let mut elem = if root.name() == "jingle" {
        root
    } else {
        root.get_child("jingle", "urn:xmpp:jingle:1")
            .expect("jingle child")
            .clone()
    };
    if elem.attr("action").is_none() {
        // lib-jitsi-meet's bare source-add body (see tests/jingle.rs).
        for (k, v) in [("action", "source-add"), ("sid", "sid1")] {
            let k = minidom::rxml::NcName::try_from(k).expect("name");
            elem.set_attr(minidom::rxml::Namespace::NONE, k, v);
        }
    }
    Jingle::try_from(&elem).expect("fixture parses")
}

const JINGLE_WITH_CONTENTS: [&str; 5] = [
    "jingle-session-initiate-jitsi.xml",
    "jingle-session-initiate-ljm.xml",
    "jingle-session-initiate-json-sources.xml",
    "jingle-source-add.xml",
    "jingle-content-modify-source-frame-height.xml",
];

#[test]
fn jingle_fixtures_survive_sdp() {
    for rel in JINGLE_WITH_CONTENTS {
        let j = jingle_fixture(rel);
        let sdp = jingle_to_sdp(&j);
        let (contents, groups) = sdp_to_jingle(&sdp).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(contents, j.contents, "{rel}: contents");
        assert_eq!(groups, j.groups, "{rel}: groups");
        // Also through the text, and the text is stable.
        let text = sdp.to_string();
        let reparsed = Sdp::parse(&text).unwrap_or_else(|e| panic!("{rel}: {e}\n{text}"));
        assert_eq!(reparsed.to_string(), text, "{rel}");
        assert!(reparsed == sdp, "{rel}: parse(write(sdp)) != sdp");
        let (contents, _) = sdp_to_jingle(&reparsed).expect("map");
        assert_eq!(contents, j.contents, "{rel}: through text");
        assert_eq!(jingle_to_sdp(&j).to_string(), text, "{rel}: deterministic");
    }
}

#[test]
fn jitsi_session_initiate_as_sdp() {
    let j = jingle_fixture("jingle-session-initiate-jitsi.xml");
    let text = jingle_to_sdp(&j).to_string();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("a=ssrc-group:FID "))
            .count(),
        258
    );
    let ssrcs: HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("a=ssrc:"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(ssrcs.len(), 518);
    for want in [
        "a=group:BUNDLE audio video",
        "m=audio 10000 UDP/TLS/RTP/SAVPF 111 103 104 126",
        "c=IN IP4 129.146.200.79",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:2 1 udp 1694498815 129.146.200.79 10000 typ srflx raddr 10.74.72.210 rport 10000 generation 0 network-id 0 id 2057cc035a5117d90ffffffff9be9a78b",
        "a=fingerprint:sha-256 AE:D4:A8:99:38:9A:9A:D7:63:7E:CE:12:A9:90:B1:49:3D:C9:3C:E0:DF:66:87:D6:76:B7:7A:68:85:B4:BF:BE",
        "a=setup:actpass",
        "a=mid:audio",
        "a=sendrecv",
        "a=maxptime:60",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtcp-fb:100 ccm fir",
        "a=fmtp:100 x-google-start-bitrate=800",
        "a=ssrc:2650722827 msid:mixedmslabel mixedlabelaudio0",
        "a=ssrc:2650722827 owner:jvb",
        "a=ssrc:3061637266 owner:loadtest0@conference.example.com/2b13ffef",
        "a=x-jitsi-web-socket:wss://example-com-us-west-2b-s7-jvb-74-72-210.example.com:443/colibri-ws/default-id/255b0900f17cdd9e/63653b5f?pwd=f667da89d0froosolnkd29rfr",
        "a=x-jitsi-transport-rtcp-mux",
        "a=x-jitsi-dtls-required:false",
    ] {
        assert!(lines.contains(&want), "missing {want:?}");
    }
    // No startmuted/bridge-session in SDP: those stay in the Jingle.
    assert!(!text.contains("46122_3438f0"));
}

#[test]
fn ljm_session_initiate_as_sdp() {
    let j = jingle_fixture("jingle-session-initiate-ljm.xml");
    let sdp = jingle_to_sdp(&j);
    let text = sdp.to_string();
    assert!(text.starts_with("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio video\r\na=extmap-allow-mixed\r\nm=audio "), "{text}");
    assert!(text.contains("\r\na=fmtp:126 0-15\r\n"));
    assert!(text.contains("\r\na=candidate:1 1 udp 2130706431 10.0.0.1 10000 typ host generation 0 network-id 0 id 3cbe5aea5bde0c1401a60bbc2\r\n"));
    assert!(text.contains("\r\na=ssrc:4039389863 cname:mixed\r\n"));
    // extmap-allow-mixed is in every description, so it is session-level only.
    assert_eq!(text.matches("a=extmap-allow-mixed").count(), 1);
}

#[test]
fn senders_follow_the_point_of_view() {
    let mut c = Content::new("a");
    c.description = Some(RtpDescription::new(Media::Audio));
    for (senders, initiator_view, responder_view) in [
        (Senders::Initiator, "a=sendonly", "a=recvonly"),
        (Senders::Responder, "a=recvonly", "a=sendonly"),
        (Senders::Both, "a=sendrecv", "a=sendrecv"),
        (Senders::None, "a=inactive", "a=inactive"),
    ] {
        c.senders = Some(senders);
        for (view, line) in [
            (Role::Initiator, initiator_view),
            (Role::Responder, responder_view),
        ] {
            let sdp = contents_to_sdp(std::slice::from_ref(&c), &[], view);
            assert!(
                sdp.to_string().contains(&format!("\r\n{line}\r\n")),
                "{senders} {view:?}"
            );
            let (back, _) = sdp_to_jingle_as(&sdp, view).expect("map");
            assert_eq!(back[0].senders, Some(senders));
        }
    }
    // lib-jitsi-meet's "rejected" is port 0.
    c.senders = Some(Senders::Rejected);
    let sdp = contents_to_sdp(std::slice::from_ref(&c), &[], Role::Initiator);
    assert_eq!(sdp.media[0].port, 0);
    assert_eq!(
        sdp_to_jingle(&sdp).expect("map").0[0].senders,
        Some(Senders::Rejected)
    );
}

const MINIMAL: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

#[test]
fn wildcard_feedback_and_extras_round_trip() {
    let text = format!(
        "{MINIMAL}m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\nb=AS:2000\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
         a=mid:v\r\na=extmap:3/recvonly urn:x\r\na=recvonly\r\na=rtcp-mux\r\na=bogus:1 2\r\na=flag\r\n\
         a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 trr-int 50\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
         a=rtcp-fb:* nack\r\na=rtcp-fb:* ccm fir\r\na=rtcp-fb:* trr-int 100\r\na=ssrc:5\r\na=ssrc:6 cname:x\r\na=ssrc:6 label\r\n"
    );
    let sdp = Sdp::parse(&text).expect("parse");
    let (contents, _) = sdp_to_jingle(&sdp).expect("map");
    let d = contents[0].description.as_ref().expect("description");
    assert_eq!(
        d.rtcp_fbs,
        [RtcpFb::new("nack", None), RtcpFb::new("ccm", Some("fir"))]
    );
    assert_eq!(d.rtcp_fb_trr_int, Some(100));
    assert_eq!(d.payload_types[0].rtcp_fb_trr_int, Some(50));
    assert_eq!(
        d.bandwidths,
        [Bandwidth {
            kind: "AS".into(),
            value: "2000".into()
        }]
    );
    assert_eq!(d.hdrexts[0].senders, Some(Senders::Responder));
    assert_eq!(
        d.sources[1].parameters,
        [
            SourceParameter::new("cname", "x"),
            SourceParameter {
                name: "label".into(),
                value: None
            }
        ]
    );
    assert_eq!(contents[0].creator, Some(Creator::Initiator));
    assert!(contents[0].transport.is_none());
    assert_eq!(
        contents[0].sdp_attributes,
        [
            SdpAttribute::new("bogus", Some("1 2")),
            SdpAttribute::new("flag", None)
        ]
    );
    let mut out = proto::sdp::contents_to_sdp(&contents, &[], Role::Initiator);
    out.origin = sdp.origin.clone();
    assert_eq!(out.to_string(), text);
}

#[test]
fn session_level_ice_and_dtls_apply_to_every_section() {
    // Firefox's layout: fingerprint and ice-options at session level. They
    // come back per section (a documented normalisation).
    let text = format!(
        "{MINIMAL}a=fingerprint:sha-256 AA:BB\r\na=ice-options:trickle\r\na=ice-lite\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=setup:passive\r\na=mid:0\r\n"
    );
    let sdp = Sdp::parse(&text).expect("parse");
    let (contents, _) = sdp_to_jingle(&sdp).expect("map");
    let t = contents[0].transport.as_ref().expect("transport");
    assert_eq!(t.fingerprints[0].value, "AA:BB");
    assert_eq!(t.fingerprints[0].setup, Some(Setup::Passive));
    assert_eq!(t.ice_options, ["trickle"]);
    assert!(t.ice_lite);
    let out = jingle_to_sdp(&Jingle {
        contents,
        ..Jingle::new(Action::SessionAccept, "x")
    })
    .to_string();
    assert!(out.contains("\r\na=ice-lite\r\nm=audio"));
    assert!(out.contains("\r\na=ice-options:trickle\r\na=fingerprint:sha-256 AA:BB\r\na=setup:passive\r\na=mid:0\r\n"), "{out}");
}

#[test]
fn default_destination_prefers_ipv4_and_reflexive_like_chromium() {
    let cand = |ip: &str, port: u16, kind: CandidateType, protocol: &str| Candidate {
        component: 1,
        foundation: "1".into(),
        generation: None,
        id: None,
        ip: ip.into(),
        port,
        priority: 1,
        protocol: protocol.into(),
        kind,
        rel_addr: None,
        rel_port: None,
        network: None,
        tcptype: None,
    };
    let mut c = Content::new("0");
    c.description = Some(RtpDescription::new(Media::Audio));
    let cases = [
        (
            vec![
                cand("fd00::1", 1, CandidateType::Host, "udp"),
                cand("10.0.0.1", 2, CandidateType::Host, "udp"),
                cand("fd00::2", 3, CandidateType::Relay, "udp"),
            ],
            2,
            "IN IP4 10.0.0.1",
        ),
        (
            vec![
                cand("fd00::1", 1, CandidateType::Host, "udp"),
                cand("fd00::2", 3, CandidateType::Srflx, "udp"),
            ],
            3,
            "IN IP6 fd00::2",
        ),
        (
            vec![cand("abc.local", 1, CandidateType::Host, "udp")],
            9,
            "IN IP4 0.0.0.0",
        ),
        (
            vec![cand("10.0.0.1", 7, CandidateType::Host, "tcp")],
            9,
            "IN IP4 0.0.0.0",
        ),
    ];
    for (cands, port, conn) in cases {
        c.transport = Some(IceUdpTransport {
            candidates: cands,
            ..IceUdpTransport::default()
        });
        let sdp = contents_to_sdp(std::slice::from_ref(&c), &[], Role::Initiator);
        assert_eq!(
            (sdp.media[0].port, sdp.media[0].connection()),
            (port, Some(conn))
        );
    }
}

fn sdp_err(text: &str) -> (usize, String) {
    match Sdp::parse(text).and_then(|s| sdp_to_jingle(&s).map(|_| ())) {
        Err(Error::Sdp { line, reason }) => (line, reason),
        other => panic!("expected an SDP error, got {other:?} for\n{text}"),
    }
}

#[test]
fn malformed_sdp_names_the_line() {
    let m = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n";
    let cases: [(String, usize, &str); 13] = [
        ("v=1\r\n".into(), 1, "v=0"),
        ("o=- 1 2 IN IP4 127.0.0.1\r\n".into(), 1, "v=0"),
        ("v=0\r\no=- 1 IN IP4 127.0.0.1\r\ns=-\r\n".into(), 2, "6 fields"),
        ("v=0\r\no=- 1 x IN IP4 127.0.0.1\r\ns=-\r\n".into(), 2, "session version"),
        ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(), 0, "missing s="),
        (format!("{MINIMAL}{m}this is junk\r\n"), 6, "not a <type>=<value> line"),
        (format!("{MINIMAL}{m}q=what\r\n"), 6, "unknown line type"),
        (format!("{MINIMAL}{m}t=0 0\r\n"), 6, "not allowed"),
        (format!("{MINIMAL}m=audio nine RTP/AVP 0\r\n"), 5, "invalid port"),
        (format!("{MINIMAL}m=audio 9 RTP/AVP opus\r\n"), 5, "invalid payload type"),
        (format!("{MINIMAL}{m}a=mid:0\r\na=candidate:1 1 udp 2122194687 192.0.2.2 99999 typ host\r\n"), 7, "invalid port \"99999\""),
        (format!("{MINIMAL}{m}a=ssrc:12x cname:a\r\n"), 6, "invalid ssrc \"12x\""),
        (format!("{MINIMAL}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"), 5, "without a=sctp-port"),
    ];
    for (text, line, reason) in cases {
        let (got_line, got_reason) = sdp_err(&text);
        assert_eq!(got_line, line, "{reason}: {got_reason}");
        assert!(
            got_reason.contains(reason),
            "{got_reason:?} should contain {reason:?}"
        );
    }
    // Characters XML cannot carry never reach Jingle (minidom's writer would panic).
    let (line, reason) = sdp_err(&format!("{MINIMAL}{m}a=foo:\u{1}x\r\n"));
    assert_eq!(line, 6);
    assert!(reason.contains("control character"), "{reason}");
    // The Display form names the line.
    let err = Sdp::parse(&format!("{MINIMAL}{m}junk")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SDP line 6: not a <type>=<value> line: \"junk\""
    );
    // More candidate and attribute errors.
    for (attr, reason) in [
        (
            "a=candidate:1 1 udp 5 1.2.3.4 9 type host",
            "expected \"typ\"",
        ),
        ("a=candidate:1 1 udp 5 1.2.3.4 9 typ bogus", "invalid type"),
        ("a=candidate:1 1 udp 5 1.2.3.4", "at least 8 fields"),
        (
            "a=candidate:1 1 udp 5 1.2.3.4 9 typ host generation",
            "has no value",
        ),
        ("a=rtpmap:0 PCMU/fast", "invalid clock rate"),
        ("a=extmap:x urn:y", "invalid extmap id"),
        ("a=setup:sometimes", "invalid setup"),
        ("a=fingerprint:sha-256", "expected <hash> <fingerprint>"),
    ] {
        let (line, got) = sdp_err(&format!("{MINIMAL}{m}{attr}\r\n"));
        assert_eq!(line, 6, "{attr}");
        assert!(got.contains(reason), "{attr}: {got:?}");
    }
}

#[test]
fn lf_line_ends_and_blank_lines_are_accepted() {
    let crlf = chromium("chromium-answer.sdp");
    let lf = crlf.replace("\r\n", "\n");
    assert_eq!(
        Sdp::parse(&lf).expect("LF"),
        Sdp::parse(&crlf).expect("CRLF")
    );
    assert!(Sdp::parse(&format!("{MINIMAL}\r\nm=audio 9 RTP/AVP 0\r\n")).is_ok());
}
