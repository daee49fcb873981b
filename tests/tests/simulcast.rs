//! Simulcast through the real media plane: a str0m publisher sends three
//! real VP8 layers (GStreamer's vp8enc at 320x180, 640x360 and 1280x720,
//! one rid each, as str0m answers our `a=simulcast:recv l;m;h`); a receiver
//! asks over its bridge channel for 180p, then 720p, then 180p again, and
//! decodes what it gets with GStreamer's vp8dec. It must get the layer it
//! asked for, switch within 2 s, and decode without an error.

use std::net::SocketAddr;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::SinkExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sfu::plane::{PlaneEvent, PlaneHandle};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{MediaTime, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "room@conference.meet.test";
/// Layers, lowest first: rid, width, height, target bitrate (kbit/s).
const LAYERS: [(&str, u32, u32, u32); 3] = [
    ("l", 320, 180, 150),
    ("m", 640, 360, 500),
    ("h", 1280, 720, 1500),
];
const FPS: u32 = 15;

fn key(nick: &str) -> String {
    format!("{ROOM}/{nick}")
}

/// A str0m participant on its own loopback socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    connected: bool,
    /// Rids of the keyframe requests received (publisher side).
    keyframe_requests: Vec<Option<Rid>>,
}

impl Peer {
    async fn join(plane: &PlaneHandle, nick: &str) -> Result<Peer> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let offer = plane.create_endpoint(ROOM, &key(nick)).await?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp")?);
        let answer = rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer)?)?;
        plane
            .accept_answer(&key(nick), &answer.to_sdp_string())
            .await?;
        Ok(Peer {
            rtc,
            socket,
            addr,
            connected: false,
            keyframe_requests: Vec::new(),
        })
    }

    /// Feeds what the socket has, lets time pass, sends what str0m wants;
    /// media frames go to `on_frame` as (mid, data).
    fn pump(&mut self, mut on_frame: impl FnMut(&str, &[u8])) -> Result<()> {
        let mut buf = [0u8; 2048];
        while let Ok((n, source)) = self.socket.try_recv_from(&mut buf) {
            let Ok(contents) = buf[..n].try_into() else {
                continue;
            };
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.addr,
                    contents,
                },
            );
            if self.rtc.accepts(&input) {
                self.rtc.handle_input(input)?;
            }
        }
        self.rtc.handle_input(Input::Timeout(Instant::now()))?;
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(_) => return Ok(()),
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) => on_frame(&d.mid.to_string(), &d.data),
                Output::Event(Event::KeyframeRequest(r)) => self.keyframe_requests.push(r.rid),
                Output::Event(_) => {}
            }
        }
    }
}

/// Encodes one test pattern into the three layers; frames arrive on the
/// returned channel as (layer index, pts in 90 kHz, VP8 frame). Keyframes
/// come only every 10 s unless asked for ([`force_keyframe`]), so a quick
/// switch proves the plane asked the publisher for the layer it wants.
fn encoder() -> Result<(gst::Pipeline, std_mpsc::Receiver<EncodedFrame>)> {
    gst::init()?;
    let mut desc = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate={FPS}/1 ! tee name=t"
    );
    for (i, (_, w, h, kbps)) in LAYERS.iter().enumerate() {
        desc.push_str(&format!(
            " t. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! \
             vp8enc deadline=1 cpu-used=8 keyframe-max-dist={} target-bitrate={} ! \
             appsink name=layer{i} sync=false emit-signals=false max-buffers=30 drop=true",
            FPS * 10,
            kbps * 1000
        ));
    }
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("not a pipeline"))?;
    let (tx, rx) = std_mpsc::channel();
    for i in 0..LAYERS.len() {
        let sink = pipeline
            .by_name(&format!("layer{i}"))
            .context("appsink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| anyhow!("not an appsink"))?;
        let tx = tx.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let pts = buffer.pts().map_or(0, |t| t.nseconds() * 9 / 100_000);
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let _ = tx.send((i, pts, map.to_vec()));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    pipeline.set_state(gst::State::Playing)?;
    Ok((pipeline, rx))
}

/// (layer index, pts in 90 kHz, VP8 frame).
type EncodedFrame = (usize, u64, Vec<u8>);

/// Asks layer `i`'s encoder for a keyframe (as a browser does on a PLI).
fn force_keyframe(pipeline: &gst::Pipeline, i: usize) {
    if let Some(sink) = pipeline.by_name(&format!("layer{i}")) {
        let s = gst::Structure::builder("GstForceKeyUnit")
            .field("all-headers", true)
            .build();
        sink.send_event(gst::event::CustomUpstream::new(s));
    }
}

/// What the receiver's decoder produced.
#[derive(Default)]
struct Decoded {
    /// (when, width, height) of every decoded frame.
    frames: Vec<(Instant, i32, i32)>,
    errors: Vec<String>,
}

/// Decodes the frames pushed into the returned appsrc.
fn decoder() -> Result<(gst::Pipeline, gst_app::AppSrc, Arc<Mutex<Decoded>>)> {
    let pipeline = gst::parse::launch(
        "appsrc name=src is-live=true do-timestamp=true format=time caps=video/x-vp8 ! \
         vp8dec ! appsink name=out sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .context("appsrc")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| anyhow!("not an appsrc"))?;
    let out = pipeline
        .by_name("out")
        .context("appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow!("not an appsink"))?;
    let decoded = Arc::new(Mutex::new(Decoded::default()));
    let d = decoded.clone();
    out.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let caps = sample.caps().ok_or(gst::FlowError::Error)?;
                let st = caps.structure(0).ok_or(gst::FlowError::Error)?;
                let w = st.get::<i32>("width").unwrap_or(0);
                let h = st.get::<i32>("height").unwrap_or(0);
                d.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .frames
                    .push((Instant::now(), w, h));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let d = decoded.clone();
    let bus = pipeline.bus().context("bus")?;
    bus.set_sync_handler(move |_, msg| {
        let text = match msg.view() {
            gst::MessageView::Error(e) => Some(format!("error: {}", e.error())),
            gst::MessageView::Warning(w) => Some(format!("warning: {}", w.error())),
            _ => None,
        };
        if let Some(t) = text {
            d.lock().unwrap_or_else(|e| e.into_inner()).errors.push(t);
        }
        gst::BusSyncReply::Drop
    });
    pipeline.set_state(gst::State::Playing)?;
    Ok((pipeline, src, decoded))
}

/// The height the receiver decoded last, and how many frames it decoded.
fn last_height(d: &Arc<Mutex<Decoded>>) -> (i32, usize) {
    let d = d.lock().unwrap_or_else(|e| e.into_inner());
    (d.frames.last().map_or(0, |f| f.2), d.frames.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_the_layer_it_asks_for_and_switches_within_2s() -> Result<()> {
    tests::init_logs();
    let (plane, mut events, channels, http) = tests::plane::start_with_channels(2, 2).await?;
    let mut publisher = Peer::join(&plane, "pub").await?;
    let mut receiver = Peer::join(&plane, "rx").await?;

    // The receiver's bridge channel, as the focus announces it.
    channels.expect(ROOM, &key("rx"), "pwd");
    let url = format!("ws://{http}{}", channels.path(ROOM, &key("rx"), "pwd"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let ask = |height: i32| {
        Message::text(format!(
            r#"{{"colibriClass":"ReceiverVideoConstraints","defaultConstraints":{{"maxHeight":{height}}}}}"#
        ))
    };
    ws.send(ask(180)).await?;

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut announced = 0;
    while !(publisher.connected && receiver.connected && announced == 2) {
        anyhow::ensure!(Instant::now() < deadline, "no connection");
        publisher.pump(|_, _| {})?;
        receiver.pump(|_, _| {})?;
        while let Ok(e) = events.try_recv() {
            if matches!(e, PlaneEvent::Connected { .. }) {
                announced += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let (encoding, frames) = encoder()?;
    let (decoding, appsrc, decoded) = decoder()?;
    let pt = {
        let w = publisher.rtc.writer(Mid::from("video")).context("video")?;
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .context("vp8 negotiated")?
            .pt();
        pt
    };
    let mut received = 0usize;
    // Runs the media for `d` (or until `done` says so), returns the elapsed time.
    let mut run = |d: Duration, done: &dyn Fn() -> bool| -> Result<Duration> {
        let start = Instant::now();
        while start.elapsed() < d && !done() {
            while let Ok((layer, pts, data)) = frames.try_recv() {
                let rid = Rid::from(LAYERS[layer].0);
                if let Some(w) = publisher.rtc.writer(Mid::from("video")) {
                    w.rid(rid)
                        .write(pt, Instant::now(), MediaTime::from_90khz(pts), data)?;
                }
            }
            publisher.pump(|_, _| {})?;
            for rid in publisher.keyframe_requests.drain(..) {
                let layer = rid.and_then(|r| LAYERS.iter().position(|l| Rid::from(l.0) == r));
                force_keyframe(&encoding, layer.unwrap_or(0));
            }
            receiver.pump(|mid, data| {
                if mid.starts_with("video") {
                    received += 1;
                    let buffer = gst::Buffer::from_slice(data.to_vec());
                    let _ = appsrc.push_buffer(buffer);
                }
            })?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(start.elapsed())
    };

    // Asking for 180p: the low layer arrives and keeps arriving.
    run(Duration::from_secs(5), &|| last_height(&decoded).1 >= 15)?;
    let (h, n) = last_height(&decoded);
    assert!(n >= 15, "decoded {n} frames at 180p ({received} received)");
    assert_eq!(h, 180, "asked for 180p");
    // The first layer to start may be forwarded until the low one runs (the
    // constraint is soft, as in Jitsi's bridge); from then on only 180p.
    let heights: Vec<i32> = decoded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .frames
        .iter()
        .map(|f| f.2)
        .collect();
    let first_low = heights.iter().position(|h| *h == 180).unwrap_or(0);
    assert!(
        first_low <= 2 && heights[first_low..].iter().all(|h| *h == 180),
        "only the low layer: {heights:?}"
    );

    // Asking for 720p: the high layer within 2 s.
    ws.send(ask(720)).await?;
    let took = run(Duration::from_secs(4), &|| last_height(&decoded).0 == 720)?;
    assert_eq!(last_height(&decoded).0, 720, "no 720p after {took:?}");
    assert!(took < Duration::from_secs(2), "switched up in {took:?}");
    tracing::info!(?took, "switched to 720p");
    let before = last_height(&decoded).1;
    run(Duration::from_secs(1), &|| false)?;
    let (h, n) = last_height(&decoded);
    assert_eq!(h, 720);
    assert!(
        n >= before + FPS as usize / 2,
        "720p keeps coming: {before} -> {n}"
    );

    // And back down.
    ws.send(ask(180)).await?;
    let took = run(Duration::from_secs(4), &|| last_height(&decoded).0 == 180)?;
    assert_eq!(last_height(&decoded).0, 180, "no 180p after {took:?}");
    assert!(took < Duration::from_secs(2), "switched down in {took:?}");
    tracing::info!(?took, "switched to 180p");

    let d = decoded.lock().unwrap_or_else(|e| e.into_inner());
    assert!(d.errors.is_empty(), "decoder: {:?}", d.errors);
    // Only the three layer sizes were ever decoded, never a mix.
    for (_, w, h) in &d.frames {
        assert!(
            LAYERS.iter().any(|l| l.1 as i32 == *w && l.2 as i32 == *h),
            "decoded {w}x{h}"
        );
    }
    drop(d);
    encoding.set_state(gst::State::Null)?;
    decoding.set_state(gst::State::Null)?;
    Ok(())
}
