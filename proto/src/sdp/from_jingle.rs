//! Jingle -> SDP.
//!
//! Attributes are written in Chromium's order (so that an SDP that came from
//! Chromium comes back byte for byte); Jingle facts with no SDP meaning go
//! last in each section as `a=x-jitsi-*` (see `docs/jingle-sdp.md`).

use super::candidate;
use super::{Attribute, Field, MediaSection, Origin, Sdp};
use crate::jingle::{
    Content, Creator, Group, IceUdpTransport, Jingle, OwnerForm, Role, RtpDescription, Senders,
};

/// Jingle's SDP, read from the initiator's side (as lib-jitsi-meet reads a
/// focus offer): `senders="initiator"` is `a=sendonly`. Only the contents
/// and groups take part; `o=` is a placeholder the caller replaces.
pub fn jingle_to_sdp(jingle: &Jingle) -> Sdp {
    contents_to_sdp(&jingle.contents, &jingle.groups, Role::Initiator)
}

/// SDP for `contents` and `groups`, with directions read from `view`'s side.
pub fn contents_to_sdp(contents: &[Content], groups: &[Group], view: Role) -> Sdp {
    let descriptions: Vec<&RtpDescription> = contents
        .iter()
        .filter(|c| !is_sctp(c))
        .filter_map(|c| c.description.as_ref())
        .collect();
    let transports: Vec<&IceUdpTransport> = contents
        .iter()
        .filter_map(|c| c.transport.as_ref())
        .collect();
    let session_mixed =
        !descriptions.is_empty() && descriptions.iter().all(|d| d.extmap_allow_mixed);
    let session_lite = !transports.is_empty() && transports.iter().all(|t| t.ice_lite);

    let mut attributes = Vec::new();
    if session_lite {
        attributes.push(Attribute::flag("ice-lite"));
    }
    for g in groups {
        let mut v = g.semantics.clone();
        for mid in &g.contents {
            v.push(' ');
            v.push_str(mid);
        }
        attributes.push(Attribute::value("group", v));
    }
    if session_mixed {
        attributes.push(Attribute::flag("extmap-allow-mixed"));
    }
    if let Some(ids) = msid_semantic(&descriptions) {
        attributes.push(Attribute::value("msid-semantic", ids));
    }

    Sdp {
        origin: Origin::default(),
        session_name: "-".into(),
        fields: vec![Field::new('t', "0 0")],
        attributes,
        media: contents
            .iter()
            .map(|c| media_section(c, view, session_mixed, session_lite))
            .collect(),
    }
}

fn is_sctp(c: &Content) -> bool {
    c.transport.as_ref().is_some_and(|t| t.sctp.is_some())
}

/// ` WMS <stream ids>` when the SDP carries media-level msids (a browser's
/// SDP): the sorted stream ids of the first audio and first video section,
/// as Chromium writes it.
fn msid_semantic(descriptions: &[&RtpDescription]) -> Option<String> {
    if descriptions.iter().all(|d| d.msid.is_none()) {
        return None;
    }
    let mut ids = std::collections::BTreeSet::new();
    for media in ["audio", "video"] {
        let Some(d) = descriptions.iter().find(|d| d.media.as_str() == media) else {
            continue;
        };
        let msids = d
            .msid
            .iter()
            .map(String::as_str)
            .chain(d.sources.iter().filter_map(|s| s.parameter("msid")));
        for msid in msids {
            if let Some(stream) = msid
                .split(' ')
                .next()
                .filter(|s| !s.is_empty() && *s != "-")
            {
                ids.insert(stream);
            }
        }
    }
    let mut v = String::from(" WMS");
    for id in ids {
        v.push(' ');
        v.push_str(id);
    }
    Some(v)
}

fn media_section(c: &Content, view: Role, session_mixed: bool, session_lite: bool) -> MediaSection {
    let sctp = c.transport.as_ref().and_then(|t| t.sctp.as_ref());
    let rtp = c.description.as_ref().filter(|_| sctp.is_none());
    let no_candidates = Vec::new();
    let candidates = c
        .transport
        .as_ref()
        .map_or(&no_candidates, |t| &t.candidates);
    let (addr_type, addr, port) = candidate::default_destination(candidates, 1);
    let bundle_only = c.sdp_attributes.iter().any(|a| a.name == "bundle-only");

    let mut m = MediaSection {
        media: c
            .description
            .as_ref()
            .map_or("application", |d| d.media.as_str())
            .to_owned(),
        port: if c.senders == Some(Senders::Rejected) || bundle_only {
            0
        } else {
            port
        },
        port_count: None,
        proto: if sctp.is_some() {
            "UDP/DTLS/SCTP"
        } else {
            "UDP/TLS/RTP/SAVPF"
        }
        .to_owned(),
        formats: match (sctp, rtp) {
            (Some(s), _) => vec![s.protocol.clone()],
            (None, Some(d)) => d.payload_types.iter().map(|p| p.id.to_string()).collect(),
            (None, None) => Vec::new(),
        },
        fields: vec![Field::new('c', format!("IN {addr_type} {addr}"))],
        attributes: Vec::new(),
        line: 0,
    };
    if let Some(d) = rtp {
        m.fields.extend(
            d.bandwidths
                .iter()
                .map(|b| Field::new('b', format!("{}:{}", b.kind, b.value))),
        );
    }

    let mut a = Attrs(Vec::new());
    let mut x = Attrs(Vec::new());
    if rtp.is_some() {
        let (t, addr, port) = candidate::default_destination(candidates, 2);
        a.val("rtcp", format!("{port} IN {t} {addr}"));
    }
    if let Some(t) = &c.transport {
        transport(&mut a, &mut x, t, session_lite);
    }
    a.val("mid", &c.name);
    if let Some(s) = sctp {
        a.val("sctp-port", s.number.to_string());
        if let Some(n) = s.streams {
            x.val("x-jitsi-sctp-streams", n.to_string());
        }
    }
    if let Some(d) = rtp {
        for h in &d.hdrexts {
            let dir = h
                .senders
                .map(|s| format!("/{}", s.to_direction(view)))
                .unwrap_or_default();
            a.val("extmap", format!("{}{dir} {}", h.id, h.uri));
        }
        if d.extmap_allow_mixed && !session_mixed {
            a.flag("extmap-allow-mixed");
        }
    }
    if let Some(s) = c.senders {
        a.flag(s.to_direction(view));
    }
    if let Some(d) = rtp {
        if let Some(msid) = &d.msid {
            a.val("msid", msid);
        }
        if d.rtcp_mux {
            a.flag("rtcp-mux");
        }
        if d.rtcp_rsize {
            a.flag("rtcp-rsize");
        }
    }
    for extra in &c.sdp_attributes {
        a.0.push(Attribute::new(&extra.name, extra.value.clone()));
    }
    if let Some(d) = rtp {
        description(&mut a, d);
    }

    match c.creator {
        Some(Creator::Initiator) => {}
        Some(Creator::Responder) => x.val("x-jitsi-creator", "responder"),
        None => x.val("x-jitsi-creator", "none"),
    }
    match (&c.description, sctp) {
        (None, None) => x.flag("x-jitsi-no-description"),
        (Some(_), Some(_)) => x.flag("x-jitsi-rtp-description"),
        _ => {}
    }
    if let Some(ssrc) = rtp.and_then(|d| d.ssrc) {
        x.val("x-jitsi-description-ssrc", ssrc.to_string());
    }
    if let Some(d) = rtp {
        for pt in &d.payload_types {
            if let Some(v) = pt.ptime {
                x.val("x-jitsi-ptime", format!("{} {v}", pt.id));
            }
            if let Some(v) = pt.maxptime {
                x.val("x-jitsi-maxptime", format!("{} {v}", pt.id));
            }
        }
    }
    for h in &c.source_frame_heights {
        x.val(
            "x-jitsi-source-frame-height",
            format!("{} {}", h.max_height, h.source_name),
        );
    }
    m.attributes = a.0;
    m.attributes.extend(x.0);
    m
}

struct Attrs(Vec<Attribute>);

impl Attrs {
    fn flag(&mut self, name: &str) {
        self.0.push(Attribute::flag(name));
    }
    fn val(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Attribute::value(name, value));
    }
}

fn transport(a: &mut Attrs, x: &mut Attrs, t: &IceUdpTransport, session_lite: bool) {
    for c in &t.candidates {
        a.val("candidate", candidate::format(c));
    }
    if let Some(u) = &t.ufrag {
        a.val("ice-ufrag", u);
    }
    if let Some(p) = &t.pwd {
        a.val("ice-pwd", p);
    }
    if !t.ice_options.is_empty() {
        a.val("ice-options", t.ice_options.join(" "));
    }
    if t.ice_lite && !session_lite {
        a.flag("ice-lite");
    }
    for f in &t.fingerprints {
        a.val("fingerprint", format!("{} {}", f.hash, f.value));
    }
    if let Some(setup) = t.fingerprints.iter().find_map(|f| f.setup) {
        a.val("setup", setup.as_str());
    }
    if t.fingerprints.iter().any(|f| f.cryptex == Some(true)) {
        a.flag("cryptex");
    }
    let empty = t.ufrag.is_none()
        && t.pwd.is_none()
        && t.fingerprints.is_empty()
        && t.candidates.is_empty()
        && t.web_sockets.is_empty()
        && !t.rtcp_mux
        && t.sctp.is_none()
        && t.ice_options.is_empty()
        && !t.ice_lite;
    if empty {
        x.flag("x-jitsi-empty-transport");
    }
    if t.rtcp_mux {
        x.flag("x-jitsi-transport-rtcp-mux");
    }
    for url in &t.web_sockets {
        x.val("x-jitsi-web-socket", url);
    }
    if let Some(required) = t.fingerprints.iter().find_map(|f| f.required) {
        x.val("x-jitsi-dtls-required", required.to_string());
    }
}

fn description(a: &mut Attrs, d: &RtpDescription) {
    if let Some(v) = d.maxptime {
        a.val("maxptime", v.to_string());
    }
    for pt in &d.payload_types {
        if let Some(name) = &pt.name {
            let mut v = format!("{} {name}", pt.id);
            if let Some(rate) = pt.clockrate {
                v.push_str(&format!("/{rate}"));
                if let Some(ch) = pt.channels {
                    v.push_str(&format!("/{ch}"));
                }
            }
            a.val("rtpmap", v);
        }
        for fb in &pt.rtcp_fbs {
            a.val(
                "rtcp-fb",
                rtcp_fb(&pt.id.to_string(), &fb.kind, fb.subtype.as_deref()),
            );
        }
        if let Some(v) = pt.rtcp_fb_trr_int {
            a.val("rtcp-fb", format!("{} trr-int {v}", pt.id));
        }
        if !pt.parameters.is_empty() {
            let params: Vec<String> = pt
                .parameters
                .iter()
                .map(|p| {
                    if p.name.is_empty() {
                        p.value.clone()
                    } else {
                        format!("{}={}", p.name, p.value)
                    }
                })
                .collect();
            a.val("fmtp", format!("{} {}", pt.id, params.join(";")));
        }
    }
    for fb in &d.rtcp_fbs {
        a.val("rtcp-fb", rtcp_fb("*", &fb.kind, fb.subtype.as_deref()));
    }
    if let Some(v) = d.rtcp_fb_trr_int {
        a.val("rtcp-fb", format!("* trr-int {v}"));
    }
    for g in &d.ssrc_groups {
        let mut v = g.semantics.to_string();
        for s in &g.ssrcs {
            v.push_str(&format!(" {s}"));
        }
        a.val("ssrc-group", v);
    }
    for s in &d.sources {
        let before = a.0.len();
        for p in &s.parameters {
            match &p.value {
                Some(v) => a.val("ssrc", format!("{} {}:{v}", s.ssrc, p.name)),
                None => a.val("ssrc", format!("{} {}", s.ssrc, p.name)),
            }
        }
        if let Some(n) = &s.name {
            a.val("ssrc", format!("{} name:{n}", s.ssrc));
        }
        if let Some(v) = &s.video_type {
            a.val("ssrc", format!("{} videoType:{v}", s.ssrc));
        }
        if let Some(o) = &s.owner {
            let key = match s.owner_form {
                OwnerForm::SsrcInfo => "owner",
                OwnerForm::Attribute => "x-jitsi-owner",
            };
            a.val("ssrc", format!("{} {key}:{o}", s.ssrc));
        }
        if a.0.len() == before {
            a.val("ssrc", s.ssrc.to_string());
        }
    }
    for r in &d.rids {
        let mut v = format!("{} {}", r.id, r.direction);
        if let Some(rest) = &r.restrictions {
            v.push_str(&format!(" {rest}"));
        }
        a.val("rid", v);
    }
    if let Some(v) = &d.simulcast {
        a.val("simulcast", v);
    }
}

fn rtcp_fb(pt: &str, kind: &str, subtype: Option<&str>) -> String {
    match subtype {
        Some(s) => format!("{pt} {kind} {s}"),
        None => format!("{pt} {kind}"),
    }
}
