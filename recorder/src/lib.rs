//! The `recorder` binary's library: a member of the recorder pool.
//!
//! At this stage it logs in with its service account, sits in the recorders'
//! brewery announcing `jibri-status` idle and healthy, and answers disco;
//! recording itself comes with the recorder's own issue.

pub mod config;

use std::future::Future;

pub use config::Config;
use proto::jibri::{BusyStatus, Health, JibriStatus};
use proto::presence::Features;
use xmpp_session::SessionConfig;

/// Runs the pool member until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let room = config.brewery.room_jid("recorders", &config.xmpp.domain)?;
    let session = SessionConfig {
        identities: vec![("client".into(), "bot".into(), "recorder".into())],
        features: [proto::ns::feature::JIBRI.to_owned()].into(),
        iq_namespaces: Default::default(),
        iq_timeout: config.xmpp.iq_timeout(),
    };
    let (handle, events, task) = xmpp_session::spawn(config.xmpp.clone(), session)?;
    let status = JibriStatus::new(BusyStatus::Idle, Health::Healthy);
    let payloads = vec![
        status.into(),
        Features::new([proto::ns::feature::JIBRI]).into(),
    ];
    tracing::info!(jid = %config.xmpp.jid, %room, "recorder starting");
    handle.join_room(room.clone(), config.brewery.nick(), payloads);
    xmpp_session::brewery::stay(handle, events, room, shutdown).await;
    let _ = task.await;
    Ok(())
}
