//! Helpers for the recorder's end-to-end tests (`recorder_file`,
//! `recorder_pool`).
//!
//! Contract:
//!
//! - [`RoomClient`] is a signalling-only participant (no media): it asks the
//!   focus for the conference, joins the room, sends Jibri requests to the
//!   focus in the room, and keeps, with arrival times, every change of the
//!   focus's `jibri-recording-status` and the focus leaving — what a
//!   moderator's client shows. Joined anonymously it is an ordinary person
//!   (the first one in becomes moderator); joined with a service account
//!   and the Jibri feature, the focus and the recorder both count it as a
//!   service, so it watches without keeping the room alive.
//! - [`probe`] runs ffprobe on a file and returns what the tests check.
//! - [`Gate`] is a loopback port that refuses connections until
//!   [`Gate::open`] makes it forward to a server (an S3 endpoint that is
//!   down, then back), or, made [`Gate::silent`], accepts and never answers
//!   (an endpoint that hangs).
//! - [`files_with_ext`] lists the files below a folder by extension.
//! - [`Recorder`] runs the real `recorder` in process with its own accounts,
//!   local storage in a temporary folder and `/metrics` on a free port.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use jid::{BareJid, Jid};
use minidom::Element;
use proto::jibri::{JibriIq, RecordingStatus};
use tokio::sync::{mpsc, oneshot, Notify};
use xmpp_session::{Event, Handle, IqError, IqKind};

use crate::{Account, Prosody};

/// How long [`RoomClient::join`] waits for each step.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`RoomClient`] saw of the focus, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct FocusSeen {
    pub at: Instant,
    /// The focus is in the room (false: it left).
    pub present: bool,
    /// Its `jibri-recording-status`, if its presence carries one.
    pub status: Option<RecordingStatus>,
}

#[derive(Default)]
struct Seen {
    log: Mutex<Vec<FocusSeen>>,
    changed: Notify,
}

impl Seen {
    fn push(&self, present: bool, status: Option<RecordingStatus>) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let same = log
            .last()
            .is_some_and(|l| l.present == present && l.status == status);
        if !same {
            tracing::info!(present, ?status, "the focus's recording status");
            log.push(FocusSeen {
                at: Instant::now(),
                present,
                status,
            });
        }
        drop(log);
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> Vec<FocusSeen> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A signalling-only participant; see the module docs. Leaves on drop.
#[must_use = "dropping the client leaves the room"]
pub struct RoomClient {
    handle: Handle,
    focus_in_room: Jid,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RoomClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomClient")
            .field("focus_in_room", &self.focus_in_room)
            .finish()
    }
}

impl RoomClient {
    /// Logs in (anonymously without `account`), asks the focus for `room`,
    /// joins it as `nick` announcing `features`, and returns once in.
    pub async fn join(
        prosody: &Prosody,
        account: Option<&Account>,
        room: &BareJid,
        nick: &str,
        features: &[&str],
    ) -> Result<RoomClient> {
        let (handle, events) = crate::standins::client(prosody, account, &[]);
        let seen = Arc::new(Seen::default());
        let (online_tx, online) = oneshot::channel();
        let (joined_tx, joined) = oneshot::channel();
        let task = tokio::spawn(pump(
            events,
            room.clone(),
            seen.clone(),
            online_tx,
            joined_tx,
        ));
        let client = RoomClient {
            handle,
            focus_in_room: Jid::new(&format!("{room}/focus"))?,
            seen,
            task,
        };
        tokio::time::timeout(JOIN_TIMEOUT, online)
            .await
            .context("login timed out")?
            .context("the client task ended")??;
        let focus = Jid::new(&format!("focus@auth.{}/focus", prosody.domain()))?;
        client
            .handle
            .iq(
                Some(focus),
                IqKind::Set,
                proto::focus::ConferenceIq::request(room.clone()).into(),
                None,
            )
            .await
            .map_err(|e| anyhow!("conference request: {e}"))?;
        let payloads = if features.is_empty() {
            vec![]
        } else {
            vec![proto::presence::Features::new(features.iter().copied()).into()]
        };
        client.handle.join_room(room.clone(), nick, payloads);
        tokio::time::timeout(JOIN_TIMEOUT, joined)
            .await
            .context("joining the room timed out")?
            .context("the client task ended")??;
        Ok(client)
    }

    /// Sends a Jibri request to the focus in the room; its answer.
    pub async fn jibri(&self, iq: JibriIq) -> Result<JibriIq, IqError> {
        let answer = self
            .handle
            .iq(
                Some(self.focus_in_room.clone()),
                IqKind::Set,
                Element::from(iq),
                None,
            )
            .await?;
        Ok(answer
            .and_then(|a| JibriIq::try_from(&a).ok())
            .unwrap_or_default())
    }

    /// Everything seen of the focus so far.
    pub fn seen(&self) -> Vec<FocusSeen> {
        self.seen.snapshot()
    }

    /// The first sighting of the focus (already seen or to come) for which
    /// `f` holds; fails after `timeout` with what was seen.
    pub async fn wait_focus(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&FocusSeen) -> bool,
    ) -> Result<FocusSeen> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.seen.changed.notified();
            if let Some(s) = self.seen.snapshot().into_iter().find(|s| f(s)) {
                return Ok(s);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!("{what}: not within {timeout:?}; seen {:#?}", self.seen());
            }
        }
    }

    /// [`RoomClient::wait_focus`] for a recording status `f` accepts.
    pub async fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&RecordingStatus) -> bool,
    ) -> Result<(Instant, RecordingStatus)> {
        let s = self
            .wait_focus(what, timeout, |s| s.status.as_ref().is_some_and(&f))
            .await?;
        Ok((s.at, s.status.unwrap_or_else(|| unreachable!("matched"))))
    }

    /// Leaves the room and closes the session.
    pub async fn leave(self) {
        self.handle.shutdown().await;
    }
}

impl Drop for RoomClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the client's events: login, our join, the focus's presence.
async fn pump(
    mut events: mpsc::UnboundedReceiver<Event>,
    room: BareJid,
    seen: Arc<Seen>,
    online: oneshot::Sender<Result<()>>,
    joined: oneshot::Sender<Result<()>>,
) {
    let (mut online, mut joined) = (Some(online), Some(joined));
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Online { .. } => {
                if let Some(tx) = online.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Event::RoomJoined { room: r, .. } if r == room => {
                if let Some(tx) = joined.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Event::RoomJoinFailed { room: r, error } if r == room => {
                if let Some(tx) = joined.take() {
                    let _ = tx.send(Err(anyhow!("join refused: {error:?}")));
                }
            }
            Event::OccupantJoined { room: r, occupant }
            | Event::OccupantChanged { room: r, occupant }
                if r == room && occupant.nick == "focus" =>
            {
                let status = occupant
                    .payloads
                    .iter()
                    .find_map(|p| RecordingStatus::try_from(p).ok());
                seen.push(true, status);
            }
            Event::OccupantLeft {
                room: r, occupant, ..
            } if r == room && occupant.nick == "focus" => seen.push(false, None),
            _ => {}
        }
    }
}

/// What ffprobe says about a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `codec_name` of the first video stream.
    pub video: Option<String>,
    /// `codec_name` of the first audio stream.
    pub audio: Option<String>,
    pub width: u64,
    pub height: u64,
    /// The video's average frame rate.
    pub fps: f64,
    /// The container's duration in seconds.
    pub duration: f64,
    /// ffprobe's whole answer.
    pub json: serde_json::Value,
}

/// Runs ffprobe on `file`.
pub fn probe(file: &Path) -> Result<Probe> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(file)
        .output()
        .context("ffprobe (scripts/setup installs ffmpeg)")?;
    ensure!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let stream = |kind: &str| streams.iter().find(|s| s["codec_type"] == kind).cloned();
    let (video, audio) = (stream("video"), stream("audio"));
    let codec = |s: &Option<serde_json::Value>| {
        s.as_ref()
            .and_then(|s| s["codec_name"].as_str().map(str::to_owned))
    };
    let v = video.clone().unwrap_or_default();
    let fps = v["avg_frame_rate"]
        .as_str()
        .and_then(|r| r.split_once('/'))
        .and_then(|(a, b)| Some(a.parse::<f64>().ok()? / b.parse::<f64>().ok()?))
        .filter(|f| f.is_finite())
        .unwrap_or(0.0);
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .context("ffprobe gave no duration")?;
    Ok(Probe {
        video: codec(&video),
        audio: codec(&audio),
        width: v["width"].as_u64().unwrap_or(0),
        height: v["height"].as_u64().unwrap_or(0),
        fps,
        duration,
        json,
    })
}

/// Files below `dir` (recursively) whose name ends with `.{ext}`.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A loopback port that refuses connections until [`Gate::open`]; see the
/// module docs. Stops forwarding when dropped.
#[derive(Debug)]
pub struct Gate {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gate {
    /// A free port nobody listens on (yet).
    pub fn closed() -> Result<Gate> {
        let port = crate::free_port()?;
        Ok(Gate {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            task: None,
        })
    }

    /// A port that accepts connections and never answers (a server that
    /// hangs): connections are held open, what arrives is read and dropped.
    pub async fn silent() -> Result<Gate> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut inbound, &mut tokio::io::sink()).await;
                });
            }
        });
        Ok(Gate {
            addr,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Listens on the port and forwards every connection to `target`.
    pub async fn open(&mut self, target: SocketAddr) -> Result<()> {
        ensure!(self.task.is_none(), "{} is already served", self.addr);
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("binding {}", self.addr))?;
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
        Ok(())
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// One `recorder::run` pool member.
pub struct Recorder {
    pub name: String,
    pub http: SocketAddr,
    /// Its full JID (the pool account, resource = name).
    pub jid: Jid,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
    /// Local storage (unless `configure` chose S3).
    pub dir: tempfile::TempDir,
}

impl Recorder {
    /// Registers `name`'s pool and meeting accounts, starts the member
    /// (brewery nick `name`, local storage in a temporary folder, HTTP on
    /// a free port) with `configure` applied last, and waits until it is
    /// online and in the brewery.
    pub async fn start(
        prosody: &Prosody,
        name: &str,
        configure: impl FnOnce(&mut recorder::Config),
    ) -> Result<Recorder> {
        let pool_account = prosody.register_service(name)?;
        let meeting_account = prosody.register_recorder(name)?;
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, crate::free_port()?));
        let dir = tempfile::tempdir()?;
        let mut config = recorder::Config {
            xmpp: crate::meeting::xmpp_as(prosody, Some(&pool_account)),
            ..recorder::Config::default()
        };
        config.xmpp.resource = name.into();
        config.meeting.jid = meeting_account.jid();
        config.meeting.password = meeting_account.password.clone();
        config.brewery.nick = name.into();
        config.http.listen = http.to_string();
        config.storage = recorder::upload::Destination::local(dir.path());
        config.apply_env();
        configure(&mut config);
        let jid = Jid::new(&format!("{}/{name}", pool_account.jid()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(recorder::run(config, async move {
            let _ = stopped.await;
        }));
        crate::wait_healthy(http, Duration::from_secs(10)).await;
        // Online; its brewery presence reaches the focus a moment later.
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(Recorder {
            name: name.into(),
            http,
            jid,
            stop: Some(stop),
            task,
            dir,
        })
    }

    /// `/metrics` as name (labels included) -> value.
    pub async fn metrics(&self) -> Result<BTreeMap<String, u64>> {
        let answer = crate::http::get(self.http, "/metrics").await?;
        ensure!(answer.status == 200, "/metrics answered {}", answer.status);
        Ok(String::from_utf8_lossy(&answer.body)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect())
    }

    pub async fn metric(&self, name: &str) -> Result<u64> {
        self.metrics()
            .await?
            .get(name)
            .copied()
            .with_context(|| format!("{}: no metric {name}", self.name))
    }

    /// Waits until metric `name` reaches `at_least`; how long that took.
    pub async fn wait_metric(
        &self,
        name: &str,
        at_least: u64,
        timeout: Duration,
    ) -> Result<Duration> {
        let began = Instant::now();
        loop {
            if self.metric(name).await? >= at_least {
                return Ok(began.elapsed());
            }
            if began.elapsed() > timeout {
                bail!(
                    "{}: {name} below {at_least} after {timeout:?}: {:?}",
                    self.name,
                    self.metrics().await?
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Finished recordings in its local storage.
    pub fn files(&self) -> Vec<PathBuf> {
        files_with_ext(self.dir.path(), "mp4")
    }

    /// Kills it at once: the task is dropped (its XMPP sessions close, so
    /// it leaves the brewery and any meeting).
    pub fn kill(&self) {
        self.task.abort();
    }

    /// Stops it (running recordings are finalized), at most 10 s.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}
