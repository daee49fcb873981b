//! The `sfu` binary's library: the conference focus (signalling over XMPP)
//! and, kept apart from it, the media plane.
//!
//! [`run`] starts everything from a validated [`Config`] and returns when
//! `shutdown` resolves, after leaving every room and closing the XMPP stream.

pub mod config;
pub mod focus;

use std::future::Future;
use std::time::Duration;

pub use config::Config;
use focus::{Focus, FocusSettings};
use xmpp_session::SessionConfig;

/// Runs the focus until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let session = SessionConfig {
        identities: vec![("client".into(), "bot".into(), "conference focus".into())],
        features: Focus::iq_namespaces(),
        iq_namespaces: Focus::iq_namespaces(),
        iq_timeout: config.xmpp.iq_timeout(),
    };
    let (handle, events, task) = xmpp_session::spawn(config.xmpp.clone(), session)?;
    let settings = FocusSettings {
        muc_service: config.muc_service(),
        nick: config.focus.nick.clone(),
        empty_room_timeout: Duration::from_secs(config.focus.empty_room_timeout_s),
    };
    tracing::info!(jid = %config.xmpp.jid, server = %config.xmpp.server, muc = %settings.muc_service, "focus starting");
    focus::driver::run(Focus::new(settings), handle.clone(), events, shutdown).await;
    handle.shutdown().await;
    let _ = task.await;
    Ok(())
}
