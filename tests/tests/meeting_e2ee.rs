//! End-to-end encryption on the meeting page, in real browsers: a private
//! Prosody, the real `sfu` in process serving the page, and three pages of
//! one headless Chromium (tests/web/meeting_pages.mjs). Ada and Grace turn
//! encryption on in the lobby with the same passphrase; Alan does not.
//!
//! - Ada and Grace show the encryption badge and decode each other's video.
//! - Alan receives their video frames and cannot decode them (getStats:
//!   frames received rising, frames decoded staying near zero).
//! - The SFU still switches the layers of an encrypted stream: Grace is on
//!   Ada's stage at 720p while she talks, and falls to a 180p thumbnail when
//!   Alan talks instead (it reads only the clear VP8 header bytes).
//! - The focus refuses recording and dial-out while anyone encrypts, and
//!   Ada's page shows why.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use tests::browsers::{top_sent_height, Browsers, Outcome, PageSpec, Stats};
use tests::meeting::InProcessSfu;
use tests::{Prosody, ProsodyOptions};

const PASSPHRASE: &str = "correct horse battery staple";

/// The video height `page` shows on the tile of `nick` (0 while none).
fn tile_height(
    h: &std::collections::HashMap<usize, Vec<Stats>>,
    page: usize,
    nick: &str,
) -> Option<u32> {
    let last = h.get(&page)?.last()?;
    last.tiles
        .iter()
        .find(|t| t.nick == nick)
        .map(|t| t.video_height)
}

/// Sets who talks: `talker` loud, everyone else silent.
async fn talk(browsers: &mut Browsers, talker: usize) -> Result<()> {
    for page in 0..3 {
        browsers
            .gain(page, if page == talker { 0.8 } else { 0.0 })
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_media_reaches_only_those_with_the_passphrase() -> Result<()> {
    tests::init_logs();
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let sfu = InProcessSfu::with_page(&prosody, |_| {}).await?;
    let url = format!("http://{}/board", sfu.http);
    let secret = |name: &str| PageSpec {
        passphrase: Some(PASSPHRASE.into()),
        gain: Some(0.0),
        ..PageSpec::named(&url, name)
    };
    let pages = [
        secret("Ada Lovelace"),
        secret("Grace Hopper"),
        PageSpec {
            gain: Some(0.0),
            ..PageSpec::named(&url, "Alan Turing")
        },
    ];
    let (mut browsers, outcomes) = Browsers::start(&pages).await?;
    ensure!(
        outcomes.iter().all(|o| *o == Outcome::Joined),
        "every page should join: {outcomes:?}"
    );
    let mut nicks = Vec::new();
    for page in 0..3 {
        let stats = browsers.latest(page).await?;
        ensure!(
            stats.e2ee_badge == (page < 2),
            "page {page}: encryption badge {}",
            stats.e2ee_badge
        );
        nicks.push(stats.own_nick().unwrap_or_default().to_string());
    }

    // Grace talks: on Ada's stage, decoded at 720p.
    talk(&mut browsers, 1).await?;
    browsers
        .until(
            "Ada decodes Grace on stage at 720p",
            Duration::from_secs(30),
            |h| {
                let last = h.get(&0)?.last()?;
                (last.stage() == Some(&nicks[1]) && tile_height(h, 0, &nicks[1])? == 720)
                    .then_some(())
            },
        )
        .await?;
    browsers
        .until("Grace decodes Ada's video", Duration::from_secs(15), |h| {
            (tile_height(h, 1, &nicks[0])? > 0).then_some(())
        })
        .await?;

    // Alan receives their frames and cannot decode them.
    browsers.watch(Duration::from_secs(4)).await?;
    let alan = browsers.latest(2).await?;
    let received: Vec<(u64, u64, u64)> = alan
        .video()
        .filter(|i| i.frames_received.unwrap_or(0) > 0)
        .map(|i| {
            (
                i.frames_received.unwrap_or(0),
                i.frames_decoded.unwrap_or(0),
                i.bytes_received,
            )
        })
        .collect();
    tracing::info!(
        ?received,
        "Alan's video slots (frames received, decoded, bytes)"
    );
    ensure!(
        received.len() == 2,
        "Alan should receive both encrypted videos: {received:?}"
    );
    for (frames, decoded, _) in &received {
        ensure!(
            *frames >= 30 && *decoded * 10 <= *frames,
            "Alan should receive frames he cannot decode: {received:?}"
        );
    }
    let alan_tiles: Vec<(String, u32)> = alan
        .tiles
        .iter()
        .filter(|t| t.remote)
        .map(|t| (t.name.clone(), t.video_height))
        .collect();
    tracing::info!(?alan_tiles, "Alan's tiles (name, video height)");

    // Alan talks: Grace leaves Ada's stage; her encrypted stream switches
    // down to the thumbnail's 180p.
    talk(&mut browsers, 2).await?;
    browsers
        .until(
            "Ada decodes Grace as a 180p thumbnail",
            Duration::from_secs(15),
            |h| {
                let last = h.get(&0)?.last()?;
                (last.stage() == Some(&nicks[2]) && tile_height(h, 0, &nicks[1])? == 180)
                    .then_some(())
            },
        )
        .await?;
    // Back on stage, Grace is forwarded at the top layer her browser sends:
    // 720p, unless her encoder paused it (a loaded machine makes Chromium
    // drop its top simulcast layer for CPU), which the reports say.
    talk(&mut browsers, 1).await?;
    let (height, sent) = browsers
        .until(
            "Ada decodes Grace at her top layer again",
            Duration::from_secs(20),
            |h| {
                let sent = top_sent_height(h.get(&1)?)?;
                let height = tile_height(h, 0, &nicks[1])?;
                (height > 180 && height >= sent).then_some((height, sent))
            },
        )
        .await?;
    let grace = browsers.latest(1).await?;
    tracing::info!(height, sent, outbound = ?grace.outbound, "Grace back on Ada's stage");

    // Recording and dial-out are refused while media is encrypted.
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#record"}))
        .await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#dial-out"}))
        .await?;
    browsers
        .command(
            json!({"type": "fill", "page": 0, "selector": "#dial-number", "value": "+1 555 0100"}),
        )
        .await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#dial-start"}))
        .await?;
    let notices = browsers
        .until("Ada's page says why", Duration::from_secs(10), |h| {
            let n = &h.get(&0)?.last()?.notices;
            let says = |what: &str| {
                n.iter()
                    .any(|t| t.contains(what) && t.contains("end-to-end encryption is on"))
            };
            (says("recording could not start") && says("Could not call")).then(|| n.clone())
        })
        .await?;
    tracing::info!(?notices, "refusals shown");

    browsers.quit();
    sfu.end().await;
    Ok(())
}
