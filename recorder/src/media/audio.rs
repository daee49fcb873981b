//! The audio half of the mixer: live silence plus one branch per input on an
//! `audiomixer`, whose output is 48 kHz stereo F32.
//!
//! ```text
//! audiotestsrc wave=silence is-live ! capsfilter(F32LE 48k 2ch) ! audiomixer.sink_0
//! caller pad ! ghost ! queue leaky ! audioconvert ! audioresample ! capsfilter(F32LE 48k 2ch) ! audiomixer.sink_N
//! audiomixer ! capsfilter(F32LE 48k 2ch) ! → encoder
//! ```

use super::branch::{self, make, set_bool, set_caps, set_num, set_str, Branch};
use super::{MixerConfig, MixerError};
use gst::prelude::*;
use gstreamer as gst;

/// The mixing format; every input is converted to it.
pub(crate) const RATE: i32 = 48_000;
pub(crate) const CHANNELS: i32 = 2;

/// 10 ms of silence per buffer, matching audiomixer's output period.
const SILENCE_SAMPLES: i32 = RATE / 100;

pub(crate) fn mix_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", "interleaved")
        .field("rate", RATE)
        .field("channels", CHANNELS)
        .build()
}

#[derive(Debug)]
pub(crate) struct AudioMixer {
    mixer: gst::Element,
    /// Output: raw F32LE audio, 48 kHz stereo.
    pub(crate) out: gst::Element,
}

/// One caller's audio into the mix.
#[derive(Debug)]
pub(crate) struct Input {
    branch: Branch,
}

impl Input {
    /// Stops taking the caller's data (for `finish`).
    pub(crate) fn seal(&self) {
        self.branch.seal();
    }
}

impl AudioMixer {
    pub(crate) fn build(bin: &gst::Bin, config: &MixerConfig) -> Result<AudioMixer, MixerError> {
        let mixer = make("audiomixer")?;
        let latency = config.latency.as_nanos() as f64;
        set_num(&mixer, "latency", latency);
        set_num(&mixer, "min-upstream-latency", latency);
        let out = make("capsfilter")?;
        set_caps(&out, &mix_caps());
        branch::add_chain(bin, &[&mixer, &out])?;
        if let Some(src) = mixer.static_pad("src") {
            branch::monotonic(&src);
        }

        let src = make("audiotestsrc")?;
        set_str(&src, "wave", "silence");
        set_bool(&src, "is-live", true);
        set_num(&src, "samplesperbuffer", SILENCE_SAMPLES as f64);
        let caps = make("capsfilter")?;
        set_caps(&caps, &mix_caps());
        Branch::start(bin, vec![src, caps], &mixer, None, |_| {})?;
        Ok(AudioMixer { mixer, out })
    }

    pub(crate) fn add_input(&self, bin: &gst::Bin, src: &gst::Pad) -> Result<Input, MixerError> {
        let queue = make("queue")?;
        set_num(&queue, "max-size-buffers", 0.0);
        set_num(&queue, "max-size-bytes", 0.0);
        set_num(&queue, "max-size-time", 500_000_000.0);
        set_str(&queue, "leaky", "downstream");
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        let caps = make("capsfilter")?;
        set_caps(&caps, &mix_caps());
        let chain = vec![queue, convert, resample, caps];
        let branch = Branch::start(bin, chain, &self.mixer, Some(src), |_| {})?;
        Ok(Input { branch })
    }

    pub(crate) fn remove(&self, bin: &gst::Bin, input: Input) {
        input.branch.release(bin);
    }
}
