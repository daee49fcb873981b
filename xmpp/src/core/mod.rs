//! The sans-IO session core: rooms, IQ correlation, disco, reconnect state.
//!
//! The driver calls [`Session::handle_online`], [`Session::handle_offline`],
//! [`Session::handle_stanza`] and [`Session::handle_timeout`] with the current
//! [`Instant`], then drains [`Session::poll_output`] until it returns `None`
//! and sleeps until [`Session::poll_timeout`]. Nothing here blocks or panics
//! on remote input.

mod iq;
mod muc;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, Identity};
use xmpp_parsers::message::Message;
use xmpp_parsers::ns;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

pub use iq::{IncomingIq, IqError, IqId, IqKind};
pub use muc::{Occupant, RoomLeftReason};

use iq::Pending;
use muc::Room;

/// What the entity is and which IQ payloads the application handles.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// disco#info identities (category, type, name).
    pub identities: Vec<(String, String, String)>,
    /// disco#info features. `disco#info` itself is always added.
    pub features: BTreeSet<String>,
    /// IQ get/set payload namespaces delivered as [`Event::IqRequest`].
    /// Anything else is answered `service-unavailable` by the core.
    pub iq_namespaces: BTreeSet<String>,
    /// Default time an outgoing IQ waits for its response.
    pub iq_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            identities: vec![("client".into(), "bot".into(), "meetings".into())],
            features: BTreeSet::new(),
            iq_namespaces: BTreeSet::new(),
            iq_timeout: Duration::from_secs(10),
        }
    }
}

/// What the application learns from the session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Logged in and bound; rooms are being (re)joined.
    Online { jid: FullJid },
    /// The connection is gone; the driver is reconnecting.
    Offline,
    /// Our own presence in a room came back: we are in.
    RoomJoined { room: BareJid, me: Occupant },
    /// The room refused the join.
    RoomJoinFailed { room: BareJid, error: StanzaError },
    /// We are out of a room (our leave, a kick, the room destroyed).
    RoomLeft {
        room: BareJid,
        reason: RoomLeftReason,
    },
    /// Someone else entered a room.
    OccupantJoined { room: BareJid, occupant: Occupant },
    /// Someone's presence changed (extensions, role).
    OccupantChanged { room: BareJid, occupant: Occupant },
    /// Someone left a room.
    OccupantLeft {
        room: BareJid,
        occupant: Occupant,
        reason: RoomLeftReason,
    },
    /// An IQ get/set for a namespace the application registered.
    IqRequest(IncomingIq),
    /// The outcome of an IQ we sent.
    IqResponse {
        id: IqId,
        result: Result<Option<Element>, IqError>,
    },
    /// A message stanza.
    Message(Box<Message>),
    /// A presence that is not from a joined room.
    Presence(Box<Presence>),
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    Send(Stanza),
    Event(Event),
}

/// The session state machine. See the module docs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    jid: Option<FullJid>,
    rooms: BTreeMap<BareJid, Room>,
    pending: BTreeMap<String, Pending>,
    next_id: u64,
    out: VecDeque<Output>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            jid: None,
            rooms: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            out: VecDeque::new(),
        }
    }

    /// Our bound JID while online.
    pub fn jid(&self) -> Option<&FullJid> {
        self.jid.as_ref()
    }

    pub fn is_online(&self) -> bool {
        self.jid.is_some()
    }

    /// The stream is up and bound: announce it and (re)join every room.
    pub fn handle_online(&mut self, jid: FullJid, _now: Instant) {
        tracing::info!(%jid, rooms = self.rooms.len(), "xmpp online");
        self.jid = Some(jid.clone());
        self.emit(Event::Online { jid });
        let rooms: Vec<BareJid> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.send_join(&room);
        }
    }

    /// The stream is gone: every room is left (to be rejoined), every pending
    /// IQ fails with [`IqError::Disconnected`].
    pub fn handle_offline(&mut self, _now: Instant) {
        if self.jid.take().is_none() {
            return;
        }
        tracing::warn!("xmpp offline");
        for room in self.rooms.values_mut() {
            room.reset();
        }
        let pending = std::mem::take(&mut self.pending);
        for (_, p) in pending {
            self.emit(Event::IqResponse {
                id: p.id,
                result: Err(IqError::Disconnected),
            });
        }
        self.emit(Event::Offline);
    }

    /// Fails the IQs whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(p) = self.pending.remove(&key) {
                tracing::warn!(to = ?p.to, id = %key, "iq timed out");
                self.emit(Event::IqResponse {
                    id: p.id,
                    result: Err(IqError::Timeout),
                });
            }
        }
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Next thing to send or report.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A stanza from the server.
    pub fn handle_stanza(&mut self, stanza: Stanza, now: Instant) {
        match stanza {
            Stanza::Iq(iq) => self.handle_iq(iq, now),
            Stanza::Presence(p) => self.handle_presence(p),
            Stanza::Message(m) => self.emit(Event::Message(Box::new(m))),
        }
    }

    /// Sends a message or other stanza as is.
    pub fn send(&mut self, stanza: Stanza) {
        self.out.push_back(Output::Send(stanza));
    }

    fn emit(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    fn fresh_id(&mut self) -> String {
        let id = format!("s{}", self.next_id);
        self.next_id += 1;
        id
    }

    fn disco_info(&self, node: Option<String>) -> Element {
        let mut features = self.config.features.clone();
        features.insert(ns::DISCO_INFO.to_owned());
        features.insert(ns::PING.to_owned());
        let result = DiscoInfoResult {
            node,
            identities: self
                .config
                .identities
                .iter()
                .map(|(c, t, n)| Identity {
                    category: c.clone(),
                    type_: t.clone(),
                    lang: None,
                    name: Some(n.clone()),
                })
                .collect(),
            features,
            extensions: vec![],
        };
        result.into()
    }

    /// Answers a request we do not route to the application.
    fn answer_builtin(&mut self, req: &IncomingIq) -> bool {
        if req.kind == IqKind::Get && req.payload.is("query", ns::DISCO_INFO) {
            let node = DiscoInfoQuery::try_from(req.payload.clone())
                .ok()
                .and_then(|q| q.node);
            let info = self.disco_info(node);
            self.reply(req, Ok(Some(info)));
            return true;
        }
        if req.kind == IqKind::Get && req.payload.is("ping", ns::PING) {
            self.reply(req, Ok(None));
            return true;
        }
        false
    }
}

/// A stanza error of the type RFC 6120 pairs with the condition.
pub fn stanza_error(condition: DefinedCondition, text: &str) -> StanzaError {
    let type_ = match condition {
        DefinedCondition::BadRequest
        | DefinedCondition::JidMalformed
        | DefinedCondition::NotAcceptable
        | DefinedCondition::PolicyViolation => ErrorType::Modify,
        DefinedCondition::Forbidden | DefinedCondition::NotAuthorized => ErrorType::Auth,
        DefinedCondition::ResourceConstraint | DefinedCondition::UnexpectedRequest => {
            ErrorType::Wait
        }
        _ => ErrorType::Cancel,
    };
    let mut err = StanzaError::new(type_, condition, "en", text);
    if text.is_empty() {
        err.texts.clear();
    }
    err
}

/// Whether a reply from `from` may answer an IQ we sent to `to`.
fn reply_matches(to: &Option<Jid>, from: &Option<Jid>, own: Option<&FullJid>) -> bool {
    match (to, from) {
        (Some(t), Some(f)) => t == f,
        // Sent to our own account/server: the reply may carry no from, our
        // bare JID or our server.
        (None, None) => true,
        (None, Some(f)) => own.is_some_and(|o| {
            f.to_bare() == o.to_bare() && f.resource().is_none()
                || f.node().is_none() && f.domain() == o.domain()
        }),
        (Some(t), None) => own.is_some_and(|o| t.to_bare() == o.to_bare()),
    }
}

#[cfg(test)]
mod tests;
