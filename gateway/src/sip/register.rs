//! Registration with a SIP registrar (RFC 3261 §10), so that a trunk can route
//! calls to the gateway: REGISTER, digest answers to 401/407, refresh before
//! expiry, retry with backoff, and un-registration at shutdown.
//!
//! Sans-IO, like the other cores: [`Registration::register`] starts,
//! [`Registration::handle_input`] takes responses (by Call-ID, see
//! [`Registration::owns`]) and timeouts, [`Registration::poll_output`] yields
//! [`Transmit`]s, [`RegisterEvent`]s and the next timeout.
//!
//! Policy:
//! * **Granted expiry**: the `expires` parameter of our binding in the 2xx's
//!   Contact, else its `Expires` header, else what we asked for. A 2xx
//!   granting 0 counts as a failure.
//! * **Refresh** at `expires − min(expires/2, 60 s)`: a minute early for the
//!   usual intervals (300 s → after 240 s), halfway for short ones (60 s → 30 s).
//! * **Failures** (final ≥ 300 we cannot answer, Timer F timeout as 408, a
//!   second challenge after we answered one) are retried after 1 s, 2 s, 4 s …
//!   capped at [`RegisterConfig::max_backoff`] (60 s); a success resets it.
//!   A binding already granted counts as registered until it expires.
//! * **Digest**: the last challenge is kept and reused with an incremented
//!   nonce count (`nc`), so refreshes normally need no round trip. A request
//!   refused with a *new* challenge (nonce expired, registrar restarted and
//!   forgot us) is answered once per attempt; `stale=true` may be answered
//!   twice more. A challenge to a request that answered a challenge of the same
//!   attempt means the password is wrong: failure, backoff.
//! * **423 Interval Too Brief**: asked again with its `Min-Expires`, once.
//! * [`Registration::unregister`] sends `Expires: 0` (answering a challenge if
//!   needed) and stops; [`RegisterEvent::Unregistered`] ends it either way.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::digest::{authorization, Answer, Challenge};
use super::inbound::{self, param, Message, Start};
use super::message::name_addr;
use super::uac::{self, host_port, is_clean, serialize, via, Ids, NonInvite, Tick};
use super::{Transmit, Transport};

pub use super::digest::Credentials;
pub use super::uac::{ConfigError, Input, Output};

/// What the driver drains from a [`Registration`].
pub type RegisterOutput = uac::Output<RegisterEvent>;

/// Settings of a registration; `Default` holds the defaults.
#[derive(Debug, Clone)]
pub struct RegisterConfig {
    /// Where REGISTER goes (unless an outbound proxy is set).
    pub registrar: SocketAddr,
    pub transport: Transport,
    /// Address of record, `sip:user@domain` (From and To).
    pub aor: String,
    /// Request-URI, `sip:domain`.
    pub registrar_uri: String,
    /// The Contact to bind; its host and port are also Via's sent-by.
    pub contact: String,
    pub credentials: Credentials,
    /// Seconds asked for.
    pub expires: u32,
    pub outbound_proxy: Option<SocketAddr>,
    pub user_agent: String,
    /// RFC 3261 T1 and T2 (Timers E and F).
    pub t1: Duration,
    pub t2: Duration,
    /// Cap of the retry backoff.
    pub max_backoff: Duration,
    /// Seeds the Call-ID, tag, branches and cnonces; random by default.
    pub seed: u64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        Self {
            registrar: SocketAddr::from(([127, 0, 0, 1], 5060)),
            transport: Transport::Udp,
            aor: "sip:gateway@127.0.0.1".into(),
            registrar_uri: "sip:127.0.0.1".into(),
            contact: "sip:gateway@127.0.0.1:5060".into(),
            credentials: Credentials::new("gateway", ""),
            expires: 300,
            outbound_proxy: None,
            user_agent: concat!("gateway/", env!("CARGO_PKG_VERSION")).into(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            max_backoff: Duration::from_secs(60),
            seed: uac::random_seed(),
        }
    }
}

/// What the application learns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterEvent {
    /// The registrar bound our Contact for `expires` seconds.
    Registered { expires: u32 },
    /// An attempt failed (`status` 408 on timeout); the next comes in `retry_in`.
    RegistrationFailed { status: u16, retry_in: Duration },
    /// [`Registration::unregister`] finished (answered or not).
    Unregistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Unregister,
}

#[derive(Debug)]
enum State {
    Idle,
    /// A REGISTER is out.
    Sending {
        tx: NonInvite,
        purpose: Purpose,
    },
    /// The next attempt (refresh or retry) starts at `at`.
    Waiting {
        at: Instant,
    },
    Stopped,
}

/// The last challenge, reused with an incremented nonce count.
#[derive(Debug)]
struct Auth {
    header: &'static str,
    challenge: Challenge,
    nc: u32,
}

/// The registration core.
#[derive(Debug)]
pub struct Registration {
    config: RegisterConfig,
    sent_by: String,
    ids: Ids,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: State,
    auth: Option<Auth>,
    /// This attempt already answered a challenge it received.
    answered: bool,
    stale_retries: u8,
    raised_expires: bool,
    /// Seconds asked for (raised by 423).
    expires: u32,
    failures: u32,
    registered_until: Option<Instant>,
    queue: VecDeque<RegisterOutput>,
}

impl Registration {
    pub fn new(config: RegisterConfig) -> Result<Self, ConfigError> {
        let sent_by = host_port(&config.contact)
            .filter(|_| is_clean(&config.contact))
            .ok_or(ConfigError {
                key: "contact",
                why: "not a sip: URI with a host",
            })?
            .to_owned();
        for (key, uri) in [
            ("aor", &config.aor),
            ("registrar_uri", &config.registrar_uri),
        ] {
            if host_port(uri).is_none() || !is_clean(uri) || uri.contains(' ') {
                let why = "not a sip: URI with a host";
                return Err(ConfigError { key, why });
            }
        }
        if config.t1.is_zero() || config.t2 < config.t1 {
            let why = "T1 must be positive and T2 at least T1";
            return Err(ConfigError { key: "t1/t2", why });
        }
        if !is_clean(&config.user_agent) {
            let why = "contains a line break";
            return Err(ConfigError {
                key: "user_agent",
                why,
            });
        }
        let mut ids = Ids::new(config.seed);
        let call_id = ids.call_id(uac::host_of(&sent_by));
        let from_tag = ids.tag();
        Ok(Self {
            expires: config.expires,
            config,
            sent_by,
            ids,
            call_id,
            from_tag,
            cseq: 0,
            state: State::Idle,
            auth: None,
            answered: false,
            stale_retries: 0,
            raised_expires: false,
            failures: 0,
            registered_until: None,
            queue: VecDeque::new(),
        })
    }

    /// Starts registering (or refreshes at once when already registered).
    pub fn register(&mut self, now: Instant) {
        self.attempt(now, Purpose::Register);
    }

    /// Removes our binding (`Expires: 0`) and stops; [`RegisterEvent::Unregistered`] follows.
    pub fn unregister(&mut self, now: Instant) {
        match self.state {
            State::Stopped => {}
            State::Idle => self.state = State::Stopped,
            _ => self.attempt(now, Purpose::Unregister),
        }
    }

    /// The registrar holds a binding for us that has not expired (for /metrics).
    pub fn is_registered(&self) -> bool {
        self.registered_until.is_some()
    }

    /// The Call-ID of every REGISTER of this registration.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// True when a message with this Call-ID belongs to this core.
    pub fn owns(&self, call_id: &str) -> bool {
        self.call_id == call_id
    }

    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Receive { now, data, .. } => match inbound::parse(data) {
                Ok(msg) if msg.call_id() == self.call_id => self.response(&msg, now),
                Ok(_) => tracing::debug!("not a response of this registration"),
                Err(e) => tracing::debug!(error = %e, "dropped SIP message"),
            },
            Input::Timeout(now) => self.timeout(now),
        }
    }

    pub fn poll_output(&mut self) -> RegisterOutput {
        if let Some(out) = self.queue.pop_front() {
            return out;
        }
        let state = match &self.state {
            State::Sending { tx, .. } => Some(tx.deadline()),
            State::Waiting { at } => Some(*at),
            State::Idle | State::Stopped => None,
        };
        let next = [state, self.registered_until].into_iter().flatten().min();
        uac::Output::Timeout(next)
    }

    fn event(&mut self, event: RegisterEvent) {
        self.queue.push_back(uac::Output::Event(event));
    }

    fn attempt(&mut self, now: Instant, purpose: Purpose) {
        self.answered = false;
        self.stale_retries = 0;
        self.raised_expires = false;
        self.send(now, purpose);
    }

    fn send(&mut self, now: Instant, purpose: Purpose) {
        self.cseq += 1;
        let branch = self.ids.branch();
        let expires = match purpose {
            Purpose::Register => self.expires,
            Purpose::Unregister => 0,
        };
        let aor = &self.config.aor;
        let mut headers = vec![
            ("Via", via(self.config.transport, &self.sent_by, &branch)),
            ("Max-Forwards", "70".to_owned()),
            ("From", format!("<{aor}>;tag={}", self.from_tag)),
            ("To", format!("<{aor}>")),
            ("Call-ID", self.call_id.clone()),
            ("CSeq", format!("{} REGISTER", self.cseq)),
            ("Contact", format!("<{}>", self.config.contact)),
            ("Expires", expires.to_string()),
            ("User-Agent", self.config.user_agent.clone()),
        ];
        if let Some(auth) = &mut self.auth {
            auth.nc += 1;
            let cnonce = self.ids.cnonce();
            let answer = Answer {
                method: "REGISTER",
                uri: &self.config.registrar_uri,
                cnonce: &cnonce,
                nc: auth.nc,
            };
            let value = authorization(&auth.challenge, &self.config.credentials, &answer);
            headers.push((auth.header, value));
        }
        let contents = serialize("REGISTER", &self.config.registrar_uri, &headers, b"");
        let transmit = Transmit {
            transport: self.config.transport,
            destination: self.config.outbound_proxy.unwrap_or(self.config.registrar),
            contents,
        };
        let tx = NonInvite::new("REGISTER", self.cseq, branch, transmit, now, self.config.t1);
        self.queue.push_back(uac::Output::Transmit(tx.transmit()));
        self.state = State::Sending { tx, purpose };
    }

    fn response(&mut self, msg: &Message, now: Instant) {
        let State::Sending { tx, purpose } = &mut self.state else {
            return;
        };
        if !tx.matches(msg) || !matches!(msg.start, Start::Response { .. }) {
            return;
        }
        let purpose = *purpose;
        let status = msg.status();
        match status {
            100..=199 => tx.provisional(now, self.config.t2),
            200..=299 if purpose == Purpose::Unregister => self.stopped(status),
            200..=299 => match self.granted(msg) {
                0 => self.failed(status, now),
                expires => {
                    let granted = Duration::from_secs(expires.into());
                    self.registered_until = Some(now + granted);
                    self.failures = 0;
                    let at = now + granted - (granted / 2).min(Duration::from_secs(60));
                    self.state = State::Waiting { at };
                    tracing::info!(expires, "registered");
                    self.event(RegisterEvent::Registered { expires });
                }
            },
            401 | 407 => self.challenged(msg, now, purpose),
            423 => {
                let min = msg.one("min-expires").and_then(|v| v.trim().parse().ok());
                match min {
                    Some(min) if purpose == Purpose::Register && !self.raised_expires => {
                        self.raised_expires = true;
                        self.expires = self.expires.max(min);
                        self.send(now, purpose);
                    }
                    _ => self.failed(status, now),
                }
            }
            _ => self.failed(status, now),
        }
    }

    fn challenged(&mut self, msg: &Message, now: Instant, purpose: Purpose) {
        let status = msg.status();
        let (name, header) = match status {
            401 => ("www-authenticate", "Authorization"),
            _ => ("proxy-authenticate", "Proxy-Authorization"),
        };
        let challenge = match Challenge::pick(msg.lines(name)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot answer the registrar's challenge");
                return self.failed(status, now);
            }
        };
        let stale_retry = challenge.stale && self.stale_retries < 2;
        if self.answered && !stale_retry {
            tracing::warn!(status, "credentials refused");
            self.auth = None;
            return self.failed(status, now);
        }
        if self.answered {
            self.stale_retries += 1;
        }
        self.answered = true;
        self.auth = Some(Auth {
            header,
            challenge,
            nc: 0,
        });
        self.send(now, purpose);
    }

    /// The expiry the registrar granted (see the module docs).
    fn granted(&self, msg: &Message) -> u32 {
        let ours = msg.values("contact").find_map(|c| {
            let (_, uri, rest) = name_addr(c).ok()?;
            uri.eq_ignore_ascii_case(&self.config.contact)
                .then(|| param(rest, "expires")?.parse().ok())?
        });
        ours.or_else(|| msg.one("expires")?.trim().parse().ok())
            .unwrap_or(self.expires)
    }

    fn failed(&mut self, status: u16, now: Instant) {
        if let State::Sending {
            purpose: Purpose::Unregister,
            ..
        } = self.state
        {
            return self.stopped(status);
        }
        let shift = self.failures.min(16);
        let retry_in = Duration::from_secs(1 << shift).min(self.config.max_backoff);
        self.failures += 1;
        self.state = State::Waiting { at: now + retry_in };
        tracing::warn!(status, ?retry_in, "registration failed");
        self.event(RegisterEvent::RegistrationFailed { status, retry_in });
    }

    fn stopped(&mut self, status: u16) {
        tracing::info!(status, "unregistered");
        self.state = State::Stopped;
        self.registered_until = None;
        self.event(RegisterEvent::Unregistered);
    }

    fn timeout(&mut self, now: Instant) {
        if self.registered_until.is_some_and(|until| now >= until) {
            tracing::warn!("registration expired");
            self.registered_until = None;
        }
        match &mut self.state {
            State::Sending { tx, .. } => match tx.tick(now, self.config.t2) {
                Tick::Resend(transmit) => self.queue.push_back(uac::Output::Transmit(transmit)),
                Tick::TimedOut => self.failed(408, now),
                Tick::Idle => {}
            },
            State::Waiting { at } if now >= *at => self.attempt(now, Purpose::Register),
            _ => {}
        }
    }
}
