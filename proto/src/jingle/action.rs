//! Jingle actions, content creators and senders (XEP-0166 §7), plus the
//! Jitsi source-signalling actions.
//!
//! Contract: every value parses from and prints to its exact wire token;
//! an unknown action is [`Error::UnknownAction`] (answered with
//! `feature-not-implemented`), an unknown creator or senders value is
//! [`Error::InvalidAttribute`].

use std::fmt;

use crate::error::{Error, Result};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $token:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire token.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $token,)+
                }
            }

            fn from_token(s: &str) -> Option<Self> {
                match s {
                    $($token => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// The `action` of a `<jingle>` element: XEP-0166 §7.2 plus Jitsi's
    /// source signalling (`source-add`/`source-remove`, and the legacy
    /// `addsource`/`removesource` older clients still send).
    Action {
        ContentAccept = "content-accept",
        ContentAdd = "content-add",
        ContentModify = "content-modify",
        ContentReject = "content-reject",
        ContentRemove = "content-remove",
        DescriptionInfo = "description-info",
        SecurityInfo = "security-info",
        SessionAccept = "session-accept",
        SessionInfo = "session-info",
        SessionInitiate = "session-initiate",
        SessionTerminate = "session-terminate",
        TransportAccept = "transport-accept",
        TransportInfo = "transport-info",
        TransportReject = "transport-reject",
        TransportReplace = "transport-replace",
        /// Jitsi: new remote (or local) sources.
        SourceAdd = "source-add",
        /// Jitsi: sources that went away.
        SourceRemove = "source-remove",
        /// Jitsi, legacy spelling of `source-add`.
        AddSource = "addsource",
        /// Jitsi, legacy spelling of `source-remove`.
        RemoveSource = "removesource",
    }
}

impl Action {
    /// Parses an action token; unknown tokens are `Error::UnknownAction`.
    pub fn parse(s: &str) -> Result<Self> {
        Self::from_token(s).ok_or_else(|| Error::UnknownAction {
            element: "jingle",
            action: s.to_owned(),
        })
    }

    /// `source-add` in either spelling.
    pub fn is_source_add(self) -> bool {
        matches!(self, Action::SourceAdd | Action::AddSource)
    }

    /// `source-remove` in either spelling.
    pub fn is_source_remove(self) -> bool {
        matches!(self, Action::SourceRemove | Action::RemoveSource)
    }
}

impl std::str::FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Action::parse(s)
    }
}

wire_enum! {
    /// Which party created a content (XEP-0166 `creator`).
    Creator {
        Initiator = "initiator",
        Responder = "responder",
    }
}

wire_enum! {
    /// Which parties send media for a content (XEP-0166 `senders`).
    Senders {
        Both = "both",
        Initiator = "initiator",
        Responder = "responder",
        None = "none",
        /// Not in XEP-0166: lib-jitsi-meet writes it for an m-line it
        /// rejected (port 0 without `a=bundle-only`).
        Rejected = "rejected",
    }
}

impl std::str::FromStr for Creator {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Self::from_token(s).ok_or(())
    }
}

impl std::str::FromStr for Senders {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Self::from_token(s).ok_or(())
    }
}

/// A party of a Jingle session; used to say from whose point of view an
/// SDP direction (`a=sendonly`...) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Initiator,
    Responder,
}

impl Senders {
    /// The SDP direction attribute for these senders, read from `view`'s
    /// side: the initiator's `sendonly` is `senders="initiator"`.
    /// `Rejected` is written as `inactive` (its port is 0).
    pub fn to_direction(self, view: Role) -> &'static str {
        match (self, view) {
            (Senders::Both, _) => "sendrecv",
            (Senders::None | Senders::Rejected, _) => "inactive",
            (Senders::Initiator, Role::Initiator) | (Senders::Responder, Role::Responder) => {
                "sendonly"
            }
            (Senders::Initiator, Role::Responder) | (Senders::Responder, Role::Initiator) => {
                "recvonly"
            }
        }
    }

    /// The senders for an SDP direction attribute written by `view`;
    /// `None` for a token that is not a direction.
    pub fn from_direction(direction: &str, view: Role) -> Option<Self> {
        Some(match (direction, view) {
            ("sendrecv", _) => Senders::Both,
            ("inactive", _) => Senders::None,
            ("sendonly", Role::Initiator) | ("recvonly", Role::Responder) => Senders::Initiator,
            ("sendonly", Role::Responder) | ("recvonly", Role::Initiator) => Senders::Responder,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Ok(*a));
        }
        assert_eq!(Action::ALL.len(), 19);
    }

    #[test]
    fn direction_mapping_is_symmetric() {
        for view in [Role::Initiator, Role::Responder] {
            for s in [
                Senders::Both,
                Senders::Initiator,
                Senders::Responder,
                Senders::None,
            ] {
                assert_eq!(Senders::from_direction(s.to_direction(view), view), Some(s));
            }
        }
    }
}
