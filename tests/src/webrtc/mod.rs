//! A test participant whose WebRTC stack is GStreamer's `webrtcbin`, one we
//! did not write, so end-to-end tests check our SFU and signalling against
//! an independent implementation.
//!
//! - [`pipeline`]: [`WebrtcPeer`], the media side, usable without XMPP:
//!   sends a VP8 test pattern and an Opus sine tone, answers (or makes) an
//!   SDP offer, and measures what it decodes ([`StreamStats`]: frames and
//!   size for video, dominant frequency and RMS for audio).
//! - [`jingle`]: [`WebrtcParticipant`], the signalling side: anonymous XMPP
//!   login, conference request, MUC join, and the Jingle session with the
//!   focus, converted to and from SDP by `proto::sdp` alone.
//! - [`analysis`]: the audio measurements.
//!
//! Contract: GStreamer is initialised once per process ([`init`]); each
//! peer is one pipeline that stops on drop. Negotiation calls block and
//! wait for ICE gathering, so SDPs carry their candidates (no trickle).

pub mod analysis;
mod cert;
pub mod jingle;
pub mod pipeline;

pub use jingle::{answer_sdp, offer_sdp, session_accept, JingleRecord, WebrtcParticipant};
pub use pipeline::{init, MediaConfig, StreamKind, StreamStats, WebrtcPeer};
