//! Stand-in pool members for tests of the focus's routing: xmpp-session
//! clients that sit in the recorders' or gateways' brewery and answer the
//! focus the way the real recorder and gateway do, without media.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jid::BareJid;
use minidom::Element;
use proto::jibri::{Action, BusyStatus, FailureReason, Health, JibriIq, JibriStatus, Status};
use proto::presence::Features;
use tokio::sync::mpsc::UnboundedReceiver;
use xmpp_session::{Event, Handle, IqKind, SessionConfig};

use crate::{Account, Prosody};

pub fn client(
    prosody: &Prosody,
    account: Option<&Account>,
    namespaces: &[&str],
) -> (Handle, UnboundedReceiver<Event>) {
    let session = SessionConfig {
        iq_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..SessionConfig::default()
    };
    let (h, e, _) =
        xmpp_session::spawn(crate::meeting::xmpp_as(prosody, account), session).unwrap();
    (h, e)
}

/// A stand-in recorder: idle and healthy in the brewery; answers a start
/// with `refuse` (off/error/retry) or with pending, then reports `on`; a
/// stop with `off`. Returns how many starts it was asked for.
pub fn stand_in_recorder(prosody: &Prosody, name: &str, refuse: bool) -> Arc<AtomicUsize> {
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let account = prosody.register_service(name).unwrap();
    let (handle, mut events) = client(prosody, Some(&account), &[proto::ns::JIBRI]);
    let brewery = BareJid::new(&format!("recorders@{}", prosody.internal_domain())).unwrap();
    let status: Element = JibriStatus::new(BusyStatus::Idle, Health::Healthy).into();
    let features: Element = Features::new([proto::ns::feature::JIBRI]).into();
    handle.join_room(brewery, name, vec![status, features]);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let Event::IqRequest(req) = ev else { continue };
            let start = JibriIq::try_from(&req.payload).unwrap();
            if start.action == Some(Action::Stop) {
                handle.reply(req, Ok(Some(JibriIq::status(Status::Off).into())));
                continue;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let focus = req.from.clone();
            if refuse {
                let mut answer = JibriIq::status(Status::Off);
                answer.failure_reason = Some(FailureReason::Error);
                answer.should_retry = Some(true);
                handle.reply(req, Ok(Some(answer.into())));
                continue;
            }
            handle.reply(req, Ok(Some(JibriIq::status(Status::Pending).into())));
            let mut on = JibriIq::status(Status::On);
            on.session_id = start.session_id.clone();
            let h = handle.clone();
            tokio::spawn(async move {
                h.iq(focus, IqKind::Set, on.into(), None)
                    .await
                    .expect("focus accepts the report");
            });
        }
    });
    starts
}

/// A stand-in gateway that answers every dial with a reference.
pub fn stand_in_gateway(prosody: &Prosody) {
    let account = prosody.register_service("gw1").unwrap();
    let (handle, mut events) = client(prosody, Some(&account), &[proto::ns::RAYO]);
    let brewery = BareJid::new(&format!("gateways@{}", prosody.internal_domain())).unwrap();
    let mut stats = proto::colibri::ColibriStats::new();
    stats.set_participants(0);
    stats.set_supports_sip(true);
    handle.join_room(brewery, "gw1", vec![stats.into()]);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let Event::IqRequest(req) = ev else { continue };
            let dial = proto::rayo::Dial::try_from(&req.payload).unwrap();
            assert_eq!(dial.to, "+15551234");
            let reference: Element = proto::rayo::Ref {
                uri: "xmpp:0a1b2c3d@gw.meet.test".into(),
            }
            .into();
            handle.reply(req, Ok(Some(reference)));
        }
    });
}
