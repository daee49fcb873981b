//! The `gateway` binary's library: a member of the SIP gateway pool.
//!
//! At this stage it logs in with its service account and sits in the
//! gateways' brewery publishing colibri `stats` (no conferences, no load,
//! SIP supported); SIP itself comes with the gateway's own issue.

pub mod config;
pub mod ivr;
pub mod mapper;
pub mod media;
pub mod phone;
pub mod sip;

use std::future::Future;

pub use config::Config;
use proto::colibri::ColibriStats;
use proto::presence::Features;
use xmpp_session::SessionConfig;

/// The brewery stats of an idle gateway.
pub fn idle_stats() -> ColibriStats {
    let mut stats = ColibriStats::new();
    for (name, value) in [
        ("conferences", "0"),
        ("participants", "0"),
        ("stress_level", "0.0"),
        ("graceful_shutdown", "false"),
        ("supports_sip", "true"),
        ("supports_transcription", "false"),
        ("version", env!("CARGO_PKG_VERSION")),
    ] {
        stats.set(name, value);
    }
    stats
}

/// Runs the pool member until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let room = config.brewery.room_jid("gateways", &config.xmpp.domain)?;
    let session = SessionConfig {
        identities: vec![("client".into(), "bot".into(), "sip gateway".into())],
        features: [proto::ns::feature::JIGASI.to_owned()].into(),
        iq_namespaces: Default::default(),
        iq_timeout: config.xmpp.iq_timeout(),
    };
    let (handle, events, task) = xmpp_session::spawn(config.xmpp.clone(), session)?;
    let payloads = vec![
        idle_stats().into(),
        Features::new([proto::ns::feature::JIGASI]).into(),
    ];
    tracing::info!(jid = %config.xmpp.jid, %room, "gateway starting");
    handle.join_room(room.clone(), config.brewery.nick(), payloads);
    xmpp_session::brewery::stay(handle, events, room, shutdown).await;
    let _ = task.await;
    Ok(())
}
