//! Requests we send within a dialog (BYE, session-refresh UPDATE) as RFC 3261
//! §17.1.2 non-INVITE client transactions, and the routing of responses.
//!
//! A request goes to the address the dialog's INVITE came from, over the same
//! transport (symmetric, as responses do; the core resolves no names), with
//! the Request-URI and Route set of §12.2.1.1. Over UDP it is retransmitted by
//! Timer E (T1 doubling up to T2, T2 after a provisional response); Timer F
//! (64·T1) ends it. A final response completes it; retransmitted responses are
//! absorbed for T4 (Timer K, UDP). Responses are matched to our transactions
//! by top Via branch and CSeq method; all others go to the application as
//! [`Event::Response`], malformed ones are dropped. Tags and branches we
//! generate come from here too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::message::{self, name_addr, Request};
use super::server::{Call, Ctx, State};
use super::{CallError, CallId, EndReason, Event, Server, Transport};

/// Retransmission and give-up times of a transaction: `next` doubles from T1
/// up to T2 each time it fires (`None`: no retransmissions), `give_up` ends it.
#[derive(Debug, Clone)]
pub(super) struct Resend {
    pub(super) next: Option<Instant>,
    pub(super) interval: Duration,
    pub(super) give_up: Instant,
}

impl Resend {
    /// Starts at `now`; retransmits only when `retransmit` (unreliable transport).
    pub(super) fn new(now: Instant, t1: Duration, retransmit: bool) -> Self {
        Self {
            next: retransmit.then_some(now + t1),
            interval: t1,
            give_up: now + 64 * t1,
        }
    }

    pub(super) fn due(&self) -> Instant {
        self.next.map_or(self.give_up, |n| n.min(self.give_up))
    }

    pub(super) fn expired(&self, now: Instant) -> bool {
        now >= self.give_up
    }

    /// Whether a retransmission is due now; if so the next one is scheduled.
    pub(super) fn fire(&mut self, now: Instant, t2: Duration) -> bool {
        match self.next {
            Some(next) if now >= next => {
                self.interval = (self.interval * 2).min(t2);
                self.next = Some(now + self.interval);
                true
            }
            _ => false,
        }
    }
}

/// What a client transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Our BYE; the call ends when it completes (if the call still waits for it).
    Bye,
    /// A session refresh (RFC 4028, we are the refresher).
    Refresh,
}

impl Purpose {
    fn method(self) -> &'static str {
        match self {
            Purpose::Bye => "BYE",
            Purpose::Refresh => "UPDATE",
        }
    }
}

/// A non-INVITE client transaction.
#[derive(Debug)]
pub(super) struct ClientTx {
    call_id: CallId,
    purpose: Purpose,
    transport: Transport,
    destination: SocketAddr,
    request: Vec<u8>,
    /// Timer E and F while waiting for a final response.
    resend: Resend,
    /// Completed: absorbing retransmitted final responses until then (Timer K).
    completed: Option<Instant>,
}

impl ClientTx {
    pub(super) fn due(&self) -> Instant {
        self.completed.unwrap_or_else(|| self.resend.due())
    }
}

impl Server {
    /// Ends an answered call from our side with BYE (RFC 3261 §15.1.1). Before
    /// the caller's ACK the BYE waits for it (or for its timeout). The call
    /// ends with [`EndReason::LocalHangup`] when the BYE is answered or Timer F
    /// fires. A call not answered yet is refused with [`Server::reject`] instead.
    pub fn hangup(&mut self, call_id: &CallId, now: Instant) -> Result<(), CallError> {
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        match &mut call.state {
            State::Proceeding { .. } => Err(CallError::NotAnswered),
            State::Accepted { hangup, .. } => {
                *hangup = true;
                Ok(())
            }
            State::Confirmed => {
                self.start_bye(call_id, EndReason::LocalHangup, now);
                Ok(())
            }
            State::Rejected { .. } | State::Terminating { .. } => Err(CallError::AlreadyAnswered),
        }
    }

    pub(super) fn new_tag(&mut self) -> String {
        self.tags += 1;
        format!("{:x}", mix(self.tags.wrapping_add(self.config.tag_seed)))
    }

    pub(super) fn stateless_tag(&self, req: &Request) -> String {
        // FNV-1a over what identifies the request, then spread like `new_tag`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ self.config.tag_seed;
        for part in [req.one("call-id"), req.tag("from"), req.branch()] {
            for byte in part.unwrap_or_default().bytes().chain([0]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{:x}", mix(hash))
    }

    /// Sends BYE on the dialog of `call_id` and marks the call ending with
    /// `reason` (any pending re-INVITE gets 487, session timers stop).
    pub(super) fn start_bye(&mut self, call_id: &CallId, reason: EndReason, now: Instant) {
        tracing::info!(%call_id, ?reason, "ending call with BYE");
        self.abandon_reoffer(call_id);
        if let Some(call) = self.calls.get_mut(call_id) {
            call.state = State::Terminating { reason };
            call.dialog.session = None;
        }
        if !self.send_request(call_id, Purpose::Bye, &[], now) {
            // No room for the transaction: end the call at once.
            self.finish(call_id, reason);
        }
    }

    /// Sends BYE for a call that has already ended for the application
    /// (our 2xx was never acknowledged); its outcome is not reported.
    pub(super) fn detached_bye(&mut self, call_id: &CallId, now: Instant) {
        self.send_request(call_id, Purpose::Bye, &[], now);
    }

    /// Builds and sends an in-dialog request; false when over the hard cap.
    pub(super) fn send_request(
        &mut self,
        call_id: &CallId,
        purpose: Purpose,
        extra: &[(&str, String)],
        now: Instant,
    ) -> bool {
        if self.clients.len() >= self.config.max_transactions {
            tracing::warn!(%call_id, "too many client transactions; request not sent");
            return false;
        }
        let branch = format!("z9hG4bK{}", self.new_tag());
        let sent_by = sent_by(&self.config.contact).to_owned();
        let Some(call) = self.calls.get_mut(call_id) else {
            return false;
        };
        call.dialog.local_cseq += 1;
        let request = build_request(call, purpose.method(), &branch, &sent_by, extra);
        let (transport, destination) = (call.transport, call.source);
        let udp = transport == Transport::Udp;
        let tx = ClientTx {
            call_id: call_id.clone(),
            purpose,
            transport,
            destination,
            request: request.clone(),
            resend: Resend::new(now, self.config.t1, udp),
            completed: None,
        };
        self.clients.insert(branch, tx);
        self.send(transport, destination, request);
        true
    }

    /// A response: ours (a BYE or UPDATE of ours) or the application's.
    pub(super) fn response(&mut self, ctx: &Ctx, data: &[u8]) {
        let resp = match message::parse_response(data) {
            Ok(resp) => resp,
            Err(why) => {
                tracing::debug!(source = %ctx.source, why, "dropped malformed SIP response");
                return;
            }
        };
        let ours = resp.branch().and_then(|branch| {
            let tx = self.clients.get(branch)?;
            (resp.cseq().1 == tx.purpose.method()).then(|| branch.to_owned())
        });
        let Some(branch) = ours else {
            self.event(Event::Response {
                transport: ctx.transport,
                source: ctx.source,
                data: data.to_vec(),
            });
            return;
        };
        let t2 = self.config.t2;
        let until = ctx.now + self.config.t4;
        let Some(tx) = self.clients.get_mut(&branch) else {
            return;
        };
        if tx.completed.is_some() {
            return; // A retransmitted final response.
        }
        if resp.status < 200 {
            // Proceeding: Timer E now fires every T2.
            tx.resend.interval = t2;
            return;
        }
        let (call_id, purpose) = (tx.call_id.clone(), tx.purpose);
        if tx.transport == Transport::Udp {
            tx.completed = Some(until);
        } else {
            self.clients.remove(&branch);
        }
        self.completed(&call_id, purpose, Some(resp.status), ctx.now);
    }

    /// A transaction ended with a final `status` or, with `None`, Timer F.
    fn completed(&mut self, call_id: &CallId, purpose: Purpose, status: Option<u16>, now: Instant) {
        match purpose {
            Purpose::Bye => {
                let ending = self.calls.get(call_id).and_then(|call| match call.state {
                    State::Terminating { reason } => Some(reason),
                    _ => None,
                });
                if let Some(reason) = ending {
                    self.finish(call_id, reason);
                }
            }
            Purpose::Refresh => self.refresh_completed(call_id, status, now),
        }
    }

    /// Forgets the call and tells the application.
    pub(super) fn finish(&mut self, call_id: &CallId, reason: EndReason) {
        if self.calls.remove(call_id).is_some() {
            let call_id = call_id.clone();
            self.event(Event::CallEnded { call_id, reason });
        }
    }

    pub(super) fn client_timeouts(&mut self, now: Instant) {
        let t2 = self.config.t2;
        let mut ended = Vec::new();
        let mut resend = Vec::new();
        for (branch, tx) in &mut self.clients {
            if let Some(until) = tx.completed {
                if now >= until {
                    ended.push((branch.clone(), None));
                }
            } else if tx.resend.expired(now) {
                ended.push((branch.clone(), Some((tx.call_id.clone(), tx.purpose))));
            } else if tx.resend.fire(now, t2) {
                resend.push((tx.transport, tx.destination, tx.request.clone()));
            }
        }
        for (t, d, r) in resend {
            self.send(t, d, r);
        }
        ended.sort_by(|a, b| a.0.cmp(&b.0));
        for (branch, timed_out) in ended {
            self.clients.remove(&branch);
            if let Some((call_id, purpose)) = timed_out {
                tracing::debug!(%call_id, ?purpose, "request timed out (Timer F)");
                self.completed(&call_id, purpose, None, now);
            }
        }
    }
}

/// splitmix64's finaliser: spreads counters and hashes over the tag space.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An in-dialog request from us (RFC 3261 §12.2.1.1): From is the INVITE's To
/// with our tag, To is its From, the Request-URI the remote target (or the
/// first route when it is a strict router).
fn build_request(
    call: &Call,
    method: &str,
    branch: &str,
    sent_by: &str,
    extra: &[(&str, String)],
) -> Vec<u8> {
    let transport = match call.transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    let target = call.dialog.target.as_str();
    let mut routes: Vec<String> = call
        .invite
        .values("record-route")
        .map(str::to_owned)
        .collect();
    let first_uri = routes
        .first()
        .and_then(|r| name_addr(r).ok())
        .map(|(_, uri, _)| uri.to_owned());
    let uri = match first_uri {
        Some(first) if !is_loose(&first) => {
            // A strict router: it becomes the Request-URI, the target the last route.
            routes.remove(0);
            routes.push(format!("<{target}>"));
            first
        }
        _ => target.to_owned(),
    };
    let to = call.invite.one("to").unwrap_or_default();
    let from = call.invite.one("from").unwrap_or_default();
    let call_id = call.invite.one("call-id").unwrap_or_default();
    let cseq = call.dialog.local_cseq;
    let mut out = format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {sent_by};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n"
    );
    for route in routes {
        out.push_str(&format!("Route: {route}\r\n"));
    }
    out.push_str(&format!(
        "From: {to};tag={}\r\n\
         To: {from}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n",
        call.to_tag
    ));
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Whether a route URI has the `lr` parameter (a loose router, RFC 3261 §16.12).
fn is_loose(uri: &str) -> bool {
    uri.split(';')
        .skip(1)
        .any(|p| p.eq_ignore_ascii_case("lr") || p.to_ascii_lowercase().starts_with("lr="))
}

/// The host[:port] of our Contact URI, for the Via of our requests.
fn sent_by(contact: &str) -> &str {
    let uri = contact.trim().trim_start_matches('<');
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    host.split([';', '>', '?']).next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sent_by_and_loose_routes() {
        let cases = [
            ("sip:gateway@127.0.0.1", "127.0.0.1"),
            (
                "sip:gw@[2001:db8::1]:5070;transport=tcp",
                "[2001:db8::1]:5070",
            ),
            ("<sips:gw.example.com>", "gw.example.com"),
        ];
        for (contact, expected) in cases {
            assert_eq!(super::sent_by(contact), expected, "{contact}");
        }
        assert!(super::is_loose("sip:p.example.com;lr"));
        assert!(super::is_loose("sip:p.example.com;transport=tcp;LR=on"));
        assert!(!super::is_loose("sip:p.example.com;transport=tcp"));
    }
}
