//! The tokio loop around [`Focus`]: feeds it the XMPP session's events and
//! the clock, and carries out its actions on the session.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use xmpp_session::{Event, Handle};

use super::{Action, Focus};
use crate::http::Status;

/// Runs the focus until `shutdown` resolves or the session ends.
pub async fn run(
    mut focus: Focus,
    handle: Handle,
    mut events: mpsc::UnboundedReceiver<Event>,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let (results_tx, mut results) = mpsc::unbounded_channel();
    loop {
        while let Some(action) = focus.poll_action() {
            match action {
                Action::Reply { req, result } => handle.reply(req, result),
                Action::Join {
                    room,
                    nick,
                    payloads,
                } => handle.join_room(room, nick, payloads),
                Action::Leave { room } => handle.leave_room(room),
                Action::Presence { room, payloads } => {
                    handle.set_room_presence(room, payloads, None)
                }
                Action::Iq { to, payload, tag } => {
                    let (handle, tx) = (handle.clone(), results_tx.clone());
                    tokio::spawn(async move {
                        let result = handle.iq(Some(to), super::IQ_KIND, payload, None).await;
                        let _ = tx.send((tag, result));
                    });
                }
            }
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
            Some((tag, result)) = results.recv() => focus.handle_iq_result(tag, result, Instant::now()),
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
