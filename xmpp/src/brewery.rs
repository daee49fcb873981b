//! Pool membership: a service (recorder, gateway, bridge) sits in its
//! brewery room on the internal MUC and keeps its status in its presence
//! there, where the focus reads it.

use jid::BareJid;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[brewery]` section of a pool member's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BreweryConfig {
    /// The brewery room. Empty: `<default name>@internal.<xmpp.domain>`.
    pub room: String,
    /// Our nick there. Empty: the host name and process id.
    pub nick: String,
}

impl BreweryConfig {
    /// The room, with the default filled in from the domain.
    pub fn room_jid(&self, default_name: &str, domain: &str) -> Result<BareJid, ConfigError> {
        let s = if self.room.is_empty() {
            format!("{default_name}@internal.{domain}")
        } else {
            self.room.clone()
        };
        match BareJid::new(&s) {
            Ok(j) if j.node().is_some() => Ok(j),
            _ => Err(ConfigError {
                key: "brewery.room",
                reason: format!("expected room@service, got {s:?}"),
            }),
        }
    }

    /// The nick, defaulting to `<host>-<pid>` so several members on one
    /// machine do not collide.
    pub fn nick(&self) -> String {
        if !self.nick.is_empty() {
            return self.nick.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "host".into());
        format!("{}-{}", host.trim(), std::process::id())
    }
}

/// Keeps a pool member in its brewery until `shutdown`: logs what happens
/// and returns after leaving the room and closing the stream. Requests for
/// namespaces the member did not register are answered by the session core.
pub async fn stay(
    handle: crate::Handle,
    mut events: tokio::sync::mpsc::UnboundedReceiver<crate::Event>,
    room: BareJid,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break,
                Some(crate::Event::RoomJoined { room: r, .. }) if r == room => tracing::info!(%room, "in the brewery"),
                Some(crate::Event::RoomJoinFailed { room: r, error }) if r == room => {
                    tracing::error!(%room, condition = ?error.defined_condition, "brewery refused us");
                }
                Some(ev) => tracing::debug!(?ev, "xmpp event"),
            },
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    handle.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_room_comes_from_the_domain() {
        let b = BreweryConfig::default();
        assert_eq!(
            b.room_jid("recorders", "meet.test").unwrap().to_string(),
            "recorders@internal.meet.test"
        );
        let b = BreweryConfig {
            room: "internal.meet.test".into(),
            ..Default::default()
        };
        assert_eq!(
            b.room_jid("recorders", "meet.test").unwrap_err().key,
            "brewery.room"
        );
    }
}
