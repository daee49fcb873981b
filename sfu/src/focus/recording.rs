//! Recording and streaming sessions (the Jibri protocol, focus side): a
//! moderator's start is checked, answered with a session id, and routed to
//! an available recorder; the recorder's `pending`/`on`/`off` reports are
//! published in the focus's presence as `jibri-recording-status`; a failing
//! recorder is replaced by another, up to a retry limit.
//!
//! While an occupant of the room encrypts end to end, a start (file or
//! stream) is refused with `not-allowed` and a text saying why; a stop is
//! always accepted. A recording already running when someone turns
//! encryption on is deliberately left running (see `e2ee`): the focus never
//! stops a recording on its own for this.

use std::time::Instant;

use jid::{BareJid, Jid};
use minidom::Element;
use proto::jibri::{
    Action as JibriAction, FailureReason, JibriIq, RecordingMode, RecordingStatus, Status,
};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{IncomingIq, IqError};

use super::{e2ee, Action, Focus, Pending};

/// How many recorders one start may try.
const MAX_TRIES: usize = 5;

/// One recording (or stream) of a room.
#[derive(Debug, Clone)]
pub(super) struct Recording {
    pub session_id: String,
    /// The moderator who started it (`room@service/nick`).
    pub initiator: Jid,
    pub mode: RecordingMode,
    pub stream_id: Option<String>,
    pub app_data: Option<String>,
    /// The recorder (brewery nick) currently doing it.
    pub recorder: Option<String>,
    pub tried: Vec<String>,
    pub status: Status,
    pub failure: Option<FailureReason>,
}

impl Recording {
    pub fn presence(&self) -> Element {
        let mut s = RecordingStatus::new(self.status);
        s.session_id = Some(self.session_id.clone());
        s.recording_mode = Some(self.mode);
        s.initiator = Some(self.initiator.clone());
        s.failure_reason = self.failure;
        s.into()
    }
}

impl Focus {
    /// A moderator's `<jibri action="start|stop">`.
    pub(super) fn jibri_request(
        &mut self,
        req: IncomingIq,
        room: BareJid,
        j: JibriIq,
        now: Instant,
    ) {
        match j.action {
            Some(JibriAction::Stop) => self.stop_recording(req, room),
            _ => self.start_recording(req, room, j, now),
        }
    }

    fn start_recording(&mut self, req: IncomingIq, room: BareJid, j: JibriIq, now: Instant) {
        let mode = j.recording_mode.unwrap_or(if j.stream_id.is_some() {
            RecordingMode::Stream
        } else {
            RecordingMode::File
        });
        match (mode, &j.stream_id) {
            (RecordingMode::Stream, None) => {
                return self.refuse(
                    req,
                    DefinedCondition::BadRequest,
                    "stream mode needs a streamid",
                )
            }
            (RecordingMode::File, Some(_)) => {
                return self.refuse(
                    req,
                    DefinedCondition::BadRequest,
                    "file mode takes no streamid",
                )
            }
            _ => {}
        }
        let what = match mode {
            RecordingMode::Stream => e2ee::Refused::Streaming,
            RecordingMode::File => e2ee::Refused::Recording,
        };
        let Some(req) = self.refuse_if_e2ee(req, &room, what) else {
            return;
        };
        if self.rooms.get(&room).is_some_and(|r| {
            r.recording
                .as_ref()
                .is_some_and(|s| s.status != Status::Off)
        }) {
            return self.refuse(
                req,
                DefinedCondition::UnexpectedRequest,
                "a recording is already active",
            );
        }
        let Some(recorders) = self.recorders.as_mut() else {
            return self.refuse(
                req,
                DefinedCondition::ServiceUnavailable,
                "no recorder pool configured",
            );
        };
        let nick = match recorders.pick_recorder(&[], now) {
            Ok(n) => n,
            Err(DefinedCondition::ServiceUnavailable) => {
                return self.refuse(
                    req,
                    DefinedCondition::ServiceUnavailable,
                    "no recorder in the pool",
                )
            }
            Err(c) => return self.refuse(req, c, "every recorder is busy"),
        };
        let session_id = self.fresh_session_id();
        let Some(initiator) = req.from.clone() else {
            return;
        };
        let recording = Recording {
            session_id: session_id.clone(),
            initiator,
            mode,
            stream_id: j.stream_id.clone(),
            app_data: j.app_data.clone(),
            recorder: None,
            tried: vec![],
            status: Status::Pending,
            failure: None,
        };
        tracing::info!(%room, session = %session_id, ?mode, recorder = %nick, "recording requested");
        let mut answer = JibriIq::status(Status::Pending);
        answer.session_id = Some(session_id);
        self.out.push_back(Action::Reply {
            req,
            result: Ok(Some(answer.into())),
        });
        if let Some(r) = self.rooms.get_mut(&room) {
            r.recording = Some(recording);
        }
        self.send_start(&room, nick);
        self.publish(&room);
    }

    /// Sends the start to `nick` for the room's recording.
    fn send_start(&mut self, room: &BareJid, nick: String) {
        let Some(to) = self
            .recorders
            .as_ref()
            .and_then(|p| p.members.get(&nick))
            .map(|m| Jid::from(m.occupant.clone()))
        else {
            return;
        };
        let Some(rec) = self.rooms.get_mut(room).and_then(|r| r.recording.as_mut()) else {
            return;
        };
        rec.recorder = Some(nick.clone());
        rec.tried.push(nick.clone());
        let mut start = JibriIq::start(rec.mode);
        start.room = Some(room.clone());
        start.session_id = Some(rec.session_id.clone());
        start.stream_id = rec.stream_id.clone();
        start.app_data = rec.app_data.clone();
        let session_id = rec.session_id.clone();
        self.send_iq(
            to,
            start.into(),
            Pending::JibriStart {
                room: room.clone(),
                session_id,
                recorder: nick,
            },
        );
    }

    fn stop_recording(&mut self, req: IncomingIq, room: BareJid) {
        let active = self
            .rooms
            .get(&room)
            .and_then(|r| r.recording.clone())
            .filter(|s| s.status != Status::Off);
        let Some(rec) = active else {
            return self.refuse(req, DefinedCondition::ItemNotFound, "no recording to stop");
        };
        self.out.push_back(Action::Reply {
            req,
            result: Ok(Some(JibriIq::status(Status::Off).into())),
        });
        let to = rec
            .recorder
            .as_ref()
            .and_then(|n| self.recorders.as_ref()?.members.get(n))
            .map(|m| Jid::from(m.occupant.clone()));
        if let Some(to) = to {
            tracing::info!(%room, session = %rec.session_id, "stopping recording");
            self.send_iq(
                to,
                JibriIq::stop(rec.session_id.clone()).into(),
                Pending::JibriStop { room },
            );
        } else {
            self.set_recording_status(&room, Status::Off, None);
        }
    }

    /// The answer to a start we sent.
    pub(super) fn start_answered(
        &mut self,
        room: BareJid,
        session_id: String,
        recorder: String,
        result: Result<Option<Element>, IqError>,
        now: Instant,
    ) {
        let answer = match &result {
            Ok(Some(el)) => JibriIq::try_from(el).ok(),
            _ => None,
        };
        let accepted = matches!(&answer, Some(a) if a.status != Some(Status::Off))
            || matches!(result, Ok(None));
        if accepted {
            tracing::info!(%room, session = %session_id, %recorder, "recorder accepted");
            return;
        }
        tracing::warn!(%room, session = %session_id, %recorder, ?result, "recorder refused or failed the start");
        if let Some(p) = self.recorders.as_mut() {
            p.mark_failed(&recorder, now);
        }
        self.retry_recording(&room, now);
    }

    /// Tries the next recorder, or reports the failure.
    pub(super) fn retry_recording(&mut self, room: &BareJid, now: Instant) {
        let Some(rec) = self.rooms.get(room).and_then(|r| r.recording.clone()) else {
            return;
        };
        let next = if rec.tried.len() < MAX_TRIES {
            self.recorders
                .as_mut()
                .and_then(|p| p.pick_recorder(&rec.tried, now).ok())
        } else {
            None
        };
        match next {
            Some(nick) => {
                tracing::info!(%room, session = %rec.session_id, recorder = %nick, "retrying on another recorder");
                self.send_start(room, nick);
            }
            None => self.set_recording_status(room, Status::Off, Some(FailureReason::Error)),
        }
    }

    /// A `<jibri status=..>` report from a recorder in the brewery.
    pub(super) fn recorder_report(
        &mut self,
        req: IncomingIq,
        from_nick: &str,
        j: JibriIq,
        now: Instant,
    ) {
        let session = j.session_id.clone();
        let found = self
            .rooms
            .iter()
            .find(|(_, r)| {
                r.recording
                    .as_ref()
                    .is_some_and(|s| Some(&s.session_id) == session.as_ref())
            })
            .map(|(k, _)| k.clone());
        let Some(room) = found else {
            return self.refuse(req, DefinedCondition::ItemNotFound, "unknown session_id");
        };
        self.out.push_back(Action::Reply {
            req,
            result: Ok(None),
        });
        match j.status {
            Some(Status::On) => self.set_recording_status(&room, Status::On, None),
            Some(Status::Off) if j.failure_reason.is_some() && j.should_retry == Some(true) => {
                if let Some(p) = self.recorders.as_mut() {
                    p.mark_failed(from_nick, now);
                }
                self.retry_recording(&room, now);
            }
            Some(Status::Off) => self.set_recording_status(&room, Status::Off, j.failure_reason),
            _ => {}
        }
    }

    pub(super) fn set_recording_status(
        &mut self,
        room: &BareJid,
        status: Status,
        failure: Option<FailureReason>,
    ) {
        let Some(rec) = self.rooms.get_mut(room).and_then(|r| r.recording.as_mut()) else {
            return;
        };
        if rec.status == status && rec.failure == failure {
            return;
        }
        tracing::info!(%room, session = %rec.session_id, ?status, ?failure, "recording status");
        rec.status = status;
        rec.failure = failure;
        self.publish(room);
    }
}
