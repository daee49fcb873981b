//! The conference request (`<conference xmlns="http://jitsi.org/protocol/focus">`) and
//! `<bridge-session>`, as Jicofo and its clients speak them.
//!
//! Sources: jitsi-xmpp-extensions `jitsimeet/ConferenceIq.java`,
//! `ConferenceIqProvider.java`, `BridgeSessionPacketExtension.java`; jicofo
//! `doc/conference-request.md`.
//!
//! Contract:
//! - A participant sends `<conference room=.. machine-uid=..>` with `<property name value/>`
//!   children to the focus before joining the MUC; the focus answers with
//!   `ready="true"` and may add `focusjid` and `vnode` (a visitor-node redirect).
//! - Every attribute is optional on the wire (a reply may omit `room`); the handler
//!   decides what a request must carry. `room`, when present, must be a bare JID
//!   with a local part (Jicofo's `getRoomJid`), and is normalised by the `jid` crate.
//! - The focus JID attribute is `focusjid` on the wire (Jicofo and lib-jitsi-meet);
//!   the spelling `focusJid` (Jicofo's own doc) is accepted too. We always write `focusjid`.
//! - `<property>` children are in the focus namespace (inherited or repeated, both
//!   accepted), and need `name` and `value`. Children in other namespaces are ignored.
//! - `<bridge-session id region? restart?>` rides in `session-initiate` (focus to
//!   client) and in `session-terminate` (client to focus, `restart="true"` asks for
//!   a new session).

use jid::BareJid;
use minidom::Element;

use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, opt, opt_bool, req, BuilderExt};

/// Well-known `<property>` names.
pub mod property {
    /// Client to focus: the client runs rtcstats.
    pub const RTCSTATS_ENABLED: &str = "rtcstatsEnabled";
    /// Focus to client: a SIP gateway is available for this conference.
    pub const SIP_GATEWAY_ENABLED: &str = "sipGatewayEnabled";
}

/// One `<property name value/>` of a conference request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: String,
}

impl Property {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Property {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl TryFrom<&Element> for Property {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "property", ns::FOCUS)?;
        Ok(Property {
            name: req(elem, "property", "name")?.to_owned(),
            value: req(elem, "property", "value")?.to_owned(),
        })
    }
}

impl From<Property> for Element {
    fn from(p: Property) -> Element {
        Element::builder("property", ns::FOCUS)
            .a("name", p.name)
            .a("value", p.value)
            .build()
    }
}

/// `<conference xmlns="http://jitsi.org/protocol/focus">`, request and reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceIq {
    /// The MUC room hosting the conference.
    pub room: Option<BareJid>,
    /// Reply: the focus is in the room and the conference can be joined.
    pub ready: Option<bool>,
    /// Reply: the JID of the focus user (`focusjid`).
    pub focus_jid: Option<String>,
    /// Authentication session id (`session-id`).
    pub session_id: Option<String>,
    /// Machine-unique id distinguishing a user's devices (`machine-uid`).
    pub machine_uid: Option<String>,
    /// Reply: the authenticated identity name.
    pub identity: Option<String>,
    /// Reply: the visitor node the client must join instead.
    pub vnode: Option<String>,
    /// Request: a token for a visitor node.
    pub token: Option<String>,
    /// `<property>` children, in document order.
    pub properties: Vec<Property>,
}

impl ConferenceIq {
    /// A client's request for `room`.
    pub fn request(room: BareJid) -> Self {
        ConferenceIq {
            room: Some(room),
            ..Default::default()
        }
    }

    /// The value of the first property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// Sets property `name`, replacing an existing one in place or appending.
    pub fn set_property(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.properties.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.properties.push(Property { name, value }),
        }
    }
}

/// Parses a room attribute: a bare JID with a local part.
pub(crate) fn room_jid(
    value: &str,
    element: &'static str,
    attribute: &'static str,
) -> Result<BareJid> {
    let invalid = || Error::InvalidAttribute {
        element,
        attribute,
        value: value.to_owned(),
    };
    let jid = BareJid::new(value).map_err(|_| invalid())?;
    if jid.node().is_none() {
        return Err(invalid());
    }
    Ok(jid)
}

impl TryFrom<&Element> for ConferenceIq {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "conference";
        check(elem, E, ns::FOCUS)?;
        let room = match elem.attr("room") {
            Some(v) => Some(room_jid(v, E, "room")?),
            None => None,
        };
        let focus_jid = opt(elem, "focusjid").or_else(|| opt(elem, "focusJid"));
        let mut properties = Vec::new();
        for child in elem.children() {
            if child.is("property", ns::FOCUS) {
                properties.push(Property::try_from(child)?);
            }
        }
        Ok(ConferenceIq {
            room,
            ready: opt_bool(elem, E, "ready")?,
            focus_jid,
            session_id: opt(elem, "session-id"),
            machine_uid: opt(elem, "machine-uid"),
            identity: opt(elem, "identity"),
            vnode: opt(elem, "vnode"),
            token: opt(elem, "token"),
            properties,
        })
    }
}

impl TryFrom<Element> for ConferenceIq {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        ConferenceIq::try_from(&elem)
    }
}

impl From<ConferenceIq> for Element {
    fn from(c: ConferenceIq) -> Element {
        Element::builder("conference", ns::FOCUS)
            .a("room", c.room.map(|r| r.to_string()))
            .a("ready", c.ready.map(|b| b.to_string()))
            .a("focusjid", c.focus_jid)
            .a("session-id", c.session_id)
            .a("machine-uid", c.machine_uid)
            .a("identity", c.identity)
            .a("vnode", c.vnode)
            .a("token", c.token)
            .append_all(c.properties.into_iter().map(Element::from))
            .build()
    }
}

/// `<bridge-session xmlns="http://jitsi.org/protocol/focus" id region? restart?/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSession {
    /// The bridge session id chosen by the focus.
    pub id: String,
    /// The region of the bridge.
    pub region: Option<String>,
    /// In a client's `session-terminate`: start a new session after this one.
    pub restart: Option<bool>,
}

impl BridgeSession {
    pub fn new(id: impl Into<String>, region: Option<String>) -> Self {
        BridgeSession {
            id: id.into(),
            region,
            restart: None,
        }
    }
}

impl TryFrom<&Element> for BridgeSession {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "bridge-session";
        check(elem, E, ns::FOCUS)?;
        Ok(BridgeSession {
            id: req(elem, E, "id")?.to_owned(),
            region: opt(elem, "region"),
            restart: opt_bool(elem, E, "restart")?,
        })
    }
}

impl TryFrom<Element> for BridgeSession {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        BridgeSession::try_from(&elem)
    }
}

impl From<BridgeSession> for Element {
    fn from(b: BridgeSession) -> Element {
        Element::builder("bridge-session", ns::FOCUS)
            .a("id", b.id)
            .a("region", b.region)
            .a("restart", b.restart.map(|b| b.to_string()))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_needs_value() {
        let e: Element =
            "<conference xmlns='http://jitsi.org/protocol/focus'><property name='a'/></conference>"
                .parse()
                .unwrap();
        assert_eq!(
            ConferenceIq::try_from(e),
            Err(Error::MissingAttribute {
                element: "property",
                attribute: "value"
            })
        );
    }

    #[test]
    fn set_property_replaces_in_place() {
        let mut c = ConferenceIq::default();
        c.set_property("a", "1");
        c.set_property("b", "2");
        c.set_property("a", "3");
        assert_eq!(
            c.properties,
            vec![Property::new("a", "3"), Property::new("b", "2")]
        );
        assert_eq!(c.property("a"), Some("3"));
        assert_eq!(c.property("z"), None);
    }

    fn xml(s: &str) -> Element {
        crate::parse_xml(s).expect("test XML parses")
    }

    fn parse<T: TryFrom<Element, Error = Error>>(s: &str) -> Result<T> {
        T::try_from(xml(s))
    }

    #[test]
    fn focus_errors() {
        assert_eq!(
            parse::<ConferenceIq>("<conference xmlns='urn:other' room='a@b'/>"),
            Err(Error::WrongElement {
                expected: "conference",
                expected_ns: ns::FOCUS,
                found: "conference".into(),
                found_ns: "urn:other".into(),
            })
        );
        assert_eq!(
            parse::<ConferenceIq>(
                "<conference xmlns='http://jitsi.org/protocol/focus' room='example.com'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "conference",
                attribute: "room",
                value: "example.com".into(),
            })
        );
        assert_eq!(
            parse::<ConferenceIq>(
                "<conference xmlns='http://jitsi.org/protocol/focus' ready='yes'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "conference",
                attribute: "ready",
                value: "yes".into(),
            })
        );
        assert_eq!(
            parse::<ConferenceIq>(
                "<conference xmlns='http://jitsi.org/protocol/focus'><property value='v'/></conference>"
            ),
            Err(Error::MissingAttribute {
                element: "property",
                attribute: "name",
            })
        );
        assert_eq!(
            parse::<BridgeSession>("<bridge-session xmlns='http://jitsi.org/protocol/focus'/>"),
            Err(Error::MissingAttribute {
                element: "bridge-session",
                attribute: "id",
            })
        );
    }
}
