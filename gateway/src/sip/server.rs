//! The dial-in SIP server core: UAS INVITE transactions (RFC 3261 §17.2.1),
//! 2xx retransmission until ACK (§13.3.1.4), CANCEL, BYE and OPTIONS.
//!
//! Sans-IO: feed [`Input`]s, drain [`Server::poll_output`] until it returns
//! [`Output::Timeout`]. One entry per Call-ID holds the INVITE transaction and
//! then its dialog; entries are capped by [`Config::max_transactions`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::message::{self, name_addr, Reject, Request};
use super::response::build;
use super::{CallError, CallId};

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";
const KNOWN: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// Settings of the server core; `Default` holds the defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Header carrying the conference room of a dial-in call.
    pub room_header: String,
    /// Cap on calls held (INVITE transactions and their dialogs).
    pub max_transactions: usize,
    /// Seconds sent in `Retry-After` when over the cap.
    pub retry_after: u32,
    /// Our Contact URI, sent in 2xx responses.
    pub contact: String,
    /// RFC 3261 T1 (RTT estimate) and T2 (maximum retransmit interval).
    pub t1: Duration,
    pub t2: Duration,
    /// How long the application may take to answer or reject an INVITE.
    pub answer_timeout: Duration,
    /// Mixed into the To-tags we generate.
    pub tag_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            room_header: "Jitsi-Conference-Room".into(),
            max_transactions: 1024,
            retry_after: 5,
            contact: "sip:gateway@127.0.0.1".into(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            answer_timeout: Duration::from_secs(60),
            tag_seed: 0x5eed,
        }
    }
}

/// Transport a message came over (responses go back the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the driver feeds in.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram (UDP) or one framed message (TCP) from `source`.
    Receive {
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &'a [u8],
    },
    /// The time given in the last [`Output::Timeout`] has come.
    Timeout(Instant),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteBye,
    /// The caller sent CANCEL before we answered.
    Cancelled,
    /// Our 2xx was never acknowledged (64·T1).
    AckTimeout,
    /// The application neither answered nor rejected in time (we sent 480).
    AnswerTimeout,
}

/// What the application learns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new dial-in INVITE; answer with [`Server::answer`] or [`Server::reject`].
    IncomingCall {
        call_id: CallId,
        from_display: Option<String>,
        from_uri: String,
        room_header: Option<String>,
        sdp_offer: Option<String>,
    },
    /// Our 2xx was acknowledged: the dialog is up.
    CallEstablished {
        call_id: CallId,
    },
    CallEnded {
        call_id: CallId,
        reason: EndReason,
    },
}

/// What the driver drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit(Transmit),
    Event(Event),
    /// Nothing more now; feed [`Input::Timeout`] at this time (`None`: no timer).
    Timeout(Option<Instant>),
}

#[derive(Debug)]
enum State {
    /// 100 sent; the application decides before `deadline`.
    Proceeding { deadline: Instant },
    /// 2xx sent, retransmitted until ACK.
    Accepted {
        next: Instant,
        interval: Duration,
        give_up: Instant,
    },
    /// Final non-2xx sent; Timer G (`next`, UDP only) and Timer H (`give_up`).
    Rejected {
        next: Option<Instant>,
        interval: Duration,
        give_up: Instant,
    },
    /// ACK received; dialog up until BYE.
    Confirmed,
}

#[derive(Debug)]
struct Call {
    invite: Request,
    source: SocketAddr,
    transport: Transport,
    to_tag: String,
    last_response: Vec<u8>,
    state: State,
}

/// The dial-in server core.
#[derive(Debug)]
pub struct Server {
    config: Config,
    calls: HashMap<CallId, Call>,
    queue: VecDeque<Output>,
    tags: u64,
}

impl Server {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            calls: HashMap::new(),
            queue: VecDeque::new(),
            tags: 0,
        }
    }

    /// Number of calls held (transactions and dialogs).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
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

    pub fn poll_output(&mut self) -> Output {
        self.queue
            .pop_front()
            .unwrap_or_else(|| Output::Timeout(self.next_timeout()))
    }

    /// Accepts a call: 200 OK with our To-tag, Contact and the SDP answer.
    pub fn answer(&mut self, call_id: &CallId, sdp: &str, now: Instant) -> Result<(), CallError> {
        let (t1, contact) = (self.config.t1, self.config.contact.clone());
        let call = self.proceeding(call_id)?;
        let extra = [
            ("Contact", format!("<{contact}>")),
            ("Allow", ALLOW.to_owned()),
            ("Content-Type", "application/sdp".to_owned()),
        ];
        let resp = build(
            &call.invite,
            200,
            Some(&call.to_tag),
            &extra,
            sdp.as_bytes(),
            call.source,
        );
        call.last_response = resp.clone();
        call.state = State::Accepted {
            next: now + t1,
            interval: t1,
            give_up: now + 64 * t1,
        };
        let (transport, destination) = (call.transport, call.source);
        self.send(transport, destination, resp);
        Ok(())
    }

    /// Refuses a call with a final status in 300..=699.
    pub fn reject(&mut self, call_id: &CallId, status: u16, now: Instant) -> Result<(), CallError> {
        if !(300..=699).contains(&status) {
            return Err(CallError::InvalidStatus(status));
        }
        self.proceeding(call_id)?;
        self.final_non_2xx(call_id, status, now);
        Ok(())
    }

    fn proceeding(&mut self, call_id: &CallId) -> Result<&mut Call, CallError> {
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        match call.state {
            State::Proceeding { .. } => Ok(call),
            _ => Err(CallError::AlreadyAnswered),
        }
    }

    fn final_non_2xx(&mut self, call_id: &CallId, status: u16, now: Instant) {
        let t1 = self.config.t1;
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let resp = build(
            &call.invite,
            status,
            Some(&call.to_tag),
            &[],
            b"",
            call.source,
        );
        call.last_response = resp.clone();
        call.state = State::Rejected {
            next: (call.transport == Transport::Udp).then_some(now + t1),
            interval: t1,
            give_up: now + 64 * t1,
        };
        let (transport, destination) = (call.transport, call.source);
        self.send(transport, destination, resp);
    }

    fn send(&mut self, transport: Transport, destination: SocketAddr, contents: Vec<u8>) {
        self.queue.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            contents,
        }));
    }

    fn event(&mut self, event: Event) {
        self.queue.push_back(Output::Event(event));
    }

    fn respond(&mut self, ctx: &Ctx, req: &Request, status: u16, extra: &[(&str, String)]) {
        let tag = (status > 100 && req.tag("to").is_none()).then(|| self.new_tag());
        let resp = build(req, status, tag.as_deref(), extra, b"", ctx.source);
        self.send(ctx.transport, ctx.source, resp);
    }

    fn new_tag(&mut self) -> String {
        self.tags += 1;
        let mut x = self.tags.wrapping_add(self.config.tag_seed);
        // splitmix64: spreads consecutive counters over the tag space.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("{:x}", x ^ (x >> 31))
    }

    fn receive(&mut self, now: Instant, transport: Transport, source: SocketAddr, data: &[u8]) {
        let ctx = Ctx {
            now,
            transport,
            source,
        };
        let req = match message::parse(data) {
            Ok(req) => req,
            Err(Reject::Drop(why)) => {
                tracing::debug!(%source, why, "dropped SIP message");
                return;
            }
            Err(Reject::Status(req, status, why)) => {
                tracing::debug!(%source, status, why, "rejected SIP request");
                if req.method != "ACK" {
                    let warning = format!("399 gateway \"{}\"", why.replace('"', "'"));
                    self.respond(&ctx, &req, status, &[("Warning", warning)]);
                }
                return;
            }
        };
        self.request(&ctx, req);
    }

    fn request(&mut self, ctx: &Ctx, req: Request) {
        let method = req.method.as_str();
        if method == "ACK" {
            return self.ack(&req);
        }
        let allow = [("Allow", ALLOW.to_owned())];
        if !KNOWN.contains(&method) {
            return self.respond(ctx, &req, 501, &allow);
        }
        if req.cseq().1 != method {
            let w = [("Warning", "399 gateway \"CSeq method mismatch\"".to_owned())];
            return self.respond(ctx, &req, 400, &w);
        }
        let (scheme, _) = req.uri.split_once(':').unwrap_or_default();
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return self.respond(ctx, &req, 416, &[]);
        }
        let host_part = req.uri.rsplit('@').next().unwrap_or_default();
        if host_part.contains('?') {
            let w = [(
                "Warning",
                "399 gateway \"headers in Request-URI\"".to_owned(),
            )];
            return self.respond(ctx, &req, 400, &w);
        }
        if !ALLOW.split(", ").any(|m| m == method) {
            return self.respond(ctx, &req, 405, &allow);
        }
        if method != "OPTIONS"
            && req
                .one("max-forwards")
                .is_some_and(|mf| mf.parse() == Ok(0u8))
        {
            return self.respond(ctx, &req, 483, &[]);
        }
        let required: Vec<&str> = req.values("require").filter(|v| !v.is_empty()).collect();
        if !required.is_empty() && method != "CANCEL" {
            let unsupported = [("Unsupported", required.join(", "))];
            return self.respond(ctx, &req, 420, &unsupported);
        }
        match method {
            "OPTIONS" => {
                let extra = [
                    ("Allow", ALLOW.to_owned()),
                    ("Accept", "application/sdp".to_owned()),
                ];
                self.respond(ctx, &req, 200, &extra)
            }
            "INVITE" => self.invite(ctx, req),
            "CANCEL" => self.cancel(ctx, &req),
            _ => self.bye(ctx, &req),
        }
    }

    fn invite(&mut self, ctx: &Ctx, req: Request) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        if let Some(call) = self.calls.get(&call_id) {
            if call.invite.branch() == req.branch() && call.invite.cseq() == req.cseq() {
                if !matches!(call.state, State::Confirmed) {
                    let (t, d, r) = (call.transport, call.source, call.last_response.clone());
                    self.send(t, d, r);
                }
                return;
            }
            let status = if req.tag("to").is_some() { 491 } else { 482 };
            return self.respond(ctx, &req, status, &[]);
        }
        if req.tag("to").is_some() {
            return self.respond(ctx, &req, 481, &[]);
        }
        let sdp = ("Accept", "application/sdp".to_owned());
        let content_type = req.one("content-type").unwrap_or("application/sdp");
        if !req.body.is_empty() && !media_is_sdp(content_type) {
            return self.respond(ctx, &req, 415, &[sdp]);
        }
        let accepts: Vec<&str> = req.values("accept").filter(|a| !a.is_empty()).collect();
        if !accepts.is_empty()
            && !accepts
                .iter()
                .any(|a| media_is_sdp(a) || a.starts_with("*/*"))
        {
            let w = (
                "Warning",
                "399 gateway \"application/sdp is required\"".to_owned(),
            );
            return self.respond(ctx, &req, 406, &[sdp, w]);
        }
        if self.calls.len() >= self.config.max_transactions {
            let retry = [("Retry-After", self.config.retry_after.to_string())];
            return self.respond(ctx, &req, 503, &retry);
        }
        let trying = build(&req, 100, None, &[], b"", ctx.source);
        self.send(ctx.transport, ctx.source, trying.clone());
        let (from_display, from_uri) = match req.one("from").map(name_addr) {
            Some(Ok((display, uri, _))) => (display.map(unquote), uri.to_owned()),
            _ => (None, String::new()),
        };
        let room = self.config.room_header.to_ascii_lowercase();
        let event = Event::IncomingCall {
            call_id: call_id.clone(),
            from_display,
            from_uri,
            room_header: req.one(&room).map(str::to_owned),
            sdp_offer: (!req.body.is_empty()).then(|| String::from_utf8_lossy(&req.body).into()),
        };
        let call = Call {
            invite: req,
            source: ctx.source,
            transport: ctx.transport,
            to_tag: self.new_tag(),
            last_response: trying,
            state: State::Proceeding {
                deadline: ctx.now + self.config.answer_timeout,
            },
        };
        tracing::info!(call_id = %call_id, "incoming call");
        self.calls.insert(call_id, call);
        self.event(event);
    }

    fn ack(&mut self, req: &Request) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        match call.state {
            State::Accepted { .. } if req.tag("to") == Some(call.to_tag.as_str()) => {
                call.state = State::Confirmed;
                self.event(Event::CallEstablished { call_id });
            }
            State::Rejected { .. } if req.branch() == call.invite.branch() => {
                self.calls.remove(&call_id);
            }
            _ => {}
        }
    }

    fn cancel(&mut self, ctx: &Ctx, req: &Request) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        let matched = self.calls.get(&call_id).filter(|call| {
            call.invite.branch() == req.branch() && call.invite.cseq().0 == req.cseq().0
        });
        let Some(call) = matched else {
            return self.respond(ctx, req, 481, &[]);
        };
        let pending = matches!(call.state, State::Proceeding { .. });
        let resp = build(req, 200, Some(&call.to_tag), &[], b"", ctx.source);
        self.send(ctx.transport, ctx.source, resp);
        if pending {
            self.final_non_2xx(&call_id, 487, ctx.now);
            let reason = EndReason::Cancelled;
            self.event(Event::CallEnded { call_id, reason });
        }
    }

    fn bye(&mut self, ctx: &Ctx, req: &Request) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        let in_dialog = self.calls.get(&call_id).is_some_and(|call| {
            matches!(call.state, State::Accepted { .. } | State::Confirmed)
                && req.tag("to") == Some(call.to_tag.as_str())
        });
        if !in_dialog {
            return self.respond(ctx, req, 481, &[]);
        }
        self.calls.remove(&call_id);
        self.respond(ctx, req, 200, &[]);
        let reason = EndReason::RemoteBye;
        self.event(Event::CallEnded { call_id, reason });
    }

    fn timeout(&mut self, now: Instant) {
        let t2 = self.config.t2;
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for (id, call) in &mut self.calls {
            match &mut call.state {
                State::Proceeding { deadline } if now >= *deadline => expired.push(id.clone()),
                State::Accepted { give_up, .. } | State::Rejected { give_up, .. }
                    if now >= *give_up =>
                {
                    expired.push(id.clone())
                }
                State::Accepted { next, interval, .. }
                | State::Rejected {
                    next: Some(next),
                    interval,
                    ..
                } if now >= *next => {
                    *interval = (*interval * 2).min(t2);
                    *next = now + *interval;
                    resend.push((call.transport, call.source, call.last_response.clone()));
                }
                _ => {}
            }
        }
        for (t, d, r) in resend {
            self.send(t, d, r);
        }
        expired.sort();
        for call_id in expired {
            let reason = match self.calls.get(&call_id).map(|c| &c.state) {
                Some(State::Proceeding { .. }) => {
                    self.final_non_2xx(&call_id, 480, now);
                    Some(EndReason::AnswerTimeout)
                }
                Some(State::Accepted { .. }) => {
                    self.calls.remove(&call_id);
                    Some(EndReason::AckTimeout)
                }
                _ => {
                    self.calls.remove(&call_id);
                    None
                }
            };
            if let Some(reason) = reason {
                self.event(Event::CallEnded { call_id, reason });
            }
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|call| match call.state {
                State::Proceeding { deadline } => Some(deadline),
                State::Accepted { next, give_up, .. } => Some(next.min(give_up)),
                State::Rejected { next, give_up, .. } => {
                    Some(next.map_or(give_up, |n| n.min(give_up)))
                }
                State::Confirmed => None,
            })
            .min()
    }
}

struct Ctx {
    now: Instant,
    transport: Transport,
    source: SocketAddr,
}

fn media_is_sdp(media: &str) -> bool {
    let base = media.split(';').next().unwrap_or_default().trim();
    base.eq_ignore_ascii_case("application/sdp")
}

fn unquote(display: &str) -> String {
    let mut out = String::new();
    let mut chars = display.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}
