//! IQ requests in both directions: correlation of our requests with their
//! responses (by id and sender, with deadlines), and routing of incoming
//! requests to the application or to a built-in answer.

use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::{reply_matches, stanza_error, Event, Session};

/// Identifies one outgoing IQ request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IqId(pub u64);

/// `get` or `set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqKind {
    Get,
    Set,
}

/// Why an IQ request got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IqError {
    /// The peer answered with an error.
    #[error("peer error: {}", condition_name(.0))]
    Error(Box<StanzaError>),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The connection dropped before the answer (or we were offline).
    #[error("disconnected")]
    Disconnected,
}

impl IqError {
    /// The peer's error condition, if the peer answered with one.
    pub fn condition(&self) -> Option<&DefinedCondition> {
        match self {
            IqError::Error(e) => Some(&e.defined_condition),
            _ => None,
        }
    }
}

fn condition_name(e: &StanzaError) -> String {
    let el: Element = e.defined_condition.clone().into();
    match e.texts.values().next() {
        Some(t) => format!("{} ({})", el.name(), t),
        None => el.name().to_owned(),
    }
}

/// An IQ get/set addressed to us, for the application to answer with
/// [`Session::reply`].
#[derive(Debug, Clone)]
pub struct IncomingIq {
    pub from: Option<Jid>,
    pub to: Option<Jid>,
    pub id: String,
    pub kind: IqKind,
    pub payload: Element,
}

impl IncomingIq {
    fn new(from: Option<Jid>, to: Option<Jid>, id: String, kind: IqKind, payload: Element) -> Self {
        IncomingIq {
            from,
            to,
            id,
            kind,
            payload,
        }
    }
}

#[derive(Debug)]
pub(super) struct Pending {
    pub id: IqId,
    pub to: Option<Jid>,
    pub deadline: Instant,
}

impl Session {
    /// Sends an IQ request; its outcome arrives as [`Event::IqResponse`] with
    /// the returned id. Offline, it fails at once with `Disconnected`.
    pub fn send_iq(
        &mut self,
        to: Option<Jid>,
        kind: IqKind,
        payload: Element,
        timeout: Option<Duration>,
        now: Instant,
    ) -> IqId {
        let id = IqId(self.next_id);
        let wire_id = self.fresh_id();
        if !self.is_online() {
            self.emit(Event::IqResponse {
                id,
                result: Err(IqError::Disconnected),
            });
            return id;
        }
        let iq = match kind {
            IqKind::Get => Iq::Get {
                from: None,
                to: to.clone(),
                id: wire_id.clone(),
                payload,
            },
            IqKind::Set => Iq::Set {
                from: None,
                to: to.clone(),
                id: wire_id.clone(),
                payload,
            },
        };
        let deadline = now + timeout.unwrap_or(self.config.iq_timeout);
        self.pending.insert(wire_id, Pending { id, to, deadline });
        self.send(Stanza::Iq(iq));
        id
    }

    /// Answers an incoming request with a result (optional payload) or an error.
    pub fn reply(&mut self, req: &IncomingIq, result: Result<Option<Element>, StanzaError>) {
        let iq = match result {
            Ok(payload) => Iq::Result {
                from: None,
                to: req.from.clone(),
                id: req.id.clone(),
                payload,
            },
            Err(error) => Iq::Error {
                from: None,
                to: req.from.clone(),
                id: req.id.clone(),
                error,
                payload: None,
            },
        };
        self.send(Stanza::Iq(iq));
    }

    /// Answers an incoming request with an error condition and text, logging
    /// it once at warn level.
    pub fn reply_error(&mut self, req: &IncomingIq, condition: DefinedCondition, text: &str) {
        let el: Element = condition.clone().into();
        tracing::warn!(
            from = ?req.from, id = %req.id, ns = %req.payload.ns(), element = %req.payload.name(),
            condition = %el.name(), "refused iq: {text}"
        );
        self.reply(req, Err(stanza_error(condition, text)));
    }

    pub(super) fn handle_iq(&mut self, iq: Iq, _now: Instant) {
        match iq {
            Iq::Result {
                from, id, payload, ..
            } => self.complete(from, id, Ok(payload)),
            Iq::Error {
                from, id, error, ..
            } => self.complete(from, id, Err(IqError::Error(Box::new(error)))),
            Iq::Get {
                from,
                to,
                id,
                payload,
            } => self.route(IncomingIq::new(from, to, id, IqKind::Get, payload)),
            Iq::Set {
                from,
                to,
                id,
                payload,
            } => self.route(IncomingIq::new(from, to, id, IqKind::Set, payload)),
        }
    }

    fn complete(
        &mut self,
        from: Option<Jid>,
        wire_id: String,
        result: Result<Option<Element>, IqError>,
    ) {
        let Some(p) = self.pending.get(&wire_id) else {
            tracing::debug!(id = %wire_id, ?from, "response to no pending iq");
            return;
        };
        if !reply_matches(&p.to, &from, self.jid.as_ref()) {
            tracing::warn!(id = %wire_id, ?from, expected = ?p.to, "iq response from an unexpected sender, ignored");
            return;
        }
        if let Some(p) = self.pending.remove(&wire_id) {
            self.emit(Event::IqResponse { id: p.id, result });
        }
    }

    /// A stanza that did not parse. An IQ request (get/set with an id) is
    /// answered `bad-request`; anything else is logged and dropped.
    pub fn handle_malformed(
        &mut self,
        kind: &str,
        from: Option<String>,
        type_: Option<String>,
        id: Option<String>,
        error: &str,
    ) {
        let is_request = kind == "iq" && matches!(type_.as_deref(), Some("get") | Some("set"));
        match (is_request, id) {
            (true, Some(id)) => {
                let from = from.and_then(|f| Jid::new(&f).ok());
                tracing::warn!(?from, %id, "malformed iq answered bad-request: {error}");
                let iq = Iq::Error {
                    from: None,
                    to: from,
                    id,
                    error: stanza_error(
                        DefinedCondition::BadRequest,
                        &format!("malformed iq: {error}"),
                    ),
                    payload: None,
                };
                self.send(Stanza::Iq(iq));
            }
            _ => tracing::warn!(?from, kind, "dropped malformed {kind}: {error}"),
        }
    }

    fn route(&mut self, req: IncomingIq) {
        if self.answer_builtin(&req) {
            return;
        }
        if self.config.iq_namespaces.contains(&req.payload.ns()) {
            self.emit(Event::IqRequest(req));
            return;
        }
        let text = format!(
            "no service for <{} xmlns='{}'>",
            req.payload.name(),
            req.payload.ns()
        );
        self.reply_error(&req, DefinedCondition::ServiceUnavailable, &text);
    }
}
