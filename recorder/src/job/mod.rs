//! One recording (or stream), start to finish: the output opened first
//! (so an unreachable S3 fails before anyone waits), then the meeting
//! joined as a hidden participant, then frames into the mixer until a stop
//! condition, then the output finalized and the metadata written.
//!
//! Stop conditions: the stop request, nobody but services in the room for
//! `empty_timeout_s`, no media for `no_media_timeout_s`, `max_length_s`,
//! the focus ending the session, or a pipeline error. The file is always
//! finalized (the mixer's EOS, then the upload's completion), whatever
//! stopped it. Reports go to the pool as [`JobEvent`]s: `On` once media is
//! written, then `Finished` or `Failed`.
//!
//! Retrying elsewhere: a job that fails while *starting* (opening the
//! output, building the pipeline, joining the meeting) has recorded
//! nothing, so its `Failed` says `retry: true` and the focus hands the
//! session to another recorder (and sets this one aside for a while). An
//! unreachable storage endpoint is the usual case: it may be this
//! recorder's network, and another recorder loses nothing by trying. A job
//! that fails after joining says `retry: false`: a partial output exists,
//! and a second recorder would start a second file. Stream destinations
//! (the requester's RTMP URL) only fail after joining, when the sink
//! connects, so they are never retried elsewhere.

mod media;
mod metadata;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Result};
use gst::prelude::*;
use gstreamer as gst;
use jid::Jid;
use proto::bridge_channel::{BridgeMessage, ReceiverVideoConstraints, VideoConstraints};
use proto::jibri::{FailureReason, RecordingMode};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, LayoutChoice};
use crate::media::{Layout, MixerConfig};
use crate::meeting::{Meeting, MeetingEvent};
use crate::pool::{JobEvent, StartRequest};
use crate::rtc::RtcEvent;
use crate::upload::{RecordingNames, Storage, UploadSender, UploadTask};
use media::{MediaPipeline, Sink};
use metadata::Metadata;

/// Name tiles for people without video (the mixer's placeholders).
const PLACEHOLDERS: bool = true;

/// What a job needs from the process.
#[derive(Clone)]
pub struct JobContext {
    pub config: Arc<Config>,
    pub storage: Storage,
}

/// Why a job ended.
#[derive(Debug)]
enum End {
    Stopped,
    Empty,
    NoMedia,
    MaxLength,
    Meeting(String),
    Pipeline(String),
}

/// Runs one job; reports through `report`. `stop` ends it on request.
pub async fn run(
    ctx: JobContext,
    start: StartRequest,
    report: mpsc::UnboundedSender<(String, JobEvent)>,
    stop: oneshot::Receiver<()>,
) {
    let session = start.session.clone();
    let outcome = match open(&ctx, &start).await {
        Ok(opened) => record(&ctx, &start, opened, &report, stop)
            .await
            .map_err(|e| (Stage::Recording, e)),
        Err(e) => Err((Stage::Starting, e)),
    };
    let event = match outcome {
        Ok(()) => JobEvent::Finished,
        Err((stage, e)) => {
            tracing::warn!(%session, room = %start.room, ?stage, "recording failed: {e:#}");
            JobEvent::Failed {
                reason: FailureReason::Error,
                retry: stage.may_retry_elsewhere(),
            }
        }
    };
    let _ = report.send((session, event));
}

/// How far a job got when it failed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Opening the output and joining the meeting: nothing recorded yet.
    Starting,
    /// In the meeting: a partial output may exist.
    Recording,
}

impl Stage {
    /// Whether the focus should give the session to another recorder.
    fn may_retry_elsewhere(self) -> bool {
        self == Stage::Starting
    }
}

/// A started job: its output open, the meeting joined.
struct Opened {
    began: SystemTime,
    pipeline: MediaPipeline,
    upload: Option<(Arc<UploadSender>, UploadTask)>,
    meeting: Meeting,
    events: mpsc::UnboundedReceiver<MeetingEvent>,
}

/// Opens the output, builds the pipeline and joins the meeting; on failure
/// whatever was opened is released (the upload aborted).
async fn open(ctx: &JobContext, start: &StartRequest) -> Result<Opened> {
    let cfg = &ctx.config.recording;
    let focus: Jid =
        Jid::new(&ctx.config.meeting.focus).map_err(|e| anyhow!("meeting.focus: {e}"))?;
    let began = SystemTime::now();
    let room_name = start.room.node().map(|n| n.to_string()).unwrap_or_default();
    let audio_only = cfg.audio_only;
    // The output first: a destination that does not work fails here.
    let (sink, upload) = match start.mode {
        RecordingMode::Stream => (
            Sink::Rtmp(start.stream_url.clone().unwrap_or_default()),
            None,
        ),
        RecordingMode::File => {
            let ext = if audio_only { "m4a" } else { "mp4" };
            let names = RecordingNames::new(&room_name, &start.session, began).with_ext(ext);
            let (tx, task) = ctx
                .storage
                .start(&names)
                .await
                .map_err(|e| anyhow!("the recording's storage: {e}"))?;
            let tx = Arc::new(tx);
            (Sink::Upload(tx.clone()), Some((tx, task)))
        }
    };
    let mixer = MixerConfig {
        width: cfg.width,
        height: cfg.height,
        fps: cfg.fps,
        layout: match cfg.layout {
            LayoutChoice::Speaker => Layout::Speaker,
            LayoutChoice::Grid => Layout::Grid,
        },
        video_bitrate_kbps: if cfg.height > 720 { 4500 } else { 2500 },
        ..MixerConfig::default()
    };
    let pipeline_name = format!("rec-{}", start.session);
    let pipeline =
        tokio::task::block_in_place(|| MediaPipeline::new(&pipeline_name, mixer, audio_only, sink));
    let pipeline = match pipeline {
        Ok(p) => p,
        Err(e) => {
            if let Some((tx, _)) = &upload {
                tx.abort();
            }
            return Err(e);
        }
    };
    let bind_ip = ctx.config.meeting.bind_ip.parse().ok();
    let nick = format!(
        "recorder-{}",
        &start.session.chars().take(8).collect::<String>()
    );
    let joined = Meeting::join(
        ctx.config.meeting_xmpp(),
        focus,
        start.room.clone(),
        &nick,
        bind_ip,
    )
    .await;
    let (meeting, events) = match joined {
        Ok(m) => m,
        Err(e) => {
            if let Some((tx, _)) = &upload {
                tx.abort();
            }
            return Err(e.context("joining the meeting"));
        }
    };
    Ok(Opened {
        began,
        pipeline,
        upload,
        meeting,
        events,
    })
}

/// Records until a stop condition, then finalizes and stores the output.
async fn record(
    ctx: &JobContext,
    start: &StartRequest,
    opened: Opened,
    report: &mpsc::UnboundedSender<(String, JobEvent)>,
    stop: oneshot::Receiver<()>,
) -> Result<()> {
    let Opened {
        began,
        mut pipeline,
        upload,
        meeting,
        events,
    } = opened;
    let mut state = Recording::new(start, &ctx.config, began);
    state.send_constraints(&meeting);
    let end = state
        .run(&meeting, &mut pipeline, events, stop, report, &ctx.config)
        .await;
    match &end {
        End::Meeting(why) | End::Pipeline(why) => {
            tracing::warn!(session = %start.session, room = %start.room, %why, "recording ends early")
        }
        other => {
            tracing::info!(session = %start.session, room = %start.room, end = ?other, "recording ends")
        }
    }
    // Finalize whatever happened.
    let finished = tokio::task::block_in_place(|| pipeline.finish(Duration::from_secs(20)));
    tracing::info!(session = %start.session, ?finished, "output finalized");
    drop(pipeline);
    meeting.leave().await;
    tracing::info!(session = %start.session, "left the meeting");
    let mut stored = None;
    if let Some((tx, task)) = upload {
        tx.finish();
        let summary = task
            .await
            .map_err(|e| anyhow!("upload task: {e}"))?
            .map_err(|e| anyhow!("storing the recording: {e}"))?;
        tracing::info!(location = %summary.location, bytes = summary.bytes, parts = summary.parts, "recording stored");
        let meta = state.metadata.finish(SystemTime::now(), &summary.location);
        ctx.storage
            .put_metadata(&summary.key, &meta)
            .await
            .map_err(|e| anyhow!("writing the metadata: {e}"))?;
        stored = Some(summary);
    }
    finished?;
    match end {
        End::Pipeline(e) => Err(anyhow!("the pipeline failed: {e}")),
        _ => {
            let _ = stored;
            Ok(())
        }
    }
}

/// The job's view of the meeting while it records.
struct Recording {
    session: String,
    layout: LayoutChoice,
    stage_height: i32,
    /// Non-service people by nick: their names.
    people: HashMap<String, String>,
    /// Video line -> the person it carries.
    slot_owner: HashMap<String, String>,
    /// People shown with video (tile id = nick) -> the line.
    video_tiles: HashMap<String, String>,
    speaker: Option<String>,
    /// The stage last given to the mixer before anyone spoke.
    shown_stage: Option<String>,
    metadata: Metadata,
    empty_since: Option<Instant>,
    last_media: Instant,
    started: Instant,
    on_sent: bool,
}

impl Recording {
    fn new(start: &StartRequest, config: &Config, began: SystemTime) -> Recording {
        let now = Instant::now();
        Recording {
            session: start.session.clone(),
            layout: config.recording.layout,
            stage_height: config.recording.height as i32,
            people: HashMap::new(),
            slot_owner: HashMap::new(),
            video_tiles: HashMap::new(),
            speaker: None,
            shown_stage: None,
            metadata: Metadata::new(&start.room.to_string(), &start.session, start.mode, began),
            empty_since: Some(now),
            last_media: now,
            started: now,
            on_sent: false,
        }
    }

    /// Only the layers the layout shows: the speaker large, others small
    /// (speaker layout), or everyone at 360p (grid).
    fn constraints(&self) -> ReceiverVideoConstraints {
        let mut c = ReceiverVideoConstraints {
            last_n: Some(9),
            ..ReceiverVideoConstraints::default()
        };
        match self.layout {
            LayoutChoice::Grid => c.default_constraints = Some(VideoConstraints::max_height(360)),
            LayoutChoice::Speaker => {
                c.default_constraints = Some(VideoConstraints::max_height(180));
                if let Some(s) = &self.stage() {
                    let source = format!("{s}-v0");
                    c.on_stage_sources = Some(vec![source.clone()]);
                    c.constraints = Some(
                        [(source, VideoConstraints::max_height(self.stage_height))]
                            .into_iter()
                            .collect(),
                    );
                }
            }
        }
        c
    }

    /// Who is large: the dominant speaker, else the first person shown
    /// with video (the mixer's choice too).
    fn stage(&self) -> Option<String> {
        self.speaker
            .clone()
            .or_else(|| self.video_tiles.keys().min().cloned())
    }

    fn send_constraints(&self, meeting: &Meeting) {
        meeting.set_constraints(self.constraints());
    }

    async fn run(
        &mut self,
        meeting: &Meeting,
        pipeline: &mut MediaPipeline,
        mut events: mpsc::UnboundedReceiver<MeetingEvent>,
        mut stop: oneshot::Receiver<()>,
        report: &mpsc::UnboundedSender<(String, JobEvent)>,
        config: &Config,
    ) -> End {
        let r = &config.recording;
        let (empty, no_media, max) = (
            Duration::from_secs(r.empty_timeout_s),
            Duration::from_secs(r.no_media_timeout_s),
            Duration::from_secs(r.max_length_s),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut stop => return End::Stopped,
                ev = events.recv() => match ev {
                    None => return End::Meeting("the meeting connection ended".into()),
                    Some(MeetingEvent::Ended(why)) => return End::Meeting(why),
                    Some(ev) => self.on_event(ev, meeting, pipeline, report),
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    if let Some(e) = pipeline.error() {
                        return End::Pipeline(e);
                    }
                    if self.empty_since.is_some_and(|t| now.duration_since(t) >= empty) {
                        return End::Empty;
                    }
                    if now.duration_since(self.last_media) >= no_media {
                        return End::NoMedia;
                    }
                    if now.duration_since(self.started) >= max {
                        return End::MaxLength;
                    }
                }
            }
        }
    }

    fn on_event(
        &mut self,
        ev: MeetingEvent,
        meeting: &Meeting,
        pipeline: &mut MediaPipeline,
        report: &mpsc::UnboundedSender<(String, JobEvent)>,
    ) {
        match ev {
            MeetingEvent::Joined(p) | MeetingEvent::Changed(p) => {
                if p.service {
                    return;
                }
                let new = self.people.insert(p.nick.clone(), p.name.clone()).is_none();
                if new {
                    self.metadata.joined(&p.nick, &p.name);
                    if PLACEHOLDERS && !self.video_tiles.contains_key(&p.nick) {
                        let _ = pipeline.mixer.add_participant(&p.nick, &p.name);
                    }
                }
                self.empty_since = None;
            }
            MeetingEvent::Left(nick) => {
                if self.people.remove(&nick).is_some() {
                    self.metadata.left(&nick);
                    pipeline.mixer.remove(&nick);
                    self.video_tiles.remove(&nick);
                    if self.people.is_empty() {
                        self.empty_since = Some(Instant::now());
                    }
                }
            }
            MeetingEvent::Media(RtcEvent::Frame(frame)) => {
                self.last_media = Instant::now();
                let mid = frame.mid.clone();
                let (new_pad, waiting) = pipeline.push(&frame);
                if waiting || !frame.contiguous {
                    if !frame.contiguous {
                        pipeline.restart(&mid);
                    }
                    meeting.request_keyframe(&mid);
                }
                if new_pad.is_some() {
                    self.place(&mid, pipeline);
                    self.restage(meeting, pipeline);
                }
                if !self.on_sent && !waiting {
                    self.on_sent = true;
                    let _ = report.send((self.session.clone(), JobEvent::On));
                }
            }
            MeetingEvent::Media(RtcEvent::Connected) => {
                tracing::info!(session = %self.session, "media connected")
            }
            MeetingEvent::Media(RtcEvent::Closed(why)) => {
                tracing::warn!(session = %self.session, %why, "media leg closed")
            }
            MeetingEvent::Bridge(BridgeMessage::VideoSourcesMap(map)) => {
                for m in map.mapped_sources {
                    let (Some(mid), Some(owner)) = (m.mid, m.owner) else {
                        continue;
                    };
                    if self.slot_owner.get(&mid) != Some(&owner) {
                        self.slot_owner.insert(mid.clone(), owner);
                        self.place(&mid, pipeline);
                    }
                }
                self.restage(meeting, pipeline);
            }
            MeetingEvent::Bridge(BridgeMessage::DominantSpeakerEndpointChangeEvent(e)) => {
                let nick = e.dominant_speaker_endpoint;
                if self.people.contains_key(&nick) {
                    self.metadata.spoke(&nick);
                    self.speaker = Some(nick.clone());
                    pipeline.mixer.set_speaker(Some(&nick));
                    self.send_constraints(meeting);
                }
            }
            MeetingEvent::Bridge(_) | MeetingEvent::Ended(_) => {}
        }
    }

    /// Before anyone has spoken, the first person with video is large:
    /// tell the mixer and the bridge (once per change).
    fn restage(&mut self, meeting: &Meeting, pipeline: &mut MediaPipeline) {
        if self.speaker.is_some() {
            return;
        }
        let stage = self.stage();
        if stage != self.shown_stage {
            pipeline.mixer.set_speaker(stage.as_deref());
            self.shown_stage = stage;
            self.send_constraints(meeting);
        }
    }

    /// Puts video line `mid` on its owner's tile (once both are known).
    fn place(&mut self, mid: &str, pipeline: &mut MediaPipeline) {
        let (Some(owner), Some(pad)) = (self.slot_owner.get(mid).cloned(), pipeline.video_pad(mid))
        else {
            return;
        };
        // Whoever had this line before loses its tile.
        if let Some((old, _)) = self
            .video_tiles
            .iter()
            .find(|(n, m)| m.as_str() == mid && **n != owner)
            .map(|(n, m)| (n.clone(), m.clone()))
        {
            self.video_tiles.remove(&old);
            pipeline.mixer.remove(&old);
            if let Some(name) = self.people.get(&old).filter(|_| PLACEHOLDERS) {
                let _ = pipeline.mixer.add_participant(&old, name);
            }
        }
        if self.video_tiles.get(&owner).map(String::as_str) == Some(mid) {
            return;
        }
        if let Some(peer) = pad.peer() {
            let _ = pad.unlink(&peer);
        }
        let name = self
            .people
            .get(&owner)
            .cloned()
            .unwrap_or_else(|| owner.clone());
        pipeline.mixer.remove(&owner);
        match pipeline.mixer.add_video(&owner, &name, &pad) {
            Ok(()) => {
                self.video_tiles.insert(owner, mid.to_owned());
            }
            Err(e) => tracing::warn!(%mid, %owner, "video not placed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn only_a_job_that_failed_to_start_is_retried_elsewhere() {
        assert!(Stage::Starting.may_retry_elsewhere());
        assert!(!Stage::Recording.may_retry_elsewhere());
    }
}
