//! The meeting page in real browsers: a private Prosody, the real `sfu` in
//! process serving the built page (`web/dist`) and relaying its XMPP to
//! Prosody, and three pages of one headless Chromium (fake camera and
//! microphone, tests/web/meeting_pages.mjs) that open `/standup`, type a
//! name and press Join, as people would.
//!
//! Each page must then, from its own getStats and DOM:
//! - decode two remote videos (two receive slots with `framesDecoded`
//!   rising by at least 5 over a second), and receive audio (packets on
//!   the audio lines rising by at least 25 over a second);
//! - show one tile per other participant, labelled with that person's
//!   name, playing video (`videoWidth` > 0), and its own tile as
//!   "<name> (you)".
//!
//! A screenshot of the first page is saved to `target/meeting-page.png`.

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;
use tests::browsers::{earlier, Browsers, Outcome, PageSpec, Stats};
use tests::meeting::InProcessSfu;
use tests::{Prosody, ProsodyOptions};
use tokio::time::Instant;

const NAMES: [&str; 3] = ["Ada Lovelace", "Grace Hopper", "Alan Turing"];

/// What one page receives over the last second: (mid, frames/s) of each
/// video slot decoding, and audio packets/s.
fn receiving(history: &[Stats]) -> Option<(Vec<(String, u64)>, u64)> {
    let last = history.last()?;
    let before = earlier(history, Duration::from_secs(1))?;
    let then = before.frames();
    let mut videos: Vec<(String, u64)> = last
        .frames()
        .into_iter()
        .filter_map(|(mid, now)| {
            let rise = now.checked_sub(*then.get(&mid)?)?;
            (rise >= 5).then_some((mid, rise))
        })
        .collect();
    videos.sort();
    let audio = last.audio_packets().saturating_sub(before.audio_packets());
    Some((videos, audio))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_people_meet_on_the_page() -> Result<()> {
    tests::init_logs();
    let started = Instant::now();
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let sfu = InProcessSfu::with_page(&prosody, |_| {}).await?;
    let url = format!("http://{}/standup", sfu.http);
    tracing::info!(%url, took = ?started.elapsed(), "sfu serving the page");

    let pages: Vec<PageSpec> = NAMES.iter().map(|n| PageSpec::named(&url, n)).collect();
    let (mut browsers, outcomes) = Browsers::start(&pages).await?;
    if outcomes.iter().any(|o| *o != Outcome::Joined) {
        bail!("every page should join: {outcomes:?}");
    }
    tracing::info!(took = ?started.elapsed(), "all three joined");

    // Media: two remote videos decoding and audio arriving, on every page.
    let media = browsers
        .until(
            "every page decodes two videos and receives audio",
            Duration::from_secs(45),
            |h| {
                let mut all = Vec::new();
                for page in 0..NAMES.len() {
                    let (videos, audio) = receiving(h.get(&page)?)?;
                    if videos.len() < 2 || audio < 25 {
                        return None;
                    }
                    all.push((page, videos, audio));
                }
                Some(all)
            },
        )
        .await?;
    tracing::info!(?media, took = ?started.elapsed(), "received (page, [(slot, frames/s)], audio packets/s)");
    for (page, videos, _) in &media {
        assert_eq!(videos.len(), 2, "page {page} decodes {videos:?}");
    }

    // The grid: our own tile plus the other two, named and playing video.
    let tiles = browsers
        .until(
            "every page shows the other two by name, with video",
            Duration::from_secs(15),
            |h| {
                let mut all = Vec::new();
                for (page, me) in NAMES.iter().enumerate() {
                    let last = h.get(&page)?.last()?;
                    let own = last.tiles.iter().find(|t| !t.remote)?;
                    if own.name != format!("{me} (you)") {
                        return None;
                    }
                    let mut remote: Vec<(String, u32, u32)> = last
                        .tiles
                        .iter()
                        .filter(|t| t.remote && t.has_video && t.video_width > 0)
                        .map(|t| (t.name.clone(), t.video_width, t.video_height))
                        .collect();
                    remote.sort();
                    let mut expected: Vec<&str> =
                        NAMES.iter().filter(|n| *n != me).copied().collect();
                    expected.sort();
                    let names: Vec<&str> = remote.iter().map(|(n, _, _)| n.as_str()).collect();
                    if names != expected || last.tiles.len() != NAMES.len() {
                        return None;
                    }
                    all.push((page, remote));
                }
                Some(all)
            },
        )
        .await?;
    tracing::info!(?tiles, "tiles (page, [(name, video width, height)])");

    // The layout asks for the stage at 720p and the thumbnail at 180p (three
    // people): each page decodes one remote video of each height.
    let heights = browsers
        .until(
            "every page decodes its stage at 720p and its thumbnail at 180p",
            Duration::from_secs(15),
            |h| {
                let mut all = Vec::new();
                for page in 0..NAMES.len() {
                    let mut got: Vec<u32> = h
                        .get(&page)?
                        .last()?
                        .inbound
                        .iter()
                        .filter(|i| i.kind == "video" && i.frames_decoded.unwrap_or(0) > 0)
                        .filter_map(|i| i.frame_height)
                        .collect();
                    got.sort();
                    if got != [180, 720] {
                        return None;
                    }
                    all.push((page, got));
                }
                Some(all)
            },
        )
        .await?;
    tracing::info!(?heights, took = ?started.elapsed(), "decoded heights (page, heights)");

    // Let the layout settle on the speaker, then keep a picture of it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shot = tests::workspace_root().join("target/meeting-page.png");
    browsers
        .command(json!({"type": "screenshot", "page": 0, "path": shot}))
        .await?;
    tracing::info!(path = %shot.display(), "screenshot of page 0");
    let states: Vec<_> = (0..NAMES.len())
        .filter_map(|p| Some(browsers.history.get(&p)?.last()?.state.clone()))
        .collect();
    assert!(states.iter().all(|s| s == "connected"), "{states:?}");
    let last: Vec<_> = (0..NAMES.len())
        .filter_map(|p| browsers.history.get(&p)?.last())
        .flat_map(|s| s.inbound.iter().filter(|i| i.kind == "video"))
        .filter(|i| i.frames_decoded.unwrap_or(0) > 0)
        .map(|i| (i.mid.clone(), i.frame_width, i.frame_height))
        .collect();
    tracing::info!(?last, took = ?started.elapsed(), "decoded sizes (slot, width, height)");

    browsers.quit();
    sfu.end().await;
    Ok(())
}
