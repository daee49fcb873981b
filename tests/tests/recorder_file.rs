//! File recording end to end: a private Prosody, the real `sfu` in process,
//! the real `recorder` in process (its pool account and its hidden meeting
//! account), a moto S3 server, and GStreamer webrtcbin participants that
//! publish distinct colours and tones (alice red at 440 Hz, bob blue at
//! 880 Hz; carol green at 660 Hz joins mid-recording).
//!
//! Alice (the moderator: first in) starts a file recording through the
//! focus and stops it about 20 s later. Then:
//! - the S3 object exists; ffprobe shows H.264 1280x720 at ~30 fps and AAC,
//!   with a duration within 1 s of the span between start and stop;
//! - a frame from before carol joined shows red and blue tiles, and one
//!   from after shows green too;
//! - the audio holds both tones;
//! - the metadata JSON beside it lists the three participants.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use jid::{BareJid, Jid};
use minidom::Element;
use proto::jibri::{JibriIq, RecordingMode, Status};
use tests::meeting::{xmpp, InProcessSfu};
use tests::moto::Moto;
use tests::recording::{probe, Recorder};
use tests::webrtc::{MediaConfig, WebrtcParticipant};
use tests::{Prosody, ProsodyOptions};
use xmpp_session::IqKind;

const BUCKET: &str = "recordings";

fn person(pattern: u32, tone_hz: f64) -> MediaConfig {
    MediaConfig {
        video_pattern: pattern,
        width: 640,
        height: 360,
        tone_hz,
    }
}

/// Sends a Jibri IQ from `who` to the focus; returns the answer.
async fn jibri(who: &WebrtcParticipant, focus: &Jid, iq: JibriIq) -> Result<JibriIq> {
    let answer = who
        .xmpp()
        .iq(Some(focus.clone()), IqKind::Set, Element::from(iq), None)
        .await
        .map_err(|e| anyhow::anyhow!("jibri request refused: {e:?}"))?
        .context("an empty answer")?;
    Ok(JibriIq::try_from(&answer)?)
}

/// One RGB frame of `file` at `at` seconds (1280x720).
fn frame(file: &Path, at: f64) -> Result<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{at:.2}"), "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()?;
    ensure!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

/// Share of pixels (0..1) close to each of red, green, blue.
fn colours(rgb: &[u8]) -> [f64; 3] {
    let mut n = [0usize; 3];
    let px = rgb.len() / 3;
    for p in rgb.chunks_exact(3) {
        let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
        if r > 180 && g < 90 && b < 90 {
            n[0] += 1;
        } else if g > 180 && r < 90 && b < 90 {
            n[1] += 1;
        } else if b > 180 && r < 90 && g < 90 {
            n[2] += 1;
        }
    }
    n.map(|c| c as f64 / px.max(1) as f64)
}

/// The file's audio, mono 16 kHz, as f32.
fn audio(file: &Path) -> Result<Vec<f32>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"])
        .output()?;
    ensure!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect())
}

/// Goertzel power of `hz` in `samples` at `rate`, normalised by length.
fn power(samples: &[f32], rate: f32, hz: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * hz / rate;
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for x in samples {
        let s = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (samples.len() as f32).powi(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moderator_records_the_meeting_to_s3() -> Result<()> {
    tests::init_logs();
    tests::webrtc::init()?;
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let sfu = InProcessSfu::start(&prosody, |_| {}).await;
    let moto = Moto::start_async().await?;
    moto.create_bucket(BUCKET).await?;

    // The recorder: its pool account, its hidden meeting account, S3.
    // moto takes any credentials; the recorder reads the standard chain.
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let recorder = Recorder::start(&prosody, "recorder1", |c| {
        c.storage = recorder::upload::Destination {
            endpoint: Some(moto.endpoint().to_owned()),
            path_style: true,
            ..recorder::upload::Destination::s3("us-east-1", BUCKET)
        };
    })
    .await?;

    let focus = Jid::new(&format!("focus@auth.{}/focus", prosody.domain()))?;
    let room = BareJid::new(&format!("boardroom@{}", prosody.conference_domain()))?;
    let alice = WebrtcParticipant::join(
        xmpp(&prosody),
        focus.clone(),
        room.clone(),
        "alice",
        person(4, 440.0),
    )
    .await?;
    let bob = WebrtcParticipant::join(
        xmpp(&prosody),
        focus.clone(),
        room.clone(),
        "bob",
        person(6, 880.0),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Requests go to the focus in the room.
    let focus_in_room = Jid::new(&format!("{room}/focus"))?;
    let started = Instant::now();
    let answer = jibri(&alice, &focus_in_room, JibriIq::start(RecordingMode::File)).await?;
    ensure!(
        answer.status == Some(Status::Pending),
        "start answered {answer:?}"
    );
    tracing::info!(?answer, "recording requested");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let carol = WebrtcParticipant::join(
        xmpp(&prosody),
        focus.clone(),
        room.clone(),
        "carol",
        person(5, 660.0),
    )
    .await?;
    let carol_joined = started.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let answer = jibri(&alice, &focus_in_room, JibriIq::stop("any")).await?;
    let span = started.elapsed();
    tracing::info!(?answer, ?span, "recording stopped");

    // The object and its metadata appear once the recorder has finalized.
    let deadline = Instant::now() + Duration::from_secs(40);
    let (key, json) = loop {
        let list = moto.list(BUCKET).await?;
        let mp4 = list.keys().find(|k| k.ends_with(".mp4")).cloned();
        let meta = list.keys().find(|k| k.ends_with(".json")).cloned();
        if let (Some(k), Some(j)) = (mp4, meta) {
            break (k, j);
        }
        if Instant::now() > deadline {
            bail!("no recording in the bucket: {list:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("recording.mp4");
    let bytes = moto.get_object(BUCKET, &key).await?;
    tracing::info!(%key, bytes = bytes.len(), "recording in S3");
    std::fs::write(&file, &bytes)?;

    let p = probe(&file)?;
    let duration = p.duration;
    tracing::info!(
        video = ?p.video, width = p.width, height = p.height, fps = p.fps,
        audio = ?p.audio, duration, span = span.as_secs_f64(),
        "ffprobe"
    );
    ensure!(
        p.video.as_deref() == Some("h264"),
        "video codec {:?}",
        p.video
    );
    ensure!(
        p.width == 1280 && p.height == 720,
        "size {}x{}",
        p.width,
        p.height
    );
    ensure!((p.fps - 30.0).abs() < 1.5, "frame rate {}", p.fps);
    ensure!(
        p.audio.as_deref() == Some("aac"),
        "audio codec {:?}",
        p.audio
    );
    ensure!(
        (duration - span.as_secs_f64()).abs() <= 1.0,
        "duration {duration:.2} s against a span of {:.2} s",
        span.as_secs_f64()
    );

    // Colours: red and blue before carol, green too after.
    let before = colours(&frame(&file, carol_joined.as_secs_f64() - 2.0)?);
    let after = colours(&frame(&file, duration - 2.0)?);
    tracing::info!(?before, ?after, "share of red, green, blue pixels");
    ensure!(
        before[0] > 0.01 && before[2] > 0.01,
        "alice and bob before carol: {before:?}"
    );
    ensure!(before[1] < 0.001, "no green before carol: {before:?}");
    ensure!(
        after.iter().all(|c| *c > 0.01),
        "everyone after carol joined: {after:?}"
    );

    // Audio: both tones, well above a frequency nobody sends.
    let samples = audio(&file)?;
    let mid = &samples[samples.len() / 4..samples.len() / 2];
    let (a440, a880, a1234) = (
        power(mid, 16000.0, 440.0),
        power(mid, 16000.0, 880.0),
        power(mid, 16000.0, 1234.0),
    );
    tracing::info!(a440, a880, a1234, "tone power");
    ensure!(
        a440 > 20.0 * a1234 && a880 > 20.0 * a1234,
        "tones: 440 {a440}, 880 {a880}, 1234 {a1234}"
    );

    // The metadata.
    let meta: serde_json::Value = serde_json::from_slice(&moto.get_object(BUCKET, &json).await?)?;
    tracing::info!(%meta, "metadata");
    let names: Vec<&str> = meta["participants"]
        .as_array()
        .context("participants")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for who in ["alice", "bob", "carol"] {
        ensure!(
            names.contains(&who),
            "{who} missing from the metadata: {names:?}"
        );
    }
    ensure!(meta["room"] == room.to_string(), "room {}", meta["room"]);

    drop((alice, bob, carol));
    recorder.stop().await;
    sfu.end().await;
    Ok(())
}
