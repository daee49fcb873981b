//! Rayo (XEP-0327, `urn:xmpp:rayo:1`) as Jitsi uses it for SIP dial-out through
//! the SIP gateway: `<dial>`, the `<ref>` reply, and `<hangup>`.
//!
//! Sources: jitsi-xmpp-extensions `rayo/DialIq.java`, `RefIq.java`, `HangUp.java`,
//! `HeaderExtension.java`, `RayoIqProvider.java`; lib-jitsi-meet
//! `modules/xmpp/strophe.rayo.ts`; jigasi `xmpp/CallControl.java`.
//!
//! Contract:
//! - `<dial to from?>`: `to` (the number or SIP URI to call) is required and must
//!   not be empty; `from` is optional. `<header name value/>` children carry the
//!   room (`JvbRoomName`, required by the gateway), its password (`JvbRoomPassword`)
//!   and any extra SIP headers, in document order.
//! - `<ref uri/>` answers a dial; `uri` is required (`xmpp:<id>@<domain>`).
//! - `<hangup/>` may carry headers too.
//! - [`RayoIq`] dispatches on the element name; any other Rayo command is
//!   [`Error::UnknownAction`] (answer `feature-not-implemented`).
//! - Children other than `<header>` are ignored.

use minidom::Element;

use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, opt, req, BuilderExt};

/// The header naming the conference room the gateway joins.
pub const ROOM_NAME_HEADER: &str = "JvbRoomName";
/// The header carrying the room password.
pub const ROOM_PASSWORD_HEADER: &str = "JvbRoomPassword";

/// `<header name value/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Reads `name` and `value` of a `<header>` in any namespace (Jigasi's
    /// `<initiator>` nests Rayo headers).
    pub(crate) fn from_attrs(elem: &Element) -> Result<Self> {
        Ok(Header {
            name: req(elem, "header", "name")?.to_owned(),
            value: req(elem, "header", "value")?.to_owned(),
        })
    }
}

impl TryFrom<&Element> for Header {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "header", ns::RAYO)?;
        Header::from_attrs(elem)
    }
}

impl TryFrom<Element> for Header {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Header::try_from(&elem)
    }
}

impl From<Header> for Element {
    fn from(h: Header) -> Element {
        Element::builder("header", ns::RAYO)
            .a("name", h.name)
            .a("value", h.value)
            .build()
    }
}

/// The Rayo `<header>` children of `elem`, in order.
fn headers(elem: &Element) -> Result<Vec<Header>> {
    elem.children()
        .filter(|c| c.is("header", ns::RAYO))
        .map(Header::try_from)
        .collect()
}

/// The value of the first header called `name`.
fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

/// Replaces the first header called `name` in place, or appends one.
fn put(headers: &mut Vec<Header>, name: String, value: String) {
    match headers.iter_mut().find(|h| h.name == name) {
        Some(h) => h.value = value,
        None => headers.push(Header { name, value }),
    }
}

/// `<dial xmlns="urn:xmpp:rayo:1" to from?>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The caller (`from`), often a display name or number.
    pub from: Option<String>,
    /// The destination (`to`): a number, a SIP URI, or `jitsi_meet_transcribe`.
    pub to: String,
    pub headers: Vec<Header>,
}

impl Dial {
    /// A dial-out to `to` from the conference `room`.
    pub fn new(to: impl Into<String>, room: impl Into<String>) -> Self {
        Dial {
            from: None,
            to: to.into(),
            headers: vec![Header::new(ROOM_NAME_HEADER, room)],
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Sets header `name`, replacing the first one of that name or appending.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        put(&mut self.headers, name.into(), value.into());
    }

    /// `JvbRoomName`: the conference room to join.
    pub fn room_name(&self) -> Option<&str> {
        self.header(ROOM_NAME_HEADER)
    }

    /// `JvbRoomPassword`.
    pub fn room_password(&self) -> Option<&str> {
        self.header(ROOM_PASSWORD_HEADER)
    }

    /// Every header except the room name and password: the gateway's "extra headers".
    pub fn extra_headers(&self) -> impl Iterator<Item = &Header> {
        self.headers
            .iter()
            .filter(|h| h.name != ROOM_NAME_HEADER && h.name != ROOM_PASSWORD_HEADER)
    }
}

impl TryFrom<&Element> for Dial {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "dial", ns::RAYO)?;
        let to = req(elem, "dial", "to")?;
        if to.is_empty() {
            return Err(Error::InvalidAttribute {
                element: "dial",
                attribute: "to",
                value: String::new(),
            });
        }
        Ok(Dial {
            from: opt(elem, "from"),
            to: to.to_owned(),
            headers: headers(elem)?,
        })
    }
}

impl TryFrom<Element> for Dial {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Dial::try_from(&elem)
    }
}

impl From<Dial> for Element {
    fn from(d: Dial) -> Element {
        Element::builder("dial", ns::RAYO)
            .a("from", d.from)
            .a("to", d.to)
            .append_all(d.headers.into_iter().map(Element::from))
            .build()
    }
}

/// `<ref xmlns="urn:xmpp:rayo:1" uri/>`: the call the gateway created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `xmpp:<call-id>@<domain>`; hang up by sending `<hangup>` there.
    pub uri: String,
}

impl Ref {
    pub fn new(uri: impl Into<String>) -> Self {
        Ref { uri: uri.into() }
    }

    /// The JID part of an `xmpp:` URI.
    pub fn jid(&self) -> Option<&str> {
        self.uri.strip_prefix("xmpp:")
    }
}

impl TryFrom<&Element> for Ref {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "ref", ns::RAYO)?;
        Ok(Ref {
            uri: req(elem, "ref", "uri")?.to_owned(),
        })
    }
}

impl TryFrom<Element> for Ref {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Ref::try_from(&elem)
    }
}

impl From<Ref> for Element {
    fn from(r: Ref) -> Element {
        Element::builder("ref", ns::RAYO).a("uri", r.uri).build()
    }
}

/// `<hangup xmlns="urn:xmpp:rayo:1"/>`, optionally with headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hangup {
    pub headers: Vec<Header>,
}

impl Hangup {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

impl TryFrom<&Element> for Hangup {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "hangup", ns::RAYO)?;
        Ok(Hangup {
            headers: headers(elem)?,
        })
    }
}

impl TryFrom<Element> for Hangup {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Hangup::try_from(&elem)
    }
}

impl From<Hangup> for Element {
    fn from(h: Hangup) -> Element {
        Element::builder("hangup", ns::RAYO)
            .append_all(h.headers.into_iter().map(Element::from))
            .build()
    }
}

/// Any Rayo IQ payload we handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RayoIq {
    Dial(Dial),
    Ref(Ref),
    Hangup(Hangup),
}

impl TryFrom<&Element> for RayoIq {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        if elem.ns() != ns::RAYO {
            return Err(Error::WrongElement {
                expected: "dial",
                expected_ns: ns::RAYO,
                found: elem.name().to_owned(),
                found_ns: elem.ns(),
            });
        }
        match elem.name() {
            "dial" => Dial::try_from(elem).map(RayoIq::Dial),
            "ref" => Ref::try_from(elem).map(RayoIq::Ref),
            "hangup" => Hangup::try_from(elem).map(RayoIq::Hangup),
            other => Err(Error::UnknownAction {
                element: "rayo",
                action: other.to_owned(),
            }),
        }
    }
}

impl TryFrom<Element> for RayoIq {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        RayoIq::try_from(&elem)
    }
}

impl From<RayoIq> for Element {
    fn from(r: RayoIq) -> Element {
        match r {
            RayoIq::Dial(d) => d.into(),
            RayoIq::Ref(r) => r.into(),
            RayoIq::Hangup(h) => h.into(),
        }
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
    fn rayo_errors() {
        assert_eq!(
            parse::<Dial>("<dial xmlns='urn:xmpp:rayo:1' from='a'/>"),
            Err(Error::MissingAttribute {
                element: "dial",
                attribute: "to",
            })
        );
        assert_eq!(
            parse::<Dial>("<dial xmlns='urn:xmpp:rayo:1' to=''/>"),
            Err(Error::InvalidAttribute {
                element: "dial",
                attribute: "to",
                value: String::new(),
            })
        );
        assert_eq!(
            parse::<Dial>("<dial xmlns='urn:xmpp:rayo:1' to='x'><header name='h'/></dial>"),
            Err(Error::MissingAttribute {
                element: "header",
                attribute: "value",
            })
        );
        assert_eq!(
            parse::<Ref>("<ref xmlns='urn:xmpp:rayo:1'/>"),
            Err(Error::MissingAttribute {
                element: "ref",
                attribute: "uri",
            })
        );
        assert_eq!(
            parse::<RayoIq>("<answer xmlns='urn:xmpp:rayo:1'/>"),
            Err(Error::UnknownAction {
                element: "rayo",
                action: "answer".into(),
            })
        );
        assert_eq!(
            parse::<Dial>("<dial xmlns='urn:xmpp:rayo:0' to='x'/>"),
            Err(Error::WrongElement {
                expected: "dial",
                expected_ns: ns::RAYO,
                found: "dial".into(),
                found_ns: "urn:xmpp:rayo:0".into(),
            })
        );
    }
}
