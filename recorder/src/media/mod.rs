//! The recorder's compositing and encoding core: [`Mixer`] lays out the
//! participants' decoded video on one canvas, mixes their decoded audio and
//! encodes the result into fragmented MP4, FLV (RTMP) or an audio-only file.
//!
//! # Contract
//!
//! - **Placement.** [`Mixer::new`] adds one `gst::Bin` ("mixerN") to the
//!   caller's pipeline; it holds everything, the caller's sink included (the
//!   sink must not be in a bin yet). Create it before or after the pipeline
//!   goes to PLAYING; inputs can come and go while it plays.
//! - **Inputs.** `add_video` / `add_audio` take an unlinked *source* pad of
//!   the caller's carrying raw video (any size, format, frame rate) or raw
//!   audio (any rate, channels, format). They must be **live and timestamped
//!   in the pipeline's running time** (what a decoder behind webrtcbin, or any
//!   `is-live` source, produces). The aggregators wait [`MixerConfig::latency`]
//!   (default 300 ms) for late inputs; data later than that is dropped, never
//!   waited for. Each input's video is scaled into its tile by the compositor
//!   (aspect kept, letterboxed), so a reflow never renegotiates caps.
//! - **Leaving.** [`Mixer::remove`] takes the tile away (the layout reflows)
//!   and releases the branches at once. The caller's pads stay linked to a
//!   ghost pad that consumes what they push (pushes return OK, never stall),
//!   until the caller unlinks them or tears its chain down.
//! - **Clock and latency.** Background sources (black video, silence) keep the
//!   compositor and audiomixer producing at a constant rate with no inputs.
//!   Both run on the pipeline clock in live mode, so audio and video share one
//!   timeline. After each input is added the mixer calls `recalculate_latency`
//!   on the pipeline; the caller should also answer `Latency` bus messages
//!   with `recalculate_latency` (standard for live pipelines).
//! - **Ending.** [`Mixer::finish`] seals the inputs, puts EOS in right behind
//!   the compositor and audiomixer (so a stalled input cannot hold it back)
//!   and waits, through a sync handler on the bus (it never pops messages the
//!   caller reads), until the caller's sink has taken EOS: the MP4's last
//!   fragment and `mfra` are written. Only then set the pipeline to NULL. The
//!   rest of the caller's pipeline keeps running, and no pipeline-wide EOS is
//!   posted. During finish the bin forwards its children's messages wrapped in
//!   `GstBinForwarded` element messages; ignore them.
//! - **Errors.** Duplicate adds and a pad that cannot be linked are the
//!   caller's mistakes ([`MixerError::is_caller_error`]); a missing plugin is
//!   the deployment's. Unknown ids on `remove`/`set_speaker` are ignored.
//! - **Names.** Drawn with `textoverlay` (Debian package `gstreamer1.0-x`);
//!   without it the tiles come out unnamed and a warning is logged.
//!
//! # GStreamer 1.22 traps handled here
//!
//! - The aggregators' `ignore-inactive-pads` is left off: a timeout before any
//!   pad has data then counts as "all pads EOS" and the output ends at startup.
//! - A live aggregator can emit its first frame twice with PTS 0; a probe on
//!   each mixer output drops non-increasing timestamps (mp4mux fails on them).
//! - Unconstrained, negotiation picks 12-bit 4:4:4 inside the tile branches;
//!   everything video is pinned to I420.
//! - mp4mux gets 1 s of aggregator latency, or under load it may write its
//!   header before the first AAC buffer and leave the audio track empty.

mod audio;
mod branch;
mod encode;
pub mod layout;
mod mixer;
pub(crate) mod video;

#[cfg(test)]
mod tests;

use std::time::Duration;

use gstreamer as gst;

pub use encode::{aac_encoder, AudioCodec, Encoder};
pub use layout::{Layout, Rect};
pub use mixer::Mixer;

/// Where and how the mixer writes its output. The sink is the caller's
/// (filesink, appsink, rtmp2sink...); it becomes a child of the mixer's bin.
#[derive(Debug, Clone)]
pub enum Output {
    /// Fragmented MP4 (H.264 + AAC), one fragment per second; playable while
    /// recording and after a cut-off.
    Mp4 { sink: gst::Element },
    /// FLV (H.264 + AAC) for RTMP; `streamable`.
    Flv { sink: gst::Element },
    /// Audio only; no video element is created at all.
    AudioOnly {
        sink: gst::Element,
        codec: AudioCodec,
    },
}

impl Output {
    fn sink(&self) -> &gst::Element {
        match self {
            Output::Mp4 { sink } | Output::Flv { sink } | Output::AudioOnly { sink, .. } => sink,
        }
    }
}

/// How the recording looks and sounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixerConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub layout: Layout,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_kbps: u32,
    pub encoder: Encoder,
    /// How long the aggregators wait for late inputs (jitter buffer plus
    /// decoding of the caller's chains); also added to the output's latency.
    pub latency: Duration,
}

impl Default for MixerConfig {
    /// 1280x720 at 30 fps, speaker layout, H.264 at 2.5 Mb/s, AAC 128 kb/s.
    fn default() -> Self {
        MixerConfig {
            width: 1280,
            height: 720,
            fps: 30,
            layout: Layout::Speaker,
            video_bitrate_kbps: 2500,
            audio_bitrate_kbps: 128,
            encoder: Encoder::X264,
            latency: Duration::from_millis(300),
        }
    }
}

impl MixerConfig {
    /// 1920x1080 at 30 fps, 4.5 Mb/s.
    pub fn full_hd() -> Self {
        MixerConfig {
            width: 1920,
            height: 1080,
            video_bitrate_kbps: 4500,
            ..Self::default()
        }
    }

    /// Names the first field out of range.
    pub fn validate(&self) -> Result<(), MixerError> {
        let bad = |key: &str, why: &str| Err(MixerError::InvalidConfig(format!("{key}: {why}")));
        if !(64..=3840).contains(&self.width) || !self.width.is_multiple_of(2) {
            return bad("width", "even, 64..=3840");
        }
        if !(64..=2160).contains(&self.height) || !self.height.is_multiple_of(2) {
            return bad("height", "even, 64..=2160");
        }
        if !(1..=60).contains(&self.fps) {
            return bad("fps", "1..=60");
        }
        if !(100..=50_000).contains(&self.video_bitrate_kbps) {
            return bad("video_bitrate_kbps", "100..=50000");
        }
        if !(16..=512).contains(&self.audio_bitrate_kbps) {
            return bad("audio_bitrate_kbps", "16..=512");
        }
        if self.latency > Duration::from_secs(5) {
            return bad("latency", "at most 5 s");
        }
        Ok(())
    }
}

/// What went wrong in the mixer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixerError {
    /// A configuration value out of range (caller's).
    #[error("invalid mixer config: {0}")]
    InvalidConfig(String),
    /// This id already has video (or audio) in the mix (caller's).
    #[error("{kind} for {id} is already in the mix")]
    Duplicate { id: String, kind: &'static str },
    /// The caller's pad could not be linked (caller's).
    #[error("cannot link input: {0}")]
    Link(String),
    /// `finish` was called already (caller's).
    #[error("the mixer has finished")]
    Finished,
    /// A GStreamer element this needs is not installed (deployment's).
    #[error("GStreamer element {0} is missing")]
    MissingElement(String),
    /// The output did not finish in time (retryable only by a new recording).
    #[error("output not finalized within {0:?}")]
    Timeout(Duration),
    /// An element of the mixer posted an error (ours, or the sink's).
    #[error("pipeline error in {source_name}: {message}")]
    Pipeline {
        source_name: String,
        message: String,
    },
    /// A GStreamer operation failed unexpectedly (ours).
    #[error("GStreamer: {0}")]
    Internal(String),
}

impl MixerError {
    /// True when the caller passed something wrong; retrying it is pointless.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            MixerError::InvalidConfig(_)
                | MixerError::Duplicate { .. }
                | MixerError::Link(_)
                | MixerError::Finished
        )
    }
}
