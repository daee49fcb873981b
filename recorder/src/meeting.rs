//! The recorder in a meeting: a hidden participant. It logs in with its
//! meeting account (on the hidden `recorder.<domain>` host), sends the
//! conference request to the focus, joins the room announcing the Jibri
//! feature (so the focus counts it as a service, not a person), answers the
//! focus's `session-initiate` with a receive-only WebRTC leg ([`RtcLeg`]),
//! and opens the bridge channel the offer names.
//!
//! Contract: [`Meeting::join`] returns once the session is accepted, or an
//! error that says which step failed (login, conference request, room,
//! Jingle). Afterwards everything arrives on one channel as
//! [`MeetingEvent`]s: who is in the room (with names), media frames,
//! bridge messages, and [`MeetingEvent::Ended`] when the focus ends the
//! session, the room goes away, or the WebRTC leg closes. Malformed Jingle
//! is answered `bad-request`; malformed bridge messages are skipped.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use proto::bridge_channel::{BridgeMessage, ReceiverVideoConstraints};
use proto::jingle::{Action, Jingle, Role};
use proto::sdp::{jingle_to_sdp, sdp_to_jingle_as, Origin, Sdp};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, Handle, IqKind, Occupant, SessionConfig, XmppConfig};

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
    Ended(String),
}

/// A joined meeting.
pub struct Meeting {
    handle: Handle,
    room: BareJid,
    rtc: RtcLeg,
    constraints: mpsc::UnboundedSender<String>,
    xmpp_task: tokio::task::JoinHandle<()>,
}

impl Meeting {
    /// Joins `room` as `nick` with the `xmpp` account, through `focus`.
    pub async fn join(
        xmpp: XmppConfig,
        focus: Jid,
        room: BareJid,
        nick: &str,
        bind_ip: Option<IpAddr>,
    ) -> Result<(Meeting, mpsc::UnboundedReceiver<MeetingEvent>)> {
        let session = SessionConfig {
            iq_namespaces: [proto::ns::JINGLE.to_owned()].into_iter().collect(),
            features: [proto::ns::feature::JIBRI.to_owned()].into(),
            ..SessionConfig::default()
        };
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
            let features = proto::presence::Features::new([proto::ns::feature::JIBRI]);
            handle.join_room(room.clone(), nick, vec![features.into()]);
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
                        bail!("the room refused the recorder: {error:?}")
                    }
                    Some(other) => room_event(&out, other),
                    None => bail!("the XMPP session ended while joining"),
                }
            }
        })
        .await
        .context("no session-initiate from the focus in time")??;
        let (constraints, constraints_rx) = mpsc::unbounded_channel();
        if let Some(url) = url {
            tokio::spawn(bridge_channel(url, out.clone(), constraints_rx));
        } else {
            tracing::warn!(%room, "the offer names no bridge channel");
        }
        tokio::spawn(forward_media(media, out.clone()));
        tokio::spawn(pump(events, handle.clone(), out));
        tracing::info!(%room, "recorder in the meeting");
        Ok((
            Meeting {
                handle,
                room,
                rtc,
                constraints,
                xmpp_task,
            },
            out_rx,
        ))
    }

    /// Tells the bridge which video the layout shows.
    pub fn set_constraints(&self, c: ReceiverVideoConstraints) {
        let _ = self
            .constraints
            .send(BridgeMessage::ReceiverVideoConstraints(c).to_json());
    }

    pub fn request_keyframe(&self, mid: &str) {
        self.rtc.request_keyframe(mid);
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

fn room_event(out: &mpsc::UnboundedSender<MeetingEvent>, ev: Event) {
    let sent = match ev {
        Event::OccupantJoined { occupant, .. } => out.send(MeetingEvent::Joined(person(&occupant))),
        Event::OccupantChanged { occupant, .. } => {
            out.send(MeetingEvent::Changed(person(&occupant)))
        }
        Event::OccupantLeft { occupant, .. } => out.send(MeetingEvent::Left(occupant.nick)),
        Event::RoomLeft { reason, .. } => {
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

/// The bridge channel: messages in, constraints out; reconnects are not
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
