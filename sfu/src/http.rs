//! The `sfu`'s HTTP side: `/health` (200 while the focus is connected to
//! XMPP, 503 otherwise), `/metrics` (Prometheus text), and the meeting
//! page's files ([`crate::web`]) or, while the page is not built, a status
//! page at `/`; `/conference-mapper`, the dial-in PINs ([`crate::dial_in`]).
//! The bridge channel ([`crate::channel`]) and the XMPP WebSocket relay
//! ([`crate::xmpp_proxy`]) add their own routes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

/// Figures the focus and media plane publish; read by the HTTP handlers.
#[derive(Debug)]
pub struct Status {
    pub xmpp_online: AtomicBool,
    pub rooms: AtomicU64,
    pub participants: AtomicU64,
    pub requests_refused: AtomicU64,
    /// XMPP WebSocket relays open now, opened in all, and refused because
    /// Prosody could not be reached.
    pub xmpp_websocket_open: AtomicU64,
    pub xmpp_websocket_total: AtomicU64,
    pub xmpp_websocket_failures: AtomicU64,
    /// The media plane, asked for its figures on every scrape.
    pub plane: std::sync::OnceLock<crate::plane::PlaneHandle>,
    /// Participants at which the stress level reaches 1.0.
    pub capacity: AtomicU64,
    started: Instant,
    /// What `/` tells a visitor (the XMPP server and domain).
    about: String,
}

impl Status {
    pub fn new(about: String) -> Arc<Status> {
        Arc::new(Status {
            xmpp_online: AtomicBool::new(false),
            rooms: AtomicU64::new(0),
            participants: AtomicU64::new(0),
            requests_refused: AtomicU64::new(0),
            xmpp_websocket_open: AtomicU64::new(0),
            xmpp_websocket_total: AtomicU64::new(0),
            xmpp_websocket_failures: AtomicU64::new(0),
            plane: std::sync::OnceLock::new(),
            capacity: AtomicU64::new(500),
            started: Instant::now(),
            about,
        })
    }
}

/// `/health`, `/metrics`, `/conference-mapper` (answered by `dial_in`),
/// and the page: the files under `page` when given (every path no route
/// claims), else the status page at `/`.
pub fn router(
    status: Arc<Status>,
    page: Option<std::path::PathBuf>,
    dial_in: crate::dial_in::Mapper,
) -> Router {
    let routes = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics));
    let routes = match page {
        Some(root) => routes.with_state(status).merge(crate::web::router(root)),
        None => routes.route("/", get(index)).with_state(status),
    };
    routes.merge(crate::dial_in::router(dial_in))
}

async fn health(State(s): State<Arc<Status>>) -> impl IntoResponse {
    let online = s.xmpp_online.load(Ordering::Relaxed);
    let code = if online {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = format!(
        "{{\"status\":\"{}\",\"xmpp\":{},\"rooms\":{},\"participants\":{}}}\n",
        if online { "ok" } else { "degraded" },
        online,
        s.rooms.load(Ordering::Relaxed),
        s.participants.load(Ordering::Relaxed)
    );
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(State(s): State<Arc<Status>>) -> impl IntoResponse {
    let participants = s.participants.load(Ordering::Relaxed);
    let stress = participants as f64 / s.capacity.load(Ordering::Relaxed).max(1) as f64;
    let mut body = format!(
        "# HELP sfu_up Whether the focus is connected to XMPP.\n# TYPE sfu_up gauge\nsfu_up {}\n\
         # HELP sfu_rooms Rooms the focus is in.\n# TYPE sfu_rooms gauge\nsfu_rooms {}\n\
         # HELP sfu_participants Participants in those rooms.\n# TYPE sfu_participants gauge\nsfu_participants {}\n\
         # HELP sfu_requests_refused_total Requests answered with an error.\n# TYPE sfu_requests_refused_total counter\nsfu_requests_refused_total {}\n\
         # HELP sfu_uptime_seconds Seconds since start.\n# TYPE sfu_uptime_seconds gauge\nsfu_uptime_seconds {}\n",
        u8::from(s.xmpp_online.load(Ordering::Relaxed)),
        s.rooms.load(Ordering::Relaxed),
        s.participants.load(Ordering::Relaxed),
        s.requests_refused.load(Ordering::Relaxed),
        s.started.elapsed().as_secs()
    );
    for (name, help, kind, value) in [
        (
            "sfu_xmpp_websocket_connections",
            "XMPP WebSocket connections relayed to Prosody now.",
            "gauge",
            &s.xmpp_websocket_open,
        ),
        (
            "sfu_xmpp_websocket_connections_total",
            "XMPP WebSocket connections relayed to Prosody.",
            "counter",
            &s.xmpp_websocket_total,
        ),
        (
            "sfu_xmpp_websocket_failures_total",
            "XMPP WebSocket connections closed because Prosody could not be reached.",
            "counter",
            &s.xmpp_websocket_failures,
        ),
    ] {
        let value = value.load(Ordering::Relaxed);
        body.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    body.push_str(&format!(
        "# HELP sfu_stress_level Participants over capacity (1.0 = full).\n# TYPE sfu_stress_level gauge\nsfu_stress_level {stress}\n"
    ));
    let media = match s.plane.get() {
        Some(plane) => Some(plane.stats().await),
        None => None,
    };
    if let Some(m) = media {
        for (name, help, kind, value) in [
            (
                "sfu_media_endpoints",
                "Media sessions.",
                "gauge",
                m.endpoints as u64,
            ),
            (
                "sfu_media_connected",
                "Media sessions with ICE and DTLS up.",
                "gauge",
                m.connected as u64,
            ),
            (
                "sfu_packets_in_total",
                "UDP datagrams received.",
                "counter",
                m.packets_in,
            ),
            (
                "sfu_bytes_in_total",
                "UDP bytes received.",
                "counter",
                m.bytes_in,
            ),
            (
                "sfu_packets_out_total",
                "UDP datagrams sent.",
                "counter",
                m.packets_out,
            ),
            (
                "sfu_bytes_out_total",
                "UDP bytes sent.",
                "counter",
                m.bytes_out,
            ),
            (
                "sfu_packets_dropped_total",
                "Datagrams no session accepted.",
                "counter",
                m.dropped,
            ),
            (
                "sfu_packets_forwarded_total",
                "RTP packets forwarded to receivers.",
                "counter",
                m.packets_forwarded,
            ),
            (
                "sfu_forwarding_errors_total",
                "Packets that could not be forwarded.",
                "counter",
                m.forwarding_errors,
            ),
        ] {
            body.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn index(State(s): State<Arc<Status>>) -> impl IntoResponse {
    let online = s.xmpp_online.load(Ordering::Relaxed);
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Meetings</title>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
         <h1>Meetings server</h1><p>Focus: <b>{}</b>. Rooms: {}, participants: {}.</p>\
         <p>{}</p><p><a href=\"/health\">health</a> · <a href=\"/metrics\">metrics</a></p></body>",
        if online { "connected" } else { "connecting" },
        s.rooms.load(Ordering::Relaxed),
        s.participants.load(Ordering::Relaxed),
        html_escape(&s.about)
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
