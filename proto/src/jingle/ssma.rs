//! Source-specific media attributes in Jingle (XEP-0339) as Jitsi uses them.
//!
//! A `<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0">` carries one SSRC, the
//! Jitsi attributes `name` (`<endpoint>-a0`, `<endpoint>-v1`...) and
//! `videoType`, an optional `<ssrc-info xmlns="http://jitsi.org/jitmeet"
//! owner=..>` naming the owner (an endpoint id, `jvb`, or on older
//! deployments a full MUC JID), and `<parameter name value?>` children
//! (`cname`, `msid`, ...) in order. `<ssrc-group semantics>` groups SSRCs
//! (`FID` for RTX, `SIM` for simulcast).
//!
//! lib-jitsi-meet also writes RID-based simulcast (RFC 8851/8853) in this
//! namespace: `<source rid=..>` without an SSRC, and `<rid-group
//! semantics="SIM">`; those parse as [`Rid`] and the description's simulcast.
//!
//! Contract: `ssrc` must be a `u32`; ssrc-info may stand before or after
//! the parameters (both occur in real stanzas) and is written first.

use std::fmt;

use minidom::Element;

use super::NS_SDP;
use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, req, req_parse, BuilderExt};

/// The semantics of an `<ssrc-group>` / `a=ssrc-group` (RFC 5576, 5956, 4588).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Simulcast layers, lowest first.
    Sim,
    /// Flow identification: a primary SSRC and its RTX SSRC.
    Fid,
    /// Forward error correction, RFC 5956.
    FecFr,
    /// Forward error correction, RFC 5576 (deprecated).
    Fec,
    /// Anything else, kept verbatim.
    Other(String),
}

impl Semantics {
    /// Never fails: unknown semantics are kept as `Other`.
    pub fn parse(s: &str) -> Self {
        match s {
            "SIM" => Semantics::Sim,
            "FID" => Semantics::Fid,
            "FEC-FR" => Semantics::FecFr,
            "FEC" => Semantics::Fec,
            other => Semantics::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Semantics::Sim => "SIM",
            Semantics::Fid => "FID",
            Semantics::FecFr => "FEC-FR",
            Semantics::Fec => "FEC",
            Semantics::Other(s) => s,
        }
    }
}

impl fmt::Display for Semantics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `<parameter name value?>` of a source (`cname`, `msid`, `label`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceParameter {
    pub name: String,
    pub value: Option<String>,
}

impl SourceParameter {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        SourceParameter {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// Where a source's owner is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OwnerForm {
    /// `<ssrc-info xmlns="http://jitsi.org/jitmeet" owner=..>`, as Jicofo writes it.
    #[default]
    SsrcInfo,
    /// An `owner` attribute on `<source>` itself (lib-jitsi-meet's tests).
    Attribute,
}

/// One SSRC with its Jitsi attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub ssrc: u32,
    /// Jitsi source name, e.g. `8f243a0d-v0`.
    pub name: Option<String>,
    /// `camera` or `desktop` (Jitsi `videoType` attribute).
    pub video_type: Option<String>,
    /// Endpoint id, `jvb`, or a full MUC JID.
    pub owner: Option<String>,
    pub owner_form: OwnerForm,
    /// In document order.
    pub parameters: Vec<SourceParameter>,
}

impl Source {
    pub fn new(ssrc: u32) -> Self {
        Source {
            ssrc,
            ..Source::default()
        }
    }

    /// The value of the first parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_deref())
    }

    /// The owner as an endpoint id: the resource of a MUC JID owner, else
    /// the owner itself.
    pub fn owner_endpoint(&self) -> Option<&str> {
        let owner = self.owner.as_deref()?;
        Some(match owner.split_once('/') {
            Some((_, resource)) => resource,
            None => owner,
        })
    }
}

/// The element's unqualified attributes in one pass: on the 220 KB
/// session-initiate, one `Element::attr` lookup per attribute was half the
/// conversion time.
pub(crate) fn attrs(elem: &Element) -> impl Iterator<Item = (&str, &str)> {
    elem.attrs()
        .iter()
        .filter(|((ns, _), _)| ns.is_none())
        .map(|((_, k), v)| (k.as_str(), v.as_str()))
}

impl TryFrom<&Element> for Source {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "source", ns::JINGLE_SSMA)?;
        let mut source = Source::default();
        let mut ssrc = None;
        for (k, v) in attrs(elem) {
            match k {
                "ssrc" => ssrc = Some(v),
                "name" => source.name = Some(v.to_owned()),
                "videoType" => source.video_type = Some(v.to_owned()),
                "owner" => {
                    source.owner = Some(v.to_owned());
                    source.owner_form = OwnerForm::Attribute;
                }
                _ => {}
            }
        }
        let ssrc = ssrc.ok_or(Error::MissingAttribute {
            element: "source",
            attribute: "ssrc",
        })?;
        source.ssrc = ssrc.parse().map_err(|_| Error::InvalidAttribute {
            element: "source",
            attribute: "ssrc",
            value: ssrc.to_owned(),
        })?;
        for child in elem.children() {
            match child.name() {
                "parameter" if child.has_ns(ns::JINGLE_SSMA) => {
                    let (mut name, mut value) = (None, None);
                    for (k, v) in attrs(child) {
                        match k {
                            "name" => name = Some(v),
                            "value" => value = Some(v.to_owned()),
                            _ => {}
                        }
                    }
                    source.parameters.push(SourceParameter {
                        name: name
                            .ok_or(Error::MissingAttribute {
                                element: "parameter",
                                attribute: "name",
                            })?
                            .to_owned(),
                        value,
                    });
                }
                "ssrc-info" if child.has_ns(ns::JITMEET) => {
                    if let Some(owner) = child.attr("owner") {
                        source.owner = Some(owner.to_owned());
                        source.owner_form = OwnerForm::SsrcInfo;
                    }
                }
                _ => {}
            }
        }
        Ok(source)
    }
}

impl TryFrom<Element> for Source {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        Source::try_from(&elem)
    }
}

impl From<Source> for Element {
    fn from(s: Source) -> Element {
        let mut b = Element::builder("source", ns::JINGLE_SSMA)
            .a("ssrc", s.ssrc)
            .a("name", s.name)
            .a("videoType", s.video_type);
        match (s.owner, s.owner_form) {
            (Some(owner), OwnerForm::Attribute) => b = b.a("owner", owner),
            (Some(owner), OwnerForm::SsrcInfo) => {
                b = b.append(
                    Element::builder("ssrc-info", ns::JITMEET)
                        .a("owner", owner)
                        .build(),
                )
            }
            (None, _) => {}
        }
        b.append_all(s.parameters.into_iter().map(|p| {
            Element::builder("parameter", ns::JINGLE_SSMA)
                .a("name", p.name)
                .a("value", p.value)
                .build()
        }))
        .build()
    }
}

/// `<ssrc-group semantics><source ssrc/>...</ssrc-group>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    pub semantics: Semantics,
    pub ssrcs: Vec<u32>,
}

impl TryFrom<&Element> for SsrcGroup {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "ssrc-group", ns::JINGLE_SSMA)?;
        let semantics = Semantics::parse(req(elem, "ssrc-group", "semantics")?);
        let mut ssrcs = Vec::new();
        for child in elem.children() {
            if child.is("source", ns::JINGLE_SSMA) {
                ssrcs.push(req_parse(child, "source", "ssrc")?);
            }
        }
        Ok(SsrcGroup { semantics, ssrcs })
    }
}

impl TryFrom<Element> for SsrcGroup {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        SsrcGroup::try_from(&elem)
    }
}

impl From<SsrcGroup> for Element {
    fn from(g: SsrcGroup) -> Element {
        Element::builder("ssrc-group", ns::JINGLE_SSMA)
            .a("semantics", g.semantics.as_str())
            .append_all(g.ssrcs.into_iter().map(|ssrc| {
                Element::builder("source", ns::JINGLE_SSMA)
                    .a("ssrc", ssrc)
                    .build()
            }))
            .build()
    }
}

/// An RTP stream id (RFC 8851 `a=rid:<id> <direction> [<restrictions>]`),
/// written as lib-jitsi-meet does: `<source xmlns=ssma rid=..>` (no SSRC).
/// `direction` (`send`/`recv`, relative to the SDP's author) and
/// `restrictions` are our attributes, omitted when `send`/absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rid {
    pub id: String,
    pub direction: String,
    pub restrictions: Option<String>,
}

impl Rid {
    pub(crate) fn from_element(elem: &Element) -> Result<Self> {
        Ok(Rid {
            id: req(elem, "source", "rid")?.to_owned(),
            direction: elem.attr("direction").unwrap_or("send").to_owned(),
            restrictions: elem.attr("restrictions").map(str::to_owned),
        })
    }
}

impl From<Rid> for Element {
    fn from(r: Rid) -> Element {
        Element::builder("source", ns::JINGLE_SSMA)
            .a("rid", r.id)
            .a("direction", (r.direction != "send").then_some(r.direction))
            .a("restrictions", r.restrictions)
            .build()
    }
}

/// Parses lib-jitsi-meet's `<rid-group semantics="SIM">` into an
/// `a=simulcast` value (`send q;h;f`); `None` for other semantics.
pub(crate) fn simulcast_from_rid_group(elem: &Element) -> Option<String> {
    if elem.attr("semantics") != Some("SIM") {
        return None;
    }
    let rids: Vec<&str> = elem
        .children()
        .filter(|c| c.is("source", ns::JINGLE_SSMA))
        .filter_map(|c| c.attr("rid"))
        .collect();
    Some(format!("send {}", rids.join(";")))
}

/// Writes an `a=simulcast` value: lib-jitsi-meet's `<rid-group
/// semantics="SIM">` when it is a plain send list (`send a;b;c`), else our
/// `<simulcast xmlns=NS_SDP value=..>`, which keeps any RFC 8853 value.
pub(crate) fn simulcast_to_element(value: String) -> Element {
    let plain = value
        .strip_prefix("send ")
        .filter(|list| {
            !list.is_empty()
                && list.split(';').all(|id| {
                    !id.is_empty()
                        && id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
        })
        .map(|list| list.split(';').map(str::to_owned).collect::<Vec<_>>());
    match plain {
        Some(rids) => Element::builder("rid-group", ns::JINGLE_SSMA)
            .a("semantics", "SIM")
            .append_all(rids.into_iter().map(|rid| {
                Element::builder("source", ns::JINGLE_SSMA)
                    .a("rid", rid)
                    .build()
            }))
            .build(),
        None => Element::builder("simulcast", NS_SDP)
            .a("value", value)
            .build(),
    }
}
