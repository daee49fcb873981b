//! The job's view of the meeting while it records: who is there, which
//! receive line carries whom, who speaks; it places tiles in the mixer, asks
//! the bridge for what the layout shows, and watches the stop conditions.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use gst::prelude::*;
use gstreamer as gst;
use proto::bridge_channel::{BridgeMessage, ReceiverVideoConstraints, VideoConstraints};
use tokio::sync::{mpsc, oneshot};

use super::media::MediaPipeline;
use super::metadata::Metadata;
use super::{End, PLACEHOLDERS};
use crate::config::{Config, LayoutChoice};
use crate::pool::{JobEvent, StartRequest};
use participant::RtcEvent;
use participant::{Meeting, MeetingEvent};

pub(super) struct Recording {
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
    pub(super) metadata: Metadata,
    empty_since: Option<Instant>,
    last_media: Instant,
    started: Instant,
    on_sent: bool,
}

impl Recording {
    pub(super) fn new(start: &StartRequest, config: &Config, began: SystemTime) -> Recording {
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
    pub(super) fn constraints(&self) -> ReceiverVideoConstraints {
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

    /// A fresh pipeline (after a broken stream): its mixer knows nobody
    /// yet; tiles come back as their lines' keyframes arrive.
    pub(super) fn new_pipeline(&mut self, meeting: &Meeting, pipeline: &mut MediaPipeline) {
        self.video_tiles.clear();
        self.shown_stage = None;
        if PLACEHOLDERS {
            for (nick, name) in &self.people {
                let _ = pipeline.mixer.add_participant(nick, name);
            }
        }
        pipeline.mixer.set_speaker(self.speaker.as_deref());
        self.send_constraints(meeting);
    }

    /// Who is large: the dominant speaker, else the first person shown
    /// with video (the mixer's choice too).
    pub(super) fn stage(&self) -> Option<String> {
        self.speaker
            .clone()
            .or_else(|| self.video_tiles.keys().min().cloned())
    }

    pub(super) fn send_constraints(&self, meeting: &Meeting) {
        meeting.set_constraints(self.constraints());
    }

    pub(super) async fn run(
        &mut self,
        meeting: &Meeting,
        pipeline: &mut MediaPipeline,
        events: &mut mpsc::UnboundedReceiver<MeetingEvent>,
        stop: &mut oneshot::Receiver<()>,
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
                _ = &mut *stop => return End::Stopped,
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

    pub(super) fn on_event(
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
            // A recorder sends no audio; a kick is followed by Ended.
            MeetingEvent::Bridge(_)
            | MeetingEvent::AudioMute { .. }
            | MeetingEvent::Kicked
            | MeetingEvent::HangupRequested
            | MeetingEvent::Ended(_) => {}
        }
    }

    /// Before anyone has spoken, the first person with video is large:
    /// tell the mixer and the bridge (once per change).
    pub(super) fn restage(&mut self, meeting: &Meeting, pipeline: &mut MediaPipeline) {
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
    pub(super) fn place(&mut self, mid: &str, pipeline: &mut MediaPipeline) {
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
