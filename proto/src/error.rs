//! The crate's parse error, and which XMPP error condition answers it.

use xmpp_parsers::stanza_error::DefinedCondition;

/// Why an element, JSON message or SDP could not be parsed.
///
/// Every variant names the element and the attribute or child at fault, so the
/// text is fit for an XMPP `<text/>` and for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The element is not the one this type parses (name or namespace differ).
    #[error("expected <{expected} xmlns='{expected_ns}'>, found <{found} xmlns='{found_ns}'>")]
    WrongElement {
        expected: &'static str,
        expected_ns: &'static str,
        found: String,
        found_ns: String,
    },
    /// A required attribute is absent.
    #[error("<{element}> is missing the '{attribute}' attribute")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    /// An attribute is present but its value does not parse.
    #[error("<{element}> has an invalid '{attribute}' attribute: {value:?}")]
    InvalidAttribute {
        element: &'static str,
        attribute: &'static str,
        value: String,
    },
    /// A required child element is absent.
    #[error("<{element}> is missing its <{child}> child")]
    MissingChild {
        element: &'static str,
        child: &'static str,
    },
    /// A child element that this element does not allow.
    #[error("<{element}> has an unexpected <{child}> child")]
    UnexpectedChild {
        element: &'static str,
        child: String,
    },
    /// The text content does not parse.
    #[error("<{element}> has invalid text content: {value:?}")]
    InvalidText {
        element: &'static str,
        value: String,
    },
    /// An action (Jingle `action`, Jibri `action`) this implementation does not know.
    #[error("<{element}> has an unknown action {action:?}")]
    UnknownAction {
        element: &'static str,
        action: String,
    },
    /// A JSON payload (bridge channel, `json-message`) that does not parse.
    #[error("invalid {what} JSON: {reason}")]
    Json { what: &'static str, reason: String },
    /// An SDP that does not parse or cannot be expressed in Jingle.
    #[error("SDP line {line}: {reason}")]
    Sdp { line: usize, reason: String },
}

impl Error {
    /// The XMPP error condition that answers a request carrying this error.
    ///
    /// An unknown action is `feature-not-implemented`; everything else is the
    /// sender's malformed request, `bad-request`.
    pub fn condition(&self) -> DefinedCondition {
        match self {
            Error::UnknownAction { .. } => DefinedCondition::FeatureNotImplemented,
            _ => DefinedCondition::BadRequest,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
