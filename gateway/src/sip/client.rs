//! The dial-out SIP client core (RFC 3261 UAC): INVITE client transactions
//! (§17.1.1: Timers A, B, D), digest answers to a challenged INVITE or BYE
//! (§22.2), CANCEL (§9.1), the dialog a 2xx creates (§12, ACK §13.2.2.4) with
//! BYE (§15.1), and the requests a callee sends in that dialog (`uac_dialog.rs`).
//!
//! Sans-IO, like [`Server`](super::Server): [`Client::invite`], [`Client::cancel`]
//! and [`Client::hangup`] act, [`Client::handle_input`] takes received messages
//! (responses to our requests, requests in our dialogs; others are ignored) and
//! timeouts, and [`Client::poll_output`] yields [`Transmit`](super::Transmit)s,
//! [`ClientEvent`]s and the next timeout. Route received messages by Call-ID
//! with [`call_id_of`] and [`Client::owns`]. Remote input never panics the core.
//!
//! Choices: a call that rings longer than [`ClientConfig::ring_timeout`] is
//! cancelled and fails with 408. A challenge is answered once per request; a
//! second challenge fails the call. CANCEL before any provisional waits for one
//! (§9.1), or for Timer B. A 2xx racing our CANCEL is ACKed and ended with BYE.
//! A 2xx from another fork (other To-tag) is ACKed and sent BYE.
//!
//! Not handled: DNS (next hops are IP literals, else the address the INVITE
//! went to), reliable provisionals (100rel/PRACK), UPDATE, early dialogs, a
//! Route header for the outbound proxy (it is only the next hop), and TCP
//! framing (the driver's job, as for the server).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client_call::{Call, Core};
use super::inbound::{self, Start};
use super::uac::{self, host_port, is_clean, Ids};
use super::{CallId, Transport};

pub use super::digest::Credentials;
pub use super::inbound::call_id_of;
pub use super::uac::{ConfigError, Input, Output};

/// What the driver drains from a [`Client`].
pub type ClientOutput = uac::Output<ClientEvent>;

/// Headers the core writes itself; extra headers may not repeat them.
const OWN_HEADERS: [&str; 12] = [
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "max-forwards",
    "content-length",
    "content-type",
    "route",
    "authorization",
    "proxy-authorization",
];

/// Settings of the client core; `Default` holds the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our Contact URI; its host and port are also Via's sent-by.
    pub contact: String,
    /// The From URI and display name of our calls.
    pub from_uri: String,
    pub from_display: Option<String>,
    pub user_agent: String,
    /// When set, every request goes to this address (no Route header is added).
    pub outbound_proxy: Option<SocketAddr>,
    /// RFC 3261 T1 (RTT estimate) and T2 (maximum non-INVITE retransmit interval).
    pub t1: Duration,
    pub t2: Duration,
    /// How long a call may ring before we cancel it.
    pub ring_timeout: Duration,
    /// Answer 401/407 challenges with these.
    pub credentials: Option<Credentials>,
    /// Cap on calls held.
    pub max_calls: usize,
    /// Seeds branches, tags, Call-IDs and cnonces; random by default.
    pub seed: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            contact: "sip:gateway@127.0.0.1:5060".into(),
            from_uri: "sip:gateway@127.0.0.1".into(),
            from_display: None,
            user_agent: concat!("gateway/", env!("CARGO_PKG_VERSION")).into(),
            outbound_proxy: None,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            ring_timeout: Duration::from_secs(180),
            credentials: None,
            max_calls: 1024,
            seed: uac::random_seed(),
        }
    }
}

/// Why an answered call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEndReason {
    /// We sent BYE ([`Client::hangup`]); reported once it is answered or timed out.
    LocalHangup,
    /// The callee sent BYE.
    RemoteBye,
}

/// What the application learns about its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// 180 Ringing or 183 Session Progress (with early media SDP, if any).
    Ringing {
        call_id: CallId,
        status: u16,
        sdp: Option<String>,
    },
    /// 2xx: the dialog is up and ACKed.
    Answered {
        call_id: CallId,
        sdp: Option<String>,
    },
    /// A final 3xx–6xx, or 408 when nobody answered (Timer B, ring timeout).
    Failed {
        call_id: CallId,
        status: u16,
        reason: String,
    },
    /// Our CANCEL ended the call ([`Client::cancel`]).
    Cancelled { call_id: CallId },
    Ended {
        call_id: CallId,
        reason: ClientEndReason,
    },
    /// A DTMF digit the callee sent by INFO.
    Dtmf { call_id: CallId, digit: char },
    /// The callee sent a re-INVITE (answered with our last SDP).
    Reoffered {
        call_id: CallId,
        sdp: Option<String>,
    },
}

/// Why [`Client::invite`] refused (caller's fault, not retryable as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("target is not a sip: or sips: URI")]
    InvalidTarget,
    #[error("extra header {0:?} is malformed or one the core writes")]
    InvalidHeader(String),
    #[error("too many calls (retryable later)")]
    TooManyCalls,
}

/// Why [`Client::cancel`] or [`Client::hangup`] refused (caller's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("no such call")]
    UnknownCall,
    #[error("the call was answered; hang up instead")]
    AlreadyAnswered,
    #[error("the call has ended")]
    Ended,
}

/// The dial-out client core.
#[derive(Debug)]
pub struct Client {
    core: Core,
    calls: HashMap<CallId, Call>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        let sent_by = host_port(&config.contact)
            .filter(|_| is_clean(&config.contact))
            .ok_or(ConfigError {
                key: "contact",
                why: "not a sip: URI with a host",
            })?
            .to_owned();
        if host_port(&config.from_uri).is_none() || !is_clean(&config.from_uri) {
            let why = "not a sip: URI with a host";
            return Err(ConfigError {
                key: "from_uri",
                why,
            });
        }
        let clean = config.from_display.as_deref().is_none_or(is_clean);
        if !clean || !is_clean(&config.user_agent) {
            let why = "contains a line break";
            return Err(ConfigError {
                key: "from_display/user_agent",
                why,
            });
        }
        if config.t1.is_zero() || config.t2 < config.t1 {
            let why = "T1 must be positive and T2 at least T1";
            return Err(ConfigError { key: "t1/t2", why });
        }
        let ids = Ids::new(config.seed);
        Ok(Self {
            core: Core {
                config,
                sent_by,
                ids,
                queue: VecDeque::new(),
            },
            calls: HashMap::new(),
        })
    }

    /// True when a message with this Call-ID belongs to this core.
    pub fn owns(&self, call_id: &str) -> bool {
        self.calls.contains_key(&CallId::new(call_id))
    }

    /// Calls held (ringing, up, or absorbing retransmissions).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Starts a call: sends an INVITE with `sdp_offer` to `target_uri`, via
    /// `destination` (or the outbound proxy).
    pub fn invite(
        &mut self,
        target_uri: &str,
        destination: SocketAddr,
        transport: Transport,
        sdp_offer: &str,
        extra_headers: &[(String, String)],
        now: Instant,
    ) -> Result<CallId, InviteError> {
        let target = target_uri.trim();
        if !is_clean(target) || target.contains(char::is_whitespace) || host_port(target).is_none()
        {
            return Err(InviteError::InvalidTarget);
        }
        for (name, value) in extra_headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
            let own = OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str());
            if !token || own || !is_clean(value) {
                return Err(InviteError::InvalidHeader(name.clone()));
            }
        }
        if self.calls.len() >= self.core.config.max_calls {
            return Err(InviteError::TooManyCalls);
        }
        let call = self.core.start_call(
            target,
            destination,
            transport,
            sdp_offer,
            extra_headers,
            now,
        );
        let call_id = call.call_id.clone();
        self.calls.insert(call_id.clone(), call);
        Ok(call_id)
    }

    /// Cancels a call not yet answered. Before any provisional the CANCEL waits
    /// for one; the call then ends with [`ClientEvent::Cancelled`].
    pub fn cancel(&mut self, call_id: &CallId, now: Instant) -> Result<(), ClientError> {
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or(ClientError::UnknownCall)?;
        self.core.cancel(call, now)
    }

    /// Ends a call: BYE when answered ([`ClientEvent::Ended`] follows), CANCEL
    /// when not yet (see [`Client::cancel`]).
    pub fn hangup(&mut self, call_id: &CallId, now: Instant) -> Result<(), ClientError> {
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or(ClientError::UnknownCall)?;
        self.core.hangup(call, now)
    }

    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Receive {
                now,
                transport,
                source,
                data,
            } => self.receive(now, transport, source, data),
            Input::Timeout(now) => self.timeout(now),
        }
    }

    pub fn poll_output(&mut self) -> ClientOutput {
        if let Some(out) = self.core.queue.pop_front() {
            return out;
        }
        let next = self.calls.values().filter_map(Call::deadline).min();
        uac::Output::Timeout(next)
    }

    fn receive(&mut self, now: Instant, transport: Transport, source: SocketAddr, data: &[u8]) {
        let msg = match inbound::parse(data) {
            Ok(msg) => msg,
            Err(e) => return tracing::debug!(%source, error = %e, "dropped SIP message"),
        };
        let id = CallId::new(msg.call_id());
        let Some(call) = self.calls.get_mut(&id) else {
            return tracing::debug!(%source, call_id = %id, "not a call of the client");
        };
        match &msg.start {
            Start::Response { .. } => self.core.on_response(call, &msg, now),
            Start::Request { method, .. } => {
                let from = (transport, source);
                self.core.on_request(call, &msg, method, from, now)
            }
        }
        self.reap(&id);
    }

    fn timeout(&mut self, now: Instant) {
        let mut due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, call)| call.deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        for id in due {
            if let Some(call) = self.calls.get_mut(&id) {
                self.core.on_timeout(call, now);
            }
            self.reap(&id);
        }
    }

    fn reap(&mut self, id: &CallId) {
        if self.calls.get(id).is_some_and(Call::is_done) {
            self.calls.remove(id);
        }
    }
}
