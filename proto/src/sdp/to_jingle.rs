//! SDP -> Jingle contents and groups.
//!
//! Each media section becomes a [`Content`]; media-level attributes that
//! Jingle does not model are kept verbatim in [`Content::sdp_attributes`].
//! Session-level ICE/DTLS attributes (Firefox puts `a=fingerprint` there)
//! apply to every section that lacks its own; session-level
//! `a=extmap-allow-mixed` and `a=ice-lite` set the flag on every
//! description/transport. Other session-level attributes are not carried.

use std::collections::HashMap;

use super::candidate;
use super::{Attribute, MediaSection, Sdp};
use crate::error::{Error, Result};
use crate::jingle::{
    Bandwidth, Content, Creator, Fingerprint, Group, IceUdpTransport, Media, OwnerForm, Parameter,
    PayloadType, Rid, Role, RtcpFb, RtpDescription, RtpHdrext, SctpMap, SdpAttribute, Semantics,
    Senders, Setup, Source, SourceFrameHeight, SourceParameter, SsrcGroup,
};

/// The contents and groups of `sdp`, directions read from the initiator's
/// side (lib-jitsi-meet's convention: `a=sendonly` is `senders="initiator"`).
pub fn sdp_to_jingle(sdp: &Sdp) -> Result<(Vec<Content>, Vec<Group>)> {
    sdp_to_jingle_as(sdp, Role::Initiator)
}

/// The contents and groups of `sdp`, whose directions are `view`'s.
pub fn sdp_to_jingle_as(sdp: &Sdp, view: Role) -> Result<(Vec<Content>, Vec<Group>)> {
    let groups = sdp
        .attributes
        .iter()
        .filter(|a| a.name == "group")
        .map(|a| {
            let mut parts = a.value.as_deref().unwrap_or("").split(' ');
            Group {
                semantics: parts.next().unwrap_or("").to_owned(),
                contents: parts.filter(|p| !p.is_empty()).map(str::to_owned).collect(),
            }
        })
        .collect();
    let contents = sdp
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| content(sdp, i, m, view))
        .collect::<Result<_>>()?;
    Ok((contents, groups))
}

/// Attributes this module turns into Jingle; the rest are carried verbatim.
fn consumed(name: &str, rtp: bool, sctp: bool) -> bool {
    match name {
        "mid"
        | "sendrecv"
        | "sendonly"
        | "recvonly"
        | "inactive"
        | "ice-ufrag"
        | "ice-pwd"
        | "ice-options"
        | "ice-lite"
        | "fingerprint"
        | "setup"
        | "cryptex"
        | "candidate"
        | "x-jitsi-creator"
        | "x-jitsi-no-description"
        | "x-jitsi-rtp-description"
        | "x-jitsi-empty-transport"
        | "x-jitsi-transport-rtcp-mux"
        | "x-jitsi-web-socket"
        | "x-jitsi-dtls-required"
        | "x-jitsi-source-frame-height" => true,
        "rtpmap"
        | "fmtp"
        | "rtcp-fb"
        | "extmap"
        | "extmap-allow-mixed"
        | "rtcp-mux"
        | "rtcp-rsize"
        | "msid"
        | "ssrc"
        | "ssrc-group"
        | "rid"
        | "simulcast"
        | "maxptime"
        | "rtcp"
        | "x-jitsi-description-ssrc"
        | "x-jitsi-ptime"
        | "x-jitsi-maxptime" => rtp,
        "sctp-port" | "sctpmap" | "x-jitsi-sctp-streams" => sctp,
        _ => false,
    }
}

fn val(a: &Attribute) -> &str {
    a.value.as_deref().unwrap_or("")
}

fn num<T: std::str::FromStr>(a: &Attribute, what: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| a.error(format!("invalid {what} {v:?}")))
}

/// `<first> <rest>`, or an error naming what is missing.
fn split2<'a>(a: &Attribute, v: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    v.split_once(' ')
        .ok_or_else(|| a.error(format!("expected {what}")))
}

fn content(sdp: &Sdp, index: usize, m: &MediaSection, view: Role) -> Result<Content> {
    let sctp = m.proto.ends_with("SCTP");
    let has = |name: &str| m.attr(name).is_some();
    let rtp = !sctp && !has("x-jitsi-no-description");

    let mut c = Content::new(m.mid().map_or_else(|| index.to_string(), str::to_owned));
    c.creator = match m.attr("x-jitsi-creator") {
        None => Some(Creator::Initiator),
        Some(a) => match val(a) {
            "responder" => Some(Creator::Responder),
            "initiator" => Some(Creator::Initiator),
            "none" => None,
            other => return Err(a.error(format!("unknown creator {other:?}"))),
        },
    };
    c.senders = if m.port == 0 && !has("bundle-only") {
        Some(Senders::Rejected)
    } else {
        m.attributes
            .iter()
            .find_map(|a| Senders::from_direction(&a.name, view))
    };
    c.transport = transport(sdp, m, sctp)?;
    c.description = if rtp {
        Some(description(sdp, m, view)?)
    } else if sctp && has("x-jitsi-rtp-description") {
        Some(RtpDescription::new(Media::parse(&m.media)))
    } else {
        None
    };
    for a in &m.attributes {
        if a.name == "x-jitsi-source-frame-height" {
            let (h, name) = split2(a, val(a), "<maxHeight> <sourceName>")?;
            c.source_frame_heights.push(SourceFrameHeight {
                max_height: num(a, "maxHeight", h)?,
                source_name: name.to_owned(),
            });
        } else if !consumed(&a.name, rtp, sctp) {
            c.sdp_attributes.push(SdpAttribute {
                name: a.name.clone(),
                value: a.value.clone(),
            });
        }
    }
    Ok(c)
}

fn transport(sdp: &Sdp, m: &MediaSection, sctp: bool) -> Result<Option<IceUdpTransport>> {
    // A media-level attribute, else the session-level one.
    let pick = |name: &str| m.attr(name).or_else(|| sdp.attr(name));
    let mut t = IceUdpTransport {
        ufrag: pick("ice-ufrag").map(|a| val(a).to_owned()),
        pwd: pick("ice-pwd").map(|a| val(a).to_owned()),
        ice_options: pick("ice-options")
            .map(|a| val(a).split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        ice_lite: pick("ice-lite").is_some(),
        rtcp_mux: m.attr("x-jitsi-transport-rtcp-mux").is_some(),
        ..IceUdpTransport::default()
    };
    let setup: Option<Setup> = match pick("setup") {
        Some(a) => Some(num(a, "setup", val(a))?),
        None => None,
    };
    let required: Option<bool> = match m.attr("x-jitsi-dtls-required") {
        Some(a) => Some(num(a, "x-jitsi-dtls-required", val(a))?),
        None => None,
    };
    let cryptex = pick("cryptex").map(|_| true);
    let mut fingerprints: Vec<&Attribute> = m.attrs("fingerprint").collect();
    if fingerprints.is_empty() {
        fingerprints = sdp
            .attributes
            .iter()
            .filter(|a| a.name == "fingerprint")
            .collect();
    }
    for a in fingerprints {
        let (hash, value) = split2(a, val(a), "<hash> <fingerprint>")?;
        t.fingerprints.push(Fingerprint {
            hash: hash.to_owned(),
            setup,
            required,
            cryptex,
            value: value.to_owned(),
        });
    }
    for a in &m.attributes {
        match a.name.as_str() {
            "candidate" => t.candidates.push(candidate::parse(a)?),
            "x-jitsi-web-socket" => t.web_sockets.push(val(a).to_owned()),
            _ => {}
        }
    }
    if sctp {
        t.sctp = Some(sctp_map(m)?);
    }
    let empty = t == IceUdpTransport::default();
    Ok((!empty || m.attr("x-jitsi-empty-transport").is_some()).then_some(t))
}

fn sctp_map(m: &MediaSection) -> Result<SctpMap> {
    let streams = match m.attr("x-jitsi-sctp-streams") {
        Some(a) => Some(num(a, "x-jitsi-sctp-streams", val(a))?),
        None => None,
    };
    if let Some(a) = m.attr("sctp-port") {
        return Ok(SctpMap {
            number: num(a, "sctp-port", val(a))?,
            protocol: m
                .formats
                .first()
                .cloned()
                .unwrap_or_else(|| "webrtc-datachannel".to_owned()),
            streams,
        });
    }
    // The old form: `m=application 9 DTLS/SCTP 5000` + `a=sctpmap:5000 webrtc-datachannel 1024`.
    if let Some(a) = m.attr("sctpmap") {
        let mut parts = val(a).split(' ');
        return Ok(SctpMap {
            number: num(a, "sctpmap port", parts.next().unwrap_or(""))?,
            protocol: parts.next().unwrap_or("webrtc-datachannel").to_owned(),
            streams: match parts.next() {
                Some(s) => Some(num(a, "sctpmap streams", s)?),
                None => streams,
            },
        });
    }
    Err(Error::Sdp {
        line: m.line,
        reason: "SCTP m-line without a=sctp-port".into(),
    })
}

fn description(sdp: &Sdp, m: &MediaSection, view: Role) -> Result<RtpDescription> {
    let mut d = RtpDescription::new(Media::parse(&m.media));
    // Indexes into `d.payload_types` and `d.sources`; both vectors only
    // grow, so every index in these maps stays valid.
    let mut pts: HashMap<u8, usize> = HashMap::new();
    for f in &m.formats {
        let id: u8 = f.parse().map_err(|_| Error::Sdp {
            line: m.line,
            reason: format!("invalid payload type {f:?}"),
        })?;
        pts.insert(id, d.payload_types.len());
        d.payload_types.push(PayloadType {
            id,
            ..PayloadType::default()
        });
    }
    for b in m.fields.iter().filter(|f| f.kind == 'b') {
        let (kind, value) = b.value.split_once(':').ok_or_else(|| Error::Sdp {
            line: m.line,
            reason: format!("b={} is not <type>:<value>", b.value),
        })?;
        d.bandwidths.push(Bandwidth {
            kind: kind.to_owned(),
            value: value.to_owned(),
        });
    }
    d.extmap_allow_mixed = sdp.attr("extmap-allow-mixed").is_some();
    let mut sources: HashMap<u32, usize> = HashMap::new();

    for a in &m.attributes {
        let v = val(a);
        // The payload type a per-codec attribute is about, if it is in the m-line.
        let pt_of = |s: &str| -> Result<Option<usize>> {
            let id: u8 = num(a, "payload type", s)?;
            Ok(pts.get(&id).copied())
        };
        match a.name.as_str() {
            "rtpmap" => {
                let (id, enc) = split2(a, v, "<pt> <encoding>")?;
                if let Some(i) = pt_of(id)? {
                    let pt = &mut d.payload_types[i];
                    if pt.name.is_none() {
                        let mut parts = enc.split('/');
                        pt.name = parts.next().map(str::to_owned);
                        pt.clockrate = parts.next().map(|r| num(a, "clock rate", r)).transpose()?;
                        pt.channels = parts.next().map(|c| num(a, "channels", c)).transpose()?;
                    }
                }
            }
            "fmtp" => {
                let (id, params) = split2(a, v, "<pt> <parameters>")?;
                if let Some(i) = pt_of(id)? {
                    let pt = &mut d.payload_types[i];
                    if pt.parameters.is_empty() {
                        pt.parameters = params
                            .split(';')
                            .map(str::trim_start)
                            .filter(|p| !p.is_empty())
                            .map(|p| match p.split_once('=') {
                                Some((k, v)) => Parameter::new(k, v),
                                None => Parameter::new("", p),
                            })
                            .collect();
                    }
                }
            }
            "rtcp-fb" => {
                let (id, fb) = split2(a, v, "<pt> <feedback>")?;
                let (kind, subtype) = match fb.split_once(' ') {
                    Some((k, s)) => (k, Some(s)),
                    None => (fb, None),
                };
                let trr = match (kind, subtype) {
                    ("trr-int", Some(s)) => Some(num::<u32>(a, "trr-int", s)?),
                    _ => None,
                };
                let (fbs, trr_slot) = if id == "*" {
                    (&mut d.rtcp_fbs, &mut d.rtcp_fb_trr_int)
                } else if let Some(i) = pt_of(id)? {
                    let pt = &mut d.payload_types[i];
                    (&mut pt.rtcp_fbs, &mut pt.rtcp_fb_trr_int)
                } else {
                    continue;
                };
                match trr {
                    Some(t) => *trr_slot = Some(t),
                    None => fbs.push(RtcpFb::new(kind, subtype)),
                }
            }
            "x-jitsi-ptime" | "x-jitsi-maxptime" => {
                let (id, ms) = split2(a, v, "<pt> <ms>")?;
                if let Some(i) = pt_of(id)? {
                    let ms = Some(num(a, "ptime", ms)?);
                    let pt = &mut d.payload_types[i];
                    if a.name == "x-jitsi-ptime" {
                        pt.ptime = ms;
                    } else {
                        pt.maxptime = ms;
                    }
                }
            }
            "extmap" => {
                let mut parts = v.split(' ');
                let head = parts.next().unwrap_or("");
                let uri = parts.next().ok_or_else(|| a.error("expected <id> <uri>"))?;
                let (id, dir) = match head.split_once('/') {
                    Some((id, dir)) => (id, Some(dir)),
                    None => (head, None),
                };
                let senders = match dir {
                    Some(dir) => Some(
                        Senders::from_direction(dir, view)
                            .ok_or_else(|| a.error(format!("invalid direction {dir:?}")))?,
                    ),
                    None => None,
                };
                d.hdrexts.push(RtpHdrext {
                    id: num(a, "extmap id", id)?,
                    uri: uri.to_owned(),
                    senders,
                });
            }
            "extmap-allow-mixed" => d.extmap_allow_mixed = true,
            "rtcp-mux" => d.rtcp_mux = true,
            "rtcp-rsize" => d.rtcp_rsize = true,
            "msid" => d.msid = Some(v.to_owned()),
            "maxptime" => d.maxptime = Some(num(a, "maxptime", v)?),
            "x-jitsi-description-ssrc" => d.ssrc = Some(num(a, "ssrc", v)?),
            "ssrc" => {
                let (ssrc, rest) = v.split_once(' ').unwrap_or((v, ""));
                let ssrc: u32 = num(a, "ssrc", ssrc)?;
                let i = *sources.entry(ssrc).or_insert_with(|| {
                    d.sources.push(Source::new(ssrc));
                    d.sources.len() - 1
                });
                ssrc_attribute(&mut d.sources[i], rest);
            }
            "ssrc-group" => {
                let mut parts = v.split(' ').filter(|p| !p.is_empty());
                let semantics = Semantics::parse(parts.next().unwrap_or(""));
                let ssrcs = parts.map(|s| num(a, "ssrc", s)).collect::<Result<_>>()?;
                d.ssrc_groups.push(SsrcGroup { semantics, ssrcs });
            }
            "rid" => {
                let mut parts = v.splitn(3, ' ');
                d.rids.push(Rid {
                    id: parts.next().unwrap_or("").to_owned(),
                    direction: parts
                        .next()
                        .ok_or_else(|| a.error("expected <id> <direction>"))?
                        .to_owned(),
                    restrictions: parts.next().map(str::to_owned),
                });
            }
            "simulcast" => d.simulcast = Some(v.to_owned()),
            _ => {}
        }
    }
    Ok(d)
}

/// One `a=ssrc:<ssrc> <attribute>[:<value>]` onto its source. Jitsi's
/// `name`, `videoType` and `owner` (and our `x-jitsi-owner`) are source
/// fields; anything else is a parameter.
fn ssrc_attribute(s: &mut Source, rest: &str) {
    if rest.is_empty() {
        return;
    }
    let (name, value) = match rest.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    match (name, value) {
        ("name", Some(v)) => s.name = Some(v.to_owned()),
        ("videoType", Some(v)) => s.video_type = Some(v.to_owned()),
        ("owner", Some(v)) => {
            s.owner = Some(v.to_owned());
            s.owner_form = OwnerForm::SsrcInfo;
        }
        ("x-jitsi-owner", Some(v)) => {
            s.owner = Some(v.to_owned());
            s.owner_form = OwnerForm::Attribute;
        }
        _ => s.parameters.push(SourceParameter {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }),
    }
}
