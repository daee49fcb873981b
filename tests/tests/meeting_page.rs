//! The meeting page in real browsers: a private Prosody, the real `sfu` in
//! process serving the built page (`web/dist`) and relaying its XMPP to
//! Prosody, and three pages of one headless Chromium (fake camera and
//! microphone, tests/web/page_meeting.mjs) that open `/standup`, type a
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

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::json;
use tests::meeting::InProcessSfu;
use tests::node::NodeScript;
use tests::{Prosody, ProsodyOptions};
use tokio::time::Instant;

const NAMES: [&str; 3] = ["Ada Lovelace", "Grace Hopper", "Alan Turing"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Inbound {
    kind: String,
    mid: Option<String>,
    packets_received: u64,
    frames_decoded: Option<u64>,
    frame_width: Option<u32>,
    frame_height: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Tile {
    nick: String,
    remote: bool,
    name: String,
    has_video: bool,
    video_width: u32,
    video_height: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Stats {
    t: u64,
    state: String,
    inbound: Vec<Inbound>,
    tiles: Vec<Tile>,
    error: Option<String>,
    ended: bool,
}

impl Stats {
    /// Frames decoded per video mid.
    fn frames(&self) -> HashMap<String, u64> {
        self.inbound
            .iter()
            .filter(|i| i.kind == "video")
            .filter_map(|i| Some((i.mid.clone()?, i.frames_decoded.unwrap_or(0))))
            .collect()
    }

    /// Audio packets received on every audio line.
    fn audio_packets(&self) -> u64 {
        self.inbound
            .iter()
            .filter(|i| i.kind == "audio")
            .map(|i| i.packets_received)
            .sum()
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Report {
    Ready {
        version: String,
    },
    Joined {
        page: usize,
    },
    Stats {
        page: usize,
        #[serde(flatten)]
        stats: Stats,
    },
    Screenshot {
        path: String,
    },
    Error {
        page: Option<usize>,
        what: String,
        message: String,
    },
    Log {
        page: Option<usize>,
        text: String,
    },
}

/// The node script driving Chromium.
struct Browsers {
    script: NodeScript<Report>,
    history: HashMap<usize, Vec<Stats>>,
}

impl Browsers {
    fn start(url: &str) -> Result<Browsers> {
        let mut args = vec![url];
        args.extend(NAMES);
        let script = NodeScript::start("page_meeting.mjs", &args, |text| Report::Log {
            page: None,
            text,
        })?;
        Ok(Browsers {
            script,
            history: HashMap::new(),
        })
    }

    fn send(&mut self, command: serde_json::Value) -> Result<()> {
        self.script.send(&command)
    }

    /// The next report that is not stats or a log (those are kept/logged);
    /// an error report fails.
    async fn next(&mut self, deadline: Instant) -> Result<Option<Report>> {
        let report = self.script.recv(deadline).await?;
        match report {
            Report::Stats { page, stats } => {
                if let Some(e) = &stats.error {
                    bail!("page {page} shows an error: {e}");
                }
                if stats.ended {
                    bail!("page {page} left the meeting on its own");
                }
                self.history.entry(page).or_default().push(stats);
                Ok(None)
            }
            Report::Log { page, text } => {
                tracing::info!(?page, "chromium: {text}");
                Ok(None)
            }
            Report::Error {
                page,
                what,
                message,
            } => bail!("chromium (page {page:?}, {what}): {message}"),
            other => Ok(Some(other)),
        }
    }

    async fn expect(&mut self, timeout: Duration) -> Result<Report> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.next(deadline).await? {
                return Ok(r);
            }
        }
    }

    /// Waits until `check` finds what it looks for in the history.
    async fn until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&HashMap<usize, Vec<Stats>>) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(&self.history) {
                return Ok(found);
            }
            if let Err(e) = self.next(deadline).await {
                let mut last: Vec<_> = self
                    .history
                    .iter()
                    .map(|(p, h)| format!("page {p}: {:#?}", h.last()))
                    .collect();
                last.sort();
                bail!("{what}: {e}\nlast stats:\n{}", last.join("\n"));
            }
        }
    }

    fn quit(self) {
        self.script.quit();
    }
}

/// The stats about `span` before the last one.
fn earlier(history: &[Stats], span: Duration) -> Option<&Stats> {
    let last = history.last()?;
    history
        .iter()
        .rev()
        .find(|s| last.t.saturating_sub(s.t) >= span.as_millis() as u64)
}

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
    let dist = tests::page::ensure_built()?;
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let websocket = prosody.websocket_url();
    let sfu = InProcessSfu::start(&prosody, |c| {
        c.http.web_root = dist.to_string_lossy().into_owned();
        c.http.xmpp_websocket = websocket;
    })
    .await;
    let url = format!("http://{}/standup", sfu.http);
    tracing::info!(%url, took = ?started.elapsed(), "sfu serving the page");

    let mut browsers = Browsers::start(&url)?;
    match browsers.expect(Duration::from_secs(15)).await? {
        Report::Ready { version } => tracing::info!(version, "chromium up"),
        other => bail!("expected ready, got {other:?}"),
    }
    let mut joined = Vec::new();
    while joined.len() < NAMES.len() {
        match browsers.expect(Duration::from_secs(30)).await? {
            Report::Joined { page } => joined.push(page),
            other => bail!("expected joins, got {other:?}"),
        }
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
    browsers.send(json!({"type": "screenshot", "page": 0, "path": shot}))?;
    match browsers.expect(Duration::from_secs(10)).await? {
        Report::Screenshot { path } => tracing::info!(path, "screenshot of page 0"),
        other => bail!("expected the screenshot, got {other:?}"),
    }
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
