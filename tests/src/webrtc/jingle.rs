//! The signalling side of the test participant: an anonymous XMPP guest
//! that asks the focus for a conference, joins the MUC room and answers the
//! focus's Jingle `session-initiate` with a [`WebrtcPeer`], converting
//! between Jingle and SDP with `proto::sdp` only.
//!
//! Contract: every Jingle IQ from anyone is acked (`result`) and kept, in
//! arrival order, in [`WebrtcParticipant::jingle_log`]; an unparsable one
//! is answered `bad-request`. `transport-info` candidates are handed to
//! webrtcbin; `source-add`/`source-remove`/`session-terminate` are only
//! recorded (the SFU's receive slots need no renegotiation, see
//! `docs/media-mapping.md`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use proto::jingle::{Action, Jingle, Role};
use proto::sdp::{contents_to_sdp, jingle_to_sdp, sdp_to_jingle_as, Origin, Sdp};
use tokio::sync::{mpsc, oneshot, Notify};
use xmpp_session::xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, Handle, IncomingIq, IqKind, SessionConfig, XmppConfig};

use super::pipeline::{MediaConfig, StreamStats, WebrtcPeer};

/// How long [`WebrtcParticipant::join`] waits for each step.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A received Jingle IQ.
#[derive(Debug, Clone)]
pub struct JingleRecord {
    pub from: Option<Jid>,
    pub jingle: Jingle,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<JingleRecord>>,
    changed: Notify,
    /// Content names of the offer, in m-line order (for transport-info).
    mids: Mutex<Vec<String>>,
}

/// A meeting participant whose media is webrtcbin's. Leaves the room and
/// stops the pipeline when dropped.
#[must_use = "dropping the participant leaves the meeting"]
pub struct WebrtcParticipant {
    peer: Arc<WebrtcPeer>,
    handle: Handle,
    jid: FullJid,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for WebrtcParticipant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebrtcParticipant")
            .field("jid", &self.jid)
            .finish()
    }
}

impl WebrtcParticipant {
    /// Logs in anonymously with `xmpp`, sends the conference request for
    /// `room` to `focus`, joins `room` as `nick` and returns once our
    /// `session-accept` has been acknowledged by the focus.
    pub async fn join(
        xmpp: XmppConfig,
        focus: Jid,
        room: BareJid,
        nick: &str,
        media: MediaConfig,
    ) -> Result<Self> {
        let peer = Arc::new(WebrtcPeer::new(nick, media)?);
        let session = SessionConfig {
            iq_namespaces: [proto::ns::JINGLE.to_owned()].into_iter().collect(),
            ..SessionConfig::default()
        };
        let (handle, mut events, xmpp_task) =
            xmpp_session::spawn(xmpp, session).map_err(|e| anyhow!("{e}"))?;
        let jid = tokio::time::timeout(JOIN_TIMEOUT, async {
            loop {
                match events.recv().await {
                    Some(Event::Online { jid }) => return Ok(jid),
                    Some(_) => continue,
                    None => bail!("xmpp session ended before login"),
                }
            }
        })
        .await
        .context("login timed out")??;
        tracing::info!(%jid, %room, "webrtc participant online");

        let shared = Arc::new(Shared::default());
        let (accepted_tx, accepted_rx) = oneshot::channel();
        let pump = tokio::spawn(pump(
            events,
            handle.clone(),
            jid.clone(),
            peer.clone(),
            shared.clone(),
            accepted_tx,
        ));

        let joined = async {
            let request = proto::focus::ConferenceIq::request(room.clone());
            let reply = handle
                .iq(Some(focus), IqKind::Set, Element::from(request), None)
                .await
                .map_err(|e| anyhow!("conference request: {e:?}"))?;
            if let Some(reply) = reply {
                let conf = proto::focus::ConferenceIq::try_from(&reply)?;
                if conf.ready == Some(false) {
                    bail!("focus says the conference is not ready: {conf:?}");
                }
            }
            handle.join_room(room, nick, Vec::new());
            tokio::time::timeout(JOIN_TIMEOUT, accepted_rx)
                .await
                .context("no session-initiate answered in time")?
                .context("participant task ended")?
        };
        if let Err(e) = joined.await {
            pump.abort();
            xmpp_task.abort();
            return Err(e);
        }
        Ok(WebrtcParticipant {
            peer,
            handle,
            jid,
            shared,
            tasks: vec![pump, xmpp_task],
        })
    }

    /// Our full JID.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// The media pipeline.
    pub fn peer(&self) -> &WebrtcPeer {
        &self.peer
    }

    /// The XMPP handle (to send more, or to leave).
    pub fn xmpp(&self) -> &Handle {
        &self.handle
    }

    /// Statistics of every incoming stream.
    pub fn received(&self) -> Vec<StreamStats> {
        self.peer.received()
    }

    /// Every Jingle IQ received so far, in order.
    pub fn jingle_log(&self) -> Vec<JingleRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a Jingle IQ with `action` has arrived (the first one,
    /// possibly already received) and returns it.
    pub async fn wait_for_jingle(&self, action: Action, timeout: Duration) -> Result<Jingle> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if let Some(r) = self
                .jingle_log()
                .into_iter()
                .find(|r| r.jingle.action == action)
            {
                return Ok(r.jingle);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!(
                    "no {} within {timeout:?}; got {:?}",
                    action.as_str(),
                    self.jingle_log()
                        .iter()
                        .map(|r| r.jingle.action.as_str())
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    /// Leaves every room and closes the XMPP stream; the pipeline stops
    /// when `self` drops.
    pub async fn leave(self) {
        self.handle.shutdown().await;
    }
}

impl Drop for WebrtcParticipant {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads XMPP events: Jingle IQs are acked, logged and acted on.
async fn pump(
    mut events: mpsc::UnboundedReceiver<Event>,
    handle: Handle,
    me: FullJid,
    peer: Arc<WebrtcPeer>,
    shared: Arc<Shared>,
    accepted: oneshot::Sender<Result<()>>,
) {
    let mut accepted = Some(accepted);
    while let Some(ev) = events.recv().await {
        let Event::IqRequest(req) = ev else { continue };
        let jingle = match Jingle::try_from(&req.payload) {
            Ok(j) => j,
            Err(e) => {
                handle.reply_error(req, DefinedCondition::BadRequest, &e.to_string());
                continue;
            }
        };
        let from = req.from.clone();
        tracing::info!(action = jingle.action.as_str(), sid = %jingle.sid, ?from, "jingle");
        ack(&handle, req);
        shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(JingleRecord {
                from: from.clone(),
                jingle: jingle.clone(),
            });
        shared.changed.notify_waiters();
        match jingle.action {
            Action::SessionInitiate => {
                // Before answering, so a transport-info that overtakes the
                // answer still finds its m-line.
                *shared.mids.lock().unwrap_or_else(|e| e.into_inner()) =
                    jingle.contents.iter().map(|c| c.name.clone()).collect();
                let handle = handle.clone();
                let (me, peer) = (me.clone(), peer.clone());
                let done = accepted.take();
                tokio::spawn(async move {
                    let r = accept(&handle, &me, peer, from, jingle).await;
                    if let Err(e) = &r {
                        tracing::warn!("session-initiate not accepted: {e:#}");
                    }
                    if let Some(done) = done {
                        let _ = done.send(r);
                    }
                });
            }
            Action::TransportInfo => transport_info(&peer, &shared, &jingle),
            _ => {}
        }
    }
}

fn ack(handle: &Handle, req: IncomingIq) {
    handle.reply(req, Ok(None));
}

/// Answers a session-initiate with webrtcbin and sends session-accept.
async fn accept(
    handle: &Handle,
    me: &FullJid,
    peer: Arc<WebrtcPeer>,
    from: Option<Jid>,
    initiate: Jingle,
) -> Result<()> {
    let offer = offer_sdp(&initiate);
    let answer = tokio::task::spawn_blocking(move || peer.answer(&offer))
        .await
        .context("answer task")??;
    let accept = session_accept(&initiate, &answer, &me.to_string())?;
    handle
        .iq(from, IqKind::Set, Element::from(accept), None)
        .await
        .map_err(|e| anyhow!("session-accept refused: {e:?}"))?;
    Ok(())
}

/// The SDP offer of a session-initiate, with a real `o=` line.
pub fn offer_sdp(initiate: &Jingle) -> String {
    let mut sdp = jingle_to_sdp(initiate);
    sdp.origin = Origin {
        session_id: format!("{}", rand::random::<u32>()),
        session_version: 2,
        ..Origin::default()
    };
    sdp.to_string()
}

/// The session-accept for `initiate` carrying webrtcbin's SDP `answer`.
pub fn session_accept(initiate: &Jingle, answer: &str, responder: &str) -> Result<Jingle> {
    let sdp = Sdp::parse(answer).context("webrtcbin answer")?;
    let (contents, groups) = sdp_to_jingle_as(&sdp, Role::Responder)?;
    let mut accept = Jingle::new(Action::SessionAccept, initiate.sid.clone());
    accept.initiator = initiate.initiator.clone();
    accept.responder = Some(responder.to_owned());
    accept.contents = contents;
    accept.groups = groups;
    Ok(accept)
}

/// The SDP text of a session-accept, as the initiator applies it.
pub fn answer_sdp(accept: &Jingle) -> String {
    let mut sdp = contents_to_sdp(&accept.contents, &accept.groups, Role::Responder);
    sdp.origin = Origin {
        session_id: format!("{}", rand::random::<u32>()),
        session_version: 2,
        ..Origin::default()
    };
    sdp.to_string()
}

/// Hands transport-info candidates to webrtcbin, by the m-line of their
/// content in the offer.
fn transport_info(peer: &WebrtcPeer, shared: &Shared, jingle: &Jingle) {
    let mids = shared
        .mids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for content in &jingle.contents {
        let Some(mline) = mids.iter().position(|m| *m == content.name) else {
            tracing::warn!(content = %content.name, "transport-info for an unknown content");
            continue;
        };
        let sdp = contents_to_sdp(std::slice::from_ref(content), &[], Role::Initiator);
        for section in &sdp.media {
            for cand in section.attrs("candidate") {
                if let Some(v) = &cand.value {
                    peer.add_ice_candidate(mline as u32, &format!("candidate:{v}"));
                }
            }
        }
    }
}
