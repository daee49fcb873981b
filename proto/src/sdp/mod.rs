//! A small SDP model (RFC 8866, formerly RFC 4566) with a parser and a
//! writer, and the pure Jingle <-> SDP mapping used between Jitsi's Jingle
//! and WebRTC (JSEP, RFC 8829) peers.
//!
//! The model keeps every line and the order of attributes, at session and
//! media level: `Sdp::parse(text)?.to_string() == text` for any SDP with CRLF
//! line ends. Attributes are stored as `name[:value]` text; the Jingle
//! mapping gives them meaning.
//!
//! The mapping ([`jingle_to_sdp`], [`sdp_to_jingle`], and the `_as` forms
//! that take the point of view for `a=sendonly`/`a=recvonly`) follows
//! lib-jitsi-meet's `SDP.ts`: content name <-> `a=mid`, senders <->
//! direction, payload types <-> m-line formats + `a=rtpmap`/`a=fmtp`/
//! `a=rtcp-fb` (`a=rtcp-fb:*` <-> description-level feedback), header
//! extensions <-> `a=extmap`, sources <-> `a=ssrc` (with Jitsi's `name`,
//! `videoType` and `owner` as extra ssrc attributes), groups <->
//! `a=ssrc-group`, ICE and DTLS <-> `a=ice-*`/`a=fingerprint`/`a=setup`/
//! `a=candidate` (Jingle's `network` and `id` as the `network-id` and `id`
//! extension fields), BUNDLE <-> `a=group`. Jingle fields with no SDP
//! meaning travel as `a=x-jitsi-*` attributes; SDP attributes with no Jingle
//! meaning travel in our `urn:x-meet:jingle:sdp:0` elements. The full table,
//! and what is derived rather than carried (the m-line port, `c=`,
//! `a=rtcp`, `a=msid-semantic`, `o=`), is in `docs/jingle-sdp.md`.
//!
//! Contract: no I/O, no clock. Parsing never panics; a malformed line is
//! [`Error::Sdp`] with its 1-based line number. Jingle -> SDP -> Jingle is
//! the identity on the Jingle fixtures, and SDP -> Jingle -> SDP reproduces
//! Chromium's SDPs byte for byte apart from `o=`, which the caller owns.

mod candidate;
mod from_jingle;
mod parse;
mod to_jingle;
mod write;

use std::fmt;

pub use from_jingle::{contents_to_sdp, jingle_to_sdp};
pub use to_jingle::{sdp_to_jingle, sdp_to_jingle_as};

use crate::error::{Error, Result};

/// The `o=` line: `<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Opaque; browsers use a random 64-bit number.
    pub session_id: String,
    /// Must grow with every new offer or answer of the same session.
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

impl Default for Origin {
    /// `- 0 0 IN IP4 127.0.0.1`: a placeholder the caller replaces.
    fn default() -> Self {
        Origin {
            username: "-".into(),
            session_id: "0".into(),
            session_version: 0,
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            address: "127.0.0.1".into(),
        }
    }
}

/// A line other than `v=`, `o=`, `s=`, `m=` and `a=`: `i=`, `u=`, `e=`,
/// `p=`, `c=`, `b=`, `t=`, `r=`, `z=`, `k=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub kind: char,
    pub value: String,
}

impl Field {
    pub fn new(kind: char, value: impl Into<String>) -> Self {
        Field {
            kind,
            value: value.into(),
        }
    }
}

/// An `a=<name>[:<value>]` line. The value is kept verbatim (Chromium's
/// `a=msid-semantic: WMS` has a leading space).
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
    /// 1-based line number in the parsed text; 0 when built in code. Not
    /// part of equality.
    pub line: usize,
}

impl PartialEq for Attribute {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value
    }
}

impl Eq for Attribute {}

impl Attribute {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Attribute {
            name: name.into(),
            value,
            line: 0,
        }
    }

    /// A property attribute (`a=rtcp-mux`).
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute::new(name, None)
    }

    /// A value attribute (`a=mid:0`).
    pub fn value(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute::new(name, Some(value.into()))
    }

    /// An `Error::Sdp` pointing at this attribute's line.
    pub(crate) fn error(&self, reason: impl fmt::Display) -> Error {
        Error::Sdp {
            line: self.line,
            reason: format!("a={}: {reason}", self.name),
        }
    }
}

/// One media section: the `m=` line, its fields and attributes.
#[derive(Debug, Clone)]
pub struct MediaSection {
    /// `audio`, `video`, `application`...
    pub media: String,
    pub port: u16,
    /// The `/<number of ports>` suffix of the port, if any.
    pub port_count: Option<u16>,
    /// `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`...
    pub proto: String,
    /// Payload type numbers, or e.g. `webrtc-datachannel`.
    pub formats: Vec<String>,
    pub fields: Vec<Field>,
    pub attributes: Vec<Attribute>,
    /// 1-based line number of the `m=` line; 0 when built in code. Not
    /// part of equality.
    pub line: usize,
}

impl PartialEq for MediaSection {
    fn eq(&self, other: &Self) -> bool {
        self.media == other.media
            && self.port == other.port
            && self.port_count == other.port_count
            && self.proto == other.proto
            && self.formats == other.formats
            && self.fields == other.fields
            && self.attributes == other.attributes
    }
}

impl Eq for MediaSection {}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub origin: Origin,
    /// `s=`; `-` when there is none to give.
    pub session_name: String,
    /// Session-level lines other than `v=`, `o=`, `s=` and `a=`, in order.
    pub fields: Vec<Field>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaSection>,
}

impl Sdp {
    /// Parses SDP text; lines may end in CRLF or LF.
    pub fn parse(text: &str) -> Result<Sdp> {
        parse::parse(text)
    }

    /// The value of the first session-level attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

impl std::str::FromStr for Sdp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Sdp> {
        Sdp::parse(s)
    }
}

impl fmt::Display for Sdp {
    /// The SDP text, CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write::write(self, f)
    }
}

impl MediaSection {
    /// The first attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The value of the first attribute called `name` (`""` for a flag).
    pub fn attr_value(&self, name: &str) -> Option<&str> {
        self.attr(name).map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// Every attribute called `name`.
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// The `c=` field value, if any.
    pub fn connection(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.kind == 'c')
            .map(|f| f.value.as_str())
    }

    /// The `a=mid` value.
    pub fn mid(&self) -> Option<&str> {
        self.attr_value("mid")
    }
}
