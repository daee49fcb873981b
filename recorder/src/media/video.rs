//! The video half of the mixer: a live black background and one branch per
//! tile on a `compositor`, whose output is raw I420 at the canvas size.
//!
//! ```text
//! videotestsrc pattern=black is-live ! capsfilter(I420 WxH@fps) ! compositor.sink_0 (zorder 0)
//! caller pad ! ghost ! queue leaky ! videoconvert ! I420 ! textoverlay(name, bottom) ! compositor.sink_N
//! videotestsrc solid-color is-live ! capsfilter(I420 640x360@10) ! textoverlay(name, centre) ! compositor.sink_N   (placeholder)
//! compositor ! capsfilter(I420, WxH@fps, par 1/1) ! → encoder
//! ```
//!
//! The compositor scales each input into its tile (`sizing-policy`
//! keep-aspect-ratio: letterboxed on the black background), so a reflow only
//! changes pad properties and never renegotiates caps inside a running
//! branch. The name is drawn on the input picture before scaling
//! (`auto-resize` keeps it proportional to the picture's width).

use gst::prelude::*;
use gstreamer as gst;

use super::branch::{self, make, set_bool, set_caps, set_num, set_str, Branch};
use super::layout::Rect;
use super::{MixerConfig, MixerError};

/// Placeholder pictures: 16:9, large enough for the speaker tile, and a low
/// frame rate since they never change.
const PLACEHOLDER: (i32, i32, i32) = (640, 360, 10);

/// Tile colours for participants without video, picked by id.
const PALETTE: [u32; 6] = [
    0xff3b_5b92,
    0xff2e_7d6b,
    0xff8e_44ad,
    0xffb0_5a2c,
    0xff55_6270,
    0xff1f_6fb2,
];

#[derive(Debug)]
pub(crate) struct VideoMixer {
    compositor: gst::Element,
    /// Output: raw I420 video at the canvas size.
    pub(crate) out: gst::Element,
}

/// One tile: a caller's video or a placeholder.
#[derive(Debug)]
pub(crate) struct Tile {
    branch: Branch,
    placeholder: bool,
}

impl Tile {
    pub(crate) fn is_placeholder(&self) -> bool {
        self.placeholder
    }

    /// Stops taking the caller's data (for `finish`).
    pub(crate) fn seal(&self) {
        self.branch.seal();
    }
}

/// I420 everywhere: what x264enc takes, and cheap to blend. Left open,
/// negotiation picks the "best" format the compositor accepts (12-bit 4:4:4).
fn i420(size: Option<(i32, i32, i32)>) -> gst::Caps {
    let b = gst::Caps::builder("video/x-raw").field("format", "I420");
    match size {
        Some((w, h, fps)) => b
            .field("width", w)
            .field("height", h)
            .field("framerate", gst::Fraction::new(fps, 1))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
        None => b.build(),
    }
}

impl VideoMixer {
    pub(crate) fn build(bin: &gst::Bin, config: &MixerConfig) -> Result<VideoMixer, MixerError> {
        let (w, h, fps) = (config.width as i32, config.height as i32, config.fps as i32);
        let compositor = make("compositor")?;
        let latency = config.latency.as_nanos() as f64;
        set_num(&compositor, "latency", latency);
        set_num(&compositor, "min-upstream-latency", latency);
        let out = make("capsfilter")?;
        set_caps(&out, &i420(Some((w, h, fps))));
        branch::add_chain(bin, &[&compositor, &out])?;
        if let Some(src) = compositor.static_pad("src") {
            branch::monotonic(&src);
        }

        let src = make("videotestsrc")?;
        set_str(&src, "pattern", "black");
        set_bool(&src, "is-live", true);
        let src_caps = make("capsfilter")?;
        set_caps(&src_caps, &i420(Some((w, h, fps))));
        Branch::start(bin, vec![src, src_caps], &compositor, None, |pad| {
            set_num(pad, "zorder", 0.0);
        })?;
        Ok(VideoMixer { compositor, out })
    }

    /// A tile showing the caller's raw video, named underneath.
    pub(crate) fn add_input(
        &self,
        bin: &gst::Bin,
        name: &str,
        src: &gst::Pad,
    ) -> Result<Tile, MixerError> {
        let queue = make("queue")?;
        set_num(&queue, "max-size-buffers", 3.0);
        set_num(&queue, "max-size-time", 0.0);
        set_num(&queue, "max-size-bytes", 0.0);
        set_str(&queue, "leaky", "downstream");
        let format = make("capsfilter")?;
        set_caps(&format, &i420(None));
        let mut chain = vec![queue, make("videoconvert")?, format];
        if let Some(label) = label(name, "bottom", "Sans 16") {
            chain.push(label);
        }
        let branch = Branch::start(bin, chain, &self.compositor, Some(src), hide)?;
        Ok(Tile {
            branch,
            placeholder: false,
        })
    }

    /// A tile for someone without video: a coloured card with the name.
    pub(crate) fn add_placeholder(
        &self,
        bin: &gst::Bin,
        id: &str,
        name: &str,
    ) -> Result<Tile, MixerError> {
        let src = make("videotestsrc")?;
        set_bool(&src, "is-live", true);
        set_str(&src, "pattern", "solid-color");
        set_num(&src, "foreground-color", colour(id) as f64);
        let caps = make("capsfilter")?;
        set_caps(&caps, &i420(Some(PLACEHOLDER)));
        let mut chain = vec![src, caps];
        if let Some(label) = label(name, "center", "Sans Bold 28") {
            chain.push(label);
        }
        let branch = Branch::start(bin, chain, &self.compositor, None, hide)?;
        Ok(Tile {
            branch,
            placeholder: true,
        })
    }

    /// Moves a tile to `rect` (or hides it) and stacks it at `zorder`.
    pub(crate) fn place(&self, tile: &Tile, rect: Option<Rect>, zorder: u32) {
        let pad = &tile.branch.mixer_pad;
        let Some(r) = rect else {
            set_num(pad, "alpha", 0.0);
            return;
        };
        set_num(pad, "xpos", r.x as f64);
        set_num(pad, "ypos", r.y as f64);
        set_num(pad, "width", r.width as f64);
        set_num(pad, "height", r.height as f64);
        set_num(pad, "zorder", zorder as f64);
        set_num(pad, "alpha", 1.0);
    }

    pub(crate) fn remove(&self, bin: &gst::Bin, tile: Tile) {
        tile.branch.release(bin);
    }
}

/// New tiles start hidden until the layout places them, and are scaled
/// into their tile keeping their aspect ratio.
fn hide(pad: &gst::Pad) {
    set_num(pad, "alpha", 0.0);
    set_str(pad, "sizing-policy", "keep-aspect-ratio");
}

fn label(text: &str, valign: &str, font: &str) -> Option<gst::Element> {
    let overlay = match make("textoverlay") {
        Ok(e) => e,
        Err(_) => {
            tracing::warn!("textoverlay missing (gstreamer1.0-x); tiles are drawn without names");
            return None;
        }
    };
    set_str(&overlay, "text", text);
    set_str(&overlay, "valignment", valign);
    set_str(&overlay, "halignment", "center");
    set_str(&overlay, "font-desc", font);
    set_bool(&overlay, "shaded-background", valign != "center");
    set_bool(&overlay, "wait-text", false);
    Some(overlay)
}

pub(crate) fn colour(id: &str) -> u32 {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let h = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    PALETTE[h as usize % PALETTE.len()]
}
