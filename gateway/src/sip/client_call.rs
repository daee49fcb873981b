//! One dial-out call of the [`Client`](super::client::Client): its INVITE
//! client transaction, CANCEL, dialog and BYE, and the [`Core`] that drives
//! them (see the client's module docs for the behaviour).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client::{ClientConfig, ClientEndReason, ClientError, ClientEvent, ClientOutput};
use super::digest::{authorization, Answer, Challenge};
use super::inbound::{respond, Message, Start};
use super::uac::{self, serialize, via, Ids, NonInvite, Tick};
use super::uac_dialog::{Dialog, Outcome, ALLOW};
use super::{CallId, Transmit, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Local,
    RingTimeout,
}

#[derive(Debug)]
enum Cancel {
    No,
    /// Asked before any provisional: sent when one comes.
    Pending(Why),
    Sent {
        tx: Option<NonInvite>,
        why: Why,
        give_up: Instant,
    },
}

#[derive(Debug)]
enum Phase {
    /// INVITE sent, nothing heard; Timer A (`next`, UDP) and Timer B.
    Calling {
        next: Option<Instant>,
        interval: Duration,
        timer_b: Instant,
    },
    /// A provisional came.
    Proceeding {
        ring_deadline: Instant,
    },
    /// Final non-2xx ACKed; Timer D absorbs its retransmissions.
    Completed {
        until: Instant,
    },
    Confirmed,
    /// Our BYE is out.
    Ending,
    /// The callee's BYE was answered; its retransmissions get the same answer.
    Closing {
        until: Instant,
    },
    Done,
}

/// Our last answer to a callee's request, for its retransmissions.
#[derive(Debug)]
struct Served {
    branch: Option<String>,
    cseq: (u32, String),
    transmit: Transmit,
}

/// A 2xx to a re-INVITE, retransmitted over UDP until the ACK (§13.3.1.4).
#[derive(Debug)]
struct Repeat {
    cseq: u32,
    transmit: Transmit,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

#[derive(Debug)]
pub(super) struct Call {
    pub call_id: CallId,
    transport: Transport,
    /// Where the INVITE, CANCEL and non-2xx ACK go.
    hop: SocketAddr,
    target: String,
    from: String,
    local_tag: String,
    to: String,
    extra: Vec<(String, String)>,
    sdp: String,
    /// CSeq and branch of the current INVITE.
    cseq: u32,
    branch: String,
    invite: Vec<u8>,
    auth: Option<(&'static str, String)>,
    /// Branch and ACK of the challenged INVITE, for its retransmitted challenge.
    challenged: Option<(String, Vec<u8>)>,
    phase: Phase,
    cancel: Cancel,
    dialog: Option<Dialog>,
    /// Our ACK to the final response, re-sent when it is retransmitted.
    ack: Option<Transmit>,
    bye: Option<NonInvite>,
    bye_challenged: bool,
    served: Option<Served>,
    repeat: Option<Repeat>,
    /// The call's final event has been emitted.
    reported: bool,
}

/// What the calls share: settings, identifiers and the output queue.
#[derive(Debug)]
pub(super) struct Core {
    pub config: ClientConfig,
    pub sent_by: String,
    pub ids: Ids,
    pub queue: VecDeque<ClientOutput>,
}

impl Call {
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    pub fn deadline(&self) -> Option<Instant> {
        let proceeding = matches!(self.phase, Phase::Proceeding { .. });
        let phase = match (&self.phase, &self.cancel) {
            (Phase::Calling { next, timer_b, .. }, _) => {
                Some(next.map_or(*timer_b, |n| n.min(*timer_b)))
            }
            (Phase::Proceeding { ring_deadline }, Cancel::No) => Some(*ring_deadline),
            (Phase::Completed { until } | Phase::Closing { until }, _) => Some(*until),
            _ => None,
        };
        // The CANCEL's own retransmissions; its give-up time only while the
        // INVITE still waits for a final response.
        let cancel = match &self.cancel {
            Cancel::Sent { tx, give_up, .. } => {
                let give_up = proceeding.then_some(*give_up);
                let tx = tx.as_ref().map(NonInvite::deadline);
                [tx, give_up].into_iter().flatten().min()
            }
            _ => None,
        };
        let bye = self.bye.as_ref().map(NonInvite::deadline);
        let repeat = self.repeat.as_ref().map(|r| r.next.min(r.give_up));
        [phase, cancel, bye, repeat].into_iter().flatten().min()
    }
}

impl Core {
    /// A new call; its INVITE is sent at once.
    pub fn start_call(
        &mut self,
        target: &str,
        destination: SocketAddr,
        transport: Transport,
        sdp_offer: &str,
        extra_headers: &[(String, String)],
        now: Instant,
    ) -> Call {
        let call_id = CallId::new(self.ids.call_id(uac::host_of(&self.sent_by)));
        let local_tag = self.ids.tag();
        let from = uac::name_addr_value(self.config.from_display.as_deref(), &self.config.from_uri);
        let mut call = Call {
            call_id,
            transport,
            hop: self.config.outbound_proxy.unwrap_or(destination),
            target: target.to_owned(),
            from: format!("{from};tag={local_tag}"),
            local_tag,
            to: format!("<{target}>"),
            extra: extra_headers.to_vec(),
            sdp: sdp_offer.to_owned(),
            cseq: 1,
            branch: self.ids.branch(),
            invite: Vec::new(),
            auth: None,
            challenged: None,
            phase: Phase::Done,
            cancel: Cancel::No,
            dialog: None,
            ack: None,
            bye: None,
            bye_challenged: false,
            served: None,
            repeat: None,
            reported: false,
        };
        tracing::info!(call_id = %call.call_id, "dialling out");
        self.send_invite(&mut call, now);
        call
    }

    pub fn cancel(&mut self, call: &mut Call, now: Instant) -> Result<(), ClientError> {
        match call.phase {
            Phase::Calling { .. } => {
                if matches!(call.cancel, Cancel::No) {
                    call.cancel = Cancel::Pending(Why::Local);
                }
                Ok(())
            }
            Phase::Proceeding { .. } => {
                if matches!(call.cancel, Cancel::No) {
                    self.send_cancel(call, Why::Local, now);
                }
                Ok(())
            }
            Phase::Confirmed | Phase::Ending => Err(ClientError::AlreadyAnswered),
            _ => Err(ClientError::Ended),
        }
    }

    pub fn hangup(&mut self, call: &mut Call, now: Instant) -> Result<(), ClientError> {
        match call.phase {
            Phase::Calling { .. } | Phase::Proceeding { .. } => self.cancel(call, now),
            Phase::Confirmed => {
                self.send_bye(call, now);
                Ok(())
            }
            Phase::Ending => Ok(()),
            _ => Err(ClientError::Ended),
        }
    }

    fn send(&mut self, transmit: Transmit) {
        self.queue.push_back(uac::Output::Transmit(transmit));
    }

    fn event(&mut self, event: ClientEvent) {
        self.queue.push_back(uac::Output::Event(event));
    }

    fn transmit(call: &Call, destination: SocketAddr, contents: Vec<u8>) -> Transmit {
        Transmit {
            transport: call.transport,
            destination,
            contents,
        }
    }

    /// (Re)builds the INVITE from the call's CSeq, branch and credentials and sends it.
    fn send_invite(&mut self, call: &mut Call, now: Instant) {
        let t1 = self.config.t1;
        let mut headers = vec![
            ("Via", via(call.transport, &self.sent_by, &call.branch)),
            ("Max-Forwards", "70".to_owned()),
            ("From", call.from.clone()),
            ("To", call.to.clone()),
            ("Call-ID", call.call_id.to_string()),
            ("CSeq", format!("{} INVITE", call.cseq)),
            ("Contact", format!("<{}>", self.config.contact)),
            ("Allow", ALLOW.to_owned()),
            ("User-Agent", self.config.user_agent.clone()),
        ];
        headers.extend(call.auth.clone());
        headers.extend(call.extra.iter().map(|(n, v)| (n.as_str(), v.clone())));
        headers.push(("Content-Type", "application/sdp".to_owned()));
        call.invite = serialize("INVITE", &call.target, &headers, call.sdp.as_bytes());
        call.phase = Phase::Calling {
            next: (call.transport == Transport::Udp).then_some(now + t1),
            interval: t1,
            timer_b: now + 64 * t1,
        };
        let transmit = Self::transmit(call, call.hop, call.invite.clone());
        self.send(transmit);
    }

    /// A request of the INVITE transaction (CANCEL, ACK for non-2xx): same
    /// Request-URI, Call-ID, From, CSeq number and branch (§9.1, §17.1.1.3).
    fn hop_request(&self, call: &Call, method: &str, to: &str) -> Vec<u8> {
        let headers = [
            ("Via", via(call.transport, &self.sent_by, &call.branch)),
            ("Max-Forwards", "70".to_owned()),
            ("From", call.from.clone()),
            ("To", to.to_owned()),
            ("Call-ID", call.call_id.to_string()),
            ("CSeq", format!("{} {method}", call.cseq)),
            ("User-Agent", self.config.user_agent.clone()),
        ];
        serialize(method, &call.target, &headers, b"")
    }

    fn send_cancel(&mut self, call: &mut Call, why: Why, now: Instant) {
        let request = self.hop_request(call, "CANCEL", &call.to);
        let transmit = Self::transmit(call, call.hop, request);
        let t1 = self.config.t1;
        let tx = NonInvite::new("CANCEL", call.cseq, call.branch.clone(), transmit, now, t1);
        self.send(tx.transmit());
        let give_up = now + 64 * t1;
        let tx = Some(tx);
        call.cancel = Cancel::Sent { tx, why, give_up };
    }

    /// Sends a request in the dialog; returns its branch and what was sent.
    fn dialog_request(
        &mut self,
        call: &Call,
        dialog: &Dialog,
        method: &str,
        cseq: u32,
        extra: &[(&str, String)],
    ) -> (String, Transmit) {
        let branch = self.ids.branch();
        let mut headers = vec![("User-Agent", self.config.user_agent.clone())];
        headers.extend_from_slice(extra);
        let via = via(call.transport, &self.sent_by, &branch);
        let request = dialog.request(method, cseq, via, &headers, b"");
        let hop = dialog.next_hop(self.config.outbound_proxy, call.hop);
        let transmit = Self::transmit(call, hop, request);
        self.send(transmit.clone());
        (branch, transmit)
    }

    fn send_bye(&mut self, call: &mut Call, now: Instant) {
        self.send_bye_with(call, None, now);
    }

    fn send_bye_with(
        &mut self,
        call: &mut Call,
        auth: Option<(&'static str, String)>,
        now: Instant,
    ) {
        let Some(mut dialog) = call.dialog.take() else {
            return;
        };
        dialog.local_cseq += 1;
        let cseq = dialog.local_cseq;
        let extra: Vec<_> = auth.into_iter().collect();
        let (branch, transmit) = self.dialog_request(call, &dialog, "BYE", cseq, &extra);
        call.dialog = Some(dialog);
        let t1 = self.config.t1;
        call.bye = Some(NonInvite::new("BYE", cseq, branch, transmit, now, t1));
        call.phase = Phase::Ending;
    }

    fn cancelled(&mut self, call: &mut Call, why: Why) {
        let call_id = call.call_id.clone();
        call.reported = true;
        self.event(match why {
            Why::Local => ClientEvent::Cancelled { call_id },
            Why::RingTimeout => ClientEvent::Failed {
                call_id,
                status: 408,
                reason: "No answer".into(),
            },
        });
    }

    fn why_cancelled(call: &Call) -> Option<Why> {
        match call.cancel {
            Cancel::No => None,
            Cancel::Pending(why) | Cancel::Sent { why, .. } => Some(why),
        }
    }

    pub fn on_response(&mut self, call: &mut Call, msg: &Message, now: Instant) {
        let (cseq, method) = msg.cseq();
        let status = msg.status();
        match method {
            "INVITE" if msg.branch() == Some(&call.branch) && cseq == call.cseq => {
                self.invite_response(call, msg, now)
            }
            "INVITE" if status >= 200 => {
                let old = call.challenged.as_ref();
                if let Some((_, ack)) = old.filter(|(b, _)| msg.branch() == Some(b.as_str())) {
                    let transmit = Self::transmit(call, call.hop, ack.clone());
                    self.send(transmit);
                }
            }
            "CANCEL" => {
                if let Cancel::Sent { tx, .. } = &mut call.cancel {
                    if tx.as_ref().is_some_and(|t| t.matches(msg)) {
                        if status >= 200 {
                            *tx = None;
                        } else if let Some(t) = tx {
                            t.provisional(now, self.config.t2);
                        }
                    }
                }
            }
            "BYE" if call.bye.as_ref().is_some_and(|t| t.matches(msg)) => {
                self.bye_response(call, msg, now)
            }
            _ => {}
        }
    }

    fn invite_response(&mut self, call: &mut Call, msg: &Message, now: Instant) {
        let status = msg.status();
        let early = matches!(call.phase, Phase::Calling { .. } | Phase::Proceeding { .. });
        let can_auth = self.config.credentials.is_some()
            && call.challenged.is_none()
            && matches!(call.cancel, Cancel::No);
        match status {
            100..=199 if early => {
                if matches!(call.phase, Phase::Calling { .. }) {
                    let ring_deadline = now + self.config.ring_timeout;
                    call.phase = Phase::Proceeding { ring_deadline };
                }
                match call.cancel {
                    Cancel::Pending(why) => self.send_cancel(call, why, now),
                    Cancel::No if status == 180 || status == 183 => {
                        self.event(ClientEvent::Ringing {
                            call_id: call.call_id.clone(),
                            status,
                            sdp: msg.body_text(),
                        })
                    }
                    _ => {}
                }
            }
            200..=299 if early => self.answered(call, msg, now),
            401 | 407 if early && can_auth => self.authenticate(call, msg, now),
            300.. if early => self.rejected(call, msg, now),
            300.. if matches!(call.phase, Phase::Completed { .. }) => {
                if let Some(ack) = call.ack.clone() {
                    self.send(ack);
                }
            }
            200..=299 => {
                let theirs = call.dialog.as_ref().map(|d| d.remote_tag.as_str());
                if msg.tag("to").unwrap_or_default() == theirs.unwrap_or_default() {
                    if let Some(ack) = call.ack.clone() {
                        self.send(ack);
                    }
                } else {
                    self.end_fork(call, msg);
                }
            }
            _ => {}
        }
    }

    /// 2xx: the dialog, its ACK, and the event (or BYE when we had cancelled).
    fn answered(&mut self, call: &mut Call, msg: &Message, now: Instant) {
        let dialog = Dialog::from_2xx(msg, &call.from, &call.local_tag, &call.target, call.cseq);
        let extra: Vec<_> = call.auth.clone().into_iter().collect();
        let (_, ack) = self.dialog_request(call, &dialog, "ACK", call.cseq, &extra);
        call.ack = Some(ack);
        call.dialog = Some(dialog);
        let call_id = call.call_id.clone();
        match Self::why_cancelled(call) {
            Some(why) => {
                tracing::info!(call_id = %call_id, "answered while cancelling; sending BYE");
                self.send_bye(call, now);
                self.cancelled(call, why);
            }
            None => {
                tracing::info!(call_id = %call_id, "call answered");
                call.phase = Phase::Confirmed;
                let sdp = msg.body_text();
                self.event(ClientEvent::Answered { call_id, sdp });
            }
        }
    }

    /// Another fork answered too: ACK it and end that dialog at once (§13.2.2.4).
    fn end_fork(&mut self, call: &Call, msg: &Message) {
        let mut other = Dialog::from_2xx(msg, &call.from, &call.local_tag, &call.target, call.cseq);
        tracing::debug!(call_id = %call.call_id, "2xx from another fork; ending it");
        self.dialog_request(call, &other, "ACK", call.cseq, &[]);
        other.local_cseq += 1;
        self.dialog_request(call, &other, "BYE", other.local_cseq, &[]);
    }

    fn ack_non_2xx(&mut self, call: &mut Call, msg: &Message) {
        let to = msg.one("to").unwrap_or(&call.to).to_owned();
        let request = self.hop_request(call, "ACK", &to);
        let transmit = Self::transmit(call, call.hop, request);
        self.send(transmit.clone());
        call.ack = Some(transmit);
    }

    fn rejected(&mut self, call: &mut Call, msg: &Message, now: Instant) {
        self.ack_non_2xx(call, msg);
        // Timer D: 32 s over UDP; nothing to absorb over TCP.
        call.phase = match call.transport {
            Transport::Udp => Phase::Completed {
                until: now + Duration::from_secs(32),
            },
            Transport::Tcp => Phase::Done,
        };
        let call_id = call.call_id.clone();
        match Self::why_cancelled(call) {
            Some(why) => self.cancelled(call, why),
            None => {
                let (status, reason) = match &msg.start {
                    Start::Response { status, reason } => (*status, reason.clone()),
                    Start::Request { .. } => (500, String::new()),
                };
                tracing::info!(call_id = %call_id, status, "call failed");
                call.reported = true;
                self.event(ClientEvent::Failed {
                    call_id,
                    status,
                    reason,
                });
            }
        }
    }

    /// The digest header answering a 401/407, or `None` when we cannot.
    fn answer_challenge(
        &mut self,
        msg: &Message,
        method: &str,
        uri: &str,
    ) -> Option<(&'static str, String)> {
        let creds = self.config.credentials.as_ref()?;
        let (challenge_header, header) = match msg.status() {
            401 => ("www-authenticate", "Authorization"),
            _ => ("proxy-authenticate", "Proxy-Authorization"),
        };
        let challenge = match Challenge::pick(msg.lines(challenge_header)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot answer the challenge");
                return None;
            }
        };
        let cnonce = self.ids.cnonce();
        let answer = Answer {
            method,
            uri,
            cnonce: &cnonce,
            nc: 1,
        };
        Some((header, authorization(&challenge, creds, &answer)))
    }

    /// 401/407: ACK it, then the INVITE again with credentials (new branch, CSeq+1).
    fn authenticate(&mut self, call: &mut Call, msg: &Message, now: Instant) {
        let Some(auth) = self.answer_challenge(msg, "INVITE", &call.target.clone()) else {
            return self.rejected(call, msg, now);
        };
        self.ack_non_2xx(call, msg);
        let ack = call.ack.take().map(|t| t.contents).unwrap_or_default();
        let old_branch = std::mem::replace(&mut call.branch, self.ids.branch());
        call.challenged = Some((old_branch, ack));
        call.cseq += 1;
        call.auth = Some(auth);
        tracing::debug!(call_id = %call.call_id, "answering the challenge");
        self.send_invite(call, now);
    }

    fn bye_response(&mut self, call: &mut Call, msg: &Message, now: Instant) {
        let status = msg.status();
        if status < 200 {
            if let Some(tx) = &mut call.bye {
                tx.provisional(now, self.config.t2);
            }
            return;
        }
        if (status == 401 || status == 407) && !call.bye_challenged {
            let uri = call
                .dialog
                .as_ref()
                .map(|d| d.routing().0)
                .unwrap_or_default();
            if let Some(auth) = self.answer_challenge(msg, "BYE", &uri) {
                call.bye_challenged = true;
                return self.send_bye_with(call, Some(auth), now);
            }
        }
        tracing::debug!(call_id = %call.call_id, status, "BYE answered");
        self.hung_up(call);
    }

    fn hung_up(&mut self, call: &mut Call) {
        call.bye = None;
        call.phase = Phase::Done;
        if !call.reported {
            call.reported = true;
            let call_id = call.call_id.clone();
            let reason = ClientEndReason::LocalHangup;
            self.event(ClientEvent::Ended { call_id, reason });
        }
    }

    pub fn on_request(
        &mut self,
        call: &mut Call,
        msg: &Message,
        method: &str,
        (transport, source): (Transport, SocketAddr),
        now: Instant,
    ) {
        let (cseq, _) = msg.cseq();
        if method == "ACK" {
            if call.repeat.as_ref().is_some_and(|r| r.cseq == cseq) {
                call.repeat = None;
            }
            return;
        }
        if let Some(served) = &call.served {
            let same = served.branch.as_deref() == msg.branch()
                && served.cseq.0 == cseq
                && served.cseq.1 == method;
            if same {
                let again = served.transmit.clone();
                return self.send(again);
            }
        }
        let up = matches!(call.phase, Phase::Confirmed | Phase::Ending);
        let dialog = call.dialog.as_mut().filter(|d| up && d.matches(msg));
        let Some(dialog) = dialog else {
            let contents = respond(msg, 481, &[], b"", source);
            return self.send(Transmit {
                transport,
                destination: source,
                contents,
            });
        };
        let reply = dialog.serve(msg, method, &call.sdp, &self.config.contact);
        let contents = respond(msg, reply.status, &reply.extra, &reply.body, source);
        let transmit = Transmit {
            transport,
            destination: source,
            contents,
        };
        self.send(transmit.clone());
        let t1 = self.config.t1;
        if method == "INVITE" && reply.status == 200 && transport == Transport::Udp {
            call.repeat = Some(Repeat {
                cseq,
                transmit: transmit.clone(),
                next: now + t1,
                interval: t1,
                give_up: now + 64 * t1,
            });
        }
        call.served = Some(Served {
            branch: msg.branch().map(str::to_owned),
            cseq: (cseq, method.to_owned()),
            transmit,
        });
        let call_id = call.call_id.clone();
        match reply.outcome {
            Outcome::Nothing => {}
            Outcome::Bye => {
                tracing::info!(call_id = %call_id, "callee hung up");
                call.bye = None;
                call.repeat = None;
                call.phase = Phase::Closing {
                    until: now + 64 * t1,
                };
                if !call.reported {
                    call.reported = true;
                    let reason = ClientEndReason::RemoteBye;
                    self.event(ClientEvent::Ended { call_id, reason });
                }
            }
            Outcome::Dtmf(digit) => self.event(ClientEvent::Dtmf { call_id, digit }),
            Outcome::Reoffer(sdp) => self.event(ClientEvent::Reoffered { call_id, sdp }),
        }
    }

    pub fn on_timeout(&mut self, call: &mut Call, now: Instant) {
        let t2 = self.config.t2;
        match &mut call.phase {
            Phase::Calling { timer_b, .. } if now >= *timer_b => {
                call.phase = Phase::Done;
                match Self::why_cancelled(call) {
                    Some(why) => self.cancelled(call, why),
                    None => {
                        tracing::info!(call_id = %call.call_id, "no response to INVITE");
                        call.reported = true;
                        self.event(ClientEvent::Failed {
                            call_id: call.call_id.clone(),
                            status: 408,
                            reason: "Request Timeout".into(),
                        });
                    }
                }
                return;
            }
            Phase::Calling {
                next: Some(next),
                interval,
                ..
            } if now >= *next => {
                *interval *= 2;
                *next = now + *interval;
                let transmit = Self::transmit(call, call.hop, call.invite.clone());
                self.send(transmit);
            }
            Phase::Proceeding { ring_deadline }
                if now >= *ring_deadline && matches!(call.cancel, Cancel::No) =>
            {
                tracing::info!(call_id = %call.call_id, "no answer; cancelling");
                self.send_cancel(call, Why::RingTimeout, now);
            }
            Phase::Completed { until } | Phase::Closing { until } if now >= *until => {
                call.phase = Phase::Done;
                return;
            }
            _ => {}
        }
        let mut gave_up = None;
        if let Cancel::Sent { tx, why, give_up } = &mut call.cancel {
            if let Some(t) = tx {
                match t.tick(now, t2) {
                    Tick::Resend(transmit) => self.send(transmit),
                    Tick::TimedOut => *tx = None,
                    Tick::Idle => {}
                }
            }
            if now >= *give_up && matches!(call.phase, Phase::Proceeding { .. }) {
                gave_up = Some(*why);
            }
        }
        if let Some(why) = gave_up {
            // No final response within 64·T1 of the CANCEL (§9.1).
            call.phase = Phase::Done;
            return self.cancelled(call, why);
        }
        if let Some(tx) = &mut call.bye {
            match tx.tick(now, t2) {
                Tick::Resend(transmit) => self.send(transmit),
                Tick::TimedOut => self.hung_up(call),
                Tick::Idle => {}
            }
        }
        if let Some(r) = &mut call.repeat {
            if now >= r.give_up {
                call.repeat = None;
            } else if now >= r.next {
                r.interval = (r.interval * 2).min(t2);
                r.next = now + r.interval;
                let again = r.transmit.clone();
                self.send(again);
            }
        }
    }
}
