//! The media side of the test participant: one GStreamer pipeline around
//! `webrtcbin` (bundle-policy `max-bundle`) that sends a test pattern (VP8)
//! and a sine tone (Opus), answers (or makes) an SDP offer, and decodes
//! every incoming stream into per-stream statistics.
//!
//! Contract: every call that negotiates blocks the calling thread (call it
//! from a plain thread or `spawn_blocking`, never from a GStreamer
//! streaming thread) and returns SDP text that carries the local ICE
//! candidates (it waits for gathering to complete: no trickle). Errors from
//! the pipeline's bus are kept and returned by [`WebrtcPeer::errors`]. The
//! pipeline stops when the peer is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;

use super::analysis;

/// Audio is analysed at this rate, mono.
const AUDIO_RATE: u32 = 48_000;
/// How much received audio is kept for analysis (0.5 s).
const AUDIO_WINDOW: usize = AUDIO_RATE as usize / 2;
/// How long negotiation steps (promises, ICE gathering) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Payload types used when we make the offer.
const OFFER_VP8_PT: u8 = 96;
const OFFER_OPUS_PT: u8 = 111;

/// Initialises GStreamer once per process; later calls return the first
/// outcome.
pub fn init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow!("gst::init: {e}"))
}

/// What a participant sends.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// `videotestsrc pattern` (0 smpte, 1 snow, 18 ball, ...).
    pub video_pattern: u32,
    pub width: u32,
    pub height: u32,
    /// `audiotestsrc wave=sine freq`.
    pub tone_hz: f64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            video_pattern: 0,
            width: 320,
            height: 240,
            tone_hz: 440.0,
        }
    }
}

/// Kind of a received stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Audio,
    Video,
    /// Any other encoding; discarded.
    Other,
}

/// What was decoded from one incoming stream so far.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// The transceiver's mid, when webrtcbin knows it.
    pub mid: Option<String>,
    pub kind: StreamKind,
    /// Decoded video frames, or decoded audio buffers.
    pub frames: u64,
    /// Size of the last decoded video frame (0 for audio).
    pub width: u32,
    pub height: u32,
    /// Dominant frequency over the last 0.5 s of audio (0 for video).
    pub dominant_hz: f32,
    /// RMS over the last 0.5 s of audio (0 for video).
    pub rms: f32,
}

#[derive(Debug)]
struct StreamState {
    mid: Option<String>,
    kind: StreamKind,
    frames: u64,
    width: u32,
    height: u32,
    samples: VecDeque<f32>,
}

impl StreamState {
    fn stats(&self) -> StreamStats {
        let samples: Vec<f32> = self.samples.iter().copied().collect();
        StreamStats {
            mid: self.mid.clone(),
            kind: self.kind,
            frames: self.frames,
            width: self.width,
            height: self.height,
            dominant_hz: analysis::dominant_hz(&samples, AUDIO_RATE),
            rms: analysis::rms(&samples),
        }
    }
}

type Streams = Arc<Mutex<Vec<Arc<Mutex<StreamState>>>>>;

/// One webrtcbin pipeline. See the module docs.
pub struct WebrtcPeer {
    media: MediaConfig,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    streams: Streams,
    errors: Arc<Mutex<Vec<String>>>,
    /// `(mline, "candidate:...")` as webrtcbin gathered them.
    candidates: Arc<Mutex<Vec<(u32, String)>>>,
    /// Whether the send branches are in place.
    sending: Mutex<bool>,
}

impl std::fmt::Debug for WebrtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebrtcPeer")
            .field("name", &self.pipeline.name())
            .field("media", &self.media)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a callback panicked; the data is still
    // plain statistics.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WebrtcPeer {
    /// Builds the pipeline (webrtcbin only; the senders are added when the
    /// payload types are known).
    pub fn new(name: &str, media: MediaConfig) -> Result<Self> {
        init()?;
        let pipeline = gst::Pipeline::with_name(name);
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .name("webrtc")
            .property_from_str("bundle-policy", "max-bundle")
            .build()
            .context("webrtcbin")?;
        // Everything in the tests runs on loopback, which libnice leaves
        // out of its candidates by default: gather on 127.0.0.1 only.
        let ice = webrtc.property::<gst::Object>("ice-agent");
        ice.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
        // libnice keeps a connection alive with STUN indications, which an
        // ICE-lite server cannot answer and does not count as consent
        // (RFC 7675): browsers send binding requests. Ask libnice for
        // requests too, or the SFU drops the peer after its consent timeout.
        if ice.find_property("agent").is_some() {
            let agent = ice.property::<gst::glib::Object>("agent");
            if agent.find_property("keepalive-conncheck").is_some() {
                agent.set_property("keepalive-conncheck", true);
            }
        }
        pipeline.add(&webrtc)?;

        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let bus = pipeline.bus().context("pipeline has a bus")?;
        let errs = errors.clone();
        let pname = name.to_owned();
        bus.set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let text = format!(
                        "{}: {} ({:?})",
                        e.src().map(|s| s.path_string()).unwrap_or_default(),
                        e.error(),
                        e.debug()
                    );
                    tracing::warn!(peer = %pname, "gstreamer error: {text}");
                    lock(&errs).push(text);
                }
                gst::MessageView::Warning(w) => {
                    tracing::debug!(peer = %pname, "gstreamer warning: {} ({:?})", w.error(), w.debug());
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });

        let candidates: Arc<Mutex<Vec<(u32, String)>>> = Arc::default();
        let cands = candidates.clone();
        webrtc.connect("on-ice-candidate", false, move |args| {
            let mline = args.get(1).and_then(|v| v.get::<u32>().ok());
            let cand = args.get(2).and_then(|v| v.get::<String>().ok());
            if let (Some(mline), Some(cand)) = (mline, cand) {
                lock(&cands).push((mline, cand));
            }
            None
        });

        let streams: Streams = Arc::default();
        let weak = pipeline.downgrade();
        let strm = streams.clone();
        webrtc.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            if let Some(pipeline) = weak.upgrade() {
                if let Err(e) = receive(&pipeline, pad, &strm) {
                    tracing::warn!("cannot decode incoming stream {}: {e:#}", pad.name());
                }
            }
        });

        Ok(WebrtcPeer {
            media,
            pipeline,
            webrtc,
            streams,
            errors,
            candidates,
            sending: Mutex::new(false),
        })
    }

    /// What we send.
    pub fn media(&self) -> &MediaConfig {
        &self.media
    }

    /// The webrtcbin element, for tests that need more.
    pub fn webrtcbin(&self) -> &gst::Element {
        &self.webrtc
    }

    /// Answers a remote SDP offer: sends VP8 and Opus with the offer's
    /// payload types (the first ones it names), receives whatever the offer
    /// sends. Returns the answer SDP with our candidates.
    pub fn answer(&self, offer: &str) -> Result<String> {
        let parsed = proto::sdp::Sdp::parse(offer).context("remote offer")?;
        let vp8 = find_pt(&parsed, "video", "VP8");
        let opus = find_pt(&parsed, "audio", "OPUS");
        self.start_sending(vp8, opus)?;
        self.wait_for_sender_caps(std::time::Duration::from_secs(3));
        self.set_description(
            "set-remote-description",
            gst_webrtc::WebRTCSDPType::Offer,
            offer,
        )?;
        self.use_ecdsa_certificate()?;
        let answer = self.create("create-answer", "answer")?;
        let answer = self.set_local_and_gather(answer)?;
        // webrtcbin writes the fingerprint of the certificate it started
        // with; the DTLS handshake uses ours.
        let (_, fingerprint) = super::cert::ecdsa()?;
        Ok(answer
            .split("\r\n")
            .map(|l| {
                if l.starts_with("a=fingerprint:") {
                    format!("a=fingerprint:sha-256 {fingerprint}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n"))
    }

    /// Makes an offer (VP8 on PT 96, Opus on PT 111, sendrecv). Returns the
    /// offer SDP with our candidates.
    pub fn offer(&self) -> Result<String> {
        self.start_sending(Some(OFFER_VP8_PT), Some(OFFER_OPUS_PT))?;
        let offer = self.create("create-offer", "offer")?;
        self.set_local_and_gather(offer)
    }

    /// Applies the remote answer to our [`offer`](Self::offer).
    pub fn accept_answer(&self, answer: &str) -> Result<()> {
        self.set_description(
            "set-remote-description",
            gst_webrtc::WebRTCSDPType::Answer,
            answer,
        )
    }

    /// Adds a remote candidate (`candidate:...`, with or without `a=`) for
    /// the m-line at `mline`.
    pub fn add_ice_candidate(&self, mline: u32, candidate: &str) {
        let cand = candidate.trim_start_matches("a=");
        self.webrtc
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &cand]);
    }

    /// Statistics of every incoming stream, in the order they appeared.
    pub fn received(&self) -> Vec<StreamStats> {
        lock(&self.streams)
            .iter()
            .map(|s| lock(s).stats())
            .collect()
    }

    /// Polls [`received`](Self::received) until `done` holds; on timeout the
    /// error shows the last statistics and any pipeline errors.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[StreamStats]) -> bool,
    ) -> Result<Vec<StreamStats>> {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.received();
            if done(&stats) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: timed out; received {stats:?}; errors {:?}",
                    self.pipeline.name(),
                    self.errors()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Errors posted on the pipeline's bus so far.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }

    /// Adds the senders (once) and sets the pipeline playing.
    fn start_sending(&self, vp8_pt: Option<u8>, opus_pt: Option<u8>) -> Result<()> {
        let mut sending = lock(&self.sending);
        if *sending {
            return Ok(());
        }
        let m = &self.media;
        if let Some(pt) = vp8_pt {
            let caps = format!(
                "application/x-rtp,media=video,encoding-name=VP8,payload={pt},clock-rate=90000"
            );
            let desc = format!(
                "videotestsrc pattern={} is-live=true ! video/x-raw,width={},height={},framerate=30/1 \
                 ! videoconvert ! queue ! vp8enc deadline=1 ! rtpvp8pay pt={pt} ! capsfilter caps=\"{caps}\"",
                m.video_pattern, m.width, m.height
            );
            self.add_sender(&desc, &caps)?;
        }
        if let Some(pt) = opus_pt {
            let caps = format!(
                "application/x-rtp,media=audio,encoding-name=OPUS,payload={pt},clock-rate=48000,encoding-params=(string)2"
            );
            let desc = format!(
                "audiotestsrc wave=sine freq={} is-live=true ! audioconvert ! audioresample ! queue \
                 ! opusenc ! rtpopuspay pt={pt} ! capsfilter caps=\"{caps}\"",
                m.tone_hz
            );
            self.add_sender(&desc, &caps)?;
        }
        self.pipeline
            .set_state(gst::State::Playing)
            .context("pipeline to PLAYING")?;
        *sending = true;
        Ok(())
    }

    /// GStreamer 1.22's DTLS makes RSA certificates; str0m's DTLS (like
    /// other modern stacks) takes ECDSA only. Each DTLS pair of this
    /// webrtcbin gets a P-256 certificate and a fresh connection, before the
    /// answer (and its fingerprint) is made. The decoders connect their
    /// handlers when going from NULL to READY, so they are cycled through
    /// NULL once the new connection exists.
    fn use_ecdsa_certificate(&self) -> Result<()> {
        let (pem, _) = super::cert::ecdsa()?;
        let bin = self
            .webrtc
            .clone()
            .downcast::<gst::Bin>()
            .map_err(|_| anyhow::anyhow!("webrtcbin is a bin"))?;
        let elements: Vec<gst::Element> = bin.iterate_recurse().into_iter().flatten().collect();
        let named = |factory: &str| -> Vec<gst::Element> {
            elements
                .iter()
                .filter(|e| e.factory().is_some_and(|f| f.name() == factory))
                .cloned()
                .collect()
        };
        let (decoders, encoders, inner_decs, inner_encs) = (
            named("dtlssrtpdec"),
            named("dtlssrtpenc"),
            named("dtlsdec"),
            named("dtlsenc"),
        );
        anyhow::ensure!(!decoders.is_empty(), "no DTLS decoder in webrtcbin");
        for dec in decoders {
            let Some(id) = dec.property::<Option<String>>("connection-id") else {
                continue;
            };
            let new_id = format!("{id}-ec");
            dec.set_property("pem", pem.as_str());
            dec.set_property("connection-id", new_id.as_str());
            for enc in &encoders {
                if enc.property::<Option<String>>("connection-id").as_deref() == Some(id.as_str()) {
                    enc.set_property("connection-id", new_id.as_str());
                }
            }
        }
        for e in inner_decs.iter().chain(inner_encs.iter()) {
            let _ = e.set_state(gst::State::Null);
        }
        for e in inner_decs.iter().chain(inner_encs.iter()) {
            let _ = e.sync_state_with_parent();
        }
        Ok(())
    }

    /// Waits (bounded) until every sender has negotiated caps with its
    /// SSRC, so the SDP webrtcbin writes next declares our sources.
    fn wait_for_sender_caps(&self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let ready = self.webrtc.sink_pads().iter().all(|p| {
                p.current_caps()
                    .is_some_and(|c| c.structure(0).is_some_and(|s| s.has_field("ssrc")))
            });
            if ready {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        tracing::warn!("senders have no SSRC yet; the answer may not declare them");
    }

    fn add_sender(&self, desc: &str, caps: &str) -> Result<()> {
        let bin = gst::parse::bin_from_description(desc, true)
            .with_context(|| format!("sender: {desc}"))?;
        self.pipeline.add(&bin)?;
        let sink = self
            .webrtc
            .request_pad_simple("sink_%u")
            .context("webrtcbin sink pad")?;
        let src = bin.static_pad("src").context("sender ghost pad")?;
        src.link(&sink).context("link sender to webrtcbin")?;
        let trans = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        trans.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv,
        );
        let caps: gst::Caps = caps.parse().context("sender caps")?;
        trans.set_property("codec-preferences", caps);
        bin.sync_state_with_parent()?;
        Ok(())
    }

    fn set_description(
        &self,
        signal: &str,
        kind: gst_webrtc::WebRTCSDPType,
        sdp: &str,
    ) -> Result<()> {
        let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
            .map_err(|e| anyhow!("gst-sdp cannot parse the SDP: {e}\n{sdp}"))?;
        let desc = gst_webrtc::WebRTCSessionDescription::new(kind, msg);
        self.call(signal, |promise| {
            self.webrtc.emit_by_name::<()>(signal, &[&desc, promise])
        })?;
        Ok(())
    }

    /// Emits `create-offer`/`create-answer` and takes `field` of the reply.
    fn create(&self, signal: &str, field: &str) -> Result<gst_webrtc::WebRTCSessionDescription> {
        let reply = self
            .call(signal, |promise| {
                self.webrtc
                    .emit_by_name::<()>(signal, &[&None::<gst::Structure>, promise])
            })?
            .with_context(|| format!("{signal}: empty reply"))?;
        reply
            .get::<gst_webrtc::WebRTCSessionDescription>(field)
            .map_err(|e| anyhow!("{signal}: no {field} in {reply}: {e}"))
    }

    /// Runs `emit` with a fresh promise and waits (bounded: `Promise::wait`
    /// has no timeout) for its reply; an `error` field becomes an error.
    fn call(&self, what: &str, emit: impl FnOnce(&gst::Promise)) -> Result<Option<gst::Structure>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let promise = gst::Promise::with_change_func(move |reply| {
            let _ = tx.send(
                reply
                    .map(|r| r.map(|s| s.to_owned()))
                    .map_err(|e| format!("{e:?}")),
            );
        });
        emit(&promise);
        let reply = rx
            .recv_timeout(STEP_TIMEOUT)
            .map_err(|_| anyhow!("{what}: no reply within {STEP_TIMEOUT:?}"))?
            .map_err(|e| anyhow!("{what}: promise {e}"))?;
        if let Some(err) = reply
            .as_ref()
            .and_then(|r| r.get::<gst::glib::Error>("error").ok())
        {
            bail!("{what}: {err}");
        }
        Ok(reply)
    }

    fn set_local_and_gather(&self, desc: gst_webrtc::WebRTCSessionDescription) -> Result<String> {
        self.call("set-local-description", |promise| {
            self.webrtc
                .emit_by_name::<()>("set-local-description", &[&desc, promise])
        })?;
        let deadline = Instant::now() + STEP_TIMEOUT;
        while self
            .webrtc
            .property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            != gst_webrtc::WebRTCICEGatheringState::Complete
        {
            if Instant::now() >= deadline {
                bail!("ICE gathering did not complete within {STEP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let local = self
            .webrtc
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
            .context("no local description")?;
        let text = local.sdp().as_text().context("local SDP as text")?;
        Ok(with_candidates(&text, &lock(&self.candidates)))
    }
}

impl Drop for WebrtcPeer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The payload type of the first `a=rtpmap:<pt> <codec>/...` in the first
/// `media` section that is not rejected (port 0 without `a=bundle-only`:
/// webrtcbin's own max-bundle offers give bundled sections port 0).
fn find_pt(sdp: &proto::sdp::Sdp, media: &str, codec: &str) -> Option<u8> {
    let section = sdp
        .media
        .iter()
        .find(|m| m.media == media && (m.port != 0 || m.attr("bundle-only").is_some()))?;
    section.attrs("rtpmap").find_map(|a| {
        let (pt, enc) = a.value.as_deref()?.split_once(' ')?;
        let name = enc.split('/').next()?;
        name.eq_ignore_ascii_case(codec)
            .then(|| pt.parse().ok())
            .flatten()
    })
}

/// Adds gathered candidates to an SDP that has none; unchanged if it has
/// some. A safety net: webrtcbin 1.22 already writes the candidates it
/// gathered into `local-description`.
fn with_candidates(sdp: &str, candidates: &[(u32, String)]) -> String {
    if sdp.contains("a=candidate:") || candidates.is_empty() {
        return sdp.to_owned();
    }
    let mut out = String::new();
    let mut mline: Option<u32> = None;
    let flush = |out: &mut String, mline: Option<u32>| {
        if let Some(m) = mline {
            for (_, c) in candidates.iter().filter(|(i, _)| *i == m) {
                out.push_str("a=");
                out.push_str(c.trim_start_matches("a="));
                out.push_str("\r\n");
            }
        }
    };
    for line in sdp.lines() {
        if line.starts_with("m=") {
            flush(&mut out, mline);
            mline = Some(mline.map_or(0, |m| m + 1));
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    flush(&mut out, mline);
    out
}

/// Links a new webrtcbin source pad to a decoder and an appsink that
/// updates a fresh [`StreamState`].
fn receive(pipeline: &gst::Pipeline, pad: &gst::Pad, streams: &Streams) -> Result<()> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let s = caps.structure(0).context("caps without structure")?;
    let media = s.get::<&str>("media").unwrap_or("");
    let encoding = s
        .get::<&str>("encoding-name")
        .unwrap_or("")
        .to_ascii_uppercase();
    let mid = pad
        .property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
        .and_then(|t| t.property::<Option<String>>("mid"));
    let (kind, desc) = match (media, encoding.as_str()) {
        ("video", "VP8") => (
            StreamKind::Video,
            "queue ! rtpvp8depay ! vp8dec ! videoconvert ! appsink name=sink sync=false".to_owned(),
        ),
        ("audio", "OPUS") => (
            StreamKind::Audio,
            format!(
                "queue ! rtpopusdepay ! opusdec ! audioconvert ! audioresample \
                 ! audio/x-raw,format=F32LE,rate={AUDIO_RATE},channels=1 ! appsink name=sink sync=false"
            ),
        ),
        _ => (StreamKind::Other, "fakesink name=sink".to_owned()),
    };
    tracing::info!(pad = %pad.name(), ?mid, %caps, "incoming stream");
    let bin = gst::parse::bin_from_description(&desc, true)?;
    pipeline.add(&bin)?;
    let state = Arc::new(Mutex::new(StreamState {
        mid,
        kind,
        frames: 0,
        width: 0,
        height: 0,
        samples: VecDeque::with_capacity(AUDIO_WINDOW),
    }));
    if kind != StreamKind::Other {
        let sink = bin
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .context("appsink")?;
        let st = state.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    on_sample(&st, &sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    lock(streams).push(state);
    bin.sync_state_with_parent()?;
    let sinkpad = bin.static_pad("sink").context("decoder ghost pad")?;
    pad.link(&sinkpad).context("link webrtcbin to decoder")?;
    Ok(())
}

fn on_sample(state: &Mutex<StreamState>, sample: &gst::Sample) {
    let mut st = lock(state);
    st.frames += 1;
    match st.kind {
        StreamKind::Video => {
            if let Some(s) = sample.caps().and_then(|c| c.structure(0)) {
                st.width = s.get::<i32>("width").map_or(0, |w| w.max(0) as u32);
                st.height = s.get::<i32>("height").map_or(0, |h| h.max(0) as u32);
            }
        }
        StreamKind::Audio => {
            let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) else {
                return;
            };
            for chunk in map.as_slice().chunks_exact(4) {
                let v = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                if st.samples.len() == AUDIO_WINDOW {
                    st.samples.pop_front();
                }
                st.samples.push_back(v);
            }
        }
        StreamKind::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_go_into_their_media_section() {
        let sdp = "v=0\r\nm=video 9 X 96\r\na=mid:0\r\nm=audio 9 X 111\r\na=mid:1\r\n";
        let out = with_candidates(sdp, &[(0, "candidate:1 1 UDP 1 1.2.3.4 5 typ host".into())]);
        assert_eq!(
            out,
            "v=0\r\nm=video 9 X 96\r\na=mid:0\r\na=candidate:1 1 UDP 1 1.2.3.4 5 typ host\r\nm=audio 9 X 111\r\na=mid:1\r\n"
        );
    }

    #[test]
    fn finds_payload_types_by_codec() {
        let sdp = proto::sdp::Sdp::parse(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 100 111\r\na=rtpmap:100 red/48000/2\r\na=rtpmap:111 opus/48000/2\r\n",
        )
        .unwrap();
        assert_eq!(find_pt(&sdp, "audio", "OPUS"), Some(111));
        assert_eq!(find_pt(&sdp, "video", "VP8"), None);
    }
}
