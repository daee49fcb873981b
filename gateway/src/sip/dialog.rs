//! Requests within the dialog of a dial-in call (RFC 3261 §12.2.2, §14.2,
//! §15.1.2; RFC 6086 INFO; RFC 3311 UPDATE).
//!
//! A request belongs to a dialog when its Call-ID, To-tag (ours) and From-tag
//! (the caller's) match an answered call; otherwise it gets 481. CSeq numbers
//! must not go down (else 500); retransmissions of the last few requests get their
//! response again. Contact in a re-INVITE or UPDATE refreshes the remote target.
//!
//! * BYE: 200, the call ends ([`EndReason::RemoteBye`]); a pending re-INVITE gets 487.
//! * re-INVITE: 100, then [`Event::Reoffer`] for the application, which answers
//!   with [`Server::answer_reoffer`] (200 retransmitted until ACK) or
//!   [`Server::reject_reoffer`]; without an answer in time, 500 with
//!   Retry-After. A second re-INVITE while one is open gets 491. An offer with
//!   an unchanged `o=` line (RFC 3264 §8, a session refresh) is answered by the
//!   core with the last answer.
//! * INFO: DTMF (`application/dtmf-relay` `Signal=`, or `application/dtmf`)
//!   gives 200 and [`Event::Dtmf`] for 0-9, *, #, A-D; other digits 200 only,
//!   other content types 415.
//! * UPDATE: 200 (a session refresh); an SDP offer is answered only when unchanged, else 488.
//! * OPTIONS: 200.

use std::collections::VecDeque;
use std::time::Instant;

use super::dialog_client::Resend;
use super::dialog_timer::{self, Negotiated, Session};
use super::message::{name_addr, Request};
use super::response::build;
use super::server::{media_is_sdp, options_headers, Call, Ctx, State};
use super::{CallError, CallId, Config, EndReason, Event, Server, Transport};

/// Responses kept for retransmitted in-dialog requests.
const RECENT: usize = 4;

/// State of an answered call's dialog.
#[derive(Debug)]
pub(super) struct Dialog {
    /// The peer's Contact URI (remote target).
    pub(super) target: String,
    /// CSeq of our last request (0: none sent yet).
    pub(super) local_cseq: u32,
    /// Highest CSeq received from the peer.
    remote_cseq: u32,
    recent: VecDeque<Recent>,
    reoffer: Option<Reoffer>,
    pub(super) session: Option<Session>,
    /// The `o=` line of the peer's last offer or answer.
    origin: Option<String>,
    /// Our last SDP.
    answer: String,
    /// The peer accepts UPDATE (its Allow says so).
    pub(super) allows_update: bool,
}

/// A response to an in-dialog request, for its retransmissions.
#[derive(Debug)]
struct Recent {
    branch: Option<String>,
    cseq: u32,
    method: String,
    response: Vec<u8>,
}

/// A re-INVITE server transaction.
#[derive(Debug)]
struct Reoffer {
    invite: Request,
    last_response: Vec<u8>,
    state: ReofferState,
}

#[derive(Debug)]
enum ReofferState {
    /// Waiting for the application.
    Pending { deadline: Instant },
    /// 2xx sent, retransmitted until ACK.
    Answered(Resend),
    /// Final non-2xx sent, retransmitted (UDP) until ACK or Timer H.
    Rejected(Resend),
}

impl Dialog {
    pub(super) fn new(invite: &Request, session: Option<Session>) -> Self {
        let target = contact(invite)
            .or_else(|| invite.one("from").and_then(|f| name_addr(f).ok()))
            .map(|(_, uri, _)| uri.to_owned())
            .unwrap_or_default();
        Self {
            target,
            local_cseq: 0,
            remote_cseq: invite.cseq().0,
            recent: VecDeque::new(),
            reoffer: None,
            session,
            origin: None,
            answer: String::new(),
            allows_update: allows_update(invite),
        }
    }

    /// Our 2xx to the INVITE went out: remembers the offer and our answer,
    /// starts the session timer.
    pub(super) fn answered(&mut self, offer: &[u8], answer: &str, now: Instant) {
        self.answer = answer.to_owned();
        if let Some(origin) = origin(offer) {
            self.origin = Some(origin);
        }
        self.refreshed(now);
    }

    /// The ACK of the INVITE; it carries the answer when the INVITE had no offer.
    pub(super) fn acked(&mut self, body: &[u8]) {
        if let Some(origin) = origin(body) {
            self.origin = Some(origin);
        }
    }

    fn refreshed(&mut self, now: Instant) {
        if let Some(session) = &mut self.session {
            session.refreshed = Some(now);
            session.refreshing = false;
        }
    }

    /// Contact and Allow of a target-refresh request.
    fn target_refresh(&mut self, req: &Request) {
        if let Some((_, uri, _)) = contact(req) {
            self.target = uri.to_owned();
        }
        if req.one("allow").is_some() {
            self.allows_update = allows_update(req);
        }
    }

    /// Re-INVITE and session timers (while confirmed).
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        let reoffer = self.reoffer.as_ref().map(|r| match &r.state {
            ReofferState::Pending { deadline } => *deadline,
            ReofferState::Answered(resend) | ReofferState::Rejected(resend) => resend.due(),
        });
        let session = self.session.as_ref().and_then(Session::due);
        reoffer.into_iter().chain(session).min()
    }
}

fn contact(req: &Request) -> Option<(Option<&str>, &str, &str)> {
    req.values("contact").next().and_then(|c| name_addr(c).ok())
}

pub(super) fn allows_update(req: &Request) -> bool {
    req.values("allow")
        .any(|m| m.eq_ignore_ascii_case("UPDATE"))
}

/// The `o=` line of an SDP body.
fn origin(sdp: &[u8]) -> Option<String> {
    let sdp = String::from_utf8_lossy(sdp);
    let line = sdp.lines().find(|l| l.starts_with("o="))?;
    Some(line.trim().to_owned())
}

/// What an INFO body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Info {
    Digit(char),
    /// Nothing to report (no body, or not a DTMF digit we know).
    Nothing,
    /// A content type we do not take (415).
    Unsupported,
}

/// Reads DTMF from an INFO: `application/dtmf-relay` (`Signal=5`) or
/// `application/dtmf` (`5`); RFC 4733 event codes 10-15 stand for *, #, A-D.
pub(super) fn dtmf(content_type: Option<&str>, body: &[u8]) -> Info {
    if body.is_empty() {
        return Info::Nothing;
    }
    let media = content_type.unwrap_or_default();
    let media = media.split(';').next().unwrap_or_default().trim();
    let body = String::from_utf8_lossy(body);
    let signal = if media.eq_ignore_ascii_case("application/dtmf-relay") {
        body.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then_some(value.trim())
        })
    } else if media.eq_ignore_ascii_case("application/dtmf") {
        Some(body.trim())
    } else {
        return Info::Unsupported;
    };
    let digit = match signal.unwrap_or_default() {
        "10" => Some('*'),
        "11" => Some('#'),
        code @ ("12" | "13" | "14" | "15") => {
            code.parse::<u8>().ok().map(|n| char::from(b'A' + n - 12))
        }
        one if one.chars().count() == 1 => one
            .chars()
            .map(|c| c.to_ascii_uppercase())
            .find(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')),
        _ => None,
    };
    digit.map_or(Info::Nothing, Info::Digit)
}

impl Server {
    /// The call whose dialog `req` belongs to (answered, Call-ID and both tags match).
    pub(super) fn dialog_of(&self, req: &Request) -> Option<CallId> {
        let call_id = CallId::new(req.one("call-id")?);
        let call = self.calls.get(&call_id)?;
        let answered = matches!(
            call.state,
            State::Accepted { .. } | State::Confirmed | State::Terminating { .. }
        );
        let matches = req.tag("to") == Some(call.to_tag.as_str())
            && req.tag("from") == call.invite.tag("from");
        (answered && matches).then_some(call_id)
    }

    /// BYE, INFO, UPDATE, OPTIONS and re-INVITE with a To-tag.
    pub(super) fn in_dialog(&mut self, ctx: &Ctx, req: Request) {
        let Some(call_id) = self.dialog_of(&req) else {
            return self.respond(ctx, &req, 481, &[]);
        };
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        let (cseq, method) = (req.cseq().0, req.method.as_str());
        let recent =
            call.dialog.recent.iter().find(|r| {
                r.branch.as_deref() == req.branch() && r.cseq == cseq && r.method == method
            });
        let retransmitted = recent.map(|r| r.response.clone()).or_else(|| {
            let reoffer = call.dialog.reoffer.as_ref()?;
            let same = reoffer.invite.branch() == req.branch() && reoffer.invite.cseq().0 == cseq;
            (method == "INVITE" && same).then(|| reoffer.last_response.clone())
        });
        if let Some(response) = retransmitted {
            return self.send(ctx.transport, ctx.source, response);
        }
        // RFC 3261 §12.2.2: only a lower CSeq is out of order.
        if cseq < call.dialog.remote_cseq {
            let w = ("Warning", "399 gateway \"CSeq out of order\"".to_owned());
            return self.dialog_reply(ctx, &call_id, &req, 500, &[w], b"");
        }
        call.dialog.remote_cseq = cseq;
        let ending = matches!(call.state, State::Terminating { .. });
        match method {
            "BYE" => self.remote_bye(ctx, &call_id, &req),
            "OPTIONS" => self.dialog_reply(ctx, &call_id, &req, 200, &options_headers(), b""),
            _ if ending => self.dialog_reply(ctx, &call_id, &req, 481, &[], b""),
            "INFO" => self.info(ctx, &call_id, &req),
            "UPDATE" => self.update(ctx, &call_id, &req),
            _ => self.reinvite(ctx, &call_id, req),
        }
    }

    /// Answers an in-dialog request and keeps the response for retransmissions.
    fn dialog_reply(
        &mut self,
        ctx: &Ctx,
        call_id: &CallId,
        req: &Request,
        status: u16,
        extra: &[(&str, String)],
        body: &[u8],
    ) {
        let response = build(req, status, None, extra, body, ctx.source);
        if let Some(call) = self.calls.get_mut(call_id) {
            let recent = &mut call.dialog.recent;
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(Recent {
                branch: req.branch().map(str::to_owned),
                cseq: req.cseq().0,
                method: req.method.clone(),
                response: response.clone(),
            });
        }
        self.send(ctx.transport, ctx.source, response);
    }

    fn remote_bye(&mut self, ctx: &Ctx, call_id: &CallId, req: &Request) {
        let response = build(req, 200, None, &[], b"", ctx.source);
        self.send(ctx.transport, ctx.source, response);
        let ending = self
            .calls
            .get(call_id)
            .is_some_and(|c| matches!(c.state, State::Terminating { .. }));
        if !ending {
            // Our own BYE, if any, still completes the call when answered.
            self.abandon_reoffer(call_id);
            self.finish(call_id, EndReason::RemoteBye);
        }
    }

    fn info(&mut self, ctx: &Ctx, call_id: &CallId, req: &Request) {
        match dtmf(req.one("content-type"), &req.body) {
            Info::Unsupported => {
                let accept = "application/dtmf-relay, application/dtmf".to_owned();
                self.dialog_reply(ctx, call_id, req, 415, &[("Accept", accept)], b"");
            }
            info => {
                self.dialog_reply(ctx, call_id, req, 200, &[], b"");
                if let Info::Digit(digit) = info {
                    let call_id = call_id.clone();
                    self.event(Event::Dtmf { call_id, digit });
                }
            }
        }
    }

    /// The session timer a refresh request asks for, or the refusal to send.
    fn renegotiate(
        &mut self,
        ctx: &Ctx,
        call_id: &CallId,
        req: &Request,
    ) -> Option<Option<Session>> {
        let call = self.calls.get_mut(call_id)?;
        call.dialog.target_refresh(req);
        let previous = call.dialog.session.as_ref();
        match dialog_timer::negotiate(req, &self.config, previous, call.dialog.allows_update) {
            Negotiated::Timer(session) => Some(Some(session)),
            Negotiated::Off => Some(None),
            refused => {
                let (status, extra) = dialog_timer::refusal(&self.config, &refused);
                self.dialog_reply(ctx, call_id, req, status, &extra, b"");
                None
            }
        }
    }

    fn update(&mut self, ctx: &Ctx, call_id: &CallId, req: &Request) {
        let media = req.one("content-type").unwrap_or("application/sdp");
        if !req.body.is_empty() && !media_is_sdp(media) {
            let accept = [("Accept", "application/sdp".to_owned())];
            return self.dialog_reply(ctx, call_id, req, 415, &accept, b"");
        }
        let Some(session) = self.renegotiate(ctx, call_id, req) else {
            return;
        };
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let mut body = Vec::new();
        if !req.body.is_empty() {
            if origin(&req.body).is_none() || origin(&req.body) != call.dialog.origin {
                let w = (
                    "Warning",
                    "399 gateway \"media changes need a re-INVITE\"".to_owned(),
                );
                return self.dialog_reply(ctx, call_id, req, 488, &[w], b"");
            }
            body = call.dialog.answer.clone().into_bytes();
        }
        call.dialog.session = session;
        call.dialog.refreshed(ctx.now);
        let mut extra = vec![("Contact", format!("<{}>", self.config.contact))];
        if let Some(session) = &call.dialog.session {
            extra.extend(session.headers());
        }
        if !body.is_empty() {
            extra.push(("Content-Type", "application/sdp".to_owned()));
        }
        self.dialog_reply(ctx, call_id, req, 200, &extra, &body);
    }

    fn reinvite(&mut self, ctx: &Ctx, call_id: &CallId, req: Request) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let open = call
            .dialog
            .reoffer
            .as_ref()
            .is_some_and(|r| !matches!(r.state, ReofferState::Rejected(_)));
        if open || matches!(call.state, State::Accepted { .. }) {
            return self.dialog_reply(ctx, call_id, &req, 491, &[], b"");
        }
        let media = req.one("content-type").unwrap_or("application/sdp");
        if !req.body.is_empty() && !media_is_sdp(media) {
            let accept = [("Accept", "application/sdp".to_owned())];
            return self.dialog_reply(ctx, call_id, &req, 415, &accept, b"");
        }
        let Some(session) = self.renegotiate(ctx, call_id, &req) else {
            return;
        };
        let trying = build(&req, 100, None, &[], b"", ctx.source);
        self.send(ctx.transport, ctx.source, trying.clone());
        let deadline = ctx.now + self.config.answer_timeout;
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        call.dialog.session = session;
        let unchanged = origin(&req.body).is_some_and(|o| Some(o) == call.dialog.origin);
        let sdp = (!req.body.is_empty()).then(|| String::from_utf8_lossy(&req.body).into_owned());
        call.dialog.reoffer = Some(Reoffer {
            invite: req,
            last_response: trying,
            state: ReofferState::Pending { deadline },
        });
        if unchanged && !call.dialog.answer.is_empty() {
            let answer = call.dialog.answer.clone();
            // Cannot fail: the re-INVITE was just stored as pending.
            let _ = self.answer_reoffer(call_id, &answer, ctx.now);
            return;
        }
        let call_id = call_id.clone();
        self.event(Event::Reoffer { call_id, sdp });
    }

    /// Answers the pending re-INVITE of a call with 200 and `sdp`
    /// (retransmitted until the ACK); the session is refreshed.
    pub fn answer_reoffer(
        &mut self,
        call_id: &CallId,
        sdp: &str,
        now: Instant,
    ) -> Result<(), CallError> {
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        let pending = call
            .dialog
            .reoffer
            .as_ref()
            .is_some_and(|r| matches!(r.state, ReofferState::Pending { .. }));
        if !pending {
            return Err(CallError::NoReoffer);
        }
        call.dialog.refreshed(now);
        call.dialog.answer = sdp.to_owned();
        let extra = ok_headers(&self.config, call, false);
        let (transport, source) = (call.transport, call.source);
        let dialog = &mut call.dialog;
        let Some(reoffer) = dialog.reoffer.as_mut() else {
            return Err(CallError::NoReoffer);
        };
        if let Some(offer) = origin(&reoffer.invite.body) {
            dialog.origin = Some(offer);
        }
        let response = build(&reoffer.invite, 200, None, &extra, sdp.as_bytes(), source);
        reoffer.last_response = response.clone();
        reoffer.state = ReofferState::Answered(Resend::new(now, self.config.t1, true));
        self.send(transport, source, response);
        Ok(())
    }

    /// Refuses the pending re-INVITE of a call with a status in 300..=699;
    /// the call goes on with the media it had.
    pub fn reject_reoffer(
        &mut self,
        call_id: &CallId,
        status: u16,
        now: Instant,
    ) -> Result<(), CallError> {
        if !(300..=699).contains(&status) {
            return Err(CallError::InvalidStatus(status));
        }
        let call = self.calls.get(call_id).ok_or(CallError::UnknownCall)?;
        match call.dialog.reoffer.as_ref().map(|r| &r.state) {
            Some(ReofferState::Pending { .. }) => {
                self.reoffer_final(call_id, status, &[], now);
                Ok(())
            }
            _ => Err(CallError::NoReoffer),
        }
    }

    /// Sends a final non-2xx to the re-INVITE (kept for Timer G/H over UDP).
    fn reoffer_final(
        &mut self,
        call_id: &CallId,
        status: u16,
        extra: &[(&str, String)],
        now: Instant,
    ) {
        let t1 = self.config.t1;
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let (transport, source) = (call.transport, call.source);
        let Some(reoffer) = call.dialog.reoffer.as_mut() else {
            return;
        };
        let response = build(&reoffer.invite, status, None, extra, b"", source);
        if transport == Transport::Udp {
            reoffer.last_response = response.clone();
            reoffer.state = ReofferState::Rejected(Resend::new(now, t1, true));
        } else {
            call.dialog.reoffer = None;
        }
        self.send(transport, source, response);
    }

    /// A pending re-INVITE of an ending call gets 487.
    pub(super) fn abandon_reoffer(&mut self, call_id: &CallId) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(reoffer) = call.dialog.reoffer.take() else {
            return;
        };
        if matches!(reoffer.state, ReofferState::Pending { .. }) {
            let response = build(&reoffer.invite, 487, None, &[], b"", call.source);
            let transport = call.transport;
            let source = call.source;
            self.send(transport, source, response);
        }
    }

    /// CANCEL of a pending re-INVITE: 200, then 487 to the re-INVITE.
    pub(super) fn cancel_reoffer(&mut self, ctx: &Ctx, call_id: &CallId, req: &Request) -> bool {
        let Some(call) = self.calls.get(call_id) else {
            return false;
        };
        let matched = call.dialog.reoffer.as_ref().is_some_and(|r| {
            matches!(r.state, ReofferState::Pending { .. })
                && r.invite.branch() == req.branch()
                && r.invite.cseq().0 == req.cseq().0
        });
        if matched {
            let response = build(req, 200, None, &[], b"", ctx.source);
            self.send(ctx.transport, ctx.source, response);
            self.reoffer_final(call_id, 487, &[], ctx.now);
        }
        matched
    }

    /// An ACK on a confirmed dialog: the end of a re-INVITE transaction.
    pub(super) fn reoffer_ack(&mut self, call_id: &CallId, ack: &Request) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(reoffer) = &call.dialog.reoffer else {
            return;
        };
        if reoffer.invite.cseq().0 != ack.cseq().0 {
            return;
        }
        match reoffer.state {
            ReofferState::Answered(_) => {
                let offerless = reoffer.invite.body.is_empty();
                call.dialog.reoffer = None;
                if offerless {
                    call.dialog.acked(&ack.body);
                    let sdp = (!ack.body.is_empty())
                        .then(|| String::from_utf8_lossy(&ack.body).into_owned());
                    let call_id = call_id.clone();
                    self.event(Event::ReofferAcked { call_id, sdp });
                }
            }
            ReofferState::Rejected(_) => call.dialog.reoffer = None,
            ReofferState::Pending { .. } => {}
        }
    }

    /// Re-INVITE and session timers of confirmed calls.
    pub(super) fn dialog_timeouts(&mut self, now: Instant) {
        let mut due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, call)| matches!(call.state, State::Confirmed))
            .filter(|(_, call)| call.dialog.next_timeout().is_some_and(|at| now >= at))
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        for call_id in due {
            self.reoffer_timeout(&call_id, now);
            self.session_timeout(&call_id, now);
        }
    }

    fn reoffer_timeout(&mut self, call_id: &CallId, now: Instant) {
        let (t2, retry_after) = (self.config.t2, self.config.retry_after);
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let (transport, source) = (call.transport, call.source);
        let Some(reoffer) = call.dialog.reoffer.as_mut() else {
            return;
        };
        match &mut reoffer.state {
            ReofferState::Pending { deadline } if now >= *deadline => {
                tracing::info!(%call_id, "re-INVITE not answered in time; 500");
                let retry = [("Retry-After", retry_after.to_string())];
                self.reoffer_final(call_id, 500, &retry, now);
            }
            ReofferState::Answered(resend) if resend.expired(now) => {
                // RFC 3261 §13.3.1.4: the session ends with a BYE.
                self.detached_bye(call_id, now);
                self.calls.remove(call_id);
                let call_id = call_id.clone();
                let reason = EndReason::AckTimeout;
                self.event(Event::CallEnded { call_id, reason });
            }
            ReofferState::Rejected(resend) if resend.expired(now) => call.dialog.reoffer = None,
            ReofferState::Answered(resend) | ReofferState::Rejected(resend) => {
                if resend.fire(now, t2) {
                    let response = reoffer.last_response.clone();
                    self.send(transport, source, response);
                }
            }
            ReofferState::Pending { .. } => {}
        }
    }
}

/// Header fields of our 2xx to an INVITE (`initial`) or re-INVITE.
pub(super) fn ok_headers(
    config: &Config,
    call: &Call,
    initial: bool,
) -> Vec<(&'static str, String)> {
    let mut extra = Vec::new();
    if initial {
        // RFC 3261 §12.1.1: the route set goes back in the dialog-creating 2xx.
        for route in call.invite.lines("record-route") {
            extra.push(("Record-Route", route.to_owned()));
        }
    }
    extra.push(("Contact", format!("<{}>", config.contact)));
    extra.extend(options_headers());
    if let Some(session) = &call.dialog.session {
        extra.extend(session.headers());
    }
    extra.push(("Content-Type", "application/sdp".to_owned()));
    extra
}
