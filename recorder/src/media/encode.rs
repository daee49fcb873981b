//! Encoders and muxers behind the mixers.
//!
//! ```text
//! video: … ! queue ! [videoconvert ! NV12 for hardware] ! x264enc|vah264enc|vaapih264enc|nvh264enc
//!          ! video/x-h264,profile=high ! h264parse ! queue ! mux
//! audio: … ! queue ! audioconvert ! avenc_aac|voaacenc ! aacparse ! queue ! mux    (AAC)
//!        … ! queue ! audioconvert ! opusenc ! opusparse ! queue ! mux              (Opus)
//! mux:   mp4mux fragment-duration=1000 streamable=true   (fMP4; moov first, moof/mdat, mfra at EOS)
//!        flvmux streamable=true                          (RTMP)
//!        oggmux | webmmux                                 (Opus audio only)
//! ```
//!
//! `mp4mux` in fragmented, streamable mode never seeks back, so its bytes can
//! go to a pipe, an appsink or an upload while it records; the muxers
//! `isofmp4mux`/`cmafmux` (gst-plugins-rs) are not in Debian's GStreamer 1.22.

use gst::prelude::*;
use gstreamer as gst;

use super::branch::{self, has, make, set_bool, set_caps, set_num, set_str};
use super::{MixerConfig, MixerError};

/// H.264 encoder; hardware ones are used only if their element exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoder {
    /// Software, `x264enc` (gst-plugins-ugly).
    #[default]
    X264,
    /// VA-API through the new `va` plugin, `vah264enc`.
    VaH264,
    /// VA-API through gstreamer-vaapi, `vaapih264enc`.
    Vaapi,
    /// NVIDIA NVENC, `nvh264enc`.
    Nvenc,
}

impl Encoder {
    /// The element factory behind this encoder.
    pub fn factory(self) -> &'static str {
        match self {
            Encoder::X264 => "x264enc",
            Encoder::VaH264 => "vah264enc",
            Encoder::Vaapi => "vaapih264enc",
            Encoder::Nvenc => "nvh264enc",
        }
    }

    pub fn is_available(self) -> bool {
        has(self.factory())
    }

    /// The first hardware encoder whose element exists, else `X264`.
    /// (Presence of the element does not prove a device works; a failing
    /// device shows up as a pipeline error when the encoder starts.)
    pub fn detect() -> Encoder {
        [Encoder::VaH264, Encoder::Vaapi, Encoder::Nvenc]
            .into_iter()
            .find(|e| e.is_available())
            .unwrap_or(Encoder::X264)
    }
}

/// The codec and container of an audio-only recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioCodec {
    /// Opus in Ogg (`.opus`).
    #[default]
    OpusOgg,
    /// Opus in WebM (`.webm`).
    OpusWebm,
    /// AAC in fragmented MP4 (`.m4a`).
    Aac,
}

/// The AAC encoder this machine has: `avenc_aac` (FFmpeg), else `voaacenc`.
pub fn aac_encoder() -> Option<&'static str> {
    ["avenc_aac", "voaacenc"].into_iter().find(|f| has(f))
}

fn queue(max_time_ns: u64) -> Result<gst::Element, MixerError> {
    let q = make("queue")?;
    set_num(&q, "max-size-buffers", 0.0);
    set_num(&q, "max-size-bytes", 0.0);
    set_num(&q, "max-size-time", max_time_ns as f64);
    Ok(q)
}

/// Before the muxer: room for the encoders' different latencies.
const MUX_QUEUE_NS: u64 = 3_000_000_000;

/// Raw I420 → parsed H.264 (8-bit 4:2:0, high profile), ready for a muxer.
pub(crate) fn video_chain(config: &MixerConfig) -> Result<Vec<gst::Element>, MixerError> {
    let mut encoder = config.encoder;
    if !encoder.is_available() {
        tracing::warn!(wanted = encoder.factory(), "encoder missing; using x264enc");
        encoder = Encoder::X264;
    }
    let enc = make(encoder.factory())?;
    let gop = (config.fps * 2) as f64;
    let kbps = config.video_bitrate_kbps as f64;
    set_num(&enc, "bitrate", kbps);
    match encoder {
        Encoder::X264 => {
            set_num(&enc, "key-int-max", gop);
            set_str(&enc, "speed-preset", "veryfast");
            set_str(&enc, "tune", "zerolatency");
        }
        Encoder::VaH264 => {
            set_num(&enc, "key-int-max", gop);
            set_num(&enc, "b-frames", 0.0);
        }
        Encoder::Vaapi => {
            set_num(&enc, "keyframe-period", gop);
            set_num(&enc, "max-bframes", 0.0);
        }
        Encoder::Nvenc => {
            set_num(&enc, "gop-size", gop);
            set_num(&enc, "bframes", 0.0);
            set_bool(&enc, "zerolatency", true);
        }
    }
    let mut chain = vec![queue(1_000_000_000)?];
    if encoder != Encoder::X264 {
        // Hardware encoders take NV12; x264enc takes the I420 the compositor makes.
        let convert = make("videoconvert")?;
        let nv12 = make("capsfilter")?;
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "NV12")
            .build();
        set_caps(&nv12, &caps);
        chain.extend([convert, nv12]);
    }
    let profile = make("capsfilter")?;
    let caps = gst::Caps::builder("video/x-h264")
        .field("profile", "high")
        .build();
    set_caps(&profile, &caps);
    let parse = make("h264parse")?;
    set_num(&parse, "config-interval", -1.0);
    chain.extend([enc, profile, parse, queue(MUX_QUEUE_NS)?]);
    Ok(chain)
}

/// Raw audio → parsed AAC or Opus at `kbps`, ready for a muxer.
pub(crate) fn audio_chain(aac: bool, kbps: u32) -> Result<Vec<gst::Element>, MixerError> {
    let (enc, parse) = if aac {
        let factory =
            aac_encoder().ok_or_else(|| MixerError::MissingElement("avenc_aac|voaacenc".into()))?;
        (make(factory)?, make("aacparse")?)
    } else {
        (make("opusenc")?, make("opusparse")?)
    };
    set_num(&enc, "bitrate", kbps as f64 * 1000.0);
    Ok(vec![
        queue(1_000_000_000)?,
        make("audioconvert")?,
        make("audioresample")?,
        enc,
        parse,
        queue(MUX_QUEUE_NS)?,
    ])
}

/// Extra wait of the (live, aggregator-based) mp4mux and flvmux for a late
/// stream. Without it a busy machine can make mp4mux give up on the first
/// AAC buffer and write its header with an empty audio track.
const MUX_LATENCY_NS: f64 = 1_000_000_000.0;

/// Which muxer the output needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Container {
    FragmentedMp4,
    Flv,
    Ogg,
    WebM,
}

pub(crate) fn muxer(container: Container) -> Result<gst::Element, MixerError> {
    let mux = match container {
        Container::FragmentedMp4 => {
            let m = make("mp4mux")?;
            // One fragment a second: a cut-off file loses at most that much.
            set_num(&m, "fragment-duration", 1000.0);
            set_bool(&m, "streamable", true);
            set_num(&m, "latency", MUX_LATENCY_NS);
            m
        }
        Container::Flv => {
            let m = make("flvmux")?;
            set_bool(&m, "streamable", true);
            set_num(&m, "latency", MUX_LATENCY_NS);
            m
        }
        Container::Ogg => make("oggmux")?,
        Container::WebM => {
            let m = make("webmmux")?;
            set_bool(&m, "streamable", true);
            m
        }
    };
    Ok(mux)
}

/// Adds `chain` to the bin and links `from` → chain → `mux`. Returns the
/// chain's sink pad: `finish` sends EOS there.
pub(crate) fn link_into(
    bin: &gst::Bin,
    from: &gst::Element,
    chain: &[gst::Element],
    mux: &gst::Element,
) -> Result<gst::Pad, MixerError> {
    let refs: Vec<&gst::Element> = chain.iter().collect();
    branch::add_chain(bin, &refs)?;
    let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
        return Err(MixerError::Internal("empty encoder chain".into()));
    };
    from.link(first)
        .map_err(|e| MixerError::Internal(format!("linking encoder: {e}")))?;
    last.link(mux)
        .map_err(|e| MixerError::Internal(format!("linking {} to muxer: {e}", last.name())))?;
    first
        .static_pad("sink")
        .ok_or_else(|| MixerError::Internal("encoder chain has no sink pad".into()))
}
