//! The dial-in SIP server core: UAS INVITE transactions (RFC 3261 §17.2.1),
//! 2xx retransmission until ACK (§13.3.1.4), CANCEL, BYE and OPTIONS; the
//! dialog that follows lives in [`super::dialog`] (in-dialog requests),
//! [`super::dialog_client`] (our BYE and UPDATE, responses) and
//! [`super::dialog_timer`] (RFC 4028 session timers).
//!
//! Sans-IO: feed [`Input`]s, drain [`Server::poll_output`] until it returns
//! [`Output::Timeout`]. One entry per Call-ID holds the INVITE transaction and
//! then its dialog. Calls the application handles are capped by
//! [`Config::max_calls`]; all entries, rejected transactions waiting for their
//! ACK included, by [`Config::max_transactions`]. Refusals under load (503),
//! like every other response that needs no state, are sent statelessly.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::dialog::{allows_update, ok_headers, Dialog};
use super::dialog_client::{ClientTx, Resend};
use super::dialog_timer::{self, Negotiated};
use super::message::{self, name_addr, Reject, Request};
use super::response::build;
use super::{CallError, CallId, ClientEvent, RegisterEvent};

pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// Extensions we support (RFC 4028 session timers).
pub(super) const SUPPORTED: &str = "timer";
/// Methods we recognise (others get 501).
const KNOWN: &str = "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH \
    INFO REFER MESSAGE UPDATE";

/// Settings of the server core; `Default` holds the defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Header carrying the conference room of a dial-in call.
    pub room_header: String,
    /// Cap on calls the application handles (pending INVITEs and dialogs);
    /// further INVITEs get 503 with `Retry-After`.
    pub max_calls: usize,
    /// Hard cap on entries held: calls plus rejected INVITE transactions
    /// waiting for their ACK (Timer H), and our own BYE/UPDATE transactions.
    pub max_transactions: usize,
    /// Seconds sent in `Retry-After` with 503 and with 500 to a re-INVITE.
    pub retry_after: u32,
    /// Our Contact URI, sent in 2xx responses.
    pub contact: String,
    /// RFC 3261 T1 (RTT estimate) and T2 (maximum retransmit interval).
    pub t1: Duration,
    pub t2: Duration,
    /// RFC 3261 T4 (how long a UDP message may live in the network): Timer K.
    pub t4: Duration,
    /// How long the application may take to answer or reject an INVITE or re-INVITE.
    pub answer_timeout: Duration,
    /// Session interval (RFC 4028, whole seconds on the wire) used when the
    /// caller supports session timers but asked for none.
    pub session_expires: Duration,
    /// Smallest session interval we accept (RFC 4028 `Min-SE`, whole
    /// seconds); smaller requests get 422.
    pub min_se: Duration,
    /// Mixed into the To-tags we generate.
    pub tag_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            room_header: "Jitsi-Conference-Room".into(),
            max_calls: 100,
            max_transactions: 1024,
            retry_after: 5,
            contact: "sip:gateway@127.0.0.1".into(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(60),
            session_expires: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
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
    /// The application hung up ([`Server::hangup`]); our BYE was answered or timed out.
    LocalHangup,
    /// No session refresh came in time (RFC 4028); we sent BYE.
    SessionExpired,
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
    /// A re-INVITE on an established call; answer with [`Server::answer_reoffer`]
    /// (or [`Server::reject_reoffer`]) before the answer timeout, else 500. A
    /// re-INVITE whose offer is unchanged (same `o=` line, a session refresh)
    /// is answered by the core with the last answer and raises no event.
    Reoffer {
        call_id: CallId,
        /// The new offer; `None` when the peer asks us for an offer, whose
        /// answer then comes as [`Event::ReofferAcked`].
        sdp: Option<String>,
    },
    /// The ACK to our 2xx of an offerless re-INVITE, with the peer's answer.
    ReofferAcked {
        call_id: CallId,
        sdp: Option<String>,
    },
    /// A DTMF digit sent by SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    Dtmf {
        call_id: CallId,
        digit: char,
    },
    /// A response the core has no transaction for (for a client of the
    /// application, e.g. dial-out or REGISTER), as received. The driver
    /// routes responses of its own [`Client`](super::Client) and
    /// [`Registration`](super::Registration) to them, never here.
    Response {
        transport: Transport,
        source: SocketAddr,
        data: Vec<u8>,
    },
    /// A dial-out call's event, raised by the [driver](super::driver)'s
    /// [`Client`](super::Client) (never by this core).
    Dial(ClientEvent),
    /// The registration's event, raised by the [driver](super::driver)'s
    /// [`Registration`](super::Registration) (never by this core).
    Registration(RegisterEvent),
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
pub(super) enum State {
    /// 100 sent; the application decides before `deadline`.
    Proceeding { deadline: Instant },
    /// 2xx sent, retransmitted until ACK; `hangup`: the application hung up
    /// meanwhile, so the ACK (or its timeout) starts our BYE.
    Accepted { resend: Resend, hangup: bool },
    /// Final non-2xx sent; Timer G (`resend.next`, UDP only) and Timer H (`give_up`).
    Rejected { resend: Resend },
    /// ACK received; dialog up until BYE.
    Confirmed,
    /// Our BYE is under way; the call ends with `reason` when it completes.
    Terminating { reason: EndReason },
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) invite: Request,
    pub(super) source: SocketAddr,
    pub(super) transport: Transport,
    pub(super) to_tag: String,
    pub(super) last_response: Vec<u8>,
    pub(super) state: State,
    pub(super) dialog: Dialog,
}

impl Call {
    /// Counts against [`Config::max_calls`]: the application handles it.
    fn is_live(&self) -> bool {
        !matches!(self.state, State::Rejected { .. })
    }
}

/// The dial-in server core.
#[derive(Debug)]
pub struct Server {
    pub(super) config: Config,
    pub(super) calls: HashMap<CallId, Call>,
    /// Our BYE and UPDATE client transactions, by Via branch.
    pub(super) clients: HashMap<String, ClientTx>,
    queue: VecDeque<Output>,
    /// Counter behind the tags and branches we generate.
    pub(super) tags: u64,
    accepting: bool,
}

impl Server {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            calls: HashMap::new(),
            clients: HashMap::new(),
            queue: VecDeque::new(),
            tags: 0,
            accepting: true,
        }
    }

    /// Number of calls held (transactions and dialogs), rejected INVITE
    /// transactions waiting for their ACK included.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Calls the application handles (pending, answered, established or
    /// ending); what [`Config::max_calls`] caps.
    pub fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| c.is_live()).count()
    }

    /// With `false`, new INVITEs get 503 (graceful shutdown) while existing
    /// calls go on; `true` accepts again.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting
    }

    /// Queues a message of the application's own (a dial-out request, an
    /// ACK, ...) for the driver to send; the core keeps no state for it.
    pub fn transmit(&mut self, transmit: Transmit) {
        self.queue.push_back(Output::Transmit(transmit));
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

    /// Accepts a call: 200 OK with our To-tag, Contact, session timer
    /// headers (RFC 4028) and the SDP answer.
    pub fn answer(&mut self, call_id: &CallId, sdp: &str, now: Instant) -> Result<(), CallError> {
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        if !matches!(call.state, State::Proceeding { .. }) {
            return Err(CallError::AlreadyAnswered);
        }
        let extra = ok_headers(&self.config, call, true);
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
            resend: Resend::new(now, self.config.t1, true),
            hangup: false,
        };
        call.dialog.answered(&call.invite.body, sdp, now);
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

    /// Sends a final non-2xx to the INVITE; over UDP it is kept for Timer G/H
    /// (retransmissions until ACK), over TCP forgotten at once.
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
        let udp = call.transport == Transport::Udp;
        call.state = State::Rejected {
            resend: Resend::new(now, t1, udp),
        };
        let (transport, destination) = (call.transport, call.source);
        if !udp {
            self.calls.remove(call_id);
        }
        self.send(transport, destination, resp);
    }

    pub(super) fn send(
        &mut self,
        transport: Transport,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) {
        self.queue.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            contents,
        }));
    }

    pub(super) fn event(&mut self, event: Event) {
        self.queue.push_back(Output::Event(event));
    }

    /// Answers statelessly; a To-tag, when needed, is derived from the
    /// request so that its retransmissions get the same one (RFC 3261 §8.2.7).
    pub(super) fn respond(
        &mut self,
        ctx: &Ctx,
        req: &Request,
        status: u16,
        extra: &[(&str, String)],
    ) {
        let tag = (status > 100 && req.tag("to").is_none()).then(|| self.stateless_tag(req));
        let resp = build(req, status, tag.as_deref(), extra, b"", ctx.source);
        self.send(ctx.transport, ctx.source, resp);
    }

    fn receive(&mut self, now: Instant, transport: Transport, source: SocketAddr, data: &[u8]) {
        let ctx = Ctx {
            now,
            transport,
            source,
        };
        if message::is_response(data) {
            return self.response(&ctx, data);
        }
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
            return self.ack(&req, ctx.now);
        }
        let allow = [("Allow", ALLOW.to_owned())];
        if !KNOWN.split_ascii_whitespace().any(|m| m == method) {
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
        let required: Vec<&str> = req
            .values("require")
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case(SUPPORTED))
            .collect();
        if !required.is_empty() && method != "CANCEL" {
            let unsupported = [("Unsupported", required.join(", "))];
            return self.respond(ctx, &req, 420, &unsupported);
        }
        match method {
            "OPTIONS" if self.dialog_of(&req).is_none() => {
                self.respond(ctx, &req, 200, &options_headers())
            }
            "INVITE" if req.tag("to").is_none() => self.invite(ctx, req),
            "CANCEL" => self.cancel(ctx, &req),
            // BYE, INFO, UPDATE, re-INVITE and OPTIONS within a dialog.
            _ => self.in_dialog(ctx, req),
        }
    }

    fn invite(&mut self, ctx: &Ctx, req: Request) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        if let Some(call) = self.calls.get(&call_id) {
            if call.invite.branch() == req.branch() && call.invite.cseq() == req.cseq() {
                if !matches!(call.state, State::Confirmed | State::Terminating { .. }) {
                    let (t, d, r) = (call.transport, call.source, call.last_response.clone());
                    self.send(t, d, r);
                }
                return;
            }
            // Same Call-ID, another transaction, no To-tag: a merged request.
            return self.respond(ctx, &req, 482, &[]);
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
        let session = match dialog_timer::negotiate(&req, &self.config, None, allows_update(&req)) {
            Negotiated::Timer(session) => Some(session),
            Negotiated::Off => None,
            refused => return self.refuse_session(ctx, &req, refused),
        };
        let full = self.calls.len() >= self.config.max_transactions
            || self.active_calls() >= self.config.max_calls;
        if full || !self.accepting {
            tracing::debug!(call_id = %call_id, full, "refusing call with 503");
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
            dialog: Dialog::new(&req, session),
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

    fn ack(&mut self, req: &Request, now: Instant) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        match call.state {
            State::Accepted { hangup, .. } if req.tag("to") == Some(call.to_tag.as_str()) => {
                call.dialog.acked(&req.body);
                call.state = State::Confirmed;
                if hangup {
                    self.start_bye(&call_id, EndReason::LocalHangup, now);
                } else {
                    self.event(Event::CallEstablished { call_id });
                }
            }
            State::Rejected { .. } if req.branch() == call.invite.branch() => {
                self.calls.remove(&call_id);
            }
            State::Confirmed => self.reoffer_ack(&call_id, req),
            _ => {}
        }
    }

    fn cancel(&mut self, ctx: &Ctx, req: &Request) {
        let call_id = CallId::new(req.one("call-id").unwrap_or_default());
        let matched = self.calls.get(&call_id).filter(|call| {
            call.invite.branch() == req.branch() && call.invite.cseq().0 == req.cseq().0
        });
        let Some(call) = matched else {
            if !self.cancel_reoffer(ctx, &call_id, req) {
                self.respond(ctx, req, 481, &[]);
            }
            return;
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

    fn timeout(&mut self, now: Instant) {
        let t2 = self.config.t2;
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for (id, call) in &mut self.calls {
            match &mut call.state {
                State::Proceeding { deadline } if now >= *deadline => expired.push(id.clone()),
                State::Accepted { resend: r, .. } | State::Rejected { resend: r } => {
                    if r.expired(now) {
                        expired.push(id.clone());
                    } else if r.fire(now, t2) {
                        resend.push((call.transport, call.source, call.last_response.clone()));
                    }
                }
                _ => {}
            }
        }
        for (t, d, r) in resend {
            self.send(t, d, r);
        }
        expired.sort();
        for call_id in expired {
            let Some(call) = self.calls.get_mut(&call_id) else {
                continue;
            };
            match call.state {
                State::Proceeding { .. } => {
                    self.final_non_2xx(&call_id, 480, now);
                    let reason = EndReason::AnswerTimeout;
                    self.event(Event::CallEnded { call_id, reason });
                }
                State::Accepted { hangup: true, .. } => {
                    call.state = State::Confirmed;
                    self.start_bye(&call_id, EndReason::LocalHangup, now);
                }
                State::Accepted { hangup: false, .. } => {
                    // RFC 3261 §13.3.1.4: the session ends with a BYE.
                    self.detached_bye(&call_id, now);
                    self.calls.remove(&call_id);
                    let reason = EndReason::AckTimeout;
                    self.event(Event::CallEnded { call_id, reason });
                }
                _ => {
                    self.calls.remove(&call_id);
                }
            }
        }
        self.dialog_timeouts(now);
        self.client_timeouts(now);
    }

    fn next_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|call| match &call.state {
            State::Proceeding { deadline } => Some(*deadline),
            State::Accepted { resend, .. } | State::Rejected { resend } => Some(resend.due()),
            State::Confirmed => call.dialog.next_timeout(),
            State::Terminating { .. } => None,
        });
        let clients = self.clients.values().map(ClientTx::due);
        calls.chain(clients).min()
    }
}

pub(super) struct Ctx {
    pub(super) now: Instant,
    pub(super) transport: Transport,
    pub(super) source: SocketAddr,
}

/// Allow, Accept and Supported, as in answers to OPTIONS.
pub(super) fn options_headers() -> [(&'static str, String); 3] {
    [
        ("Allow", ALLOW.to_owned()),
        ("Accept", "application/sdp".to_owned()),
        ("Supported", SUPPORTED.to_owned()),
    ]
}

pub(super) fn media_is_sdp(media: &str) -> bool {
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
