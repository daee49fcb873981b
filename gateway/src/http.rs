//! `/health` and `/metrics` (Prometheus text) for the gateway.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;

/// Counters and gauges the gateway keeps; shared with the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connected to XMPP (the brewery account).
    pub online: AtomicBool,
    /// Registered with the trunk (when registration is configured).
    pub registered: AtomicBool,
    pub registration_configured: AtomicBool,
    /// Draining: new calls refused, current ones go on.
    pub draining: AtomicBool,
    pub calls_active: AtomicU64,
    pub rooms_active: AtomicU64,
    pub dial_in_total: AtomicU64,
    pub dial_out_total: AtomicU64,
    /// Calls that reached a room.
    pub connected_total: AtomicU64,
    /// Refused over the call limit or while draining.
    pub rejected_busy_total: AtomicU64,
    /// Refused: no room (unknown PIN after the tries, no header and no mapper).
    pub rejected_no_room_total: AtomicU64,
    /// Refused: SDP without a codec we speak (488).
    pub rejected_media_total: AtomicU64,
    /// Failed to join the meeting (focus, XMPP, WebRTC).
    pub join_failures_total: AtomicU64,
    /// Ended because the phone sent no RTP for the inactivity timeout.
    pub inactivity_ends_total: AtomicU64,
    pub kicked_total: AtomicU64,
    pub dtmf_digits_total: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let b = |a: &AtomicBool| u8::from(a.load(Ordering::Relaxed));
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "gateway_calls_active",
            "gauge",
            "Calls up now.",
            g(&self.calls_active).to_string(),
        );
        metric(
            "gateway_rooms_active",
            "gauge",
            "Rooms with callers now.",
            g(&self.rooms_active).to_string(),
        );
        metric(
            "gateway_dial_in_total",
            "counter",
            "Incoming calls offered.",
            g(&self.dial_in_total).to_string(),
        );
        metric(
            "gateway_dial_out_total",
            "counter",
            "Outgoing calls placed.",
            g(&self.dial_out_total).to_string(),
        );
        metric(
            "gateway_connected_total",
            "counter",
            "Calls that reached a room.",
            g(&self.connected_total).to_string(),
        );
        metric(
            "gateway_rejected_busy_total",
            "counter",
            "Calls refused at the limit or while draining.",
            g(&self.rejected_busy_total).to_string(),
        );
        metric(
            "gateway_rejected_no_room_total",
            "counter",
            "Calls that found no room.",
            g(&self.rejected_no_room_total).to_string(),
        );
        metric(
            "gateway_rejected_media_total",
            "counter",
            "Calls refused for their SDP (488).",
            g(&self.rejected_media_total).to_string(),
        );
        metric(
            "gateway_join_failures_total",
            "counter",
            "Calls whose meeting join failed.",
            g(&self.join_failures_total).to_string(),
        );
        metric(
            "gateway_inactivity_ends_total",
            "counter",
            "Calls ended for RTP inactivity.",
            g(&self.inactivity_ends_total).to_string(),
        );
        metric(
            "gateway_kicked_total",
            "counter",
            "Calls ended by a moderator.",
            g(&self.kicked_total).to_string(),
        );
        metric(
            "gateway_dtmf_digits_total",
            "counter",
            "DTMF digits received.",
            g(&self.dtmf_digits_total).to_string(),
        );
        metric(
            "gateway_xmpp_online",
            "gauge",
            "Connected to XMPP.",
            b(&self.online).to_string(),
        );
        metric(
            "gateway_draining",
            "gauge",
            "Refusing new calls before shutdown.",
            b(&self.draining).to_string(),
        );
        if self.registration_configured.load(Ordering::Relaxed) {
            metric(
                "gateway_sip_registered",
                "gauge",
                "Registered with the trunk.",
                b(&self.registered).to_string(),
            );
        }
        out
    }
}

/// The router: `/health` is 200 while connected to XMPP (and registered,
/// when registration is configured), 503 with the reason otherwise.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    let health = {
        let m = metrics.clone();
        move || {
            let m = m.clone();
            async move {
                if !m.online.load(Ordering::Relaxed) {
                    return (StatusCode::SERVICE_UNAVAILABLE, "not connected to XMPP\n");
                }
                if m.registration_configured.load(Ordering::Relaxed)
                    && !m.registered.load(Ordering::Relaxed)
                {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not registered with the trunk\n",
                    );
                }
                if m.draining.load(Ordering::Relaxed) {
                    return (StatusCode::OK, "draining\n");
                }
                (StatusCode::OK, "ok\n")
            }
        }
    };
    let text = move || {
        let m = metrics.clone();
        async move { m.render() }
    };
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = Metrics::default();
        Metrics::add(&m.calls_active);
        Metrics::add(&m.calls_active);
        Metrics::sub(&m.calls_active);
        Metrics::sub(&m.rooms_active);
        let text = m.render();
        assert!(text.contains("\ngateway_calls_active 1\n"), "{text}");
        assert!(text.contains("\ngateway_rooms_active 0\n"), "{text}");
        assert!(!text.contains("gateway_sip_registered"));
        m.registration_configured.store(true, Ordering::Relaxed);
        assert!(m.render().contains("\ngateway_sip_registered 0\n"));
    }
}
