//! Dial-out (Rayo `dial`, focus side): a moderator's request is checked
//! (`JvbRoomName` must name this room), forwarded to the least loaded
//! gateway of the pool, and its answer (`<ref uri=..>`) relayed back; on an
//! error or timeout the next gateway is tried, twice at most.
//!
//! While an occupant of the room encrypts end to end, a dial is refused with
//! `not-allowed` and a text saying why (a phone cannot take part in an
//! encrypted meeting); calls already up when someone turns encryption on
//! are left alone (see `e2ee`).

use std::time::Instant;

use jid::{BareJid, Jid};
use minidom::Element;
use proto::rayo::Dial;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{IncomingIq, IqError};

use super::{e2ee, Action, Focus, Pending};

/// Gateways one dial may try.
const MAX_TRIES: usize = 3;

/// A dial forwarded to a gateway, waiting for its answer.
#[derive(Debug)]
pub(super) struct DialAttempt {
    pub req: IncomingIq,
    pub room: BareJid,
    pub dial: Dial,
    pub gateway: String,
    pub tried: Vec<String>,
}

impl Focus {
    pub(super) fn dial_request(
        &mut self,
        req: IncomingIq,
        room: BareJid,
        dial: Dial,
        now: Instant,
    ) {
        if dial.room_name() != Some(room.to_string().as_str()) {
            return self.refuse(
                req,
                DefinedCondition::Forbidden,
                "JvbRoomName must name this room",
            );
        }
        let Some(req) = self.refuse_if_e2ee(req, &room, e2ee::Refused::DialOut) else {
            return;
        };
        self.forward_dial(req, room, dial, vec![], now);
    }

    fn forward_dial(
        &mut self,
        req: IncomingIq,
        room: BareJid,
        dial: Dial,
        tried: Vec<String>,
        now: Instant,
    ) {
        let Some(pool) = self.gateways.as_mut() else {
            return self.refuse(
                req,
                DefinedCondition::ServiceUnavailable,
                "no gateway pool configured",
            );
        };
        let nick = match pool.pick_gateway(&tried, now) {
            Ok(n) => n,
            Err(DefinedCondition::ServiceUnavailable) => {
                return self.refuse(
                    req,
                    DefinedCondition::ServiceUnavailable,
                    "no gateway in the pool",
                )
            }
            Err(c) => return self.refuse(req, c, "no gateway available"),
        };
        let Some(to) = pool
            .members
            .get(&nick)
            .map(|m| Jid::from(m.occupant.clone()))
        else {
            return;
        };
        tracing::info!(%room, gateway = %nick, "dial-out routed");
        let mut tried = tried;
        tried.push(nick.clone());
        let payload: Element = dial.clone().into();
        let attempt = DialAttempt {
            req,
            room,
            dial,
            gateway: nick,
            tried,
        };
        self.send_iq(to, payload, Pending::Dial(Box::new(attempt)));
    }

    pub(super) fn dial_answered(
        &mut self,
        attempt: DialAttempt,
        result: Result<Option<Element>, IqError>,
        now: Instant,
    ) {
        let DialAttempt {
            req,
            room,
            dial,
            gateway,
            tried,
        } = attempt;
        match result {
            Ok(payload) => self.out.push_back(Action::Reply {
                req,
                result: Ok(payload),
            }),
            // The gateway's own refusal of the call (e.g. a bad number) goes
            // back as it is; faults of the gateway itself are retried.
            Err(IqError::Error(e))
                if !matches!(
                    e.defined_condition,
                    DefinedCondition::InternalServerError
                        | DefinedCondition::ServiceUnavailable
                        | DefinedCondition::ResourceConstraint
                        | DefinedCondition::RemoteServerTimeout
                ) =>
            {
                self.out.push_back(Action::Reply {
                    req,
                    result: Err(*e),
                })
            }
            Err(e) => {
                tracing::warn!(%room, %gateway, "gateway failed the dial: {e}");
                if let Some(p) = self.gateways.as_mut() {
                    p.mark_failed(&gateway, now);
                }
                if tried.len() < MAX_TRIES {
                    self.forward_dial(req, room, dial, tried, now);
                } else {
                    self.refuse(
                        req,
                        DefinedCondition::ServiceUnavailable,
                        "every gateway tried failed",
                    );
                }
            }
        }
    }
}
