//! The media plane's forwarding decisions, as small pure units.
//!
//! Contract, for every module here:
//! - **Sans-IO.** No socket, no task, no lock, no clock read: time is an
//!   [`Instant`](std::time::Instant) argument, so tests step simulated time.
//!   Nothing here depends on str0m; the driver around str0m (RTP mode) feeds
//!   these units with header fields and payload slices and applies their answers.
//! - **No allocation per packet.** The per-packet calls
//!   ([`rewrite::SeqTsRewriter::rewrite`], [`vp8::Vp8Rewriter::rewrite`],
//!   [`vp8::is_keyframe`], [`h264::is_keyframe`], [`layers::SourceLayers::on_packet`],
//!   [`speaker::SpeakerDetector::on_audio_level`], [`audio_route`]) work in
//!   fixed-size state.
//!   Allocation happens only on rare events (a layer switch, a new allocation,
//!   a dominant-speaker change).
//! - **Never panic on network input.** Parsers return `None`/`Err`/`false` on
//!   truncated or garbage payloads.
//!
//! The units:
//! - [`rewrite`]: one continuous RTP stream (sequence numbers, timestamps) per
//!   receiver across simulcast switches and pauses, and the reverse mapping for NACKs.
//! - [`vp8`], [`h264`]: keyframe detection (RFC 7741, RFC 6184) and VP8 picture-id
//!   rewriting; E2EE-safe (only unencrypted header bytes are read).
//! - [`layers`]: what a simulcast source offers (bitrate, activity, height per layer).
//! - [`allocation`]: which source and layer each receiver gets, from its
//!   `ReceiverVideoConstraints`, the speaker order and its bandwidth estimate.
//! - [`speaker`]: the dominant speaker from RFC 6464 audio levels.
//! - [`audio_route`]: which publishers fill a receiver's audio slots (the
//!   loudest it subscribes to).

pub mod allocation;
pub mod audio_route;
pub mod h264;
pub mod layers;
pub mod rewrite;
pub mod speaker;
pub mod vp8;

use std::borrow::Borrow;
use std::fmt;

/// An RTP synchronization source identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

impl From<u32> for Ssrc {
    fn from(v: u32) -> Self {
        Ssrc(v)
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A string id newtype: `new`, `as_str`, `Display`, `From<&str>`, `From<String>`
/// and `Borrow<str>` (so maps keyed by it are searched with a `&str`).
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A conference endpoint (participant) id, as in Colibri2 and the bridge channel.
    EndpointId
);

string_id!(
    /// A media source name, `<endpoint-id>-v0` / `<endpoint-id>-a0`.
    SourceName
);
