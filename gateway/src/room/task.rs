//! The task that runs one room's callers: a 20 ms clock drives every
//! caller's phone leg and the shared [`RoomAudio`].
//!
//! Contract: [`spawn`] starts the task for a room and returns its
//! [`RoomHandle`]; callers join with [`RoomHandle::join`] once their
//! participant is in the meeting. Per tick, each caller's phone frame goes
//! into the room (Opus on its WebRTC leg, unless a moderator muted it) and
//! into the shared mix, and each caller gets everyone but themselves. A
//! caller leaves on [`RoomHandle::leave`] (the phone hung up), or on its
//! own: kicked by a moderator, its WebRTC leg or session ended, or its
//! phone silent beyond the inactivity timeout; the manager then hears a
//! [`Departure`] and ends the SIP call. The task ends with its last caller.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use participant::{Meeting, MeetingEvent, RtcEvent};
use proto::bridge_channel::BridgeMessage;
use tokio::sync::mpsc;

use super::audio::{LegId, RoomAudio};
use crate::leg::PhoneLeg;
use crate::media::FRAME_48K;
use crate::sip::CallId;

/// A caller ready for the room: the SIP call, its phone leg and its
/// participant in the meeting.
pub struct Caller {
    pub call_id: CallId,
    /// The MUC nick (the endpoint id at the SFU).
    pub nick: String,
    pub phone: PhoneLeg,
    pub meeting: Meeting,
    pub events: mpsc::UnboundedReceiver<MeetingEvent>,
}

/// Why a caller left the room on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// A moderator removed the participant.
    Kicked,
    /// A moderator hung the call up (Rayo hangup).
    HungUp,
    /// No RTP from the phone for the inactivity timeout.
    PhoneSilent(Duration),
    /// The participant's session ended (focus, XMPP or WebRTC leg).
    Ended(String),
}

/// Reported to the manager when a caller leaves without being told to.
#[derive(Debug)]
pub struct Departure {
    pub call_id: CallId,
    pub reason: LeaveReason,
}

enum Command {
    Join(Box<Caller>),
    Leave(CallId),
}

/// A running room task.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl RoomHandle {
    /// Hands a caller to the room; false when the room task has ended (the
    /// caller is dropped: its meeting leg closes).
    pub fn join(&self, caller: Caller) -> bool {
        self.commands.send(Command::Join(Box::new(caller))).is_ok()
    }

    /// The phone side ended: the caller leaves the meeting.
    pub fn leave(&self, call_id: &CallId) {
        let _ = self.commands.send(Command::Leave(call_id.clone()));
    }

    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

struct Member {
    call_id: CallId,
    nick: String,
    phone: PhoneLeg,
    meeting: Meeting,
    muted: bool,
    /// Receive line (mid) → the nick whose audio it carries.
    audio_owner: HashMap<String, String>,
    /// The task reading the phone socket.
    reader: tokio::task::AbortHandle,
}

enum Input {
    Meeting(LegId, MeetingEvent),
    Phone(LegId, Vec<u8>, std::net::SocketAddr),
}

/// Starts the task for a room. `inactivity` ends a caller whose phone sends
/// nothing for that long.
pub fn spawn(
    room: String,
    inactivity: Duration,
    departures: mpsc::UnboundedSender<Departure>,
) -> RoomHandle {
    let (commands, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(room, inactivity, rx, departures));
    RoomHandle { commands }
}

async fn run(
    room: String,
    inactivity: Duration,
    mut commands: mpsc::UnboundedReceiver<Command>,
    departures: mpsc::UnboundedSender<Departure>,
) {
    let (input_tx, mut inputs) = mpsc::unbounded_channel::<Input>();
    let mut members: HashMap<LegId, Member> = HashMap::new();
    let mut audio = RoomAudio::new();
    let mut next_id: LegId = 0;
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut mix = vec![0i16; FRAME_48K];
    let mut ever_joined = false;
    tracing::info!(%room, "room audio started");
    loop {
        tokio::select! {
            c = commands.recv() => match c {
                Some(Command::Join(caller)) => {
                    next_id += 1;
                    ever_joined = true;
                    let id = next_id;
                    let Caller { call_id, nick, phone, meeting, events } = *caller;
                    let reader = forward(id, events, phone.socket(), input_tx.clone());
                    audio.add_local(&nick);
                    tracing::info!(%room, %call_id, %nick, "caller in the room");
                    members.insert(id, Member {
                        call_id, nick, phone, meeting, muted: false,
                        audio_owner: HashMap::new(), reader,
                    });
                }
                Some(Command::Leave(call_id)) => {
                    if let Some(id) = members.iter().find(|(_, m)| m.call_id == call_id).map(|(id, _)| *id) {
                        remove(&mut members, &mut audio, id, None, &departures);
                    }
                }
                None => break,
            },
            Some(input) = inputs.recv() => match input {
                Input::Phone(id, packet, source) => {
                    if let Some(m) = members.get_mut(&id) {
                        m.phone.on_packet(&packet, source, Instant::now());
                    }
                }
                Input::Meeting(id, ev) => {
                    let now = Instant::now();
                    if let Some(reason) = on_meeting_event(&mut members, &mut audio, id, ev, now) {
                        remove(&mut members, &mut audio, id, Some(reason), &departures);
                    }
                }
            },
            _ = clock.tick() => {
                let now = Instant::now();
                audio.tick(now);
                let mut silent = Vec::new();
                for (id, m) in members.iter_mut() {
                    if m.phone.idle_for(now) > inactivity {
                        silent.push(*id);
                        continue;
                    }
                    if let Some(up) = m.phone.uplink(now) {
                        audio.put_local(&m.nick, up.pcm48);
                        if !m.muted {
                            m.meeting.send_audio(up.opus.to_vec(), FRAME_48K as u32, up.level, now);
                        }
                    }
                }
                for m in members.values_mut() {
                    audio.mix_for(Some(&m.nick), &mut mix);
                    m.phone.downlink(&mix, now);
                }
                for id in silent {
                    remove(&mut members, &mut audio, id, Some(LeaveReason::PhoneSilent(inactivity)), &departures);
                }
            }
        }
        if ever_joined && members.is_empty() {
            break;
        }
    }
    tracing::info!(%room, stats = ?audio.stats(), "room audio ended");
}

/// Applies one event of member `id`'s participant; returns why it must go.
fn on_meeting_event(
    members: &mut HashMap<LegId, Member>,
    audio: &mut RoomAudio,
    id: LegId,
    ev: MeetingEvent,
    now: Instant,
) -> Option<LeaveReason> {
    let m = members.get_mut(&id)?;
    match ev {
        MeetingEvent::Media(RtcEvent::Frame(f)) if !f.video => {
            if let Some(owner) = m.audio_owner.get(&f.mid) {
                audio.push(id, owner, f.rtp_time, &f.data, now);
            }
        }
        MeetingEvent::Bridge(BridgeMessage::AudioSourcesMap(map)) => {
            m.audio_owner = map
                .mapped_sources
                .into_iter()
                .filter_map(|s| Some((s.mid?, s.owner?)))
                .collect();
        }
        MeetingEvent::AudioMute { muted, actor } => {
            tracing::info!(call_id = %m.call_id, muted, ?actor, "moderator mute");
            m.muted = muted;
            m.meeting.set_presence(
                crate::presence::caller(&m.phone.display(), muted),
                Some("connected".into()),
            );
        }
        MeetingEvent::Kicked => return Some(LeaveReason::Kicked),
        MeetingEvent::HangupRequested => return Some(LeaveReason::HungUp),
        MeetingEvent::Media(RtcEvent::Closed(why)) | MeetingEvent::Ended(why) => {
            return Some(LeaveReason::Ended(why))
        }
        _ => {}
    }
    None
}

fn remove(
    members: &mut HashMap<LegId, Member>,
    audio: &mut RoomAudio,
    id: LegId,
    reason: Option<LeaveReason>,
    departures: &mpsc::UnboundedSender<Departure>,
) {
    let Some(m) = members.remove(&id) else {
        return;
    };
    audio.remove_local(&m.nick);
    m.reader.abort();
    tracing::info!(call_id = %m.call_id, nick = %m.nick, ?reason, "caller leaves the room");
    if let Some(reason) = reason {
        let _ = departures.send(Departure {
            call_id: m.call_id.clone(),
            reason,
        });
    }
    tokio::spawn(m.meeting.leave());
}

/// Moves a caller's meeting events and phone datagrams into the room task.
fn forward(
    id: LegId,
    mut events: mpsc::UnboundedReceiver<MeetingEvent>,
    socket: std::sync::Arc<tokio::net::UdpSocket>,
    to: mpsc::UnboundedSender<Input>,
) -> tokio::task::AbortHandle {
    let tx = to.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if tx.send(Input::Meeting(id, ev)).is_err() {
                return;
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        if to.send(Input::Phone(id, buf[..n].to_vec(), source)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!("phone socket: {e}");
                        return;
                    }
                },
                _ = to.closed() => return,
            }
        }
    });
    reader.abort_handle()
}
