//! Jingle (XEP-0166) in the dialect Jitsi's focus, bridge and clients speak.
//!
//! Specs: XEP-0166 (Jingle), XEP-0167 (RTP sessions), XEP-0176 (ICE-UDP),
//! XEP-0293 (RTCP feedback), XEP-0294 (RTP header extensions), XEP-0320
//! (DTLS-SRTP), XEP-0338 (grouping, BUNDLE), XEP-0339 (source-specific
//! media attributes), XEP-0343 (DTLS-SCTP), plus Jitsi's additions:
//! `source-add`/`source-remove` (and legacy `addsource`/`removesource`),
//! `<ssrc-info owner>`, source `name`/`videoType`, `<json-message>` sources,
//! `<startmuted>`, `<bridge-session>`, `<web-socket>` in the transport,
//! `<source-frame-height>`.
//!
//! Why our own types: xmpp-parsers 0.23's Jingle types cannot carry this
//! dialect (its ssma `Source` has no ssrc-info/name/videoType, its ICE-UDP
//! `Transport` has private fields and no web-socket or rtcp-mux, there is no
//! extmap-allow-mixed, and unknown children are errors), so these types are
//! written for it.
//!
//! Contract: every type parses with `TryFrom<&Element>`/`TryFrom<Element>`
//! and serializes with `From<T> for Element`; parse then serialize keeps
//! everything in the fixtures (the type is equal after a round trip; sibling
//! elements of different kinds are written in a canonical order). Unknown
//! children go to `other` fields, never to an error. Remote data never
//! panics: a malformed number, missing attribute or unknown action is an
//! [`Error`] naming the element and attribute.
//!
//! [`Jingle`] needs `action` and `sid`, as XEP-0166 says. To read a bare
//! `<jingle>` body without them (as in lib-jitsi-meet's source-add test),
//! parse its `<content>` children with [`Content::try_from`].

mod action;
mod content;
mod ice;
mod json_sources;
mod rtp;
mod ssma;

use minidom::Element;

pub use action::{Action, Creator, Role, Senders};
pub use content::{Content, SdpAttribute, SourceFrameHeight};
pub use ice::{
    Candidate, CandidateType, Fingerprint, IceUdpTransport, SctpMap, Setup, NS_DTLS_SCTP,
};
pub use json_sources::{JsonSource, JsonSources, OwnerSources};
pub use rtp::{Bandwidth, Media, Parameter, PayloadType, RtcpFb, RtpDescription, RtpHdrext};
pub use ssma::{OwnerForm, Rid, Semantics, Source, SourceParameter, SsrcGroup};

use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, opt_bool, req, BuilderExt};

/// Our namespace for SDP facts that no XEP or Jitsi extension carries
/// (media-level msid, rtcp-rsize, ice-options, ice-lite, RFC 8853
/// simulcast, and verbatim media attributes); see `docs/jingle-sdp.md`.
pub const NS_SDP: &str = "urn:x-meet:jingle:sdp:0";

/// Whether `s` can stand in XML 1.0 text or an attribute value. Strings
/// that reach Jingle from SDP or JSON are checked, because minidom's writer
/// panics on characters XML cannot carry.
pub(crate) fn xml_safe(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

/// `<group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics>` (XEP-0338),
/// `a=group:<semantics> <mid>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `BUNDLE`, `LS`...
    pub semantics: String,
    /// Content names.
    pub contents: Vec<String>,
}

impl TryFrom<&Element> for Group {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "group", ns::JINGLE_GROUPING)?;
        let mut contents = Vec::new();
        for child in elem.children() {
            if child.is("content", ns::JINGLE_GROUPING) {
                contents.push(req(child, "content", "name")?.to_owned());
            }
        }
        Ok(Group {
            semantics: req(elem, "group", "semantics")?.to_owned(),
            contents,
        })
    }
}

impl From<Group> for Element {
    fn from(g: Group) -> Element {
        Element::builder("group", ns::JINGLE_GROUPING)
            .a("semantics", g.semantics)
            .append_all(g.contents.into_iter().map(|name| {
                Element::builder("content", ns::JINGLE_GROUPING)
                    .a("name", name)
                    .build()
            }))
            .build()
    }
}

/// The condition of a `<reason>` (XEP-0166 §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReasonCondition {
    /// With the `<sid>` of the other session.
    AlternativeSession(Option<String>),
    Busy,
    Cancel,
    ConnectivityError,
    Decline,
    Expired,
    FailedApplication,
    FailedTransport,
    GeneralError,
    Gone,
    IncompatibleParameters,
    MediaError,
    SecurityError,
    Success,
    Timeout,
    UnsupportedApplications,
    UnsupportedTransports,
    /// Any other element name (Jitsi knows `undefined`).
    Other(String),
}

impl ReasonCondition {
    /// The element name of the condition.
    pub fn name(&self) -> &str {
        match self {
            ReasonCondition::AlternativeSession(_) => "alternative-session",
            ReasonCondition::Busy => "busy",
            ReasonCondition::Cancel => "cancel",
            ReasonCondition::ConnectivityError => "connectivity-error",
            ReasonCondition::Decline => "decline",
            ReasonCondition::Expired => "expired",
            ReasonCondition::FailedApplication => "failed-application",
            ReasonCondition::FailedTransport => "failed-transport",
            ReasonCondition::GeneralError => "general-error",
            ReasonCondition::Gone => "gone",
            ReasonCondition::IncompatibleParameters => "incompatible-parameters",
            ReasonCondition::MediaError => "media-error",
            ReasonCondition::SecurityError => "security-error",
            ReasonCondition::Success => "success",
            ReasonCondition::Timeout => "timeout",
            ReasonCondition::UnsupportedApplications => "unsupported-applications",
            ReasonCondition::UnsupportedTransports => "unsupported-transports",
            ReasonCondition::Other(name) => name,
        }
    }

    /// The condition for an element name (not `alternative-session`, which
    /// carries a `<sid>`).
    fn from_name(name: &str) -> Self {
        match name {
            "busy" => ReasonCondition::Busy,
            "cancel" => ReasonCondition::Cancel,
            "connectivity-error" => ReasonCondition::ConnectivityError,
            "decline" => ReasonCondition::Decline,
            "expired" => ReasonCondition::Expired,
            "failed-application" => ReasonCondition::FailedApplication,
            "failed-transport" => ReasonCondition::FailedTransport,
            "general-error" => ReasonCondition::GeneralError,
            "gone" => ReasonCondition::Gone,
            "incompatible-parameters" => ReasonCondition::IncompatibleParameters,
            "media-error" => ReasonCondition::MediaError,
            "security-error" => ReasonCondition::SecurityError,
            "success" => ReasonCondition::Success,
            "timeout" => ReasonCondition::Timeout,
            "unsupported-applications" => ReasonCondition::UnsupportedApplications,
            "unsupported-transports" => ReasonCondition::UnsupportedTransports,
            other => ReasonCondition::Other(other.to_owned()),
        }
    }
}

/// `<reason><condition/><text>..</text>?</reason>` of session-terminate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub condition: ReasonCondition,
    pub text: Option<String>,
}

impl TryFrom<&Element> for Reason {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "reason", ns::JINGLE)?;
        let mut condition = None;
        let mut text = None;
        for child in elem.children().filter(|c| c.has_ns(ns::JINGLE)) {
            match child.name() {
                "text" => text = Some(child.text()),
                _ if condition.is_some() => {}
                "alternative-session" => {
                    let sid = child.get_child("sid", ns::JINGLE).map(Element::text);
                    condition = Some(ReasonCondition::AlternativeSession(sid));
                }
                name => condition = Some(ReasonCondition::from_name(name)),
            }
        }
        Ok(Reason {
            condition: condition.ok_or(Error::MissingChild {
                element: "reason",
                child: "condition",
            })?,
            text,
        })
    }
}

impl From<Reason> for Element {
    fn from(r: Reason) -> Element {
        let mut cond = Element::bare(r.condition.name(), ns::JINGLE);
        if let ReasonCondition::AlternativeSession(Some(sid)) = &r.condition {
            cond.append_child(
                Element::builder("sid", ns::JINGLE)
                    .append(sid.as_str())
                    .build(),
            );
        }
        Element::builder("reason", ns::JINGLE)
            .append(cond)
            .append_all(
                r.text
                    .map(|t| Element::builder("text", ns::JINGLE).append(t).build()),
            )
            .build()
    }
}

/// `<startmuted xmlns="http://jitsi.org/jitmeet/start-muted" audio video>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartMuted {
    pub audio: Option<bool>,
    pub video: Option<bool>,
}

impl TryFrom<&Element> for StartMuted {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "startmuted", ns::START_MUTED)?;
        Ok(StartMuted {
            audio: opt_bool(elem, "startmuted", "audio")?,
            video: opt_bool(elem, "startmuted", "video")?,
        })
    }
}

impl From<StartMuted> for Element {
    fn from(s: StartMuted) -> Element {
        Element::builder("startmuted", ns::START_MUTED)
            .a("audio", s.audio.map(|b| b.to_string()))
            .a("video", s.video.map(|b| b.to_string()))
            .build()
    }
}

/// `<bridge-session xmlns="http://jitsi.org/protocol/focus" id region? restart? ice-restart?>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSession {
    pub id: String,
    pub region: Option<String>,
    /// Client asks for a new session (in session-terminate).
    pub restart: Option<bool>,
    /// Client asks for an in-place ICE restart.
    pub ice_restart: Option<bool>,
}

impl TryFrom<&Element> for BridgeSession {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "bridge-session", ns::FOCUS)?;
        Ok(BridgeSession {
            id: req(elem, "bridge-session", "id")?.to_owned(),
            region: elem.attr("region").map(str::to_owned),
            restart: opt_bool(elem, "bridge-session", "restart")?,
            ice_restart: opt_bool(elem, "bridge-session", "ice-restart")?,
        })
    }
}

impl From<BridgeSession> for Element {
    fn from(b: BridgeSession) -> Element {
        Element::builder("bridge-session", ns::FOCUS)
            .a("id", b.id)
            .a("region", b.region)
            .a("restart", b.restart.map(|v| v.to_string()))
            .a("ice-restart", b.ice_restart.map(|v| v.to_string()))
            .build()
    }
}

/// `<jingle xmlns="urn:xmpp:jingle:1" action sid initiator? responder?>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    pub action: Action,
    pub sid: String,
    /// A JID as written (Jitsi's tests use bare words such as `focus`).
    pub initiator: Option<String>,
    pub responder: Option<String>,
    pub contents: Vec<Content>,
    /// Content groups; Jitsi sends one `BUNDLE`.
    pub groups: Vec<Group>,
    pub reason: Option<Reason>,
    pub json_message: Option<JsonSources>,
    pub start_muted: Option<StartMuted>,
    pub bridge_session: Option<BridgeSession>,
    /// Children we do not model, kept verbatim.
    pub other: Vec<Element>,
}

impl Jingle {
    pub fn new(action: Action, sid: impl Into<String>) -> Self {
        Jingle {
            action,
            sid: sid.into(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            groups: Vec::new(),
            reason: None,
            json_message: None,
            start_muted: None,
            bridge_session: None,
            other: Vec::new(),
        }
    }

    /// The `BUNDLE` group, if any.
    pub fn bundle(&self) -> Option<&Group> {
        self.groups.iter().find(|g| g.semantics == "BUNDLE")
    }

    /// The content called `name`.
    pub fn content(&self, name: &str) -> Option<&Content> {
        self.contents.iter().find(|c| c.name == name)
    }
}

impl TryFrom<&Element> for Jingle {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "jingle", ns::JINGLE)?;
        let action = Action::parse(req(elem, "jingle", "action")?)?;
        let mut j = Jingle::new(action, req(elem, "jingle", "sid")?);
        j.initiator = elem.attr("initiator").map(str::to_owned);
        j.responder = elem.attr("responder").map(str::to_owned);
        for child in elem.children() {
            match child.name() {
                "content" if child.has_ns(ns::JINGLE) => j.contents.push(Content::try_from(child)?),
                "reason" if child.has_ns(ns::JINGLE) && j.reason.is_none() => {
                    j.reason = Some(Reason::try_from(child)?)
                }
                "group" if child.has_ns(ns::JINGLE_GROUPING) => {
                    j.groups.push(Group::try_from(child)?)
                }
                "json-message" if child.has_ns(ns::JITMEET) && j.json_message.is_none() => {
                    j.json_message = Some(JsonSources::try_from(child)?)
                }
                "startmuted" if child.has_ns(ns::START_MUTED) && j.start_muted.is_none() => {
                    j.start_muted = Some(StartMuted::try_from(child)?)
                }
                "bridge-session" if child.has_ns(ns::FOCUS) && j.bridge_session.is_none() => {
                    j.bridge_session = Some(BridgeSession::try_from(child)?)
                }
                _ => j.other.push(child.clone()),
            }
        }
        Ok(j)
    }
}

impl TryFrom<Element> for Jingle {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        Jingle::try_from(&elem)
    }
}

impl From<Jingle> for Element {
    fn from(j: Jingle) -> Element {
        Element::builder("jingle", ns::JINGLE)
            .a("action", j.action.as_str())
            .a("initiator", j.initiator)
            .a("responder", j.responder)
            .a("sid", j.sid)
            .append_all(j.contents.into_iter().map(Element::from))
            .append_all(j.groups.into_iter().map(Element::from))
            .append_all(j.reason.map(Element::from))
            .append_all(j.json_message.map(Element::from))
            .append_all(j.start_muted.map(Element::from))
            .append_all(j.bridge_session.map(Element::from))
            .append_all(j.other)
            .build()
    }
}
