//! The presence extensions Jitsi participants and services put in their MUC
//! presence, an aggregate [`JitsiPresence`] over a presence's payloads, and the
//! visitors IQ (`<visitors xmlns="jitsi:visitors">`).
//!
//! Sources: jitsi-xmpp-extensions `jitsimeet/FeaturesExtension.java`,
//! `FeatureExtension.java`, `AudioMutedExtension.java`, `VideoMutedExtension.java`,
//! `StatsId.java`, `JitsiParticipantRegionPacketExtension.java`,
//! `JitsiParticipantCodecList.kt`, `visitors/*.kt`; jigasi `JvbConference.java`
//! (`<initiator>`); jibri `service/impl/{FileRecording,Streaming}JibriService.kt`
//! (`<session_id>`, `<mode>`, `<live-stream-view-url>`); jitsi-meet
//! `resources/prosody-plugins/mod_jitsi_permissions.lua` (`<permissions>`); XEP-0172.
//!
//! Contract:
//! - Jitsi's own participant extensions are in `jabber:client` (they carry no
//!   namespace of their own). Exceptions: `<nick>` (XEP-0172), `<initiator>`
//!   (`http://jitsi.org/protocol/jigasi`, holding Rayo `<header>`s; a header in the
//!   Jigasi namespace is accepted too), `<permissions>` (`http://jitsi.org/jitmeet`).
//! - Boolean texts (`audiomuted`, `videomuted`) are `true`/`false`, else
//!   [`Error::InvalidText`]. `<mode>` is a Jibri recording mode. The codec list is
//!   comma-separated and lower-cased, as Jitsi reads and writes it.
//! - [`JitsiPresence`] takes the first occurrence of each known extension; a second
//!   one, and every unknown payload, is kept in `unknown` and written back after the
//!   known ones. [`JitsiPresence::from_payloads`] fails on the first malformed known
//!   extension; [`JitsiPresence::from_payloads_lenient`] keeps it as unknown and
//!   reports the error, so one client's odd presence cannot hide the rest.
//! - `<visitors room>` needs a bare room JID with a local part; `connect-vnode` and
//!   `disconnect-vnode` need `vnode`; at most one `<broadcast enabled>`.

use jid::BareJid;
use minidom::Element;

use crate::colibri::ColibriStats;
use crate::error::{Error, Result};
use crate::focus::room_jid;
use crate::jibri::{JibriStatus, RecordingMode, RecordingStatus, SipCallState};
use crate::ns;
use crate::rayo::Header;
use crate::util::{check, opt_bool, req, BuilderExt};

/// `<features><feature var/>..</features>` (namespace `jabber:client`): what a
/// participant is; see [`crate::ns::feature`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    pub vars: Vec<String>,
}

impl Features {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(vars: I) -> Self {
        Features {
            vars: vars.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `var` is advertised.
    pub fn has(&self, var: &str) -> bool {
        self.vars.iter().any(|v| v == var)
    }
}

impl TryFrom<&Element> for Features {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "features", ns::JABBER_CLIENT)?;
        let vars = elem
            .children()
            .filter(|c| c.is("feature", ns::JABBER_CLIENT))
            .map(|c| req(c, "feature", "var").map(str::to_owned))
            .collect::<Result<_>>()?;
        Ok(Features { vars })
    }
}

impl TryFrom<Element> for Features {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Features::try_from(&elem)
    }
}

impl From<Features> for Element {
    fn from(f: Features) -> Element {
        Element::builder("features", ns::JABBER_CLIENT)
            .append_all(f.vars.into_iter().map(|v| {
                Element::builder("feature", ns::JABBER_CLIENT)
                    .a("var", v)
                    .build()
            }))
            .build()
    }
}

/// Jigasi's `<initiator xmlns="http://jitsi.org/protocol/jigasi">`: the extra SIP
/// headers of the call, as Rayo `<header>`s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Initiator {
    pub headers: Vec<Header>,
}

impl TryFrom<&Element> for Initiator {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "initiator", ns::JIGASI)?;
        let headers = elem
            .children()
            .filter(|c| c.is("header", ns::RAYO) || c.is("header", ns::JIGASI))
            .map(Header::from_attrs)
            .collect::<Result<_>>()?;
        Ok(Initiator { headers })
    }
}

impl TryFrom<Element> for Initiator {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Initiator::try_from(&elem)
    }
}

impl From<Initiator> for Element {
    fn from(i: Initiator) -> Element {
        Element::builder("initiator", ns::JIGASI)
            .append_all(i.headers.into_iter().map(Element::from))
            .build()
    }
}

/// One `<p name val/>` of `<permissions>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub name: String,
    /// Prosody writes `tostring(value)`: usually `true` or `false`.
    pub val: String,
}

/// `<permissions xmlns="http://jitsi.org/jitmeet"><p name val/>..</permissions>`,
/// pushed by Prosody to moderators whose token carries no features.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub entries: Vec<Permission>,
}

impl Permissions {
    /// The raw value of permission `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.val.as_str())
    }

    /// Whether permission `name` is present and `true`.
    pub fn is_allowed(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }
}

impl TryFrom<&Element> for Permissions {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "permissions", ns::JITMEET)?;
        let entries = elem
            .children()
            .filter(|c| c.is("p", ns::JITMEET))
            .map(|c| {
                Ok(Permission {
                    name: req(c, "p", "name")?.to_owned(),
                    val: req(c, "p", "val")?.to_owned(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Permissions { entries })
    }
}

impl TryFrom<Element> for Permissions {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Permissions::try_from(&elem)
    }
}

impl From<Permissions> for Element {
    fn from(p: Permissions) -> Element {
        Element::builder("permissions", ns::JITMEET)
            .append_all(p.entries.into_iter().map(|e| {
                Element::builder("p", ns::JITMEET)
                    .a("name", e.name)
                    .a("val", e.val)
                    .build()
            }))
            .build()
    }
}

/// Every known extension of a participant's (or service's) MUC presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JitsiPresence {
    pub features: Option<Features>,
    /// `<nick xmlns="http://jabber.org/protocol/nick">`: the display name.
    pub nick: Option<String>,
    pub audio_muted: Option<bool>,
    pub video_muted: Option<bool>,
    /// `<stats-id>`.
    pub stats_id: Option<String>,
    /// `<jitsi_participant_region>`.
    pub region: Option<String>,
    /// `<jitsi_participant_codecList>`, lower case, in preference order.
    pub codec_list: Option<Vec<String>>,
    /// `<jitsi_participant_codecType>`: the preferred codec (older clients).
    pub codec_type: Option<String>,
    /// Jigasi's `<initiator>`.
    pub initiator: Option<Initiator>,
    /// The recorder's `<session_id>`.
    pub session_id: Option<String>,
    /// The recorder's `<mode>`.
    pub mode: Option<RecordingMode>,
    /// The recorder's `<live-stream-view-url>`.
    pub live_stream_view_url: Option<String>,
    pub permissions: Option<Permissions>,
    /// Jicofo's `<jibri-recording-status>`.
    pub recording_status: Option<RecordingStatus>,
    /// Jicofo's `<jibri-sip-call-state>`.
    pub sip_call_state: Option<SipCallState>,
    /// A Jibri's brewery `<jibri-status>`.
    pub jibri_status: Option<JibriStatus>,
    /// A bridge's or gateway's brewery `<stats>`.
    pub stats: Option<ColibriStats>,
    /// Every other payload, in order.
    pub unknown: Vec<Element>,
}

/// `true`/`false` text (whitespace trimmed).
fn bool_text(elem: &Element, element: &'static str) -> Result<bool> {
    let text = elem.text();
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::InvalidText {
            element,
            value: text,
        }),
    }
}

fn text_elem(name: &str, ns: &str, text: String) -> Element {
    Element::builder(name, ns).append(text).build()
}

fn bool_elem(name: &str, b: bool) -> Element {
    text_elem(name, ns::JABBER_CLIENT, b.to_string())
}

impl JitsiPresence {
    /// Extracts the known extensions; fails on the first malformed one.
    pub fn from_payloads(payloads: Vec<Element>) -> Result<Self> {
        let mut p = JitsiPresence::default();
        for elem in payloads {
            if !p.take(&elem)? {
                p.unknown.push(elem);
            }
        }
        Ok(p)
    }

    /// Extracts the known extensions; a malformed one is kept in `unknown` and its
    /// error returned beside the result.
    pub fn from_payloads_lenient(payloads: Vec<Element>) -> (Self, Vec<Error>) {
        let mut p = JitsiPresence::default();
        let mut errors = Vec::new();
        for elem in payloads {
            match p.take(&elem) {
                Ok(true) => {}
                Ok(false) => p.unknown.push(elem),
                Err(e) => {
                    errors.push(e);
                    p.unknown.push(elem);
                }
            }
        }
        (p, errors)
    }

    /// Stores `elem` in its field if it is a known extension whose field is still
    /// empty. Returns whether it was taken.
    fn take(&mut self, elem: &Element) -> Result<bool> {
        macro_rules! slot {
            ($field:expr, $value:expr) => {{
                if $field.is_some() {
                    return Ok(false);
                }
                $field = Some($value);
                Ok(true)
            }};
        }
        let ns = elem.ns();
        match (elem.name(), ns.as_str()) {
            ("features", ns::JABBER_CLIENT) => slot!(self.features, Features::try_from(elem)?),
            ("nick", ns::NICK) => slot!(self.nick, elem.text()),
            ("audiomuted", ns::JABBER_CLIENT) => {
                slot!(self.audio_muted, bool_text(elem, "audiomuted")?)
            }
            ("videomuted", ns::JABBER_CLIENT) => {
                slot!(self.video_muted, bool_text(elem, "videomuted")?)
            }
            ("stats-id", ns::JABBER_CLIENT) => slot!(self.stats_id, elem.text()),
            ("jitsi_participant_region", ns::JABBER_CLIENT) => slot!(self.region, elem.text()),
            ("jitsi_participant_codecList", ns::JABBER_CLIENT) => {
                let list = elem
                    .text()
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty())
                    .collect();
                slot!(self.codec_list, list)
            }
            ("jitsi_participant_codecType", ns::JABBER_CLIENT) => {
                slot!(self.codec_type, elem.text())
            }
            ("initiator", ns::JIGASI) => slot!(self.initiator, Initiator::try_from(elem)?),
            ("session_id", ns::JABBER_CLIENT) => slot!(self.session_id, elem.text()),
            ("mode", ns::JABBER_CLIENT) => {
                let text = elem.text();
                let mode = text.trim().parse().map_err(|_| Error::InvalidText {
                    element: "mode",
                    value: text.clone(),
                })?;
                slot!(self.mode, mode)
            }
            ("live-stream-view-url", ns::JABBER_CLIENT) => {
                slot!(self.live_stream_view_url, elem.text())
            }
            ("permissions", ns::JITMEET) => {
                slot!(self.permissions, Permissions::try_from(elem)?)
            }
            ("jibri-recording-status", ns::JIBRI) => {
                slot!(self.recording_status, RecordingStatus::try_from(elem)?)
            }
            ("jibri-sip-call-state", ns::JIBRI_CALL_STATE) => {
                slot!(self.sip_call_state, SipCallState::try_from(elem)?)
            }
            ("jibri-status", ns::JIBRI) => slot!(self.jibri_status, JibriStatus::try_from(elem)?),
            ("stats", ns::COLIBRI) => slot!(self.stats, ColibriStats::try_from(elem)?),
            _ => Ok(false),
        }
    }

    /// The payload list: the known extensions in a fixed order, then `unknown`.
    pub fn into_payloads(self) -> Vec<Element> {
        let c = ns::JABBER_CLIENT;
        let mut out = Vec::new();
        out.extend(self.features.map(Element::from));
        out.extend(self.nick.map(|n| text_elem("nick", ns::NICK, n)));
        out.extend(self.stats_id.map(|s| text_elem("stats-id", c, s)));
        out.extend(
            self.region
                .map(|r| text_elem("jitsi_participant_region", c, r)),
        );
        out.extend(
            self.codec_list
                .map(|l| text_elem("jitsi_participant_codecList", c, l.join(","))),
        );
        out.extend(
            self.codec_type
                .map(|t| text_elem("jitsi_participant_codecType", c, t)),
        );
        out.extend(self.audio_muted.map(|b| bool_elem("audiomuted", b)));
        out.extend(self.video_muted.map(|b| bool_elem("videomuted", b)));
        out.extend(self.initiator.map(Element::from));
        out.extend(self.session_id.map(|s| text_elem("session_id", c, s)));
        out.extend(
            self.mode
                .map(|m| text_elem("mode", c, m.as_str().to_owned())),
        );
        out.extend(
            self.live_stream_view_url
                .map(|u| text_elem("live-stream-view-url", c, u)),
        );
        out.extend(self.permissions.map(Element::from));
        out.extend(self.recording_status.map(Element::from));
        out.extend(self.sip_call_state.map(Element::from));
        out.extend(self.jibri_status.map(Element::from));
        out.extend(self.stats.map(Element::from));
        out.extend(self.unknown);
        out
    }

    /// Whether the presence advertises feature `var`.
    pub fn has_feature(&self, var: &str) -> bool {
        self.features.as_ref().is_some_and(|f| f.has(var))
    }
}

impl TryFrom<Vec<Element>> for JitsiPresence {
    type Error = Error;

    fn try_from(payloads: Vec<Element>) -> Result<Self> {
        JitsiPresence::from_payloads(payloads)
    }
}

impl From<JitsiPresence> for Vec<Element> {
    fn from(p: JitsiPresence) -> Vec<Element> {
        p.into_payloads()
    }
}

/// `<visitors xmlns="jitsi:visitors" room>`: Jicofo telling Prosody to connect or
/// disconnect visitor nodes, and whether to broadcast to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorsIq {
    pub room: BareJid,
    /// `<connect-vnode vnode/>` children, in order.
    pub connect_vnodes: Vec<String>,
    /// `<disconnect-vnode vnode/>` children, in order.
    pub disconnect_vnodes: Vec<String>,
    /// `<broadcast enabled/>`.
    pub broadcast: Option<bool>,
}

impl TryFrom<&Element> for VisitorsIq {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "visitors";
        check(elem, E, ns::VISITORS)?;
        let room = room_jid(req(elem, E, "room")?, E, "room")?;
        let mut iq = VisitorsIq {
            room,
            connect_vnodes: Vec::new(),
            disconnect_vnodes: Vec::new(),
            broadcast: None,
        };
        for child in elem.children() {
            if child.is("connect-vnode", ns::VISITORS) {
                let v = req(child, "connect-vnode", "vnode")?;
                iq.connect_vnodes.push(v.to_owned());
            } else if child.is("disconnect-vnode", ns::VISITORS) {
                let v = req(child, "disconnect-vnode", "vnode")?;
                iq.disconnect_vnodes.push(v.to_owned());
            } else if child.is("broadcast", ns::VISITORS) {
                if iq.broadcast.is_some() {
                    return Err(Error::UnexpectedChild {
                        element: E,
                        child: "broadcast".to_owned(),
                    });
                }
                let enabled = opt_bool(child, "broadcast", "enabled")?;
                iq.broadcast = Some(enabled.ok_or(Error::MissingAttribute {
                    element: "broadcast",
                    attribute: "enabled",
                })?);
            }
        }
        Ok(iq)
    }
}

impl TryFrom<Element> for VisitorsIq {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        VisitorsIq::try_from(&elem)
    }
}

impl From<VisitorsIq> for Element {
    fn from(v: VisitorsIq) -> Element {
        let vnode = |name: &str, vnode: String| {
            Element::builder(name, ns::VISITORS)
                .a("vnode", vnode)
                .build()
        };
        let mut b = Element::builder("visitors", ns::VISITORS).a("room", v.room.to_string());
        b = b.append_all(
            v.connect_vnodes
                .into_iter()
                .map(|n| vnode("connect-vnode", n)),
        );
        b = b.append_all(
            v.disconnect_vnodes
                .into_iter()
                .map(|n| vnode("disconnect-vnode", n)),
        );
        if let Some(enabled) = v.broadcast {
            b = b.append(
                Element::builder("broadcast", ns::VISITORS)
                    .a("enabled", enabled.to_string())
                    .build(),
            );
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(s: &str) -> Element {
        crate::parse_xml(s).expect("test XML parses")
    }

    fn parse<T: TryFrom<Element, Error = Error>>(s: &str) -> Result<T> {
        T::try_from(xml(s))
    }

    #[test]
    fn presence_errors() {
        let payloads = |s: &str| -> Vec<Element> { xml(s).children().cloned().collect() };
        assert_eq!(
            JitsiPresence::from_payloads(payloads(
                "<presence xmlns='jabber:client'><audiomuted>maybe</audiomuted></presence>"
            )),
            Err(Error::InvalidText {
                element: "audiomuted",
                value: "maybe".into(),
            })
        );
        assert_eq!(
            JitsiPresence::from_payloads(payloads(
                "<presence xmlns='jabber:client'><mode>video</mode></presence>"
            )),
            Err(Error::InvalidText {
                element: "mode",
                value: "video".into(),
            })
        );
        assert_eq!(
            JitsiPresence::from_payloads(payloads(
                "<presence xmlns='jabber:client'><features><feature/></features></presence>"
            )),
            Err(Error::MissingAttribute {
                element: "feature",
                attribute: "var",
            })
        );
        assert_eq!(
            parse::<Permissions>(
                "<permissions xmlns='http://jitsi.org/jitmeet'><p name='x'/></permissions>"
            ),
            Err(Error::MissingAttribute {
                element: "p",
                attribute: "val",
            })
        );

        // Lenient: the bad one is kept and reported, the good ones are read.
        let (p, errors) = JitsiPresence::from_payloads_lenient(payloads(
            "<presence xmlns='jabber:client'><videomuted>nope</videomuted>\
             <nick xmlns='http://jabber.org/protocol/nick'>Bob</nick></presence>",
        ));
        assert_eq!(
            errors,
            vec![Error::InvalidText {
                element: "videomuted",
                value: "nope".into(),
            }]
        );
        assert_eq!(p.nick.as_deref(), Some("Bob"));
        assert_eq!(p.video_muted, None);
        assert_eq!(p.unknown.len(), 1);
        assert_eq!(p.unknown[0].name(), "videomuted");
    }
    #[test]
    fn visitors_errors() {
        assert_eq!(
            parse::<VisitorsIq>(
                "<visitors xmlns='jitsi:visitors' room='not-a-good-entity-bare-jid'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "visitors",
                attribute: "room",
                value: "not-a-good-entity-bare-jid".into(),
            })
        );
        assert_eq!(
            parse::<VisitorsIq>("<visitors xmlns='jitsi:visitors'/>"),
            Err(Error::MissingAttribute {
                element: "visitors",
                attribute: "room",
            })
        );
        assert_eq!(
            parse::<VisitorsIq>(
                "<visitors xmlns='jitsi:visitors' room='room@example.com'><connect-vnode/></visitors>"
            ),
            Err(Error::MissingAttribute {
                element: "connect-vnode",
                attribute: "vnode",
            })
        );
        assert_eq!(
            parse::<VisitorsIq>(
                "<visitors xmlns='jitsi:visitors' room='room@example.com'><broadcast/></visitors>"
            ),
            Err(Error::MissingAttribute {
                element: "broadcast",
                attribute: "enabled",
            })
        );
        assert_eq!(
            parse::<VisitorsIq>(
                "<visitors xmlns='jitsi:visitors' room='room@example.com'>\
                 <broadcast enabled='true'/><broadcast enabled='true'/></visitors>"
            ),
            Err(Error::UnexpectedChild {
                element: "visitors",
                child: "broadcast".into(),
            })
        );
    }
}
