//! The `sfu` binary's library: the conference focus (signalling over XMPP)
//! and, kept apart from it, the media plane; plus the HTTP side (health,
//! metrics, and later the meeting page).
//!
//! [`run`] starts everything from a validated [`Config`] and returns when
//! `shutdown` resolves, after leaving every room and closing the XMPP stream.

pub mod channel;
pub mod config;
pub mod focus;
pub mod http;
pub mod media;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
pub use config::Config;
use focus::{Focus, FocusSettings};
use xmpp_session::SessionConfig;

/// Runs the focus and the HTTP server until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("http.listen {}", config.http.listen))?;
    run_with_listener(config, listener, shutdown).await
}

/// As [`run`], on an already bound HTTP listener (tests bind port 0).
pub async fn run_with_listener(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
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
        recorders: config.recorders_brewery(),
        gateways: config.gateways_brewery(),
        trusted_domains: config.trusted_domains(),
        auto_owner: config.focus.auto_owner,
        seed: rand_seed(),
        media: false,
        focus_jid: Some(format!("{}/{}", config.xmpp.jid, config.xmpp.resource)),
        channel: None,
        bridges: None,
        capacity: 500,
    };
    let status = http::Status::new(format!(
        "XMPP server {} for {}; rooms on {}.",
        config.xmpp.server, config.xmpp.domain, settings.muc_service
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let app = http::router(status.clone());
    tracing::info!(listen = %listener.local_addr()?, "http listening");
    let http_task = tokio::spawn(async move {
        let stop = async move {
            let _ = http_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("http server failed: {e}");
        }
    });
    tracing::info!(jid = %config.xmpp.jid, server = %config.xmpp.server, muc = %settings.muc_service, "focus starting");
    focus::driver::run(
        Focus::new(settings),
        handle.clone(),
        events,
        focus::driver::Services {
            plane: focus::driver::NoMedia,
            channels: None,
            status,
        },
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    handle.shutdown().await;
    let _ = task.await;
    let _ = http_task.await;
    drop(stop_rx);
    Ok(())
}

/// A seed for session ids, from the OS's randomness via std's hasher keys.
fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
