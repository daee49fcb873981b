//! End-to-end tests of the mixer: real pipelines, live sources, real
//! encoders; the output is decoded back and measured.

mod audio_only;
mod decode;
mod flv;
mod speaker;

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;

use self::decode::{bus_error, filesink, goertzel, is_blue, is_red, ms, sleep_until, Source};
use super::layout::{self, Layout};
use super::{Mixer, MixerConfig, MixerError, Output};

const RED: u32 = 0xffff_0000;
const BLUE: u32 = 0xff00_00ff;

/// Two participants with colours and tones; the second joins at 1 s, the
/// first leaves at 3 s; the fMP4 is decoded back and measured.
#[test]
fn grid_recording_has_tiles_tones_and_duration() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    let pipeline = gst::Pipeline::new();
    let config = MixerConfig {
        layout: Layout::Grid,
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

    let (a_video, a_tone) = (
        Source::video(&pipeline, RED, 640, 480),
        Source::tone(&pipeline, 440.0),
    );
    mixer.add_video("a", "Alice", &a_video.pad).unwrap();
    mixer.add_audio("a", &a_tone.pad).unwrap();
    a_video.start();
    a_tone.start();

    // Odd input: a second video for the same id, an unknown removal.
    let extra = Source::video(&pipeline, RED, 64, 64);
    let dup = mixer.add_video("a", "Alice again", &extra.pad);
    assert!(matches!(dup, Err(MixerError::Duplicate { .. })), "{dup:?}");
    assert!(dup.unwrap_err().is_caller_error());
    let linked = mixer.add_video("x", "X", &a_video.pad);
    assert!(matches!(linked, Err(MixerError::Link(_))), "{linked:?}");
    mixer.remove("nobody");
    extra.stop(&pipeline);

    sleep_until(start, ms(1000));
    let joined = start.elapsed().as_secs_f64();
    let (b_video, b_tone) = (
        Source::video(&pipeline, BLUE, 320, 240),
        Source::tone(&pipeline, 880.0),
    );
    mixer.add_video("b", "Bob", &b_video.pad).unwrap();
    mixer.add_audio("b", &b_tone.pad).unwrap();
    b_video.start();
    b_tone.start();

    sleep_until(start, ms(3000));
    let left = start.elapsed().as_secs_f64();
    mixer.remove("a");
    mixer.remove("a");
    // Alice's sources run on for a while: the mixer swallows what they push,
    // and drops its ghost pads once they are unlinked.
    let bin = pipeline
        .children()
        .into_iter()
        .find(|e| e.name().starts_with("mixer"))
        .and_then(|e| e.downcast::<gst::Bin>().ok())
        .unwrap();
    assert_eq!(bin.sink_pads().len(), 4);
    sleep_until(start, ms(3300));
    a_video.stop(&pipeline);
    a_tone.stop(&pipeline);
    std::thread::sleep(ms(50));
    assert_eq!(bin.sink_pads().len(), 2, "Bob's video and audio");

    sleep_until(start, ms(4000));
    let span = start.elapsed().as_secs_f64();
    if let Err(e) = mixer.finish(Duration::from_secs(10)) {
        panic!("finish: {e:?}; first bus error: {:?}", bus_error(&pipeline));
    }
    assert!(matches!(
        mixer.add_audio("c", &b_tone.pad),
        Err(MixerError::Finished)
    ));
    let error = bus_error(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(error, None);
    decode::keep(&path);
    eprintln!("joined at {joined:.3} s, left at {left:.3} s, span {span:.3} s");

    // Containers and codecs, as a player sees them.
    if let Some(probe) = decode::ffprobe(&path) {
        eprintln!("ffprobe: {probe}");
        assert!(
            probe.contains("codec_name=h264|profile=High|width=1280|height=720|pix_fmt=yuv420p")
        );
        assert!(probe.contains("codec_name=aac|profile=LC|sample_rate=48000|channels=2"));
        let duration: f64 = probe
            .split("duration=")
            .nth(1)
            .and_then(|d| d.split(['|', '\n']).next())
            .and_then(|d| d.trim().parse().ok())
            .expect("ffprobe duration");
        eprintln!(
            "ffprobe duration {duration:.3} s, error {:+.3} s",
            duration - span
        );
        assert!(
            (duration - span).abs() < 0.5,
            "duration {duration} vs {span}"
        );
    } else {
        eprintln!("ffprobe not installed; relying on GStreamer decoding only");
    }

    let (out, decoder) = decode::decode(&format!(
        "filesrc location={} ! qtdemux name=d \
         d.video_0 ! queue ! h264parse ! avdec_h264 name=dec ! videoconvert ! video/x-raw,format=RGB ! appsink name=v sync=false \
         d.audio_0 ! queue ! aacparse ! avdec_aac ! audioconvert ! audioresample \
           ! audio/x-raw,format=F32LE,channels=1,rate=48000,layout=interleaved ! appsink name=a sync=false",
        path.display()
    ));
    let caps_of = |el: &str, pad: &str| {
        let caps = decoder
            .by_name(el)
            .unwrap()
            .static_pad(pad)
            .unwrap()
            .current_caps();
        caps.unwrap().structure(0).unwrap().to_owned()
    };
    let (video_in, audio_in) = (caps_of("d", "video_0"), caps_of("d", "audio_0"));
    let decoded_format: String = caps_of("dec", "src").get("format").unwrap();
    decoder.set_state(gst::State::Null).unwrap();
    assert_eq!(video_in.name(), "video/x-h264");
    assert_eq!(video_in.get::<String>("profile").unwrap(), "high");
    assert_eq!(decoded_format, "I420", "8-bit 4:2:0");
    assert_eq!(audio_in.name(), "audio/mpeg");
    assert_eq!(audio_in.get::<i32>("mpegversion").unwrap(), 4);

    // Frame rate and length.
    assert_eq!(out.size, (1280, 720));
    let (first, last) = (out.frames[0].pts, out.frames.last().unwrap().pts);
    let fps = (out.frames.len() - 1) as f64 / (last - first);
    eprintln!(
        "{} frames, {first:.3}..{last:.3} s, {fps:.2} fps",
        out.frames.len()
    );
    assert!((29.0..=31.0).contains(&fps), "fps {fps}");
    assert!((last + 1.0 / 30.0 - span).abs() < 0.5, "video ends {last}");

    // Tiles where the layout says, before, during and after the overlap.
    let alone = layout::tiles(Layout::Grid, 1280, 720, &["a"], None)[0].unwrap();
    let both = layout::tiles(Layout::Grid, 1280, 720, &["a", "b"], None);
    let (ra, rb) = (both[0].unwrap(), both[1].unwrap());
    let share = |t0: f64, t1: f64, check: &dyn Fn(&decode::Frame) -> bool| {
        let frames: Vec<_> = out.frames_between(t0, t1).collect();
        assert!(!frames.is_empty(), "no frames in {t0}..{t1}");
        frames.iter().filter(|f| check(f)).count() as f64 / frames.len() as f64
    };
    let (cx, cy) = alone.centre();
    let only_red = share(0.4, 0.9, &|f| is_red(f.at(cx, cy)));
    let red_blue = share(joined + 0.5, left - 0.1, &|f| {
        let (a, b) = (ra.centre(), rb.centre());
        is_red(f.at(a.0, a.1)) && is_blue(f.at(b.0, b.1)) && !is_red(f.at(b.0, b.1))
    });
    let only_blue = share(left + 0.4, span - 0.1, &|f| {
        let (a, b) = (ra.centre(), rb.centre());
        is_blue(f.at(a.0, a.1)) && is_blue(f.at(b.0, b.1)) && is_blue(f.at(cx, cy))
    });
    eprintln!(
        "frames right: red alone {only_red:.2}, red|blue {red_blue:.2}, blue alone {only_blue:.2}; \
         tiles a={ra:?} b={rb:?}"
    );
    assert!(only_red > 0.9 && red_blue > 0.9 && only_blue > 0.9);

    // Tones: 440 Hz from Alice, 880 Hz from Bob, each only while present.
    let tones = |t0: f64, t1: f64| {
        let s = out.samples(t0, t1);
        let (lo, hi, off) = (
            goertzel(&s, 440.0),
            goertzel(&s, 880.0),
            goertzel(&s, 660.0),
        );
        eprintln!("{t0:.1}..{t1:.1} s: 440 Hz {lo:.2e}, 880 Hz {hi:.2e}, 660 Hz {off:.2e}");
        (lo, hi, off)
    };
    let (lo, hi, off) = tones(0.4, 0.9);
    assert!(lo > 100.0 * hi.max(off), "Alice alone");
    let (lo, hi, off) = tones(joined + 0.5, left - 0.1);
    assert!(lo > 100.0 * off && hi > 100.0 * off, "both");
    let (lo, hi, off) = tones(left + 0.4, span - 0.1);
    assert!(hi > 100.0 * lo.max(off), "Bob alone");
    let audio_end = out
        .audio
        .last()
        .map(|(t, s)| t + s.len() as f64 / decode::RATE);
    eprintln!("audio {:.3}..{:.3} s", out.audio[0].0, audio_end.unwrap());

    // A/V sync: Bob's picture and voice start together (his sources were
    // started within a millisecond of each other).
    let (bx, by) = rb.centre();
    let seen = out
        .frames
        .iter()
        .find(|f| f.pts > 0.5 && is_blue(f.at(bx, by)));
    let heard = (0..400).map(|i| 0.5 + i as f64 * 0.01).find(|t| {
        let s = out.samples(*t, t + 0.02);
        goertzel(&s, 880.0) > 0.25 * 0.3 * 0.3 * 0.1
    });
    let (seen, heard) = (seen.unwrap().pts, heard.unwrap());
    eprintln!(
        "Bob seen at {seen:.3} s, heard at {heard:.3} s: a/v offset {:+.0} ms",
        (seen - heard) * 1000.0
    );
    assert!((seen - heard).abs() < 0.08 + 1.0 / 30.0, "a/v offset");
}
