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
mod recording;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Result};
use jid::Jid;
use proto::jibri::{FailureReason, RecordingMode};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, LayoutChoice};
use crate::media::{Layout, MixerConfig};
use crate::pool::{JobEvent, StartRequest};
use crate::upload::{RecordingNames, Storage, UploadSender, UploadTask};
use media::{MediaPipeline, Sink};
use participant::{Meeting, MeetingEvent};
use recording::Recording;

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
    let mixer = mixer_config(cfg);
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
    let joined = Meeting::join(participant::JoinOptions {
        xmpp: ctx.config.meeting_xmpp(),
        focus,
        room: start.room.clone(),
        nick: nick.clone(),
        bind_ip,
        features: vec![proto::ns::feature::JIBRI.to_owned()],
        presence: Vec::new(),
        status: None,
    })
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

/// How often a broken stream is published again before the job fails.
const MAX_RECONNECTS: u32 = 5;

/// The mixer's settings from `[recording]`.
fn mixer_config(cfg: &crate::config::RecordingConfig) -> MixerConfig {
    MixerConfig {
        width: cfg.width,
        height: cfg.height,
        fps: cfg.fps,
        layout: match cfg.layout {
            LayoutChoice::Speaker => Layout::Speaker,
            LayoutChoice::Grid => Layout::Grid,
        },
        video_bitrate_kbps: if cfg.height > 720 { 4500 } else { 2500 },
        ..MixerConfig::default()
    }
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
        mut events,
    } = opened;
    let mut stop = stop;
    let mut state = Recording::new(start, &ctx.config, began);
    state.send_constraints(&meeting);
    let mut reconnects = 0;
    let end = loop {
        let end = state
            .run(
                &meeting,
                &mut pipeline,
                &mut events,
                &mut stop,
                report,
                &ctx.config,
            )
            .await;
        // A stream the ingest dropped is published again, with a new
        // pipeline, while the recorder stays in the meeting.
        let End::Pipeline(why) = &end else { break end };
        if start.mode != RecordingMode::Stream || reconnects >= MAX_RECONNECTS {
            break end;
        }
        reconnects += 1;
        tracing::warn!(session = %start.session, %why, attempt = reconnects, "the stream broke: publishing again");
        let url = start.stream_url.clone().unwrap_or_default();
        let name = format!("rec-{}-{reconnects}", start.session);
        let config = mixer_config(&ctx.config.recording);
        let audio_only = ctx.config.recording.audio_only;
        drop(pipeline);
        tokio::time::sleep(Duration::from_secs(reconnects as u64)).await;
        match tokio::task::block_in_place(|| {
            MediaPipeline::new(&name, config, audio_only, Sink::Rtmp(url))
        }) {
            Ok(p) => {
                pipeline = p;
                state.new_pipeline(&meeting, &mut pipeline);
            }
            Err(e) => return Err(e.context("publishing the stream again")),
        }
    };
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

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn only_a_job_that_failed_to_start_is_retried_elsewhere() {
        assert!(Stage::Starting.may_retry_elsewhere());
        assert!(!Stage::Recording.may_retry_elsewhere());
    }
}
