//! Multi-user chat (XEP-0045) membership: join with presence extensions,
//! track occupants, leave, and rejoin every wanted room after a reconnect.

use std::collections::BTreeMap;

use jid::{BareJid, FullJid, ResourcePart};
use minidom::Element;
use xmpp_parsers::muc::user::{Affiliation, MucUser, Role, Status};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;

use super::{Event, Session};

/// One occupant of a room as its latest presence describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupant {
    /// `room@service/nick`.
    pub occupant_jid: FullJid,
    /// The nick (resource of the occupant JID).
    pub nick: String,
    /// The real JID, where the room shows it (non-anonymous rooms, or to owners).
    pub real_jid: Option<FullJid>,
    pub affiliation: Affiliation,
    pub role: Role,
    /// Presence payloads other than the MUC `<x/>` (nick, features, Jitsi extensions).
    pub payloads: Vec<Element>,
    /// The presence `<status>` text, if any.
    pub status: Option<String>,
}

impl Occupant {
    /// The first payload with this name and namespace.
    pub fn payload(&self, name: &str, ns: &str) -> Option<&Element> {
        self.payloads.iter().find(|p| p.is(name, ns))
    }
}

/// Why we (or someone) left a room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomLeftReason {
    /// A normal leave.
    Left,
    /// Kicked by a moderator (status 307).
    Kicked,
    /// Banned (status 301).
    Banned,
    /// The room was destroyed.
    Destroyed,
    /// The service is shutting down (status 332) or our connection dropped.
    Shutdown,
}

#[derive(Debug)]
pub(super) struct Room {
    nick: String,
    payloads: Vec<Element>,
    status: Option<String>,
    joined: bool,
    occupants: BTreeMap<String, Occupant>,
}

impl Room {
    pub(super) fn reset(&mut self) {
        self.joined = false;
        self.occupants.clear();
    }
}

impl Session {
    /// Joins `room` as `nick` with these presence payloads. The room is kept
    /// and rejoined after every reconnect until [`leave_room`](Self::leave_room).
    pub fn join_room(&mut self, room: BareJid, nick: String, payloads: Vec<Element>) {
        self.rooms.insert(
            room.clone(),
            Room {
                nick,
                payloads,
                status: None,
                joined: false,
                occupants: BTreeMap::new(),
            },
        );
        if self.is_online() {
            self.send_join(&room);
        }
    }

    /// Replaces our presence payloads (and status text) in `room` and
    /// publishes them.
    pub fn set_room_presence(
        &mut self,
        room: &BareJid,
        payloads: Vec<Element>,
        status: Option<String>,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.payloads = payloads;
        r.status = status;
        if r.joined && self.is_online() {
            if let Some(p) = self.presence_for(room, false) {
                self.send(Stanza::Presence(p));
            }
        }
    }

    /// Leaves `room` and forgets it.
    pub fn leave_room(&mut self, room: &BareJid) {
        let Some(r) = self.rooms.remove(room) else {
            return;
        };
        if self.is_online() {
            if let Ok(nick) = ResourcePart::new(&r.nick) {
                let to = room.with_resource(&nick);
                self.send(Stanza::Presence(Presence::unavailable().with_to(to)));
            }
        }
    }

    /// Occupants of a joined room (ourselves excluded).
    pub fn occupants(&self, room: &BareJid) -> impl Iterator<Item = &Occupant> {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|r| r.occupants.values())
    }

    /// The rooms we want to be in.
    pub fn rooms(&self) -> impl Iterator<Item = &BareJid> {
        self.rooms.keys()
    }

    /// Whether we are currently in `room`.
    pub fn is_joined(&self, room: &BareJid) -> bool {
        self.rooms.get(room).is_some_and(|r| r.joined)
    }

    pub(super) fn send_join(&mut self, room: &BareJid) {
        if let Some(p) = self.presence_for(room, true) {
            self.send(Stanza::Presence(p));
        }
    }

    fn presence_for(&self, room: &BareJid, join: bool) -> Option<Presence> {
        let r = self.rooms.get(room)?;
        let nick = match ResourcePart::new(&r.nick) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(%room, nick = %r.nick, "invalid nick: {e}");
                return None;
            }
        };
        let mut p = Presence::available().with_to(room.with_resource(&nick));
        if join {
            let muc =
                Muc::new().with_history(xmpp_parsers::muc::muc::History::new().with_maxstanzas(0));
            p.add_payload(muc);
        }
        for payload in &r.payloads {
            p.payloads.push(payload.clone());
        }
        if let Some(s) = &r.status {
            p.set_status("", s.as_str());
        }
        Some(p)
    }

    pub(super) fn handle_presence(&mut self, p: Presence) {
        let Some(from) = p.from.clone().and_then(|j| j.try_into_full().ok()) else {
            self.emit(Event::Presence(Box::new(p)));
            return;
        };
        let room_jid = from.to_bare();
        let Some(room) = self.rooms.get(&room_jid) else {
            self.emit(Event::Presence(Box::new(p)));
            return;
        };
        let nick = from.resource().as_str().to_owned();
        let is_self_nick = nick == room.nick;

        if p.type_ == PresenceType::Error {
            let error = p
                .payloads
                .iter()
                .find_map(|e| StanzaError::try_from(e.clone()).ok())
                .unwrap_or_else(|| {
                    super::stanza_error(
                        xmpp_parsers::stanza_error::DefinedCondition::UndefinedCondition,
                        "",
                    )
                });
            if is_self_nick || !room.joined {
                tracing::warn!(room = %room_jid, "room join refused: {:?}", error.defined_condition);
                self.rooms.remove(&room_jid);
                self.emit(Event::RoomJoinFailed {
                    room: room_jid,
                    error,
                });
            }
            return;
        }

        let mut muc_user = None;
        let mut payloads = Vec::with_capacity(p.payloads.len());
        for e in p.payloads {
            if e.is("x", xmpp_parsers::ns::MUC_USER) {
                muc_user = MucUser::try_from(e).ok();
            } else {
                payloads.push(e);
            }
        }
        let statuses = muc_user
            .as_ref()
            .map(|m| m.status.clone())
            .unwrap_or_default();
        let item = muc_user.and_then(|m| m.items.into_iter().next());
        let occupant = Occupant {
            occupant_jid: from.clone(),
            nick: nick.clone(),
            real_jid: item.as_ref().and_then(|i| i.jid.clone()),
            affiliation: item
                .as_ref()
                .map(|i| i.affiliation.clone())
                .unwrap_or(Affiliation::None),
            role: item.as_ref().map(|i| i.role.clone()).unwrap_or(Role::None),
            payloads,
            status: p.statuses.values().next().map(|s| s.to_string()),
        };
        let is_self = statuses.contains(&Status::SelfPresence) || is_self_nick;
        let reason = if statuses.contains(&Status::Kicked) {
            RoomLeftReason::Kicked
        } else if statuses.contains(&Status::Banned) {
            RoomLeftReason::Banned
        } else if statuses.contains(&Status::ServiceShutdown) {
            RoomLeftReason::Shutdown
        } else {
            RoomLeftReason::Left
        };

        let Some(room) = self.rooms.get_mut(&room_jid) else {
            return;
        };
        if p.type_ == PresenceType::Unavailable {
            if is_self {
                // Kicked, banned or the room went away: forget it.
                self.rooms.remove(&room_jid);
                self.emit(Event::RoomLeft {
                    room: room_jid,
                    reason,
                });
            } else if let Some(old) = room.occupants.remove(&nick) {
                let _ = old;
                self.emit(Event::OccupantLeft {
                    room: room_jid,
                    occupant,
                    reason,
                });
            }
            return;
        }
        if is_self {
            let first = !room.joined;
            room.joined = true;
            if first {
                tracing::info!(room = %room_jid, nick = %nick, role = ?occupant.role, "joined room");
                self.emit(Event::RoomJoined {
                    room: room_jid,
                    me: occupant,
                });
            }
            return;
        }
        let known = room.occupants.insert(nick, occupant.clone()).is_some();
        if known {
            self.emit(Event::OccupantChanged {
                room: room_jid,
                occupant,
            });
        } else {
            self.emit(Event::OccupantJoined {
                room: room_jid,
                occupant,
            });
        }
    }
}
