//! Recording from the meeting page, end to end: a private Prosody, the
//! real `sfu` serving the page, the real `recorder` (storing to a local
//! folder, the single-machine default), and two Chromium pages.
//!
//! The moderator (first in) presses Record: both pages show the
//! "Recording" badge, and neither shows the recorder (a hidden
//! participant) as a tile. About 8 s later the moderator presses Record
//! again: the badge goes away, and the folder holds an MP4 that ffprobe
//! reads as H.264 1280x720 + AAC, with the metadata JSON beside it naming
//! both people. A frame from the middle is saved to
//! `target/recording-frame.png`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tests::browsers::{Browsers, Outcome, PageSpec};
use tests::meeting::InProcessSfu;
use tests::recording::{files_with_ext, probe, Recorder};
use tests::{Prosody, ProsodyOptions};

const NAMES: [&str; 2] = ["Ada Lovelace", "Grace Hopper"];

/// Waits until both pages show `badge` (or none) and exactly two tiles.
async fn both_show(browsers: &mut Browsers, badge: Option<&str>) -> Result<()> {
    browsers
        .until(
            &format!("badge {badge:?} and two tiles on both pages"),
            Duration::from_secs(20),
            |h| {
                (0..NAMES.len())
                    .all(|p| {
                        h.get(&p).and_then(|s| s.last()).is_some_and(|s| {
                            s.badge.as_deref() == badge && s.tiles.len() == NAMES.len()
                        })
                    })
                    .then_some(())
            },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_moderator_records_from_the_page() -> Result<()> {
    tests::init_logs();
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let sfu = InProcessSfu::with_page(&prosody, |_| {}).await?;

    // The real recorder, storing to a local folder (the default).
    let recorder = Recorder::start(&prosody, "recorder1", |_| {}).await?;

    let url = format!("http://{}/review", sfu.http);
    let pages: Vec<PageSpec> = NAMES.iter().map(|n| PageSpec::named(&url, n)).collect();
    let (mut browsers, outcomes) = Browsers::start(&pages).await?;
    ensure!(
        outcomes.iter().all(|o| *o == Outcome::Joined),
        "both pages join: {outcomes:?}"
    );
    both_show(&mut browsers, None).await?;

    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#record"}))
        .await?;
    both_show(&mut browsers, Some("Recording")).await?;
    tracing::info!("both pages show Recording, and no recorder tile");
    browsers.watch(Duration::from_secs(8)).await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#record"}))
        .await?;
    both_show(&mut browsers, None).await?;

    // The file and its metadata, once finalized.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mp4, meta) = loop {
        let mp4 = files_with_ext(recorder.dir.path(), "mp4");
        let meta = files_with_ext(recorder.dir.path(), "json");
        if let (Some(a), Some(b)) = (mp4.first(), meta.first()) {
            break (a.clone(), b.clone());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no recording in {}",
            recorder.dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let p = probe(&mp4)?;
    let duration = p.duration;
    tracing::info!(file = %mp4.display(), duration, video = ?p.video, audio = ?p.audio, "recorded");
    ensure!(
        p.video.as_deref() == Some("h264") && p.width == 1280 && p.height == 720,
        "{p:?}"
    );
    ensure!(p.audio.as_deref() == Some("aac"), "{p:?}");
    ensure!(duration > 6.0, "duration {duration}");
    // A frame of the recording, to look at.
    let frame = tests::workspace_root().join("target/recording-frame.png");
    let _ = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-ss",
            &format!("{:.1}", duration / 2.0),
            "-i",
        ])
        .arg(&mp4)
        .args(["-frames:v", "1"])
        .arg(&frame)
        .status();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta)?)?;
    let names: Vec<&str> = meta["participants"]
        .as_array()
        .context("participants")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in NAMES {
        ensure!(names.contains(&n), "{n} missing from {names:?}");
    }

    browsers.quit();
    recorder.stop().await;
    sfu.end().await;
    Ok(())
}
