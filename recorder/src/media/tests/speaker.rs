//! Speaker layout on a small canvas: a placeholder tile, switching the
//! speaker, video replacing the placeholder, names drawn.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;

use super::decode::{self, bus_error, filesink, is_blue, is_red, ms, sleep_until, Source};
use crate::media::layout::{self, Layout, Rect};
use crate::media::{video, Mixer, MixerConfig, Output};

/// A point off the tile's centre, clear of a centred or bottom label.
fn spot(r: Rect) -> (i32, i32) {
    (r.x + r.width / 5, r.y + r.height / 4)
}

fn near((r, g, b): (u8, u8, u8), argb: u32) -> bool {
    let want = [(argb >> 16) & 0xff, (argb >> 8) & 0xff, argb & 0xff];
    [r, g, b]
        .iter()
        .zip(want)
        .all(|(&got, want)| (got as i32 - want as i32).abs() < 40)
}

#[test]
fn speaker_layout_with_placeholder_and_switches() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speaker.mp4");
    let pipeline = gst::Pipeline::new();
    let config = MixerConfig {
        width: 640,
        height: 360,
        video_bitrate_kbps: 800,
        ..MixerConfig::default()
    };
    let mixer = Mixer::new(
        &pipeline,
        config,
        Output::Mp4 {
            sink: filesink(&path),
        },
    )
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let start = Instant::now();

    mixer.add_participant("p", "Pat").unwrap();
    assert!(mixer.add_participant("p", "Pat").is_err());
    let vic = Source::video(&pipeline, 0xffff_0000, 320, 240);
    mixer.add_video("v", "Vic", &vic.pad).unwrap();
    vic.start();

    sleep_until(start, ms(1000));
    let switched = start.elapsed().as_secs_f64();
    mixer.set_speaker(Some("v"));
    mixer.set_speaker(Some("nobody-known"));
    mixer.set_speaker(Some("v"));

    sleep_until(start, ms(1600));
    let replaced = start.elapsed().as_secs_f64();
    let pat = Source::video(&pipeline, 0xff00_00ff, 160, 120);
    mixer.add_video("p", "Pat", &pat.pad).unwrap();
    pat.start();
    let tiles = mixer.tiles();
    assert_eq!(tiles.len(), 2, "{tiles:?}");

    sleep_until(start, ms(2400));
    let span = start.elapsed().as_secs_f64();
    if let Err(e) = mixer.finish(Duration::from_secs(10)) {
        panic!("finish: {e:?}; first bus error: {:?}", bus_error(&pipeline));
    }
    let error = bus_error(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(error, None);
    decode::keep(&path);

    let (out, decoder) = decode::decode(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=v sync=false",
        path.display()
    ));
    decoder.set_state(gst::State::Null).unwrap();
    assert_eq!(out.size, (640, 360));
    let last = out.frames.last().unwrap().pts;
    assert!((last - span).abs() < 0.5, "ends at {last}, span {span}");

    let card = video::colour("p");
    let before = layout::tiles(Layout::Speaker, 640, 360, &["p", "v"], None);
    let after = layout::tiles(Layout::Speaker, 640, 360, &["p", "v"], Some("v"));
    let (p0, v0) = (before[0].unwrap(), before[1].unwrap());
    let (p1, v1) = (after[0].unwrap(), after[1].unwrap());
    assert!(p0.width > v0.width && v1.width > p1.width);

    let share = |t0: f64, t1: f64, check: &dyn Fn(&decode::Frame) -> bool| {
        let frames: Vec<_> = out.frames_between(t0, t1).collect();
        assert!(!frames.is_empty(), "no frames in {t0}..{t1}");
        frames.iter().filter(|f| check(f)).count() as f64 / frames.len() as f64
    };
    let at = |f: &decode::Frame, r: Rect| {
        let (x, y) = spot(r);
        f.at(x, y)
    };
    let pat_large = share(0.4, switched - 0.1, &|f| {
        near(at(f, p0), card) && is_red(at(f, v0))
    });
    let vic_large = share(switched + 0.2, replaced - 0.1, &|f| {
        is_red(at(f, v1)) && near(at(f, p1), card)
    });
    let pat_video = share(replaced + 0.4, span - 0.1, &|f| {
        is_red(at(f, v1)) && is_blue(at(f, p1))
    });
    eprintln!("speaker layout frames right: {pat_large:.2}, {vic_large:.2}, {pat_video:.2}");
    assert!(pat_large > 0.9 && vic_large > 0.9 && pat_video > 0.9);

    if gst::ElementFactory::find("textoverlay").is_some() {
        // Label pixels are whatever differs from the background: "Pat"
        // centred on the large card, "Vic" near the bottom of the large video
        // (textoverlay pads it 25 px from the edge), nothing at its top.
        let f = out.frames_between(0.5, 0.9).next().unwrap();
        let (_, cy) = p0.centre();
        let band = (p0.x, cy - 20, p0.x + p0.width, cy + 20);
        let pat_label = decode::count(f, band, |px| !near(px, card));
        let f = out.frames_between(switched + 0.3, replaced).next().unwrap();
        let (x0, x1) = (v1.x + v1.width / 3, v1.x + 2 * v1.width / 3);
        let bottom = v1.y + v1.height;
        let vic_label = decode::count(f, (x0, bottom - 70, x1, bottom), |px| !is_red(px));
        let top = decode::count(f, (x0, v1.y, x1, v1.y + 40), |px| !is_red(px));
        eprintln!("label pixels: Pat {pat_label}, Vic {vic_label} (top band {top})");
        assert!(pat_label >= 5 && vic_label >= 5 && top == 0);
    } else {
        eprintln!("textoverlay missing: names not checked");
    }
}
