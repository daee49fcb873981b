//! One dial-out call: a moderator's Rayo `dial`, routed here by the focus.
//!
//! Contract: the manager validates the dial and answers it with a `ref`
//! naming the call's participant (`xmpp:<gateway account>/call-<nick>`, where
//! a Rayo `hangup` ends the call). [`run`] then joins the room first, shown
//! as the masked number with status `calling`, places the INVITE through
//! the trunk (via the manager, which owns the SIP handle), shows `ringing`,
//! and on answer hands the call to the room's task. A refusal shows as the
//! participant's status for a few seconds before it leaves: `busy` (486,
//! 600), `no answer` (408, 480, 487 after our ring timeout), `rejected`
//! (403, 603), else `failed (<status>)`. A kick or a Rayo hangup while it
//! rings cancels the INVITE.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::http::Metrics;
use crate::leg::PhoneLeg;
use crate::mapper::RoomAddress;
use crate::room::task::Caller;
use crate::sip::client::ClientEvent;
use crate::sip::CallId;

/// How long a refused call's participant stays to show why.
const SHOW_FAILURE: Duration = Duration::from_secs(3);

/// What a dial-out task asks the manager to do with SIP.
pub enum DialRequest {
    /// Send the INVITE; events for the call come on `events`.
    Invite {
        target: String,
        destination: SocketAddr,
        offer: String,
        events: mpsc::UnboundedSender<ClientEvent>,
        reply: oneshot::Sender<Result<CallId, String>>,
    },
    /// Cancel (ringing) or end (answered) the call.
    End(CallId),
}

/// A validated dial.
#[derive(Debug, Clone)]
pub struct DialPlan {
    pub number: String,
    pub room: RoomAddress,
    pub nick: String,
    /// `sip:<number>@<trunk domain>`.
    pub target: String,
    pub trunk: SocketAddr,
}

/// How the task ended.
#[derive(Debug)]
pub enum DialOutcome {
    /// Answered and in the room (the SIP call id for the manager).
    InRoom(CallId, RoomAddress),
    /// Never connected (`Some` when an INVITE was sent).
    Failed(Option<CallId>, String),
}

/// The status shown for a final failure response.
pub fn failure_status(status: u16) -> String {
    match status {
        486 | 600 => "busy".into(),
        408 | 480 | 487 => "no answer".into(),
        403 | 603 => "rejected".into(),
        s => format!("failed ({s})"),
    }
}

pub async fn run(
    shared: Arc<Shared>,
    plan: DialPlan,
    requests: mpsc::UnboundedSender<DialRequest>,
) -> DialOutcome {
    let shown = crate::presence::mask_number(&plan.number);
    let joined = super::dial_in::join(
        &shared,
        &CallId::new(format!("dial-{}", plan.nick)),
        shown.clone(),
        &plan.room,
        Some(plan.nick.clone()),
        "calling",
    )
    .await;
    let (meeting, mut events, nick) = match joined {
        Ok(j) => j,
        Err(e) => return DialOutcome::Failed(None, format!("could not join the meeting: {e}")),
    };
    let show = |status: &str| {
        meeting.set_presence(
            crate::presence::caller(&shown, false),
            Some(status.to_owned()),
        )
    };
    let sip_local = shared.sip_local;
    let pending = match PhoneLeg::offer(sip_local, &shared.config.sip, plan.trunk.ip()).await {
        Ok(p) => p,
        Err(e) => {
            meeting.leave().await;
            return DialOutcome::Failed(None, format!("media: {e}"));
        }
    };
    let (events_tx, mut sip_events) = mpsc::unbounded_channel();
    let (reply, answer) = oneshot::channel();
    let _ = requests.send(DialRequest::Invite {
        target: plan.target.clone(),
        destination: plan.trunk,
        offer: pending.offer_sdp().to_owned(),
        events: events_tx,
        reply,
    });
    let call_id = match answer.await {
        Ok(Ok(id)) => id,
        other => {
            let why = match other {
                Ok(Err(e)) => e,
                _ => "the manager stopped".into(),
            };
            show("failed");
            tokio::time::sleep(SHOW_FAILURE).await;
            meeting.leave().await;
            return DialOutcome::Failed(None, why);
        }
    };
    tracing::info!(%call_id, number = %shown, room = %plan.room.jid(), "dialling out");
    let mut pending = Some(pending);
    loop {
        tokio::select! {
            ev = sip_events.recv() => match ev {
                Some(ClientEvent::Ringing { .. }) => show("ringing"),
                Some(ClientEvent::Answered { sdp, .. }) => {
                    let leg = match (pending.take(), sdp) {
                        (Some(p), Some(sdp)) => p.answered(&sdp, shown.clone()).map_err(|e| e.to_string()),
                        _ => Err("the answer has no SDP".to_owned()),
                    };
                    let leg = match leg {
                        Ok(leg) => leg,
                        Err(why) => {
                            tracing::warn!(%call_id, why, "dial-out answer unusable");
                            let _ = requests.send(DialRequest::End(call_id.clone()));
                            show("failed");
                            tokio::time::sleep(SHOW_FAILURE).await;
                            meeting.leave().await;
                            return DialOutcome::Failed(Some(call_id), why);
                        }
                    };
                    show("connected");
                    let caller = Caller {
                        call_id: call_id.clone(),
                        nick,
                        phone: leg,
                        meeting,
                        events,
                    };
                    if shared.room(&plan.room).join(caller) {
                        return DialOutcome::InRoom(call_id, plan.room);
                    }
                    let _ = requests.send(DialRequest::End(call_id.clone()));
                    return DialOutcome::Failed(Some(call_id), "the room's task ended".into());
                }
                Some(ClientEvent::Failed { status, reason, .. }) => {
                    let status_text = failure_status(status);
                    tracing::info!(%call_id, status, reason, "dial-out refused");
                    show(&status_text);
                    tokio::time::sleep(SHOW_FAILURE).await;
                    meeting.leave().await;
                    return DialOutcome::Failed(Some(call_id), status_text);
                }
                Some(ClientEvent::Cancelled { .. }) | Some(ClientEvent::Ended { .. }) | None => {
                    meeting.leave().await;
                    return DialOutcome::Failed(Some(call_id), "ended before answer".into());
                }
                Some(_) => {}
            },
            ev = events.recv() => match ev {
                Some(participant::MeetingEvent::Kicked)
                | Some(participant::MeetingEvent::HangupRequested)
                | Some(participant::MeetingEvent::Ended(_))
                | None => {
                    let _ = requests.send(DialRequest::End(call_id.clone()));
                    meeting.leave().await;
                    return DialOutcome::Failed(Some(call_id), "hung up from the room while ringing".into());
                }
                Some(_) => {}
            },
        }
    }
}

fn event_call_id(ev: &ClientEvent) -> &CallId {
    match ev {
        ClientEvent::Ringing { call_id, .. }
        | ClientEvent::Answered { call_id, .. }
        | ClientEvent::Failed { call_id, .. }
        | ClientEvent::Cancelled { call_id }
        | ClientEvent::Ended { call_id, .. }
        | ClientEvent::Dtmf { call_id, .. }
        | ClientEvent::Reoffered { call_id, .. } => call_id,
    }
}

/// Checks a moderator's dial: a phone number (digits, an optional leading
/// `+`, spaces and `-().` ignored) and a room on our MUC service.
pub fn plan(
    dial: &proto::rayo::Dial,
    muc: &str,
    trunk: Option<SocketAddr>,
    trunk_domain: &str,
) -> Result<
    DialPlan,
    (
        xmpp_session::xmpp_parsers::stanza_error::DefinedCondition,
        String,
    ),
> {
    use xmpp_session::xmpp_parsers::stanza_error::DefinedCondition as C;
    let number: String = dial
        .to
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = number.strip_prefix('+').unwrap_or(&number);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err((C::BadRequest, format!("not a phone number: {:?}", dial.to)));
    }
    let room = dial
        .room_name()
        .ok_or((C::BadRequest, "no JvbRoomName header".to_owned()))?;
    let room = RoomAddress::parse(room).map_err(|e| (C::BadRequest, format!("{e:?}")))?;
    if room.service() != muc {
        return Err((C::Forbidden, format!("rooms live on {muc}")));
    }
    let trunk = trunk.ok_or((
        C::ServiceUnavailable,
        "this gateway has no trunk for dial-out (sip.trunk)".to_owned(),
    ))?;
    let domain = if trunk_domain.is_empty() {
        trunk.ip().to_string()
    } else {
        trunk_domain.to_owned()
    };
    Ok(DialPlan {
        target: format!("sip:{number}@{domain}"),
        number,
        room,
        nick: super::new_nick(),
        trunk,
    })
}

impl super::Manager {
    /// A Rayo IQ on the gateway's own session: `dial` is checked, answered
    /// with a `ref`, and run; anything else is refused.
    pub fn on_rayo(&mut self, xmpp: &xmpp_session::Handle, req: xmpp_session::IncomingIq) {
        use xmpp_session::xmpp_parsers::stanza_error::DefinedCondition as C;
        let dial = match proto::rayo::RayoIq::try_from(&req.payload) {
            Ok(proto::rayo::RayoIq::Dial(d)) => d,
            Ok(_) => {
                return xmpp.reply_error(
                    req,
                    C::FeatureNotImplemented,
                    "send hangup to the call's ref",
                )
            }
            Err(e) => return xmpp.reply_error(req, C::BadRequest, &e.to_string()),
        };
        let c = &self.shared.config;
        let m = &self.shared.metrics;
        if m.draining.load(std::sync::atomic::Ordering::Relaxed)
            || self.calls.len() + self.dialing.len() >= c.sip.max_calls
        {
            Metrics::add(&m.rejected_busy_total);
            return xmpp.reply_error(req, C::ResourceConstraint, "this gateway is full");
        }
        let plan = match plan(
            &dial,
            &c.meeting.muc,
            self.shared.trunk,
            &c.sip.trunk_domain,
        ) {
            Ok(p) => p,
            Err((condition, text)) => return xmpp.reply_error(req, condition, &text),
        };
        Metrics::add(&m.dial_out_total);
        let reference = proto::rayo::Ref::new(format!("xmpp:{}/call-{}", c.xmpp.jid, plan.nick));
        xmpp.reply(req, Ok(Some(reference.into())));
        let (shared, requests, done) = (
            self.shared.clone(),
            self.dial_tx.clone(),
            self.dial_done_tx.clone(),
        );
        let nick = plan.nick.clone();
        let task = tokio::spawn(async move {
            let key = plan.nick.clone();
            let outcome = run(shared, plan, requests).await;
            let _ = done.send((key, outcome));
        });
        self.dialing.insert(nick, task.abort_handle());
        self.set_active();
    }

    /// A dial-out task's SIP request.
    pub async fn on_dial_request(&mut self, r: DialRequest) {
        match r {
            DialRequest::Invite {
                target,
                destination,
                offer,
                events,
                reply,
            } => {
                let placed = self
                    .sip
                    .dial(
                        target,
                        destination,
                        crate::sip::Transport::Udp,
                        offer,
                        Vec::new(),
                    )
                    .await
                    .map_err(|e| e.to_string());
                if let Ok(id) = &placed {
                    self.dials.insert(id.clone(), events);
                }
                let _ = reply.send(placed);
            }
            DialRequest::End(call_id) => {
                if self.dials.contains_key(&call_id) {
                    let _ = self.sip.cancel_dial(&call_id).await;
                } else {
                    let _ = self.sip.hangup_dial(&call_id).await;
                }
            }
        }
    }

    /// An event of a dial-out call from the SIP driver.
    pub fn on_dial_event(&mut self, ev: ClientEvent) {
        let call_id = event_call_id(&ev).clone();
        if let Some(task) = self.dials.get(&call_id) {
            let _ = task.send(ev);
            return;
        }
        if let ClientEvent::Ended { .. } = ev {
            tracing::info!(%call_id, "the callee hung up");
            if let Some(super::Stage::InRoom { room, .. }) = self.calls.remove(&call_id) {
                room.leave(&call_id);
            }
            self.set_active();
        }
    }

    /// A dial-out task finished.
    pub fn on_dial_done(&mut self, nick: String, outcome: DialOutcome) {
        self.dialing.remove(&nick);
        match outcome {
            DialOutcome::InRoom(call_id, room) => {
                self.dials.remove(&call_id);
                Metrics::add(&self.shared.metrics.connected_total);
                let room = self.shared.room(&room);
                self.calls.insert(
                    call_id,
                    super::Stage::InRoom {
                        room,
                        dialled: true,
                    },
                );
            }
            DialOutcome::Failed(call_id, why) => {
                tracing::info!(?call_id, why, "dial-out ended");
                if let Some(id) = call_id {
                    self.dials.remove(&id);
                }
            }
        }
        self.set_active();
    }
}
