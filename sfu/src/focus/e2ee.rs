//! End-to-end encryption in a room, as the focus sees it: which occupants
//! say they encrypt their media, and what the focus refuses while any does.
//!
//! Contract:
//! - An occupant encrypts when its MUC presence carries
//!   `<jitsi_participant_e2ee.enabled>true</jitsi_participant_e2ee.enabled>`
//!   in `jabber:client` (lib-jitsi-meet writes participant properties as
//!   `jitsi_participant_<name>` elements with no namespace of their own).
//!   The text `true` (surrounding white space ignored) turns it on; `false`,
//!   any other text, and absence mean off. Every presence update is read
//!   again, so turning it off is seen at once.
//! - While any occupant of a room encrypts, a moderator's recording or
//!   streaming start and dial-out are refused with `not-allowed` and a text
//!   that says why ([`Refused`]). Stop requests are never refused for this.
//!   Moderator checks come first: a guest gets `forbidden` either way.
//! - A recording, stream or call already running when someone turns
//!   encryption on is left running: stopping it is the moderator's choice,
//!   and the page shows that it runs. (Such a recording holds what the
//!   recorder can decode, i.e. not the encrypting participants' media.)
//! - After the focus's XMPP session comes back from offline, occupants are
//!   known again from their re-sent presence, encryption included.

use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition;

/// The presence element lib-jitsi-meet sets for a participant's E2EE.
pub(super) const ELEMENT: &str = "jitsi_participant_e2ee.enabled";

/// Whether these presence payloads say the occupant encrypts its media.
pub(super) fn enabled(payloads: &[Element]) -> bool {
    payloads
        .iter()
        .find(|p| p.is(ELEMENT, proto::ns::JABBER_CLIENT))
        .is_some_and(|p| p.text().trim() == "true")
}

/// A request refused because someone in the room encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Recording,
    Streaming,
    DialOut,
}

impl Refused {
    /// The stanza error condition that answers the request.
    pub fn condition(self) -> DefinedCondition {
        DefinedCondition::NotAllowed
    }

    /// Why, in words a user understands.
    pub fn text(self) -> &'static str {
        match self {
            Refused::Recording => {
                "end-to-end encryption is on in this meeting; recording needs the media unencrypted"
            }
            Refused::Streaming => {
                "end-to-end encryption is on in this meeting; live streaming needs the media unencrypted"
            }
            Refused::DialOut => {
                "end-to-end encryption is on in this meeting; dial-out needs the media unencrypted"
            }
        }
    }
}
