//! The job's GStreamer side: one pipeline with the [`Mixer`] and one
//! decoding branch per receive line (an `appsrc` fed with the frames the
//! WebRTC leg assembles, a decoder, raw pads into the mixer), plus the
//! output: fragmented MP4 into an appsink whose bytes go to the upload, or
//! FLV into an RTMP sink.
//!
//! Contract: frames are pushed as they arrive and timestamped by the
//! pipeline clock at push (`do-timestamp`), so audio and video share one
//! timeline; a video line's frames are dropped until its first keyframe
//! (and `wants_keyframe` says so, for the job to ask the SFU). A line whose
//! codec cannot be decoded is logged once and ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use crate::media::{Mixer, MixerConfig, Output};
use crate::upload::UploadSender;
use participant::{Codec, Frame};

/// One receive line's decoding branch.
struct Line {
    src: gst_app::AppSrc,
    /// The decoded pad handed to the mixer.
    pad: gst::Pad,
    video: bool,
    /// Video: a keyframe has been seen.
    started: bool,
}

pub struct MediaPipeline {
    pipeline: gst::Pipeline,
    pub mixer: Mixer,
    lines: HashMap<String, Line>,
    refused: Vec<String>,
    audio_only: bool,
}

/// Where the pipeline writes.
pub enum Sink {
    Upload(Arc<UploadSender>),
    Rtmp(String),
}

impl MediaPipeline {
    pub fn new(name: &str, config: MixerConfig, audio_only: bool, sink: Sink) -> Result<Self> {
        gst::init()?;
        let pipeline = gst::Pipeline::with_name(name);
        let element = match &sink {
            Sink::Upload(tx) => upload_sink(tx.clone())?,
            Sink::Rtmp(url) => rtmp_sink(url)?,
        };
        let output = match (&sink, audio_only) {
            (_, true) => Output::AudioOnly {
                sink: element,
                codec: crate::media::AudioCodec::Aac,
            },
            (Sink::Upload(_), false) => Output::Mp4 { sink: element },
            (Sink::Rtmp(_), false) => Output::Flv { sink: element },
        };
        let mixer = Mixer::new(&pipeline, config, output).map_err(|e| anyhow!("mixer: {e}"))?;
        pipeline
            .set_state(gst::State::Playing)
            .context("the recording pipeline did not start")?;
        Ok(MediaPipeline {
            pipeline,
            mixer,
            lines: HashMap::new(),
            refused: Vec::new(),
            audio_only,
        })
    }

    /// Handles what the pipeline posted since the last call (latency
    /// changes are applied here, on the job's thread) and returns the
    /// first error, if any. The job calls it a few times a second.
    pub fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let mut first = None;
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) if first.is_none() => {
                    let src = e.src().map(|s| s.path_string()).unwrap_or_default();
                    first = Some(format!("{src}: {}", e.error()));
                }
                gst::MessageView::Latency(_) => {
                    let _ = self.pipeline.recalculate_latency();
                }
                _ => {}
            }
        }
        first
    }

    /// Feeds one frame. Returns `Some(pad)` when a new video line's decoded
    /// pad appears (the caller puts it on the right tile), and whether the
    /// line still waits for a keyframe.
    pub fn push(&mut self, frame: &Frame) -> (Option<gst::Pad>, bool) {
        if self.refused.contains(&frame.mid) || (frame.video && self.audio_only) {
            return (None, false);
        }
        let mut new_pad = None;
        if !self.lines.contains_key(&frame.mid) {
            match self.add_line(frame) {
                Ok(line) => {
                    tracing::info!(mid = %frame.mid, codec = ?frame.codec, "receive line decoding");
                    if line.video {
                        new_pad = Some(line.pad.clone());
                    } else if let Err(e) = self
                        .mixer
                        .add_audio(&format!("audio:{}", frame.mid), &line.pad)
                    {
                        tracing::warn!(mid = %frame.mid, "audio line not mixed: {e}");
                    }
                    self.lines.insert(frame.mid.clone(), line);
                }
                Err(e) => {
                    tracing::warn!(mid = %frame.mid, codec = ?frame.codec, "line not decoded: {e:#}");
                    self.refused.push(frame.mid.clone());
                    return (None, false);
                }
            }
        }
        let Some(line) = self.lines.get_mut(&frame.mid) else {
            return (new_pad, false);
        };
        if line.video && !line.started {
            if !is_keyframe(frame) {
                return (new_pad, true);
            }
            line.started = true;
        }
        let buffer = gst::Buffer::from_slice(frame.data.clone());
        let _ = line.src.push_buffer(buffer);
        (new_pad, false)
    }

    /// The decoded pad of video line `mid`, once it exists.
    pub fn video_pad(&self, mid: &str) -> Option<gst::Pad> {
        self.lines
            .get(mid)
            .filter(|l| l.video)
            .map(|l| l.pad.clone())
    }

    /// A gap on a video line: wait for the next keyframe.
    pub fn restart(&mut self, mid: &str) {
        if let Some(l) = self.lines.get_mut(mid) {
            if l.video {
                l.started = false;
            }
        }
    }

    fn add_line(&self, frame: &Frame) -> Result<Line> {
        let (caps, decode) = match frame.codec {
            Codec::Vp8 => ("video/x-vp8", "vp8dec ! videoconvert"),
            Codec::H264 => (
                "video/x-h264,stream-format=byte-stream,alignment=au",
                "h264parse ! avdec_h264 ! videoconvert",
            ),
            Codec::Opus => (
                "audio/x-opus,channel-mapping-family=0,channels=2,rate=48000",
                "opusdec plc=true ! audioconvert ! audioresample",
            ),
            Codec::Other => anyhow::bail!("no decoder for this codec"),
        };
        let desc = format!(
            "appsrc name=src is-live=true do-timestamp=true format=time max-bytes=4000000 \
             caps=\"{caps}\" ! queue max-size-time=1000000000 leaky=downstream ! {decode}"
        );
        let bin = gst::parse::bin_from_description(&desc, true)
            .with_context(|| format!("decoder for {}", frame.mid))?;
        bin.set_property("name", format!("line-{}", frame.mid));
        self.pipeline.add(&bin)?;
        bin.sync_state_with_parent()?;
        let src = bin
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .context("appsrc")?;
        let pad = bin.static_pad("src").context("decoded pad")?;
        Ok(Line {
            src,
            pad,
            video: frame.video,
            started: false,
        })
    }

    /// Ends the inputs, finalizes the output (waits up to `timeout`) and
    /// stops the pipeline.
    pub fn finish(&self, timeout: Duration) -> Result<()> {
        for line in self.lines.values() {
            let _ = line.src.end_of_stream();
        }
        let r = self
            .mixer
            .finish(timeout)
            .map_err(|e| anyhow!("finalizing: {e}"));
        let _ = self.pipeline.set_state(gst::State::Null);
        r
    }
}

impl Drop for MediaPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// VP8: bit 0 of the first byte is 0 on keyframes. H.264: an IDR NAL.
fn is_keyframe(frame: &Frame) -> bool {
    match frame.codec {
        Codec::Vp8 => frame.data.first().is_some_and(|b| b & 1 == 0),
        Codec::H264 => frame
            .data
            .windows(4)
            .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5),
        _ => true,
    }
}

/// An appsink whose buffers go to the upload (blocking: this is a
/// streaming thread, and the upload's queue bounds memory).
fn upload_sink(tx: Arc<UploadSender>) -> Result<gst::Element> {
    let sink = gst_app::AppSink::builder()
        .name("upload")
        .sync(false)
        .build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = sample.buffer() {
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    if tx.send(bytes::Bytes::copy_from_slice(&map)).is_err() {
                        return Err(gst::FlowError::Error);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(sink.upcast())
}

/// rtmp2sink where present, else rtmpsink.
fn rtmp_sink(url: &str) -> Result<gst::Element> {
    for factory in ["rtmp2sink", "rtmpsink"] {
        if let Ok(e) = gst::ElementFactory::make(factory)
            .property("location", url)
            .build()
        {
            return Ok(e);
        }
    }
    anyhow::bail!("no RTMP sink element (rtmp2sink or rtmpsink) is installed")
}
