//! One dial-in call from answer to room: the PIN prompt when the call named
//! no room, then the caller's participant joins the meeting and the call is
//! handed to the room's task.
//!
//! Contract: [`run`] owns the phone leg until it hands it to a room (then it
//! returns [`Outcome::InRoom`]) or gives up ([`Outcome::Hangup`] with the
//! reason, after the goodbye prompt where there is one). SIP INFO digits
//! arrive on `digits`; RFC 4733 digits on the leg's socket. The manager
//! aborts the task when the phone hangs up first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use participant::{JoinOptions, Meeting};
use tokio::sync::mpsc;

use super::Shared;
use crate::ivr::{IvrAction, PinIvr};
use crate::leg::PhoneLeg;
use crate::mapper::RoomAddress;
use crate::room::task::Caller;
use crate::sip::CallId;

/// How a dial-in call task ended.
#[derive(Debug)]
pub enum Outcome {
    /// The caller is in the room's task.
    InRoom(RoomAddress),
    /// End the call (BYE) for this reason.
    Hangup(String),
}

/// Where the call goes: a room named by the header, or the PIN prompt.
#[derive(Debug)]
pub enum Target {
    Room(RoomAddress),
    AskPin,
}

/// Runs the call until it is in a room or must end.
pub async fn run(
    shared: Arc<Shared>,
    call_id: CallId,
    mut phone: PhoneLeg,
    target: Target,
    mut digits: mpsc::UnboundedReceiver<char>,
) -> Outcome {
    let room = match target {
        Target::Room(room) => room,
        Target::AskPin => match ask_pin(&shared, &mut phone, &mut digits).await {
            Ok(room) => room,
            Err(why) => return Outcome::Hangup(why),
        },
    };
    match join(&shared, &call_id, phone.display(), &room, None, "connected").await {
        Ok((meeting, events, nick)) => {
            let caller = Caller {
                call_id: call_id.clone(),
                nick,
                phone,
                meeting,
                events,
            };
            if shared.room(&room).join(caller) {
                Outcome::InRoom(room)
            } else {
                Outcome::Hangup("the room's task ended while joining".into())
            }
        }
        Err(e) => {
            crate::http::Metrics::add(&shared.metrics.join_failures_total);
            tracing::warn!(%call_id, room = %room.jid(), "joining the meeting failed: {e:#}");
            Outcome::Hangup(format!("could not join the meeting: {e}"))
        }
    }
}

/// The caller's participant joins `room` as `nick` (a new one by default),
/// showing `status`.
pub(super) async fn join(
    shared: &Shared,
    call_id: &CallId,
    display: String,
    room: &RoomAddress,
    nick: Option<String>,
    status: &str,
) -> anyhow::Result<(
    Meeting,
    mpsc::UnboundedReceiver<participant::MeetingEvent>,
    String,
)> {
    let nick = nick.unwrap_or_else(super::new_nick);
    let c = &shared.config;
    let focus = jid::Jid::new(&c.meeting.focus).map_err(|e| anyhow!("meeting.focus: {e}"))?;
    let bind_ip = c.meeting.bind_ip.parse().ok();
    tracing::info!(%call_id, room = %room.jid(), %nick, "joining the meeting");
    let (meeting, events) = Meeting::join(JoinOptions {
        xmpp: c.caller_xmpp(&format!("call-{nick}")),
        focus,
        room: room.jid().clone(),
        nick: nick.clone(),
        bind_ip,
        features: crate::presence::caller_features(),
        presence: crate::presence::caller(&display, false),
        status: Some(status.into()),
    })
    .await?;
    Ok((meeting, events, nick))
}

/// The PIN prompt: plays prompts on the phone leg, collects digits (RFC
/// 4733 on the leg, SIP INFO on `digits`), resolves the PIN.
async fn ask_pin(
    shared: &Shared,
    phone: &mut PhoneLeg,
    digits: &mut mpsc::UnboundedReceiver<char>,
) -> Result<RoomAddress, String> {
    let Some(prompts) = shared.prompts.clone() else {
        return Err("no prompts to ask for a PIN".into());
    };
    let Some(mapper) = shared.mapper.clone() else {
        return Err("no conference mapper configured".into());
    };
    let mut ivr = PinIvr::new(
        shared.ivr_config.clone(),
        (*prompts).clone(),
        Instant::now(),
    );
    let Some(socket) = phone.socket() else {
        return Err("the phone's RTP socket is already read by a room".into());
    };
    let mut buf = vec![0u8; 2048];
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut lookup: Option<tokio::task::JoinHandle<_>> = None;
    let inactivity = Duration::from_secs(shared.config.sip.inactivity_timeout_s);
    loop {
        tokio::select! {
            _ = clock.tick() => {
                let now = Instant::now();
                let frame = ivr.next_frame(now).to_vec();
                phone.downlink(&frame, now);
                if phone.idle_for(now) > inactivity {
                    crate::http::Metrics::add(&shared.metrics.inactivity_ends_total);
                    return Err("no RTP from the phone".into());
                }
            }
            r = socket.recv_from(&mut buf) => {
                let now = Instant::now();
                if let Ok((n, source)) = r {
                    if let Some(d) = phone.on_packet(&buf[..n], source, now) {
                        crate::http::Metrics::add(&shared.metrics.dtmf_digits_total);
                        ivr.on_digit(d, now);
                    }
                }
            }
            Some(d) = digits.recv() => {
                crate::http::Metrics::add(&shared.metrics.dtmf_digits_total);
                ivr.on_digit(d, Instant::now());
            }
            Some(result) = async {
                match lookup.as_mut() {
                    Some(task) => task.await.ok(),
                    None => std::future::pending().await,
                }
            } => {
                lookup = None;
                ivr.lookup_result(result, Instant::now());
            }
        }
        while let Some(action) = ivr.poll(Instant::now()) {
            match action {
                IvrAction::Lookup(pin) => {
                    tracing::info!("looking the PIN up");
                    let mapper = mapper.clone();
                    lookup = Some(tokio::spawn(async move { mapper.resolve(&pin).await }));
                }
                IvrAction::Join(room) => return Ok(room),
                IvrAction::Hangup => {
                    crate::http::Metrics::add(&shared.metrics.rejected_no_room_total);
                    return Err(format!("no meeting found after {} tries", ivr.failures()));
                }
            }
        }
    }
}
