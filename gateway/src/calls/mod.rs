//! The call manager: SIP events in, rooms and calls out.
//!
//! Contract: [`Manager::on_sip`] takes every event of the SIP driver. A new
//! INVITE is refused at the call limit or while draining (503), for an SDP
//! without a codec we speak (488), or without a room and without a mapper
//! (404); otherwise it gets a phone leg (an RTP socket) and a call task
//! ([`dial_in`]): with the room header the caller joins first and the call
//! is answered once in the room (a failed join answers 480); without it the
//! call is answered at once and the PIN prompt runs. The manager ends the
//! SIP side (BYE) when a call task gives up or a room reports a departure
//! (kicked, phone silent, meeting ended), and ends the room side when the
//! phone hangs up.

pub mod dial_in;
pub mod dial_out;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::http::Metrics;
use crate::ivr::{IvrConfig, Prompts};
use crate::leg::PhoneLeg;
use crate::mapper::{Mapper, RoomAddress};
use crate::phone::sdp::{LocalMedia, Offer};
use crate::room::task::{self as room_task, Departure, LeaveReason, RoomHandle};
use crate::sip::driver::Handle as SipHandle;
use crate::sip::{CallId, EndReason, Event as SipEvent};

/// What every call task shares.
pub struct Shared {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub prompts: Option<Arc<Prompts>>,
    pub mapper: Option<Arc<Mapper>>,
    pub ivr_config: IvrConfig,
    rooms: Mutex<HashMap<String, RoomHandle>>,
    departures: mpsc::UnboundedSender<Departure>,
    /// The SIP socket's address (our media address follows it).
    pub sip_local: std::net::SocketAddr,
    /// Where dial-out INVITEs go.
    pub trunk: Option<std::net::SocketAddr>,
    /// Our SDP answer and media per call (re-offers are answered from it).
    answers: Mutex<HashMap<CallId, (String, Option<LocalMedia>)>>,
}

impl Shared {
    fn remember_answer(&self, call_id: &CallId, sdp: &str, local: Option<LocalMedia>) {
        let mut a = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        a.insert(call_id.clone(), (sdp.to_owned(), local));
    }

    fn last_answer(&self, call_id: &CallId) -> Option<String> {
        let a = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        a.get(call_id).map(|(sdp, _)| sdp.clone())
    }

    /// The answer to a re-offer (hold, resume, a new address): negotiated
    /// again on the same local media, with the next SDP version.
    fn reanswer(&self, call_id: &CallId, offer: Option<&str>) -> Result<String, u16> {
        let mut a = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let (last, local) = a.get_mut(call_id).ok_or(481u16)?;
        let (Some(offer), Some(local)) = (offer, local.as_mut()) else {
            return Ok(last.clone());
        };
        let offer = Offer::parse(offer).map_err(|e| e.sip_status())?;
        local.session_version += 1;
        let answer = offer.answer(local).map_err(|e| e.sip_status())?;
        *last = answer.sdp.clone();
        Ok(answer.sdp)
    }

    fn forget_answer(&self, call_id: &CallId) {
        let mut a = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        a.remove(call_id);
    }

    /// The rooms whose task still runs (a task ends with its last caller).
    fn live_rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomHandle>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.retain(|_, h| !h.is_closed());
        rooms
    }

    fn publish_rooms(&self, n: usize) {
        self.metrics
            .rooms_active
            .store(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Rooms with callers; updates the gauge.
    pub fn count_rooms(&self) -> usize {
        let n = self.live_rooms().len();
        self.publish_rooms(n);
        n
    }

    /// The room's task, started when the room has none running.
    pub fn room(&self, room: &RoomAddress) -> RoomHandle {
        let key = room.jid().to_string();
        let inactivity = std::time::Duration::from_secs(self.config.sip.inactivity_timeout_s);
        let mut rooms = self.live_rooms();
        let handle = rooms
            .entry(key.clone())
            .or_insert_with(|| room_task::spawn(key, inactivity, self.departures.clone()))
            .clone();
        self.publish_rooms(rooms.len());
        handle
    }
}

/// A random MUC nick for a caller (8 hex digits, like the page's).
pub fn new_nick() -> String {
    format!("{:08x}", rand::random::<u32>())
}

enum Stage {
    /// The call task runs (prompt, joining); INFO digits go to it.
    Task {
        digits: mpsc::UnboundedSender<char>,
        abort: tokio::task::AbortHandle,
    },
    /// In its room's task; `dialled`: a dial-out call (our UAC dialog).
    InRoom { room: RoomHandle, dialled: bool },
}

/// The manager's loop state.
pub struct Manager {
    shared: Arc<Shared>,
    sip: SipHandle,
    calls: HashMap<CallId, Stage>,
    done_tx: mpsc::UnboundedSender<(CallId, dial_in::Outcome, bool)>,
    /// Dial-out tasks before their call is in a room, by nick.
    dialing: HashMap<String, tokio::task::AbortHandle>,
    /// Dial-out calls not yet answered: their SIP events go to the task.
    dials: HashMap<CallId, mpsc::UnboundedSender<crate::sip::client::ClientEvent>>,
    dial_tx: mpsc::UnboundedSender<dial_out::DialRequest>,
    dial_done_tx: mpsc::UnboundedSender<(String, dial_out::DialOutcome)>,
}

/// What the manager's loop must also watch.
pub struct ManagerInputs {
    pub departures: mpsc::UnboundedReceiver<Departure>,
    pub done: mpsc::UnboundedReceiver<(CallId, dial_in::Outcome, bool)>,
    pub dial_requests: mpsc::UnboundedReceiver<dial_out::DialRequest>,
    pub dial_done: mpsc::UnboundedReceiver<(String, dial_out::DialOutcome)>,
}

impl Manager {
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        prompts: Option<Prompts>,
        sip: SipHandle,
    ) -> (Manager, ManagerInputs) {
        let (departures_tx, departures) = mpsc::unbounded_channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        let (dial_tx, dial_requests) = mpsc::unbounded_channel();
        let (dial_done_tx, dial_done) = mpsc::unbounded_channel();
        let trunk = config.sip.trunk.parse().ok();
        let shared = Shared {
            mapper: config.dial_in.mapper.clone().map(Arc::new),
            ivr_config: config.dial_in.ivr.clone(),
            prompts: prompts.map(Arc::new),
            config,
            metrics,
            rooms: Mutex::new(HashMap::new()),
            departures: departures_tx,
            answers: Mutex::new(HashMap::new()),
            sip_local: sip.local_addr(),
            trunk,
        };
        (
            Manager {
                shared: Arc::new(shared),
                sip,
                calls: HashMap::new(),
                done_tx,
                dialing: HashMap::new(),
                dials: HashMap::new(),
                dial_tx,
                dial_done_tx,
            },
            ManagerInputs {
                departures,
                done,
                dial_requests,
                dial_done,
            },
        )
    }

    /// Calls held: dial-in calls from INVITE to BYE, dial-out calls from
    /// the moderator's dial to BYE.
    pub fn active(&self) -> usize {
        self.calls.len() + self.dialing.len()
    }

    /// Rooms with callers (their tasks still run).
    pub fn rooms(&self) -> usize {
        self.shared.count_rooms()
    }

    fn set_active(&self) {
        self.shared
            .metrics
            .calls_active
            .store(self.active() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// One event of the SIP driver.
    pub async fn on_sip(&mut self, ev: SipEvent) {
        match ev {
            SipEvent::IncomingCall {
                call_id,
                from_display,
                from_uri,
                room_header,
                sdp_offer,
            } => {
                self.incoming(call_id, from_display, from_uri, room_header, sdp_offer)
                    .await
            }
            SipEvent::CallEnded { call_id, reason } => {
                tracing::info!(%call_id, ?reason, "the phone side ended");
                self.phone_ended(&call_id, reason);
            }
            SipEvent::Dial(ev) => self.on_dial_event(ev),
            SipEvent::Dtmf { call_id, digit } => {
                if let Some(Stage::Task { digits, .. }) = self.calls.get(&call_id) {
                    let _ = digits.send(digit);
                }
            }
            SipEvent::Reoffer { call_id, sdp } => {
                // Hold and resume: the answer follows the offer's direction;
                // the room side goes on unchanged (a held phone simply sends
                // nothing; the inactivity timeout still applies).
                match self.shared.reanswer(&call_id, sdp.as_deref()) {
                    Ok(answer) => {
                        tracing::info!(%call_id, "re-offer answered");
                        let _ = self.sip.answer_reoffer(&call_id, answer).await;
                    }
                    Err(status) => {
                        let _ = self.sip.reject_reoffer(&call_id, status).await;
                    }
                }
            }
            _ => {}
        }
    }

    fn phone_ended(&mut self, call_id: &CallId, _reason: EndReason) {
        match self.calls.remove(call_id) {
            Some(Stage::Task { abort, .. }) => abort.abort(),
            Some(Stage::InRoom { room, .. }) => room.leave(call_id),
            None => {}
        }
        self.shared.forget_answer(call_id);
        self.set_active();
    }

    async fn incoming(
        &mut self,
        call_id: CallId,
        from_display: Option<String>,
        from_uri: String,
        room_header: Option<String>,
        sdp_offer: Option<String>,
    ) {
        let m = &self.shared.metrics;
        Metrics::add(&m.dial_in_total);
        let c = &self.shared.config;
        if m.draining.load(std::sync::atomic::Ordering::Relaxed)
            || self.calls.len() >= c.sip.max_calls
        {
            Metrics::add(&m.rejected_busy_total);
            let _ = self.sip.reject(&call_id, 503).await;
            return;
        }
        let target = match room_header
            .as_deref()
            .map(|r| room_address(r, &c.meeting.muc))
        {
            Some(Ok(room)) => dial_in::Target::Room(room),
            Some(Err(why)) => {
                tracing::info!(%call_id, why, "refused: bad room header");
                Metrics::add(&m.rejected_no_room_total);
                let _ = self.sip.reject(&call_id, 404).await;
                return;
            }
            None if self.shared.mapper.is_some() && self.shared.prompts.is_some() => {
                dial_in::Target::AskPin
            }
            None => {
                tracing::info!(%call_id, "refused: no room header and no PIN dialogue");
                Metrics::add(&m.rejected_no_room_total);
                let _ = self.sip.reject(&call_id, 404).await;
                return;
            }
        };
        let display = caller_name(from_display.as_deref(), &from_uri);
        let leg =
            match PhoneLeg::answer(sdp_offer.as_deref(), self.sip.local_addr(), &c.sip, display)
                .await
            {
                Ok(leg) => leg,
                Err(e) => {
                    tracing::info!(%call_id, "refused: {e}");
                    Metrics::add(&m.rejected_media_total);
                    let _ = self.sip.reject(&call_id, e.status()).await;
                    return;
                }
            };
        let answer = leg.answer_sdp().to_owned();
        self.shared
            .remember_answer(&call_id, &answer, leg.local_media());
        let answer_first = matches!(target, dial_in::Target::AskPin);
        if answer_first && self.sip.answer(&call_id, answer.clone()).await.is_err() {
            return;
        }
        let (digits, digits_rx) = mpsc::unbounded_channel();
        let (shared, id, done) = (self.shared.clone(), call_id.clone(), self.done_tx.clone());
        let task = tokio::spawn(async move {
            let outcome = dial_in::run(shared, id.clone(), leg, target, digits_rx).await;
            let _ = done.send((id, outcome, answer_first));
        });
        self.calls.insert(
            call_id,
            Stage::Task {
                digits,
                abort: task.abort_handle(),
            },
        );
        self.set_active();
    }

    /// A call task finished: in a room (answer it, if not yet), or give up.
    pub async fn on_done(&mut self, call_id: CallId, outcome: dial_in::Outcome, answered: bool) {
        if !self.calls.contains_key(&call_id) {
            return; // the phone hung up meanwhile
        }
        match outcome {
            dial_in::Outcome::InRoom(room) => {
                let handle = self.shared.room(&room);
                if !answered {
                    let answer = self.shared.last_answer(&call_id).unwrap_or_default();
                    if self.sip.answer(&call_id, answer).await.is_err() {
                        handle.leave(&call_id);
                        self.calls.remove(&call_id);
                        self.set_active();
                        return;
                    }
                }
                Metrics::add(&self.shared.metrics.connected_total);
                self.calls.insert(
                    call_id,
                    Stage::InRoom {
                        room: handle,
                        dialled: false,
                    },
                );
            }
            dial_in::Outcome::Hangup(why) => {
                tracing::info!(%call_id, why, "ending the call");
                if answered {
                    let _ = self.sip.hangup(&call_id).await;
                } else {
                    let _ = self.sip.reject(&call_id, 480).await;
                }
                self.calls.remove(&call_id);
                self.shared.forget_answer(&call_id);
                self.set_active();
            }
        }
    }

    /// Ends every call (the drain's time is up): BYE or CANCEL each, and
    /// each participant leaves its room.
    pub async fn hangup_all(&mut self) {
        for (call_id, stage) in std::mem::take(&mut self.calls) {
            match stage {
                Stage::Task { abort, .. } => {
                    abort.abort();
                    let _ = self.sip.hangup(&call_id).await;
                }
                Stage::InRoom { room, dialled } => {
                    room.leave(&call_id);
                    self.end_sip(&call_id, dialled).await;
                }
            }
        }
        for (call_id, _) in std::mem::take(&mut self.dials) {
            let _ = self.sip.cancel_dial(&call_id).await;
        }
        for (_, task) in std::mem::take(&mut self.dialing) {
            task.abort();
        }
        self.set_active();
    }

    /// BYE on the call's dialog: ours as a server (dial-in) or as a client
    /// (dial-out).
    async fn end_sip(&self, call_id: &CallId, dialled: bool) {
        let _ = if dialled {
            self.sip.hangup_dial(call_id).await
        } else {
            self.sip.hangup(call_id).await
        };
    }

    /// A caller left its room on its own: end the SIP call.
    pub async fn on_departure(&mut self, d: Departure) {
        let m = &self.shared.metrics;
        match d.reason {
            LeaveReason::Kicked | LeaveReason::HungUp => Metrics::add(&m.kicked_total),
            LeaveReason::PhoneSilent(_) => Metrics::add(&m.inactivity_ends_total),
            LeaveReason::Ended(_) => {}
        }
        tracing::info!(call_id = %d.call_id, reason = ?d.reason, "hanging up");
        if let Some(stage) = self.calls.remove(&d.call_id) {
            let dialled = matches!(stage, Stage::InRoom { dialled: true, .. });
            self.end_sip(&d.call_id, dialled).await;
        }
        self.shared.forget_answer(&d.call_id);
        self.set_active();
    }
}

/// The room of a `Jitsi-Conference-Room` header: a full room address, or a
/// bare name on the configured MUC service.
pub fn room_address(header: &str, muc: &str) -> Result<RoomAddress, String> {
    let header = header.trim();
    let text = if header.contains('@') {
        header.to_owned()
    } else {
        format!("{}@{muc}", header.to_lowercase())
    };
    RoomAddress::parse(&text).map_err(|e| format!("not a room: {e:?}"))
}

/// The caller's name in the room: its display name, else its number masked.
pub fn caller_name(display: Option<&str>, from_uri: &str) -> String {
    if let Some(d) = display.map(str::trim).filter(|d| !d.is_empty()) {
        return d.chars().take(64).collect();
    }
    let user = from_uri
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .trim_start_matches("tel:")
        .split(['@', ';'])
        .next()
        .unwrap_or("");
    if user.chars().any(|c| c.is_ascii_digit()) {
        crate::presence::mask_number(user)
    } else {
        "Phone caller".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_headers_name_rooms() {
        let muc = "conference.meet.test";
        assert_eq!(
            room_address("Board", muc).unwrap().jid().to_string(),
            "board@conference.meet.test"
        );
        assert_eq!(
            room_address("x@conference.other.test", muc)
                .unwrap()
                .jid()
                .to_string(),
            "x@conference.other.test"
        );
        assert!(room_address("a@@b", muc).is_err());
        assert!(room_address("", muc).is_err());
    }

    #[test]
    fn callers_are_named_or_masked() {
        assert_eq!(caller_name(Some("Alice"), "sip:1@x"), "Alice");
        assert_eq!(caller_name(None, "sip:+442079460958@pbx"), "+44•••••••958");
        assert_eq!(caller_name(Some("  "), "sip:alice@pbx"), "Phone caller");
    }
}
