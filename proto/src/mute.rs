//! The mute IQ: `<mute xmlns="http://jitsi.org/jitmeet/audio|video" jid actor?>true|false</mute>`.
//!
//! Sources: jitsi-xmpp-extensions `jitsimeet/AbstractMuteIq.java`,
//! `AbstractMuteIqProvider.java`, `MuteIq.kt`; jicofo `xmpp/MuteIqHandler.kt`.
//!
//! Contract:
//! - One type for both media: the namespace decides [`MediaKind`].
//! - A moderator sends it to the focus with `jid` (the target occupant); the focus
//!   forwards it to the target with `actor` (the moderator). Both are optional
//!   JIDs on the wire; a value that is not a JID is [`Error::InvalidAttribute`].
//! - The text is `true` or `false` (surrounding whitespace ignored); anything else
//!   is [`Error::InvalidText`].

use jid::Jid;
use minidom::Element;

use crate::error::{Error, Result};
use crate::ns;
use crate::util::{opt_parse, BuilderExt};

/// Which media a mute IQ is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The namespace of the mute IQ for this media.
    pub fn namespace(self) -> &'static str {
        match self {
            MediaKind::Audio => ns::MUTE_AUDIO,
            MediaKind::Video => ns::MUTE_VIDEO,
        }
    }
}

/// `<mute xmlns="http://jitsi.org/jitmeet/audio|video">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuteIq {
    pub kind: MediaKind,
    /// The occupant to (un)mute.
    pub jid: Option<Jid>,
    /// The moderator who asked (added by the focus when forwarding).
    pub actor: Option<Jid>,
    /// `true` to mute, `false` to unmute.
    pub mute: bool,
}

impl MuteIq {
    /// A moderator's request to (un)mute `jid`.
    pub fn new(kind: MediaKind, jid: Jid, mute: bool) -> Self {
        MuteIq {
            kind,
            jid: Some(jid),
            actor: None,
            mute,
        }
    }
}

impl TryFrom<&Element> for MuteIq {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "mute";
        let kind = if elem.is(E, ns::MUTE_AUDIO) {
            MediaKind::Audio
        } else if elem.is(E, ns::MUTE_VIDEO) {
            MediaKind::Video
        } else {
            return Err(Error::WrongElement {
                expected: E,
                expected_ns: ns::MUTE_AUDIO,
                found: elem.name().to_owned(),
                found_ns: elem.ns(),
            });
        };
        let text = elem.text();
        let mute = match text.trim() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(Error::InvalidText {
                    element: E,
                    value: text,
                })
            }
        };
        Ok(MuteIq {
            kind,
            jid: opt_parse(elem, E, "jid")?,
            actor: opt_parse(elem, E, "actor")?,
            mute,
        })
    }
}

impl TryFrom<Element> for MuteIq {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        MuteIq::try_from(&elem)
    }
}

impl From<MuteIq> for Element {
    fn from(m: MuteIq) -> Element {
        Element::builder("mute", m.kind.namespace())
            .a("jid", m.jid.map(|j| j.to_string()))
            .a("actor", m.actor.map(|j| j.to_string()))
            .append(if m.mute { "true" } else { "false" })
            .build()
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
    fn mute_errors() {
        assert_eq!(
            parse::<MuteIq>("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='a@b/c'>yes</mute>"),
            Err(Error::InvalidText {
                element: "mute",
                value: "yes".into(),
            })
        );
        assert_eq!(
            parse::<MuteIq>("<mute xmlns='http://jitsi.org/jitmeet/audio'/>"),
            Err(Error::InvalidText {
                element: "mute",
                value: String::new(),
            })
        );
        assert_eq!(
            parse::<MuteIq>("<mute xmlns='http://jitsi.org/jitmeet/desktop'>true</mute>"),
            Err(Error::WrongElement {
                expected: "mute",
                expected_ns: ns::MUTE_AUDIO,
                found: "mute".into(),
                found_ns: "http://jitsi.org/jitmeet/desktop".into(),
            })
        );
        assert_eq!(
            parse::<MuteIq>("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='a@@b'>true</mute>"),
            Err(Error::InvalidAttribute {
                element: "mute",
                attribute: "jid",
                value: "a@@b".into(),
            })
        );
    }
}
