//! Test helpers: live test inputs, decoding a recording back, measuring it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

/// Decoded frames are kept at 1/STEP of their size in each direction.
pub const STEP: usize = 4;

/// A live test source in the pipeline, to be handed to the mixer.
pub struct Source {
    pub elements: Vec<gst::Element>,
    pub pad: gst::Pad,
}

impl Source {
    fn new(pipeline: &gst::Pipeline, src: gst::Element, caps: gst::Caps) -> Source {
        let filter = gst::ElementFactory::make("capsfilter")
            .property("caps", caps)
            .build()
            .unwrap();
        pipeline.add_many([&src, &filter]).unwrap();
        src.link(&filter).unwrap();
        let pad = filter.static_pad("src").unwrap();
        Source {
            elements: vec![src, filter],
            pad,
        }
    }

    /// A solid colour, `is-live`, at some size the mixer has to scale.
    pub fn video(pipeline: &gst::Pipeline, argb: u32, width: i32, height: i32) -> Source {
        let src = gst::ElementFactory::make("videotestsrc")
            .property("is-live", true)
            .property_from_str("pattern", "solid-color")
            .property("foreground-color", argb)
            .build()
            .unwrap();
        let caps = gst::Caps::builder("video/x-raw")
            .field("width", width)
            .field("height", height)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        Source::new(pipeline, src, caps)
    }

    /// A live mono sine at 44.1 kHz (the mixer resamples and upmixes).
    pub fn tone(pipeline: &gst::Pipeline, freq: f64) -> Source {
        let src = gst::ElementFactory::make("audiotestsrc")
            .property("is-live", true)
            .property("freq", freq)
            .property("volume", 0.3)
            .build()
            .unwrap();
        let caps = gst::Caps::builder("audio/x-raw")
            .field("rate", 44_100)
            .field("channels", 1)
            .build();
        Source::new(pipeline, src, caps)
    }

    pub fn start(&self) {
        for e in self.elements.iter().rev() {
            e.sync_state_with_parent().unwrap();
        }
    }

    pub fn stop(self, pipeline: &gst::Pipeline) {
        for e in &self.elements {
            e.set_state(gst::State::Null).unwrap();
        }
        pipeline.remove_many(&self.elements).unwrap();
    }
}

pub fn filesink(path: &std::path::Path) -> gst::Element {
    gst::ElementFactory::make("filesink")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap()
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Sleeps until `at` after `start`.
pub fn sleep_until(start: Instant, at: Duration) {
    if let Some(d) = at.checked_sub(start.elapsed()) {
        std::thread::sleep(d);
    }
}

/// The first error on the pipeline's bus, if any.
pub fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(e) = msg.view() {
            let src = msg.src().map(|s| s.path_string().to_string());
            return Some(format!("{src:?}: {} ({:?})", e.error(), e.debug()));
        }
    }
    None
}

/// A decoded frame, subsampled by STEP, RGB.
pub struct Frame {
    pub pts: f64,
    pub width: usize,
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The colour at (x, y) in full-size coordinates.
    pub fn at(&self, x: i32, y: i32) -> (u8, u8, u8) {
        let (x, y) = (x as usize / STEP, y as usize / STEP);
        let i = (y * self.width + x) * 3;
        (self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }
}

#[derive(Default)]
pub struct Decoded {
    pub size: (i32, i32),
    pub frames: Vec<Frame>,
    /// Mono 48 kHz audio as (pts of the buffer, samples).
    pub audio: Vec<(f64, Vec<f32>)>,
}

pub const RATE: f64 = 48_000.0;

impl Decoded {
    /// Audio samples whose time lies in [t0, t1).
    pub fn samples(&self, t0: f64, t1: f64) -> Vec<f32> {
        let mut out = Vec::new();
        for (pts, buf) in &self.audio {
            for (i, s) in buf.iter().enumerate() {
                let t = pts + i as f64 / RATE;
                if t >= t0 && t < t1 {
                    out.push(*s);
                }
            }
        }
        out
    }

    pub fn frames_between(&self, t0: f64, t1: f64) -> impl Iterator<Item = &Frame> {
        self.frames
            .iter()
            .filter(move |f| f.pts >= t0 && f.pts < t1)
    }
}

/// Runs `description` (a launch line with appsinks named `v` and/or `a`) to
/// its end and collects what they receive. The pipeline comes back at EOS,
/// still PLAYING, so its pads' caps can be read; set it to NULL after.
pub fn decode(description: &str) -> (Decoded, gst::Pipeline) {
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let out = Arc::new(Mutex::new(Decoded::default()));
    if let Some(v) = pipeline.by_name("v") {
        let out = out.clone();
        let sink = v.downcast::<gst_app::AppSink>().unwrap();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let caps = sample.caps().unwrap().structure(0).unwrap().to_owned();
                    let w: i32 = caps.get("width").unwrap();
                    let h: i32 = caps.get("height").unwrap();
                    let buf = sample.buffer().unwrap();
                    let map = buf.map_readable().unwrap();
                    // RGB rows are padded to 4 bytes.
                    let stride = (w as usize * 3).div_ceil(4) * 4;
                    let (sw, sh) = (w as usize / STEP, h as usize / STEP);
                    let mut rgb = Vec::with_capacity(sw * sh * 3);
                    for y in 0..sh {
                        for x in 0..sw {
                            let i = y * STEP * stride + x * STEP * 3;
                            rgb.extend_from_slice(&map[i..i + 3]);
                        }
                    }
                    let pts = buf.pts().unwrap().nseconds() as f64 / 1e9;
                    let mut o = out.lock().unwrap();
                    o.size = (w, h);
                    o.frames.push(Frame {
                        pts,
                        width: sw,
                        rgb,
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if let Some(a) = pipeline.by_name("a") {
        let out = out.clone();
        let sink = a.downcast::<gst_app::AppSink>().unwrap();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buf = sample.buffer().unwrap();
                    let map = buf.map_readable().unwrap();
                    let samples = map
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    let pts = buf.pts().unwrap().nseconds() as f64 / 1e9;
                    out.lock().unwrap().audio.push((pts, samples));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("decoding timed out");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("decoding failed: {} ({:?})", e.error(), e.debug());
    }
    let decoded = std::mem::take(&mut *out.lock().unwrap());
    (decoded, pipeline)
}

/// Power of `freq` in `samples` (Goertzel), normalised so a full-scale sine
/// gives about 0.25.
pub fn goertzel(samples: &[f32], freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / RATE;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power / (n * n)
}

pub fn is_red((r, g, b): (u8, u8, u8)) -> bool {
    r > 160 && g < 90 && b < 90
}

pub fn is_blue((r, g, b): (u8, u8, u8)) -> bool {
    b > 160 && r < 90 && g < 90
}

/// Duration of a file by ffprobe, or None when ffprobe is not installed.
pub fn ffprobe(path: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("format=duration,format_name:stream=codec_name,profile,pix_fmt,width,height,sample_rate,channels")
        .args(["-of", "compact"])
        .arg(path)
        .output()
        .ok()?;
    assert!(out.status.success(), "ffprobe failed: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Factory name and class ("Filter/Converter/Video"...) of every element in
/// `bin`, recursively.
pub fn factories(bin: &gst::Bin) -> Vec<(String, String)> {
    bin.iterate_recurse()
        .into_iter()
        .filter_map(|e| {
            let f = e.ok()?.factory()?;
            let klass = f.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or("");
            Some((f.name().to_string(), klass.to_string()))
        })
        .collect()
}

/// Keeps a copy of a recording when MIXER_TEST_KEEP names a folder.
pub fn keep(path: &std::path::Path) {
    if let Some(dir) = std::env::var_os("MIXER_TEST_KEEP") {
        let to = std::path::Path::new(&dir).join(path.file_name().unwrap());
        std::fs::copy(path, &to).unwrap();
        eprintln!("kept {}", to.display());
    }
}

/// How many (subsampled) pixels in a rectangle satisfy `pred`.
pub fn count(
    frame: &Frame,
    (x0, y0, x1, y1): (i32, i32, i32, i32),
    pred: impl Fn((u8, u8, u8)) -> bool,
) -> usize {
    let mut n = 0;
    for y in (y0.max(0)..y1).step_by(STEP) {
        for x in (x0.max(0)..x1).step_by(STEP) {
            n += usize::from(pred(frame.at(x, y)));
        }
    }
    n
}
