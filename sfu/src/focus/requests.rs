//! Parsing and checking the requests the focus answers. Every parse error is
//! answered with the condition it maps to; everything here is a pure
//! function of the request and the focus state.

use std::time::Instant;

use proto::jibri::{Action as JibriAction, JibriIq};
use proto::mute::MuteIq;
use proto::rayo::RayoIq;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{IncomingIq, IqKind};

use super::Focus;

impl Focus {
    pub(super) fn handle_request(&mut self, req: IncomingIq, _now: Instant) {
        if req.kind != IqKind::Set {
            return self.refuse(
                req,
                DefinedCondition::BadRequest,
                "expected an iq of type set",
            );
        }
        let ns = req.payload.ns();
        match ns.as_str() {
            proto::ns::FOCUS => match proto::focus::ConferenceIq::try_from(&req.payload) {
                Err(e) => self.refuse(req, e.condition(), &e.to_string()),
                Ok(c) => match c.room {
                    None => self.refuse(
                        req,
                        DefinedCondition::BadRequest,
                        "<conference> is missing the 'room' attribute",
                    ),
                    Some(room) => self.conference(req, room),
                },
            },
            proto::ns::JIBRI => match JibriIq::try_from(&req.payload) {
                Err(e) => self.refuse(req, e.condition(), &e.to_string()),
                Ok(j) if j.action.is_none() => self.refuse(
                    req,
                    DefinedCondition::BadRequest,
                    "<jibri> is missing the 'action' attribute",
                ),
                Ok(j) => {
                    if self.hosted_room_of(&req).is_none() {
                        return self.refuse(
                            req,
                            DefinedCondition::Forbidden,
                            "not from a conference of this focus",
                        );
                    }
                    let what = match j.action {
                        Some(JibriAction::Stop) => "no recording to stop",
                        _ => "no recorder in the pool",
                    };
                    self.refuse(req, DefinedCondition::ServiceUnavailable, what)
                }
            },
            proto::ns::RAYO => match RayoIq::try_from(&req.payload) {
                Err(e) => self.refuse(req, e.condition(), &e.to_string()),
                Ok(_) => {
                    if self.hosted_room_of(&req).is_none() {
                        return self.refuse(
                            req,
                            DefinedCondition::Forbidden,
                            "not from a conference of this focus",
                        );
                    }
                    self.refuse(
                        req,
                        DefinedCondition::ServiceUnavailable,
                        "no gateway in the pool",
                    )
                }
            },
            proto::ns::MUTE_AUDIO | proto::ns::MUTE_VIDEO => match MuteIq::try_from(&req.payload) {
                Err(e) => self.refuse(req, e.condition(), &e.to_string()),
                Ok(_) => {
                    if self.hosted_room_of(&req).is_none() {
                        return self.refuse(
                            req,
                            DefinedCondition::Forbidden,
                            "not from a conference of this focus",
                        );
                    }
                    self.refuse(
                        req,
                        DefinedCondition::ServiceUnavailable,
                        "the media plane is not running",
                    )
                }
            },
            _ => self.refuse(req, DefinedCondition::ServiceUnavailable, "no such service"),
        }
    }
}
