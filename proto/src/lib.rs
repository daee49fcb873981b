//! I/O-free protocol types shared by the `sfu`, `recorder` and `gateway`.
//!
//! Contract: nothing in this crate opens a socket, reads the clock or spawns a
//! task. Every XML type parses from a [`minidom::Element`] with `TryFrom` and
//! serializes back with `From<T> for Element`; the bridge-channel messages are
//! serde types. A parse error ([`Error`]) names the element and attribute at
//! fault and maps to the XMPP error condition that answers it.

pub mod error;
pub mod ns;
mod util;

pub use error::{Error, Result};
pub use util::parse_xml;

// XMPP extensions (focus, recorder and gateway coordination).
pub mod bridge_channel;
pub mod colibri;
pub mod focus;
pub mod jibri;
pub mod mute;
pub mod presence;
pub mod rayo;

// Jingle in the Jitsi dialect, and its SDP mapping.
pub mod jingle;
pub mod sdp;
