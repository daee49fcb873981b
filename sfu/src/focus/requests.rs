//! Parsing and checking the requests the focus answers. A request is parsed
//! into a typed [`Request`] first; every parse error is answered with the
//! condition it maps to. Everything here is a pure function of the request
//! and the focus state.

use std::time::Instant;

use proto::focus::ConferenceIq;
use proto::jibri::{Action as JibriAction, JibriIq};
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
            if j.action.is_none() {
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
        _ => Err((
            DefinedCondition::ServiceUnavailable,
            "no such service".into(),
        )),
    }
}

impl Focus {
    pub(super) fn handle_request(&mut self, req: IncomingIq, _now: Instant) {
        let request = match parse(&req) {
            Ok(r) => r,
            Err((condition, text)) => return self.refuse(req, condition, &text),
        };
        if let Request::Conference(c) = request {
            if let Some(room) = c.room {
                self.conference(req, room);
            }
            return;
        }
        // Everything else comes from inside a conference this focus hosts.
        if self.hosted_room_of(&req).is_none() {
            return self.refuse(
                req,
                DefinedCondition::Forbidden,
                "not from a conference of this focus",
            );
        }
        let absent = match request {
            Request::Jibri(j) if j.action == Some(JibriAction::Stop) => {
                "no recording to stop".to_owned()
            }
            Request::Jibri(_) => "no recorder in the pool".to_owned(),
            Request::Rayo(RayoIq::Dial(d)) => format!("no gateway in the pool to call {}", d.to),
            Request::Rayo(_) => "no call to act on".to_owned(),
            Request::Mute(m) => match m.jid {
                Some(jid) => format!("cannot mute {jid}: the media plane is not running"),
                None => "the media plane is not running".to_owned(),
            },
            Request::Conference(_) => unreachable!("answered above"),
        };
        self.refuse(req, DefinedCondition::ServiceUnavailable, &absent)
    }
}
