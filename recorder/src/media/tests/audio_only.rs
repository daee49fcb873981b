//! Audio-only recordings: no video element anywhere, the tone comes back.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;

use super::decode::{self, bus_error, filesink, goertzel, ms, sleep_until, Source};
use crate::media::{AudioCodec, Mixer, MixerConfig, MixerError, Output};

#[test]
fn audio_only_outputs_have_no_video_elements() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            AudioCodec::OpusOgg,
            "out.opus",
            "oggdemux ! opusparse ! opusdec",
            "opus",
        ),
        (
            AudioCodec::OpusWebm,
            "out.webm",
            "matroskademux ! opusparse ! opusdec",
            "opus",
        ),
        (
            AudioCodec::Aac,
            "out.m4a",
            "qtdemux ! aacparse ! avdec_aac",
            "aac",
        ),
    ];
    for (codec, file, decoder, codec_name) in cases {
        let path = dir.path().join(file);
        let pipeline = gst::Pipeline::new();
        let sink = filesink(&path);
        let output = Output::AudioOnly { sink, codec };
        let mixer = Mixer::new(&pipeline, MixerConfig::default(), output).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let start = Instant::now();
        let tone = Source::tone(&pipeline, 440.0);
        mixer.add_audio("a", &tone.pad).unwrap();
        tone.start();
        // No tiles here: a placeholder is a no-op, a video pad a mistake.
        mixer.add_participant("a", "Alice").unwrap();
        let video = Source::video(&pipeline, 0xffff_ffff, 64, 64);
        let err = mixer.add_video("a", "Alice", &video.pad).unwrap_err();
        assert!(matches!(err, MixerError::InvalidConfig(_)), "{err:?}");
        video.stop(&pipeline);

        let elements = decode::factories(pipeline.upcast_ref());
        let video_elements: Vec<_> = elements
            .iter()
            .filter(|(_, klass)| klass.contains("Video"))
            .collect();
        assert!(video_elements.is_empty(), "{video_elements:?}");
        for name in ["compositor", "x264enc", "videotestsrc", "textoverlay"] {
            assert!(
                !elements.iter().any(|(f, _)| f == name),
                "{name} in {elements:?}"
            );
        }

        sleep_until(start, ms(1500));
        let span = start.elapsed().as_secs_f64();
        if let Err(e) = mixer.finish(Duration::from_secs(10)) {
            panic!("finish: {e:?}; first bus error: {:?}", bus_error(&pipeline));
        }
        let error = bus_error(&pipeline);
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(error, None);
        decode::keep(&path);

        if let Some(probe) = decode::ffprobe(&path) {
            eprintln!("{file}: {}", probe.replace('\n', " "));
            assert!(
                probe.contains(&format!("codec_name={codec_name}")),
                "{probe}"
            );
            assert!(!probe.contains("h264"));
        }
        let (out, decoder) = decode::decode(&format!(
            "filesrc location={} ! {decoder} ! audioconvert ! audioresample \
             ! audio/x-raw,format=F32LE,channels=1,rate=48000,layout=interleaved \
             ! appsink name=a sync=false",
            path.display()
        ));
        decoder.set_state(gst::State::Null).unwrap();
        let (first, _) = out.audio[0];
        let end = out
            .audio
            .last()
            .map(|(t, s)| t + s.len() as f64 / decode::RATE)
            .unwrap();
        let s = out.samples(0.3, 1.2);
        let (hit, off) = (goertzel(&s, 440.0), goertzel(&s, 660.0));
        eprintln!(
            "{file}: {first:.3}..{end:.3} s (span {span:.3}), 440 Hz {hit:.2e}, 660 Hz {off:.2e}"
        );
        assert!(hit > 0.01 && hit > 100.0 * off, "{file}: no tone");
        assert!((end - first - span).abs() < 0.5, "{file}: length");
    }
}
