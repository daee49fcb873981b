//! The pools the focus routes work to: recorders and gateways, each in its
//! brewery room, each member's status read from its presence
//! (`jibri-status` for recorders, colibri `stats` for gateways).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jid::{BareJid, FullJid};
use proto::colibri::ColibriStats;
use proto::jibri::JibriStatus;
use proto::presence::JitsiPresence;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::Occupant;

/// A member that failed is skipped for this long.
const FAILURE_QUARANTINE: Duration = Duration::from_secs(60);
/// A member just picked is skipped for this long (its busy status may lag).
const SELECTION_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub occupant: FullJid,
    pub jibri: Option<JibriStatus>,
    pub stats: Option<ColibriStats>,
    pub failed_at: Option<Instant>,
    pub selected_at: Option<Instant>,
}

#[derive(Debug)]
pub(super) struct Pool {
    pub room: BareJid,
    pub members: BTreeMap<String, Member>,
}

impl Pool {
    pub fn new(room: BareJid) -> Self {
        Pool {
            room,
            members: BTreeMap::new(),
        }
    }

    /// A member's presence arrived or changed.
    pub fn update(&mut self, occupant: &Occupant) {
        let (presence, errors) = JitsiPresence::from_payloads_lenient(occupant.payloads.clone());
        if !errors.is_empty() {
            tracing::warn!(member = %occupant.occupant_jid, ?errors, "malformed pool member status");
        }
        let entry = self
            .members
            .entry(occupant.nick.clone())
            .or_insert_with(|| Member {
                occupant: occupant.occupant_jid.clone(),
                jibri: None,
                stats: None,
                failed_at: None,
                selected_at: None,
            });
        entry.jibri = presence.jibri_status;
        entry.stats = presence.stats;
    }

    pub fn remove(&mut self, nick: &str) {
        self.members.remove(nick);
    }

    pub fn mark_failed(&mut self, nick: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(nick) {
            m.failed_at = Some(now);
        }
    }

    fn usable(m: &Member, now: Instant) -> bool {
        m.failed_at
            .is_none_or(|t| now.duration_since(t) >= FAILURE_QUARANTINE)
            && m.selected_at
                .is_none_or(|t| now.duration_since(t) >= SELECTION_GRACE)
    }

    /// A healthy, idle recorder not in `exclude`: `service-unavailable` when
    /// the pool is empty, `resource-constraint` when nobody is available.
    pub fn pick_recorder(
        &mut self,
        exclude: &[String],
        now: Instant,
    ) -> Result<String, DefinedCondition> {
        if self.members.values().all(|m| m.jibri.is_none()) {
            return Err(DefinedCondition::ServiceUnavailable);
        }
        let nick = self
            .members
            .iter()
            .filter(|(n, m)| !exclude.contains(n) && Self::usable(m, now))
            .find(|(_, m)| m.jibri.as_ref().is_some_and(JibriStatus::is_available))
            .map(|(n, _)| n.clone())
            .ok_or(DefinedCondition::ResourceConstraint)?;
        if let Some(m) = self.members.get_mut(&nick) {
            m.selected_at = Some(now);
        }
        Ok(nick)
    }

    /// The SIP gateway with the fewest participants that is not shutting
    /// down, not in `exclude`.
    pub fn pick_gateway(
        &mut self,
        exclude: &[String],
        now: Instant,
    ) -> Result<String, DefinedCondition> {
        let candidates: Vec<(&String, &Member)> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.stats.as_ref().is_some_and(|s| {
                    s.graceful_shutdown().ok().flatten() != Some(true)
                        && s.supports_sip().ok().flatten() != Some(false)
                })
            })
            .collect();
        if candidates.is_empty() {
            return Err(DefinedCondition::ServiceUnavailable);
        }
        let nick = candidates
            .into_iter()
            .filter(|(n, m)| !exclude.contains(n) && Self::usable(m, now))
            .min_by_key(|(_, m)| {
                m.stats
                    .as_ref()
                    .and_then(|s| s.participants().ok().flatten())
                    .unwrap_or(0)
            })
            .map(|(n, _)| n.clone())
            .ok_or(DefinedCondition::ResourceConstraint)?;
        if let Some(m) = self.members.get_mut(&nick) {
            m.selected_at = Some(now);
        }
        Ok(nick)
    }
}
