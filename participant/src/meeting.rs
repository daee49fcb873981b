//! A service's participant in a meeting. It logs in with the account in
//! [`JoinOptions::xmpp`] (the recorder's on the hidden `recorder.<domain>`
//! host, a phone caller's on the gateway's), sends the conference request
//! to the focus, joins the room with the service's features and presence
//! (Jibri: the focus counts it as a service, not a person; jigasi: a phone
//! caller), answers the focus's `session-initiate` with a WebRTC leg
//! ([`RtcLeg`]), and opens the bridge channel the offer names.
//!
//! Contract: [`Meeting::join`] returns once the session is accepted, or an
//! error that says which step failed (login, conference request, room,
//! Jingle). Afterwards everything arrives on one channel as
//! [`MeetingEvent`]s: who is in the room (with names), media frames,
//! bridge messages, mute requests from the focus, and
//! [`MeetingEvent::Ended`] when the focus ends the session, the room goes
//! away (a kick included), or the WebRTC leg closes. Malformed Jingle or
//! mute IQs are answered `bad-request`; malformed bridge messages are
//! skipped.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use proto::bridge_channel::{BridgeMessage, ReceiverAudioSubscription, ReceiverVideoConstraints};
use proto::jingle::{Action, Jingle, Role};
use proto::sdp::{jingle_to_sdp, sdp_to_jingle_as, Origin, Sdp};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, Handle, IqKind, Occupant, RoomLeftReason, SessionConfig, XmppConfig};

use crate::rtc::{RtcEvent, RtcLeg};

/// How long each joining step may take.
const STEP: Duration = Duration::from_secs(15);

/// Someone in the room, as the recording shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The MUC nick, which is also the participant's endpoint id at the SFU.
    pub nick: String,
    /// The display name (`<nick xmlns=…/nick>`), else the nick.
    pub name: String,
    /// Service participants (other recorders, gateways) are not people, but
    /// a gateway's caller is: only hidden/service ones are skipped by callers.
    pub service: bool,
}

#[derive(Debug)]
pub enum MeetingEvent {
    Joined(Person),
    Changed(Person),
    Left(String),
    Media(RtcEvent),
    Bridge(BridgeMessage),
    /// The focus (on a moderator's behalf) mutes or unmutes our audio; the
    /// IQ is already answered.
    AudioMute {
        muted: bool,
        actor: Option<String>,
    },
    /// A moderator removed us from the room; `Ended` follows.
    Kicked,
    /// A Rayo `<hangup/>` IQ (a moderator ends a dial-out call); answered.
    HangupRequested,
    Ended(String),
}

/// How to join: the account, the room, and what the service announces.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    pub xmpp: XmppConfig,
    /// The focus's JID (the conference request goes there).
    pub focus: Jid,
    pub room: BareJid,
    /// The MUC nick, which is also the endpoint id at the SFU.
    pub nick: String,
    /// Local address for the WebRTC leg (default: the one routing to the SFU).
    pub bind_ip: Option<IpAddr>,
    /// disco#info features, also announced in room presence.
    pub features: Vec<String>,
    /// Further room presence payloads (display name, muted state, ...).
    pub presence: Vec<Element>,
    /// Room presence status text.
    pub status: Option<String>,
}

/// A joined meeting.
pub struct Meeting {
    handle: Handle,
    room: BareJid,
    rtc: RtcLeg,
    /// Messages for the bridge channel (JSON).
    bridge: mpsc::UnboundedSender<String>,
    xmpp_task: tokio::task::JoinHandle<()>,
    /// Our features element, kept in every presence update.
    features: Element,
}

impl Meeting {
    /// Joins `o.room` as `o.nick` with the `o.xmpp` account, through `o.focus`.
    pub async fn join(o: JoinOptions) -> Result<(Meeting, mpsc::UnboundedReceiver<MeetingEvent>)> {
        let JoinOptions {
            xmpp,
            focus,
            room,
            nick,
            bind_ip,
            features,
            presence,
            status,
        } = o;
        let session = SessionConfig {
            iq_namespaces: [proto::ns::JINGLE, proto::ns::MUTE_AUDIO, proto::ns::RAYO]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            features: features.iter().cloned().collect(),
            ..SessionConfig::default()
        };
        let features_element: Element = proto::presence::Features::new(features.iter()).into();
        let (handle, mut events, xmpp_task) =
            xmpp_session::spawn(xmpp, session).map_err(|e| anyhow!("meeting account: {e}"))?;
        let result = async {
            let me = tokio::time::timeout(STEP, async {
                loop {
                    match events.recv().await {
                        Some(Event::Online { jid }) => return Ok(jid),
                        Some(_) => continue,
                        None => bail!("the XMPP session ended before login"),
                    }
                }
            })
            .await
            .context("logging in with the meeting account timed out")??;
            let request = proto::focus::ConferenceIq::request(room.clone());
            handle
                .iq(
                    Some(focus.clone()),
                    IqKind::Set,
                    Element::from(request),
                    None,
                )
                .await
                .map_err(|e| anyhow!("the conference request was refused: {e:?}"))?;
            let mut payloads = vec![features_element.clone()];
            payloads.extend(presence.iter().cloned());
            handle.join_room(room.clone(), nick.as_str(), payloads);
            Ok::<FullJid, anyhow::Error>(me)
        }
        .await;
        let me = match result {
            Ok(me) => me,
            Err(e) => {
                handle.shutdown().await;
                return Err(e);
            }
        };
        let (out, out_rx) = mpsc::unbounded_channel();
        // Room events until the session-initiate is answered.
        let (rtc, media, url) = tokio::time::timeout(STEP, async {
            loop {
                match events.recv().await {
                    Some(Event::IqRequest(req)) => {
                        if !req.payload.is("jingle", proto::ns::JINGLE) {
                            service_request(&handle, &out, req);
                            continue;
                        }
                        let jingle = match Jingle::try_from(&req.payload) {
                            Ok(j) => j,
                            Err(e) => {
                                handle.reply_error(
                                    req,
                                    DefinedCondition::BadRequest,
                                    &e.to_string(),
                                );
                                continue;
                            }
                        };
                        let from = req.from.clone();
                        handle.reply(req, Ok(None));
                        if jingle.action != Action::SessionInitiate {
                            continue;
                        }
                        return accept(&handle, &me, from, &jingle, bind_ip).await;
                    }
                    Some(Event::RoomJoinFailed { error, .. }) => {
                        bail!("the room refused us: {error:?}")
                    }
                    Some(other) => room_event(&out, other),
                    None => bail!("the XMPP session ended while joining"),
                }
            }
        })
        .await
        .context("no session-initiate from the focus in time")??;
        // The join presence carries no status; now that we are in the room
        // (the focus saw us there), the status goes out with the rest.
        if status.is_some() {
            let mut payloads = vec![features_element.clone()];
            payloads.extend(presence);
            handle.set_room_presence(room.clone(), payloads, status);
        }
        let (bridge, bridge_rx) = mpsc::unbounded_channel();
        if let Some(url) = url {
            tokio::spawn(bridge_channel(url, out.clone(), bridge_rx));
        } else {
            tracing::warn!(%room, "the offer names no bridge channel");
        }
        tokio::spawn(forward_media(media, out.clone()));
        tokio::spawn(pump(events, handle.clone(), out));
        tracing::info!(%room, %nick, "in the meeting");
        Ok((
            Meeting {
                handle,
                room,
                rtc,
                bridge,
                xmpp_task,
                features: features_element,
            },
            out_rx,
        ))
    }

    /// Tells the bridge which video the layout shows.
    pub fn set_constraints(&self, c: ReceiverVideoConstraints) {
        let _ = self
            .bridge
            .send(BridgeMessage::ReceiverVideoConstraints(c).to_json());
    }

    /// Tells the bridge which audio sources to send us (sent once the
    /// bridge channel opens, if it is not open yet).
    pub fn set_audio_subscription(&self, s: ReceiverAudioSubscription) {
        let _ = self
            .bridge
            .send(BridgeMessage::ReceiverAudioSubscription(s).to_json());
    }

    pub fn request_keyframe(&self, mid: &str) {
        self.rtc.request_keyframe(mid);
    }

    /// Sends one Opus packet of `samples` (at 48 kHz) on the audio line,
    /// with its RFC 6464 level (0 loud .. 127 silent, -dBov).
    pub fn send_audio(&self, opus: Vec<u8>, samples: u32, level: u8, at: Instant) {
        self.rtc.send_audio(opus, samples, level, at);
    }

    /// Replaces our room presence payloads and status (muted state, call
    /// progress).
    pub fn set_presence(&self, payloads: Vec<Element>, status: Option<String>) {
        let mut all = vec![self.features.clone()];
        all.extend(payloads);
        self.handle
            .set_room_presence(self.room.clone(), all, status);
    }

    /// Leaves the room, closes the WebRTC leg and the XMPP session.
    pub async fn leave(self) {
        self.rtc.close();
        self.handle.leave_room(self.room.clone());
        self.handle.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.xmpp_task).await;
    }
}

/// Answers the offer; returns the leg, its events and the bridge-channel URL.
async fn accept(
    handle: &Handle,
    me: &FullJid,
    focus: Option<Jid>,
    initiate: &Jingle,
    bind_ip: Option<IpAddr>,
) -> Result<(RtcLeg, mpsc::UnboundedReceiver<RtcEvent>, Option<String>)> {
    let mut offer = jingle_to_sdp(initiate);
    offer.origin = Origin {
        session_id: format!("{}", rand_id()),
        session_version: 2,
        ..Origin::default()
    };
    let (answer, rtc, media) = RtcLeg::answer(&offer.to_string(), bind_ip).await?;
    let sdp = Sdp::parse(&answer).context("our own answer")?;
    let (contents, groups) = sdp_to_jingle_as(&sdp, Role::Responder)?;
    let mut accept = Jingle::new(Action::SessionAccept, initiate.sid.clone());
    accept.initiator = initiate.initiator.clone();
    accept.responder = Some(me.to_string());
    accept.contents = contents;
    accept.groups = groups;
    handle
        .iq(focus, IqKind::Set, Element::from(accept), None)
        .await
        .map_err(|e| anyhow!("the focus refused our session-accept: {e:?}"))?;
    let url = initiate
        .contents
        .iter()
        .filter_map(|c| c.transport.as_ref())
        .find_map(|t| t.web_sockets.first().cloned());
    Ok((rtc, media, url))
}

fn rand_id() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn person(o: &Occupant) -> Person {
    let name = o
        .payload("nick", "http://jabber.org/protocol/nick")
        .map(|n| n.text())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| o.nick.clone());
    let service = o.payloads.iter().any(|p| {
        p.is("features", proto::ns::JABBER_CLIENT)
            && p.children().any(|f| {
                f.attr("var") == Some(proto::ns::feature::JIBRI)
                    || f.attr("var") == Some(proto::ns::feature::TRANSCRIBER)
            })
    });
    Person {
        nick: o.nick.clone(),
        name,
        service: service || o.nick == "focus",
    }
}

/// A mute IQ from the focus, or a Rayo hangup: answered, then reported.
fn service_request(
    handle: &Handle,
    out: &mpsc::UnboundedSender<MeetingEvent>,
    req: xmpp_session::IncomingIq,
) {
    if req.payload.ns() == proto::ns::RAYO {
        match proto::rayo::RayoIq::try_from(&req.payload) {
            Ok(proto::rayo::RayoIq::Hangup(_)) => {
                handle.reply(req, Ok(None));
                let _ = out.send(MeetingEvent::HangupRequested);
            }
            Ok(_) => handle.reply_error(
                req,
                DefinedCondition::FeatureNotImplemented,
                "only hangup is understood here",
            ),
            Err(e) => handle.reply_error(req, DefinedCondition::BadRequest, &e.to_string()),
        }
        return;
    }
    match proto::mute::MuteIq::try_from(&req.payload) {
        Ok(m) => {
            handle.reply(req, Ok(None));
            let _ = out.send(MeetingEvent::AudioMute {
                muted: m.mute,
                actor: m.actor.map(|a| a.to_string()),
            });
        }
        Err(e) => handle.reply_error(req, DefinedCondition::BadRequest, &e.to_string()),
    }
}

fn room_event(out: &mpsc::UnboundedSender<MeetingEvent>, ev: Event) {
    let sent = match ev {
        Event::OccupantJoined { occupant, .. } => out.send(MeetingEvent::Joined(person(&occupant))),
        Event::OccupantChanged { occupant, .. } => {
            out.send(MeetingEvent::Changed(person(&occupant)))
        }
        Event::OccupantLeft { occupant, .. } => out.send(MeetingEvent::Left(occupant.nick)),
        Event::RoomLeft { reason, .. } => {
            if matches!(reason, RoomLeftReason::Kicked | RoomLeftReason::Banned) {
                let _ = out.send(MeetingEvent::Kicked);
            }
            out.send(MeetingEvent::Ended(format!("out of the room: {reason:?}")))
        }
        _ => Ok(()),
    };
    let _ = sent;
}

/// Room events and Jingle after the session is up.
async fn pump(
    mut events: mpsc::UnboundedReceiver<Event>,
    handle: Handle,
    out: mpsc::UnboundedSender<MeetingEvent>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            Event::IqRequest(req) if !req.payload.is("jingle", proto::ns::JINGLE) => {
                service_request(&handle, &out, req)
            }
            Event::IqRequest(req) => match Jingle::try_from(&req.payload) {
                Ok(j) => {
                    handle.reply(req, Ok(None));
                    if j.action == Action::SessionTerminate {
                        let _ = out.send(MeetingEvent::Ended("the focus ended the session".into()));
                    }
                }
                Err(e) => handle.reply_error(req, DefinedCondition::BadRequest, &e.to_string()),
            },
            other => room_event(&out, other),
        }
    }
    let _ = out.send(MeetingEvent::Ended("the XMPP session ended".into()));
}

async fn forward_media(
    mut media: mpsc::UnboundedReceiver<RtcEvent>,
    out: mpsc::UnboundedSender<MeetingEvent>,
) {
    while let Some(ev) = media.recv().await {
        let closed = matches!(ev, RtcEvent::Closed(_));
        if out.send(MeetingEvent::Media(ev)).is_err() || closed {
            return;
        }
    }
}

/// The bridge channel: messages in, constraints and subscriptions out; reconnects are not
/// attempted (the SFU keeps the channel for the session's life).
async fn bridge_channel(
    url: String,
    out: mpsc::UnboundedSender<MeetingEvent>,
    mut send: mpsc::UnboundedReceiver<String>,
) {
    let ws = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            tracing::warn!(%url, "bridge channel: {e}");
            return;
        }
    };
    let (mut tx, mut rx) = ws.split();
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(WsMessage::Text(text))) => match BridgeMessage::parse(&text) {
                    Ok(msg) => {
                        if out.send(MeetingEvent::Bridge(msg)).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::debug!("bridge channel: skipped {e}"),
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("bridge channel: {e}");
                    return;
                }
                None => return,
            },
            s = send.recv() => match s {
                Some(text) => {
                    if tx.send(WsMessage::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}
