//! The gateway's audio core: sans-IO, no sockets, no clocks, no threads.
//!
//! Contract: every type here is fed frames and returns frames; time, when it
//! matters (the [`jitter::JitterBuffer`]), is an argument. The room side runs
//! at 48 kHz in 20 ms frames ([`FRAME_48K`] samples per channel); the phone
//! side at 8 kHz (G.711), 16 kHz (G.722) or 48 kHz (Opus). Buffers are
//! allocated when a type is built, never per frame.
//!
//! - [`g711`]: µ-law / A-law (ITU-T G.711), written here: two small formulas.
//! - [`g722`]: G.722 sub-band ADPCM at 64 kbit/s, written here from the
//!   Recommendation (why not `ezk-g722`: see the module).
//! - [`resample`]: polyphase windowed-sinc 8/16 kHz ↔ 48 kHz.
//! - [`opus`]: Opus (RFC 6716) over `audiopus` (system libopus), with PLC/FEC.
//! - [`mixer`]: "everyone but me": decode each room stream once per tick,
//!   then mix per caller by subtracting the caller's own stream from the sum.
//! - [`jitter`]: fixed-delay jitter buffer keyed by RTP timestamp.
//! - [`call`]: the two per-call chains (phone → room, room → phone) for
//!   every [`PhoneCodec`](crate::phone::codec::PhoneCodec).

pub mod call;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod mixer;
pub mod opus;
pub mod resample;

#[cfg(test)]
mod bench;
#[cfg(test)]
pub(crate) mod testutil;

/// Length of one audio frame, the mixer tick.
pub const FRAME_MS: u32 = 20;
/// Samples per channel in one 20 ms frame at 48 kHz.
pub const FRAME_48K: usize = 960;

/// Errors of the audio core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// libopus refused a packet or a call (a corrupt packet from the remote
    /// side shows up here: conceal it and go on; never fatal for the call).
    #[error("opus: {0}")]
    Opus(#[from] audiopus::Error),
    /// A frame of the wrong length was handed in (our bug, not the peer's).
    #[error("frame of {got} samples where {expected} were expected")]
    FrameSize { expected: usize, got: usize },
}
