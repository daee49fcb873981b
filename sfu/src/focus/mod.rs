//! The conference focus, sans-IO: the rooms it owns, who is a moderator,
//! and where moderator requests go.
//!
//! [`Focus::handle_event`] takes the XMPP session's events and the time,
//! [`Focus::handle_iq_result`] the answers to the IQs it asked the driver to
//! send; [`Focus::poll_action`] yields what the driver must do. Requests are
//! parsed first (`requests`), and a malformed one is answered with the
//! condition its parse error maps to (`bad-request`, or
//! `feature-not-implemented` for unknown actions). Recording (`recording`)
//! and dial-out (`dialout`) go to members of the recorder and gateway pools
//! (`pools`), chosen from their brewery presence; roles are in `roles`.
//! Neither is started while an occupant encrypts end to end (`e2ee`).

mod dialout;
pub mod driver;
mod e2ee;
mod pools;
mod recording;
mod requests;
mod roles;
mod sessions;

pub use sessions::endpoint_key;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};
use xmpp_session::core::stanza_error;
use xmpp_session::{Event, IncomingIq, IqError, IqKind, Occupant};

use pools::Pool;
use recording::Recording;
use roles::Participant;

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
    /// Replace the focus's presence payloads in a room.
    Presence {
        room: BareJid,
        payloads: Vec<Element>,
    },
    /// Send an IQ set; its outcome goes to [`Focus::handle_iq_result`] with `tag`.
    Iq {
        to: Jid,
        payload: Element,
        tag: u64,
    },
    /// Ask the media plane for an endpoint; its SDP offer goes to
    /// [`Focus::handle_offer`].
    CreateEndpoint {
        conference: String,
        endpoint: String,
    },
    /// Give the media plane a participant's SDP answer.
    AcceptAnswer {
        endpoint: String,
        sdp: String,
    },
    RemoveEndpoint {
        endpoint: String,
    },
    /// Let an endpoint open its bridge channel with this token.
    ExpectChannel {
        conference: String,
        endpoint: String,
        token: String,
    },
    /// Stop (or resume) forwarding an endpoint's audio or video.
    ForceMute {
        endpoint: String,
        audio: bool,
        muted: bool,
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
    /// The recorders' brewery, if recording is offered.
    pub recorders: Option<BareJid>,
    /// The gateways' brewery, if dial-out is offered.
    pub gateways: Option<BareJid>,
    /// Domains service participants log in from.
    pub trusted_domains: Vec<String>,
    /// Make the first participant owner when a room has no moderator
    /// (off when tokens decide).
    pub auto_owner: bool,
    /// Seeds session ids.
    pub seed: u64,
    /// Run Jingle sessions with a media plane (off: signalling only).
    pub media: bool,
    /// The focus's JID, written as the `initiator` of its sessions.
    pub focus_jid: Option<String>,
    /// The bridges' brewery where this SFU publishes its load, if any.
    pub bridges: Option<BareJid>,
    /// Participants at which the published `stress_level` reaches 1.0.
    pub capacity: u64,
    /// Public base of the bridge channel (`wss://host`) and the server id
    /// in its path; `None`: no bridge channel is offered.
    pub channel: Option<(String, String)>,
}

/// An IQ the focus sent and what to do with its answer.
#[derive(Debug)]
enum Pending {
    JibriStart {
        room: BareJid,
        session_id: String,
        recorder: String,
    },
    JibriStop {
        room: BareJid,
    },
    Dial(Box<dialout::DialAttempt>),
    SessionInitiate {
        room: BareJid,
        nick: String,
    },
    /// Answers that need no follow-up (forwarded mutes, owner grants).
    Ignore(&'static str),
}

#[derive(Debug, Default)]
struct Room {
    joined: bool,
    /// Conference requests waiting for the focus to be in the room.
    waiting: Vec<IncomingIq>,
    participants: BTreeMap<String, Participant>,
    next_order: u64,
    /// Since when the room has had no participants.
    empty_since: Option<Instant>,
    recording: Option<Recording>,
    sessions: sessions::Sessions,
}

impl Room {
    fn humans(&self) -> usize {
        self.participants.values().filter(|p| !p.service).count()
    }

    /// Whether any occupant encrypts its media end to end.
    fn e2ee(&self) -> bool {
        self.participants.values().any(|p| p.e2ee)
    }
}

/// The focus state machine.
#[derive(Debug)]
pub struct Focus {
    settings: FocusSettings,
    rooms: BTreeMap<BareJid, Room>,
    recorders: Option<Pool>,
    gateways: Option<Pool>,
    pending: BTreeMap<u64, Pending>,
    next_tag: u64,
    rng: u64,
    out: VecDeque<Action>,
    refused: u64,
    /// The (rooms, participants) last published in the bridges' brewery.
    published_load: Option<(usize, usize)>,
}

impl Focus {
    /// A focus; it starts by joining the breweries it routes to.
    pub fn new(settings: FocusSettings) -> Self {
        let mut focus = Focus {
            recorders: settings.recorders.clone().map(Pool::new),
            gateways: settings.gateways.clone().map(Pool::new),
            rng: settings.seed | 1,
            settings,
            rooms: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_tag: 1,
            out: VecDeque::new(),
            refused: 0,
            published_load: None,
        };
        if let Some(room) = focus.settings.bridges.clone() {
            let payloads = vec![focus.bridge_stats().into()];
            focus.out.push_back(Action::Join {
                room,
                nick: focus.settings.nick.clone(),
                payloads,
            });
            focus.published_load = Some(focus.counts());
        }
        for pool in [&focus.recorders, &focus.gateways].into_iter().flatten() {
            focus.out.push_back(Action::Join {
                room: pool.room.clone(),
                nick: focus.settings.nick.clone(),
                payloads: vec![],
            });
        }
        focus
    }

    /// Namespaces of the IQ requests the focus answers.
    pub fn iq_namespaces() -> BTreeSet<String> {
        [
            proto::ns::FOCUS,
            proto::ns::JIBRI,
            proto::ns::RAYO,
            proto::ns::MUTE_AUDIO,
            proto::ns::MUTE_VIDEO,
            proto::ns::JINGLE,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    /// Rooms the focus is in or joining (breweries excluded).
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

    /// The answer to an [`Action::Iq`].
    pub fn handle_iq_result(
        &mut self,
        tag: u64,
        result: Result<Option<Element>, IqError>,
        now: Instant,
    ) {
        match self.pending.remove(&tag) {
            Some(Pending::JibriStart {
                room,
                session_id,
                recorder,
            }) => self.start_answered(room, session_id, recorder, result, now),
            Some(Pending::JibriStop { room }) => {
                if let Err(e) = &result {
                    tracing::warn!(%room, "recorder did not confirm the stop: {e}");
                }
                self.set_recording_status(&room, proto::jibri::Status::Off, None);
            }
            Some(Pending::Dial(attempt)) => self.dial_answered(*attempt, result, now),
            Some(Pending::SessionInitiate { room, nick }) => {
                if let Err(e) = result {
                    self.initiate_failed(&room, &nick, &e.to_string());
                }
            }
            Some(Pending::Ignore(what)) => {
                if let Err(e) = result {
                    tracing::warn!("{what} failed: {e}");
                }
            }
            None => {}
        }
    }

    pub fn handle_event(&mut self, event: Event, now: Instant) {
        self.event(event, now);
        self.publish_load();
    }

    /// The colibri `stats` this SFU publishes in the bridges' brewery.
    pub fn bridge_stats(&self) -> proto::colibri::ColibriStats {
        let (rooms, participants) = self.counts();
        let mut stats = proto::colibri::ColibriStats::new();
        stats.set_conferences(rooms as u64);
        stats.set_participants(participants as u64);
        stats.set_stress_level(participants as f64 / self.settings.capacity.max(1) as f64);
        stats.set_healthy(true);
        stats.set_graceful_shutdown(false);
        stats.set_version(env!("CARGO_PKG_VERSION").to_owned());
        stats
    }

    /// Republishes the load when it changed.
    fn publish_load(&mut self) {
        let Some(room) = self.settings.bridges.clone() else {
            return;
        };
        let load = Some(self.counts());
        if load != self.published_load {
            self.published_load = load;
            self.out.push_back(Action::Presence {
                room,
                payloads: vec![self.bridge_stats().into()],
            });
        }
    }

    fn event(&mut self, event: Event, now: Instant) {
        match event {
            Event::IqRequest(req) => self.handle_request(req, now),
            Event::RoomJoined { room, .. } => self.joined(room, now),
            Event::RoomJoinFailed { room, error } => {
                if let Some(r) = self.rooms.remove(&room) {
                    for req in r.waiting {
                        let text = format!("cannot create the room: {:?}", error.defined_condition);
                        self.refuse(req, DefinedCondition::ServiceUnavailable, &text);
                    }
                } else {
                    tracing::error!(%room, condition = ?error.defined_condition, "cannot join the brewery");
                }
            }
            Event::RoomLeft { room, reason } => {
                tracing::info!(%room, ?reason, "focus left room");
                self.rooms.remove(&room);
            }
            Event::OccupantJoined { room, occupant }
            | Event::OccupantChanged { room, occupant } => self.occupant(room, occupant),
            Event::OccupantLeft {
                room,
                occupant,
                reason,
            } => {
                let kicked = matches!(
                    reason,
                    xmpp_session::RoomLeftReason::Kicked | xmpp_session::RoomLeftReason::Banned
                );
                self.occupant_left(room, &occupant.nick, kicked, now)
            }
            Event::Offline => {
                // The session rejoins by itself; requests waiting for a join
                // are answered when it completes.
                for r in self.rooms.values_mut() {
                    r.joined = false;
                    r.participants.clear();
                }
                for pool in [&mut self.recorders, &mut self.gateways]
                    .into_iter()
                    .flatten()
                {
                    pool.members.clear();
                }
            }
            _ => {}
        }
    }

    fn pool_mut(&mut self, room: &BareJid) -> Option<&mut Pool> {
        [&mut self.recorders, &mut self.gateways]
            .into_iter()
            .flatten()
            .find(|p| &p.room == room)
    }

    fn joined(&mut self, room: BareJid, now: Instant) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.joined = true;
        if r.humans() == 0 {
            r.empty_since = Some(now);
        }
        for req in std::mem::take(&mut r.waiting) {
            self.out.push_back(Action::Reply {
                req,
                result: Ok(Some(ready(&room))),
            });
        }
        if self.rooms.get(&room).is_some_and(|r| r.recording.is_some()) {
            self.publish(&room);
        }
    }

    fn occupant(&mut self, room: BareJid, occupant: Occupant) {
        if let Some(pool) = self.pool_mut(&room) {
            pool.update(&occupant);
            return;
        }
        let trusted = self.settings.trusted_domains.clone();
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let order = match r.participants.get(&occupant.nick) {
            Some(p) => p.order,
            None => {
                r.next_order += 1;
                r.next_order
            }
        };
        let p = roles::classify(&occupant, &trusted, order);
        if !p.service {
            r.empty_since = None;
        }
        let was_e2ee = r.e2ee();
        let new = r.participants.insert(occupant.nick.clone(), p).is_none();
        if r.e2ee() != was_e2ee {
            tracing::info!(%room, nick = %occupant.nick, e2ee = !was_e2ee, "end-to-end encryption in the room changed");
        }
        self.elect(&room);
        if new {
            self.invite(&room, &occupant.nick);
        }
    }

    fn occupant_left(&mut self, room: BareJid, nick: &str, kicked: bool, now: Instant) {
        if let Some(pool) = self.pool_mut(&room) {
            pool.remove(nick);
            // A recorder that vanished mid-recording is replaced.
            let affected: Vec<BareJid> = self
                .rooms
                .iter()
                .filter(|(_, r)| {
                    r.recording.as_ref().is_some_and(|s| {
                        s.recorder.as_deref() == Some(nick) && s.status != proto::jibri::Status::Off
                    })
                })
                .map(|(k, _)| k.clone())
                .collect();
            for room in affected {
                tracing::warn!(%room, recorder = %nick, "recorder left the pool mid-recording");
                self.retry_recording(&room, now);
            }
            return;
        }
        self.end_session(&room, nick, kicked);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let was_e2ee = r.e2ee();
        r.participants.remove(nick);
        if r.e2ee() != was_e2ee {
            tracing::info!(%room, %nick, e2ee = false, "end-to-end encryption in the room changed");
        }
        if r.humans() == 0 {
            tracing::info!(%room, "last participant left, leaving room");
            self.leave(room);
        } else {
            self.elect(&room);
        }
    }

    /// Makes the earliest participant owner when nobody moderates.
    fn elect(&mut self, room: &BareJid) {
        if !self.settings.auto_owner {
            return;
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(nick) = roles::needs_moderator(r.participants.iter()).map(|(n, _)| n.clone())
        else {
            return;
        };
        let Some(p) = r.participants.get_mut(&nick) else {
            return;
        };
        // Counted as moderator at once so the grant is not sent twice; the
        // room's presence update confirms it.
        p.moderator = true;
        let payload = roles::grant_owner(&nick, p.real_jid.as_ref());
        tracing::info!(%room, %nick, "granting moderator");
        self.send_iq(
            Jid::from(room.clone()),
            payload,
            Pending::Ignore("granting moderator"),
        );
    }

    fn send_iq(&mut self, to: Jid, payload: Element, pending: Pending) {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(tag, pending);
        self.out.push_back(Action::Iq { to, payload, tag });
    }

    /// Publishes the focus's presence in `room` (recording status included).
    fn publish(&mut self, room: &BareJid) {
        let mut payloads = focus_presence();
        if let Some(rec) = self.rooms.get(room).and_then(|r| r.recording.as_ref()) {
            payloads.push(rec.presence());
        }
        self.out.push_back(Action::Presence {
            room: room.clone(),
            payloads,
        });
    }

    fn fresh_session_id(&mut self) -> String {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        format!("{:016x}", self.rng)
    }

    /// Leaves `room`: its endpoints go, and a recording still running is
    /// stopped (the recorder finalizes it at once instead of waiting for its
    /// own empty-room timeout while the room could fill up again unseen).
    fn leave(&mut self, room: BareJid) {
        let running = self
            .rooms
            .get(&room)
            .and_then(|r| r.recording.as_ref())
            .filter(|rec| rec.status != proto::jibri::Status::Off)
            .and_then(|rec| {
                let nick = rec.recorder.as_ref()?;
                let member = self.recorders.as_ref()?.members.get(nick)?;
                Some((Jid::from(member.occupant.clone()), rec.session_id.clone()))
            });
        if let Some((recorder, session)) = running {
            tracing::info!(%room, %session, "room empty: stopping its recording");
            self.send_iq(
                recorder,
                proto::jibri::JibriIq::stop(session).into(),
                Pending::Ignore("stopping the recording of an empty room"),
            );
        }
        if let Some(r) = self.rooms.remove(&room) {
            for nick in r.sessions.keys() {
                self.out.push_back(Action::RemoveEndpoint {
                    endpoint: endpoint_key(&room, nick),
                });
            }
            self.out.push_back(Action::Leave { room });
        }
    }

    /// Refuses `req` when someone in `room` encrypts end to end; returns
    /// the request back when it may go on.
    fn refuse_if_e2ee(
        &mut self,
        req: IncomingIq,
        room: &BareJid,
        what: e2ee::Refused,
    ) -> Option<IncomingIq> {
        if self.rooms.get(room).is_some_and(Room::e2ee) {
            self.refuse(req, what.condition(), what.text());
            return None;
        }
        Some(req)
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
    /// sender to `room@service/nick`), and whether the sender moderates it.
    fn sender_in_room(&self, req: &IncomingIq) -> Option<(BareJid, bool)> {
        let from = req.from.as_ref()?;
        let room = from.to_bare();
        let r = self.rooms.get(&room).filter(|r| r.joined)?;
        let moderator = from
            .resource()
            .and_then(|n| r.participants.get(n.as_str()))
            .is_some_and(|p| p.moderator);
        Some((room, moderator))
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

    /// Forwards a moderator's mute to its target, with the actor added.
    fn mute(
        &mut self,
        req: IncomingIq,
        room: &BareJid,
        moderator: bool,
        mut m: proto::mute::MuteIq,
    ) {
        let Some(target) = m.jid.clone() else {
            return self.refuse(
                req,
                DefinedCondition::BadRequest,
                "<mute> is missing the 'jid' attribute",
            );
        };
        let in_room = target.to_bare() == *room
            && target.resource().is_some_and(|n| {
                self.rooms
                    .get(room)
                    .is_some_and(|r| r.participants.contains_key(n.as_str()))
            });
        if !in_room {
            return self.refuse(req, DefinedCondition::ItemNotFound, "no such participant");
        }
        // Anyone may mute or unmute themselves (an unmute lifts a
        // moderator's forced mute: there is no audio moderation).
        let own = req.from.as_ref() == Some(&target);
        if !(moderator || own) {
            return self.refuse(
                req,
                DefinedCondition::Forbidden,
                "only moderators mute others",
            );
        }
        m.actor = req.from.clone();
        self.out.push_back(Action::Reply {
            req,
            result: Ok(None),
        });
        if let Some(nick) = target.resource() {
            let audio = m.kind == proto::mute::MediaKind::Audio;
            let endpoint = endpoint_key(room, nick.as_str());
            self.out.push_back(Action::ForceMute {
                endpoint,
                audio,
                muted: m.mute,
            });
        }
        if !own {
            self.send_iq(target, m.into(), Pending::Ignore("forwarding a mute"));
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

/// IQs the driver sends for the focus are always `set`.
pub const IQ_KIND: IqKind = IqKind::Set;

#[cfg(test)]
mod tests;
