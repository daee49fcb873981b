//! A real Chromium in the media plane: two pages of one headless Chromium
//! (tests/web/plane_peer.mjs, fake 1280x720 camera and fake microphone)
//! answer the plane's own offers as "alice" and "bob". Each sends its camera
//! as the three simulcast layers the offer asks for (`l;m;h`, 320x180,
//! 640x360, 1280x720 in VP8), and each decodes the other's video and receives
//! the other's audio from its receive slots. Bob then asks over his bridge
//! channel (a WebSocket his page opens) for 180p, 720p and 180p of alice's
//! video and must decode that size within 2 s each time.
//!
//! The figures come from Chromium's own getStats (outbound-rtp per rid,
//! inbound-rtp per mid), polled by the node script every 100 ms and read
//! here as JSON lines; the assertions are made here, on those figures.
//!
//! The offer goes to Chromium exactly as the plane writes it. Its mids must
//! be the MIDs str0m puts in the RTP header extension (ASCII letters, digits
//! and `_`), or Chromium drops every forwarded packet
//! ([`the_plane_offers_the_mids_it_sends`] pins that).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use sfu::plane::PlaneEvent;
use str0m::media::Mid;
use tests::node::NodeScript;
use tokio::time::Instant;

const ROOM: &str = "room@conference.meet.test";
const PEERS: [&str; 2] = ["alice", "bob"];
/// The simulcast layers the plane offers, lowest first: rid, frame height
/// of a 1280x720 camera scaled down by 4, 2 and 1.
const LAYERS: [(&str, u32); 3] = [("l", 180), ("m", 360), ("h", 720)];

fn key(nick: &str) -> String {
    format!("{ROOM}/{nick}")
}

/// The mid str0m writes in the RTP MID header extension for an offered
/// `a=mid` (str0m's `Mid` turns every non-alphanumeric character into `_`).
fn mid_on_wire(mid: &str) -> String {
    Mid::from(mid).to_string()
}

/// One outbound-rtp entry of Chromium's getStats.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Outbound {
    kind: String,
    rid: Option<String>,
    frames_encoded: Option<u64>,
    frame_width: Option<u32>,
    frame_height: Option<u32>,
    quality_limitation_reason: Option<String>,
    codec: Option<String>,
    packets_sent: Option<u64>,
    key_frames_encoded: Option<u64>,
    pli_count: Option<u64>,
    nack_count: Option<u64>,
}

/// One inbound-rtp entry of Chromium's getStats.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Inbound {
    kind: String,
    mid: Option<String>,
    packets_received: u64,
    frames_decoded: Option<u64>,
    frame_width: Option<u32>,
    frame_height: Option<u32>,
    total_audio_energy: Option<f64>,
}

/// One page's getStats, as the node script sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Stats {
    /// Milliseconds since the page answered.
    t: u64,
    state: String,
    outbound: Vec<Outbound>,
    inbound: Vec<Inbound>,
}

impl Stats {
    fn outbound_video(&self, rid: &str) -> Option<&Outbound> {
        self.outbound
            .iter()
            .find(|o| o.kind == "video" && o.rid.as_deref() == Some(rid))
    }

    fn inbound(&self, mid: &str) -> Option<&Inbound> {
        self.inbound.iter().find(|i| i.mid.as_deref() == Some(mid))
    }
}

/// What the node script says on stdout.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Report {
    Ready {
        version: String,
    },
    Answer {
        peer: String,
        sdp: String,
        encodings: Value,
    },
    Channel {
        peer: String,
    },
    Stats {
        peer: String,
        #[serde(flatten)]
        stats: Stats,
    },
    Error {
        peer: Option<String>,
        what: String,
        message: String,
    },
    Log {
        peer: Option<String>,
        text: String,
    },
}

/// The node script driving Chromium, and what it reported so far.
struct Browser {
    script: NodeScript<Report>,
    /// Every stats report per peer, oldest first.
    history: HashMap<String, Vec<Stats>>,
}

impl Browser {
    fn start() -> Result<Browser> {
        let script = NodeScript::start("plane_peer.mjs", &[], |text| Report::Log {
            peer: None,
            text,
        })?;
        Ok(Browser {
            script,
            history: HashMap::new(),
        })
    }

    fn send(&mut self, command: Value) -> Result<()> {
        self.script.send(&command)
    }

    /// Takes the next report: stats are kept (None), logs logged (None),
    /// an error report or the `deadline` fails.
    async fn next(&mut self, deadline: Instant) -> Result<Option<Report>> {
        let report = self.script.recv(deadline).await?;
        match report {
            Report::Stats { peer, stats } => {
                self.history.entry(peer).or_default().push(stats);
                Ok(None)
            }
            Report::Log { peer, text } => {
                tracing::info!(?peer, "chromium: {text}");
                Ok(None)
            }
            Report::Error {
                peer,
                what,
                message,
            } => bail!("chromium ({peer:?}, {what}): {message}"),
            other => Ok(Some(other)),
        }
    }

    /// Waits for a report that is not stats.
    async fn expect(&mut self, timeout: Duration) -> Result<Report> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(report) = self.next(deadline).await? {
                return Ok(report);
            }
        }
    }

    /// Waits until `check` finds what it looks for in the stats so far;
    /// the error shows the last stats of every peer.
    async fn until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&HashMap<String, Vec<Stats>>) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(&self.history) {
                return Ok(found);
            }
            if let Err(e) = self.next(deadline).await {
                let last: Vec<_> = self
                    .history
                    .iter()
                    .map(|(p, h)| format!("{p}: {:?}", h.last()))
                    .collect();
                bail!("{what}: {e}\nlast stats:\n{}", last.join("\n"));
            }
        }
    }

    /// Closes Chromium and waits for the script to end.
    fn quit(self) {
        self.script.quit();
    }
}

/// The value of `f` now and about `span` earlier in `history`, if both exist.
fn now_and_before<T: Copy>(
    history: &[Stats],
    span: Duration,
    f: impl Fn(&Stats) -> Option<T>,
) -> Option<(T, T)> {
    let last = history.last()?;
    let earlier = history
        .iter()
        .rev()
        .find(|s| last.t.saturating_sub(s.t) >= span.as_millis() as u64)?;
    Some((f(earlier)?, f(last)?))
}

/// The inbound video Chromium decodes on `slot`, in the last stats of `nick`.
fn decoding<'a>(h: &'a HashMap<String, Vec<Stats>>, nick: &str, slot: &str) -> Option<&'a Inbound> {
    h.get(nick)?
        .last()?
        .inbound(slot)
        .filter(|i| i.kind == "video" && i.frames_decoded.unwrap_or(0) > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sends_three_layers_and_receives_the_chosen_one() -> Result<()> {
    tests::init_logs();
    let started = Instant::now();
    let (plane, mut events, channels, http) = tests::plane::start_with_channels(2, 2).await?;
    let mut browser = Browser::start()?;
    match browser.expect(Duration::from_secs(15)).await? {
        Report::Ready { version } => tracing::info!(version, "chromium up"),
        other => bail!("expected ready, got {other:?}"),
    }

    // Each page answers the plane's offer, with the three layers it asks for.
    for nick in PEERS {
        let offer = plane.create_endpoint(ROOM, &key(nick)).await?;
        browser.send(json!({"type": "offer", "peer": nick, "sdp": offer}))?;
        let (sdp, encodings) = match browser.expect(Duration::from_secs(10)).await {
            Ok(Report::Answer {
                peer,
                sdp,
                encodings,
            }) if peer == nick => (sdp, encodings),
            Ok(other) => bail!("expected {nick}'s answer, got {other:?}"),
            Err(e) => bail!("{nick} did not answer: {e}\noffer:\n{offer}"),
        };
        tracing::info!(nick, %encodings, "video sender encodings");
        tracing::debug!(nick, "answer:\n{sdp}");
        let rids: Vec<(&str, f64)> = encodings["after"]
            .as_array()
            .context("encodings")?
            .iter()
            .map(|e| {
                let rid = e["rid"].as_str().unwrap_or("");
                (rid, e["scaleResolutionDownBy"].as_f64().unwrap_or(0.0))
            })
            .collect();
        assert_eq!(
            rids,
            [("l", 4.0), ("m", 2.0), ("h", 1.0)],
            "{nick}'s video encodings"
        );
        assert!(
            sdp.contains(
                "a=rid:l send\r\na=rid:m send\r\na=rid:h send\r\na=simulcast:send l;m;h\r\n"
            ),
            "{nick}'s answer has no three-layer simulcast:\n{sdp}"
        );
        plane
            .accept_answer(&key(nick), &sdp)
            .await
            .with_context(|| format!("{nick}'s answer:\n{sdp}"))?;
    }

    // ICE and DTLS complete with both.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut connected = Vec::new();
    while connected.len() < PEERS.len() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(PlaneEvent::Connected { endpoint })) => connected.push(endpoint),
            Ok(Some(other)) => bail!("plane: {other:?}"),
            Ok(None) => bail!("the plane stopped"),
            Err(_) => bail!(
                "only {connected:?} connected; browser stats: {:?}",
                browser
                    .history
                    .values()
                    .filter_map(|h| h.last())
                    .collect::<Vec<_>>()
            ),
        }
    }
    connected.sort();
    assert_eq!(connected, [key("alice"), key("bob")]);
    tracing::info!(took = ?started.elapsed(), "both connected");

    // Bob's page opens his bridge channel, as the focus would tell it to.
    channels.expect(ROOM, &key("bob"), "pwd");
    let url = format!("ws://{http}{}", channels.path(ROOM, &key("bob"), "pwd"));
    browser.send(json!({"type": "channel", "peer": "bob", "url": url}))?;
    match browser.expect(Duration::from_secs(5)).await? {
        Report::Channel { peer } if peer == "bob" => {}
        other => bail!("expected bob's channel, got {other:?}"),
    }
    let ask = |browser: &mut Browser, height: u32| {
        browser.send(json!({
            "type": "send",
            "peer": "bob",
            "message": {
                "colibriClass": "ReceiverVideoConstraints",
                "defaultConstraints": {"maxHeight": height}
            }
        }))
    };

    // Each page encodes the three layers in VP8 at their sizes, frames rising.
    let layers = browser
        .until(
            "three layers encoded by both",
            Duration::from_secs(15),
            |h| {
                let mut seen = Vec::new();
                for nick in PEERS {
                    let hist = h.get(nick)?;
                    for (rid, height) in LAYERS {
                        let (before, now) = now_and_before(hist, Duration::from_secs(1), |s| {
                            s.outbound_video(rid)?.frames_encoded
                        })?;
                        let last = hist.last()?.outbound_video(rid)?;
                        let vp8 = last.codec.as_deref() == Some("video/VP8");
                        if now < before + 5 || last.frame_height != Some(height) || !vp8 {
                            return None;
                        }
                        seen.push((nick, rid, last.frame_width?, height, now - before));
                    }
                }
                Some(seen)
            },
        )
        .await?;
    tracing::info!(?layers, took = ?started.elapsed(), "encoded (nick, rid, width, height, frames/s)");
    for (_, _, width, height, _) in &layers {
        assert_eq!(width * 9, height * 16, "16:9 layers: {layers:?}");
    }

    // Each decodes the other's video from its first video slot and gets
    // the other's audio on its audio line (audio slot 0), with energy.
    let slot = "video_1".to_owned();
    let received = browser
        .until(
            "each decodes the other's video and gets audio",
            Duration::from_secs(10),
            |h| {
                let mut seen = Vec::new();
                for nick in PEERS {
                    let hist = h.get(nick)?;
                    let (f0, f1) = now_and_before(hist, Duration::from_secs(1), |s| {
                        s.inbound(&slot)?.frames_decoded
                    })?;
                    let (p0, p1) = now_and_before(hist, Duration::from_secs(1), |s| {
                        Some(s.inbound("audio")?.packets_received)
                    })?;
                    let energy = hist.last()?.inbound("audio")?.total_audio_energy?;
                    if f1 < f0 + 5 || p1 < p0 + 25 || energy <= 0.0 {
                        return None;
                    }
                    seen.push((nick, f1 - f0, p1 - p0, energy));
                }
                Some(seen)
            },
        )
        .await?;
    tracing::info!(
        ?received,
        "received (nick, frames/s, audio packets/s, audio energy)"
    );

    // Bob asks for 180p of alice: he decodes 320x180.
    let height_is = |height: u32| {
        let slot = slot.clone();
        move |h: &HashMap<String, Vec<Stats>>| {
            let v = decoding(h, "bob", &slot)?;
            (v.frame_height == Some(height)).then_some((v.frame_width, v.frames_decoded))
        }
    };
    ask(&mut browser, 180)?;
    let (width, _) = browser
        .until("bob decodes 180p", Duration::from_secs(3), height_is(180))
        .await?;
    assert_eq!(width, Some(320));

    // Then 720p: 1280x720 within 2 s, and it keeps coming.
    let asked = Instant::now();
    ask(&mut browser, 720)?;
    let (width, frames) = browser
        .until("bob decodes 720p", Duration::from_secs(4), height_is(720))
        .await?;
    let up = asked.elapsed();
    tracing::info!(?up, "bob switched to 720p");
    assert!(up < Duration::from_secs(2), "switched up in {up:?}");
    assert_eq!(width, Some(1280));
    // 720p keeps coming: ten more frames at that size (about 0.5 s at the
    // fake camera's rate), the height never changing on the way.
    let first = frames.unwrap_or(0);
    let more = browser
        .until("bob keeps decoding 720p", Duration::from_secs(2), |h| {
            let v = decoding(h, "bob", &slot)?;
            let n = v.frames_decoded? - first;
            assert_eq!(v.frame_height, Some(720), "after {n} frames at 720p");
            (n >= 10).then_some(n)
        })
        .await?;
    tracing::info!(more, "frames at 720p");

    // And back to 180p.
    let asked = Instant::now();
    ask(&mut browser, 180)?;
    browser
        .until("bob back at 180p", Duration::from_secs(4), height_is(180))
        .await?;
    let down = asked.elapsed();
    tracing::info!(?down, "bob switched to 180p");
    assert!(down < Duration::from_secs(2), "switched down in {down:?}");

    let stats = plane.stats().await;
    tracing::info!(?stats, took = ?started.elapsed(), "plane");
    assert_eq!(stats.forwarding_errors, 0);
    let quality: Vec<_> = PEERS
        .iter()
        .filter_map(|p| Some((p, browser.history.get(*p)?.last()?)))
        .flat_map(|(p, s)| s.outbound.iter().map(move |o| (p, o)))
        .filter(|(_, o)| o.kind == "video")
        .map(|(p, o)| {
            (
                p,
                o.rid.clone(),
                o.quality_limitation_reason.clone(),
                o.key_frames_encoded,
                o.pli_count,
            )
        })
        .collect();
    tracing::info!(
        ?quality,
        "outbound (nick, rid, limitation, keyframes, plis)"
    );
    browser.quit();
    Ok(())
}

/// The plane's offer must name each line with the mid str0m puts in that
/// line's RTP MID header extension, or browsers drop the packets.
#[tokio::test]
async fn the_plane_offers_the_mids_it_sends() -> Result<()> {
    let (plane, _events, _channels, _http) = tests::plane::start_with_channels(2, 2).await?;
    let offer = plane.create_endpoint(ROOM, &key("carol")).await?;
    let mids: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=mid:"))
        .collect();
    assert_eq!(mids.len(), 5, "{offer}");
    for mid in mids {
        assert_eq!(mid_on_wire(mid), mid, "a=mid:{mid} goes out as another MID");
    }
    Ok(())
}
