//! The phone side of a call: SDP offer/answer, RTP and RFC 4733 events.
//!
//! Sans-IO like the audio core ([`crate::media`]): these types parse and
//! build bytes and keep per-call state; sockets, timers and the SIP dialog
//! live elsewhere. Everything that reads network input returns an error
//! enum and never panics, whatever it is fed (see the mutation tests).
//!
//! - [`codec`]: the codecs a phone can negotiate ([`codec::PhoneCodec`]).
//! - [`sdp`]: parse an offer, negotiate, write the answer; our own offer for
//!   dial-out and the answer to it.
//! - [`rtp`]: RTP header parse/build and a sender that stamps 20 ms frames.
//! - [`dtmf`]: RFC 4733 telephone-events in and out.

pub mod codec;
pub mod dtmf;
pub mod rtp;
pub mod sdp;

#[cfg(test)]
mod tests;
