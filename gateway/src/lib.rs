//! The `gateway` binary's library: the SIP gateway, a member of the gateway
//! pool.
//!
//! [`run`] logs in with the service account, sits in the gateways' brewery
//! publishing colibri `stats` (conferences, participants, stress level,
//! graceful shutdown), listens for SIP on UDP and TCP ([`sip::driver`]),
//! and hands every call to the [`calls::Manager`]: phone legs
//! ([`leg::PhoneLeg`]: SDP, RTP, DTMF, codecs), the PIN prompt ([`ivr`],
//! [`mapper`]), one participant per caller in the meeting
//! ([`participant`]), and one audio task per room ([`room`]). `/health` and
//! `/metrics` are served on `[http] listen`. On shutdown new calls get 503
//! while current calls go on, up to `sip.drain_timeout_s`; calls still up then
//! are hung up.

pub mod calls;
pub mod config;
pub mod http;
pub mod ivr;
pub mod leg;
pub mod mapper;
pub mod media;
pub mod phone;
pub mod presence;
pub mod room;
pub mod sip;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
use proto::colibri::ColibriStats;
use proto::presence::Features;
use xmpp_session::SessionConfig;

/// The brewery stats for `calls` calls in `rooms` rooms out of `max_calls`.
pub fn stats(calls: usize, rooms: usize, max_calls: usize, draining: bool) -> ColibriStats {
    let mut stats = ColibriStats::new();
    let stress = calls as f64 / max_calls.max(1) as f64;
    for (name, value) in [
        ("conferences", rooms.to_string()),
        ("participants", calls.to_string()),
        ("stress_level", format!("{stress:.3}")),
        ("graceful_shutdown", draining.to_string()),
        ("supports_sip", "true".into()),
        ("supports_transcription", "false".into()),
        ("version", env!("CARGO_PKG_VERSION").into()),
    ] {
        stats.set(name, &value);
    }
    stats
}

/// Resolves `host:port` (a name or an address).
async fn resolve(key: &str, value: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if value.is_empty() {
        return Ok(None);
    }
    let found = tokio::net::lookup_host(value)
        .await
        .map_err(|e| anyhow::anyhow!("{key}: cannot resolve {value}: {e}"))?
        .next();
    found
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("{key}: {value} has no address"))
}

/// The SIP driver's settings from the config: the server core, the
/// dial-out client (through `sip.outbound_proxy`, answering the trunk's
/// challenges with the registration's credentials) and the registration.
pub async fn sip_settings(config: &Config) -> anyhow::Result<sip::driver::Settings> {
    let c = &config.sip;
    let proxy = resolve("sip.outbound_proxy", &c.outbound_proxy).await?;
    let r = &c.register;
    let credentials =
        (!r.user.is_empty()).then(|| sip::Credentials::new(r.user.clone(), r.password.clone()));
    let client = sip::ClientConfig {
        outbound_proxy: proxy,
        credentials: credentials.clone(),
        max_calls: c.max_calls,
        ..sip::ClientConfig::default()
    };
    let register = match credentials {
        None => None,
        Some(credentials) => {
            let key = if r.registrar.is_empty() {
                "sip.trunk"
            } else {
                "sip.register.registrar"
            };
            let text = if r.registrar.is_empty() {
                &c.trunk
            } else {
                &r.registrar
            };
            let registrar = resolve(key, text)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{key}: needed for registration"))?;
            let host = text.rsplit_once(':').map_or(text.as_str(), |(h, _)| h);
            let domain = if r.domain.is_empty() { host } else { &r.domain };
            Some(sip::RegisterConfig {
                registrar,
                aor: format!("sip:{}@{domain}", r.user),
                registrar_uri: format!("sip:{domain}"),
                contact: String::new(),
                credentials,
                expires: r.expires_s,
                outbound_proxy: proxy,
                ..sip::RegisterConfig::default()
            })
        }
    };
    Ok(sip::driver::Settings {
        bind: c.listen.parse()?,
        server: sip::Config {
            room_header: config.dial_in.room_header.clone(),
            max_calls: c.max_calls,
            session_expires: Duration::from_secs(c.session_expires_s.into()),
            tag_seed: rand::random(),
            ..sip::Config::default()
        },
        client: Some(client),
        register,
        ..sip::driver::Settings::default()
    })
}

/// The brewery stats of an idle gateway.
pub fn idle_stats() -> ColibriStats {
    stats(0, 0, 1, false)
}

/// The addresses the gateway listens on (port 0 in the config picks one).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub sip: std::net::SocketAddr,
    pub http: Option<std::net::SocketAddr>,
}

/// Runs the gateway until `shutdown` resolves, then drains.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with(config, shutdown, |_| {}).await
}

/// [`run`], telling `bound` where it listens once it does.
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()>,
    bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let room = config.brewery.room_jid("gateways", &config.xmpp.domain)?;
    let metrics = Arc::new(http::Metrics::default());
    let prompts = match ivr::Prompts::load(&config.dial_in.prompts) {
        Ok(p) => Some(p),
        Err(e) if config.dial_in.mapper.is_some() => {
            anyhow::bail!("dial_in.prompts: {e} (run scripts/prompts)")
        }
        Err(_) => None,
    };
    let mut http_addr = None;
    if !config.http.listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&config.http.listen).await?;
        http_addr = Some(listener.local_addr()?);
        tracing::info!(listen = %listener.local_addr()?, "health and metrics");
        let app = http::router(metrics.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    let settings = sip_settings(&config).await?;
    if settings.register.is_some() {
        metrics
            .registration_configured
            .store(true, Ordering::Relaxed);
    }
    let (driver, mut sip_events) = sip::driver::Driver::start(settings).await?;
    let sip = driver.handle();
    bound(Bound {
        sip: driver.local_addr(),
        http: http_addr,
    });
    let session = SessionConfig {
        identities: vec![("client".into(), "bot".into(), "sip gateway".into())],
        features: [proto::ns::feature::JIGASI.to_owned()].into(),
        iq_namespaces: [proto::ns::RAYO.to_owned()].into_iter().collect(),
        iq_timeout: config.xmpp.iq_timeout(),
    };
    let (handle, mut events, task) = xmpp_session::spawn(config.xmpp.clone(), session)?;
    let max_calls = config.sip.max_calls;
    let presence = move |calls: usize, rooms: usize, draining: bool| {
        vec![
            stats(calls, rooms, max_calls, draining).into(),
            Features::new([proto::ns::feature::JIGASI]).into(),
        ]
    };
    tracing::info!(jid = %config.xmpp.jid, %room, sip = %driver.local_addr(), "gateway starting");
    handle.join_room(room.clone(), config.brewery.nick(), presence(0, 0, false));
    let drain_limit = Duration::from_secs(config.sip.drain_timeout_s);
    let (mut manager, mut inputs) =
        calls::Manager::new(config, metrics.clone(), prompts, sip.clone());
    let mut published = (0usize, 0usize, false);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(shutdown);
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break,
                Some(xmpp_session::Event::Online { .. }) => metrics.online.store(true, Ordering::Relaxed),
                Some(xmpp_session::Event::Offline) => metrics.online.store(false, Ordering::Relaxed),
                Some(xmpp_session::Event::RoomJoined { room: r, .. }) if r == room => tracing::info!(%room, "in the brewery"),
                Some(xmpp_session::Event::IqRequest(req)) => manager.on_rayo(&handle, req),
                Some(ev) => tracing::debug!(?ev, "xmpp event"),
            },
            Some(ev) = sip_events.recv() => match ev {
                sip::Event::Registration(r) => {
                    tracing::info!(?r, "registration");
                    let up = matches!(r, sip::RegisterEvent::Registered { .. });
                    metrics.registered.store(up, Ordering::Relaxed);
                }
                ev => manager.on_sip(ev).await,
            },
            Some(d) = inputs.departures.recv() => manager.on_departure(d).await,
            Some((id, outcome, answered)) = inputs.done.recv() => manager.on_done(id, outcome, answered).await,
            Some(r) = inputs.dial_requests.recv() => manager.on_dial_request(r).await,
            Some((nick, outcome)) = inputs.dial_done.recv() => manager.on_dial_done(nick, outcome),
            _ = tick.tick() => {
                let now = (manager.active(), manager.rooms(), drain_deadline.is_some());
                if now != published {
                    handle.set_room_presence(room.clone(), presence(now.0, now.1, now.2), None);
                    published = now;
                }
                if let Some(deadline) = drain_deadline {
                    if manager.active() == 0 || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                }
            }
            _ = &mut shutdown, if drain_deadline.is_none() => {
                tracing::info!(calls = manager.active(), "draining: new calls are refused, current calls go on");
                metrics.draining.store(true, Ordering::Relaxed);
                let _ = sip.set_accepting(false).await;
                drain_deadline = Some(tokio::time::Instant::now() + drain_limit);
                if manager.active() == 0 {
                    break;
                }
            }
        }
    }
    if manager.active() > 0 {
        tracing::info!(calls = manager.active(), "drain time is up: hanging up");
        manager.hangup_all().await;
        // Let the BYEs go out before the driver stops.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::info!("shutting down");
    driver.shutdown().await;
    handle.shutdown().await;
    let _ = task.await;
    Ok(())
}
