//! The RTP application description: Jingle RTP sessions (XEP-0167) with RTCP
//! feedback (XEP-0293), header extensions (XEP-0294, incl. Jitsi's
//! `<extmap-allow-mixed>`), `<rtcp-mux/>`, and the sources and groups of
//! XEP-0339 ([`super::ssma`]).
//!
//! WebRTC attributes that have no XEP are kept under our namespace
//! [`NS_SDP`] so SDP -> Jingle -> SDP is lossless: `<msid value>` (RFC 8830
//! media-level msid), `<rtcp-rsize/>` (RFC 5506) and `<simulcast value>`
//! (RFC 8853, when it is more than a plain send list; see
//! [`super::ssma::Rid`]).
//!
//! Contract: payload-type `id` is a `u8`, hdrext `id` a `u16`; a
//! payload-type `<parameter>` needs both `name` (which may be the empty
//! string, for fmtp values without a key such as `0-15`) and `value`.
//! Unknown children of `<description>` are kept in `other`.

use std::fmt;

use minidom::Element;

use super::action::Senders;
use super::ssma::{self, Rid, Source, SsrcGroup};
use super::NS_SDP;
use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, opt_parse, req, req_parse, BuilderExt};

/// The media type of a description (`media` attribute, SDP m-line media).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Media {
    Audio,
    Video,
    Application,
    Other(String),
}

impl Media {
    pub fn parse(s: &str) -> Self {
        match s {
            "audio" => Media::Audio,
            "video" => Media::Video,
            "application" => Media::Application,
            other => Media::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Media::Audio => "audio",
            Media::Video => "video",
            Media::Application => "application",
            Media::Other(s) => s,
        }
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<rtcp-fb type subtype?>` (XEP-0293), `a=rtcp-fb:<pt> <type> [<subtype>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// `type`: `nack`, `ccm`, `goog-remb`, `transport-cc`...
    pub kind: String,
    /// `subtype`: `pli`, `fir`...
    pub subtype: Option<String>,
}

impl RtcpFb {
    pub fn new(kind: impl Into<String>, subtype: Option<&str>) -> Self {
        RtcpFb {
            kind: kind.into(),
            subtype: subtype.map(str::to_owned),
        }
    }

    fn parse(elem: &Element) -> Result<Self> {
        Ok(RtcpFb {
            kind: req(elem, "rtcp-fb", "type")?.to_owned(),
            subtype: elem.attr("subtype").map(str::to_owned),
        })
    }

    fn to_element(&self) -> Element {
        Element::builder("rtcp-fb", ns::JINGLE_RTCP_FB)
            .a("type", self.kind.as_str())
            .a("subtype", self.subtype.as_deref())
            .build()
    }
}

fn trr_int_element(value: u32) -> Element {
    Element::builder("rtcp-fb-trr-int", ns::JINGLE_RTCP_FB)
        .a("value", value)
        .build()
}

/// A payload-type `<parameter name value>`, one `a=fmtp` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// May be empty: an fmtp item without `key=` (e.g. `0-15`).
    pub name: String,
    pub value: String,
}

impl Parameter {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Parameter {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// `<payload-type>`: one codec of the m-line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayloadType {
    pub id: u8,
    pub name: Option<String>,
    pub clockrate: Option<u32>,
    pub channels: Option<u8>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    pub parameters: Vec<Parameter>,
    pub rtcp_fbs: Vec<RtcpFb>,
    /// `<rtcp-fb-trr-int value>` (XEP-0293), `a=rtcp-fb:<pt> trr-int <v>`.
    pub rtcp_fb_trr_int: Option<u32>,
}

impl PayloadType {
    /// The value of the parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

impl TryFrom<&Element> for PayloadType {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "payload-type", ns::JINGLE_RTP)?;
        let mut pt = PayloadType {
            id: req_parse(elem, "payload-type", "id")?,
            name: elem.attr("name").map(str::to_owned),
            clockrate: opt_parse(elem, "payload-type", "clockrate")?,
            channels: opt_parse(elem, "payload-type", "channels")?,
            ptime: opt_parse(elem, "payload-type", "ptime")?,
            maxptime: opt_parse(elem, "payload-type", "maxptime")?,
            ..PayloadType::default()
        };
        for child in elem.children() {
            if child.is("parameter", ns::JINGLE_RTP) {
                pt.parameters.push(Parameter {
                    name: req(child, "parameter", "name")?.to_owned(),
                    value: req(child, "parameter", "value")?.to_owned(),
                });
            } else if child.is("rtcp-fb", ns::JINGLE_RTCP_FB) {
                pt.rtcp_fbs.push(RtcpFb::parse(child)?);
            } else if child.is("rtcp-fb-trr-int", ns::JINGLE_RTCP_FB) {
                pt.rtcp_fb_trr_int = Some(req_parse(child, "rtcp-fb-trr-int", "value")?);
            }
        }
        Ok(pt)
    }
}

impl From<PayloadType> for Element {
    fn from(pt: PayloadType) -> Element {
        Element::builder("payload-type", ns::JINGLE_RTP)
            .a("id", pt.id)
            .a("name", pt.name)
            .a("clockrate", pt.clockrate)
            .a("channels", pt.channels)
            .a("ptime", pt.ptime)
            .a("maxptime", pt.maxptime)
            .append_all(pt.parameters.into_iter().map(|p| {
                Element::builder("parameter", ns::JINGLE_RTP)
                    .a("name", p.name)
                    .a("value", p.value)
                    .build()
            }))
            .append_all(pt.rtcp_fbs.iter().map(RtcpFb::to_element))
            .append_all(pt.rtcp_fb_trr_int.map(trr_int_element))
            .build()
    }
}

/// `<rtp-hdrext id uri senders?>` (XEP-0294), `a=extmap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHdrext {
    pub id: u16,
    pub uri: String,
    pub senders: Option<Senders>,
}

impl RtpHdrext {
    pub fn new(id: u16, uri: impl Into<String>) -> Self {
        RtpHdrext {
            id,
            uri: uri.into(),
            senders: None,
        }
    }
}

impl TryFrom<&Element> for RtpHdrext {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "rtp-hdrext", ns::JINGLE_RTP_HDREXT)?;
        Ok(RtpHdrext {
            id: req_parse(elem, "rtp-hdrext", "id")?,
            uri: req(elem, "rtp-hdrext", "uri")?.to_owned(),
            senders: opt_parse(elem, "rtp-hdrext", "senders")?,
        })
    }
}

impl From<RtpHdrext> for Element {
    fn from(h: RtpHdrext) -> Element {
        Element::builder("rtp-hdrext", ns::JINGLE_RTP_HDREXT)
            .a("id", h.id)
            .a("uri", h.uri)
            .a("senders", h.senders.map(Senders::as_str))
            .build()
    }
}

/// `<bandwidth type>value</bandwidth>` (XEP-0167), SDP `b=<type>:<value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub kind: String,
    pub value: String,
}

/// `<description xmlns="urn:xmpp:jingle:apps:rtp:1">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpDescription {
    pub media: Media,
    /// XEP-0167 `ssrc` attribute of the description (rare).
    pub ssrc: Option<u32>,
    /// Jitsi writes `maxptime` on the description; SDP `a=maxptime`.
    pub maxptime: Option<u32>,
    pub payload_types: Vec<PayloadType>,
    pub bandwidths: Vec<Bandwidth>,
    pub hdrexts: Vec<RtpHdrext>,
    pub extmap_allow_mixed: bool,
    pub rtcp_mux: bool,
    /// Feedback for every payload type (`a=rtcp-fb:*`).
    pub rtcp_fbs: Vec<RtcpFb>,
    pub rtcp_fb_trr_int: Option<u32>,
    pub sources: Vec<Source>,
    pub ssrc_groups: Vec<SsrcGroup>,
    /// RID-based simulcast layers (`a=rid`).
    pub rids: Vec<Rid>,
    /// The `a=simulcast` value, e.g. `send q;h;f`.
    pub simulcast: Option<String>,
    /// Media-level `a=msid` value (`<stream-id> <track-id>`).
    pub msid: Option<String>,
    /// `a=rtcp-rsize` (RFC 5506).
    pub rtcp_rsize: bool,
    /// Children we do not model, kept verbatim.
    pub other: Vec<Element>,
}

impl RtpDescription {
    pub fn new(media: Media) -> Self {
        RtpDescription {
            media,
            ssrc: None,
            maxptime: None,
            payload_types: Vec::new(),
            bandwidths: Vec::new(),
            hdrexts: Vec::new(),
            extmap_allow_mixed: false,
            rtcp_mux: false,
            rtcp_fbs: Vec::new(),
            rtcp_fb_trr_int: None,
            sources: Vec::new(),
            ssrc_groups: Vec::new(),
            rids: Vec::new(),
            simulcast: None,
            msid: None,
            rtcp_rsize: false,
            other: Vec::new(),
        }
    }
}

impl TryFrom<&Element> for RtpDescription {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "description", ns::JINGLE_RTP)?;
        let mut d = RtpDescription::new(Media::parse(req(elem, "description", "media")?));
        d.ssrc = opt_parse(elem, "description", "ssrc")?;
        d.maxptime = opt_parse(elem, "description", "maxptime")?;
        for child in elem.children() {
            match child.name() {
                "payload-type" if child.has_ns(ns::JINGLE_RTP) => {
                    d.payload_types.push(PayloadType::try_from(child)?)
                }
                "bandwidth" if child.has_ns(ns::JINGLE_RTP) => d.bandwidths.push(Bandwidth {
                    kind: req(child, "bandwidth", "type")?.to_owned(),
                    value: child.text(),
                }),
                "rtcp-mux" if child.has_ns(ns::JINGLE_RTP) => d.rtcp_mux = true,
                "rtp-hdrext" if child.has_ns(ns::JINGLE_RTP_HDREXT) => {
                    d.hdrexts.push(RtpHdrext::try_from(child)?)
                }
                "extmap-allow-mixed" if child.has_ns(ns::JINGLE_RTP_HDREXT) => {
                    d.extmap_allow_mixed = true
                }
                "rtcp-fb" if child.has_ns(ns::JINGLE_RTCP_FB) => {
                    d.rtcp_fbs.push(RtcpFb::parse(child)?)
                }
                "rtcp-fb-trr-int" if child.has_ns(ns::JINGLE_RTCP_FB) => {
                    d.rtcp_fb_trr_int = Some(req_parse(child, "rtcp-fb-trr-int", "value")?)
                }
                "source" if child.has_ns(ns::JINGLE_SSMA) => match Source::try_from(child) {
                    Ok(source) => d.sources.push(source),
                    // lib-jitsi-meet's RID form has no SSRC.
                    Err(Error::MissingAttribute { .. }) if child.attr("rid").is_some() => {
                        d.rids.push(Rid::from_element(child)?)
                    }
                    Err(e) => return Err(e),
                },
                "ssrc-group" if child.has_ns(ns::JINGLE_SSMA) => {
                    d.ssrc_groups.push(SsrcGroup::try_from(child)?)
                }
                "rid-group" if child.has_ns(ns::JINGLE_SSMA) => {
                    match ssma::simulcast_from_rid_group(child) {
                        Some(value) => d.simulcast = Some(value),
                        None => d.other.push(child.clone()),
                    }
                }
                "simulcast" if child.has_ns(NS_SDP) => {
                    d.simulcast = Some(req(child, "simulcast", "value")?.to_owned())
                }
                "msid" if child.has_ns(NS_SDP) => {
                    d.msid = Some(req(child, "msid", "value")?.to_owned())
                }
                "rtcp-rsize" if child.has_ns(NS_SDP) => d.rtcp_rsize = true,
                _ => d.other.push(child.clone()),
            }
        }
        Ok(d)
    }
}

impl TryFrom<Element> for RtpDescription {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        RtpDescription::try_from(&elem)
    }
}

impl From<RtpDescription> for Element {
    fn from(d: RtpDescription) -> Element {
        let flag = |on: bool, name: &str, ns: &str| on.then(|| Element::bare(name, ns));
        Element::builder("description", ns::JINGLE_RTP)
            .a("media", d.media.as_str())
            .a("ssrc", d.ssrc)
            .a("maxptime", d.maxptime)
            .append_all(d.payload_types.into_iter().map(Element::from))
            .append_all(d.bandwidths.into_iter().map(|b| {
                Element::builder("bandwidth", ns::JINGLE_RTP)
                    .a("type", b.kind)
                    .append(b.value)
                    .build()
            }))
            .append_all(d.hdrexts.into_iter().map(Element::from))
            .append_all(flag(
                d.extmap_allow_mixed,
                "extmap-allow-mixed",
                ns::JINGLE_RTP_HDREXT,
            ))
            .append_all(flag(d.rtcp_mux, "rtcp-mux", ns::JINGLE_RTP))
            .append_all(d.rtcp_fbs.iter().map(RtcpFb::to_element))
            .append_all(d.rtcp_fb_trr_int.map(trr_int_element))
            .append_all(d.sources.into_iter().map(Element::from))
            .append_all(d.ssrc_groups.into_iter().map(Element::from))
            .append_all(d.rids.into_iter().map(Element::from))
            .append_all(d.simulcast.map(ssma::simulcast_to_element))
            .append_all(
                d.msid
                    .map(|v| Element::builder("msid", NS_SDP).a("value", v).build()),
            )
            .append_all(flag(d.rtcp_rsize, "rtcp-rsize", NS_SDP))
            .append_all(d.other)
            .build()
    }
}
