//! The recorder as a pool member, sans-IO: the focus's Jibri requests in,
//! replies, job starts and stops, status reports and brewery presence out.
//!
//! Contract:
//! - A start (`<jibri action="start">` with a `session_id` and a `room`) is
//!   answered `pending` at once and becomes [`Output::Start`]; the job's
//!   [`JobEvent::On`] becomes a `status="on"` report to the requester, and
//!   its end a `status="off"` report (with `failure_reason` and
//!   `should_retry` when it failed).
//! - When `capacity` jobs run, a start is refused with `resource-constraint`
//!   ("busy") and presence says `busy`; presence says `idle` otherwise.
//! - A stream start whose `streamid` is malformed, or names an ingest host
//!   outside the allow-list, is refused with `not-allowed` / `bad-request`
//!   and a text naming the host (see [`stream_url`]).
//! - A stop names a running session (`session_id`): answered `off`, then
//!   [`Output::Stop`]; an unknown session gets `item-not-found`.
//! - Anything else (no room, no session id, SIP mode) is `bad-request` or
//!   `feature-not-implemented`, never a panic.

use std::collections::{BTreeMap, VecDeque};

use jid::{BareJid, Jid};
use minidom::Element;
use proto::jibri::{
    Action, BusyStatus, FailureReason, Health, JibriIq, JibriService, JibriStatus, RecordingMode,
    Status,
};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::IncomingIq;

/// What a start asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub session: String,
    pub room: BareJid,
    pub mode: RecordingMode,
    /// Stream mode: the RTMP(S) URL to publish to.
    pub stream_url: Option<String>,
    /// Who to report to (the focus).
    pub focus: Jid,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    Reply {
        req: IncomingIq,
        result: Result<Option<Element>, (DefinedCondition, String)>,
    },
    Start(StartRequest),
    Stop {
        session: String,
    },
    /// A `<jibri status=..>` report for the focus (an IQ set).
    Report {
        to: Jid,
        iq: JibriIq,
    },
    /// New brewery presence payloads.
    Presence(Vec<Element>),
}

/// How a job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// Media is being written.
    On,
    /// Ended and finalized (stop, empty room, no media, max length).
    Finished,
    /// Ended by a failure.
    Failed { reason: FailureReason, retry: bool },
}

#[derive(Debug)]
struct Job {
    focus: Jid,
}

/// See the module docs.
#[derive(Debug)]
pub struct Member {
    capacity: usize,
    allowed_hosts: Vec<String>,
    jobs: BTreeMap<String, Job>,
    healthy: bool,
    out: VecDeque<Output>,
    last_busy: Option<bool>,
}

impl Member {
    /// `allowed_hosts`: RTMP ingest hosts stream mode may publish to
    /// (`*.example.com` matches subdomains).
    pub fn new(capacity: usize, allowed_hosts: Vec<String>) -> Member {
        let mut m = Member {
            capacity: capacity.max(1),
            allowed_hosts,
            jobs: BTreeMap::new(),
            healthy: true,
            out: VecDeque::new(),
            last_busy: None,
        };
        m.publish();
        m
    }

    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn running(&self) -> usize {
        self.jobs.len()
    }

    /// The brewery presence payloads for the current load.
    pub fn presence(&self) -> Vec<Element> {
        let busy = if self.jobs.len() >= self.capacity {
            BusyStatus::Busy
        } else {
            BusyStatus::Idle
        };
        let health = if self.healthy {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        vec![
            JibriStatus::new(busy, health).into(),
            proto::presence::Features::new([proto::ns::feature::JIBRI]).into(),
        ]
    }

    fn publish(&mut self) {
        let busy = self.jobs.len() >= self.capacity;
        if self.last_busy != Some(busy) {
            self.last_busy = Some(busy);
            self.out.push_back(Output::Presence(self.presence()));
        }
    }

    fn refuse(&mut self, req: IncomingIq, condition: DefinedCondition, text: impl Into<String>) {
        self.out.push_back(Output::Reply {
            req,
            result: Err((condition, text.into())),
        });
    }

    /// A Jibri IQ from the focus.
    pub fn handle_request(&mut self, req: IncomingIq) {
        let j = match JibriIq::try_from(&req.payload) {
            Ok(j) => j,
            Err(e) => return self.refuse(req, DefinedCondition::BadRequest, e.to_string()),
        };
        match j.action {
            Some(Action::Start) => self.start(req, j),
            Some(Action::Stop) => self.stop(req, j),
            None => self.refuse(req, DefinedCondition::BadRequest, "no action"),
        }
    }

    fn start(&mut self, req: IncomingIq, j: JibriIq) {
        let Some(session) = j.session_id.clone().filter(|s| !s.is_empty()) else {
            return self.refuse(
                req,
                DefinedCondition::BadRequest,
                "start without session_id",
            );
        };
        let Some(room) = j.room.clone() else {
            return self.refuse(req, DefinedCondition::BadRequest, "start without room");
        };
        let Some(focus) = req.from.clone() else {
            return self.refuse(req, DefinedCondition::BadRequest, "start without a sender");
        };
        if self.jobs.contains_key(&session) {
            return self.refuse(req, DefinedCondition::Conflict, "session already running");
        }
        let mode = match j.service() {
            JibriService::Sip => {
                return self.refuse(
                    req,
                    DefinedCondition::FeatureNotImplemented,
                    "SIP-video gateway mode is not offered",
                )
            }
            JibriService::File => RecordingMode::File,
            JibriService::Stream => RecordingMode::Stream,
        };
        let stream_url = match (mode, &j.stream_id) {
            (RecordingMode::Stream, Some(id)) => match stream_url(id, &self.allowed_hosts) {
                Ok(url) => Some(url),
                Err(e) => return self.refuse(req, e.condition(), e.to_string()),
            },
            (RecordingMode::Stream, None) => {
                return self.refuse(
                    req,
                    DefinedCondition::BadRequest,
                    "stream mode needs a streamid",
                )
            }
            _ => None,
        };
        if self.jobs.len() >= self.capacity {
            return self.refuse(req, DefinedCondition::ResourceConstraint, "busy");
        }
        let mut answer = JibriIq::status(Status::Pending);
        answer.session_id = Some(session.clone());
        self.out.push_back(Output::Reply {
            req,
            result: Ok(Some(answer.into())),
        });
        self.jobs.insert(
            session.clone(),
            Job {
                focus: focus.clone(),
            },
        );
        self.out.push_back(Output::Start(StartRequest {
            session,
            room,
            mode,
            stream_url,
            focus,
        }));
        self.publish();
    }

    fn stop(&mut self, req: IncomingIq, j: JibriIq) {
        let Some(session) = j.session_id.filter(|s| self.jobs.contains_key(s)) else {
            return self.refuse(req, DefinedCondition::ItemNotFound, "no such session");
        };
        let mut answer = JibriIq::status(Status::Off);
        answer.session_id = Some(session.clone());
        self.out.push_back(Output::Reply {
            req,
            result: Ok(Some(answer.into())),
        });
        self.out.push_back(Output::Stop { session });
    }

    /// What a running job reports.
    pub fn job_event(&mut self, session: &str, event: JobEvent) {
        let Some(job) = self.jobs.get(session) else {
            return;
        };
        let mut iq = match &event {
            JobEvent::On => JibriIq::status(Status::On),
            JobEvent::Finished => JibriIq::status(Status::Off),
            JobEvent::Failed { reason, retry } => JibriIq::failure(*reason, *retry),
        };
        iq.session_id = Some(session.to_owned());
        self.out.push_back(Output::Report {
            to: job.focus.clone(),
            iq,
        });
        if event != JobEvent::On {
            self.jobs.remove(session);
            self.publish();
        }
    }
}

/// Why a `streamid` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("streamid is not an rtmp:// or rtmps:// URL nor a stream key")]
    Malformed,
    #[error("streaming to {0} is not allowed on this recorder")]
    HostNotAllowed(String),
}

impl StreamIdError {
    fn condition(&self) -> DefinedCondition {
        match self {
            StreamIdError::Malformed => DefinedCondition::BadRequest,
            StreamIdError::HostNotAllowed(_) => DefinedCondition::NotAllowed,
        }
    }
}

/// YouTube's RTMP ingest, for a bare stream key.
pub const YOUTUBE_INGEST: &str = "rtmp://a.rtmp.youtube.com/live2";

/// The URL a `streamid` publishes to: a full `rtmp://`/`rtmps://` URL
/// whose host is allowed, or a stream key (letters, digits, `-`, `_`, `.`)
/// for YouTube's ingest (whose host must be allowed too).
pub fn stream_url(stream_id: &str, allowed_hosts: &[String]) -> Result<String, StreamIdError> {
    let id = stream_id.trim();
    let url = if id.starts_with("rtmp://") || id.starts_with("rtmps://") {
        id.to_owned()
    } else if !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        format!("{YOUTUBE_INGEST}/{id}")
    } else {
        return Err(StreamIdError::Malformed);
    };
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host.is_empty() || rest.len() <= authority.len() + 1 {
        return Err(StreamIdError::Malformed);
    }
    let allowed = allowed_hosts.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == a,
        }
    });
    if !allowed {
        return Err(StreamIdError::HostNotAllowed(host));
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
