//! The `sfu` binary's library: the conference focus (signalling over XMPP)
//! and, kept apart from it, the media plane; plus the HTTP side (health,
//! metrics, the meeting page's files in [`web`] and its XMPP-over-WebSocket
//! relay to Prosody in [`xmpp_proxy`], dial-in PINs in [`dial_in`]), and
//! [`token`], which mints the
//! sign-in tokens Prosody checks in token mode (`sfu token`).
//!
//! [`run`] starts everything from a validated [`Config`] and returns when
//! `shutdown` resolves, after leaving every room and closing the XMPP stream.

pub mod channel;
pub mod config;
pub mod dial_in;
pub mod focus;
pub mod http;
pub mod media;
pub mod plane;
pub mod token;
pub mod web;
pub mod xmpp_proxy;

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
    let http_addr = listener.local_addr()?;
    let seed = rand_seed();
    let server_id = format!("{:08x}", seed as u32);
    let channels = channel::Channels::new(server_id.clone());
    let plane = if config.media.enabled {
        let plane_config = plane::PlaneConfig {
            bind: config.media.bind.parse().context("media.bind")?,
            advertise: (!config.media.advertise.is_empty())
                .then(|| config.media.advertise.parse())
                .transpose()
                .context("media.advertise")?,
            audio_slots: config.media.audio_slots,
            video_slots: config.media.video_slots,
            bandwidth_estimation: config.media.bandwidth_estimation,
        };
        let (plane, plane_events, _task) =
            plane::start_with_channels(plane_config, channels.clone())
                .await
                .context("media.bind")?;
        tracing::info!(udp = %plane.local_addr(), "media plane listening");
        tokio::spawn(log_plane_events(plane_events));
        Some(plane)
    } else {
        None
    };
    let settings = FocusSettings {
        muc_service: config.muc_service(),
        nick: config.focus.nick.clone(),
        empty_room_timeout: Duration::from_secs(config.focus.empty_room_timeout_s),
        recorders: config.recorders_brewery(),
        gateways: config.gateways_brewery(),
        trusted_domains: config.trusted_domains(),
        auto_owner: config.focus.auto_owner,
        seed,
        media: plane.is_some(),
        focus_jid: Some(format!("{}/{}", config.xmpp.jid, config.xmpp.resource)),
        channel: plane
            .is_some()
            .then(|| (config.channel_base(http_addr), server_id)),
        bridges: config.bridges_brewery(),
        capacity: config.media.capacity,
    };
    let status = http::Status::new(format!(
        "XMPP server {} for {}; rooms on {}.",
        config.xmpp.server, config.xmpp.domain, settings.muc_service
    ));
    let (handle, events, task) = xmpp_session::spawn(config.xmpp.clone(), session)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let page = page_root(&config.http.web_root);
    let page_config = web::PageConfig {
        domain: config.xmpp.domain.clone(),
        muc: settings.muc_service.clone(),
        focus: format!("{}/{}", config.xmpp.jid, config.xmpp.resource),
        dial_in_numbers: config.dial_in.numbers.clone(),
    };
    let mapper = dial_in::Mapper::new(settings.muc_service.clone(), config.dial_in.pin_digits);
    let app = http::router(status.clone(), page, mapper)
        .merge(web::config_router(&page_config))
        .merge(channels.router())
        .merge(xmpp_proxy::router(config.xmpp_websocket(), status.clone()));
    tracing::info!(upstream = %config.xmpp_websocket(), "xmpp websocket relay at {}", xmpp_proxy::PATH);
    tracing::info!(listen = %http_addr, "http listening");
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
    let focus = Focus::new(settings);
    match plane {
        Some(plane) => {
            status
                .capacity
                .store(config.media.capacity, std::sync::atomic::Ordering::Relaxed);
            let _ = status.plane.set(plane.clone());
            let services = focus::driver::Services {
                plane,
                channels: Some(channels),
                status,
            };
            focus::driver::run(focus, handle.clone(), events, services, shutdown).await
        }
        None => {
            let services = focus::driver::Services {
                plane: focus::driver::NoMedia,
                channels: None,
                status,
            };
            focus::driver::run(focus, handle.clone(), events, services, shutdown).await
        }
    }
    let _ = stop_tx.send(true);
    handle.shutdown().await;
    let _ = task.await;
    let _ = http_task.await;
    drop(stop_rx);
    Ok(())
}

/// The meeting page's folder when the page is built (checked once, here).
fn page_root(web_root: &str) -> Option<std::path::PathBuf> {
    if web_root.is_empty() {
        tracing::info!("http.web_root is empty: no meeting page, / is a status page");
        return None;
    }
    let root = std::path::PathBuf::from(web_root);
    if web::built(&root) {
        tracing::info!(web_root = %root.display(), "serving the meeting page");
        Some(root)
    } else {
        tracing::info!(
            web_root = %root.display(),
            "the meeting page is not built (no index.html there): / is a status page"
        );
        None
    }
}

async fn log_plane_events(mut events: plane::PlaneEvents) {
    while let Some(ev) = events.recv().await {
        tracing::info!(?ev, "media plane");
    }
}

impl focus::driver::MediaPlane for plane::PlaneHandle {
    async fn create_endpoint(
        &self,
        conference: String,
        endpoint: String,
    ) -> Result<String, String> {
        plane::PlaneHandle::create_endpoint(self, &conference, &endpoint)
            .await
            .map_err(|e| e.to_string())
    }
    async fn accept_answer(&self, endpoint: String, sdp: String) -> Result<(), String> {
        plane::PlaneHandle::accept_answer(self, &endpoint, &sdp)
            .await
            .map_err(|e| e.to_string())
    }
    async fn remove_endpoint(&self, endpoint: String) {
        plane::PlaneHandle::remove_endpoint(self, &endpoint).await
    }
    async fn force_mute(&self, endpoint: String, audio: bool, muted: bool) {
        plane::PlaneHandle::force_mute(self, &endpoint, audio, muted).await
    }
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
