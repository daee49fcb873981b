//! The recorder pool end to end: a private Prosody, the real `sfu` (focus
//! and media) in process, one or two real `recorder::run` pool members in
//! process, and webrtcbin participants publishing colours and tones. A
//! signalling-only moderator (`host`, first in the room) sends the Jibri
//! requests to the focus in the room and reads the focus's
//! `jibri-recording-status` from its presence, as a meeting page does.
//!
//! - stream mode: the meeting goes to nginx-rtmp; its FLV is H.264 + AAC
//!   and lasts as long as the stream did;
//! - every recorder busy: a start in a second room gets `resource-constraint`;
//! - failover: a recorder whose storage is down fails the start with
//!   `should_retry`, and one killed mid-start leaves the brewery; either
//!   way the focus hands the session to the other recorder;
//! - the room empties: the recording stops by itself and is stored whole;
//! - S3 unreachable at start: the moderator sees the failure quickly, and
//!   the recorder is idle and records again once S3 is back.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use jid::{BareJid, Jid};
use minidom::Element;
use proto::jibri::{FailureReason, JibriIq, RecordingMode, Status};
use tests::meeting::{xmpp, InProcessSfu};
use tests::moto::Moto;
use tests::recording::{files_with_ext, probe, Gate, Recorder, RoomClient};
use tests::rtmp::Rtmp;
use tests::webrtc::{MediaConfig, WebrtcParticipant};
use tests::{Prosody, ProsodyOptions};
use tokio::sync::{mpsc, oneshot};
use xmpp_session::xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, IqKind};

const BUCKET: &str = "recordings";
/// Longest wait for a status change the tests expect.
const WAIT: Duration = Duration::from_secs(20);

/// Prosody and the sfu.
struct Stack {
    prosody: Prosody,
    sfu: InProcessSfu,
    focus: Jid,
}

impl Stack {
    async fn start() -> Result<Stack> {
        tests::init_logs();
        tests::webrtc::init()?;
        // moto takes any credentials; the recorder reads the standard chain.
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
        let sfu = InProcessSfu::start(&prosody, |_| {}).await;
        let focus = Jid::new(&format!("focus@auth.{}/focus", prosody.domain()))?;
        Ok(Stack {
            prosody,
            sfu,
            focus,
        })
    }

    fn room(&self, name: &str) -> BareJid {
        BareJid::new(&format!("{name}@{}", self.prosody.conference_domain()))
            .expect("a valid room JID")
    }

    /// The room's moderator: signalling only, first in.
    async fn host(&self, room: &BareJid) -> Result<RoomClient> {
        RoomClient::join(&self.prosody, None, room, "host", &[]).await
    }

    /// A participant publishing a test pattern and a tone.
    async fn person(
        &self,
        room: &BareJid,
        nick: &str,
        pattern: u32,
        tone_hz: f64,
    ) -> Result<WebrtcParticipant> {
        let media = MediaConfig {
            video_pattern: pattern,
            width: 640,
            height: 360,
            tone_hz,
        };
        WebrtcParticipant::join(
            xmpp(&self.prosody),
            self.focus.clone(),
            room.clone(),
            nick,
            media,
        )
        .await
    }

    async fn end(self) {
        self.sfu.end().await;
    }
}

/// A start for `mode`.
fn start(mode: RecordingMode) -> JibriIq {
    JibriIq::start(mode)
}

/// Asks for a start and expects `pending`; when the answer came.
async fn start_pending(host: &RoomClient, iq: JibriIq) -> Result<Instant> {
    let answer = host
        .jibri(iq)
        .await
        .map_err(|e| anyhow!("start refused: {e}"))?;
    ensure!(
        answer.status == Some(Status::Pending),
        "start answered {answer:?}"
    );
    Ok(Instant::now())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The ingest drops the stream (nginx restarts): the recorder publishes
/// again and the stream goes on; what nginx records after its restart is a
/// playable H.264 + AAC stream of the time since.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_stream_is_published_again() -> Result<()> {
    let stack = Stack::start().await?;
    let mut rtmp = Rtmp::start()?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.stream.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await?;
    let room = stack.room("unsteady");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;
    let mut iq = start(RecordingMode::Stream);
    iq.stream_id = Some(rtmp.url("meeting"));
    start_pending(&host, iq).await?;
    host.wait_status("stream on", WAIT, |s| s.status == Status::On)
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    rtmp.restart()?;
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    host.jibri(JibriIq::stop("any"))
        .await
        .map_err(|e| anyhow!("stop refused: {e}"))?;
    let after = secs(restarted.elapsed());
    let flv = rtmp.wait_recorded_async("meeting", WAIT).await?;
    let p = probe(&flv)?;
    eprintln!(
        "reconnect: after the ingest restarted, {:.2} s recorded of {after:.2} s ({:?}/{:?})",
        p.duration, p.video, p.audio
    );
    ensure!(p.video.as_deref() == Some("h264") && p.audio.as_deref() == Some("aac"));
    ensure!(
        p.duration >= after - 4.0,
        "only {:.2} s streamed in the {after:.2} s after the restart",
        p.duration
    );
    ensure!(
        recorder
            .metric("recorder_failures_total{cause=\"recording\"}")
            .await?
            == 0
    );

    drop(alice);
    host.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_goes_to_the_rtmp_ingest() -> Result<()> {
    let stack = Stack::start().await?;
    let rtmp = Rtmp::start()?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.stream.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await?;
    let room = stack.room("livestream");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;

    let mut iq = start(RecordingMode::Stream);
    iq.stream_id = Some(rtmp.url("meeting"));
    let started = Instant::now();
    start_pending(&host, iq).await?;
    let (on, _) = host
        .wait_status("stream on", WAIT, |s| s.status == Status::On)
        .await?;
    tokio::time::sleep_until((started + Duration::from_secs(10)).into()).await;
    let answer = host
        .jibri(JibriIq::stop("any"))
        .await
        .map_err(|e| anyhow!("stop refused: {e}"))?;
    let span = started.elapsed();
    ensure!(
        answer.status == Some(Status::Off),
        "stop answered {answer:?}"
    );
    host.wait_status("stream off", WAIT, |s| s.status == Status::Off)
        .await?;

    let flv = rtmp.wait_recorded_async("meeting", WAIT).await?;
    let p = probe(&flv)?;
    eprintln!(
        "stream: on after {:.2} s; FLV {}x{} {:.1} fps {:?}/{:?}, {:.2} s for a span of {:.2} s",
        secs(on - started),
        p.width,
        p.height,
        p.fps,
        p.video,
        p.audio,
        p.duration,
        secs(span)
    );
    ensure!(p.video.as_deref() == Some("h264"), "video {:?}", p.video);
    ensure!(p.audio.as_deref() == Some("aac"), "audio {:?}", p.audio);
    ensure!(
        (p.duration - secs(span)).abs() <= 1.5,
        "FLV lasts {:.2} s for a span of {:.2} s",
        p.duration,
        secs(span)
    );

    drop(alice);
    host.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_every_recorder_busy_a_start_gets_resource_constraint() -> Result<()> {
    let stack = Stack::start().await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.recording.capacity = 1;
    })
    .await?;
    let room_a = stack.room("room-a");
    let host_a = stack.host(&room_a).await?;
    let alice = stack.person(&room_a, "alice", 4, 440.0).await?;
    start_pending(&host_a, start(RecordingMode::File)).await?;
    host_a
        .wait_status("A on", WAIT, |s| s.status == Status::On)
        .await?;

    // Room B: the only recorder is busy.
    let room_b = stack.room("room-b");
    let host_b = stack.host(&room_b).await?;
    let asked = Instant::now();
    let refused = host_b.jibri(start(RecordingMode::File)).await;
    let answered = asked.elapsed();
    let err = match refused {
        Ok(answer) => bail!("B's start was accepted: {answer:?}"),
        Err(e) => e,
    };
    eprintln!("busy: B's start refused in {:.3} s: {err}", secs(answered));
    ensure!(
        err.condition() == Some(&DefinedCondition::ResourceConstraint),
        "B's start refused with {err}"
    );
    // Nothing was started for B: no status in B, one start at the recorder.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        host_b.seen().iter().all(|s| s.status.is_none()),
        "B shows a recording status: {:?}",
        host_b.seen()
    );
    ensure!(recorder.metric("recorder_recordings_started_total").await? == 1);

    // Once A stops, the recorder is idle again and B's start is taken.
    host_a
        .jibri(JibriIq::stop("any"))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let (off, _) = host_a
        .wait_status("A off", WAIT, |s| s.status == Status::Off)
        .await?;
    let mut tries = 0;
    loop {
        tries += 1;
        match host_b.jibri(start(RecordingMode::File)).await {
            Ok(a) if a.status == Some(Status::Pending) => break,
            Err(e)
                if tries < 10 && e.condition() == Some(&DefinedCondition::ResourceConstraint) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => bail!("B's second start: {other:?}"),
        }
    }
    eprintln!(
        "busy: B's start taken {:.2} s after A went off ({tries} tries)",
        secs(off.elapsed())
    );

    drop(alice);
    recorder.kill();
    stack.end().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorder_whose_storage_is_down_hands_the_start_over() -> Result<()> {
    let stack = Stack::start().await?;
    // rec-a comes first in the focus's choice (nick order); its S3 endpoint
    // is a closed port.
    let down = Gate::closed()?;
    let broken = Recorder::start(&stack.prosody, "rec-a", |c| {
        c.storage = recorder::upload::Destination {
            endpoint: Some(down.url()),
            path_style: true,
            ..recorder::upload::Destination::s3(Moto::REGION, BUCKET)
        };
    })
    .await?;
    let working = Recorder::start(&stack.prosody, "rec-b", |_| {}).await?;
    let room = stack.room("failover");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;

    let started = start_pending(&host, start(RecordingMode::File)).await?;
    let failed_after = broken
        .wait_metric("recorder_failures_total{cause=\"recording\"}", 1, WAIT)
        .await?;
    let (on, _) = host
        .wait_status("on", WAIT, |s| s.status == Status::On)
        .await?;
    let statuses: Vec<Status> = host
        .seen()
        .iter()
        .filter_map(|s| s.status.as_ref().map(|s| s.status))
        .collect();
    eprintln!(
        "failover: rec-a failed {:.2} s after the start, on via rec-b after {:.2} s; \
         statuses seen {statuses:?}",
        secs(failed_after),
        secs(on - started)
    );
    ensure!(
        broken.metric("recorder_recordings_started_total").await? == 1,
        "rec-a was asked first"
    );
    ensure!(working.metric("recorder_recordings_started_total").await? == 1);
    ensure!(
        statuses == [Status::Pending, Status::On],
        "the moderator saw {statuses:?}"
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    host.jibri(JibriIq::stop("any"))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    working
        .wait_metric("recorder_recordings_finished_total", 1, WAIT)
        .await?;
    let files = working.files();
    ensure!(files.len() == 1, "rec-b stored {files:?}");
    let p = probe(&files[0])?;
    eprintln!("failover: rec-b's file lasts {:.2} s", p.duration);
    ensure!(
        p.video.as_deref() == Some("h264") && p.duration > 3.0,
        "{p:?}"
    );

    drop(alice);
    broken.kill();
    working.kill();
    stack.end().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorder_killed_mid_start_is_replaced() -> Result<()> {
    let stack = Stack::start().await?;
    let victim = Recorder::start(&stack.prosody, "rec-a", |_| {}).await?;
    let survivor = Recorder::start(&stack.prosody, "rec-b", |_| {}).await?;
    let room = stack.room("killed");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;

    let started = start_pending(&host, start(RecordingMode::File)).await?;
    // The focus picked rec-a and it took the job: kill it there.
    victim
        .wait_metric("recorder_recordings_started_total", 1, WAIT)
        .await?;
    victim.kill();
    let killed = Instant::now();
    let (on, _) = host
        .wait_status("on", WAIT, |s| s.status == Status::On)
        .await?;
    eprintln!(
        "killed: rec-a killed {:.2} s after the start; on via rec-b {:.2} s after the kill",
        secs(killed - started),
        secs(on - killed)
    );
    ensure!(survivor.metric("recorder_recordings_started_total").await? == 1);
    ensure!(
        host.seen()
            .iter()
            .all(|s| s.status.as_ref().is_none_or(|s| s.status != Status::Off)),
        "the moderator saw the recording off: {:?}",
        host.seen()
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    host.jibri(JibriIq::stop("any"))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    survivor
        .wait_metric("recorder_recordings_finished_total", 1, WAIT)
        .await?;
    let files = survivor.files();
    ensure!(files.len() == 1, "rec-b stored {files:?}");
    let p = probe(&files[0])?;
    eprintln!("killed: rec-b's file lasts {:.2} s", p.duration);
    ensure!(
        p.video.as_deref() == Some("h264") && p.duration > 3.0,
        "{p:?}"
    );
    ensure!(
        victim.files().is_empty(),
        "rec-a stored {:?}",
        victim.files()
    );

    drop(alice);
    survivor.kill();
    stack.end().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_stops_when_the_room_empties() -> Result<()> {
    const EMPTY_S: u64 = 3;
    let stack = Stack::start().await?;
    let moto = Moto::start_async().await?;
    moto.create_bucket(BUCKET).await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.recording.empty_timeout_s = EMPTY_S;
        c.storage = recorder::upload::Destination {
            endpoint: Some(moto.endpoint().to_owned()),
            path_style: true,
            ..recorder::upload::Destination::s3(Moto::REGION, BUCKET)
        };
    })
    .await?;
    let room = stack.room("emptying");
    let host = stack.host(&room).await?;
    // A service watcher: neither the focus nor the recorder counts it.
    let watcher_account = stack.prosody.register_recorder("watcher")?;
    let watcher = RoomClient::join(
        &stack.prosody,
        Some(&watcher_account),
        &room,
        "watcher",
        &[proto::ns::feature::JIBRI],
    )
    .await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;
    let bob = stack.person(&room, "bob", 6, 880.0).await?;

    let started = start_pending(&host, start(RecordingMode::File)).await?;
    host.wait_status("on", WAIT, |s| s.status == Status::On)
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    alice.leave().await;
    bob.leave().await;
    host.leave().await;
    let left = Instant::now();

    let finished = recorder
        .wait_metric("recorder_recordings_finished_total", 1, WAIT)
        .await?;
    let seen = watcher.seen();
    let focus_left = seen.iter().find(|s| !s.present).map(|s| s.at - left);
    let last_status = seen.iter().rev().find_map(|s| s.status.clone());
    eprintln!(
        "empty: the recorder finished {:.2} s after the last person left; \
         the focus left the room after {focus_left:?}; its last status {last_status:?}",
        secs(finished)
    );
    // The focus stops the recording as it leaves the empty room; the
    // recorder's own empty timeout (EMPTY_S) is the fallback. Either way it
    // ends within the timeout plus finalizing.
    ensure!(
        finished < Duration::from_secs(EMPTY_S + 8),
        "finished {finished:?} after the room emptied"
    );
    ensure!(recorder.metric("recorder_recordings_active").await? == 0);
    ensure!(
        recorder
            .metric("recorder_failures_total{cause=\"recording\"}")
            .await?
            == 0
    );
    // The focus does not keep an empty room: it leaves when the last
    // person does, so there is nobody left to show "off" to.
    ensure!(focus_left.is_some(), "the focus stayed: {seen:?}");

    let list = moto.list(BUCKET).await?;
    let key = list
        .keys()
        .find(|k| k.ends_with(".mp4"))
        .with_context(|| format!("no recording in {list:?}"))?;
    ensure!(
        list.keys().any(|k| k.ends_with(".json")),
        "no metadata: {list:?}"
    );
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("recording.mp4");
    std::fs::write(&file, moto.get_object(BUCKET, key).await?)?;
    let p = probe(&file)?;
    let (least, most) = (
        secs(left - started) - 1.0,
        secs(left - started) + EMPTY_S as f64 + 1.0,
    );
    eprintln!(
        "empty: stored {key}: {:.2} s ({least:.2} to {most:.2} s expected)",
        p.duration
    );
    ensure!(
        p.duration >= least && p.duration <= most,
        "the file lasts {:.2} s, {least:.2} to {most:.2} s expected",
        p.duration
    );
    ensure!(p.video.as_deref() == Some("h264") && p.audio.as_deref() == Some("aac"));

    drop(watcher);
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

/// A stand-in focus talking to one recorder directly: sends Jibri IQs,
/// answers and collects the recorder's status reports.
struct Director {
    handle: xmpp_session::Handle,
    reports: mpsc::UnboundedReceiver<JibriIq>,
}

impl Director {
    async fn start(prosody: &Prosody) -> Result<Director> {
        let account = prosody.register_service("director")?;
        let (handle, mut events) =
            tests::standins::client(prosody, Some(&account), &[proto::ns::JIBRI]);
        let (online_tx, online) = oneshot::channel();
        let (tx, reports) = mpsc::unbounded_channel();
        let h = handle.clone();
        tokio::spawn(async move {
            let mut online_tx = Some(online_tx);
            while let Some(ev) = events.recv().await {
                match ev {
                    Event::Online { .. } => {
                        if let Some(t) = online_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    Event::IqRequest(req) => {
                        let report = JibriIq::try_from(&req.payload);
                        h.reply(req, Ok(None));
                        if let Ok(r) = report {
                            let _ = tx.send(r);
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), online).await??;
        Ok(Director { handle, reports })
    }

    async fn send(&self, to: &Jid, iq: JibriIq) -> Result<JibriIq> {
        let answer = self
            .handle
            .iq(Some(to.clone()), IqKind::Set, Element::from(iq), None)
            .await
            .map_err(|e| anyhow!("{e}"))?
            .context("an empty answer")?;
        Ok(JibriIq::try_from(&answer)?)
    }

    async fn report(&mut self, what: &str) -> Result<JibriIq> {
        tokio::time::timeout(WAIT, self.reports.recv())
            .await
            .with_context(|| format!("no {what} report"))?
            .context("director gone")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_s3_unreachable_the_moderator_sees_the_failure() -> Result<()> {
    let stack = Stack::start().await?;
    let moto = Moto::start_async().await?;
    moto.create_bucket(BUCKET).await?;
    let mut gate = Gate::closed()?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.storage = recorder::upload::Destination {
            endpoint: Some(gate.url()),
            path_style: true,
            ..recorder::upload::Destination::s3(Moto::REGION, BUCKET)
        };
    })
    .await?;
    let room = stack.room("nostorage");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;

    let started = start_pending(&host, start(RecordingMode::File)).await?;
    let (off, status) = host
        .wait_status("off", WAIT, |s| s.status == Status::Off)
        .await?;
    let statuses: Vec<Status> = host
        .seen()
        .iter()
        .filter_map(|s| s.status.as_ref().map(|s| s.status))
        .collect();
    eprintln!(
        "s3 down: the moderator saw off/{:?} {:.2} s after the start; statuses {statuses:?}",
        status.failure_reason,
        secs(off - started)
    );
    ensure!(
        status.failure_reason == Some(FailureReason::Error),
        "{status:?}"
    );
    ensure!(off - started < Duration::from_secs(20));
    ensure!(statuses == [Status::Pending, Status::Off], "{statuses:?}");
    // The recorder is idle again.
    ensure!(recorder.metric("recorder_recordings_active").await? == 0);
    ensure!(
        recorder
            .metric("recorder_failures_total{cause=\"recording\"}")
            .await?
            == 1
    );

    // What the focus does with the next start while it sets the recorder
    // aside (it said should_retry): observed, not asserted.
    let again = host.jibri(start(RecordingMode::File)).await;
    eprintln!("s3 down: a second start through the focus right away: {again:?}");

    // S3 comes back; the same recorder records again (asked directly, as
    // the focus would once it picks it again).
    gate.open(moto.addr()).await?;
    let mut director = Director::start(&stack.prosody).await?;
    let mut iq = start(RecordingMode::File);
    iq.room = Some(room.clone());
    iq.session_id = Some("again0001".into());
    let answer = director.send(&recorder.jid, iq).await?;
    ensure!(answer.status == Some(Status::Pending), "{answer:?}");
    let on = director.report("on").await?;
    ensure!(on.status == Some(Status::On), "{on:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    director
        .send(&recorder.jid, JibriIq::stop("again0001"))
        .await?;
    let off = director.report("off").await?;
    ensure!(
        off.status == Some(Status::Off) && off.failure_reason.is_none(),
        "{off:?}"
    );
    let list = moto.list(BUCKET).await?;
    let key = list
        .keys()
        .find(|k| k.ends_with(".mp4"))
        .with_context(|| format!("no recording in {list:?}"))?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("again.mp4");
    std::fs::write(&file, moto.get_object(BUCKET, key).await?)?;
    let p = probe(&file)?;
    eprintln!("s3 back: recorded again, {key}: {:.2} s", p.duration);
    ensure!(
        p.video.as_deref() == Some("h264") && p.duration > 2.0,
        "{p:?}"
    );

    drop(alice);
    host.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_s3_hanging_the_failure_comes_within_the_control_timeout() -> Result<()> {
    let stack = Stack::start().await?;
    // Accepts connections and never answers: the recorder's S3 control
    // calls give up after `UploadOptions::control_timeout` (12 s).
    let hanging = Gate::silent().await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.storage = recorder::upload::Destination {
            endpoint: Some(hanging.url()),
            path_style: true,
            ..recorder::upload::Destination::s3(Moto::REGION, BUCKET)
        };
    })
    .await?;
    let room = stack.room("hangingstorage");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;

    let started = start_pending(&host, start(RecordingMode::File)).await?;
    let (off, status) = host
        .wait_status("off", Duration::from_secs(25), |s| s.status == Status::Off)
        .await?;
    eprintln!(
        "s3 hangs: the moderator saw off/{:?} {:.2} s after the start",
        status.failure_reason,
        secs(off - started)
    );
    ensure!(
        status.failure_reason == Some(FailureReason::Error),
        "{status:?}"
    );
    ensure!(off - started < Duration::from_secs(20));
    ensure!(recorder.metric("recorder_recordings_active").await? == 0);

    drop(alice);
    host.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

/// When everyone leaves, the focus leaves the room and stops its recording
/// (the recorder finalizes at once). People who come back start afresh:
/// no recording goes on unseen. (Before the fix, the focus forgot the
/// recording while the recorder went on until its own empty timeout,
/// recording the returning people without any status shown.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_returning_to_an_emptied_room_are_not_recorded_unseen() -> Result<()> {
    let stack = Stack::start().await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.recording.empty_timeout_s = 5;
    })
    .await?;
    let room = stack.room("comeback");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;
    start_pending(&host, start(RecordingMode::File)).await?;
    host.wait_status("on", WAIT, |s| s.status == Status::On)
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    alice.leave().await;
    host.leave().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Back within the recorder's empty timeout.
    let host2 = RoomClient::join(&stack.prosody, None, &room, "host2", &[]).await?;
    let bob = stack.person(&room, "bob", 6, 880.0).await?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let recording = recorder.metric("recorder_recordings_active").await? == 1;
    let shown = host2
        .seen()
        .iter()
        .any(|s| s.status.as_ref().is_some_and(|s| s.status == Status::On));
    eprintln!("comeback: the recorder still records: {recording}; shown to the room: {shown}");
    ensure!(
        !recording || shown,
        "the recorder records the room but the focus shows no recording: {:?}",
        host2.seen()
    );

    drop(bob);
    host2.leave().await;
    recorder.kill();
    stack.end().await;
    Ok(())
}

/// Audio-only mode: an M4A with one AAC track and no video at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audio_only_records_an_m4a_without_video() -> Result<()> {
    let stack = Stack::start().await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.recording.audio_only = true;
    })
    .await?;
    let room = stack.room("podcast");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;
    let started = start_pending(&host, start(RecordingMode::File)).await?;
    host.wait_status("on", WAIT, |s| s.status == Status::On)
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    host.jibri(JibriIq::stop("any"))
        .await
        .map_err(|e| anyhow!("stop refused: {e}"))?;
    let span = secs(started.elapsed());
    recorder
        .wait_metric("recorder_recordings_finished_total", 1, WAIT)
        .await?;
    let files = files_with_ext(recorder.dir.path(), "m4a");
    let file = files.first().context("no .m4a recorded")?;
    let p = probe(file)?;
    eprintln!(
        "audio only: {} {:.2} s for {span:.2} s, video {:?}, audio {:?}",
        file.display(),
        p.duration,
        p.video,
        p.audio
    );
    ensure!(
        p.video.is_none(),
        "an audio-only file has video: {:?}",
        p.video
    );
    ensure!(p.audio.as_deref() == Some("aac"), "audio {:?}", p.audio);
    ensure!(
        (p.duration - span).abs() <= 1.5,
        "{:.2} s for a span of {span:.2} s",
        p.duration
    );
    ensure!(
        recorder.files().is_empty(),
        "an mp4 too: {:?}",
        recorder.files()
    );

    drop(alice);
    host.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

/// `max_length_s`: the recording stops by itself and is finalized.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_stops_at_its_maximum_length() -> Result<()> {
    let stack = Stack::start().await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.recording.max_length_s = 4;
    })
    .await?;
    let room = stack.room("longtalk");
    let host = stack.host(&room).await?;
    let alice = stack.person(&room, "alice", 4, 440.0).await?;
    start_pending(&host, start(RecordingMode::File)).await?;
    host.wait_status("on", WAIT, |s| s.status == Status::On)
        .await?;
    let (off, _) = host
        .wait_status("off by itself", WAIT, |s| s.status == Status::Off)
        .await?;
    let files = recorder.files();
    let p = probe(files.first().context("no recording")?)?;
    eprintln!(
        "max length: off; {:.2} s recorded (max 4 s) {off:?}",
        p.duration
    );
    ensure!(
        p.duration >= 3.0 && p.duration <= 5.5,
        "{:.2} s recorded",
        p.duration
    );

    drop(alice);
    host.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}

/// `capacity = 2`: two rooms are recorded at once by one recorder, each
/// into its own file; presence says busy only once both run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_recorder_records_two_rooms_at_once() -> Result<()> {
    let stack = Stack::start().await?;
    let recorder = Recorder::start(&stack.prosody, "rec1", |c| {
        c.recording.capacity = 2;
    })
    .await?;
    let (room_a, room_b) = (stack.room("first"), stack.room("second"));
    let host_a = stack.host(&room_a).await?;
    let host_b = stack.host(&room_b).await?;
    let alice = stack.person(&room_a, "alice", 4, 440.0).await?;
    let bob = stack.person(&room_b, "bob", 6, 880.0).await?;
    start_pending(&host_a, start(RecordingMode::File)).await?;
    host_a
        .wait_status("a on", WAIT, |s| s.status == Status::On)
        .await?;
    // The focus skips a member for 200 ms after picking it (its busy status
    // may lag); by now the recorder has said it is still idle.
    start_pending(&host_b, start(RecordingMode::File)).await?;
    host_b
        .wait_status("b on", WAIT, |s| s.status == Status::On)
        .await?;
    ensure!(recorder.metric("recorder_recordings_active").await? == 2);
    tokio::time::sleep(Duration::from_secs(4)).await;
    for host in [&host_a, &host_b] {
        host.jibri(JibriIq::stop("any"))
            .await
            .map_err(|e| anyhow!("stop refused: {e}"))?;
    }
    recorder
        .wait_metric("recorder_recordings_finished_total", 2, WAIT)
        .await?;
    let files = recorder.files();
    eprintln!("two at once: {files:?}");
    ensure!(files.len() == 2, "two files expected: {files:?}");
    for f in &files {
        let p = probe(f)?;
        ensure!(
            p.video.as_deref() == Some("h264") && p.duration > 3.0,
            "{}: {p:?}",
            f.display()
        );
    }

    drop((alice, bob));
    host_a.leave().await;
    host_b.leave().await;
    recorder.stop().await;
    stack.end().await;
    Ok(())
}
