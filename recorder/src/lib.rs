//! The `recorder` binary's library: a member of the recorder pool that
//! records and streams meetings.
//!
//! [`run`] logs in with the service account, sits in the recorders'
//! brewery publishing `jibri-status` (idle/busy, healthy), and answers the
//! focus's Jibri requests through [`pool::Member`]. Each start becomes a
//! [`job`]: the recorder joins the meeting as a hidden participant
//! ([`meeting`], [`rtc`]), composites and encodes with GStreamer
//! ([`media`]) and stores the file ([`upload`]) or streams it to RTMP.
//! `/health` and `/metrics` are served on `[http] listen`.

pub mod config;
pub mod job;
pub mod media;
pub mod pool;
pub mod upload;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
use tokio::sync::{mpsc, oneshot};
use xmpp_session::{IqKind, SessionConfig};

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub failed: AtomicU64,
    pub active: AtomicU64,
}

/// Runs the pool member until `shutdown` resolves; running recordings are
/// stopped and finalized first.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let room = config.brewery.room_jid("recorders", &config.xmpp.domain)?;
    gstreamer::init()?;
    let storage = upload::Storage::connect(&config.storage)
        .await
        .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
    let session = SessionConfig {
        identities: vec![("client".into(), "bot".into(), "recorder".into())],
        features: [proto::ns::feature::JIBRI.to_owned()].into(),
        iq_namespaces: [proto::ns::JIBRI.to_owned()].into_iter().collect(),
        iq_timeout: config.xmpp.iq_timeout(),
    };
    let (handle, mut events, task) = xmpp_session::spawn(config.xmpp.clone(), session)?;
    let mut member = pool::Member::new(
        config.recording.capacity,
        config.stream.allowed_hosts.clone(),
    );
    let metrics = Arc::new(Metrics::default());
    let online = Arc::new(AtomicBool::new(false));
    if !config.http.listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&config.http.listen).await?;
        tracing::info!(listen = %listener.local_addr()?, "health and metrics");
        let app = http_router(metrics.clone(), online.clone(), storage.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    tracing::info!(jid = %config.xmpp.jid, %room, capacity = config.recording.capacity, "recorder starting");
    handle.join_room(room.clone(), config.brewery.nick(), member.presence());
    let ctx = job::JobContext {
        config: Arc::new(config),
        storage,
    };
    let (report_tx, mut reports) = mpsc::unbounded_channel::<(String, pool::JobEvent)>();
    let mut stops: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    let mut jobs = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break,
                Some(xmpp_session::Event::Online { .. }) => online.store(true, Ordering::Relaxed),
                Some(xmpp_session::Event::Offline) => online.store(false, Ordering::Relaxed),
                Some(xmpp_session::Event::IqRequest(req)) => member.handle_request(req),
                Some(xmpp_session::Event::RoomJoined { room: r, .. }) if r == room => tracing::info!(%room, "in the brewery"),
                Some(xmpp_session::Event::RoomJoinFailed { room: r, error }) if r == room => {
                    tracing::error!(%room, condition = ?error.defined_condition, "brewery refused us");
                }
                Some(_) => {}
            },
            Some((session, event)) = reports.recv() => {
                match &event {
                    pool::JobEvent::On => {}
                    pool::JobEvent::Finished => {
                        metrics.finished.fetch_add(1, Ordering::Relaxed);
                    }
                    pool::JobEvent::Failed { .. } => {
                        metrics.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if event != pool::JobEvent::On {
                    stops.remove(&session);
                    metrics.active.fetch_sub(1, Ordering::Relaxed);
                }
                member.job_event(&session, event);
            }
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            _ = &mut shutdown => break,
        }
        while let Some(out) = member.poll() {
            match out {
                pool::Output::Reply { req, result } => match result {
                    Ok(payload) => handle.reply(req, Ok(payload)),
                    Err((condition, text)) => handle.reply_error(req, condition, &text),
                },
                pool::Output::Start(start) => {
                    tracing::info!(session = %start.session, room = %start.room, mode = ?start.mode, "recording requested");
                    metrics.started.fetch_add(1, Ordering::Relaxed);
                    metrics.active.fetch_add(1, Ordering::Relaxed);
                    let (tx, rx) = oneshot::channel();
                    stops.insert(start.session.clone(), tx);
                    jobs.spawn(job::run(ctx.clone(), start, report_tx.clone(), rx));
                }
                pool::Output::Stop { session } => {
                    if let Some(stop) = stops.remove(&session) {
                        let _ = stop.send(());
                    }
                }
                pool::Output::Report { to, iq } => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle.iq(Some(to), IqKind::Set, iq.into(), None).await {
                            tracing::warn!("status report not taken: {e:?}");
                        }
                    });
                }
                pool::Output::Presence(payloads) => {
                    handle.set_room_presence(room.clone(), payloads, None);
                }
            }
        }
    }
    tracing::info!(running = stops.len(), "shutting down: stopping recordings");
    for (_, stop) in stops.drain() {
        let _ = stop.send(());
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while jobs.join_next().await.is_some() {}
    })
    .await;
    handle.shutdown().await;
    let _ = task.await;
    Ok(())
}

fn http_router(
    metrics: Arc<Metrics>,
    online: Arc<AtomicBool>,
    storage: upload::Storage,
) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let health = {
        let online = online.clone();
        move || {
            let up = online.load(Ordering::Relaxed);
            async move {
                if up {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not connected to XMPP\n")
                }
            }
        }
    };
    let metrics_text = move || {
        let m = metrics.clone();
        let u = storage.metrics().clone();
        async move {
            let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
            format!(
                "# TYPE recorder_recordings_active gauge\nrecorder_recordings_active {}\n\
                 # TYPE recorder_recordings_started_total counter\nrecorder_recordings_started_total {}\n\
                 # TYPE recorder_recordings_finished_total counter\nrecorder_recordings_finished_total {}\n\
                 # TYPE recorder_failures_total counter\nrecorder_failures_total{{cause=\"recording\"}} {}\n\
                 recorder_failures_total{{cause=\"upload\"}} {}\n\
                 # TYPE recorder_uploaded_bytes_total counter\nrecorder_uploaded_bytes_total {}\n",
                g(&m.active),
                g(&m.started),
                g(&m.finished),
                g(&m.failed),
                u.failures(),
                u.bytes(),
            )
        }
    };
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
}
