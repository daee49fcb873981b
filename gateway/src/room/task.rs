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
//!
//! Everything runs on the clock: each tick drains every phone socket into
//! its jitter buffer and the meeting events into the room, so no caller has
//! tasks of its own. The room is decoded once: one caller's leg (the
//! "ear") subscribes to every remote audio stream except the gateway's own
//! callers, the others to none (`ReceiverAudioSubscription`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use participant::{Meeting, MeetingEvent, RtcEvent};
use proto::bridge_channel::{BridgeMessage, ReceiverAudioSubscription};
use tokio::sync::mpsc;

use super::audio::{LegId, RoomAudio};
use crate::leg::PhoneLeg;
use crate::media::resample::PhoneRate;
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
    events: mpsc::UnboundedReceiver<MeetingEvent>,
    muted: bool,
    /// Receive line (mid) → the nick whose audio it carries.
    audio_owner: HashMap<String, String>,
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

/// The task wakes for commands and for its 20 ms tick only: at each tick it
/// reads what every caller's phone socket and participant have brought
/// since the last one, then plays and mixes one frame. Nothing here waits
/// on a single packet.
async fn run(
    room: String,
    inactivity: Duration,
    mut commands: mpsc::UnboundedReceiver<Command>,
    departures: mpsc::UnboundedSender<Departure>,
) {
    let mut members: HashMap<LegId, Member> = HashMap::new();
    let mut ear: Option<LegId> = None;
    let mut audio = RoomAudio::new();
    let mut next_id: LegId = 0;
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut mix = vec![0i16; FRAME_48K];
    let mut buf = vec![0u8; 2048];
    let mut ever_joined = false;
    tracing::info!(%room, "room audio started");
    loop {
        tokio::select! {
            c = commands.recv() => match c {
                Some(Command::Join(caller)) => {
                    next_id += 1;
                    ever_joined = true;
                    let id = next_id;
                    let Caller { call_id, nick, mut phone, meeting, events } = *caller;
                    phone.restart_playout();
                    audio.add_local(&nick);
                    tracing::info!(%room, %call_id, %nick, "caller in the room");
                    members.insert(id, Member {
                        call_id, nick, phone, meeting, events, muted: false,
                        audio_owner: HashMap::new(),
                    });
                    regroup(&members, &mut ear, &mut audio, Some(id));
                }
                Some(Command::Leave(call_id)) => {
                    if let Some(id) = members.iter().find(|(_, m)| m.call_id == call_id).map(|(id, _)| *id) {
                        remove(&mut members, &mut audio, id, None, &departures);
                        regroup(&members, &mut ear, &mut audio, None);
                    }
                }
                None => break,
            },
            _ = clock.tick() => {
                let now = Instant::now();
                let mut leaving = Vec::new();
                for (id, m) in members.iter_mut() {
                    m.phone.drain(&mut buf, now);
                    if let Some(reason) = take_events(m, &mut audio, *id) {
                        leaving.push((*id, reason));
                    } else if m.phone.idle_for(now) > inactivity {
                        leaving.push((*id, LeaveReason::PhoneSilent(inactivity)));
                    }
                }
                for (id, reason) in leaving.drain(..) {
                    remove(&mut members, &mut audio, id, Some(reason), &departures);
                    regroup(&members, &mut ear, &mut audio, None);
                }
                audio.tick(now);
                let bus = audio.bus();
                for m in members.values_mut() {
                    let Some(up) = m.phone.uplink(now) else {
                        continue;
                    };
                    // A caller a moderator muted is heard by nobody,
                    // neither in the room nor on this gateway.
                    if !m.muted {
                        m.meeting.send_audio(up.opus.to_vec(), FRAME_48K as u32, up.level, now);
                        audio.put_local(&m.nick, m.phone.uplink_pcm(bus));
                    }
                }
                let mix = &mut mix[..audio.frame_len()];
                for m in members.values_mut() {
                    audio.mix_for(Some(&m.nick), mix);
                    m.phone.downlink_at(mix, bus, now);
                }
            }
        }
        if ever_joined && members.is_empty() {
            break;
        }
    }
    tracing::info!(%room, stats = ?audio.stats(), "room audio ended");
}

/// After a join (`joined`) or a departure: the audio subscriptions, and
/// the rate the room mixes at.
fn regroup(
    members: &HashMap<LegId, Member>,
    ear: &mut Option<LegId>,
    audio: &mut RoomAudio,
    joined: Option<LegId>,
) {
    subscribe(members, ear, joined);
    audio.set_bus(common_rate(members));
}

/// The phone rate every caller shares, if they do (the room then mixes at
/// that rate).
fn common_rate(members: &HashMap<LegId, Member>) -> Option<PhoneRate> {
    let mut rates = members.values().map(|m| m.phone.phone_rate());
    let first = rates.next()??;
    rates.all(|r| r == Some(first)).then_some(first)
}

/// The bridge's name for a participant's audio source.
fn audio_source(nick: &str) -> String {
    format!("{nick}-a0")
}

/// Keeps the room's audio subscriptions right after a join (`joined`) or a
/// departure. The SFU would send every caller's leg the same speakers, and
/// the callers of this gateway to each other, all of which the room only
/// drops ([`RoomAudio`] decodes a source once and mixes its own callers
/// locally). So one leg, the *ear*, receives every source but this
/// gateway's callers, and the others receive no audio at all.
fn subscribe(members: &HashMap<LegId, Member>, ear: &mut Option<LegId>, joined: Option<LegId>) {
    if let Some(id) = joined.filter(|id| Some(*id) != *ear && ear.is_some()) {
        if let Some(m) = members.get(&id) {
            m.meeting.set_audio_subscription(ReceiverAudioSubscription {
                all: Some(false),
                ..Default::default()
            });
        }
    }
    if ear.is_none_or(|e| !members.contains_key(&e)) {
        *ear = members.keys().min().copied();
    }
    let Some(e) = ear.and_then(|e| members.get(&e)) else {
        return;
    };
    let mut exclude: Vec<String> = members.values().map(|m| audio_source(&m.nick)).collect();
    exclude.sort();
    e.meeting.set_audio_subscription(ReceiverAudioSubscription {
        all: Some(true),
        exclude: Some(exclude),
        ..Default::default()
    });
}

/// Applies every event member `id`'s participant brought since the last
/// tick; returns why it must go.
fn take_events(m: &mut Member, audio: &mut RoomAudio, id: LegId) -> Option<LeaveReason> {
    loop {
        match m.events.try_recv() {
            Ok(ev) => {
                if let Some(reason) = on_meeting_event(m, audio, id, ev) {
                    return Some(reason);
                }
            }
            Err(mpsc::error::TryRecvError::Empty) => return None,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                return Some(LeaveReason::Ended("the participant's session ended".into()))
            }
        }
    }
}

/// Applies one event of member `id`'s participant; returns why it must go.
fn on_meeting_event(
    m: &mut Member,
    audio: &mut RoomAudio,
    id: LegId,
    ev: MeetingEvent,
) -> Option<LeaveReason> {
    match ev {
        MeetingEvent::Media(RtcEvent::Frame(f)) if !f.video => {
            if let Some(owner) = m.audio_owner.get(&f.mid) {
                audio.push(id, owner, f.rtp_time, &f.data, f.at);
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
    tracing::info!(call_id = %m.call_id, nick = %m.nick, ?reason, "caller leaves the room");
    if let Some(reason) = reason {
        let _ = departures.send(Departure {
            call_id: m.call_id.clone(),
            reason,
        });
    }
    tokio::spawn(m.meeting.leave());
}
