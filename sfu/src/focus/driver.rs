//! The tokio loop around [`Focus`]: feeds it the XMPP session's events, the
//! clock, the answers to the IQs it sends and the media plane's offers, and
//! carries out its actions.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use jid::BareJid;
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_session::{Event, Handle, IqError};

use super::{Action, Focus};
use crate::channel::Channels;
use crate::http::Status;

/// What the focus needs from a media plane. Errors are texts for the log.
pub trait MediaPlane: Clone + Send + Sync + 'static {
    /// A new endpoint; answers with the plane's SDP offer.
    fn create_endpoint(
        &self,
        conference: String,
        endpoint: String,
    ) -> impl Future<Output = Result<String, String>> + Send;
    fn accept_answer(
        &self,
        endpoint: String,
        sdp: String,
    ) -> impl Future<Output = Result<(), String>> + Send;
    fn remove_endpoint(&self, endpoint: String) -> impl Future<Output = ()> + Send;
    fn force_mute(
        &self,
        endpoint: String,
        audio: bool,
        muted: bool,
    ) -> impl Future<Output = ()> + Send;
}

/// No media plane: the focus only signals.
#[derive(Clone, Debug)]
pub struct NoMedia;

impl MediaPlane for NoMedia {
    async fn create_endpoint(&self, _: String, _: String) -> Result<String, String> {
        Err("no media plane".into())
    }
    async fn accept_answer(&self, _: String, _: String) -> Result<(), String> {
        Err("no media plane".into())
    }
    async fn remove_endpoint(&self, _: String) {}
    async fn force_mute(&self, _: String, _: bool, _: bool) {}
}

/// What the focus drives besides XMPP.
pub struct Services<P> {
    pub plane: P,
    /// The bridge-channel registry, when the HTTP server offers it.
    pub channels: Option<Channels>,
    pub status: Arc<Status>,
}

enum Completion {
    Iq(u64, Result<Option<Element>, IqError>),
    Offer(String, Result<String, String>),
}

/// Runs the focus until `shutdown` resolves or the session ends.
pub async fn run<P: MediaPlane>(
    mut focus: Focus,
    handle: Handle,
    mut events: mpsc::UnboundedReceiver<Event>,
    services: Services<P>,
    shutdown: impl Future<Output = ()>,
) {
    let Services {
        plane,
        channels,
        status,
    } = services;
    tokio::pin!(shutdown);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    loop {
        while let Some(action) = focus.poll_action() {
            carry_out(action, &handle, &plane, channels.as_ref(), &done_tx);
        }
        let (rooms, participants) = focus.counts();
        status.rooms.store(rooms as u64, Ordering::Relaxed);
        status
            .participants
            .store(participants as u64, Ordering::Relaxed);
        status
            .requests_refused
            .store(focus.refused_total(), Ordering::Relaxed);
        let deadline = focus.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            Some(c) = done.recv() => match c {
                Completion::Iq(tag, result) => focus.handle_iq_result(tag, result, Instant::now()),
                Completion::Offer(endpoint, offer) => {
                    if let Some((room, nick)) = endpoint.split_once('/').and_then(|(r, n)| Some((BareJid::new(r).ok()?, n))) {
                        focus.handle_offer(&room, nick, offer);
                    }
                }
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    match &ev {
                        Event::Online { .. } => status.xmpp_online.store(true, Ordering::Relaxed),
                        Event::Offline => status.xmpp_online.store(false, Ordering::Relaxed),
                        _ => {}
                    }
                    focus.handle_event(ev, Instant::now())
                }
                None => return,
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => focus.handle_timeout(Instant::now()),
            _ = &mut shutdown => {
                tracing::info!("focus shutting down");
                return;
            }
        }
    }
}

fn carry_out<P: MediaPlane>(
    action: Action,
    handle: &Handle,
    plane: &P,
    channels: Option<&Channels>,
    done: &mpsc::UnboundedSender<Completion>,
) {
    match action {
        Action::Reply { req, result } => handle.reply(req, result),
        Action::Join {
            room,
            nick,
            payloads,
        } => handle.join_room(room, nick, payloads),
        Action::Leave { room } => handle.leave_room(room),
        Action::Presence { room, payloads } => handle.set_room_presence(room, payloads, None),
        Action::Iq { to, payload, tag } => {
            let (handle, done) = (handle.clone(), done.clone());
            tokio::spawn(async move {
                let result = handle.iq(Some(to), super::IQ_KIND, payload, None).await;
                let _ = done.send(Completion::Iq(tag, result));
            });
        }
        Action::CreateEndpoint {
            conference,
            endpoint,
        } => {
            let (plane, done) = (plane.clone(), done.clone());
            tokio::spawn(async move {
                let offer = plane.create_endpoint(conference, endpoint.clone()).await;
                let _ = done.send(Completion::Offer(endpoint, offer));
            });
        }
        Action::AcceptAnswer { endpoint, sdp } => {
            let plane = plane.clone();
            tokio::spawn(async move {
                if let Err(e) = plane.accept_answer(endpoint.clone(), sdp).await {
                    tracing::warn!(%endpoint, "media plane refused the answer: {e}");
                }
            });
        }
        Action::RemoveEndpoint { endpoint } => {
            if let Some(c) = channels {
                c.remove(&endpoint);
            }
            let plane = plane.clone();
            tokio::spawn(async move { plane.remove_endpoint(endpoint).await });
        }
        Action::ExpectChannel {
            conference,
            endpoint,
            token,
        } => {
            if let Some(c) = channels {
                c.expect(&conference, &endpoint, &token);
            }
        }
        Action::ForceMute {
            endpoint,
            audio,
            muted,
        } => {
            let plane = plane.clone();
            tokio::spawn(async move { plane.force_mute(endpoint, audio, muted).await });
        }
    }
}
