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
use tests::meeting::{xmpp_as, InProcessSfu};
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
    let dist = tests::page::ensure_built()?;
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let websocket = prosody.websocket_url();
    let sfu = InProcessSfu::start(&prosody, |c| {
        c.http.web_root = dist.to_string_lossy().into_owned();
        c.http.xmpp_websocket = websocket;
    })
    .await;

    let folder = tempfile::tempdir()?;
    let pool_account = prosody.register_service("recorder1")?;
    let meeting_account = prosody.register_recorder("recorder1")?;
    let mut config = recorder::Config {
        xmpp: xmpp_as(&prosody, Some(&pool_account)),
        ..recorder::Config::default()
    };
    config.meeting.jid = meeting_account.jid();
    config.meeting.password = meeting_account.password.clone();
    config.http.listen = String::new();
    config.storage = recorder::upload::Destination::local(folder.path());
    config.apply_env();
    let (stop_recorder, stopped) = tokio::sync::oneshot::channel::<()>();
    let recorder = tokio::spawn(recorder::run(config, async move {
        let _ = stopped.await;
    }));

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
        let files: Vec<std::path::PathBuf> = walk(folder.path());
        let mp4 = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "mp4"))
            .cloned();
        let meta = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .cloned();
        if let (Some(a), Some(b)) = (mp4, meta) {
            break (a, b);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no recording in {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(&mp4)
        .output()?;
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let streams = probe["streams"].as_array().context("streams")?;
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .context("video")?;
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .context("audio")?;
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    tracing::info!(file = %mp4.display(), duration, video = %video["codec_name"], audio = %audio["codec_name"], "recorded");
    ensure!(
        video["codec_name"] == "h264" && video["width"] == 1280 && video["height"] == 720,
        "{video}"
    );
    ensure!(audio["codec_name"] == "aac", "{audio}");
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
    let _ = stop_recorder.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), recorder).await;
    sfu.end().await;
    Ok(())
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
