//! The conference focus, sans-IO: which rooms the focus is in, the
//! conference request (`<conference xmlns="http://jitsi.org/protocol/focus">`),
//! and the checks every moderator request goes through before anything acts
//! on it.
//!
//! [`Focus::handle_event`] takes the XMPP session's events and the time;
//! [`Focus::poll_action`] yields what the driver must do. Malformed requests
//! are answered with the condition their parse error maps to
//! (`bad-request`, or `feature-not-implemented` for unknown actions);
//! requests for services not running yet are answered `service-unavailable`.

pub mod driver;
mod requests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use jid::BareJid;
use minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};
use xmpp_session::core::stanza_error;
use xmpp_session::{Event, IncomingIq};

/// Something the driver must do on the XMPP session.
// Actions are moved once from the queue to the driver; boxing the reply
// would only add an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    Reply {
        req: IncomingIq,
        result: Result<Option<Element>, StanzaError>,
    },
    Join {
        room: BareJid,
        nick: String,
        payloads: Vec<Element>,
    },
    Leave {
        room: BareJid,
    },
}

/// Focus settings the core needs.
#[derive(Debug, Clone)]
pub struct FocusSettings {
    /// The MUC service that hosts meetings (`conference.meet.example`).
    pub muc_service: String,
    pub nick: String,
    /// How long a room may stay without participants before the focus leaves.
    pub empty_room_timeout: Duration,
}

#[derive(Debug, Default)]
struct Room {
    joined: bool,
    /// Conference requests waiting for the focus to be in the room.
    waiting: Vec<IncomingIq>,
    participants: BTreeSet<String>,
    /// Since when the room has had no participants.
    empty_since: Option<Instant>,
}

/// The focus state machine.
#[derive(Debug)]
pub struct Focus {
    settings: FocusSettings,
    rooms: BTreeMap<BareJid, Room>,
    out: VecDeque<Action>,
    refused: u64,
}

impl Focus {
    pub fn new(settings: FocusSettings) -> Self {
        Focus {
            settings,
            rooms: BTreeMap::new(),
            out: VecDeque::new(),
            refused: 0,
        }
    }

    /// Namespaces of the IQ requests the focus answers.
    pub fn iq_namespaces() -> BTreeSet<String> {
        [
            proto::ns::FOCUS,
            proto::ns::JIBRI,
            proto::ns::RAYO,
            proto::ns::MUTE_AUDIO,
            proto::ns::MUTE_VIDEO,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    /// Rooms the focus is in or joining.
    pub fn rooms(&self) -> impl Iterator<Item = &BareJid> {
        self.rooms.keys()
    }

    /// Rooms joined, and participants in them (the focus excluded).
    pub fn counts(&self) -> (usize, usize) {
        let joined = self.rooms.values().filter(|r| r.joined);
        joined.fold((0, 0), |(r, p), room| (r + 1, p + room.participants.len()))
    }

    /// Requests answered with an error since start.
    pub fn refused_total(&self) -> u64 {
        self.refused
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rooms
            .values()
            .filter_map(|r| r.empty_since)
            .min()
            .map(|t| t + self.settings.empty_room_timeout)
    }

    /// Leaves rooms that stayed empty too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<BareJid> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.empty_since
                    .is_some_and(|t| t + self.settings.empty_room_timeout <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for room in expired {
            tracing::info!(%room, "room stayed empty, leaving");
            self.leave(room);
        }
    }

    pub fn handle_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::IqRequest(req) => self.handle_request(req, now),
            Event::RoomJoined { room, .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                r.joined = true;
                if r.participants.is_empty() {
                    r.empty_since = Some(now);
                }
                for req in std::mem::take(&mut r.waiting) {
                    self.out.push_back(Action::Reply {
                        req,
                        result: Ok(Some(ready(&room))),
                    });
                }
            }
            Event::RoomJoinFailed { room, error } => {
                if let Some(r) = self.rooms.remove(&room) {
                    for req in r.waiting {
                        let text = format!("cannot create the room: {:?}", error.defined_condition);
                        self.refuse(req, DefinedCondition::ServiceUnavailable, &text);
                    }
                }
            }
            Event::RoomLeft { room, reason } => {
                tracing::info!(%room, ?reason, "focus left room");
                self.rooms.remove(&room);
            }
            Event::OccupantJoined { room, occupant } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.participants.insert(occupant.nick);
                    r.empty_since = None;
                }
            }
            Event::OccupantLeft { room, occupant, .. } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                r.participants.remove(&occupant.nick);
                if r.participants.is_empty() {
                    tracing::info!(%room, "last participant left, leaving room");
                    self.leave(room);
                }
            }
            Event::Offline => {
                // The session rejoins by itself; requests waiting for a join
                // will be answered when it completes.
                for r in self.rooms.values_mut() {
                    r.joined = false;
                    r.participants.clear();
                }
            }
            _ => {}
        }
    }

    fn leave(&mut self, room: BareJid) {
        if self.rooms.remove(&room).is_some() {
            self.out.push_back(Action::Leave { room });
        }
    }

    fn refuse(&mut self, req: IncomingIq, condition: DefinedCondition, text: &str) {
        self.refused += 1;
        let el: Element = condition.clone().into();
        tracing::warn!(from = ?req.from, ns = %req.payload.ns(), condition = %el.name(), "refused request: {text}");
        self.out.push_back(Action::Reply {
            req,
            result: Err(stanza_error(condition, text)),
        });
    }

    /// The room a request comes from, if the focus hosts it (MUC rewrites the
    /// sender to `room@service/nick`).
    fn hosted_room_of(&self, req: &IncomingIq) -> Option<BareJid> {
        let from = req.from.as_ref()?.to_bare();
        self.rooms.get(&from).filter(|r| r.joined).map(|_| from)
    }

    fn conference(&mut self, req: IncomingIq, room: BareJid) {
        if room.domain().as_str() != self.settings.muc_service {
            let text = format!("rooms live on {}", self.settings.muc_service);
            return self.refuse(req, DefinedCondition::BadRequest, &text);
        }
        match self.rooms.get_mut(&room) {
            Some(r) if r.joined => {
                self.out.push_back(Action::Reply {
                    req,
                    result: Ok(Some(ready(&room))),
                });
            }
            Some(r) => r.waiting.push(req),
            None => {
                tracing::info!(%room, "conference requested, joining room");
                self.rooms.insert(
                    room.clone(),
                    Room {
                        waiting: vec![req],
                        ..Room::default()
                    },
                );
                self.out.push_back(Action::Join {
                    room,
                    nick: self.settings.nick.clone(),
                    payloads: focus_presence(),
                });
            }
        }
    }
}

/// The `ready` answer to a conference request.
fn ready(room: &BareJid) -> Element {
    let mut iq = proto::focus::ConferenceIq::request(room.clone());
    iq.ready = Some(true);
    iq.into()
}

/// The focus's own presence extensions in a room.
fn focus_presence() -> Vec<Element> {
    let features = proto::presence::Features::new([proto::ns::feature::JSON_SOURCES]);
    vec![features.into()]
}

#[cfg(test)]
mod tests;
