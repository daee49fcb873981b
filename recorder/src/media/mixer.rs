//! [`Mixer`]: who is on the canvas and in the mix; the contract is in the
//! module docs of `media`.

use gstreamer as gst;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::audio::{self, AudioMixer};
use super::encode::{self, Container};
use super::layout::{self, Layout};
use super::video::{Tile, VideoMixer};
use super::{AudioCodec, MixerConfig, MixerError, Output};

/// Composites, mixes and encodes one recording or stream. Dropping it leaves
/// its bin in the pipeline; call [`Mixer::finish`] to end the output cleanly.
#[must_use = "the output is only finalized by Mixer::finish"]
#[derive(Debug)]
pub struct Mixer {
    pipeline: glib::WeakRef<gst::Pipeline>,
    bin: gst::Bin,
    sink: gst::Element,
    config: MixerConfig,
    video: Option<VideoMixer>,
    audio: AudioMixer,
    /// Heads of the encoder chains, where `finish` puts EOS.
    encoders: Vec<gst::Pad>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Tile order: order of arrival.
    order: Vec<String>,
    tiles: HashMap<String, Tile>,
    audio: HashMap<String, audio::Input>,
    speaker: Option<String>,
    layout: Layout,
    finished: bool,
}

static BINS: AtomicU32 = AtomicU32::new(0);

impl Mixer {
    /// Builds the mixer into `pipeline`; see the module docs for the contract.
    pub fn new(
        pipeline: &gst::Pipeline,
        config: MixerConfig,
        output: Output,
    ) -> Result<Mixer, MixerError> {
        gst::init().map_err(|e| MixerError::Internal(format!("gst::init: {e}")))?;
        config.validate()?;
        let sink = output.sink().clone();
        if sink.parent().is_some() {
            return Err(MixerError::InvalidConfig(
                "output sink: already in a bin".into(),
            ));
        }
        let (aac, container, with_video) = match &output {
            Output::Mp4 { .. } => (true, Container::FragmentedMp4, true),
            Output::Flv { .. } => (true, Container::Flv, true),
            Output::AudioOnly { codec, .. } => match codec {
                AudioCodec::OpusOgg => (false, Container::Ogg, false),
                AudioCodec::OpusWebm => (false, Container::WebM, false),
                AudioCodec::Aac => (true, Container::FragmentedMp4, false),
            },
        };
        let name = format!("mixer{}", BINS.fetch_add(1, Ordering::Relaxed));
        let bin = gst::Bin::builder().name(name.as_str()).build();
        let mux = encode::muxer(container)?;
        bin.add_many([&mux, &sink])
            .map_err(|e| MixerError::Internal(format!("adding muxer and sink: {e}")))?;
        mux.link(&sink)
            .map_err(|e| MixerError::Link(format!("muxer to output sink: {e}")))?;
        // Video first, so it is track 1.
        let mut encoders = Vec::new();
        let video = if with_video {
            let video = VideoMixer::build(&bin, &config)?;
            let chain = encode::video_chain(&config)?;
            encoders.push(encode::link_into(&bin, &video.out, &chain, &mux)?);
            Some(video)
        } else {
            None
        };
        let audio = AudioMixer::build(&bin, &config)?;
        let chain = encode::audio_chain(aac, config.audio_bitrate_kbps)?;
        encoders.push(encode::link_into(&bin, &audio.out, &chain, &mux)?);

        pipeline
            .add(&bin)
            .map_err(|e| MixerError::Internal(format!("adding mixer bin: {e}")))?;
        if bin.sync_state_with_parent().is_err() {
            let _ = pipeline.remove(&bin);
            return Err(MixerError::Internal("starting the mixer bin".into()));
        }
        tracing::info!(
            bin = %bin.name(),
            width = config.width,
            height = config.height,
            fps = config.fps,
            video = with_video,
            "mixer ready"
        );
        let state = State {
            layout: config.layout,
            ..State::default()
        };
        Ok(Mixer {
            pipeline: pipeline.downgrade(),
            bin,
            sink,
            config,
            video,
            audio,
            encoders,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked; the state is
        // still consistent enough to go on with.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> Result<MutexGuard<'_, State>, MixerError> {
        let st = self.lock();
        if st.finished {
            return Err(MixerError::Finished);
        }
        Ok(st)
    }

    /// Adds `id`'s raw video as a tile with `name` under it. Replaces the
    /// placeholder if `id` was added with [`Mixer::add_participant`].
    pub fn add_video(&self, id: &str, name: &str, src: &gst::Pad) -> Result<(), MixerError> {
        let Some(video) = &self.video else {
            return Err(MixerError::InvalidConfig(
                "add_video: this mixer records audio only".into(),
            ));
        };
        let mut st = self.open()?;
        if st.tiles.get(id).is_some_and(|t| !t.is_placeholder()) {
            return Err(MixerError::Duplicate {
                id: id.to_owned(),
                kind: "video",
            });
        }
        let tile = video.add_input(&self.bin, name, src)?;
        match st.tiles.insert(id.to_owned(), tile) {
            Some(placeholder) => video.remove(&self.bin, placeholder),
            None => st.order.push(id.to_owned()),
        }
        self.relayout(&mut st);
        drop(st);
        tracing::debug!(id, name, "video added");
        self.recalculate_latency();
        Ok(())
    }

    /// Adds `id`'s raw audio to the mix.
    pub fn add_audio(&self, id: &str, src: &gst::Pad) -> Result<(), MixerError> {
        let mut st = self.open()?;
        if st.audio.contains_key(id) {
            return Err(MixerError::Duplicate {
                id: id.to_owned(),
                kind: "audio",
            });
        }
        let input = self.audio.add_input(&self.bin, src)?;
        st.audio.insert(id.to_owned(), input);
        drop(st);
        tracing::debug!(id, "audio added");
        self.recalculate_latency();
        Ok(())
    }

    /// Gives `id`, who has no video, a placeholder tile with `name` on it.
    /// Audio-only mixers have no tiles; there it does nothing.
    pub fn add_participant(&self, id: &str, name: &str) -> Result<(), MixerError> {
        let Some(video) = &self.video else {
            return Ok(());
        };
        let mut st = self.open()?;
        if st.tiles.contains_key(id) {
            return Err(MixerError::Duplicate {
                id: id.to_owned(),
                kind: "tile",
            });
        }
        let tile = video.add_placeholder(&self.bin, id, name)?;
        st.tiles.insert(id.to_owned(), tile);
        st.order.push(id.to_owned());
        self.relayout(&mut st);
        tracing::debug!(id, name, "placeholder added");
        Ok(())
    }

    /// `id` leaves: its tile goes (the rest reflow) and its audio branch is
    /// released. Unknown ids are ignored.
    pub fn remove(&self, id: &str) {
        let mut st = self.lock();
        if let (Some(tile), Some(video)) = (st.tiles.remove(id), &self.video) {
            st.order.retain(|o| o != id);
            video.remove(&self.bin, tile);
            self.relayout(&mut st);
        }
        if let Some(input) = st.audio.remove(id) {
            self.audio.remove(&self.bin, input);
        }
        tracing::debug!(id, "removed");
    }

    /// Who is shown large in the speaker layout; `None` or an unknown id
    /// shows the first participant.
    pub fn set_speaker(&self, id: Option<&str>) {
        let mut st = self.lock();
        if st.speaker.as_deref() != id {
            st.speaker = id.map(str::to_owned);
            self.relayout(&mut st);
        }
    }

    /// Switches between grid and speaker layout.
    pub fn set_layout(&self, layout: Layout) {
        let mut st = self.lock();
        if st.layout != layout {
            st.layout = layout;
            self.relayout(&mut st);
        }
    }

    /// The tile rectangles now, in arrival order (hidden ones `None`).
    pub fn tiles(&self) -> Vec<(String, Option<layout::Rect>)> {
        let st = self.lock();
        let rects = self.rects(&st);
        st.order.iter().cloned().zip(rects).collect()
    }

    fn rects(&self, st: &State) -> Vec<Option<layout::Rect>> {
        let (w, h) = (self.config.width, self.config.height);
        layout::tiles(st.layout, w, h, &st.order, st.speaker.as_deref())
    }

    fn relayout(&self, st: &mut State) {
        let Some(video) = &self.video else { return };
        let rects = self.rects(st);
        for (i, (id, rect)) in st.order.iter().zip(rects).enumerate() {
            if let Some(tile) = st.tiles.get(id) {
                video.place(tile, rect, i as u32 + 1);
            }
        }
    }

    fn recalculate_latency(&self) {
        if let Some(p) = self.pipeline.upgrade() {
            if p.recalculate_latency().is_err() {
                tracing::debug!("latency not recalculated (pipeline not live yet)");
            }
        }
    }

    /// Ends the output and waits until the sink has taken EOS, so it is
    /// complete (MP4: last fragment and `mfra` written). The pipeline must be
    /// PLAYING. Afterwards no input can be added.
    ///
    /// EOS goes in right behind the compositor and audiomixer, so a stalled
    /// or failed input cannot hold the ending back; the inputs are sealed
    /// first (their pushes are consumed and answered OK from then on).
    pub fn finish(&self, timeout: Duration) -> Result<(), MixerError> {
        let pipeline = self
            .pipeline
            .upgrade()
            .ok_or_else(|| MixerError::Internal("pipeline dropped".into()))?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| MixerError::Internal("pipeline has no bus".into()))?;
        let mut st = self.open()?;
        st.finished = true;

        let (tx, rx) = mpsc::channel();
        self.bin.set_property("message-forward", true);
        bus.enable_sync_message_emission();
        let (sink, bin) = (self.sink.clone(), self.bin.downgrade());
        let handler = bus.connect_sync_message(None, move |_, msg| {
            if let Some(outcome) = finish_outcome(msg, &sink, &bin) {
                let _ = tx.send(outcome);
            }
        });
        st.tiles.values().for_each(Tile::seal);
        st.audio.values().for_each(audio::Input::seal);
        drop(st);
        // A full queue in front of a stuck encoder would block send_event;
        // the caller must not hang with it (setting the pipeline to NULL after
        // a timeout unblocks this thread).
        let encoders = self.encoders.clone();
        std::thread::spawn(move || {
            for pad in encoders {
                pad.send_event(gst::event::Eos::new());
            }
        });

        let outcome = rx
            .recv_timeout(timeout)
            .unwrap_or(Err(MixerError::Timeout(timeout)));
        bus.disconnect(handler);
        bus.disable_sync_message_emission();
        self.bin.set_property("message-forward", false);
        if outcome.is_ok() {
            tracing::info!(bin = %self.bin.name(), "mixer output finalized");
        }
        outcome
    }
}

/// What a bus message means for a running `finish`: our sink's EOS (wrapped
/// by the bin's message forwarding) or an error from inside our bin.
fn finish_outcome(
    msg: &gst::Message,
    sink: &gst::Element,
    bin: &glib::WeakRef<gst::Bin>,
) -> Option<Result<(), MixerError>> {
    match msg.view() {
        gst::MessageView::Element(e) => {
            let s = e.structure()?;
            if s.name() != "GstBinForwarded" {
                return None;
            }
            let inner = s.get::<gst::Message>("message").ok()?;
            let from_sink = inner.src() == Some(sink.upcast_ref::<gst::Object>());
            (inner.type_() == gst::MessageType::Eos && from_sink).then_some(Ok(()))
        }
        gst::MessageView::Error(err) => {
            let src = msg.src()?;
            let bin = bin.upgrade()?;
            let ours = src == bin.upcast_ref::<gst::Object>() || src.has_as_ancestor(&bin);
            ours.then(|| {
                Err(MixerError::Pipeline {
                    source_name: src.path_string().to_string(),
                    message: match err.debug() {
                        Some(debug) => format!("{} ({debug})", err.error()),
                        None => err.error().to_string(),
                    },
                })
            })
        }
        _ => None,
    }
}
