//! FLV for RTMP, and the configuration edges.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;

use super::decode::{self, bus_error, filesink, ms, sleep_until, Source};
use crate::media::{Mixer, MixerConfig, MixerError, Output};

#[test]
fn flv_output_carries_h264_and_aac() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.flv");
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
        Output::Flv {
            sink: filesink(&path),
        },
    )
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let start = Instant::now();
    let (video, tone) = (
        Source::video(&pipeline, 0xff00_ff00, 320, 240),
        Source::tone(&pipeline, 440.0),
    );
    mixer.add_video("a", "Ann", &video.pad).unwrap();
    mixer.add_audio("a", &tone.pad).unwrap();
    video.start();
    tone.start();
    sleep_until(start, ms(1200));
    if let Err(e) = mixer.finish(Duration::from_secs(10)) {
        panic!("finish: {e:?}; first bus error: {:?}", bus_error(&pipeline));
    }
    let error = bus_error(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(error, None);
    decode::keep(&path);
    if let Some(probe) = decode::ffprobe(&path) {
        eprintln!("out.flv: {}", probe.replace('\n', " "));
        assert!(probe.contains("format_name=flv"), "{probe}");
        assert!(probe.contains("codec_name=h264|profile=High|width=640|height=360|pix_fmt=yuv420p"));
        assert!(probe.contains("codec_name=aac"), "{probe}");
    }
}

#[test]
fn bad_config_and_sink_are_refused_by_name() {
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let fakesink = || gst::ElementFactory::make("fakesink").build().unwrap();
    let cases = [
        (
            MixerConfig {
                width: 1281,
                ..MixerConfig::default()
            },
            "width",
        ),
        (
            MixerConfig {
                height: 0,
                ..MixerConfig::default()
            },
            "height",
        ),
        (
            MixerConfig {
                fps: 0,
                ..MixerConfig::default()
            },
            "fps",
        ),
        (
            MixerConfig {
                video_bitrate_kbps: 0,
                ..MixerConfig::default()
            },
            "video_bitrate_kbps",
        ),
        (
            MixerConfig {
                latency: Duration::from_secs(60),
                ..MixerConfig::default()
            },
            "latency",
        ),
    ];
    for (config, key) in cases {
        let err = Mixer::new(&pipeline, config, Output::Mp4 { sink: fakesink() }).unwrap_err();
        match &err {
            MixerError::InvalidConfig(msg) => assert!(msg.starts_with(key), "{msg}"),
            other => panic!("{key}: {other:?}"),
        }
        assert!(err.is_caller_error());
    }
    assert_eq!(MixerConfig::full_hd().validate().ok(), Some(()));
    // A sink that already has a parent.
    let sink = fakesink();
    pipeline.add(&sink).unwrap();
    let err = Mixer::new(&pipeline, MixerConfig::default(), Output::Mp4 { sink }).unwrap_err();
    assert!(matches!(err, MixerError::InvalidConfig(_)), "{err:?}");
    // Nothing was left behind in the pipeline.
    assert_eq!(pipeline.children().len(), 1);
}
