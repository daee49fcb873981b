//! `<content>` (XEP-0166 §7.3): one RTP description and one ICE-UDP
//! transport, plus Jitsi's receive constraints
//! `<source-frame-height xmlns="http://jitsi.org/jitmeet/video" maxHeight
//! sourceName>` (sent in `content-modify`).
//!
//! SDP media-level attributes that neither Jingle nor Jitsi model (for
//! example Chromium's `a=rtcp-xr`, `a=max-message-size`, `a=ptime`) are
//! kept as `<attribute xmlns=NS_SDP name value?>` children ([`SdpAttribute`])
//! so that SDP -> Jingle -> SDP loses nothing.
//!
//! Contract: `name` is required; `creator` and `senders` are optional (Jitsi's
//! source-add and content-modify omit them). A description or transport in
//! another namespace, a second description or transport, and any other
//! unknown child are kept in `other`.

use minidom::Element;

use super::action::{Creator, Senders};
use super::ice::IceUdpTransport;
use super::rtp::RtpDescription;
use super::NS_SDP;
use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, opt_parse, req, req_parse, BuilderExt};

/// Jitsi: the largest frame height the receiver wants of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrameHeight {
    pub max_height: u32,
    pub source_name: String,
}

/// An SDP attribute carried through Jingle verbatim (`a=<name>[:<value>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAttribute {
    pub name: String,
    pub value: Option<String>,
}

impl SdpAttribute {
    pub fn new(name: impl Into<String>, value: Option<&str>) -> Self {
        SdpAttribute {
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }
}

/// `<content creator? name senders?>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub name: String,
    pub creator: Option<Creator>,
    pub senders: Option<Senders>,
    pub description: Option<RtpDescription>,
    pub transport: Option<IceUdpTransport>,
    pub source_frame_heights: Vec<SourceFrameHeight>,
    /// Media-level SDP attributes with no Jingle meaning, in SDP order.
    pub sdp_attributes: Vec<SdpAttribute>,
    /// Children we do not model, kept verbatim.
    pub other: Vec<Element>,
}

impl Content {
    pub fn new(name: impl Into<String>) -> Self {
        Content {
            name: name.into(),
            creator: None,
            senders: None,
            description: None,
            transport: None,
            source_frame_heights: Vec::new(),
            sdp_attributes: Vec::new(),
            other: Vec::new(),
        }
    }
}

impl TryFrom<&Element> for Content {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "content", ns::JINGLE)?;
        let mut c = Content::new(req(elem, "content", "name")?);
        c.creator = opt_parse(elem, "content", "creator")?;
        c.senders = opt_parse(elem, "content", "senders")?;
        for child in elem.children() {
            match child.name() {
                "description" if child.has_ns(ns::JINGLE_RTP) && c.description.is_none() => {
                    c.description = Some(RtpDescription::try_from(child)?)
                }
                "transport" if child.has_ns(ns::JINGLE_ICE_UDP) && c.transport.is_none() => {
                    c.transport = Some(IceUdpTransport::try_from(child)?)
                }
                "source-frame-height" if child.has_ns(ns::MUTE_VIDEO) => {
                    c.source_frame_heights.push(SourceFrameHeight {
                        max_height: req_parse(child, "source-frame-height", "maxHeight")?,
                        source_name: req(child, "source-frame-height", "sourceName")?.to_owned(),
                    })
                }
                "attribute" if child.has_ns(NS_SDP) => c.sdp_attributes.push(SdpAttribute {
                    name: req(child, "attribute", "name")?.to_owned(),
                    value: child.attr("value").map(str::to_owned),
                }),
                _ => c.other.push(child.clone()),
            }
        }
        Ok(c)
    }
}

impl TryFrom<Element> for Content {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        Content::try_from(&elem)
    }
}

impl From<Content> for Element {
    fn from(c: Content) -> Element {
        Element::builder("content", ns::JINGLE)
            .a("creator", c.creator.map(Creator::as_str))
            .a("name", c.name)
            .a("senders", c.senders.map(Senders::as_str))
            .append_all(c.description.map(Element::from))
            .append_all(c.transport.map(Element::from))
            .append_all(c.source_frame_heights.into_iter().map(|s| {
                Element::builder("source-frame-height", ns::MUTE_VIDEO)
                    .a("maxHeight", s.max_height)
                    .a("sourceName", s.source_name)
                    .build()
            }))
            .append_all(c.sdp_attributes.into_iter().map(|a| {
                Element::builder("attribute", NS_SDP)
                    .a("name", a.name)
                    .a("value", a.value)
                    .build()
            }))
            .append_all(c.other)
            .build()
    }
}
