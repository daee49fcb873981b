//! People on the meeting page in one headless Chromium, driven by
//! `tests/web/meeting_pages.mjs`: [`Browsers::start`] opens one page per
//! [`PageSpec`] and joins (or is refused); every page then reports its
//! [`Stats`] (getStats and what its DOM shows) four times a second, kept in
//! [`Browsers::history`]; commands (mic loudness, moderator buttons,
//! screenshots) go through [`Browsers::command`].

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::node::NodeScript;

/// One person: where they go and what they set in the lobby.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PageSpec {
    pub url: String,
    /// Typed into the lobby; `None` when a token names the person.
    pub name: Option<String>,
    /// Turns end-to-end encryption on with this passphrase.
    pub passphrase: Option<String>,
    /// The microphone's tone (Hz) and loudness (0..1); defaults 440+110·i, 0.5.
    pub tone: Option<f32>,
    pub gain: Option<f32>,
    /// The lobby's other options.
    pub options: PageOptions,
}

/// The lobby's options a page sets before joining.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageOptions {
    /// High-quality audio (no echo cancellation etc., stereo Opus).
    pub hq_audio: bool,
    /// Send 1080p.
    pub hd: bool,
}

impl PageSpec {
    pub fn named(url: &str, name: &str) -> PageSpec {
        PageSpec {
            url: url.to_string(),
            name: Some(name.to_string()),
            ..PageSpec::default()
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Inbound {
    pub kind: String,
    pub mid: Option<String>,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub frames_received: Option<u64>,
    pub frames_decoded: Option<u64>,
    pub frames_dropped: Option<u64>,
    pub key_frames_decoded: Option<u64>,
    pub frame_width: Option<u32>,
    pub frame_height: Option<u32>,
    pub total_audio_energy: Option<f64>,
}

/// One simulcast layer the page sends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Outbound {
    pub rid: Option<String>,
    pub frames_sent: Option<u64>,
    pub frame_height: Option<u32>,
    /// "none", "cpu" or "bandwidth": why the encoder sends less.
    pub quality_limitation_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tile {
    pub nick: String,
    pub remote: bool,
    pub name: String,
    pub has_video: bool,
    pub stage: bool,
    /// The dominant speaker's ring.
    pub speaking: bool,
    pub audio_muted: bool,
    pub phone: bool,
    pub video_width: u32,
    pub video_height: u32,
}

/// One page at one moment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Stats {
    /// Milliseconds since the pages joined.
    pub t: u64,
    pub state: String,
    pub inbound: Vec<Inbound>,
    /// The page's own video layers, as sent.
    pub outbound: Vec<Outbound>,
    pub tiles: Vec<Tile>,
    /// The lobby's error line, when shown.
    pub error: Option<String>,
    pub ended: bool,
    pub ended_why: Option<String>,
    pub in_meeting: bool,
    pub moderator_controls: bool,
    /// The Recording/Live badge's text, when shown.
    pub badge: Option<String>,
    pub e2ee_badge: bool,
    pub mic_on: bool,
    pub notices: Vec<String>,
    /// The dial-in dialog, while open.
    pub dial_in: Option<DialIn>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DialIn {
    pub numbers: Vec<String>,
    pub pin: String,
}

/// The height of the highest video layer a page sent between its last two
/// reports (a layer the encoder paused, for CPU or bandwidth, does not count).
pub fn top_sent_height(history: &[Stats]) -> Option<u32> {
    let [.., before, last] = history else {
        return None;
    };
    last.outbound
        .iter()
        .filter(|o| {
            let was = before
                .outbound
                .iter()
                .find(|b| b.rid == o.rid)
                .and_then(|b| b.frames_sent);
            o.frames_sent > was
        })
        .filter_map(|o| o.frame_height)
        .max()
}

impl Stats {
    /// Frames decoded per video mid.
    pub fn frames(&self) -> HashMap<String, u64> {
        self.video()
            .filter_map(|i| Some((i.mid.clone()?, i.frames_decoded.unwrap_or(0))))
            .collect()
    }

    pub fn video(&self) -> impl Iterator<Item = &Inbound> {
        self.inbound.iter().filter(|i| i.kind == "video")
    }

    /// Audio packets received on every audio line.
    pub fn audio_packets(&self) -> u64 {
        self.audio().map(|i| i.packets_received).sum()
    }

    /// Audio energy received on every audio line (getStats'
    /// totalAudioEnergy, summed).
    pub fn audio_energy(&self) -> f64 {
        self.audio().filter_map(|i| i.total_audio_energy).sum()
    }

    fn audio(&self) -> impl Iterator<Item = &Inbound> {
        self.inbound.iter().filter(|i| i.kind == "audio")
    }

    /// Our own tile's nick (the page's MUC nick).
    pub fn own_nick(&self) -> Option<&str> {
        self.tiles
            .iter()
            .find(|t| !t.remote)
            .map(|t| t.nick.as_str())
    }

    /// The nick on stage, if any.
    pub fn stage(&self) -> Option<&str> {
        self.tiles.iter().find(|t| t.stage).map(|t| t.nick.as_str())
    }
}

/// The stats about `span` before the last one.
pub fn earlier(history: &[Stats], span: Duration) -> Option<&Stats> {
    let last = history.last()?;
    history
        .iter()
        .rev()
        .find(|s| last.t.saturating_sub(s.t) >= span.as_millis() as u64)
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Report {
    Ready {
        version: String,
    },
    Joined {
        page: usize,
    },
    Refused {
        page: usize,
        message: String,
    },
    Stats {
        page: usize,
        #[serde(flatten)]
        stats: Box<Stats>,
    },
    Done {
        id: Option<u64>,
        #[serde(default)]
        value: serde_json::Value,
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

/// How each page came out of the lobby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Joined,
    Refused(String),
}

pub struct Browsers {
    script: NodeScript<Report>,
    pub history: HashMap<usize, Vec<Stats>>,
    /// Pages whose lobby error is expected (not a failure).
    pub may_refuse: Vec<usize>,
    next_id: u64,
}

impl Browsers {
    /// Opens the pages; returns when each has joined or been refused.
    pub async fn start(pages: &[PageSpec]) -> Result<(Browsers, Vec<Outcome>)> {
        let spec = json!({ "pages": pages }).to_string();
        let script = NodeScript::start("meeting_pages.mjs", &[&spec], |text| Report::Log {
            page: None,
            text,
        })?;
        let mut b = Browsers {
            script,
            history: HashMap::new(),
            may_refuse: (0..pages.len()).collect(),
            next_id: 0,
        };
        match b.expect(Duration::from_secs(15)).await? {
            Report::Ready { version } => tracing::info!(version, "chromium up"),
            other => bail!("expected ready, got {other:?}"),
        }
        let mut outcomes = vec![None; pages.len()];
        while outcomes.iter().any(Option::is_none) {
            match b.expect(Duration::from_secs(40)).await? {
                Report::Joined { page } if page < pages.len() => {
                    outcomes[page] = Some(Outcome::Joined)
                }
                Report::Refused { page, message } if page < pages.len() => {
                    outcomes[page] = Some(Outcome::Refused(message))
                }
                other => bail!("expected joins, got {other:?}"),
            }
        }
        let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
        b.may_refuse = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Outcome::Refused(_)))
            .map(|(i, _)| i)
            .collect();
        Ok((b, outcomes))
    }

    /// The next report that is not stats or a log (those are kept/logged);
    /// an error report, or an error shown by a page that joined, fails.
    async fn next(&mut self, deadline: Instant) -> Result<Option<Report>> {
        match self.script.recv(deadline).await? {
            Report::Stats { page, stats } => {
                if let Some(e) = &stats.error {
                    if !self.may_refuse.contains(&page) {
                        bail!("page {page} shows an error: {e}");
                    }
                }
                self.history.entry(page).or_default().push(*stats);
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

    /// Sends a command (`{"type":..,"page":..,..}`) and waits until it is done.
    pub async fn command(&mut self, mut command: serde_json::Value) -> Result<()> {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = json!(id);
        self.script.send(&command)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.next(deadline).await? {
                Some(Report::Done {
                    id: Some(done),
                    value,
                }) if done == id => {
                    if !value.is_null() {
                        tracing::info!(%value, "command answered");
                    }
                    return Ok(());
                }
                Some(other) => bail!("waiting for {command}: got {other:?}"),
                None => {}
            }
        }
    }

    /// Sets page `page`'s microphone loudness.
    pub async fn gain(&mut self, page: usize, gain: f32) -> Result<()> {
        self.command(json!({"type": "gain", "page": page, "gain": gain}))
            .await
    }

    /// Waits until `check` finds what it looks for in the history.
    pub async fn until<T>(
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

    /// The latest stats of `page` (after at least one report).
    pub async fn latest(&mut self, page: usize) -> Result<Stats> {
        self.until(
            &format!("stats from page {page}"),
            Duration::from_secs(5),
            |h| h.get(&page)?.last().cloned(),
        )
        .await
    }

    /// Keeps the history flowing for `span`.
    pub async fn watch(&mut self, span: Duration) -> Result<()> {
        let deadline = Instant::now() + span;
        loop {
            match self.next(deadline).await {
                Ok(Some(other)) => bail!("unexpected {other:?}"),
                Ok(None) => {}
                Err(_) if Instant::now() >= deadline => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    pub fn quit(self) {
        self.script.quit();
    }
}
