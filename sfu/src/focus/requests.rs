//! Parsing and dispatching the requests the focus answers. A request is
//! parsed into a typed [`Request`] first; every parse error is answered with
//! the condition it maps to. Then: conference requests from anyone;
//! recorder reports only from the recorders' brewery; everything else only
//! from inside a room the focus hosts, and moderator requests only from its
//! moderators.

use std::time::Instant;

use proto::focus::ConferenceIq;
use proto::jibri::JibriIq;
use proto::mute::MuteIq;
use proto::rayo::RayoIq;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{IncomingIq, IqKind};

use super::Focus;

/// A well-formed request to the focus.
#[derive(Debug)]
pub(super) enum Request {
    Conference(ConferenceIq),
    Jibri(JibriIq),
    Rayo(RayoIq),
    Mute(MuteIq),
    Jingle(proto::jingle::Jingle),
}

/// Why a request is refused before any state is looked at.
type Refusal = (DefinedCondition, String);

fn parse(req: &IncomingIq) -> Result<Request, Refusal> {
    if req.kind != IqKind::Set {
        return Err((
            DefinedCondition::BadRequest,
            "expected an iq of type set".into(),
        ));
    }
    let bad = |e: proto::Error| (e.condition(), e.to_string());
    let missing = |element: &str, attribute: &str| {
        (
            DefinedCondition::BadRequest,
            format!("<{element}> is missing the '{attribute}' attribute"),
        )
    };
    match req.payload.ns().as_str() {
        proto::ns::FOCUS => {
            let c = ConferenceIq::try_from(&req.payload).map_err(bad)?;
            if c.room.is_none() {
                return Err(missing("conference", "room"));
            }
            Ok(Request::Conference(c))
        }
        proto::ns::JIBRI => {
            let j = JibriIq::try_from(&req.payload).map_err(bad)?;
            if j.action.is_none() && j.status.is_none() {
                return Err(missing("jibri", "action"));
            }
            Ok(Request::Jibri(j))
        }
        proto::ns::RAYO => RayoIq::try_from(&req.payload)
            .map(Request::Rayo)
            .map_err(bad),
        proto::ns::MUTE_AUDIO | proto::ns::MUTE_VIDEO => MuteIq::try_from(&req.payload)
            .map(Request::Mute)
            .map_err(bad),
        proto::ns::JINGLE => proto::jingle::Jingle::try_from(&req.payload)
            .map(Request::Jingle)
            .map_err(bad),
        _ => Err((
            DefinedCondition::ServiceUnavailable,
            "no such service".into(),
        )),
    }
}

impl Focus {
    pub(super) fn handle_request(&mut self, req: IncomingIq, now: Instant) {
        let request = match parse(&req) {
            Ok(r) => r,
            Err((condition, text)) => return self.refuse(req, condition, &text),
        };
        let request = match request {
            Request::Conference(c) => {
                if let Some(room) = c.room {
                    self.conference(req, room);
                }
                return;
            }
            other => other,
        };
        // Status reports from a recorder of the pool.
        let from_bare = req.from.as_ref().map(|j| j.to_bare());
        let from_recorders = self
            .recorders
            .as_ref()
            .is_some_and(|p| Some(&p.room) == from_bare.as_ref());
        if from_recorders {
            let nick = req
                .from
                .as_ref()
                .and_then(|j| j.resource())
                .map(|r| r.to_string())
                .unwrap_or_default();
            return match request {
                Request::Jibri(j) if j.status.is_some() => self.recorder_report(req, &nick, j, now),
                _ => self.refuse(
                    req,
                    DefinedCondition::BadRequest,
                    "expected a recording status report",
                ),
            };
        }
        let Some((room, moderator)) = self.sender_in_room(&req) else {
            return self.refuse(
                req,
                DefinedCondition::Forbidden,
                "not from a conference of this focus",
            );
        };
        match request {
            Request::Jingle(j) => {
                let nick = req
                    .from
                    .as_ref()
                    .and_then(|f| f.resource())
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                self.jingle_request(req, room, nick, j)
            }
            Request::Mute(m) => self.mute(req, &room, moderator, m),
            _ if !moderator => self.refuse(
                req,
                DefinedCondition::Forbidden,
                "only moderators may ask for this",
            ),
            Request::Jibri(j) if j.action.is_some() => self.jibri_request(req, room, j, now),
            Request::Jibri(_) => self.refuse(
                req,
                DefinedCondition::BadRequest,
                "<jibri> is missing the 'action' attribute",
            ),
            Request::Rayo(RayoIq::Dial(d)) => self.dial_request(req, room, d, now),
            Request::Rayo(_) => self.refuse(
                req,
                DefinedCondition::BadRequest,
                "hangup and ref go to the call, not the focus",
            ),
            Request::Conference(_) => unreachable!("answered above"),
        }
    }
}
